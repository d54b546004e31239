//! Answering the agent's control requests: the WAF, then the host's
//! functions (permission handler, hooks, tools), off the session's task.
//!
//! Every request the agent sends gets exactly one answer, and the agent
//! waits for it, so this module's rules are about never leaving one
//! unanswered and never letting a host function stall the session:
//!
//! * [`route`] decides what a request needs. What the engine can answer by
//!   itself (a WAF block, an MCP `tools/list`, a refusal outside a turn, an
//!   unknown subtype: an error response, never silence) is answered at once.
//!   What needs the host runs as a [`HostCalls`] task on a blocking thread,
//!   bounded by a timeout, while the session goes on reading its agent.
//! * A request the agent cancels (`control_cancel_request`) is forgotten:
//!   its host call may still finish, but its answer is dropped, since the
//!   agent no longer reads it.
//! * A host function that fails, panics or times out answers in the way
//!   that fails closed: a denied tool for permissions and `PreToolUse`, an
//!   MCP error result for tools, an empty output (and an `error` event) for
//!   the other hooks.
//! * Whatever the host rewrites (`updatedInput` of a permission answer or a
//!   `PreToolUse` hook) is screened by the WAF again before it is allowed.
//! * A question or plan (`AskUserQuestion`, `ExitPlanMode`; see
//!   [`super::ask`]) is not a permission with a timeout: it is held for the
//!   person ([`Routed::Hold`]). A permission handler is asked first when
//!   the host has one; its deny, or an allow that carries the answer,
//!   answers at once, and a plain allow leaves the request to the person.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::ask::Held;
use super::session::SessionCtx;
use crate::contract::hooks::hook_output;
use crate::contract::telemetry::WafSource;
use crate::contract::tools::{tool_result, MCP_PROTOCOL_VERSION};
use crate::contract::{HookCall, Permission, ToolInvocation, ToolRequest};
use crate::protocol::{self, CliRequest, TOOL_HOOK_ID, WARM_HOOK_ID};
use crate::verdict::Verdict;

/// The answer to one agent request, with what the turn should learn of it.
#[derive(Debug)]
pub(crate) struct Answered {
    /// The agent request it answers.
    pub request_id: String,
    /// The `control_response` line to write.
    pub line: String,
    /// A tool call the WAF blocked (a `danger_block` event; counted).
    pub blocked: Option<Verdict>,
    /// Something the host should hear of (a failed hook): an `error` event.
    pub note: Option<String>,
    /// Not answered after all: the permission handler left this question
    /// or plan to the person, so it is held (and `line` is empty).
    pub hold: Option<Box<Held>>,
}

impl Answered {
    pub(crate) fn new(request_id: &str, line: String) -> Answered {
        Answered {
            request_id: request_id.to_owned(),
            line,
            blocked: None,
            note: None,
            hold: None,
        }
    }
}

/// What a request needs.
pub(crate) enum Routed {
    /// Its answer, now.
    Now(Box<Answered>),
    /// A host call was started; its answer comes from [`HostCalls::next`].
    Later,
    /// A question or plan for the person: held until the host answers.
    Hold(Box<Held>),
}

/// Where a request is being answered.
pub(crate) struct Scene<'a> {
    /// A turn is running (requests outside one are refused).
    pub in_turn: bool,
    /// The turn is being interrupted (tool calls are denied).
    pub interrupting: bool,
    /// The agent's working directory (relative paths are judged there).
    pub workdir: &'a Path,
    /// How long a host permission handler or tool may take.
    pub host_timeout: Duration,
}

/// Host calls in flight, by the agent request each answers.
#[derive(Default)]
pub(crate) struct HostCalls {
    set: JoinSet<Answered>,
    /// Requests in flight; an id cancelled by the agent leaves this set and
    /// its answer is dropped when it comes.
    live: HashSet<String>,
}

impl HostCalls {
    /// Whether nothing is in flight (then [`next`](Self::next) would wait
    /// forever: callers select on it only when this is false).
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next answer of a call the agent still waits for.
    pub(crate) async fn next(&mut self) -> Option<Answered> {
        while let Some(done) = self.set.join_next().await {
            // A task cannot panic (the host function runs under
            // catch_unwind inside it) or be aborted (nothing aborts it).
            let Ok(a) = done else { continue };
            if self.live.remove(&a.request_id) {
                return Some(a);
            }
        }
        None
    }

    /// The agent gave up on `request_id`.
    pub(crate) fn cancel(&mut self, request_id: &str) -> bool {
        self.live.remove(request_id)
    }

    /// Runs `call` on a blocking thread; past `limit`, `late` answers
    /// instead (the thread is left to finish, its answer dropped).
    pub(crate) fn spawn(
        &mut self,
        request_id: &str,
        limit: Duration,
        call: impl FnOnce() -> Answered + Send + 'static,
        late: impl FnOnce() -> Answered + Send + 'static,
    ) {
        self.live.insert(request_id.to_owned());
        let id = request_id.to_owned();
        self.set.spawn(async move {
            let task = tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(call))
            });
            match tokio::time::timeout(limit, task).await {
                Ok(Ok(Ok(a))) => a,
                Ok(_) => {
                    let mut a = late();
                    a.note = Some(format!("the host function for request {id} panicked"));
                    a
                }
                Err(_) => late(),
            }
        });
    }
}

/// The WAF's verdict on a tool call, with its paths judged in `workdir`,
/// counted in the engine's metrics and records.
pub(crate) fn screen(
    ctx: &SessionCtx,
    session_id: &str,
    tool_name: &str,
    input: &Value,
    workdir: &Path,
) -> Verdict {
    let t0 = std::time::Instant::now();
    let v = ctx
        .detector
        .check_tool_value(tool_name, &absolute_paths(input, workdir));
    let tel = &ctx.telemetry;
    tel.metrics
        .waf_checked(WafSource::Tool, &v, t0.elapsed().as_secs_f64());
    tel.record(|| super::waf_record(session_id, WafSource::Tool, &v));
    if v.blocked {
        tracing::warn!(tool = tool_name, rule = ?v.rule_id, "tool call blocked by the WAF");
    }
    v
}

/// The reason the model sees for a blocked tool call.
pub(crate) fn block_reason(tool_name: &str, v: &Verdict) -> String {
    format!(
        "hotplex WAF blocked this {tool_name} call ({}): {}",
        v.level.as_str(),
        v.reason
    )
}

/// Decides how `request` is answered (see the module docs).
pub(crate) fn route(
    ctx: &Arc<SessionCtx>,
    calls: &mut HostCalls,
    session_id: &str,
    request_id: &str,
    request: CliRequest,
    scene: &Scene<'_>,
) -> Routed {
    let now = |line: String| Routed::Now(Box::new(Answered::new(request_id, line)));
    match request {
        CliRequest::CanUseTool { .. } | CliRequest::HookCallback { .. } if !scene.in_turn => {
            now(protocol::refuse(request_id, &request, "no turn is running"))
        }
        CliRequest::CanUseTool {
            tool_name,
            input,
            context,
        } => {
            if scene.interrupting {
                return now(protocol::deny_tool(request_id, "the turn was interrupted"));
            }
            let v = screen(ctx, session_id, &tool_name, &input, scene.workdir);
            if v.blocked {
                let line = protocol::deny_tool(request_id, &block_reason(&tool_name, &v));
                return Routed::Now(Box::new(Answered {
                    blocked: Some(v),
                    ..Answered::new(request_id, line)
                }));
            }
            let held = protocol::is_interactive(&tool_name)
                .then(|| Box::new(Held::new(request_id, &tool_name, input.clone(), &context)));
            if ctx.opts.permission_handler.is_none() {
                return match held {
                    Some(h) => Routed::Hold(h),
                    None => now(protocol::allow_tool(request_id, &input)),
                };
            }
            let (c, id, rid) = (ctx.clone(), session_id.to_owned(), request_id.to_owned());
            let workdir = scene.workdir.to_owned();
            let rid_late = rid.clone();
            calls.spawn(
                request_id,
                scene.host_timeout,
                move || {
                    let ask = Ask {
                        request_id: &rid,
                        tool_name: &tool_name,
                        context: &context,
                        verdict: v,
                        workdir: &workdir,
                        held,
                    };
                    ask_permission(&c, &id, ask, input)
                },
                move || {
                    let why =
                        "the host's permission check failed: no answer within the turn's timeout";
                    Answered::new(&rid_late, protocol::deny_tool(&rid_late, why))
                },
            );
            Routed::Later
        }
        CliRequest::HookCallback {
            callback_id,
            event,
            tool_name,
            tool_input,
            input,
            tool_use_id,
        } => {
            let pre_tool = event == "PreToolUse";
            if pre_tool && scene.interrupting {
                return now(protocol::hook_deny(request_id, "the turn was interrupted"));
            }
            // The WAF answers first: a blocked call is denied and the host
            // hook (if this is one) is not asked.
            let verdict = match &tool_name {
                Some(name) if pre_tool => {
                    Some(screen(ctx, session_id, name, &tool_input, scene.workdir))
                }
                _ => None,
            };
            if let (Some(v), Some(name)) = (&verdict, &tool_name) {
                if v.blocked {
                    let line = protocol::hook_deny(request_id, &block_reason(name, v));
                    return Routed::Now(Box::new(Answered {
                        blocked: verdict,
                        ..Answered::new(request_id, line)
                    }));
                }
            }
            // A claimed spare's warm-up hook lets every turn's prompt pass.
            if callback_id == TOOL_HOOK_ID || callback_id == WARM_HOOK_ID {
                return now(protocol::hook_continue(request_id));
            }
            let Some(spec) = ctx.opts.hooks.iter().find(|h| h.id == callback_id) else {
                return now(protocol::control_error(
                    request_id,
                    &format!("no hook with id {callback_id:?} was registered"),
                ));
            };
            let Some(handler) = ctx.opts.hook_handler.clone() else {
                return now(protocol::hook_continue(request_id));
            };
            let limit = Duration::from_secs_f64(spec.timeout_secs());
            let (c, id, rid) = (ctx.clone(), session_id.to_owned(), request_id.to_owned());
            let (rid_late, event_late) = (rid.clone(), event.clone());
            let workdir = scene.workdir.to_owned();
            calls.spawn(
                request_id,
                limit,
                move || {
                    let call = HookCall {
                        session_id: &id,
                        hook_id: &callback_id,
                        event: &event,
                        input: &input,
                        tool_use_id: tool_use_id.as_deref(),
                    };
                    let out = handler(&call).and_then(hook_output);
                    hook_answer(&c, &id, &rid, &event, tool_name.as_deref(), out, &workdir)
                },
                move || {
                    hook_failed(
                        &rid_late,
                        &event_late,
                        &format!("no answer within {limit:?}"),
                    )
                },
            );
            Routed::Later
        }
        CliRequest::McpMessage {
            server_name,
            message,
        } => mcp(
            ctx,
            calls,
            session_id,
            request_id,
            &server_name,
            message,
            scene,
        ),
        CliRequest::Other { subtype, .. } => now(protocol::control_error(
            request_id,
            &format!("hotplex does not handle {subtype} requests"),
        )),
    }
}

/// A `can_use_tool` request for the permission handler.
struct Ask<'a> {
    request_id: &'a str,
    tool_name: &'a str,
    context: &'a Value,
    verdict: Verdict,
    workdir: &'a Path,
    /// The held form of a question or plan (a plain allow holds it).
    held: Option<Box<Held>>,
}

/// Asks the host's permission handler (on a blocking thread).
fn ask_permission(ctx: &SessionCtx, session_id: &str, ask: Ask<'_>, input: Value) -> Answered {
    let Ask {
        request_id,
        tool_name,
        context,
        verdict,
        workdir,
        held,
    } = ask;
    let Some(handler) = &ctx.opts.permission_handler else {
        return Answered::new(request_id, protocol::allow_tool(request_id, &input));
    };
    let req = ToolRequest {
        session_id,
        tool_name,
        input: &input,
        verdict: &verdict,
        context,
    };
    // A panicking handler denies: losing the check must not allow.
    let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req)))
        .unwrap_or_else(|_| Permission::failed("the handler panicked"));
    match decision {
        Permission::Deny { message, interrupt } => Answered::new(
            request_id,
            protocol::deny_tool_with(request_id, &message, interrupt),
        ),
        Permission::Allow {
            updated_input,
            updated_permissions,
        } => {
            if let Some(h) = held {
                if !h.answered_by(updated_input.as_ref(), updated_permissions.as_ref()) {
                    return Answered {
                        hold: Some(h),
                        ..Answered::new(request_id, String::new())
                    };
                }
            }
            let run = match updated_input {
                // The host rewrote the call: what runs is screened too.
                Some(new) => {
                    let v = screen(ctx, session_id, tool_name, &new, workdir);
                    if v.blocked {
                        let line = protocol::deny_tool(request_id, &block_reason(tool_name, &v));
                        return Answered {
                            blocked: Some(v),
                            ..Answered::new(request_id, line)
                        };
                    }
                    new
                }
                None => input,
            };
            Answered::new(
                request_id,
                protocol::allow_tool_with(request_id, &run, updated_permissions.as_ref()),
            )
        }
    }
}

/// The answer for a host hook's output (or failure).
fn hook_answer(
    ctx: &SessionCtx,
    session_id: &str,
    request_id: &str,
    event: &str,
    tool_name: Option<&str>,
    out: std::result::Result<Value, String>,
    workdir: &Path,
) -> Answered {
    let out = match out {
        Ok(o) => o,
        Err(why) => return hook_failed(request_id, event, &why),
    };
    let rewritten = out
        .get("hookSpecificOutput")
        .and_then(|h| h.get("updatedInput"))
        .filter(|v| v.is_object());
    if let (Some(new), Some(name), "PreToolUse") = (rewritten, tool_name, event) {
        let v = screen(ctx, session_id, name, new, workdir);
        if v.blocked {
            let line = protocol::hook_deny(request_id, &block_reason(name, &v));
            return Answered {
                blocked: Some(v),
                ..Answered::new(request_id, line)
            };
        }
    }
    Answered::new(request_id, protocol::control_success(request_id, out))
}

/// A host hook that failed: `PreToolUse` denies, the others go on.
fn hook_failed(request_id: &str, event: &str, why: &str) -> Answered {
    let note = format!("the host's {event} hook failed: {why}");
    let line = if event == "PreToolUse" {
        protocol::hook_deny(request_id, &note)
    } else {
        protocol::hook_continue(request_id)
    };
    Answered {
        note: Some(note),
        ..Answered::new(request_id, line)
    }
}

/// Serves the host's in-process MCP servers.
fn mcp(
    ctx: &Arc<SessionCtx>,
    calls: &mut HostCalls,
    session_id: &str,
    request_id: &str,
    server_name: &str,
    message: Value,
    scene: &Scene<'_>,
) -> Routed {
    let reply = |body: Value| Routed::Now(Box::new(mcp_answer(request_id, body)));
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let result = |r: Value| json!({"jsonrpc": "2.0", "id": id, "result": r});
    let error = |code: i64, m: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": m}});
    let Some(server) = ctx.opts.tools.iter().find(|s| s.name == server_name) else {
        return reply(error(-32601, &format!("no server named {server_name:?}")));
    };
    let method = message.get("method").and_then(Value::as_str).unwrap_or("");
    // Notifications (no id) get no JSON-RPC reply, but the control request
    // that carried one still needs an answer.
    if message.get("id").is_none() {
        return reply(json!({"jsonrpc": "2.0", "result": {}}));
    }
    match method {
        "initialize" => reply(result(json!({
            "protocolVersion": message
                .pointer("/params/protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(MCP_PROTOCOL_VERSION),
            "capabilities": {"tools": {}},
            "serverInfo": {
                "name": server.name,
                "version": server.version.as_deref().unwrap_or("1.0.0"),
            },
        }))),
        "ping" => reply(result(json!({}))),
        "tools/list" => reply(result(json!({
            "tools": server.tools.iter().map(|t| json!({
                "name": t.name,
                "description": t.description,
                "inputSchema": t.input_schema,
            })).collect::<Vec<_>>(),
        }))),
        "tools/call" => {
            let tool = message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            if server.tool(tool).is_none() {
                return reply(result(tool_result(Err(format!(
                    "{server_name} has no tool named {tool:?}"
                )))));
            }
            let Some(handler) = ctx.opts.tool_handler.clone() else {
                return reply(result(tool_result(Err(
                    "the host defines no tool handler".into()
                ))));
            };
            let arguments = message
                .pointer("/params/arguments")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            let (server, tool) = (server_name.to_owned(), tool.to_owned());
            let (sid, rid) = (session_id.to_owned(), request_id.to_owned());
            let (rid_late, id_late) = (rid.clone(), id.clone());
            let limit = scene.host_timeout;
            calls.spawn(
                request_id,
                limit,
                move || {
                    let call = ToolInvocation {
                        session_id: &sid,
                        server: &server,
                        tool: &tool,
                        arguments: &arguments,
                    };
                    let r = tool_result(handler(&call));
                    mcp_answer(&rid, json!({"jsonrpc": "2.0", "id": id, "result": r}))
                },
                move || {
                    let why = format!("the host tool did not answer within {limit:?}");
                    let r = tool_result(Err(why));
                    mcp_answer(
                        &rid_late,
                        json!({"jsonrpc": "2.0", "id": id_late, "result": r}),
                    )
                },
            );
            Routed::Later
        }
        other => reply(error(-32601, &format!("method {other:?} is not supported"))),
    }
}

/// The answer carrying an MCP server's JSON-RPC `body`.
fn mcp_answer(request_id: &str, body: Value) -> Answered {
    Answered::new(request_id, protocol::mcp_reply(request_id, body))
}

/// File tools name paths relative to the agent's cwd; the WAF must judge
/// them there, not in the host's cwd.
fn absolute_paths(input: &Value, workdir: &Path) -> Value {
    let mut v = input.clone();
    if let Some(obj) = v.as_object_mut() {
        for key in ["file_path", "notebook_path", "path"] {
            if let Some(Value::String(p)) = obj.get(key) {
                if !p.is_empty() && Path::new(p).is_relative() {
                    let abs: PathBuf = workdir.join(p);
                    obj.insert(
                        key.into(),
                        Value::String(abs.to_string_lossy().into_owned()),
                    );
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_file_paths_are_judged_in_the_workdir() {
        let v = absolute_paths(&json!({"file_path": "a/b"}), Path::new("/w"));
        assert_eq!(v["file_path"], "/w/a/b");
        let v = absolute_paths(&json!({"file_path": "/etc/x"}), Path::new("/w"));
        assert_eq!(v["file_path"], "/etc/x");
    }
}
