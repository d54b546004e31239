//! Resume markers: which provider sessions the agent has confirmed, and in
//! which working directory.
//!
//! A marker says "the CLI has a transcript for this provider session id, made
//! in this directory", so the next cold start may `--resume` it. Unlike the
//! seed (an empty file created before exec, never removed on failure), a
//! marker is written only after the CLI confirmed the session (its
//! `system/init` or first `result`), records the workdir (the CLI keeps
//! transcripts per project directory, so resuming elsewhere would fail), and
//! is deleted when a resume fails.
//!
//! An ACP session's marker also holds the agent's own session id (ACP
//! agents name their sessions themselves, in `session/new`), which
//! `session/load` needs to take the conversation up again.
//!
//! Without a state directory markers live in memory: resume then works
//! across restarts of a session inside one engine, not across host restarts.
//!
//! A session's provider id is derived from its id (as the seed does) until
//! the host resets or forks it: then a *binding* records the id it uses
//! instead (`<derived id>.bind.json`), and for a fork not started yet the
//! conversation it copies.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde_json::json;

/// The provider session id of `session_id`: UUIDv5 in the URL namespace of
/// `"<namespace>:session:<session_id>"`, exactly as the seed derives it, so
/// a conversation started by the seed resumes here.
pub fn provider_session_id(namespace: &str, session_id: &str) -> String {
    // RFC 4122 namespace for URLs (6ba7b811-9dad-11d1-80b4-00c04fd430c8).
    const NAMESPACE_URL: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = sha1_smol::Sha1::new();
    h.update(&NAMESPACE_URL);
    h.update(format!("{namespace}:session:{session_id}").as_bytes());
    uuid_format(5, h.digest().bytes())
}

/// A UUID of `version` (RFC 4122 variant) made from the SHA-1 of `name`:
/// unique names give unique ids, in the format the CLI accepts.
pub(crate) fn uuid_from_name(version: u8, name: &[u8]) -> String {
    uuid_format(version, sha1_smol::Sha1::from(name).digest().bytes())
}

fn uuid_format(version: u8, d: [u8; 20]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A session's provider id when it is not the derived one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binding {
    /// The provider session id the session uses.
    pub psid: String,
    /// The conversation a fork copies at its first start (until then).
    pub fork_from: Option<String>,
    /// The message of `fork_from` the copy ends at (`--resume-session-at`);
    /// `None`: the whole conversation.
    pub fork_at: Option<String>,
}

/// Where markers are kept.
#[derive(Debug)]
pub(crate) enum MarkerStore {
    /// In memory (no state directory): markers (workdir and ACP session
    /// id), and bindings by derived id.
    Memory(
        Mutex<HashMap<String, (PathBuf, Option<String>)>>,
        Mutex<HashMap<String, Binding>>,
    ),
    /// One JSON file per provider session id in this directory.
    Dir(PathBuf),
}

impl MarkerStore {
    pub(crate) fn new(state_dir: Option<&Path>) -> std::io::Result<MarkerStore> {
        match state_dir {
            None => Ok(MarkerStore::Memory(
                Mutex::new(HashMap::new()),
                Mutex::new(HashMap::new()),
            )),
            Some(d) => {
                let dir = d.join("sessions");
                std::fs::create_dir_all(&dir)?;
                Ok(MarkerStore::Dir(dir))
            }
        }
    }

    fn file(dir: &Path, psid: &str) -> PathBuf {
        // psid is always a UUID we derived; no path tricks possible.
        dir.join(format!("{psid}.json"))
    }

    /// The workdir recorded for `psid`, if the session was confirmed.
    pub(crate) fn get(&self, psid: &str) -> Option<PathBuf> {
        match self {
            MarkerStore::Memory(m, _) => m.lock().get(psid).map(|(w, _)| w.clone()),
            MarkerStore::Dir(dir) => {
                let v = Self::read(dir, psid)?;
                v.get("workdir")?.as_str().map(PathBuf::from)
            }
        }
    }

    /// The ACP agent's session id recorded for `psid`, with its workdir
    /// (`None` for a Claude Code conversation, or none confirmed).
    pub(crate) fn acp_session(&self, psid: &str) -> Option<(PathBuf, String)> {
        match self {
            MarkerStore::Memory(m, _) => {
                let m = m.lock();
                let (w, acp) = m.get(psid)?;
                Some((w.clone(), acp.clone()?))
            }
            MarkerStore::Dir(dir) => {
                let v = Self::read(dir, psid)?;
                let w = v.get("workdir")?.as_str().map(PathBuf::from)?;
                let acp = v.get("acp_session_id")?.as_str()?.to_owned();
                Some((w, acp))
            }
        }
    }

    fn read(dir: &Path, psid: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(Self::file(dir, psid)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Records that the CLI confirmed `psid` in `workdir`. Written to a
    /// temporary file and renamed, so a crash never leaves half a marker.
    pub(crate) fn put(&self, psid: &str, session_id: &str, workdir: &Path) -> std::io::Result<()> {
        self.put_with(psid, session_id, workdir, None)
    }

    /// Like [`put`](Self::put), for an ACP agent that named the
    /// conversation `acp_session_id` (`None`: a Claude Code conversation).
    pub(crate) fn put_with(
        &self,
        psid: &str,
        session_id: &str,
        workdir: &Path,
        acp_session_id: Option<&str>,
    ) -> std::io::Result<()> {
        match self {
            MarkerStore::Memory(m, _) => {
                let acp = acp_session_id.map(str::to_owned);
                m.lock().insert(psid.to_owned(), (workdir.to_owned(), acp));
                Ok(())
            }
            MarkerStore::Dir(dir) => {
                let mut body = json!({
                    "session_id": session_id,
                    "provider_session_id": psid,
                    "workdir": workdir.to_string_lossy(),
                });
                if let Some(acp) = acp_session_id {
                    body["acp_session_id"] = json!(acp);
                }
                let path = Self::file(dir, psid);
                let tmp = dir.join(format!(".{psid}.tmp"));
                std::fs::write(&tmp, body.to_string())?;
                std::fs::rename(&tmp, path)
            }
        }
    }

    /// Forgets `psid` (a resume failed, or the host asked for a reset).
    pub(crate) fn delete(&self, psid: &str) {
        match self {
            MarkerStore::Memory(m, _) => {
                m.lock().remove(psid);
            }
            MarkerStore::Dir(dir) => {
                let _ = std::fs::remove_file(Self::file(dir, psid));
            }
        }
    }

    /// Forgets conversation `psid` (a reset): its marker, and with
    /// `transcript_in` (the agent's configuration directory) its transcript.
    pub(crate) fn forget(&self, psid: &str, transcript_in: Option<&Path>) {
        if let (Some(config), Some(workdir)) = (transcript_in, self.get(psid)) {
            remove_transcript(config, &workdir, psid);
        }
        self.delete(psid);
    }

    /// The provider session id session `id` uses now, and the conversation
    /// it forks at its first start, if any.
    pub(crate) fn current(&self, namespace: &str, id: &str) -> Binding {
        let derived = provider_session_id(namespace, id);
        let bound = match self {
            MarkerStore::Memory(_, b) => b.lock().get(&derived).cloned(),
            MarkerStore::Dir(dir) => {
                std::fs::read_to_string(dir.join(format!("{derived}.bind.json")))
                    .ok()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                    .and_then(|v| {
                        Some(Binding {
                            psid: v.get("provider_session_id")?.as_str()?.to_owned(),
                            fork_from: v
                                .get("fork_from")
                                .and_then(|f| f.as_str())
                                .map(str::to_owned),
                            fork_at: v.get("fork_at").and_then(|f| f.as_str()).map(str::to_owned),
                        })
                    })
            }
        };
        bound.unwrap_or(Binding {
            psid: derived,
            fork_from: None,
            fork_at: None,
        })
    }

    /// Records that session `id` uses `psid` from now on (forking
    /// `fork_from` at its first start, if given, up to message `fork_at`).
    /// Atomic, like markers.
    pub(crate) fn bind(
        &self,
        namespace: &str,
        id: &str,
        psid: &str,
        fork_from: Option<&str>,
        fork_at: Option<&str>,
    ) {
        let derived = provider_session_id(namespace, id);
        let binding = Binding {
            psid: psid.to_owned(),
            fork_from: fork_from.map(str::to_owned),
            fork_at: fork_at.map(str::to_owned),
        };
        match self {
            MarkerStore::Memory(_, b) => {
                b.lock().insert(derived, binding);
            }
            MarkerStore::Dir(dir) => {
                let body = json!({
                    "session_id": id,
                    "provider_session_id": psid,
                    "fork_from": fork_from,
                    "fork_at": fork_at,
                });
                let tmp = dir.join(format!(".{derived}.bind.tmp"));
                // A binding that cannot be written costs the reset or fork
                // its persistence across engines, nothing else.
                if std::fs::write(&tmp, body.to_string()).is_ok() {
                    let _ = std::fs::rename(&tmp, dir.join(format!("{derived}.bind.json")));
                }
            }
        }
    }
}

/// A new provider session id for session `id` (a reset or a fork): unique
/// per call.
pub(crate) fn fresh_provider_session_id(namespace: &str, id: &str) -> String {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!(
        "{namespace}:session:{id}:{}:{n}:{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    uuid_from_name(4, name.as_bytes())
}

/// Removes the CLI's transcript of `psid` made in `workdir` (best effort):
/// `<config>/projects/<key>/<psid>.jsonl` (see
/// [`crate::placement::read_local`]), and its subagent transcripts.
pub(crate) fn remove_transcript(config: &Path, workdir: &Path, psid: &str) {
    let (main, subagents) = crate::placement::local_paths(config, workdir, psid);
    let _ = std::fs::remove_file(main);
    if let Some(dir) = subagents.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_session_id_matches_the_seed() {
        // The seed's documented example: namespace "default", id "abc".
        assert_eq!(
            provider_session_id("default", "abc"),
            "8acd796f-ac2b-53a2-adcc-0b3251b66aa9"
        );
    }

    #[test]
    fn markers_in_a_directory_round_trip_and_delete() {
        let dir = std::env::temp_dir().join(format!("hotplex-marker-{}", std::process::id()));
        let store = MarkerStore::new(Some(&dir)).unwrap();
        assert_eq!(store.get("p1"), None);
        store.put("p1", "s1", Path::new("/tmp/w")).unwrap();
        assert_eq!(store.get("p1"), Some(PathBuf::from("/tmp/w")));
        store.delete("p1");
        assert_eq!(store.get("p1"), None);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_acp_marker_keeps_the_agents_session_id_in_either_store() {
        let dir = std::env::temp_dir().join(format!("hotplex-marker-acp-{}", std::process::id()));
        for store in [
            MarkerStore::new(None).unwrap(),
            MarkerStore::new(Some(&dir)).unwrap(),
        ] {
            store.put("p1", "s1", Path::new("/tmp/w")).unwrap();
            assert_eq!(store.acp_session("p1"), None, "a Claude marker has none");
            store
                .put_with("p2", "s2", Path::new("/tmp/w"), Some("ses_1"))
                .unwrap();
            assert_eq!(store.get("p2"), Some(PathBuf::from("/tmp/w")));
            assert_eq!(
                store.acp_session("p2"),
                Some((PathBuf::from("/tmp/w"), "ses_1".to_owned()))
            );
            store.delete("p2");
            assert_eq!(store.acp_session("p2"), None);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bindings_replace_the_derived_id_and_persist_in_a_directory() {
        let dir = std::env::temp_dir().join(format!("hotplex-bind-{}", std::process::id()));
        for store in [
            MarkerStore::new(None).unwrap(),
            MarkerStore::new(Some(&dir)).unwrap(),
        ] {
            let derived = provider_session_id("ns", "s");
            assert_eq!(store.current("ns", "s").psid, derived);
            let fresh = fresh_provider_session_id("ns", "s");
            assert_ne!(fresh, derived);
            assert_ne!(fresh, fresh_provider_session_id("ns", "s"));
            store.bind("ns", "s", &fresh, Some("src"), Some("m1"));
            let b = store.current("ns", "s");
            assert_eq!(
                (
                    b.psid.as_str(),
                    b.fork_from.as_deref(),
                    b.fork_at.as_deref()
                ),
                (fresh.as_str(), Some("src"), Some("m1"))
            );
            assert_eq!(
                store.current("ns", "other").psid,
                provider_session_id("ns", "other")
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
