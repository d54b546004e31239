//! The launcher (a "zygote"): the supervisor program started once per host
//! process, which forks each session's supervisor from its own small image.
//!
//! Starting a supervisor by `exec` costs a whole program start per session
//! (on the machines measured, about as much as the plain spawn of the agent
//! itself); a fork of this small, single-threaded program costs a fraction
//! of that and still holds none of the host's pages. The host execs the
//! program once with [`LAUNCHER_ARG`] and the launcher's end of a
//! `SOCK_SEQPACKET` socket pair at [`FD_LAUNCHER`]; each session is then one
//! message on that socket:
//!
//! ```text
//! "HPXR" kind(u8) [plan bytes if kind == INLINE]
//! SCM_RIGHTS: ctrl, stdin, stdout, stderr, status [, plan memfd if MEMFD]
//! ```
//!
//! The plan is [`Plan::encode`]'s wire form, inline when it fits
//! [`MAX_INLINE`], else in a memfd (an environment can be larger than a
//! socket buffer). The launcher forks; the child names itself
//! `hotplex-sup` and runs [`supervisor::run`] with the received
//! descriptors, exactly as a forked supervisor does; the parent closes its
//! copies and waits for the next message. Every answer travels on the
//! session's own control socket: the `S` record (the agent writes it)
//! carries the supervisor's pid, and when the launcher cannot start a
//! session (the plan is malformed, `fork` fails) it writes the `F` record
//! there itself. So the host never waits for the launcher, and requests
//! from several threads need no matching.
//!
//! A request of kind [`KIND_SPARE`] asks for a *spare*: a supervisor forked
//! ahead of time that does what does not depend on a session
//! ([`supervisor::prepare`]) and then waits on a socket of its own for one
//! session request, which the host sends it directly; that takes the fork
//! and the preparation off the path of the spawn that uses it.
//!
//! The socket is also the launcher's lifeline: when the host dies, however
//! it dies, the launcher reads EOF and exits. Supervisors it started are
//! not affected (each has its own lifeline to the host); they are reaped by
//! the launcher while it lives and by whoever inherits them after.
//!
//! The launcher is single-threaded, so it may allocate before forking (the
//! plan is decoded in the launcher); what runs in the child is the
//! supervisor's async-signal-safe code.

use crate::plan;
use crate::proto::{self, FailStage, Msg};
use crate::supervisor::{self, Plan};
use libc::c_int;

/// The program argument that makes the supervisor program a launcher.
pub const LAUNCHER_ARG: &str = "launcher";
/// The launcher's end of the request socket, in the exec'd program.
pub const FD_LAUNCHER: c_int = 3;
/// Largest plan sent inline; a larger one travels in a memfd. Well below
/// the default socket send buffer (about 208 KiB), which bounds one message.
pub const MAX_INLINE: usize = 48 << 10;
/// Descriptors of every request: control socket, stdin, stdout, stderr and
/// the exec-status pipe ([`supervisor::FD_STATUS`]).
pub const REQUEST_FDS: usize = 5;
/// A request whose plan follows the header.
pub const KIND_INLINE: u8 = 0;
/// A request whose plan is in a memfd, passed after the five descriptors.
pub const KIND_MEMFD: u8 = 1;
/// A request for a spare supervisor: one descriptor, the spare's end of a
/// socket on which the host will send it one session request (inline or
/// memfd, as above).
pub const KIND_SPARE: u8 = 2;

const MAGIC: &[u8; 4] = b"HPXR";
/// Request header: magic and kind.
const HEADER: usize = 5;
/// Most descriptors a request carries.
const MAX_FDS: usize = REQUEST_FDS + 1;

/// The header of a request of `kind` (host side); an inline plan follows.
pub fn request_header(kind: u8) -> [u8; HEADER] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], kind]
}

/// Writes an `F` record for a session the launcher could not start.
fn refuse(ctrl: c_int, stage: FailStage, errno: i32) {
    let m = proto::encode(Msg::Failed, stage as i32, errno, 0);
    // SAFETY: writing a local buffer to a descriptor we own; a short or
    // failed write only means the host is gone.
    unsafe {
        libc::send(ctrl, m.as_ptr().cast(), m.len(), libc::MSG_NOSIGNAL);
    }
}

fn close_all(fds: &[c_int]) {
    for &fd in fds {
        // SAFETY: closing descriptors this process received and owns.
        unsafe {
            libc::close(fd);
        }
    }
}

/// One received request: the message bytes and descriptors.
struct Request {
    len: usize,
    fds: [c_int; MAX_FDS],
    nfds: usize,
    truncated: bool,
}

/// `recvmsg` of one request into `buf`. `Ok(None)` at EOF (the host is
/// gone).
fn receive(sock: c_int, buf: &mut [u8]) -> Result<Option<Request>, i32> {
    // Room for one SCM_RIGHTS message of MAX_FDS descriptors, aligned as
    // cmsghdr requires.
    let mut cbuf = [0u64; 8];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is valid; the pointers set below stay
        // valid for the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        // SAFETY: recvmsg into buffers we own; received descriptors are
        // close-on-exec so an agent never inherits another session's.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if e == libc::EINTR || e == libc::EAGAIN {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        let mut req = Request {
            len: n as usize,
            fds: [-1; MAX_FDS],
            nfds: 0,
            truncated: msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
        };
        // SAFETY: walking the control messages the kernel wrote into
        // `cbuf`, with the libc macros that bound every access by
        // msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c) as *const c_int;
                    let bytes = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..bytes / std::mem::size_of::<c_int>() {
                        let fd = std::ptr::read_unaligned(data.add(i));
                        if req.nfds < MAX_FDS {
                            req.fds[req.nfds] = fd;
                            req.nfds += 1;
                        } else {
                            libc::close(fd);
                            req.truncated = true;
                        }
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        return Ok(Some(req));
    }
}

/// Decodes a request into a plan whose descriptors are the received ones.
/// `Err` carries the errno to report; the plan memfd (if any) is closed.
fn decode(buf: &[u8], req: &Request) -> Result<Plan, i32> {
    let head = buf.get(..HEADER).ok_or(libc::EINVAL)?;
    if req.truncated || head[..4] != MAGIC[..] {
        return Err(libc::EINVAL);
    }
    let plan = match (head[4], req.nfds) {
        (KIND_INLINE, REQUEST_FDS) => {
            Plan::decode(buf.get(HEADER..req.len).ok_or(libc::EINVAL)?).ok_or(libc::EINVAL)
        }
        (KIND_MEMFD, n) if n == REQUEST_FDS + 1 => plan::read_fd(req.fds[REQUEST_FDS]),
        _ => Err(libc::EINVAL),
    };
    let mut plan = plan?;
    [plan.ctrl, plan.stdin, plan.stdout, plan.stderr, plan.status] =
        [req.fds[0], req.fds[1], req.fds[2], req.fds[3], req.fds[4]];
    Ok(plan)
}

/// Reaps every exited child (supervisors that finished) without blocking.
fn reap_children() {
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a local status.
        let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if r <= 0 {
            if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
    }
}

/// Prepares this process to be a launcher: its standard descriptors on
/// `/dev/null` (a host's stdout may be a pipe somebody reads to EOF), every
/// other inherited descriptor but the socket closed, `/` as working
/// directory (each plan names the agent's), own process group, job-control
/// signals ignored, SIGCHLD readable from a signalfd. Returns the signalfd.
fn setup() -> c_int {
    for s in [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGPIPE,
    ] {
        // SAFETY: installing SIG_IGN, no handler.
        unsafe {
            libc::signal(s, libc::SIG_IGN);
        }
    }
    // SAFETY: plain system calls on this process's own state and on locals.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"hotplex-launch".as_ptr(), 0, 0, 0);
        libc::setpgid(0, 0);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
        libc::fcntl(FD_LAUNCHER, libc::F_SETFD, libc::FD_CLOEXEC);
        libc::syscall(
            libc::SYS_close_range,
            (FD_LAUNCHER + 1) as libc::c_uint,
            !0u32,
            0,
        );
        libc::chdir(c"/".as_ptr());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    }
}

/// The plan of a session request, its descriptors in place. A request that
/// cannot be used is answered with an `F` record (when it has a control
/// socket) and its descriptors are closed: `None`.
fn session(buf: &[u8], req: &Request) -> Option<Plan> {
    let received = &req.fds[..req.nfds];
    if req.nfds < REQUEST_FDS {
        // Without a control socket nobody can be told; the host sees EOF on
        // what it kept.
        close_all(received);
        return None;
    }
    let decoded = decode(buf, req);
    // A plan memfd has been read (or is of no use): only the session's own
    // descriptors stay open until the fork.
    close_all(&received[REQUEST_FDS..]);
    match decoded {
        Ok(p) => Some(p),
        Err(e) => {
            refuse(req.fds[0], FailStage::Plan, e);
            close_all(&received[..REQUEST_FDS]);
            None
        }
    }
}

/// A spare supervisor (a child of the launcher): waits on `sock` for one
/// session request and becomes that session's supervisor; exits when the
/// host closes the socket instead (it had no session for it, or died).
fn spare(sock: c_int, sigfd: c_int, buf: &mut [u8]) -> ! {
    close_all(&[FD_LAUNCHER, sigfd]);
    plan::name_this_process();
    // What does not depend on the session is done while waiting for one.
    supervisor::prepare();
    if let Ok(Some(req)) = receive(sock, buf) {
        if let Some(plan) = session(buf, &req) {
            // `run_prepared` closes this socket with every other
            // descriptor it did not ask for.
            supervisor::run_prepared(&plan);
        }
    }
    std::process::exit(0)
}

/// The launcher's main loop (the program's `main` with [`LAUNCHER_ARG`]).
/// Never returns: exits when the host's end of the socket closes.
pub fn run() -> ! {
    let sigfd = setup();
    let mut buf = vec![0u8; HEADER + MAX_INLINE];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: FD_LAUNCHER,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on a local array of two pollfd structs.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            let mut info = [0u8; 128 * 4];
            // SAFETY: draining the signalfd into a local buffer.
            while unsafe { libc::read(sigfd, info.as_mut_ptr().cast(), info.len()) } > 0 {}
            reap_children();
        }
        if fds[0].revents == 0 {
            continue;
        }
        let req = match receive(FD_LAUNCHER, &mut buf) {
            Ok(Some(r)) => r,
            // EOF or a broken socket: the host is gone (or replaced us).
            Ok(None) | Err(_) => std::process::exit(0),
        };
        let received = &req.fds[..req.nfds];
        let kind = (req.len == HEADER && buf[..4] == MAGIC[..]).then_some(buf[4]);
        if kind == Some(KIND_SPARE) && req.nfds == 1 {
            let pid = supervisor::raw_fork();
            if pid == 0 {
                spare(received[0], sigfd, &mut buf);
            }
            close_all(received);
        } else if let Some(plan) = session(&buf, &req) {
            let pid = supervisor::raw_fork();
            if pid == 0 {
                plan::name_this_process();
                // The supervisor closes every descriptor it did not ask
                // for (this socket and the signalfd among them) and resets
                // signals.
                supervisor::run(&plan);
            }
            if pid < 0 {
                let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                refuse(plan.ctrl, FailStage::Fork, e);
            }
            close_all(&req.fds[..REQUEST_FDS]);
        }
        reap_children();
    }
}
