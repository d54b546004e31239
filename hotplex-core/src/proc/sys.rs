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

/// A close-on-exec, non-blocking pipe: `(read end, write end)`. (A writer
/// of a few bytes into an empty pipe never meets the non-blocking flag.)
#[cfg(target_os = "linux")]
pub(crate) fn pipe_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the local array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: both descriptors are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec, non-blocking pipe: `(read end, write end)`.
#[cfg(not(target_os = "linux"))]
pub(crate) fn pipe_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe()?;
    for fd in [&r, &w] {
        // SAFETY: fcntl on descriptors we just created.
        unsafe {
            let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    Ok((r, w))
}

/// Sets `O_NONBLOCK` on a descriptor whose other status flags are unset
/// (a fresh pipe end).
pub(crate) fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) }).map(|_| ())
}

/// Takes an exclusive `flock(2)` on `file`, waiting for it (interrupted
/// waits are retried); it is released when the file is closed. (Rust's
/// `File::lock` is newer than this crate's minimum Rust.)
pub(crate) fn lock_exclusive(file: &std::fs::File) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor the File owns and keeps open.
        match cvt(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a buffer we own, at most its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
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

/// Reads and discards whatever is queued on the non-blocking socket `fd`.
/// True at EOF (or when the socket failed: the peer is gone either way),
/// false while the peer is still connected.
pub(crate) fn drained_to_eof(fd: RawFd) -> bool {
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: receiving into a local buffer of the given length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n > 0 {
            continue;
        }
        if n == 0 {
            return true;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return false,
            _ => return true,
        }
    }
}

/// Whether the kernel has `/proc/<pid>/task/<tid>/children`
/// (CONFIG_PROC_CHILDREN), checked once.
#[cfg(target_os = "linux")]
pub(crate) fn proc_children_available() -> bool {
    static HAVE: once_cell::sync::OnceCell<bool> = once_cell::sync::OnceCell::new();
    *HAVE.get_or_init(|| std::path::Path::new("/proc/thread-self/children").exists())
}
