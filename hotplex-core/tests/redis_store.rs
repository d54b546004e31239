//! [`RedisStore`] against a real `redis-server`: the lease and transcript
//! contract of `MemoryLeaseStore` and `DirStore` (the cases of
//! `src/placement/lease.rs` and `src/placement/dir.rs`), then what only a
//! network store has: several hosts, concurrency, odd session ids, large
//! transcripts, bad addresses, a server that goes away.
//!
//! Each test starts its own `redis-server` (from `PATH`) on a free port of
//! 127.0.0.1, without persistence, and kills it when done. Without
//! `redis-server` the tests that need it print a note and pass, so a
//! developer machine without Redis still passes; `tests/run-all.sh`
//! installs it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotplex_core::placement::{LeaseStore, RedisStore, Transcript, TranscriptStore};
use hotplex_core::Error;

/// A `redis-server` of this test, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// A fresh server, or `None` (after a note) when `redis-server` is not
    /// installed.
    fn start() -> Option<Server> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("redis-server not found: skipped");
            return None;
        }
        // The port is free when asked but could be taken before the server
        // binds it: try a few.
        for _ in 0..5 {
            if let Some(s) = Server::start_on(free_port()) {
                return Some(s);
            }
        }
        panic!("redis-server did not start");
    }

    fn start_on(port: u16) -> Option<Server> {
        let dir = std::env::temp_dir().join(format!(
            "hotplex-redis-{}-{port}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let mut server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                return None; // the port was taken meanwhile; dropped below
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        server.stop();
        None
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A store of one "host".
    fn store(&self) -> RedisStore {
        RedisStore::new(&self.url()).unwrap()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sample(text: &str) -> Transcript {
    Transcript {
        main: format!("{{\"text\":\"{text}\"}}\n").into_bytes(),
        subagents: vec![("agent-1.jsonl".into(), b"{}\n".to_vec())],
    }
}

const TTL: Duration = Duration::from_secs(30);

fn expect_owned_elsewhere(r: hotplex_core::Result<hotplex_core::placement::Lease>) -> String {
    match r {
        Err(Error::OwnedElsewhere { owner, .. }) => owner,
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }
}

// --- the lease contract (src/placement/lease.rs) ---

#[test]
fn one_owner_at_a_time_and_the_other_is_told_who() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    let a = s.acquire("s1", "host-a", TTL).unwrap();
    assert_eq!((a.owner.as_str(), a.epoch), ("host-a", 1));
    match s.acquire("s1", "host-b", TTL) {
        Err(Error::OwnedElsewhere { owner, session }) => {
            assert_eq!((owner.as_str(), session.as_str()), ("host-a", "s1"))
        }
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }
    // The owner acquiring again keeps its epoch.
    assert_eq!(s.acquire("s1", "host-a", TTL).unwrap().epoch, 1);
    assert_eq!(s.holder("s1").unwrap().unwrap().owner, "host-a");
    assert_eq!(s.holder("other").unwrap(), None);
}

#[test]
fn an_expired_lease_is_taken_over_with_a_higher_epoch_and_the_old_owner_is_fenced() {
    let Some(srv) = Server::start() else { return };
    let (host_a, host_b) = (srv.store(), srv.store());
    let a = host_a
        .acquire("s1", "host-a", Duration::from_millis(200))
        .unwrap();
    host_a.save("s1", a.epoch, &sample("a's turn")).unwrap();
    std::thread::sleep(Duration::from_millis(300)); // host-a froze past its TTL
    assert_eq!(host_b.holder("s1").unwrap(), None);
    let b = host_b.acquire("s1", "host-b", TTL).unwrap();
    assert_eq!(b.epoch, a.epoch + 1);
    host_b.save("s1", b.epoch, &sample("b's turn")).unwrap();
    // host-a wakes up: its renewal and its late save are fenced.
    assert!(matches!(host_a.renew(&a, TTL), Err(Error::Fenced(_))));
    assert!(matches!(
        host_a.save("s1", a.epoch, &sample("late")),
        Err(Error::Fenced(_))
    ));
    // A fenced owner's release does not free its successor's lease.
    host_a.release(&a).unwrap();
    assert_eq!(host_a.holder("s1").unwrap().unwrap().owner, "host-b");
    assert_eq!(host_b.renew(&b, TTL).unwrap().epoch, b.epoch);
    assert_eq!(
        host_a.load("s1").unwrap(),
        Some((b.epoch, sample("b's turn")))
    );
}

#[test]
fn an_expired_lease_nobody_took_may_still_be_renewed() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    let a = s.acquire("s1", "host-a", Duration::ZERO).unwrap();
    assert_eq!(s.holder("s1").unwrap(), None, "a zero TTL lapses at once");
    std::thread::sleep(Duration::from_millis(5));
    let renewed = s.renew(&a, TTL).unwrap();
    assert_eq!(renewed.epoch, 1);
    assert!(renewed.expires_at_ms > a.expires_at_ms);
    assert_eq!(s.holder("s1").unwrap(), Some(renewed));
}

#[test]
fn epochs_never_repeat_after_a_release() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    let a = s.acquire("s1", "host-a", TTL).unwrap();
    s.release(&a).unwrap();
    assert_eq!(s.holder("s1").unwrap(), None);
    assert!(matches!(s.renew(&a, TTL), Err(Error::Fenced(_))));
    let again = s.acquire("s1", "host-a", TTL).unwrap();
    assert_eq!(again.epoch, 2);
}

// --- the DirStore cases (src/placement/dir.rs), two stores as two hosts ---

#[test]
fn leases_shared_by_two_hosts_have_one_owner_and_rising_epochs() {
    let Some(srv) = Server::start() else { return };
    let (a, b) = (srv.store(), srv.store());
    let la = a.acquire("s/1", "host-a", TTL).unwrap();
    assert_eq!(la.epoch, 1);
    assert_eq!(
        expect_owned_elsewhere(b.acquire("s/1", "host-b", TTL)),
        "host-a"
    );
    assert_eq!(b.holder("s/1").unwrap().unwrap().owner, "host-a");
    a.release(&la).unwrap();
    let lb = b.acquire("s/1", "host-b", TTL).unwrap();
    assert_eq!(lb.epoch, 2);
    assert!(matches!(a.renew(&la, TTL), Err(Error::Fenced(_))));
    assert_eq!(b.renew(&lb, TTL).unwrap().epoch, 2);
    // An expired lease goes to the next asker with a higher epoch.
    let short = b.renew(&lb, Duration::ZERO).unwrap();
    assert_eq!(b.holder("s/1").unwrap(), None);
    assert_eq!(a.acquire("s/1", "host-a", TTL).unwrap().epoch, 3);
    assert!(matches!(b.renew(&short, TTL), Err(Error::Fenced(_))));
}

#[test]
fn an_owner_name_that_is_empty_or_has_spaces_is_refused() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    for bad in ["", "bad owner", "bad\nowner"] {
        assert!(
            matches!(s.acquire("s", bad, TTL), Err(Error::InvalidConfig(_))),
            "{bad:?}"
        );
    }
    assert_eq!(s.holder("s").unwrap(), None);
}

#[test]
fn a_saved_transcript_loads_back_with_its_epoch() {
    let Some(srv) = Server::start() else { return };
    let store = srv.store();
    assert_eq!(store.load("s/1").unwrap(), None);
    store.save("s/1", 3, &sample("a")).unwrap();
    assert_eq!(store.load("s/1").unwrap(), Some((3, sample("a"))));
    // Same epoch: the owner's later turns replace it, subagents included.
    let b = Transcript {
        main: b"{\"text\":\"b\"}\n".to_vec(),
        subagents: vec![
            ("agent-2.jsonl".into(), b"two\n".to_vec()),
            ("agent-10.jsonl".into(), Vec::new()),
        ],
    };
    store.save("s/1", 3, &b).unwrap();
    let (epoch, loaded) = store.load("s/1").unwrap().unwrap();
    assert_eq!(epoch, 3);
    assert_eq!(loaded.main, b.main);
    // In name order, as DirStore lists them; agent-1 of the first save is gone.
    assert_eq!(
        loaded.subagents,
        [
            ("agent-10.jsonl".to_string(), Vec::new()),
            ("agent-2.jsonl".to_string(), b"two\n".to_vec()),
        ]
    );
    // A higher epoch (a new owner) replaces it too.
    store.save("s/1", 4, &sample("c")).unwrap();
    assert_eq!(store.load("s/1").unwrap(), Some((4, sample("c"))));
}

#[test]
fn a_save_under_an_older_epoch_is_fenced_and_changes_nothing() {
    let Some(srv) = Server::start() else { return };
    let store = srv.store();
    store.save("s", 2, &sample("new owner")).unwrap();
    assert!(matches!(
        store.save("s", 1, &sample("old owner")),
        Err(Error::Fenced(_))
    ));
    assert!(matches!(store.delete("s", 1), Err(Error::Fenced(_))));
    assert_eq!(store.load("s").unwrap(), Some((2, sample("new owner"))));
    store.delete("s", 2).unwrap();
    assert_eq!(store.load("s").unwrap(), None);
    // The epoch outlives the delete.
    assert!(matches!(
        store.save("s", 1, &sample("late")),
        Err(Error::Fenced(_))
    ));
    assert!(matches!(store.delete("s", 1), Err(Error::Fenced(_))));
    // Deleting what was never saved is nothing.
    store.delete("never", 0).unwrap();
    assert_eq!(store.load("never").unwrap(), None);
}

#[test]
fn subagent_file_names_with_a_directory_part_are_refused_and_nothing_is_saved() {
    let Some(srv) = Server::start() else { return };
    let store = srv.store();
    store.save("s", 1, &sample("kept")).unwrap();
    for bad in ["../../escape", "a/b", "", "..", "nul\0"] {
        let evil = Transcript {
            main: b"{}\n".to_vec(),
            subagents: vec![(bad.into(), b"x".to_vec())],
        };
        assert!(
            matches!(store.save("s", 1, &evil), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    assert_eq!(store.load("s").unwrap(), Some((1, sample("kept"))));
}

// --- what a network store adds ---

#[test]
fn of_eight_hosts_acquiring_at_once_exactly_one_wins() {
    let Some(srv) = Server::start() else { return };
    let url = srv.url();
    for round in 0..5 {
        let session = format!("race-{round}");
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (url, start, session) = (url.clone(), start.clone(), session.clone());
                std::thread::spawn(move || {
                    let store = RedisStore::new(&url).unwrap();
                    start.wait();
                    (i, store.acquire(&session, &format!("host-{i}"), TTL))
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = results
            .iter()
            .filter_map(|(i, r)| r.as_ref().ok().map(|l| (*i, l.clone())))
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let (winner, lease) = &winners[0];
        assert_eq!(lease.epoch, 1);
        for (i, r) in results {
            if i != *winner {
                assert_eq!(expect_owned_elsewhere(r), format!("host-{winner}"));
            }
        }
    }
}

#[test]
fn one_store_shared_by_many_threads_keeps_every_session_apart() {
    let Some(srv) = Server::start() else { return };
    let store = srv.store();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let id = format!("t{i}");
                for n in 0..20 {
                    let l = store.acquire(&id, "host-a", TTL).unwrap();
                    store
                        .save(&id, l.epoch, &sample(&format!("{i}.{n}")))
                        .unwrap();
                    store.release(&l).unwrap();
                }
                store.load(&id).unwrap().unwrap()
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), (20, sample(&format!("{i}.19"))));
    }
}

#[test]
fn session_ids_with_braces_spaces_and_unicode_are_kept_apart() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    let ids = [
        "a{b}c",
        "a}b{c",
        "{a}",
        "{",
        "}",
        "with spaces and\ttabs",
        "héllo wörld ✓ 会话 😀",
        "hotplex:{x}:lease",
        "s/1",
        "s\u{0}nul",
    ];
    for (n, id) in ids.iter().enumerate() {
        let l = s.acquire(id, &format!("host-{n}"), TTL).unwrap();
        assert_eq!((l.epoch, l.session.as_str()), (1, *id));
        s.save(id, 1, &sample(id)).unwrap();
    }
    for (n, id) in ids.iter().enumerate() {
        let l = s.holder(id).unwrap().unwrap();
        assert_eq!((l.session.as_str(), l.owner), (*id, format!("host-{n}")));
        assert_eq!(s.load(id).unwrap(), Some((1, sample(id))));
    }
    // The longest id the engine takes (512 bytes) works too.
    let long = "é}".repeat(512 / 3);
    assert_eq!(s.acquire(&long, "host-a", TTL).unwrap().epoch, 1);
}

#[test]
fn a_five_megabyte_transcript_round_trips() {
    let Some(srv) = Server::start() else { return };
    let (a, b) = (srv.store(), srv.store());
    let line = b"{\"type\":\"assistant\",\"text\":\"0123456789abcdef\xe2\x9c\x93\"}\n";
    let main: Vec<u8> = line.iter().copied().cycle().take(5 << 20).collect();
    // Every byte value, as the CLI's files are bytes to the store.
    let binary: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let t = Transcript {
        main,
        subagents: vec![
            ("agent-a.jsonl".into(), binary),
            ("agent-b.jsonl".into(), b"{}\n".to_vec()),
        ],
    };
    let started = Instant::now();
    a.save("big", 7, &t).unwrap();
    let saved = started.elapsed();
    let started = Instant::now();
    let loaded = b.load("big").unwrap();
    eprintln!(
        "5 MB transcript (+1 MB subagent): save {saved:?}, load {:?}",
        started.elapsed()
    );
    assert_eq!(loaded, Some((7, t)));
}

#[test]
fn a_wrong_address_fails_at_construction_with_invalid_config() {
    // Nothing listens on a port just freed.
    let port = free_port();
    let started = Instant::now();
    match RedisStore::new(&format!("redis://:s3cret@127.0.0.1:{port}")) {
        Err(Error::InvalidConfig(m)) => {
            assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
            assert!(!m.contains("s3cret"), "the password is not shown: {m}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    for bad in [
        "redis://[::1",
        "redis://host:notaport",
        "rediss://127.0.0.1",
    ] {
        assert!(
            matches!(RedisStore::new(bad), Err(Error::InvalidConfig(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_wrong_password_fails_at_construction_with_invalid_config() {
    let Some(srv) = Server::start() else { return };
    let url = format!("redis://:wrong-password@127.0.0.1:{}", srv.port);
    match RedisStore::new(&url) {
        Err(Error::InvalidConfig(m)) => assert!(!m.contains("wrong-password"), "{m}"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn a_host_name_and_a_database_number_in_the_url_are_honoured() {
    let Some(srv) = Server::start() else { return };
    let db0 = srv.store();
    let db1 = RedisStore::new(&format!("redis://localhost:{}/1", srv.port)).unwrap();
    db0.acquire("s", "host-a", TTL).unwrap();
    assert_eq!(db1.holder("s").unwrap(), None, "another database");
    assert_eq!(db1.acquire("s", "host-b", TTL).unwrap().epoch, 1);
}

#[test]
fn a_unix_socket_url_reaches_the_server() {
    let Some(mut srv) = Server::start() else {
        return;
    };
    srv.stop();
    let sock = srv.dir.join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no"])
        .arg("--unixsocket")
        .arg(&sock)
        .arg("--dir")
        .arg(&srv.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    srv.child = child; // killed by the guard
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for scheme in ["redis+unix", "unix"] {
        let s = RedisStore::new(&format!("{scheme}://{}", sock.display())).unwrap();
        let l = s.acquire(scheme, "host-a", TTL).unwrap();
        assert_eq!(l.epoch, 1);
    }
}

#[test]
fn a_connection_the_server_closed_is_replaced_without_an_error() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    let l = s.acquire("s", "host-a", TTL).unwrap();
    // The server drops every client (as a restart or an idle timeout does).
    let admin = redis::Client::open(srv.url()).unwrap();
    let mut admin = admin.get_connection().unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query(&mut admin)
        .unwrap();
    assert_eq!(s.renew(&l, TTL).unwrap().epoch, 1);
    // Scripts the server forgot (SCRIPT FLUSH, a restart) are loaded again.
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut admin).unwrap();
    assert_eq!(s.holder("s").unwrap().unwrap().owner, "host-a");
}

#[test]
fn store_calls_while_redis_is_down_are_io_errors_naming_the_url_not_hangs() {
    let Some(mut srv) = Server::start() else {
        return;
    };
    let s = srv.store();
    let l = s.acquire("s", "host-a", TTL).unwrap();
    srv.stop();
    let started = Instant::now();
    match s.renew(&l, TTL) {
        Err(Error::Io(m)) => assert!(m.contains(&srv.url()), "{m}"),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(matches!(s.load("s"), Err(Error::Io(_))));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Not an assertion: prints what each call costs against a local server
/// (`cargo test -p hotplex-core --test redis_store -- --nocapture timings`).
#[test]
fn timings_against_a_local_server() {
    let Some(srv) = Server::start() else { return };
    let s = srv.store();
    const N: u32 = 300;
    let per = |started: Instant| started.elapsed() / N;
    let started = Instant::now();
    let mut lease = None;
    for _ in 0..N {
        lease = Some(s.acquire("t", "host-a", TTL).unwrap());
    }
    let acquire = per(started);
    let lease = lease.unwrap();
    let started = Instant::now();
    for _ in 0..N {
        s.renew(&lease, TTL).unwrap();
    }
    let renew = per(started);
    let t = Transcript {
        main: vec![b'x'; 100 << 10],
        subagents: Vec::new(),
    };
    let started = Instant::now();
    for _ in 0..N {
        s.save("t", lease.epoch, &t).unwrap();
    }
    let save = per(started);
    let started = Instant::now();
    for _ in 0..N {
        s.load("t").unwrap();
    }
    let load = per(started);
    eprintln!(
        "per call, local redis: acquire {acquire:?}, renew {renew:?}, \
         save 100 KB {save:?}, load 100 KB {load:?}"
    );
}
