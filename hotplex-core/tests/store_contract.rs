//! The contract every placement store keeps, written once and run against
//! each implementation:
//!
//! * the lease contract ([`LeaseStore`]): `MemoryLeaseStore`, `DirStore`,
//!   `RedisStore`;
//! * the transcript contract ([`TranscriptStore`]), and how the two meet
//!   when a lease is taken over: `DirStore`, `RedisStore`.
//!
//! "Two hosts" are two store instances over the same backing: clones of one
//! `MemoryLeaseStore`, two `DirStore`s on one directory, two `RedisStore`s
//! on one server. The cases of a contract share one backing, each on
//! session ids of its own, on the real clock. Each test names the store;
//! a failing one lists the cases the store broke, each case's own panic
//! above it.
//!
//! The Redis tests start their own `redis-server` ([`redis_server`]); without
//! one on `PATH` they print a note and pass. What only one store has (a
//! network store's races, odd session ids, large transcripts, a server that
//! goes away) is `redis_store.rs`'s.

mod redis_server;

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use hotplex_core::placement::{
    DirStore, Lease, LeaseStore, MemoryLeaseStore, Transcript, TranscriptStore,
};
use hotplex_core::{Error, Result};
use redis_server::Server;

const TTL: Duration = Duration::from_secs(30);

// --- the stores ---

#[test]
fn memory_store_keeps_the_lease_contract() {
    let store = MemoryLeaseStore::new();
    lease_contract("MemoryLeaseStore", || store.clone());
}

#[test]
fn dir_store_keeps_the_lease_contract() {
    let root = TempDir::new("leases");
    lease_contract("DirStore", || DirStore::new(&root.0).unwrap());
}

#[test]
fn dir_store_keeps_the_transcript_contract() {
    let root = TempDir::new("transcripts");
    transcript_contract("DirStore", || DirStore::new(&root.0).unwrap());
}

#[test]
fn redis_store_keeps_the_lease_contract() {
    let Some(srv) = Server::start() else { return };
    lease_contract("RedisStore", || srv.store());
}

#[test]
fn redis_store_keeps_the_transcript_contract() {
    let Some(srv) = Server::start() else { return };
    transcript_contract("RedisStore", || srv.store());
}

// --- the contracts ---

/// Runs each case on `hosts`, then fails naming the store and every case
/// it broke.
macro_rules! run_cases {
    ($store:expr, $hosts:expr; $($case:ident),+ $(,)?) => {{
        let mut broken: Vec<&str> = Vec::new();
        $(
            if catch_unwind(AssertUnwindSafe(|| $case($hosts))).is_err() {
                broken.push(stringify!($case));
            }
        )+
        assert!(broken.is_empty(), "{} breaks the contract: {}", $store, broken.join(", "));
    }};
}

fn lease_contract<S: LeaseStore>(store: &str, hosts: impl Fn() -> S) {
    run_cases!(store, &hosts;
        one_owner_at_a_time_and_the_other_is_told_who,
        the_holder_acquiring_again_keeps_its_epoch,
        an_expired_lease_is_taken_over_with_a_higher_epoch_and_the_old_owner_is_fenced,
        an_expired_lease_nobody_took_may_still_be_renewed,
        epochs_never_repeat_after_a_release,
        bad_owner_names_are_refused_and_nothing_is_held,
    );
}

/// For stores that keep both leases and transcripts.
fn transcript_contract<S: LeaseStore + TranscriptStore>(store: &str, hosts: impl Fn() -> S) {
    run_cases!(store, &hosts;
        nothing_saved_loads_as_none,
        a_saved_transcript_loads_back_with_its_epoch_and_subagents,
        the_same_epoch_replaces_it_subagents_and_all,
        a_higher_epoch_replaces_it,
        a_save_or_delete_under_an_older_epoch_is_fenced_and_changes_nothing,
        a_delete_keeps_its_epoch,
        deleting_what_was_never_saved_is_ok_and_keeps_its_epoch,
        subagent_file_names_with_a_directory_part_are_refused_and_nothing_is_saved,
        a_late_save_of_a_taken_over_owner_is_fenced_and_the_successors_transcript_kept,
        an_append_extends_exactly_what_was_saved_or_changes_nothing,
    );
}

// --- the lease cases ---

fn one_owner_at_a_time_and_the_other_is_told_who<S: LeaseStore>(hosts: &impl Fn() -> S) {
    let (a, b) = (hosts(), hosts());
    let la = a.acquire("one owner/1", "host-a", TTL).unwrap();
    assert_eq!(
        (la.session.as_str(), la.owner.as_str(), la.epoch),
        ("one owner/1", "host-a", 1)
    );
    match b.acquire("one owner/1", "host-b", TTL) {
        Err(Error::OwnedElsewhere { owner, session }) => {
            assert_eq!(
                (owner.as_str(), session.as_str()),
                ("host-a", "one owner/1")
            )
        }
        other => panic!("expected OwnedElsewhere, got {other:?}"),
    }
    assert_eq!(b.holder("one owner/1").unwrap(), Some(la));
    assert_eq!(b.holder("one owner/never acquired").unwrap(), None);
}

fn the_holder_acquiring_again_keeps_its_epoch<S: LeaseStore>(hosts: &impl Fn() -> S) {
    let a = hosts();
    let first = a.acquire("again", "host-a", TTL).unwrap();
    let again = a.acquire("again", "host-a", TTL).unwrap();
    assert_eq!(again.epoch, first.epoch);
    assert!(again.expires_at_ms >= first.expires_at_ms, "{again:?}");
    assert_eq!(hosts().holder("again").unwrap(), Some(again));
}

fn an_expired_lease_is_taken_over_with_a_higher_epoch_and_the_old_owner_is_fenced<S: LeaseStore>(
    hosts: &impl Fn() -> S,
) {
    let (a, b) = (hosts(), hosts());
    let (la, lb) = take_over(&a, &b, "takeover", |_| {});
    assert_fenced(a.renew(&la, TTL), "the old owner's renewal");
    // A fenced owner's release does not free its successor's lease.
    a.release(&la).unwrap();
    assert_eq!(a.holder("takeover").unwrap().unwrap().owner, "host-b");
    assert_eq!(b.renew(&lb, TTL).unwrap().epoch, lb.epoch);
}

fn an_expired_lease_nobody_took_may_still_be_renewed<S: LeaseStore>(hosts: &impl Fn() -> S) {
    let a = hosts();
    let la = a.acquire("lapsed", "host-a", Duration::ZERO).unwrap();
    assert_eq!(
        a.holder("lapsed").unwrap(),
        None,
        "a zero TTL lapses at once"
    );
    std::thread::sleep(Duration::from_millis(5));
    let renewed = a.renew(&la, TTL).unwrap();
    assert_eq!(renewed.epoch, la.epoch);
    assert!(renewed.expires_at_ms > la.expires_at_ms, "{renewed:?}");
    assert_eq!(hosts().holder("lapsed").unwrap(), Some(renewed));
}

fn epochs_never_repeat_after_a_release<S: LeaseStore>(hosts: &impl Fn() -> S) {
    let (a, b) = (hosts(), hosts());
    let la = a.acquire("released", "host-a", TTL).unwrap();
    a.release(&la).unwrap();
    assert_eq!(b.holder("released").unwrap(), None);
    assert_fenced(a.renew(&la, TTL), "a renewal after the release");
    let again = a.acquire("released", "host-a", TTL).unwrap();
    assert_eq!(again.epoch, 2);
    a.release(&again).unwrap();
    assert_eq!(b.acquire("released", "host-b", TTL).unwrap().epoch, 3);
}

fn bad_owner_names_are_refused_and_nothing_is_held<S: LeaseStore>(hosts: &impl Fn() -> S) {
    let a = hosts();
    for bad in [
        "",
        "two words",
        "line\nbreak",
        "tab\t",
        "return\r",
        "nbsp\u{a0}",
    ] {
        match a.acquire("bad owner", bad, TTL) {
            Err(Error::InvalidConfig(m)) => assert!(m.contains("placement.owner"), "{m}"),
            other => panic!("{bad:?}: expected InvalidConfig, got {other:?}"),
        }
    }
    assert_eq!(a.holder("bad owner").unwrap(), None);
    // Not even an epoch was spent.
    assert_eq!(a.acquire("bad owner", "host-a", TTL).unwrap().epoch, 1);
}

/// Host `a` takes `session` with a 200 ms TTL, does `while_held`, and
/// freezes past its TTL; host `b` takes the session over. Returns their
/// leases.
fn take_over<S: LeaseStore>(
    a: &S,
    b: &S,
    session: &str,
    while_held: impl FnOnce(&Lease),
) -> (Lease, Lease) {
    let la = a
        .acquire(session, "host-a", Duration::from_millis(200))
        .unwrap();
    while_held(&la);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.holder(session).unwrap(), None, "lapsed");
    let lb = b.acquire(session, "host-b", TTL).unwrap();
    assert_eq!((lb.owner.as_str(), lb.epoch), ("host-b", la.epoch + 1));
    (la, lb)
}

// --- the transcript cases ---

fn nothing_saved_loads_as_none<S: TranscriptStore>(hosts: &impl Fn() -> S) {
    assert_eq!(hosts().load("never saved").unwrap(), None);
}

fn a_saved_transcript_loads_back_with_its_epoch_and_subagents<S: TranscriptStore>(
    hosts: &impl Fn() -> S,
) {
    let t = Transcript {
        main: b"{\"text\":\"caf\xc3\xa9 \xe2\x9c\x93\"}\n\0\xff".to_vec(),
        subagents: vec![
            ("agent-1.jsonl".into(), b"{}\n".to_vec()),
            ("agent-2.jsonl".into(), Vec::new()),
        ],
    };
    hosts().save("round/trip", 3, &t).unwrap();
    assert_eq!(hosts().load("round/trip").unwrap(), Some((3, t)));
}

fn the_same_epoch_replaces_it_subagents_and_all<S: TranscriptStore>(hosts: &impl Fn() -> S) {
    let s = hosts();
    s.save("same epoch", 3, &sample("a")).unwrap();
    let b = Transcript {
        main: b"{\"text\":\"b\"}\n".to_vec(),
        subagents: vec![
            ("agent-2.jsonl".into(), b"two\n".to_vec()),
            ("agent-10.jsonl".into(), Vec::new()),
        ],
    };
    s.save("same epoch", 3, &b).unwrap();
    // Not merged: agent-1 of the first save is gone. In name order.
    let loaded = Transcript {
        main: b.main,
        subagents: vec![
            ("agent-10.jsonl".into(), Vec::new()),
            ("agent-2.jsonl".into(), b"two\n".to_vec()),
        ],
    };
    assert_eq!(hosts().load("same epoch").unwrap(), Some((3, loaded)));
}

fn a_higher_epoch_replaces_it<S: TranscriptStore>(hosts: &impl Fn() -> S) {
    let (a, b) = (hosts(), hosts());
    a.save("higher", 3, &sample("old owner")).unwrap();
    b.save("higher", 4, &sample("new owner")).unwrap();
    assert_eq!(a.load("higher").unwrap(), Some((4, sample("new owner"))));
}

fn a_save_or_delete_under_an_older_epoch_is_fenced_and_changes_nothing<S: TranscriptStore>(
    hosts: &impl Fn() -> S,
) {
    let (a, b) = (hosts(), hosts());
    b.save("older", 2, &sample("new owner")).unwrap();
    assert_fenced(a.save("older", 1, &sample("old owner")), "the older save");
    assert_fenced(a.delete("older", 1), "the older delete");
    assert_eq!(b.load("older").unwrap(), Some((2, sample("new owner"))));
}

fn a_delete_keeps_its_epoch<S: TranscriptStore>(hosts: &impl Fn() -> S) {
    let (a, b) = (hosts(), hosts());
    a.save("deleted", 2, &sample("kept until reset")).unwrap();
    a.delete("deleted", 2).unwrap();
    assert_eq!(b.load("deleted").unwrap(), None);
    assert_fenced(b.save("deleted", 1, &sample("late")), "a late save");
    assert_fenced(b.delete("deleted", 1), "a late delete");
    assert_eq!(b.load("deleted").unwrap(), None);
    // The owner that deleted goes on; a newer one deletes under its own
    // epoch, which stays in turn.
    a.save("deleted", 2, &sample("after the reset")).unwrap();
    assert_eq!(
        b.load("deleted").unwrap(),
        Some((2, sample("after the reset")))
    );
    b.delete("deleted", 3).unwrap();
    assert_fenced(a.save("deleted", 2, &sample("late")), "a save under 2");
    assert_eq!(b.load("deleted").unwrap(), None);
}

fn deleting_what_was_never_saved_is_ok_and_keeps_its_epoch<S: TranscriptStore>(
    hosts: &impl Fn() -> S,
) {
    let s = hosts();
    s.delete("never saved either", 5).unwrap();
    assert_eq!(s.load("never saved either").unwrap(), None);
    // A new owner reset the conversation before its first save: an older
    // owner's late save cannot bring the old one back.
    assert!(matches!(
        s.save("never saved either", 1, &sample("late")),
        Err(Error::Fenced(_))
    ));
    assert_eq!(s.load("never saved either").unwrap(), None);
}

fn subagent_file_names_with_a_directory_part_are_refused_and_nothing_is_saved<
    S: TranscriptStore,
>(
    hosts: &impl Fn() -> S,
) {
    let s = hosts();
    s.save("names", 1, &sample("kept")).unwrap();
    for bad in ["../x", "a/b", "/abs", "", ".", "..", ".hidden", "nul\0"] {
        // A good name first: nothing of the save may be kept.
        let evil = Transcript {
            main: b"{\"text\":\"evil\"}\n".to_vec(),
            subagents: vec![
                ("agent-0.jsonl".into(), b"good\n".to_vec()),
                (bad.into(), b"x".to_vec()),
            ],
        };
        for (session, epoch) in [("names", 2), ("names, never saved", 1)] {
            assert!(
                matches!(
                    s.save(session, epoch, &evil),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad:?} in {session:?}"
            );
        }
    }
    assert_eq!(s.load("names").unwrap(), Some((1, sample("kept"))));
    assert_eq!(s.load("names, never saved").unwrap(), None);
}

// --- where leases and transcripts meet ---

fn a_late_save_of_a_taken_over_owner_is_fenced_and_the_successors_transcript_kept<
    S: LeaseStore + TranscriptStore,
>(
    hosts: &impl Fn() -> S,
) {
    let (a, b) = (hosts(), hosts());
    let (la, lb) = take_over(&a, &b, "late save", |la| {
        a.save("late save", la.epoch, &sample("a's turn")).unwrap()
    });
    assert_eq!(
        b.load("late save").unwrap(),
        Some((la.epoch, sample("a's turn")))
    );
    b.save("late save", lb.epoch, &sample("b's turn")).unwrap();
    // host-a wakes up: its late save and delete are fenced.
    assert_fenced(
        a.save("late save", la.epoch, &sample("late")),
        "the late save",
    );
    assert_fenced(a.delete("late save", la.epoch), "the late delete");
    assert_eq!(
        a.load("late save").unwrap(),
        Some((lb.epoch, sample("b's turn")))
    );
}

// --- helpers ---

fn an_append_extends_exactly_what_was_saved_or_changes_nothing<S: TranscriptStore>(
    hosts: &impl Fn() -> S,
) {
    let s = hosts();
    let first = sample("one");
    let subs = vec![("agent-9.jsonl".to_owned(), b"nine\n".to_vec())];
    // Nothing stored, or another length stored: nothing changes.
    assert!(!s.append("append", 2, 0, b"x\n", &subs).unwrap());
    assert_eq!(s.load("append").unwrap(), None);
    s.save("append", 2, &first).unwrap();
    let len = first.main.len() as u64;
    assert!(!s.append("append", 2, len + 1, b"x\n", &subs).unwrap());
    assert_eq!(s.load("append").unwrap(), Some((2, first.clone())));
    // An older epoch is fenced (or declined), whatever the length.
    let older = s.append("append", 1, len, b"x\n", &subs);
    assert!(
        matches!(older, Err(Error::Fenced(_)) | Ok(false)),
        "older append: {older:?}"
    );
    assert_eq!(s.load("append").unwrap(), Some((2, first.clone())));
    // The right length: extended, subagents replaced (a store may also
    // decline, and the caller saves whole).
    if s.append("append", 2, len, b"{\"text\":\"two\"}\n", &subs)
        .unwrap()
    {
        let mut main = first.main.clone();
        main.extend_from_slice(b"{\"text\":\"two\"}\n");
        let want = Transcript {
            main,
            subagents: subs.clone(),
        };
        assert_eq!(s.load("append").unwrap(), Some((2, want)));
    } else {
        assert_eq!(s.load("append").unwrap(), Some((2, first)));
    }
}

fn sample(text: &str) -> Transcript {
    Transcript {
        main: format!("{{\"text\":\"{text}\"}}\n").into_bytes(),
        subagents: vec![("agent-1.jsonl".into(), b"{}\n".to_vec())],
    }
}

#[track_caller]
fn assert_fenced<T: Debug>(r: Result<T>, what: &str) {
    assert!(
        matches!(r, Err(Error::Fenced(_))),
        "{what}: expected Fenced, got {r:?}"
    );
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// `tag` is unique among this file's tests.
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "hotplex-store-contract-{tag}-{}",
            std::process::id()
        ));
        // A leftover of an earlier run that had this process id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
