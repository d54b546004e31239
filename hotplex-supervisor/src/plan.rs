//! The [`Plan`] on the wire between the host and the supervisor program's
//! launcher ([`crate::launcher`]).
//!
//! The host sends the serialized plan in the request message, or, when it
//! is larger than [`crate::launcher::MAX_INLINE`] (a plan carries the
//! agent's whole environment), in an in-memory file (a memfd) passed with
//! the request. Descriptors are not part of the plan: they travel as
//! `SCM_RIGHTS`. The format is private to one build of hotplex (the host
//! and the program are built together and the program is embedded in the
//! host), so it has a magic tag but no versioning:
//!
//! ```text
//! "HPXPLAN1" path argv envp cwd? rlimits cgroup_dir? cgroup_procs?
//!            cgroup_kill? cgroup_events? limit_procs limit_dirs
//!            grace_eof_ms grace_term_ms
//! ```
//!
//! with a string as `u32` length + bytes (no NUL), a list as `u32` count +
//! items, an optional value as a `0`/`1` byte + value, integers
//! little-endian.

use crate::supervisor::{Plan, RlimitResource};
use std::ffi::CString;

const MAGIC: &[u8; 8] = b"HPXPLAN1";
/// Largest plan the program accepts (the kernel's own limit on argv plus
/// envp is far below it).
const MAX_PLAN: usize = 64 << 20;

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &CString) {
    let b = s.as_bytes();
    put_u32(out, b.len() as u32);
    out.extend_from_slice(b);
}

fn put_opt(out: &mut Vec<u8>, s: &Option<CString>) {
    match s {
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
        None => out.push(0),
    }
}

fn put_list(out: &mut Vec<u8>, v: &[CString]) {
    put_u32(out, v.len() as u32);
    for s in v {
        put_str(out, s);
    }
}

/// Reads the wire format; every read is bounds-checked (`None` on a short
/// or malformed plan).
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.b.len() {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<CString> {
        let n = self.u32()? as usize;
        CString::new(self.take(n)?).ok()
    }
    fn opt(&mut self) -> Option<Option<CString>> {
        match self.take(1)?[0] {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
            _ => None,
        }
    }
    fn list(&mut self) -> Option<Vec<CString>> {
        let n = self.u32()? as usize;
        // Each item takes at least its 4-byte length: a count larger than
        // the rest of the plan is malformed (and must not reserve memory).
        if n > self.b.len() / 4 {
            return None;
        }
        (0..n).map(|_| self.str()).collect()
    }
}

impl Plan {
    /// The plan in its wire form (descriptors are not part of it: they
    /// travel beside it).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            256 + self
                .argv()
                .iter()
                .chain(self.envp())
                .map(|s| s.as_bytes().len() + 4)
                .sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        put_str(&mut out, &self.path);
        put_list(&mut out, self.argv());
        put_list(&mut out, self.envp());
        put_opt(&mut out, &self.cwd);
        put_u32(&mut out, self.rlimits.len() as u32);
        for &(res, val) in &self.rlimits {
            // `RlimitResource` is u32 on glibc and c_int elsewhere.
            #[allow(clippy::unnecessary_cast)]
            put_u32(&mut out, res as u32);
            out.extend_from_slice(&val.to_le_bytes());
        }
        for c in [
            &self.cgroup_dir,
            &self.cgroup_procs,
            &self.cgroup_kill,
            &self.cgroup_events,
        ] {
            put_opt(&mut out, c);
        }
        put_list(&mut out, &self.limit_procs);
        put_list(&mut out, &self.limit_dirs);
        out.extend_from_slice(&self.grace_eof_ms.to_le_bytes());
        out.extend_from_slice(&self.grace_term_ms.to_le_bytes());
        out
    }

    /// Reads a plan written by [`encode`](Self::encode); descriptors are set
    /// to the fixed layout (the launcher replaces them with the received
    /// ones). `None` if `bytes` is not a whole, well-formed plan.
    pub fn decode(bytes: &[u8]) -> Option<Plan> {
        let mut r = Reader { b: bytes };
        if r.take(MAGIC.len())? != MAGIC {
            return None;
        }
        let path = r.str()?;
        let argv = r.list()?;
        let envp = r.list()?;
        let mut plan = Plan::new(path, argv, envp);
        plan.cwd = r.opt()?;
        let n = r.u32()? as usize;
        if n > 64 {
            return None;
        }
        for _ in 0..n {
            let res = r.u32()? as RlimitResource;
            plan.rlimits.push((res, r.u64()?));
        }
        plan.cgroup_dir = r.opt()?;
        plan.cgroup_procs = r.opt()?;
        plan.cgroup_kill = r.opt()?;
        plan.cgroup_events = r.opt()?;
        plan.limit_procs = r.list()?;
        plan.limit_dirs = r.list()?;
        plan.grace_eof_ms = r.u64()? as i64;
        plan.grace_term_ms = r.u64()? as i64;
        r.b.is_empty().then_some(plan)
    }
}

/// Reads a plan written by [`Plan::encode`] from the memfd `fd` (from
/// offset 0, whatever its file position; the caller closes it). `Err(errno)`
/// when it cannot be read or is malformed (`EINVAL`).
pub fn read_fd(fd: libc::c_int) -> Result<Plan, i32> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        // SAFETY: pread into a buffer we own, at most its length.
        let n = unsafe {
            libc::pread(
                fd,
                chunk.as_mut_ptr().cast(),
                chunk.len(),
                buf.len() as libc::off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.raw_os_error().unwrap_or(libc::EIO));
        }
        if n == 0 {
            return Plan::decode(&buf).ok_or(libc::EINVAL);
        }
        buf.extend_from_slice(&chunk[..n as usize]);
        if buf.len() > MAX_PLAN {
            return Err(libc::E2BIG);
        }
    }
}

/// Names a supervisor forked by the launcher `hotplex-sup` in `ps`/`top`
/// (it would otherwise carry the launcher's name).
pub fn name_this_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"hotplex-sup".as_ptr(), 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn a_plan_survives_its_wire_form() {
        let mut p = Plan::new(
            c("/bin/sh"),
            vec![c("sh"), c("-c"), c("true")],
            vec![c("A=b")],
        );
        p.cwd = Some(c("/tmp"));
        p.rlimits = vec![(libc::RLIMIT_NOFILE as RlimitResource, 64)];
        p.cgroup_dir = Some(c("/sys/fs/cgroup/x"));
        p.cgroup_kill = Some(c("/sys/fs/cgroup/x/cgroup.kill"));
        p.limit_procs = vec![c("/sys/fs/cgroup/pids/x/cgroup.procs")];
        p.limit_dirs = vec![c("/sys/fs/cgroup/pids/x")];
        p.grace_eof_ms = 2000;
        p.grace_term_ms = 3000;
        let q = Plan::decode(&p.encode()).unwrap();
        assert_eq!(q.path, p.path);
        assert_eq!(q.argv(), p.argv());
        assert_eq!(q.envp(), p.envp());
        assert_eq!(q.cwd, p.cwd);
        assert_eq!(q.rlimits, p.rlimits);
        assert_eq!(
            (
                &q.cgroup_dir,
                &q.cgroup_procs,
                &q.cgroup_kill,
                &q.cgroup_events
            ),
            (
                &p.cgroup_dir,
                &p.cgroup_procs,
                &p.cgroup_kill,
                &p.cgroup_events
            )
        );
        assert_eq!(
            (&q.limit_procs, &q.limit_dirs),
            (&p.limit_procs, &p.limit_dirs)
        );
        assert_eq!((q.grace_eof_ms, q.grace_term_ms), (2000, 3000));
    }

    #[test]
    fn a_truncated_or_padded_plan_is_refused() {
        let p = Plan::new(c("/bin/true"), vec![c("true")], vec![]);
        let b = p.encode();
        for n in 0..b.len() {
            assert!(Plan::decode(&b[..n]).is_none(), "prefix of {n} bytes");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(Plan::decode(&longer).is_none());
        let mut huge_count = b[..8].to_vec();
        huge_count.extend_from_slice(&1u32.to_le_bytes());
        huge_count.push(b'x');
        huge_count.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Plan::decode(&huge_count).is_none());
    }
}
