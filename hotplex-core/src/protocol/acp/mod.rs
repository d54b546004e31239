//! The Agent Client Protocol (ACP, schema 1.x): JSON-RPC 2.0 over the
//! agent's stdio, one JSON object per line, as typed values.
//!
//! hotplex is the *client*: it starts the agent (`opencode acp`, `gemini
//! --acp`, ...) and writes requests to its stdin; the agent answers them and
//! sends requests and notifications of its own on stdout:
//!
//! * client -> agent: [`initialize`], [`session_new`], [`session_load`],
//!   [`session_prompt`], [`session_set_mode`], the [`session_cancel`]
//!   notification, and the answers to the agent's requests ([`response`],
//!   [`error_response`], [`permission_response`], ...). Request ids come
//!   from an [`IdCounter`].
//! * agent -> client: [`parse_line`] turns one line into an [`Incoming`]:
//!   a response to one of the client's requests, a `session/update`
//!   notification ([`SessionUpdate`]), or a request the client must answer
//!   ([`AgentRequest`]: permission, file system, terminal).
//!
//! [`tracker`] turns one turn's messages into the contract's events and
//! statistics; [`permission`] extracts what the WAF must judge from a
//! permission request and picks the option to answer with.
//!
//! Everything the agent prints is untrusted. Parsing is strict about the
//! JSON-RPC envelope (a line that is not a JSON object, or not `"jsonrpc":
//! "2.0"`, is an [`AcpError`] the caller counts and skips) and tolerant
//! inside it, as the schema is (`x-deserialize-default-on-error`): a field
//! of the wrong type is treated as absent, unknown update kinds and methods
//! are kept as `Other` so nothing is lost, and a request whose required
//! parameters are missing is still a request ([`AgentRequest::Invalid`])
//! so the client can answer it with an error instead of leaving the agent
//! waiting. Nothing here panics on input.
//!
//! Facts about real agents (OpenCode, Gemini CLI, claude-code-acp) are in
//! `shared/docs/acp-agents-offline.md`; the schema is
//! `agentclientprotocol/agent-client-protocol`, `schema/v1/schema.json`.

// The engine's ACP actor (`engine::acp`) drives this module; a few
// builders and accessors it does not use yet (`authenticate`,
// `session/set_mode`, the tracker's plan and command lists) are kept for
// the tests and the reference agent's (feature `internals`).
#![cfg_attr(not(feature = "internals"), allow(dead_code))]

use std::fmt;

use serde_json::{json, Value};
use thiserror::Error;

pub mod permission;
pub mod tracker;

pub use crate::contract::Usage;

/// The ACP major version hotplex speaks (sent in `initialize`; an agent
/// answering another one is not compatible).
pub const PROTOCOL_VERSION: u64 = 1;

/// JSON-RPC and ACP error codes (schema `ErrorCode`).
pub mod codes {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The request was cancelled (`$/cancel_request`, or internally).
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// Authentication is required first.
    pub const AUTH_REQUIRED: i64 = -32000;
    /// A resource, such as a file, was not found.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// A line the agent printed that is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcpError {
    /// Not JSON at all (a log line, a cut line, binary garbage).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("not a JSON object: {0}")]
    NotAnObject(String),
    /// An object without `"jsonrpc": "2.0"`, or with an id that cannot be
    /// answered (an object or an array).
    #[error("not JSON-RPC 2.0: {0}")]
    BadJsonRpc(String),
    /// A JSON-RPC object that is neither a request, a notification nor a
    /// response (no `method`, no `id`).
    #[error("not a request, notification or response: {0}")]
    NotAMessage(String),
    /// A result lacks a field the client cannot do without (e.g. the
    /// `sessionId` of `session/new`).
    #[error("missing or invalid field: {0}")]
    MissingField(&'static str),
}

/// A JSON-RPC request id. The client's own ids are [`RequestId::Int`]
/// (from an [`IdCounter`]); an agent's may be anything JSON-RPC allows and
/// are echoed back exactly as they came ([`RequestId::to_value`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    /// An integer that fits `i64`.
    Int(i64),
    /// A string.
    Str(String),
    /// Anything else the agent used (`null`, a fraction, an integer beyond
    /// `i64`), kept as it came so the answer carries the same id.
    Other(Value),
}

impl RequestId {
    /// The id as JSON, exactly as it was received or allocated.
    pub fn to_value(&self) -> Value {
        match self {
            RequestId::Int(n) => json!(n),
            RequestId::Str(s) => json!(s),
            RequestId::Other(v) => v.clone(),
        }
    }

    /// The id of a JSON value, or `None` for an object or array (which no
    /// JSON-RPC message may use as an id).
    fn from_value(v: Value) -> Option<RequestId> {
        Some(match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) => RequestId::Int(i),
                None => RequestId::Other(Value::Number(n)),
            },
            Value::String(s) => RequestId::Str(s),
            Value::Null | Value::Bool(_) => RequestId::Other(v),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Int(n) => write!(f, "{n}"),
            RequestId::Str(s) => f.write_str(s),
            RequestId::Other(v) => write!(f, "{v}"),
        }
    }
}

/// Allocates the client's request ids: 0, 1, 2, ... per agent process, so
/// a response is matched to its request by id alone.
#[derive(Debug, Default)]
pub struct IdCounter {
    next: i64,
}

impl IdCounter {
    /// A counter starting at 0.
    pub fn new() -> IdCounter {
        IdCounter::default()
    }

    /// The next id.
    pub fn next_id(&mut self) -> RequestId {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        RequestId::Int(id)
    }
}

// ---------------------------------------------------------------------------
// Client -> agent.

/// What hotplex offers the agent in `initialize`: the file system and
/// terminal methods it serves itself (so the WAF sees those operations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    /// `fs/read_text_file` is available.
    pub read_text_file: bool,
    /// `fs/write_text_file` is available.
    pub write_text_file: bool,
    /// All `terminal/*` methods are available.
    pub terminal: bool,
}

/// `initialize`: protocol version 1, the capabilities chosen, and
/// `clientInfo` naming hotplex and its version.
pub fn initialize(id: &RequestId, caps: ClientCapabilities) -> String {
    request(
        id,
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "clientCapabilities": {
                "fs": {
                    "readTextFile": caps.read_text_file,
                    "writeTextFile": caps.write_text_file,
                },
                "terminal": caps.terminal,
            },
            "clientInfo": {"name": "hotplex", "title": "hotplex", "version": crate::VERSION},
        }),
    )
}

/// `authenticate` with one of the methods the agent listed in its
/// `initialize` answer ([`AgentInfo::auth_methods`]).
pub fn authenticate(id: &RequestId, method_id: &str) -> String {
    request(id, "authenticate", json!({"methodId": method_id}))
}

/// `session/new` in `cwd` (absolute), with no MCP servers.
pub fn session_new(id: &RequestId, cwd: &str) -> String {
    request(id, "session/new", json!({"cwd": cwd, "mcpServers": []}))
}

/// `session/load` of an earlier session (only when the agent advertised
/// `loadSession`); the agent replays the conversation as `session/update`
/// notifications before it answers.
pub fn session_load(id: &RequestId, session_id: &str, cwd: &str) -> String {
    request(
        id,
        "session/load",
        json!({"sessionId": session_id, "cwd": cwd, "mcpServers": []}),
    )
}

/// `session/prompt`: one user turn, as a single text content block. The
/// turn ends with the agent's answer to this request ([`PromptResult`]).
pub fn session_prompt(id: &RequestId, session_id: &str, text: &str) -> String {
    request(
        id,
        "session/prompt",
        json!({"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}),
    )
}

/// `session/cancel` (a notification: no answer of its own). The agent
/// stops the turn and answers the pending `session/prompt` with
/// `stopReason: cancelled`; the client must answer pending permission
/// requests with [`permission::PermissionAnswer::Cancelled`].
pub fn session_cancel(session_id: &str) -> String {
    notification("session/cancel", json!({"sessionId": session_id}))
}

/// `session/set_mode` to one of the modes the agent listed
/// ([`SessionCreated::modes`]).
pub fn session_set_mode(id: &RequestId, session_id: &str, mode_id: &str) -> String {
    request(
        id,
        "session/set_mode",
        json!({"sessionId": session_id, "modeId": mode_id}),
    )
}

/// A successful answer to an agent request.
pub fn response(id: &RequestId, result: Value) -> String {
    line(json!({"jsonrpc": "2.0", "id": id.to_value(), "result": result}))
}

/// An error answer to an agent request (see [`codes`]).
pub fn error_response(id: &RequestId, code: i64, message: &str) -> String {
    line(json!({
        "jsonrpc": "2.0",
        "id": id.to_value(),
        "error": {"code": code, "message": message},
    }))
}

/// The answer to `session/request_permission`.
pub fn permission_response(id: &RequestId, answer: &permission::PermissionAnswer) -> String {
    let outcome = match answer {
        permission::PermissionAnswer::Selected { option_id, .. } => {
            json!({"outcome": "selected", "optionId": option_id})
        }
        permission::PermissionAnswer::Cancelled => json!({"outcome": "cancelled"}),
    };
    response(id, json!({ "outcome": outcome }))
}

/// The answer to `fs/read_text_file`.
pub fn read_text_file_response(id: &RequestId, content: &str) -> String {
    response(id, json!({ "content": content }))
}

/// The answer to `fs/write_text_file` (an empty result).
pub fn write_text_file_response(id: &RequestId) -> String {
    response(id, Value::Null)
}

/// The answer to `terminal/create`.
pub fn terminal_create_response(id: &RequestId, terminal_id: &str) -> String {
    response(id, json!({ "terminalId": terminal_id }))
}

/// How a terminal's command ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code (`None` when a signal ended it).
    pub exit_code: Option<u32>,
    /// The signal's name (`SIGKILL`), when a signal ended it.
    pub signal: Option<String>,
}

impl ExitStatus {
    fn to_value(&self) -> Value {
        json!({"exitCode": self.exit_code, "signal": self.signal})
    }
}

/// The answer to `terminal/output`: the output so far, whether it was
/// truncated, and the exit status once the command has ended.
pub fn terminal_output_response(
    id: &RequestId,
    output: &str,
    truncated: bool,
    exit: Option<&ExitStatus>,
) -> String {
    response(
        id,
        json!({
            "output": output,
            "truncated": truncated,
            "exitStatus": exit.map(ExitStatus::to_value),
        }),
    )
}

/// The answer to `terminal/wait_for_exit`.
pub fn terminal_exit_response(id: &RequestId, exit: &ExitStatus) -> String {
    response(id, exit.to_value())
}

/// The answer to `terminal/kill` and `terminal/release` (an empty object).
pub fn terminal_done_response(id: &RequestId) -> String {
    response(id, json!({}))
}

fn request(id: &RequestId, method: &str, params: Value) -> String {
    line(json!({"jsonrpc": "2.0", "id": id.to_value(), "method": method, "params": params}))
}

fn notification(method: &str, params: Value) -> String {
    line(json!({"jsonrpc": "2.0", "method": method, "params": params}))
}

/// One message as one line: `serde_json` escapes control characters inside
/// strings, so the only newline is the terminator.
fn line(v: Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

// ---------------------------------------------------------------------------
// Agent -> client.

/// One line of agent output, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to one of the client's requests (the caller matches
    /// `id`; an id it never sent is the agent's mistake, to count).
    Response {
        /// The id of the request it answers.
        id: RequestId,
        /// The result, or the JSON-RPC error.
        result: Result<Value, RpcError>,
    },
    /// A notification from the agent.
    Notification(AgentNotification),
    /// A request the client must answer (with the same `id`).
    Request {
        /// The id to answer with.
        id: RequestId,
        /// What is asked.
        request: AgentRequest,
    },
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// The code ([`codes`]; agents also use HTTP-like codes such as 401).
    pub code: i64,
    /// The message.
    pub message: String,
    /// Extra data, if any.
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// A notification from the agent.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentNotification {
    /// `session/update`: progress of a session.
    SessionUpdate {
        /// The session it belongs to.
        session_id: String,
        /// What changed.
        update: SessionUpdate,
    },
    /// `$/cancel_request`: the agent no longer waits for the answer to
    /// one of its requests (the client may answer it with
    /// [`codes::REQUEST_CANCELLED`] or drop the answer).
    CancelRequest {
        /// The agent request it cancels.
        id: RequestId,
    },
    /// Any other notification (extensions, `_`-prefixed methods).
    Other {
        /// The method.
        method: String,
        /// Its params (`null` when absent).
        params: Value,
    },
}

/// A request from the agent to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentRequest {
    /// `session/request_permission`: may this tool call run?
    RequestPermission(PermissionRequest),
    /// `fs/read_text_file`.
    ReadTextFile(ReadTextFile),
    /// `fs/write_text_file`.
    WriteTextFile(WriteTextFile),
    /// `terminal/create`: start a command.
    TerminalCreate(TerminalCreate),
    /// `terminal/output`: the output so far.
    TerminalOutput(TerminalRef),
    /// `terminal/wait_for_exit`: answer once the command has ended.
    TerminalWaitForExit(TerminalRef),
    /// `terminal/kill`: kill the command, keep the terminal.
    TerminalKill(TerminalRef),
    /// `terminal/release`: kill the command if needed and forget it.
    TerminalRelease(TerminalRef),
    /// A known method whose required parameters are missing or of the
    /// wrong type: answer it with [`codes::INVALID_PARAMS`] and `reason`.
    Invalid {
        /// The method.
        method: String,
        /// What is wrong.
        reason: String,
    },
    /// Any other method: answer it with [`codes::METHOD_NOT_FOUND`].
    Other {
        /// The method.
        method: String,
        /// Its params (`null` when absent).
        params: Value,
    },
}

impl AgentRequest {
    /// The request's JSON-RPC method.
    pub fn method(&self) -> &str {
        match self {
            AgentRequest::RequestPermission(_) => "session/request_permission",
            AgentRequest::ReadTextFile(_) => "fs/read_text_file",
            AgentRequest::WriteTextFile(_) => "fs/write_text_file",
            AgentRequest::TerminalCreate(_) => "terminal/create",
            AgentRequest::TerminalOutput(_) => "terminal/output",
            AgentRequest::TerminalWaitForExit(_) => "terminal/wait_for_exit",
            AgentRequest::TerminalKill(_) => "terminal/kill",
            AgentRequest::TerminalRelease(_) => "terminal/release",
            AgentRequest::Invalid { method, .. } | AgentRequest::Other { method, .. } => method,
        }
    }

    /// The session the request belongs to (`None` for `Invalid`/`Other`).
    pub fn session_id(&self) -> Option<&str> {
        Some(match self {
            AgentRequest::RequestPermission(r) => &r.session_id,
            AgentRequest::ReadTextFile(r) => &r.session_id,
            AgentRequest::WriteTextFile(r) => &r.session_id,
            AgentRequest::TerminalCreate(r) => &r.session_id,
            AgentRequest::TerminalOutput(r)
            | AgentRequest::TerminalWaitForExit(r)
            | AgentRequest::TerminalKill(r)
            | AgentRequest::TerminalRelease(r) => &r.session_id,
            AgentRequest::Invalid { .. } | AgentRequest::Other { .. } => return None,
        })
    }
}

/// `session/request_permission`.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionRequest {
    /// The session.
    pub session_id: String,
    /// The tool call, as an update of what earlier `tool_call` updates
    /// said (agents differ in how much they repeat here: see
    /// [`permission::permission_target`]).
    pub tool_call: ToolCallFields,
    /// The options offered, in order. Options with an unknown kind are
    /// kept (as [`PermissionKind::Unknown`]) but never chosen.
    pub options: Vec<PermissionOption>,
}

/// One answer the agent offers to a permission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionOption {
    /// The id to answer with.
    pub option_id: String,
    /// Its label.
    pub name: String,
    /// What choosing it means.
    pub kind: PermissionKind,
}

/// What choosing a permission option means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionKind {
    /// Allow this call only.
    AllowOnce,
    /// Allow this call and remember it (never sent by hotplex: see
    /// [`permission::select_option`]).
    AllowAlways,
    /// Reject this call only.
    RejectOnce,
    /// Reject this call and remember it.
    RejectAlways,
    /// A kind this module does not know.
    Unknown(String),
}

impl PermissionKind {
    fn parse(s: &str) -> PermissionKind {
        match s {
            "allow_once" => PermissionKind::AllowOnce,
            "allow_always" => PermissionKind::AllowAlways,
            "reject_once" => PermissionKind::RejectOnce,
            "reject_always" => PermissionKind::RejectAlways,
            other => PermissionKind::Unknown(other.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            PermissionKind::AllowOnce => "allow_once",
            PermissionKind::AllowAlways => "allow_always",
            PermissionKind::RejectOnce => "reject_once",
            PermissionKind::RejectAlways => "reject_always",
            PermissionKind::Unknown(s) => s,
        }
    }
}

/// `fs/read_text_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadTextFile {
    /// The session.
    pub session_id: String,
    /// The file (absolute, per the schema; the client must check).
    pub path: String,
    /// First line to read (1-based).
    pub line: Option<u64>,
    /// Most lines to read.
    pub limit: Option<u64>,
}

/// `fs/write_text_file` (the client creates the file if needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteTextFile {
    /// The session.
    pub session_id: String,
    /// The file (absolute, per the schema; the client must check).
    pub path: String,
    /// The whole new content.
    pub content: String,
}

/// `terminal/create`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalCreate {
    /// The session.
    pub session_id: String,
    /// The program (or, for some agents, a whole shell command line).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables, in order.
    pub env: Vec<(String, String)>,
    /// Working directory (absolute), if given.
    pub cwd: Option<String>,
    /// Most output bytes to keep (older output is dropped first).
    pub output_byte_limit: Option<u64>,
}

impl TerminalCreate {
    /// The command as one shell command line: the program and its
    /// arguments, each quoted for `sh` where needed.
    pub fn command_line(&self) -> String {
        permission::join_argv(
            std::iter::once(self.command.as_str()).chain(self.args.iter().map(String::as_str)),
        )
    }

    /// Every command text the WAF must judge before this runs: the command
    /// line, and the script of a shell wrapper (`sh -c '<script>'`,
    /// `bash -lc ...`), which a checker of the whole line sees only as one
    /// quoted word.
    pub fn screened_commands(&self) -> Vec<String> {
        let argv: Vec<&str> = std::iter::once(self.command.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect();
        permission::argv_commands(&argv)
    }
}

/// A `terminal/*` request naming a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalRef {
    /// The session.
    pub session_id: String,
    /// The terminal (from the client's `terminal/create` answer).
    pub terminal_id: String,
}

/// What a `session/update` notification says.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionUpdate {
    /// A piece of the user's message (a replay during `session/load`, or
    /// an echo of the prompt).
    UserMessageChunk(Chunk),
    /// A piece of the agent's answer.
    AgentMessageChunk(Chunk),
    /// A piece of the agent's reasoning.
    AgentThoughtChunk(Chunk),
    /// A new tool call.
    ToolCall(ToolCallFields),
    /// A change to a tool call (only the fields that changed).
    ToolCallUpdate(ToolCallFields),
    /// The whole current plan (it replaces the previous one).
    Plan(Vec<PlanEntry>),
    /// The slash commands available now.
    AvailableCommands(Vec<AvailableCommand>),
    /// The session's mode changed (the agent did it, or `session/set_mode`).
    CurrentMode(String),
    /// Context window use and the session's cumulative cost.
    Usage(UsageUpdate),
    /// A kind this module does not know, or a known kind lacking a
    /// required field (kept whole).
    Other {
        /// The `sessionUpdate` value (`""` when absent).
        kind: String,
        /// The whole update object.
        value: Value,
    },
}

/// A streamed piece of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Its content.
    pub content: ContentBlock,
    /// The message it belongs to, when the agent says (a new id starts a
    /// new message).
    pub message_id: Option<String>,
}

/// A content block.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentBlock {
    /// Text (Markdown).
    Text(String),
    /// Anything else (image, audio, resource, resource_link), kept whole.
    Other(Value),
}

impl ContentBlock {
    fn parse(v: Value) -> ContentBlock {
        if v.get("type").and_then(Value::as_str) == Some("text") {
            if let Some(t) = v.get("text").and_then(Value::as_str) {
                return ContentBlock::Text(t.to_owned());
            }
        }
        ContentBlock::Other(v)
    }

    /// The text, for a text block.
    pub fn text(&self) -> Option<&str> {
        match self {
            ContentBlock::Text(t) => Some(t),
            ContentBlock::Other(_) => None,
        }
    }
}

/// The fields of a tool call (`tool_call`), or the changed fields of one
/// (`tool_call_update`, and the `toolCall` of a permission request). Only
/// `id` is always present; a `None` field was not sent (or had the wrong
/// type) and leaves the earlier value as it was.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCallFields {
    /// The call's id, unique within the session.
    pub id: String,
    /// What the agent shows for it (Gemini puts the command here).
    pub title: Option<String>,
    /// Its category.
    pub kind: Option<ToolKind>,
    /// Its status.
    pub status: Option<ToolStatus>,
    /// What it produced (replaces earlier content).
    pub content: Option<Vec<ToolContent>>,
    /// Files it touches (replaces earlier locations).
    pub locations: Option<Vec<Location>>,
    /// The tool's input, as the agent reports it.
    pub raw_input: Option<Value>,
    /// The tool's output, as the agent reports it.
    pub raw_output: Option<Value>,
}

impl ToolCallFields {
    /// Applies an update: every field `update` carries replaces this one's.
    pub fn merge(&mut self, update: &ToolCallFields) {
        fn set<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
            if from.is_some() {
                into.clone_from(from);
            }
        }
        set(&mut self.title, &update.title);
        set(&mut self.kind, &update.kind);
        set(&mut self.status, &update.status);
        set(&mut self.content, &update.content);
        set(&mut self.locations, &update.locations);
        set(&mut self.raw_input, &update.raw_input);
        set(&mut self.raw_output, &update.raw_output);
    }

    /// The text of the call's content: text blocks as they are, a diff as
    /// `diff <path>`, an embedded terminal as `terminal <id>`; when there
    /// is no content, the raw output (its `output` string, or its JSON).
    pub fn result_text(&self) -> String {
        let mut parts = Vec::new();
        for c in self.content.iter().flatten() {
            match c {
                ToolContent::Text(t) => parts.push(t.clone()),
                ToolContent::Diff { path, .. } => parts.push(format!("diff {path}")),
                ToolContent::Terminal(id) => parts.push(format!("terminal {id}")),
                ToolContent::Other(_) => {}
            }
        }
        if !parts.is_empty() {
            return parts.join("\n");
        }
        match &self.raw_output {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => match v.get("output").and_then(Value::as_str) {
                Some(s) => s.to_owned(),
                None => v.to_string(),
            },
        }
    }

    fn parse(v: &mut Value) -> Option<ToolCallFields> {
        let id = match v.get("toolCallId")? {
            Value::String(s) => s.clone(),
            // Not the schema's type, but an id is an id: keep the call.
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let take = |v: &mut Value, k: &str| match v.get_mut(k).map(Value::take) {
            None | Some(Value::Null) => None,
            Some(x) => Some(x),
        };
        Some(ToolCallFields {
            id,
            title: str_field(v, "title"),
            kind: v.get("kind").and_then(Value::as_str).map(ToolKind::parse),
            status: v
                .get("status")
                .and_then(Value::as_str)
                .map(ToolStatus::parse),
            content: match take(v, "content") {
                Some(Value::Array(items)) => {
                    Some(items.into_iter().map(ToolContent::parse).collect())
                }
                _ => None,
            },
            locations: match v.get("locations") {
                Some(Value::Array(items)) => Some(
                    items
                        .iter()
                        .filter_map(|l| {
                            Some(Location {
                                path: l.get("path")?.as_str()?.to_owned(),
                                line: l.get("line").and_then(Value::as_u64),
                            })
                        })
                        .collect(),
                ),
                _ => None,
            },
            raw_input: take(v, "rawInput"),
            raw_output: take(v, "rawOutput"),
        })
    }
}

/// A tool call's category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolKind {
    /// Reading files or data.
    Read,
    /// Modifying files.
    Edit,
    /// Removing files.
    Delete,
    /// Moving or renaming files.
    Move,
    /// Searching.
    Search,
    /// Running commands or code.
    Execute,
    /// Internal reasoning.
    Think,
    /// Retrieving external data.
    Fetch,
    /// Switching the session's mode.
    SwitchMode,
    /// `other` (the schema's default).
    Other,
    /// A kind this module does not know.
    Unknown(String),
}

impl ToolKind {
    fn parse(s: &str) -> ToolKind {
        match s {
            "read" => ToolKind::Read,
            "edit" => ToolKind::Edit,
            "delete" => ToolKind::Delete,
            "move" => ToolKind::Move,
            "search" => ToolKind::Search,
            "execute" => ToolKind::Execute,
            "think" => ToolKind::Think,
            "fetch" => ToolKind::Fetch,
            "switch_mode" => ToolKind::SwitchMode,
            "other" => ToolKind::Other,
            s => ToolKind::Unknown(s.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            ToolKind::Read => "read",
            ToolKind::Edit => "edit",
            ToolKind::Delete => "delete",
            ToolKind::Move => "move",
            ToolKind::Search => "search",
            ToolKind::Execute => "execute",
            ToolKind::Think => "think",
            ToolKind::Fetch => "fetch",
            ToolKind::SwitchMode => "switch_mode",
            ToolKind::Other => "other",
            ToolKind::Unknown(s) => s,
        }
    }
}

/// A tool call's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolStatus {
    /// Not started: input still streaming, or awaiting permission.
    Pending,
    /// Running.
    InProgress,
    /// Done.
    Completed,
    /// Failed (or rejected).
    Failed,
    /// A status this module does not know.
    Unknown(String),
}

impl ToolStatus {
    fn parse(s: &str) -> ToolStatus {
        match s {
            "pending" => ToolStatus::Pending,
            "in_progress" => ToolStatus::InProgress,
            "completed" => ToolStatus::Completed,
            "failed" => ToolStatus::Failed,
            s => ToolStatus::Unknown(s.to_owned()),
        }
    }

    /// Whether the call has ended (`completed` or `failed`).
    pub fn is_final(&self) -> bool {
        matches!(self, ToolStatus::Completed | ToolStatus::Failed)
    }
}

/// Something a tool call produced.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolContent {
    /// Text (a `content` item with a text block).
    Text(String),
    /// A file change.
    Diff {
        /// The file.
        path: String,
        /// Its old content (`None` for a new file).
        old_text: Option<String>,
        /// Its new content.
        new_text: String,
    },
    /// An embedded terminal (`terminal/create`'s id).
    Terminal(String),
    /// Anything else, kept whole.
    Other(Value),
}

impl ToolContent {
    fn parse(v: Value) -> ToolContent {
        match v.get("type").and_then(Value::as_str) {
            Some("content") => {
                if let Some(ContentBlock::Text(t)) =
                    v.get("content").cloned().map(ContentBlock::parse)
                {
                    return ToolContent::Text(t);
                }
            }
            Some("diff") => {
                if let (Some(path), Some(new_text)) =
                    (str_field(&v, "path"), str_field(&v, "newText"))
                {
                    return ToolContent::Diff {
                        path,
                        old_text: str_field(&v, "oldText"),
                        new_text,
                    };
                }
            }
            Some("terminal") => {
                if let Some(id) = str_field(&v, "terminalId") {
                    return ToolContent::Terminal(id);
                }
            }
            _ => {}
        }
        ToolContent::Other(v)
    }
}

/// A file a tool call touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The path (absolute, per the schema).
    pub path: String,
    /// A line in it.
    pub line: Option<u64>,
}

/// One step of the agent's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanEntry {
    /// What the step does.
    pub content: String,
    /// `high`, `medium` or `low` (`""` when absent).
    pub priority: String,
    /// `pending`, `in_progress` or `completed` (`""` when absent).
    pub status: String,
}

/// A slash command the agent offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableCommand {
    /// Its name, without the slash.
    pub name: String,
    /// What it does.
    pub description: String,
}

/// `usage_update`: context window use and the session's cost so far.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageUpdate {
    /// Tokens in the context now.
    pub used: u64,
    /// The context window's size.
    pub size: u64,
    /// The session's cumulative cost, when reported.
    pub cost: Option<Cost>,
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// The amount.
    pub amount: f64,
    /// ISO 4217 code (`USD`).
    pub currency: String,
}

/// Parses one line of agent stdout (with or without its line terminator).
///
/// The line arrives as bytes: invalid UTF-8 becomes U+FFFD instead of
/// losing the line (a cut multi-byte character in a message chunk costs
/// one character, not the chunk), as does a lone UTF-16 surrogate escape.
pub fn parse_line(line: &[u8]) -> Result<Incoming, AcpError> {
    let bytes = line.trim_ascii();
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(first) => {
            let text = String::from_utf8_lossy(bytes);
            let repaired = super::repair_surrogates(&text);
            let retry = repaired.as_deref().unwrap_or(&text);
            if matches!(text, std::borrow::Cow::Borrowed(_)) && repaired.is_none() {
                return Err(AcpError::NotJson(first.to_string()));
            }
            serde_json::from_str(retry).map_err(|e| AcpError::NotJson(e.to_string()))?
        }
    };
    parse_value(v)
}

/// Classifies one JSON value as a message (see [`parse_line`]).
pub fn parse_value(v: Value) -> Result<Incoming, AcpError> {
    let Value::Object(mut o) = v else {
        return Err(AcpError::NotAnObject(truncate(&v.to_string(), 120)));
    };
    if o.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(AcpError::BadJsonRpc(format!(
            "jsonrpc is {}",
            o.get("jsonrpc")
                .map(|j| truncate(&j.to_string(), 40))
                .unwrap_or_else(|| "missing".into())
        )));
    }
    let id = match o.remove("id") {
        None => None,
        Some(raw) => match RequestId::from_value(raw) {
            Some(id) => Some(id),
            None => return Err(AcpError::BadJsonRpc("id is an object or array".into())),
        },
    };
    let params = o.remove("params").unwrap_or(Value::Null);
    match (o.remove("method"), id) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request {
            request: parse_request(method, params),
            id,
        }),
        (Some(Value::String(method)), None) => {
            Ok(Incoming::Notification(parse_notification(method, params)))
        }
        (Some(m), _) => Err(AcpError::NotAMessage(format!(
            "method is not a string: {}",
            truncate(&m.to_string(), 40)
        ))),
        (None, Some(id)) => {
            let result = match o.remove("error") {
                Some(e) if !e.is_null() => Err(RpcError {
                    code: e
                        .get("code")
                        .and_then(Value::as_i64)
                        .unwrap_or(codes::INTERNAL_ERROR),
                    message: str_field(&e, "message").unwrap_or_default(),
                    data: e.get("data").filter(|d| !d.is_null()).cloned(),
                }),
                // A response without `result` answers with nothing: the
                // caller's waiter gets `null` rather than waiting forever.
                _ => Ok(o.remove("result").unwrap_or(Value::Null)),
            };
            Ok(Incoming::Response { id, result })
        }
        (None, None) => Err(AcpError::NotAMessage("neither method nor id".into())),
    }
}

fn parse_notification(method: String, mut params: Value) -> AgentNotification {
    match method.as_str() {
        "session/update" => AgentNotification::SessionUpdate {
            session_id: str_field(&params, "sessionId").unwrap_or_default(),
            update: parse_update(
                params
                    .get_mut("update")
                    .map(Value::take)
                    .unwrap_or(Value::Null),
            ),
        },
        "$/cancel_request" => match params
            .get_mut("requestId")
            .map(Value::take)
            .and_then(RequestId::from_value)
        {
            Some(id) => AgentNotification::CancelRequest { id },
            None => AgentNotification::Other { method, params },
        },
        _ => AgentNotification::Other { method, params },
    }
}

/// Parses the `update` object of a `session/update` notification.
pub fn parse_update(mut v: Value) -> SessionUpdate {
    let kind = str_field(&v, "sessionUpdate").unwrap_or_default();
    let parsed = match kind.as_str() {
        "user_message_chunk" | "agent_message_chunk" | "agent_thought_chunk" => {
            v.get_mut("content").map(Value::take).map(|c| {
                let chunk = Chunk {
                    content: ContentBlock::parse(c),
                    message_id: str_field(&v, "messageId"),
                };
                match kind.as_str() {
                    "user_message_chunk" => SessionUpdate::UserMessageChunk(chunk),
                    "agent_message_chunk" => SessionUpdate::AgentMessageChunk(chunk),
                    _ => SessionUpdate::AgentThoughtChunk(chunk),
                }
            })
        }
        "tool_call" => ToolCallFields::parse(&mut v).map(SessionUpdate::ToolCall),
        "tool_call_update" => ToolCallFields::parse(&mut v).map(SessionUpdate::ToolCallUpdate),
        "plan" => v.get("entries").and_then(Value::as_array).map(|entries| {
            SessionUpdate::Plan(
                entries
                    .iter()
                    .filter_map(|e| {
                        Some(PlanEntry {
                            content: e.get("content")?.as_str()?.to_owned(),
                            priority: str_field(e, "priority").unwrap_or_default(),
                            status: str_field(e, "status").unwrap_or_default(),
                        })
                    })
                    .collect(),
            )
        }),
        "available_commands_update" => {
            v.get("availableCommands")
                .and_then(Value::as_array)
                .map(|list| {
                    SessionUpdate::AvailableCommands(
                        list.iter()
                            .filter_map(|c| {
                                Some(AvailableCommand {
                                    name: c.get("name")?.as_str()?.to_owned(),
                                    description: str_field(c, "description").unwrap_or_default(),
                                })
                            })
                            .collect(),
                    )
                })
        }
        // The schema names it `currentModeId`; the session-modes page's
        // example says `modeId`: accept both.
        "current_mode_update" => str_field(&v, "currentModeId")
            .or_else(|| str_field(&v, "modeId"))
            .map(SessionUpdate::CurrentMode),
        "usage_update" => match (
            v.get("used").and_then(Value::as_u64),
            v.get("size").and_then(Value::as_u64),
        ) {
            (Some(used), Some(size)) => Some(SessionUpdate::Usage(UsageUpdate {
                used,
                size,
                cost: v.get("cost").and_then(|c| {
                    Some(Cost {
                        amount: c.get("amount")?.as_f64()?,
                        currency: c.get("currency")?.as_str()?.to_owned(),
                    })
                }),
            })),
            _ => None,
        },
        _ => None,
    };
    parsed.unwrap_or(SessionUpdate::Other { kind, value: v })
}

fn parse_request(method: String, mut params: Value) -> AgentRequest {
    let session_id = str_field(&params, "sessionId");
    let need = |field: &str, v: Option<String>| v.ok_or_else(|| format!("{field} is required"));
    let parsed: Result<AgentRequest, String> = (|| {
        Ok(match method.as_str() {
            "session/request_permission" => {
                let session_id = need("sessionId", session_id)?;
                let tool_call = params
                    .get_mut("toolCall")
                    .and_then(ToolCallFields::parse)
                    .ok_or("toolCall with a toolCallId is required")?;
                let options: Vec<PermissionOption> = params
                    .get("options")
                    .and_then(Value::as_array)
                    .ok_or("options is required")?
                    .iter()
                    .filter_map(|o| {
                        Some(PermissionOption {
                            option_id: o.get("optionId")?.as_str()?.to_owned(),
                            name: str_field(o, "name").unwrap_or_default(),
                            kind: PermissionKind::parse(o.get("kind")?.as_str()?),
                        })
                    })
                    .collect();
                AgentRequest::RequestPermission(PermissionRequest {
                    session_id,
                    tool_call,
                    options,
                })
            }
            "fs/read_text_file" => AgentRequest::ReadTextFile(ReadTextFile {
                session_id: need("sessionId", session_id)?,
                path: need("path", str_field(&params, "path"))?,
                line: params.get("line").and_then(Value::as_u64),
                limit: params.get("limit").and_then(Value::as_u64),
            }),
            "fs/write_text_file" => AgentRequest::WriteTextFile(WriteTextFile {
                session_id: need("sessionId", session_id)?,
                path: need("path", str_field(&params, "path"))?,
                content: need("content", take_str(&mut params, "content"))?,
            }),
            "terminal/create" => AgentRequest::TerminalCreate(TerminalCreate {
                session_id: need("sessionId", session_id)?,
                command: need("command", str_field(&params, "command"))?,
                args: params
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                env: params
                    .get("env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| {
                                Some((
                                    e.get("name")?.as_str()?.to_owned(),
                                    e.get("value")?.as_str()?.to_owned(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                cwd: str_field(&params, "cwd"),
                output_byte_limit: params.get("outputByteLimit").and_then(Value::as_u64),
            }),
            "terminal/output" | "terminal/wait_for_exit" | "terminal/kill" | "terminal/release" => {
                let r = TerminalRef {
                    session_id: need("sessionId", session_id)?,
                    terminal_id: need("terminalId", str_field(&params, "terminalId"))?,
                };
                match method.as_str() {
                    "terminal/output" => AgentRequest::TerminalOutput(r),
                    "terminal/wait_for_exit" => AgentRequest::TerminalWaitForExit(r),
                    "terminal/kill" => AgentRequest::TerminalKill(r),
                    _ => AgentRequest::TerminalRelease(r),
                }
            }
            _ => {
                return Ok(AgentRequest::Other {
                    method: method.clone(),
                    params: params.take(),
                })
            }
        })
    })();
    parsed.unwrap_or_else(|reason| AgentRequest::Invalid {
        method: method.clone(),
        reason,
    })
}

// ---------------------------------------------------------------------------
// Results of the client's requests.

/// What the agent said in its `initialize` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentInfo {
    /// The protocol version it chose (hotplex speaks [`PROTOCOL_VERSION`];
    /// another answer means the agent cannot talk to hotplex).
    pub protocol_version: Option<u64>,
    /// `session/load` is available.
    pub load_session: bool,
    /// `sessionCapabilities.resume` is advertised.
    pub session_resume: bool,
    /// `sessionCapabilities.close` is advertised.
    pub session_close: bool,
    /// Prompts may carry images.
    pub image_prompts: bool,
    /// `agentInfo.name`.
    pub name: Option<String>,
    /// `agentInfo.version`.
    pub version: Option<String>,
    /// The ids of the authentication methods it offers.
    pub auth_methods: Vec<String>,
}

impl AgentInfo {
    /// Reads an `initialize` result (missing fields are defaults).
    pub fn from_result(v: &Value) -> AgentInfo {
        let caps = v.get("agentCapabilities").unwrap_or(&Value::Null);
        let flag = |v: &Value| v.as_bool().unwrap_or(false);
        let present = |v: Option<&Value>| v.is_some_and(|x| !x.is_null());
        let session = caps.get("sessionCapabilities");
        AgentInfo {
            protocol_version: v.get("protocolVersion").and_then(Value::as_u64),
            load_session: caps.get("loadSession").is_some_and(flag),
            session_resume: present(session.and_then(|s| s.get("resume"))),
            session_close: present(session.and_then(|s| s.get("close"))),
            image_prompts: caps
                .get("promptCapabilities")
                .and_then(|p| p.get("image"))
                .is_some_and(flag),
            name: v.get("agentInfo").and_then(|i| str_field(i, "name")),
            version: v.get("agentInfo").and_then(|i| str_field(i, "version")),
            auth_methods: v
                .get("authMethods")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|m| str_field(m, "id")).collect())
                .unwrap_or_default(),
        }
    }
}

/// What the agent said in its `session/new` (or `session/load`) answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCreated {
    /// The session's id (for `session/load`, the id that was loaded).
    pub session_id: String,
    /// The current mode, when the agent has modes.
    pub current_mode: Option<String>,
    /// The ids of the modes it offers.
    pub modes: Vec<String>,
}

impl SessionCreated {
    /// Reads a `session/new` result; without a `sessionId` there is no
    /// session to talk to.
    pub fn from_result(v: &Value) -> Result<SessionCreated, AcpError> {
        let session_id = str_field(v, "sessionId").ok_or(AcpError::MissingField("sessionId"))?;
        Ok(SessionCreated::with_id(session_id, v))
    }

    /// Reads a `session/load` result (which may be `null`) for the
    /// session the client asked to load.
    pub fn from_load_result(session_id: &str, v: &Value) -> SessionCreated {
        SessionCreated::with_id(session_id.to_owned(), v)
    }

    fn with_id(session_id: String, v: &Value) -> SessionCreated {
        let modes = v.get("modes").unwrap_or(&Value::Null);
        SessionCreated {
            session_id,
            current_mode: str_field(modes, "currentModeId"),
            modes: modes
                .get("availableModes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|m| str_field(m, "id")).collect())
                .unwrap_or_default(),
        }
    }
}

/// Why a turn ended (the `session/prompt` answer's `stopReason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished.
    EndTurn,
    /// The token limit was reached.
    MaxTokens,
    /// Too many model requests in one turn.
    MaxTurnRequests,
    /// The agent refused to continue.
    Refusal,
    /// The client cancelled the turn (`session/cancel`).
    Cancelled,
    /// A reason this module does not know (`""` when it was missing).
    Unknown(String),
}

impl StopReason {
    fn parse(s: &str) -> StopReason {
        match s {
            "end_turn" => StopReason::EndTurn,
            "max_tokens" => StopReason::MaxTokens,
            "max_turn_requests" => StopReason::MaxTurnRequests,
            "refusal" => StopReason::Refusal,
            "cancelled" => StopReason::Cancelled,
            s => StopReason::Unknown(s.to_owned()),
        }
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::MaxTurnRequests => "max_turn_requests",
            StopReason::Refusal => "refusal",
            StopReason::Cancelled => "cancelled",
            StopReason::Unknown(s) => s,
        }
    }
}

/// The `session/prompt` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptResult {
    /// Why the turn ended.
    pub stop_reason: StopReason,
    /// Token usage of the turn, when the agent reports it: the result's
    /// `usage` (schema 1.x *unstable*; Gemini CLI and OpenCode send it,
    /// summed over the turn), else Gemini's older `_meta.quota.token_count`.
    pub usage: Option<Usage>,
}

impl PromptResult {
    /// Reads a `session/prompt` result. A missing or unknown `stopReason`
    /// is [`StopReason::Unknown`]: the turn still ended.
    pub fn from_result(v: &Value) -> PromptResult {
        let n = |o: &Value, k: &str| o.get(k).and_then(Value::as_u64).unwrap_or(0);
        let usage = match v.get("usage").filter(|u| u.is_object()) {
            Some(u) => Some(Usage {
                input_tokens: n(u, "inputTokens"),
                output_tokens: n(u, "outputTokens"),
                cache_creation_input_tokens: n(u, "cachedWriteTokens"),
                cache_read_input_tokens: n(u, "cachedReadTokens"),
            }),
            None => v
                .pointer("/_meta/quota/token_count")
                .filter(|t| t.is_object())
                .map(|t| Usage {
                    input_tokens: n(t, "input_tokens"),
                    output_tokens: n(t, "output_tokens"),
                    ..Usage::default()
                }),
        };
        PromptResult {
            stop_reason: StopReason::parse(
                v.get("stopReason").and_then(Value::as_str).unwrap_or(""),
            ),
            usage,
        }
    }
}

// ---------------------------------------------------------------------------

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

/// A string field moved out (the big one: file contents).
fn take_str(v: &mut Value, k: &str) -> Option<String> {
    match v.get_mut(k).map(Value::take) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests;
