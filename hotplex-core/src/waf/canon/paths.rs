//! Path arguments: which arguments are paths, how they are normalised, and
//! the working directory a `cd` leaves behind.
//!
//! Rules match paths textually (`rm -rf /etc`), so `/tmp/../etc`, `//etc/`
//! and `cd / && rm -rf etc` must all read as `/etc` by the time rules see
//! them. Everything here is lexical: the file system is never consulted.

use crate::waf::fast;
use crate::waf::shell::ParseState;

/// Commands whose path operands are resolved against a preceding `cd`.
const PATH_CMDS: &[&str] = &[
    "rm", "shred", "find", "chmod", "chown", "chgrp", "truncate", "rsync", "mv", "rmdir", "unlink",
];

/// `cd DIR` / `pushd DIR`: later relative operands of path-taking commands
/// are resolved against `DIR`. No operand means home; an option (`cd -`)
/// leaves the directory unknown to us, so it is not recorded.
pub(super) fn change_dir(ctx: &mut ParseState, argv: &[String]) {
    let target = argv.get(1).map_or("~", String::as_str);
    if !target.starts_with('-') {
        ctx.cwd = Some(target.to_owned());
    }
}

/// Lexically normalises path arguments (`//`, `/./`, `..`) and resolves
/// relative operands of path-taking commands against a known `cd` target.
pub(super) fn normalize_args(ctx: &ParseState, argv: &mut [String]) {
    let Some(name) = argv.first() else {
        return;
    };
    let join_cwd = PATH_CMDS.contains(&name.as_str());
    for a in argv.iter_mut().skip(1) {
        // Options, `k=v`, URLs and `host:path` are not paths; neither is an
        // argument with blanks (a script for `sh -c`, say). One pass decides.
        if a.starts_with('-')
            || a.bytes()
                .any(|c| c == b'=' || c == b':' || c.is_ascii_whitespace())
            || (!a.is_ascii() && a.contains(char::is_whitespace))
        {
            continue;
        }
        let relative = !(a.starts_with('/') || a.starts_with('~') || a.starts_with('$'));
        if relative && join_cwd {
            if let Some(cwd) = &ctx.cwd {
                *a = format!("{cwd}/{a}");
            }
        }
        // Most paths are written normalised already: leave them be rather
        // than rebuild an identical string.
        if (a.contains('/') || a.starts_with('~')) && !(fast::enabled() && is_normal(a)) {
            *a = normalize_path(a);
        }
    }
}

/// Whether [`normalize_path`] would return `p` unchanged: `/`, `~`, or a
/// root (`/`, `~/` or none) followed by segments none of which is empty,
/// `.` or `..`. `~name` is left to `normalize_path` (it names a home).
fn is_normal(p: &str) -> bool {
    let rest = if p == "/" || p == "~" {
        return true;
    } else if let Some(r) = p.strip_prefix("~/") {
        r
    } else if let Some(r) = p.strip_prefix('/') {
        r
    } else if p.starts_with('~') {
        return false;
    } else {
        p
    };
    !rest.is_empty()
        && rest
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Lexical path normalisation; `~` stands for the home directory and
/// `~name` for that user's home (`~root` is `/root`, `~alice` is
/// `/home/alice`). A relative path whose first component is a literal `~`
/// file name keeps its `./` so it never reads as home.
pub fn normalize_path(p: &str) -> String {
    if fast::enabled() && is_normal(p) {
        return p.to_owned();
    }
    if let Some(user) = p.strip_prefix('~') {
        let end = user.find('/').unwrap_or(user.len());
        let name = &user[..end];
        if !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            let home = if name == "root" {
                "/root".to_owned()
            } else {
                format!("/home/{name}")
            };
            return normalize_path(&format!("{home}{}", &user[end..]));
        }
    }
    let (mut root, rest) = if let Some(r) = p.strip_prefix('/') {
        ("/", r)
    } else if p == "~" {
        ("~/", "")
    } else if let Some(r) = p.strip_prefix("~/") {
        ("~/", r)
    } else {
        ("", p)
    };
    let mut parts: Vec<&str> = Vec::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if root == "/" => {}
                _ if root == "~/" => {
                    // Above the home directory: somewhere under /home.
                    root = "/";
                    parts.push("home");
                }
                _ => parts.push(".."),
            },
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match root {
        "/" => format!("/{joined}"),
        "~/" if joined.is_empty() => "~".to_owned(),
        "~/" => format!("~/{joined}"),
        _ if joined.is_empty() => ".".to_owned(),
        _ if joined.starts_with('~') && !p.starts_with('~') => format!("./{joined}"),
        _ => joined,
    }
}
