//! hotplex as the ACP agent's file system: `fs/read_text_file` and
//! `fs/write_text_file`, served by the engine so that the WAF sees them.
//!
//! A path is confined before anything touches it: relative paths are taken
//! in the session's workdir; the longest existing part is canonicalised
//! (symlinks and `..` resolved the way the kernel would), the rest may not
//! climb (`..`); and the result must lie in the session's workdir or under
//! one of the engine's `allowed_roots`. What passes is then judged by the
//! WAF's tool check as Claude Code's `Read` or `Write` would be (secrets,
//! system and startup files), by the caller.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::protocol::acp::codes;

/// Most bytes of a file `fs/read_text_file` returns whole; larger files
/// need `line` / `limit` (the answer is one line on the agent's stdin).
pub(crate) const MAX_READ_BYTES: u64 = 8 << 20;

/// Why a file request was refused: the JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FsError {
    pub code: i64,
    pub message: String,
}

impl FsError {
    fn new(code: i64, message: String) -> FsError {
        FsError { code, message }
    }

    fn io(path: &Path, e: &std::io::Error) -> FsError {
        if e.kind() == ErrorKind::NotFound {
            // The spec's answer for a missing file (Gemini CLI mishandles
            // any error here; see shared/docs/acp-agents-offline.md).
            return FsError::new(
                codes::RESOURCE_NOT_FOUND,
                format!("Resource not found: {}", path.display()),
            );
        }
        FsError::new(codes::INTERNAL_ERROR, format!("{}: {e}", path.display()))
    }
}

/// The directories a session's file requests may touch: its workdir and
/// the engine's allowed roots (all canonical).
pub(crate) struct Confinement<'a> {
    pub workdir: &'a Path,
    pub roots: &'a [PathBuf],
}

impl Confinement<'_> {
    /// The real path `path` names, if it lies inside (see the module docs).
    pub(crate) fn resolve(&self, path: &str) -> Result<PathBuf, FsError> {
        let invalid = |m: String| FsError::new(codes::INVALID_PARAMS, m);
        if path.is_empty() || path.contains('\0') {
            return Err(invalid("path must be a non-empty path without NUL".into()));
        }
        let given = Path::new(path);
        let abs = if given.is_relative() {
            self.workdir.join(given)
        } else {
            given.to_owned()
        };
        // The longest prefix that exists is resolved by the kernel's rules
        // (a `..` after a symlink climbs from the link's target).
        let mut existing = abs.as_path();
        let mut rest: Vec<Component<'_>> = Vec::new();
        let base = loop {
            match std::fs::canonicalize(existing) {
                Ok(real) => break real,
                Err(_) => {
                    let Some(parent) = existing.parent() else {
                        return Err(invalid(format!("{path}: no part of it exists")));
                    };
                    if let Some(last) = existing.components().next_back() {
                        rest.push(last);
                    }
                    existing = parent;
                }
            }
        };
        let mut real = base;
        for c in rest.iter().rev() {
            match c {
                Component::Normal(name) => real.push(name),
                Component::CurDir => {}
                _ => {
                    return Err(invalid(format!(
                        "{path}: `..` below a directory that does not exist"
                    )))
                }
            }
        }
        let inside =
            real.starts_with(self.workdir) || self.roots.iter().any(|r| real.starts_with(r));
        if !inside {
            return Err(invalid(format!(
                "{path} is outside the session's workdir ({}) and the allowed roots: hotplex refuses it",
                self.workdir.display()
            )));
        }
        Ok(real)
    }
}

/// Reads `real` (a confined path) as text, from 1-based `line`, at most
/// `limit` lines. Invalid UTF-8 becomes U+FFFD.
pub(crate) async fn read(
    real: PathBuf,
    line: Option<u64>,
    limit: Option<u64>,
) -> Result<String, FsError> {
    // File reads block: off the runtime's threads.
    let task = tokio::task::spawn_blocking(move || read_now(&real, line, limit));
    task.await.unwrap_or_else(|_| {
        Err(FsError::new(
            codes::INTERNAL_ERROR,
            "the read did not finish".into(),
        ))
    })
}

fn read_now(real: &Path, line: Option<u64>, limit: Option<u64>) -> Result<String, FsError> {
    let meta = std::fs::metadata(real).map_err(|e| FsError::io(real, &e))?;
    if !meta.is_file() {
        return Err(FsError::new(
            codes::INVALID_PARAMS,
            format!("{} is not a file", real.display()),
        ));
    }
    let whole = line.is_none() && limit.is_none();
    if whole && meta.len() > MAX_READ_BYTES {
        return Err(FsError::new(
            codes::INVALID_PARAMS,
            format!(
                "{} has {} bytes, more than hotplex returns at once ({MAX_READ_BYTES}); read it by line and limit",
                real.display(),
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(real).map_err(|e| FsError::io(real, &e))?;
    let text = String::from_utf8_lossy(&bytes);
    if whole {
        return Ok(text.into_owned());
    }
    let skip = line.unwrap_or(1).saturating_sub(1);
    let take = limit.unwrap_or(u64::MAX);
    let mut out = String::new();
    for l in text
        .split_inclusive('\n')
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(take).unwrap_or(usize::MAX))
    {
        if out.len() as u64 + l.len() as u64 > MAX_READ_BYTES {
            break;
        }
        out.push_str(l);
    }
    Ok(out)
}

/// Writes `content` to `real` (a confined path), creating the file and its
/// missing directories; a symlink in the file's place is not followed (it
/// would lead elsewhere than the path that was judged).
pub(crate) async fn write(real: PathBuf, content: String) -> Result<(), FsError> {
    let task = tokio::task::spawn_blocking(move || -> Result<(), FsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(parent) = real.parent() {
            std::fs::create_dir_all(parent).map_err(|e| FsError::io(parent, &e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&real)
            .map_err(|e| FsError::io(&real, &e))?;
        f.write_all(content.as_bytes())
            .map_err(|e| FsError::io(&real, &e))
    });
    task.await.unwrap_or_else(|_| {
        Err(FsError::new(
            codes::INTERNAL_ERROR,
            "the write did not finish".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("hotplex-acpfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("w/sub")).unwrap();
        Tmp(std::fs::canonicalize(&d).unwrap())
    }

    #[test]
    fn paths_inside_the_workdir_resolve_and_others_are_refused() {
        let t = tmp("confine");
        let w = t.0.join("w");
        let c = Confinement {
            workdir: &w,
            roots: &[],
        };
        assert_eq!(c.resolve("sub/new.txt").unwrap(), w.join("sub/new.txt"));
        assert_eq!(
            c.resolve(&format!("{}/sub/../a", w.display())).unwrap(),
            w.join("a")
        );
        for bad in [
            "/etc/passwd",
            "../outside",
            "sub/../../outside",
            "missing/../../x",
            "",
        ] {
            let e = c.resolve(bad).unwrap_err();
            assert_eq!(e.code, codes::INVALID_PARAMS, "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_symlink_out_of_the_workdir_does_not_let_a_path_escape() {
        let t = tmp("link");
        let w = t.0.join("w");
        std::os::unix::fs::symlink(&t.0, w.join("up")).unwrap();
        let c = Confinement {
            workdir: &w,
            roots: &[],
        };
        assert!(
            c.resolve("up/secret").is_err(),
            "through a link to the parent"
        );
        assert!(c.resolve("up/w/sub").is_ok(), "back inside through it");
        let roots = [t.0.clone()];
        let wide = Confinement {
            workdir: &w,
            roots: &roots,
        };
        assert!(
            wide.resolve("up/secret").is_ok(),
            "an allowed root admits it"
        );
    }

    #[tokio::test]
    async fn reads_by_line_and_limit_and_a_missing_file_is_resource_not_found() {
        let t = tmp("read");
        let f = t.0.join("w/f.txt");
        std::fs::write(&f, "one\ntwo\nthree\n").unwrap();
        assert_eq!(
            read(f.clone(), None, None).await.unwrap(),
            "one\ntwo\nthree\n"
        );
        assert_eq!(read(f.clone(), Some(2), Some(1)).await.unwrap(), "two\n");
        let e = read(t.0.join("w/none"), None, None).await.unwrap_err();
        assert_eq!(e.code, codes::RESOURCE_NOT_FOUND);
        write(t.0.join("w/new/dir/x.txt"), "hi".into())
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(t.0.join("w/new/dir/x.txt")).unwrap(),
            "hi"
        );
    }

    #[tokio::test]
    async fn a_write_does_not_follow_a_symlink_in_the_files_place() {
        let t = tmp("nofollow");
        let target = t.0.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = t.0.join("w/link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(write(link, "overwritten".into()).await.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
