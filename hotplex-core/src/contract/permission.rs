//! The host's say on tool calls: [`ToolRequest`] in, [`Permission`] out.
//!
//! Every binding lets the host answer with a value of its own language. The
//! answer is turned into JSON and read by [`Permission::from_answer`], the
//! one rule for all of them, which fails closed:
//!
//! | answer | decision |
//! |---|---|
//! | `true`, `null` (Python `None`, JS `undefined`) | allow |
//! | `{"behavior": "allow"}`, optionally with `"updatedInput": {...}` and `"updatedPermissions": [...]` | allow (with that input; the CLI keeps the permission updates) |
//! | `false` | deny ("denied by the host") |
//! | a string | deny with that message |
//! | `{"behavior": "deny", "message": "..."}`, optionally with `"interrupt": true` | deny with the message (and stop the turn) |
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
    /// What else the agent said about the call, as it sent it (an object):
    /// `permission_suggestions` (rules the host may grant with
    /// `updatedPermissions`), `decision_reason`, `tool_use_id`,
    /// `blocked_path`, ... Empty for agents that send none.
    pub context: &'a Value,
}

/// The host's answer to a [`ToolRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    /// Let the tool run.
    Allow {
        /// Run it with this input instead (the SDK's `updatedInput`). The
        /// WAF screens the new input too; a blocked one is denied.
        updated_input: Option<Value>,
        /// Permission updates for the agent to keep (the SDK's
        /// `updatedPermissions`, e.g. an allow rule for later calls), as
        /// the agent's list of updates.
        updated_permissions: Option<Value>,
    },
    /// Refuse; the model sees the message as the tool's error.
    Deny {
        /// Why, for the model.
        message: String,
        /// Also stop the turn (the SDK's `interrupt`).
        interrupt: bool,
    },
}

/// The message of a plain `false`.
const DENIED: &str = "denied by the host";

impl Permission {
    /// Reads a host's answer (see the module docs for the rule).
    pub fn from_answer(answer: &Value) -> Permission {
        match answer {
            Value::Null | Value::Bool(true) => Permission::allow(),
            Value::Bool(false) => Permission::deny(DENIED),
            Value::String(s) if s.is_empty() => Permission::deny(DENIED),
            Value::String(s) => Permission::deny(s),
            Value::Object(o) => {
                let field =
                    |a: &str, b: &str| o.get(a).or_else(|| o.get(b)).filter(|v| !v.is_null());
                match o.get("behavior").and_then(Value::as_str) {
                    Some("allow") => {
                        let updated_input = match field("updatedInput", "updated_input") {
                            None => None,
                            Some(v @ Value::Object(_)) => Some(v.clone()),
                            Some(_) => {
                                return Permission::unexpected("updatedInput is not an object")
                            }
                        };
                        let updated_permissions =
                            match field("updatedPermissions", "updated_permissions") {
                                None => None,
                                Some(v @ Value::Array(_)) => Some(v.clone()),
                                Some(_) => {
                                    return Permission::unexpected(
                                        "updatedPermissions is not a list",
                                    )
                                }
                            };
                        Permission::Allow {
                            updated_input,
                            updated_permissions,
                        }
                    }
                    Some("deny") => Permission::Deny {
                        message: match o.get("message").and_then(Value::as_str) {
                            Some(m) if !m.is_empty() => m.to_owned(),
                            _ => DENIED.into(),
                        },
                        interrupt: o.get("interrupt").and_then(Value::as_bool) == Some(true),
                    },
                    _ => Permission::unexpected("an object without behavior 'allow' or 'deny'"),
                }
            }
            Value::Number(_) => Permission::unexpected("a number"),
            Value::Array(_) => Permission::unexpected("a list"),
        }
    }

    /// A plain allow (the input as the agent sent it).
    pub fn allow() -> Permission {
        Permission::Allow {
            updated_input: None,
            updated_permissions: None,
        }
    }

    /// A plain denial with `message` (the turn goes on).
    pub fn deny(message: impl Into<String>) -> Permission {
        Permission::Deny {
            message: message.into(),
            interrupt: false,
        }
    }

    /// The denial for an answer the rule does not know (`what` it was).
    pub fn unexpected(what: &str) -> Permission {
        Permission::deny(format!(
            "the host's permission check returned an unexpected value ({what})"
        ))
    }

    /// The denial for a permission check that failed (raised, rejected,
    /// panicked, timed out): `why` says which.
    pub fn failed(why: &str) -> Permission {
        Permission::deny(format!("the host's permission check failed: {why}"))
    }

    /// Whether the tool may run.
    pub fn allows(&self) -> bool {
        matches!(self, Permission::Allow { .. })
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
        assert_eq!(Permission::from_answer(&json!(true)), Permission::allow());
        assert_eq!(Permission::from_answer(&Value::Null), Permission::allow());
        assert_eq!(
            Permission::from_answer(&json!({"behavior": "allow"})),
            Permission::allow()
        );
        assert_eq!(
            Permission::from_answer(
                &json!({"behavior": "allow", "updatedInput": {"command": "ls"}})
            ),
            Permission::Allow {
                updated_input: Some(json!({"command": "ls"})),
                updated_permissions: None
            }
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
            json!({"behavior": "allow", "updatedPermissions": {"rules": []}}),
        ] {
            assert!(!Permission::from_answer(&deny).allows(), "{deny} must deny");
        }
        assert_eq!(
            Permission::from_answer(&json!({"behavior": "deny", "message": "why"})),
            Permission::deny("why")
        );
        assert_eq!(
            Permission::from_answer(&json!("not now")),
            Permission::deny("not now")
        );
    }

    #[test]
    fn permission_updates_and_interrupts_are_read_in_either_spelling() {
        let rules = json!([{"type": "addRules", "rules": [{"toolName": "Bash"}], "behavior": "allow", "destination": "session"}]);
        for key in ["updatedPermissions", "updated_permissions"] {
            assert_eq!(
                Permission::from_answer(&json!({"behavior": "allow", key: rules.clone()})),
                Permission::Allow {
                    updated_input: None,
                    updated_permissions: Some(rules.clone())
                }
            );
        }
        assert_eq!(
            Permission::from_answer(
                &json!({"behavior": "deny", "message": "no", "interrupt": true})
            ),
            Permission::Deny {
                message: "no".into(),
                interrupt: true
            }
        );
    }
}
