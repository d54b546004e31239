//! Placement across hosts: what an existing distributed engine (Ray Serve;
//! Kubernetes behind a consistent-hash balancer) needs from hotplex to
//! spread sessions over many hosts. hotplex builds no cluster: the router
//! sends every turn of a session to the host that owns it, and these parts
//! keep that ownership safe and the conversation movable.
//!
//! * [`LeaseStore`]: one owner per session, with a TTL renewed while the
//!   owner's process lives, and an epoch that rises with every acquire (the
//!   fencing token). [`MemoryLeaseStore`] in the process.
//! * [`TranscriptStore`]: the session's transcript kept under the session's
//!   id, outside the host, saved after each turn with the owner's epoch; a
//!   save from an owner that lost the session is [`crate::Error::Fenced`].
//! * [`DirStore`]: both in a directory every host reaches.
//! * [`RedisStore`]: both in a Redis server every host reaches, for hosts
//!   without a shared file system; atomic by Lua scripts, timed by the
//!   server's clock.
//! * [`read_local`] / [`write_local`]: the CLI's own transcript files in a
//!   configuration directory, under the key the local workdir needs.

mod dir;
mod lease;
mod redis;
mod transcript;

pub(crate) use self::redis::is_redis_url;
pub use self::redis::RedisStore;
pub use dir::DirStore;
pub(crate) use lease::check_owner;
pub use lease::{Lease, LeaseStore, MemoryLeaseStore};
pub(crate) use transcript::local_paths;
pub use transcript::{read_local, write_local, Transcript, TranscriptStore};

/// `session` hex-encoded: a store's name for it (a file name, a Redis key
/// part) that holds no `/`, `{` or `}` whatever the id holds.
pub(crate) fn hex_id(session: &str) -> String {
    session.bytes().map(|b| format!("{b:02x}")).collect()
}
