//! The Claude Code stream-json protocol: what the CLI prints and what a host
//! writes back, as typed values.
//!
//! The CLI runs as `claude -p --input-format stream-json --output-format
//! stream-json --verbose --permission-prompt-tool stdio` and speaks one JSON
//! object per line in both directions (see `shared/docs/claude-code-protocol.md`
//! for the facts this module was written against, CLI 2.1.197):
//!
//! * stdout: `system/init` at the start of each turn, `assistant` messages
//!   (text, thinking and tool_use blocks), `user` messages carrying
//!   tool_result blocks, exactly one `result` per user message, and
//!   `control_request` / `control_response` lines of the control protocol;
//! * stdin: one `user` message per turn, `control_response` answers to
//!   `can_use_tool` requests, and `control_request`s (`initialize`,
//!   `interrupt`) from the host.
//!
//! [`tracker`] turns the lines of a turn into the host's events (the seed's
//! names) and per-turn statistics.
//!
//! Parsing is tolerant where the CLI varies (tool_result `content` as a
//! string or a list of blocks, user `content` as a string or blocks) and
//! strict where it matters: a line that is not a JSON object is an error the
//! caller can count and skip, never a panic. Unknown line types and block
//! types are kept as [`Line::Other`] / [`Block::Other`] so nothing is lost.

use serde_json::{json, Map, Value};
use thiserror::Error;

pub mod acp;
pub mod tracker;

pub use crate::contract::Usage;

/// A line of CLI output that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// Not JSON at all (the CLI printed something else, or a line was cut).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object with a string `type`.
    #[error("not a protocol message: {0}")]
    NotAMessage(String),
}

/// Token counts from the CLI's `usage` object (missing counts are 0).
fn usage_from_value(v: Option<&Value>) -> Option<Usage> {
    let v = v?.as_object()?;
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_creation_input_tokens: n("cache_creation_input_tokens"),
        cache_read_input_tokens: n("cache_read_input_tokens"),
    })
}

/// A content block of an `assistant` or `user` message.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// Answer text.
    Text(String),
    /// Extended thinking.
    Thinking(String),
    /// The model asks to run a tool.
    ToolUse {
        /// Tool call id (matches the later tool_result).
        id: String,
        /// Tool name (`Bash`, `Write`, ...).
        name: String,
        /// Tool input object.
        input: Value,
    },
    /// The result of a tool call, sent back to the model.
    ToolResult {
        /// The tool call it answers.
        tool_use_id: String,
        /// Result text (list-of-blocks content is flattened to its text).
        content: String,
        /// Whether the tool failed (or was denied).
        is_error: bool,
    },
    /// A block type this module does not know.
    Other(Value),
}

/// The final line of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnResult {
    /// `success`, `error_during_execution`, `error_max_turns`, ...
    pub subtype: String,
    /// Whether the turn failed (interrupts report `true`).
    pub is_error: bool,
    /// The final answer text, if any.
    pub result: Option<String>,
    /// Wall time of the turn in the CLI.
    pub duration_ms: u64,
    /// Time spent waiting for the model API.
    pub duration_api_ms: u64,
    /// Model round trips in the turn.
    pub num_turns: u64,
    /// The CLI's session id.
    pub session_id: Option<String>,
    /// Cost as the CLI computes it.
    pub total_cost_usd: f64,
    /// Token usage of the turn.
    pub usage: Usage,
    /// Tool calls the permission layer denied.
    pub permission_denials: Vec<Value>,
    /// Error messages of a failed turn (e.g. a refused `--resume`).
    pub errors: Vec<String>,
    /// The `uuid` of the user message this result answers (CLI 2.1.332
    /// prints it; 2.1.197 does not).
    pub user_message_uuid: Option<String>,
    /// The answer as the JSON value `--json-schema` asked for.
    pub structured_output: Option<Value>,
}

/// A control request from the CLI to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum CliRequest {
    /// Permission to run a tool; answer with [`allow_tool`] or [`deny_tool`].
    CanUseTool {
        /// Tool name.
        tool_name: String,
        /// Tool input object.
        input: Value,
        /// The rest of the request, for the host: `permission_suggestions`,
        /// `decision_reason`, `tool_use_id`, `blocked_path`, ...
        context: Value,
    },
    /// A hook the host registered with [`initialize_with_tool_hook`] fired:
    /// for `PreToolUse`, before *every* tool call, including the read-only
    /// ones the CLI runs without asking `can_use_tool`. Answer with
    /// [`hook_continue`] or [`hook_deny`].
    HookCallback {
        /// The callback id given at `initialize`.
        callback_id: String,
        /// `hook_event_name`, e.g. `PreToolUse`.
        event: String,
        /// The tool about to run (PreToolUse).
        tool_name: Option<String>,
        /// Its input object.
        tool_input: Value,
        /// The whole hook input (`hook_event_name`, `tool_name`,
        /// `tool_input`, `tool_response`, `session_id`, ...), for host hooks.
        input: Value,
        /// The tool call the hook is about, if any.
        tool_use_id: Option<String>,
    },
    /// A JSON-RPC message for an in-process (`sdk`) MCP server of the host.
    McpMessage {
        /// The server's name in `--mcp-config`.
        server_name: String,
        /// The JSON-RPC message.
        message: Value,
    },
    /// Any other subtype.
    Other {
        /// The request's subtype.
        subtype: String,
        /// The whole `request` object.
        request: Value,
    },
}

/// One line of CLI output.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `system/init`: the session as the CLI sees it.
    Init {
        /// The CLI's session id.
        session_id: Option<String>,
        /// The model in use.
        model: Option<String>,
        /// Working directory.
        cwd: Option<String>,
        /// The CLI version.
        version: Option<String>,
        /// The permission mode the turn runs in (`default`, `plan`, ...).
        permission_mode: Option<String>,
    },
    /// `system/status`: printed after every permission mode change (a
    /// `set_permission_mode`, an approved plan, the agent entering plan
    /// mode), and at turn starts with partial messages.
    Status {
        /// The permission mode now, when the line names one.
        permission_mode: Option<String>,
    },
    /// An assistant message.
    Assistant {
        /// Its blocks, in order.
        blocks: Vec<Block>,
        /// Usage reported with the message.
        usage: Option<Usage>,
    },
    /// A user message (tool results, or the CLI's interrupt note).
    User {
        /// Its blocks, in order (plain string content becomes one text block).
        blocks: Vec<Block>,
    },
    /// The end of a turn.
    Result(TurnResult),
    /// A control request from the CLI.
    ControlRequest {
        /// Id to answer with.
        request_id: String,
        /// What is asked.
        request: CliRequest,
    },
    /// The answer to a host control request.
    ControlResponse {
        /// The host request it answers.
        request_id: String,
        /// `success` or `error`.
        subtype: String,
        /// The error message, for `error`.
        error: Option<String>,
        /// The payload of a `success` (`{}` when there is none).
        response: Value,
    },
    /// The CLI gave up on one of its requests (`control_cancel_request`):
    /// it will not read an answer to it.
    ControlCancel {
        /// The CLI request it cancels.
        request_id: String,
    },
    /// A token delta of the message being generated (`stream_event` with a
    /// `content_block_delta`, printed with `--include-partial-messages`
    /// before the complete `assistant` message; verified, CLI 2.1.197).
    /// Deltas of a subagent (`parent_tool_use_id` set) are not parsed as
    /// such: they belong to the subagent's conversation, not the answer.
    /// The CLI's echo of a user message the host wrote
    /// (`--replay-user-messages`: a `user` line with `isReplay: true`): the
    /// CLI has begun answering the message with this `uuid`.
    Echo {
        /// The message's `uuid` (the host's, when it sent one).
        uuid: Option<String>,
    },
    Delta(Delta),
    /// Any other line (`system` subtypes, other `stream_event`s, ...).
    Other {
        /// The `type` field.
        kind: String,
        /// The whole line.
        value: Value,
    },
}

/// A piece of a content block, as the model generates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// Answer text (`text_delta`).
    Text(String),
    /// Extended thinking text (`thinking_delta`).
    Thinking(String),
    /// A piece of a tool call's input JSON (`input_json_delta`).
    ToolInput(String),
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// Moves the string at `k` out of `v` (no copy: a large text is moved, not
/// cloned, so a big line costs about twice its size at peak, not more).
fn take_str(v: &mut Value, k: &str) -> Option<String> {
    match v.get_mut(k).map(Value::take) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn content_text(v: Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s,
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) if !other.is_null() => other.to_string(),
        _ => String::new(),
    }
}

fn parse_blocks(content: Option<Value>) -> Vec<Block> {
    match content {
        Some(Value::String(s)) => vec![Block::Text(s)],
        Some(Value::Array(items)) => items.into_iter().map(parse_block).collect(),
        _ => Vec::new(),
    }
}

fn parse_block(mut b: Value) -> Block {
    let kind = b.get("type").and_then(Value::as_str).map(str::to_owned);
    match kind.as_deref() {
        Some("text") => Block::Text(take_str(&mut b, "text").unwrap_or_default()),
        Some("thinking") => Block::Thinking(take_str(&mut b, "thinking").unwrap_or_default()),
        Some("tool_use") => Block::ToolUse {
            id: take_str(&mut b, "id").unwrap_or_default(),
            name: take_str(&mut b, "name").unwrap_or_default(),
            input: match b.get_mut("input").map(Value::take) {
                Some(v) if !v.is_null() => v,
                _ => Value::Object(Map::new()),
            },
        },
        Some("tool_result") => Block::ToolResult {
            tool_use_id: take_str(&mut b, "tool_use_id").unwrap_or_default(),
            content: content_text(b.get_mut("content").map(Value::take)),
            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
        },
        _ => Block::Other(b),
    }
}

/// The message `content` of a line, moved out.
fn take_content(v: &mut Value) -> Option<Value> {
    v.get_mut("message")
        .and_then(|m| m.get_mut("content"))
        .map(Value::take)
}

/// Parses one line of CLI stdout (without its newline).
///
/// Lossy where a strict parser would lose a whole line to one bad
/// character: a lone UTF-16 surrogate escape (`\ud800`, which Node's
/// `JSON.stringify` prints for a cut emoji) becomes U+FFFD. Invalid UTF-8
/// bytes are replaced before this (see the engine's line reader).
pub fn parse_line(line: &str) -> Result<Line, ProtocolError> {
    let v: Value = match serde_json::from_str(line.trim()) {
        Ok(v) => v,
        Err(e) => match repair_surrogates(line) {
            Some(fixed) => serde_json::from_str(fixed.trim())
                .map_err(|e| ProtocolError::NotJson(e.to_string()))?,
            None => return Err(ProtocolError::NotJson(e.to_string())),
        },
    };
    parse_value(v, line)
}

fn parse_value(mut v: Value, line: &str) -> Result<Line, ProtocolError> {
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::NotAMessage(truncate(line, 120)))?
        .to_owned();
    Ok(match kind.as_str() {
        "system" if v.get("subtype").and_then(Value::as_str) == Some("init") => Line::Init {
            session_id: str_field(&v, "session_id"),
            model: str_field(&v, "model"),
            cwd: str_field(&v, "cwd"),
            version: str_field(&v, "claude_code_version"),
            permission_mode: str_field(&v, "permissionMode"),
        },
        "system" if v.get("subtype").and_then(Value::as_str) == Some("status") => Line::Status {
            permission_mode: str_field(&v, "permissionMode"),
        },
        "assistant" => Line::Assistant {
            usage: usage_from_value(v.get("message").and_then(|m| m.get("usage"))),
            blocks: parse_blocks(take_content(&mut v)),
        },
        "user" if v.get("isReplay").and_then(Value::as_bool) == Some(true) => Line::Echo {
            uuid: str_field(&v, "uuid"),
        },
        "user" => Line::User {
            blocks: parse_blocks(take_content(&mut v)),
        },
        "result" => {
            let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
            Line::Result(TurnResult {
                subtype: str_field(&v, "subtype").unwrap_or_default(),
                is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                duration_ms: n("duration_ms"),
                duration_api_ms: n("duration_api_ms"),
                num_turns: n("num_turns"),
                session_id: str_field(&v, "session_id"),
                total_cost_usd: v
                    .get("total_cost_usd")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0),
                usage: usage_from_value(v.get("usage")).unwrap_or_default(),
                permission_denials: v
                    .get("permission_denials")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                errors: v
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                user_message_uuid: str_field(&v, "user_message_uuid"),
                structured_output: v
                    .get_mut("structured_output")
                    .map(Value::take)
                    .filter(|s| !s.is_null()),
                result: take_str(&mut v, "result"),
            })
        }
        "control_request" => {
            let mut request = v.get_mut("request").map(Value::take).unwrap_or(Value::Null);
            let subtype = str_field(&request, "subtype").unwrap_or_default();
            Line::ControlRequest {
                request_id: str_field(&v, "request_id").unwrap_or_default(),
                request: match subtype.as_str() {
                    "can_use_tool" => {
                        let input = match request.get_mut("input").map(Value::take) {
                            Some(v) if !v.is_null() => v,
                            _ => Value::Object(Map::new()),
                        };
                        let tool_name = str_field(&request, "tool_name").unwrap_or_default();
                        if let Some(o) = request.as_object_mut() {
                            for k in ["subtype", "tool_name", "input"] {
                                o.remove(k);
                            }
                        }
                        CliRequest::CanUseTool {
                            tool_name,
                            input,
                            context: request,
                        }
                    }
                    "hook_callback" => {
                        let input = request
                            .get_mut("input")
                            .map(Value::take)
                            .unwrap_or(Value::Null);
                        CliRequest::HookCallback {
                            callback_id: str_field(&request, "callback_id").unwrap_or_default(),
                            event: str_field(&input, "hook_event_name").unwrap_or_default(),
                            tool_name: str_field(&input, "tool_name"),
                            tool_input: match input.get("tool_input") {
                                Some(v) if !v.is_null() => v.clone(),
                                _ => Value::Object(Map::new()),
                            },
                            tool_use_id: str_field(&request, "tool_use_id")
                                .or_else(|| str_field(&input, "tool_use_id")),
                            input,
                        }
                    }
                    "mcp_message" => CliRequest::McpMessage {
                        server_name: str_field(&request, "server_name").unwrap_or_default(),
                        message: request
                            .get_mut("message")
                            .map(Value::take)
                            .unwrap_or(Value::Null),
                    },
                    _ => CliRequest::Other { subtype, request },
                },
            }
        }
        "control_response" => {
            let r = v.get("response").cloned().unwrap_or(Value::Null);
            Line::ControlResponse {
                request_id: str_field(&r, "request_id").unwrap_or_default(),
                subtype: str_field(&r, "subtype").unwrap_or_default(),
                error: str_field(&r, "error"),
                response: r
                    .get("response")
                    .filter(|v| !v.is_null())
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            }
        }
        "control_cancel_request" => Line::ControlCancel {
            request_id: str_field(&v, "request_id").unwrap_or_default(),
        },
        "stream_event" => match stream_delta(&v) {
            Some(d) => Line::Delta(d),
            None => Line::Other { kind, value: v },
        },
        _ => Line::Other { kind, value: v },
    })
}

/// `line` with every `\uXXXX` escape of a UTF-16 surrogate that is not
/// part of a valid pair replaced by `\ufffd`; `None` when there is none.
/// Linear; escapes are recognised only inside JSON strings (a `\\` before
/// `u` is an escaped backslash, not an escape).
pub fn repair_surrogates(line: &str) -> Option<String> {
    let b = line.as_bytes();
    let hex4 = |i: usize| -> Option<u16> {
        let s = line.get(i..i + 4)?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u16::from_str_radix(s, 16).ok()
    };
    let is_hi = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_lo = |u: u16| (0xDC00..0xE000).contains(&u);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string && i + 1 < b.len() => {
                if b[i + 1] == b'u' {
                    if let Some(u) = hex4(i + 2) {
                        let paired = is_hi(u)
                            && b.get(i + 6) == Some(&b'\\')
                            && b.get(i + 7) == Some(&b'u')
                            && hex4(i + 8).is_some_and(is_lo);
                        if paired {
                            i += 12;
                            continue;
                        }
                        if is_hi(u) || is_lo(u) {
                            let o = out.get_or_insert_with(|| String::with_capacity(line.len()));
                            o.push_str(&line[copied..i]);
                            o.push_str("\\ufffd");
                            copied = i + 6;
                        }
                        i += 6;
                        continue;
                    }
                }
                // Any other escape: skip the escaped character.
                i += 2;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut o = out?;
    o.push_str(&line[copied..]);
    Some(o)
}

/// Whether `bytes` holds the key-value pair that marks a `result` line.
/// Inside a JSON string a quote is always escaped, so the unescaped pair
/// appears only as the structure of a line: a cut or corrupted line still
/// shows what it was.
pub fn looks_like_result(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, RESULT_TAG).is_some()
}

/// The bytes [`looks_like_result`] looks for.
pub const RESULT_TAG: &[u8] = br#""type":"result""#;

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// The delta of a main-conversation `stream_event` line, if it holds one.
fn stream_delta(v: &Value) -> Option<Delta> {
    if v.get("parent_tool_use_id").is_some_and(|p| !p.is_null()) {
        return None;
    }
    let event = v.get("event")?;
    if event.get("type")?.as_str()? != "content_block_delta" {
        return None;
    }
    let delta = event.get("delta")?;
    let field = |k: &str| delta.get(k)?.as_str().map(str::to_owned);
    match delta.get("type")?.as_str()? {
        "text_delta" => field("text").map(Delta::Text),
        "thinking_delta" => field("thinking").map(Delta::Thinking),
        "input_json_delta" => field("partial_json").map(Delta::ToolInput),
        _ => None,
    }
}

/// A user turn, as one stdin line (with its newline).
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn user_message(text: &str) -> String {
    line(json!({
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
    }))
}

/// Like [`user_message`], with the message's `uuid`: under
/// `--replay-user-messages` the CLI echoes it (a [`Line::Echo`]) when it
/// begins the message, and CLI 2.1.332 names it in the `result`
/// (`user_message_uuid`), so the host knows which output answers which
/// message.
pub fn user_message_with_uuid(text: &str, uuid: &str) -> String {
    line(json!({
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
        "uuid": uuid,
        "parent_tool_use_id": null,
        "session_id": "",
    }))
}

/// Like [`user_message_with_uuid`], with images (`(media_type, base64
/// data)`) as content blocks before the text.
pub fn user_message_with_content(text: &str, images: &[(&str, &str)], uuid: &str) -> String {
    if images.is_empty() {
        return user_message_with_uuid(text, uuid);
    }
    let mut content: Vec<Value> = images
        .iter()
        .map(|(media_type, data)| {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        })
        .collect();
    content.push(json!({"type": "text", "text": text}));
    line(json!({
        "type": "user",
        "message": {"role": "user", "content": content},
        "uuid": uuid,
        "parent_tool_use_id": null,
        "session_id": "",
    }))
}

/// Allows a `can_use_tool` request, passing the input through unchanged.
pub fn allow_tool(request_id: &str, input: &Value) -> String {
    control_response(
        request_id,
        json!({"behavior": "allow", "updatedInput": input}),
    )
}

/// Allows a `can_use_tool` request with `input`, adding the host's
/// `updatedPermissions` (rules the CLI keeps for later calls) if any.
pub fn allow_tool_with(request_id: &str, input: &Value, permissions: Option<&Value>) -> String {
    let mut r = json!({"behavior": "allow", "updatedInput": input});
    if let Some(p) = permissions {
        r["updatedPermissions"] = p.clone();
    }
    control_response(request_id, r)
}

/// Denies a `can_use_tool` request and, with `interrupt`, asks the CLI to
/// stop the turn as well.
pub fn deny_tool_with(request_id: &str, message: &str, interrupt: bool) -> String {
    let mut r = json!({"behavior": "deny", "message": message});
    if interrupt {
        r["interrupt"] = Value::Bool(true);
    }
    control_response(request_id, r)
}

/// A host control request (`set_model`, `get_context_usage`, ...): `body`
/// is the `request` object with its `subtype`.
pub fn control_request(request_id: &str, body: Value) -> String {
    line(json!({"type": "control_request", "request_id": request_id, "request": body}))
}

/// Answers a CLI request with `response` (a hook's output, an MCP reply).
pub fn control_success(request_id: &str, response: Value) -> String {
    control_response(request_id, response)
}

/// Denies a `can_use_tool` request; the model sees `message` as the tool's
/// error result and the turn goes on.
pub fn deny_tool(request_id: &str, message: &str) -> String {
    control_response(request_id, json!({"behavior": "deny", "message": message}))
}

/// Asks the CLI to stop the current turn; it answers with a control response
/// and ends the turn with an `is_error` result, and the process stays usable.
pub fn interrupt(request_id: &str) -> String {
    line(
        json!({"type": "control_request", "request_id": request_id, "request": {"subtype": "interrupt"}}),
    )
}

/// Claude Code's tool that asks the person questions with choices; its
/// `can_use_tool` request waits for the answer (`updatedInput.answers`).
pub const ASK_USER_QUESTION: &str = "AskUserQuestion";

/// Claude Code's tool that proposes a plan in plan mode; its `can_use_tool`
/// request waits for the approval (allow) or the feedback (deny).
pub const EXIT_PLAN_MODE: &str = "ExitPlanMode";

/// Whether a `can_use_tool` request for `tool_name` asks the person rather
/// than for a permission (its answer may take minutes).
pub fn is_interactive(tool_name: &str) -> bool {
    tool_name == ASK_USER_QUESTION || tool_name == EXIT_PLAN_MODE
}

/// The callback id hotplex registers for its `PreToolUse` hook.
pub const TOOL_HOOK_ID: &str = "hotplex_waf";

/// The callback id of the `UserPromptSubmit` hook hotplex registers in a
/// spare process: it blocks the spare's warm-up message (so the CLI runs
/// its first-message work before a session claims the spare, without the
/// message entering the conversation) and lets every later prompt pass.
pub const WARM_HOOK_ID: &str = "hotplex_warm";

/// Blocks a prompt from a `UserPromptSubmit` hook: the CLI answers it with
/// a `result` saying so, makes no model request, and keeps the prompt out
/// of the conversation (`tests/e2e/FACTS.md`, section y).
pub fn hook_block(request_id: &str, reason: &str) -> String {
    control_response(request_id, json!({"decision": "block", "reason": reason}))
}

/// The opening handshake, registering a `PreToolUse` hook (id
/// [`TOOL_HOOK_ID`]) for every tool: the CLI then sends a `hook_callback`
/// before each tool call, even those it would run without a permission
/// request (read-only commands such as `ls`), so the WAF sees them all.
/// Verified against CLI 2.1.197 (`tests/e2e/FACTS.md`).
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub fn initialize_with_tool_hook(request_id: &str) -> String {
    initialize_with_hooks(request_id, &[])
}

/// One host hook registration for [`initialize_with_hooks`].
#[derive(Debug, Clone, PartialEq)]
pub struct HookRegistration<'a> {
    /// The hook event (`PostToolUse`, ...).
    pub event: &'a str,
    /// Which tools it applies to (a tool name or `A|B` pattern); `None`: all.
    pub matcher: Option<&'a str>,
    /// The callback id the CLI sends back in `hook_callback`.
    pub callback_id: &'a str,
    /// Seconds the CLI waits for the answer.
    pub timeout_secs: Option<f64>,
}

/// The opening handshake with hotplex's own `PreToolUse` hook (first, for
/// every tool; see [`initialize_with_tool_hook`]) and the host's `hooks`.
pub fn initialize_with_hooks(request_id: &str, hooks: &[HookRegistration<'_>]) -> String {
    let mut config = Map::new();
    config.insert(
        "PreToolUse".into(),
        json!([{"matcher": null, "hookCallbackIds": [TOOL_HOOK_ID]}]),
    );
    for h in hooks {
        let mut m = json!({"matcher": h.matcher, "hookCallbackIds": [h.callback_id]});
        if let Some(t) = h.timeout_secs {
            m["timeout"] = json!(t);
        }
        if let Value::Array(list) = config
            .entry(h.event.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            list.push(m);
        }
    }
    line(json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "initialize", "hooks": config},
    }))
}

/// Lets a hooked tool call go on (to the CLI's normal permission flow).
pub fn hook_continue(request_id: &str) -> String {
    control_response(request_id, json!({}))
}

/// Denies a hooked tool call; the model sees `reason` as the tool's error.
pub fn hook_deny(request_id: &str, reason: &str) -> String {
    control_response(
        request_id,
        json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }}),
    )
}

/// The control protocol's opening handshake.
#[cfg(test)]
pub fn initialize(request_id: &str) -> String {
    line(
        json!({"type": "control_request", "request_id": request_id, "request": {"subtype": "initialize", "hooks": null}}),
    )
}

/// The answer that refuses `request` (whatever its kind) with `why`: a
/// denied tool for `can_use_tool`, a `deny` decision for a hook, an error
/// response for anything else. The CLI waits for an answer to every
/// request, so a request hotplex will not grant (outside a turn, during an
/// interrupt) still gets this one.
pub fn refuse(request_id: &str, request: &CliRequest, why: &str) -> String {
    match request {
        CliRequest::CanUseTool { .. } => deny_tool(request_id, why),
        CliRequest::HookCallback { event, .. } if event == "PreToolUse" => {
            hook_deny(request_id, why)
        }
        CliRequest::HookCallback { .. } => hook_continue(request_id),
        CliRequest::McpMessage { message, .. } => mcp_reply(request_id, mcp_error(message, why)),
        CliRequest::Other { .. } => control_error(request_id, why),
    }
}

/// Answers an `mcp_message` request with the server's JSON-RPC `body`.
pub fn mcp_reply(request_id: &str, body: Value) -> String {
    control_success(request_id, json!({"mcp_response": body}))
}

/// A JSON-RPC error answering `message` (code -32603, internal error).
pub fn mcp_error(message: &Value, why: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": message.get("id").cloned().unwrap_or(Value::Null),
        "error": {"code": -32603, "message": why},
    })
}

/// Refuses a control request the host does not handle, so the CLI does not
/// wait for an answer that never comes.
pub fn control_error(request_id: &str, message: &str) -> String {
    line(json!({
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": message},
    }))
}

fn control_response(request_id: &str, response: Value) -> String {
    line(json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }))
}

fn line(v: Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_line_gives_session_and_model() {
        let l = parse_line(r#"{"type":"system","subtype":"init","session_id":"s1","cwd":"/w","tools":["Bash"],"model":"claude-x","permissionMode":"default","claude_code_version":"2.1.197"}"#).unwrap();
        assert_eq!(
            l,
            Line::Init {
                session_id: Some("s1".into()),
                model: Some("claude-x".into()),
                cwd: Some("/w".into()),
                version: Some("2.1.197".into()),
                permission_mode: Some("default".into()),
            }
        );
    }

    #[test]
    fn assistant_blocks_keep_their_order_and_kinds() {
        let l = parse_line(r#"{"type":"assistant","message":{"content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"hi"},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}],"usage":{"input_tokens":3,"output_tokens":5}},"session_id":"s1"}"#).unwrap();
        let Line::Assistant { blocks, usage } = l else {
            panic!("{l:?}")
        };
        assert_eq!(blocks[0], Block::Thinking("hm".into()));
        assert_eq!(blocks[1], Block::Text("hi".into()));
        assert!(matches!(&blocks[2], Block::ToolUse { name, .. } if name == "Bash"));
        assert_eq!(usage.unwrap().output_tokens, 5);
    }

    #[test]
    fn tool_result_content_may_be_a_string_or_blocks() {
        for content in [r#""out""#, r#"[{"type":"text","text":"out"}]"#] {
            let line = format!(
                r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"t1","content":{content},"is_error":true}}]}}}}"#
            );
            let Line::User { blocks } = parse_line(&line).unwrap() else {
                panic!()
            };
            assert_eq!(
                blocks,
                vec![Block::ToolResult {
                    tool_use_id: "t1".into(),
                    content: "out".into(),
                    is_error: true
                }]
            );
        }
        let Line::User { blocks } =
            parse_line(r#"{"type":"user","message":{"content":"[Request interrupted by user]"}}"#)
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(
            blocks,
            vec![Block::Text("[Request interrupted by user]".into())]
        );
    }

    #[test]
    fn result_line_carries_stats_and_errors() {
        let l = parse_line(r#"{"type":"result","subtype":"error_during_execution","is_error":true,"duration_ms":33,"duration_api_ms":20,"num_turns":1,"session_id":"s1","total_cost_usd":0.01,"usage":{"input_tokens":10,"output_tokens":2,"cache_read_input_tokens":7},"permission_denials":[]}"#).unwrap();
        let Line::Result(r) = l else { panic!() };
        assert!(r.is_error);
        assert_eq!(r.subtype, "error_during_execution");
        assert_eq!(r.usage.cache_read_input_tokens, 7);
        assert_eq!(r.duration_ms, 33);
    }

    #[test]
    fn can_use_tool_requests_are_typed() {
        let l = parse_line(r#"{"type":"control_request","request_id":"r9","request":{"subtype":"can_use_tool","tool_name":"Bash","input":{"command":"rm -rf /"},"permission_suggestions":[]}}"#).unwrap();
        assert_eq!(
            l,
            Line::ControlRequest {
                request_id: "r9".into(),
                request: CliRequest::CanUseTool {
                    tool_name: "Bash".into(),
                    input: json!({"command": "rm -rf /"}),
                    context: json!({"permission_suggestions": []}),
                }
            }
        );
    }

    #[test]
    fn mcp_messages_and_cancels_are_typed() {
        let l = parse_line(r#"{"type":"control_request","request_id":"r3","request":{"subtype":"mcp_message","server_name":"host","message":{"jsonrpc":"2.0","id":1,"method":"tools/list"}}}"#).unwrap();
        assert_eq!(
            l,
            Line::ControlRequest {
                request_id: "r3".into(),
                request: CliRequest::McpMessage {
                    server_name: "host".into(),
                    message: json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
                }
            }
        );
        let l = parse_line(r#"{"type":"control_cancel_request","request_id":"r3"}"#).unwrap();
        assert_eq!(
            l,
            Line::ControlCancel {
                request_id: "r3".into()
            }
        );
    }

    #[test]
    fn a_result_carries_its_structured_output() {
        let l = parse_line(r#"{"type":"result","subtype":"success","is_error":false,"result":"","structured_output":{"n":1}}"#).unwrap();
        let Line::Result(r) = l else { panic!() };
        assert_eq!(r.structured_output, Some(json!({"n": 1})));
    }

    #[test]
    fn control_responses_name_their_request() {
        let l = parse_line(r#"{"type":"control_response","response":{"subtype":"success","request_id":"r2","response":{}}}"#).unwrap();
        assert_eq!(
            l,
            Line::ControlResponse {
                request_id: "r2".into(),
                subtype: "success".into(),
                error: None,
                response: json!({}),
            }
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            parse_line("not json"),
            Err(ProtocolError::NotJson(_))
        ));
        assert!(matches!(
            parse_line("[1,2]"),
            Err(ProtocolError::NotAMessage(_))
        ));
        assert!(matches!(
            parse_line(r#"{"no":"type"}"#),
            Err(ProtocolError::NotAMessage(_))
        ));
        assert!(matches!(
            parse_line(r#"{"type":"stream_event","event":{}}"#),
            Ok(Line::Other { .. })
        ));
    }

    #[test]
    fn host_messages_are_single_json_lines() {
        for l in [
            user_message("hello\nworld"),
            allow_tool("r1", &json!({"command": "ls"})),
            deny_tool("r1", "blocked by WAF"),
            interrupt("r2"),
            initialize("r3"),
        ] {
            assert!(l.ends_with('\n') && l.matches('\n').count() == 1, "{l:?}");
            let v: Value = serde_json::from_str(&l).unwrap();
            assert!(v.get("type").is_some());
        }
        let v: Value = serde_json::from_str(&deny_tool("r1", "no")).unwrap();
        assert_eq!(v["response"]["response"]["behavior"], "deny");
        assert_eq!(v["response"]["request_id"], "r1");
    }
}
