//! Host side: preparing a [`Plan`], starting the supervisor (exec'd program
//! or fork, `launch.rs`), and the [`Contained`] handle.

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
            Ok(if child_reads {
                (r, Some(w))
            } else {
                (w, Some(r))
            })
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

/// Things to undo after the supervisor is gone.
struct Cleanup {
    supervisor: i32,
    #[cfg(target_os = "linux")]
    pidfd: Option<OwnedFd>,
    cgroup: Option<PathBuf>,
    /// Limit-only cgroups (v1 controllers), removed once empty.
    limit_cgroups: Vec<PathBuf>,
    record: Option<PathBuf>,
    reaped: bool,
}

impl Cleanup {
    /// Non-blocking attempt; true when everything is done.
    fn try_finish(&mut self) -> bool {
        if !self.reaped {
            match sys::try_reap(self.supervisor) {
                sys::Reap::Running => return false,
                _ => self.reaped = true,
            }
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
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.pidfd.take() {
            // A pidfd becomes readable when the process exits.
            // SAFETY: the OwnedFd stays open and unchanged for the lifetime
            // of the AsyncFd, which owns it.
            let reg = unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
            };
            if let Ok(afd) = reg {
                let _ = afd.readable().await;
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

/// What [`start`] hands back: a running supervisor and the host's ends.
struct Started {
    sup_pid: i32,
    mode: ContainmentMode,
    launch: SupervisorLaunch,
    limits: LimitsApplied,
    session_id: String,
    host_sock: std::os::unix::net::UnixStream,
    in_host: Option<OwnedFd>,
    out_host: Option<OwnedFd>,
    err_host: Option<OwnedFd>,
    cg_dir: Option<PathBuf>,
    limit_dirs: Vec<PathBuf>,
}

/// The synchronous part of a spawn: builds the [`Plan`] (environment,
/// program path, cgroups and limits, descriptors) and starts the supervisor,
/// by exec (`exec`, falling back to fork if the program cannot run) or fork.
fn start(opts: SpawnOptions, exec: bool) -> Result<Started> {
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
    plan.cwd = match &opts.cwd {
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
    let undo = |cg: &Option<PathBuf>, lim: &[PathBuf], e: Error| {
        if let Some(d) = cg {
            cgroup::remove(d);
        }
        for d in lim {
            cgroup::remove(d);
        }
        e
    };
    let limits = match limits::apply(
        &opts,
        &session_id,
        cg_dir.as_deref(),
        &mut plan,
        &mut limit_dirs,
    ) {
        Ok(l) => l,
        Err(e) => return Err(undo(&cg_dir, &limit_dirs, e)),
    };
    let prepared = (|| -> Result<_> {
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
        Ok((
            host_sock,
            [sup_sock.into(), in_child, out_child, err_child],
            [in_host, out_host, err_host],
        ))
    })();
    let (host_sock, child_fds, [in_host, out_host, err_host]) = match prepared {
        Ok(p) => p,
        Err(e) => return Err(undo(&cg_dir, &limit_dirs, e)),
    };
    let raw: [i32; 4] = [
        child_fds[0].as_raw_fd(),
        child_fds[1].as_raw_fd(),
        child_fds[2].as_raw_fd(),
        child_fds[3].as_raw_fd(),
    ];
    let mut launch = SupervisorLaunch::Fork;
    let mut sup_pid = -1;
    let mut fork_err = std::io::Error::from_raw_os_error(0);
    if exec {
        // A failure here means the system will not run the program (it is
        // remembered); the fork below still starts this session.
        if let Ok(pid) = launch::exec_supervisor(&plan, raw) {
            sup_pid = pid;
            launch = SupervisorLaunch::Exec;
        }
    }
    if sup_pid < 0 {
        [plan.ctrl, plan.stdin, plan.stdout, plan.stderr] = raw;
        let old_mask = sys::block_all_signals();
        sup_pid = supervisor::raw_fork();
        if sup_pid == 0 {
            // Child: never returns.
            supervisor::run(&plan);
        }
        fork_err = std::io::Error::last_os_error();
        sys::restore_signals(&old_mask);
    }
    drop(plan);
    drop(child_fds);
    if sup_pid < 0 {
        return Err(undo(
            &cg_dir,
            &limit_dirs,
            Error::Spawn(format!("fork failed: {fork_err}")),
        ));
    }
    Ok(Started {
        sup_pid,
        mode,
        launch,
        limits,
        session_id,
        host_sock,
        in_host,
        out_host,
        err_host,
        cg_dir,
        limit_dirs,
    })
}

/// A contained agent process: the handle to one session's process tree.
///
/// Created by [`Contained::spawn`]. Dropping it kills the tree without
/// blocking: the supervisor runs the kill ladder on its own.
pub struct Contained {
    pid: i32,
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
    /// ([`super::supervisor_mode`]) the preparation and the start run on
    /// tokio's blocking pool, so the calling worker never waits for them.
    pub async fn spawn(opts: SpawnOptions) -> Result<Contained> {
        reap_pending();
        // The descendant walk needs /proc/<pid>/task/<tid>/children
        // (CONFIG_PROC_CHILDREN). Without it the supervisor could not find
        // grandchildren and its kill loop would never see an empty tree:
        // refuse clearly rather than hang. (No fallback scan yet.)
        #[cfg(target_os = "linux")]
        if !std::path::Path::new("/proc/thread-self/children").exists() {
            return Err(Error::Spawn(
                "kernel lacks /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN)".into(),
            ));
        }
        let state_dir = opts.state_dir.clone();
        let program = opts.program.clone();
        let s = match launch::choose(opts.supervisor) {
            SupervisorLaunch::Exec => tokio::task::spawn_blocking(move || start(opts, true))
                .await
                .map_err(|e| Error::Spawn(format!("supervisor start task failed: {e}")))??,
            // Fork mode as it always was: on the calling thread.
            _ => start(opts, false)?,
        };
        let sup_pid = s.sup_pid;
        let cleanup = Cleanup {
            supervisor: sup_pid,
            #[cfg(target_os = "linux")]
            pidfd: sys::pidfd_open(sup_pid),
            cgroup: s.cg_dir.clone(),
            limit_cgroups: s.limit_dirs.clone(),
            record: None,
            reaped: false,
        };
        s.host_sock.set_nonblocking(true)?;
        let ctrl = tokio::net::UnixStream::from_std(s.host_sock);
        let mut me = Contained {
            pid: 0,
            mode: s.mode,
            launch: s.launch,
            limits: s.limits,
            session_id: s.session_id,
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
            cleanup: Some(cleanup),
        };
        me.ctrl = Some(ctrl?);
        // From here on, an early return drops `me`, which cleans up.
        let first = me.next_msg().await?;
        match first.map(|(tag, a, b, _)| (Msg::try_from(tag), a, b)) {
            Some((Ok(Msg::Started), pid, _)) if pid > 1 => me.pid = pid,
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
        if let Some(h) = s.in_host {
            me.stdin = Some(ChildStdin::from_owned_fd(h)?);
        }
        if let Some(h) = s.out_host {
            me.stdout = Some(ChildStdout::from_owned_fd(h)?);
        }
        if let Some(h) = s.err_host {
            me.stderr = Some(ChildStderr::from_owned_fd(h)?);
        }
        if let Some(dir) = &state_dir {
            let rec = state::Record {
                session_id: me.session_id.clone(),
                host_pid: sys::getpid(),
                host_start: state::own_start_time(),
                supervisor_pid: sup_pid,
                supervisor_start: state::start_time(sup_pid),
                agent_pid: me.pid,
                agent_start: state::start_time(me.pid),
                pgid: me.pid,
                cgroup: s.cg_dir,
                limit_cgroups: s.limit_dirs,
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

    /// The pid of this session's supervisor process (a direct child of the
    /// host).
    pub fn supervisor_pid(&self) -> i32 {
        self.cleanup.as_ref().map(|c| c.supervisor).unwrap_or(0)
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
        if let Some(c) = self.cleanup.take() {
            c.finish().await;
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
        }
        while self.next_msg().await?.is_some() {}
        self.ctrl = None;
        if let Some(c) = self.cleanup.take() {
            c.finish().await;
        }
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
        // Close stdin first (EOF), then ask for the graceful ladder and cut
        // the lifeline; the supervisor finishes the job on its own.
        self.stdin = None;
        if let Some(c) = self.ctrl.take() {
            if !self.eof {
                let _ = sys::send_byte(c.as_raw_fd(), Cmd::Detach as u8);
            }
            drop(c);
        }
        if let Some(c) = self.cleanup.take() {
            adopt(c);
        }
    }
}
