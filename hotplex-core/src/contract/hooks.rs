//! Host hooks: functions of the host that the agent calls at its hook
//! events (`PreToolUse`, `PostToolUse`, `UserPromptSubmit`, `Stop`, ...),
//! as the Claude Agent SDK's hooks are.
//!
//! A binding turns the host's functions into [`HookSpec`]s (which event,
//! which tools, the callback's id) plus one [`HookHandler`] that calls the
//! function with that id. The engine registers the specs with every agent
//! it starts (`initialize`), after its own `PreToolUse` hook, and routes
//! each `hook_callback` to the handler off the session's task, so a slow
//! hook never stops the session from reading its agent.
//!
//! What the engine adds around the host's function:
//!
//! * **The WAF answers first.** For `PreToolUse` the tool call is screened
//!   before the host is asked; a blocked call is denied and the host hook
//!   is not called. A `hookSpecificOutput.updatedInput` from the host is
//!   screened again; a blocked rewrite is denied.
//! * **Failures fail closed where it matters.** A hook that fails (raises,
//!   rejects, panics) or does not answer within its timeout denies the call
//!   for `PreToolUse`; for the other events the agent goes on as if the
//!   hook returned nothing, and the turn gets an `error` event saying so.
//! * **Output goes back as the host wrote it** (an object: `continue`,
//!   `stopReason`, `systemMessage`, `decision`, `reason`,
//!   `hookSpecificOutput` with `permissionDecision`, `updatedInput`,
//!   `additionalContext`, ...); `continue_` and `async_` (the Python SDK's
//!   spellings) become `continue` and `async`; `null` is `{}`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// How long a host hook may take when its spec names no timeout.
pub const DEFAULT_HOOK_TIMEOUT_SECS: f64 = 60.0;

/// One host hook: its event, the tools it applies to and its callback id.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookSpec {
    /// The hook event, as the agent names it (`PreToolUse`, `PostToolUse`,
    /// `PostToolUseFailure`, `UserPromptSubmit`, `Stop`, `SubagentStart`,
    /// `SubagentStop`, `PreCompact`, `Notification`, `PermissionRequest`,
    /// `SessionStart`, `SessionEnd`, ...).
    pub event: String,
    /// The tools it applies to: a tool name or a pattern such as
    /// `Bash|Write` (the agent matches it); unset: every call.
    #[serde(default)]
    pub matcher: Option<String>,
    /// The id the handler receives; unique within an engine.
    pub id: String,
    /// Seconds the host may take (default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
}

impl HookSpec {
    /// The spec's timeout in seconds.
    pub fn timeout_secs(&self) -> f64 {
        self.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS)
    }

    /// Checks a list of specs: known shape, unique ids, positive timeouts.
    pub fn validate_all(specs: &[HookSpec]) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig(format!("hooks: {what}")));
        let mut ids = std::collections::HashSet::new();
        for h in specs {
            if h.event.is_empty() || !h.event.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad(format!("{:?} is not a hook event name", h.event));
            }
            let reserved = [crate::protocol::TOOL_HOOK_ID, crate::protocol::WARM_HOOK_ID];
            if h.id.is_empty() || reserved.contains(&h.id.as_str()) {
                return bad(format!("{:?} cannot be a hook id", h.id));
            }
            if !ids.insert(h.id.as_str()) {
                return bad(format!("the id {:?} is used twice", h.id));
            }
            if let Some(t) = h.timeout {
                if !(t.is_finite() && t > 0.0) {
                    return bad(format!("timeout of {:?} must be positive", h.id));
                }
            }
        }
        Ok(())
    }
}

/// One call of a host hook.
#[derive(Debug)]
pub struct HookCall<'a> {
    /// The host's session id.
    pub session_id: &'a str,
    /// The [`HookSpec::id`] of the hook called.
    pub hook_id: &'a str,
    /// The hook event (`PostToolUse`, ...).
    pub event: &'a str,
    /// The hook's input as the agent sent it (`hook_event_name`,
    /// `tool_name`, `tool_input`, `tool_response`, `prompt`, ...).
    pub input: &'a Value,
    /// The tool call it is about, if any.
    pub tool_use_id: Option<&'a str>,
}

/// Calls host hooks: the hook's output (a JSON object, or `null`), or why
/// it failed. Runs on a blocking thread; may wait for the host's event loop.
pub type HookHandler =
    Arc<dyn Fn(&HookCall<'_>) -> std::result::Result<Value, String> + Send + Sync>;

/// A host hook's output as the agent reads it: `null` becomes `{}`, the
/// Python spellings `continue_`/`async_` their JSON names; anything but an
/// object is an error.
pub fn hook_output(answer: Value) -> std::result::Result<Value, String> {
    match answer {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(o) => Ok(Value::Object(
            o.into_iter()
                .map(|(k, v)| match k.as_str() {
                    "continue_" => ("continue".to_owned(), v),
                    "async_" => ("async".to_owned(), v),
                    _ => (k, v),
                })
                .collect(),
        )),
        other => Err(format!(
            "a hook must return an object or nothing, not {}",
            match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "a list",
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_outputs_take_the_agents_spelling() {
        assert_eq!(hook_output(Value::Null).unwrap(), json!({}));
        assert_eq!(
            hook_output(json!({"continue_": false, "stopReason": "x"})).unwrap(),
            json!({"continue": false, "stopReason": "x"})
        );
        assert!(hook_output(json!("allow")).is_err());
    }

    #[test]
    fn hook_specs_need_unique_ids_and_event_names() {
        let spec = |id: &str, event: &str| HookSpec {
            event: event.into(),
            matcher: None,
            id: id.into(),
            timeout: None,
        };
        assert!(HookSpec::validate_all(&[spec("a", "PostToolUse"), spec("b", "Stop")]).is_ok());
        assert!(HookSpec::validate_all(&[spec("a", "Stop"), spec("a", "Stop")]).is_err());
        assert!(HookSpec::validate_all(&[spec("a", "Post Tool")]).is_err());
        assert!(HookSpec::validate_all(&[spec(crate::protocol::TOOL_HOOK_ID, "Stop")]).is_err());
    }
}
