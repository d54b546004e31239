//! Building the agent's environment and resolving the program path (host
//! side, before the fork).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Host variables passed to agents by default. A trailing `*` matches a
/// prefix (`LC_*`). Host secrets (`ANTHROPIC_API_KEY`, cloud credentials,
/// tokens) are NOT on this list and are never inherited unless the caller
/// lists them, passes them in `env_extra`, or sets `inherit_env`.
pub const DEFAULT_ENV_ALLOW: &[&str] = &[
    "PATH", "HOME", "USER", "LANG", "LC_*", "TERM", "TMPDIR", "SHELL",
];

/// Name of the variable that tags every process of a session (the sweep
/// uses it to find leftovers of a crashed host).
pub const SESSION_ENV: &str = "HOTPLEX_SESSION_ID";

fn allowed(name: &OsStr, allow: &[String]) -> bool {
    let name = name.as_bytes();
    allow.iter().any(|pat| {
        let p = pat.as_bytes();
        match p.strip_suffix(b"*") {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        }
    })
}

/// The child's environment: allow-listed (or all) host variables, then the
/// extras (which override), then the session tag.
pub(crate) fn build(
    inherit_all: bool,
    allow: &[String],
    extra: &[(OsString, OsString)],
    session_id: &str,
) -> Vec<(OsString, OsString)> {
    let mut out: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| inherit_all || allowed(k, allow))
        .filter(|(k, _)| k != SESSION_ENV)
        .collect();
    for (k, v) in extra {
        out.retain(|(ek, _)| ek != k);
        out.push((k.clone(), v.clone()));
    }
    out.retain(|(k, _)| k != SESSION_ENV);
    out.push((SESSION_ENV.into(), session_id.into()));
    out
}

fn is_executable(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// Resolves `program` like `execvp` would, but before the fork (execvp may
/// allocate). A name with a `/` is used as is (relative to the agent's cwd);
/// a bare name is searched in the CHILD's `PATH` (falling back to the
/// host's, then to `/usr/bin:/bin`).
pub(crate) fn resolve_program(
    program: &OsStr,
    child_env: &[(OsString, OsString)],
    cwd: Option<&Path>,
) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        let check = match (cwd, p.is_relative()) {
            (Some(c), true) => c.join(&p),
            _ => p.clone(),
        };
        return is_executable(&check).then_some(p);
    }
    if program.is_empty() {
        return None;
    }
    let path = child_env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|c| c.is_absolute() && is_executable(c))
}
