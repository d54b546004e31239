//! The `signal` option of `execute` and `stream`: an `AbortSignal`.
//!
//! Design notes:
//!
//! * **No JS object is held from Rust.** The `abort` listener is a function
//!   made here, added with `{ once: true }`; what removes it again is
//!   `signal.removeEventListener.bind(signal, 'abort', listener)`, held as a
//!   `FunctionRef` (safe to drop on any thread). The listener reads the
//!   signal from `this` (an `EventTarget` calls its listeners with itself),
//!   so it holds no reference to it either: a turn never keeps a signal, or
//!   a signal a turn, alive through a napi reference.
//! * **The error is built when the signal fires**, on the JS thread, with
//!   the reason the signal has then: `name` `'AbortError'`, `code`
//!   `'ABORT_ERR'` and `cause` the reason, as Node's own `AbortError`. It
//!   travels to the settle callback as a `napi::Error` (which holds it by a
//!   thread-safe reference) and is rejected with as is.
//! * **Listeners are removed when the turn ends**, on the JS thread: by the
//!   settle callback of `execute`, and, for a stream, by a (weak)
//!   threadsafe function the stream's future awaits before it reports the
//!   end, or directly by `cancel()` and the finalizer. So a signal shared by
//!   many turns does not collect listeners.

use std::sync::{Arc, Mutex as StdMutex};

use napi::bindgen_prelude::{FnArgs, Function, FunctionRef, JsObjectValue, Object, Unknown};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, JsValue, Result, Status, ValueType};
use tokio::sync::watch;

/// The message of an `AbortError` (Node's own).
const MESSAGE: &str = "The operation was aborted";

/// An `AbortError` as Node's own: `name` `'AbortError'`, `code`
/// `'ABORT_ERR'`, `cause` the signal's `reason` (set as
/// `new Error(message, { cause })` sets it; left out when there is none).
pub(crate) fn abort_error(env: &Env, reason: Option<Unknown>) -> napi::Error {
    let build = || -> Result<napi::Error> {
        let global = env.get_global()?;
        let made = match reason {
            Some(reason) => {
                let ctor: Function<FnArgs<(&str, Object)>, Unknown> =
                    global.get_named_property("Error")?;
                let mut options = Object::new(env)?;
                options.set_named_property("cause", reason)?;
                ctor.new_instance(FnArgs::from((MESSAGE, options)))?
            }
            None => {
                let ctor: Function<&str, Unknown> = global.get_named_property("Error")?;
                ctor.new_instance(MESSAGE)?
            }
        };
        // SAFETY: `new Error(...)` is an object.
        let mut err = unsafe { made.cast::<Object>() }?;
        err.set_named_property("name", "AbortError")?;
        err.set_named_property("code", "ABORT_ERR")?;
        Ok(napi::Error::from(err.to_unknown()))
    };
    build().unwrap_or_else(|_| napi::Error::new(Status::Cancelled, MESSAGE))
}

/// A validated `signal` option.
pub(crate) struct Signal<'a>(Object<'a>);

impl<'a> Signal<'a> {
    /// `value` as an `AbortSignal`: an object with a boolean `aborted` and
    /// `addEventListener` / `removeEventListener` methods (a DOM or Node
    /// `AbortSignal`, or a faithful polyfill). `None` when it is not one.
    pub(crate) fn read(value: Unknown<'a>) -> Option<Signal<'a>> {
        if value.get_type().ok()? != ValueType::Object {
            return None;
        }
        // SAFETY: checked to be an object.
        let obj = unsafe { value.cast::<Object>() }.ok()?;
        let is = |key: &str, ty: ValueType| {
            obj.get_named_property::<Unknown>(key)
                .and_then(|v| v.get_type())
                .is_ok_and(|t| t == ty)
        };
        let ok = is("aborted", ValueType::Boolean)
            && is("addEventListener", ValueType::Function)
            && is("removeEventListener", ValueType::Function);
        ok.then_some(Signal(obj))
    }

    /// If the signal has already fired: the `AbortError` to reject with.
    pub(crate) fn aborted(&self, env: &Env) -> Result<Option<napi::Error>> {
        if !self.0.get_named_property::<bool>("aborted")? {
            return Ok(None);
        }
        let reason: Unknown = self.0.get_named_property("reason")?;
        Ok(Some(abort_error(env, Some(reason))))
    }

    /// Adds a listener (once) that hands `on_abort` the `AbortError` when
    /// the signal fires; returns what removes it again.
    pub(crate) fn attach(
        &self,
        env: &Env,
        on_abort: impl Fn(napi::Error) + 'static,
    ) -> Result<Detach> {
        let listener =
            env.create_function_from_closure::<Unknown, (), _>("hotplexAbort", move |ctx| {
                // `this` is the signal; a listener that cannot read it still
                // aborts (with an `undefined` cause).
                let reason = ctx
                    .this::<Unknown>()
                    .ok()
                    .filter(|t| t.get_type().ok() == Some(ValueType::Object))
                    // SAFETY: checked to be an object.
                    .and_then(|t| unsafe { t.cast::<Object>() }.ok())
                    .and_then(|t| t.get_named_property::<Unknown>("reason").ok());
                on_abort(abort_error(ctx.env, reason));
                Ok(())
            })?;
        let mut once = Object::new(env)?;
        once.set_named_property("once", true)?;
        let add: Function<FnArgs<(&str, Unknown, Object)>, Unknown> =
            self.0.get_named_property("addEventListener")?;
        add.apply(self.0, FnArgs::from(("abort", listener.to_unknown(), once)))?;

        let remove: Unknown = self.0.get_named_property("removeEventListener")?;
        // SAFETY: `read` checked it is a function (an object).
        let remove_obj = unsafe { remove.cast::<Object>() }?;
        let bind: Bind = remove_obj.get_named_property("bind")?;
        let remover = bind.apply(
            remove,
            FnArgs::from((self.0, "abort", listener.to_unknown())),
        )?;
        Ok(Detach {
            remover: remover.create_ref()?,
        })
    }
}

/// `Function.prototype.bind` of `removeEventListener`, as called here:
/// `(signal, 'abort', listener)` to a function of no arguments.
type Bind<'a> = Function<'a, FnArgs<(Object<'a>, &'a str, Unknown<'a>)>, Function<'a, (), ()>>;

/// Removes a turn's `abort` listener from its signal (on the JS thread).
pub(crate) struct Detach {
    remover: FunctionRef<(), ()>,
}

impl Detach {
    /// Removes the listener now (on the JS thread). Errors are ignored: a
    /// signal that cannot remove its listener keeps a listener that no
    /// longer does anything once the turn is over.
    pub(crate) fn run(self, env: &Env) {
        if let Ok(f) = self.remover.borrow_back(env) {
            let _ = f.call(());
        }
    }

    /// What removes the listener from a runtime thread: a weak threadsafe
    /// function (it never keeps Node running).
    pub(crate) fn threadsafe(self, env: &Env) -> Result<RemoteDetach> {
        let f = self.remover.borrow_back(env)?;
        let tsfn = f
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .callee_handled::<false>()
            .build()?;
        Ok(RemoteDetach {
            local: Some(self),
            remote: tsfn,
        })
    }
}

/// `Detach` usable from both the JS thread and a runtime thread.
pub(crate) struct RemoteDetach {
    local: Option<Detach>,
    remote: ThreadsafeFunction<(), (), (), Status, false, true>,
}

impl RemoteDetach {
    /// Removes the listener from a runtime thread; resolves once it ran on
    /// the JS thread (or could not be queued: the environment is going).
    pub(crate) async fn run_remote(self) {
        let _ = self.remote.call_async(()).await;
    }

    /// Removes the listener now, on the JS thread.
    pub(crate) fn run_local(mut self, env: &Env) {
        if let Some(d) = self.local.take() {
            d.run(env);
        }
    }
}

/// Where an `execute` turn learns that its signal fired: the listener
/// stores the error and raises the flag the turn's future selects on.
pub(crate) struct AbortSlot {
    error: StdMutex<Option<napi::Error>>,
    fired: watch::Sender<bool>,
}

impl AbortSlot {
    /// A slot no signal has fired.
    pub(crate) fn new() -> Arc<AbortSlot> {
        Arc::new(AbortSlot {
            error: StdMutex::new(None),
            fired: watch::Sender::new(false),
        })
    }

    /// The signal fired with `err` (on the JS thread).
    pub(crate) fn fire(&self, err: napi::Error) {
        *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err);
        self.fired.send_replace(true);
    }

    /// Resolves when the signal fires (never, if it does not).
    pub(crate) async fn wait(&self) {
        let mut rx = self.fired.subscribe();
        // `Err` only if the sender is gone, which `self` prevents.
        let _ = rx.wait_for(|f| *f).await;
    }

    /// The error the signal fired with, once.
    pub(crate) fn take(&self) -> Option<napi::Error> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
