//! The session pool over the C ABI: `hotplex_engine` and
//! `hotplex_turn_stream`.
//!
//! Options, turns, events and session snapshots cross the boundary as JSON
//! (the core's serde forms, described by `schema/hotplex.schema.json`), which
//! keeps the ABI small and lets it grow without breaking: unknown keys in
//! results are to be ignored by callers, unknown option keys are rejected
//! (a typo must not silently fall back to a default).
//!
//! Each engine owns a small tokio runtime (two worker threads) on which its
//! sessions run. Blocking calls (`hotplex_turn_stream_next`, `_finish`,
//! `hotplex_engine_stop_session`, `hotplex_engine_release`,
//! `hotplex_engine_drain`, `hotplex_engine_close`) wait on the calling
//! thread. A turn is read from its stream (`turn.rs`): blocking,
//! with a timeout, or after its pollable descriptor became readable; or it
//! is delivered to callbacks. Cancelling or freeing an unfinished stream
//! cancels its turn (the agent is interrupted).

use std::ffi::{c_char, c_void};
use std::ptr;

use std::sync::Arc;

use hotplex_core::{Engine, EngineOptions, TurnOptions, TurnStream};
use serde_json::Value;

use crate::answer::HostGate;
use crate::error::{borrow, c_string, check_out, guard, str_arg, write_out, Failure};
use crate::host::{self, hotplex_hook_callback, hotplex_tool_callback};
use crate::hotplex_status;
use crate::permission::{self, hotplex_permission_callback};
use crate::telemetry::{self, hotplex_observer_callback, ObserverLink};
use crate::turn::{
    self, hotplex_destroy_callback, hotplex_done_callback, hotplex_event_callback,
    hotplex_turn_stream, RuntimeRef,
};

/// A session pool (opaque). Create with `hotplex_engine_new()`, release
/// with `hotplex_engine_free()`.
///
/// Threads: an engine is safe for concurrent use. Any number of threads may
/// call `hotplex_engine_start()`, `_submit()`, `_start_with_callback()`,
/// `_sessions()`, `_session_stats()`, `_stop_session()`, `_metrics_*()`,
/// the live controls (`_interrupt()`, `_set_model()`,
/// `_set_permission_mode()`, `_context_usage()`, `_mcp_status()`),
/// `_reset_session()`, `_fork_session()`, `_prewarm()`, the placement
/// calls (`_owns()`, `_adopt()`, `_release()`, `_drain()`, `_load()`) and
/// `_close()` on the same engine at once. `hotplex_engine_free()` must not
/// run concurrently with any other call on the engine, nor from inside one
/// of its callbacks.
///
/// Lifetime: the turn streams of an engine may outlive it (see
/// `hotplex_turn_stream`): freeing the engine stops its sessions, so their
/// turns end (`HOTPLEX_STATUS_CLOSED` or `HOTPLEX_STATUS_SESSION_DEAD`),
/// and its threads stay until its last stream is freed and its last
/// callback turn has had its final call and `destroy`.
pub struct hotplex_engine {
    /// Declared before `engine`: as before, the runtime is let go (shut
    /// down in the background if no stream holds it) before the engine's
    /// sessions are told to stop; each kills its own tree.
    rt: RuntimeRef,
    engine: Engine,
    /// The C observer, ended by `hotplex_engine_free()` after the engine.
    observer: Option<ObserverLink>,
    /// The calls of the permission, hook and tool callbacks, shut by
    /// `hotplex_engine_close()` (and `_free()`).
    host: Arc<HostGate>,
}

impl hotplex_engine {
    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt.get()
    }
}

/// Parses a JSON argument; empty text is `null` (all defaults).
fn json_arg(text: &str, what: &str) -> Result<Value, Failure> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        Failure::new(
            hotplex_status::InvalidConfig,
            format!("{what} is not valid JSON: {e}"),
        )
    })
}

fn write_json(out: *mut *mut c_char, v: &Value) {
    let raw = c_string(&v.to_string()).into_raw();
    // SAFETY: every caller checked `out` with check_out first.
    unsafe { write_out(out, raw) };
}

/// Creates an engine. `options_json` (NULL or empty: every default) is
/// the JSON form of the core's `EngineOptions`: an object whose keys are the
/// `EngineOptions` properties of `schema/hotplex.schema.json` (`binary`,
/// `env`, `max_sessions`, `turn_timeout`, ...), durations in seconds,
/// `null` for a default. Resource limits of every session's process tree
/// are the object `limits`, each key optional: `{"memory_bytes": 536870912,
/// "max_processes": 64, "cpu_seconds": 600, "open_files": 4096}` (see
/// `SessionLimits` in the schema; `hotplex_session_ceiling()` and
/// `hotplex_supervisor_mode()` report the process model). Unknown keys, bad
/// values (a limit of 0, `limits.max_processes: must be at least 1`) and an
/// agent binary that cannot be found fail with
/// `HOTPLEX_STATUS_INVALID_CONFIG`, the message naming the option (and for
/// the binary the path tried). The WAF is the built-in detector; every tool
/// call it allows runs (see
/// `hotplex_engine_new_with_permission()` to decide them). Options that
/// declare `hooks` or `tools` need their callbacks: use
/// `hotplex_engine_new_with_callbacks()` for those.
///
/// # Safety
/// `options_json` must be NULL or point to `options_len` readable bytes;
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_new(
    options_json: *const c_char,
    options_len: usize,
    out: *mut *mut hotplex_engine,
) -> hotplex_status {
    // SAFETY: caller's contract; no callback.
    unsafe {
        hotplex_engine_new_with_permission(options_json, options_len, None, ptr::null_mut(), out)
    }
}

/// The host's callbacks for `hotplex_engine_new_with_callbacks()`.
/// Zero-initialise it, set `size` to `sizeof(hotplex_engine_callbacks)`,
/// then set the callbacks wanted; a NULL callback is "none".
///
/// The struct grows by appending fields (each pointer-sized); `size` tells
/// the library which fields the caller knows. Fields past `size` read as
/// NULL, so a program built against an older header keeps working; a
/// program built against a newer header that sets a callback this library
/// does not know fails with `HOTPLEX_STATUS_INVALID_ARGUMENT` instead of
/// having it ignored.
///
/// Host hooks and tools, declared in the options and run by `hook` and
/// `tool` (see `hotplex_engine_new_with_callbacks()` for the declarations):
///
/// ```c
/// static void on_hook(void *data, const char *call, size_t len, hotplex_callback_answer *a) {
///     // call: {"hook_id": "audit", "event": "PostToolUse", "input": {...}, ...}
///     const char *out = "{\"hookSpecificOutput\":{\"hookEventName\":\"PostToolUse\","
///                       "\"additionalContext\":\"logged\"}}";
///     hotplex_callback_answer_set(a, out, strlen(out));
/// }
/// static void on_tool(void *data, const char *call, size_t len, hotplex_callback_answer *a) {
///     // call: {"server": "host", "tool": "get_weather", "arguments": {"city": ...}}
///     hotplex_callback_answer_set(a, "\"sunny\"", 7); // or _fail(a, why, n)
/// }
/// hotplex_engine_callbacks cb = {0};
/// cb.size = sizeof cb;
/// cb.hook = on_hook;
/// cb.tool = on_tool;
/// hotplex_status st = hotplex_engine_new_with_callbacks(opts, strlen(opts), &cb, &engine);
/// ```
#[repr(C)]
pub struct hotplex_engine_callbacks {
    /// `sizeof(hotplex_engine_callbacks)` as the caller compiled it.
    pub size: usize,
    /// Decides every tool call the WAF did not block (NULL: allow); see
    /// `hotplex_permission_callback` for the request, the answers and the
    /// thread rules.
    pub permission: hotplex_permission_callback,
    /// Passed to `permission` unchanged; valid, and usable from the
    /// engine's threads, until `hotplex_engine_close()` has returned.
    pub permission_data: *mut c_void,
    /// Receives the engine's lifecycle records (NULL: none); see
    /// `hotplex_observer_callback` for the records and the thread.
    pub observer: hotplex_observer_callback,
    /// Passed to `observer` unchanged; valid, and usable from the observer
    /// thread, until `hotplex_engine_free()` has returned.
    pub observer_data: *mut c_void,
    /// Runs the host hooks that `options_json` declares in `hooks` (NULL:
    /// none; declaring hooks without it is `HOTPLEX_STATUS_INVALID_CONFIG`);
    /// see `hotplex_hook_callback` for the call, the answers and the thread
    /// rules.
    pub hook: hotplex_hook_callback,
    /// Passed to `hook` unchanged; valid, and usable from the engine's
    /// threads, until `hotplex_engine_close()` has returned.
    pub hook_data: *mut c_void,
    /// Runs the host-defined tools that `options_json` declares in `tools`
    /// (NULL: none; declaring tools without it is
    /// `HOTPLEX_STATUS_INVALID_CONFIG`); see `hotplex_tool_callback`.
    pub tool: hotplex_tool_callback,
    /// Passed to `tool` unchanged; valid, and usable from the engine's
    /// threads, until `hotplex_engine_close()` has returned.
    pub tool_data: *mut c_void,
}

impl hotplex_engine_callbacks {
    /// No callbacks: what a NULL `callbacks` means.
    fn none() -> hotplex_engine_callbacks {
        hotplex_engine_callbacks {
            size: std::mem::size_of::<hotplex_engine_callbacks>(),
            permission: None,
            permission_data: ptr::null_mut(),
            observer: None,
            observer_data: ptr::null_mut(),
            hook: None,
            hook_data: ptr::null_mut(),
            tool: None,
            tool_data: ptr::null_mut(),
        }
    }
}

/// The largest `size` accepted (a guard against garbage, far above any
/// real version of the struct).
const MAX_CALLBACKS_SIZE: usize = 4096;

/// Reads the caller's callbacks: the fields inside `size`, NULL for the rest.
///
/// # Safety
/// `cb` must be NULL or point to `(*cb).size` readable bytes.
unsafe fn read_callbacks(
    cb: *const hotplex_engine_callbacks,
) -> Result<hotplex_engine_callbacks, Failure> {
    let known = std::mem::size_of::<hotplex_engine_callbacks>();
    let mut out = hotplex_engine_callbacks::none();
    if cb.is_null() {
        return Ok(out);
    }
    // SAFETY: `size` is the first field, present in every version.
    let size = unsafe { ptr::read_unaligned(cb.cast::<usize>()) };
    if size == 0 || size > MAX_CALLBACKS_SIZE {
        return Err(Failure::invalid_argument(format!(
            "callbacks.size is {size}: set it to sizeof(hotplex_engine_callbacks)"
        )));
    }
    if size > known {
        // SAFETY: the caller's `size` bytes are readable.
        let tail = unsafe { std::slice::from_raw_parts(cb.cast::<u8>().add(known), size - known) };
        if tail.iter().any(|b| *b != 0) {
            return Err(Failure::invalid_argument(
                "callbacks sets fields this library does not know (a newer hotplex.h?)",
            ));
        }
    }
    // Every field is pointer-sized: copy whole fields only, so that none is
    // half read.
    let word = std::mem::size_of::<usize>();
    let n = size.min(known) / word * word;
    // SAFETY: `n` bytes are readable (caller) and fit in `out`; every bit
    // pattern the caller's compiler wrote for these fields is a valid
    // pointer or a NULL / function pointer for the same C types.
    unsafe { ptr::copy_nonoverlapping(cb.cast::<u8>(), ptr::addr_of_mut!(out).cast::<u8>(), n) };
    out.size = known;
    Ok(out)
}

/// Like `hotplex_engine_new()`, with the host's callbacks (`callbacks` may
/// be NULL: none). See `hotplex_engine_callbacks` for what each one does and
/// how long its user data must live. The callbacks are copied: the struct
/// itself need not outlive the call.
///
/// Host hooks and tools are declared in `options_json` and run by the
/// callbacks: `"hooks": [{"event": "PostToolUse", "matcher": "Bash", "id":
/// "audit", "timeout": 30}]` (the schema's `HookSpec`: `matcher` a tool name
/// or `A|B`, null for every call; `id` unique, handed to `callbacks.hook`
/// to say which hook runs; `timeout` in seconds, default 60) and `"tools":
/// [{"name": "host", "version": "1.0.0", "tools": [{"name": "get_weather",
/// "description": "...", "input_schema": {"type": "object", ...}}]}]` (the
/// schema's `ToolServer`; the model sees `mcp__host__get_weather`).
///
/// # Safety
/// As for `hotplex_engine_new()`; `callbacks` must be NULL or point to
/// `callbacks->size` readable bytes, and each callback it sets must have
/// its typedef's contract.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_new_with_callbacks(
    options_json: *const c_char,
    options_len: usize,
    callbacks: *const hotplex_engine_callbacks,
    out: *mut *mut hotplex_engine,
) -> hotplex_status {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(options_json, options_len, "options_json") }?;
        // SAFETY: caller's contract.
        let cb = unsafe { read_callbacks(callbacks) }?;
        let mut opts = EngineOptions::from_json(&json_arg(text, "options_json")?)?;
        if !opts.hooks.is_empty() && cb.hook.is_none() {
            return Err(Failure::new(
                hotplex_status::InvalidConfig,
                "hooks: the options declare hooks but no hook callback was given (set callbacks.hook)",
            ));
        }
        if !opts.tools.is_empty() && cb.tool.is_none() {
            return Err(Failure::new(
                hotplex_status::InvalidConfig,
                "tools: the options declare tools but no tool callback was given (set callbacks.tool)",
            ));
        }
        let gate = Arc::new(HostGate::default());
        opts.permission_handler = permission::handler(cb.permission, cb.permission_data, &gate);
        opts.hook_handler = host::hook_handler(cb.hook, cb.hook_data, &gate);
        opts.tool_handler = host::tool_handler(cb.tool, cb.tool_data, &gate);
        let (observer, link) = telemetry::observer(cb.observer, cb.observer_data).unzip();
        opts.observer = observer;
        // The core's runtime blocks SIGPIPE on its threads: a C host that
        // keeps SIGPIPE's default is not killed by a write to a dead agent.
        let built = Engine::with_own_runtime(opts).map_err(Failure::from);
        let (engine, rt) = match built {
            Ok(pair) => pair,
            Err(e) => {
                // The core dropped the observer with its options.
                if let Some(link) = link {
                    link.finish(false);
                }
                return Err(e);
            }
        };
        let handle = Box::new(hotplex_engine {
            rt: RuntimeRef::new(rt),
            engine,
            observer: link,
            host: gate,
        });
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(handle)) };
        Ok(())
    })
}

/// Like `hotplex_engine_new()`, and `callback` (may be NULL: allow) decides
/// every tool call the WAF did not block (see `hotplex_permission_callback`
/// for the request, the answers and the thread rules). `user_data` is passed
/// to every call unchanged; it must stay valid, and safe to use from the
/// engine's threads, until `hotplex_engine_close()` (or, for an engine
/// freed without closing, `hotplex_engine_free()`) has returned: both wait
/// for a call in flight, and no call starts afterwards. The same as
/// `hotplex_engine_new_with_callbacks()` with only `permission` set.
///
/// # Safety
/// As for `hotplex_engine_new()`; `callback` must be NULL or a function with
/// the `hotplex_permission_callback` contract.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_new_with_permission(
    options_json: *const c_char,
    options_len: usize,
    callback: hotplex_permission_callback,
    user_data: *mut c_void,
    out: *mut *mut hotplex_engine,
) -> hotplex_status {
    let callbacks = hotplex_engine_callbacks {
        permission: callback,
        permission_data: user_data,
        ..hotplex_engine_callbacks::none()
    };
    // SAFETY: caller's contract; `callbacks` is a complete struct.
    unsafe { hotplex_engine_new_with_callbacks(options_json, options_len, &callbacks, out) }
}

/// Releases an engine. Sessions are stopped in the background (each
/// process tree is still killed: by its supervisor, even after this
/// returns). Call `hotplex_engine_close()` first to wait for that. When
/// this returns the observer callback is not running and is never called
/// again; for a closed engine it first waits (up to 2 s) until the
/// observer has had the records still queued. Neither are the permission,
/// hook and tool callbacks (it waits for calls in flight, as
/// `hotplex_engine_close()` does). NULL is ignored.
///
/// Streams and callback turns of the engine may outlive it: their turns
/// end (`HOTPLEX_STATUS_CLOSED` or `_SESSION_DEAD`), a callback turn still
/// gets its final call and `destroy` (on a hotplex thread, possibly after
/// this returns), and the engine's threads stay until the last of them is
/// done.
///
/// # Safety
/// `e` must be NULL or an engine from `hotplex_engine_new()` not freed yet;
/// no other call may use it concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_free(e: *mut hotplex_engine) {
    if e.is_null() {
        return;
    }
    // SAFETY: caller's contract (documented above): a live box, ours now.
    let mut handle = unsafe { Box::from_raw(e) };
    let link = handle.observer.take();
    let drain = handle.engine.is_closed();
    let host = handle.host.clone();
    crate::error::value_guard((), move || drop(handle));
    // No permission, hook or tool call after this returns.
    crate::error::value_guard((), || host.shut());
    // Ended even if dropping the engine panicked: the promise about
    // `observer_data` holds regardless.
    if let Some(link) = link {
        crate::error::value_guard((), || link.finish(drain));
    }
}

/// Queues a turn on session `session_id` (created on first use) and writes
/// its stream to `*out`. `turn_options_json` (may be NULL/empty) is the
/// JSON form of the core's `TurnOptions`: `workdir` (NULL: the session's
/// current workdir), `timeout` (seconds), `waf_approved`,
/// `partial_messages`, `session` (the session's agent options from this
/// turn on, the schema's `SessionOptions`: `model`, `permission_mode`,
/// `system_prompt`, `append_system_prompt`, `allowed_tools`,
/// `disallowed_tools`, `add_dirs`, `max_turns`, `max_budget_usd`,
/// `json_schema` (the turn's `structured_output` then carries the answer),
/// `fallback_model`, `effort`, `agents`, `settings`, `setting_sources`,
/// `mcp_config`, `plugin_dirs`, `env`, `config_dir`; options that differ
/// from those the session's process runs with restart it, resuming the
/// conversation), `instructions` (task instructions sent with the prompt)
/// and `images` (`[{"media_type": "image/png", "data": "<base64>"}]`).
///
/// Fails at once with `HOTPLEX_STATUS_DANGER_BLOCKED` for a prompt the WAF
/// blocks (`hotplex_last_error_detail()` holds the verdict),
/// `CAPACITY_EXCEEDED`, `INVALID_CONFIG` or `CLOSED`. See
/// `hotplex_engine_start()` for the form that reports all of these through
/// the stream.
///
/// # Safety
/// `e` must be NULL or a live engine; each string must be NULL or point to
/// its length in readable bytes; `out` must be NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_submit(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    prompt: *const c_char,
    prompt_len: usize,
    turn_options_json: *const c_char,
    turn_options_len: usize,
    out: *mut *mut hotplex_turn_stream,
) -> hotplex_status {
    let args = (session_id, session_id_len, prompt, prompt_len);
    // SAFETY: caller's contract.
    unsafe { queue(e, args, (turn_options_json, turn_options_len), out, false) }
}

/// Like `hotplex_engine_submit()`, but fails only for bad arguments (a NULL
/// pointer, text that is not UTF-8, turn options that are not valid):
/// everything else is the stream's outcome, returned by
/// `hotplex_turn_stream_finish()`. A prompt the WAF blocks yields a
/// `danger_block` event first, then finishes with
/// `HOTPLEX_STATUS_DANGER_BLOCKED`. This is the shape of every binding's
/// `execute`.
///
/// # Safety
/// As for `hotplex_engine_submit()`.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_start(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    prompt: *const c_char,
    prompt_len: usize,
    turn_options_json: *const c_char,
    turn_options_len: usize,
    out: *mut *mut hotplex_turn_stream,
) -> hotplex_status {
    let args = (session_id, session_id_len, prompt, prompt_len);
    // SAFETY: caller's contract.
    unsafe { queue(e, args, (turn_options_json, turn_options_len), out, true) }
}

/// The body of `_submit` (`start == false`) and `_start`.
///
/// # Safety
/// As for `hotplex_engine_submit()`.
unsafe fn queue(
    e: *const hotplex_engine,
    args: (*const c_char, usize, *const c_char, usize),
    topts: (*const c_char, usize),
    out: *mut *mut hotplex_turn_stream,
    start: bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract (all pointer arguments).
        let e = unsafe { borrow(e, "engine") }?;
        check_out(out, "out")?;
        // SAFETY: as above.
        let stream = unsafe { core_stream(e, args, topts, start) }?;
        let handle = Box::new(turn::polled_stream(&e.rt, stream));
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(handle)) };
        Ok(())
    })
}

/// Reads a turn's arguments and queues it in the core.
///
/// # Safety
/// Each string must be NULL or point to its length in readable bytes.
unsafe fn core_stream(
    e: &hotplex_engine,
    (id, id_len, prompt, prompt_len): (*const c_char, usize, *const c_char, usize),
    (topts, topts_len): (*const c_char, usize),
    start: bool,
) -> Result<TurnStream, Failure> {
    // SAFETY: caller's contract.
    let id = unsafe { str_arg(id, id_len, "session_id") }?;
    // SAFETY: as above.
    let prompt = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
    // SAFETY: as above.
    let topts = unsafe { str_arg(topts, topts_len, "turn_options_json") }?;
    let topts = TurnOptions::from_json(&json_arg(topts, "turn_options_json")?)?;
    Ok(if start {
        e.engine.start(id, prompt, &topts)
    } else {
        e.engine.submit(id, prompt, &topts)?
    })
}

/// Starts a turn like `hotplex_engine_start()`, but delivers it to
/// callbacks instead of a stream to read: each event, in order, to
/// `on_event(user_data, event_json, len)` (may be NULL: events are
/// dropped), then one final `on_done(user_data, status, text, len)` (may be
/// NULL) with the turn or its failure, then `destroy(user_data)` (may be
/// NULL). All of them run on one of the engine's threads; see
/// `hotplex_event_callback` and `hotplex_done_callback` for what they may
/// do there.
///
/// `destroy` is called exactly once in every case: after `on_done` when
/// the turn ends (completed, failed, cancelled, or its engine freed: then
/// `on_done` gets `HOTPLEX_STATUS_CLOSED` or `_SESSION_DEAD`), and when
/// this function fails (bad arguments, as for `hotplex_engine_start()`),
/// before it returns, on the calling thread, without `on_done`. So
/// `user_data` must stay valid, and usable from the engine's threads, until
/// `destroy` is called (with `destroy` NULL: until `on_done` has returned).
///
/// `out` may be NULL: nobody can cancel the turn then (it runs to its end,
/// or until its session is stopped or the engine closed or freed).
/// Otherwise `*out` is a handle for `hotplex_turn_stream_cancel()` (from any
/// thread, also from the callbacks) and `hotplex_turn_stream_free()`
/// (which cancels a turn still running, like freeing any stream; the final
/// callback and `destroy` still follow, possibly after free returns); the
/// reading calls (`_next()`, `_finish()`, `_fd()`) fail on it with
/// `HOTPLEX_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// As for `hotplex_engine_start()`, except that `out` may be NULL; each
/// callback must be NULL or a function with its typedef's contract.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_start_with_callback(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    prompt: *const c_char,
    prompt_len: usize,
    turn_options_json: *const c_char,
    turn_options_len: usize,
    on_event: hotplex_event_callback,
    on_done: hotplex_done_callback,
    user_data: *mut c_void,
    destroy: hotplex_destroy_callback,
    out: *mut *mut hotplex_turn_stream,
) -> hotplex_status {
    // Owned from here: whatever happens below, dropping it calls destroy.
    let sink = turn::Callbacks {
        on_event,
        on_done,
        user_data,
        destroy,
    }
    .into_sink();
    guard(move || {
        // SAFETY: caller's contract (all pointer arguments).
        let e = unsafe { borrow(e, "engine") }?;
        let args = (session_id, session_id_len, prompt, prompt_len);
        // SAFETY: as above.
        let stream = unsafe { core_stream(e, args, (turn_options_json, turn_options_len), true) }?;
        if let Some(handle) = turn::callback_turn(&e.rt, stream, sink, !out.is_null()) {
            // SAFETY: a handle is made only for a non-NULL `out`; the
            // caller guarantees validity.
            unsafe { write_out(out, Box::into_raw(Box::new(handle))) };
        }
        Ok(())
    })
}

/// Writes a JSON array of session snapshots (the schema's `SessionInfo`:
/// `id`, `pid` or null, `status` "starting"/"ready"/"busy"/"dead", `turns`,
/// `pending`, `workdir`, `idle_ms`, ...) to `*json` (release with
/// `hotplex_string_free()`).
///
/// # Safety
/// `e` must be NULL or a live engine; `json` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_sessions(
    e: *const hotplex_engine,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        let list: Vec<Value> = e.engine.sessions().iter().map(|s| s.to_json()).collect();
        write_json(json, &Value::Array(list));
        Ok(())
    })
}

/// Writes a session's totals as a JSON object (the schema's
/// `SessionStats`: `turns`, `failed_turns`, `cold_starts`, token counts,
/// `cost_usd`, ...), or
/// `null` for an unknown id, to `*json` (release with
/// `hotplex_string_free()`).
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `json` must be NULL or valid for writing
/// a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_session_stats(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let stats = e
            .engine
            .session_stats(id)
            .map_or(Value::Null, |s| s.to_json());
        write_json(json, &stats);
        Ok(())
    })
}

/// Stops a session: its running and queued turns end with
/// `SESSION_DEAD`, its process tree is killed (returns once confirmed
/// gone). `*existed` tells whether the session existed (may be NULL).
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `existed` must be NULL or valid for
/// writing a bool.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_stop_session(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    existed: *mut bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let was = e.rt().block_on(e.engine.stop_session(id));
        if !existed.is_null() {
            // SAFETY: non-NULL; the caller guarantees validity.
            unsafe { write_out(existed, was) };
        }
        Ok(())
    })
}

/// Writes the engine's metrics as OpenMetrics text (what a Prometheus
/// scrape of `/metrics` returns, ending with `# EOF`; the host serves it
/// where it likes) to `*text` (release with `hotplex_string_free()`). The
/// families are those of the schema's `x-hotplex-metrics`
/// (`hotplex_turns_total{outcome="ok"}`, `hotplex_turn_duration_seconds`,
/// ...). Each engine has its own counters, starting at zero.
///
/// # Safety
/// `e` must be NULL or a live engine; `text` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_metrics_text(
    e: *const hotplex_engine,
    text: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(text, "text")?;
        let raw = c_string(&e.engine.metrics_text()).into_raw();
        // SAFETY: checked non-NULL.
        unsafe { write_out(text, raw) };
        Ok(())
    })
}

/// Writes the engine's metrics as JSON to `*json_out` (release with
/// `hotplex_string_free()`): an array of families `{"name", "type"
/// ("counter", "gauge", "histogram", "info"), "help", "samples"}`, each
/// sample `{"name", "labels": {...}, "value"}` as in the text (histograms
/// as their `_bucket` samples with `le`, `_sum` and `_count`; a value that
/// is not finite is null).
///
/// # Safety
/// `e` must be NULL or a live engine; `json_out` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_metrics_snapshot(
    e: *const hotplex_engine,
    json_out: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json_out, "json_out")?;
        write_json(json_out, &e.engine.metrics_snapshot());
        Ok(())
    })
}

/// Interrupts session `session_id`'s running turn, if any: the turn ends
/// with `HOTPLEX_STATUS_TURN_TIMEOUT` ("interrupted by the host") and the
/// process stays hot for the next one. `*was_running` (may be NULL) tells
/// whether a turn was running. Fails with `HOTPLEX_STATUS_SESSION_NOT_FOUND`
/// for a session not in the pool, `CONTROL_FAILED` when the agent does not
/// answer within the engine's `control_timeout`, `CLOSED`.
///
/// Like every live control below it blocks the calling thread until the
/// agent answered (at most `control_timeout`), may be called from any
/// thread concurrently with the engine's other calls, also while a turn of
/// the same session runs, but not from inside one of the engine's
/// callbacks. For example:
///
/// ```c
/// bool was_running = false;
/// hotplex_engine_interrupt(e, "chat-42", 7, &was_running);
/// hotplex_engine_set_model(e, "chat-42", 7, "claude-sonnet-4-5", 17);
/// char *usage = NULL; // {"totalTokens": ..., "maxTokens": ..., ...}
/// if (hotplex_engine_context_usage(e, "chat-42", 7, &usage) == HOTPLEX_STATUS_OK)
///     hotplex_string_free(usage);
/// if (hotplex_engine_set_model(e, "chat-42", 7, NULL, 0) == HOTPLEX_STATUS_UNSUPPORTED)
///     ; // this agent version has no live controls
/// hotplex_engine_fork_session(e, "chat-42", 7, "chat-43", 7, NULL, 0); // chat-43: a copy
/// hotplex_engine_reset_session(e, "chat-42", 7, false);      // chat-42: starts over
/// ```
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `was_running` must be NULL or valid for
/// writing a bool.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_interrupt(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    was_running: *mut bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let was = e.rt().block_on(e.engine.interrupt(id))?;
        if !was_running.is_null() {
            // SAFETY: non-NULL; the caller guarantees validity.
            unsafe { write_out(was_running, was) };
        }
        Ok(())
    })
}

/// Switches session `session_id`'s model on its running process (between
/// turns or during one, without a restart; the agent's `set_model`
/// control); the session keeps it across restarts, and a session without a
/// process takes it at its next start. `model` NULL or empty: the agent's
/// default model. Fails with `HOTPLEX_STATUS_SESSION_NOT_FOUND`,
/// `UNSUPPORTED` (the agent's version has no such control),
/// `CONTROL_FAILED` (the agent refused it, or did not answer within
/// `control_timeout`), `CLOSED`. Threads: as for
/// `hotplex_engine_interrupt()`.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` and `model` must each be
/// NULL or point to their length in readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_set_model(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    model: *const c_char,
    model_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let model = unsafe { str_arg(model, model_len, "model") }?;
        let model = (!model.is_empty()).then_some(model);
        e.rt().block_on(e.engine.set_model(id, model))?;
        Ok(())
    })
}

/// Switches session `session_id`'s permission mode (`default`,
/// `acceptEdits`, `plan`, `bypassPermissions`, ...) like
/// `hotplex_engine_set_model()` does the model. An empty `mode` is
/// `HOTPLEX_STATUS_INVALID_ARGUMENT`; the other failures and the threads
/// are those of `hotplex_engine_set_model()`.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` and `mode` must each be
/// NULL or point to their length in readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_set_permission_mode(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    mode: *const c_char,
    mode_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let mode = unsafe { str_arg(mode, mode_len, "mode") }?;
        e.rt().block_on(e.engine.set_permission_mode(id, mode))?;
        Ok(())
    })
}

/// Answers question `question_id` (the `question_id` of an
/// `ask_user_question` event) that session `session_id`'s agent waits on.
/// `answers_json` is a JSON object mapping each question (its text, its
/// `header`, or its index as a string) to the chosen label, or to a list of
/// labels for a `multi_select` question, e.g. `{"Which color?": "Blue",
/// "Which sizes?": ["S", "L"]}`; a JSON list answers the questions in order.
/// The answer may come from any thread, minutes after the event: the turn's
/// timeout does not run while a question waits (the engine's
/// `question_timeout` does).
///
/// Fails with `HOTPLEX_STATUS_QUESTION_NOT_FOUND` when no such question
/// waits (answered, cancelled by an interrupt or a stopped session, timed
/// out, or the session is not in the pool), `INVALID_ANSWER` for an answer
/// that names no question, picks several options of a single-choice
/// question, is empty or is not JSON (the question still waits), `CLOSED`.
/// Threads: as for `hotplex_engine_interrupt()`.
///
/// ```c
/// const char *a = "{\"Which color?\": \"Blue\"}";
/// hotplex_engine_answer_question(e, "chat-42", 7, qid, strlen(qid), a, strlen(a));
/// ```
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id`, `question_id` and
/// `answers_json` must each be NULL or point to their length in readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_answer_question(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    question_id: *const c_char,
    question_id_len: usize,
    answers_json: *const c_char,
    answers_json_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let qid = unsafe { str_arg(question_id, question_id_len, "question_id") }?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(answers_json, answers_json_len, "answers_json") }?;
        let answers: Value = serde_json::from_str(text).map_err(|err| {
            Failure::new(
                hotplex_status::InvalidAnswer,
                format!("answers_json is not JSON: {err}"),
            )
        })?;
        e.rt()
            .block_on(e.engine.answer_question(id, qid, &answers))?;
        Ok(())
    })
}

/// Approves (`approved` true) or rejects the plan session `session_id`'s
/// agent proposed (an `exit_plan_mode` event). Approved, the agent leaves
/// plan mode and carries the plan out in permission mode `mode` (e.g.
/// `acceptEdits`; NULL or empty: the mode it had before plan mode).
/// Rejected, the agent reads `feedback` (NULL or empty: a generic
/// rejection) and usually proposes a revised plan in the same turn.
///
/// Fails with `HOTPLEX_STATUS_QUESTION_NOT_FOUND` when no plan waits,
/// `INVALID_ANSWER` for a `mode` with a rejection, `CLOSED`. Threads: as
/// for `hotplex_engine_interrupt()`.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id`, `feedback` and `mode`
/// must each be NULL or point to their length in readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_approve_plan(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    approved: bool,
    feedback: *const c_char,
    feedback_len: usize,
    mode: *const c_char,
    mode_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let feedback = unsafe { str_arg(feedback, feedback_len, "feedback") }?;
        // SAFETY: caller's contract.
        let mode = unsafe { str_arg(mode, mode_len, "mode") }?;
        let feedback = (!feedback.is_empty()).then_some(feedback);
        let mode = (!mode.is_empty()).then_some(mode);
        e.rt()
            .block_on(e.engine.approve_plan(id, approved, feedback, mode))?;
        Ok(())
    })
}

/// Writes how full session `session_id`'s context window is, as its agent
/// reports it (`get_context_usage`), to `*json` (release with
/// `hotplex_string_free()`): a JSON object such as `{"totalTokens": n,
/// "maxTokens": n, "percentage": x, "categories": [{"name", "tokens"},
/// ...]}` (the agent's keys; ignore those you do not know). Needs a running
/// process (`HOTPLEX_STATUS_SESSION_DEAD` otherwise); the other failures
/// and the threads are those of `hotplex_engine_set_model()`.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `json` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_context_usage(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let usage = e.rt().block_on(e.engine.context_usage(id))?;
        write_json(json, &usage);
        Ok(())
    })
}

/// Writes the state of session `session_id`'s MCP servers (the host's tool
/// servers among them), as its agent reports it (`mcp_status`), to `*json`
/// (release with `hotplex_string_free()`): a JSON object such as
/// `{"mcpServers": [{"name": "host", "status": "connected"}, ...]}`. Needs a
/// running process; failures and threads as for
/// `hotplex_engine_context_usage()`.
///
/// # Safety
/// As for `hotplex_engine_context_usage()`.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_mcp_status(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let status = e.rt().block_on(e.engine.mcp_status(id))?;
        write_json(json, &status);
        Ok(())
    })
}

/// Makes session `session_id` forget its conversation: its next turn
/// starts a new one (with a new provider session id, recorded like a resume
/// marker, so it holds for every engine sharing the `state_dir`). Turns
/// already queued on the session run first, in the old conversation; a
/// running process is then stopped. With `forget_transcript` the old
/// conversation's transcript is deleted too (best effort, where hotplex
/// knows the agent's configuration directory). Works whether or not the
/// session is in the pool (an id never used is fine). Returns once done.
/// Fails with `HOTPLEX_STATUS_INVALID_CONFIG` for an id that cannot be a
/// session id, `CLOSED`. Threads: as for `hotplex_engine_interrupt()`.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_reset_session(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    forget_transcript: bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        e.rt()
            .block_on(e.engine.reset_session(id, forget_transcript))?;
        Ok(())
    })
}

/// Makes session `new_id` a copy of session `session_id`'s conversation:
/// its first turn resumes that conversation under a new provider id (the
/// agent's `--fork-session`), in the same workdir, and from then on the two
/// continue separately (`session_id` is unchanged). With `at_message` (the
/// `message_uuid` of one of `session_id`'s turns; NULL or empty: the whole
/// conversation) the copy ends at that message. Does not start
/// anything: returns at once. Fails with `HOTPLEX_STATUS_SESSION_NOT_FOUND`
/// when `session_id` has no conversation yet (no turn completed),
/// `INVALID_ARGUMENT` when `new_id` is `session_id` or a session already in
/// the pool or `at_message` is not a message id, `INVALID_CONFIG` for an
/// id that cannot be a session id, `CLOSED`. May be called from any thread.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id`, `new_id` and
/// `at_message` must each be NULL or point to their length in readable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_fork_session(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    new_id: *const c_char,
    new_id_len: usize,
    at_message: *const c_char,
    at_message_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let new_id = unsafe { str_arg(new_id, new_id_len, "new_id") }?;
        // SAFETY: caller's contract.
        let at = unsafe { str_arg(at_message, at_message_len, "at_message") }?;
        e.engine
            .fork_session(id, new_id, (!at.is_empty()).then_some(at))?;
        Ok(())
    })
}

/// Adds, changes or removes a spare-process profile: the engine keeps
/// `spares` agent processes started for new conversations in `workdir`
/// with the session options `session`, so such a conversation's first turn
/// goes to a running process instead of starting one. `profile_json` is
/// the JSON form of the core's `PrewarmProfile` (`{"spares": 2,
/// "workdir": "/srv/app", "session": {"model": "..."}}`; the `prewarm`
/// engine option lists the first ones). A profile for the same workdir and
/// options is replaced; `"spares": 0` removes it. Returns at once: spares
/// start in the background and count toward `max_sessions`. Fails with
/// `HOTPLEX_STATUS_INVALID_CONFIG` (bad JSON or options, a workdir outside
/// the allowed roots) or `CLOSED`. May be called from any thread.
///
/// # Safety
/// `e` must be NULL or a live engine; `profile_json` must be NULL or point
/// to `profile_json_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_prewarm(
    e: *const hotplex_engine,
    profile_json: *const c_char,
    profile_json_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(profile_json, profile_json_len, "profile_json") }?;
        let profile = hotplex_core::PrewarmProfile::from_json(&json_arg(text, "profile_json")?)?;
        e.engine.prewarm(profile)?;
        Ok(())
    })
}

/// The longest `hotplex_engine_drain()` deadline accepted, in seconds
/// (about 136 years: "as long as it takes").
const MAX_DRAIN_SECONDS: f64 = u32::MAX as f64;

/// Writes whether session `session_id`'s turns belong to this engine to
/// `*owns`: without the `placement` option always true; with it, true while
/// this engine holds the session's current lease in the shared store (a
/// session never used anywhere belongs to nobody yet: false until its first
/// turn here, or `hotplex_engine_adopt()`, takes it; and false once
/// another host took it over). Fails with `HOTPLEX_STATUS_IO` when the
/// store cannot be read. Quick (it reads the lease file); may be called
/// from any thread, also from inside the engine's callbacks.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `owns` must be NULL or valid for
/// writing a bool.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_owns(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    owns: *mut bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(owns, "owns")?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let held = e.engine.owns(id)?;
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(owns, held) };
        Ok(())
    })
}

/// Takes session `session_id` for this engine before its first turn here
/// (`placement` only): its lease, and its conversation from the shared
/// store, written where the local agent finds it (in `workdir`, or with
/// `workdir` NULL or empty the session's usual workdir), so that the next
/// turn resumes it. Turns take a session on their own too; adopting first
/// moves the store's work out of the turn and says at once whether the
/// session can be had. A session this engine holds already is left as it
/// is. Fails with `HOTPLEX_STATUS_OWNED_ELSEWHERE` while another host holds
/// its lease (`hotplex_last_error_detail()` is `{"error":
/// "owned_elsewhere", "session": ..., "owner": ...}`, the owner being where
/// its turns belong), `INVALID_CONFIG` without the `placement` option, for
/// an id that cannot be a session id or a workdir outside the allowed
/// roots, `IO` when the store cannot be used. Blocks the calling thread for
/// the store's file work (a lock, a read, a write); may be called from any
/// thread.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` and `workdir` must each
/// be NULL or point to their length in readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_adopt(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    workdir: *const c_char,
    workdir_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: caller's contract.
        let workdir = unsafe { str_arg(workdir, workdir_len, "workdir") }?;
        let workdir = (!workdir.is_empty()).then(|| std::path::Path::new(workdir));
        e.engine.adopt(id, workdir)?;
        Ok(())
    })
}

/// Lets session `session_id` go (`placement` only), so that another host
/// can take it up at once: its running turn is interrupted, queued turns
/// fail, its process is stopped (stdin closed first, so that the agent
/// writes its transcript out), the transcript is saved to the store and the
/// lease released. `*released` (may be NULL) tells whether this engine held
/// the session. Fails with `HOTPLEX_STATUS_INVALID_CONFIG` without the
/// `placement` option, `FENCED` when the lease was lost meanwhile (another
/// host took the session; it is released here all the same), `IO` when the
/// store cannot be written. Blocks the calling thread until done; may be
/// called from any thread concurrently with the engine's other calls, but
/// not from inside one of the engine's callbacks.
///
/// # Safety
/// `e` must be NULL or a live engine; `session_id` must be NULL or point to
/// `session_id_len` readable bytes; `released` must be NULL or valid for
/// writing a bool.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_release(
    e: *const hotplex_engine,
    session_id: *const c_char,
    session_id_len: usize,
    released: *mut bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        // SAFETY: caller's contract.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        let held = e.rt().block_on(e.engine.release(id))?;
        if !released.is_null() {
            // SAFETY: non-NULL; the caller guarantees validity.
            unsafe { write_out(released, held) };
        }
        Ok(())
    })
}

/// Drains the engine for a shutdown or a move (`placement` only): from now
/// on it takes no new session (their turns fail with
/// `HOTPLEX_STATUS_CAPACITY_EXCEEDED`), running and queued turns get
/// `deadline_seconds` (0: none) to finish, then every session it holds is
/// released as by `hotplex_engine_release()`. Writes the ids released, a
/// JSON array of strings sorted (`["chat-1","chat-7"]`), to `*json`
/// (release with `hotplex_string_free()`). A `deadline_seconds` that is
/// negative, not finite or over 2^32 is `HOTPLEX_STATUS_INVALID_ARGUMENT`;
/// the other failures are those of `hotplex_engine_release()` (the engine
/// stays draining after one). `hotplex_engine_load()` reports `draining`.
/// Blocks the calling thread until done; threads as for
/// `hotplex_engine_release()`.
///
/// ```c
/// char *ids = NULL; // ["chat-1", ...]: the sessions other hosts may take now
/// if (hotplex_engine_drain(e, 30.0, &ids) == HOTPLEX_STATUS_OK)
///     hotplex_string_free(ids);
/// ```
///
/// # Safety
/// `e` must be NULL or a live engine; `json` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_drain(
    e: *const hotplex_engine,
    deadline_seconds: f64,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        if !(0.0..=MAX_DRAIN_SECONDS).contains(&deadline_seconds) {
            return Err(Failure::invalid_argument(format!(
                "deadline_seconds must be a number of seconds from 0 to 2^32, not {deadline_seconds}"
            )));
        }
        let deadline = std::time::Duration::from_secs_f64(deadline_seconds);
        let released = e.rt().block_on(e.engine.drain(deadline))?;
        write_json(json, &Value::from(released));
        Ok(())
    })
}

/// Writes the engine's load, for a balancer that places sessions across
/// hosts, as a JSON object to `*json` (release with
/// `hotplex_string_free()`): `{"sessions": n, "busy": n, "queued": n,
/// "free_slots": n, "spares": n, "agent_memory_bytes": n, "draining":
/// false}` (sessions in the pool, those running a turn, turns waiting
/// behind a running one, sessions the engine takes before it must evict,
/// spare processes, the resident memory of every agent process tree, and
/// whether `hotplex_engine_drain()` was called). Works with or without the
/// `placement` option; may be called from any thread.
///
/// # Safety
/// `e` must be NULL or a live engine; `json` must be NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_load(
    e: *const hotplex_engine,
    json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        check_out(json, "json")?;
        let load = serde_json::to_value(e.engine.load())
            .map_err(|err| Failure::new(hotplex_status::Io, format!("load: {err}")))?;
        write_json(json, &load);
        Ok(())
    })
}

/// Stops every session and waits until every process tree is confirmed
/// gone; afterwards submits fail with `HOTPLEX_STATUS_CLOSED`. When it
/// returns, no permission, hook or tool callback is running (it waits for
/// calls in flight, also one past its timeout) and none is called again.
/// Idempotent. The engine must still be freed.
///
/// # Safety
/// `e` must be NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_close(e: *const hotplex_engine) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        e.rt().block_on(e.engine.close());
        e.host.shut();
        Ok(())
    })
}
