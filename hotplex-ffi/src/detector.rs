//! `hotplex_detector`, `hotplex_detector_builder`, the audit callback and
//! the check functions.

use std::ffi::{c_char, c_void};

use hotplex_core::waf::{AuditEvent, CheckKind, Detector, DetectorBuilder, Verdict};

use crate::error::{
    borrow, borrow_mut, c_string, check_out, free_box, guard, str_arg, write_out, Failure,
};
use crate::{hotplex_status, hotplex_verdict};

/// A command WAF: screens shell commands, prompts and tool calls. Opaque;
/// create it with `hotplex_detector_new()` or a builder, release it with
/// `hotplex_detector_free()`.
///
/// Thread safety: a detector is immutable. Any number of threads may call
/// the `hotplex_detector_check_*` functions on the same detector at once;
/// free it only when no call is in progress.
pub struct hotplex_detector {
    inner: Detector,
}

impl hotplex_detector {
    /// The core detector.
    pub fn detector(&self) -> &Detector {
        &self.inner
    }
}

/// Configures a detector: built-in rules on or off, custom rules, allow
/// paths, an audit callback. Opaque; create it with
/// `hotplex_detector_builder_new()`, release it with
/// `hotplex_detector_builder_free()`.
///
/// Thread safety: use a builder from one thread at a time (it may be moved
/// between threads).
pub struct hotplex_detector_builder {
    inner: DetectorBuilder,
    audit: Option<CAudit>,
}

/// Which check produced an audited verdict.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum hotplex_check_kind {
    /// `hotplex_detector_check_command()`.
    Command = 1,
    /// `hotplex_detector_check_prompt()`.
    Prompt = 2,
    /// `hotplex_detector_check_tool()`.
    Tool = 3,
}

impl From<CheckKind> for hotplex_check_kind {
    fn from(k: CheckKind) -> hotplex_check_kind {
        match k {
            CheckKind::Command => hotplex_check_kind::Command,
            CheckKind::Prompt => hotplex_check_kind::Prompt,
            CheckKind::Tool => hotplex_check_kind::Tool,
        }
    }
}

/// Receives every verdict that is not safe, synchronously, on the thread
/// that made the check (so concurrently when a detector is shared: the
/// callback must be thread-safe). `input` points to `input_len` bytes of the
/// checked input (for tool calls: the tool input JSON) followed by a NUL byte;
/// the input itself may contain NUL bytes. `input` and `verdict` are valid
/// only during the call: copy what you need, and do not free the verdict.
/// The callback must not unwind (no C++ exceptions, no longjmp out of it).
pub type hotplex_audit_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        kind: hotplex_check_kind,
        input: *const c_char,
        input_len: usize,
        verdict: *const hotplex_verdict,
    ),
>;

/// A C audit callback with its user data.
#[derive(Clone, Copy)]
struct CAudit {
    callback: unsafe extern "C" fn(
        *mut c_void,
        hotplex_check_kind,
        *const c_char,
        usize,
        *const hotplex_verdict,
    ),
    user_data: *mut c_void,
}

// SAFETY: the header requires the callback to be callable from any thread,
// concurrently, with this `user_data`; hotplex never dereferences it.
unsafe impl Send for CAudit {}
// SAFETY: as above.
unsafe impl Sync for CAudit {}

impl CAudit {
    fn call(&self, ev: &AuditEvent<'_>) {
        let verdict = hotplex_verdict::new(ev.verdict.clone());
        // A NUL-terminated copy, for callers that prefer C strings.
        let mut input = Vec::with_capacity(ev.input.len() + 1);
        input.extend_from_slice(ev.input.as_bytes());
        input.push(0);
        // SAFETY: the callback's contract (see hotplex_audit_callback): both
        // pointers are valid for the duration of the call, which is all the
        // callback may rely on.
        unsafe {
            (self.callback)(
                self.user_data,
                ev.kind.into(),
                input.as_ptr().cast(),
                ev.input.len(),
                &verdict,
            )
        }
    }
}

/// Creates a detector with the built-in rules. On success `*out` receives
/// it; free it with `hotplex_detector_free()`.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_new(out: *mut *mut hotplex_detector) -> hotplex_status {
    guard(|| {
        check_out(out, "out")?;
        let d = Box::new(hotplex_detector {
            inner: Detector::new(),
        });
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(d)) };
        Ok(())
    })
}

/// Frees a detector. NULL is a no-op. No check may be in progress on it.
///
/// # Safety
/// `d` must be NULL or a detector from this library that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_free(d: *mut hotplex_detector) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(d) }
}

/// Creates a builder with the built-in rules on, no custom rules, no allow
/// paths and no audit callback. On success `*out` receives it; free it with
/// `hotplex_detector_builder_free()`.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_new(
    out: *mut *mut hotplex_detector_builder,
) -> hotplex_status {
    guard(|| {
        check_out(out, "out")?;
        let b = Box::new(hotplex_detector_builder {
            inner: DetectorBuilder::new(),
            audit: None,
        });
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(b)) };
        Ok(())
    })
}

/// Frees a builder. NULL is a no-op. Detectors built from it stay valid.
///
/// # Safety
/// `b` must be NULL or a builder from this library that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_free(b: *mut hotplex_detector_builder) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(b) }
}

/// Turns the built-in rules on (the default) or off.
///
/// # Safety
/// `b` must be NULL or a live builder, not used by another thread meanwhile.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_set_builtin_rules(
    b: *mut hotplex_detector_builder,
    on: bool,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let b = unsafe { borrow_mut(b, "builder") }?;
        b.inner.builtin_rules(on);
        Ok(())
    })
}

/// Adds custom rules from the text of a rule file, in either format: one
/// `pattern|description|level|category[|danger|safe]` per line (`#`
/// comments), or a JSON array of rule objects. On error
/// (`HOTPLEX_STATUS_INVALID_RULE`, message `"invalid rule at line N: ..."`)
/// nothing is added.
///
/// # Safety
/// `b` must be NULL or a live builder, not used by another thread meanwhile;
/// `rules` must be NULL or point to `rules_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_add_rules(
    b: *mut hotplex_detector_builder,
    rules: *const c_char,
    rules_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let b = unsafe { borrow_mut(b, "builder") }?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(rules, rules_len, "rules") }?;
        b.inner.rules_from_str(text)?;
        Ok(())
    })
}

/// Adds an absolute path that file tools may touch even where a rule would
/// object (a path under it is allowed too). A relative or empty path is
/// `HOTPLEX_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `b` must be NULL or a live builder, not used by another thread meanwhile;
/// `path` must be NULL or point to `path_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_add_allow_path(
    b: *mut hotplex_detector_builder,
    path: *const c_char,
    path_len: usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let b = unsafe { borrow_mut(b, "builder") }?;
        // SAFETY: caller's contract.
        let path = unsafe { str_arg(path, path_len, "path") }?;
        b.inner.allow_path(path)?;
        Ok(())
    })
}

/// Sets the audit callback of the detectors built from now on (replacing
/// any earlier one); a NULL `callback` removes it. `user_data` is passed to
/// every call unchanged and must stay valid as long as any detector built
/// with it lives. See `hotplex_audit_callback` for what the callback may do.
///
/// # Safety
/// `b` must be NULL or a live builder, not used by another thread meanwhile;
/// `callback` must be NULL or a function with the `hotplex_audit_callback`
/// contract.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_set_audit_callback(
    b: *mut hotplex_detector_builder,
    callback: hotplex_audit_callback,
    user_data: *mut c_void,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let b = unsafe { borrow_mut(b, "builder") }?;
        b.audit = callback.map(|callback| CAudit {
            callback,
            user_data,
        });
        Ok(())
    })
}

/// Builds a detector from the builder's current settings. On success `*out`
/// receives it; free it with `hotplex_detector_free()`. The builder is not
/// consumed: change it and build again, and free it separately.
///
/// # Safety
/// `b` must be NULL or a live builder, not used by another thread meanwhile;
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_builder_build(
    b: *const hotplex_detector_builder,
    out: *mut *mut hotplex_detector,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let b = unsafe { borrow(b, "builder") }?;
        check_out(out, "out")?;
        let detector = match b.audit {
            None => b.inner.build()?,
            Some(audit) => {
                let mut builder = b.inner.clone();
                builder.on_audit(move |ev: &AuditEvent<'_>| audit.call(ev));
                builder.build()?
            }
        };
        let d = Box::new(hotplex_detector { inner: detector });
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(d)) };
        Ok(())
    })
}

/// Shared body of the check functions: validates the detector and the
/// out-param, runs `check` and hands the verdict out.
///
/// # Safety
/// `d` must be NULL or a live detector; `out` NULL or valid for writing.
unsafe fn run_check(
    d: *const hotplex_detector,
    out: *mut *mut hotplex_verdict,
    check: impl FnOnce(&Detector) -> Result<Verdict, Failure>,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let d = unsafe { borrow(d, "detector") }?;
        check_out(out, "out")?;
        let verdict = Box::new(hotplex_verdict::new(check(&d.inner)?));
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, Box::into_raw(verdict)) };
        Ok(())
    })
}

/// Screens a shell command line, as an agent's Bash tool would run it. On
/// success `*out` receives the verdict (free it with `hotplex_verdict_free()`);
/// check `hotplex_verdict_blocked()` before running the command.
///
/// # Safety
/// `d` must be NULL or a live detector; `command` must be NULL or point to
/// `command_len` readable bytes; `out` must be NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_check_command(
    d: *const hotplex_detector,
    command: *const c_char,
    command_len: usize,
    out: *mut *mut hotplex_verdict,
) -> hotplex_status {
    let check = |det: &Detector| {
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(command, command_len, "command") }?;
        Ok(det.check_command(text))
    };
    // SAFETY: caller's contract.
    unsafe { run_check(d, out, check) }
}

/// Screens a natural-language prompt: prose never blocks; code in it and
/// dangerous requests do. Out-param and ownership as for
/// `hotplex_detector_check_command()`.
///
/// # Safety
/// `d` must be NULL or a live detector; `prompt` must be NULL or point to
/// `prompt_len` readable bytes; `out` must be NULL or valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_check_prompt(
    d: *const hotplex_detector,
    prompt: *const c_char,
    prompt_len: usize,
    out: *mut *mut hotplex_verdict,
) -> hotplex_status {
    let check = |det: &Detector| {
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(prompt, prompt_len, "prompt") }?;
        Ok(det.check_prompt(text))
    };
    // SAFETY: caller's contract.
    unsafe { run_check(d, out, check) }
}

/// Screens a Claude Code tool call: `name` is the tool name (`Bash`, `Write`,
/// `Edit`, `Read`, ...), `input_json` its input, which must be a JSON object
/// (otherwise `HOTPLEX_STATUS_INVALID_ARGUMENT`). Out-param and ownership as
/// for `hotplex_detector_check_command()`.
///
/// # Safety
/// `d` must be NULL or a live detector; `name` and `input_json` must be NULL
/// or point to `name_len` / `input_json_len` readable bytes; `out` must be
/// NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_check_tool(
    d: *const hotplex_detector,
    name: *const c_char,
    name_len: usize,
    input_json: *const c_char,
    input_json_len: usize,
    out: *mut *mut hotplex_verdict,
) -> hotplex_status {
    let check = |det: &Detector| {
        // SAFETY: caller's contract.
        let name = unsafe { str_arg(name, name_len, "name") }?;
        // SAFETY: caller's contract.
        let json = unsafe { str_arg(input_json, input_json_len, "input_json") }?;
        Ok(det.check_tool(name, json)?)
    };
    // SAFETY: caller's contract.
    unsafe { run_check(d, out, check) }
}

/// Shows how a command is judged, for debugging rules and reports: the
/// canonical texts of every scope, every rule that matched (not only the most
/// severe) and the final verdict. Nothing is audited. On success `*json_out`
/// receives a NUL-terminated JSON object that the caller must release with
/// `hotplex_string_free()`. The object's keys:
///
/// * `"input"`: the command, as given;
/// * `"control"`: a verdict object (as from `hotplex_verdict_to_json()`) when
///   the control-byte pre-check decided alone, else `null`;
/// * `"commands"`: canonical simple commands, each wrapper level on its own;
/// * `"redirects"`: redirections as `"op target"`;
/// * `"pipelines"`: pipelines, commands joined by `" | "`;
/// * `"code"`: interpreter code and SQL statements, prefixed by the program;
/// * `"incomplete"`: `true` when a parse limit was hit (the verdict is then
///   at least moderate);
/// * `"hits"`: every rule that matched, in scope order, as objects with
///   `"rule_id"`, `"level"`, `"category"`, `"scope"` (`"text"`, `"script"`,
///   `"command"`, `"redirect"`, `"pipeline"` or `"code"`) and `"text"` (the
///   text it matched);
/// * `"effects"`: what the command does, as the effect model derived it
///   (strings such as `"critical: delete-tree /etc (recursive delete)"`);
///   the verdict is the stricter of these and the rules;
/// * `"verdict"`: the verdict object `hotplex_detector_check_command()` gives
///   for the same input.
///
/// Levels and categories are lower-case names (`"critical"`,
/// `"file_delete"`). Later versions may add keys; ignore unknown ones.
///
/// # Safety
/// `d` must be NULL or a live detector; `command` must be NULL or point to
/// `command_len` readable bytes; `json_out` must be NULL or valid for writing
/// a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_detector_explain(
    d: *const hotplex_detector,
    command: *const c_char,
    command_len: usize,
    json_out: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let d = unsafe { borrow(d, "detector") }?;
        check_out(json_out, "json_out")?;
        // SAFETY: caller's contract.
        let text = unsafe { str_arg(command, command_len, "command") }?;
        let json = serde_json::to_string(&d.inner.explain(text))
            .map_err(|e| Failure::invalid_argument(format!("cannot encode explanation: {e}")))?;
        // JSON escapes NUL as \u0000, so `c_string` never has to replace one.
        let raw = c_string(&json).into_raw();
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(json_out, raw) };
        Ok(())
    })
}
