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
//! Without a state directory markers live in memory: resume then works
//! across restarts of a session inside one engine, not across host restarts.

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

/// Where markers are kept.
#[derive(Debug)]
pub(crate) enum MarkerStore {
    /// In memory (no state directory).
    Memory(Mutex<HashMap<String, PathBuf>>),
    /// One JSON file per provider session id in this directory.
    Dir(PathBuf),
}

impl MarkerStore {
    pub(crate) fn new(state_dir: Option<&Path>) -> std::io::Result<MarkerStore> {
        match state_dir {
            None => Ok(MarkerStore::Memory(Mutex::new(HashMap::new()))),
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
            MarkerStore::Memory(m) => m.lock().get(psid).cloned(),
            MarkerStore::Dir(dir) => {
                let text = std::fs::read_to_string(Self::file(dir, psid)).ok()?;
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                v.get("workdir")?.as_str().map(PathBuf::from)
            }
        }
    }

    /// Records that the CLI confirmed `psid` in `workdir`. Written to a
    /// temporary file and renamed, so a crash never leaves half a marker.
    pub(crate) fn put(&self, psid: &str, session_id: &str, workdir: &Path) -> std::io::Result<()> {
        match self {
            MarkerStore::Memory(m) => {
                m.lock().insert(psid.to_owned(), workdir.to_owned());
                Ok(())
            }
            MarkerStore::Dir(dir) => {
                let body = json!({
                    "session_id": session_id,
                    "provider_session_id": psid,
                    "workdir": workdir.to_string_lossy(),
                });
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
            MarkerStore::Memory(m) => {
                m.lock().remove(psid);
            }
            MarkerStore::Dir(dir) => {
                let _ = std::fs::remove_file(Self::file(dir, psid));
            }
        }
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
}
