//! A small, permissive parser for POSIX sh / bash command lines.
//!
//! It turns a command line into the *simple commands* a shell would run, so
//! that rules judge what executes instead of raw text. It does:
//!
//! * quote removal (`'...'`, `"..."`, backslashes, line continuations) and
//!   ANSI-C strings (`$'\x72\x6d'`);
//! * expansion of `~`, `$HOME`, `${HOME}`, `${HOME:-...}` to `~`, of `$IFS`
//!   to a word break, of variables assigned earlier in the same input
//!   (`X=rm; $X -rf ~`), and of simple brace lists (`{/a,/b}`);
//! * lists and pipelines (`;` `&&` `||` `|` `|&` `&` newline), subshells and
//!   groups, comments;
//! * command substitution (`$(...)`, backticks, also inside double quotes and
//!   unquoted heredocs) and process substitution (`<(...)`, `>(...)`), whose
//!   commands are emitted as commands of their own;
//! * redirections (kept apart from argv) and heredocs / here-strings.
//!
//! It never fails: malformed input (an unterminated quote, say) is read as far
//! as it goes, and the parse is flagged [`Parsed::incomplete`] when a limit
//! was hit, so callers can fail closed. Running time is linear in the input.

use std::collections::HashMap;
use std::ops::Range;

use super::fast;

/// Deepest nesting of substitutions and re-parsed strings that is followed.
pub const MAX_DEPTH: usize = 24;
/// Most simple commands collected from one input.
pub const MAX_COMMANDS: usize = 4096;

/// One word of a simple command, after quote removal and expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's value.
    pub text: String,
    /// Whether any part of it was quoted or escaped.
    pub quoted: bool,
}

/// A redirection: operator and target word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The operator without fd digits: `>`, `>>`, `<`, `>&`, `&>`, `<<<`, ...
    pub op: String,
    /// The target (a path, an fd number, or the here-string's text).
    pub target: String,
}

/// Text fed to a command's standard input by a heredoc or here-string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stdin {
    /// The text.
    pub body: String,
    /// Whether the delimiter was quoted (`<<'EOF'`): no substitutions ran.
    pub literal: bool,
}

/// A simple command as the shell would run it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleCommand {
    /// Words, including leading `NAME=value` assignments.
    pub words: Vec<Word>,
    /// Redirections, in order.
    pub redirects: Vec<Redirect>,
    /// Heredoc or here-string text, if any.
    pub stdin: Option<Stdin>,
    /// Byte range of the command in the top-level input.
    pub span: Range<usize>,
    /// Nesting depth (0 = top level).
    pub depth: usize,
}

/// The result of parsing one command line.
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// Every simple command found, in source order (nested ones included).
    pub commands: Vec<SimpleCommand>,
    /// Pipelines of two or more commands, as indices into `commands`.
    pub pipelines: Vec<Vec<usize>>,
    /// A limit (depth, count) was hit: part of the input was not analysed.
    pub incomplete: bool,
    /// The input is not valid shell: an unterminated quote, substitution or
    /// heredoc. What a shell would run is then uncertain.
    pub syntax_error: bool,
    /// Byte ranges of the top-level input that are quoted-heredoc bodies:
    /// data that no shell rule should read as code.
    pub literal_bodies: Vec<Range<usize>>,
}

/// Parses `src` into simple commands (the canonicaliser calls
/// [`parse_into`] directly; this is the tests' entry point).
#[cfg(test)]
pub fn parse(src: &str) -> Parsed {
    let mut ctx = ParseState::default();
    parse_into(&mut ctx, src, None, 0);
    ctx.out
}

/// What a parse has gathered so far, shared by nested parses (an `sh -c`
/// argument, a heredoc fed to a shell): the commands found and the shell's
/// state (variables, the directory of the last `cd`).
#[derive(Default)]
pub(crate) struct ParseState {
    pub(crate) out: Parsed,
    /// Variables assigned so far (shell variables are global to the input).
    pub(crate) vars: HashMap<String, String>,
    /// The directory set by the last `cd` seen, if any.
    pub(crate) cwd: Option<String>,
    /// Arrays assigned so far (`a=(x y)`, `a+=(z)`, `a[2]=w`).
    pub(crate) arrays: HashMap<String, Vec<String>>,
    /// What process substitutions of literal commands print, by the word
    /// text they leave (`<(echo)`): a script handed over that way is read.
    pub(crate) procsubs: HashMap<String, String>,
    /// Files written earlier in the command line, by normalised path: their
    /// literal content, or `None` when downloaded (run later, they are
    /// judged as that content).
    pub(crate) files: HashMap<String, Option<String>>,
    /// The command being unwrapped runs under `sudo`/`doas`/`pkexec`.
    pub(crate) privileged: bool,
    /// The command being unwrapped reads a pipe or a redirected file.
    pub(crate) piped: bool,
}

/// Parses `src` and appends to `ctx`. When `span` is given (re-parsing the
/// argument of `sh -c`, say), every command found gets that span.
pub(crate) fn parse_into(
    ctx: &mut ParseState,
    src: &str,
    span: Option<Range<usize>>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        ctx.out.incomplete = true;
        return;
    }
    let mut p = Parser {
        src: src.as_bytes(),
        text: src,
        pos: 0,
        span,
        depth,
        pending_heredocs: Vec::new(),
        syntax_error: false,
    };
    p.parse_list(ctx, None);
    ctx.out.syntax_error |= p.syntax_error;
}

struct PendingHeredoc {
    cmd: usize,
    delim: String,
    literal: bool,
    strip_tabs: bool,
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    span: Option<Range<usize>>,
    depth: usize,
    pending_heredocs: Vec<PendingHeredoc>,
    /// An unterminated quote, substitution or heredoc was met.
    syntax_error: bool,
}

/// A command being assembled.
struct Building {
    words: Vec<Word>,
    redirects: Vec<Redirect>,
    stdin: Option<Stdin>,
    start: usize,
    /// Index the command will have in `ctx.out.commands` once pushed; it is
    /// reserved early so heredocs can refer to it.
    slot: Option<usize>,
}

const fn is_meta(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// Splits `NAME=value` if `word` is an assignment.
pub fn assignment(word: &str) -> Option<(&str, &str)> {
    if !word.starts_with(|c: char| c == '_' || c.is_ascii_alphabetic()) {
        return None;
    }
    let (name, value) = word.split_once('=')?;
    let name = name.strip_suffix('+').unwrap_or(name);
    // `a[2]=x`: an array element.
    let name = match name.split_once('[') {
        Some((n, idx)) if idx.ends_with(']') => n,
        _ => name,
    };
    is_name(name).then_some((name, value))
}

/// `name[N]=value`: the index and the value.
fn indexed(word: &str) -> Option<(usize, &str)> {
    let (lhs, value) = word.split_once('=')?;
    let (_, idx) = lhs.split_once('[')?;
    let idx = idx.strip_suffix(']')?.parse().ok()?;
    Some((idx, value))
}

/// The positional parameters `$1`..`$9` that are set, in order.
fn positional(ctx: &ParseState) -> Vec<String> {
    (1..=9)
        .map_while(|k| ctx.vars.get(&k.to_string()).cloned())
        .collect()
}

/// Word splitting of an unquoted expansion: blanks (or the characters of an
/// assigned `IFS`) become word breaks.
fn split_unquoted(ctx: &ParseState, v: &str) -> String {
    let ifs = ctx.vars.get("IFS").map(String::as_str);
    let is_sep = |c: char| match ifs {
        Some(set) => set.contains(c),
        None => c == ' ' || c == '\t' || c == '\n',
    };
    if !v.contains(is_sep) {
        return v.to_owned();
    }
    v.chars()
        .map(|c| if is_sep(c) { IFS_MARK } else { c })
        .collect()
}

/// A parameter expansion with an operator, `${name<rest>}` (`inner` is the
/// whole text between the braces), computed from the known value.
fn expand_op(ctx: &ParseState, name: &str, rest: &str, inner: &str) -> Option<String> {
    // `${!v}`: the variable named by v's value.
    if let Some(target) = inner.strip_prefix('!') {
        if is_name(target) {
            let n = ctx.vars.get(target)?;
            return match n.as_str() {
                "HOME" => Some("~".to_owned()),
                "PWD" => Some(".".to_owned()),
                _ => ctx.vars.get(n.as_str()).cloned(),
            };
        }
        return None;
    }
    // `${a[@]}`, `${a[*]}`, `${a[N]}`.
    if let Some(idx) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let arr = ctx.arrays.get(name)?;
        return match idx {
            "@" | "*" => Some(arr.join(&IFS_MARK.to_string())),
            n => arr.get(n.parse::<usize>().ok()?).cloned(),
        };
    }
    let value = match name {
        "HOME" => "~".to_owned(),
        "PWD" => ".".to_owned(),
        _ => ctx.vars.get(name)?.clone(),
    };
    let chars: Vec<char> = value.chars().collect();
    // Case changes.
    match rest {
        ",," => return Some(value.to_lowercase()),
        "^^" => return Some(value.to_uppercase()),
        "," | "^" => {
            let mut c = chars.clone();
            if let Some(f) = c.first_mut() {
                *f = if rest == "," {
                    f.to_ascii_lowercase()
                } else {
                    f.to_ascii_uppercase()
                };
            }
            return Some(c.into_iter().collect());
        }
        _ => {}
    }
    // Substrings `${v:off}` and `${v:off:len}`.
    if let Some(spec) = rest.strip_prefix(':') {
        let mut parts = spec.splitn(2, ':');
        let off: i64 = parts.next()?.trim().parse().ok()?;
        let n = chars.len() as i64;
        let start = if off < 0 {
            (n + off).max(0)
        } else {
            off.min(n)
        } as usize;
        let end = match parts.next() {
            Some(l) => {
                let l: i64 = l.trim().parse().ok()?;
                if l < 0 {
                    (n + l).max(start as i64) as usize
                } else {
                    (start + l as usize).min(chars.len())
                }
            }
            None => chars.len(),
        };
        return Some(chars[start..end].iter().collect());
    }
    // Pattern substitution `${v/p/r}`, `${v//p/r}` (literal patterns).
    if let Some(spec) = rest.strip_prefix('/') {
        let (all, spec) = match spec.strip_prefix('/') {
            Some(s) => (true, s),
            None => (false, spec),
        };
        let (pat, rep) = spec.split_once('/').unwrap_or((spec, ""));
        if pat.is_empty() || pat.contains(['*', '?', '[']) {
            return None;
        }
        return Some(if all {
            value.replace(pat, rep)
        } else {
            value.replacen(pat, rep, 1)
        });
    }
    // Prefix and suffix removal: `#p`, `##p`, `%p`, `%%p` with a literal
    // pattern, or `*` at one end.
    let (suffix, longest, pat) = if let Some(p) = rest.strip_prefix("%%") {
        (true, true, p)
    } else if let Some(p) = rest.strip_prefix('%') {
        (true, false, p)
    } else if let Some(p) = rest.strip_prefix("##") {
        (false, true, p)
    } else if let Some(p) = rest.strip_prefix('#') {
        (false, false, p)
    } else {
        return None;
    };
    // `~` stands for the home directory: its parent is `/home`.
    let value = if value == "~" || value.starts_with("~/") && suffix {
        value.replacen('~', "/home/~", 1)
    } else {
        value
    };
    let out = if suffix {
        if let Some(lit) = pat.strip_prefix('*') {
            let hit = if longest {
                value.find(lit)
            } else {
                value.rfind(lit)
            };
            hit.map_or(value.clone(), |i| value[..i].to_owned())
        } else if let Some(lit) = pat.strip_suffix('*') {
            let hit = if longest {
                value.find(lit)
            } else {
                value.rfind(lit)
            };
            hit.map_or(value.clone(), |i| value[..i].to_owned())
        } else {
            value.strip_suffix(pat).unwrap_or(&value).to_owned()
        }
    } else if let Some(lit) = pat.strip_suffix('*') {
        let hit = if longest {
            value.rfind(lit)
        } else {
            value.find(lit)
        };
        hit.map_or(value.clone(), |i| value[i + lit.len()..].to_owned())
    } else if let Some(lit) = pat.strip_prefix('*') {
        let hit = if longest {
            value.rfind(lit)
        } else {
            value.find(lit)
        };
        hit.map_or(value.clone(), |i| value[i + lit.len()..].to_owned())
    } else {
        value.strip_prefix(pat).unwrap_or(&value).to_owned()
    };
    if pat.contains(['?', '[']) || pat.matches('*').count() > 1 {
        return None;
    }
    Some(match out.strip_prefix("/home/~") {
        Some(r) => format!("~{r}"),
        None => out,
    })
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        self.src.get(self.pos + off).copied()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    fn span_of(&self, r: Range<usize>) -> Range<usize> {
        self.span.clone().unwrap_or(r)
    }

    /// Parses a command list until end of input or the closing byte `end`
    /// (consumed). Returns when done.
    fn parse_list(&mut self, ctx: &mut ParseState, end: Option<u8>) {
        let mut pipeline: Vec<usize> = Vec::new();
        let mut cur = self.new_building();
        loop {
            // Blanks and line continuations.
            while let Some(c) = self.peek() {
                if c == b' ' || c == b'\t' || c == b'\r' {
                    self.pos += 1;
                } else if c == b'\\' && self.peek_at(1) == Some(b'\n') {
                    self.pos += 2;
                } else {
                    break;
                }
            }
            let Some(c) = self.peek() else {
                // Input ended inside `( ... )` or `$( ... )`.
                self.syntax_error |= end.is_some();
                break;
            };
            if cur.words.is_empty() && cur.redirects.is_empty() {
                cur.start = self.pos;
            }
            match c {
                b'#' => {
                    // A comment runs to the end of the line.
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'\n' => {
                    self.pos += 1;
                    let done = self.finish(ctx, &mut cur);
                    self.end_pipeline(ctx, &mut pipeline, done);
                    self.read_heredocs(ctx);
                }
                b';' | b'&' => {
                    // `&>` and `&>>` are redirections, not separators.
                    if c == b'&' && self.peek_at(1) == Some(b'>') {
                        self.parse_redirect(ctx, &mut cur);
                        continue;
                    }
                    self.pos += 1;
                    if self.peek() == Some(c) {
                        self.pos += 1; // `&&` or `;;`
                    }
                    let done = self.finish(ctx, &mut cur);
                    self.end_pipeline(ctx, &mut pipeline, done);
                }
                b'|' => {
                    self.pos += 1;
                    if self.peek() == Some(b'|') {
                        self.pos += 1;
                        let done = self.finish(ctx, &mut cur);
                        self.end_pipeline(ctx, &mut pipeline, done);
                    } else {
                        if self.peek() == Some(b'&') {
                            self.pos += 1;
                        }
                        if let Some(i) = self.finish(ctx, &mut cur) {
                            pipeline.push(i);
                        }
                    }
                }
                b'(' => {
                    self.pos += 1;
                    if self.peek() == Some(b'(') {
                        // Arithmetic command `(( ... ))`: skip it.
                        self.skip_balanced(b'(', b')');
                        continue;
                    }
                    let done = self.finish(ctx, &mut cur);
                    self.end_pipeline(ctx, &mut pipeline, done);
                    self.nested(ctx, |p, ctx| p.parse_list(ctx, Some(b')')));
                }
                b')' => {
                    if end == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                    self.pos += 1; // stray `)`: ignore (`case` patterns).
                }
                b'<' | b'>' => {
                    if self.peek_at(1) == Some(b'(') {
                        let w = self.parse_word(ctx);
                        cur.words.push(w);
                    } else {
                        self.parse_redirect(ctx, &mut cur);
                    }
                }
                _ => {
                    // A word, possibly an fd number before a redirection.
                    if c.is_ascii_digit() {
                        let mut i = self.pos;
                        while self.src.get(i).is_some_and(u8::is_ascii_digit) {
                            i += 1;
                        }
                        if matches!(self.src.get(i), Some(b'<' | b'>')) {
                            self.pos = i;
                            self.parse_redirect(ctx, &mut cur);
                            continue;
                        }
                    }
                    let w = self.parse_word(ctx);
                    // `a=(x y)` / `a+=(z)`: an array assignment.
                    if !w.quoted && w.text.ends_with('=') && self.peek() == Some(b'(') {
                        if let Some((name, _)) = assignment(&w.text) {
                            let name = name.to_owned();
                            let append = w.text.ends_with("+=");
                            self.pos += 1;
                            let elems = self.parse_array(ctx);
                            let arr = ctx.arrays.entry(name.clone()).or_default();
                            if !append {
                                arr.clear();
                            }
                            arr.extend(elems);
                            let first = arr.first().cloned().unwrap_or_default();
                            cur.words.push(Word {
                                text: format!("{name}={first}"),
                                quoted: true,
                            });
                            continue;
                        }
                    }
                    // `{` `}` and reserved words of compound commands are
                    // not commands themselves; what follows them is.
                    if cur.words.is_empty()
                        && !w.quoted
                        && matches!(
                            w.text.as_str(),
                            "{" | "}"
                                | "!"
                                | "if"
                                | "then"
                                | "else"
                                | "elif"
                                | "fi"
                                | "do"
                                | "done"
                                | "while"
                                | "until"
                                | "time"
                        )
                    {
                        continue;
                    }
                    if cur.words.is_empty() && !w.quoted && self.peek() == Some(b'(') {
                        // `name() { ...; }`: a function definition; parse its
                        // body as commands of its own.
                        if self.peek_at(1) == Some(b')') {
                            self.pos += 2;
                            continue;
                        }
                    }
                    if cur.words.is_empty() && !w.quoted && w.text == "function" {
                        // `function name [()] { ...; }`: skip the header; the
                        // body's commands are parsed as commands.
                        while matches!(self.peek(), Some(b' ' | b'\t')) {
                            self.pos += 1;
                        }
                        let _name = self.parse_word(ctx);
                        if self.starts_with("()") {
                            self.pos += 2;
                        }
                        continue;
                    }
                    if cur.words.is_empty()
                        && !w.quoted
                        && matches!(w.text.as_str(), "for" | "case" | "select")
                    {
                        // Skip the header up to `do`/`in`: its words are data.
                        self.skip_header();
                        continue;
                    }
                    if w.text.is_empty() && !w.quoted {
                        continue; // `$IFS` alone, say
                    }
                    self.push_word(ctx, &mut cur, w);
                }
            }
            if ctx.out.commands.len() >= MAX_COMMANDS {
                ctx.out.incomplete = true;
                return;
            }
        }
        let done = self.finish(ctx, &mut cur);
        self.end_pipeline(ctx, &mut pipeline, done);
        self.read_heredocs(ctx);
    }

    /// The elements of `(x y ...)` after the opening parenthesis, up to and
    /// over the closing one.
    fn parse_array(&mut self, ctx: &mut ParseState) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.pos += 1;
            }
            match self.peek() {
                None => {
                    self.syntax_error = true;
                    return out;
                }
                Some(b')') => {
                    self.pos += 1;
                    return out;
                }
                Some(_) => {
                    let before = self.pos;
                    let w = self.parse_word(ctx);
                    if self.pos == before {
                        self.pos += 1; // a stray operator: skip it
                    } else if out.len() < 4096 {
                        out.extend(w.text.split(IFS_MARK).map(str::to_owned));
                    }
                }
            }
        }
    }

    fn new_building(&self) -> Building {
        Building {
            words: Vec::new(),
            redirects: Vec::new(),
            stdin: None,
            start: self.pos,
            slot: None,
        }
    }

    /// Adds a word, splitting on `$IFS` markers and expanding brace lists.
    fn push_word(&mut self, ctx: &mut ParseState, cur: &mut Building, w: Word) {
        let _ = ctx;
        if fast::enabled() && !w.text.contains(IFS_MARK) {
            // One part, the word itself: moved, not copied (most words).
            match expand_braces(&w) {
                Some(list) => cur.words.extend(list),
                None => cur.words.push(w),
            }
            return;
        }
        for part in w.text.split(IFS_MARK) {
            if part.is_empty() && w.text.contains(IFS_MARK) {
                continue;
            }
            let part_word = Word {
                text: part.to_owned(),
                quoted: w.quoted,
            };
            match expand_braces(&part_word) {
                Some(list) => cur.words.extend(list),
                None => cur.words.push(part_word),
            }
        }
    }

    fn skip_header(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' || c == b';' {
                self.pos += 1;
                break;
            }
            self.pos += 1;
        }
        // Skip to and over `do` or `in`.
    }

    /// Runs `f` one level deeper, or flags the parse incomplete and skips the
    /// balanced rest when the depth limit is reached.
    fn nested(&mut self, ctx: &mut ParseState, f: impl FnOnce(&mut Self, &mut ParseState)) {
        if self.depth >= MAX_DEPTH {
            ctx.out.incomplete = true;
            self.skip_balanced(b'(', b')');
            return;
        }
        self.depth += 1;
        f(self, ctx);
        self.depth -= 1;
    }

    /// Skips to just after the `close` that balances an already-consumed
    /// `open`, ignoring quoted text; returns whether it was found (else the
    /// position is the end of the input). Linear.
    fn skip_balanced(&mut self, open: u8, close: u8) -> bool {
        let mut level = 1usize;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\\' => self.pos += 1,
                b'\'' => {
                    while let Some(c) = self.peek() {
                        self.pos += 1;
                        if c == b'\'' {
                            break;
                        }
                    }
                }
                c if c == open => level += 1,
                c if c == close => {
                    level -= 1;
                    if level == 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        // Input ended before the closing bracket.
        self.syntax_error = true;
        self.pos = self.pos.min(self.src.len());
        false
    }

    /// Ends the command being built; returns its index if it had words or
    /// redirections.
    fn finish(&mut self, ctx: &mut ParseState, cur: &mut Building) -> Option<usize> {
        let b = std::mem::replace(cur, self.new_building());
        if b.words.is_empty() && b.redirects.is_empty() && b.stdin.is_none() {
            return None;
        }
        // Plain assignments set variables for later commands.
        if b.words.iter().all(|w| assignment(&w.text).is_some()) {
            for w in &b.words {
                if let Some((n, v)) = assignment(&w.text) {
                    match indexed(&w.text) {
                        Some((idx, val)) => {
                            let a = ctx.arrays.entry(n.to_owned()).or_default();
                            if idx < 4096 {
                                if a.len() <= idx {
                                    a.resize(idx + 1, String::new());
                                }
                                a[idx] = val.to_owned();
                            }
                        }
                        None => {
                            ctx.vars.insert(n.to_owned(), v.to_owned());
                        }
                    }
                }
            }
        }
        // `set -- a b c` sets the positional parameters.
        if b.words.len() >= 2 && b.words[0].text == "set" && b.words[1].text == "--" {
            for k in 1..=9 {
                ctx.vars.remove(&k.to_string());
            }
            for (k, w) in b.words[2..].iter().enumerate().take(9) {
                ctx.vars.insert((k + 1).to_string(), w.text.clone());
            }
        }
        let cmd = SimpleCommand {
            words: b.words,
            redirects: b.redirects,
            stdin: b.stdin,
            span: self.span_of(b.start..self.pos.max(b.start)),
            depth: self.depth,
        };
        let idx = match b.slot {
            Some(i) => {
                ctx.out.commands[i] = cmd;
                i
            }
            None => {
                ctx.out.commands.push(cmd);
                ctx.out.commands.len() - 1
            }
        };
        Some(idx)
    }

    fn end_pipeline(&self, ctx: &mut ParseState, pipeline: &mut Vec<usize>, last: Option<usize>) {
        if let Some(i) = last {
            pipeline.push(i);
        }
        if pipeline.len() >= 2 {
            ctx.out.pipelines.push(std::mem::take(pipeline));
        } else {
            pipeline.clear();
        }
    }

    /// Reserves the command's slot so a heredoc body read later can attach.
    fn reserve(&self, ctx: &mut ParseState, cur: &mut Building) -> usize {
        if let Some(i) = cur.slot {
            return i;
        }
        ctx.out.commands.push(SimpleCommand {
            words: Vec::new(),
            redirects: Vec::new(),
            stdin: None,
            span: self.span_of(cur.start..self.pos),
            depth: self.depth,
        });
        let i = ctx.out.commands.len() - 1;
        cur.slot = Some(i);
        i
    }

    fn parse_redirect(&mut self, ctx: &mut ParseState, cur: &mut Building) {
        let ops = [
            "<<<", "<<-", "&>>", ">>", "<<", ">&", "<&", "&>", ">|", "<>", ">", "<",
        ];
        let op = ops
            .iter()
            .find(|o| self.starts_with(o))
            .copied()
            .unwrap_or(">");
        self.pos += op.len();
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        if op == "<<" || op == "<<-" {
            let start = self.pos;
            let w = self.parse_word(ctx);
            let raw = &self.text[start..self.pos];
            let literal = raw.contains(['\'', '"', '\\']);
            let slot = self.reserve(ctx, cur);
            self.pending_heredocs.push(PendingHeredoc {
                cmd: slot,
                delim: w.text,
                literal,
                strip_tabs: op == "<<-",
            });
            return;
        }
        let w = self.parse_word(ctx);
        if op == "<" {
            if let Some(data) = ctx.procsubs.get(&w.text) {
                cur.stdin = Some(Stdin {
                    body: data.clone(),
                    literal: false,
                });
            }
        }
        if op == "<<<" {
            cur.stdin = Some(Stdin {
                body: w.text.clone(),
                literal: w.quoted,
            });
        }
        cur.redirects.push(Redirect {
            op: op.to_owned(),
            target: w.text,
        });
    }

    /// Reads the bodies of heredocs opened on the line just ended.
    fn read_heredocs(&mut self, ctx: &mut ParseState) {
        for h in std::mem::take(&mut self.pending_heredocs) {
            let body_start = self.pos;
            let (body_end, mut after) = self.find_heredoc_end(body_start, &h.delim, h.strip_tabs);
            if after > self.src.len() {
                // No delimiter line: the body runs to the end of the input.
                self.syntax_error = true;
                after = self.src.len();
            }
            let body = self.text[body_start..body_end.max(body_start)].to_owned();
            self.pos = after;
            if !h.literal {
                // Substitutions in an unquoted heredoc run.
                let span = self.span_of(body_start..body_end.max(body_start));
                let mut inner = Parser {
                    src: body.as_bytes(),
                    text: &body,
                    pos: 0,
                    span: Some(span),
                    depth: self.depth + 1,
                    pending_heredocs: Vec::new(),
                    syntax_error: false,
                };
                while inner.pos < inner.src.len() {
                    if inner.peek() == Some(b'\\') {
                        inner.pos += 2;
                    } else if matches!(inner.peek(), Some(b'$' | b'`')) {
                        let mut sink = String::new();
                        inner.parse_dollar_or_backtick(ctx, &mut sink, true);
                    } else {
                        inner.pos += 1;
                    }
                }
            }
            if h.literal && self.span.is_none() {
                ctx.out
                    .literal_bodies
                    .push(body_start..body_end.max(body_start));
            }
            if let Some(cmd) = ctx.out.commands.get_mut(h.cmd) {
                cmd.stdin = Some(Stdin {
                    body,
                    literal: h.literal,
                });
            }
        }
    }

    /// Where a heredoc body that starts at `start` ends: (end of the body,
    /// position after the delimiter line). Without a delimiter line the body
    /// runs to the end of the input and the second value is one past the end.
    /// Linear, with `memchr`'s SIMD search.
    fn find_heredoc_end(&self, start: usize, delim: &str, strip_tabs: bool) -> (usize, usize) {
        let len = self.src.len();
        let line_matches = |line_start: usize| -> Option<usize> {
            let mut i = line_start;
            if strip_tabs {
                while self.src.get(i) == Some(&b'\t') {
                    i += 1;
                }
            }
            let end = i + delim.len();
            (self.src.get(i..end) == Some(delim.as_bytes())
                && matches!(self.src.get(end), None | Some(b'\n')))
            .then_some(end)
        };
        if let Some(end) = line_matches(start) {
            return (start, (end + 1).min(len));
        }
        if strip_tabs {
            for nl in memchr::memchr_iter(b'\n', &self.src[start..]) {
                if let Some(end) = line_matches(start + nl + 1) {
                    return (start + nl + 1, (end + 1).min(len));
                }
            }
        } else {
            let needle = format!("\n{delim}");
            for hit in memchr::memmem::find_iter(&self.src[start..], needle.as_bytes()) {
                if let Some(end) = line_matches(start + hit + 1) {
                    return (start + hit + 1, (end + 1).min(len));
                }
            }
        }
        (len, len + 1)
    }

    /// Parses one word starting at the current position.
    fn parse_word(&mut self, ctx: &mut ParseState) -> Word {
        let mut text = String::new();
        let mut quoted = false;
        let at_start = self.pos;
        // A quoted `~` is a file name, not the home directory.
        let mut literal_tilde = false;
        while let Some(c) = self.peek() {
            if text.is_empty() && matches!(c, b'\'' | b'"' | b'\\') && self.peek_at(1) == Some(b'~')
            {
                literal_tilde = true;
            }
            match c {
                b'\'' => {
                    quoted = true;
                    self.pos += 1;
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c != b'\'') {
                        self.pos += 1;
                    }
                    text.push_str(&self.text[start..self.pos]);
                    self.syntax_error |= self.pos >= self.src.len();
                    self.pos = (self.pos + 1).min(self.src.len());
                }
                b'"' => {
                    quoted = true;
                    self.pos += 1;
                    self.parse_double_quoted(ctx, &mut text);
                }
                b'\\' => {
                    quoted = true;
                    match self.peek_at(1) {
                        Some(b'\n') => self.pos += 2,
                        Some(_) => {
                            let ch = self.char_at(self.pos + 1);
                            text.push(ch);
                            self.pos += 1 + ch.len_utf8();
                        }
                        None => self.pos += 1,
                    }
                }
                b'$' | b'`' => {
                    if c == b'$' && self.peek_at(1) == Some(b'\'') {
                        quoted = true;
                        self.pos += 2;
                        self.parse_ansi_c(&mut text);
                    } else {
                        self.parse_dollar_or_backtick(ctx, &mut text, false);
                    }
                }
                b'~' if self.pos == at_start => {
                    text.push('~');
                    self.pos += 1;
                }
                b'<' | b'>' if self.peek_at(1) == Some(b'(') => {
                    // Process substitution: its commands run.
                    self.pos += 2;
                    let first = ctx.out.commands.len();
                    self.nested(ctx, |p, ctx| p.parse_list(ctx, Some(b')')));
                    let word = format!("{}({})", c as char, output_name(ctx, first));
                    if let Some(data) = literal_subst(ctx, first) {
                        ctx.procsubs.insert(word.clone(), data);
                    }
                    text.push_str(&word);
                }
                c if is_meta(c) => break,
                c if c.is_ascii() => {
                    // A run of plain ASCII is copied in one go.
                    let start = self.pos;
                    while self.peek().is_some_and(|c| {
                        c.is_ascii()
                            && !is_meta(c)
                            && !matches!(c, b'\'' | b'"' | b'\\' | b'$' | b'`' | b'~')
                    }) {
                        self.pos += 1;
                    }
                    if self.pos == start {
                        // `~` after the word's start: a plain character.
                        text.push(c as char);
                        self.pos += 1;
                    } else {
                        text.push_str(&self.text[start..self.pos]);
                    }
                }
                _ => {
                    let ch = self.char_at(self.pos);
                    text.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        if literal_tilde && text.starts_with('~') {
            text.insert_str(0, "./");
        }
        Word { text, quoted }
    }

    fn char_at(&self, i: usize) -> char {
        self.text
            .get(i..)
            .and_then(|s| s.chars().next())
            .unwrap_or('\u{fffd}')
    }

    /// Inside `"..."` (the opening quote consumed): `\` escapes only
    /// `$ \` " \ newline`; substitutions run.
    fn parse_double_quoted(&mut self, ctx: &mut ParseState, text: &mut String) {
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.pos += 1;
                    return;
                }
                b'\\' => match self.peek_at(1) {
                    Some(b'\n') => self.pos += 2,
                    Some(n @ (b'$' | b'`' | b'"' | b'\\')) => {
                        text.push(n as char);
                        self.pos += 2;
                    }
                    _ => {
                        text.push('\\');
                        self.pos += 1;
                    }
                },
                b'$' | b'`' => self.parse_dollar_or_backtick(ctx, text, true),
                _ => {
                    let ch = self.char_at(self.pos);
                    text.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        // Input ended inside the double quotes.
        self.syntax_error = true;
    }

    /// `$'...'` (opening consumed): decodes C escapes.
    fn parse_ansi_c(&mut self, text: &mut String) {
        let mut bytes: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                b'\'' => {
                    closed = true;
                    break;
                }
                b'\\' => {
                    let Some(e) = self.peek() else { break };
                    self.pos += 1;
                    let hex = |p: &mut Self, max: usize| {
                        let mut v: u32 = 0;
                        let mut n = 0;
                        while n < max {
                            match p.peek().and_then(|c| (c as char).to_digit(16)) {
                                Some(d) => {
                                    v = v * 16 + d;
                                    p.pos += 1;
                                    n += 1;
                                }
                                None => break,
                            }
                        }
                        v
                    };
                    match e {
                        b'n' => bytes.push(b'\n'),
                        b't' => bytes.push(b'\t'),
                        b'r' => bytes.push(b'\r'),
                        b'a' => bytes.push(7),
                        b'b' => bytes.push(8),
                        b'e' | b'E' => bytes.push(0x1b),
                        b'f' => bytes.push(0x0c),
                        b'v' => bytes.push(0x0b),
                        b'x' => bytes.push(hex(self, 2) as u8),
                        b'u' | b'U' => {
                            let v = hex(self, if e == b'u' { 4 } else { 8 });
                            let ch = char::from_u32(v).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            bytes.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            bytes.push(v as u8);
                        }
                        other => bytes.push(other),
                    }
                }
                other => bytes.push(other),
            }
        }
        self.syntax_error |= !closed;
        text.push_str(&String::from_utf8_lossy(&bytes));
    }

    /// `$...` or a backtick at the current position.
    fn parse_dollar_or_backtick(&mut self, ctx: &mut ParseState, text: &mut String, in_dq: bool) {
        if self.peek() == Some(b'`') {
            self.pos += 1;
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'\\' {
                    self.pos += 2;
                    continue;
                }
                if c == b'`' {
                    break;
                }
                self.pos += 1;
            }
            let end = self.pos.min(self.src.len());
            self.syntax_error |= self.peek().is_none();
            self.pos = (end + 1).min(self.src.len());
            let inner = self.text[start..end].replace("\\`", "`");
            let first = ctx.out.commands.len();
            let span = self.span_of(start..end);
            parse_into(ctx, &inner, Some(span), self.depth + 1);
            text.push_str(&subst_value(ctx, first));
            return;
        }
        // `$`
        match self.peek_at(1) {
            Some(b'(') if self.peek_at(2) == Some(b'(') => {
                self.pos += 3;
                self.skip_balanced(b'(', b')');
                if self.peek() == Some(b')') {
                    self.pos += 1;
                }
                text.push_str("$((…))");
            }
            Some(b'(') => {
                self.pos += 2;
                let first = ctx.out.commands.len();
                self.nested(ctx, |p, ctx| p.parse_list(ctx, Some(b')')));
                text.push_str(&subst_value(ctx, first));
            }
            Some(b'{') => {
                self.pos += 2;
                let start = self.pos;
                // The closing `}` is not part of the expansion; an input that
                // ends first has none to drop (and may end in a multi-byte
                // character).
                let end = if self.skip_balanced(b'{', b'}') {
                    self.pos - 1
                } else {
                    self.pos
                };
                let inner = self.text.get(start..end.max(start)).unwrap_or_default();
                let name_end = inner
                    .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
                    .unwrap_or(inner.len());
                let name = &inner[..name_end];
                let rest = &inner[name_end..];
                // `${X:-default}` and friends: use the default when X is unknown.
                let fallback = rest
                    .strip_prefix(":-")
                    .or_else(|| rest.strip_prefix('-'))
                    .or_else(|| rest.strip_prefix(":="))
                    .or_else(|| rest.strip_prefix('='));
                // `${X:0:0}`, `${X#pat}`, `${#X}`...: computed from X's value
                // when it is known (substrings, pattern substitution, case
                // changes, prefix/suffix removal, indirection, arrays).
                let known = if rest.is_empty() || fallback.is_some() {
                    self.expand_var(ctx, name, in_dq)
                } else {
                    expand_op(ctx, name, rest, inner).map(|v| {
                        if in_dq {
                            v
                        } else {
                            split_unquoted(ctx, &v)
                        }
                    })
                };
                match known {
                    Some(v) => text.push_str(&v),
                    None => match fallback {
                        Some(_) if self.depth >= MAX_DEPTH => {
                            // Nested defaults past the limit: stop here.
                            ctx.out.incomplete = true;
                            text.push_str("${…}");
                        }
                        Some(d) => {
                            let mut sub = Parser {
                                src: d.as_bytes(),
                                text: d,
                                pos: 0,
                                span: self.span.clone(),
                                depth: self.depth + 1,
                                pending_heredocs: Vec::new(),
                                syntax_error: false,
                            };
                            let w = sub.parse_word(ctx);
                            text.push_str(&w.text);
                        }
                        None => {
                            text.push_str("${");
                            text.push_str(inner);
                            text.push('}');
                        }
                    },
                }
            }
            Some(c) if c == b'_' || c.is_ascii_alphanumeric() => {
                self.pos += 1;
                let start = self.pos;
                if c.is_ascii_digit() {
                    self.pos += 1;
                } else {
                    while self
                        .peek()
                        .is_some_and(|c| c == b'_' || c.is_ascii_alphanumeric())
                    {
                        self.pos += 1;
                    }
                }
                let name = &self.text[start..self.pos];
                match self.expand_var(ctx, name, in_dq) {
                    Some(v) if !in_dq && name != "IFS" => text.push_str(&split_unquoted(ctx, &v)),
                    Some(v) => text.push_str(&v),
                    None => {
                        text.push('$');
                        text.push_str(name);
                    }
                }
            }
            Some(b'@' | b'*') => {
                // The positional parameters (`set -- a b; "$@"`).
                self.pos += 2;
                let all = positional(ctx);
                if all.is_empty() {
                    text.push_str("$@");
                } else {
                    text.push_str(&all.join(&IFS_MARK.to_string()));
                }
            }
            _ => {
                text.push('$');
                self.pos += 1;
            }
        }
    }

    fn expand_var(&self, ctx: &ParseState, name: &str, in_dq: bool) -> Option<String> {
        match name {
            "HOME" => Some("~".to_owned()),
            // The working directory: relative paths are judged as such.
            "PWD" => Some(".".to_owned()),
            "IFS" => Some(if in_dq { ' ' } else { IFS_MARK }.to_string()),
            _ => ctx.vars.get(name).cloned(),
        }
    }
}

/// Marks an unquoted `$IFS` expansion inside a word: the word is split there.
const IFS_MARK: char = '\u{1}';

/// The value a command substitution contributes to its word: the output of a
/// literal `echo`/`printf`, or `$(name)` where `name` is the first command.
fn subst_value(ctx: &ParseState, first: usize) -> String {
    if let Some(text) = literal_subst(ctx, first) {
        return text;
    }
    format!("$({})", output_name(ctx, first))
}

/// What the commands of a substitution starting at `first` print, when it
/// is known here: a literal `echo`/`printf`/`dirname`, or the paths an `ls`
/// lists through filters (`$(ls ~/.ssh/id_* | grep -v pub | head -1)`).
fn literal_subst(ctx: &ParseState, first: usize) -> Option<String> {
    let all = &ctx.out.commands[first.min(ctx.out.commands.len())..];
    // The substitution's own level: `$(dirname $(pwd))` is one `dirname`.
    let level = all.iter().map(|c| c.depth).min()?;
    let own: Vec<&SimpleCommand> = all.iter().filter(|c| c.depth == level).collect();
    let cmds = own.as_slice();
    let argv =
        |c: &SimpleCommand| -> Vec<String> { c.words.iter().map(|w| w.text.clone()).collect() };
    match cmds {
        [only] if only.redirects.is_empty() => literal_output(&argv(only)),
        [lister, filters @ ..]
            if command_word(lister) == Some("ls")
                && filters.iter().all(|f| {
                    matches!(
                        command_word(f),
                        Some("grep" | "head" | "tail" | "sort" | "uniq")
                    )
                }) =>
        {
            let a = argv(lister);
            let paths: Vec<String> = a[1..]
                .iter()
                .filter(|x| !x.starts_with('-'))
                .cloned()
                .collect();
            (!paths.is_empty()).then(|| paths.join(" "))
        }
        _ => None,
    }
}

/// What `echo` or `printf` with literal arguments prints (escapes decoded,
/// `%s` filled), trimmed of its final newline; `None` for anything else.
pub fn literal_output(argv: &[String]) -> Option<String> {
    let (name, args) = argv.split_first()?;
    match name.as_str() {
        // `$(which rm)`, `$(command -v rm)`: the command's path; its name
        // is what matters.
        "which" | "whence" => args.iter().rev().find(|a| !a.starts_with('-')).cloned(),
        "command" | "type"
            if args
                .iter()
                .any(|a| matches!(a.as_str(), "-v" | "-p" | "-P")) =>
        {
            args.iter().rev().find(|a| !a.starts_with('-')).cloned()
        }
        "pwd" => Some(".".to_owned()),
        // Lexical path arithmetic: `$(dirname "$PWD")` is the parent.
        "dirname" => {
            let p = args.iter().rev().find(|a| !a.starts_with('-'))?;
            Some(parent_of(p))
        }
        "realpath" | "abspath" => args.iter().rev().find(|a| !a.starts_with('-')).map(|p| {
            if p.is_empty() {
                ".".to_owned()
            } else {
                p.clone()
            }
        }),
        "readlink"
            if args
                .iter()
                .any(|a| a.starts_with("-") && a.contains(['f', 'e', 'm'])) =>
        {
            args.iter().rev().find(|a| !a.starts_with('-')).cloned()
        }
        "echo" => {
            let mut escapes = false;
            let mut rest = args;
            while let Some((first, tail)) = rest.split_first() {
                if first.len() > 1
                    && first.starts_with('-')
                    && first[1..].chars().all(|c| "neE".contains(c))
                {
                    escapes |= first.contains('e');
                    rest = tail;
                } else {
                    break;
                }
            }
            let joined = rest.join(" ");
            Some(if escapes { unescape(&joined) } else { joined })
        }
        "printf" => {
            let (fmt, rest) = args.split_first()?;
            let fmt = unescape(fmt);
            let mut out = String::new();
            let mut values = rest.iter();
            let mut chars = fmt.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                // Skip flags and width, then take the conversion.
                while chars.peek().is_some_and(|c| "-+ #0123456789.".contains(*c)) {
                    chars.next();
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('b') => out.push_str(&unescape(values.next().map_or("", String::as_str))),
                    Some(_) => out.push_str(values.next().map_or("", String::as_str)),
                    None => {}
                }
            }
            Some(out.trim_end_matches('\n').to_owned())
        }
        _ => None,
    }
}

/// The lexical parent of a path (`.` -> `..`, `~` -> `/home`).
fn parent_of(p: &str) -> String {
    let p = p.trim_end_matches('/');
    match p {
        "" | "." => "..".to_owned(),
        "~" => "/home".to_owned(),
        ".." => "../..".to_owned(),
        _ => match p.rfind('/') {
            Some(0) => "/".to_owned(),
            Some(i) => p[..i].to_owned(),
            None => ".".to_owned(),
        },
    }
}

/// Decodes C-style escapes (`\x72`, `\162`, `\n`, ...) as `echo -e` and
/// `printf` do.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            bytes.push(b[i]);
            i += 1;
            continue;
        }
        let e = b[i + 1];
        i += 2;
        match e {
            b'n' => bytes.push(b'\n'),
            b't' => bytes.push(b'\t'),
            b'r' => bytes.push(b'\r'),
            b'\\' => bytes.push(b'\\'),
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < b.len() && b[i].is_ascii_hexdigit() {
                    v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                bytes.push(v as u8);
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 4 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                bytes.push(v as u8);
            }
            other => {
                bytes.push(b'\\');
                bytes.push(other);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Basename of the command whose output a substitution yields: the last
/// command at the substitution's own level (`$(echo x | base64 -d)` ->
/// `base64`).
fn output_name(ctx: &ParseState, first: usize) -> String {
    let cmds = ctx.out.commands.get(first..).unwrap_or_default();
    // A substitution that dumps the environment carries it, whatever the
    // filters after it (`$(env | base64 -w0)`): sinks judge it as `env`.
    if cmds.iter().any(|c| {
        let w: Vec<&str> = c.words.iter().map(|w| w.text.as_str()).collect();
        matches!(
            w.as_slice(),
            ["env" | "printenv"] | ["export" | "declare", "-p" | "-x"]
        )
    }) {
        return "env".to_owned();
    }
    let Some(level) = cmds.iter().map(|c| c.depth).min() else {
        return String::new();
    };
    cmds.iter()
        .rev()
        .filter(|c| c.depth == level)
        .find_map(|c| command_word(c).map(|w| basename(w).to_owned()))
        .unwrap_or_default()
}

/// The command word of a simple command: its first word that is not an
/// assignment.
pub fn command_word(c: &SimpleCommand) -> Option<&str> {
    c.words
        .iter()
        .find(|w| assignment(&w.text).is_none())
        .map(|w| w.text.as_str())
}

/// The last path component of a command word (`/bin/rm` -> `rm`).
pub fn basename(word: &str) -> &str {
    let w = word.trim_end_matches('/');
    match w.rfind('/') {
        Some(i) if i + 1 < w.len() => &w[i + 1..],
        _ => word,
    }
}

/// Expands one unquoted `{a,b,...}` list in a word; `None` if there is none.
fn expand_braces(w: &Word) -> Option<Vec<Word>> {
    // Nearly every word has no `{`: a plain byte scan answers that without
    // the generic substring searcher.
    if w.quoted || fast::enabled() && !w.text.bytes().any(|b| b == b'{') {
        return None;
    }
    let open = w.text.find('{')?;
    let close = open + w.text[open..].find('}')?;
    let inner = &w.text[open + 1..close];
    if !inner.contains(',') || inner.contains('{') {
        return None;
    }
    let (pre, post) = (&w.text[..open], &w.text[close + 1..]);
    Some(
        inner
            .split(',')
            .map(|alt| Word {
                text: format!("{pre}{alt}{post}"),
                quoted: false,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argvs(src: &str) -> Vec<Vec<String>> {
        parse(src)
            .commands
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.clone()).collect())
            .collect()
    }

    #[test]
    fn quote_removal_joins_spliced_words() {
        assert_eq!(argvs("r''m -rf ~/"), vec![vec!["rm", "-rf", "~/"]]);
        assert_eq!(
            argvs("\"r\"m -r\"f\" /srv"),
            vec![vec!["rm", "-rf", "/srv"]]
        );
        assert_eq!(
            argvs("\\rm -rf /home/u"),
            vec![vec!["rm", "-rf", "/home/u"]]
        );
    }

    #[test]
    fn ifs_and_ansi_c_are_expanded() {
        assert_eq!(argvs("rm${IFS}-rf${IFS}/"), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(argvs("$'\\x72\\x6d' -rf ~"), vec![vec!["rm", "-rf", "~"]]);
    }

    #[test]
    fn home_forms_become_tilde() {
        assert_eq!(
            argvs("rm -rf -- \"$HOME\""),
            vec![vec!["rm", "-rf", "--", "~"]]
        );
        assert_eq!(
            argvs("rm -rf ${HOME:-/x}/a"),
            vec![vec!["rm", "-rf", "~/a"]]
        );
    }

    #[test]
    fn lists_and_pipelines_split_commands() {
        let p = parse("ls; rm -rf / && echo a | sh\ntrue || false");
        assert_eq!(p.commands.len(), 6);
        assert_eq!(p.pipelines, vec![vec![2, 3]]);
    }

    #[test]
    fn substitutions_are_commands_of_their_own() {
        assert_eq!(
            argvs("echo \"$(rm -rf ~)\""),
            vec![vec!["rm", "-rf", "~"], vec!["echo", "$(rm)"]]
        );
        assert_eq!(argvs("$(echo rm) -rf /")[1], vec!["rm", "-rf", "/"]);
        assert_eq!(argvs("echo `whoami`")[0], vec!["whoami"]);
    }

    #[test]
    fn single_quotes_are_data() {
        let a = argvs("echo '$(rm -rf ~)'");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn assignments_propagate() {
        assert_eq!(argvs("X=rm; $X -rf ~")[1], vec!["rm", "-rf", "~"]);
    }

    #[test]
    fn heredocs_attach_and_substitute_unless_quoted() {
        let p = parse("true <<EOF\n$(rm -rf ~)\nEOF");
        assert!(p
            .commands
            .iter()
            .any(|c| c.words.first().is_some_and(|w| w.text == "rm")));
        let p = parse("true <<'EOF'\n$(rm -rf ~)\nEOF\nls");
        assert!(!p
            .commands
            .iter()
            .any(|c| c.words.first().is_some_and(|w| w.text == "rm")));
        assert_eq!(p.commands[0].stdin.as_ref().unwrap().body, "$(rm -rf ~)\n");
        assert_eq!(p.commands.last().unwrap().words[0].text, "ls");
    }

    #[test]
    fn redirect_targets_are_not_argv() {
        let p = parse("echo x >> ~/.bashrc 2>/dev/null");
        assert_eq!(p.commands[0].words.len(), 2);
        assert_eq!(p.commands[0].redirects[0].target, "~/.bashrc");
        assert_eq!(p.commands[0].redirects[1].op, ">");
    }

    #[test]
    fn brace_lists_expand() {
        assert_eq!(
            argvs("rm -rf {/home,/srv}"),
            vec![vec!["rm", "-rf", "/home", "/srv"]]
        );
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(argvs("ls -la  # rm -rf /"), vec![vec!["ls", "-la"]]);
    }

    #[test]
    fn deep_nesting_is_flagged_and_linear() {
        let src = "$(".repeat(10_000) + &")".repeat(10_000);
        let p = parse(&src);
        assert!(p.incomplete);
    }

    #[test]
    fn unterminated_quotes_do_not_panic() {
        for s in ["'abc", "\"abc", "$(", "`", "${", "$'\\x", "a <<", "\\"] {
            let _ = parse(s);
        }
    }
}
