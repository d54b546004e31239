//! Seeing through obfuscated command words.
//!
//! `/???/r?`, `/bin/r[m]` and `r${x}m` all run `rm`, but no rule written
//! for `rm` would match them as written. A command word with glob
//! characters is matched against a short list of dangerous command names,
//! and unset variables spliced into a word are dropped (the shell expands
//! them to nothing); [`super::unwrap_command`] then judges the command both
//! as written and as what it may run.

use once_cell::sync::Lazy;
use regex::Regex;

use crate::waf::shell::basename;

/// Names a glob in a command word may stand for (`/???/r?` runs `rm`). Only
/// these are tried: the point is to see through obfuscation of dangerous
/// commands, not to resolve every glob.
const GLOB_TARGETS: &[&str] = &[
    "rm",
    "dd",
    "sh",
    "bash",
    "zsh",
    "dash",
    "nc",
    "ncat",
    "curl",
    "wget",
    "chmod",
    "chown",
    "shred",
    "mkfs",
    "python",
    "python3",
    "perl",
    "ruby",
    "node",
    "sudo",
    "su",
    "kill",
    "pkill",
    "eval",
    "find",
    "mv",
    "cp",
    "base64",
    "xxd",
    "socat",
    "crontab",
    "systemctl",
    "insmod",
    "modprobe",
    "reboot",
    "shutdown",
];

/// One glob element: `?`, `*`, a `[...]` set, or a literal byte.
enum GlobItem {
    /// `?`: any one byte.
    Any,
    /// `*`: any run of bytes (consecutive stars are merged into one).
    Star,
    /// `[...]` / `[!...]`: one byte from (or, negated, not from) the set.
    Set {
        negated: bool,
        bytes: Vec<u8>,
        ranges: Vec<(u8, u8)>,
    },
    /// Any other byte, matched literally (an unclosed `[` too).
    Byte(u8),
}

impl GlobItem {
    /// Whether this element matches the single byte `c`; a star is
    /// handled by [`glob_match`]'s backtracking, never here.
    fn matches(&self, c: u8) -> bool {
        match self {
            GlobItem::Any => true,
            GlobItem::Star => false,
            GlobItem::Set {
                negated,
                bytes,
                ranges,
            } => {
                let hit =
                    bytes.contains(&c) || ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c));
                hit != *negated
            }
            GlobItem::Byte(b) => *b == c,
        }
    }
}

/// Compiles a glob pattern into its elements.
fn glob_items(pat: &[u8]) -> Vec<GlobItem> {
    let mut items = Vec::with_capacity(pat.len());
    let mut i = 0;
    while i < pat.len() {
        match pat[i] {
            b'*' => {
                if !matches!(items.last(), Some(GlobItem::Star)) {
                    items.push(GlobItem::Star);
                }
                i += 1;
            }
            b'?' => {
                items.push(GlobItem::Any);
                i += 1;
            }
            b'[' => match pat[i + 1..].iter().position(|&b| b == b']') {
                Some(rel) if rel > 0 => {
                    let mut set = &pat[i + 1..i + 1 + rel];
                    let negated = matches!(set.first(), Some(b'!' | b'^'));
                    if negated {
                        set = &set[1..];
                    }
                    let (mut bytes, mut ranges) = (Vec::new(), Vec::new());
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == b'-' {
                            ranges.push((set[k], set[k + 2]));
                            k += 3;
                        } else {
                            bytes.push(set[k]);
                            k += 1;
                        }
                    }
                    items.push(GlobItem::Set {
                        negated,
                        bytes,
                        ranges,
                    });
                    i += rel + 2;
                }
                _ => {
                    items.push(GlobItem::Byte(b'['));
                    i += 1;
                }
            },
            b => {
                items.push(GlobItem::Byte(b));
                i += 1;
            }
        }
    }
    items
}

/// A shell glob (`?`, `*`, `[...]`) matched against a whole name, in
/// O(pattern × name) with the classic single-backtrack-point algorithm.
fn glob_match(pat: &[u8], name: &[u8]) -> bool {
    let items = glob_items(pat);
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match items.get(p) {
            Some(GlobItem::Star) => {
                star = Some((p, n));
                p += 1;
            }
            Some(item) if item.matches(name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    items[p.min(items.len())..]
        .iter()
        .all(|i| matches!(i, GlobItem::Star))
}

/// What an obfuscated command word may really be: a glob that matches a
/// dangerous command, or a word spliced with unset variables (`r${x}m`).
pub(super) fn deobfuscated_name(word: &str) -> Option<String> {
    let base = basename(word);
    if base.contains(['*', '?', '[']) {
        if let Some(t) = GLOB_TARGETS
            .iter()
            .find(|t| glob_match(base.as_bytes(), t.as_bytes()))
        {
            return Some((*t).to_owned());
        }
    }
    if word.contains('$') {
        let stripped = strip_unknown_vars(word);
        if !stripped.is_empty() && stripped != word {
            return Some(basename(&stripped).to_owned());
        }
    }
    None
}

/// Removes `$name` and `${...}` references the parser could not resolve (an
/// unset variable expands to nothing in the shell).
pub(super) fn strip_unknown_vars(word: &str) -> String {
    static VAR_REF: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[@*#?0-9]").expect("static regex")
    });
    VAR_REF.replace_all(word, "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match(b"r?", b"rm"));
        assert!(glob_match(b"r[m]", b"rm"));
        assert!(glob_match(b"*h", b"bash"));
        assert!(glob_match(b"c*l", b"curl"));
        assert!(glob_match(b"[!a]m", b"rm"));
        assert!(!glob_match(b"r?", b"rmx"));
        assert!(!glob_match(b"[a-c]m", b"rm"));
        // Many stars stay linear.
        let stars = "*a".repeat(5_000);
        assert!(!glob_match(stars.as_bytes(), b"bash"));
    }
}
