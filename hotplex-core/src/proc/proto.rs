//! The tiny wire protocol between the host and a session's supervisor.
//!
//! One `SOCK_STREAM` Unix socket pair per session. It is both the control
//! channel and the *lifeline*: the host holds one end (close-on-exec, never
//! inherited by other supervisors because each supervisor closes every
//! descriptor it did not ask for right after the fork), the supervisor the
//! other. When the host process dies, however it dies, the kernel closes its
//! end and the supervisor sees EOF/POLLHUP.
//!
//! Host -> supervisor: single command bytes ([`CMD_KILL`], [`CMD_DETACH`],
//! [`CMD_KILL_NOW`]).
//!
//! Supervisor -> host: fixed 16-byte records `[tag, 0, 0, 0, a, b, c]` with
//! `a`, `b`, `c` native-endian `i32`s (both ends are the same machine):
//!
//! | tag | meaning | a | b | c |
//! |-----|---------|---|---|---|
//! | `S` | agent started (exec succeeded) | agent pid | | |
//! | `F` | agent could not be started | stage | errno | |
//! | `X` | agent (the leader) exited | raw wait status | | |
//! | `R` | tree confirmed empty; supervisor exits next | last ladder phase | # SIGTERMed | # SIGKILLed |

/// Graceful kill: run the whole ladder; the host stays to read the report.
pub(crate) const CMD_KILL: u8 = b'K';
/// Graceful kill, and the host end is about to be closed (handle dropped):
/// the EOF that follows is not a host death.
pub(crate) const CMD_DETACH: u8 = b'D';
/// Skip the grace periods: stop-then-kill the whole tree now.
pub(crate) const CMD_KILL_NOW: u8 = b'Q';

/// Agent started.
pub(crate) const MSG_STARTED: u8 = b'S';
/// Agent failed to start.
pub(crate) const MSG_FAILED: u8 = b'F';
/// Agent exited.
pub(crate) const MSG_EXITED: u8 = b'X';
/// Tree empty, final report.
pub(crate) const MSG_REPORT: u8 = b'R';

/// Size of one supervisor -> host record.
pub(crate) const MSG_LEN: usize = 16;

/// Encodes one record (no allocation: used after fork).
pub(crate) fn encode(tag: u8, a: i32, b: i32, c: i32) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    m[0] = tag;
    let (a, b, c) = (a.to_ne_bytes(), b.to_ne_bytes(), c.to_ne_bytes());
    let mut i = 0;
    while i < 4 {
        m[4 + i] = a[i];
        m[8 + i] = b[i];
        m[12 + i] = c[i];
        i += 1;
    }
    m
}

/// Decodes one record.
pub(crate) fn decode(m: &[u8; MSG_LEN]) -> (u8, i32, i32, i32) {
    let word = |o: usize| i32::from_ne_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
    (m[0], word(4), word(8), word(12))
}
