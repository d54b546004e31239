//! `hotplex_verdict` and its accessors, plus the level and category enums.

use std::ffi::{c_char, CString};
use std::ptr;

use hotplex_core::waf::{Category, Level, Verdict};

use crate::error::{self, borrow, c_string, check_out, free_box, guard, value_guard, write_out};
use crate::hotplex_status;

/// How dangerous the checked input is (the seed's numbers: a smaller
/// positive number is more severe). CRITICAL and HIGH block; MODERATE means
/// a person should confirm; SAFE means no rule matched.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum hotplex_level {
    /// Irreversible or host-wide damage (`rm -rf /`, `mkfs`, reverse shells).
    Critical = 1,
    /// High impact; blocked (`sudo su -`, `crontab -r`, secret reads).
    High = 2,
    /// Risky; a person should confirm (`git reset --hard`).
    Moderate = 3,
    /// No rule matched.
    Safe = -1,
}

impl From<Level> for hotplex_level {
    fn from(l: Level) -> hotplex_level {
        match l {
            Level::Critical => hotplex_level::Critical,
            Level::High => hotplex_level::High,
            Level::Moderate => hotplex_level::Moderate,
            Level::Safe => hotplex_level::Safe,
        }
    }
}

/// The kind of danger the reported rule guards against; NONE for a safe
/// verdict. The numbers match the core's `Category`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum hotplex_category {
    /// No rule matched.
    None = 0,
    /// Code smuggled into a command: substitutions, decoders into shells, eval.
    Injection = 1,
    /// Gaining privileges: root shells, setuid bits, sudoers edits.
    Privilege = 2,
    /// Reverse shells, exfiltration, fetch-then-execute.
    Network = 3,
    /// Surviving a restart: cron, services, shell rc files, authorized keys.
    Persistence = 4,
    /// Reading secrets and credentials.
    Recon = 5,
    /// Escaping containers: privileged runs, host mounts, namespace entry.
    Container = 6,
    /// Loading or removing kernel modules, kernel tunables.
    Kernel = 7,
    /// Recursive or bulk deletion outside the working tree.
    FileDelete = 8,
    /// Host-wide damage: filesystems, devices, power, system files.
    System = 9,
    /// Ownership and mode changes of system paths.
    Permission = 10,
    /// Destructive database statements.
    Database = 11,
    /// Destroying uncommitted work or rewriting published history.
    Git = 12,
}

impl From<Option<Category>> for hotplex_category {
    fn from(c: Option<Category>) -> hotplex_category {
        match c {
            None => hotplex_category::None,
            Some(Category::Injection) => hotplex_category::Injection,
            Some(Category::Privilege) => hotplex_category::Privilege,
            Some(Category::Network) => hotplex_category::Network,
            Some(Category::Persistence) => hotplex_category::Persistence,
            Some(Category::Recon) => hotplex_category::Recon,
            Some(Category::Container) => hotplex_category::Container,
            Some(Category::Kernel) => hotplex_category::Kernel,
            Some(Category::FileDelete) => hotplex_category::FileDelete,
            Some(Category::System) => hotplex_category::System,
            Some(Category::Permission) => hotplex_category::Permission,
            Some(Category::Database) => hotplex_category::Database,
            Some(Category::Git) => hotplex_category::Git,
        }
    }
}

/// The outcome of one check. Opaque; read it with the `hotplex_verdict_*`
/// accessors and release it with `hotplex_verdict_free()`. Strings returned by
/// the accessors are owned by the verdict and valid until it is freed.
///
/// Thread safety: use a verdict from one thread at a time (it may be moved
/// between threads).
pub struct hotplex_verdict {
    verdict: Verdict,
    // C copies of the strings, made once so accessors can hand out pointers.
    rule_id: Option<CString>,
    reason: CString,
    canonical: Option<CString>,
    category_name: Option<CString>,
    suggestions: Vec<CString>,
}

impl hotplex_verdict {
    pub(crate) fn new(verdict: Verdict) -> hotplex_verdict {
        hotplex_verdict {
            rule_id: verdict.rule_id.as_deref().map(c_string),
            reason: c_string(&verdict.reason),
            canonical: verdict.canonical.as_deref().map(c_string),
            category_name: verdict.category.map(|c| c_string(c.as_str())),
            suggestions: verdict.suggestions.iter().map(|s| c_string(s)).collect(),
            verdict,
        }
    }

    /// The verdict as the core returned it.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }
}

/// Borrows a verdict for an accessor; NULL gives `None`.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
unsafe fn get<'a>(v: *const hotplex_verdict) -> Option<&'a hotplex_verdict> {
    // SAFETY: forwarded to the caller.
    unsafe { v.as_ref() }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// Frees a verdict. NULL is a no-op.
///
/// # Safety
/// `v` must be NULL or a verdict from this library that was not freed yet;
/// strings obtained from it become invalid.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_free(v: *mut hotplex_verdict) {
    // SAFETY: caller's contract (documented above).
    unsafe { free_box(v) }
}

/// The verdict's level. For NULL: `HOTPLEX_LEVEL_CRITICAL` (fail closed: a
/// check that produced no verdict must not let the input through).
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_level(v: *const hotplex_verdict) -> hotplex_level {
    value_guard(hotplex_level::Critical, || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(hotplex_level::Critical, |v| v.verdict.level.into())
    })
}

/// Whether the input must not run (level CRITICAL or HIGH). For NULL: `true`
/// (fail closed).
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_blocked(v: *const hotplex_verdict) -> bool {
    value_guard(true, || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(true, |v| v.verdict.blocked)
    })
}

/// The category of the reported rule; `HOTPLEX_CATEGORY_NONE` when the
/// verdict is safe, and for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_category(v: *const hotplex_verdict) -> hotplex_category {
    value_guard(hotplex_category::None, || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(hotplex_category::None, |v| v.verdict.category.into())
    })
}

/// The category's name (`"file_delete"`, `"git"`, ...), owned by the verdict;
/// NULL when the verdict is safe, and for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_category_name(v: *const hotplex_verdict) -> *const c_char {
    value_guard(ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(ptr::null(), |v| opt_ptr(&v.category_name))
    })
}

/// The id of the reported rule (e.g. `"file_delete.rm_root"`), owned by the
/// verdict; NULL when the verdict is safe, and for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_rule_id(v: *const hotplex_verdict) -> *const c_char {
    value_guard(ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(ptr::null(), |v| opt_ptr(&v.rule_id))
    })
}

/// Why the input was flagged (`"no rule matched"` when safe), owned by the
/// verdict; NULL for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_reason(v: *const hotplex_verdict) -> *const c_char {
    value_guard(ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(ptr::null(), |v| v.reason.as_ptr())
    })
}

/// The text the reported rule judged (the canonical command after quote
/// removal and wrapper stripping), owned by the verdict; NULL when there is
/// none, and for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_canonical(v: *const hotplex_verdict) -> *const c_char {
    value_guard(ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(ptr::null(), |v| opt_ptr(&v.canonical))
    })
}

/// The byte range `[*start, *end)` of the checked input that the reported
/// rule matched. INVALID_ARGUMENT when the verdict has no span (safe
/// verdicts) or an argument is NULL; `*start` and `*end` are then untouched.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library; `start` and `end`
/// must be NULL or valid for writing a `size_t`.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_span(
    v: *const hotplex_verdict,
    start: *mut usize,
    end: *mut usize,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let v = unsafe { borrow(v, "verdict") }?;
        check_out(start, "start")?;
        check_out(end, "end")?;
        let span = v
            .verdict
            .span
            .clone()
            .ok_or_else(|| error::Failure::invalid_argument("the verdict has no span"))?;
        // SAFETY: both checked non-NULL; the caller guarantees validity.
        unsafe {
            write_out(start, span.start);
            write_out(end, span.end);
        }
        Ok(())
    })
}

/// How many suggestions (what to do instead) the verdict has; 0 for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_suggestion_count(v: *const hotplex_verdict) -> usize {
    value_guard(0, || {
        // SAFETY: caller's contract.
        unsafe { get(v) }.map_or(0, |v| v.suggestions.len())
    })
}

/// Suggestion `i` (0-based), owned by the verdict; NULL when `i` is out of
/// range, and for NULL.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_suggestion(
    v: *const hotplex_verdict,
    i: usize,
) -> *const c_char {
    value_guard(ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { get(v) }
            .and_then(|v| v.suggestions.get(i))
            .map_or(ptr::null(), |s| s.as_ptr())
    })
}

/// The verdict as a JSON object (`level`, `blocked`, `rule_id`, `category`,
/// `reason`, `span` as `{"start","end"}`, `canonical`, `suggestions`; absent
/// values are `null`). On success `*out` receives a NUL-terminated string that
/// the caller must release with `hotplex_string_free()`.
///
/// # Safety
/// `v` must be NULL or a live verdict from this library; `out` must be NULL
/// or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn hotplex_verdict_to_json(
    v: *const hotplex_verdict,
    out: *mut *mut c_char,
) -> hotplex_status {
    guard(|| {
        // SAFETY: caller's contract.
        let v = unsafe { borrow(v, "verdict") }?;
        check_out(out, "out")?;
        let json = serde_json::to_string(&v.verdict)
            .map_err(|e| error::Failure::invalid_argument(format!("cannot encode verdict: {e}")))?;
        // JSON escapes NUL as \u0000, so `c_string` never has to replace one.
        let raw = c_string(&json).into_raw();
        // SAFETY: checked non-NULL; the caller guarantees validity.
        unsafe { write_out(out, raw) };
        Ok(())
    })
}

/// Releases a string returned by `hotplex_verdict_to_json()` or
/// `hotplex_detector_explain()`. NULL is a no-op. Do not pass strings from
/// any other function (those are owned by their verdict or static).
///
/// # Safety
/// `s` must be NULL or a string from `hotplex_verdict_to_json` or
/// `hotplex_detector_explain` that was not freed yet.
#[no_mangle]
pub unsafe extern "C" fn hotplex_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    value_guard((), || {
        // SAFETY: `s` came from CString::into_raw and is freed once (caller's
        // contract).
        drop(unsafe { CString::from_raw(s) });
    })
}
