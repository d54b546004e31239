//! Host-defined tools: functions of the host that the agent can call, served
//! in-process as MCP servers (the Claude Agent SDK's `sdk` servers).
//!
//! A binding turns the host's functions into [`ToolServer`]s (a name and
//! its tools' names, descriptions and JSON Schemas) plus one
//! [`ToolHandler`] that calls the function. The engine declares each server
//! to the agent (`--mcp-config` entry `{"type": "sdk"}`) and answers the
//! agent's `mcp_message` requests itself: `initialize`, `tools/list`,
//! notifications, and `tools/call`, which calls the handler off the
//! session's task. The model sees a tool as `mcp__<server>__<tool>`; its
//! calls appear as `tool_use`/`tool_result` events and go through the
//! WAF and the permission path like any tool.
//!
//! What a handler returns becomes the MCP result the model sees: a string
//! is one text block; an object with a `content` list is used as the MCP
//! result itself (so a host can return images or `isError`); any other
//! value is sent as its JSON text. A failure (raise, reject, panic,
//! timeout) becomes a result with `isError: true` and the failure's text,
//! which the model sees; the turn goes on.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{Error, Result};

/// The MCP protocol version the engine's servers speak.
pub const MCP_PROTOCOL_VERSION: &str = "2024-11-05";

/// One in-process MCP server of host tools.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolServer {
    /// The server's name: the model sees its tools as
    /// `mcp__<name>__<tool>`. Letters, digits, `_` and `-`.
    pub name: String,
    /// The version the server reports (default `1.0.0`).
    #[serde(default)]
    pub version: Option<String>,
    /// Its tools.
    pub tools: Vec<ToolSpec>,
}

/// One host tool as the model sees it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The tool's name within its server (letters, digits, `_`, `-`).
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: String,
    /// A JSON Schema of its arguments (an object schema; default: no
    /// arguments).
    #[serde(default = "empty_schema")]
    pub input_schema: Value,
}

fn empty_schema() -> Value {
    json!({"type": "object", "properties": {}})
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl ToolServer {
    /// Checks names (unique, allowed characters) and schemas (objects).
    pub fn validate_all(servers: &[ToolServer]) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig(format!("tools: {what}")));
        let mut names = std::collections::HashSet::new();
        for s in servers {
            if !is_name(&s.name) {
                return bad(format!(
                    "{:?} is not a server name (letters, digits, _ and -)",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return bad(format!("the server {:?} is defined twice", s.name));
            }
            let mut tools = std::collections::HashSet::new();
            for t in &s.tools {
                if !is_name(&t.name) {
                    return bad(format!(
                        "{:?} is not a tool name (letters, digits, _ and -)",
                        t.name
                    ));
                }
                if !tools.insert(t.name.as_str()) {
                    return bad(format!(
                        "the tool {:?} is defined twice in {:?}",
                        t.name, s.name
                    ));
                }
                if !t.input_schema.is_object() {
                    return bad(format!(
                        "the input_schema of {:?} must be an object",
                        t.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The tool named `name`, if this server has it.
    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// One call of a host tool.
#[derive(Debug)]
pub struct ToolInvocation<'a> {
    /// The host's session id.
    pub session_id: &'a str,
    /// The server's name.
    pub server: &'a str,
    /// The tool's name within it.
    pub tool: &'a str,
    /// The arguments the model gave (an object).
    pub arguments: &'a Value,
}

/// Calls host tools: the tool's answer (see the module docs), or why it
/// failed. Runs on a blocking thread; may wait for the host's event loop.
pub type ToolHandler =
    Arc<dyn Fn(&ToolInvocation<'_>) -> std::result::Result<Value, String> + Send + Sync>;

/// A host tool's answer as an MCP `tools/call` result.
pub fn tool_result(answer: std::result::Result<Value, String>) -> Value {
    match answer {
        Err(why) => json!({"content": [{"type": "text", "text": why}], "isError": true}),
        Ok(Value::String(text)) => json!({"content": [{"type": "text", "text": text}]}),
        Ok(v) if v.get("content").is_some_and(Value::is_array) => v,
        Ok(Value::Null) => json!({"content": []}),
        Ok(v) => json!({"content": [{"type": "text", "text": v.to_string()}]}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_answers_become_mcp_results() {
        assert_eq!(
            tool_result(Ok(json!("sunny"))),
            json!({"content": [{"type": "text", "text": "sunny"}]})
        );
        assert_eq!(
            tool_result(Ok(json!({"temp": 20}))),
            json!({"content": [{"type": "text", "text": "{\"temp\":20}"}]})
        );
        let own = json!({"content": [{"type": "text", "text": "x"}], "isError": true});
        assert_eq!(tool_result(Ok(own.clone())), own);
        assert_eq!(
            tool_result(Err("no such city".into())),
            json!({"content": [{"type": "text", "text": "no such city"}], "isError": true})
        );
    }

    #[test]
    fn tool_servers_need_unique_names_and_object_schemas() {
        let server = |name: &str, tools: Vec<ToolSpec>| ToolServer {
            name: name.into(),
            version: None,
            tools,
        };
        let tool = |name: &str| ToolSpec {
            name: name.into(),
            description: String::new(),
            input_schema: empty_schema(),
        };
        assert!(ToolServer::validate_all(&[server("host", vec![tool("a"), tool("b")])]).is_ok());
        assert!(ToolServer::validate_all(&[server("host", vec![tool("a"), tool("a")])]).is_err());
        assert!(ToolServer::validate_all(&[server("h", vec![]), server("h", vec![])]).is_err());
        assert!(ToolServer::validate_all(&[server("bad name", vec![])]).is_err());
        let mut t = tool("a");
        t.input_schema = json!("x");
        assert!(ToolServer::validate_all(&[server("host", vec![t])]).is_err());
    }
}
