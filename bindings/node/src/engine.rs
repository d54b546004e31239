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
//! * **Thin.** Options are the core's: the JS object goes to
//!   `EngineOptions::from_json` / `TurnOptions::from_json` with its keys
//!   snake_cased (the callbacks `canUseTool` and `onEvent` stay JS
//!   functions); records come back as the core's JSON, camelCased (see
//!   [`crate::json`]). Defaults and validation live in the core only.
//! * **Runtime.** Sessions run on napi-rs's tokio runtime (feature
//!   `tokio_rt`), the one the addon's promises need anyway, rather than on a
//!   runtime owned by each `Engine` (as in the Python binding, where no
//!   runtime exists otherwise). One multi-thread runtime per process is
//!   started with the addon and shut down when the last Node environment
//!   using it exits, which is the lifetime agent processes should have: when
//!   the runtime drops a session's task, the containment lifeline closes and
//!   the supervisor kills the tree. An `Engine` collected without `close()`
//!   drops the core engine, which signals its actors, and they run their kill
//!   ladder on the still-running shared runtime.
//! * **Never blocking the event loop.** `Engine::start` / `submit` are
//!   synchronous and quick (validation, the WAF, a map insert); everything
//!   that waits is a future on the runtime whose result napi settles on the
//!   JS thread.
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
//! * **`signal`.** An `AbortSignal` in the options of `execute` and
//!   `stream` cancels the turn by dropping the core's `TurnStream` (the
//!   core then interrupts the agent, and kills it after `interruptGrace`);
//!   the turn rejects with an `AbortError` built on the JS thread when the
//!   signal fired. The listener is removed when the turn ends: see
//!   [`crate::abort`].
//! * **Idle means exit.** Nothing an idle engine holds is a strong handle
//!   on the event loop (`canUseTool`, hooks, tool handlers and `observer`
//!   are weak threadsafe functions; a turn's `onEvent` lives only while the turn runs), so a
//!   host whose work is done exits, `close()` called or not (the env
//!   cleanup hook then closes the engine).
//! * **Errors** are built on the JS thread, in the promise's settle callback,
//!   by [`crate::to_js_error_for`], so they carry `code` and their extra
//!   properties (`verdict`, `subtype`).
//! * **`canUseTool`, `hooks`, `tools`.** The host's functions the agent's
//!   requests reach, all called the same way (see [`crate::host`]): the core
//!   asks on a blocking runtime thread, the question is queued on a (weak)
//!   threadsafe function and the JS answer (a promise is awaited) waited
//!   for, bounded by a timeout. `canUseTool`'s answer goes to the core's
//!   `Permission::from_answer`; throwing, rejecting or not answering
//!   within the turn timeout denies.
//! * **Live controls** (`interrupt`, `setModel`, `setPermissionMode`,
//!   `contextUsage`, `mcpStatus`), the conversation lifecycle
//!   (`resetSession`, `forkSession`) and placement (`adopt`, `release`,
//!   `drain`; `owns` and `load` are quick and synchronous) are promises
//!   over the core's methods, rejecting with the core's errors
//!   (`HOTPLEX_SESSION_NOT_FOUND`, `HOTPLEX_UNSUPPORTED`,
//!   `HOTPLEX_CONTROL_FAILED`, `HOTPLEX_OWNED_ELSEWHERE`, ...).
//! * **`observer`.** Lifecycle records reach the JS function through a
//!   weak, bounded threadsafe function called without blocking: see
//!   [`crate::telemetry`].
//! * **Panics.** Synchronous methods run under `catch_unwind` (a panic
//!   becomes a thrown `HOTPLEX_PANIC`); futures are spawned by napi, which
//!   turns a panic into a rejection; the core catches panics of the
//!   permission handler (a denial).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex as StdMutex, Weak};

use hotplex_core as hc;
use napi::bindgen_prelude::{
    AsyncGenerator, FromNapiValue, Object, ObjectFinalize, PromiseRaw, ToNapiValue, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi::CleanupEnvHook;
use napi::{sys, Env, JsValue, Result, Status, ValueType};
use napi_derive::napi;
use serde_json::{Map, Value};
use tokio::sync::{oneshot, watch, Mutex as AsyncMutex};

use crate::abort::{abort_error, AbortSlot, RemoteDetach, Signal};
use crate::host;
use crate::json::{self, Events, OptionNames};
use crate::telemetry::{self, RecordCallback};
use crate::{js_error, to_js_error, to_js_error_for, Detector};

/// `onEvent`: called on the JS thread with each event; its return value is
/// ignored, and so is an exception (the call still counts as done).
type EventCallback = ThreadsafeFunction<Value, UnknownReturnValue, Value, Status, false>;

/// A JS options object split into its wire JSON for the core (top-level
/// keys snake_cased, `undefined` values left out) and its function-valued
/// options (`callbacks` names those the API has). Whatever is wrong with it
/// is `InvalidConfig` naming the option as the user wrote it.
struct JsOptions<'a> {
    wire: Value,
    callbacks: Vec<(&'static str, Unknown<'a>)>,
    /// Options holding functions inside (`hooks`, `tools`), as given.
    nested: Vec<(&'static str, Unknown<'a>)>,
    /// The `signal` of turn options (checked to be an `AbortSignal`).
    signal: Option<Signal<'a>>,
    names: OptionNames,
}

impl<'a> JsOptions<'a> {
    fn read(
        env: &Env,
        options: Option<Unknown<'a>>,
        what: &str,
        callbacks: &[&'static str],
        nested: &[&'static str],
    ) -> hc::Result<JsOptions<'a>> {
        let bad = |why: String| hc::Error::InvalidConfig(why);
        let napi_bad = |key: &str, e: napi::Error| bad(format!("{key}: {}", e.reason));
        let mut out = JsOptions {
            wire: Value::Null,
            callbacks: Vec::new(),
            nested: Vec::new(),
            signal: None,
            names: OptionNames::default(),
        };
        let Some(options) = options else {
            return Ok(out);
        };
        match options.get_type().map_err(|e| napi_bad(what, e))? {
            ValueType::Undefined | ValueType::Null => return Ok(out),
            ValueType::Object if !options.is_array().unwrap_or(true) => {}
            _ => return Err(bad(format!("{what} options must be an object"))),
        }
        // SAFETY: checked to be an object.
        let obj = unsafe { options.cast::<Object>() }.map_err(|e| napi_bad(what, e))?;
        let mut wire = Map::new();
        for key in Object::keys(&obj).map_err(|e| napi_bad(what, e))? {
            let Some(value) = obj.get::<Unknown>(&key).map_err(|e| napi_bad(&key, e))? else {
                continue; // `undefined`: the core's default.
            };
            if let Some(name) = callbacks.iter().find(|c| **c == key) {
                match value.get_type().ok() {
                    Some(ValueType::Function) => out.callbacks.push((name, value)),
                    Some(ValueType::Null) => {}
                    _ => return Err(bad(format!("{key}: must be a function"))),
                }
                continue;
            }
            if let Some(name) = nested.iter().find(|n| **n == key) {
                if value.get_type().ok() != Some(ValueType::Null) {
                    out.nested.push((name, value));
                }
                continue;
            }
            if key == "signal" && what == "turn" {
                if value.get_type().ok() != Some(ValueType::Null) {
                    let signal = Signal::read(value)
                        .ok_or_else(|| bad("signal: must be an AbortSignal".to_owned()))?;
                    out.signal = Some(signal);
                }
                continue;
            }
            let Some(wire_key) = out.names.wire(&key) else {
                return Err(bad(format!(
                    "{what} options: unknown field `{key}` (options are camelCase)"
                )));
            };
            // SAFETY: a live value of this env, on its thread.
            let json = unsafe { Value::from_napi_value(env.raw(), value.raw()) }
                .map_err(|e| bad(format!("{key}: not a JSON value ({})", e.reason)))?;
            let json = json::nested_wire(&key, json::whole_numbers(json))?;
            wire.insert(wire_key, json);
        }
        out.wire = Value::Object(wire);
        Ok(out)
    }

    /// The option `name` holding functions inside, as given.
    fn nested(&self, name: &str) -> Option<Unknown<'a>> {
        self.nested
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The function-valued option `name` as napi type `F`.
    fn callback<F: FromNapiValue>(&self, env: &Env, name: &str) -> Result<Option<F>> {
        self.callbacks
            .iter()
            .find(|(n, _)| *n == name)
            // SAFETY: a live function of this env, on its thread.
            .map(|(_, f)| unsafe { F::from_napi_value(env.raw(), f.raw()) })
            .transpose()
    }
}

/// The core's turn options from a JS options object; `callbacks` names the
/// function-valued options allowed (`onEvent` of `execute`).
fn turn_options<'a>(
    env: &Env,
    options: Option<Unknown<'a>>,
    callbacks: &[&'static str],
) -> hc::Result<(hc::TurnOptions, JsOptions<'a>)> {
    let o = JsOptions::read(env, options, "turn", callbacks, &[])?;
    let turn = hc::TurnOptions::from_json(&o.wire).map_err(|e| o.names.rename(e))?;
    Ok((turn, o))
}

/// How an `execute` turn ended: on its own, or by its signal.
enum Outcome {
    /// Boxed: a turn is large, and the enum moves between threads.
    Done(Box<hc::Result<hc::Turn>>),
    Aborted,
}

/// Runs `f` and turns a panic into a `HOTPLEX_PANIC` error.
fn guard<T>(env: &Env, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        let msg = "hotplex: internal error (a panic was caught)";
        Err(js_error(env, hc::ErrorCode::Panic, msg, |_| Ok(())))
    })
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
/// Agents that speak the Agent Client Protocol run the same way with
/// `provider: 'acp'`, `binary` and `args` being the agent's command line
/// (`new Engine({ provider: 'acp', binary: 'opencode', args: ['acp'] })`);
/// a session may pick its own (`session: { provider, binary, args }`). An
/// `acp` engine or session refuses the options only Claude Code takes
/// (`model`, `permissionMode`, ...) with `HOTPLEX_INVALID_CONFIG` naming them.
///
/// Errors are `Error`s with a `code` from `ErrorCode` (`HotplexError`):
/// `HOTPLEX_INVALID_CONFIG`, `HOTPLEX_DANGER_BLOCKED` (with `verdict`),
/// `HOTPLEX_TURN_FAILED` (with `subtype`), `HOTPLEX_TURN_TIMEOUT`, ...
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
    /// Builds an engine; no process starts until the first turn, but the
    /// agent binary is looked up now. Throws `HOTPLEX_INVALID_CONFIG` for a
    /// bad option (the message names it) or a binary that is not found.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "EngineOptions | undefined | null")] options: Option<Unknown>,
    ) -> Result<Self> {
        guard(&env, || {
            let fail = |e| to_js_error(&env, e);
            let callbacks = ["canUseTool", "observer"];
            let o = JsOptions::read(&env, options, "engine", &callbacks, &["hooks", "tools"])
                .map_err(fail)?;
            let mut opts =
                hc::EngineOptions::from_json(&o.wire).map_err(|e| fail(o.names.rename(e)))?;
            if let Some(cb) = o.callback::<host::PermissionFn>(&env, "canUseTool")? {
                opts.permission_handler = Some(host::permission_handler(cb, opts.turn_timeout));
            }
            if let Some(hooks) = o.nested("hooks") {
                let hooks = host::Hooks::read(&env, hooks).map_err(fail)?;
                opts.hooks = hooks.specs.clone();
                opts.hook_handler = hooks.handler();
            }
            if let Some(tools) = o.nested("tools") {
                let tools = host::Tools::read(&env, tools).map_err(fail)?;
                opts.tools = tools.servers.clone();
                opts.tool_handler = tools.handler(opts.turn_timeout);
            }
            if let Some(cb) = o.callback::<RecordCallback>(&env, "observer")? {
                // Records the JS hop drops count with the core's.
                let drops = hc::telemetry::DropCounter::new();
                opts.observer = Some(telemetry::observer(cb, drops.clone()));
                opts.observer_drops = Some(drops);
            }
            // The core spawns its tasks on the runtime of the calling
            // context: napi's (see the module docs).
            let made = catch_unwind(AssertUnwindSafe(|| {
                napi::bindgen_prelude::within_runtime_if_available(|| {
                    hc::Engine::new(opts).map(|e| (e, tokio::runtime::Handle::try_current().ok()))
                })
            }))
            .map_err(|_| {
                let msg = "hotplex: the async runtime is not available";
                js_error(&env, hc::ErrorCode::Panic, msg, |_| Ok(()))
            })?;
            let (core, rt) = made.map_err(|e| fail(o.names.rename(e)))?;
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
    /// one at a time, in call order; sessions run in parallel. A turn
    /// without `workdir` runs in the session's workdir. Rejects with
    /// `HOTPLEX_DANGER_BLOCKED` (the WAF blocked the prompt; `onEvent` sees
    /// a `danger_block` event first), `HOTPLEX_TURN_TIMEOUT`,
    /// `HOTPLEX_SESSION_DEAD`, `HOTPLEX_TURN_FAILED`,
    /// `HOTPLEX_CAPACITY_EXCEEDED`, `HOTPLEX_START_FAILED`,
    /// `HOTPLEX_INVALID_CONFIG`, `HOTPLEX_CLOSED`, ... (see `ErrorCode`).
    ///
    /// With `signal` (an `AbortSignal`), aborting cancels the turn (the
    /// agent is interrupted; a clean interrupt keeps the session hot) and
    /// the promise rejects at once with an `AbortError` (`name`
    /// `'AbortError'`, `code` `'ABORT_ERR'`, `cause` the signal's reason);
    /// an already aborted signal rejects without running the turn.
    #[napi(ts_return_type = "Promise<Turn>")]
    pub fn execute<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        prompt: String,
        #[napi(ts_arg_type = "ExecuteOptions | undefined | null")] options: Option<Unknown>,
    ) -> Result<PromiseRaw<'env, Value>> {
        guard(env, || {
            let slot = AbortSlot::new();
            // The options as the user spelled them: a turn the core refuses
            // for an option (`session.maxTurns: ...`) names it so. (None for
            // options that could not be read: that error names them already.)
            let mut names = None;
            let (stream, on_event, detach) = match turn_options(env, options, &["onEvent"]) {
                Ok((turn, mut o)) => {
                    names = Some(std::mem::take(&mut o.names));
                    let on_event = o.callback::<EventCallback>(env, "onEvent")?;
                    let detach = match &o.signal {
                        Some(signal) => {
                            if let Some(err) = signal.aborted(env)? {
                                // Already aborted: the turn never starts.
                                return env
                                    .spawn_future_with_callback(async { Ok(()) }, move |_, ()| {
                                        Err::<Value, _>(err)
                                    });
                            }
                            let slot = Arc::clone(&slot);
                            Some(signal.attach(env, move |err| slot.fire(err))?)
                        }
                        None => None,
                    };
                    (
                        Ok(self.core.start(&session_id, &prompt, &turn)),
                        on_event,
                        detach,
                    )
                }
                Err(e) => (Err(e), None, None),
            };
            let prompt: Arc<str> = prompt.into();
            let mut events = Events::new(Arc::clone(&prompt));
            // Keeps the pool alive while the turn runs, even if the JS
            // Engine is collected meanwhile.
            let engine = Arc::clone(&self.core);
            let fired = Arc::clone(&slot);
            let turn = async move {
                let _engine = engine;
                let mut stream = match stream {
                    Ok(s) => s,
                    Err(e) => return Ok(Outcome::Done(Box::new(Err(e)))),
                };
                let run = async {
                    while let Some(e) = stream.next_event().await {
                        if let Some(cb) = &on_event {
                            // Resolves once the callback returned (or threw)
                            // on the JS thread.
                            let _ = cb.call_async_catch(events.js(&e)).await;
                        }
                    }
                    stream.finish().await
                };
                tokio::select! {
                    biased;
                    // Dropping the core stream (at the end of this block)
                    // cancels the turn: interrupt, grace, kill ladder.
                    _ = fired.wait() => Ok(Outcome::Aborted),
                    outcome = run => Ok(Outcome::Done(Box::new(outcome))),
                }
            };
            env.spawn_future_with_callback(turn, move |env, outcome| {
                // The turn is over: its signal no longer needs a listener.
                if let Some(d) = detach {
                    d.run(env);
                }
                match outcome {
                    Outcome::Done(done) => match *done {
                        Ok(t) => Ok(json::turn(&t, &prompt)),
                        Err(e) => {
                            let e = match &names {
                                Some(names) => names.rename(e),
                                None => e,
                            };
                            Err(to_js_error_for(env, e, &prompt))
                        }
                    },
                    Outcome::Aborted => Err(slot.take().unwrap_or_else(|| abort_error(env, None))),
                }
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
    /// error (the same codes as `execute`; the first `next()` with an error
    /// of queueing it, such as a blocked prompt). Leaving the loop early (or
    /// `stream.cancel()`) cancels the turn: the agent is interrupted.
    /// Aborting `signal` cancels it too, and the iteration then rejects with
    /// an `AbortError` (as `execute`); an already aborted signal never
    /// queues the turn.
    #[napi]
    pub fn stream(
        &self,
        env: Env,
        session_id: String,
        prompt: String,
        #[napi(ts_arg_type = "StreamOptions | undefined | null")] options: Option<Unknown>,
    ) -> Result<TurnStream> {
        guard(&env, || {
            let mut signal = None;
            let mut aborted = None;
            let submitted = match turn_options(&env, options, &[]) {
                Ok((turn, o)) => {
                    signal = o.signal;
                    if let Some(s) = &signal {
                        aborted = s.aborted(&env)?;
                    }
                    // Already aborted: the turn is never queued.
                    match aborted {
                        Some(_) => None,
                        // Named as the user spelled the options, as execute's.
                        None => Some(
                            self.core
                                .submit(&session_id, &prompt, &turn)
                                .map_err(|e| o.names.rename(e)),
                        ),
                    }
                }
                Err(e) => Some(Err(e)),
            };
            let prompt: Arc<str> = prompt.into();
            let state = match submitted {
                Some(Ok(s)) => {
                    let events = Events::new(Arc::clone(&prompt));
                    StreamState::Running(Box::new(s), Arc::clone(&self.core), events)
                }
                Some(Err(e)) => StreamState::Failed(e),
                None => StreamState::Over,
            };
            let stream = TurnStream::new(state, prompt);
            if let Some(err) = aborted {
                stream.shared.abort(err);
            } else if let Some(s) = signal {
                // Weak: a signal that outlives the stream does not keep it.
                let shared = Arc::downgrade(&stream.shared);
                let detach = s.attach(&env, move |err| {
                    if let Some(shared) = shared.upgrade() {
                        shared.abort(err);
                    }
                })?;
                *lock(&stream.shared.detach) = Some(detach.threadsafe(&env)?);
            }
            Ok(stream)
        })
    }

    /// Snapshots of every session, sorted by id (empty once closed).
    #[napi(ts_return_type = "Array<SessionInfo>")]
    pub fn sessions(&self, env: Env) -> Result<Vec<Value>> {
        guard(&env, || {
            let infos = self.core.sessions();
            Ok(infos
                .iter()
                .map(|i| json::camel_keys(i.to_json()))
                .collect())
        })
    }

    /// Totals of a session, or `null` for an unknown id.
    #[napi(ts_return_type = "SessionStats | null")]
    pub fn session_stats(&self, env: Env, session_id: String) -> Result<Option<Value>> {
        guard(&env, || {
            let stats = self.core.session_stats(&session_id);
            Ok(stats.map(|s| json::camel_keys(s.to_json())))
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
        guard(env, || {
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

    /// Interrupts session `sessionId`'s running turn: that turn rejects with
    /// `HOTPLEX_TURN_TIMEOUT` ("interrupted by the host") and the process
    /// stays hot. Resolves with whether a turn was running. Rejects with
    /// `HOTPLEX_SESSION_NOT_FOUND` for a session not in the pool.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn interrupt<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, bool>> {
        let engine = Arc::clone(&self.core);
        control(env, async move { engine.interrupt(&session_id).await })
    }

    /// Switches session `sessionId`'s model (`null`: the agent's default) on
    /// its running process, between turns or during one, without a restart;
    /// the session keeps it across restarts (a session without a process
    /// takes it at its next start). Rejects with
    /// `HOTPLEX_SESSION_NOT_FOUND`, `HOTPLEX_UNSUPPORTED` (an agent without
    /// live controls), `HOTPLEX_CONTROL_FAILED` (the agent refused, or did
    /// not answer within `controlTimeout`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_model<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        #[napi(ts_arg_type = "string | null")] model: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let engine = Arc::clone(&self.core);
        control(env, async move {
            engine.set_model(&session_id, model.as_deref()).await
        })
    }

    /// Switches session `sessionId`'s permission mode (`'default'`,
    /// `'acceptEdits'`, `'plan'`, `'bypassPermissions'`, ...), like
    /// `setModel`. An empty mode rejects with `HOTPLEX_INVALID_ARGUMENT`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn set_permission_mode<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        mode: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let engine = Arc::clone(&self.core);
        control(env, async move {
            engine.set_permission_mode(&session_id, &mode).await
        })
    }

    /// Answers question `questionId` (the `questionId` of an
    /// `ask_user_question` event) that session `sessionId`'s agent waits on,
    /// whenever the host likes: the turn's timeout does not run while a
    /// question waits (`questionTimeout` does). `answers` maps each question
    /// (its text, its `header`, or its index as a string) to the chosen
    /// label, or to an array of labels for a `multiSelect` question (sent
    /// joined with `', '`); an array answers the questions in order. A label
    /// need not be an option (the person's own words reach the agent).
    /// Rejects with `HOTPLEX_QUESTION_NOT_FOUND` (no such question waits:
    /// answered, cancelled by an interrupt or `stopSession`, timed out) or
    /// `HOTPLEX_INVALID_ANSWER` (a key that names no question, several
    /// labels for a single-choice question, an empty answer; the question
    /// still waits).
    ///
    /// ```js
    /// for await (const e of engine.stream('s1', prompt)) {
    ///   if (e.type === 'ask_user_question') {
    ///     await engine.answerQuestion('s1', e.data.questionId, { [e.data.questions[0].question]: 'Blue' })
    ///   }
    /// }
    /// ```
    #[napi(ts_return_type = "Promise<void>")]
    pub fn answer_question<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        question_id: String,
        #[napi(ts_arg_type = "Record<string, string | string[]> | Array<string | string[]>")]
        answers: Value,
    ) -> Result<PromiseRaw<'env, ()>> {
        let engine = Arc::clone(&self.core);
        control(env, async move {
            engine
                .answer_question(&session_id, &question_id, &answers)
                .await
        })
    }

    /// Approves (`approved: true`) or rejects the plan session
    /// `sessionId`'s agent proposed (an `exit_plan_mode` event), whenever
    /// the host likes. Approved, the agent leaves plan mode and carries the
    /// plan out in permission mode `mode` (e.g. `'acceptEdits'`, kept by the
    /// session like `setPermissionMode`; unset: the mode it had before plan
    /// mode). Rejected, the agent reads `feedback` and usually proposes a
    /// revised plan (a new `exit_plan_mode` event) in the same turn. Rejects
    /// with `HOTPLEX_QUESTION_NOT_FOUND` (no plan waits) or
    /// `HOTPLEX_INVALID_ANSWER` (a mode with a rejection, an empty mode).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn approve_plan<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        approved: bool,
        options: Option<PlanOptions>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let (feedback, mode) = options.map_or((None, None), |o| (o.feedback, o.mode));
        let engine = Arc::clone(&self.core);
        control(env, async move {
            engine
                .approve_plan(&session_id, approved, feedback.as_deref(), mode.as_deref())
                .await
        })
    }

    /// How full session `sessionId`'s context window is, as the agent
    /// reports it (`totalTokens`, `maxTokens`, `percentage`, `categories`,
    /// ...: the agent's object, keys as it sent them). Needs a running
    /// process (`HOTPLEX_SESSION_DEAD` otherwise); rejects as `setModel`.
    #[napi(ts_return_type = "Promise<ContextUsage>")]
    pub fn context_usage<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, Value>> {
        let engine = Arc::clone(&self.core);
        control(env, async move { engine.context_usage(&session_id).await })
    }

    /// The state of session `sessionId`'s MCP servers (the host tool
    /// servers among them), as the agent reports it (`{ mcpServers: [{
    /// name, status }, ...] }`). Needs a running process; rejects as
    /// `setModel`.
    #[napi(ts_return_type = "Promise<McpStatus>")]
    pub fn mcp_status<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, Value>> {
        let engine = Arc::clone(&self.core);
        control(env, async move { engine.mcp_status(&session_id).await })
    }

    /// Makes session `sessionId` forget its conversation: its next turn
    /// starts a new one. Turns already queued run first, in the old
    /// conversation; a running process is then stopped. With
    /// `forgetTranscript` the old conversation's transcript is deleted too
    /// (best effort). Works whether or not the session is in the pool;
    /// rejects with `HOTPLEX_INVALID_CONFIG` for a bad id (empty, over 512
    /// bytes, with NUL) and `HOTPLEX_CLOSED` once the engine is closed.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn reset_session<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        options: Option<ResetOptions>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let forget = options.and_then(|o| o.forget_transcript).unwrap_or(false);
        let engine = Arc::clone(&self.core);
        control(env, async move {
            engine.reset_session(&session_id, forget).await
        })
    }

    /// Starts session `newId` as a copy of session `sessionId`'s
    /// conversation: `newId`'s first turn resumes it under a new provider
    /// session id (in the same workdir), and from then on the two go on
    /// separately; the original is unchanged. Rejects with
    /// `HOTPLEX_SESSION_NOT_FOUND` when `sessionId` has no conversation yet
    /// (no finished turn) and `HOTPLEX_INVALID_ARGUMENT` when `newId` is
    /// in the pool already (or is `sessionId`). With `atMessage` (a
    /// `turn.messageUuid` of `sessionId`) the copy ends at that message.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn fork_session<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        new_id: String,
        options: Option<ForkOptions>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let at = options.and_then(|o| o.at_message);
        // Quick and synchronous in the core; a promise like its siblings.
        let forked = self.core.fork_session(&session_id, &new_id, at.as_deref());
        control(env, async move { forked })
    }

    /// Keeps `profile.spares` agent processes started for new
    /// conversations in `profile.workdir` (unset: `defaultWorkdir`) with the
    /// session options `profile.session` (unset: none): a session's first
    /// turn with that workdir and options, when the session has no
    /// conversation to resume or fork, goes to a spare's running process
    /// instead of starting one. Replaces the profile of the same workdir
    /// and options (the `prewarm` option lists the first ones); `spares: 0`
    /// removes it. Spares count toward `maxSessions` and start in the
    /// background: the promise resolves once the profile is set. Rejects
    /// with `HOTPLEX_INVALID_CONFIG` or `HOTPLEX_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn prewarm<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "PrewarmProfile")] profile: Unknown,
    ) -> Result<PromiseRaw<'env, ()>> {
        // SAFETY: a live value of this env, on its thread.
        let json = unsafe { Value::from_napi_value(env.raw(), profile.raw()) };
        let set = json
            .map_err(|e| {
                hc::Error::InvalidConfig(format!("prewarm: not a JSON value ({})", e.reason))
            })
            .and_then(|v| json::prewarm_wire("prewarm", v))
            .and_then(|v| hc::PrewarmProfile::from_json(&v))
            .and_then(|p| self.core.prewarm(p));
        // Quick and synchronous in the core; a promise like its siblings.
        control(env, async move { set })
    }

    /// Whether session `sessionId`'s turns belong to this engine: without
    /// the `placement` option always; with it, while this engine holds the
    /// session's current lease (`false` for a session not taken here yet,
    /// and once another host took it over). Reads the lease file: quick.
    /// Throws `HOTPLEX_IO` when the store cannot be read.
    #[napi]
    pub fn owns(&self, env: Env, session_id: String) -> Result<bool> {
        guard(&env, || {
            self.core
                .owns(&session_id)
                .map_err(|e| to_js_error(&env, e))
        })
    }

    /// Takes session `sessionId` for this engine before its first turn here
    /// (`placement` only): its lease, and its conversation from the store,
    /// written where the local agent finds it (in `workdir`, or unset the
    /// session's usual workdir), so that the next turn resumes it. Turns
    /// take a session on their own too; adopting first says at once whether
    /// the session can be had. Rejects with `HOTPLEX_OWNED_ELSEWHERE` while
    /// another host holds it (the error's `owner` names that host, where
    /// the session's turns belong), `HOTPLEX_INVALID_CONFIG` without the
    /// `placement` option (or for a workdir outside `allowedRoots`).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn adopt<'env>(
        &self,
        env: &'env Env,
        session_id: String,
        workdir: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let engine = Arc::clone(&self.core);
        control(env, async move {
            // File work (a lock, a read, a write): off the runtime's workers.
            tokio::task::spawn_blocking(move || {
                let workdir = workdir.filter(|w| !w.is_empty());
                engine.adopt(&session_id, workdir.as_deref().map(std::path::Path::new))
            })
            .await
            .map_err(|e| hc::Error::Io(format!("adopt task: {e}")))?
        })
    }

    /// Lets session `sessionId` go (`placement` only), so that another host
    /// can take it up at once: its running turn is interrupted, queued
    /// turns reject, its process is stopped, its transcript saved to the
    /// store and its lease released. Resolves with whether this engine held
    /// the session. Rejects with `HOTPLEX_INVALID_CONFIG` without the
    /// `placement` option and `HOTPLEX_FENCED` when the lease was lost
    /// meanwhile (released all the same).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn release<'env>(
        &self,
        env: &'env Env,
        session_id: String,
    ) -> Result<PromiseRaw<'env, bool>> {
        let engine = Arc::clone(&self.core);
        control(env, async move { engine.release(&session_id).await })
    }

    /// Drains the engine for a shutdown or a move (`placement` only): from
    /// now on it takes no new session (their turns reject with
    /// `HOTPLEX_CAPACITY_EXCEEDED`), running and queued turns get
    /// `deadlineSeconds` to finish, then every session it holds is released
    /// as by `release`. Resolves with the ids released, sorted. Rejects with
    /// `HOTPLEX_INVALID_ARGUMENT` for a deadline that is negative, not a
    /// number or over 2^32 seconds, `HOTPLEX_INVALID_CONFIG` without the
    /// `placement` option.
    ///
    /// ```js
    /// process.on('SIGTERM', async () => {
    ///   const moved = await engine.drain(30) // other hosts take these up
    ///   await engine.close()
    /// })
    /// ```
    #[napi(ts_return_type = "Promise<Array<string>>")]
    pub fn drain<'env>(
        &self,
        env: &'env Env,
        deadline_seconds: f64,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        // At most 2^32 s (136 years: "as long as it takes"), as in the C ABI.
        let deadline = if (0.0..=f64::from(u32::MAX)).contains(&deadline_seconds) {
            Ok(std::time::Duration::from_secs_f64(deadline_seconds))
        } else {
            Err(hc::Error::InvalidArgument(format!(
                "deadlineSeconds: must be a number of seconds from 0 to 2^32, not {deadline_seconds}"
            )))
        };
        let engine = Arc::clone(&self.core);
        control(env, async move { engine.drain(deadline?).await })
    }

    /// The engine's load, for a balancer that places sessions across hosts
    /// (with or without the `placement` option).
    #[napi]
    pub fn load(&self, env: Env) -> Result<EngineLoad> {
        guard(&env, || {
            let l = self.core.load();
            let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
            Ok(EngineLoad {
                sessions: count(l.sessions),
                busy: count(l.busy),
                queued: count(l.queued),
                free_slots: count(l.free_slots),
                spares: count(l.spares),
                // Exact below 2^53 bytes (8 PiB).
                agent_memory_bytes: l.agent_memory_bytes as f64,
                draining: l.draining,
            })
        })
    }

    /// Stops every session and kills every process tree (resolves once all
    /// are confirmed gone). Idempotent; afterwards `execute`, `stream` and
    /// `stopSession` reject with `HOTPLEX_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        guard(env, || {
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

    /// The engine's metrics as OpenMetrics text (ends with `# EOF`), for the
    /// host to serve on its own `/metrics` route (hotplex opens no port).
    /// Families and labels: see `x-hotplex-metrics` in the schema, or
    /// `registerPromClient` to add them to a `prom-client` registry.
    #[napi]
    pub fn metrics_text(&self, env: Env) -> Result<String> {
        guard(&env, || Ok(self.core.metrics_text()))
    }

    /// The engine's metrics in the Prometheus text format (0.0.4), for a
    /// `/metrics` whose scraper does not ask for OpenMetrics (its `Accept`
    /// header lacks `application/openmetrics-text`) and for tools that read
    /// only this format (`promtool check metrics`).
    #[napi]
    pub fn metrics_text_prometheus(&self, env: Env) -> Result<String> {
        guard(&env, || Ok(self.core.metrics_text_prometheus()))
    }

    /// The engine's metrics as data: one `MetricFamily` per family
    /// (`{ name, type, help, samples: [{ name, labels, value }] }`), as in
    /// `metricsText()`. A counter family is named as exposed
    /// (`hotplex_turns_total`); a histogram's samples are its `_bucket`
    /// (label `le`), `_sum` and `_count`.
    #[napi(ts_return_type = "Array<MetricFamily>")]
    pub fn metrics_snapshot(&self, env: Env) -> Result<Value> {
        guard(&env, || Ok(self.core.metrics_snapshot()))
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

/// An engine's load, from `Engine.load()`.
#[napi(object, object_from_js = false)]
pub struct EngineLoad {
    /// Sessions in the pool.
    pub sessions: u32,
    /// Sessions running a turn.
    pub busy: u32,
    /// Turns waiting behind a running one, over all sessions.
    pub queued: u32,
    /// More sessions the engine takes before it must evict (`maxSessions`
    /// minus sessions and spares).
    pub free_slots: u32,
    /// Spare processes kept for new conversations.
    pub spares: u32,
    /// Resident memory of every agent process tree (sessions and spares),
    /// in bytes.
    pub agent_memory_bytes: f64,
    /// The engine is draining (`drain()` was called): it takes no new
    /// session.
    pub draining: bool,
}

/// Options of `Engine.resetSession()`.
#[napi(object, object_to_js = false)]
pub struct ResetOptions {
    /// Also delete the old conversation's transcript (best effort; default
    /// `false`).
    pub forget_transcript: Option<bool>,
}

/// Options of `Engine.approvePlan()`.
#[napi(object, object_to_js = false)]
pub struct PlanOptions {
    /// What the agent reads for a rejected plan (what to change).
    pub feedback: Option<String>,
    /// The permission mode an approved plan is carried out in (e.g.
    /// `'acceptEdits'`); unset: the mode before plan mode.
    pub mode: Option<String>,
}

/// Options of `Engine.forkSession()`.
#[napi(object, object_to_js = false)]
pub struct ForkOptions {
    /// The message the copy ends at (a `turn.messageUuid` of the session
    /// forked); unset: the whole conversation.
    pub at_message: Option<String>,
}

/// A promise of `fut`'s value, rejecting with its error as the core's
/// errors are mapped (with `code`). A panic becomes `HOTPLEX_PANIC`.
fn control<'env, T, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = hc::Result<T>> + Send + 'static,
{
    guard(env, || {
        env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, outcome| {
            outcome.map_err(|e| to_js_error(env, e))
        })
    })
}

enum StreamState {
    /// The turn could not be queued: the first `next()` rejects with this.
    Failed(hc::Error),
    /// Queued or running; the engine is kept alive meanwhile.
    Running(Box<hc::TurnStream>, Arc<hc::Engine>, Events),
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

    pub enum TurnEvent {
        /// An event, as JS sees it.
        Event(Value),
        /// The turn's error; the prompt its verdict's span indexes.
        Failed(hc::Error, Arc<str>),
        /// The `AbortError` of the stream's signal.
        Aborted(napi::Error),
    }

    impl ToNapiValue for TurnEvent {
        unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
            match val {
                // SAFETY: forwarded from napi, on the env's thread.
                TurnEvent::Event(e) => unsafe { ToNapiValue::to_napi_value(env, e) },
                TurnEvent::Failed(e, prompt) => {
                    Err(to_js_error_for(&Env::from_raw(env), e, &prompt))
                }
                TurnEvent::Aborted(e) => Err(e),
            }
        }
    }
}

/// Locks a std mutex, poisoned or not (what it guards stays valid).
fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Shared {
    state: AsyncMutex<StreamState>,
    cancelled: watch::Sender<bool>,
    turn: StdMutex<Option<hc::Turn>>,
    prompt: Arc<str>,
    /// The `AbortError` of the signal, once it fired: the next `next()`
    /// rejects with it (once).
    abort: StdMutex<Option<napi::Error>>,
    /// Removes the signal's listener once the iteration is over.
    detach: StdMutex<Option<RemoteDetach>>,
}

impl Shared {
    async fn next(&self) -> Option<step::TurnEvent> {
        let item = self.step().await;
        let over = matches!(
            item,
            None | Some(step::TurnEvent::Failed(..) | step::TurnEvent::Aborted(_))
        );
        if over {
            // Before the end reaches JS, so a signal has no listener left
            // by then.
            let detach = lock(&self.detach).take();
            if let Some(d) = detach {
                d.run_remote().await;
            }
        }
        item
    }

    async fn step(&self) -> Option<step::TurnEvent> {
        let mut cancelled = self.cancelled.subscribe();
        let mut state = self.state.lock().await;
        if *cancelled.borrow() {
            *state = StreamState::Over;
            return self.aborted();
        }
        match std::mem::replace(&mut *state, StreamState::Over) {
            StreamState::Over => None,
            StreamState::Failed(e) => Some(step::TurnEvent::Failed(e, Arc::clone(&self.prompt))),
            StreamState::Running(mut stream, engine, mut events) => {
                let next = tokio::select! {
                    e = stream.next_event() => e,
                    // Dropping the stream cancels the turn.
                    _ = cancelled.wait_for(|c| *c) => return self.aborted(),
                };
                match next {
                    Some(e) => {
                        let item = events.js(&e);
                        *state = StreamState::Running(stream, engine, events);
                        Some(step::TurnEvent::Event(item))
                    }
                    None => match stream.finish().await {
                        Ok(t) => {
                            *lock(&self.turn) = Some(t);
                            None
                        }
                        Err(e) => Some(step::TurnEvent::Failed(e, Arc::clone(&self.prompt))),
                    },
                }
            }
        }
    }

    /// How a cancelled iteration ends: with the signal's `AbortError` (once)
    /// if the signal cancelled it, else done.
    fn aborted(&self) -> Option<step::TurnEvent> {
        lock(&self.abort).take().map(step::TurnEvent::Aborted)
    }

    fn cancel(&self) {
        self.cancelled.send_replace(true);
        // Drop the turn now unless a `next()` holds it (that one sees the
        // flag and drops it).
        if let Ok(mut state) = self.state.try_lock() {
            *state = StreamState::Over;
        }
    }

    /// The signal fired (on the JS thread): cancel the turn, and end the
    /// iteration with `err` unless it is already over.
    fn abort(&self, err: napi::Error) {
        if !*self.cancelled.borrow() {
            *lock(&self.abort) = Some(err);
        }
        self.cancel();
    }

    /// Removes the signal's listener now (on the JS thread).
    fn detach_local(&self, env: &Env) {
        let detach = lock(&self.detach).take();
        if let Some(d) = detach {
            d.run_local(env);
        }
    }
}

/// The events of one turn as they arrive, from `Engine.stream()`: an async
/// iterable (`for await (const event of stream)`). The iteration rejects
/// with the turn's error; afterwards `turn` holds the finished turn.
/// Leaving the loop early, or `cancel()`, cancels the turn.
#[napi(async_iterator, custom_finalize)]
pub struct TurnStream {
    shared: Arc<Shared>,
    /// Settles when the latest `next()` is done: each `next()` waits for
    /// the one before, so concurrent calls get events in call order.
    tail: Option<oneshot::Receiver<()>>,
}

impl TurnStream {
    fn new(state: StreamState, prompt: Arc<str>) -> TurnStream {
        TurnStream {
            shared: Arc::new(Shared {
                state: AsyncMutex::new(state),
                cancelled: watch::Sender::new(false),
                turn: StdMutex::new(None),
                prompt,
                abort: StdMutex::new(None),
                detach: StdMutex::new(None),
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
        // No `Env` here: the listener is removed from the runtime, before
        // `return()` resolves.
        let detach = lock(&self.shared.detach).take();
        async move {
            if let Some(d) = detach {
                d.run_remote().await;
            }
            Ok(None)
        }
    }

    fn catch(
        &mut self,
        env: Env,
        value: Unknown,
    ) -> impl Future<Output = Result<Option<Self::Yield>>> + Send + 'static {
        self.shared.cancel();
        self.shared.detach_local(&env);
        let err = napi::Error::from_unknown_without_coercion(value);
        async move { Err(err) }
    }
}

#[napi]
impl TurnStream {
    /// The finished turn, once the iteration ended without an error;
    /// `null` before that.
    #[napi(getter, ts_return_type = "Turn | null")]
    pub fn turn(&self) -> Option<Value> {
        let turn = self.shared.turn.lock().unwrap_or_else(|e| e.into_inner());
        turn.as_ref().map(|t| json::turn(t, &self.shared.prompt))
    }

    /// Cancels the turn if it still runs (the agent is interrupted); the
    /// iteration ends. Callable at any time, also from any callback, and
    /// more than once: it never throws.
    #[napi]
    pub fn cancel(&self, env: Env) {
        // Nothing may escape into JS from here, not even a panic.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.shared.cancel();
            self.shared.detach_local(&env);
        }));
    }
}

impl ObjectFinalize for TurnStream {
    fn finalize(self, env: Env) -> Result<()> {
        // A stream dropped unfinished leaves no listener on its signal.
        self.shared.detach_local(&env);
        Ok(())
    }
}
