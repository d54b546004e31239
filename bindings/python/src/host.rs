//! Calling the host's Python functions from the engine's threads: the one
//! machinery behind `can_use_tool`, hooks (`hooks=`) and host tools
//! (`tools=`).
//!
//! The core calls its handlers on a blocking thread. `call` takes the GIL
//! there and calls the function. A plain function answers at once; one that
//! returns an awaitable (an `async def`) has it scheduled on the host's
//! asyncio loop (`LoopSlot`) by `hotplex._permission.schedule`, and the
//! thread waits for its answer without the GIL, up to a timeout, after which
//! the coroutine is cancelled. What the function returned is read as JSON
//! (`Answer`); each handler turns that into the core's type:
//!
//! * `permission_handler`: `Permission::from_answer`; a failure denies.
//! * `hooks`: the hook's output object; a failure is the core's
//!   hook failure (a `PreToolUse` hook denies, the others go on).
//! * `tool_handler`: the tool's answer; a failure is an MCP error result
//!   with the exception's message, which the model sees.
//!
//! Failures of `can_use_tool` and of hooks (host bugs) also go to
//! `sys.unraisablehook`; a tool's exception is an ordinary answer (the model
//! sees it) and is not reported. Once the interpreter is exiting nothing is
//! called (see `crate::lifecycle`) and every call fails closed.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hotplex_core::contract::hooks::DEFAULT_HOOK_TIMEOUT_SECS;
use hotplex_core::contract::{HookCall, HookHandler, ToolHandler, ToolInvocation};
use hotplex_core::{Permission, PermissionHandler, ToolRequest};
use pyo3::exceptions::{PyTimeoutError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use serde_json::Value;

use crate::convert::{json_to_py, py_to_json};
use crate::lifecycle;
use crate::verdict::Verdict;

/// The asyncio loop an async host function runs on: for an Engine, the one
/// running when it was created; for an AsyncEngine, the one its latest
/// call ran on.
#[derive(Clone, Default)]
pub(crate) struct LoopSlot(Arc<Mutex<Option<Py<PyAny>>>>);

impl LoopSlot {
    /// Remembers the loop running in this thread, if any.
    pub(crate) fn capture(&self, py: Python<'_>) {
        let running = py
            .import("asyncio")
            .and_then(|a| a.call_method0("get_running_loop"));
        if let Ok(running) = running {
            self.set(running.unbind());
        }
    }

    /// Remembers `event_loop` (an AsyncEngine's call on it).
    pub(crate) fn set(&self, event_loop: Py<PyAny>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(event_loop);
    }

    fn get(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().map(|l| l.clone_ref(py))
    }
}

/// What a host function gave.
pub(crate) enum Answer {
    /// Its return value (awaited, if it was awaitable), as JSON.
    Value(Value),
    /// It returned a value that is not JSON-shaped: what the converter said.
    NotJson(String),
    /// It raised, was cancelled, timed out or could not be called: why.
    Failed(String),
}

/// One host function and how its failures are told.
pub(crate) struct HostFn {
    /// The Python callable.
    pub(crate) cb: Py<PyAny>,
    /// What it is, for messages (`can_use_tool`, `the PostToolUse hook`, ...).
    pub(crate) what: String,
    /// Whether its exceptions go to `sys.unraisablehook`.
    pub(crate) report: bool,
}

/// An answer at once, or later from the host's loop.
enum Pending {
    Now(Answer),
    /// The coroutine runs on the loop; its answer comes through the
    /// channel. The `concurrent.futures.Future` is cancelled on timeout.
    Later(mpsc::Receiver<Answer>, Py<PyAny>),
}

/// A Python value as an [`Answer`].
fn answer_of(value: &Bound<'_, PyAny>, what: &str) -> Answer {
    match py_to_json(value, &format!("{what} answer")) {
        Ok(v) => Answer::Value(v),
        Err(why) => Answer::NotJson(why),
    }
}

/// An exception of the host function: its message (its class name when
/// the message is empty), reported if the function's failures are.
fn failed(py: Python<'_>, err: PyErr, f: &HostFn) -> Answer {
    let mut why = err.value(py).to_string();
    if why.is_empty() {
        why = err
            .get_type(py)
            .name()
            .map_or_else(|_| "exception".into(), |n| n.to_string());
    }
    if f.report {
        err.write_unraisable(py, Some(f.cb.bind(py)));
    }
    Answer::Failed(why)
}

/// Calls the function with `args`; an awaitable it returns is scheduled on
/// the loop, and its answer sent back by a done-callback on the loop's
/// thread.
fn start(
    py: Python<'_>,
    f: &Arc<HostFn>,
    loops: &LoopSlot,
    args: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyTuple>>,
) -> Pending {
    let started = || -> PyResult<Pending> {
        let answer = f.cb.bind(py).call1(args(py)?)?;
        let awaitable = py
            .import("inspect")?
            .call_method1("isawaitable", (&answer,))?
            .is_truthy()?;
        if !awaitable {
            return Ok(Pending::Now(answer_of(&answer, &f.what)));
        }
        let schedule = py.import("hotplex._permission")?.getattr("schedule")?;
        let future = schedule.call1((answer, loops.get(py), &f.what))?;
        let (tx, rx) = mpsc::sync_channel(1);
        let fun = f.clone();
        let done = PyCFunction::new_closure(py, None, None, move |args, _| -> PyResult<()> {
            let py = args.py();
            let future = args.get_item(0)?;
            // Cancelled: the wait timed out and already reported it.
            let answer = if future.call_method0("cancelled")?.is_truthy()? {
                Answer::Failed("cancelled".into())
            } else {
                match future.call_method0("result") {
                    Ok(value) => answer_of(&value, &fun.what),
                    Err(err) => failed(py, err, &fun),
                }
            };
            let _ = tx.send(answer);
            Ok(())
        })?;
        future.call_method1("add_done_callback", (done,))?;
        Ok(Pending::Later(rx, future.unbind()))
    };
    started().unwrap_or_else(|err| Pending::Now(failed(py, err, f)))
}

/// Calls the host function `f` from an engine thread (never a Python one)
/// and waits for its answer: an async one on the host's loop, without the
/// GIL, up to `timeout` (then the coroutine is cancelled and the call fails,
/// reported as a `TimeoutError` if `f`'s failures are).
pub(crate) fn call(
    f: &Arc<HostFn>,
    loops: &LoopSlot,
    timeout: Duration,
    args: impl FnOnce(Python<'_>) -> PyResult<Bound<'_, PyTuple>>,
) -> Answer {
    let pending = lifecycle::attach(|py| start(py, f, loops, args));
    match pending {
        None => Answer::Failed("the Python interpreter is exiting".into()),
        Some(Pending::Now(a)) => a,
        Some(Pending::Later(rx, future)) => match rx.recv_timeout(timeout) {
            Ok(a) => a,
            Err(_) => {
                let why = format!(
                    "{} did not answer within {} s; is its event loop blocked (e.g. by \
                     Engine.execute called on the loop's thread; use hotplex.AsyncEngine)?",
                    f.what,
                    timeout.as_secs_f64()
                );
                lifecycle::attach(|py| {
                    let _ = future.bind(py).call_method0("cancel");
                    if f.report {
                        PyTimeoutError::new_err(why.clone())
                            .write_unraisable(py, Some(f.cb.bind(py)));
                    }
                });
                Answer::Failed(why)
            }
        },
    }
}

/// The core's permission handler for `can_use_tool`, waited for up to
/// `timeout`. With `context`, the callable also gets the agent's context of
/// the request (a dict) as a 4th argument.
pub(crate) fn permission_handler(
    cb: Py<PyAny>,
    context: bool,
    loops: LoopSlot,
    timeout: Duration,
) -> PermissionHandler {
    let f = Arc::new(HostFn {
        cb,
        what: "can_use_tool".into(),
        report: true,
    });
    Arc::new(move |req: &ToolRequest<'_>| {
        let answer = call(&f, &loops, timeout, |py| {
            let input = json_to_py(py, req.input)?;
            let verdict = Verdict::from_core(req.verdict.clone(), None);
            let verdict = Bound::new(py, verdict)?.into_any();
            let name = req.tool_name.into_pyobject(py)?.into_any();
            let mut args = vec![name, input, verdict];
            if context {
                args.push(match req.context {
                    Value::Object(_) => json_to_py(py, req.context)?,
                    _ => PyDict::new(py).into_any(),
                });
            }
            PyTuple::new(py, args)
        });
        match answer {
            Answer::Value(v) => Permission::from_answer(&v),
            Answer::NotJson(what) => Permission::unexpected(&what),
            Answer::Failed(why) => Permission::failed(&why),
        }
    })
}

/// Whether `can_use_tool` takes the context (`hotplex._host._wants_context`).
pub(crate) fn wants_context(py: Python<'_>, cb: &Bound<'_, PyAny>) -> PyResult<bool> {
    py.import("hotplex._host")?
        .call_method1("_wants_context", (cb,))?
        .is_truthy()
}

/// Host hooks from the engine keyword `hooks`: their specs in wire form and
/// the handler that calls the function of each id.
pub(crate) fn hooks(
    py: Python<'_>,
    hooks: &Bound<'_, PyAny>,
    loops: LoopSlot,
) -> PyResult<(Value, HookHandler)> {
    let got = py
        .import("hotplex._host")?
        .call_method1("_hook_specs", (hooks,))?;
    let (specs, table): (Bound<'_, PyAny>, Bound<'_, PyDict>) = got.extract()?;
    let specs = py_to_json(&specs, "hooks").map_err(PyTypeError::new_err)?;
    let mut fns: HashMap<String, (Arc<HostFn>, Duration)> = HashMap::new();
    for spec in specs.as_array().into_iter().flatten() {
        let id = spec["id"].as_str().unwrap_or_default().to_owned();
        let event = spec["event"].as_str().unwrap_or_default();
        let Some(cb) = table.get_item(&id)? else {
            continue;
        };
        let secs = spec["timeout"]
            .as_f64()
            .unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS);
        // A bad timeout is the core's InvalidConfig; any value does here.
        let timeout = Duration::try_from_secs_f64(secs).unwrap_or(Duration::ZERO);
        let f = HostFn {
            cb: cb.unbind(),
            what: format!("the {event} hook"),
            report: true,
        };
        fns.insert(id, (Arc::new(f), timeout));
    }
    let handler: HookHandler = Arc::new(move |hook: &HookCall<'_>| {
        let Some((f, timeout)) = fns.get(hook.hook_id) else {
            return Err(format!("no host hook has the id {:?}", hook.hook_id));
        };
        let answer = call(f, &loops, *timeout, |py| {
            let context = py
                .import("hotplex._host")?
                .call_method1("_hook_context", (hook.session_id, hook.event))?;
            let input = json_to_py(py, hook.input)?;
            let tool_use_id = hook.tool_use_id.into_pyobject(py)?.into_any();
            PyTuple::new(py, [input, tool_use_id, context])
        });
        match answer {
            Answer::Value(v) => Ok(v),
            Answer::NotJson(why) | Answer::Failed(why) => Err(why),
        }
    });
    Ok((specs, handler))
}

/// The functions of host tools, by (server, tool).
pub(crate) type ToolTable = HashMap<(String, String), Arc<HostFn>>;

/// Host tools from the engine keyword `tools`: their servers in wire form
/// and the function of each (server, tool).
pub(crate) fn tools(py: Python<'_>, tools: &Bound<'_, PyAny>) -> PyResult<(Value, ToolTable)> {
    let got = py
        .import("hotplex._host")?
        .call_method1("_tool_servers", (tools,))?;
    let (servers, table): (Bound<'_, PyAny>, Bound<'_, PyDict>) = got.extract()?;
    let servers = py_to_json(&servers, "tools").map_err(PyTypeError::new_err)?;
    let mut fns = ToolTable::new();
    for (key, cb) in table.iter() {
        let (server, tool): (String, String) = key.extract()?;
        let f = HostFn {
            cb: cb.unbind(),
            what: format!("the tool {tool}"),
            report: false,
        };
        fns.insert((server, tool), Arc::new(f));
    }
    Ok((servers, fns))
}

/// The handler that calls the host tools of `fns`, each waited for up to
/// `timeout`.
pub(crate) fn tool_handler(fns: ToolTable, loops: LoopSlot, timeout: Duration) -> ToolHandler {
    Arc::new(move |inv: &ToolInvocation<'_>| {
        let key = (inv.server.to_owned(), inv.tool.to_owned());
        let Some(f) = fns.get(&key) else {
            return Err(format!("{} has no tool named {:?}", inv.server, inv.tool));
        };
        let answer = call(f, &loops, timeout, |py| {
            let arguments = json_to_py(py, inv.arguments)?;
            PyTuple::new(py, [arguments])
        });
        match answer {
            Answer::Value(v) => Ok(v),
            Answer::NotJson(why) | Answer::Failed(why) => Err(why),
        }
    })
}
