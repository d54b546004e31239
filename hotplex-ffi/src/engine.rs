//! The session pool over the C ABI: `hotplex_engine` and
//! `hotplex_turn_stream`.
//!
//! Options, turns, events and session snapshots cross the boundary as JSON
//! (the same shapes as `Event::to_json` and friends in hotplex-core), which
//! keeps the ABI small and lets it grow without breaking: unknown keys in
//! results are to be ignored by callers, unknown option keys are rejected
//! (a typo must not silently fall back to a default).
//!
//! Each engine owns a small tokio runtime (two worker threads) on which its
//! sessions run. Blocking calls (`hotplex_turn_stream_next`, `_finish`,
//! `hotplex_engine_stop_session`, `hotplex_engine_close`) wait on the
//! calling thread; `hotplex_turn_stream_next` takes a timeout so a host can
//! poll for cancellation (Go's `context.Context`, a UI's stop button).
//! Freeing an unfinished stream cancels its turn (the agent is interrupted).

use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotplex_core::{Engine, EngineOptions, TurnOptions, TurnStream};
use serde_json::{Map, Value};

use crate::error::{
    borrow, borrow_mut, c_string, check_out, free_box, guard, str_arg, write_out, Failure,
};
use crate::hotplex_status;

/// A session pool (opaque). Create with `hotplex_engine_new()`, release
/// with `hotplex_engine_free()`.
pub struct hotplex_engine {
    /// Always `Some` until dropped (taken to shut it down without waiting).
    rt: Option<Arc<tokio::runtime::Runtime>>,
    engine: Engine,
}

impl hotplex_engine {
    fn rt(&self) -> &Arc<tokio::runtime::Runtime> {
        self.rt
            .as_ref()
            .expect("the runtime lives as long as the engine")
    }
}

/// The events and outcome of one submitted turn (opaque). Create with
/// `hotplex_engine_submit()`, release with `hotplex_turn_stream_free()`.
pub struct hotplex_turn_stream {
    rt: Arc<tokio::runtime::Runtime>,
    stream: Option<TurnStream>,
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure {
        status: hotplex_status::InvalidConfig,
        message: msg.into(),
        detail: None,
    }
}

fn seconds(v: &Value, key: &str) -> Result<Duration, Failure> {
    v.as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| bad(format!("{key} must be a positive number of seconds")))
}

fn string(v: &Value, key: &str) -> Result<String, Failure> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("{key} must be a string")))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, Failure> {
    v.as_array()
        .ok_or_else(|| bad(format!("{key} must be an array of strings")))?
        .iter()
        .map(|s| string(s, key))
        .collect()
}

fn count(v: &Value, key: &str) -> Result<usize, Failure> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| bad(format!("{key} must be a non-negative integer")))
}

fn json_object(text: &str, what: &str) -> Result<Map<String, Value>, Failure> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad(format!("{what} must be a JSON object"))),
        Err(e) => Err(bad(format!("{what} is not valid JSON: {e}"))),
    }
}

/// Engine options from their JSON form (keys as in Python's `Engine`).
fn engine_options(m: &Map<String, Value>) -> Result<EngineOptions, Failure> {
    let mut o = EngineOptions::default();
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "binary" => o.binary = string(v, k)?.into(),
            "args" => o.args = strings(v, k)?,
            "env" => {
                let env = v
                    .as_object()
                    .ok_or_else(|| bad("env must be an object of strings"))?;
                for (name, value) in env {
                    o.env.push((name.clone(), string(value, "env values")?));
                }
            }
            "env_allow" => o.env_allow = strings(v, k)?,
            "max_sessions" => o.max_sessions = count(v, k)?,
            "max_concurrent_starts" => o.max_concurrent_starts = count(v, k)?,
            "max_prompt_bytes" => o.max_prompt_bytes = count(v, k)?,
            "idle_timeout" => o.idle_timeout = seconds(v, k)?,
            "turn_timeout" => o.turn_timeout = seconds(v, k)?,
            "startup_timeout" => o.startup_timeout = seconds(v, k)?,
            "interrupt_grace" => o.interrupt_grace = seconds(v, k)?,
            "state_dir" => o.state_dir = Some(string(v, k)?.into()),
            "namespace" => o.namespace = string(v, k)?,
            "permission_mode" => o.permission_mode = Some(string(v, k)?),
            "allowed_tools" => o.allowed_tools = strings(v, k)?,
            "disallowed_tools" => o.disallowed_tools = strings(v, k)?,
            "system_prompt" => o.system_prompt = Some(string(v, k)?),
            "model" => o.model = Some(string(v, k)?),
            "allowed_roots" => {
                o.allowed_roots = strings(v, k)?.into_iter().map(PathBuf::from).collect()
            }
            "default_workdir" => o.default_workdir = Some(string(v, k)?.into()),
            other => return Err(bad(format!("unknown engine option {other:?}"))),
        }
    }
    Ok(o)
}

fn turn_options(m: &Map<String, Value>) -> Result<TurnOptions, Failure> {
    let mut t = TurnOptions::default();
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "workdir" => t.workdir = Some(string(v, k)?.into()),
            "timeout" => t.timeout = Some(seconds(v, k)?),
            "waf_approved" => {
                t.waf_approved = v
                    .as_bool()
                    .ok_or_else(|| bad("waf_approved must be a bool"))?
            }
            other => return Err(bad(format!("unknown turn option {other:?}"))),
        }
    }
    Ok(t)
}

fn json_out(out: *mut *mut c_char, v: &Value) {
    let raw = c_string(&v.to_string()).into_raw();
    // SAFETY: every caller checked `out` with check_out first.
    unsafe { write_out(out, raw) };
}

/// Creates an engine. `options_json` (may be NULL/empty for the defaults) is
/// a JSON object with the keys of Python's `hotplex.Engine`: `binary`,
/// `args`, `env` (object), `env_allow`, `max_sessions`,
/// `max_concurrent_starts`, `max_prompt_bytes`, `idle_timeout`,
/// `turn_timeout`, `startup_timeout`, `interrupt_grace` (seconds, numbers),
/// `state_dir`, `namespace`, `permission_mode`, `allowed_tools`,
/// `disallowed_tools`, `system_prompt`, `model`, `allowed_roots`,
/// `default_workdir`. Unknown keys and bad values fail with
/// `HOTPLEX_STATUS_INVALID_CONFIG`. The WAF is the built-in detector.
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
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(options_json, options_len, "options_json") }?;
        let opts = engine_options(&json_object(text, "options_json")?)?;
        let (engine, rt) = Engine::with_own_runtime(opts).map_err(Failure::from)?;
        let handle = Box::new(hotplex_engine {
            rt: Some(Arc::new(rt)),
            engine,
        });
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(handle)) };
        Ok(())
    })
}

/// Releases an engine. Sessions are stopped in the background (each
/// process tree is still killed: by its supervisor, even after this
/// returns). Call `hotplex_engine_close()` first to wait for that. NULL is
/// ignored.
///
/// # Safety
/// `e` must be NULL or an engine from `hotplex_engine_new()` not freed yet;
/// no other call may use it concurrently or afterwards.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_free(e: *mut hotplex_engine) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(e) }
}

impl Drop for hotplex_engine {
    fn drop(&mut self) {
        // The engine's actors stop on their own (each kills its tree); the
        // runtime must not block this thread waiting for them. Streams still
        // alive keep it (and their turns) running until they are freed.
        if let Some(Ok(rt)) = self.rt.take().map(Arc::try_unwrap) {
            rt.shutdown_background();
        }
    }
}

/// Queues a turn on session `session_id` (created on first use) and writes
/// its stream to `*out`. `turn_options_json` (may be NULL/empty) is a JSON
/// object with `workdir`, `timeout` (seconds) and `waf_approved`.
///
/// Fails at once with `HOTPLEX_STATUS_DANGER_BLOCKED` for a prompt the WAF
/// blocks (`hotplex_last_error_detail()` holds the verdict),
/// `CAPACITY_EXCEEDED`, `INVALID_CONFIG` or `CLOSED`.
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
    guard(|| {
        // SAFETY: caller's contract (all pointer arguments).
        let e = unsafe { borrow(e, "engine") }?;
        check_out(out, "out")?;
        // SAFETY: as above.
        let id = unsafe { str_arg(session_id, session_id_len, "session_id") }?;
        // SAFETY: as above.
        let prompt = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
        // SAFETY: as above.
        let topts = unsafe { str_arg(turn_options_json, turn_options_len, "turn_options_json") }?;
        let topts = turn_options(&json_object(topts, "turn_options_json")?)?;
        let stream = e.engine.submit(id, prompt, &topts).map_err(Failure::from)?;
        let handle = Box::new(hotplex_turn_stream {
            rt: e.rt().clone(),
            stream: Some(stream),
        });
        // SAFETY: checked non-NULL.
        unsafe { write_out(out, Box::into_raw(handle)) };
        Ok(())
    })
}

/// Waits up to `timeout_ms` (negative: no limit) for the turn's next event.
/// On `HOTPLEX_STATUS_OK`, `*event_json` is an event object (`{"type":
/// "answer", "text": ...}`; release it with `hotplex_string_free()`), or
/// NULL once the turn is over: then call `hotplex_turn_stream_finish()`.
/// `HOTPLEX_STATUS_PENDING`: nothing arrived in time (nothing written).
///
/// # Safety
/// `s` must be NULL or a live stream used by one thread at a time;
/// `event_json` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_next(
    s: *mut hotplex_turn_stream,
    timeout_ms: i64,
    event_json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let s = unsafe { borrow_mut(s, "stream") }?;
        check_out(event_json, "event_json")?;
        let rt = s.rt.clone();
        let Some(stream) = s.stream.as_mut() else {
            return Err(Failure::invalid_argument("the stream was already finished"));
        };
        let next = if timeout_ms < 0 {
            Ok(rt.block_on(stream.next_event()))
        } else {
            let wait = Duration::from_millis(timeout_ms as u64);
            rt.block_on(async { tokio::time::timeout(wait, stream.next_event()).await })
        };
        match next {
            Ok(Some(ev)) => json_out(event_json, &ev.to_json()),
            // SAFETY: checked non-NULL.
            Ok(None) => unsafe { write_out(event_json, std::ptr::null_mut()) },
            Err(_) => {
                return Err(Failure {
                    status: hotplex_status::Pending,
                    message: "no event within the timeout".into(),
                    detail: None,
                })
            }
        }
        Ok(())
    })
}

/// Waits for the end of the turn (events not read yet are dropped) and
/// writes the turn as JSON to `*turn_json` (release with
/// `hotplex_string_free()`): `text`, `cold_start`, `resumed`,
/// `duration_ms`, `queued_ms`, `pid`, `provider_session_id`, `stats`
/// (`usage`, `cost_usd`, `tools`, `model`, ...) and `events`. A failed turn
/// returns its status (`TURN_TIMEOUT`, `SESSION_DEAD`, `TURN_FAILED` with
/// its subtype in `hotplex_last_error_detail()`, `START_FAILED`, `CLOSED`).
/// Either way the stream is spent: free it.
///
/// # Safety
/// `s` must be NULL or a live stream used by one thread at a time;
/// `turn_json` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_finish(
    s: *mut hotplex_turn_stream,
    turn_json: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let s = unsafe { borrow_mut(s, "stream") }?;
        check_out(turn_json, "turn_json")?;
        let stream = s
            .stream
            .take()
            .ok_or_else(|| Failure::invalid_argument("the stream was already finished"))?;
        let turn = s.rt.block_on(stream.finish()).map_err(Failure::from)?;
        json_out(turn_json, &turn.to_json());
        Ok(())
    })
}

/// Releases a stream; a turn still running is cancelled (the agent is
/// interrupted, the session stays usable). NULL is ignored.
///
/// # Safety
/// `s` must be NULL or a stream from `hotplex_engine_submit()` not freed
/// yet, not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn hotplex_turn_stream_free(s: *mut hotplex_turn_stream) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(s) }
}

/// Writes a JSON array of session snapshots (`id`, `pid` or null, `status`
/// "starting"/"ready"/"busy"/"dead", `turns`, `pending`, `workdir`,
/// `idle_ms`, `provider_session_id`) to `*json` (release with
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
        json_out(json, &Value::Array(list));
        Ok(())
    })
}

/// Writes a session's totals as a JSON object (`turns`, `failed_turns`,
/// `cold_starts`, `resumes`, token counts, `cost_usd`, `tool_calls`,
/// `tool_errors`, `tools_denied`, `busy_ms`, `bad_lines`, `model`), or
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
        json_out(json, &stats);
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

/// Stops every session and waits until every process tree is confirmed
/// gone; afterwards submits fail with `HOTPLEX_STATUS_CLOSED`. Idempotent.
/// The engine must still be freed.
///
/// # Safety
/// `e` must be NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn hotplex_engine_close(e: *const hotplex_engine) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let e = unsafe { borrow(e, "engine") }?;
        e.rt().block_on(e.engine.close());
        Ok(())
    })
}
