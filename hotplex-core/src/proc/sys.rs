//! Host-side system-call wrappers (normal Rust context, not after fork).

use libc::{c_int, pid_t};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: c_int) -> io::Result<c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A close-on-exec pipe: `(read end, write end)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as c_int; 2];
    #[cfg(target_os = "linux")]
    // SAFETY: pipe2 writes two descriptors into the local array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    #[cfg(not(target_os = "linux"))]
    {
        // SAFETY: pipe writes two descriptors into the local array.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        for fd in fds {
            // SAFETY: fcntl on descriptors we just created.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one byte on a (non-blocking) socket without ever raising SIGPIPE.
/// Errors are returned (EPIPE when the supervisor is gone).
pub(crate) fn send_byte(fd: RawFd, b: u8) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(target_os = "linux"))]
    let flags = 0; // SO_NOSIGPIPE is set on the socket at creation.
    loop {
        // SAFETY: sending one byte from a local.
        let n = unsafe { libc::send(fd, (&b as *const u8).cast(), 1, flags) };
        if n == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(e);
    }
}

/// On macOS a write to a socket whose peer is gone raises SIGPIPE unless
/// SO_NOSIGPIPE is set; on Linux `send_byte` uses MSG_NOSIGNAL instead.
pub(crate) fn no_sigpipe(_fd: &impl AsRawFd) {
    #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
    {
        let one: c_int = 1;
        // SAFETY: setsockopt with a pointer to a local int.
        unsafe {
            libc::setsockopt(
                _fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const c_int).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Result of a non-blocking wait for a specific child.
pub(crate) enum Reap {
    /// Still running.
    Running,
    /// Reaped now.
    Reaped,
    /// Not our child (already reaped, by us or by somebody else).
    Gone,
}

/// `waitpid(pid, WNOHANG)`.
pub(crate) fn try_reap(pid: pid_t) -> Reap {
    if pid <= 1 {
        return Reap::Gone;
    }
    loop {
        let mut st: c_int = 0;
        // SAFETY: waitpid on a specific positive pid with a local status.
        let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if r == pid {
            return Reap::Reaped;
        }
        if r == 0 {
            return Reap::Running;
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Reap::Gone;
    }
}

/// `pidfd_open(pid)` where the kernel has it (Linux >= 5.3).
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: pid_t) -> Option<OwnedFd> {
    if pid <= 1 {
        return None;
    }
    // SAFETY: pidfd_open(2) returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    let fd = fd as c_int;
    // SAFETY: fresh descriptor owned by nobody else; pidfds are CLOEXEC.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_send_signal(pidfd, sig)`.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_signal(fd: &OwnedFd, sig: c_int) -> bool {
    // SAFETY: valid pidfd; NULL siginfo means "like kill(2)".
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        ) == 0
    }
}

/// Blocks every signal in the calling thread; returns the previous mask.
/// Used around `fork` so that no host signal handler runs in the child
/// before it has reset its dispositions.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on locals; pthread_sigmask on this thread.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a mask saved by [`block_all_signals`].
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: restoring a mask previously returned by pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// This process's pid.
pub(crate) fn getpid() -> pid_t {
    std::process::id() as pid_t
}

/// Blocks SIGPIPE on the calling thread. The threads of a runtime hotplex
/// owns call this at start: writing to an agent that has just exited must
/// be an `EPIPE` error for the session, not a signal whose default action
/// kills the host (C and Go hosts keep that default; Python and Node ignore
/// it, Rust binaries too).
pub(crate) fn block_sigpipe_on_this_thread() {
    // SAFETY: plain libc calls on a local, initialised signal set; only
    // this thread's mask changes.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
