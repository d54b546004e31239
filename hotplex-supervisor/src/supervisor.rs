//! The per-session supervisor: the code that watches one agent's process
//! tree, either forked by the supervisor program's launcher
//! ([`crate::launcher`]) or in a forked child of the host that never execs
//! (where the program is not available).
//!
//! EVERYTHING in this file after [`run`] is entered may run between `fork`
//! and `_exit` in a copy of a (possibly multithreaded) host, so it follows
//! the async-signal-safety rules:
//!
//! * no heap allocation (no `Vec`, `String`, `format!`, `Box`), no locks, no
//!   std I/O, no thread-locals that may initialise lazily;
//! * no panics: no slice indexing that could go out of bounds (we use
//!   `get`/`get_mut` or loop bounds that are provably in range), no
//!   arithmetic that can overflow in debug builds (`wrapping_*`/`saturating_*`);
//! * only raw system calls through `libc`: `prctl`, `clone`/`fork`, `setsid`,
//!   `setrlimit`, `dup2`, `close`, `open`, `read`, `write`, `poll`, `waitpid`,
//!   `kill`, `sigaction`, `sigprocmask`, `signalfd`, `clock_gettime`,
//!   `nanosleep`, `getdents64`, `execve`, `_exit`.
//!
//! Everything the supervisor needs (argv, envp, paths as C strings, fds) is
//! prepared by the host in a [`Plan`] BEFORE the fork; the child only reads it.
//!
//! See the module docs of `hotplex_core::proc` for the overall design and
//! [`crate::proto`] for the wire protocol.

use super::proto::{self, Cmd, FailStage, Msg, Phase};
use libc::{c_char, c_int, pid_t};
use std::ffi::CString;

/// Fixed descriptor layout inside the supervisor (after the shuffle): the
/// control socket.
pub const FD_CTRL: c_int = 3;
/// The agent's stdin (child end), inside the supervisor.
pub const FD_IN: c_int = 4;
/// The agent's stdout (child end), inside the supervisor.
pub const FD_OUT: c_int = 5;
/// The agent's stderr (child end), inside the supervisor.
pub const FD_ERR: c_int = 6;
/// The write end of the host's exec-status pipe, inside the supervisor
/// (close-on-exec): only the agent keeps it, so the host reads EOF once the
/// agent has exec'd, or the failed step (`[stage, errno]`, two native-endian
/// `i32`s) when it could not.
pub const FD_STATUS: c_int = 7;
/// First descriptor number that is not part of the fixed layout: [`run`]
/// closes this one and every one above it.
pub const FD_FIRST_FREE: c_int = 8;

/// Everything the supervisor needs, prepared by the host before `fork` (or
/// decoded by the launcher, [`crate::plan`]).
///
/// The plan owns its C strings; the NULL-terminated pointer arrays handed to
/// `execve` point into their heap buffers, which do not move when the plan
/// does, and are built once in [`Plan::new`] because the supervisor must not
/// allocate after the fork.
pub struct Plan {
    /// The agent program, already resolved (no `PATH` search after fork).
    pub path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    /// The agent's working directory (`None`: the supervisor's).
    pub cwd: Option<CString>,
    /// `(resource, value)` pairs set as soft and hard limit in the agent.
    pub rlimits: Vec<(RlimitResource, u64)>,
    /// The session's cgroup v2 directory (cgroup mode).
    pub cgroup_dir: Option<CString>,
    /// Its `cgroup.procs` (joined when `clone3` into the cgroup fails).
    pub cgroup_procs: Option<CString>,
    /// Its `cgroup.kill`.
    pub cgroup_kill: Option<CString>,
    /// Its `cgroup.events`.
    pub cgroup_events: Option<CString>,
    /// `cgroup.procs` files of limit-only cgroups (cgroup v1 controllers on
    /// a hybrid system) the agent joins before exec.
    pub limit_procs: Vec<CString>,
    /// Those limit-only cgroups' directories, removed once the tree is gone.
    pub limit_dirs: Vec<CString>,
    /// Ladder step 1 (stdin closed) in milliseconds.
    pub grace_eof_ms: i64,
    /// Ladder step 2 (after SIGTERM) in milliseconds.
    pub grace_term_ms: i64,
    /// Control socket, in the numbering of the process that calls [`run`].
    pub ctrl: c_int,
    /// The agent's stdin (child end), same numbering.
    pub stdin: c_int,
    /// The agent's stdout (child end), same numbering.
    pub stdout: c_int,
    /// The agent's stderr (child end), same numbering.
    pub stderr: c_int,
    /// The write end of the exec-status pipe, same numbering.
    pub status: c_int,
}

// SAFETY: the raw pointers point into the heap buffers of the `CString`s the
// same plan owns; they are only read (by `execve`), and moving the plan to
// another thread moves neither those buffers nor their owners.
unsafe impl Send for Plan {}

impl Plan {
    /// A plan to run `path` with `argv` (argv\[0\] included) and `envp`
    /// (`KEY=value` strings); everything else empty, descriptors at the
    /// fixed layout.
    pub fn new(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Plan {
        let nul_terminated = |v: &[CString]| -> Vec<*const c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        Plan {
            argv_ptrs: nul_terminated(&argv),
            envp_ptrs: nul_terminated(&envp),
            path,
            argv,
            envp,
            cwd: None,
            rlimits: Vec::new(),
            cgroup_dir: None,
            cgroup_procs: None,
            cgroup_kill: None,
            cgroup_events: None,
            limit_procs: Vec::new(),
            limit_dirs: Vec::new(),
            grace_eof_ms: 0,
            grace_term_ms: 0,
            ctrl: FD_CTRL,
            stdin: FD_IN,
            stdout: FD_OUT,
            stderr: FD_ERR,
            status: FD_STATUS,
        }
    }

    /// The agent's argv (argv\[0\] first).
    pub fn argv(&self) -> &[CString] {
        &self.argv
    }

    /// The agent's environment (`KEY=value`).
    pub fn envp(&self) -> &[CString] {
        &self.envp
    }

    /// The NULL-terminated environment array (`execve`'s `envp`).
    pub fn envp_ptr(&self) -> *const *const c_char {
        self.envp_ptrs.as_ptr()
    }
}

/// An rlimit resource id as `setrlimit` takes it on this platform.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub type RlimitResource = libc::__rlimit_resource_t;
/// An rlimit resource id as `setrlimit` takes it on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub type RlimitResource = c_int;

// ---------------------------------------------------------------------------
// Small async-signal-safe helpers
// ---------------------------------------------------------------------------

fn errno() -> i32 {
    // `last_os_error` reads errno into an `Os` repr: no allocation.
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn exit_now(code: c_int) -> ! {
    // SAFETY: `_exit` ends the process without running atexit handlers or
    // flushing std buffers that belong to the host; always sound.
    unsafe { libc::_exit(code) }
}

fn close(fd: c_int) {
    // SAFETY: closing a descriptor number we own in this (child) process.
    unsafe {
        libc::close(fd);
    }
}

/// `kill` that refuses pid <= 1 and our own pid (never `kill(0|-1, ..)`).
fn safe_kill(pid: pid_t, sig: c_int, me: pid_t) -> bool {
    if pid <= 1 || pid == me {
        return false;
    }
    // SAFETY: plain syscall on a positive pid that is our descendant.
    unsafe { libc::kill(pid, sig) == 0 }
}

// `time_t`/`c_long` are i32 on some 32-bit targets: keep the casts.
#[allow(clippy::unnecessary_cast)]
fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a local timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as i64)
        .wrapping_mul(1000)
        .wrapping_add((ts.tv_nsec as i64) / 1_000_000)
}

fn sleep_ms(ms: i64) {
    let ts = libc::timespec {
        tv_sec: (ms / 1000) as libc::time_t,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    // SAFETY: valid pointer to a local timespec; a null remainder is allowed.
    unsafe {
        libc::nanosleep(&ts, std::ptr::null_mut());
    }
}

/// Writes all of `buf`, retrying on EINTR; gives up silently on error (the
/// host may be gone: SIGPIPE is ignored in the supervisor, so we get EPIPE).
fn write_all(fd: c_int, buf: &[u8]) {
    let mut off = 0usize;
    while off < buf.len() {
        let rest = match buf.get(off..) {
            Some(r) => r,
            None => return,
        };
        // SAFETY: `rest` is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        off = off.wrapping_add(n as usize);
    }
}

fn send_msg(tag: Msg, a: i32, b: i32, c: i32) {
    write_all(FD_CTRL, &proto::encode(tag, a, b, c));
}

fn set_sig(sig: c_int, handler: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags);
    // we only install SIG_DFL or SIG_IGN, never a Rust handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// The signals a supervisor ignores (job control aimed at the host's
/// terminal, and SIGPIPE: a write to a vanished host is an error, not a
/// death). Every other disposition is the default.
const IGNORED: [c_int; 7] = [
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGHUP,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGPIPE,
];

/// Resets every catchable signal to its default action (host handlers must
/// never run in a forked copy of the host).
fn reset_all_signals() {
    let mut sig: c_int = 1;
    while sig < 65 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            set_sig(sig, libc::SIG_DFL);
        }
        sig += 1;
    }
}

fn set_sigmask_empty() {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Closes every descriptor >= `from`.
fn close_from(from: c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range(2) only closes descriptors; ~0 is "to the end".
        let r = unsafe { libc::syscall(libc::SYS_close_range, from as libc::c_uint, !0u32, 0) };
        if r == 0 {
            return;
        }
    }
    // Fallback (macOS, old kernels): close up to the soft fd limit (capped).
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to a local rlimit.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        if rl.rlim_cur > 65536 {
            65536
        } else {
            rl.rlim_cur as c_int
        }
    } else {
        4096
    };
    let mut fd = from;
    while fd < max {
        close(fd);
        fd += 1;
    }
}

/// Opens a NUL-terminated path; returns -1 on error.
fn open_path(path: &[u8], flags: c_int) -> c_int {
    // SAFETY: callers pass NUL-terminated buffers (checked below).
    if path.last() != Some(&0) {
        return -1;
    }
    unsafe { libc::open(path.as_ptr().cast(), flags | libc::O_CLOEXEC) }
}

/// Writes `data` to the file at a C path (cgroup control files).
fn write_file(path: &CString, data: &[u8]) -> Result<(), i32> {
    let fd = open_path(path.as_bytes_with_nul(), libc::O_WRONLY);
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: valid slice pointer/length.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    close(fd);
    if n < 0 {
        Err(e)
    } else {
        Ok(())
    }
}

/// A tiny fixed-capacity path builder on the stack.
struct PathBuf64 {
    buf: [u8; 96],
    len: usize,
}

impl PathBuf64 {
    fn new() -> Self {
        PathBuf64 {
            buf: [0; 96],
            len: 0,
        }
    }
    fn push(&mut self, s: &[u8]) -> &mut Self {
        for &b in s {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len = self.len.wrapping_add(1);
            }
        }
        self
    }
    fn push_num(&mut self, mut n: i32) -> &mut Self {
        let mut digits = [0u8; 12];
        let mut i = digits.len();
        if n <= 0 {
            n = 0;
        }
        loop {
            i = i.wrapping_sub(1);
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        if let Some(d) = digits.get(i..) {
            let mut tmp = [0u8; 12];
            let l = d.len();
            if let Some(t) = tmp.get_mut(..l) {
                t.copy_from_slice(d);
            }
            if let Some(t) = tmp.get(..l) {
                self.push(t);
            }
        }
        self
    }
    /// The path with a trailing NUL (truncated paths are NUL-terminated too;
    /// they then simply fail to open).
    fn c(&mut self) -> &[u8] {
        let end = if self.len < self.buf.len() {
            self.len
        } else {
            self.buf.len() - 1
        };
        if let Some(slot) = self.buf.get_mut(end) {
            *slot = 0;
        }
        self.buf.get(..=end).unwrap_or(&[0])
    }
}

// ---------------------------------------------------------------------------
// Descendant enumeration (Linux: /proc/<pid>/task/<tid>/children)
// ---------------------------------------------------------------------------

/// Fixed-capacity list of pids (one pass of the walk).
const PID_CAP: usize = 4096;

struct PidList {
    pids: [pid_t; PID_CAP],
    len: usize,
}

impl PidList {
    fn push(&mut self, pid: pid_t) -> bool {
        match self.pids.get_mut(self.len) {
            Some(slot) => {
                *slot = pid;
                self.len = self.len.wrapping_add(1);
                true
            }
            None => false,
        }
    }
}

/// Calls `f` with every pid listed in the `children` file of one task.
#[cfg(target_os = "linux")]
fn for_each_child_of_task(pid: pid_t, tid: pid_t, f: &mut dyn FnMut(pid_t)) {
    let mut p = PathBuf64::new();
    p.push(b"/proc/")
        .push_num(pid)
        .push(b"/task/")
        .push_num(tid)
        .push(b"/children");
    let fd = open_path(p.c(), libc::O_RDONLY);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 1024];
    let mut cur: i64 = 0;
    let mut have = false;
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        let n = (n as usize).min(buf.len());
        for &b in buf.get(..n).unwrap_or(&[]) {
            if b.is_ascii_digit() {
                cur = cur.saturating_mul(10).saturating_add((b - b'0') as i64);
                have = true;
            } else {
                if have && cur > 1 && cur <= i32::MAX as i64 {
                    f(cur as pid_t);
                }
                cur = 0;
                have = false;
            }
        }
    }
    if have && cur > 1 && cur <= i32::MAX as i64 {
        f(cur as pid_t);
    }
    close(fd);
}

/// Calls `f` with every child of every thread of `pid`.
#[cfg(target_os = "linux")]
fn for_each_child(pid: pid_t, f: &mut dyn FnMut(pid_t)) {
    let mut p = PathBuf64::new();
    p.push(b"/proc/").push_num(pid).push(b"/task");
    let dfd = open_path(p.c(), libc::O_RDONLY | libc::O_DIRECTORY);
    if dfd < 0 {
        return;
    }
    // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name (NUL-term).
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: getdents64 writes at most buf.len() bytes into our buffer.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dfd,
                buf.as_mut_ptr(),
                buf.len() as libc::c_uint,
            )
        };
        if n <= 0 {
            break;
        }
        let n = (n as usize).min(buf.len());
        let mut off = 0usize;
        while off.wrapping_add(19) < n {
            let reclen = match buf.get(off.wrapping_add(16)..off.wrapping_add(18)) {
                Some(r) => u16::from_ne_bytes([r[0], r[1]]) as usize,
                None => break,
            };
            if reclen == 0 {
                break;
            }
            let name_start = off.wrapping_add(19);
            let name_end = off.wrapping_add(reclen).min(n);
            let mut tid: i64 = 0;
            let mut ok = false;
            for &b in buf.get(name_start..name_end).unwrap_or(&[]) {
                if b == 0 {
                    break;
                }
                if b.is_ascii_digit() {
                    tid = tid.saturating_mul(10).saturating_add((b - b'0') as i64);
                    ok = true;
                } else {
                    ok = false;
                    break;
                }
            }
            if ok && tid > 0 && tid <= i32::MAX as i64 {
                for_each_child_of_task(pid, tid as pid_t, f);
            }
            off = off.wrapping_add(reclen);
        }
    }
    close(dfd);
}

/// Collects every descendant of the supervisor (breadth first). With `stop`
/// each process is sent SIGSTOP as soon as it is discovered, BEFORE its own
/// children are read, so a stopped parent cannot fork behind our back.
/// Returns the number collected (capped at `PID_CAP`; callers loop).
#[cfg(target_os = "linux")]
fn collect_descendants(me: pid_t, stop: bool, list: &mut PidList) -> usize {
    list.len = 0;
    let add = |pid: pid_t, list: &mut PidList| {
        if pid <= 1 || pid == me {
            return;
        }
        // Skip duplicates (a pid can show up twice while reparenting).
        let mut i = 0usize;
        while i < list.len {
            if list.pids.get(i) == Some(&pid) {
                return;
            }
            i = i.wrapping_add(1);
        }
        if stop {
            safe_kill(pid, libc::SIGSTOP, me);
        }
        list.push(pid);
    };
    // Our own direct children: the supervisor is single-threaded, so its
    // only task is `me`.
    {
        let mut direct = |c: pid_t| add(c, list);
        // `add` borrows `list` mutably; route through a small shim.
        for_each_child_of_task(me, me, &mut direct);
    }
    let mut i = 0usize;
    while i < list.len {
        let pid = match list.pids.get(i) {
            Some(&p) => p,
            None => break,
        };
        let mut each = |c: pid_t| add(c, list);
        for_each_child(pid, &mut each);
        i = i.wrapping_add(1);
    }
    list.len
}

// ---------------------------------------------------------------------------
// The supervisor proper
// ---------------------------------------------------------------------------

struct Sup<'a> {
    plan: &'a Plan,
    me: pid_t,
    agent: pid_t,
    leader_alive: bool,
    /// On platforms without a subreaper the leader's zombie is kept (not
    /// reaped) until the end, so its process-group id cannot be reused.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    leader_exited_unreaped: bool,
    /// The ladder phase the supervisor is in.
    phase: Phase,
    deadline: i64,
    /// Highest phase entered (reported).
    reached: Phase,
    term_count: i32,
    kill_count: i32,
    host_gone: bool,
    detached: bool,
    graceful: bool,
    #[cfg(target_os = "linux")]
    sigfd: c_int,
    /// The session cgroup's `cgroup.kill`, once opened (-1 before).
    #[cfg(target_os = "linux")]
    killfd: c_int,
    list: PidList,
}

/// Entry point of the supervisor (a forked child of the host or of the
/// launcher). Never returns.
///
/// # Safety contract (not `unsafe fn` because nothing here can be misused
/// from the outside: it is called exactly once, in the fork child)
pub fn run(plan: &Plan) -> ! {
    prepare();
    run_prepared(plan)
}

/// The part of a supervisor's start that does not depend on its session
/// (signals, process group, subreaper): a spare supervisor
/// ([`crate::launcher`]) does it while it waits, then calls
/// [`run_prepared`].
pub fn prepare() {
    // 1. Signals: no host handler may run here.
    reset_all_signals();
    for s in IGNORED {
        set_sig(s, libc::SIG_IGN);
    }
    // SIGCHLD and SIGTERM are blocked and read through a signalfd (Linux)
    // or polled with sigpending (elsewhere).
    // SAFETY: plain sigset manipulation on locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }

    // 2. Own process group, so terminal job-control signals aimed at the
    // host's foreground group (Ctrl-C, Ctrl-Z) do not reach the supervisor;
    // it reacts to the host's death through the lifeline instead.
    // SAFETY: setpgid(0, 0) on ourselves.
    unsafe {
        libc::setpgid(0, 0);
    }

    // 3. Child subreaper: every orphan below us is reparented to us.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// [`run`] after [`prepare`]. Never returns.
pub fn run_prepared(plan: &Plan) -> ! {
    // 4. Descriptor shuffle: keep ctrl/stdin/stdout/stderr/status at 3..7,
    // close everything else the host had open (other sessions' lifelines
    // above all).
    let keep = [plan.ctrl, plan.stdin, plan.stdout, plan.stderr, plan.status];
    let mut high = [-1 as c_int; 5];
    for (i, &fd) in keep.iter().enumerate() {
        // SAFETY: F_DUPFD never clobbers an open descriptor.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD, 16) };
        if d < 0 {
            exit_now(120);
        }
        if let Some(h) = high.get_mut(i) {
            *h = d;
        }
    }
    for (i, &d) in high.iter().enumerate() {
        // SAFETY: targets 3..7 are below 16, so they never alias a `high` fd.
        if unsafe { libc::dup2(d, FD_CTRL + i as c_int) } < 0 {
            exit_now(121);
        }
    }
    close_from(FD_FIRST_FREE);
    // dup2 cleared close-on-exec; the status pipe must close when the agent
    // execs (that EOF is the host's "exec'd").
    // SAFETY: fcntl on a descriptor of the fixed layout.
    unsafe {
        libc::fcntl(FD_STATUS, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    // Our own stdio points at /dev/null: the host's stdout may be a pipe
    // somebody reads to EOF.
    let null = open_path(b"/dev/null\0", libc::O_RDWR);
    if null >= 0 {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
        if null > 2 {
            close(null);
        }
    }

    #[cfg(target_os = "linux")]
    let sigfd = {
        // SAFETY: signalfd on a local, initialised sigset.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGCHLD);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
        }
    };

    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };

    // 5. Fork the agent.
    let agent = match spawn_agent(plan, me) {
        Ok(pid) => pid,
        Err((stage, err)) => {
            send_msg(Msg::Failed, stage, err, 0);
            // Reap whatever was started, then leave.
            loop {
                let mut st = 0;
                // SAFETY: waitpid with a valid status pointer.
                let r = unsafe { libc::waitpid(-1, &mut st, 0) };
                if r < 0 && errno() != libc::EINTR {
                    break;
                }
            }
            exit_now(0);
        }
    };
    // The agent itself reported `S` (with our pid: a supervisor forked by
    // the launcher is not the host's child) and the host reads whether its
    // exec succeeded from the status pipe: nothing here waits for that.
    close(FD_IN);
    close(FD_OUT);
    close(FD_ERR);

    let mut sup = Sup {
        plan,
        me,
        agent,
        leader_alive: true,
        leader_exited_unreaped: false,
        phase: Phase::Run,
        deadline: 0,
        reached: Phase::Run,
        term_count: 0,
        kill_count: 0,
        host_gone: false,
        detached: false,
        graceful: false,
        #[cfg(target_os = "linux")]
        sigfd,
        #[cfg(target_os = "linux")]
        killfd: -1,
        list: PidList {
            pids: [0; PID_CAP],
            len: 0,
        },
    };
    sup.main_loop()
}

/// Starts the agent, which sets itself up, reports `S` and execs. Returns
/// its pid, or (stage, errno) when it could not be created. The agent
/// reports a failed step to the host itself, on the status pipe
/// ([`FD_STATUS`]), which this process closes here.
fn spawn_agent(plan: &Plan, me: pid_t) -> Result<pid_t, (i32, i32)> {
    // In cgroup mode, create the agent directly inside the session cgroup
    // (clone3 + CLONE_INTO_CGROUP, Linux >= 5.7): migrating a running
    // process by writing cgroup.procs costs ~0.7 ms (an RCU grace period);
    // this costs nothing. Older kernels fall back to fork + cgroup.procs.
    let mut joined = false;
    let mut pid: pid_t = -1;
    #[cfg(target_os = "linux")]
    {
        let cgfd = match &plan.cgroup_dir {
            Some(dir) => open_path(dir.as_bytes_with_nul(), libc::O_RDONLY | libc::O_DIRECTORY),
            None => -1,
        };
        if plan.cgroup_dir.is_none() || cgfd >= 0 {
            pid = vfork_agent(plan, me, cgfd);
            if pid == 0 {
                close(cgfd);
                agent_child(plan, me, cgfd >= 0);
            }
            joined = pid > 0;
        }
        if cgfd >= 0 {
            close(cgfd);
        }
    }
    if !joined {
        pid = raw_fork();
    }
    if pid == 0 {
        agent_child(plan, me, false);
    }
    let e = errno();
    close(FD_STATUS);
    if pid < 0 {
        return Err((FailStage::Fork as i32, e));
    }
    Ok(pid)
}

/// What the agent's child reads when it shares our memory ([`vfork_agent`]).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
struct AgentArgs<'a> {
    plan: &'a Plan,
    sup: pid_t,
    in_cgroup: bool,
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
extern "C" fn agent_entry(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the parent's `AgentArgs`, alive until the parent
    // resumes, which happens only once this child has exec'd or exited.
    let a = unsafe { &*(arg as *const AgentArgs<'_>) };
    agent_child(a.plan, a.sup, a.in_cgroup)
}

/// Starts the agent like `vfork` (`CLONE_VM | CLONE_VFORK`), in the cgroup
/// `cgfd` when it is >= 0: the child runs [`agent_child`] on a stack of its
/// own in our memory while this process waits until it has exec'd (or
/// exited). A fork would copy our page tables, tear the copy down again at
/// the exec, and make every later write of ours a copy-on-write fault: on
/// the measured machine that was most of what starting an agent cost the
/// supervisor. Returns the pid, 0 never (the child does not return here),
/// or -1 with errno set when the kernel refuses (the caller forks instead).
///
/// The child only makes system calls on data the host prepared (it must
/// not allocate either way, see the module docs); our signal dispositions
/// are all default or ignore, so no handler can run in it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn vfork_agent(plan: &Plan, me: pid_t, cgfd: c_int) -> pid_t {
    const STACK: usize = 32 << 10;
    let mut stack = std::mem::MaybeUninit::<[u128; STACK / 16]>::uninit();
    let args = AgentArgs {
        plan,
        sup: me,
        in_cgroup: cgfd >= 0,
    };
    let clone = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK) as u64
            | if cgfd >= 0 { CLONE_INTO_CGROUP } else { 0 },
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        // The kernel starts the child with its stack pointer at
        // stack + stack_size (16-byte aligned: the array is u128s).
        stack: stack.as_mut_ptr() as u64,
        stack_size: STACK as u64,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: if cgfd >= 0 { cgfd as u64 } else { 0 },
    };
    let entry: extern "C" fn(*mut libc::c_void) -> ! = agent_entry;
    let ret: i64;
    // SAFETY: clone3 with CLONE_VM | CLONE_VFORK and a stack of its own, as
    // posix_spawn does: the child starts on `stack` with the registers of
    // this thread, so it finds `entry` and its argument in r13/r12, calls it
    // and never returns (`ud2` traps if it did); the parent is suspended
    // until the child execs or exits, so `stack`, `args` and `clone` outlive
    // every use, and it resumes at label 2 with the pid (or -errno) in rax.
    // The kernel preserves every register but rax, rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &clone as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") &args as *const AgentArgs<'_> as *mut libc::c_void,
            in("r13") entry,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        // SAFETY: setting errno for the caller, like the libc wrapper would.
        unsafe { *libc::__errno_location() = (-ret) as c_int };
        return -1;
    }
    ret as pid_t
}

/// Elsewhere the agent is forked (see the x86_64 version for why not
/// always): with a cgroup, straight into it.
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
fn vfork_agent(_plan: &Plan, _me: pid_t, cgfd: c_int) -> pid_t {
    if cgfd >= 0 {
        fork_into_cgroup(cgfd)
    } else {
        raw_fork()
    }
}

/// In the agent's child: set up, report `S` and exec. Never returns.
fn agent_child(plan: &Plan, sup: pid_t, in_cgroup: bool) -> ! {
    let fail = |stage: FailStage| -> ! {
        let e = errno();
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&(stage as i32).to_ne_bytes());
        msg[4..].copy_from_slice(&e.to_ne_bytes());
        write_all(FD_STATUS, &msg);
        exit_now(127)
    };
    // New session and process group: no controlling terminal, and the agent
    // is the leader of its own group (pgid == pid).
    // SAFETY: setsid has no memory-safety preconditions.
    unsafe {
        libc::setsid();
    }
    if let (Some(procs), false) = (&plan.cgroup_procs, in_cgroup) {
        if write_file(procs, b"0").is_err() {
            fail(FailStage::Cgroup);
        }
    }
    // Limit-only cgroups (v1 controllers): joined here, before exec, so the
    // agent's first instruction already counts against them.
    for procs in &plan.limit_procs {
        if write_file(procs, b"0").is_err() {
            fail(FailStage::Cgroup);
        }
    }
    #[cfg(target_os = "linux")]
    {
        // The supervisor is single-threaded, so "parent thread died" ==
        // "supervisor died": the agent is SIGKILLed with it.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } != 0 {
            fail(FailStage::PdeathSig);
        }
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != sup {
            exit_now(127);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = sup;
    for &(res, val) in &plan.rlimits {
        let rl = libc::rlimit {
            rlim_cur: val as libc::rlim_t,
            rlim_max: val as libc::rlim_t,
        };
        // SAFETY: valid pointer to a local rlimit.
        if unsafe { libc::setrlimit(res, &rl) } != 0 {
            fail(FailStage::Rlimit);
        }
    }
    // SAFETY: dup2 onto the standard descriptors.
    unsafe {
        libc::dup2(FD_IN, 0);
        libc::dup2(FD_OUT, 1);
        libc::dup2(FD_ERR, 2);
    }
    if let Some(cwd) = &plan.cwd {
        // SAFETY: NUL-terminated path owned by the plan.
        if unsafe { libc::chdir(cwd.as_ptr()) } != 0 {
            fail(FailStage::Chdir);
        }
    }
    // Default dispositions and an empty mask for the new program: an ignored
    // signal would survive exec (handlers do not), and `run` left every
    // signal at its default but the ones it ignores.
    for s in IGNORED {
        set_sig(s, libc::SIG_DFL);
    }
    set_sigmask_empty();
    // Everything but the exec is done: tell the host our pid ourselves (the
    // supervisor may still be waiting for us), then close what the program
    // must not inherit. The status pipe stays: close-on-exec, its EOF is the
    // host's "exec'd".
    // SAFETY: getpid has no preconditions.
    send_msg(Msg::Started, unsafe { libc::getpid() }, sup, 0);
    for fd in FD_CTRL..FD_STATUS {
        close(fd);
    }
    // SAFETY: path, argv and envp are NUL-terminated C strings and
    // NULL-terminated pointer arrays built by the host before the fork.
    unsafe {
        libc::execve(
            plan.path.as_ptr(),
            plan.argv_ptrs.as_ptr(),
            plan.envp_ptrs.as_ptr(),
        );
    }
    fail(FailStage::Exec)
}

/// `struct clone_args` of clone3(2) (version 2, with `cgroup`).
#[cfg(target_os = "linux")]
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

#[cfg(target_os = "linux")]
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Like [`raw_fork`], but the child starts life in the cgroup `cgfd`.
/// Returns -1 (errno set) when the kernel lacks clone3/CLONE_INTO_CGROUP.
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
fn fork_into_cgroup(cgfd: c_int) -> pid_t {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgfd as u64,
    };
    // SAFETY: clone3 with a NULL stack behaves like fork(2) (the child
    // returns 0 on a copy of our stack); `args` is a valid clone_args of
    // the size we pass.
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        ) as pid_t
    }
}

/// fork(2) without running `pthread_atfork` handlers.
///
/// On Linux this is the raw `clone` syscall with only SIGCHLD as the exit
/// signal (what glibc's `_Fork` does): no atfork handler of the host (Python,
/// OpenSSL, jemalloc, ...) runs in the child, where it could deadlock on a
/// lock held by a thread that does not exist there.
pub fn raw_fork() -> pid_t {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: clone with flags == SIGCHLD and a NULL stack behaves like
        // fork(2): the child gets a copy of the address space and returns 0.
        // The argument order of the remaining (zero) arguments differs by
        // architecture, which does not matter when they are all zero.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            ) as pid_t
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: fork(2); the child runs only async-signal-safe code.
        unsafe { libc::fork() }
    }
}

impl Sup<'_> {
    fn main_loop(&mut self) -> ! {
        loop {
            let no_children = self.reap_all();
            if !self.leader_alive && (self.phase == Phase::Run || self.phase == Phase::Eof) {
                // A command may be waiting (for an immediate kill the host
                // kills the cgroup itself right after sending it): it
                // decides what this exit was.
                self.read_ctrl_if_ready();
            }
            if !self.leader_alive && (self.phase == Phase::Run || self.phase == Phase::Eof) {
                // The leader exited (on its own, or after stdin closed): the
                // session is over; clean up whatever it left behind.
                if self.tree_empty(no_children) {
                    self.finish();
                }
                self.enter_term();
            }
            let none_left = self.reap_all();
            if self.phase >= Phase::Term && self.tree_empty(none_left) {
                self.finish();
            }
            let now = now_ms();
            if self.phase == Phase::Eof && now >= self.deadline {
                self.enter_term();
                continue;
            }
            if self.phase == Phase::Term && now >= self.deadline {
                self.enter_kill();
            }
            if self.phase == Phase::Kill {
                self.kill_all();
                self.finish();
            }
            self.wait_events(now);
        }
    }

    /// Blocks in poll(2) until a control byte, a signal, or the next check.
    fn wait_events(&mut self, now: i64) {
        let mut timeout: c_int = match self.phase {
            Phase::Run => -1,
            _ => (self.deadline.saturating_sub(now)).clamp(0, 10) as c_int,
        };
        #[cfg(not(target_os = "linux"))]
        {
            // No signalfd: poll SIGCHLD/SIGTERM state every 20 ms.
            if timeout < 0 || timeout > 20 {
                timeout = 20;
            }
        }
        if self.phase == Phase::Run && !self.leader_alive {
            timeout = 0;
        }
        let mut fds = [
            libc::pollfd {
                fd: if self.host_gone { -1 } else { FD_CTRL },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                #[cfg(target_os = "linux")]
                fd: self.sigfd,
                #[cfg(not(target_os = "linux"))]
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on a local array of two pollfd structs.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if r < 0 {
            return;
        }
        if fds[0].revents != 0 {
            self.read_ctrl();
        }
        #[cfg(target_os = "linux")]
        if fds[1].revents != 0 {
            self.drain_sigfd();
        }
        #[cfg(not(target_os = "linux"))]
        {
            // SAFETY: sigpending into a local set.
            let term = unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigpending(&mut set);
                libc::sigismember(&set, libc::SIGTERM) == 1
            };
            if term {
                self.enter_kill();
            }
        }
    }

    fn read_ctrl(&mut self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a local buffer.
        let n = unsafe { libc::read(FD_CTRL, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR || e == libc::EAGAIN {
                return;
            }
        }
        if n <= 0 {
            // Lifeline cut. After a 'D' (the owner dropped the handle) the
            // graceful ladder goes on; otherwise the host died: kill now.
            self.host_gone = true;
            if !self.detached {
                self.enter_kill();
            }
            return;
        }
        let n = (n as usize).min(buf.len());
        for &b in buf.get(..n).unwrap_or(&[]) {
            match Cmd::try_from(b) {
                Ok(cmd @ (Cmd::Kill | Cmd::Detach)) => {
                    if cmd == Cmd::Detach {
                        self.detached = true;
                    }
                    if !self.graceful {
                        self.graceful = true;
                        if self.phase == Phase::Run {
                            self.enter_eof();
                        }
                    }
                }
                Ok(Cmd::KillNow) => self.enter_kill(),
                Err(_) => {}
            }
        }
    }

    #[cfg(target_os = "linux")]
    fn drain_sigfd(&mut self) {
        // struct signalfd_siginfo is 128 bytes; ssi_signo is the first u32.
        let mut buf = [0u8; 128 * 4];
        loop {
            // SAFETY: reading into a local buffer.
            let n = unsafe { libc::read(self.sigfd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let n = (n as usize).min(buf.len());
            let mut off = 0usize;
            while off.wrapping_add(4) <= n {
                if let Some(s) = buf.get(off..off.wrapping_add(4)) {
                    let signo = u32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
                    if signo == libc::SIGTERM as u32 {
                        // Somebody (systemd, a sweep) asks us to go: fast kill.
                        self.enter_kill();
                    }
                }
                off = off.wrapping_add(128);
            }
        }
    }

    /// Sleeps until a signal arrives on the signalfd or `ms` pass. True
    /// when a signal came.
    #[cfg(target_os = "linux")]
    fn wait_sigchld(&mut self, ms: i64) -> bool {
        let mut fds = [libc::pollfd {
            fd: self.sigfd,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on a local array of one pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms as c_int) };
        if r > 0 {
            self.drain_sigfd();
            return true;
        }
        if self.sigfd < 0 {
            sleep_ms(ms);
        }
        false
    }

    /// Enters the last phase: stop-then-kill.
    fn enter_kill(&mut self) {
        self.reached = self.reached.max(Phase::Kill);
        self.phase = Phase::Kill;
    }

    /// Reads a command byte if one is waiting (never blocks).
    fn read_ctrl_if_ready(&mut self) {
        if self.host_gone {
            return;
        }
        let mut fds = [libc::pollfd {
            fd: FD_CTRL,
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: poll on a local array of one pollfd, without waiting.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) } > 0 {
            self.read_ctrl();
        }
    }

    fn enter_eof(&mut self) {
        self.reached = self.reached.max(Phase::Eof);
        if !self.leader_alive || self.plan.grace_eof_ms <= 0 {
            self.enter_term();
            return;
        }
        self.phase = Phase::Eof;
        self.deadline = now_ms().saturating_add(self.plan.grace_eof_ms);
    }

    fn enter_term(&mut self) {
        if self.plan.grace_term_ms <= 0 {
            // No time to act on a SIGTERM: straight to stop-then-kill
            // (which spares a walk of the tree).
            self.enter_kill();
            return;
        }
        self.reached = self.reached.max(Phase::Term);
        self.phase = Phase::Term;
        self.deadline = now_ms().saturating_add(self.plan.grace_term_ms.max(0));
        self.term_count = self
            .term_count
            .saturating_add(self.signal_tree(libc::SIGTERM));
    }

    /// Sends `sig` (then SIGCONT, so stopped processes see it) to every
    /// descendant. Returns how many processes were signalled.
    #[cfg(target_os = "linux")]
    fn signal_tree(&mut self, sig: c_int) -> i32 {
        let n = collect_descendants(self.me, false, &mut self.list);
        let mut count = 0i32;
        for &pid in self.list.pids.get(..n).unwrap_or(&[]) {
            if safe_kill(pid, sig, self.me) {
                safe_kill(pid, libc::SIGCONT, self.me);
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// Without a subreaper we can only reach the agent's process group, and
    /// only while its leader is not reaped (so the pgid cannot be reused).
    #[cfg(not(target_os = "linux"))]
    fn signal_tree(&mut self, sig: c_int) -> i32 {
        if self.leader_alive || self.leader_exited_unreaped {
            // SAFETY: negative pid == process group; agent > 1 is checked.
            if self.agent > 1 && unsafe { libc::kill(-self.agent, sig) } == 0 {
                unsafe {
                    libc::kill(-self.agent, libc::SIGCONT);
                }
                return 1;
            }
        }
        0
    }

    /// Reaps every exited child without blocking. Returns true when we have
    /// no children at all any more (waitpid says ECHILD).
    fn reap_all(&mut self) -> bool {
        loop {
            let mut st: c_int = 0;
            #[cfg(not(target_os = "linux"))]
            if self.leader_alive {
                // Observe the leader's exit without reaping it (WNOWAIT), so
                // its pgid stays reserved while we signal the group.
                // SAFETY: waitid with a local siginfo.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                let r = unsafe {
                    libc::waitid(
                        libc::P_PID,
                        self.agent as libc::id_t,
                        &mut info,
                        libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                    )
                };
                // SAFETY: si_pid is valid for a WEXITED result.
                if r == 0 && unsafe { info.si_pid() } == self.agent {
                    // Read the raw status with a non-reaping waitpid is not
                    // possible; report after reaping in `finish`.
                    self.leader_alive = false;
                    self.leader_exited_unreaped = true;
                }
                return false;
            }
            #[cfg(not(target_os = "linux"))]
            if self.leader_exited_unreaped {
                return false;
            }
            // SAFETY: waitpid with a valid status pointer.
            let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
            if r > 0 {
                if r == self.agent && self.leader_alive {
                    self.leader_alive = false;
                    send_msg(Msg::Exited, st, 0, 0);
                }
                continue;
            }
            if r < 0 && errno() == libc::EINTR {
                continue;
            }
            return r < 0 && errno() == libc::ECHILD;
        }
    }

    fn tree_empty(&self, no_children: bool) -> bool {
        #[cfg(target_os = "linux")]
        {
            no_children
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = no_children;
            !self.leader_alive
        }
    }

    /// Stop-then-kill until no descendant is left. Returns when confirmed.
    fn kill_all(&mut self) {
        self.reached = self.reached.max(Phase::Kill);
        #[cfg(target_os = "linux")]
        {
            let mut quiet_ms: i64 = 1;
            loop {
                // One write kills the whole cgroup atomically (no fork
                // race); the walk below still runs for anything that moved
                // itself out of the cgroup.
                self.kill_cgroup();
                let n = collect_descendants(self.me, true, &mut self.list);
                for &pid in self.list.pids.get(..n).unwrap_or(&[]) {
                    if safe_kill(pid, libc::SIGKILL, self.me) {
                        self.kill_count = self.kill_count.saturating_add(1);
                    }
                }
                // Reap as the tree dies, one SIGCHLD at a time. Everything
                // found was stopped before its children were read, so
                // nothing new can appear; only a wait that stays quiet (a
                // process in uninterruptible sleep, a walk that hit its
                // cap) walks and kills again.
                loop {
                    if self.reap_all() {
                        return;
                    }
                    if !self.wait_sigchld(quiet_ms) {
                        break;
                    }
                }
                quiet_ms = quiet_ms.saturating_mul(2).min(10);
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.kill_count = self
                .kill_count
                .saturating_add(self.signal_tree(libc::SIGKILL));
        }
    }

    /// Writes `cgroup.kill` of the session cgroup, if any (opened once).
    #[cfg(target_os = "linux")]
    fn kill_cgroup(&mut self) {
        if self.killfd < 0 {
            if let Some(k) = &self.plan.cgroup_kill {
                self.killfd = open_path(k.as_bytes_with_nul(), libc::O_WRONLY);
            }
        }
        if self.killfd >= 0 {
            // SAFETY: writing one byte from a static buffer.
            unsafe {
                libc::pwrite(self.killfd, b"1".as_ptr().cast(), 1, 0);
            }
        }
    }

    /// Waits until `cgroup.events` says `populated 0`, at most `bound_ms`,
    /// killing the cgroup again on every change. The kernel reports each
    /// change of the file as `POLLPRI`, so this sleeps until it happens
    /// instead of polling on a timer.
    #[cfg(target_os = "linux")]
    fn wait_cgroup_empty(&mut self, events: &CString, bound_ms: i64) {
        let fd = open_path(events.as_bytes_with_nul(), libc::O_RDONLY);
        if fd < 0 {
            return;
        }
        let until = now_ms().saturating_add(bound_ms);
        while cgroup_populated(fd) {
            let left = until.saturating_sub(now_ms());
            if left <= 0 {
                break;
            }
            self.kill_cgroup();
            let mut p = [libc::pollfd {
                fd,
                events: libc::POLLPRI,
                revents: 0,
            }];
            // SAFETY: poll on a local array of one pollfd; the timeout also
            // covers a kernel that would not notify.
            unsafe {
                libc::poll(p.as_mut_ptr(), 1, left.min(50) as c_int);
            }
        }
        close(fd);
    }

    /// Confirms the tree is empty (and the cgroup unpopulated), reports, and
    /// exits.
    fn finish(&mut self) -> ! {
        // What this process removed itself, so that the host need not look
        // (elsewhere there is nothing to remove).
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut removed = proto::REMOVED_CGROUP | proto::REMOVED_LIMIT_CGROUPS;
        #[cfg(target_os = "linux")]
        {
            // Belt and braces: run the kill loop once more; it returns at
            // once when there is nobody left.
            if !self.reap_all() {
                self.kill_all();
            }
            if let Some(events) = &self.plan.cgroup_events {
                // Wait (bounded) until the kernel says the cgroup is empty:
                // a process leaves it only after its last context switch,
                // which can come a little after it was reaped.
                self.wait_cgroup_empty(events, 1000);
                if let Some(dir) = &self.plan.cgroup_dir {
                    // Remove the (now empty) session cgroup ourselves: the
                    // host may be dead. If this fails (sub-cgroups), the
                    // host's cleanup or the sweep removes it recursively.
                    // SAFETY: NUL-terminated path owned by the plan.
                    if unsafe { libc::rmdir(dir.as_ptr()) } != 0 {
                        removed &= !proto::REMOVED_CGROUP;
                    }
                }
            }
            // The limit-only cgroups are empty too once the tree is gone.
            for dir in &self.plan.limit_dirs {
                // SAFETY: NUL-terminated path owned by the plan.
                if unsafe { libc::rmdir(dir.as_ptr()) } != 0 {
                    removed &= !proto::REMOVED_LIMIT_CGROUPS;
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            if self.leader_exited_unreaped || self.leader_alive {
                if self.leader_alive {
                    self.kill_all();
                }
                let mut st: c_int = 0;
                // SAFETY: blocking waitpid on our own child.
                let r = unsafe { libc::waitpid(self.agent, &mut st, 0) };
                if r == self.agent {
                    send_msg(Msg::Exited, st, 0, 0);
                }
                self.leader_alive = false;
                self.leader_exited_unreaped = false;
            }
        }
        let mut m = proto::encode(
            Msg::Report,
            self.reached as i32,
            self.term_count,
            self.kill_count,
        );
        m[proto::FLAGS] = removed;
        write_all(FD_CTRL, &m);
        exit_now(0)
    }
}

/// Reads the open `cgroup.events` (from its start) and returns true while it
/// says `populated 1`.
#[cfg(target_os = "linux")]
fn cgroup_populated(fd: c_int) -> bool {
    let mut buf = [0u8; 256];
    // SAFETY: reading into a local buffer.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return false;
    }
    let s = buf.get(..n as usize).unwrap_or(&[]);
    let key = b"populated ";
    let mut i = 0usize;
    while i.wrapping_add(key.len()) < s.len() {
        if s.get(i..i.wrapping_add(key.len())) == Some(&key[..]) {
            return s.get(i.wrapping_add(key.len())) == Some(&b'1');
        }
        i = i.wrapping_add(1);
    }
    false
}
