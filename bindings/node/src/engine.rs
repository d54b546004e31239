//! `Engine`: the session pool, for Node.js.
//!
//! ```js
//! const engine = new Engine({ binary: 'claude', maxSessions: 8 })
//! const turn = await engine.execute('s1', 'hello', { onEvent: (e) => log(e.type, e.data) })
//! for await (const event of engine.stream('s1', 'and now?')) { ... }
//! await engine.close()
//! ```
//!
//! Design notes:
//!
//! * **Runtime.** Sessions run on napi-rs's tokio runtime (feature
//!   `tokio_rt`), the one the addon's promises need anyway, rather than on a
//!   runtime owned by each `Engine` (as in the Python binding, where no
//!   runtime exists otherwise). One multi-thread runtime per process is
//!   started with the addon and shut down when the last Node environment
//!   using it exits, which is the lifetime agent processes should have: when
//!   the runtime drops a session's task, the containment lifeline closes and
//!   the supervisor kills the tree. An `Engine` collected without `close()`
//!   drops the core engine, which signals its actors, and they run their kill
//!   ladder on the still-running shared runtime; an `Engine` owning its
//!   runtime would instead have to tear it down in a finalizer (no grace
//!   for the agents) or hand it to a thread. A second runtime would only add
//!   threads.
//! * **Never blocking the event loop.** `Engine::submit` is synchronous and
//!   quick (validation, the WAF, a map insert); everything that waits is a
//!   future on the runtime whose result napi settles on the JS thread.
//! * **Events in order, before the promise.** `onEvent` is a threadsafe
//!   function; the turn's future awaits each call's return on the JS thread
//!   before it reads the next event, so callbacks run in event order and all
//!   of them before `execute`'s promise settles. A callback that throws is
//!   ignored (like `Detector`'s `onAudit`): the turn goes on.
//! * **Lifetime.** A turn in flight keeps the pool alive (its future holds
//!   the engine), so a collected `Engine` does not cut it short. When the
//!   Node environment exits (a `Worker` ending, or the process), an env
//!   cleanup hook closes every engine still alive, even one only turns in
//!   flight hold, so no agent outlives its environment.
//! * **Errors** are built on the JS thread, in the promise's settle callback,
//!   by [`crate::to_js_error_for`], so they carry `code` and their extra
//!   properties (`verdict`, `subtype`).
//! * **`canUseTool`.** The core asks its permission handler synchronously on
//!   a runtime thread. The handler queues the question on a (weak)
//!   threadsafe function and waits for the JS answer in `block_in_place`, so
//!   the runtime keeps serving other sessions. The answer may be a promise.
//!   Throwing, rejecting or not answering within the turn timeout denies.
//! * **Panics.** Synchronous methods run under `catch_unwind` (a panic
//!   becomes a thrown `Error`); futures are spawned by napi, which turns a
//!   panic into a rejection; the core catches panics of the permission
//!   handler (a denial).

use std::collections::HashMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::Duration;

use hotplex_core as hc;
use hotplex_core::pool::{Permission, PermissionHandler, ToolRequest};
use napi::bindgen_prelude::{
    AsyncGenerator, FnArgs, FromNapiValue, Object, ObjectFinalize, Promise, PromiseRaw,
    ToNapiValue, Unknown,
};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::CleanupEnvHook;
use napi::{sys, Env, JsValue, Result, Status, ValueType};
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::{oneshot, watch, Mutex as AsyncMutex};

use crate::{to_js_error, to_js_error_for, to_js_verdict, Detector, Verdict};

/// One event of a turn.
#[napi(object, object_from_js = false)]
pub struct TurnEvent {
    /// The event name.
    #[napi(
        js_name = "type",
        ts_type = "'session_start' | 'thinking' | 'answer' | 'tool_use' | 'tool_result' | 'permission_request' | 'danger_block' | 'session_stats' | 'error'"
    )]
    pub kind: String,
    /// The event's fields, with the core's snake_case keys (the same in
    /// every binding): `session_start` `{session_id, model}`, `thinking` and
    /// `answer` `{text}`, `tool_use` `{id, name, input}`, `tool_result`
    /// `{tool_use_id, name, content, is_error}`, `permission_request`
    /// `{request_id, tool_name, input}`, `danger_block` `{verdict}`,
    /// `session_stats` `{usage, cost_usd, cli_duration_ms, api_duration_ms,
    /// num_turns, model, is_error, tools}`, `error` `{message}`.
    #[napi(ts_type = "Record<string, any>")]
    pub data: Value,
}

impl TurnEvent {
    fn from_core(e: &hc::Event) -> TurnEvent {
        let mut data = e.to_json();
        if let Some(o) = data.as_object_mut() {
            o.remove("type");
        }
        TurnEvent {
            kind: e.name().to_owned(),
            data,
        }
    }
}

/// Token usage of a turn, with the core's snake_case keys (as in the
/// `session_stats` event's `usage`).
#[napi(object, object_from_js = false)]
pub struct Usage {
    /// Input tokens not served from the cache.
    #[napi(js_name = "input_tokens")]
    pub input_tokens: f64,
    /// Output tokens.
    #[napi(js_name = "output_tokens")]
    pub output_tokens: f64,
    /// Input tokens written to the prompt cache.
    #[napi(js_name = "cache_creation_input_tokens")]
    pub cache_creation_input_tokens: f64,
    /// Input tokens read from the prompt cache.
    #[napi(js_name = "cache_read_input_tokens")]
    pub cache_read_input_tokens: f64,
}

/// One tool call of a turn, with the core's snake_case keys (as in the
/// `session_stats` event's `tools`).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct ToolCall {
    /// Tool call id.
    pub id: String,
    /// Tool name.
    pub name: String,
    /// Whether its result was an error (or a denial).
    #[napi(js_name = "is_error")]
    pub is_error: bool,
    /// Milliseconds from `tool_use` to `tool_result`; `null` if no result
    /// arrived.
    #[napi(js_name = "duration_ms")]
    pub duration_ms: Option<f64>,
}

/// A finished turn.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct Turn {
    /// The answer text.
    pub text: String,
    /// Always `false` for a returned turn (error results reject with
    /// `HOTPLEX_TURN_FAILED`).
    pub is_error: bool,
    /// Whether this turn started the agent process.
    pub cold_start: bool,
    /// Whether that start resumed an earlier conversation.
    pub resumed: bool,
    /// Wall time of the turn in milliseconds (after any queueing).
    pub duration_ms: f64,
    /// Milliseconds the turn waited behind earlier turns of its session.
    pub queued_ms: f64,
    /// Token usage reported by the CLI.
    pub usage: Usage,
    /// Cost in USD as the CLI reports it.
    pub cost_usd: f64,
    /// The model, from the CLI's `system/init`.
    pub model: Option<String>,
    /// Tool calls, in order.
    pub tools: Vec<ToolCall>,
    /// Every event of the turn, in order.
    pub events: Vec<TurnEvent>,
    /// The agent's pid.
    pub pid: i32,
    /// The provider (CLI) session id.
    pub provider_session_id: String,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Turn {
    fn from_core(t: hc::Turn) -> Turn {
        let u = &t.stats.usage;
        Turn {
            usage: Usage {
                input_tokens: u.input_tokens as f64,
                output_tokens: u.output_tokens as f64,
                cache_creation_input_tokens: u.cache_creation_input_tokens as f64,
                cache_read_input_tokens: u.cache_read_input_tokens as f64,
            },
            cost_usd: t.stats.cost_usd,
            model: t.stats.model.clone(),
            tools: t
                .stats
                .tools
                .iter()
                .map(|c| ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    is_error: c.is_error,
                    duration_ms: c.duration.map(millis),
                })
                .collect(),
            events: t.events.iter().map(TurnEvent::from_core).collect(),
            duration_ms: millis(t.duration),
            queued_ms: millis(t.queued),
            is_error: t.is_error,
            cold_start: t.cold_start,
            resumed: t.resumed,
            pid: t.pid,
            provider_session_id: t.provider_session_id,
            text: t.text,
        }
    }
}

/// A snapshot of one session, from `Engine.sessions()`.
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SessionInfo {
    /// The host's session id.
    pub id: String,
    /// The agent's pid, or `null` while no process runs.
    pub pid: Option<i32>,
    /// Where the session is in its life.
    #[napi(ts_type = "'starting' | 'ready' | 'busy' | 'dead'")]
    pub status: String,
    /// Turns answered.
    pub turns: f64,
    /// Turns queued or running.
    pub pending: f64,
    /// The working directory of the current (or last) process.
    pub workdir: Option<String>,
    /// Seconds since the session last saw input or output.
    pub idle_seconds: f64,
    /// The provider (CLI) session id.
    pub provider_session_id: String,
}

impl SessionInfo {
    fn from_core(i: hc::SessionInfo) -> SessionInfo {
        SessionInfo {
            pid: i.pid,
            status: i.status.as_str().to_owned(),
            turns: i.turns as f64,
            pending: i.pending as f64,
            workdir: i.workdir.map(|p| p.to_string_lossy().into_owned()),
            idle_seconds: i.idle_for.as_secs_f64(),
            provider_session_id: i.provider_session_id,
            id: i.id,
        }
    }
}

/// Totals over every turn of a session (across its process restarts), with
/// the core's snake_case keys (the same in every binding).
#[napi(object, object_from_js = false, use_nullable = true)]
pub struct SessionStats {
    /// Turns that produced a result (successful or not).
    pub turns: f64,
    /// Turns that ended in an error of any kind.
    #[napi(js_name = "failed_turns")]
    pub failed_turns: f64,
    /// Processes started (the first one included).
    #[napi(js_name = "cold_starts")]
    pub cold_starts: f64,
    /// Cold starts that resumed an earlier conversation.
    pub resumes: f64,
    /// Input tokens (not from cache), summed over turns.
    #[napi(js_name = "input_tokens")]
    pub input_tokens: f64,
    /// Output tokens.
    #[napi(js_name = "output_tokens")]
    pub output_tokens: f64,
    /// Input tokens written to the prompt cache.
    #[napi(js_name = "cache_creation_input_tokens")]
    pub cache_creation_input_tokens: f64,
    /// Input tokens read from the prompt cache.
    #[napi(js_name = "cache_read_input_tokens")]
    pub cache_read_input_tokens: f64,
    /// Cost in USD as the CLI computes it.
    #[napi(js_name = "cost_usd")]
    pub cost_usd: f64,
    /// Tool calls requested by the model.
    #[napi(js_name = "tool_calls")]
    pub tool_calls: f64,
    /// Tool calls that failed or were denied.
    #[napi(js_name = "tool_errors")]
    pub tool_errors: f64,
    /// Tool calls the WAF denied.
    #[napi(js_name = "tools_denied")]
    pub tools_denied: f64,
    /// Wall time spent in turns, in milliseconds.
    #[napi(js_name = "busy_ms")]
    pub busy_ms: f64,
    /// Lines of agent output that could not be used.
    #[napi(js_name = "bad_lines")]
    pub bad_lines: f64,
    /// The model, from the CLI's `system/init`.
    pub model: Option<String>,
}

impl SessionStats {
    fn from_core(s: hc::SessionStats) -> SessionStats {
        // Exhaustive on purpose: a new field must be added here too.
        let hc::SessionStats {
            turns,
            failed_turns,
            cold_starts,
            resumes,
            input_tokens,
            output_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
            cost_usd,
            tool_calls,
            tool_errors,
            tools_denied,
            busy_ms,
            bad_lines,
            model,
        } = s;
        SessionStats {
            turns: turns as f64,
            failed_turns: failed_turns as f64,
            cold_starts: cold_starts as f64,
            resumes: resumes as f64,
            input_tokens: input_tokens as f64,
            output_tokens: output_tokens as f64,
            cache_creation_input_tokens: cache_creation_input_tokens as f64,
            cache_read_input_tokens: cache_read_input_tokens as f64,
            cost_usd,
            tool_calls: tool_calls as f64,
            tool_errors: tool_errors as f64,
            tools_denied: tools_denied as f64,
            busy_ms: busy_ms as f64,
            bad_lines: bad_lines as f64,
            model,
        }
    }
}

/// `onEvent`: called on the JS thread with each event; its return value is
/// ignored, and so is an exception (the call still counts as done).
type EventCallback = ThreadsafeFunction<TurnEvent, UnknownReturnValue, TurnEvent, Status, false>;

/// The arguments of `canUseTool`: tool name, input, verdict, session id.
type PermissionArgs = FnArgs<(String, Value, Verdict, String)>;

/// `canUseTool`, weak so that an idle engine does not keep Node running.
type PermissionCallback =
    ThreadsafeFunction<PermissionArgs, HostAnswer, PermissionArgs, Status, false, true>;

/// Options for `new Engine(options)`. Durations are in seconds.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct EngineOptions {
    /// The agent program, looked up in `PATH` (default `'claude'`).
    pub binary: Option<String>,
    /// Extra arguments appended to the CLI's.
    pub args: Option<Vec<String>>,
    /// Environment variables set for the agent (they override inherited
    /// ones). The agent inherits only `envAllow` from this process.
    pub env: Option<HashMap<String, String>>,
    /// Most sessions at once (default 64). A new session evicts the least
    /// recently used idle one; when all are busy the turn rejects with
    /// `HOTPLEX_CAPACITY_EXCEEDED`.
    pub max_sessions: Option<f64>,
    /// Seconds a session may sit idle before its process is stopped (its
    /// conversation resumes on the next turn). Default 1800.
    pub idle_timeout: Option<f64>,
    /// Default limit of one turn in seconds (default 300).
    pub turn_timeout: Option<f64>,
    /// Seconds a new process has to print its first line (default 30).
    pub startup_timeout: Option<f64>,
    /// Where resume markers and containment records live (default: in
    /// memory, so resume works within this engine only).
    pub state_dir: Option<String>,
    /// `--permission-mode` of the CLI.
    pub permission_mode: Option<String>,
    /// `--allowed-tools` of the CLI.
    pub allowed_tools: Option<Vec<String>>,
    /// `--disallowed-tools` of the CLI.
    pub disallowed_tools: Option<Vec<String>>,
    /// Workdirs must lie under one of these directories (after resolving
    /// symlinks). Default: anywhere.
    pub allowed_roots: Option<Vec<String>>,
    /// Salt of the deterministic provider session ids (default `'default'`).
    pub namespace: Option<String>,
    /// `--append-system-prompt` of the CLI.
    pub system_prompt: Option<String>,
    /// `--model` of the CLI.
    pub model: Option<String>,
    /// Variables of this process the agent inherits (`*` suffix: prefix
    /// match). Default: `PATH`, `HOME`, `USER`, `LANG`, `LC_*`, `TERM`,
    /// `TMPDIR`, `SHELL`.
    pub env_allow: Option<Vec<String>>,
    /// Most processes starting at once (default 4).
    pub max_concurrent_starts: Option<f64>,
    /// Seconds an interrupted turn may take to end before its process is
    /// killed (default 5).
    pub interrupt_grace: Option<f64>,
    /// Largest prompt accepted, in bytes (default 1 MiB).
    pub max_prompt_bytes: Option<f64>,
    /// Workdir of turns that name none (default: this process's cwd).
    pub default_workdir: Option<String>,
    /// Decides tool calls the WAF let through: `true`, `undefined` or `null`
    /// allows, `false` denies, a string denies with that message, and so
    /// does `{ behavior: 'allow' | 'deny', message? }`; a promise of one of
    /// those is awaited. Anything else denies. It runs on the JS thread
    /// while the session waits; throwing, rejecting or not answering within
    /// the turn timeout denies. The verdict is the WAF's (not blocking).
    #[napi(
        ts_type = "(toolName: string, input: Record<string, any>, verdict: Verdict, sessionId: string) => boolean | string | null | undefined | { behavior: 'allow' | 'deny'; message?: string } | Promise<boolean | string | null | undefined | { behavior: 'allow' | 'deny'; message?: string }>"
    )]
    pub can_use_tool: Option<PermissionCallback>,
}

/// Options of `Engine.stream()`.
#[napi(object, object_to_js = false)]
pub struct TurnOptions {
    /// The agent's working directory (created if missing). A session whose
    /// process runs elsewhere is restarted there.
    pub workdir: Option<String>,
    /// Limit of this turn in seconds (default: the engine's `turnTimeout`).
    pub timeout: Option<f64>,
    /// Skip the WAF's prompt check: a higher layer already approved this
    /// prompt. Tool calls are still screened.
    pub waf_approved: Option<bool>,
}

/// Options of `Engine.execute()`.
#[napi(object, object_to_js = false)]
pub struct ExecuteOptions {
    /// The agent's working directory (created if missing). A session whose
    /// process runs elsewhere is restarted there.
    pub workdir: Option<String>,
    /// Limit of this turn in seconds (default: the engine's `turnTimeout`).
    pub timeout: Option<f64>,
    /// Skip the WAF's prompt check: a higher layer already approved this
    /// prompt. Tool calls are still screened.
    pub waf_approved: Option<bool>,
    /// Called on the JS thread with each event, in order, all before the
    /// promise settles. Exceptions it throws are ignored.
    #[napi(ts_type = "(event: TurnEvent) => void")]
    pub on_event: Option<EventCallback>,
}

fn invalid(message: String) -> hc::Error {
    hc::Error::InvalidConfig(message)
}

fn seconds(name: &str, v: f64) -> hc::Result<Duration> {
    if !v.is_finite() || v <= 0.0 {
        return Err(invalid(format!(
            "{name} must be a positive number of seconds"
        )));
    }
    Duration::try_from_secs_f64(v).map_err(|e| invalid(format!("{name}: {e}")))
}

fn count(name: &str, v: f64) -> hc::Result<usize> {
    if !v.is_finite() || v < 0.0 || v.fract() != 0.0 || v > u32::MAX as f64 {
        return Err(invalid(format!("{name} must be a non-negative integer")));
    }
    Ok(v as usize)
}

fn core_options(o: EngineOptions) -> hc::Result<hc::EngineOptions> {
    let mut opts = hc::EngineOptions::default();
    if let Some(v) = o.binary {
        opts.binary = PathBuf::from(v);
    }
    if let Some(v) = o.args {
        opts.args = v;
    }
    if let Some(env) = o.env {
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        opts.env = env;
    }
    if let Some(v) = o.max_sessions {
        opts.max_sessions = count("maxSessions", v)?;
    }
    if let Some(v) = o.idle_timeout {
        opts.idle_timeout = seconds("idleTimeout", v)?;
    }
    if let Some(v) = o.turn_timeout {
        opts.turn_timeout = seconds("turnTimeout", v)?;
    }
    if let Some(v) = o.startup_timeout {
        opts.startup_timeout = seconds("startupTimeout", v)?;
    }
    opts.state_dir = o.state_dir.map(PathBuf::from);
    opts.permission_mode = o.permission_mode;
    if let Some(v) = o.allowed_tools {
        opts.allowed_tools = v;
    }
    if let Some(v) = o.disallowed_tools {
        opts.disallowed_tools = v;
    }
    if let Some(v) = o.allowed_roots {
        opts.allowed_roots = v.into_iter().map(PathBuf::from).collect();
    }
    if let Some(v) = o.namespace {
        opts.namespace = v;
    }
    opts.system_prompt = o.system_prompt;
    opts.model = o.model;
    if let Some(v) = o.env_allow {
        opts.env_allow = v;
    }
    if let Some(v) = o.max_concurrent_starts {
        opts.max_concurrent_starts = count("maxConcurrentStarts", v)?;
    }
    if let Some(v) = o.interrupt_grace {
        opts.interrupt_grace = seconds("interruptGrace", v)?;
    }
    if let Some(v) = o.max_prompt_bytes {
        opts.max_prompt_bytes = count("maxPromptBytes", v)?;
    }
    opts.default_workdir = o.default_workdir.map(PathBuf::from);
    if let Some(cb) = o.can_use_tool {
        opts.permission_handler = Some(permission_handler(cb, opts.turn_timeout));
    }
    Ok(opts)
}

fn turn_options(
    workdir: Option<String>,
    timeout: Option<f64>,
    waf_approved: Option<bool>,
) -> hc::Result<hc::TurnOptions> {
    Ok(hc::TurnOptions {
        workdir: workdir.map(PathBuf::from),
        timeout: timeout.map(|t| seconds("timeout", t)).transpose()?,
        waf_approved: waf_approved.unwrap_or(false),
    })
}

/// Runs `f` and turns a panic into a JS error.
fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(napi::Error::new(
            Status::GenericFailure,
            "hotplex: internal error (a panic was caught)",
        ))
    })
}

/// A decision of the host, read on the JS thread from what `canUseTool`
/// returned (or what its promise resolved to):
///
/// * `undefined`, `null`, `true`: allow; `false`: deny;
/// * a string: deny with that message;
/// * `{ behavior: 'allow' | 'deny', message? }` (the Claude Agent SDK's
///   shape): as it says;
/// * anything else: deny. Unlike Python's truthiness, an unexpected value
///   never allows (an object is truthy, and `{ behavior: 'deny' }` must
///   not read as yes).
pub struct Decision(Permission);

impl Decision {
    fn deny(why: Option<String>) -> Permission {
        match why {
            Some(why) if !why.is_empty() => Permission::Deny(why),
            _ => Permission::Deny("denied by the host".into()),
        }
    }

    fn read(v: Unknown<'_>) -> Result<Permission> {
        Ok(match v.get_type()? {
            ValueType::Undefined | ValueType::Null => Permission::Allow,
            ValueType::Boolean if v.coerce_to_bool()? => Permission::Allow,
            ValueType::Boolean => Decision::deny(None),
            // SAFETY: the value is a string (checked).
            ValueType::String => Decision::deny(Some(unsafe { v.cast::<String>()? })),
            ValueType::Object => {
                // SAFETY: the value is an object (checked).
                let o = unsafe { v.cast::<Object>()? };
                let behavior: Option<String> = o.get("behavior").ok().flatten();
                match behavior.as_deref() {
                    Some("allow") => Permission::Allow,
                    Some("deny") => Decision::deny(o.get("message").ok().flatten()),
                    _ => unexpected(),
                }
            }
            _ => unexpected(),
        })
    }
}

fn unexpected() -> Permission {
    Permission::Deny("the host's permission check returned an unexpected value".into())
}

impl FromNapiValue for Decision {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: napi hands us a live value of this env, on its thread.
        Decision::read(unsafe { Unknown::from_raw_unchecked(env, value) }).map(Decision)
    }
}

/// What `canUseTool` returned: a decision, or a promise of one.
pub enum HostAnswer {
    /// A decision.
    Now(Permission),
    /// A promise of one.
    Later(Promise<Decision>),
}

impl FromNapiValue for HostAnswer {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut is_promise = false;
        // SAFETY: a live value of this env, on its thread.
        napi::check_status!(unsafe { sys::napi_is_promise(env, value, &mut is_promise) })?;
        if is_promise {
            // SAFETY: checked to be a promise.
            return Ok(HostAnswer::Later(unsafe {
                Promise::<Decision>::from_napi_value(env, value)?
            }));
        }
        // SAFETY: as above.
        Ok(HostAnswer::Now(unsafe {
            Decision::from_napi_value(env, value)?.0
        }))
    }
}

fn permission_handler(cb: PermissionCallback, limit: Duration) -> PermissionHandler {
    Arc::new(move |req: &ToolRequest<'_>| ask_host(&cb, req, limit))
}

/// Asks `canUseTool` and waits for its answer (on a runtime thread).
fn ask_host(cb: &PermissionCallback, req: &ToolRequest<'_>, limit: Duration) -> Permission {
    let failed = || Permission::Deny("the host's permission check failed".into());
    let late = || Permission::Deny("the host's permission check did not answer in time".into());
    let verdict = to_js_verdict(req.verdict, &req.input.to_string());
    let args = FnArgs::from((
        req.tool_name.to_owned(),
        req.input.clone(),
        verdict,
        req.session_id.to_owned(),
    ));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Option<HostAnswer>>(1);
    let status = cb.call_with_return_value(
        args,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |answer: Result<HostAnswer>, _env| {
            // A JS exception is dropped here, on its own thread.
            let _ = tx.send(answer.ok());
            Ok(())
        },
    );
    if status != Status::Ok {
        return failed();
    }
    blocking(move || match rx.recv_timeout(limit) {
        Ok(Some(HostAnswer::Now(p))) => p,
        Ok(Some(HostAnswer::Later(promise))) => match tokio::runtime::Handle::try_current() {
            Ok(rt) => match rt.block_on(tokio::time::timeout(limit, promise)) {
                Ok(Ok(Decision(p))) => p,
                Ok(Err(_)) => failed(),
                Err(_) => late(),
            },
            Err(_) => failed(),
        },
        Ok(None) => failed(),
        Err(_) => late(),
    })
}

/// Runs blocking `f` from a runtime thread without stalling the runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// The session pool: one hot agent process per session id.
///
/// ```js
/// const engine = new Engine({ binary: 'claude' })
/// const turn = await engine.execute('s1', 'hello')
/// turn.text        // the answer
/// await engine.execute('s1', 'again') // same process, same conversation
/// await engine.close()
/// ```
///
/// Errors are `Error`s with a `code`: `HOTPLEX_INVALID_CONFIG`,
/// `HOTPLEX_DANGER_BLOCKED` (with `verdict`), `HOTPLEX_TURN_TIMEOUT`,
/// `HOTPLEX_SESSION_DEAD`, `HOTPLEX_TURN_FAILED` (with `subtype`),
/// `HOTPLEX_CAPACITY_EXCEEDED`, `HOTPLEX_START_FAILED`, `HOTPLEX_CLOSED`.
#[napi(custom_finalize)]
pub struct Engine {
    /// Shared with the futures of turns in flight and the env cleanup hook
    /// (weakly).
    core: Arc<hc::Engine>,
    hook: Option<CleanupEnvHook<EnvExit>>,
}

/// What the env cleanup hook needs to close an engine.
struct EnvExit {
    engine: Weak<hc::Engine>,
    rt: Option<tokio::runtime::Handle>,
}

impl EnvExit {
    /// The environment is going away: close the engine if anything still
    /// holds it. Runs in an `extern "C"` hook, so it must not unwind.
    fn run(self) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let (Some(engine), Some(rt)) = (self.engine.upgrade(), self.rt) {
                let engine = hc::Engine::clone(&engine);
                // On a runtime that is shutting down too, the task is dropped
                // and the containment lifelines close instead.
                rt.spawn(async move { engine.close().await });
            }
        }));
    }
}

impl ObjectFinalize for Engine {
    fn finalize(mut self, env: Env) -> Result<()> {
        // Keeps Node's hook list short for programs that make many engines
        // (napi-rs keeps the hook's small box; the `Weak` in it is dead).
        if let Some(hook) = self.hook.take() {
            let _ = env.remove_env_cleanup_hook(hook);
        }
        Ok(())
    }
}

#[napi]
impl Engine {
    /// Builds an engine; no process starts until the first turn. Throws
    /// `HOTPLEX_INVALID_CONFIG` for a bad option.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<EngineOptions>) -> Result<Self> {
        guard(|| {
            let opts =
                core_options(options.unwrap_or_default()).map_err(|e| to_js_error(&env, e))?;
            // The core spawns its tasks on the runtime of the calling
            // context: napi's (see the module docs).
            let made = catch_unwind(AssertUnwindSafe(|| {
                napi::bindgen_prelude::within_runtime_if_available(|| {
                    hc::Engine::new(opts).map(|e| (e, tokio::runtime::Handle::try_current().ok()))
                })
            }));
            let (core, rt) = made
                .unwrap_or_else(|_| Err(invalid("the async runtime is not available".into())))
                .map_err(|e| to_js_error(&env, e))?;
            let core = Arc::new(core);
            let exit = EnvExit {
                engine: Arc::downgrade(&core),
                rt,
            };
            let hook = env.add_env_cleanup_hook(exit, EnvExit::run).ok();
            Ok(Engine { core, hook })
        })
    }

    /// Runs one turn on session `sessionId` (started, or resumed, on first
    /// use) and resolves with the finished turn. Turns of one session run
    /// one at a time, in call order; sessions run in parallel. Rejects with
    /// `HOTPLEX_DANGER_BLOCKED` (the WAF blocked the prompt; `onEvent` sees
    /// a `danger_block` event first),
    /// `HOTPLEX_TURN_TIMEOUT`, `HOTPLEX_SESSION_DEAD`, `HOTPLEX_TURN_FAILED`,
    /// `HOTPLEX_CAPACITY_EXCEEDED`, `HOTPLEX_START_FAILED`,
    /// `HOTPLEX_INVALID_CONFIG` or `HOTPLEX_CLOSED`.
    #[napi]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        prompt: String,
        options: Option<ExecuteOptions>,
    ) -> Result<PromiseRaw<'env, Turn>> {
        guard(|| {
            let (opts, on_event) = match options {
                Some(o) => (
                    turn_options(o.workdir, o.timeout, o.waf_approved),
                    o.on_event,
                ),
                None => (Ok(hc::TurnOptions::default()), None),
            };
            let submitted = opts.and_then(|o| self.core.submit(&session_id, &prompt, &o));
            // Keeps the pool alive while the turn runs, even if the JS
            // Engine is collected meanwhile.
            let engine = Arc::clone(&self.core);
            let turn = async move {
                let _engine = engine;
                // Resolves once the callback returned (or threw) on the JS
                // thread.
                let deliver = |e: &hc::Event| {
                    let call = on_event
                        .as_ref()
                        .map(|cb| cb.call_async_catch(TurnEvent::from_core(e)));
                    async move {
                        if let Some(call) = call {
                            let _ = call.await;
                        }
                    }
                };
                let mut stream = match submitted {
                    Ok(s) => s,
                    Err(hc::Error::DangerBlocked(v)) => {
                        // Reported as an event too, as the core's execute
                        // (and the seed) do.
                        deliver(&hc::Event::DangerBlock((*v).clone())).await;
                        return Ok(Err(hc::Error::DangerBlocked(v)));
                    }
                    Err(e) => return Ok(Err(e)),
                };
                while let Some(e) = stream.next_event().await {
                    deliver(&e).await;
                }
                Ok(stream.finish().await)
            };
            env.spawn_future_with_callback(turn, move |env, outcome| {
                outcome
                    .map(Turn::from_core)
                    .map_err(|e| to_js_error_for(env, e, &prompt))
            })
        })
    }

    /// Like `execute`, but returns the turn's events as an async iterator,
    /// as they arrive:
    ///
    /// ```js
    /// const stream = engine.stream('s1', 'hello')
    /// for await (const event of stream) console.log(event.type)
    /// stream.turn // the finished Turn
    /// ```
    ///
    /// The turn is queued at once; the iteration rejects with the turn's
    /// error (the same codes as `execute`). Leaving the loop early (or
    /// `stream.cancel()`) cancels the turn: the agent is interrupted.
    #[napi]
    pub fn stream(
        &self,
        session_id: String,
        prompt: String,
        options: Option<TurnOptions>,
    ) -> Result<TurnStream> {
        guard(|| {
            let submitted = match options {
                Some(o) => turn_options(o.workdir, o.timeout, o.waf_approved),
                None => Ok(hc::TurnOptions::default()),
            }
            .and_then(|o| self.core.submit(&session_id, &prompt, &o));
            let state = match submitted {
                Ok(s) => StreamState::Running(s, Arc::clone(&self.core)),
                Err(e) => StreamState::Failed(e),
            };
            Ok(TurnStream::new(state, prompt))
        })
    }

    /// Snapshots of every session, sorted by id (empty once closed).
    #[napi]
    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        guard(|| {
            Ok(self
                .core
                .sessions()
                .into_iter()
                .map(SessionInfo::from_core)
                .collect())
        })
    }

    /// Totals of a session, or `null` for an unknown id.
    #[napi]
    pub fn session_stats(&self, session_id: String) -> Result<Option<SessionStats>> {
        guard(|| {
            Ok(self
                .core
                .session_stats(&session_id)
                .map(SessionStats::from_core))
        })
    }

    /// Stops a session: its running and queued turns reject with
    /// `HOTPLEX_SESSION_DEAD` and its process tree is killed (resolves once
    /// confirmed gone). The conversation resumes if the id is used again.
    /// Resolves with whether the session existed; rejects with
    /// `HOTPLEX_CLOSED` once the engine is closed.
    #[napi]
    pub fn stop_session<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, bool>> {
        guard(|| {
            let engine = Arc::clone(&self.core);
            let stop = async move {
                if engine.is_closed() {
                    return Ok(Err(hc::Error::Closed));
                }
                Ok(Ok(engine.stop_session(&session_id).await))
            };
            env.spawn_future_with_callback(stop, |env, outcome| {
                outcome.map_err(|e| to_js_error(env, e))
            })
        })
    }

    /// Stops every session and kills every process tree (resolves once all
    /// are confirmed gone). Idempotent; afterwards `execute`, `stream` and
    /// `stopSession` reject with `HOTPLEX_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        guard(|| {
            let engine = Arc::clone(&self.core);
            env.spawn_future(async move {
                engine.close().await;
                Ok(())
            })
        })
    }

    /// Whether `close()` was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The WAF screening this engine's prompts and tool calls (the built-in
    /// rules), as a `Detector`.
    #[napi(getter)]
    pub fn detector(&self) -> Detector {
        Detector {
            inner: self.core.detector().clone(),
            audit: None,
        }
    }
}

enum StreamState {
    /// The turn could not be queued: the first `next()` rejects with this.
    Failed(hc::Error),
    /// Queued or running; the engine is kept alive meanwhile.
    Running(hc::TurnStream, Arc<hc::Engine>),
    /// Over (finished, failed or cancelled).
    Over,
}

/// What `TurnStream`'s iterator yields: one event, or the turn's error,
/// turned into a rejection of `next()` when converted on the JS thread (a
/// `napi::Error` built off that thread could not carry `code`). The type
/// has the name of the JS event on purpose: the generated `index.d.ts`
/// names the iterator's element type after it.
mod step {
    use super::*;

    pub struct TurnEvent(
        pub(super) std::result::Result<super::TurnEvent, hc::Error>,
        pub(super) Arc<str>,
    );

    impl ToNapiValue for TurnEvent {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            match val.0 {
                // SAFETY: forwarded from napi, on the env's thread.
                Ok(e) => unsafe { ToNapiValue::to_napi_value(env, e) },
                Err(e) => Err(to_js_error_for(&Env::from_raw(env), e, &val.1)),
            }
        }
    }
}

struct Shared {
    state: AsyncMutex<StreamState>,
    cancelled: watch::Sender<bool>,
    turn: StdMutex<Option<hc::Turn>>,
    prompt: Arc<str>,
}

impl Shared {
    async fn next(&self) -> Option<step::TurnEvent> {
        let mut cancelled = self.cancelled.subscribe();
        let mut state = self.state.lock().await;
        if *cancelled.borrow() {
            *state = StreamState::Over;
            return None;
        }
        let item = match std::mem::replace(&mut *state, StreamState::Over) {
            StreamState::Over => return None,
            StreamState::Failed(e) => Err(e),
            StreamState::Running(mut stream, engine) => {
                let next = tokio::select! {
                    e = stream.next_event() => e,
                    // Dropping the stream cancels the turn.
                    _ = cancelled.wait_for(|c| *c) => return None,
                };
                match next {
                    Some(e) => {
                        *state = StreamState::Running(stream, engine);
                        Ok(TurnEvent::from_core(&e))
                    }
                    None => match stream.finish().await {
                        Ok(t) => {
                            *self.turn.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
                            return None;
                        }
                        Err(e) => Err(e),
                    },
                }
            }
        };
        Some(step::TurnEvent(item, Arc::clone(&self.prompt)))
    }

    fn cancel(&self) {
        self.cancelled.send_replace(true);
        // Drop the turn now unless a `next()` holds it (that one sees the
        // flag and drops it).
        if let Ok(mut state) = self.state.try_lock() {
            *state = StreamState::Over;
        }
    }
}

/// The events of one turn as they arrive, from `Engine.stream()`: an async
/// iterable (`for await (const event of stream)`). The iteration rejects
/// with the turn's error; afterwards `turn` holds the finished turn.
/// Leaving the loop early, or `cancel()`, cancels the turn.
#[napi(async_iterator)]
pub struct TurnStream {
    shared: Arc<Shared>,
    /// Settles when the latest `next()` is done: each `next()` waits for
    /// the one before, so concurrent calls get events in call order.
    tail: Option<oneshot::Receiver<()>>,
}

impl TurnStream {
    fn new(state: StreamState, prompt: String) -> TurnStream {
        TurnStream {
            shared: Arc::new(Shared {
                state: AsyncMutex::new(state),
                cancelled: watch::Sender::new(false),
                turn: StdMutex::new(None),
                prompt: prompt.into(),
            }),
            tail: None,
        }
    }
}

#[napi]
impl AsyncGenerator for TurnStream {
    type Yield = step::TurnEvent;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<Self::Yield>>> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        let (done, tail) = oneshot::channel::<()>();
        let previous = self.tail.replace(tail);
        async move {
            if let Some(previous) = previous {
                // Err: the previous call's future was dropped; go on.
                let _ = previous.await;
            }
            let item = shared.next().await;
            let _ = done.send(());
            Ok(item)
        }
    }

    fn complete(
        &mut self,
        _value: Option<()>,
    ) -> impl Future<Output = Result<Option<Self::Yield>>> + Send + 'static {
        self.shared.cancel();
        async { Ok(None) }
    }

    fn catch(
        &mut self,
        _env: Env,
        value: Unknown,
    ) -> impl Future<Output = Result<Option<Self::Yield>>> + Send + 'static {
        self.shared.cancel();
        let err = napi::Error::from_unknown_without_coercion(value);
        async move { Err(err) }
    }
}

#[napi]
impl TurnStream {
    /// The finished turn, once the iteration ended without an error;
    /// `null` before that.
    #[napi(getter)]
    pub fn turn(&self) -> Option<Turn> {
        let turn = self.shared.turn.lock().unwrap_or_else(|e| e.into_inner());
        turn.clone().map(Turn::from_core)
    }

    /// Cancels the turn if it still runs (the agent is interrupted); the
    /// iteration ends.
    #[napi]
    pub fn cancel(&self) {
        self.shared.cancel();
    }
}
