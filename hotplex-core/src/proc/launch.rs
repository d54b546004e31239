//! Starting a session's supervisor: the embedded program run from a memfd
//! (exec mode), or a fork of the host (fork mode).
//!
//! # Exec mode (Linux, the default where available)
//!
//! `build.rs` embeds the supervisor program (crate `hotplex-supervisor`, a
//! static executable of about a megabyte). The first session copies it into
//! a memfd, once per process, and seals it (no write, grow, shrink: what runs
//! is what was embedded). Each session then:
//!
//! 1. writes its serialized [`Plan`] into a fresh memfd (a file, not a pipe,
//!    so the host never waits for the program to read it);
//! 2. starts a child with `clone(CLONE_VM | CLONE_VFORK)` on a small stack of
//!    its own, like `posix_spawn` does: the child shares the host's memory
//!    instead of copying its page tables, so the cost does not grow with the
//!    host's size and the host's memory is never write-protected for
//!    copy-on-write (a fork of a 4 GiB host stalls every host thread that
//!    touches memory while the tables are copied, then again on each first
//!    write). The child only moves the five descriptors to 3..7 and calls
//!    `execveat(memfd, "", AT_EMPTY_PATH)`; the host thread resumes as soon
//!    as the exec is done;
//! 3. the program reads the plan and runs [`hotplex_supervisor::supervisor::run`],
//!    the same code a forked supervisor runs.
//!
//! [`super::Contained::spawn`] runs all of this, with the preparation that
//! touches the file system (cgroup directories), on tokio's blocking pool:
//! a runtime worker only hands the job over and awaits it.
//!
//! # Fork mode
//!
//! Where the program is missing (not Linux, a build with
//! `HOTPLEX_SUPERVISOR_PROGRAM=0`, a static libc missing at build time), or
//! cannot be executed (a `vm.memfd_noexec` policy, seccomp), or when asked
//! (`HOTPLEX_SUPERVISOR=fork` in the host's environment, or
//! [`super::SpawnOptions::supervisor`]): the supervisor is a fork of the host
//! that never execs, started on the calling thread exactly as before exec
//! mode existed.

use super::SupervisorLaunch;
use hotplex_supervisor::Plan;
use once_cell::sync::OnceCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
    /// ctrl, stdin, stdout, stderr, plan: become 3, 4, 5, 6, 7.
    fds: [libc::c_int; 5],
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
    // Copy every source above the fixed layout first, so that moving one
    // onto 3..7 can never overwrite another that is still to be moved.
    let mut high = [-1; 5];
    for (h, &fd) in high.iter_mut().zip(a.fds.iter()) {
        // SAFETY: fcntl on descriptors this (copied) table holds.
        *h = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 16) };
        if *h < 0 {
            fail(a);
        }
    }
    // SAFETY: as above.
    let program = unsafe { libc::fcntl(a.program, libc::F_DUPFD_CLOEXEC, 16) };
    if program < 0 {
        fail(a);
    }
    for (i, &h) in high.iter().enumerate() {
        // dup2 clears close-on-exec on the target: exactly these five are
        // inherited by the program.
        // SAFETY: dup2 onto the fixed layout.
        if unsafe { libc::dup2(h, 3 + i as libc::c_int) } < 0 {
            fail(a);
        }
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

/// Starts the supervisor program for `plan` with the host descriptors
/// `ctrl`, `stdin`, `stdout`, `stderr` (the plan's own descriptor fields are
/// ignored: the program finds them at the fixed layout). Returns its pid.
/// The calling thread is suspended only until the child has exec'd.
#[cfg(target_os = "linux")]
pub(crate) fn exec_supervisor(plan: &Plan, fds: [RawFd; 4]) -> std::io::Result<libc::pid_t> {
    let program = program_fd().ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOEXEC))?;
    let plan_fd = memfd(c"hotplex-plan", MFD_CLOEXEC)?;
    {
        let mut f = std::fs::File::from(plan_fd.try_clone()?);
        std::io::Write::write_all(&mut f, &plan.encode())?;
    }
    // The program's own argv: only its name (the agent's argv is in the
    // plan). Its environment is the agent's: it carries the session's
    // HOTPLEX_SESSION_ID, which the startup sweep checks.
    let argv: [*const libc::c_char; 2] = [c"hotplex-supervisor".as_ptr(), std::ptr::null()];
    let args = ExecArgs {
        fds: [fds[0], fds[1], fds[2], fds[3], plan_fd.as_raw_fd()],
        program,
        argv: argv.as_ptr(),
        envp: plan.envp_ptr(),
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
    // `stack` while this thread waits; `args`, `argv` and `stack` outlive it.
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

#[cfg(not(target_os = "linux"))]
pub(crate) fn exec_supervisor(_plan: &Plan, _fds: [RawFd; 4]) -> std::io::Result<libc::pid_t> {
    Err(std::io::Error::from_raw_os_error(libc::ENOEXEC))
}
