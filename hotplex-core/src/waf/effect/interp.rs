//! Interpreter front ends: one linear pass over Python, Node, Perl, Ruby,
//! PHP or awk code that finds string literals and calls, and maps library
//! calls (`shutil.rmtree`, `fs.rmSync`, `File::Path::remove_tree`,
//! `FileUtils.rm_rf`, `open`, `urlopen`, `os.environ`, ...) to effects with
//! their literal arguments. Code that deletes, writes or sends through
//! arguments only known at run time still yields an effect, with the paths
//! the code spells out (or an unknown target, judged `moderate`).
//!
//! Shell commands the code runs (`os.system`, `subprocess`, backticks) are
//! followed by the canonicaliser itself (`canon::code`).

use super::{Kind, Sink};
use crate::verdict::Level;

/// What a library call does with its first argument (or its receiver).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Does {
    DeleteTree,
    Delete,
    Move,
    Overwrite,
    Append,
    Chmod,
    Read,
    /// `open(path, mode)`: read or write, by the mode.
    Open,
    /// Talks to the network.
    Net,
    /// Walks a directory tree (so a delete in the same code is recursive).
    Walk,
}

/// Call names (the last component after `.` or `::`) and what they do.
const CALLS: &[(&str, Does)] = &[
    ("rmtree", Does::DeleteTree),
    ("rm_rf", Does::DeleteTree),
    ("rm_r", Does::DeleteTree),
    ("remove_tree", Does::DeleteTree),
    ("rmSync", Does::DeleteTree),
    ("rmdirSync", Does::DeleteTree),
    ("rimraf", Does::DeleteTree),
    ("remove_dir_all", Does::DeleteTree),
    ("removedirs", Does::DeleteTree),
    ("emptyDirSync", Does::DeleteTree),
    ("removeSync", Does::DeleteTree),
    ("deleteRecursively", Does::DeleteTree),
    ("remove_entry_secure", Does::DeleteTree),
    ("remove", Does::Delete),
    ("unlink", Does::Delete),
    ("unlinkSync", Does::Delete),
    ("rmdir", Does::Delete),
    ("rm", Does::Delete),
    ("rm_f", Does::Delete),
    ("delete", Does::Delete),
    ("move", Does::Move),
    ("rename", Does::Move),
    ("renameSync", Does::Move),
    ("mv", Does::Move),
    ("write_text", Does::Overwrite),
    ("write_bytes", Does::Overwrite),
    ("writeFileSync", Does::Overwrite),
    ("writeFile", Does::Overwrite),
    ("write", Does::Overwrite),
    ("truncate", Does::Overwrite),
    ("appendFileSync", Does::Append),
    ("appendFile", Does::Append),
    ("chmod", Does::Chmod),
    ("chmodSync", Does::Chmod),
    ("open", Does::Open),
    ("fopen", Does::Open),
    ("read_text", Does::Read),
    ("read_bytes", Does::Read),
    ("readFileSync", Does::Read),
    ("readFile", Does::Read),
    ("read", Does::Read),
    ("readlines", Does::Read),
    ("file_get_contents", Does::Read),
    ("copyfile", Does::Read),
    ("copy", Does::Read),
    ("copy2", Does::Read),
    ("copyFileSync", Does::Read),
    ("urlopen", Does::Net),
    ("post", Does::Net),
    ("put", Does::Net),
    ("request", Does::Net),
    ("fetch", Does::Net),
    ("sendall", Does::Net),
    ("send", Does::Net),
    ("connect", Does::Net),
    ("create_connection", Does::Net),
    ("post_form", Does::Net),
    ("HTTPSConnection", Does::Net),
    ("HTTPConnection", Does::Net),
    ("rglob", Does::Walk),
    ("walk", Does::Walk),
    ("glob", Does::Walk),
    ("listdir", Does::Walk),
    ("iterdir", Does::Walk),
    ("readdirSync", Does::Walk),
    ("scandir", Does::Walk),
    ("find", Does::Walk),
];

/// Methods whose target is the receiver (`Path('x').unlink()`), not the
/// first argument.
const RECEIVER_METHODS: &[&str] = &[
    "unlink",
    "rmdir",
    "write_text",
    "write_bytes",
    "read_text",
    "read_bytes",
    "chmod",
    "rename",
    "touch",
];

/// A string literal: its text and byte range in the code.
struct Lit {
    text: String,
    start: usize,
    end: usize,
}

/// A call: the name's last component, where it starts, where its argument
/// list opens (`None` for Perl/Ruby calls without parentheses) and whether
/// it is a method call.
struct Call<'a> {
    name: &'a str,
    start: usize,
    open: Option<usize>,
    method: bool,
}

/// Splits code into string literals and calls, in one pass.
fn lex(code: &str) -> (Vec<Lit>, Vec<Call<'_>>) {
    let b = code.as_bytes();
    let mut lits = Vec::new();
    let mut calls = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' || c == b'`' {
            let start = i;
            i += 1;
            let mut text = Vec::new();
            while i < b.len() && b[i] != c {
                if b[i] == b'\\' && i + 1 < b.len() {
                    text.push(b[i + 1]);
                    i += 2;
                } else {
                    text.push(b[i]);
                    i += 1;
                }
            }
            lits.push(Lit {
                text: String::from_utf8_lossy(&text).into_owned(),
                start,
                end: i.min(b.len()),
            });
            i += 1;
            continue;
        }
        if c == b'_' || c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let name = &code[start..i];
            let method = start > 0 && matches!(b[start - 1], b'.' | b':');
            let mut j = i;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            if j < b.len() && b[j] == b'(' {
                calls.push(Call {
                    name,
                    start,
                    open: Some(j),
                    method,
                });
            } else if j > i && j < b.len() && matches!(b[j], b'\'' | b'"' | b'$') {
                // Perl and Ruby call without parentheses: `unlink "x"`.
                calls.push(Call {
                    name,
                    start,
                    open: None,
                    method,
                });
            } else if !method || name == "environ" || name == "env" {
                calls.push(Call {
                    name,
                    start,
                    open: None,
                    method,
                });
            }
            continue;
        }
        i += 1;
    }
    (lits, calls)
}

/// The end of the argument list that opens at `open` (the closing
/// parenthesis, or the end of the statement for calls without one).
fn args_end(code: &str, lits: &[Lit], open: Option<usize>, from: usize) -> usize {
    let b = code.as_bytes();
    let Some(open) = open else {
        return code[from..]
            .find([';', '\n', ')'])
            .map_or(code.len(), |k| from + k);
    };
    let mut depth = 0i32;
    let mut i = open;
    let mut li = lits.partition_point(|l| l.start < open);
    while i < b.len() {
        if li < lits.len() && lits[li].start == i {
            i = lits[li].end + 1;
            li += 1;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth <= 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// Joins the literals of one argument as a path: `'~' + '/.aws/x'` and
/// `'~' / 'projects'` both give a path under home; a literal that starts
/// at a root (`/`, `~`) starts the path over.
fn join_path<'a>(parts: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut out: Option<String> = None;
    for p in parts {
        if p.starts_with('/') || p.starts_with('~') {
            out = Some(p.to_owned());
        } else if let Some(o) = out.as_mut() {
            if !o.ends_with('/') && !p.starts_with('/') {
                o.push('/');
            }
            o.push_str(p);
        } else {
            out = Some(p.to_owned());
        }
    }
    out
}

/// The literals of the first argument in `(open, end)`.
fn first_arg<'a>(code: &str, lits: &'a [Lit], open: usize, end: usize) -> Vec<&'a Lit> {
    let b = code.as_bytes();
    // The first top-level comma ends the first argument.
    let mut depth = 0;
    let mut i = open + 1;
    let mut li = lits.partition_point(|l| l.start <= open);
    let mut stop = end;
    while i < end {
        if li < lits.len() && lits[li].start == i {
            i = lits[li].end + 1;
            li += 1;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            b',' if depth == 0 => {
                stop = i;
                break;
            }
            _ => {}
        }
        i += 1;
    }
    lits.iter()
        .filter(|l| l.start > open && l.end <= stop)
        .collect()
}

/// Words that mark a credential held in an environment variable.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "TOKEN",
];

/// Scans interpreter code (home spellings already folded to `'~'`) and
/// records its effects; SQL statements in its literals go to `sql`.
pub(crate) fn scan(lang: &str, code: &str, s: &mut Sink<'_>, sql: &mut Vec<String>) {
    let (lits, calls) = lex(code);
    for l in &lits {
        let t = l.text.trim_start();
        let head: String = t.chars().take(9).collect::<String>().to_ascii_uppercase();
        if ["DROP ", "TRUNCATE ", "DELETE ", "UPDATE ", "ALTER "]
            .iter()
            .any(|k| head.starts_with(k))
        {
            sql.push(t.to_owned());
        }
    }
    let walks = calls.iter().any(|c| does(c.name) == Some(Does::Walk));
    let mut net = false;
    let mut env_dump = false;
    let mut secret_env = false;
    let mut reads: Vec<String> = Vec::new();
    let mut dynamic: Option<Does> = None;
    for c in &calls {
        // The environment: whole (`os.environ`, `process.env`), or one
        // credential from it.
        if c.name == "environ"
            || c.name == "env" && c.method
            || c.name == "ENV"
            || c.name == "getenv"
        {
            let after = &code[c.start + c.name.len()..];
            let after = after.trim_start();
            let key: String = after
                .trim_start_matches(['[', '(', '{', '.'])
                .trim_start_matches("get(")
                .trim_start_matches(['\'', '"'])
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_')
                .collect();
            let whole = key.is_empty()
                || matches!(
                    key.as_str(),
                    "copy" | "items" | "to_h" | "to_a" | "keys" | "values"
                );
            if whole && (c.name != "getenv" || after.starts_with("()")) {
                env_dump = true;
            } else if SECRET_WORDS
                .iter()
                .any(|w| key.to_ascii_uppercase().contains(w))
            {
                secret_env = true;
            }
            continue;
        }
        let Some(what) = does(c.name) else { continue };
        if what == Does::Net {
            net = true;
            continue;
        }
        if what == Does::Walk {
            continue;
        }
        let end = args_end(code, &lits, c.open, c.start + c.name.len());
        let args: Vec<&Lit> = match c.open {
            Some(open) => first_arg(code, &lits, open, end),
            None => lits
                .iter()
                .filter(|l| l.start > c.start && l.end <= end)
                .collect(),
        };
        let mut target = if c.method && RECEIVER_METHODS.contains(&c.name) {
            receiver_literal(code, &lits, c.start)
        } else {
            None
        };
        if target.is_none() {
            target = join_path(args.iter().map(|l| l.text.as_str()));
        }
        // `open(path, 'w')`: the mode decides.
        let what = if what == Does::Open {
            let mode = c.open.and_then(|o| {
                lits.iter()
                    .filter(|l| l.start > o && l.end <= end)
                    .nth(1)
                    .map(|l| l.text.as_str())
            });
            match mode {
                Some(m) if m.starts_with('w') || m.contains('+') && !m.starts_with('r') => {
                    Does::Overwrite
                }
                Some(m) if m.starts_with('a') || m == ">>" => Does::Append,
                Some(">") => Does::Overwrite,
                _ => Does::Read,
            }
        } else {
            what
        };
        match target {
            Some(t) if looks_like_path(&t) => {
                let t = super::super::canon::normalize(&t);
                record(what, &t, code, c, &lits, end, walks, s, &mut reads);
            }
            _ if matches!(
                what,
                Does::DeleteTree | Does::Delete | Does::Move | Does::Overwrite
            ) =>
            {
                dynamic.get_or_insert(what);
            }
            _ => {}
        }
    }
    if let Some(what) = dynamic {
        // Targets computed at run time: judge the absolute or home paths the
        // code spells out, or an unknown target.
        let mut any = false;
        for l in lits
            .iter()
            .filter(|l| l.text.starts_with('/') || l.text.starts_with('~'))
        {
            if l.text.contains(' ') || l.text.starts_with("//") {
                continue;
            }
            any = true;
            let t = super::super::canon::normalize(&l.text);
            let kind = match what {
                Does::DeleteTree => Kind::DeleteTree,
                Does::Delete if walks => Kind::DeleteTree,
                Does::Move => Kind::MoveAway,
                Does::Overwrite => Kind::Overwrite,
                _ => Kind::Delete,
            };
            s.push(kind, t, "interpreter call on a computed path");
        }
        if !any {
            s.push_at(
                Kind::Exec,
                "code deleting computed paths",
                "interpreter code",
                Some(Level::Moderate),
            );
        }
    }
    // Paths the code mentions that are secrets: read by this code.
    if calls
        .iter()
        .any(|c| matches!(does(c.name), Some(Does::Read | Does::Open)))
    {
        for l in &lits {
            let t = super::super::canon::normalize(&l.text);
            if super::is_secret(&t) && !reads.contains(&t) {
                s.push(Kind::Read, t.clone(), "interpreter reads it");
                reads.push(t);
            }
        }
    }
    if lang.ends_with("awk") {
        awk(code, &lits, s, &mut reads, &mut net);
    }
    if net {
        if env_dump {
            s.push(Kind::Send, "env", "interpreter network call");
        }
        if secret_env {
            s.push(Kind::Send, "secret", "interpreter network call");
        }
        for r in reads.iter().filter(|r| super::is_secret(r)) {
            s.push(Kind::Send, r.clone(), "interpreter network call");
        }
    }
}

/// What the call `name` does, from [`CALLS`].
fn does(name: &str) -> Option<Does> {
    CALLS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// Whether a literal is a path rather than text (no blanks, not a URL).
fn looks_like_path(t: &str) -> bool {
    !t.is_empty() && !t.contains("://") && !t.contains(char::is_whitespace) && t.len() < 4096
}

/// The last literal before the call at `at`, in the same statement: the
/// receiver of `Path('x').unlink()`.
fn receiver_literal(code: &str, lits: &[Lit], at: usize) -> Option<String> {
    let stmt = code[..at].rfind([';', '\n', '[']).map_or(0, |k| k + 1);
    lits.iter()
        .rev()
        .find(|l| l.end < at && l.start >= stmt)
        .map(|l| l.text.clone())
}

/// Records one call's effect on a literal path.
#[allow(clippy::too_many_arguments)]
fn record(
    what: Does,
    t: &str,
    code: &str,
    c: &Call<'_>,
    lits: &[Lit],
    end: usize,
    walks: bool,
    s: &mut Sink<'_>,
    reads: &mut Vec<String>,
) {
    match what {
        Does::DeleteTree => s.push(Kind::DeleteTree, t, "interpreter recursive delete"),
        Does::Delete if walks || t.contains('*') => {
            s.push(Kind::DeleteTree, t, "interpreter delete over a walk")
        }
        Does::Delete => s.push(Kind::Delete, t, "interpreter delete"),
        Does::Move => s.push(Kind::MoveAway, t, "interpreter move"),
        Does::Overwrite => {
            // `write_text('')` on a Path receiver is the content, not a path.
            s.push(Kind::Overwrite, t, "interpreter write");
        }
        Does::Append => s.push(Kind::Write, t, "interpreter append"),
        Does::Chmod => {
            let mode: String = code[c.start..end.min(code.len())]
                .rsplit(',')
                .next()
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect();
            let m = mode.trim_start_matches("0o").trim_start_matches('0');
            let digits = if let Ok(n) = m.parse::<u32>() {
                if mode.starts_with("0o") || mode.starts_with('0') {
                    m.to_owned()
                } else {
                    format!("{n:o}")
                }
            } else {
                String::new()
            };
            let last = digits.bytes().last().map_or(0, |d| d.wrapping_sub(b'0'));
            let via = if last & 2 != 0 {
                "chmod loosen"
            } else if last & 4 != 0 {
                "chmod expose"
            } else {
                "chmod"
            };
            let _ = lits;
            s.push(Kind::Repermission, t, via);
        }
        Does::Read | Does::Open => {
            s.push(Kind::Read, t, "interpreter read");
            reads.push(t.to_owned());
        }
        Does::Net | Does::Walk => {}
    }
}

/// awk's network special files: `/inet/tcp/...` as a coprocess. Reading a
/// file into it sends the file; running what it sends back is a remote
/// shell.
fn awk(code: &str, lits: &[Lit], s: &mut Sink<'_>, reads: &mut Vec<String>, net: &mut bool) {
    if !lits.iter().any(|l| l.text.starts_with("/inet")) {
        return;
    }
    *net = true;
    // `getline line < "file"`: a read.
    for l in lits {
        let before = code[..l.start].trim_end();
        if before.ends_with('<') && !before.ends_with("<<") {
            let t = super::super::canon::normalize(&l.text);
            s.push(Kind::Read, t.clone(), "awk getline");
            reads.push(t);
        }
    }
    // `cmd |& getline` where cmd is a variable that does not hold the
    // socket (so it holds text read from it), or `system(...)`: the peer's
    // text runs.
    let ident_before = |i: usize| -> &str {
        let t = code[..i].trim_end();
        let start = t
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |k| k + 1);
        &t[start..]
    };
    let sockets: Vec<&str> = lits
        .iter()
        .filter(|l| l.text.starts_with("/inet"))
        .filter_map(|l| {
            let t = code[..l.start].trim_end();
            t.strip_suffix('=').map(|t| ident_before(t.len()))
        })
        .collect();
    let runs = code.contains("system(")
        || code.match_indices("|&").any(|(i, _)| {
            let v = ident_before(i);
            code[i + 2..].trim_start().starts_with("getline")
                && !v.is_empty()
                && !sockets.contains(&v)
        });
    if runs {
        s.push_at(
            Kind::Exec,
            "network peer's commands",
            "awk /inet shell",
            Some(Level::Critical),
        );
    }
}
