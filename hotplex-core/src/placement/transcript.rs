//! Transcripts: a session's conversation, kept outside the host that runs
//! it, so that another host can take the session up.
//!
//! The Claude Code CLI keeps a session's conversation in its configuration
//! directory, at `projects/<key>/<provider session id>.jsonl` (plus
//! `<provider session id>/subagents/*.jsonl`), where the key is derived
//! from the workdir's path ([`project_key`]): the same conversation lies
//! under another name on a host whose workdir path differs. A
//! [`TranscriptStore`] keeps it under the session's id instead; the engine
//! copies it out after each turn ([`read_local`]) and back, under the local
//! key, before it resumes the session on a new host ([`write_local`]).
//!
//! Every save carries the saver's lease epoch ([`super::Lease`]): a store
//! that has kept a newer epoch's transcript rejects the save as
//! [`Error::Fenced`], so an owner that lost its session cannot overwrite
//! what its successor wrote.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A session's transcript files, as the CLI wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    /// `<provider session id>.jsonl`: one JSON entry per line.
    pub main: Vec<u8>,
    /// The subagents' transcripts: `(file name, contents)`, file names
    /// without directories (`agent-<id>.jsonl`).
    pub subagents: Vec<(String, Vec<u8>)>,
}

/// Where transcripts live between hosts. Implementations must be safe to
/// share between threads and hosts.
pub trait TranscriptStore: Send + Sync {
    /// Saves `transcript` as session `session`'s, written under lease epoch
    /// `epoch`. Fails with [`Error::Fenced`] when a save with a higher epoch
    /// was kept; the same or a higher epoch replaces the stored one.
    fn save(&self, session: &str, epoch: u64, transcript: &Transcript) -> Result<()>;

    /// The stored transcript of `session` and the epoch it was saved under.
    fn load(&self, session: &str) -> Result<Option<(u64, Transcript)>>;

    /// Forgets `session`'s transcript (a reset or a deleted conversation),
    /// unless a higher epoch than `epoch` saved it ([`Error::Fenced`]).
    fn delete(&self, session: &str, epoch: u64) -> Result<()>;

    /// Extends `session`'s stored transcript without sending it whole: when
    /// its main file holds exactly `base_len` bytes, appends `tail` to it
    /// and replaces the subagent files with `subagents`, under the epoch
    /// rules of [`save`](Self::save) ([`Error::Fenced`]). Returns
    /// `Ok(false)`, changing nothing, when the stored main file has another
    /// length or there is none, or the store cannot append; the caller then
    /// saves the whole transcript. The CLI only appends to a transcript, so
    /// after the first save of a host each turn sends only its own entries.
    /// The default cannot append.
    fn append(
        &self,
        session: &str,
        epoch: u64,
        base_len: u64,
        tail: &[u8],
        subagents: &[(String, Vec<u8>)],
    ) -> Result<bool> {
        let _ = (session, epoch, base_len, tail, subagents);
        Ok(false)
    }
}

/// The CLI's directory name for a workdir under `projects/`
/// (`tests/e2e/FACTS.md`, sections h and aa): the path (the caller passes
/// it resolved, as the CLI resolves symlinks) with every UTF-16 unit but
/// ASCII letters and digits replaced by `-`; past 200 characters, the first
/// 200, `-`, and a base-36 hash of the whole path.
pub(crate) fn project_key(workdir: &Path) -> String {
    let path = workdir.to_string_lossy();
    let key: String = path
        .encode_utf16()
        .map(|u| match char::from_u32(u32::from(u)) {
            Some(c) if c.is_ascii_alphanumeric() => c,
            _ => '-',
        })
        .collect();
    if key.len() <= 200 {
        return key;
    }
    // The CLI's `(h << 5) - h + unit | 0` over the UTF-16 units, then
    // `Math.abs(h).toString(36)`.
    let mut h: i32 = 0;
    for u in path.encode_utf16() {
        h = h.wrapping_shl(5).wrapping_sub(h).wrapping_add(i32::from(u));
    }
    format!("{}-{}", &key[..200], base36(i64::from(h).unsigned_abs()))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Where the CLI keeps `psid`'s transcript for `workdir` under `config`:
/// `(main file, subagents directory)`. A long key whose exact directory is
/// missing is looked up by its 200-character prefix, as the CLI and the SDK
/// do (some CLI builds hash the suffix differently; FACTS.md section aa).
pub(crate) fn local_paths(config: &Path, workdir: &Path, psid: &str) -> (PathBuf, PathBuf) {
    let projects = config.join("projects");
    let key = project_key(workdir);
    let mut dir = projects.join(&key);
    if key.len() > 200 && !dir.exists() {
        let prefix = format!("{}-", &key[..200]);
        if let Ok(entries) = fs::read_dir(&projects) {
            if let Some(found) = entries
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            {
                dir = found.path();
            }
        }
    }
    (
        dir.join(format!("{psid}.jsonl")),
        dir.join(psid).join("subagents"),
    )
}

/// Reads `psid`'s transcript for `workdir` from the configuration directory
/// `config`; `None` when the CLI has written none.
pub fn read_local(config: &Path, workdir: &Path, psid: &str) -> Result<Option<Transcript>> {
    let (main, subs) = local_paths(config, workdir, psid);
    let main = match fs::read(&main) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io(format!("{}: {e}", main.display()))),
    };
    let subagents = read_files(&subs)?;
    Ok(Some(Transcript { main, subagents }))
}

/// The regular files of `dir` (none when it is missing), by name, but the
/// hidden ones (a write's temporary file): `(name, contents)`.
pub(crate) fn read_files(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') || !path.is_file() {
                continue;
            }
            let bytes =
                fs::read(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
            files.push((name, bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// Writes `transcript` as `psid`'s for `workdir` into the configuration
/// directory `config`, where `claude --resume <psid>` run in `workdir`
/// finds it. Replaces what is there.
pub fn write_local(
    config: &Path,
    workdir: &Path,
    psid: &str,
    transcript: &Transcript,
) -> Result<()> {
    let (main, subs) = local_paths(config, workdir, psid);
    write_atomically(&main, &transcript.main)?;
    for (name, bytes) in &transcript.subagents {
        write_atomically(&subs.join(plain_name(name)?), bytes)?;
    }
    Ok(())
}

/// Checks every subagent file name of a save before its first write, so a
/// refused save keeps nothing.
pub(crate) fn check_names(subagents: &[(String, Vec<u8>)]) -> Result<()> {
    subagents
        .iter()
        .try_for_each(|(name, _)| plain_name(name).map(drop))
}

/// The error of a save or delete under an older epoch than the store's.
pub(crate) fn fenced_write(session: &str, epoch: u64, stored: u64) -> Error {
    Error::Fenced(format!(
        "session {session:?}: a newer owner (epoch {stored}) saved its transcript; this one's epoch is {epoch}"
    ))
}

/// A file name with no directory part (stored names are untrusted).
pub(crate) fn plain_name(name: &str) -> Result<&str> {
    // A leading dot is refused too: directory listings skip such files
    // (`read_files`), so one could be saved but never loaded back.
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
        return Err(Error::InvalidArgument(format!(
            "transcript file name {name:?}: not a plain file name"
        )));
    }
    Ok(name)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader sees the old contents or the new, never a part.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", path.display()));
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "hotplex-transcript-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ))
    }

    fn sample(text: &str) -> Transcript {
        Transcript {
            main: format!("{{\"text\":\"{text}\"}}\n").into_bytes(),
            subagents: vec![("agent-1.jsonl".into(), b"{}\n".to_vec())],
        }
    }

    #[test]
    fn the_project_key_is_the_clis() {
        // Expected values from tests/e2e/probe_transcripts.py, which
        // predicted every key both pinned CLIs made.
        assert_eq!(
            project_key(Path::new("/tmp/x/café déjà")),
            "-tmp-x-caf--d-j-"
        );
        assert_eq!(project_key(Path::new("/srv/a-b_c.d")), "-srv-a-b-c-d");
        let long = format!("/srv/{}/{}/end", "a".repeat(120), "b\u{1F600}".repeat(40));
        let key = project_key(Path::new(&long));
        assert!(key.ends_with("-b--b--b--d2j23w"), "{key}");
        assert_eq!(key.len(), 207);
    }

    #[test]
    fn a_transcript_moves_between_workdirs_under_the_clis_key() {
        let (a, b) = (tmp("host-a"), tmp("host-b"));
        let t = sample("history");
        write_local(&a, Path::new("/srv/a/repo"), "p1", &t).unwrap();
        assert!(a.join("projects/-srv-a-repo/p1.jsonl").exists());
        assert!(a
            .join("projects/-srv-a-repo/p1/subagents/agent-1.jsonl")
            .exists());
        let read = read_local(&a, Path::new("/srv/a/repo"), "p1")
            .unwrap()
            .unwrap();
        assert_eq!(read, t);
        write_local(&b, Path::new("/home/x/other.dir"), "p1", &read).unwrap();
        assert!(b.join("projects/-home-x-other-dir/p1.jsonl").exists());
        assert_eq!(read_local(&b, Path::new("/nowhere"), "p1").unwrap(), None);
        for d in [a, b] {
            let _ = fs::remove_dir_all(d);
        }
    }

    #[test]
    fn stored_file_names_cannot_leave_the_subagents_directory() {
        let dir = tmp("names");
        let evil = Transcript {
            main: b"{}\n".to_vec(),
            subagents: vec![("../../escape".into(), b"x".to_vec())],
        };
        assert!(matches!(
            write_local(&dir, Path::new("/w"), "p", &evil),
            Err(Error::InvalidArgument(_))
        ));
        assert!(!dir.join("projects/escape").exists());
        let _ = fs::remove_dir_all(dir);
    }
}
