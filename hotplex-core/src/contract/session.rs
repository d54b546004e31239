//! Per-session agent options and per-turn content: what a host may set for
//! one conversation beyond the engine's defaults.
//!
//! [`SessionOptions`] are given with a turn ([`super::TurnOptions::session`])
//! and stay with the session until a later turn gives others. Every field
//! left unset falls back to the engine's option of the same name, where
//! there is one. They become the agent's command line (and `env`), so a
//! change restarts the agent process; the conversation is resumed, exactly
//! as for a new workdir. The live controls ([`crate::Engine::set_model`],
//! [`crate::Engine::set_permission_mode`]) change a running process without a
//! restart and are remembered as if given here.
//!
//! On the wire (JSON, every binding) the keys are these field names; paths
//! are strings, `json_schema`, `agents`, `settings` and `mcp_config` are
//! JSON values, `env` an object of strings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// Options for one session's agent process (all optional).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionOptions {
    /// The protocol this session's agent speaks (`claude-code` or `acp`);
    /// overrides the engine's `provider`. A session keeps its provider
    /// while it is in the pool: a turn naming another one is refused
    /// (stop the session first). An `acp` session refuses, by name, the
    /// options that are Claude Code CLI flags (`model`, `permission_mode`,
    /// `system_prompt`, `max_turns`, ...); `binary`, `args` and `env` work
    /// for both.
    pub provider: Option<super::Provider>,
    /// The agent program of this session (looked up like the engine's
    /// `binary`); overrides the engine's.
    #[schemars(with = "Option<String>")]
    pub binary: Option<PathBuf>,
    /// The agent's arguments for this session; replaces the engine's
    /// `args` (with `binary`: the ACP agent's command line, e.g. `["acp"]`).
    pub args: Option<Vec<String>>,
    /// The model (`--model`); overrides the engine's `model`.
    pub model: Option<String>,
    /// The permission mode (`--permission-mode`: `default`, `acceptEdits`,
    /// `plan`, `bypassPermissions`, ...); overrides the engine's.
    pub permission_mode: Option<String>,
    /// Replaces the agent's whole system prompt (`--system-prompt`).
    pub system_prompt: Option<String>,
    /// Appended to the system prompt (`--append-system-prompt`); overrides
    /// the engine's `system_prompt`, which is appended the same way.
    pub append_system_prompt: Option<String>,
    /// Tools allowed without asking; overrides the engine's list.
    pub allowed_tools: Option<Vec<String>>,
    /// Tools removed from the agent; overrides the engine's list.
    pub disallowed_tools: Option<Vec<String>>,
    /// Extra directories the agent may use (`--add-dir`, each).
    #[schemars(with = "Vec<String>")]
    pub add_dirs: Vec<PathBuf>,
    /// Most agentic turns per prompt (`--max-turns`); past it the turn ends
    /// with the CLI's `error_max_turns` result ([`crate::Error::TurnFailed`]).
    pub max_turns: Option<u32>,
    /// Most dollars per process (`--max-budget-usd`).
    pub max_budget_usd: Option<f64>,
    /// A JSON Schema the answer must follow (`--json-schema`); the turn's
    /// [`crate::Turn::structured_output`] carries the validated value.
    pub json_schema: Option<Value>,
    /// The model used when the main one is overloaded (`--fallback-model`).
    pub fallback_model: Option<String>,
    /// Reasoning effort (`--effort`: `low`, `medium`, `high`, ...).
    pub effort: Option<String>,
    /// Subagent definitions, a JSON object by name (`--agents`).
    pub agents: Option<Value>,
    /// Settings: a JSON object, or a path to a settings file (`--settings`).
    pub settings: Option<Value>,
    /// Which setting files load (`--setting-sources`: `user`, `project`,
    /// `local`); an empty list loads none.
    pub setting_sources: Option<Vec<String>>,
    /// External MCP servers, `{"mcpServers": {...}}` as the CLI reads it
    /// (`--mcp-config`); the engine's host-defined tool servers are added.
    pub mcp_config: Option<Value>,
    /// Plugin directories (`--plugin-dir`, each).
    #[schemars(with = "Vec<String>")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Extra environment for the agent, over the engine's `env`.
    pub env: BTreeMap<String, String>,
    /// The agent's configuration directory (`CLAUDE_CONFIG_DIR`): where its
    /// credentials, settings and transcripts live. One per tenant keeps
    /// tenants apart.
    #[schemars(with = "Option<String>")]
    pub config_dir: Option<PathBuf>,
}

impl SessionOptions {
    /// Session options from their wire form (`null`: none set).
    pub fn from_json(v: &Value) -> Result<SessionOptions> {
        let o: SessionOptions = super::options::from_wire(v, "session")?;
        o.validate()?;
        Ok(o)
    }

    /// Checks what no type expresses.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |name: &str, what: &str| Err(Error::InvalidConfig(format!("session.{name}: {what}")));
        if self
            .binary
            .as_ref()
            .is_some_and(|b| b.as_os_str().is_empty())
        {
            return bad("binary", "must not be empty");
        }
        if self.provider == Some(super::Provider::Acp) {
            self.refuse_claude_only()?;
        }
        if self.max_turns == Some(0) {
            return bad("max_turns", "must be at least 1");
        }
        if let Some(b) = self.max_budget_usd {
            if !(b.is_finite() && b > 0.0) {
                return bad("max_budget_usd", "must be a positive number");
            }
        }
        if let Some(s) = &self.json_schema {
            if !s.is_object() {
                return bad("json_schema", "must be a JSON object (a JSON Schema)");
            }
        }
        if let Some(a) = &self.agents {
            if !a.is_object() {
                return bad("agents", "must be an object of agent definitions by name");
            }
        }
        if let Some(s) = &self.settings {
            if !(s.is_object() || s.is_string()) {
                return bad("settings", "must be an object or a path");
            }
        }
        if let Some(m) = &self.mcp_config {
            if !m.get("mcpServers").is_some_and(Value::is_object) {
                return bad("mcp_config", "must be an object with an mcpServers object");
            }
        }
        for (name, dirs) in [
            ("add_dirs", &self.add_dirs),
            ("plugin_dirs", &self.plugin_dirs),
        ] {
            if dirs.iter().any(|d| d.as_os_str().is_empty()) {
                return bad(name, "paths must not be empty");
            }
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return bad("env", "names must be non-empty without '=' or NUL");
            }
        }
        if self
            .config_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty() || d.is_relative())
        {
            return bad("config_dir", "must be an absolute path");
        }
        Ok(())
    }
}

impl SessionOptions {
    /// Refuses the options an `acp` session does not take (see
    /// [`super::provider`]), naming the first one set.
    pub(crate) fn refuse_claude_only(&self) -> Result<()> {
        super::provider::refuse_claude_only(
            &super::to_value(self),
            &super::to_value(&SessionOptions::default()),
            super::provider::CLAUDE_ONLY_SESSION_OPTIONS,
            "session.",
        )
    }
}

/// An image sent with a turn's prompt (a content block before the text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub media_type: String,
    /// The image, base64-encoded.
    pub data: String,
}

impl ImageInput {
    const MEDIA_TYPES: [&'static str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

    /// Checks the media type and that `data` looks like base64 (the model
    /// API rejects anything else, far from the caller).
    pub fn validate(&self) -> Result<()> {
        if !Self::MEDIA_TYPES.contains(&self.media_type.as_str()) {
            return Err(Error::InvalidConfig(format!(
                "images: media_type {:?} is not one of {}",
                self.media_type,
                Self::MEDIA_TYPES.join(", ")
            )));
        }
        let base64 = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
        if self.data.is_empty() || !self.data.bytes().all(base64) {
            return Err(Error::InvalidConfig(
                "images: data must be non-empty base64 (A-Z a-z 0-9 + / =)".into(),
            ));
        }
        Ok(())
    }
}

/// The text the agent receives for `prompt` with the seed's per-turn task
/// instructions: a `<context>` section, then the `<user_query>`, each in a
/// CDATA section. A `]]>` inside either text is split across two CDATA
/// sections, so no text can end its section early (the seed's layout
/// broke there).
pub fn with_instructions(instructions: &str, prompt: &str) -> String {
    fn cdata(s: &str) -> String {
        s.replace("]]>", "]]]]><![CDATA[>")
    }
    format!(
        "<context>\n<![CDATA[\n{}\n]]>\n</context>\n\n<user_query>\n<![CDATA[\n{}\n]]>\n</user_query>",
        cdata(instructions),
        cdata(prompt)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_options_read_their_wire_form_and_reject_bad_values() {
        let o = SessionOptions::from_json(&json!({
            "model": "m", "max_turns": 2, "json_schema": {"type": "object"},
            "env": {"A": "1"}, "add_dirs": ["/tmp"], "setting_sources": []
        }))
        .unwrap();
        assert_eq!(o.model.as_deref(), Some("m"));
        assert_eq!(o.max_turns, Some(2));
        assert_eq!(o.setting_sources, Some(vec![]));
        for bad in [
            json!({"max_turns": 0}),
            json!({"json_schema": "x"}),
            json!({"mcp_config": {"servers": {}}}),
            json!({"config_dir": "relative"}),
            json!({"env": {"A=B": "1"}}),
            json!({"max_budget_usd": -1}),
            json!({"modle": "m"}),
        ] {
            assert!(SessionOptions::from_json(&bad).is_err(), "{bad} must fail");
        }
    }

    #[test]
    fn instructions_wrap_the_prompt_as_the_seed_did() {
        assert_eq!(
            with_instructions("be brief", "hi"),
            "<context>\n<![CDATA[\nbe brief\n]]>\n</context>\n\n<user_query>\n<![CDATA[\nhi\n]]>\n</user_query>"
        );
    }

    #[test]
    fn a_cdata_end_inside_the_texts_cannot_close_their_section() {
        let t = with_instructions("a]]>b", "</user_query>]]>");
        assert_eq!(t.matches("<![CDATA[").count(), t.matches("]]>").count());
        assert!(t.contains("a]]]]><![CDATA[>b"));
    }

    #[test]
    fn images_need_a_known_media_type_and_base64() {
        let ok = ImageInput {
            media_type: "image/png".into(),
            data: "iVBORw0KGgo=".into(),
        };
        assert!(ok.validate().is_ok());
        assert!(ImageInput {
            media_type: "image/tiff".into(),
            ..ok.clone()
        }
        .validate()
        .is_err());
        assert!(ImageInput {
            data: "not base64!".into(),
            ..ok
        }
        .validate()
        .is_err());
    }
}
