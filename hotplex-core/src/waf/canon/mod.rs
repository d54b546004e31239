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
//!
//! This module holds the entry points and the flow: [`canonicalize`] parses,
//! `analyse` walks commands and pipelines, `unwrap_command` and
//! `unwrap_argv` peel one wrapper level after another, dispatching on the
//! command name to the module that knows the command:
//!
//! * `wrappers`: commands that run another command (a table for the simple
//!   ones, code for the rest);
//! * `shells`: commands that run shell code they are handed;
//! * `tools`: programs that run code they are configured with;
//! * `code`: interpreter code (`python -c`, `awk`, `sed`);
//! * `sql`: statements given to database clients;
//! * `glob`: obfuscated command words (`/???/r?`, `r${x}m`);
//! * `paths`: path arguments and the directory a `cd` leaves behind;
//! * `args`: getopt-style option parsing the others share.

mod args;
mod code;
mod glob;
mod paths;
mod shells;
mod sql;
mod tools;
mod wrappers;

use std::ops::Range;

use super::effect::{self, decode, Effect, Kind, Sink};
use super::fast;
use super::shell::{self, assignment, basename, ParseState, SimpleCommand};
use crate::verdict::Level;

#[cfg(test)]
use self::paths::normalize_path;

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
    /// What the commands do (see [`super::effect`]), in the order found.
    pub effects: Vec<Effect>,
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
    let mut ctx = ParseState::default();
    let mut out = Canonical::default();
    analyse(&mut ctx, &mut out, src, None, 0);
    out.incomplete |= ctx.out.incomplete;
    out.syntax_error = ctx.out.syntax_error;
    out.literal_bodies = std::mem::take(&mut ctx.out.literal_bodies);
    out
}

/// Lexical path normalisation (for the effect tables).
pub(crate) fn normalize(p: &str) -> String {
    paths::normalize_path(p)
}

/// The first path `find` walks (for the effect tables).
pub(crate) fn find_start_of(argv: &[String]) -> String {
    wrappers::find_start(argv)
}

/// A sink for the effects of the command at `span`.
fn sink<'a>(ctx: &ParseState, out: &'a mut Canonical, span: &Range<usize>) -> Sink<'a> {
    Sink {
        out: &mut out.effects,
        span: span.clone(),
        privileged: ctx.privileged,
    }
}

/// Runs a file written earlier in the command line: its literal content is
/// analysed as a script; a downloaded file is code nobody has read.
fn run_file(
    ctx: &mut ParseState,
    out: &mut Canonical,
    content: Option<String>,
    span: &Range<usize>,
    depth: usize,
) {
    match content {
        Some(text) => analyse_nested(ctx, out, &text, span, depth),
        None => sink(ctx, out, span).push_at(
            Kind::Exec,
            "a downloaded file",
            "runs a downloaded file",
            Some(Level::Moderate),
        ),
    }
}

/// The content of a file or process substitution named by a script
/// operand, taken (a script is judged once) when this line wrote it.
fn script_content(ctx: &mut ParseState, operand: &str) -> Option<Option<String>> {
    if let Some(data) = ctx.procsubs.get(operand) {
        return Some(Some(data.clone()));
    }
    ctx.files.remove(&paths::normalize_path(operand))
}

/// Records what a command writes into files: literal `echo`/`printf`/`cat`
/// output redirected there, here-strings through `tee`, downloads.
fn record_writes(ctx: &mut ParseState, cmd: &SimpleCommand, argv: &[String]) {
    let Some(name) = argv.first().map(|a| basename(a)) else {
        return;
    };
    let stdin = cmd.stdin.as_ref().map(|s| s.body.clone());
    let fetcher = matches!(name, "curl" | "wget");
    let put = |ctx: &mut ParseState, path: &str, content: Option<String>, append: bool| {
        if path.starts_with("/dev/") || ctx.files.len() >= 256 {
            return;
        }
        let key = paths::normalize_path(path);
        let merged = match (append, ctx.files.get(&key), content) {
            (true, Some(Some(old)), Some(new)) => Some(format!("{old}\n{new}")),
            (_, _, c) => c,
        };
        ctx.files.insert(key, merged);
    };
    for r in &cmd.redirects {
        if matches!(r.op.as_str(), ">" | ">>" | ">|" | "&>") {
            let content = if fetcher {
                None
            } else if name == "cat" && argv.len() == 1 {
                stdin.clone()
            } else if let Some(text) = shell::literal_output(argv) {
                Some(text)
            } else {
                continue;
            };
            put(ctx, &r.target, content, r.op == ">>");
        }
    }
    if name == "tee" {
        for a in argv.iter().skip(1).filter(|a| !a.starts_with('-')) {
            put(ctx, a, stdin.clone(), argv.iter().any(|x| x == "-a"));
        }
    }
    if fetcher {
        let mut out_file = None;
        let mut remote_name = name == "wget";
        let mut url = None;
        let mut k = 1;
        while k < argv.len() {
            let a = argv[k].as_str();
            match a {
                "-o" | "--output" | "--output-document" => {
                    out_file = argv.get(k + 1).cloned();
                    k += 1;
                }
                "-O" if name == "wget" => {
                    out_file = argv.get(k + 1).cloned();
                    k += 1;
                }
                "-O" | "--remote-name" => remote_name = true,
                _ if a.starts_with("--output-document=") || a.starts_with("--output=") => {
                    out_file = a.split_once('=').map(|(_, v)| v.to_owned());
                }
                _ if a.starts_with("-o") && a.len() > 2 && !a.starts_with("--") => {
                    out_file = Some(a[2..].to_owned());
                }
                _ if a.contains("://") => url = Some(a.to_owned()),
                _ => {}
            }
            k += 1;
        }
        let file = out_file.or_else(|| {
            remote_name
                .then(|| url.and_then(|u| u.rsplit('/').next().map(str::to_owned)))
                .flatten()
        });
        if let Some(f) = file.filter(|f| !f.is_empty() && f != "-") {
            put(ctx, &f, None, false);
        }
    }
}

/// Recipes of a makefile: tab-indented lines and `target: ; recipe`.
fn make_recipes(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let recipe = if let Some(r) = line.strip_prefix('\t') {
            Some(r)
        } else {
            line.split_once(':')
                .filter(|(t, _)| !t.contains('='))
                .and_then(|(_, rest)| rest.split_once(';'))
                .map(|(_, r)| r)
        };
        if let Some(r) = recipe {
            out.push_str(r.trim_start_matches(['@', '-', '+', ' ']));
            out.push('\n');
        }
    }
    out
}

/// `make -f -` / `make -f /dev/stdin`, or `make -f FILE`: the makefile.
fn make_file(argv: &[String]) -> Option<&str> {
    let i = argv
        .iter()
        .position(|a| a == "-f" || a == "--file" || a == "--makefile")?;
    argv.get(i + 1).map(String::as_str)
}

/// Whether argv decodes its input (for failing closed when it feeds a
/// shell and the input is not literal).
fn is_decoder(argv: &[String]) -> bool {
    let has = |f: &str| argv.iter().any(|a| a == f);
    let name = argv.first().map_or("", String::as_str);
    match name {
        "base64" | "base32" | "basenc" => has("-d") || has("--decode") || has("-D") || has("-di"),
        "xxd" => argv.iter().any(|a| a.starts_with('-') && a.contains('r')),
        "openssl" => has("-d") || has("-base64") && has("-d"),
        "tr" | "rev" | "gunzip" | "zcat" | "bzcat" | "xzcat" | "uudecode" | "zstdcat" => true,
        "gzip" | "bzip2" | "xz" | "zstd" => has("-d") || has("-dc") || has("--decompress"),
        "perl" => argv
            .iter()
            .any(|a| a.contains("pack(") || a.contains("pack ")),
        n if code::interpreter(argv).is_some() && n.starts_with("python") => {
            argv.windows(2).any(|w| w[0] == "-m" && w[1] == "base64") && has("-d")
        }
        _ => false,
    }
}

/// What a pipeline stage writes, given what it reads (`input`) or its own
/// heredoc: decoders applied to literal input, pass-through for `cat` and
/// `tee`, literal output otherwise.
fn stage_output(
    cmd: &SimpleCommand,
    argv: Option<&Vec<String>>,
    input: Option<String>,
) -> Option<String> {
    let a = argv?;
    let own = cmd.stdin.as_ref().map(|s| s.body.clone());
    let inp = || own.clone().or_else(|| input.clone());
    let name = a.first().map_or("", String::as_str);
    let operands = a.iter().skip(1).filter(|x| !x.starts_with('-')).count();
    match name {
        "base64" | "openssl" if is_decoder(a) => {
            let no_file = if name == "base64" {
                operands == 0
            } else {
                !a.iter().any(|x| x == "-in")
            };
            no_file
                .then(inp)
                .flatten()
                .and_then(|t| decode::base64_text(&t))
        }
        n if n.starts_with("python") && is_decoder(a) => (operands <= 1)
            .then(inp)
            .flatten()
            .and_then(|t| decode::base64_text(&t)),
        "xxd" if is_decoder(a) && a.iter().any(|x| x.contains('p')) && operands == 0 => {
            inp().and_then(|t| decode::hex(&t))
        }
        "tr" => {
            let sets: Vec<String> = a.get(1..).unwrap_or_default().to_vec();
            inp().and_then(|t| decode::tr(&sets, &t))
        }
        "rev" if operands == 0 => inp().map(|t| decode::rev(&t)),
        "cat" if a.len() == 1 => inp(),
        "tee" => inp(),
        "perl" => {
            // `print pack("H*", "726d...")`
            let code = code::code_arg(a)?;
            let at = code.find("pack")?;
            let lits: Vec<&str> = code[at..].split(['"', '\'']).skip(1).step_by(2).collect();
            match lits.as_slice() {
                [fmt, hex, ..] if fmt.starts_with('H') => decode::hex(hex),
                _ => None,
            }
        }
        _ => produced_data(cmd, argv),
    }
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

/// Parses `src` (the whole input, or code found inside it) and emits the
/// canonical texts of every command and pipeline in it.
fn analyse(
    ctx: &mut ParseState,
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
    // Commands that read a pipe (the effect tables ask: a partition editor
    // fed a script rewrites the table).
    let piped: Vec<usize> = ctx.out.pipelines[first_pipe..last_pipe]
        .iter()
        .flat_map(|p| p[1..].iter().copied())
        .collect();
    let outer_piped = ctx.piped;
    for i in first..last {
        // Move the command out while it is unwrapped (nested analysis only
        // appends to the list), so a large heredoc body is never copied.
        let mut cmd = std::mem::take(&mut ctx.out.commands[i]);
        let reads_pipe = piped.contains(&i);
        ctx.piped =
            outer_piped || reads_pipe || cmd.redirects.iter().any(|r| r.op == "<" || r.op == "<>");
        // Only the pipeline pass below reads a command's words again, and
        // only those of a command that reads a pipe (is it `xargs`?); the
        // others' words are moved into argv instead of copied.
        let argv = unwrap_command(ctx, out, &mut cmd, reads_pipe);
        ctx.piped = outer_piped;
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
        // What the previous command writes may become code or arguments;
        // decoders in between are applied to literal text.
        let p0 = pipe[0];
        let mut data = stage_output(&ctx.out.commands[p0], innermost.get(p0 - first), None);
        let mut decoded = innermost.get(p0 - first).is_some_and(|a| is_decoder(a));
        for w in pipe.windows(2) {
            let next = w[1];
            let next_argv = innermost.get(next - first).cloned().unwrap_or_default();
            let nspan = ctx.out.commands[next].span.clone();
            let incoming = data.take();
            data = stage_output(&ctx.out.commands[next], Some(&next_argv), incoming.clone());
            let runs_stdin = shells::reads_script_from_stdin(&next_argv)
                || code::interpreter(&next_argv).is_some()
                    && (next_argv.len() == 1 || next_argv.len() == 2 && next_argv[1] == "-");
            let Some(data) = incoming else {
                if decoded && runs_stdin {
                    // Decoded text that cannot be read here runs: fail closed.
                    sink(ctx, out, &nspan).push_at(
                        Kind::Exec,
                        "decoded input",
                        "shell fed by an unresolved decoder",
                        Some(Level::Moderate),
                    );
                }
                decoded |= is_decoder(&next_argv);
                continue;
            };
            decoded |= is_decoder(&next_argv);
            let next_is_xargs = shell::command_word(&ctx.out.commands[next])
                .is_some_and(|w| basename(w) == "xargs");
            if next_argv.first().is_some_and(|n| n == "sftp") {
                effect::tools::sftp_batch(&data, &mut sink(ctx, out, &nspan));
            }
            if next_argv
                .first()
                .is_some_and(|n| n == "make" || n == "gmake")
                && make_file(&next_argv).is_some_and(|f| f == "-" || f == "/dev/stdin")
            {
                analyse(ctx, out, &make_recipes(&data), Some(nspan), depth + 1);
            } else if shells::reads_script_from_stdin(&next_argv) {
                analyse(ctx, out, &data, Some(nspan), depth + 1);
            } else if next_argv.first().is_some_and(|n| sql::is_db_client(n)) {
                sql::push_sql(out, &next_argv, Some(&data), &nspan);
            } else if let Some(name) = code::interpreter(&next_argv) {
                let from_stdin =
                    next_argv.len() == 1 || next_argv.len() == 2 && next_argv[1] == "-";
                if code::code_arg(&next_argv).is_none() && from_stdin {
                    code::push_code(ctx, out, &name, &data, nspan, depth);
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

/// The smallest range covering both `a` and `b`.
fn merge(a: &Range<usize>, b: &Range<usize>) -> Range<usize> {
    a.start.min(b.start)..a.end.max(b.end)
}

/// [`analyse`] for code found inside the command at `span` (the argument of
/// `sh -c`, a git alias, ...): one nesting level deeper, every command
/// reported at the span of the command that carried the code.
fn analyse_nested(
    ctx: &mut ParseState,
    out: &mut Canonical,
    src: &str,
    span: &Range<usize>,
    depth: usize,
) {
    analyse(ctx, out, src, Some(span.clone()), depth + 1);
}

/// Literal text a command writes to stdout that a pipe could hand on: a
/// heredoc or here-string through `cat`, or `echo`/`printf` arguments.
fn produced_data(cmd: &SimpleCommand, argv: Option<&Vec<String>>) -> Option<String> {
    let argv = argv?;
    match argv.first().map(String::as_str)? {
        "cat" if argv.len() == 1 => cmd.stdin.as_ref().map(|s| s.body.clone()),
        // Paths under the start: judged as the start path itself.
        "find" => Some(wrappers::find_start(argv)),
        "ls" => Some(
            argv.iter()
                .skip(1)
                .filter(|a| !a.starts_with('-'))
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => shell::literal_output(argv),
    }
}

/// Unwraps one parsed simple command; returns its innermost argv. Its words
/// are moved out into argv unless `keep_words`.
fn unwrap_command(
    ctx: &mut ParseState,
    out: &mut Canonical,
    cmd: &mut SimpleCommand,
    keep_words: bool,
) -> Vec<String> {
    for r in &cmd.redirects {
        if r.op != "<<<" {
            out.redirects.push(Item {
                text: format!("{} {}", r.op, r.target),
                span: cmd.span.clone(),
            });
        }
    }
    let n_assigns = cmd
        .words
        .iter()
        .take_while(|w| assignment(&w.text).is_some())
        .count();
    tools::code_assignments(
        ctx,
        out,
        cmd.words[..n_assigns].iter().map(|w| w.text.as_str()),
        &cmd.span,
        cmd.depth,
    );
    let argv: Vec<String> = if keep_words || !fast::enabled() {
        cmd.words[n_assigns..]
            .iter()
            .map(|w| w.text.clone())
            .collect()
    } else {
        cmd.words.drain(n_assigns..).map(|w| w.text).collect()
    };
    let cmd = &*cmd;
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
                paths::normalize_args(ctx, &mut t);
                out.commands.push(Item {
                    text: render(&t),
                    span: cmd.span.clone(),
                });
            }
        }
        return argv;
    }
    record_writes(ctx, cmd, &argv);
    for r in &cmd.redirects {
        if matches!(r.op.as_str(), ">" | ">>" | ">|" | "&>" | "&>>") {
            let t = paths::normalize_path(&r.target);
            sink(ctx, out, &cmd.span).push(Kind::Write, t.clone(), "redirect");
            // A git hook runs on every commit or checkout: judge its code.
            if t.contains(".git/hooks/") {
                if let Some(Some(code)) = ctx.files.get(&t).cloned() {
                    analyse_nested(ctx, out, &code, &cmd.span, cmd.depth);
                }
            }
        }
    }
    let stdin = cmd.stdin.as_ref().map(|s| s.body.as_str());
    // `sh < <(curl ...)`: the process substitution is the script.
    let mut argv = argv;
    if stdin.is_none() && argv.first().is_some_and(|a| shells::is_shell(basename(a))) {
        if let Some(r) = cmd.redirects.iter().find(|r| r.op == "<") {
            if r.target.starts_with("<(") {
                argv.push(r.target.clone());
            } else if let Some(content) = script_content(ctx, &r.target) {
                run_file(ctx, out, content, &cmd.span, cmd.depth);
            }
        }
    }
    // An obfuscated command word is judged both as written and as what it
    // may run; unknown variables in the arguments are dropped too.
    if let Some(real) = argv.first().and_then(|w| glob::deobfuscated_name(w)) {
        let mut alt = argv.clone();
        alt[0] = real;
        for a in alt.iter_mut().skip(1) {
            if a.contains('$') {
                *a = glob::strip_unknown_vars(a);
            }
        }
        let alt_inner = unwrap_argv(ctx, out, alt, &cmd.span, stdin, cmd.depth);
        unwrap_argv(ctx, out, argv, &cmd.span, stdin, cmd.depth);
        // Pipelines are judged by what the command may really run.
        return alt_inner;
    }
    unwrap_argv(ctx, out, argv, &cmd.span, stdin, cmd.depth)
}

/// What one wrapper level leaves to unwrap next.
enum Next {
    /// Nothing: the current argv is the innermost command.
    Done,
    /// The wrapped command starts at this index of the current argv (no
    /// command when the index is 0 or past the end).
    At(usize),
    /// This argv replaces the current one and is unwrapped in its place
    /// (`env -S 'cmd args'` splits one argument into an argv).
    Replace(Vec<String>),
    /// This argv is emitted as a level of its own and is the innermost
    /// command (`git` without its global options).
    Last(Vec<String>),
}

/// Emits canonical commands for `argv` and every wrapper level inside it;
/// returns the innermost argv. Privilege a wrapper level gains (`sudo`)
/// holds for the levels inside it only.
fn unwrap_argv(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: Vec<String>,
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Vec<String> {
    let was = ctx.privileged;
    let inner = unwrap_levels(ctx, out, argv, span, stdin, depth);
    ctx.privileged = was;
    inner
}

/// What a masked grep pattern becomes: its words kept (rules that look for
/// credential words in a grep of the environment still see them), its path
/// punctuation gone (so it never reads as a path operand).
fn masked(pattern: &str) -> String {
    let words: String = pattern
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("<pattern:{words}>")
}

/// Grep-like programs: their pattern operand is data, not a path.
fn mask_pattern(argv: &mut [String]) {
    let (short, long): (&str, &[&str]) = match argv[0].as_str() {
        "grep" | "egrep" | "fgrep" | "zgrep" => (
            "ABCmdDe",
            &[
                "context",
                "after-context",
                "before-context",
                "max-count",
                "include",
                "exclude",
                "exclude-dir",
                "label",
                "binary-files",
                "devices",
                "directories",
            ],
        ),
        "rg" | "ag" | "ack" => (
            "tTgmABCjMEer",
            &[
                "type",
                "type-not",
                "glob",
                "iglob",
                "max-count",
                "max-depth",
                "context",
                "after-context",
                "before-context",
                "threads",
                "encoding",
                "replace",
                "max-columns",
                "sort",
                "sortr",
                "color",
                "colors",
                "ignore-file",
                "path-separator",
                "pre",
                "pre-glob",
                "regexp",
                "file",
            ],
        ),
        _ => return,
    };
    let mut explicit = false;
    for k in 1..argv.len() {
        if matches!(argv[k - 1].as_str(), "-e" | "--regexp") {
            argv[k] = masked(&argv[k]);
            explicit = true;
        } else if let Some(p) = argv[k].strip_prefix("--regexp=") {
            argv[k] = format!("--regexp={}", masked(p));
            explicit = true;
        } else if matches!(argv[k].as_str(), "-f" | "--file") {
            explicit = true;
        }
    }
    if !explicit {
        let i = args::skip_opts(argv, 1, short, long);
        if let Some(p) = argv.get_mut(i) {
            *p = masked(p);
        }
    }
}

fn unwrap_levels(
    ctx: &mut ParseState,
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
        // A file this command line wrote, run by its path (`./run.sh`).
        if argv[0].contains('/') {
            if let Some(content) = script_content(ctx, &argv[0]) {
                run_file(ctx, out, content, span, depth);
            }
        }
        // The command word: unescaped basename (`/bin/rm`, `\rm` -> `rm`).
        // (Only a word with a directory part changes: most need no copy.)
        let base = basename(&argv[0]);
        if base.len() != argv[0].len() || !fast::enabled() {
            argv[0] = base.to_owned();
        }
        mask_pattern(&mut argv);
        paths::normalize_args(ctx, &mut argv);
        if matches!(argv[0].as_str(), "ssh" | "scp" | "sftp") {
            // `-i KEY` authenticates with the key; it does not send it.
            args::drop_option_values(&mut argv, "-i");
        }
        out.commands.push(Item {
            text: render(&argv),
            span: span.clone(),
        });
        {
            let piped = ctx.piped;
            let mut s = sink(ctx, out, span);
            effect::tools::effects(&argv, stdin, piped, &mut s);
            // Under sudo, a shell or interpreter that reads no script is an
            // interactive root shell.
            let name = argv[0].as_str();
            let interactive = stdin.is_none()
                && !piped
                && (shells::is_shell(name)
                    && argv.iter().skip(1).all(|a| a.starts_with('-') && a != "-c")
                    || code::interpreter(&argv).is_some() && argv.len() == 1);
            if s.privileged && interactive {
                s.push(Kind::Exec, name, "interactive shell");
            }
        }
        if matches!(argv[0].as_str(), "sudo" | "doas" | "run0" | "pkexec") {
            ctx.privileged = true;
        }
        if sql::is_db_client(&argv[0]) {
            sql::push_sql(out, &argv, stdin, span);
        }
        match unwrap_one(ctx, out, &argv, span, stdin, depth) {
            Next::At(i) if i < argv.len() && i > 0 => {
                argv.drain(..i);
            }
            Next::Replace(replacement) => argv = replacement,
            Next::Last(inner) => {
                out.commands.push(Item {
                    text: render(&inner),
                    span: span.clone(),
                });
                return inner;
            }
            Next::At(_) | Next::Done => return argv,
        }
    }
    out.incomplete = true;
    argv
}

/// Follows what the command `argv` (already emitted, command word reduced
/// to its basename) runs: code it is handed goes to [`analyse`], wrapped
/// commands found inside are unwrapped; the result says where the command
/// it wraps, if any, starts.
fn unwrap_one(
    ctx: &mut ParseState,
    out: &mut Canonical,
    argv: &[String],
    span: &Range<usize>,
    stdin: Option<&str>,
    depth: usize,
) -> Next {
    let name = argv[0].as_str();
    if let Some(wrapper) = wrappers::simple(name) {
        return Next::At(wrapper.command_at(argv));
    }
    if let Some(flags) = shells::code_flags(name) {
        return shells::flagged_code(ctx, out, argv, span, depth, flags);
    }
    match name {
        "cd" | "pushd" => {
            paths::change_dir(ctx, argv);
            Next::Done
        }
        "command" => wrappers::command(argv),
        "watch" => wrappers::watch(ctx, out, argv, span, depth),
        "flock" => wrappers::flock(ctx, out, argv, span, depth),
        "env" => wrappers::env(ctx, out, argv, span, depth),
        "xargs" => wrappers::xargs(ctx, out, argv, span, stdin, depth),
        "parallel" => wrappers::parallel(ctx, out, argv, span, depth),
        "find" => wrappers::find(ctx, out, argv, span, depth),
        "docker" | "podman" | "nerdctl" | "docker-compose" | "kubectl" | "oc" => {
            wrappers::container_exec(argv)
        }
        "systemd-run" => wrappers::systemd_run(argv),
        "make" | "gmake" => {
            let text = match make_file(argv) {
                Some("-" | "/dev/stdin") => stdin.map(str::to_owned),
                Some(f) => script_content(ctx, f).flatten(),
                None => None,
            };
            if let Some(t) = text {
                analyse_nested(ctx, out, &make_recipes(&t), span, depth);
            }
            Next::Done
        }
        "cmd" | "cmd.exe" | "CMD" | "CMD.EXE" => {
            let at = argv
                .iter()
                .position(|a| a.eq_ignore_ascii_case("/c") || a.eq_ignore_ascii_case("/k"));
            if let Some(i) = at {
                let code = argv[i + 1..].join(" ");
                let piped = ctx.piped;
                let stmts = effect::windows::cmd_code(&code, piped, &mut sink(ctx, out, span));
                for st in stmts {
                    out.commands.push(Item {
                        text: render(&st),
                        span: span.clone(),
                    });
                }
            }
            Next::Done
        }
        "powershell" | "powershell.exe" | "pwsh" | "pwsh.exe" => {
            effect::windows::powershell(argv, &mut sink(ctx, out, span));
            Next::Done
        }
        "bundle" | "poetry" | "pipenv" | "uv" | "pdm" | "hatch" | "rye" | "pnpm" | "yarn"
        | "npm" | "conda" | "mamba" => wrappers::package_runner(argv),
        "at" | "batch" | "source" | "." => shells::stdin_script(ctx, out, argv, span, stdin, depth),
        "eval" => shells::eval(ctx, out, argv, span, depth),
        "ssh" => shells::ssh(ctx, out, argv, span, depth),
        n if shells::is_shell(n) => shells::shell(ctx, out, argv, span, stdin, depth),
        "git" => tools::git(ctx, out, argv, span, depth),
        "tar" => tools::tar(ctx, out, argv, span, depth),
        "vim" | "vi" | "nvim" | "ex" | "view" => tools::vim(ctx, out, argv, span, depth),
        "awk" | "gawk" | "mawk" | "nawk" => code::awk(ctx, out, argv, span, depth),
        "sed" => code::sed(out, argv, span),
        _ => code::inline_code(ctx, out, argv, span, stdin, depth),
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
    fn data_arguments_keep_their_spaces_encoded() {
        assert_eq!(cmds("echo 'rm -rf /'"), vec!["echo rm_-rf_/".to_owned()]);
    }
}
