//! Status codes, the per-thread error message, panic containment and the
//! argument helpers shared by every entry point.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use hotplex_core::ErrorCode;

/// What a fallible hotplex function returns. `HOTPLEX_STATUS_OK` (0) is
/// success; anything else is an error, described by
/// `hotplex_last_error_message()` and named by `hotplex_status_name()`. The
/// numbers are hotplex's error codes (the `x-hotplex-errors` table of
/// `schema/hotplex.schema.json`). Later versions may add codes: treat any
/// unknown non-zero value as an error.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum hotplex_status {
    /// Success; out-params were written.
    Ok = 0,
    /// A NULL handle or out-param, NULL text with a non-zero length, a
    /// relative allow path, tool input that is not a JSON object, a verdict
    /// without a span, ...
    InvalidArgument = 1,
    /// An input string is not valid UTF-8.
    Utf8 = 2,
    /// A custom rule could not be used; the message names its line.
    InvalidRule = 3,
    /// hotplex panicked (a bug). The panic was contained; the handles that
    /// were passed should be freed and not used again.
    Panic = 4,
    /// An engine option, session id, workdir or prompt was rejected before
    /// anything ran; the message names the option.
    InvalidConfig = 5,
    /// The WAF blocked the prompt; `hotplex_last_error_detail()` holds the
    /// verdict.
    DangerBlocked = 6,
    /// The turn exceeded its timeout (or was cancelled); the agent was
    /// interrupted, or killed if it did not stop.
    TurnTimeout = 7,
    /// The agent process died during the turn; the next turn resumes.
    SessionDead = 8,
    /// The agent ended the turn with an error result;
    /// `hotplex_last_error_detail()` holds its subtype.
    TurnFailed = 9,
    /// Every session slot holds a busy session.
    CapacityExceeded = 10,
    /// The agent could not be started or did not answer within the startup
    /// timeout.
    StartFailed = 11,
    /// The engine was closed.
    Closed = 12,
    /// Nothing happened within the timeout given (not an error of the
    /// turn: call again).
    Pending = 13,
    /// A contained process could not be spawned.
    Spawn = 14,
    /// An operating-system call failed.
    Io = 15,
    /// Containment of an agent could not be confirmed.
    Containment = 16,
    /// A live control or `hotplex_engine_fork_session()` named a session
    /// that is not in the pool (or, for a fork, has no conversation yet).
    SessionNotFound = 17,
    /// The agent does not support the request (its version lacks the
    /// control, or it refused it as unknown).
    Unsupported = 18,
    /// The agent answered a live control with an error, or not within the
    /// engine's `control_timeout`.
    ControlFailed = 19,
    /// `hotplex_answer_question()` or `hotplex_approve_plan()` named a
    /// question or plan that does not wait for an answer (answered,
    /// cancelled by an interrupt or a stopped session, timed out).
    QuestionNotFound = 20,
    /// An answer was rejected (a key that names no question, several
    /// labels for a single-choice question, ...); the question still waits.
    InvalidAnswer = 21,
    /// A question or plan got no answer within the engine's
    /// `question_timeout`; the turn was interrupted.
    QuestionTimeout = 22,
    /// This host lost the session to another owner (its lease was taken
    /// over): its writes are rejected and its process must stop.
    Fenced = 23,
    /// Another host owns the session; the turn belongs there.
    OwnedElsewhere = 24,
}

impl From<ErrorCode> for hotplex_status {
    /// Exhaustive (`ErrorCode` is a closed table): a code added to the core
    /// stops this crate from building until it has a status of its own.
    /// The numbers are equal (the unit tests check every one).
    fn from(code: ErrorCode) -> hotplex_status {
        match code {
            ErrorCode::InvalidArgument => hotplex_status::InvalidArgument,
            ErrorCode::Utf8 => hotplex_status::Utf8,
            ErrorCode::InvalidRule => hotplex_status::InvalidRule,
            ErrorCode::Panic => hotplex_status::Panic,
            ErrorCode::InvalidConfig => hotplex_status::InvalidConfig,
            ErrorCode::DangerBlocked => hotplex_status::DangerBlocked,
            ErrorCode::TurnTimeout => hotplex_status::TurnTimeout,
            ErrorCode::SessionDead => hotplex_status::SessionDead,
            ErrorCode::TurnFailed => hotplex_status::TurnFailed,
            ErrorCode::CapacityExceeded => hotplex_status::CapacityExceeded,
            ErrorCode::StartFailed => hotplex_status::StartFailed,
            ErrorCode::Closed => hotplex_status::Closed,
            ErrorCode::Pending => hotplex_status::Pending,
            ErrorCode::Spawn => hotplex_status::Spawn,
            ErrorCode::Io => hotplex_status::Io,
            ErrorCode::Containment => hotplex_status::Containment,
            ErrorCode::SessionNotFound => hotplex_status::SessionNotFound,
            ErrorCode::Unsupported => hotplex_status::Unsupported,
            ErrorCode::ControlFailed => hotplex_status::ControlFailed,
            ErrorCode::QuestionNotFound => hotplex_status::QuestionNotFound,
            ErrorCode::InvalidAnswer => hotplex_status::InvalidAnswer,
            ErrorCode::QuestionTimeout => hotplex_status::QuestionTimeout,
            ErrorCode::Fenced => hotplex_status::Fenced,
            ErrorCode::OwnedElsewhere => hotplex_status::OwnedElsewhere,
        }
    }
}

/// The stable name of a status: `"ok"`, `"invalid_config"`,
/// `"turn_timeout"`, ... (the `name` column of the schema's
/// `x-hotplex-errors`), or `"unknown"` for a number that is no status. A
/// static NUL-terminated string: do not free it. Takes an `int32_t` so that
/// any value (also a status from a newer library) is safe to pass. Never
/// fails.
#[no_mangle]
pub extern "C" fn hotplex_status_name(status: i32) -> *const c_char {
    static NAMES: OnceLock<Vec<CString>> = OnceLock::new();
    value_guard(c"unknown".as_ptr(), || {
        // Indexed by number: the codes are numbered 1, 2, ... in the order
        // of `ErrorCode::ALL` (the core's tests check it).
        let names = NAMES.get_or_init(|| {
            let errors = ErrorCode::ALL.map(ErrorCode::name);
            std::iter::once("ok").chain(errors).map(c_string).collect()
        });
        usize::try_from(status)
            .ok()
            .and_then(|i| names.get(i))
            .map_or(c"unknown".as_ptr(), |n| n.as_ptr())
    })
}

/// An error on its way to C: a status and the message for
/// `hotplex_last_error_message`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: hotplex_status,
    pub(crate) message: String,
    /// JSON for `hotplex_last_error_detail`, for errors that carry more
    /// than a message.
    pub(crate) detail: Option<String>,
}

impl Failure {
    pub(crate) fn new(status: hotplex_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            detail: None,
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Failure {
        Failure::new(hotplex_status::InvalidArgument, message)
    }

    pub(crate) fn null(what: &str) -> Failure {
        Failure::invalid_argument(format!("{what} is NULL"))
    }
}

impl From<hotplex_core::Error> for Failure {
    fn from(e: hotplex_core::Error) -> Failure {
        Failure {
            status: e.code().into(),
            message: e.to_string(),
            detail: e.detail().map(|d| d.to_string()),
        }
    }
}

/// A C string from Rust text; NUL bytes (which C cannot hold) become U+FFFD.
pub(crate) fn c_string(s: &str) -> CString {
    match CString::new(s) {
        Ok(c) => c,
        Err(_) => CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// A per-thread C string slot (the last error message, its detail).
type Slot = std::thread::LocalKey<RefCell<Option<CString>>>;

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    static LAST_DETAIL: RefCell<Option<CString>> = const { RefCell::new(None) };
}

/// Records a call's outcome in this thread's slots: the message and detail
/// of a failure, or nothing (both cleared) for a success.
pub(crate) fn set_last(message: Option<&str>, detail: Option<&str>) {
    slot_set(&LAST_ERROR, message);
    slot_set(&LAST_DETAIL, detail);
}

/// Stores (or with `None` clears) a slot's text.
fn slot_set(slot: &'static Slot, text: Option<&str>) {
    // `try_with`: during thread teardown the slot may be gone; then there is
    // nobody left to read it anyway.
    let _ = slot.try_with(|cell| {
        if let Ok(mut cell) = cell.try_borrow_mut() {
            *cell = text.map(c_string);
        }
    });
}

/// A slot's text as a C pointer, NULL when empty. The CString lives in the
/// thread-local until the next status-returning call replaces it.
fn slot_ptr(slot: &'static Slot) -> *const c_char {
    slot.try_with(|cell| match cell.try_borrow() {
        Ok(s) => s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        Err(_) => std::ptr::null(),
    })
    .unwrap_or(std::ptr::null())
}

/// The JSON detail of the last failed status-returning call on this thread,
/// for errors that carry more than a message, or NULL: for
/// `HOTPLEX_STATUS_DANGER_BLOCKED` `{"error": "danger_blocked", "verdict":
/// {...}}`, for `HOTPLEX_STATUS_TURN_FAILED` `{"error": "turn_failed",
/// "subtype": ..., "message": ...}`, for `HOTPLEX_STATUS_OWNED_ELSEWHERE`
/// `{"error": "owned_elsewhere", "session": ..., "owner": ...}`. Owned by
/// hotplex, valid until the next status-returning call on this thread.
/// Never fails.
#[no_mangle]
pub extern "C" fn hotplex_last_error_detail() -> *const c_char {
    value_guard(std::ptr::null(), || slot_ptr(&LAST_DETAIL))
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "unknown panic payload"
    };
    format!("internal error (panic): {what}")
}

/// Runs the body of a status-returning entry point: catches panics, maps the
/// outcome to a status and sets the last error message (cleared on success).
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> hotplex_status {
    // AssertUnwindSafe: after a panic the caller is told (HOTPLEX_STATUS_PANIC)
    // that the handles involved must not be used again.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last(None, None);
            hotplex_status::Ok
        }
        Ok(Err(failure)) => {
            set_last(Some(&failure.message), failure.detail.as_deref());
            failure.status
        }
        Err(payload) => {
            set_last(Some(&panic_message(payload.as_ref())), None);
            // Dropping a payload can itself panic; do not let that escape.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            hotplex_status::Panic
        }
    }
}

/// Runs the body of an accessor that cannot fail: catches panics (returning
/// `fallback`) and leaves the last error message alone.
pub(crate) fn value_guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            fallback
        }
    }
}

/// The message of the last failed status-returning call on this thread:
/// NUL-terminated UTF-8, owned by hotplex, valid until the next hotplex
/// function that returns `hotplex_status` is called on this thread. NULL
/// when that last call returned `HOTPLEX_STATUS_OK` (or none was made).
/// Functions that return no status (accessors, `*_free`, version queries)
/// leave it unchanged. Never fails.
#[no_mangle]
pub extern "C" fn hotplex_last_error_message() -> *const c_char {
    value_guard(std::ptr::null(), || slot_ptr(&LAST_ERROR))
}

/// Releases a handle made by `Box::into_raw`; NULL is ignored, a panic in
/// a destructor is contained. The body of every `*_free` function.
///
/// # Safety
/// `p` must be NULL or a pointer from `Box::into_raw` not freed yet, that
/// nothing else uses any more.
pub(crate) unsafe fn free_box<T>(p: *mut T) {
    if p.is_null() {
        return;
    }
    value_guard((), || {
        // SAFETY: forwarded to the caller (see above).
        drop(unsafe { Box::from_raw(p) });
    })
}

/// Borrows a handle, or fails with INVALID_ARGUMENT if it is NULL.
///
/// # Safety
/// `p` must be NULL or point to a live `T` that nothing mutates during `'a`.
pub(crate) unsafe fn borrow<'a, T>(p: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: forwarded to the caller (see above).
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// Borrows a handle mutably, or fails with INVALID_ARGUMENT if it is NULL.
///
/// # Safety
/// `p` must be NULL or point to a live `T` that nothing else uses during `'a`.
pub(crate) unsafe fn borrow_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: forwarded to the caller (see above).
    unsafe { p.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// Fails with INVALID_ARGUMENT if an out-param is NULL. Checked before any
/// work is done, so that nothing is computed (or leaked) for nowhere.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<(), Failure> {
    if out.is_null() {
        Err(Failure::null(what))
    } else {
        Ok(())
    }
}

/// Writes an out-param that [`check_out`] accepted. The last step of a
/// successful call.
///
/// # Safety
/// `out` must be non-NULL, aligned and valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: forwarded to the caller; `write` does not drop the old value,
    // which C left uninitialised or owns itself.
    unsafe { out.write(value) }
}

/// Borrows a `(ptr, len)` input string. NULL with length 0 is the empty
/// string; NULL with a length is INVALID_ARGUMENT; bytes that are not UTF-8
/// are HOTPLEX_STATUS_UTF8.
///
/// # Safety
/// Unless NULL, `ptr` must point to `len` readable bytes that stay unchanged
/// during `'a`.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return if len == 0 {
            Ok("")
        } else {
            Err(Failure::invalid_argument(format!(
                "{what} is NULL but its length is {len}"
            )))
        };
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid_argument(format!(
            "{what} length {len} is too large"
        )));
    }
    // SAFETY: non-NULL, `len` readable bytes (caller), len <= isize::MAX.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            hotplex_status::Utf8,
            format!("{what} is not valid UTF-8: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_error() -> Option<String> {
        let p = hotplex_last_error_message();
        // SAFETY: a non-NULL message is a live NUL-terminated string.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, hotplex_status::Panic);
        let msg = last_error().expect("a message after a panic");
        assert!(msg.contains("boom"), "{msg}");

        // The next successful call clears it.
        assert_eq!(guard(|| Ok(())), hotplex_status::Ok);
        assert_eq!(last_error(), None);

        assert_eq!(value_guard(7, || panic!("quiet")), 7);
        let formatted = guard(|| panic!("{} {}", "with", "format"));
        assert_eq!(formatted, hotplex_status::Panic);
        assert!(last_error().unwrap().contains("with format"));
    }

    #[test]
    fn every_error_code_has_the_status_with_its_number_and_name() {
        for code in ErrorCode::ALL {
            let status = hotplex_status::from(code);
            assert_eq!(status as i32, code.number(), "{code:?}");
            // SAFETY: hotplex_status_name returns a static C string.
            let name = unsafe { CStr::from_ptr(hotplex_status_name(status as i32)) };
            assert_eq!(name.to_str().unwrap(), code.name());
        }
        for (n, want) in [
            (0, "ok"),
            (-1, "unknown"),
            (17, "session_not_found"),
            (19, "control_failed"),
            (22, "question_timeout"),
            (23, "fenced"),
            (24, "owned_elsewhere"),
            (25, "unknown"),
            (i32::MAX, "unknown"),
        ] {
            // SAFETY: as above.
            let name = unsafe { CStr::from_ptr(hotplex_status_name(n)) };
            assert_eq!(name.to_str().unwrap(), want, "{n}");
        }
    }

    #[test]
    fn core_errors_reach_c_with_their_own_status_and_detail() {
        use hotplex_core::Error;
        let cases = [
            (Error::Spawn("x".into()), hotplex_status::Spawn),
            (Error::Io("x".into()), hotplex_status::Io),
            (Error::Containment("x".into()), hotplex_status::Containment),
            (
                Error::InvalidArgument("y".into()),
                hotplex_status::InvalidArgument,
            ),
            (Error::Closed, hotplex_status::Closed),
            (
                Error::SessionNotFound("s".into()),
                hotplex_status::SessionNotFound,
            ),
            (Error::Unsupported("u".into()), hotplex_status::Unsupported),
            (
                Error::ControlFailed("c".into()),
                hotplex_status::ControlFailed,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(Failure::from(e).status, status);
        }
        let f = Failure::from(Error::InvalidRule {
            line: 3,
            message: "x".into(),
        });
        assert_eq!(f.status, hotplex_status::InvalidRule);
        assert!(f.message.contains("line 3"));
        assert!(f.detail.unwrap().contains("\"line\":3"));
        let f = Failure::from(Error::TurnFailed {
            subtype: "error_max_turns".into(),
            message: "m".into(),
        });
        assert_eq!(f.status, hotplex_status::TurnFailed);
        assert!(f.detail.unwrap().contains("error_max_turns"));
    }

    #[test]
    fn nul_bytes_do_not_truncate_messages() {
        assert_eq!(c_string("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }
}
