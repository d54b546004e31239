//! From parsed simple commands to the canonical texts rules are matched on.
//!
//! For every simple command this strips wrappers (`sudo`, `env`, `timeout`,
//! `xargs`, `find -exec`, ...), follows code into shells (`sh -c`, `eval`,
//! `su -c`, `ssh host cmd`, heredocs and pipes into shells) and tool-native
//! execution (`git -c alias.x='!...'`, `tar --checkpoint-action=exec=`,
//! `vim -c '!...'`), and collects interpreter code (`python -c`, `awk`,
//! `sed`). Each wrapper level is emitted as a command of its own, so
//! `sudo rm -rf /opt` yields both `sudo rm -rf /opt` (for privilege rules) and
//! `rm -rf /opt` (for deletion rules).

use std::ops::Range;

use once_cell::sync::Lazy;
use regex::Regex;

use super::shell::{self, assignment, basename, Ctx, SimpleCommand};

/// A canonical text and the input span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The text rules of one [`super::Scope`] are matched on.
    pub text: String,
    /// Byte range in the checked input.
    pub span: Range<usize>,
}

/// Everything rules look at for one command line.
#[derive(Debug, Default, Clone)]
pub struct Canonical {
    /// [`super::Scope::Command`] texts.
    pub commands: Vec<Item>,
    /// [`super::Scope::Redirect`] texts.
    pub redirects: Vec<Item>,
    /// [`super::Scope::Pipeline`] texts.
    pub pipelines: Vec<Item>,
    /// [`super::Scope::Code`] texts, each prefixed by the interpreter's name
    /// and a space (`python3 import os; ...`).
    pub codes: Vec<Item>,
    /// A parse limit was hit somewhere: the verdict must not be `safe`.
    pub incomplete: bool,
    /// The input is not valid shell (unterminated quote, substitution or
    /// heredoc): a strict check must not call it `safe`.
    pub syntax_error: bool,
    /// Byte ranges of the input that are quoted-heredoc bodies (data); the
    /// [`super::Scope::Script`] text is the input without them.
    pub literal_bodies: Vec<Range<usize>>,
}

impl Canonical {
    /// The input without quoted-heredoc bodies: what built-in raw-text rules
    /// read. Borrowed when there is nothing to remove.
    pub fn script_text<'a>(&self, input: &'a str) -> std::borrow::Cow<'a, str> {
        if self.literal_bodies.is_empty() {
            return std::borrow::Cow::Borrowed(input);
        }
        let mut out = String::with_capacity(input.len());
        let mut at = 0;
        for r in &self.literal_bodies {
            if r.start >= at && r.end <= input.len() {
                out.push_str(&input[at..r.start]);
                at = r.end;
            }
        }
        out.push_str(&input[at..]);
        std::borrow::Cow::Owned(out)
    }
}

/// Separates the commands of a pipeline in [`Canonical::pipelines`].
pub const PIPE_SEP: &str = " \u{1e} ";
/// Stands for whitespace *inside* one argument in canonical command texts.
pub const ARG_SPACE: char = '\u{1f}';

/// Most wrapper levels unwrapped for one command.
const MAX_UNWRAP: usize = 16;

/// Canonicalises a shell command line.
pub fn canonicalize(src: &str) -> Canonical {
    let mut ctx = Ctx::default();
    let mut out = Canonical::default();
    analyse(&mut ctx, &mut out, src, None, 0);
    out.incomplete |= ctx.out.incomplete;
    out.syntax_error = ctx.out.syntax_error;
    out.literal_bodies = std::mem::take(&mut ctx.out.literal_bodies);
    out
}

/// Renders argv as one canonical command text.
pub fn render(argv: &[String]) -> String {
    let mut s = String::with_capacity(argv.iter().map(|a| a.len() + 1).sum());
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        // Plain ASCII without blanks (nearly every argument) is copied as is.
        if a.bytes().all(|c| c.is_ascii() && !c.is_ascii_whitespace()) {
            s.push_str(a);
        } else {
            s.extend(
                a.chars()
                    .map(|c| if c.is_whitespace() { ARG_SPACE } else { c }),
            );
        }
    }
    s
}

fn analyse(
    ctx: &mut Ctx,
    out: &mut Canonical,
    src: &str,
    span: Option<Range<usize>>,
    depth: usize,
) {
    if depth > shell::MAX_DEPTH {
        out.incomplete = true;
        return;
    }
    let first = ctx.out.commands.len();
    let first_pipe = ctx.out.pipelines.len();
    shell::parse_into(ctx, src, span, depth);
    let last = ctx.out.commands.len();
    let last_pipe = ctx.out.pipelines.len();
    // The innermost argv of each command is only needed for pipelines.
    let has_pipes = last_pipe > first_pipe;
    let mut innermost: Vec<Vec<String>> =
        Vec::with_capacity(if has_pipes { last - first } else { 0 });
    for i in first..last {
        // Move the command out while it is unwrapped (nested analysis only
        // appends to the list), so a large heredoc body is never copied.
        let cmd = std::mem::take(&mut ctx.out.commands[i]);
        let argv = unwrap_command(ctx, out, &cmd);
        if has_pipes {
            innermost.push(argv);
        }
        ctx.out.commands[i] = cmd;
    }
    for pi in first_pipe..last_pipe {
        let pipe = ctx.out.pipelines[pi].clone();
        let parts: Vec<String> = pipe
            .iter()
            .map(|&i| {
                innermost
                    .get(i - first)
                    .map(|a| render(a))
                    .unwrap_or_default()
            })
            .collect();
        let span = merge(
            &ctx.out.commands[pipe[0]].span,
            &ctx.out.commands[pipe[pipe.len() - 1]].span,
        );
        out.pipelines.push(Item {
            text: parts.join(PIPE_SEP),
            span: span.clone(),
        });
        // What the previous command writes may become code or arguments.
        for w in pipe.windows(2) {
            let (prev, next) = (w[0], w[1]);
            let Some(data) = produced_data(&ctx.out.commands[prev], innermost.get(prev - first))
            else {
                continue;
            };
            let next_argv = innermost.get(next - first).cloned().unwrap_or_default();
            let nspan = ctx.out.commands[next].span.clone();
            let next_is_xargs = shell::command_word(&ctx.out.commands[next])
                .is_some_and(|w| basename(w) == "xargs");
            if reads_script_from_stdin(&next_argv) {
                analyse(ctx, out, &data, Some(nspan), depth + 1);
            } else if next_argv
                .first()
                .is_some_and(|n| DB_CLIENTS.contains(&n.as_str()))
            {
                push_sql(out, &next_argv, Some(&data), &nspan);
            } else if let Some(name) = interpreter(&next_argv) {
                if code_arg(&next_argv).is_none() && next_argv.len() == 1 {
                    push_code(ctx, out, &name, &data, nspan, depth);
                }
            } else if next_is_xargs {
                // `echo ~ | xargs rm -rf`: xargs appends what it reads.
                let mut argv = next_argv.clone();
                argv.extend(data.split_whitespace().map(str::to_owned));
                unwrap_argv(ctx, out, argv, &nspan, None, depth);
            }
        }
    }
}

fn merge(a: &Range<usize>, b: &Range<usize>) -> Range<usize> {
    a.start.min(b.start)..a.end.max(b.end)
}

/// Literal text a command writes to stdout that a pipe could hand on: a
/// heredoc or here-string through `cat`, or `echo`/`printf` arguments.
fn produced_data(cmd: &SimpleCommand, argv: Option<&Vec<String>>) -> Option<String> {
    let argv = argv?;
    match argv.first().map(String::as_str)? {
        "cat" if argv.len() == 1 => cmd.stdin.as_ref().map(|s| s.body.clone()),
        // Paths under the start: judged as the start path itself.
        "find" => Some(find_start(argv)),
        "ls" => Some(
            argv[1..]
                .iter()
                .filter(|a| !a.starts_with('-'))
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => shell::literal_output(argv),
    }
}

/// The first path find walks (its operands come before the expression).
fn find_start(argv: &[String]) -> String {
    argv.iter()
        .skip(1)
        .skip_while(|a| matches!(a.as_str(), "-H" | "-L" | "-P"))
        .take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!")
        .next()
        .cloned()
        .unwrap_or_else(|| ".".to_owned())
}

const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "ash",
    "mksh",
    "fish",
    "busybox-sh",
];

fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

/// A shell with no `-c` and no script operand reads its script from stdin.
fn reads_script_from_stdin(argv: &[String]) -> bool {
    let Some(name) = argv.first() else {
        return false;
    };
    match name.as_str() {
        n if is_shell(n) => argv[1..].iter().all(|a| a.starts_with('-') && a != "-c"),
        "source" | "." => matches!(
            argv.get(1).map(String::as_str),
            Some("/dev/stdin" | "-" | "/proc/self/fd/0")
        ),
        "at" | "batch" => !argv
            .iter()
            .any(|a| matches!(a.as_str(), "-f" | "-l" | "-r" | "-d" | "-c")),
        _ => false,
    }
}

/// Environment variables whose value a program runs as a command.
const CODE_VARS: &[&str] = &[
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EDITOR",
    "GIT_PAGER",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "SSH_ASKPASS",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "MANPAGER",
    "BROWSER",
    "PROMPT_COMMAND",
    "BASH_ENV",
    "ENV",
    "SUDO_ASKPASS",
    "LESSOPEN",
    "LESSCLOSE",
];

/// Follows assignments that hand code to a program (`GIT_SSH_COMMAND=...`)
/// and records library preloading as a command text of its own
/// (`LD_PRELOAD=/tmp/x.so`).
fn code_assignments<'a>(
    ctx: &mut Ctx,
    out: &mut Canonical,
    words: impl Iterator<Item = &'a str>,
    span: &Range<usize>,
    depth: usize,
) {
    for w in words {
        let Some((name, value)) = assignment(w) else {
            continue;
        };
        if CODE_VARS.contains(&name) && !value.is_empty() {
            analyse(ctx, out, value, Some(span.clone()), depth + 1);
        } else if matches!(name, "LD_PRELOAD" | "LD_AUDIT" | "DYLD_INSERT_LIBRARIES") {
            out.commands.push(Item {
                text: format!("{name}={value}"),
                span: span.clone(),
            });
        }
    }
}

/// The interpreter's name if argv runs one (`python3`, `perl`, ...).
fn interpreter(argv: &[String]) -> Option<String> {
    let name = argv.first()?;
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        base,
        "python" | "perl" | "ruby" | "node" | "nodejs" | "php" | "deno" | "bun" | "lua" | "Rscript"
    )
    .then(|| name.clone())
}

/// The code operand of an interpreter (`-c CODE`, `-e CODE`, `-r CODE`).
fn code_arg(argv: &[String]) -> Option<String> {
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-c" | "-e" | "-E" | "-r" | "--eval" | "-p" | "--print" | "eval" => {
                return it.next().cloned()
            }
            s if s.starts_with("-c") && s.len() > 2 && !s.starts_with("--") => {
                return Some(s[2..].to_owned())
            }
            s if s.starts_with('-') => {}
            _ => return None, // a script file: not inline code
        }
    }
    None
}

/// Expressions interpreters use for the home directory; folded to `'~'`.
static HOME_EXPR: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r#"\$ENV\{\s*['"]?HOME['"]?\s*\}|process\.env\.HOME|process\.env\[['"]HOME['"]\]|os\.environ\[['"]HOME['"]\]|os\.environ\.get\(['"]HOME['"]\)|os\.getenv\(['"]HOME['"]\)|getenv\(['"]HOME['"]\)|ENV\[['"]HOME['"]\]|Path\.home\(\)|os\.homedir\(\)|(?:os\.path\.)?expanduser\(['"]~['"]\)|Dir\.home"#,
    )
    .expect("static regex")
});

/// Calls that run a shell command: `system(...)`, `system "..."`,
/// `subprocess.run([...])`, `execSync(...)`, ...
static SHELL_CALL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r#"\b(?:system|popen|exec|execSync|spawnSync|spawn|execFileSync|check_output|check_call|run|call|Popen|shell_exec|passthru|qx)\s*(?:\(|\s['"\[])"#)
        .expect("static regex")
});

/// Records interpreter code and follows shell commands it spells out
/// literally (`os.system("...")`, `system "rm", "-rf", $ENV{HOME}`).
fn push_code(
    ctx: &mut Ctx,
    out: &mut Canonical,
    name: &str,
    code: &str,
    span: Range<usize>,
    depth: usize,
) {
    let folded = HOME_EXPR.replace_all(code, "'~'");
    out.codes.push(Item {
        text: format!("{name} {folded}"),
        span: span.clone(),
    });
    for shell_text in embedded_shell(&folded) {
        analyse(ctx, out, &shell_text, Some(span.clone()), depth + 1);
    }
}

/// The shell commands in interpreter code: for each shell-running call, its
/// string literals up to the end of the call, joined by spaces (so both
/// `system("rm -rf ~")` and `system("rm", "-rf", "~")` give `rm -rf ~`).
fn embedded_shell(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for m in SHELL_CALL.find_iter(code) {
        let rest = &code[m.end() - 1..];
        let mut parts: Vec<String> = Vec::new();
        let mut chars = rest.char_indices().peekable();
        let mut depth = 0i32;
        while let Some((_, c)) = chars.next() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => {
                    depth -= 1;
                    if depth <= 0 && c == ')' {
                        break;
                    }
                }
                ';' | '\n' if depth <= 0 => break,
                '"' | '\'' | '`' => {
                    let mut lit = String::new();
                    let mut escaped = false;
                    for (_, d) in chars.by_ref() {
                        if escaped {
                            lit.push(d);
                            escaped = false;
                        } else if d == '\\' {
                            escaped = true;
                        } else if d == c {
                            break;
                        } else {
                            lit.push(d);
                        }
                    }
                    parts.push(lit);
                }
                _ => {}
            }
        }
        if !parts.is_empty() {
            found.push(parts.join(" "));
        }
    }
    found
}

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
    Any,
    Star,
    Set {
        negated: bool,
        bytes: Vec<u8>,
        ranges: Vec<(u8, u8)>,
    },
    Byte(u8),
}

impl GlobItem {
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
fn deobfuscated_name(word: &str) -> Option<String> {
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
fn strip_unknown_vars(word: &str) -> String {
    static VAR_REF: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\$[@*#?0-9]").expect("static regex")
    });
    VAR_REF.replace_all(word, "").into_owned()
}

/// Unwraps one parsed simple command; returns its innermost argv.
fn unwrap_command(ctx: &mut Ctx, out: &mut Canonical, cmd: &SimpleCommand) -> Vec<String> {
    for r in &cmd.redirects {
        if r.op != "<<<" {
            out.redirects.push(Item {
                text: format!("{} {}", r.op, r.target),
                span: cmd.span.clone(),
            });
        }
    }
    let assigns = cmd
        .words
        .iter()
        .take_while(|w| assignment(&w.text).is_some());
    code_assignments(
        ctx,
        out,
        assigns.map(|w| w.text.as_str()),
        &cmd.span,
        cmd.depth,
    );
    let argv: Vec<String> = cmd
        .words
        .iter()
        .skip_while(|w| assignment(&w.text).is_some())
        .map(|w| w.text.clone())
        .collect();
    let empties = |a: &[String]| match a {
        [] => true,
        [c] => c == ":" || c == "true",
        [c, x] => {
            (c == "cat" && x == "/dev/null")
                || (c == "echo" && x == "-n")
                || (c == "printf" && x.is_empty())
        }
        _ => false,
    };
    if empties(&argv) {
        // `> file` and `: > file` empty the file: judge it as a truncation.
        for r in &cmd.redirects {
            if r.op == ">" || r.op == ">|" {
                let mut t = vec![
                    "truncate".to_owned(),
                    "-s".to_owned(),
                    "0".to_owned(),
                    r.target.clone(),
                ];
                normalize_args(ctx, &mut t);
                out.commands.push(Item {
                    text: render(&t),
                    span: cmd.span.clone(),
                });
            }
        }
        return argv;
    }
    let stdin = cmd.stdin.as_ref().map(|s| s.body.as_str());
    // An obfuscated command word is judged both as written and as what it
    // may run; unknown variables in the arguments are dropped too.
    if let Some(real) = argv.first().and_then(|w| deobfuscated_name(w)) {
        let mut alt = argv.clone();
        alt[0] = real;
        for a in alt.iter_mut().skip(1) {
            if a.contains('$') {
                *a = strip_unknown_vars(a);
            }
        }
        let alt_inner = unwrap_argv(ctx, out, alt, &cmd.span, stdin, cmd.depth);
        unwrap_argv(ctx, out, argv, &cmd.span, stdin, cmd.depth);
        // Pipelines are judged by what the command may really run.
        return alt_inner;
    }
    unwrap_argv(ctx, out, argv, &cmd.span, stdin, cmd.depth)
}

/// Index of the first operand after options. `with_arg` lists short options
/// (single letters) that take a value; `long_with_arg` long ones.
fn skip_opts(argv: &[String], start: usize, with_arg: &str, long_with_arg: &[&str]) -> usize {
    let mut i = start;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            return i + 1;
        }
        if let Some(long) = a.strip_prefix("--") {
            if !long.contains('=') && long_with_arg.contains(&long) {
                i += 1;
            }
        } else if let Some(cluster) = a.strip_prefix('-') {
            if cluster.is_empty() {
                return i; // `-` is an operand
            }
            // The first letter that takes a value consumes the rest, or the
            // next word when it ends the cluster.
            for (pos, ch) in cluster.char_indices() {
                if with_arg.contains(ch) {
                    if pos + ch.len_utf8() == cluster.len() {
                        i += 1;
                    }
                    break;
                }
            }
        } else {
            return i;
        }
        i += 1;
    }
    i
}

/// Emits canonical commands for `argv` and every wrapper level inside it;
/// returns the innermost argv.
fn unwrap_argv(
    ctx: &mut Ctx,
    out: &mut Canonical,
    mut argv: Vec<String>,
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Vec<String> {
    if depth > shell::MAX_DEPTH {
        // `find -exec find -exec ...` and friends: stop following.
        out.incomplete = true;
        return argv;
    }
    for _ in 0..MAX_UNWRAP {
        if argv.is_empty() {
            return argv;
        }
        // The command word: unescaped basename (`/bin/rm`, `\rm` -> `rm`).
        let name = basename(&argv[0]).to_owned();
        argv[0] = name.clone();
        normalize_args(ctx, &mut argv);
        if matches!(name.as_str(), "ssh" | "scp" | "sftp") {
            // `-i KEY` authenticates with the key; it does not send it.
            drop_option_values(&mut argv, "-i");
        }
        out.commands.push(Item {
            text: render(&argv),
            span: span.clone(),
        });
        if DB_CLIENTS.contains(&name.as_str()) {
            push_sql(out, &argv, stdin, span);
        }
        let next: Option<usize> = match name.as_str() {
            "cd" | "pushd" => {
                let target = argv.get(1).map_or("~", String::as_str);
                if !target.starts_with('-') {
                    ctx.cwd = Some(target.to_owned());
                }
                None
            }
            "sudo" => Some(skip_opts(
                &argv,
                1,
                "ugCDhprtTU",
                &[
                    "user",
                    "group",
                    "chdir",
                    "host",
                    "prompt",
                    "role",
                    "type",
                    "close-from",
                    "other-user",
                ],
            )),
            "doas" => Some(skip_opts(&argv, 1, "uC", &[])),
            "nice" => Some(skip_opts(&argv, 1, "n", &["adjustment"])),
            "ionice" => Some(skip_opts(&argv, 1, "cnp", &["class", "classdata", "pid"])),
            "stdbuf" => Some(skip_opts(&argv, 1, "ioe", &["input", "output", "error"])),
            "setsid" | "nohup" | "builtin" | "unbuffer" | "caffeinate" | "strace" | "ltrace"
            | "proxychains" | "proxychains4" | "torsocks" | "fakeroot" | "sg" => {
                Some(skip_opts(&argv, 1, "oesp", &[]))
            }
            "time" => Some(skip_opts(&argv, 1, "fo", &["format", "output"])),
            "exec" => Some(skip_opts(&argv, 1, "a", &[])),
            "command" => {
                if argv.iter().skip(1).any(|a| a == "-v" || a == "-V") {
                    None // only looks the command up
                } else {
                    Some(skip_opts(&argv, 1, "", &[]))
                }
            }
            "timeout" => {
                let i = skip_opts(&argv, 1, "sk", &["signal", "kill-after"]);
                Some(i + 1) // the duration
            }
            "watch" => {
                // watch runs its arguments through `sh -c`.
                let i = skip_opts(&argv, 1, "nd", &["interval", "differences"]);
                if i < argv.len() {
                    analyse(
                        ctx,
                        out,
                        &argv[i..].join(" "),
                        Some(span.clone()),
                        depth + 1,
                    );
                }
                None
            }
            "flock" => {
                let i = skip_opts(&argv, 1, "wEc", &["timeout", "conflict-exit-code"]);
                if let Some(c) = flag_value(&argv, &["-c", "--command"]) {
                    analyse(ctx, out, &c, Some(span.clone()), depth + 1);
                    None
                } else {
                    Some(i + 1) // the lock file
                }
            }
            "chroot" => Some(skip_opts(&argv, 1, "", &["userspec", "groups"]) + 1),
            "busybox" | "toybox" => Some(1),
            "env" => {
                // `env -S 'cmd args'` splits its argument.
                if let Some(s) = flag_value(&argv, &["-S", "--split-string"]) {
                    let mut rest: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
                    let i = argv
                        .iter()
                        .position(|a| a == &s)
                        .map_or(argv.len(), |p| p + 1);
                    rest.extend(argv[i..].iter().cloned());
                    argv = rest;
                    continue;
                }
                let mut i = skip_opts(&argv, 1, "uCS", &["unset", "chdir", "split-string"]);
                let first_assign = i;
                while i < argv.len() && assignment(&argv[i]).is_some() {
                    i += 1;
                }
                let assigns = argv[first_assign..i].to_vec();
                code_assignments(ctx, out, assigns.iter().map(String::as_str), span, depth);
                Some(i)
            }
            "xargs" => {
                let i = skip_opts(
                    &argv,
                    1,
                    "IinLPdEsa",
                    &[
                        "replace",
                        "max-lines",
                        "max-args",
                        "max-procs",
                        "delimiter",
                        "eof",
                        "arg-file",
                        "max-chars",
                    ],
                );
                if i >= argv.len() {
                    None
                } else {
                    // xargs appends what it reads (a here-string, say).
                    if let Some(data) = stdin {
                        let mut inner = argv[i..].to_vec();
                        inner.extend(data.split_whitespace().map(str::to_owned));
                        unwrap_argv(ctx, out, inner, span, None, depth + 1);
                    }
                    Some(i)
                }
            }
            "parallel" => {
                // `parallel CMD ::: ARG...` runs CMD once per argument;
                // without `:::` the arguments are a command template.
                let i = skip_opts(&argv, 1, "jSIn", &["jobs", "sshlogin", "max-args"]);
                match argv.iter().position(|a| a == ":::" || a == "::::") {
                    Some(sep) if sep > i => {
                        for arg in &argv[sep + 1..] {
                            let mut inner = argv[i..sep].to_vec();
                            inner.push(arg.clone());
                            unwrap_argv(ctx, out, inner, span, None, depth + 1);
                        }
                    }
                    _ if i < argv.len() => analyse(
                        ctx,
                        out,
                        &argv[i..].join(" "),
                        Some(span.clone()),
                        depth + 1,
                    ),
                    _ => {}
                }
                None
            }
            "at" | "batch" | "source" | "." => {
                // They run their standard input as a script.
                if let (true, Some(body)) = (reads_script_from_stdin(&argv), stdin) {
                    analyse(ctx, out, body, Some(span.clone()), depth + 1);
                }
                None
            }
            "npx" | "bunx" | "pnpx" => Some(skip_opts(&argv, 1, "p", &["package", "call"])),
            "bundle" | "poetry" | "pipenv" | "uv" | "pdm" | "hatch" | "rye" | "pnpm" | "yarn"
            | "npm" | "conda" | "mamba" => {
                // `bundle exec X`, `poetry run X`, `npm exec -- X`, ...
                let sub = argv.get(1).map(String::as_str);
                let runs = match name.as_str() {
                    "npm" => sub == Some("exec"),
                    _ => matches!(sub, Some("exec" | "run" | "x" | "dlx")),
                };
                runs.then(|| skip_opts(&argv, 2, "n", &["name", "with", "directory"]))
            }
            "zip" => {
                if let Some(c) = flag_value(&argv, &["-TT", "--unzip-command"]) {
                    analyse(ctx, out, &c, Some(span.clone()), depth + 1);
                }
                None
            }
            "rg" | "ripgrep" => {
                if let Some(c) = flag_value(&argv, &["--pre"]) {
                    analyse(ctx, out, &c, Some(span.clone()), depth + 1);
                }
                None
            }
            "su" => {
                if let Some(c) = flag_value(&argv, &["-c", "--command"]) {
                    analyse(ctx, out, &c, Some(span.clone()), depth + 1);
                }
                None
            }
            "eval" => {
                let code = argv[1..].join(" ");
                analyse(ctx, out, &code, Some(span.clone()), depth + 1);
                None
            }
            "find" => {
                // Every -exec/-execdir/-ok/-okdir runs a command, with `{}`
                // standing for what find walks (judged as its start path).
                let start = find_start(&argv);
                let mut i = 1;
                while i < argv.len() {
                    if matches!(argv[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
                        let end = argv[i + 1..]
                            .iter()
                            .position(|a| a == ";" || a == "+")
                            .map_or(argv.len(), |p| i + 1 + p);
                        let inner: Vec<String> = argv[i + 1..end]
                            .iter()
                            .map(|a| if a == "{}" { start.clone() } else { a.clone() })
                            .collect();
                        unwrap_argv(ctx, out, inner, span, None, depth + 1);
                        i = end;
                    }
                    i += 1;
                }
                None
            }
            "ssh" => {
                let i = skip_opts(&argv, 1, "bcDEeFIiJLlmOopQRSWw", &[]);
                for (k, a) in argv.iter().enumerate() {
                    if a == "-o" {
                        if let Some(v) = argv.get(k + 1) {
                            if let Some(pc) = v
                                .strip_prefix("ProxyCommand=")
                                .or_else(|| v.strip_prefix("ProxyCommand "))
                            {
                                analyse(ctx, out, pc, Some(span.clone()), depth + 1);
                            }
                        }
                    }
                }
                if i + 1 < argv.len() {
                    let remote = argv[i + 1..].join(" ");
                    analyse(ctx, out, &remote, Some(span.clone()), depth + 1);
                }
                None
            }
            "git" => {
                // Global options go; `-c alias.x=!cmd` and friends run code.
                let mut i = 1;
                while i < argv.len() {
                    let a = argv[i].as_str();
                    if a == "-c"
                        || a == "-C"
                        || a == "--git-dir"
                        || a == "--work-tree"
                        || a == "--namespace"
                    {
                        if a == "-c" {
                            if let Some(kv) = argv.get(i + 1) {
                                git_config_code(ctx, out, kv, span, depth);
                            }
                        }
                        i += 2;
                    } else if a.starts_with("--") && a.contains('=')
                        || matches!(
                            a,
                            "--no-pager"
                                | "--bare"
                                | "-p"
                                | "--paginate"
                                | "-P"
                                | "--no-replace-objects"
                        )
                    {
                        i += 1;
                    } else {
                        break;
                    }
                }
                // `git config [--global] KEY VALUE` stores code for later.
                if argv.get(i).is_some_and(|a| a == "config") {
                    let kv: Vec<&String> = argv[i + 1..]
                        .iter()
                        .filter(|a| !a.starts_with('-'))
                        .collect();
                    if let [key, value, ..] = kv.as_slice() {
                        git_config_code(ctx, out, &format!("{key}={value}"), span, depth);
                    }
                }
                if i > 1 && i < argv.len() {
                    let mut inner = vec!["git".to_owned()];
                    inner.extend(argv[i..].iter().cloned());
                    out.commands.push(Item {
                        text: render(&inner),
                        span: span.clone(),
                    });
                    return inner;
                }
                None
            }
            "tar" => {
                for a in &argv[1..] {
                    for key in [
                        "--checkpoint-action=exec=",
                        "--to-command=",
                        "--use-compress-program=",
                        "--info-script=",
                        "--new-volume-script=",
                    ] {
                        if let Some(c) = a.strip_prefix(key) {
                            analyse(ctx, out, c, Some(span.clone()), depth + 1);
                        }
                    }
                }
                None
            }
            "vim" | "vi" | "nvim" | "ex" | "view" => {
                for (k, a) in argv.iter().enumerate() {
                    let cmd = if a == "-c" || a == "--cmd" {
                        argv.get(k + 1).map(String::as_str)
                    } else {
                        a.strip_prefix('+')
                    };
                    if let Some(c) = cmd.and_then(|c| c.trim_start_matches(':').strip_prefix('!')) {
                        analyse(ctx, out, c, Some(span.clone()), depth + 1);
                    }
                }
                None
            }
            "awk" | "gawk" | "mawk" | "nawk" => {
                let i = skip_opts(&argv, 1, "Fvf", &["field-separator", "assign", "file"]);
                if let Some(prog) = argv.get(i) {
                    if !argv.iter().any(|a| a == "-f") {
                        push_code(ctx, out, &name, &prog.clone(), span.clone(), depth);
                    }
                }
                None
            }
            "sed" => {
                let mut scripts: Vec<String> = Vec::new();
                let mut k = 1;
                while k < argv.len() {
                    if argv[k] == "-e" || argv[k] == "--expression" {
                        if let Some(s) = argv.get(k + 1) {
                            scripts.push(s.clone());
                        }
                        k += 1;
                    }
                    k += 1;
                }
                if scripts.is_empty() {
                    let i = skip_opts(&argv, 1, "lf", &["line-length", "file"]);
                    if let Some(s) = argv.get(i) {
                        scripts.push(s.clone());
                    }
                }
                for s in scripts {
                    out.codes.push(Item {
                        text: format!("sed {s}"),
                        span: span.clone(),
                    });
                }
                None
            }
            n if is_shell(n) => {
                let mut script = None;
                let mut k = 1;
                while k < argv.len() {
                    let a = argv[k].as_str();
                    if a == "-c"
                        || (a.starts_with('-')
                            && !a.starts_with("--")
                            && a.contains('c')
                            && a.len() <= 4)
                    {
                        script = argv.get(k + 1).cloned();
                        // `sh -c 'cmd "$0"' arg0 arg1`: positional parameters.
                        for (n, v) in argv.iter().skip(k + 2).enumerate() {
                            ctx.vars.insert(n.to_string(), v.clone());
                        }
                        break;
                    }
                    if !a.starts_with('-') {
                        break;
                    }
                    k += 1;
                }
                match script {
                    Some(s) => analyse(ctx, out, &s, Some(span.clone()), depth + 1),
                    None => {
                        if let (true, Some(body)) = (reads_script_from_stdin(&argv), stdin) {
                            analyse(ctx, out, body, Some(span.clone()), depth + 1);
                        }
                    }
                }
                None
            }
            _ => {
                if let Some(interp) = interpreter(&argv) {
                    match code_arg(&argv) {
                        Some(code) => push_code(ctx, out, &interp, &code, span.clone(), depth),
                        None => {
                            if let (1, Some(body)) = (argv.len(), stdin) {
                                push_code(ctx, out, &interp, body, span.clone(), depth);
                            }
                        }
                    }
                }
                None
            }
        };
        match next {
            Some(i) if i < argv.len() && i > 0 => {
                argv.drain(..i);
            }
            _ => return argv,
        }
    }
    out.incomplete = true;
    argv
}

/// Removes every `flag VALUE` pair (and `flagVALUE`) from argv.
fn drop_option_values(argv: &mut Vec<String>, flag: &str) {
    let mut k = 1;
    while k < argv.len() {
        if argv[k] == flag {
            let end = (k + 2).min(argv.len());
            argv.drain(k..end);
        } else if argv[k].starts_with(flag) && !argv[k].starts_with("--") {
            argv.remove(k);
        } else {
            k += 1;
        }
    }
}

/// The value of the first of `flags` in argv (`-c X`, `-cX`, `--command=X`).
fn flag_value(argv: &[String], flags: &[&str]) -> Option<String> {
    for (k, a) in argv.iter().enumerate() {
        for f in flags {
            if a == f {
                return argv.get(k + 1).cloned();
            }
            if f.starts_with("--") {
                if let Some(v) = a.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                    return Some(v.to_owned());
                }
            }
        }
    }
    None
}

/// Commands whose path operands are resolved against a preceding `cd`.
const PATH_CMDS: &[&str] = &[
    "rm", "shred", "find", "chmod", "chown", "chgrp", "truncate", "rsync", "mv", "rmdir", "unlink",
];

/// Database clients whose statements are judged as SQL ([`super::Scope::Code`] texts `sql ...`).
const DB_CLIENTS: &[&str] = &[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "sqlite",
    "duckdb",
    "sqlcmd",
    "clickhouse-client",
    "clickhouse",
    "cockroach",
    "mongo",
    "mongosh",
    "cqlsh",
    "snowsql",
    "bq",
    "pgcli",
    "mycli",
    "litecli",
    "usql",
    "influx",
    // redis-cli reads commands on stdin; they are judged like statements.
    "redis-cli",
];

/// Lexically normalises path arguments (`//`, `/./`, `..`) and resolves
/// relative operands of path-taking commands against a known `cd` target.
fn normalize_args(ctx: &Ctx, argv: &mut [String]) {
    let Some(name) = argv.first().cloned() else {
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
        if a.contains('/') || a == "~" {
            *a = normalize_path(a);
        }
    }
}

/// Lexical path normalisation; `~` stands for the home directory.
pub fn normalize_path(p: &str) -> String {
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
        _ => joined,
    }
}

/// Collects the SQL a database client is given and records each statement,
/// with string literals blanked so that data never matches.
fn push_sql(out: &mut Canonical, argv: &[String], stdin: Option<&str>, span: &Range<usize>) {
    let mut sql: Vec<String> = Vec::new();
    let mut positional = 0usize;
    let mut k = 1;
    while k < argv.len() {
        let a = argv[k].as_str();
        let value_flags = [
            "-execute",
            "-c",
            "--command",
            "-e",
            "--execute",
            "--eval",
            "-q",
            "--query",
            "-Q",
            "-cmd",
        ];
        if value_flags.contains(&a) {
            if let Some(v) = argv.get(k + 1) {
                sql.push(v.clone());
            }
            k += 2;
            continue;
        }
        if let Some((flag, v)) = a.split_once('=').filter(|_| a.starts_with('-')) {
            if value_flags.contains(&flag) {
                sql.push(v.to_owned());
            }
        } else if !a.starts_with('-') {
            positional += 1;
            // sqlite3/duckdb DB "SQL": the second operand is SQL.
            if positional >= 2
                && matches!(
                    argv[0].as_str(),
                    "sqlite3" | "sqlite" | "duckdb" | "litecli"
                )
            {
                sql.push(a.to_owned());
            }
            if matches!(argv[0].as_str(), "mongo" | "mongosh") && a.contains('(') {
                sql.push(a.to_owned());
            }
        }
        k += 1;
    }
    if let Some(body) = stdin {
        sql.push(body.to_owned());
    }
    for text in sql {
        for stmt in blank_sql_strings(&text).split(';') {
            let stmt = stmt.trim();
            if !stmt.is_empty() {
                out.codes.push(Item {
                    text: format!("sql {stmt}"),
                    span: span.clone(),
                });
            }
        }
    }
}

/// Replaces the contents of SQL string literals (`'...'`) with nothing.
fn blank_sql_strings(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut in_str = false;
    for c in sql.chars() {
        if c == '\'' {
            in_str = !in_str;
            out.push(c);
        } else if !in_str {
            out.push(c);
        }
    }
    out
}

/// `git -c key=value`: aliases starting with `!`, pagers, editors and ssh
/// commands are shell code.
fn git_config_code(
    ctx: &mut Ctx,
    out: &mut Canonical,
    kv: &str,
    span: &Range<usize>,
    depth: usize,
) {
    let Some((key, value)) = kv.split_once('=') else {
        return;
    };
    let key = key.to_ascii_lowercase();
    let code = if key.starts_with("alias.") {
        value.strip_prefix('!')
    } else if matches!(
        key.as_str(),
        "core.pager"
            | "core.editor"
            | "core.sshcommand"
            | "core.fsmonitor"
            | "sequence.editor"
            | "diff.external"
            | "core.askpass"
    ) || key.starts_with("pager.")
        || key.ends_with(".textconv")
        || key.ends_with(".command")
    {
        Some(value)
    } else {
        None
    };
    if let Some(c) = code {
        analyse(ctx, out, c, Some(span.clone()), depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(src: &str) -> Vec<String> {
        canonicalize(src)
            .commands
            .into_iter()
            .map(|i| i.text.replace(ARG_SPACE, "_"))
            .collect()
    }

    #[test]
    fn wrappers_are_stripped_level_by_level() {
        assert_eq!(
            cmds("sudo -u root timeout 5 nice -n 19 /bin/rm -rf /var"),
            vec![
                "sudo -u root timeout 5 nice -n 19 /bin/rm -rf /var",
                "timeout 5 nice -n 19 /bin/rm -rf /var",
                "nice -n 19 /bin/rm -rf /var",
                "rm -rf /var",
            ]
        );
    }

    #[test]
    fn shells_and_eval_are_followed() {
        assert!(cmds("bash -c \"rm -rf /\"").contains(&"rm -rf /".to_owned()));
        assert!(cmds("eval \"rm -rf ~\"").contains(&"rm -rf ~".to_owned()));
        assert!(cmds("sh -c 'rm -rf \"$0\"' ~").contains(&"rm -rf ~".to_owned()));
        assert!(cmds("cat <<EOF | bash\nrm -rf ~\nEOF").contains(&"rm -rf ~".to_owned()));
    }

    #[test]
    fn find_exec_and_xargs_run_commands() {
        assert!(
            cmds("find . -maxdepth 0 -exec sh -c 'rm -rf \"$HOME\"' \\;")
                .contains(&"rm -rf ~".to_owned())
        );
        assert!(cmds("echo ~ | xargs rm -rf").contains(&"rm -rf ~".to_owned()));
    }

    #[test]
    fn tool_native_execution_is_followed() {
        assert!(cmds("git -c alias.x='!rm -rf ~' x").contains(&"rm -rf ~".to_owned()));
        assert!(
            cmds("tar -cf /dev/null f --checkpoint=1 --checkpoint-action=exec='rm -rf ~'")
                .contains(&"rm -rf ~".to_owned())
        );
        assert!(cmds("vim -es -c '!rm -rf ~' -c 'q!'").contains(&"rm -rf ~".to_owned()));
        assert!(cmds("awk 'BEGIN{system(\"rm -rf ~\")}'").contains(&"rm -rf ~".to_owned()));
    }

    #[test]
    fn git_global_options_are_dropped() {
        assert!(cmds("git -C ../other reset --hard").contains(&"git reset --hard".to_owned()));
    }

    #[test]
    fn paths_are_normalised_and_follow_cd() {
        assert!(cmds("rm -rf /tmp/../etc").contains(&"rm -rf /etc".to_owned()));
        assert!(cmds("cd / && rm -rf *").contains(&"rm -rf /*".to_owned()));
        assert_eq!(normalize_path("./a//b/./c/"), "a/b/c");
        assert_eq!(normalize_path("../x"), "../x");
        assert_eq!(normalize_path("~/"), "~");
        assert_eq!(normalize_path("/.."), "/");
    }

    #[test]
    fn sql_is_extracted_without_its_string_literals() {
        let c = canonicalize("psql -c \"SELECT 'DROP TABLE users' AS example; DELETE FROM t\"");
        let codes: Vec<&str> = c.codes.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(codes, vec!["sql SELECT '' AS example", "sql DELETE FROM t"]);
    }

    #[test]
    fn empty_redirect_is_a_truncation() {
        assert!(cmds(": > src/main.rs").contains(&"truncate -s 0 src/main.rs".to_owned()));
    }

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

    #[test]
    fn data_arguments_keep_their_spaces_encoded() {
        assert_eq!(cmds("echo 'rm -rf /'"), vec!["echo rm_-rf_/".to_owned()]);
    }
}
