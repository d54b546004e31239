//! The switch for the latency fast paths, so tests can prove them exact.
//!
//! Several steps of a check skip work when the input cannot need it: a path
//! already in normal form is not rebuilt, a word with no `$IFS` mark is
//! moved rather than split and copied, a command's words are moved into its
//! argv when no pipeline reads them again, and only the stricter of the rule
//! and effect verdicts is built. Each skip must give exactly what the full
//! work gives. In test builds a thread can turn them all off
//! ([`with_slow_paths`]) and compare; `tests.rs` does so for every labelled
//! command, so a change to a table or a fast path that breaks the
//! equivalence fails there. In other builds [`enabled`] is the constant
//! `true` and costs nothing.

#[cfg(test)]
use std::cell::Cell;

#[cfg(test)]
thread_local! {
    static SLOW: Cell<bool> = const { Cell::new(false) };
}

/// Whether the fast paths may be taken (always, outside tests).
#[inline(always)]
pub(crate) fn enabled() -> bool {
    #[cfg(test)]
    {
        !SLOW.with(Cell::get)
    }
    #[cfg(not(test))]
    {
        true
    }
}

/// Runs `f` on this thread with every fast path off.
#[cfg(test)]
pub(crate) fn with_slow_paths<R>(f: impl FnOnce() -> R) -> R {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            SLOW.with(|s| s.set(false));
        }
    }
    SLOW.with(|s| s.set(true));
    let _restore = Restore;
    f()
}
