//! Host side: preparing a [`Plan`], starting the supervisor (through the
//! launcher or by a fork, `launch.rs`), and the [`Contained`] handle.

use super::proto::{self, Cmd, FailStage, Msg, Phase};
use super::supervisor::{self, Plan};
use super::{
    cgroup, env, launch, limits, state, sys, ContainmentMode, ContainmentPreference, KillReport,
    LadderStage, LimitsApplied, SpawnOptions, StdioMode, SupervisorLaunch,
};
use crate::{Error, Result};
use parking_lot::Mutex;
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// The agent's stdin as an async writer (`tokio::io::AsyncWrite`).
pub type ChildStdin = tokio::net::unix::pipe::Sender;
/// The agent's stdout as an async reader (`tokio::io::AsyncRead`).
pub type ChildStdout = tokio::net::unix::pipe::Receiver;
/// The agent's stderr as an async reader (`tokio::io::AsyncRead`).
pub type ChildStderr = tokio::net::unix::pipe::Receiver;

/// The containment mode new sessions get on this system (detected once).
///
/// `Cgroup` when a writable cgroup v2 directory with `cgroup.kill` is found
/// (delegated cgroup, or root), else `Subreaper` on Linux, `ProcessGroup`
/// elsewhere.
pub fn detect_mode() -> ContainmentMode {
    #[cfg(target_os = "linux")]
    {
        if cgroup::base().is_some() {
            ContainmentMode::Cgroup
        } else {
            ContainmentMode::Subreaper
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        ContainmentMode::ProcessGroup
    }
}

fn new_session_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(seq);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:x}-{:x}-{:016x}", std::process::id(), seq, h.finish())
}

fn cstring(what: &str, b: &[u8]) -> Result<CString> {
    CString::new(b).map_err(|_| Error::InvalidArgument(format!("{what} contains a NUL byte")))
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// The child end of one stdio stream, and the host end if piped.
fn stdio_pair(mode: StdioMode, fd: i32, child_reads: bool) -> Result<(OwnedFd, Option<OwnedFd>)> {
    match mode {
        StdioMode::Piped => {
            let (r, w) = sys::pipe()?;
            let (child, host) = if child_reads { (r, w) } else { (w, r) };
            // The host end is registered with tokio as it is (a pipe, in
            // the right direction): only the non-blocking flag is missing.
            sys::set_nonblocking(&host)?;
            Ok((child, Some(host)))
        }
        StdioMode::Null => {
            let f = std::fs::OpenOptions::new()
                .read(child_reads)
                .write(!child_reads)
                .open("/dev/null")?;
            Ok((f.into(), None))
        }
        StdioMode::Inherit => {
            // SAFETY: borrowing the host's standard descriptor only to dup it.
            let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            Ok((b.try_clone_to_owned()?, None))
        }
    }
}

/// How the host learns that a session's supervisor has exited.
enum SupervisorProc {
    /// Forked by the host: its child, reaped here (through a pidfd where the
    /// kernel has them).
    Child {
        pid: i32,
        #[cfg(target_os = "linux")]
        pidfd: Option<OwnedFd>,
        reaped: bool,
    },
    /// Forked by the launcher, which reaps it. It is gone once its end of
    /// the control socket is closed: `ctrl` is the host's end, kept only to
    /// see that EOF (`None`: seen, or the supervisor already reported that
    /// the tree is gone and exits next).
    Launched {
        ctrl: Option<tokio::net::UnixStream>,
    },
}

/// Things to undo after the supervisor is gone.
struct Cleanup {
    sup: SupervisorProc,
    cgroup: Option<PathBuf>,
    /// Limit-only cgroups (v1 controllers), removed once empty.
    limit_cgroups: Vec<PathBuf>,
    record: Option<PathBuf>,
}

impl Cleanup {
    /// Non-blocking: true once the supervisor has exited (and, if it is our
    /// child, has been reaped).
    fn supervisor_gone(&mut self) -> bool {
        match &mut self.sup {
            SupervisorProc::Child { pid, reaped, .. } => {
                if !*reaped {
                    match sys::try_reap(*pid) {
                        sys::Reap::Running => return false,
                        _ => *reaped = true,
                    }
                }
                true
            }
            SupervisorProc::Launched { ctrl } => {
                if let Some(c) = ctrl {
                    if !sys::drained_to_eof(c.as_raw_fd()) {
                        return false;
                    }
                }
                *ctrl = None;
                true
            }
        }
    }

    /// Non-blocking attempt; true when everything is done.
    fn try_finish(&mut self) -> bool {
        if !self.supervisor_gone() {
            return false;
        }
        if let Some(cg) = &self.cgroup {
            if cgroup::populated(cg) {
                cgroup::kill(cg);
                return false;
            }
            if !cgroup::remove(cg) {
                return false;
            }
            self.cgroup = None;
        }
        // Emptied with the tree; the supervisor usually removed them already.
        self.limit_cgroups.retain(|d| !cgroup::remove(d));
        if let Some(r) = self.record.take() {
            let _ = std::fs::remove_file(r);
        }
        true
    }

    /// Waits (asynchronously) until the supervisor has exited, then cleans up.
    async fn finish(mut self) {
        match &mut self.sup {
            #[cfg(target_os = "linux")]
            SupervisorProc::Child { pidfd, .. } => {
                if let Some(fd) = pidfd.take() {
                    // A pidfd becomes readable when the process exits.
                    // SAFETY: the OwnedFd stays open and unchanged for the
                    // lifetime of the AsyncFd, which owns it.
                    let reg = unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            fd,
                            tokio::io::Interest::READABLE,
                        )
                    };
                    if let Ok(afd) = reg {
                        let _ = afd.readable().await;
                    }
                }
            }
            #[cfg(not(target_os = "linux"))]
            SupervisorProc::Child { .. } => {}
            SupervisorProc::Launched { ctrl } => {
                if let Some(c) = ctrl.as_mut() {
                    // What the supervisor still reports is of no use now;
                    // its EOF is.
                    let mut buf = [0u8; 64];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    *ctrl = None;
                }
            }
        }
        let mut delay = 1u64;
        while !self.try_finish() {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            delay = (delay * 2).min(50);
        }
    }
}

/// Supervisors whose handle was dropped outside a tokio runtime (or whose
/// reaping task was cancelled): reaped opportunistically at the next spawn
/// or sweep, so they never stay zombies for long.
static PENDING: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());

fn reap_pending() {
    let mut p = PENDING.lock();
    p.retain_mut(|c| !c.try_finish());
}

/// Owns a [`Cleanup`] inside a spawned task; if the task is dropped before
/// finishing (runtime shut down), hands it over to [`PENDING`].
struct CleanupGuard(Option<Cleanup>);

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            if !c.try_finish() {
                PENDING.lock().push(c);
            }
        }
    }
}

fn adopt(cleanup: Cleanup) {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => {
            let mut guard = CleanupGuard(Some(cleanup));
            h.spawn(async move {
                if let Some(c) = guard.0.take() {
                    c.finish().await;
                }
                drop(guard);
            });
        }
        Err(_) => {
            let mut c = cleanup;
            if !c.try_finish() {
                PENDING.lock().push(c);
            }
        }
    }
}

/// Everything a supervisor is started with: the [`Plan`], the child ends of
/// its descriptors, and the session's [`HostSide`].
struct Prepared {
    plan: Plan,
    /// ctrl, stdin, stdout, stderr, status: the supervisor's ends.
    child_fds: [OwnedFd; 5],
    host: HostSide,
}

/// What the host keeps of a session being started: its ends of the
/// session's descriptors and what was created for it.
struct HostSide {
    /// The read end of the exec-status pipe (non-blocking).
    status: OwnedFd,
    mode: ContainmentMode,
    limits: LimitsApplied,
    session_id: String,
    host_sock: std::os::unix::net::UnixStream,
    in_host: Option<OwnedFd>,
    out_host: Option<OwnedFd>,
    err_host: Option<OwnedFd>,
    cg_dir: Option<PathBuf>,
    limit_dirs: Vec<PathBuf>,
}

/// Removes the cgroups created for a session that did not start.
fn remove_cgroups(cg_dir: &Option<PathBuf>, limit_dirs: &[PathBuf]) {
    if let Some(d) = cg_dir {
        cgroup::remove(d);
    }
    for d in limit_dirs {
        cgroup::remove(d);
    }
}

/// The raw numbers of `fds`.
fn raw(fds: &[OwnedFd; 5]) -> [i32; 5] {
    [
        fds[0].as_raw_fd(),
        fds[1].as_raw_fd(),
        fds[2].as_raw_fd(),
        fds[3].as_raw_fd(),
        fds[4].as_raw_fd(),
    ]
}

/// The synchronous part of a spawn: builds the [`Plan`] (environment,
/// program path, cgroups and limits, descriptors). With `launched` (the
/// session goes to the launcher) the plan names the host's current
/// directory when `opts.cwd` is unset (a supervisor forked by the launcher
/// does not share the host's).
fn prepare(opts: SpawnOptions, launched: bool) -> Result<Prepared> {
    let session_id = new_session_id();
    let env = env::build(
        opts.inherit_env,
        &opts.env_allow,
        &opts.env_extra,
        &session_id,
    );
    let path = env::resolve_program(opts.program.as_os_str(), &env, opts.cwd.as_deref())
        .ok_or_else(|| {
            Error::Spawn(format!(
                "program not found or not executable: {}",
                opts.program.display()
            ))
        })?;

    // argv / envp as C strings, built BEFORE the fork (the child must not
    // allocate); the plan owns them and their pointer arrays.
    let mut argv_c = vec![cstring("program", opts.program.as_os_str().as_bytes())?];
    for a in &opts.args {
        argv_c.push(cstring("argument", a.as_bytes())?);
    }
    let mut envp_c = Vec::with_capacity(env.len());
    for (k, v) in &env {
        if k.is_empty() || k.as_bytes().contains(&b'=') {
            return Err(Error::InvalidArgument(format!(
                "bad environment variable name {k:?}"
            )));
        }
        let mut kv: OsString = k.clone();
        kv.push("=");
        kv.push(v);
        envp_c.push(cstring("environment", kv.as_bytes())?);
    }
    let mut plan = Plan::new(
        cstring("program path", path.as_os_str().as_bytes())?,
        argv_c,
        envp_c,
    );
    let cwd = match &opts.cwd {
        Some(c) => Some(c.clone()),
        // A host whose directory was removed gives none: the agent then
        // starts in the supervisor's, as a forked one would in the host's.
        None if launched => std::env::current_dir().ok(),
        None => None,
    };
    plan.cwd = match &cwd {
        Some(c) => Some(cstring("cwd", c.as_os_str().as_bytes())?),
        None => None,
    };
    plan.grace_eof_ms = ms(opts.grace_eof);
    plan.grace_term_ms = ms(opts.grace_term);

    // Containment: a per-session cgroup when available and wanted.
    let mut mode = detect_mode();
    if opts.containment == ContainmentPreference::Subreaper && mode == ContainmentMode::Cgroup {
        mode = ContainmentMode::Subreaper;
    }
    let cg_dir = match (mode, cgroup::base()) {
        (ContainmentMode::Cgroup, Some(base)) => match cgroup::create(base, &session_id) {
            Ok(d) => Some(d),
            Err(_) => {
                mode = ContainmentMode::Subreaper;
                None
            }
        },
        _ => None,
    };
    // From here on every error path removes what was created.
    let mut limit_dirs = Vec::new();
    let limits = match limits::apply(
        &opts,
        &session_id,
        cg_dir.as_deref(),
        &mut plan,
        &mut limit_dirs,
    ) {
        Ok(l) => l,
        Err(e) => {
            remove_cgroups(&cg_dir, &limit_dirs);
            return Err(e);
        }
    };
    let fds = (|| -> Result<_> {
        if let Some(d) = &cg_dir {
            let file = |name: &str| cstring("cgroup path", d.join(name).as_os_str().as_bytes());
            plan.cgroup_dir = Some(cstring("cgroup path", d.as_os_str().as_bytes())?);
            plan.cgroup_procs = Some(file("cgroup.procs")?);
            plan.cgroup_kill = Some(file("cgroup.kill")?);
            plan.cgroup_events = Some(file("cgroup.events")?);
        }
        // Lifeline + control + status: one socket pair.
        let (host_sock, sup_sock) = std::os::unix::net::UnixStream::pair()?;
        sys::no_sigpipe(&host_sock);
        let (in_child, in_host) = stdio_pair(opts.stdin, 0, true)?;
        let (out_child, out_host) = stdio_pair(opts.stdout, 1, false)?;
        let (err_child, err_host) = stdio_pair(opts.stderr, 2, false)?;
        // The agent's exec status comes straight to us: EOF when it has
        // exec'd (the write end is close-on-exec), its failed step if not.
        let (status, status_child) = sys::pipe_nonblocking()?;
        Ok((
            host_sock,
            [
                sup_sock.into(),
                in_child,
                out_child,
                err_child,
                status_child,
            ],
            [in_host, out_host, err_host],
            status,
        ))
    })();
    let (host_sock, child_fds, [in_host, out_host, err_host], status) = match fds {
        Ok(p) => p,
        Err(e) => {
            remove_cgroups(&cg_dir, &limit_dirs);
            return Err(e);
        }
    };
    Ok(Prepared {
        plan,
        child_fds,
        host: HostSide {
            status,
            mode,
            limits,
            session_id,
            host_sock,
            in_host,
            out_host,
            err_host,
            cg_dir,
            limit_dirs,
        },
    })
}

/// A started supervisor and the host's side of its session.
struct Started {
    sup: SupervisorProc,
    /// 0 until the supervisor reports it (launched).
    sup_pid: i32,
    launch: SupervisorLaunch,
    host: HostSide,
}

/// The synchronous part of a spawn: [`prepare`], then hand the session to
/// the launcher (`exec`; it is started first when none runs for the host's
/// current state) or fork the supervisor (fork mode, or when the launcher
/// cannot be started or reached). Never waits for another process but the
/// launcher's start.
fn start(opts: SpawnOptions, exec: bool) -> Result<Started> {
    let Prepared {
        mut plan,
        child_fds,
        host,
    } = prepare(opts, exec)?;
    let fds = raw(&child_fds);
    let launched = exec && {
        let mut sent = launch::send(&plan, fds);
        if matches!(&sent, Err(e) if e.kind() == std::io::ErrorKind::NotConnected) {
            // No launcher yet, or it must be replaced: start one (an exec
            // of about a millisecond, once per process) and try again. If
            // the program cannot run here (remembered: later sessions fork
            // at once) this session forks.
            sent = launch::start_launcher().and_then(|()| launch::send(&plan, fds));
        }
        sent.is_ok()
    };
    let (sup, sup_pid) = if launched {
        (SupervisorProc::Launched { ctrl: None }, 0)
    } else {
        let pid = match fork_supervisor(&mut plan, &child_fds) {
            Ok(pid) => pid,
            Err(e) => {
                remove_cgroups(&host.cg_dir, &host.limit_dirs);
                return Err(e);
            }
        };
        let sup = SupervisorProc::Child {
            pid,
            #[cfg(target_os = "linux")]
            pidfd: sys::pidfd_open(pid),
            reaped: false,
        };
        (sup, pid)
    };
    // The supervisor holds its own copies now.
    drop(plan);
    drop(child_fds);
    Ok(Started {
        sup,
        sup_pid,
        launch: if launched {
            SupervisorLaunch::Exec
        } else {
            SupervisorLaunch::Fork
        },
        host,
    })
}

/// Waits until the agent has exec'd: `None`, or the step that failed and
/// its errno, from the exec-status pipe. EOF also comes when no agent was
/// forked at all (the supervisor or the launcher closed its copy); the
/// control socket then says why.
async fn exec_status(status: OwnedFd) -> Result<Option<(i32, i32)>> {
    // SAFETY: the OwnedFd stays open and unchanged for the lifetime of the
    // AsyncFd, which owns it.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(status, tokio::io::Interest::READABLE)
    }
    .map_err(|e| Error::Io(e.to_string()))?;
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        let mut guard = afd.readable().await?;
        match guard.try_io(|fd| sys::read(fd.as_raw_fd(), &mut buf[got..])) {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => got += n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_would_block) => {}
        }
    }
    Ok(match got {
        0 => None,
        8 => Some((
            i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]),
            i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]),
        )),
        _ => Some((0, libc::EIO)),
    })
}

/// Starts the supervisor as a fork of this process (on the calling thread;
/// the child runs the supervisor and never returns). Returns its pid.
fn fork_supervisor(plan: &mut Plan, child_fds: &[OwnedFd; 5]) -> Result<i32> {
    [plan.ctrl, plan.stdin, plan.stdout, plan.stderr, plan.status] = raw(child_fds);
    let old_mask = sys::block_all_signals();
    let pid = supervisor::raw_fork();
    if pid == 0 {
        // Child: never returns.
        supervisor::run(plan);
    }
    let err = std::io::Error::last_os_error();
    sys::restore_signals(&old_mask);
    if pid < 0 {
        return Err(Error::Spawn(format!("fork failed: {err}")));
    }
    Ok(pid)
}

/// A contained agent process: the handle to one session's process tree.
///
/// Created by [`Contained::spawn`]. Dropping it kills the tree without
/// blocking: the supervisor runs the kill ladder on its own.
pub struct Contained {
    pid: i32,
    /// The supervisor's pid (known once it reported `S` when the launcher
    /// forked it).
    sup_pid: i32,
    mode: ContainmentMode,
    launch: SupervisorLaunch,
    limits: LimitsApplied,
    session_id: String,
    ctrl: Option<tokio::net::UnixStream>,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    rbuf: [u8; proto::MSG_LEN],
    rlen: usize,
    status: Option<ExitStatus>,
    report: Option<KillReport>,
    kill_sent: bool,
    eof: bool,
    /// Both grace periods are zero: a kill is immediate at every step.
    no_grace: bool,
    cleanup: Option<Cleanup>,
}

impl std::fmt::Debug for Contained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contained")
            .field("pid", &self.pid)
            .field("mode", &self.mode)
            .field("launch", &self.launch)
            .field("session_id", &self.session_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Contained {
    /// Starts `opts.program` under a fresh per-session supervisor.
    ///
    /// Returns once the program has been exec'd (or with
    /// [`Error::Spawn`] if it could not be: not found, not executable, bad
    /// cwd, rlimit refused, ...). Must be called within a tokio runtime
    /// (the pipes register with its reactor). In exec mode
    /// ([`super::supervisor_mode`]) the preparation (pipes, the session
    /// cgroup) and the hand-over to the launcher run on tokio's blocking
    /// pool, so the calling worker never waits for them.
    pub async fn spawn(opts: SpawnOptions) -> Result<Contained> {
        reap_pending();
        // The descendant walk needs /proc/<pid>/task/<tid>/children
        // (CONFIG_PROC_CHILDREN). Without it the supervisor could not find
        // grandchildren and its kill loop would never see an empty tree:
        // refuse clearly rather than hang. (No fallback scan yet.)
        #[cfg(target_os = "linux")]
        if !sys::proc_children_available() {
            return Err(Error::Spawn(
                "kernel lacks /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)".into(),
            ));
        }
        let state_dir = opts.state_dir.clone();
        let program = opts.program.clone();
        let no_grace = opts.grace_eof.is_zero() && opts.grace_term.is_zero();
        let s = match launch::choose(opts.supervisor) {
            // Preparing touches the file system (the session cgroup) and
            // the first session starts the launcher (an exec): none of it
            // on this worker.
            SupervisorLaunch::Exec => tokio::task::spawn_blocking(move || start(opts, true))
                .await
                .map_err(|e| Error::Spawn(format!("supervisor start task failed: {e}")))??,
            // Fork mode as it always was: on the calling thread.
            _ => start(opts, false)?,
        };
        let Started {
            sup,
            sup_pid,
            launch,
            host:
                HostSide {
                    status,
                    mode,
                    limits,
                    session_id,
                    host_sock,
                    in_host,
                    out_host,
                    err_host,
                    cg_dir,
                    limit_dirs,
                },
        } = s;
        let cleanup = Cleanup {
            sup,
            cgroup: cg_dir.clone(),
            limit_cgroups: limit_dirs.clone(),
            record: None,
        };
        let mut me = Contained {
            pid: 0,
            sup_pid,
            mode,
            launch,
            limits,
            session_id,
            ctrl: None,
            stdin: None,
            stdout: None,
            stderr: None,
            rbuf: [0; proto::MSG_LEN],
            rlen: 0,
            status: None,
            report: None,
            kill_sent: false,
            eof: false,
            no_grace,
            cleanup: Some(cleanup),
        };
        host_sock.set_nonblocking(true)?;
        me.ctrl = Some(tokio::net::UnixStream::from_std(host_sock)?);
        // From here on, an early return drops `me`, which cleans up.
        if let Some((stage, errno)) = exec_status(status).await? {
            let what = FailStage::from_i32(stage).map_or("starting the agent", FailStage::action);
            me.drain_and_reap().await;
            return Err(Error::Spawn(format!(
                "{what} failed for {}: {}",
                program.display(),
                std::io::Error::from_raw_os_error(errno)
            )));
        }
        let first = me.next_msg().await?;
        match first.map(|(tag, a, b, _)| (Msg::try_from(tag), a, b)) {
            Some((Ok(Msg::Started), pid, sup_pid)) if pid > 1 => {
                me.pid = pid;
                if launch == SupervisorLaunch::Exec {
                    me.sup_pid = sup_pid;
                }
            }
            Some((Ok(Msg::Failed), stage, errno)) => {
                let what =
                    FailStage::from_i32(stage).map_or("starting the agent", FailStage::action);
                me.drain_and_reap().await;
                return Err(Error::Spawn(format!(
                    "{what} failed for {}: {}",
                    program.display(),
                    std::io::Error::from_raw_os_error(errno)
                )));
            }
            _ => {
                me.drain_and_reap().await;
                return Err(Error::Spawn(format!(
                    "supervisor failed before starting the agent ({first:?})"
                )));
            }
        }
        if let Some(h) = in_host {
            me.stdin = Some(ChildStdin::from_owned_fd_unchecked(h)?);
        }
        if let Some(h) = out_host {
            me.stdout = Some(ChildStdout::from_owned_fd_unchecked(h)?);
        }
        if let Some(h) = err_host {
            me.stderr = Some(ChildStderr::from_owned_fd_unchecked(h)?);
        }
        if let Some(dir) = &state_dir {
            let rec = state::Record {
                session_id: me.session_id.clone(),
                host_pid: sys::getpid(),
                host_start: state::own_start_time(),
                supervisor_pid: me.sup_pid,
                supervisor_start: state::start_time(me.sup_pid),
                agent_pid: me.pid,
                agent_start: state::start_time(me.pid),
                pgid: me.pid,
                cgroup: cg_dir,
                limit_cgroups: limit_dirs,
            };
            let path = state::write_record(dir, &rec)?;
            if let Some(c) = me.cleanup.as_mut() {
                c.record = Some(path);
            }
        }
        Ok(me)
    }

    /// The agent's pid (as seen by the host).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The agent's process-group id. The agent runs `setsid`, so this equals
    /// [`pid`](Self::pid) (and the session id).
    pub fn pgid(&self) -> i32 {
        self.pid
    }

    /// The pid of this session's supervisor process: a child of the host
    /// (fork mode) or of the launcher (exec mode).
    pub fn supervisor_pid(&self) -> i32 {
        self.sup_pid
    }

    /// The containment mode this session actually runs under.
    pub fn mode(&self) -> ContainmentMode {
        self.mode
    }

    /// How this session's supervisor was started (exec'd program or fork).
    pub fn supervisor_launch(&self) -> SupervisorLaunch {
        self.launch
    }

    /// Which mechanism enforces each of the session's limits.
    pub fn limits(&self) -> LimitsApplied {
        self.limits
    }

    /// The unique session id; every process of the session inherits it as
    /// `HOTPLEX_SESSION_ID` (unless it clears its environment).
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Takes the agent's stdin (None if not piped or already taken).
    /// Dropping it closes the agent's stdin (EOF).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Takes the agent's stdout (None if not piped or already taken).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// Takes the agent's stderr (None if not piped or already taken).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    /// The agent's exit status, if it has already been observed.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Reads the next supervisor record. Cancel-safe: a partial record stays
    /// buffered in `self`. `Ok(None)` at EOF (the supervisor exited).
    async fn next_msg(&mut self) -> Result<Option<(u8, i32, i32, i32)>> {
        loop {
            if self.rlen == proto::MSG_LEN {
                self.rlen = 0;
                let m = proto::decode(&self.rbuf);
                match Msg::try_from(m.0) {
                    Ok(Msg::Exited) => self.status = Some(ExitStatus::from_raw(m.1)),
                    Ok(Msg::Report) => {
                        // What the supervisor removed need not be looked at.
                        let removed = self.rbuf[proto::FLAGS];
                        if let Some(c) = self.cleanup.as_mut() {
                            if removed & proto::REMOVED_CGROUP != 0 {
                                c.cgroup = None;
                            }
                            if removed & proto::REMOVED_LIMIT_CGROUPS != 0 {
                                c.limit_cgroups.clear();
                            }
                        }
                        self.report = Some(KillReport {
                            exit_status: self.status,
                            stage: Phase::from_i32(m.1)
                                .map_or(LadderStage::None, LadderStage::from_phase),
                            terminated: m.2.max(0) as u32,
                            killed: m.3.max(0) as u32,
                            elapsed: Duration::ZERO,
                        })
                    }
                    _ => {}
                }
                return Ok(Some(m));
            }
            if self.eof {
                return Ok(None);
            }
            let ctrl = match self.ctrl.as_mut() {
                Some(c) => c,
                None => return Ok(None),
            };
            let n = match ctrl.read(&mut self.rbuf[self.rlen..]).await {
                Ok(n) => n,
                // The supervisor exited with a command byte of ours still
                // unread (it had already finished): that is an EOF too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                self.eof = true;
                return Ok(None);
            }
            self.rlen += n;
        }
    }

    /// Reads everything the supervisor still sends, then reaps it and
    /// removes the cgroup and state record.
    async fn drain_and_reap(&mut self) {
        while let Ok(Some(_)) = self.next_msg().await {}
        self.ctrl = None;
        self.finish_cleanup().await;
    }

    /// Once the supervisor reported (or hung up): waits for it where that
    /// is needed (a child of ours is reaped) and undoes the rest.
    async fn finish_cleanup(&mut self) {
        if let Some(mut c) = self.cleanup.take() {
            if let SupervisorProc::Launched { ctrl } = &mut c.sup {
                // Its report (or its EOF) was the last thing it had to say;
                // the launcher reaps it.
                *ctrl = None;
            }
            if !c.try_finish() {
                c.finish().await;
            }
        }
    }

    /// Waits until the agent (the leader) exits and returns its status.
    ///
    /// Cancel-safe. When the leader exits on its own, the supervisor
    /// immediately runs SIGTERM, `grace_term`, SIGKILL over whatever it left
    /// behind, so [`kill`](Self::kill) afterwards only collects the report.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        while self.status.is_none() {
            if self.next_msg().await?.is_none() {
                break;
            }
        }
        self.status.ok_or_else(|| {
            Error::Containment(format!(
                "supervisor of session {} exited without reporting the agent's status",
                self.session_id
            ))
        })
    }

    /// Runs the kill ladder and returns once the whole tree is confirmed
    /// gone: closes stdin, waits `grace_eof` for the agent to exit, SIGTERMs
    /// every descendant, waits `grace_term`, then stops and SIGKILLs every
    /// descendant until none is left.
    ///
    /// Idempotent: a second call returns the first report.
    pub async fn kill(&mut self) -> Result<KillReport> {
        self.kill_with(Cmd::Kill).await
    }

    /// Like [`kill`](Self::kill) but skips both grace periods: stop and
    /// SIGKILL the whole tree at once.
    pub async fn kill_now(&mut self) -> Result<KillReport> {
        self.kill_with(Cmd::KillNow).await
    }

    async fn kill_with(&mut self, cmd: Cmd) -> Result<KillReport> {
        let started = Instant::now();
        self.stdin = None;
        if !self.kill_sent && !self.eof {
            if let Some(c) = &self.ctrl {
                // EPIPE means the supervisor already finished: fine.
                let _ = sys::send_byte(c.as_raw_fd(), cmd as u8);
            }
            self.kill_sent = true;
            if cmd == Cmd::KillNow || self.no_grace {
                // Nothing is to wait for: in cgroup mode the host kills the
                // cgroup (only the agent's tree is in it) while the
                // supervisor wakes up to walk, reap and confirm; the command
                // went first, so the supervisor reads the exit it sees as
                // the kill it is.
                if let Some(cg) = self.cleanup.as_ref().and_then(|c| c.cgroup.as_ref()) {
                    cgroup::kill(cg);
                }
            }
        }
        // The report is the supervisor's last word: it exits right after
        // it, so there is no need to wait for its EOF as well.
        while self.report.is_none() {
            if self.next_msg().await?.is_none() {
                break;
            }
        }
        self.ctrl = None;
        self.finish_cleanup().await;
        match &mut self.report {
            Some(r) => {
                if r.elapsed.is_zero() {
                    r.elapsed = started.elapsed();
                    r.exit_status = self.status;
                }
                Ok(r.clone())
            }
            None => Err(Error::Containment(format!(
                "supervisor of session {} died before confirming the tree was empty",
                self.session_id
            ))),
        }
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        // Close stdin first (EOF), then ask for the graceful ladder; the
        // supervisor finishes the job on its own.
        self.stdin = None;
        let mut ctrl = self.ctrl.take();
        if let Some(c) = &ctrl {
            if !self.eof {
                let _ = sys::send_byte(c.as_raw_fd(), Cmd::Detach as u8);
            }
        }
        if let Some(mut c) = self.cleanup.take() {
            if let SupervisorProc::Launched { ctrl: keep } = &mut c.sup {
                // Not our child: its EOF on this socket is how the cleanup
                // learns that it is gone (after `D`, an open socket is not
                // a lifeline it waits for).
                if !self.eof {
                    *keep = ctrl.take();
                }
            }
            adopt(c);
        }
        // Closing our end (fork mode) cuts the lifeline after `D`.
        drop(ctrl);
    }
}
