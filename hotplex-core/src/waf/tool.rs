//! Screening Claude Code tool calls.
//!
//! * `Bash` (and shell-like tools): the `command` field is a shell command.
//! * File tools (`Read`, `Write`, `Edit`, `MultiEdit`, `NotebookEdit`,
//!   `Grep`, `Glob`, `LS`): the path is judged by what it points at. Reading
//!   a secret is high; writing a system file is critical; writing a startup
//!   file (shell rc, authorized keys, cron, systemd) is high. Paths under an
//!   allow-path are exempt. Paths are lexically normalised and, when they
//!   exist, resolved through symlinks, so `/tmp/link-to-etc/passwd` is judged
//!   as `/etc/passwd`.
//! * Anything else (web fetches, MCP tools) passes: it runs no command here.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::{Detector, Verdict};
use crate::verdict::{Category, Level};

/// Screens one tool call.
pub(crate) fn check(d: &Detector, name: &str, input: &Value) -> Verdict {
    let field = |k: &str| input.get(k).and_then(Value::as_str);
    match name {
        "Bash" | "bash" | "Shell" | "shell" | "BashCommand" => match field("command") {
            Some(cmd) => d.command_verdict(cmd),
            None => Verdict::safe(),
        },
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" | "NotebookRead" | "Grep"
        | "Glob" | "LS" => {
            let writes = matches!(name, "Write" | "Edit" | "MultiEdit" | "NotebookEdit");
            let path = field("file_path")
                .or_else(|| field("notebook_path"))
                .or_else(|| field("path"));
            match path {
                Some(p) if !p.is_empty() => path_verdict(d, p, writes),
                _ => Verdict::safe(),
            }
        }
        _ => Verdict::safe(),
    }
}

/// Lexically normalises a path (`.`/`..`/`//`), then resolves symlinks of the
/// longest prefix that exists.
pub(crate) fn canonical_path(p: &Path) -> PathBuf {
    let mut lexical = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other.as_os_str()),
        }
    }
    // Resolve the deepest existing ancestor, keep the rest as written.
    let mut existing = lexical.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|f| f.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return lexical,
        }
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The path as a string rules understand: `~/...` under the home directory.
fn display_path(p: &Path) -> String {
    if let Some(home) = home_dir() {
        let home = canonical_path(&home);
        if let Ok(rel) = p.strip_prefix(&home) {
            return if rel.as_os_str().is_empty() {
                "~".to_owned()
            } else {
                format!("~/{}", rel.display())
            };
        }
    }
    p.display().to_string()
}

fn path_verdict(d: &Detector, raw: &str, writes: bool) -> Verdict {
    let expanded = match raw.strip_prefix('~') {
        Some(rest) => match home_dir() {
            Some(h) => h.join(rest.trim_start_matches('/')),
            None => PathBuf::from(raw),
        },
        None => PathBuf::from(raw),
    };
    let abs = if expanded.is_absolute() {
        expanded
    } else {
        std::env::current_dir().unwrap_or_default().join(expanded)
    };
    let real = canonical_path(&abs);
    if d.allow_paths().iter().any(|a| real.starts_with(a)) {
        return Verdict::safe();
    }
    let shown = display_path(&real);
    // Judge the path with the command rules, as if a reader or a writer
    // named it: one source of truth for what counts as a secret or a
    // system file.
    let probe = if writes {
        format!("tee {}", shell_quote(&shown))
    } else {
        format!("cat {}", shell_quote(&shown))
    };
    let mut v = d.command_verdict(&probe);
    if writes && !v.blocked && is_system_path(&shown) {
        v = Verdict {
            level: Level::Critical,
            blocked: true,
            rule_id: Some("system.write_system_file".to_owned()),
            category: Some(Category::System),
            reason: "Writes into a system directory".to_owned(),
            span: None,
            canonical: Some(shown.clone()),
            suggestions: Category::System
                .suggestions()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
    }
    // Spans refer to the probe, not to the caller's input.
    v.span = None;
    if v.canonical.is_some() {
        v.canonical = Some(shown);
    }
    v
}

fn is_system_path(p: &str) -> bool {
    [
        "/etc/",
        "/usr/",
        "/bin/",
        "/sbin/",
        "/boot/",
        "/lib",
        "/dev/",
        "/proc/",
        "/sys/",
        "/var/lib/",
        "/root/",
    ]
    .iter()
    .any(|s| p.starts_with(s))
}

/// Single-quotes a string for the shell; a leading `~/` (the home
/// directory, as [`display_path`] writes it) stays unquoted, since a quoted
/// `~` is a file of that name.
fn shell_quote(s: &str) -> String {
    let q = |t: &str| format!("'{}'", t.replace('\'', r"'\''"));
    match s.strip_prefix("~/") {
        Some(rest) => format!("~/{}", q(rest)),
        None if s == "~" => "~".to_owned(),
        None => q(s),
    }
}
