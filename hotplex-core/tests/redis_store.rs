//! [`RedisStore`] against a real `redis-server`: what only a network store
//! has (many hosts racing, threads sharing a store, odd session ids, large
//! transcripts, bad addresses, a server that goes away). The lease and
//! transcript contract it shares with `MemoryLeaseStore` and `DirStore` is
//! `store_contract.rs`'s, run against all three.
//!
//! Each test starts its own `redis-server` ([`redis_server::Server`]) and
//! kills it when done; without `redis-server` on `PATH` the tests that need
//! it print a note and pass.

mod redis_server;

use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotplex_core::placement::{LeaseStore, RedisStore, Transcript, TranscriptStore};
use hotplex_core::Error;
use redis_server::{free_port, Server};

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

#[test]
fn a_turn_appended_sends_only_its_own_bytes_and_loads_back_whole() {
    let Some(srv) = Server::start() else { return };
    let store = srv.store();
    let big = Transcript {
        main: vec![b'x'; 5 << 20],
        subagents: Vec::new(),
    };
    store.save("long", 1, &big).unwrap();
    let started = Instant::now();
    assert!(store
        .append("long", 1, big.main.len() as u64, b"\nturn\n", &[])
        .unwrap());
    let appended = started.elapsed();
    let started = Instant::now();
    let mut whole = big.clone();
    whole.main.extend_from_slice(b"\nturn\n");
    store.save("long-whole", 1, &whole).unwrap();
    println!(
        "5 MB transcript, one turn more: append {appended:?}, whole save {:?}",
        started.elapsed()
    );
    assert_eq!(store.load("long").unwrap(), Some((1, whole)));
}
