//! [`DirStore`]: leases and transcripts in one directory that every host
//! can reach (a local directory for hosts on one machine, or a shared file
//! system with working `flock`).
//!
//! Layout, with each session's id hex-encoded into one safe file name:
//!
//! ```text
//! <root>/leases/<hex>        "<epoch> <expires_at_ms> <owner>" (or "<epoch>" when free)
//! <root>/sessions/<hex>/     epoch, transcript.jsonl, subagents/
//! ```
//!
//! Every read-modify-write of a session takes an exclusive `flock` on a
//! lock file of its own, so the epoch check and the write are one step
//! across threads and processes.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::hex_id;
use super::lease::{check_owner, ms, now_ms, Lease, LeaseStore};
use super::transcript::{
    check_names, fenced_write, plain_name, read_files, write_atomically, Transcript,
    TranscriptStore,
};
use crate::{Error, Result};

/// Leases and transcripts in a directory; see the module docs. Clones share
/// the directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("{}: {e}", path.display()))
}

/// Runs `f` holding an exclusive lock on `lock` (created when missing).
fn with_lock<T>(lock: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if let Some(dir) = lock.parent() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(io(lock))?;
    crate::proc::lock_exclusive(&file).map_err(io(lock))?;
    // Released when `file` is closed, after `f`.
    f()
}

/// A lease file: `(epoch, held: (expires_at_ms, owner))`.
type LeaseRecord = (u64, Option<(u64, String)>);

impl DirStore {
    /// A store in `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<DirStore> {
        let root = root.into();
        for d in ["leases", "sessions"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        Ok(DirStore { root })
    }

    fn lease_file(&self, session: &str) -> PathBuf {
        self.root.join("leases").join(hex_id(session))
    }

    fn session_dir(&self, session: &str) -> PathBuf {
        self.root.join("sessions").join(hex_id(session))
    }

    fn read_lease(&self, session: &str) -> LeaseRecord {
        let text = fs::read_to_string(self.lease_file(session)).unwrap_or_default();
        let mut parts = text.trim().splitn(3, ' ');
        let epoch = parts.next().and_then(|e| e.parse().ok()).unwrap_or(0);
        let held = match (parts.next().and_then(|t| t.parse().ok()), parts.next()) {
            (Some(t), Some(owner)) if !owner.is_empty() => Some((t, owner.to_owned())),
            _ => None,
        };
        (epoch, held)
    }

    fn write_lease(&self, session: &str, epoch: u64, held: Option<(u64, &str)>) -> Result<()> {
        let text = match held {
            Some((until, owner)) => format!("{epoch} {until} {owner}\n"),
            None => format!("{epoch}\n"),
        };
        write_atomically(&self.lease_file(session), text.as_bytes())
    }

    fn lease_lock(&self, session: &str) -> PathBuf {
        self.root
            .join("leases")
            .join(format!(".{}.lock", hex_id(session)))
    }

    /// The transcript's stored epoch (0: none), read under its lock.
    fn stored_epoch(dir: &Path) -> u64 {
        fs::read_to_string(dir.join("epoch"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl LeaseStore for DirStore {
    fn acquire(&self, session: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        check_owner(owner)?;
        with_lock(&self.lease_lock(session), || {
            let now = now_ms();
            let until = now.saturating_add(ms(ttl));
            let (epoch, held) = self.read_lease(session);
            match held {
                Some((expires, holder)) if expires > now && holder != owner => {
                    Err(Error::OwnedElsewhere {
                        session: session.to_owned(),
                        owner: holder,
                    })
                }
                Some((expires, _)) if expires > now => {
                    self.write_lease(session, epoch, Some((until, owner)))?;
                    Ok(Lease::new(session, owner, epoch, until))
                }
                _ => {
                    self.write_lease(session, epoch + 1, Some((until, owner)))?;
                    Ok(Lease::new(session, owner, epoch + 1, until))
                }
            }
        })
    }

    fn renew(&self, l: &Lease, ttl: Duration) -> Result<Lease> {
        with_lock(&self.lease_lock(&l.session), || {
            let until = now_ms().saturating_add(ms(ttl));
            match self.read_lease(&l.session) {
                (epoch, Some((_, owner))) if epoch == l.epoch && owner == l.owner => {
                    self.write_lease(&l.session, epoch, Some((until, &owner)))?;
                    Ok(Lease::new(&l.session, &owner, epoch, until))
                }
                _ => Err(l.fenced()),
            }
        })
    }

    fn release(&self, l: &Lease) -> Result<()> {
        with_lock(&self.lease_lock(&l.session), || {
            let (epoch, _) = self.read_lease(&l.session);
            if epoch == l.epoch {
                self.write_lease(&l.session, epoch, None)?;
            }
            Ok(())
        })
    }

    fn holder(&self, session: &str) -> Result<Option<Lease>> {
        with_lock(&self.lease_lock(session), || {
            Ok(match self.read_lease(session) {
                (epoch, Some((expires, owner))) if expires > now_ms() => {
                    Some(Lease::new(session, &owner, epoch, expires))
                }
                _ => None,
            })
        })
    }
}

impl TranscriptStore for DirStore {
    fn save(&self, session: &str, epoch: u64, transcript: &Transcript) -> Result<()> {
        check_names(&transcript.subagents)?;
        let dir = self.session_dir(session);
        with_lock(&dir.join("lock"), || {
            let stored = Self::stored_epoch(&dir);
            if stored > epoch {
                return Err(fenced_write(session, epoch, stored));
            }
            write_atomically(&dir.join("transcript.jsonl"), &transcript.main)?;
            let subs = dir.join("subagents");
            let _ = fs::remove_dir_all(&subs);
            for (name, bytes) in &transcript.subagents {
                write_atomically(&subs.join(plain_name(name)?), bytes)?;
            }
            // Last: a save cut short keeps the old epoch, so it is retried
            // rather than trusted.
            write_atomically(&dir.join("epoch"), epoch.to_string().as_bytes())
        })
    }

    fn load(&self, session: &str) -> Result<Option<(u64, Transcript)>> {
        let dir = self.session_dir(session);
        if !dir.exists() {
            return Ok(None);
        }
        with_lock(&dir.join("lock"), || {
            let main = match fs::read(dir.join("transcript.jsonl")) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(&dir)(e)),
            };
            let subagents = read_files(&dir.join("subagents"))?;
            Ok(Some((
                Self::stored_epoch(&dir),
                Transcript { main, subagents },
            )))
        })
    }

    fn delete(&self, session: &str, epoch: u64) -> Result<()> {
        let dir = self.session_dir(session);
        // Also when nothing was saved: the epoch is kept, so an older
        // owner's late save cannot bring a transcript back.
        with_lock(&dir.join("lock"), || {
            let stored = Self::stored_epoch(&dir);
            if stored > epoch {
                return Err(fenced_write(session, epoch, stored));
            }
            let _ = fs::remove_file(dir.join("transcript.jsonl"));
            let _ = fs::remove_dir_all(dir.join("subagents"));
            // The epoch stays: a late save of an older owner is still fenced.
            write_atomically(&dir.join("epoch"), epoch.to_string().as_bytes())
        })
    }
}
