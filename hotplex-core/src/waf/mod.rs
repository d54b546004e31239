//! The command WAF: screens shell commands, prompts and Claude Code tool
//! calls before they run.
//!
//! ```
//! use hotplex_core::waf::{Detector, Level};
//!
//! let d = Detector::new();
//! let v = d.check_command("git status; rm -rf /");
//! assert!(v.blocked);
//! assert_eq!(v.level, Level::Critical);
//! assert!(d.check_command("ls -la").is_safe());
//! assert!(!d.check_command("echo 'rm -rf / is dangerous' >> NOTES.md").blocked);
//! ```
//!
//! # How a command is judged
//!
//! 1. Control bytes: a NUL is critical, other C0/C1 controls and bidi
//!    overrides are high (the seed's `null_byte` / `control_char`).
//! 2. `shell` parses the command line the way a shell would; `canon`
//!    strips wrappers and follows code into `sh -c`, `eval`, heredocs,
//!    interpreters and tool-native execution.
//! 3. Every rule is matched against the texts of its [`Scope`]: canonical
//!    commands, redirections, pipelines, interpreter code, or the raw text.
//!    All patterns of a scope are compiled into one `RegexSet`.
//! 4. The **most severe** match wins (ties: earlier rule). A parse that hit a
//!    limit is at least `moderate`, never `safe` (fail closed).
//!
//! A `Detector` is immutable once built, cheap to clone, and `Send + Sync`.

pub(crate) mod canon;
pub(crate) mod effect;
pub(crate) mod fast;
pub mod rule;
pub(crate) mod shell;

mod builtin;
mod prompt;
mod tool;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use once_cell::sync::OnceCell;
// Byte regexes: built-in rules run in ASCII mode (`(?-u)`), which keeps their
// automata small and every search on the DFA path; custom rules keep Unicode.
use regex::bytes::{Regex, RegexSet, RegexSetBuilder};

pub use self::rule::{parse_rules, Rule, RuleKind, Scope};
use crate::error::{Error, Result};
pub use crate::verdict::{Category, Level, Verdict};

/// Which entry point produced an audited verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// [`Detector::check_command`].
    Command,
    /// [`Detector::check_prompt`].
    Prompt,
    /// [`Detector::check_tool`].
    Tool,
}

impl CheckKind {
    /// `"command"`, `"prompt"` or `"tool"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CheckKind::Command => "command",
            CheckKind::Prompt => "prompt",
            CheckKind::Tool => "tool",
        }
    }
}

/// What the audit callback receives for every non-safe verdict.
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// The entry point that was called.
    pub kind: CheckKind,
    /// The input as given (for tool calls: the tool input JSON).
    pub input: &'a str,
    /// The verdict returned to the caller.
    pub verdict: &'a Verdict,
}

/// The audit callback type. It runs synchronously on the checking thread, in
/// call order; a panic inside it is caught and ignored.
pub type AuditFn = Arc<dyn Fn(&AuditEvent<'_>) + Send + Sync>;

/// Configures and builds a [`Detector`].
#[derive(Clone)]
pub struct DetectorBuilder {
    builtins: bool,
    rules: Vec<Rule>,
    allow_paths: Vec<PathBuf>,
    audit: Option<AuditFn>,
}

impl Default for DetectorBuilder {
    fn default() -> Self {
        DetectorBuilder::new()
    }
}

impl std::fmt::Debug for DetectorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetectorBuilder")
            .field("builtins", &self.builtins)
            .field("custom_rules", &self.rules.len())
            .field("allow_paths", &self.allow_paths)
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

impl DetectorBuilder {
    /// A builder with the built-in rules on and nothing else.
    pub fn new() -> DetectorBuilder {
        DetectorBuilder {
            builtins: true,
            rules: Vec::new(),
            allow_paths: Vec::new(),
            audit: None,
        }
    }

    /// Turns the built-in rules on (default) or off.
    pub fn builtin_rules(&mut self, on: bool) -> &mut Self {
        self.builtins = on;
        self
    }

    /// Adds one rule (after the built-ins).
    pub fn rule(&mut self, rule: Rule) -> &mut Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules from a custom rule file's text, in either format (see
    /// [`rule`]). Errors name the offending line; nothing is added on error.
    pub fn rules_from_str(&mut self, text: &str) -> Result<&mut Self> {
        let parsed = parse_rules(text, self.rules.len() + 1)?;
        self.rules.extend(parsed);
        Ok(self)
    }

    /// Adds a path that file tools may touch even where a rule would object
    /// (a project that keeps its own `.env`, say). The path is canonicalised
    /// (symlinks resolved) when it exists; a path under it is allowed.
    pub fn allow_path(&mut self, path: impl AsRef<Path>) -> Result<&mut Self> {
        let p = path.as_ref();
        if p.as_os_str().is_empty() || !p.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "allow path must be absolute: {}",
                p.display()
            )));
        }
        self.allow_paths.push(tool::canonical_path(p));
        Ok(self)
    }

    /// Sets the callback that receives every non-safe verdict.
    pub fn on_audit(&mut self, f: impl Fn(&AuditEvent<'_>) + Send + Sync + 'static) -> &mut Self {
        self.audit = Some(Arc::new(f));
        self
    }

    /// Compiles the rules. Fails only if a rule added with
    /// [`rule`](Self::rule) has a bad pattern.
    pub fn build(&self) -> Result<Detector> {
        let mut rules = if self.builtins {
            builtin::rules()
        } else {
            Vec::new()
        };
        rules.extend(self.rules.iter().cloned());
        let mut compiled = Compiled::new(rules, self.allow_paths.clone(), self.audit.clone())?;
        compiled.builtins = self.builtins;
        Ok(Detector {
            inner: Arc::new(compiled),
        })
    }
}

/// The compiled patterns of one scope.
struct ScopeSet {
    set: RegexSet,
    /// Index into `Compiled::rules` for each pattern of `set`.
    rule_idx: Vec<usize>,
    /// The same patterns, one by one, for spans; compiled on first use
    /// (only text-scope matches need a span), which halves build time.
    patterns: Vec<String>,
    regexes: Vec<OnceCell<Option<Regex>>>,
    /// `unless` exceptions, aligned with `regexes`.
    unless: Vec<Option<Regex>>,
}

impl ScopeSet {
    fn new(rules: &[Rule], keep: impl Fn(&Rule) -> bool) -> Result<ScopeSet> {
        let mut pats = Vec::new();
        let mut rule_idx = Vec::new();
        let mut unless = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if !keep(r) {
                continue;
            }
            let pat = if r.kind == RuleKind::Safe {
                // Allow rules must match the whole command, never a prefix.
                format!("^(?:{})$", r.pattern)
            } else {
                r.pattern.clone()
            };
            let un = match &r.unless {
                Some(u) => Some(Regex::new(u).map_err(|e| Error::InvalidRule {
                    line: i + 1,
                    message: format!("rule {} (unless): {e}", r.id),
                })?),
                None => None,
            };
            pats.push(pat);
            rule_idx.push(i);
            unless.push(un);
        }
        let set = match RegexSetBuilder::new(&pats).size_limit(64 << 20).build() {
            Ok(set) => set,
            Err(_) => {
                // Name the offending rule: compile them one by one.
                for (k, p) in pats.iter().enumerate() {
                    if let Err(e) = Regex::new(p) {
                        let ri = rule_idx[k];
                        return Err(Error::InvalidRule {
                            line: ri + 1,
                            message: format!("rule {}: {e}", rules[ri].id),
                        });
                    }
                }
                return Err(Error::InvalidRule {
                    line: 0,
                    message: "rule set too large to compile".to_owned(),
                });
            }
        };
        let regexes = pats.iter().map(|_| OnceCell::new()).collect();
        Ok(ScopeSet {
            set,
            rule_idx,
            patterns: pats,
            regexes,
            unless,
        })
    }

    /// Indices (into this set) of the patterns that match `text`, with
    /// `unless` exceptions applied.
    fn matching<'a>(&'a self, text: &'a str) -> impl Iterator<Item = usize> + 'a {
        // Most texts match nothing: a plain `is_match` answers that without
        // collecting the match set.
        let any = !self.patterns.is_empty() && self.set.is_match(text.as_bytes());
        any.then(|| self.set.matches(text.as_bytes()))
            .into_iter()
            .flat_map(|m| m.into_iter())
            .filter(move |&k| {
                !self.unless[k]
                    .as_ref()
                    .is_some_and(|u| u.is_match(text.as_bytes()))
            })
    }

    /// Offers every rule matching `text` to `best`.
    fn scan<'t>(
        &self,
        rules: &[Rule],
        text: &'t str,
        item_span: Option<&Range<usize>>,
        best: &mut Best<'t>,
    ) {
        for k in self.matching(text) {
            let ri = self.rule_idx[k];
            let rule = &rules[ri];
            if !best.improves(rule.level, ri) {
                continue;
            }
            let span = match item_span {
                Some(s) => s.clone(),
                None => self.regexes[k]
                    .get_or_init(|| Regex::new(&self.patterns[k]).ok())
                    .as_ref()
                    .and_then(|re| re.find(text.as_bytes()))
                    .map_or(0..text.len(), |m| m.range()),
            };
            best.set(rule.level, ri, span, text);
        }
    }

    /// Every rule of this scope that matches `text` (for explanations).
    fn collect(&self, rules: &[Rule], scope: Scope, text: &str, hits: &mut Vec<Hit>) {
        for k in self.matching(text) {
            let r = &rules[self.rule_idx[k]];
            hits.push(Hit {
                rule_id: r.id.clone(),
                level: r.level,
                category: r.category,
                scope: scope.as_str(),
                text: readable(text),
            });
        }
    }

    /// Whether an allow rule matches `text` in full.
    fn any(&self, text: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(text.as_bytes())
    }
}

/// The running best candidate while scanning. It borrows the matched text
/// (every text scanned outlives the scan) and owns nothing until the
/// verdict is built: a better match found later costs no copy.
#[derive(Default)]
struct Best<'t> {
    hit: Option<(Level, usize, Range<usize>, &'t str)>,
}

impl<'t> Best<'t> {
    fn improves(&self, level: Level, rule: usize) -> bool {
        match &self.hit {
            None => true,
            Some((l, r, _, _)) => {
                level.severity() > l.severity() || (level.severity() == l.severity() && rule < *r)
            }
        }
    }

    fn set(&mut self, level: Level, rule: usize, span: Range<usize>, text: &'t str) {
        self.hit = Some((level, rule, span, text));
    }

    /// The level the verdict will have ([`Level::Safe`] when nothing hit).
    fn level(&self) -> Level {
        self.hit.as_ref().map_or(Level::Safe, |h| h.0)
    }

    fn verdict(self, rules: &[Rule]) -> Verdict {
        match self.hit {
            None => Verdict::safe(),
            Some((level, ri, span, canonical)) => {
                let r = &rules[ri];
                Verdict {
                    level,
                    blocked: level.blocks(),
                    rule_id: Some(r.id.clone()),
                    category: Some(r.category),
                    reason: r.description.clone(),
                    span: Some(span),
                    canonical: Some(readable(canonical)),
                    suggestions: r.suggestions.clone(),
                }
            }
        }
    }
}

struct Compiled {
    rules: Vec<Rule>,
    text: ScopeSet,
    script: ScopeSet,
    command: ScopeSet,
    redirect: ScopeSet,
    pipeline: ScopeSet,
    code: ScopeSet,
    safe: ScopeSet,
    /// Rules for natural-language prompts (indices continue after `rules`).
    prompt_rules: Vec<Rule>,
    prompt: ScopeSet,
    allow_paths: Vec<PathBuf>,
    audit: Option<AuditFn>,
    /// The built-in judges (rules and the effect model) are on.
    builtins: bool,
}

impl Compiled {
    fn new(
        rules: Vec<Rule>,
        allow_paths: Vec<PathBuf>,
        audit: Option<AuditFn>,
    ) -> Result<Compiled> {
        let danger = |scope: Scope| move |r: &Rule| r.kind == RuleKind::Danger && r.scope == scope;
        let prompt_rules = builtin::prompt_rules();
        Ok(Compiled {
            text: ScopeSet::new(&rules, danger(Scope::Text))?,
            script: ScopeSet::new(&rules, danger(Scope::Script))?,
            command: ScopeSet::new(&rules, danger(Scope::Command))?,
            redirect: ScopeSet::new(&rules, danger(Scope::Redirect))?,
            pipeline: ScopeSet::new(&rules, danger(Scope::Pipeline))?,
            code: ScopeSet::new(&rules, danger(Scope::Code))?,
            safe: ScopeSet::new(&rules, |r| r.kind == RuleKind::Safe)?,
            prompt: ScopeSet::new(&prompt_rules, |_| true)?,
            prompt_rules,
            rules,
            allow_paths,
            audit,
            builtins: true,
        })
    }
}

/// The command WAF. Build one with [`Detector::new`] or [`Detector::builder`];
/// share it freely (it is `Clone + Send + Sync`, and clones share the
/// compiled rules).
#[derive(Clone)]
pub struct Detector {
    inner: Arc<Compiled>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.inner.rules.len())
            .finish()
    }
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new()
    }
}

/// The result of the control-byte pre-check.
fn control_check(input: &str) -> Option<(Level, &'static str, String, Range<usize>)> {
    // A NUL anywhere is the most severe finding (as in the seed).
    if let Some(i) = memchr::memchr(0, input.as_bytes()) {
        return Some((
            Level::Critical,
            "injection.null_byte",
            "Null byte (\\x00) detected - potential WAF bypass attempt".to_owned(),
            i..i + 1,
        ));
    }
    // Fast path: C0 controls and DEL are single bytes; C1 controls start with
    // 0xC2 and bidi controls with 0xE2 in UTF-8 (both lead bytes, so slicing
    // there is on a character boundary). Most input has none of them.
    let suspicious = |b: u8| {
        (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f || b == 0xc2 || b == 0xe2
    };
    // Whole 64-byte chunks are tested without branches so the loop
    // vectorises; only a chunk with a hit is searched byte by byte.
    let bytes = input.as_bytes();
    let chunk = bytes
        .chunks(64)
        .position(|c| c.iter().fold(false, |acc, &b| acc | suspicious(b)))?;
    let first = chunk * 64 + bytes[chunk * 64..].iter().position(|&b| suspicious(b))?;
    for (off, ch) in input[first..].char_indices() {
        let i = first + off;
        let span = i..i + ch.len_utf8();
        match ch {
            '\t' | '\n' | '\r' => {}
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                return Some((
                    Level::High,
                    "injection.control_char",
                    format!("Control character (0x{:02X}) detected - potential WAF bypass attempt", c as u32),
                    span,
                ))
            }
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
                return Some((
                    Level::High,
                    "injection.control_char",
                    format!("Bidirectional control character (U+{:04X}) detected - text may not read as it runs", ch as u32),
                    span,
                ))
            }
            _ => {}
        }
    }
    None
}

fn precheck_verdict(level: Level, id: &str, reason: String, span: Range<usize>) -> Verdict {
    Verdict {
        level,
        blocked: level.blocks(),
        rule_id: Some(id.to_owned()),
        category: Some(Category::Injection),
        reason,
        span: Some(span),
        canonical: None,
        suggestions: vec![
            "Remove control characters from the input".to_owned(),
            "Send plain printable text".to_owned(),
        ],
    }
}

impl Detector {
    /// A detector with the built-in rules.
    pub fn new() -> Detector {
        // The built-in rules are tested to compile; a failure here is a bug
        // in this crate, not something input can cause.
        DetectorBuilder::new()
            .build()
            .expect("built-in WAF rules compile")
    }

    /// A builder for custom rules, allow-paths and an audit callback.
    pub fn builder() -> DetectorBuilder {
        DetectorBuilder::new()
    }

    /// The rules in evaluation order (built-ins first).
    pub fn rules(&self) -> &[Rule] {
        &self.inner.rules
    }

    /// Screens a shell command line, as an agent's Bash tool would run it.
    pub fn check_command(&self, command: &str) -> Verdict {
        let v = fail_closed(|| self.command_verdict(command));
        self.audit(CheckKind::Command, command, v)
    }

    /// Screens a natural-language prompt. Ordinary prose never blocks; code
    /// in it (fenced blocks, inline code, lines that are commands) is judged
    /// as commands, and a few raw-text rules catch dangerous commands and
    /// requests written in prose.
    pub fn check_prompt(&self, prompt: &str) -> Verdict {
        let v = fail_closed(|| prompt::check(self, prompt));
        self.audit(CheckKind::Prompt, prompt, v)
    }

    /// Screens a Claude Code tool call: `name` is the tool name (`Bash`,
    /// `Write`, `Edit`, `Read`, ...), `input_json` its input object. Errors
    /// only when `input_json` is not a JSON object.
    pub fn check_tool(&self, name: &str, input_json: &str) -> Result<Verdict> {
        let value: serde_json::Value = serde_json::from_str(input_json)
            .map_err(|e| Error::InvalidArgument(format!("tool input is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::InvalidArgument(
                "tool input must be a JSON object".to_owned(),
            ));
        }
        let v = fail_closed(|| tool::check(self, name, &value));
        Ok(self.audit(CheckKind::Tool, input_json, v))
    }

    /// [`check_tool`](Self::check_tool) for an already-parsed input.
    pub fn check_tool_value(&self, name: &str, input: &serde_json::Value) -> Verdict {
        let v = fail_closed(|| tool::check(self, name, input));
        if v.is_safe() {
            return v;
        }
        let text = input.to_string();
        self.audit(CheckKind::Tool, &text, v)
    }

    /// Shows how a command is judged: the canonical texts of every scope,
    /// every rule that matched (not only the most severe), and the verdict.
    /// Nothing is audited.
    pub fn explain(&self, command: &str) -> Explanation {
        // Each stage runs once; the verdict is what `check_command` returns.
        let control = control_check(command)
            .map(|(level, id, reason, span)| precheck_verdict(level, id, reason, span));
        let c = &*self.inner;
        let canon = canon::canonicalize(command);
        let verdict = fail_closed(|| match &control {
            Some(v) => v.clone(),
            None => self.judge_canonical(command, &canon, true),
        });
        let mut hits = Vec::new();
        if control.is_none() {
            c.text.collect(&c.rules, Scope::Text, command, &mut hits);
            c.script.collect(
                &c.rules,
                Scope::Script,
                &canon.script_text(command),
                &mut hits,
            );
            for item in &canon.commands {
                if !c.safe.any(&item.text) {
                    c.command
                        .collect(&c.rules, Scope::Command, &item.text, &mut hits);
                }
            }
            for (set, scope, items) in [
                (&c.redirect, Scope::Redirect, &canon.redirects),
                (&c.pipeline, Scope::Pipeline, &canon.pipelines),
                (&c.code, Scope::Code, &canon.codes),
            ] {
                for item in items {
                    set.collect(&c.rules, scope, &item.text, &mut hits);
                }
            }
        }
        let texts = |items: &[canon::Item]| items.iter().map(|i| readable(&i.text)).collect();
        Explanation {
            input: command.to_owned(),
            control,
            commands: texts(&canon.commands),
            redirects: texts(&canon.redirects),
            pipelines: texts(&canon.pipelines),
            code: texts(&canon.codes),
            incomplete: canon.incomplete,
            hits,
            effects: canon
                .effects
                .iter()
                .map(|e| match effect::judge(e) {
                    Some(f) => format!("{}: {}", f.level, e.describe()),
                    None => e.describe(),
                })
                .collect(),
            verdict,
        }
    }

    fn audit(&self, kind: CheckKind, input: &str, v: Verdict) -> Verdict {
        if let (Some(cb), false) = (&self.inner.audit, v.is_safe()) {
            let ev = AuditEvent {
                kind,
                input,
                verdict: &v,
            };
            // A misbehaving callback must not take the check down with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cb(&ev)));
        }
        v
    }

    /// The command verdict without auditing (shared by every entry point).
    /// Input that is not valid shell is at least `moderate`.
    pub(crate) fn command_verdict(&self, command: &str) -> Verdict {
        self.judge(command, true)
    }

    /// Judges a command; `strict_syntax` makes invalid shell (an unterminated
    /// quote, say) at least `moderate`. Prompts pass `false`: prose is full
    /// of apostrophes.
    pub(crate) fn judge(&self, command: &str, strict_syntax: bool) -> Verdict {
        if let Some((level, id, reason, span)) = control_check(command) {
            return precheck_verdict(level, id, reason, span);
        }
        self.judge_canonical(command, &canon::canonicalize(command), strict_syntax)
    }

    /// The rules' verdict on `command`, whose canonical form is `canon`
    /// (the control-byte check already passed).
    fn judge_canonical(
        &self,
        command: &str,
        canon: &canon::Canonical,
        strict_syntax: bool,
    ) -> Verdict {
        let c = &*self.inner;
        // Declared before `best`, which borrows it.
        let script;
        let mut best = Best::default();
        c.text.scan(&c.rules, command, None, &mut best);
        if !c.script.patterns.is_empty() {
            script = canon.script_text(command);
            // Spans of script matches are in the shortened text; they are
            // only exact when nothing was removed before the match.
            c.script.scan(&c.rules, &script, None, &mut best);
        }
        for item in &canon.commands {
            if c.safe.any(&item.text) {
                continue;
            }
            c.command
                .scan(&c.rules, &item.text, Some(&item.span), &mut best);
        }
        for item in &canon.redirects {
            c.redirect
                .scan(&c.rules, &item.text, Some(&item.span), &mut best);
        }
        for item in &canon.pipelines {
            c.pipeline
                .scan(&c.rules, &item.text, Some(&item.span), &mut best);
        }
        for item in &canon.codes {
            c.code
                .scan(&c.rules, &item.text, Some(&item.span), &mut best);
        }
        // The effect model is the first judge; the rules the second opinion.
        // The stricter wins (the rule on a tie: its reason is more specific).
        // Levels are compared first so that only the winner's verdict, with
        // its owned strings, is built.
        let worst = if self.inner.builtins {
            worst_effect(&canon.effects)
        } else {
            None
        };
        let mut v = if fast::enabled() {
            match worst.filter(|(f, _)| f.level.severity() > best.level().severity()) {
                Some((f, e)) => effect_verdict(f, e),
                None => best.verdict(&c.rules),
            }
        } else {
            // Both verdicts built, then compared (what the fast path skips).
            let rules = best.verdict(&c.rules);
            match worst {
                Some((f, e)) => stricter(rules, effect_verdict(f, e)),
                None => rules,
            }
        };
        if strict_syntax && canon.syntax_error && v.is_safe() {
            v = Verdict {
                level: Level::Moderate,
                blocked: false,
                rule_id: Some("injection.syntax_error".to_owned()),
                category: Some(Category::Injection),
                reason: "Not valid shell (unterminated quote, substitution or heredoc): what runs is uncertain"
                    .to_owned(),
                span: Some(0..command.len()),
                canonical: None,
                suggestions: Category::Injection.suggestions().iter().map(|s| (*s).to_owned()).collect(),
            };
        }
        if canon.incomplete && v.is_safe() {
            v = Verdict {
                level: Level::Moderate,
                blocked: false,
                rule_id: Some("injection.unanalysed".to_owned()),
                category: Some(Category::Injection),
                reason: "Command too deeply nested or too long to analyse in full".to_owned(),
                span: Some(0..command.len()),
                canonical: None,
                suggestions: Category::Injection
                    .suggestions()
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            };
        }
        v
    }

    /// The prompt rules' verdict over `text` (used by [`prompt`]).
    fn prompt_text_verdict(&self, text: &str) -> Verdict {
        let c = &*self.inner;
        let mut best = Best::default();
        c.prompt.scan(&c.prompt_rules, text, None, &mut best);
        let v = best.verdict(&c.prompt_rules);
        let mut custom = Best::default();
        c.text.scan(&c.rules, text, None, &mut custom);
        let cv = custom.verdict(&c.rules);
        if cv.level.severity() > v.level.severity() {
            cv
        } else {
            v
        }
    }

    fn allow_paths(&self) -> &[PathBuf] {
        &self.inner.allow_paths
    }
}

/// The most severe finding of the effect model (the first on a tie) and the
/// effect it judged.
fn worst_effect(effects: &[effect::Effect]) -> Option<(effect::Finding, &effect::Effect)> {
    let mut best: Option<(effect::Finding, &effect::Effect)> = None;
    for e in effects {
        if let Some(f) = effect::judge(e) {
            if best
                .as_ref()
                .map_or(true, |(b, _)| f.level.severity() > b.level.severity())
            {
                best = Some((f, e));
            }
        }
    }
    best
}

/// The verdict for the effect model's finding `f` on effect `e`.
fn effect_verdict(f: effect::Finding, e: &effect::Effect) -> Verdict {
    Verdict {
        level: f.level,
        blocked: f.level.blocks(),
        rule_id: Some(f.id.to_owned()),
        category: Some(f.category),
        reason: f.reason.to_owned(),
        span: Some(e.span.clone()),
        canonical: Some(e.describe()),
        suggestions: f
            .category
            .suggestions()
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    }
}

/// One rule that matched, in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    /// The rule's id.
    pub rule_id: String,
    /// The rule's level.
    pub level: Level,
    /// The rule's category.
    pub category: Category,
    /// The scope the rule judged (`"command"`, `"pipeline"`, ...).
    pub scope: &'static str,
    /// The text it matched, readable (argument spaces and pipes restored).
    pub text: String,
}

/// Every stage of judging one command, from [`Detector::explain`]: what the
/// shell front end made of it, every rule that matched, and the verdict.
/// Serialises to JSON; the bindings hand it over in that form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Explanation {
    /// The input, as given.
    pub input: String,
    /// The control-byte pre-check's finding, if any (it decides alone).
    pub control: Option<Verdict>,
    /// Canonical simple commands, each wrapper level on its own.
    pub commands: Vec<String>,
    /// Redirections as `op target`.
    pub redirects: Vec<String>,
    /// Pipelines, commands joined by `|`.
    pub pipelines: Vec<String>,
    /// Interpreter code and SQL statements, prefixed by the program.
    pub code: Vec<String>,
    /// A parse limit was hit (the verdict is then at least `moderate`).
    pub incomplete: bool,
    /// Every rule that matched, in scope order.
    pub hits: Vec<Hit>,
    /// What the command does, as the effect model derived it
    /// (`delete-tree /etc (rm -r)`, `send env (http request)`, ...), each
    /// with the policy's level when it has one (`critical: ...`).
    pub effects: Vec<String>,
    /// The verdict `check_command` returns for the same input.
    pub verdict: Verdict,
}

/// Canonical text with the internal separators shown as plain text.
fn readable(text: &str) -> String {
    // Texts without a pipeline (no `\x1e` at all) need one pass and one
    // allocation.
    if fast::enabled() && !text.contains('\u{1e}') {
        return text.replace(canon::ARG_SPACE, " ");
    }
    text.replace(canon::ARG_SPACE, " ")
        .replace(canon::PIPE_SEP, " | ")
}

/// Runs an analysis; if it panics (a bug in hotplex), the input is blocked
/// instead of the check disappearing: the WAF fails closed.
fn fail_closed(f: impl FnOnce() -> Verdict) -> Verdict {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| Verdict {
        level: Level::High,
        blocked: true,
        rule_id: Some("injection.analysis_failed".to_owned()),
        category: Some(Category::Injection),
        reason: "The WAF failed to analyse this input (an internal error); blocked to be safe"
            .to_owned(),
        span: None,
        canonical: None,
        suggestions: vec!["Report the input to the hotplex maintainers".to_owned()],
    })
}

/// The more severe of two verdicts (the first on a tie).
pub(crate) fn stricter(a: Verdict, b: Verdict) -> Verdict {
    if b.level.severity() > a.level.severity() {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests;
