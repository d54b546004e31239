//! The engine's side of placement across hosts ([`crate::placement`]):
//! the leases this engine holds, the transcripts it saves and restores.
//!
//! * A session enters the pool only after its lease is taken
//!   ([`Placed::take`]); a session another host holds is
//!   [`Error::OwnedElsewhere`]. When the store keeps a transcript of it
//!   (another host ran it), the transcript is written where the local CLI
//!   looks for it and the session's resume marker is set, so its first turn
//!   here resumes the conversation ([`Placed::restore`]).
//! * After each turn of a Claude Code session its transcript is saved with
//!   the lease's epoch ([`Placed::save`]).
//! * Every third of the lease TTL the engine renews its leases
//!   ([`Placed::renew_all`]); a lease that was taken over is dropped and
//!   its session stopped at once (the caller does that), so two hosts never
//!   run the same conversation for longer than a TTL, and the old owner's
//!   late saves are [`Error::Fenced`].
//!
//! Store calls are short: a directory store's are file operations (a
//! lock, a read, a rename), a Redis store's one round trip each, bounded
//! by its timeouts. They run on the caller's thread like the engine's other
//! file work, and on the blocking pool from the actors.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::marker::MarkerStore;
use crate::contract::PlacementOptions;
use crate::placement::{self, DirStore, Lease, LeaseStore, TranscriptStore};
use crate::{Error, Result};

/// How long [`Placed::save`] waits for the CLI to have written the turn's
/// message into its transcript (it writes right after the turn's result;
/// FACTS.md section aa).
const FLUSH_WAIT: Duration = Duration::from_millis(500);

/// An engine's leases and its way to the shared store.
pub(crate) struct Placed {
    pub owner: String,
    pub ttl: Duration,
    leases: Arc<dyn LeaseStore>,
    transcripts: Arc<dyn TranscriptStore>,
    /// The leases this engine holds, by session id.
    held: Mutex<HashMap<String, Lease>>,
    /// What this engine last saved of each session's main transcript, so
    /// the next save sends only what the CLI appended since.
    saved: Mutex<HashMap<String, Saved>>,
}

/// A main transcript as saved: its length, a hash of its bytes, and the
/// lease epoch it was saved under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saved {
    len: usize,
    hash: u64,
    epoch: u64,
}

/// FNV-1a's offset basis: the hash of no bytes.
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continued from `hash` (of the bytes before them): it
/// tells whether the local transcript still begins with what was saved.
/// A byte stream by definition, so the hash of a transcript one turn
/// longer is the saved hash continued over the turn's bytes alone.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl std::fmt::Debug for Placed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placed")
            .field("owner", &self.owner)
            .field("held", &self.held.lock().len())
            .finish()
    }
}

impl Placed {
    /// The placement of `o`, with its store: a Redis server when
    /// `o.store` is a Redis URL, a directory otherwise.
    pub fn new(o: &PlacementOptions) -> Result<Placed> {
        placement::check_owner(&o.owner)?;
        let (leases, transcripts): (Arc<dyn LeaseStore>, Arc<dyn TranscriptStore>) =
            match o.store.to_str().filter(|s| placement::is_redis_url(s)) {
                Some(url) => {
                    // Its messages show the URL with the password hidden;
                    // `o.store` itself must not be printed.
                    let store = Arc::new(placement::RedisStore::new(url).map_err(|e| match e {
                        Error::InvalidConfig(m) => {
                            Error::InvalidConfig(format!("placement.store: {m}"))
                        }
                        e => e,
                    })?);
                    (store.clone(), store)
                }
                None => {
                    let store = Arc::new(DirStore::new(&o.store).map_err(|e| {
                        Error::InvalidConfig(format!("placement.store {}: {e}", o.store.display()))
                    })?);
                    (store.clone(), store)
                }
            };
        Ok(Placed {
            owner: o.owner.clone(),
            ttl: o.lease_ttl,
            leases,
            transcripts,
            held: Mutex::default(),
            saved: Mutex::default(),
        })
    }

    /// Whether this engine holds `id`'s lease (as far as it knows: the
    /// next renewal may find it taken over).
    pub fn holds(&self, id: &str) -> bool {
        self.held.lock().contains_key(id)
    }

    /// Whether `id`'s current lease in the store is this engine's.
    pub fn owns(&self, id: &str) -> Result<bool> {
        Ok(self.holds(id)
            && self
                .leases
                .holder(id)?
                .is_some_and(|l| l.owner == self.owner))
    }

    /// Takes `id`'s lease (or renews the one held).
    pub fn take(&self, id: &str) -> Result<Lease> {
        let lease = self.leases.acquire(id, &self.owner, self.ttl)?;
        self.held.lock().insert(id.to_owned(), lease.clone());
        Ok(lease)
    }

    /// Writes the stored transcript of `id` (if any) where the CLI in
    /// `workdir` with configuration directory `config` finds provider
    /// session `psid`'s, and marks the session resumable. Returns whether
    /// there was one.
    pub fn restore(
        &self,
        id: &str,
        psid: &str,
        config: &Path,
        workdir: &Path,
        markers: &MarkerStore,
    ) -> Result<bool> {
        let Some((_, t)) = self.transcripts.load(id)? else {
            return Ok(false);
        };
        placement::write_local(config, workdir, psid, &t)?;
        markers.put(psid, id, workdir)?;
        Ok(true)
    }

    /// Saves `id`'s local transcript (provider session `psid` in `workdir`,
    /// configuration directory `config`) under the held lease's epoch,
    /// once it holds `message` (the turn's user message id) when given.
    /// [`Error::Fenced`] when another host took the session over.
    pub fn save(
        &self,
        id: &str,
        psid: &str,
        config: &Path,
        workdir: &Path,
        message: Option<&str>,
    ) -> Result<()> {
        let Some(lease) = self.held.lock().get(id).cloned() else {
            return Err(Error::Fenced(format!(
                "session {id:?}: this engine holds no lease for it"
            )));
        };
        let deadline = Instant::now() + FLUSH_WAIT;
        loop {
            let t = placement::read_local(config, workdir, psid)?;
            let flushed = match (&t, message) {
                (Some(t), Some(m)) => contains(&t.main, m.as_bytes()),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if flushed || Instant::now() >= deadline {
                return match t {
                    Some(t) => self.store(id, lease.epoch, &t),
                    None => Ok(()),
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Saves `t` as `id`'s transcript under `epoch`: only what the CLI
    /// appended since this engine's last save when the store can append
    /// and the local file still begins with what was saved, else whole.
    fn store(&self, id: &str, epoch: u64, t: &placement::Transcript) -> Result<()> {
        let last = self.saved.lock().get(id).copied();
        let base = last.filter(|s| {
            s.epoch == epoch
                && t.main.len() >= s.len
                && fnv1a(FNV_START, &t.main[..s.len]) == s.hash
        });
        let appended = match base {
            Some(s) => {
                let tail = &t.main[s.len..];
                let done = self
                    .transcripts
                    .append(id, epoch, s.len as u64, tail, &t.subagents)?;
                done.then(|| fnv1a(s.hash, tail))
            }
            None => None,
        };
        let hash = match appended {
            Some(hash) => hash,
            None => {
                self.transcripts.save(id, epoch, t)?;
                fnv1a(FNV_START, &t.main)
            }
        };
        let now = Saved {
            len: t.main.len(),
            hash,
            epoch,
        };
        self.saved.lock().insert(id.to_owned(), now);
        Ok(())
    }

    /// Renews `id`'s held lease before a turn's answer is handed out:
    /// [`Error::Fenced`] when another host took the session over meanwhile
    /// (this host froze or lost the store past the TTL), so a stale owner
    /// never answers a turn its successor's conversation does not hold. A
    /// store that cannot be reached is not a loss: the answer goes out and
    /// the renewer keeps trying until the lease lapses.
    pub fn confirm(&self, id: &str) -> Result<()> {
        let Some(lease) = self.held.lock().get(id).cloned() else {
            return Err(Error::Fenced(format!(
                "session {id:?}: this engine holds no lease for it"
            )));
        };
        self.renew(lease)
    }

    /// Renews every held lease; returns the sessions whose lease was taken
    /// over or released (dropped from the held set: their processes must
    /// stop now).
    pub fn renew_all(&self) -> Vec<String> {
        let held: Vec<Lease> = self.held.lock().values().cloned().collect();
        held.into_iter()
            .filter_map(|l| {
                let id = l.session.clone();
                self.renew(l).err().map(|_| id)
            })
            .collect()
    }

    /// Renews one held lease. [`Error::Fenced`] (the lease dropped from the
    /// held set) when it was taken over or released; any other failure (the
    /// store unreachable) is logged, not a loss: renewals go on until the
    /// lease lapses, and then the next one says Fenced.
    fn renew(&self, lease: Lease) -> Result<()> {
        match self.leases.renew(&lease, self.ttl) {
            Ok(l) => {
                let mut h = self.held.lock();
                // Released meanwhile: keep it released.
                if h.get(&l.session).is_some_and(|x| x.epoch == l.epoch) {
                    h.insert(l.session.clone(), l);
                }
                Ok(())
            }
            Err(e @ Error::Fenced(_)) => {
                self.held.lock().remove(&lease.session);
                self.saved.lock().remove(&lease.session);
                Err(e)
            }
            Err(e) => {
                tracing::warn!(session = %lease.session, "lease renewal failed: {e}");
                Ok(())
            }
        }
    }

    /// Gives `id`'s lease up.
    pub fn release(&self, id: &str) -> Result<()> {
        self.saved.lock().remove(id);
        let lease = self.held.lock().remove(id);
        match lease {
            Some(l) => self.leases.release(&l),
            None => Ok(()),
        }
    }

    /// The sessions whose leases this engine holds.
    pub fn held(&self) -> Vec<String> {
        self.held.lock().keys().cloned().collect()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{MemoryLeaseStore, Transcript};

    /// A transcript store in memory that can append, counting how each
    /// save arrived.
    #[derive(Default)]
    struct Counting {
        main: Mutex<Vec<u8>>,
        saves: Mutex<usize>,
        appends: Mutex<Vec<usize>>,
    }

    impl TranscriptStore for Counting {
        fn save(&self, _: &str, _: u64, t: &Transcript) -> Result<()> {
            *self.main.lock() = t.main.clone();
            *self.saves.lock() += 1;
            Ok(())
        }
        fn load(&self, _: &str) -> Result<Option<(u64, Transcript)>> {
            Ok(None)
        }
        fn delete(&self, _: &str, _: u64) -> Result<()> {
            Ok(())
        }
        fn append(
            &self,
            _: &str,
            _: u64,
            base: u64,
            tail: &[u8],
            _: &[(String, Vec<u8>)],
        ) -> Result<bool> {
            let mut main = self.main.lock();
            if main.len() as u64 != base {
                return Ok(false);
            }
            main.extend_from_slice(tail);
            self.appends.lock().push(tail.len());
            Ok(true)
        }
    }

    fn placed(store: Arc<Counting>) -> Placed {
        Placed {
            owner: "host-a".into(),
            ttl: Duration::from_secs(30),
            leases: Arc::new(MemoryLeaseStore::new()),
            transcripts: store,
            held: Mutex::default(),
            saved: Mutex::default(),
        }
    }

    fn main(text: &str) -> Transcript {
        Transcript {
            main: text.as_bytes().to_vec(),
            subagents: Vec::new(),
        }
    }

    #[test]
    fn each_turn_after_the_first_save_sends_only_what_the_cli_appended() {
        let store = Arc::new(Counting::default());
        let p = placed(store.clone());
        p.store("s", 1, &main("one\n")).unwrap();
        p.store("s", 1, &main("one\ntwo\n")).unwrap();
        p.store("s", 1, &main("one\ntwo\nthree\n")).unwrap();
        assert_eq!(*store.saves.lock(), 1);
        assert_eq!(*store.appends.lock(), vec![4, 6]);
        assert_eq!(*store.main.lock(), b"one\ntwo\nthree\n");
    }

    #[test]
    fn a_rewritten_transcript_or_a_new_epoch_is_saved_whole() {
        let store = Arc::new(Counting::default());
        let p = placed(store.clone());
        p.store("s", 1, &main("one\ntwo\n")).unwrap();
        // The CLI rewrote it: same length or longer, another beginning.
        p.store("s", 1, &main("ONE\ntwo\nthree\n")).unwrap();
        // Shorter (a new conversation under the id).
        p.store("s", 1, &main("x\n")).unwrap();
        // Another epoch: this engine took the session anew.
        p.store("s", 2, &main("x\ny\n")).unwrap();
        assert_eq!(*store.saves.lock(), 4);
        assert!(store.appends.lock().is_empty());
        // A release forgets what was saved.
        p.store("s", 2, &main("x\ny\nz\n")).unwrap();
        assert_eq!(store.appends.lock().len(), 1);
        p.release("s").unwrap();
        p.store("s", 2, &main("x\ny\nz\nw\n")).unwrap();
        assert_eq!(*store.saves.lock(), 5);
    }
}
