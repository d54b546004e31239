//! Starting a session's supervisor: forked by the embedded program's
//! launcher (exec mode), or a fork of the host (fork mode).
//!
//! # Exec mode (Linux, the default where available)
//!
//! `build.rs` embeds the supervisor program (crate `hotplex-supervisor`, a
//! static executable of about a megabyte). The first session copies it into
//! a memfd, once per process, and seals it (no write, grow, shrink: what runs
//! is what was embedded), then starts it once as the **launcher** (a
//! "zygote", `hotplex_supervisor::launcher`):
//!
//! * a child started with `clone(CLONE_VM | CLONE_VFORK)` on a small stack
//!   of its own, like `posix_spawn` does, moves the launcher's end of a
//!   `SOCK_SEQPACKET` socket pair to descriptor 3 and calls
//!   `execveat(memfd, "", AT_EMPTY_PATH)`: the child shares the host's
//!   memory instead of copying its page tables, so the cost does not grow
//!   with the host's size and the host's memory is never write-protected for
//!   copy-on-write (a fork of a 4 GiB host stalls every host thread that
//!   touches memory while the tables are copied, then again on each first
//!   write). This runs on tokio's blocking pool.
//!
//! Each session is then one message on that socket ([`send`]): the
//! serialized [`Plan`] (or a memfd holding it, when it is large) and the
//! session's five descriptors. The launcher forks a supervisor from its own
//! small image (it holds none of the host's pages either) and goes back to
//! waiting; the session's agent reports to the host on the session's
//! socket, the supervisor's pid included, exactly as under a forked
//! supervisor. Exec'ing a supervisor per session cost a program start each
//! time (most of a spawn's time on the machines measured): that is why the
//! launcher exists. To take the fork off the spawn's path as well, the
//! launcher keeps one **spare** supervisor forked ahead of time, which has
//! done everything that does not depend on a session and waits on a socket
//! of its own: a session goes to the spare when there is one (and the host
//! asks for the next), else to the launcher. Preparing and sending run on
//! tokio's blocking pool (`spawn.rs`), as the start of the launcher does.
//!
//! The launcher inherits what a process inherits from the host when it
//! starts: credentials, resource limits, umask, capabilities, scheduling,
//! affinity, cgroup, namespaces. A host may change any of these later, and
//! its agents must get the host's state at the spawn, as they would from a
//! forked supervisor: the agent's working directory is always in the plan
//! (the host's current one by default), and everything else is compared at
//! every spawn ([`Context`], tens of microseconds); when anything differs (a
//! host that dropped privileges or lowered a limit after its first session,
//! moved itself to another cgroup, or a forked copy of the host) a new
//! launcher is started and the old one, its socket closed, exits. A
//! launcher that died is replaced the same way at the next spawn.
//!
//! # Fork mode
//!
//! Where the program is missing (not Linux, a build with
//! `HOTPLEX_SUPERVISOR_PROGRAM=0`, a static libc missing at build time), or
//! cannot be executed (a `vm.memfd_noexec` policy, seccomp), or when asked
//! (`HOTPLEX_SUPERVISOR=fork` in the host's environment, or
//! [`super::SpawnOptions::supervisor`]): the supervisor is a fork of the host
//! that never execs, started on the calling thread (`spawn.rs`).

use super::SupervisorLaunch;
#[cfg(target_os = "linux")]
use hotplex_supervisor::launcher::{
    request_header, FD_LAUNCHER, KIND_INLINE, KIND_MEMFD, KIND_SPARE, LAUNCHER_ARG, MAX_INLINE,
};
use hotplex_supervisor::Plan;
use once_cell::sync::OnceCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
#[cfg(target_os = "linux")]
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, Ordering};

/// The supervisor program built by `build.rs` (empty when it was not built).
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hotplex-supervisor"));

/// Set once an exec of the program failed: the system does not let us run
/// it (every later session forks instead of failing the same way).
static EXEC_BROKEN: AtomicBool = AtomicBool::new(false);

/// Environment variable a host can set to `fork` to use forked supervisors.
pub const SUPERVISOR_ENV: &str = "HOTPLEX_SUPERVISOR";

/// The sealed memfd holding the program, created on first use.
fn program_fd() -> Option<RawFd> {
    static FD: OnceCell<Option<OwnedFd>> = OnceCell::new();
    FD.get_or_init(|| {
        let fd = load_program();
        match &fd {
            Some(_) => tracing::debug!(
                bytes = PROGRAM.len(),
                "supervisor launch: exec (embedded program in a sealed memfd)"
            ),
            None => tracing::debug!("supervisor launch: fork (embedded program unavailable)"),
        }
        fd
    })
    .as_ref()
    .map(|f| f.as_raw_fd())
}

#[cfg(target_os = "linux")]
fn memfd(name: &std::ffi::CStr, flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    // Raw syscall: the glibc wrapper is newer than the oldest glibc the
    // libraries are linked for (2.17).
    // SAFETY: memfd_create with a NUL-terminated name returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(target_os = "linux")]
const MFD_CLOEXEC: libc::c_uint = 0x1;
#[cfg(target_os = "linux")]
const MFD_ALLOW_SEALING: libc::c_uint = 0x2;
/// Linux 6.3+: says the memfd is meant to be executable (without it newer
/// kernels log a warning, and `vm.memfd_noexec=1` would make it non-exec).
#[cfg(target_os = "linux")]
const MFD_EXEC: libc::c_uint = 0x10;

#[cfg(target_os = "linux")]
fn load_program() -> Option<OwnedFd> {
    if PROGRAM.is_empty() {
        return None;
    }
    let name = c"hotplex-supervisor";
    let fd = memfd(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)
        .or_else(|_| memfd(name, MFD_CLOEXEC | MFD_ALLOW_SEALING))
        .ok()?;
    let mut f = std::fs::File::from(fd);
    std::io::Write::write_all(&mut f, PROGRAM).ok()?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return None;
    }
    Some(f.into())
}

#[cfg(not(target_os = "linux"))]
fn load_program() -> Option<OwnedFd> {
    None
}

/// How this process starts supervisors unless a session asks otherwise:
/// [`SupervisorLaunch::Exec`] when the embedded program is there and runs,
/// else [`SupervisorLaunch::Fork`] (see [`SupervisorLaunch`]).
///
/// `HOTPLEX_SUPERVISOR=fork` in the environment (read once) selects fork
/// mode for the whole process.
pub fn supervisor_mode() -> SupervisorLaunch {
    static FORCED_FORK: OnceCell<bool> = OnceCell::new();
    let forced = *FORCED_FORK.get_or_init(|| {
        std::env::var(SUPERVISOR_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("fork"))
    });
    if forced || EXEC_BROKEN.load(Ordering::Relaxed) || program_fd().is_none() {
        SupervisorLaunch::Fork
    } else {
        SupervisorLaunch::Exec
    }
}

/// The mode a session with preference `want` gets.
pub(crate) fn choose(want: Option<SupervisorLaunch>) -> SupervisorLaunch {
    match want {
        Some(SupervisorLaunch::Fork) => SupervisorLaunch::Fork,
        Some(SupervisorLaunch::Exec)
            if !EXEC_BROKEN.load(Ordering::Relaxed) && program_fd().is_some() =>
        {
            SupervisorLaunch::Exec
        }
        Some(_) => SupervisorLaunch::Fork,
        None => supervisor_mode(),
    }
}

/// Everything the exec child reads; lives on the parent's stack, which the
/// child shares (CLONE_VM) while the parent is suspended (CLONE_VFORK).
#[cfg(target_os = "linux")]
#[repr(C)]
struct ExecArgs {
    /// Becomes descriptor 3 of the program (the launcher's socket).
    fd: libc::c_int,
    program: libc::c_int,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// errno of the failed step (0: the exec succeeded).
    err: std::sync::atomic::AtomicI32,
}

/// The exec child: raw system calls only (it runs on the host's memory, with
/// every signal blocked); never returns.
#[cfg(target_os = "linux")]
extern "C" fn exec_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ExecArgs`, alive until the parent
    // resumes, which happens only after this child execs or exits.
    let a = unsafe { &*(arg as *const ExecArgs) };
    let fail = |a: &ExecArgs| -> ! {
        // SAFETY: reading errno right after the failed call; exiting only
        // this child (a separate thread group).
        unsafe {
            a.err
                .store((*libc::__errno_location()).max(1), Ordering::Relaxed);
            libc::syscall(libc::SYS_exit, 127);
        }
        // SYS_exit does not return.
        #[allow(clippy::empty_loop)]
        loop {}
    };
    // Copy both sources above 3 first, so that moving the socket onto 3 can
    // never overwrite the program's descriptor.
    // SAFETY: fcntl on descriptors this (copied) table holds.
    let (sock, program) = unsafe {
        (
            libc::fcntl(a.fd, libc::F_DUPFD_CLOEXEC, 16),
            libc::fcntl(a.program, libc::F_DUPFD_CLOEXEC, 16),
        )
    };
    // dup2 clears close-on-exec on the target: exactly this one descriptor
    // is inherited by the program.
    // SAFETY: dup2 onto a fixed number.
    if sock < 0 || program < 0 || unsafe { libc::dup2(sock, FD_LAUNCHER) } < 0 {
        fail(a);
    }
    // SAFETY: argv/envp are NULL-terminated arrays of C strings owned by the
    // parent's frame; "" with AT_EMPTY_PATH executes the descriptor itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            program,
            c"".as_ptr(),
            a.argv,
            a.envp,
            libc::AT_EMPTY_PATH,
        );
    }
    fail(a)
}

/// Execs the supervisor program with `argv`, `envp` and `fd` as its
/// descriptor 3. Returns its pid. The calling thread is suspended only
/// until the child has exec'd.
#[cfg(target_os = "linux")]
fn exec_program(
    fd: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> std::io::Result<libc::pid_t> {
    let program = program_fd().ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOEXEC))?;
    let args = ExecArgs {
        fd,
        program,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        err: std::sync::atomic::AtomicI32::new(0),
    };
    // The child's stack: it runs a handful of system calls.
    let mut stack = vec![0u8; 32 << 10];
    // SAFETY: one past the end of the allocation, aligned down to 16 (the
    // stack grows down on every Linux architecture Rust supports but hppa).
    let top = unsafe { stack.as_mut_ptr().add(stack.len()) };
    let top = (top as usize & !15) as *mut libc::c_void;
    // Every signal blocked across the clone: no host handler may run in the
    // child, which shares the host's memory. The program resets the mask.
    let old = super::sys::block_all_signals();
    // SAFETY: CLONE_VM|CLONE_VFORK with a separate stack is how posix_spawn
    // starts a child: the child runs `exec_child` (raw system calls only) on
    // `stack` while this thread waits; `args`, `argv`, `envp` and `stack`
    // outlive it.
    let pid = unsafe {
        libc::clone(
            exec_child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const ExecArgs).cast_mut().cast(),
        )
    };
    let clone_err = std::io::Error::last_os_error();
    super::sys::restore_signals(&old);
    drop(stack);
    if pid < 0 {
        return Err(clone_err);
    }
    let err = args.err.load(Ordering::Relaxed);
    if err != 0 {
        // The child exited (127) without exec'ing: reap it now.
        let mut st = 0;
        // SAFETY: waitpid on our own child with a local status.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        EXEC_BROKEN.store(true, Ordering::Relaxed);
        tracing::warn!(
            errno = err,
            "supervisor program cannot be executed; using forked supervisors"
        );
        return Err(std::io::Error::from_raw_os_error(err));
    }
    Ok(pid)
}

/// What a launcher inherited from the host and must still match for the
/// agents it starts to get what a fresh start would give them: the process
/// that owns it (a forked copy of the host starts its own), credentials,
/// `no_new_privs`, the seccomp mode, the umask, capabilities, CPU and
/// memory-node affinity, resource limits, nice value, cgroup and
/// namespaces. Read at every spawn: about 25 system calls, tens of
/// microseconds against a spawn's milliseconds, so a host that changes any
/// of these between sessions (drops privileges, lowers a limit, moves
/// itself to another cgroup, `unshare`s) gets agents started as a forked
/// supervisor would start them, never from a stale copy.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, PartialEq, Eq)]
struct Context {
    pid: libc::pid_t,
    uids: [libc::uid_t; 3],
    gids: [libc::gid_t; 3],
    groups: Vec<libc::gid_t>,
    no_new_privs: libc::c_int,
    seccomp: libc::c_int,
    /// The lines of `/proc/thread-self/status` that a child inherits and
    /// no system call reads without side effects (the umask: reading it
    /// with `umask(2)` sets it), plus capabilities and affinities.
    status: Vec<u8>,
    /// `(soft, hard)` of every resource limit.
    rlimits: Vec<(u64, u64)>,
    /// `getpriority(PRIO_PROCESS, 0)` and `sched_getscheduler(0)`.
    sched: [libc::c_int; 2],
    /// `/proc/self/cgroup`.
    cgroup: Vec<u8>,
    /// Device and inode of each `/proc/thread-self/ns/*` link that exists.
    namespaces: Vec<(u64, u64)>,
}

/// `/proc/thread-self/status` fields a child inherits.
#[cfg(target_os = "linux")]
const INHERITED_STATUS: [&[u8]; 8] = [
    b"Umask:",
    b"CapInh:",
    b"CapPrm:",
    b"CapEff:",
    b"CapBnd:",
    b"CapAmb:",
    b"Cpus_allowed_list:",
    b"Mems_allowed_list:",
];

/// Every resource limit Linux has.
#[cfg(target_os = "linux")]
const RESOURCES: [libc::__rlimit_resource_t; 16] = [
    libc::RLIMIT_CPU,
    libc::RLIMIT_FSIZE,
    libc::RLIMIT_DATA,
    libc::RLIMIT_STACK,
    libc::RLIMIT_CORE,
    libc::RLIMIT_RSS,
    libc::RLIMIT_NPROC,
    libc::RLIMIT_NOFILE,
    libc::RLIMIT_MEMLOCK,
    libc::RLIMIT_AS,
    libc::RLIMIT_LOCKS,
    libc::RLIMIT_SIGPENDING,
    libc::RLIMIT_MSGQUEUE,
    libc::RLIMIT_NICE,
    libc::RLIMIT_RTPRIO,
    libc::RLIMIT_RTTIME,
];

/// Namespaces a child is started in (`pid_for_children`, `time_for_children`:
/// the ones a *child* gets, which may differ from the caller's own).
#[cfg(target_os = "linux")]
const NAMESPACES: [&std::ffi::CStr; 8] = [
    c"/proc/thread-self/ns/mnt",
    c"/proc/thread-self/ns/net",
    c"/proc/thread-self/ns/uts",
    c"/proc/thread-self/ns/ipc",
    c"/proc/thread-self/ns/user",
    c"/proc/thread-self/ns/cgroup",
    c"/proc/thread-self/ns/pid_for_children",
    c"/proc/thread-self/ns/time_for_children",
];

/// The whole of a small `/proc` file (empty when it cannot be read).
#[cfg(target_os = "linux")]
fn read_proc(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[cfg(target_os = "linux")]
impl Context {
    fn now() -> Context {
        let mut c = Context {
            pid: super::sys::getpid(),
            uids: [0; 3],
            gids: [0; 3],
            groups: vec![0; 64],
            no_new_privs: 0,
            seccomp: 0,
            status: Vec::new(),
            rlimits: Vec::with_capacity(RESOURCES.len()),
            sched: [0; 2],
            cgroup: read_proc("/proc/self/cgroup"),
            namespaces: Vec::with_capacity(NAMESPACES.len()),
        };
        for line in read_proc("/proc/thread-self/status").split_inclusive(|&b| b == b'\n') {
            if INHERITED_STATUS.iter().any(|f| line.starts_with(f)) {
                c.status.extend_from_slice(line);
            }
        }
        // SAFETY: the get* calls write into locals of the sizes passed;
        // prctl with integer arguments only reads.
        unsafe {
            let [r, e, s] = &mut c.uids;
            libc::getresuid(r, e, s);
            let [r, e, s] = &mut c.gids;
            libc::getresgid(r, e, s);
            let mut n = libc::getgroups(c.groups.len() as libc::c_int, c.groups.as_mut_ptr());
            if n < 0 {
                // More than 64 groups: ask for the count, then the list.
                n = libc::getgroups(0, std::ptr::null_mut()).max(0);
                c.groups = vec![0; n as usize];
                n = libc::getgroups(n, c.groups.as_mut_ptr()).max(0);
            }
            c.groups.truncate(n as usize);
            c.no_new_privs = libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
            c.seccomp = libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0);
            for res in RESOURCES {
                let mut rl: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(res, &mut rl);
                c.rlimits.push((rl.rlim_cur as u64, rl.rlim_max as u64));
            }
            // -1 is a valid nice value; errno tells a failure apart, and a
            // failure (never expected) compares equal to itself anyway.
            c.sched = [
                libc::getpriority(libc::PRIO_PROCESS, 0),
                libc::sched_getscheduler(0),
            ];
            for ns in NAMESPACES {
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(ns.as_ptr(), &mut st) == 0 {
                    c.namespaces.push((st.st_dev as u64, st.st_ino as u64));
                }
            }
        }
        c
    }
}

/// The running launcher.
#[cfg(target_os = "linux")]
struct Launcher {
    /// The host's end of the request socket (close-on-exec).
    sock: OwnedFd,
    pid: libc::pid_t,
    context: Context,
    /// The host's end of a spare supervisor's socket: a supervisor the
    /// launcher forked ahead of time, waiting for the next session.
    spare: Option<OwnedFd>,
}

#[cfg(target_os = "linux")]
static LAUNCHER: parking_lot::Mutex<Option<Launcher>> = parking_lot::Mutex::new(None);
/// Launchers that were replaced, until they have exited and been reaped.
#[cfg(target_os = "linux")]
static RETIRED: parking_lot::Mutex<Vec<libc::pid_t>> = parking_lot::Mutex::new(Vec::new());

#[cfg(target_os = "linux")]
impl Launcher {
    /// Execs a new launcher for `context` (the host's state now).
    fn start(context: Context) -> std::io::Result<Launcher> {
        // Room for a few dozen requests in flight, the largest inline plan
        // included (the kernel caps it at net.core.wmem_max).
        let (host, child) = request_socket(Some(MAX_INLINE * 8))?;
        // The launcher's environment is the host's (a forked supervisor's
        // is too): it needs none, and agents get theirs from the plan.
        let env: Vec<std::ffi::CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                std::ffi::CString::new(kv).ok()
            })
            .collect();
        let envp: Vec<*const libc::c_char> = env
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let arg = std::ffi::CString::new(LAUNCHER_ARG).expect("no NUL in the argument");
        let argv = [
            c"hotplex-supervisor".as_ptr(),
            arg.as_ptr(),
            std::ptr::null(),
        ];
        let pid = exec_program(child.as_raw_fd(), &argv, &envp)?;
        drop(child);
        tracing::debug!(
            pid,
            bytes = PROGRAM.len(),
            "supervisor launcher started (embedded program in a sealed memfd)"
        );
        Ok(Launcher {
            sock: host,
            pid,
            context,
            spare: None,
        })
    }

    /// Asks the launcher for a spare supervisor (best effort: without one
    /// the next session is forked on demand).
    fn request_spare(&mut self) {
        // One request will ever go through it, into an empty buffer: the
        // default size holds the largest inline plan.
        let Ok((host, child)) = request_socket(None) else {
            return;
        };
        let header = request_header(KIND_SPARE);
        if send_request(
            self.sock.as_raw_fd(),
            &[&header],
            &[child.as_raw_fd()],
            libc::MSG_DONTWAIT,
        )
        .is_ok()
        {
            self.spare = Some(host);
        }
    }
}

/// A `SOCK_SEQPACKET` socket pair (close-on-exec) whose first end sends up
/// to `sndbuf` bytes without waiting (default: the system's send buffer):
/// `(host end, launcher's end)`.
#[cfg(target_os = "linux")]
fn request_socket(sndbuf: Option<usize>) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut pair = [-1; 2];
    // SAFETY: socketpair writes two descriptors into the local array.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors nobody else owns.
    let (host, child) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    if let Some(sndbuf) = sndbuf {
        let sndbuf = sndbuf as libc::c_int;
        // SAFETY: setsockopt with a pointer to a local int.
        unsafe {
            libc::setsockopt(
                host.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&sndbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    Ok((host, child))
}

/// Closes a launcher's socket (it exits on EOF) and reaps whichever retired
/// launchers have exited.
#[cfg(target_os = "linux")]
fn retire(old: Option<Launcher>) {
    let mut retired = RETIRED.lock();
    if let Some(l) = old {
        // Both exit on EOF: the spare first, then the launcher.
        drop(l.spare);
        drop(l.sock);
        retired.push(l.pid);
    }
    retired.retain(|&pid| matches!(super::sys::try_reap(pid), super::sys::Reap::Running));
}

/// Starts the launcher unless one for the host's current state runs. Blocks
/// for about a millisecond (an exec): call it on the blocking pool.
#[cfg(target_os = "linux")]
pub(crate) fn start_launcher() -> std::io::Result<()> {
    let now = Context::now();
    let mut g = LAUNCHER.lock();
    if !matches!(&*g, Some(l) if l.context == now) {
        retire(g.take());
        *g = Some(Launcher::start(now)?);
    }
    Ok(())
}

/// `sendmsg` of one request with its descriptors.
#[cfg(target_os = "linux")]
fn send_request(
    sock: RawFd,
    body: &[&[u8]],
    fds: &[RawFd],
    flags: libc::c_int,
) -> std::io::Result<()> {
    let mut iov: Vec<libc::iovec> = body
        .iter()
        .map(|b| libc::iovec {
            iov_base: b.as_ptr().cast_mut().cast(),
            iov_len: b.len(),
        })
        .collect();
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a size computation.
    let space = if fds.is_empty() {
        0
    } else {
        unsafe { libc::CMSG_SPACE(payload as libc::c_uint) as usize }
    };
    // u64 elements: cmsghdr alignment.
    let mut cbuf = vec![0u64; space.div_ceil(8)];
    // SAFETY: a zeroed msghdr is valid; every pointer set below points into
    // locals that outlive the call, and the control message is written
    // inside `cbuf` through the libc macros, within `space` bytes.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len() as _;
        if !fds.is_empty() {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload as libc::c_uint) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
        loop {
            if libc::sendmsg(sock, &msg, flags | libc::MSG_NOSIGNAL) >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Hands a session to a supervisor: the spare one when there is one (it
/// waits for exactly this and starts at once), else the launcher (which
/// forks one for it); then asks for the next spare. The request is the
/// plan and the descriptors `fds` (control socket, stdin, stdout, stderr,
/// exec status). Waits only when the launcher has a backlog that fills its
/// socket (a burst of spawns). `NotConnected`: no launcher runs for the
/// host's current state ([`Context`]; never started, replaced, or it died):
/// call [`start_launcher`] and try again. Any other error means the session
/// must be started by a fork instead.
#[cfg(target_os = "linux")]
pub(crate) fn send(plan: &Plan, fds: [RawFd; 5]) -> std::io::Result<()> {
    let bytes = plan.encode();
    let mut memfd_plan = None;
    let header;
    let mut all_fds = fds.to_vec();
    if bytes.len() <= MAX_INLINE {
        header = request_header(KIND_INLINE);
    } else {
        let fd = memfd(c"hotplex-plan", MFD_CLOEXEC)?;
        let mut f = std::fs::File::from(fd);
        std::io::Write::write_all(&mut f, &bytes)?;
        header = request_header(KIND_MEMFD);
        all_fds.push(f.as_raw_fd());
        memfd_plan = Some(f);
    }
    let body: [&[u8]; 2] = if memfd_plan.is_some() {
        [&header, &[]]
    } else {
        [&header, &bytes]
    };
    let now = Context::now();
    // A launcher that takes nothing for this long is stuck (stopped, say):
    // the session is forked instead.
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut g = LAUNCHER.lock();
        let l = match g.as_mut() {
            Some(l) if l.context == now => l,
            _ => return Err(std::io::ErrorKind::NotConnected.into()),
        };
        if let Some(spare) = l.spare.take() {
            // A spare that is gone (it could not be forked, or was killed)
            // fails here; the launcher then forks one as usual.
            if send_request(spare.as_raw_fd(), &body, &all_fds, libc::MSG_DONTWAIT).is_ok() {
                l.request_spare();
                return Ok(());
            }
        }
        let sock = l.sock.as_raw_fd();
        let r = send_request(sock, &body, &all_fds, libc::MSG_DONTWAIT);
        if r.is_ok() && l.spare.is_none() {
            l.request_spare();
        }
        match r {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < give_up =>
            {
                drop(g);
                // The launcher is busy: wait until its socket takes more.
                let mut p = [libc::pollfd {
                    fd: sock,
                    events: libc::POLLOUT,
                    revents: 0,
                }];
                // SAFETY: poll on a local pollfd. Should another thread
                // replace the launcher meanwhile and the number be reused,
                // this only ends the wait early; the next round sees the
                // new launcher.
                unsafe { libc::poll(p.as_mut_ptr(), 1, 100) };
                continue;
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN)
                ) =>
            {
                tracing::debug!("supervisor launcher gone; a new one will be started");
                retire(g.take());
                return Err(std::io::ErrorKind::NotConnected.into());
            }
            other => return other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn start_launcher() -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOEXEC))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send(_plan: &Plan, _fds: [RawFd; 5]) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOEXEC))
}
