//! The tiny wire protocol between the host and a session's supervisor.
//!
//! One `SOCK_STREAM` Unix socket pair per session. It is both the control
//! channel and the *lifeline*: the host holds one end (close-on-exec, never
//! inherited by other supervisors because each supervisor closes every
//! descriptor it did not ask for right after the fork), the supervisor the
//! other. When the host process dies, however it dies, the kernel closes its
//! end and the supervisor sees EOF/POLLHUP.
//!
//! Host -> supervisor: single command bytes ([`Cmd`]).
//!
//! Supervisor -> host: fixed 16-byte records `[tag, flags, 0, 0, a, b, c]`
//! with `a`, `b`, `c` native-endian `i32`s (both ends are the same machine),
//! the tag a [`Msg`] and the flags 0 except in `R` ([`REMOVED_CGROUP`],
//! [`REMOVED_LIMIT_CGROUPS`]):
//!
//! | tag | meaning | a | b | c |
//! |-----|---------|---|---|---|
//! | `S` | agent set up, about to exec (sent by the agent's child itself; whether the exec succeeded the host reads from the status pipe, [`crate::supervisor::FD_STATUS`]) | agent pid | supervisor pid | |
//! | `F` | agent could not be forked, or the launcher could not start the supervisor | [`FailStage`] | errno | |
//! | `X` | agent (the leader) exited | raw wait status | | |
//! | `R` | tree confirmed empty; supervisor exits next | last ladder [`Phase`] | # SIGTERMed | # SIGKILLed |
//!
//! Every code is an enum with its wire value as the discriminant, so each
//! number is written down once, here; decoding searches the variants for
//! it. The supervisor side runs after `fork` and must not allocate: neither
//! the `as` cast that encodes nor the search that decodes does.

/// A command byte, host -> supervisor.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// Graceful kill: run the whole ladder; the host stays to read the report.
    Kill = b'K',
    /// Graceful kill, and the host end is about to be closed (handle
    /// dropped): the EOF that follows is not a host death.
    Detach = b'D',
    /// Skip the grace periods: stop-then-kill the whole tree now.
    KillNow = b'Q',
}

impl TryFrom<u8> for Cmd {
    /// The byte, when it is no command (ignored by the supervisor).
    type Error = u8;

    fn try_from(b: u8) -> Result<Self, u8> {
        [Cmd::Kill, Cmd::Detach, Cmd::KillNow]
            .into_iter()
            .find(|c| *c as u8 == b)
            .ok_or(b)
    }
}

/// The tag of a supervisor -> host record.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    /// Agent started.
    Started = b'S',
    /// Agent failed to start.
    Failed = b'F',
    /// Agent exited.
    Exited = b'X',
    /// Tree empty, final report.
    Report = b'R',
}

impl TryFrom<u8> for Msg {
    /// The tag byte, when it is no known tag.
    type Error = u8;

    fn try_from(b: u8) -> Result<Self, u8> {
        [Msg::Started, Msg::Failed, Msg::Exited, Msg::Report]
            .into_iter()
            .find(|m| *m as u8 == b)
            .ok_or(b)
    }
}

/// The step at which starting the agent failed (`a` of an `F` record, or
/// the first word the agent writes on the status pipe).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailStage {
    /// Joining the session cgroup (`cgroup.procs`).
    Cgroup = 1,
    /// `setrlimit`.
    Rlimit = 2,
    /// `chdir` to the working directory.
    Chdir = 3,
    /// `execve`.
    Exec = 4,
    /// `fork` of the agent or, by the launcher, of the supervisor.
    Fork = 5,
    /// `prctl(PR_SET_PDEATHSIG)`.
    PdeathSig = 6,
    /// The launcher could not read the session's plan.
    Plan = 7,
}

impl FailStage {
    /// The stage with wire code `v`, if there is one.
    pub fn from_i32(v: i32) -> Option<Self> {
        [
            FailStage::Cgroup,
            FailStage::Rlimit,
            FailStage::Chdir,
            FailStage::Exec,
            FailStage::Fork,
            FailStage::PdeathSig,
            FailStage::Plan,
        ]
        .into_iter()
        .find(|s| *s as i32 == v)
    }

    /// What was being done, for the spawn error ("{what} failed for ...").
    pub fn action(self) -> &'static str {
        match self {
            FailStage::Cgroup => "joining the session cgroup",
            FailStage::Rlimit => "setting rlimits",
            FailStage::Chdir => "changing to the working directory",
            FailStage::Exec => "exec",
            FailStage::Fork => "fork",
            FailStage::PdeathSig => "prctl(PR_SET_PDEATHSIG)",
            FailStage::Plan => "starting the supervisor program",
        }
    }
}

/// A phase of the supervisor's kill ladder (`a` of the final `R` record:
/// the furthest phase entered). Ordered: a later phase compares greater.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The agent runs; no kill requested.
    Run = 0,
    /// Stdin closed; waiting for the agent to exit on its own.
    Eof = 1,
    /// The tree was SIGTERMed; waiting for it to go.
    Term = 2,
    /// Stop-then-SIGKILL until nothing is left.
    Kill = 3,
}

impl Phase {
    /// The phase with wire code `v`, if there is one.
    pub fn from_i32(v: i32) -> Option<Self> {
        [Phase::Run, Phase::Eof, Phase::Term, Phase::Kill]
            .into_iter()
            .find(|p| *p as i32 == v)
    }
}

/// Size of one supervisor -> host record.
pub const MSG_LEN: usize = 16;
/// Index of the flags byte in a record.
pub const FLAGS: usize = 1;
/// `R` flag: the supervisor removed the session cgroup itself.
pub const REMOVED_CGROUP: u8 = 1;
/// `R` flag: the supervisor removed the limit-only cgroups itself (or there
/// were none).
pub const REMOVED_LIMIT_CGROUPS: u8 = 2;

/// Encodes one record (no allocation: used after fork).
pub fn encode(tag: Msg, a: i32, b: i32, c: i32) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    m[0] = tag as u8;
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

/// Decodes one record into its raw tag byte and words (see [`Msg`] for the
/// tag; the words' meaning depends on it).
pub fn decode(m: &[u8; MSG_LEN]) -> (u8, i32, i32, i32) {
    let word = |o: usize| i32::from_ne_bytes([m[o], m[o + 1], m[o + 2], m[o + 3]]);
    (m[0], word(4), word(8), word(12))
}
