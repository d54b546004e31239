//! The host's functions the engine calls: `canUseTool`, hooks and host
//! tools. All three are the same kind of callback, so they share one way of
//! being called:
//!
//! * **Weak threadsafe functions.** Each JS function becomes a weak
//!   threadsafe function when the `Engine` is built, so an idle engine does
//!   not keep Node running.
//! * **Asked from a runtime thread, answered on the JS thread.** The core
//!   calls its handler on a blocking thread ([`hotplex_core`]'s `host`
//!   module: off the session's task, bounded by a timeout). [`call`] queues
//!   the call on the JS thread and waits for the answer (in
//!   `block_in_place`, so the runtime keeps serving other sessions); a
//!   returned promise is awaited there too. Throwing, rejecting and not
//!   answering within the limit are a [`Failure`], which each kind of
//!   callback answers in the way the core says fails closed (a denial for
//!   permissions and `PreToolUse`, an MCP error result for tools).
//! * **Values as JSON.** Arguments go to JS as JSON values; answers come
//!   back as JSON ([`Json`]): `undefined` is `null`, a function (which JSON
//!   cannot hold) is an unexpected answer.
//!
//! The shapes are the Agent SDK's, in camelCase where the binding speaks:
//!
//! ```js
//! new Engine({
//!   hooks: { PostToolUse: [(input, toolUseId, { sessionId, event }) => ({ ... })],
//!            PreToolUse: [{ matcher: 'Bash', hooks: [fn], timeout: 30 }] },
//!   tools: [{ name: 'host', tools: [{ name: 'getWeather', description, inputSchema,
//!             handler: async ({ city }, { sessionId }) => `sunny in ${city}` }] }],
//! })
//! ```
//!
//! Hook inputs and outputs and tool arguments are the agent's own payloads,
//! passed as they are (`hook_event_name`, `tool_input`, ...;
//! `hookSpecificOutput`, ...); only the binding's own objects (contexts)
//! are camelCase.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hotplex_core as hc;
use hotplex_core::contract::hooks::DEFAULT_HOOK_TIMEOUT_SECS;
use hotplex_core::contract::{
    HookCall, HookHandler, HookSpec, Permission, PermissionHandler, ToolHandler, ToolInvocation,
    ToolRequest, ToolServer,
};
use napi::bindgen_prelude::{
    Either, FnArgs, FromNapiValue, JsObjectValue, Object, Promise, Undefined, Unknown,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, JsValue, Result, Status, ValueType};
use serde_json::{json, Map, Value};

use crate::json::{camel, snake};
use crate::{to_js_verdict, Verdict};

/// A weak threadsafe function answering `T` (or a promise of it) for
/// arguments `A`.
type HostFn<A, T> = ThreadsafeFunction<A, Reply<T>, A, Status, false, true>;

/// What a host function returned: a value, or a promise of one.
pub enum Reply<T: FromNapiValue + 'static> {
    /// A value.
    Now(T),
    /// A promise of one.
    Later(Promise<T>),
}

impl<T: FromNapiValue + 'static> FromNapiValue for Reply<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        let mut is_promise = false;
        // SAFETY: a live value of this env, on its thread.
        napi::check_status!(unsafe { sys::napi_is_promise(env, value, &mut is_promise) })?;
        if is_promise {
            // SAFETY: checked to be a promise.
            return Ok(Reply::Later(unsafe {
                Promise::<T>::from_napi_value(env, value)?
            }));
        }
        // SAFETY: as above.
        Ok(Reply::Now(unsafe { T::from_napi_value(env, value)? }))
    }
}

/// How a call of a host function failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// It could not be queued (the environment is going away).
    Uncallable(Status),
    /// It threw (the exception's message).
    Threw(String),
    /// Its promise rejected (the reason's message).
    Rejected(String),
    /// No answer within the limit.
    Late(Duration),
    /// A promise came back where no runtime could await it.
    NoRuntime,
}

impl Failure {
    /// Why, as a sentence part: "it threw: ...".
    fn why(&self) -> String {
        match self {
            Failure::Uncallable(s) => format!("it could not be called ({s})"),
            Failure::Threw(m) => format!("it threw: {m}"),
            Failure::Rejected(m) => format!("its promise rejected: {m}"),
            Failure::Late(limit) => format!("no answer within {limit:?}"),
            Failure::NoRuntime => "no runtime to await its promise on".to_owned(),
        }
    }

    /// The error's own message where there is one (what a model should
    /// read of a failed tool), else [`why`](Self::why).
    fn message(&self) -> String {
        match self {
            Failure::Threw(m) | Failure::Rejected(m) => m.clone(),
            other => other.why(),
        }
    }
}

/// Calls `f` with `args` on the JS thread and waits (on this runtime
/// thread, at most `limit`, promise included) for its answer.
pub(crate) fn call<A, T>(
    f: &HostFn<A, T>,
    args: A,
    limit: Duration,
) -> std::result::Result<T, Failure>
where
    A: napi::bindgen_prelude::JsValuesTupleIntoVec + 'static,
    T: FromNapiValue + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Reply<T>>>(1);
    let status = f.call_with_return_value(
        args,
        ThreadsafeFunctionCallMode::NonBlocking,
        move |answer: Result<Reply<T>>, _env| {
            // A JS exception is dropped here, on its own thread.
            let _ = tx.send(answer);
            Ok(())
        },
    );
    if status != Status::Ok {
        return Err(Failure::Uncallable(status));
    }
    blocking(move || match rx.recv_timeout(limit) {
        Ok(Ok(Reply::Now(v))) => Ok(v),
        Ok(Ok(Reply::Later(promise))) => match tokio::runtime::Handle::try_current() {
            Ok(rt) => match rt.block_on(tokio::time::timeout(limit, promise)) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(Failure::Rejected(e.reason)),
                Err(_) => Err(Failure::Late(limit)),
            },
            Err(_) => Err(Failure::NoRuntime),
        },
        Ok(Err(e)) => Err(Failure::Threw(e.reason)),
        Err(_) => Err(Failure::Late(limit)),
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

/// A host function's answer as JSON: `undefined` is `null`; a value JSON
/// cannot hold (a function, a `BigInt`, ...) is `Err` saying what it was.
pub struct Json(std::result::Result<Value, String>);

impl FromNapiValue for Json {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: napi hands us a live value of this env, on its thread.
        let ty = unsafe { Unknown::from_raw_unchecked(env, value) }.get_type()?;
        Ok(Json(match ty {
            ValueType::Undefined => Ok(Value::Null),
            ValueType::Function => Err("a function".to_owned()),
            // SAFETY: as above.
            _ => unsafe { Value::from_napi_value(env, value) }.map_err(|e| e.reason),
        }))
    }
}

/// An object with `value`'s top-level keys camelCased (the agent's
/// `permission_suggestions` -> `permissionSuggestions`); what is under them
/// stays as the agent sent it.
fn camel_top(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (camel(k), v.clone())).collect()),
        _ => Value::Object(Map::new()),
    }
}

// ---------------------------------------------------------------------------
// canUseTool

/// The arguments of `canUseTool`: tool name, input, verdict, session id,
/// and the agent's context (camelCase keys).
type PermissionArgs = FnArgs<(String, Value, Verdict, String, Value)>;

/// `canUseTool`.
pub(crate) type PermissionFn = HostFn<PermissionArgs, Answer>;

/// What `canUseTool` answered, read on the JS thread by the core's one rule
/// (`Permission::from_answer`).
pub struct Answer(Permission);

impl FromNapiValue for Answer {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: forwarded from napi, on the env's thread.
        let Json(json) = unsafe { Json::from_napi_value(env, value)? };
        Ok(Answer(match json {
            Ok(json) => Permission::from_answer(&json),
            Err(what) => Permission::unexpected(&what),
        }))
    }
}

/// The core's permission handler for `canUseTool`; answers within `limit`.
pub(crate) fn permission_handler(f: PermissionFn, limit: Duration) -> PermissionHandler {
    Arc::new(move |req: &ToolRequest<'_>| {
        let args = FnArgs::from((
            req.tool_name.to_owned(),
            req.input.clone(),
            to_js_verdict(req.verdict, &judged_text(req.input)),
            req.session_id.to_owned(),
            camel_top(req.context),
        ));
        match call(&f, args, limit) {
            Ok(Answer(p)) => p,
            Err(failure) => Permission::failed(&failure.why()),
        }
    })
}

/// The text a tool call's verdict span indexes: its command, else its input.
fn judged_text(input: &Value) -> String {
    match input.get("command").and_then(Value::as_str) {
        Some(cmd) => cmd.to_owned(),
        None => input.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Reading nested options on the JS thread

/// An `InvalidConfig` error naming `path` (the option as the user wrote it).
fn bad(path: &str, what: &str) -> hc::Error {
    hc::Error::InvalidConfig(format!("{path}: {what}"))
}

/// `value` as an object (not an array), or an error naming `path`.
fn object<'a>(value: Unknown<'a>, path: &str, what: &str) -> hc::Result<Object<'a>> {
    let ty = value.get_type().map_err(|e| bad(path, &e.reason))?;
    if ty != ValueType::Object || value.is_array().unwrap_or(true) {
        return Err(bad(path, &format!("must be {what}")));
    }
    // SAFETY: checked to be an object.
    unsafe { value.cast::<Object>() }.map_err(|e| bad(path, &e.reason))
}

/// The elements of `value`, an array, or an error naming `path`.
fn elements<'a>(value: Unknown<'a>, path: &str) -> hc::Result<Vec<Unknown<'a>>> {
    if !value.is_array().unwrap_or(false) {
        return Err(bad(path, "must be an array"));
    }
    // SAFETY: checked to be an array (an object).
    let array = unsafe { value.cast::<Object>() }.map_err(|e| bad(path, &e.reason))?;
    let n = array.get_array_length().map_err(|e| bad(path, &e.reason))?;
    (0..n)
        .map(|i| {
            array
                .get_element::<Unknown>(i)
                .map_err(|e| bad(&format!("{path}[{i}]"), &e.reason))
        })
        .collect()
}

/// The properties of `obj` that are not `undefined`, in order.
fn properties<'a>(obj: &Object<'a>, path: &str) -> hc::Result<Vec<(String, Unknown<'a>)>> {
    let keys = Object::keys(obj).map_err(|e| bad(path, &e.reason))?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let value = obj
            .get::<Unknown>(&key)
            .map_err(|e| bad(&format!("{path}.{key}"), &e.reason))?;
        if let Some(v) = value {
            if v.get_type().ok() != Some(ValueType::Undefined) {
                out.push((key, v));
            }
        }
    }
    Ok(out)
}

/// `value` as JSON, or an error naming `path`.
fn json_of(env: &Env, value: &Unknown<'_>, path: &str) -> hc::Result<Value> {
    // SAFETY: a live value of this env, on its thread.
    unsafe { Value::from_napi_value(env.raw(), value.raw()) }
        .map_err(|e| bad(path, &format!("not a JSON value ({})", e.reason)))
}

/// Whether `value` is a function.
fn is_function(value: &Unknown<'_>) -> bool {
    value.get_type().ok() == Some(ValueType::Function)
}

/// `value` as a weak threadsafe function, or an error naming `path`.
fn function<F: FromNapiValue>(env: &Env, value: &Unknown<'_>, path: &str) -> hc::Result<F> {
    if !is_function(value) {
        return Err(bad(path, "must be a function"));
    }
    // SAFETY: a live function of this env, on its thread.
    unsafe { F::from_napi_value(env.raw(), value.raw()) }.map_err(|e| bad(path, &e.reason))
}

// ---------------------------------------------------------------------------
// Hooks

/// The arguments of a hook: the agent's input, the tool call's id
/// (`undefined` when the event is not about one) and `{ sessionId, event }`.
type HookArgs = FnArgs<(Value, Either<String, Undefined>, Value)>;

/// A host hook.
type HookFn = HostFn<HookArgs, Json>;

/// The `hooks` option, read: the specs for the core and the functions by id.
pub(crate) struct Hooks {
    /// One spec per function, ids `hook-1`, `hook-2`, ... in option order.
    pub specs: Vec<HookSpec>,
    fns: HashMap<String, (HookFn, Duration)>,
}

impl Hooks {
    /// Reads `hooks: { Event: [fn | { matcher, hooks: [fn], timeout }] }`
    /// (on the JS thread). Event names and timeouts are checked by the
    /// core when the engine is built.
    pub(crate) fn read(env: &Env, value: Unknown<'_>) -> hc::Result<Hooks> {
        let mut hooks = Hooks {
            specs: Vec::new(),
            fns: HashMap::new(),
        };
        let events = object(value, "hooks", "an object of hook lists by event name")?;
        for (event, list) in properties(&events, "hooks")? {
            let path = format!("hooks.{event}");
            for (i, entry) in elements(list, &path)?.into_iter().enumerate() {
                let path = format!("{path}[{i}]");
                if is_function(&entry) {
                    hooks.add(env, &event, None, None, &entry, &path)?;
                    continue;
                }
                let m = object(entry, &path, "a function or { matcher, hooks, timeout }")?;
                let (mut matcher, mut timeout, mut fns) = (None, None, None);
                for (key, v) in properties(&m, &path)? {
                    let at = format!("{path}.{key}");
                    match key.as_str() {
                        "matcher" => match json_of(env, &v, &at)? {
                            Value::Null => {}
                            Value::String(s) => matcher = Some(s),
                            _ => return Err(bad(&at, "must be a string (a tool name or A|B)")),
                        },
                        "timeout" => match json_of(env, &v, &at)? {
                            Value::Null => {}
                            Value::Number(n) => timeout = n.as_f64(),
                            _ => return Err(bad(&at, "must be a number of seconds")),
                        },
                        "hooks" => fns = Some(elements(v, &at)?),
                        _ => {
                            return Err(bad(
                                &path,
                                &format!(
                                "unknown field `{key}`, expected `matcher`, `hooks` or `timeout`"
                            ),
                            ))
                        }
                    }
                }
                let fns = fns.ok_or_else(|| bad(&path, "needs `hooks`: a list of functions"))?;
                for (j, f) in fns.iter().enumerate() {
                    let at = format!("{path}.hooks[{j}]");
                    hooks.add(env, &event, matcher.clone(), timeout, f, &at)?;
                }
            }
        }
        Ok(hooks)
    }

    fn add(
        &mut self,
        env: &Env,
        event: &str,
        matcher: Option<String>,
        timeout: Option<f64>,
        f: &Unknown<'_>,
        path: &str,
    ) -> hc::Result<()> {
        let f: HookFn = function(env, f, path)?;
        let spec = HookSpec {
            event: event.to_owned(),
            matcher,
            id: format!("hook-{}", self.specs.len() + 1),
            timeout,
        };
        // A bad timeout is the core's to reject (validate_all); until then
        // the wait must still be a valid duration.
        let limit = Duration::try_from_secs_f64(spec.timeout_secs())
            .unwrap_or(Duration::from_secs_f64(DEFAULT_HOOK_TIMEOUT_SECS));
        self.fns.insert(spec.id.clone(), (f, limit));
        self.specs.push(spec);
        Ok(())
    }

    /// The core's hook handler, calling the functions by id (`None` when
    /// there are none).
    pub(crate) fn handler(self) -> Option<HookHandler> {
        if self.fns.is_empty() {
            return None;
        }
        let fns = self.fns;
        Some(Arc::new(move |c: &HookCall<'_>| {
            let Some((f, limit)) = fns.get(c.hook_id) else {
                return Err(format!("no host hook has the id {:?}", c.hook_id));
            };
            let args = FnArgs::from((
                c.input.clone(),
                c.tool_use_id.map(str::to_owned).into(),
                json!({ "sessionId": c.session_id, "event": c.event }),
            ));
            match call(f, args, *limit) {
                Ok(Json(Ok(out))) => Ok(out),
                Ok(Json(Err(what))) => Err(format!("it returned {what}")),
                Err(failure) => Err(failure.why()),
            }
        }))
    }
}

// ---------------------------------------------------------------------------
// Host tools

/// The arguments of a host tool: the model's arguments and `{ sessionId,
/// server, tool }`.
type ToolArgs = FnArgs<(Value, Value)>;

/// A host tool's handler.
type ToolFn = HostFn<ToolArgs, Json>;

/// The `tools` option, read: the servers for the core and the handlers by
/// server and tool name.
pub(crate) struct Tools {
    /// The servers as the core declares them to the agent.
    pub servers: Vec<ToolServer>,
    fns: HashMap<(String, String), ToolFn>,
}

impl Tools {
    /// Reads `tools: [{ name, version?, tools: [{ name, description?,
    /// inputSchema?, handler }] }]` (on the JS thread). Names and schemas
    /// are checked by the core when the engine is built.
    pub(crate) fn read(env: &Env, value: Unknown<'_>) -> hc::Result<Tools> {
        let mut out = Tools {
            servers: Vec::new(),
            fns: HashMap::new(),
        };
        for (i, server) in elements(value, "tools")?.into_iter().enumerate() {
            let path = format!("tools[{i}]");
            let s = object(server, &path, "an object { name, version?, tools }")?;
            let mut wire = Map::new();
            let mut tools = Vec::new();
            for (key, v) in properties(&s, &path)? {
                let at = format!("{path}.{key}");
                match key.as_str() {
                    "tools" => tools = elements(v, &at)?,
                    "name" | "version" => {
                        wire.insert(key, json_of(env, &v, &at)?);
                    }
                    _ => {
                        return Err(bad(
                            &path,
                            &format!(
                                "unknown field `{key}`, expected `name`, `version` or `tools`"
                            ),
                        ))
                    }
                }
            }
            let server_name = wire
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut specs = Vec::new();
            for (j, tool) in tools.into_iter().enumerate() {
                let path = format!("{path}.tools[{j}]");
                let t = object(
                    tool,
                    &path,
                    "an object { name, description?, inputSchema?, handler }",
                )?;
                let mut spec = Map::new();
                let mut handler = None;
                for (key, v) in properties(&t, &path)? {
                    let at = format!("{path}.{key}");
                    match key.as_str() {
                        "handler" => handler = Some(function::<ToolFn>(env, &v, &at)?),
                        "name" | "description" | "inputSchema" => {
                            spec.insert(snake(&key), json_of(env, &v, &at)?);
                        }
                        _ => {
                            return Err(bad(
                                &path,
                                &format!(
                                    "unknown field `{key}`, expected `name`, `description`, `inputSchema` or `handler`"
                                ),
                            ))
                        }
                    }
                }
                let handler = handler.ok_or_else(|| bad(&path, "needs a `handler` function"))?;
                let tool_name = spec
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                out.fns.insert((server_name.clone(), tool_name), handler);
                specs.push(Value::Object(spec));
            }
            wire.insert("tools".into(), Value::Array(specs));
            let server: ToolServer = serde_json::from_value(Value::Object(wire))
                .map_err(|e| bad(&path, &e.to_string().replace("input_schema", "inputSchema")))?;
            out.servers.push(server);
        }
        // Checked here (the core checks again) to name `inputSchema` as
        // JavaScript spells it.
        ToolServer::validate_all(&out.servers).map_err(|e| match e {
            hc::Error::InvalidConfig(m) => {
                hc::Error::InvalidConfig(m.replace("input_schema", "inputSchema"))
            }
            other => other,
        })?;
        Ok(out)
    }

    /// The core's tool handler, calling the handlers by name within
    /// `limit` (`None` when there are none).
    pub(crate) fn handler(self, limit: Duration) -> Option<ToolHandler> {
        if self.fns.is_empty() {
            return None;
        }
        let fns = self.fns;
        Some(Arc::new(move |c: &ToolInvocation<'_>| {
            let Some(f) = fns.get(&(c.server.to_owned(), c.tool.to_owned())) else {
                return Err(format!("{} has no tool named {:?}", c.server, c.tool));
            };
            let context = json!({ "sessionId": c.session_id, "server": c.server, "tool": c.tool });
            match call(f, FnArgs::from((c.arguments.clone(), context)), limit) {
                Ok(Json(Ok(answer))) => Ok(answer),
                Ok(Json(Err(what))) => Err(format!("the tool returned {what}")),
                Err(failure) => Err(failure.message()),
            }
        }))
    }
}
