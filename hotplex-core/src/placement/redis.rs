//! [`RedisStore`]: leases and transcripts in a Redis server every host
//! reaches, for hosts that share no file system.
//!
//! Layout, with each session's id hex-encoded inside a Redis Cluster hash
//! tag (so a `{` or `}` in the id cannot move the tag, and a session's keys
//! share one slot):
//!
//! ```text
//! hotplex:{<hex>}:lease        hash: epoch, owner, until (owner and until only while held)
//! hotplex:{<hex>}:transcript   hash: epoch, sub:<file name> per subagent file
//! hotplex:{<hex>}:main         string: the main transcript (APPENDed to per turn)
//! ```
//!
//! Every check-and-write is one Lua script, so the epoch check and the
//! write are one step on the server, whichever host and thread sends them.
//! Expiry is reckoned on the **server's** clock (`TIME`), so hosts whose
//! clocks disagree still agree on when a lease lapsed; `until` and
//! [`Lease::expires_at_ms`] are server time. The hashes are never expired
//! by Redis: the lease's epoch must outlive its holder so epochs never
//! repeat, and a transcript is kept until deleted (its epoch even then).
//!
//! Needs Redis 5 or later (scripts that read `TIME` before writing rely on
//! effects replication, the default since 5). The client speaks to one
//! server, or a proxy in front of several, without TLS; it is no Redis
//! Cluster client (a cluster node answers `MOVED` for another node's
//! slots), though the hash tags keep the keys ready for one.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use redis::{Client, Connection, RedisResult, Script, ScriptInvocation};

use super::hex_id;
use super::lease::{check_owner, ms, Lease, LeaseStore};
use super::transcript::{check_names, fenced_write, Transcript, TranscriptStore};
use crate::{Error, Result};

/// How long connecting, sending or awaiting a reply may take: a hung
/// Redis must fail a store call, not block the engine's thread forever.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Connections kept open between calls; more are opened under load and
/// closed after use.
const IDLE: usize = 8;

/// The longest TTL sent to the server (about 35,000 years): Lua numbers are
/// doubles, exact for integers up to 2^53, and the server's time plus this
/// stays below that.
const MAX_TTL_MS: u64 = 1 << 50;

/// The server's time in milliseconds, shared by the scripts that need it.
const NOW: &str = r"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// KEYS[1] lease; ARGV owner, ttl ms. Returns {1, epoch, until, owner}
/// when taken (or renewed by its holder), {0, epoch, until, holder} when
/// someone else holds it.
const ACQUIRE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'epoch', 'owner', 'until')
local epoch = tonumber(h[1]) or 0
local now = now_ms()
if h[2] and h[3] and tonumber(h[3]) > now then
  if h[2] ~= ARGV[1] then
    return {0, epoch, tonumber(h[3]), h[2]}
  end
else
  epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
end
local expires = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', string.format('%.0f', expires))
return {1, epoch, expires, ARGV[1]}
";

/// KEYS[1] lease; ARGV epoch, owner, ttl ms. Returns the new expiry, or nil
/// when the lease is no longer this one (taken over or released). An
/// expired lease nobody took may still be renewed: the epoch shows nobody
/// else wrote meanwhile.
const RENEW: &str = r"
local h = redis.call('HMGET', KEYS[1], 'epoch', 'owner')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] then
  return false
end
local expires = now_ms() + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'until', string.format('%.0f', expires))
return expires
";

/// KEYS[1] lease; ARGV epoch. Frees the lease when it is still this epoch's
/// (a fenced owner cannot free its successor's); the epoch stays.
const RELEASE: &str = r"
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'owner', 'until')
end
return 0
";

/// KEYS[1] lease. Returns {epoch, until, owner} while held and unexpired,
/// nil otherwise. A script only for the server's clock.
const HOLDER: &str = r"
local h = redis.call('HMGET', KEYS[1], 'epoch', 'owner', 'until')
if not (h[2] and h[3]) or tonumber(h[3]) <= now_ms() then
  return false
end
return {tonumber(h[1]) or 0, tonumber(h[3]), h[2]}
";

/// KEYS[1] transcript, KEYS[2] main; ARGV epoch, then main and name,
/// bytes per subagent file (a save), or nothing more (a delete: the
/// transcript goes, the epoch stays, so a late save of an older owner is
/// still fenced). Returns -1 when done, the stored epoch when it is higher
/// (fenced: nothing changed).
const SAVE: &str = r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
if stored > tonumber(ARGV[1]) then
  return stored
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
if ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[2])
end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'sub:' .. ARGV[i], ARGV[i + 1])
end
return -1
";

/// KEYS[1] transcript, KEYS[2] main; ARGV epoch, base length, tail, then
/// name, bytes per subagent file. Returns -1 when appended, -2 when the
/// main transcript is missing or of another length (nothing changed: the
/// caller saves it whole), the stored epoch when it is higher (fenced).
const APPEND: &str = r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch')) or 0
if stored > tonumber(ARGV[1]) then
  return stored
end
if redis.call('EXISTS', KEYS[2]) == 0 or redis.call('STRLEN', KEYS[2]) ~= tonumber(ARGV[2]) then
  return -2
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
redis.call('APPEND', KEYS[2], ARGV[3])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], 'sub:' .. ARGV[i], ARGV[i + 1])
end
return -1
";

/// The scripts, hashed once: calls send `EVALSHA` and load the script only
/// when the server does not know it yet (after a restart, say).
struct Scripts {
    acquire: Script,
    renew: Script,
    release: Script,
    holder: Script,
    save: Script,
    append: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let timed = |body: &str| Script::new(&format!("{NOW}{body}"));
        Scripts {
            acquire: timed(ACQUIRE),
            renew: timed(RENEW),
            release: Script::new(RELEASE),
            holder: timed(HOLDER),
            save: Script::new(SAVE),
            append: Script::new(APPEND),
        }
    }
}

/// What the clones of a [`RedisStore`] share.
struct Inner {
    client: Client,
    /// The URL with its password hidden, for messages.
    shown: String,
    /// Open connections between calls: store calls come from several
    /// threads at once, and one connection serves one call at a time.
    idle: Mutex<Vec<Connection>>,
    scripts: Scripts,
}

/// Leases and transcripts in Redis; see the module docs. Clones share the
/// connections.
#[derive(Clone)]
pub struct RedisStore {
    inner: std::sync::Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.shown)
            .field("idle", &self.inner.idle.lock().len())
            .finish()
    }
}

/// Whether `store` names a Redis server rather than a directory: a URL
/// with one of the schemes [`RedisStore::new`] takes (or refuses with a
/// reason, as `rediss://`).
pub(crate) fn is_redis_url(store: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|s| store.starts_with(s))
}

/// `url` fit for a message: its password (in the user part, or a `pass` or
/// `password` query parameter of a socket URL) replaced by `***`.
fn redact(url: &str) -> String {
    let Some(mut u) = redis::parse_redis_url(url) else {
        // Unparsed, the password cannot be told apart: show the scheme only.
        let scheme = url.split("://").next().unwrap_or_default();
        return format!("{scheme}://… (not a valid URL)");
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "pass" || k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

fn lease_key(session: &str) -> String {
    format!("hotplex:{{{}}}:lease", hex_id(session))
}

fn transcript_key(session: &str) -> String {
    format!("hotplex:{{{}}}:transcript", hex_id(session))
}

fn main_key(session: &str) -> String {
    format!("hotplex:{{{}}}:main", hex_id(session))
}

fn ttl_ms(ttl: Duration) -> u64 {
    ms(ttl).min(MAX_TTL_MS)
}

impl RedisStore {
    /// A store on the Redis server at `url`: `redis://[[user]:password@]host[:port][/db]`,
    /// or a Unix socket, `redis+unix:///path/to.sock[?db=N&pass=P]` (or
    /// `unix://`). Connects once, so a wrong URL, address or password is
    /// [`Error::InvalidConfig`] here rather than at the first session.
    /// `rediss://` (TLS) is refused: TLS is not built in.
    pub fn new(url: &str) -> Result<RedisStore> {
        let shown = redact(url);
        if url.starts_with("rediss://") {
            return Err(Error::InvalidConfig(format!(
                "redis store {shown}: TLS (rediss://) is not built into hotplex; \
                 use redis:// on a trusted network or a TLS-terminating proxy"
            )));
        }
        let client = Client::open(url)
            .map_err(|e| Error::InvalidConfig(format!("redis store {shown}: {e}")))?;
        let store = RedisStore {
            inner: std::sync::Arc::new(Inner {
                client,
                shown,
                idle: Mutex::default(),
                scripts: Scripts::new(),
            }),
        };
        let mut con = store.connect().map_err(|e| {
            Error::InvalidConfig(format!(
                "redis store {}: cannot connect: {e}",
                store.inner.shown
            ))
        })?;
        redis::cmd("PING")
            .query::<()>(&mut con)
            .map_err(|e| Error::InvalidConfig(format!("redis store {}: {e}", store.inner.shown)))?;
        store.inner.idle.lock().push(con);
        Ok(store)
    }

    /// A new connection with the timeouts set (the client clears them
    /// once connected).
    fn connect(&self) -> RedisResult<Connection> {
        let con = self.inner.client.get_connection_with_timeout(TIMEOUT)?;
        con.set_read_timeout(Some(TIMEOUT))?;
        con.set_write_timeout(Some(TIMEOUT))?;
        Ok(con)
    }

    /// Runs `call` on an idle connection (or a new one), then keeps the
    /// connection for the next call. Every call here may be sent twice (an
    /// append that did land fails its length check the second time, and
    /// the caller saves whole), so a kept connection that turns out closed
    /// (the server restarted, or closed it idle) is replaced and the call
    /// sent once more.
    fn run<T>(&self, call: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let kept = self.inner.idle.lock().pop();
        let reused = kept.is_some();
        let mut con = match kept {
            Some(c) => c,
            None => self.connect().map_err(|e| self.io(e))?,
        };
        let mut result = call(&mut con);
        if reused && matches!(&result, Err(e) if e.is_io_error() && !e.is_timeout()) {
            con = self.connect().map_err(|e| self.io(e))?;
            result = call(&mut con);
        }
        match result {
            Ok(v) => {
                let mut idle = self.inner.idle.lock();
                if idle.len() < IDLE {
                    idle.push(con);
                }
                Ok(v)
            }
            // Dropped: after a timeout or a broken reply the connection may
            // still deliver the late answer to the next call.
            Err(e) => Err(self.io(e)),
        }
    }

    fn io(&self, e: redis::RedisError) -> Error {
        Error::Io(format!("redis store {}: {e}", self.inner.shown))
    }
}

impl LeaseStore for RedisStore {
    fn acquire(&self, session: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        check_owner(owner)?;
        let key = lease_key(session);
        let (taken, epoch, until, holder): (i64, u64, u64, String) = self.run(|c| {
            self.inner
                .scripts
                .acquire
                .key(&key)
                .arg(owner)
                .arg(ttl_ms(ttl))
                .invoke(c)
        })?;
        if taken == 1 {
            Ok(Lease::new(session, owner, epoch, until))
        } else {
            Err(Error::OwnedElsewhere {
                session: session.to_owned(),
                owner: holder,
            })
        }
    }

    fn renew(&self, l: &Lease, ttl: Duration) -> Result<Lease> {
        let key = lease_key(&l.session);
        let until: Option<u64> = self.run(|c| {
            self.inner
                .scripts
                .renew
                .key(&key)
                .arg(l.epoch)
                .arg(&l.owner)
                .arg(ttl_ms(ttl))
                .invoke(c)
        })?;
        match until {
            Some(until) => Ok(Lease::new(&l.session, &l.owner, l.epoch, until)),
            None => Err(l.fenced()),
        }
    }

    fn release(&self, l: &Lease) -> Result<()> {
        let key = lease_key(&l.session);
        self.run(|c| {
            self.inner
                .scripts
                .release
                .key(&key)
                .arg(l.epoch)
                .invoke::<()>(c)
        })
    }

    fn holder(&self, session: &str) -> Result<Option<Lease>> {
        let key = lease_key(session);
        let held: Option<(u64, u64, String)> =
            self.run(|c| self.inner.scripts.holder.key(&key).invoke(c))?;
        Ok(held.map(|(epoch, until, owner)| Lease::new(session, &owner, epoch, until)))
    }
}

impl TranscriptStore for RedisStore {
    fn save(&self, session: &str, epoch: u64, transcript: &Transcript) -> Result<()> {
        let main = |call: &mut ScriptInvocation<'_>| {
            call.arg(&transcript.main);
        };
        let scripts = &self.inner.scripts;
        self.write(&scripts.save, session, epoch, main, &transcript.subagents)
            .map(drop)
    }

    fn load(&self, session: &str) -> Result<Option<(u64, Transcript)>> {
        // Both keys in one MULTI/EXEC: a save or an append between the two
        // reads cannot mix two versions.
        let (key, main_key) = (transcript_key(session), main_key(session));
        let (fields, main): (BTreeMap<String, Vec<u8>>, Option<Vec<u8>>) = self.run(|c| {
            redis::pipe()
                .atomic()
                .cmd("HGETALL")
                .arg(&key)
                .cmd("GET")
                .arg(&main_key)
                .query(c)
        })?;
        let Some(main) = main else {
            return Ok(None);
        };
        let epoch = fields
            .get("epoch")
            .and_then(|e| std::str::from_utf8(e).ok()?.parse().ok())
            .unwrap_or(0);
        // In name order, as a directory listing's sort gives them.
        let subagents = fields
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("sub:")?.to_owned(), v)))
            .collect();
        Ok(Some((epoch, Transcript { main, subagents })))
    }

    fn append(
        &self,
        session: &str,
        epoch: u64,
        base_len: u64,
        tail: &[u8],
        subagents: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        let tail = |call: &mut ScriptInvocation<'_>| {
            call.arg(base_len).arg(tail);
        };
        self.write(&self.inner.scripts.append, session, epoch, tail, subagents)
    }

    fn delete(&self, session: &str, epoch: u64) -> Result<()> {
        // The save script with no transcript: the keys go, the epoch stays.
        self.write(&self.inner.scripts.save, session, epoch, |_| {}, &[])
            .map(drop)
    }
}

impl RedisStore {
    /// Runs a transcript write (`SAVE` or `APPEND`) on `session`'s keys:
    /// the epoch, what `args` adds, then the subagent files. `Ok(true)`
    /// when written, `Ok(false)` when the script declined (an append whose
    /// base length does not match), [`Error::Fenced`] when a newer epoch
    /// holds the transcript.
    fn write(
        &self,
        script: &Script,
        session: &str,
        epoch: u64,
        args: impl Fn(&mut ScriptInvocation<'_>),
        subagents: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        check_names(subagents)?;
        let (key, main) = (transcript_key(session), main_key(session));
        let answer: i64 = self.run(|c| {
            let mut call = script.key(&key);
            call.key(&main).arg(epoch);
            args(&mut call);
            for (name, bytes) in subagents {
                call.arg(name).arg(bytes);
            }
            call.invoke(c)
        })?;
        match answer {
            -1 => Ok(true),
            -2 => Ok(false),
            stored => Err(fenced_write(
                session,
                epoch,
                u64::try_from(stored).unwrap_or(0),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            redact("redis://:s3cret@db.example:6380/2"),
            "redis://:***@db.example:6380/2"
        );
        assert_eq!(
            redact("redis://app:s3cret@db.example"),
            "redis://app:***@db.example"
        );
        let unix = redact("redis+unix:///run/redis.sock?db=1&pass=s3cret");
        assert!(!unix.contains("s3cret") && unix.contains("db=1"), "{unix}");
        let bad = redact("redis://:s3cret@[bad");
        assert!(!bad.contains("s3cret"), "{bad}");
    }

    #[test]
    fn braces_in_a_session_id_cannot_move_the_hash_tag() {
        assert_eq!(lease_key("a}{b"), "hotplex:{617d7b62}:lease");
        assert_eq!(transcript_key("a}{b"), "hotplex:{617d7b62}:transcript");
    }

    #[test]
    fn only_redis_urls_go_to_redis() {
        assert!(is_redis_url("redis://127.0.0.1:6379"));
        assert!(is_redis_url("redis+unix:///run/redis.sock"));
        assert!(is_redis_url("unix:///run/redis.sock"));
        assert!(is_redis_url("rediss://h"));
        assert!(!is_redis_url("/srv/hotplex-store"));
        assert!(!is_redis_url("redis-store"));
    }

    #[test]
    fn tls_and_bad_urls_are_refused_before_connecting() {
        match RedisStore::new("rediss://:pw@127.0.0.1:1") {
            Err(Error::InvalidConfig(m)) => assert!(m.contains("TLS") && !m.contains("pw@")),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
        assert!(matches!(
            RedisStore::new("redis://[bad"),
            Err(Error::InvalidConfig(_))
        ));
    }
}
