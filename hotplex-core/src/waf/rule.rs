//! Rules: the model, and the two custom-rule file formats the seed accepted.
//!
//! # Line format
//!
//! One rule per line: `pattern|description|level|category`, optionally
//! followed by `|danger` or `|safe`. Blank lines and lines starting with `#`
//! are skipped; each line is trimmed. The *last* three (or four) fields are
//! split off, so a pattern may contain `|` (alternation), unlike the seed.
//! Regex escapes are written once (`\s`, not `\\s`). Level and category must
//! be known names; anything else is an [`Error::InvalidRule`] naming the line
//! (the seed silently turned unknown levels into `moderate`).
//!
//! # JSON format
//!
//! A JSON array of objects with `pattern`, `description`, `level`, `category`
//! and optional `type` (`"danger"` or `"safe"`), `id`, `suggestions`,
//! `unless` (an exception pattern) and `scope` (`"text"`, the default,
//! `"script"`, `"command"`, `"redirect"`, `"pipeline"` or `"code"`). Errors name the line on
//! which the offending element starts. Input whose first non-blank character
//! is `[` is JSON; anything else is the line format (the seed fell back to the
//! line format on *any* JSON error, silently loading nothing).
//!
//! Custom patterns are case-insensitive, like the seed's.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::verdict::{Category, Level};

/// What text a rule's pattern is matched against.
///
/// Built-in rules mostly judge canonical commands, which is what lets the
/// detector tell `rm -rf /` from `echo 'rm -rf /'`. The internal encodings
/// are documented on each variant so custom rules can target them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The raw input, as given. Seed-compatible; the default for custom rules.
    Text,
    /// The input without the bodies of quoted heredocs (`<<'EOF'`), which
    /// are data. Built-in raw-text rules (fork bombs, download-then-run)
    /// use it, so documentation written through a heredoc never trips them.
    Script,
    /// Each canonical simple command: argv after quote removal, expansion of
    /// `~`/`$HOME`/`$IFS`/ANSI-C strings, wrapper stripping (`sudo`, `env`,
    /// `timeout`, ...) and basename of the command word, joined by one space.
    /// Whitespace *inside* one argument is encoded as `\x1f`, so `\s` only
    /// ever separates arguments.
    Command,
    /// Each redirection of a simple command, as `op target` (`>> ~/.bashrc`,
    /// `< /etc/shadow`, `>& /dev/tcp/h/1`).
    Redirect,
    /// Each pipeline with two or more commands: the canonical commands joined
    /// by `" \x1e "`.
    Pipeline,
    /// Code handed to an interpreter: `python -c`, `perl -e`, `node -e`,
    /// `ruby -e`, `php -r`, awk programs, sed scripts.
    Code,
}

impl Scope {
    /// The scope's name as used in JSON rule files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Text => "text",
            Scope::Script => "script",
            Scope::Command => "command",
            Scope::Redirect => "redirect",
            Scope::Pipeline => "pipeline",
            Scope::Code => "code",
        }
    }
}

/// Whether a rule denies or allow-lists what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleKind {
    /// A match yields a verdict at the rule's level.
    Danger,
    /// An allow rule: a simple command that the pattern matches *in full*
    /// is exempt from command-scope danger rules. Only that command: unlike
    /// the seed, `git status; rm -rf /` is not allowed by a `git status` rule.
    Safe,
}

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable identifier, e.g. `"file_delete.rm_root"` or `"custom-3"`.
    pub id: String,
    /// What the rule guards against.
    pub category: Category,
    /// Severity of a match ([`Level::Safe`] for allow rules).
    pub level: Level,
    /// Regular expression in the `regex` crate's syntax.
    pub pattern: String,
    /// Why a match is dangerous; becomes the verdict's `reason`.
    pub description: String,
    /// What to do instead; defaults to the category's suggestions.
    pub suggestions: Vec<String>,
    /// What text the pattern is matched against.
    pub scope: Scope,
    /// Danger or allow rule.
    pub kind: RuleKind,
    /// Optional exception: a text that `pattern` matches is still not a match
    /// when this regex matches it too (`DELETE FROM t` unless `WHERE`).
    pub unless: Option<String>,
}

impl Rule {
    /// A danger rule with the category's default suggestions.
    pub fn new(
        id: impl Into<String>,
        category: Category,
        level: Level,
        scope: Scope,
        pattern: impl Into<String>,
        description: impl Into<String>,
    ) -> Rule {
        Rule {
            id: id.into(),
            category,
            level,
            pattern: pattern.into(),
            description: description.into(),
            suggestions: category
                .suggestions()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            scope,
            kind: if level == Level::Safe {
                RuleKind::Safe
            } else {
                RuleKind::Danger
            },
            unless: None,
        }
    }

    /// The same rule with an exception pattern (see [`Rule::unless`]).
    pub fn unless(mut self, pattern: impl Into<String>) -> Rule {
        self.unless = Some(pattern.into());
        self
    }
}

/// Parses custom rules in either format (see the module docs). `first_id` is
/// the number used for the first generated `custom-N` id.
pub fn parse_rules(text: &str, first_id: usize) -> Result<Vec<Rule>> {
    if text.trim_start().starts_with('[') {
        parse_json_rules(text, first_id)
    } else {
        parse_line_rules(text, first_id)
    }
}

fn invalid(line: usize, message: impl Into<String>) -> Error {
    Error::InvalidRule {
        line,
        message: message.into(),
    }
}

/// Checks a custom pattern compiles (case-insensitive, as it will be used),
/// so the error can name the line.
fn check_pattern(line: usize, pattern: &str) -> Result<String> {
    if pattern.is_empty() {
        return Err(invalid(line, "empty pattern"));
    }
    let anchored = format!("(?i){pattern}");
    regex::bytes::Regex::new(&anchored)
        .map_err(|e| invalid(line, format!("bad regex {pattern:?}: {e}")))?;
    Ok(anchored)
}

/// The fields of a custom rule as written, before validation.
struct RawRule<'a> {
    line: usize,
    id: Option<String>,
    pattern: &'a str,
    description: &'a str,
    level: &'a str,
    category: &'a str,
    kind: Option<&'a str>,
    scope: Scope,
    suggestions: Option<Vec<String>>,
    unless: Option<String>,
}

impl RawRule<'_> {
    /// Validates the fields; `seq` numbers generated `custom-N` ids.
    fn build(self, seq: usize) -> Result<Rule> {
        let line = self.line;
        let mut level: Level = self.level.parse().map_err(|e: String| invalid(line, e))?;
        let category: Category = self
            .category
            .parse()
            .map_err(|e: String| invalid(line, e))?;
        let kind = match self.kind.map(|k| k.trim().to_ascii_lowercase()) {
            None => None,
            Some(k) if k == "danger" => Some(RuleKind::Danger),
            Some(k) if k == "safe" => Some(RuleKind::Safe),
            Some(k) => {
                return Err(invalid(
                    line,
                    format!("unknown type {k:?} (danger or safe)"),
                ))
            }
        };
        let kind = match (kind, level) {
            (Some(RuleKind::Safe), _) | (None, Level::Safe) => RuleKind::Safe,
            (Some(RuleKind::Danger), Level::Safe) => {
                return Err(invalid(line, "a danger rule cannot have level safe"))
            }
            _ => RuleKind::Danger,
        };
        if kind == RuleKind::Safe {
            level = Level::Safe;
        }
        let scope = if kind == RuleKind::Safe {
            Scope::Command
        } else {
            self.scope
        };
        let mut rule = Rule::new(
            self.id.unwrap_or_else(|| format!("custom-{seq}")),
            category,
            level,
            scope,
            check_pattern(line, self.pattern)?,
            self.description,
        );
        rule.kind = kind;
        if let Some(s) = self.suggestions {
            rule.suggestions = s;
        }
        if let Some(u) = self.unless {
            rule.unless = Some(check_pattern(line, &u)?);
        }
        Ok(rule)
    }
}

fn parse_line_rules(text: &str, first_id: usize) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields: Vec<&str> = line.split('|').collect();
        let kind = match fields.last().map(|f| f.trim().to_ascii_lowercase()) {
            Some(k) if fields.len() >= 5 && (k == "danger" || k == "safe") => fields.pop(),
            _ => None,
        };
        if fields.len() < 4 {
            return Err(invalid(
                line_no,
                "expected pattern|description|level|category[|type]",
            ));
        }
        let category = fields.pop().unwrap_or_default().trim();
        let level = fields.pop().unwrap_or_default().trim();
        let description = fields.pop().unwrap_or_default().trim();
        let pattern = fields.join("|");
        let raw = RawRule {
            line: line_no,
            id: None,
            pattern: pattern.trim(),
            description,
            level,
            category,
            kind,
            scope: Scope::Text,
            suggestions: None,
            unless: None,
        };
        out.push(raw.build(first_id + out.len())?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRule {
    pattern: String,
    #[serde(default)]
    description: String,
    level: String,
    category: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    suggestions: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default)]
    unless: Option<String>,
}

fn parse_json_rules(text: &str, first_id: usize) -> Result<Vec<Rule>> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let items: Vec<&RawValue> = serde_json::from_str(text)
        .map_err(|e| invalid(e.line(), format!("not a JSON array of rules: {e}")))?;
    let mut out = Vec::with_capacity(items.len());
    for raw in items {
        // RawValue borrows from `text`, so its address gives its offset.
        let offset = (raw.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let line_no = line_of(offset);
        let r: JsonRule = serde_json::from_str(raw.get())
            .map_err(|e| invalid(line_no, format!("bad rule object: {e}")))?;
        let raw = RawRule {
            line: line_no,
            id: r.id,
            pattern: &r.pattern,
            description: &r.description,
            level: &r.level,
            category: &r.category,
            kind: r.kind.as_deref(),
            scope: r.scope.unwrap_or(Scope::Text),
            suggestions: r.suggestions,
            unless: r.unless,
        };
        out.push(raw.build(first_id + out.len())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_parses_and_skips_comments() {
        let rules = parse_rules(
            "# comment\n\n  foo\\s+bar|Foo bar|high|system  \nbaz|qux|moderate|git|danger\n",
            1,
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].pattern, "(?i)foo\\s+bar");
        assert_eq!(rules[0].level, Level::High);
        assert_eq!(rules[0].id, "custom-1");
        assert_eq!(rules[1].category, Category::Git);
        assert_eq!(rules[1].scope, Scope::Text);
    }

    #[test]
    fn line_format_pattern_may_contain_pipes() {
        let rules = parse_rules("a|b|c|Alternation|critical|network", 1).unwrap();
        assert_eq!(rules[0].pattern, "(?i)a|b|c");
        assert_eq!(rules[0].description, "Alternation");
    }

    #[test]
    fn line_format_errors_name_the_line() {
        let err = parse_rules("ok|fine|high|system\nbad(|oops|high|system\n", 1).unwrap_err();
        assert!(matches!(err, Error::InvalidRule { line: 2, .. }), "{err}");
        let err = parse_rules("\n\nx|y|severe|system", 1).unwrap_err();
        assert!(matches!(err, Error::InvalidRule { line: 3, .. }), "{err}");
        let err = parse_rules("x|y|high|nonsense", 1).unwrap_err();
        assert!(err.to_string().contains("unknown category"), "{err}");
        let err = parse_rules("x|y|high", 1).unwrap_err();
        assert!(matches!(err, Error::InvalidRule { line: 1, .. }));
    }

    #[test]
    fn safe_level_or_type_makes_an_allow_rule() {
        let rules = parse_rules(
            "make test|ok|safe|system\nnpm ci|ok|moderate|system|safe",
            1,
        )
        .unwrap();
        assert!(rules.iter().all(|r| r.kind == RuleKind::Safe));
        assert!(rules.iter().all(|r| r.level == Level::Safe));
        assert!(rules.iter().all(|r| r.scope == Scope::Command));
    }

    #[test]
    fn json_format_parses_with_optional_fields() {
        let text = r#"[
  {"pattern": "drop\\s+schema", "description": "Drops a schema", "level": "critical", "category": "database"},
  {"id": "mine", "pattern": "^terraform destroy", "description": "tf", "level": "high",
   "category": "system", "scope": "command", "suggestions": ["plan first"]}
]"#;
        let rules = parse_rules(text, 7).unwrap();
        assert_eq!(rules[0].id, "custom-7");
        assert_eq!(rules[1].id, "mine");
        assert_eq!(rules[1].scope, Scope::Command);
        assert_eq!(rules[1].suggestions, vec!["plan first".to_owned()]);
    }

    #[test]
    fn json_errors_name_the_line_of_the_element() {
        let text = "[\n {\"pattern\":\"a\",\"level\":\"high\",\"category\":\"git\"},\n\n {\"pattern\":\"(\",\"level\":\"high\",\"category\":\"git\"}\n]";
        let err = parse_rules(text, 1).unwrap_err();
        assert!(matches!(err, Error::InvalidRule { line: 4, .. }), "{err}");
        let err = parse_rules("[ {\"pattern\": ", 1).unwrap_err();
        assert!(matches!(err, Error::InvalidRule { .. }), "{err}");
        let err = parse_rules(
            "[{\"pattern\":\"a\",\"level\":\"high\",\"category\":\"git\",\"x\":1}]",
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
