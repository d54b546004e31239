//! The stable C ABI of hotplex.
//!
//! This is the only crate with `extern "C"` functions. The C header,
//! `include/hotplex.h`, is generated from it by cbindgen (configuration in
//! `hotplex-ffi/cbindgen.toml`, which also holds the conventions that every
//! function follows) and checked for drift by `tests/header.rs`.
//!
//! In short:
//!
//! * handles (`hotplex_detector`, `hotplex_detector_builder`,
//!   `hotplex_verdict`, `hotplex_engine`, `hotplex_turn_stream`) are opaque boxes, released by their `*_free`
//!   function, which accepts NULL;
//! * every fallible function returns [`hotplex_status`], writes its
//!   out-params only on success and records a per-thread message for
//!   [`hotplex_last_error_message`];
//! * no panic crosses the boundary (see `error::guard`), also not out of a
//!   callback (the audit, permission, hook, tool, observer, log and turn
//!   callbacks);
//! * input strings are `(ptr, len)` pairs that must be UTF-8.
//!
//! The Rust functions are `unsafe` because they trust C callers with raw
//! pointers; every `unsafe` block says what it relies on.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// The C names (`hotplex_status`, ...) are the ABI; they are not Rust style.
#![allow(non_camel_case_types)]

mod answer;
mod detector;
mod engine;
mod error;
mod host;
mod permission;
mod telemetry;
mod turn;
mod verdict;

use std::ffi::{c_char, CString};
use std::sync::OnceLock;

pub use detector::*;
pub use engine::*;
pub use error::{
    hotplex_last_error_detail, hotplex_last_error_message, hotplex_status, hotplex_status_name,
};
pub use host::*;
pub use permission::*;
pub use telemetry::{
    hotplex_log_callback, hotplex_observer_callback, hotplex_set_log_callback, HOTPLEX_LOG_DEBUG,
    HOTPLEX_LOG_ERROR, HOTPLEX_LOG_INFO, HOTPLEX_LOG_TRACE, HOTPLEX_LOG_WARN,
};
pub use turn::{
    hotplex_destroy_callback, hotplex_done_callback, hotplex_event_callback, hotplex_turn_stream,
    hotplex_turn_stream_cancel, hotplex_turn_stream_fd, hotplex_turn_stream_finish,
    hotplex_turn_stream_free, hotplex_turn_stream_next,
};
pub use verdict::*;

/// The version of the C ABI described by this header. It changes only when
/// an existing function, type or constant changes incompatibly (a removed or
/// renamed function, a changed signature, struct layout or meaning, a
/// renumbered constant); additions (new functions, new status codes, new
/// fields at the end of a size-versioned struct) keep it. It is the
/// SONAME's number on Linux (`libhotplex.so.1`). Compare it with
/// `hotplex_abi_version()` at run time to detect a mismatched library.
pub const HOTPLEX_ABI_VERSION: u32 = 1;

/// The ABI version of the loaded library (`HOTPLEX_ABI_VERSION` of the header
/// it was built with). Never fails.
#[no_mangle]
pub extern "C" fn hotplex_abi_version() -> u32 {
    HOTPLEX_ABI_VERSION
}

/// The hotplex version, e.g. `"0.1.0"`: a static, NUL-terminated string that
/// must not be freed. Never fails (returns NULL only if that were to panic).
#[no_mangle]
pub extern "C" fn hotplex_version() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    error::value_guard(std::ptr::null(), || {
        VERSION
            .get_or_init(|| error::c_string(hotplex_core::VERSION))
            .as_ptr()
    })
}

/// How this process starts each session's supervisor: `"exec"` (the small
/// program embedded in the library, which holds none of the host's memory)
/// or `"fork"` (a copy of the host: where the program is unavailable, or with
/// `HOTPLEX_SUPERVISOR=fork` in the host's environment when it is first
/// asked). A static, NUL-terminated string that must not be freed. Never
/// fails (returns NULL only if that were to panic).
#[no_mangle]
pub extern "C" fn hotplex_supervisor_mode() -> *const c_char {
    error::value_guard(
        std::ptr::null(),
        || match hotplex_core::proc::supervisor_mode() {
            hotplex_core::proc::SupervisorLaunch::Exec => c"exec".as_ptr(),
            _ => c"fork".as_ptr(),
        },
    )
}

/// The most sessions this process's open-files limit allows (each live
/// session holds a few descriptors in the host). Like creating an engine,
/// it first raises the soft `RLIMIT_NOFILE` to the hard limit (once per
/// process). Never fails (returns 0 only if that were to panic).
#[no_mangle]
pub extern "C" fn hotplex_session_ceiling() -> u64 {
    error::value_guard(0, hotplex_core::proc::session_ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_core_version() {
        // SAFETY: hotplex_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(hotplex_version()) };
        assert_eq!(v.to_str().unwrap(), hotplex_core::VERSION);
        assert_eq!(hotplex_abi_version(), 1);
    }

    #[test]
    fn supervisor_mode_is_the_cores_and_the_ceiling_is_positive() {
        // SAFETY: a static NUL-terminated string.
        let m = unsafe { std::ffi::CStr::from_ptr(hotplex_supervisor_mode()) };
        assert_eq!(
            m.to_str().unwrap(),
            hotplex_core::proc::supervisor_mode().as_str()
        );
        assert!(hotplex_session_ceiling() > 0);
    }
}
