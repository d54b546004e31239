//! What a WAF check concludes: [`Verdict`], with its [`Level`] and
//! [`Category`].
//!
//! A leaf module (it imports nothing of the crate), so that [`crate::error`],
//! [`crate::contract`] and [`crate::waf`] can all use it without importing
//! each other.

mod level;

pub use level::{Category, Level};

use std::ops::Range;

use schemars::JsonSchema;
use serde::Serialize;

/// The outcome of screening one command, prompt or tool call.
///
/// When several rules match, the **most severe** one is reported (ties go to
/// the rule that comes first in the detector's rule list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Verdict {
    /// Severity of the reported match, or [`Level::Safe`] if nothing matched.
    pub level: Level,
    /// `true` when `level` is critical or high: the caller must not run it.
    pub blocked: bool,
    /// Id of the reported rule (`None` when safe).
    pub rule_id: Option<String>,
    /// Category of the reported rule (`None` when safe).
    pub category: Option<Category>,
    /// Human-readable reason: the rule's description, or `"no rule matched"`.
    pub reason: String,
    /// Byte range of the input that the reported rule matched. For rules that
    /// judge a whole simple command it covers that command.
    pub span: Option<Range<usize>>,
    /// The text the reported rule judged: the canonical simple command (after
    /// quote removal and wrapper stripping) or the raw text, for explanations.
    pub canonical: Option<String>,
    /// What to do instead.
    pub suggestions: Vec<String>,
}

impl Verdict {
    /// The verdict for input that matched nothing.
    pub fn safe() -> Verdict {
        Verdict {
            level: Level::Safe,
            blocked: false,
            rule_id: None,
            category: None,
            reason: "no rule matched".to_owned(),
            span: None,
            canonical: None,
            suggestions: Vec::new(),
        }
    }

    /// `true` when nothing matched.
    pub fn is_safe(&self) -> bool {
        self.level == Level::Safe
    }

    /// The matched part of `input` (the string that was checked), if any.
    pub fn matched<'a>(&self, input: &'a str) -> Option<&'a str> {
        self.span.clone().and_then(|r| input.get(r))
    }
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::safe()
    }
}
