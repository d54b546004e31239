//! Leases: one owner per session across hosts, with fencing.
//!
//! A host that wants to run a session's agent *acquires* the session's
//! lease: it gets it when nobody holds it or the holder's lease expired
//! (its host died, froze or lost its network), and every acquire raises the
//! session's **epoch**. The owner renews the lease while its process lives
//! and releases it when it lets the session go. The epoch is the fencing
//! token: whatever the owner writes elsewhere (its transcript, see
//! [`super::TranscriptStore`]) carries its lease's epoch, and a store that
//! has seen a newer epoch rejects the write as [`Error::Fenced`]. So a host
//! that froze past its lease's TTL and wakes up cannot overwrite the
//! conversation the new owner continued; renewing tells it that it lost
//! the session ([`Error::Fenced`]), and it must kill its process at once.
//!
//! [`MemoryLeaseStore`] keeps leases in the process (tests, one host with
//! several engines); the shared implementations ([`super::DirStore`],
//! [`super::RedisStore`]) follow the same contract, which
//! `hotplex-core/tests/store_contract.rs` spells out and runs against
//! each of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::{Error, Result};

/// A held lease: who owns the session, with which epoch, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The session's id (the host's, as given to the engine).
    pub session: String,
    /// The owner's id (a host or replica name; unique among the owners).
    pub owner: String,
    /// The fencing token: higher for every acquire of this session.
    pub epoch: u64,
    /// When the lease lapses unless renewed, in milliseconds since the Unix
    /// epoch.
    pub expires_at_ms: u64,
}

impl Lease {
    pub(crate) fn new(session: &str, owner: &str, epoch: u64, expires_at_ms: u64) -> Lease {
        Lease {
            session: session.to_owned(),
            owner: owner.to_owned(),
            epoch,
            expires_at_ms,
        }
    }

    /// The error of an owner whose lease was taken over or released.
    pub(crate) fn fenced(&self) -> Error {
        Error::Fenced(format!(
            "session {:?}: the lease of epoch {} held by {:?} was taken over or released",
            self.session, self.epoch, self.owner
        ))
    }
}

/// Where leases live. Every method is atomic with respect to the others
/// for the same session; implementations must be safe to share between
/// threads and hosts.
pub trait LeaseStore: Send + Sync {
    /// Takes the session's lease for `owner` for `ttl`. Succeeds when nobody
    /// holds it, when its lease expired, or when `owner` holds it already
    /// (then the same epoch, renewed). Fails with [`Error::OwnedElsewhere`]
    /// naming the holder otherwise.
    fn acquire(&self, session: &str, owner: &str, ttl: Duration) -> Result<Lease>;

    /// Extends `lease` by `ttl`. Fails with [`Error::Fenced`] when the
    /// session was acquired by anyone since (a newer epoch) or the lease
    /// was released; the caller has lost the session.
    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease>;

    /// Gives the session up (no-op when `lease` is no longer the current
    /// one: a fenced owner cannot release its successor's lease).
    fn release(&self, lease: &Lease) -> Result<()>;

    /// The current, unexpired lease of the session, if any.
    fn holder(&self, session: &str) -> Result<Option<Lease>>;
}

/// Refuses an owner name that is empty or holds whitespace, as the
/// engine's `placement.owner` does: a `DirStore` lease file keeps the owner
/// last on its line, after a space, and reads it back trimmed. Every
/// store's `acquire` checks it before touching the lease.
pub(crate) fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.contains(char::is_whitespace) {
        return Err(Error::InvalidConfig(format!(
            "placement.owner {owner:?}: must be non-empty, without whitespace"
        )));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One session's record: the last epoch handed out stays after a release,
/// so epochs never repeat.
#[derive(Debug, Clone, Default)]
struct Slot {
    epoch: u64,
    /// `(owner, expires_at_ms)` while held.
    held: Option<(String, u64)>,
}

/// A lease store in this process's memory. Clones share the same leases.
#[derive(Clone)]
pub struct MemoryLeaseStore {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for MemoryLeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLeaseStore")
            .field("sessions", &self.slots.lock().len())
            .finish()
    }
}

impl Default for MemoryLeaseStore {
    fn default() -> Self {
        MemoryLeaseStore::new()
    }
}

impl MemoryLeaseStore {
    /// An empty store on the system clock.
    pub fn new() -> MemoryLeaseStore {
        MemoryLeaseStore::with_clock(Arc::new(now_ms))
    }

    /// An empty store whose time (milliseconds since the Unix epoch) comes
    /// from `clock`: tests move time without sleeping.
    pub fn with_clock(clock: Arc<dyn Fn() -> u64 + Send + Sync>) -> MemoryLeaseStore {
        MemoryLeaseStore {
            slots: Arc::default(),
            clock,
        }
    }
}

impl LeaseStore for MemoryLeaseStore {
    fn acquire(&self, session: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        check_owner(owner)?;
        let now = (self.clock)();
        let until = now.saturating_add(ms(ttl));
        let mut slots = self.slots.lock();
        let slot = slots.entry(session.to_owned()).or_default();
        match &slot.held {
            Some((holder, expires)) if *expires > now && holder == owner => {
                slot.held = Some((owner.to_owned(), until));
                Ok(Lease::new(session, owner, slot.epoch, until))
            }
            Some((holder, expires)) if *expires > now => Err(Error::OwnedElsewhere {
                session: session.to_owned(),
                owner: holder.clone(),
            }),
            _ => {
                slot.epoch += 1;
                slot.held = Some((owner.to_owned(), until));
                Ok(Lease::new(session, owner, slot.epoch, until))
            }
        }
    }

    fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        let now = (self.clock)();
        let until = now.saturating_add(ms(ttl));
        let mut slots = self.slots.lock();
        let current = slots.get_mut(&lease.session).filter(|s| {
            s.epoch == lease.epoch && matches!(&s.held, Some((o, _)) if *o == lease.owner)
        });
        // An expired lease that nobody took over yet may still be renewed:
        // the epoch shows nobody else wrote meanwhile.
        match current {
            Some(slot) => {
                slot.held = Some((lease.owner.clone(), until));
                Ok(Lease::new(&lease.session, &lease.owner, lease.epoch, until))
            }
            None => Err(lease.fenced()),
        }
    }

    fn release(&self, lease: &Lease) -> Result<()> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get_mut(&lease.session) {
            if slot.epoch == lease.epoch {
                slot.held = None;
            }
        }
        Ok(())
    }

    fn holder(&self, session: &str) -> Result<Option<Lease>> {
        let now = (self.clock)();
        let slots = self.slots.lock();
        Ok(slots.get(session).and_then(|s| match &s.held {
            Some((owner, expires)) if *expires > now => {
                Some(Lease::new(session, owner, s.epoch, *expires))
            }
            _ => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    // The lease contract itself is tests/store_contract.rs's, run against
    // every store on the real clock; this checks only the clock a
    // `MemoryLeaseStore` can be given.
    #[test]
    fn a_store_on_its_own_clock_lets_a_lease_lapse_when_that_clock_passes_it() {
        let t = Arc::new(AtomicU64::new(1_000_000));
        let c = t.clone();
        let s = MemoryLeaseStore::with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
        let a = s.acquire("s1", "host-a", Duration::from_secs(10)).unwrap();
        assert_eq!(a.expires_at_ms, 1_010_000);
        t.store(1_009_999, Ordering::SeqCst);
        assert_eq!(s.holder("s1").unwrap(), Some(a.clone()));
        t.store(1_010_000, Ordering::SeqCst);
        assert_eq!(s.holder("s1").unwrap(), None, "lapsed at its expiry");
        let b = s.acquire("s1", "host-b", Duration::from_secs(10)).unwrap();
        assert_eq!((b.epoch, b.expires_at_ms), (2, 1_020_000));
    }
}
