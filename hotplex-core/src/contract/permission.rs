//! The host's say on tool calls: [`ToolRequest`] in, [`Permission`] out.
//!
//! Every binding lets the host answer with a value of its own language. The
//! answer is turned into JSON and read by [`Permission::from_answer`], the
//! one rule for all of them, which fails closed:
//!
//! | answer | decision |
//! |---|---|
//! | `true`, `null` (Python `None`, JS `undefined`) | allow |
//! | `{"behavior": "allow"}`, optionally with `"updatedInput": {...}` | allow (with that input) |
//! | `false` | deny ("denied by the host") |
//! | a string | deny with that message |
//! | `{"behavior": "deny", "message": "..."}` | deny with the message |
//! | anything else (a number, a list, `{"behavior": "maybe"}`, ...) | deny, saying the answer was not understood |
//!
//! A coroutine or Promise is awaited by the binding before this rule runs;
//! a binding that cannot await it denies (never allows).

use std::sync::Arc;

use serde_json::Value;

use crate::verdict::Verdict;

/// A tool call the WAF let through, for the host's [`PermissionHandler`].
#[derive(Debug)]
pub struct ToolRequest<'a> {
    /// The host's session id.
    pub session_id: &'a str,
    /// Tool name (`Bash`, `Write`, ...).
    pub tool_name: &'a str,
    /// Tool input, as the agent sent it.
    pub input: &'a Value,
    /// The WAF's verdict (not blocking, possibly moderate or low).
    pub verdict: &'a Verdict,
}

/// The host's answer to a [`ToolRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Let the tool run with its input.
    Allow,
    /// Let the tool run with this input instead (the SDK's `updatedInput`).
    /// The WAF screens the new input too; a blocked one is denied.
    AllowWithInput(Value),
    /// Refuse; the model sees the message as the tool's error.
    Deny(String),
}

/// The message of a plain `false`.
const DENIED: &str = "denied by the host";

impl Permission {
    /// Reads a host's answer (see the module docs for the rule).
    pub fn from_answer(answer: &Value) -> Permission {
        match answer {
            Value::Null | Value::Bool(true) => Permission::Allow,
            Value::Bool(false) => Permission::Deny(DENIED.into()),
            Value::String(s) if s.is_empty() => Permission::Deny(DENIED.into()),
            Value::String(s) => Permission::Deny(s.clone()),
            Value::Object(o) => match o.get("behavior").and_then(Value::as_str) {
                Some("allow") => match o.get("updatedInput").or_else(|| o.get("updated_input")) {
                    None | Some(Value::Null) => Permission::Allow,
                    Some(v @ Value::Object(_)) => Permission::AllowWithInput(v.clone()),
                    Some(_) => Permission::unexpected("updatedInput is not an object"),
                },
                Some("deny") => match o.get("message").and_then(Value::as_str) {
                    Some(m) if !m.is_empty() => Permission::Deny(m.to_owned()),
                    _ => Permission::Deny(DENIED.into()),
                },
                _ => Permission::unexpected("an object without behavior 'allow' or 'deny'"),
            },
            Value::Number(_) => Permission::unexpected("a number"),
            Value::Array(_) => Permission::unexpected("a list"),
        }
    }

    /// The denial for an answer the rule does not know (`what` it was).
    pub fn unexpected(what: &str) -> Permission {
        Permission::Deny(format!(
            "the host's permission check returned an unexpected value ({what})"
        ))
    }

    /// The denial for a permission check that failed (raised, rejected,
    /// panicked, timed out): `why` says which.
    pub fn failed(why: &str) -> Permission {
        Permission::Deny(format!("the host's permission check failed: {why}"))
    }

    /// Whether the tool may run.
    pub fn allows(&self) -> bool {
        !matches!(self, Permission::Deny(_))
    }
}

/// Decides tool calls the WAF did not block. Runs on a runtime thread:
/// keep it quick. A panic counts as a denial.
pub type PermissionHandler = Arc<dyn Fn(&ToolRequest<'_>) -> Permission + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_an_explicit_allow_allows() {
        assert_eq!(Permission::from_answer(&json!(true)), Permission::Allow);
        assert_eq!(Permission::from_answer(&Value::Null), Permission::Allow);
        assert_eq!(
            Permission::from_answer(&json!({"behavior": "allow"})),
            Permission::Allow
        );
        assert_eq!(
            Permission::from_answer(
                &json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
            ),
            Permission::AllowWithInput(json!({"command": "ls"}))
        );
        for deny in [
            json!(false),
            json!("no"),
            json!({"behavior": "deny"}),
            json!({"behavior": "deny", "message": "why"}),
            json!({"behavior": "maybe"}),
            json!({}),
            json!(1),
            json!([true]),
            json!({"behavior": "allow", "updatedInput": "rm -rf /"}),
        ] {
            assert!(!Permission::from_answer(&deny).allows(), "{deny} must deny");
        }
        assert_eq!(
            Permission::from_answer(&json!({"behavior": "deny", "message": "why"})),
            Permission::Deny("why".into())
        );
        assert_eq!(
            Permission::from_answer(&json!("not now")),
            Permission::Deny("not now".into())
        );
    }
}
