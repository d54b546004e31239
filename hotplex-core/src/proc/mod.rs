//! Process containment: every process an agent starts dies with its session,
//! even when the host dies.
//!
//! # What is guaranteed
//!
//! On Linux, for a session started with [`Contained::spawn`]:
//!
//! * **No escapee.** Every descendant of the agent is found and killed when
//!   the session ends, including processes that call `setsid`/`setpgid`,
//!   double-fork, `nohup … & disown`, ignore SIGTERM/SIGHUP, or fork fast.
//! * **No zombie.** Everything is reaped: the agent's descendants by the
//!   supervisor, the supervisor by the host (asynchronously).
//! * **Host death.** If the host dies, even by SIGKILL, every session tree
//!   is stopped and SIGKILLed at once (milliseconds; well under a second).
//! * **No stranger is ever signalled.** No `kill(0|-1|pid<=1)`; process
//!   groups are not used on Linux at all; the startup sweep signals only
//!   through pidfds it has verified (start time / session tag).
//!
//! The weaker macOS story is in the [platform notes](#platforms).
//!
//! # Design, top to bottom
//!
//! hotplex is a *library* embedded in Python, Node, Go and C hosts, so it
//! cannot count on an executable of its own being installed. The supervisor
//! is therefore **a small static program embedded in the library** (crate
//! `hotplex-supervisor`, built by `build.rs`). The host runs it once, from a
//! sealed memfd, as a **launcher** (`launch.rs`, "exec mode"): a small
//! single-threaded process that forks each session's supervisor from its own
//! image, so a supervisor holds none of the host's pages and starting one
//! costs the same in a 4 GiB host as in a 20 MB one, without paying a
//! program start per session. Where the program is unavailable (macOS, a
//! build without it, a system that forbids executing a memfd) or when asked
//! ([`SupervisorLaunch::Fork`], `HOTPLEX_SUPERVISOR=fork`), the supervisor
//! is **a forked copy of the host that never execs** ("fork mode"). Both
//! run the same code, `hotplex_supervisor::supervisor::run`, with the same
//! plan; [`supervisor_mode`] tells which one this process uses.
//!
//! ```text
//!  host process (any language; NEVER a subreaper)
//!   │  socketpair = control channel + lifeline   (host end: CLOEXEC)
//!   ├── launcher (exec mode: the program, started once; its socket is its
//!   │     │       lifeline too)
//!   │     ├── supervisor (session 1)  forked by the launcher (fork mode:
//!   │     │     │                     by the host, no exec), single-
//!   │     │     │                     threaded, PR_SET_CHILD_SUBREAPER,
//!   │     │     │                     own process group
//!   │     │     └── agent  (setsid; [cgroup]; PDEATHSIG=SIGKILL; rlimits;
//!   │     │           │     execve)
//!   │     │           └── … every descendant; orphans reparent to the
//!   │     │                 supervisor
//!   │     ├── supervisor (session 2) …
//!   │     └── spare supervisor, waiting for the next session
//! ```
//!
//! ## Spawn ([`Contained::spawn`], `spawn.rs`, `launch.rs`)
//!
//! In exec mode steps 1 and 2 run on tokio's blocking pool (the calling
//! worker only awaits them); in fork mode on the calling thread:
//!
//! 1. The host builds everything the children need **before** forking:
//!    the resolved program path (a `PATH` search like `execvp`, which may
//!    allocate and so cannot run after fork), argv/envp as `CString`s and
//!    NULL-terminated pointer arrays, the cwd, rlimits, cgroup file paths.
//!    The environment is built from an allow-list ([`DEFAULT_ENV_ALLOW`]) plus
//!    explicit extras; host secrets such as `ANTHROPIC_API_KEY` are never
//!    inherited unless asked for. Every session also gets a unique
//!    `HOTPLEX_SESSION_ID` ([`SESSION_ENV`]) that its descendants inherit.
//! 2. It creates a Unix socket pair (control + status + lifeline), the
//!    stdio pipes and an exec-status pipe, and starts the supervisor: exec
//!    mode hands the serialized plan and the five descriptors to the
//!    launcher in one non-blocking `sendmsg` (to a *spare* supervisor the
//!    launcher forked ahead of time when there is one, and asks for the
//!    next spare); fork mode blocks all signals in the calling thread and
//!    forks with the raw `clone(SIGCHLD)` syscall: like glibc's `_Fork`,
//!    this runs no `pthread_atfork` handler, so no host library code runs in
//!    the child.
//! 3. The supervisor (`hotplex-supervisor/src/supervisor.rs`, written as
//!    after-fork code: async-signal-safe only, no allocation, no locks, no
//!    panics) resets all signal dispositions (a spare did this while it
//!    waited), ignores job-control signals, becomes a child subreaper, moves
//!    its five descriptors to 3..7 and closes **every other descriptor**
//!    (`close_range`) — crucially the lifelines of other sessions, which
//!    would otherwise keep them alive — and starts the agent: on x86_64
//!    like `vfork` (`clone3(CLONE_VM|CLONE_VFORK)`, straight into the
//!    session cgroup), elsewhere by a fork. The agent calls `setsid` (own
//!    session and process group), joins the session cgroup if it was not
//!    created in it, sets `PR_SET_PDEATHSIG(SIGKILL)` (safe here: the
//!    supervisor is single-threaded, so "parent thread" = "parent
//!    process"), applies the rlimits, dup2s its stdio, resets signals,
//!    reports `S <pid> <supervisor pid>` on the socket itself and
//!    `execve`s.
//! 4. The host waits for the exec-status pipe, whose write end only the
//!    agent holds (close-on-exec): EOF means it exec'd, and `spawn` returns
//!    with the pid from `S`; a failed step arrives as `[stage, errno]` and
//!    becomes [`crate::Error::Spawn`]. The news comes from the agent itself,
//!    so nothing waits for the supervisor to wake up in between.
//!
//! ## Running (`hotplex-supervisor/src/supervisor.rs`)
//!
//! The supervisor sleeps in `poll(2)` on the control socket and a
//! `signalfd` (SIGCHLD, SIGTERM). It reaps every child with
//! `waitpid(-1, WNOHANG)` — its own agent and every orphan reparented to it
//! — so nothing below it stays a zombie. When the agent exits it sends
//! `X <status>` and, since the session is over, runs SIGTERM → `grace_term` →
//! SIGKILL over whatever the agent left behind.
//!
//! ## The kill ladder
//!
//! [`Contained::kill`] closes stdin and sends `K`; the supervisor then
//! waits `grace_eof` (default 2 s) for the agent to exit; sends SIGTERM
//! (+SIGCONT) to every descendant and waits `grace_term` (default 3 s) for
//! the tree to empty (a zero `grace_term` skips this step: nothing could act
//! on the SIGTERM); then **stop-then-kill**: walk the tree
//! (`/proc/<pid>/task/<tid>/children`, recursively, every thread), sending
//! SIGSTOP to each process *before* reading its children so a stopped parent
//! cannot fork behind the walk, SIGKILL everything found, reap, and repeat
//! until `waitpid` says there are no children left at all. Because the
//! supervisor is a subreaper, "no children" means "no descendants": any
//! process below it whose parent died was reparented to it. In cgroup mode
//! each round also writes `cgroup.kill` (atomic, no fork race), and the end
//! waits for `cgroup.events` to say `populated 0` (woken by the kernel's
//! notification of the file, not a timer). The supervisor then removes the
//! session cgroup, reports `R` (stage reached, counts, what it removed) and
//! exits; `kill` returns on that report. The host reaps a supervisor it
//! forked (pidfd where available; the launcher reaps the ones it forked)
//! and removes whatever the supervisor could not, and the state record.
//! When nothing is to wait for ([`Contained::kill_now`], or both grace
//! periods zero) the host also writes the session's `cgroup.kill` itself
//! right after the command, so the tree dies while the supervisor wakes up
//! to walk, reap and confirm.
//!
//! Signals only ever go to positive pids > 1 that the supervisor just found
//! below itself; such a pid cannot be reused meanwhile, since its parent is
//! either the supervisor (which has not reaped it) or a process the walk
//! already stopped.
//!
//! ## Drop and host death
//!
//! Dropping a [`Contained`] never blocks: it closes stdin, sends `D`
//! ("graceful, and I am leaving"); the supervisor runs the full ladder on
//! its own, and a tokio task (or, outside a runtime, the next `spawn`)
//! cleans up once it is gone: a supervisor the host forked is reaped (the
//! host's end of the socket is closed at once), one the launcher forked is
//! gone when its end of the socket closes (the host keeps its end open
//! until then). If the host dies without a `D`, the kernel closes the
//! host's socket ends, every supervisor sees EOF and runs the stop-then-kill
//! step at once, and the launcher and the spare, which see EOF too, exit. A
//! SIGTERM to the supervisor (e.g. systemd stopping the service's cgroup)
//! does the same. This lifeline is why no `PR_SET_PDEATHSIG` is needed
//! between host and supervisor: that signal follows the *thread* that
//! forked, and tokio's blocking threads come and go.
//!
//! ## Startup sweep
//!
//! With `state_dir` set, each session writes a record (pids and
//! `/proc/<pid>/stat` start times of host, supervisor and agent; pgid;
//! cgroup). [`sweep_stale`] at the next host start cleans up records whose
//! host is gone — this covers the one case the lifeline cannot: the
//! supervisor itself being SIGKILLed (e.g. by the OOM killer) before it could
//! act. It signals only through pidfds checked against the recorded start
//! time or the session's `HOTPLEX_SESSION_ID`, so PID reuse never kills a
//! stranger.
//!
//! ## Containment modes ([`ContainmentMode`])
//!
//! * `Cgroup` (Linux, when a cgroup v2 directory with `cgroup.kill` is
//!   writable: root, or a systemd `Delegate=yes` unit): subreaper supervisor
//!   **plus** one cgroup per session. Also catches a descendant that escaped
//!   the tree because the supervisor itself was killed.
//! * `Subreaper` (Linux baseline, always available since 3.4): fully correct
//!   on its own for everything below a living supervisor.
//! * `ProcessGroup` (macOS and other Unixes): the same supervisor and
//!   lifeline, but no subreaper and no `/proc`: the supervisor can only
//!   signal the agent's process group (kept reserved by not reaping the
//!   leader until the end). Descendants that leave the group (`setsid`,
//!   double-fork daemons) can escape.
//!
//! PID namespaces were considered and not used: the agent would need an
//! extra init process, and without root an unprivileged user namespace with
//! a uid remap that changes what the agent sees (file ownership, `getpid`);
//! the cgroup gives the same atomic kill without touching the agent's view.
//!
//! ## Limits
//!
//! [`SpawnOptions::memory_max`] and [`SpawnOptions::pids_max`] become the
//! session cgroup's `memory.max` and `pids.max` in cgroup mode (on a hybrid
//! cgroup v1/v2 system, limit-only v1 `memory`/`pids` cgroups the agent
//! joins before exec); without a cgroup, memory becomes the agent's
//! `RLIMIT_AS` and the process limit a best effort: `RLIMIT_NPROC` set to
//! the system's task count at spawn plus the limit (it counts every task of
//! the user; root is exempt, so for root nothing is set).
//! [`Contained::limits`] reports what enforces each. CPU seconds and open
//! files are plain [`Rlimits`]. [`raise_nofile_limit`] (called by the
//! engine at start) lifts the host's own soft `RLIMIT_NOFILE` to the hard
//! limit; [`session_ceiling`] is how many sessions the result allows.
//!
//! ## Cost
//!
//! One extra process per session (the supervisor: in exec mode a fork of
//! the launcher's small image, whose pages every session shares; in fork
//! mode a copy of every host page the host rewrote since the fork), plus in
//! exec mode two per host (the launcher and one spare supervisor),
//! and **zero threads**: waiting and reaping are driven by the
//! caller's tokio reactor (one socket, up to three pipes and, in fork mode,
//! one pidfd per session). A stuck agent blocks nothing but its own
//! supervisor.
//!
//! # Platforms
//!
//! Linux: everything above. macOS: builds; fork mode; `ProcessGroup` mode; lifeline,
//! graceful ladder on the agent's process group, rlimits, env allow-list all
//! work; no descendant walk, no subreaper, no cgroup, no sweep kills (start
//! times cannot be checked without `/proc`). Not tested on macOS.

// Process containment needs raw system calls after fork (no allocation is
// allowed there), prctl, pidfds and descriptor juggling that std does not
// expose; each unsafe block is small and carries a SAFETY comment.
#![allow(unsafe_code)]

mod cgroup;
mod env;
mod launch;
mod limits;
mod spawn;
mod state;
mod sys;
pub(crate) use sys::{block_sigpipe_on_this_thread, lock_exclusive};
// The supervisor's own code lives in the `hotplex-supervisor` crate, which
// is also the program exec mode runs.
use hotplex_supervisor::{proto, supervisor};

pub use env::{DEFAULT_ENV_ALLOW, SESSION_ENV};
pub use launch::{supervisor_mode, SUPERVISOR_ENV};
pub use limits::{raise_nofile_limit, session_ceiling, HOST_FDS_PER_SESSION};
pub use spawn::{detect_mode, ChildStderr, ChildStdin, ChildStdout, Contained};
pub use state::{sweep_stale, SweepReport};

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// How a session's process tree is contained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContainmentMode {
    /// Linux: subreaper supervisor plus a per-session cgroup v2 killed with
    /// `cgroup.kill`.
    Cgroup,
    /// Linux: a child-subreaper supervisor that walks and kills every
    /// descendant.
    Subreaper,
    /// Non-Linux (macOS): supervisor with lifeline, signals only the agent's
    /// process group.
    ProcessGroup,
}

impl ContainmentMode {
    /// A stable lowercase name (`"cgroup"`, `"subreaper"`, `"process-group"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainmentMode::Cgroup => "cgroup",
            ContainmentMode::Subreaper => "subreaper",
            ContainmentMode::ProcessGroup => "process-group",
        }
    }
}

impl std::fmt::Display for ContainmentMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a session's supervisor process is started ([`supervisor_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SupervisorLaunch {
    /// The small static supervisor program embedded in the library, started
    /// once per host process from a sealed memfd as the launcher that forks
    /// each session's supervisor: holds none of the host's memory, costs the
    /// same whatever the host's size (Linux).
    Exec,
    /// A fork of the host that never execs (macOS; Linux when the program
    /// is unavailable or `HOTPLEX_SUPERVISOR=fork`).
    Fork,
}

impl SupervisorLaunch {
    /// A stable lowercase name (`"exec"`, `"fork"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SupervisorLaunch::Exec => "exec",
            SupervisorLaunch::Fork => "fork",
        }
    }
}

impl std::fmt::Display for SupervisorLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What enforces one of a session's limits ([`Contained::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitMechanism {
    /// The session's cgroup v2 (`memory.max`, `pids.max`).
    CgroupV2,
    /// A limit-only cgroup v1 of the session (hybrid hierarchy).
    CgroupV1,
    /// A resource limit of the agent (`RLIMIT_AS`, or an explicit
    /// [`Rlimits`] value).
    Rlimit,
    /// `RLIMIT_NPROC`, which counts every task of the user (best effort;
    /// see "Limits" in the module docs).
    UserWideRlimit,
}

/// How the memory and process limits of a session are enforced (`None`:
/// not asked for, or nothing could enforce it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitsApplied {
    /// For [`SpawnOptions::memory_max`].
    pub memory: Option<LimitMechanism>,
    /// For [`SpawnOptions::pids_max`].
    pub processes: Option<LimitMechanism>,
}

/// Which containment a caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContainmentPreference {
    /// The strongest mode the system allows ([`detect_mode`]).
    #[default]
    Auto,
    /// Never create a cgroup, even if one is available (subreaper only).
    Subreaper,
}

/// What to connect one of the agent's standard streams to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StdioMode {
    /// A pipe; the host end is available from `take_stdin()` etc.
    #[default]
    Piped,
    /// `/dev/null`.
    Null,
    /// The host's own descriptor (0, 1 or 2).
    Inherit,
}

/// Resource limits applied to the agent (inherited by its descendants).
/// Each is set as both the soft and the hard limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rlimits {
    /// `RLIMIT_AS`: bytes of address space.
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU`: CPU seconds (SIGXCPU, then SIGKILL).
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NOFILE`: open file descriptors.
    pub open_files: Option<u64>,
    /// `RLIMIT_NPROC`: processes of the user (per uid, not per session;
    /// not enforced for root).
    pub processes: Option<u64>,
}

/// How to start a contained agent. Build with [`SpawnOptions::new`] and the
/// chained setters, or set the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// Program to run: a path, or a bare name searched in the agent's `PATH`.
    pub program: PathBuf,
    /// Arguments (without argv\[0\], which is `program`).
    pub args: Vec<OsString>,
    /// Working directory of the agent (default: the host's).
    pub cwd: Option<PathBuf>,
    /// Host variables passed through; `*` at the end matches a prefix.
    /// Default: [`DEFAULT_ENV_ALLOW`].
    pub env_allow: Vec<String>,
    /// Variables set for the agent (override inherited ones).
    pub env_extra: Vec<(OsString, OsString)>,
    /// Pass the host's whole environment (secrets included). Default false.
    pub inherit_env: bool,
    /// Resource limits for the agent.
    pub rlimits: Rlimits,
    /// Agent stdin (default piped).
    pub stdin: StdioMode,
    /// Agent stdout (default piped).
    pub stdout: StdioMode,
    /// Agent stderr (default piped).
    pub stderr: StdioMode,
    /// Ladder step 1: after stdin is closed, how long the agent may take to
    /// exit by itself. Default 2 s.
    pub grace_eof: Duration,
    /// Ladder step 2: after SIGTERM, how long the tree may take to exit.
    /// Default 3 s; zero skips the SIGTERM (straight to stop-then-kill).
    pub grace_term: Duration,
    /// Where to write the session record for [`sweep_stale`] (none by
    /// default).
    pub state_dir: Option<PathBuf>,
    /// Containment preference (default: the strongest available).
    pub containment: ContainmentPreference,
    /// How to start the supervisor (default `None`: [`supervisor_mode`]).
    /// `Exec` where the program cannot run falls back to `Fork`;
    /// [`Contained::supervisor_launch`] says which one ran.
    pub supervisor: Option<SupervisorLaunch>,
    /// Most bytes of memory the session's processes may use together:
    /// cgroup `memory.max` in cgroup mode (the kernel's OOM killer stops
    /// the session's largest process past it), else `RLIMIT_AS` of the
    /// agent (address space per process: a runtime that reserves virtual
    /// memory, such as Node, needs a generous value). Default none.
    pub memory_max: Option<u64>,
    /// Most processes (tasks) of the session at once: cgroup `pids.max` in
    /// cgroup mode (a fork past it fails with `EAGAIN`), else a best effort
    /// through `RLIMIT_NPROC`, which is per user and ignored for root (see
    /// "Limits" in the module docs). Default none.
    pub pids_max: Option<u64>,
}

impl SpawnOptions {
    /// Options to run `program` with the defaults described on each field.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        SpawnOptions {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect(),
            env_extra: Vec::new(),
            inherit_env: false,
            rlimits: Rlimits::default(),
            stdin: StdioMode::Piped,
            stdout: StdioMode::Piped,
            stderr: StdioMode::Piped,
            grace_eof: Duration::from_secs(2),
            grace_term: Duration::from_secs(3),
            state_dir: None,
            containment: ContainmentPreference::Auto,
            supervisor: None,
            memory_max: None,
            pids_max: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets one environment variable for the agent.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env_extra.push((key.into(), value.into()));
        self
    }

    /// Adds a host variable name (or `PREFIX*`) to the allow-list.
    pub fn allow_env(mut self, name: impl Into<String>) -> Self {
        self.env_allow.push(name.into());
        self
    }

    /// Passes the host's whole environment (including secrets).
    pub fn inherit_env(mut self, yes: bool) -> Self {
        self.inherit_env = yes;
        self
    }

    /// Sets the resource limits.
    pub fn rlimits(mut self, r: Rlimits) -> Self {
        self.rlimits = r;
        self
    }

    /// Sets both grace periods of the kill ladder.
    pub fn grace(mut self, eof: Duration, term: Duration) -> Self {
        self.grace_eof = eof;
        self.grace_term = term;
        self
    }

    /// Sets the state directory for crash recovery ([`sweep_stale`]).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Sets the containment preference.
    pub fn containment(mut self, c: ContainmentPreference) -> Self {
        self.containment = c;
        self
    }

    /// Sets how the supervisor is started.
    pub fn supervisor(mut self, launch: SupervisorLaunch) -> Self {
        self.supervisor = Some(launch);
        self
    }

    /// Sets the session's memory limit in bytes (the `memory_max` field).
    pub fn memory_max(mut self, bytes: u64) -> Self {
        self.memory_max = Some(bytes);
        self
    }

    /// Sets the session's process limit (the `pids_max` field).
    pub fn pids_max(mut self, n: u64) -> Self {
        self.pids_max = Some(n);
        self
    }

    /// Sets the three stdio modes.
    pub fn stdio(mut self, stdin: StdioMode, stdout: StdioMode, stderr: StdioMode) -> Self {
        self.stdin = stdin;
        self.stdout = stdout;
        self.stderr = stderr;
        self
    }
}

impl Rlimits {
    /// No limits (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `RLIMIT_AS` in bytes.
    pub fn address_space(mut self, bytes: u64) -> Self {
        self.address_space = Some(bytes);
        self
    }

    /// Sets `RLIMIT_CPU` in seconds.
    pub fn cpu_seconds(mut self, s: u64) -> Self {
        self.cpu_seconds = Some(s);
        self
    }

    /// Sets `RLIMIT_NOFILE`.
    pub fn open_files(mut self, n: u64) -> Self {
        self.open_files = Some(n);
        self
    }

    /// Sets `RLIMIT_NPROC`.
    pub fn processes(mut self, n: u64) -> Self {
        self.processes = Some(n);
        self
    }
}

/// The furthest step of the kill ladder a session needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LadderStage {
    /// Nothing to do: the agent had exited and left nothing behind.
    None,
    /// The tree was gone after stdin was closed.
    Eof,
    /// The tree was gone after SIGTERM.
    Term,
    /// SIGKILL was needed.
    Kill,
}

impl LadderStage {
    /// The stage a supervisor's last ladder phase stands for (the agent
    /// still running when the tree was found empty: nothing was needed).
    fn from_phase(p: proto::Phase) -> Self {
        match p {
            proto::Phase::Run => LadderStage::None,
            proto::Phase::Eof => LadderStage::Eof,
            proto::Phase::Term => LadderStage::Term,
            proto::Phase::Kill => LadderStage::Kill,
        }
    }
}

/// What [`Contained::kill`] did. Returned only once the supervisor has
/// confirmed that no descendant is left (and, in cgroup mode, that the
/// cgroup is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KillReport {
    /// The agent's exit status, if it was observed.
    pub exit_status: Option<ExitStatus>,
    /// The furthest ladder stage needed.
    pub stage: LadderStage,
    /// Processes sent SIGTERM.
    pub terminated: u32,
    /// SIGKILLs sent (a process may be counted in several rounds).
    pub killed: u32,
    /// Time from the kill request to the confirmation.
    pub elapsed: Duration,
}
