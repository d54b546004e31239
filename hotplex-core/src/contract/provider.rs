//! Which protocol a session's agent speaks, and which options only one of
//! them takes.
//!
//! An engine runs every session with its [`Provider`]
//! (`EngineOptions.provider`, default `claude-code`); a session may pick
//! another with `SessionOptions.provider`, so one engine can hold Claude
//! Code sessions and ACP sessions side by side. The agent's command line
//! is `binary` plus `args` either way (the engine's, or the session's
//! `binary` / `args` when set): for an ACP agent that is e.g. `opencode`
//! with `["acp"]`, or `gemini` with `["--acp"]`.
//!
//! Most options become flags of the Claude Code CLI, which an ACP agent
//! does not have. Such an option given for an ACP session is refused with
//! [`crate::Error::InvalidConfig`] naming it, never silently ignored: the
//! lists below are the one place that says which options those are, and a
//! test checks that every option is either on them or known to work for
//! both providers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// The protocol a session's agent speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// `claude-code`: Claude Code's stream-json protocol (`claude --print
    /// --input-format stream-json ...`), the default.
    #[default]
    ClaudeCode,
    /// `acp`: the Agent Client Protocol (JSON-RPC 2.0 over the agent's
    /// stdio), spoken by `opencode acp`, `gemini --acp` and others.
    Acp,
}

impl Provider {
    /// The wire name: `claude-code` or `acp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ClaudeCode => "claude-code",
            Provider::Acp => "acp",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Engine options only the `claude-code` provider takes (they become the
/// CLI's flags, hooks, MCP servers or spare processes). An engine whose
/// `provider` is `acp` refuses them.
pub const CLAUDE_ONLY_ENGINE_OPTIONS: &[&str] = &[
    "permission_mode",
    "allowed_tools",
    "disallowed_tools",
    "system_prompt",
    "model",
    "hooks",
    "tools",
    "prewarm",
];

/// Session options only the `claude-code` provider takes. An ACP session
/// refuses them (the others, `provider`, `binary`, `args` and `env`, work
/// for both).
pub const CLAUDE_ONLY_SESSION_OPTIONS: &[&str] = &[
    "model",
    "permission_mode",
    "system_prompt",
    "append_system_prompt",
    "allowed_tools",
    "disallowed_tools",
    "add_dirs",
    "max_turns",
    "max_budget_usd",
    "json_schema",
    "fallback_model",
    "effort",
    "agents",
    "settings",
    "setting_sources",
    "mcp_config",
    "plugin_dirs",
    "config_dir",
];

/// Turn options only the `claude-code` provider takes.
pub const CLAUDE_ONLY_TURN_OPTIONS: &[&str] = &["images"];

/// Refuses the options of `given` (a wire form) named in `claude_only`
/// that differ from their defaults (`default`, the wire form of the
/// type's default): `what` prefixes the option's name in the error
/// (`session.` for session options).
pub(crate) fn refuse_claude_only(
    given: &Value,
    default: &Value,
    claude_only: &[&str],
    what: &str,
) -> Result<()> {
    for name in claude_only {
        let Some(set) = given.get(*name) else {
            continue;
        };
        let unset = default.get(*name).unwrap_or(&Value::Null);
        if set != unset {
            return Err(Error::InvalidConfig(format!(
                "{what}{name}: a claude-code option; the acp provider does not take it (leave it unset for acp sessions)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{EngineOptions, SessionOptions, TurnOptions};
    use serde_json::json;

    /// Options that work for both providers: with the lists above, every
    /// option must be in exactly one place, so a new option forces a
    /// decision here.
    const SHARED_SESSION: &[&str] = &["provider", "binary", "args", "env"];
    const SHARED_TURN: &[&str] = &[
        "workdir",
        "timeout",
        "question_timeout",
        "waf_approved",
        "partial_messages",
        "session",
        "instructions",
    ];

    fn keys(v: Value) -> Vec<String> {
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect()
    }

    #[test]
    fn every_session_and_turn_option_is_classified_for_the_acp_provider() {
        for k in keys(crate::contract::to_value(&SessionOptions::default())) {
            let only = CLAUDE_ONLY_SESSION_OPTIONS.contains(&k.as_str());
            let shared = SHARED_SESSION.contains(&k.as_str());
            assert!(
                only != shared,
                "session option {k} must be in exactly one list"
            );
        }
        for k in keys(crate::contract::to_value(&TurnOptions::default())) {
            let only = CLAUDE_ONLY_TURN_OPTIONS.contains(&k.as_str());
            let shared = SHARED_TURN.contains(&k.as_str());
            assert!(
                only != shared,
                "turn option {k} must be in exactly one list"
            );
        }
        let engine = keys(EngineOptions::default().to_json());
        for k in CLAUDE_ONLY_ENGINE_OPTIONS {
            assert!(engine.iter().any(|e| e == k), "{k} is not an engine option");
        }
    }

    #[test]
    fn a_claude_only_option_that_is_set_is_refused_by_name() {
        let default = crate::contract::to_value(&SessionOptions::default());
        let given = json!({"model": "m", "env": {"A": "1"}});
        let e = refuse_claude_only(&given, &default, CLAUDE_ONLY_SESSION_OPTIONS, "session.")
            .unwrap_err()
            .to_string();
        assert!(e.contains("session.model") && e.contains("acp"), "{e}");
        let shared = json!({"env": {"A": "1"}, "binary": "/bin/x", "args": ["acp"]});
        assert!(
            refuse_claude_only(&shared, &default, CLAUDE_ONLY_SESSION_OPTIONS, "session.").is_ok()
        );
    }

    #[test]
    fn the_wire_names_are_kebab_case() {
        assert_eq!(json!(Provider::ClaudeCode), json!("claude-code"));
        assert_eq!(
            serde_json::from_value::<Provider>(json!("acp")).unwrap(),
            Provider::Acp
        );
        assert!(serde_json::from_value::<Provider>(json!("opencode")).is_err());
        assert_eq!(Provider::default().as_str(), "claude-code");
    }
}
