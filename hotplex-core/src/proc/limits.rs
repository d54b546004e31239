//! Per-session resource limits: which mechanism enforces each one, and the
//! process-wide open-files limit.
//!
//! | limit | cgroup mode | subreaper / process-group mode |
//! |-------|-------------|--------------------------------|
//! | memory ([`SpawnOptions::memory_max`]) | `memory.max` (+ `memory.swap.max` 0) of the session cgroup; on a hybrid system a v1 `memory` cgroup (`memory.limit_in_bytes`) | `RLIMIT_AS` (address space, not resident memory) |
//! | processes ([`SpawnOptions::pids_max`]) | `pids.max` of the session cgroup; on a hybrid system a v1 `pids` cgroup | best effort: `RLIMIT_NPROC` |
//! | CPU seconds, open files ([`Rlimits`](super::Rlimits)) | `RLIMIT_CPU`, `RLIMIT_NOFILE` | the same |
//!
//! Without a cgroup Linux has no per-session process count: `RLIMIT_NPROC`
//! counts every task (thread) of the user, and root ignores it. The best
//! effort is to set it to the number of tasks on the whole system at spawn
//! time plus the limit, so that a fork bomb in the agent stops after at most
//! `limit` more tasks than existed when it started, shared with everything
//! else the user starts meanwhile; for root it does nothing. An explicit
//! [`Rlimits`](super::Rlimits) value always wins over these fallbacks.

use super::supervisor::{Plan, RlimitResource};
use super::{cgroup, LimitMechanism, LimitsApplied, SpawnOptions};
use crate::{Error, Result};
use once_cell::sync::OnceCell;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument("cgroup path contains a NUL byte".into()))
}

/// A limit-only v1 cgroup for `controller` with `file` set to `value`; its
/// `cgroup.procs` joins the plan (the agent enters it before exec).
fn v1_limit(
    controller: &str,
    files: &[(&str, &str)],
    session_id: &str,
    plan: &mut Plan,
    dirs: &mut Vec<PathBuf>,
) -> Result<bool> {
    let Some(base) = cgroup::v1_base(controller) else {
        return Ok(false);
    };
    let Ok(dir) = cgroup::create(base, session_id) else {
        return Ok(false);
    };
    // The first file is the limit itself; later ones (memsw) are optional.
    let ok = files
        .iter()
        .enumerate()
        .all(|(i, (f, v))| cgroup::set(&dir, f, v) || i > 0);
    if !ok {
        cgroup::remove(&dir);
        return Ok(false);
    }
    plan.limit_procs.push(cpath(&dir.join("cgroup.procs"))?);
    plan.limit_dirs.push(cpath(&dir)?);
    dirs.push(dir);
    Ok(true)
}

/// Tasks (threads) on the whole system now, from `/proc/loadavg`.
fn tasks_now() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    s.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// Puts the session's limits into `plan` (rlimits) and the cgroups
/// (`cg_dir`: the session's v2 cgroup in cgroup mode). Limit-only cgroups it
/// creates are pushed to `dirs` (the caller removes them on failure).
pub(crate) fn apply(
    opts: &SpawnOptions,
    session_id: &str,
    cg_dir: Option<&Path>,
    plan: &mut Plan,
    dirs: &mut Vec<PathBuf>,
) -> Result<LimitsApplied> {
    let r = &opts.rlimits;
    let mut rl: Vec<(RlimitResource, u64)> = Vec::new();
    for (res, val) in [
        (libc::RLIMIT_AS, r.address_space),
        (libc::RLIMIT_CPU, r.cpu_seconds),
        (libc::RLIMIT_NOFILE, r.open_files),
        (libc::RLIMIT_NPROC, r.processes),
    ] {
        if let Some(v) = val {
            rl.push((res as RlimitResource, v));
        }
    }
    let mut applied = LimitsApplied::default();
    if let Some(mem) = opts.memory_max {
        let v = mem.to_string();
        applied.memory = if cg_dir.is_some_and(|d| cgroup::set(d, "memory.max", &v)) {
            // Without this the kernel swaps the session out instead of
            // stopping it at the limit.
            cg_dir.map(|d| cgroup::set(d, "memory.swap.max", "0"));
            Some(LimitMechanism::CgroupV2)
        } else if cg_dir.is_some()
            && v1_limit(
                "memory",
                &[
                    ("memory.limit_in_bytes", &v),
                    ("memory.memsw.limit_in_bytes", &v),
                ],
                session_id,
                plan,
                dirs,
            )?
        {
            Some(LimitMechanism::CgroupV1)
        } else if r.address_space.is_none() {
            rl.push((libc::RLIMIT_AS as RlimitResource, mem));
            Some(LimitMechanism::Rlimit)
        } else {
            Some(LimitMechanism::Rlimit)
        };
    }
    if let Some(n) = opts.pids_max {
        let v = n.to_string();
        applied.processes = if cg_dir.is_some_and(|d| cgroup::set(d, "pids.max", &v)) {
            Some(LimitMechanism::CgroupV2)
        } else if cg_dir.is_some() && v1_limit("pids", &[("pids.max", &v)], session_id, plan, dirs)?
        {
            Some(LimitMechanism::CgroupV1)
        } else if r.processes.is_some() {
            Some(LimitMechanism::Rlimit)
        } else {
            // SAFETY: getuid has no preconditions.
            let root = unsafe { libc::getuid() } == 0;
            match tasks_now() {
                Some(t) if !root => {
                    rl.push((libc::RLIMIT_NPROC as RlimitResource, t.saturating_add(n)));
                    Some(LimitMechanism::UserWideRlimit)
                }
                _ => None,
            }
        };
    }
    plan.rlimits = rl;
    Ok(applied)
}

/// Descriptors the host holds per live session: the control socket, the
/// agent's three pipes and (fork mode) the supervisor's pidfd.
pub const HOST_FDS_PER_SESSION: u64 = 5;
/// Descriptors kept for everything else the host has open.
const HOST_FD_RESERVE: u64 = 64;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit, once per
/// process, and returns the soft limit in force afterwards.
///
/// Each live session holds [`HOST_FDS_PER_SESSION`] descriptors in the host,
/// so the common soft limit of 1,024 stops a host at about 200 sessions
/// while the hard limit (often 524,288 or more) allows far more. The engine
/// calls this when it starts. Raising it is what systemd recommends for
/// programs that do not use `select(2)`; a host that does use `select` on
/// descriptors it opens later should keep its own limit (call nothing: only
/// [`crate::Engine::new`] calls this).
pub fn raise_nofile_limit() -> u64 {
    static SOFT: OnceCell<u64> = OnceCell::new();
    *SOFT.get_or_init(|| {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a pointer to a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
                return 1024;
            }
            if rl.rlim_cur < rl.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: rl.rlim_max,
                    rlim_max: rl.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    tracing::debug!(
                        from = rl.rlim_cur,
                        to = rl.rlim_max,
                        "raised the soft open-files limit to the hard limit"
                    );
                    rl.rlim_cur = rl.rlim_max;
                }
            }
        }
        rl.rlim_cur
    })
}

/// The most sessions this process's open-files limit allows (after
/// [`raise_nofile_limit`]): the soft limit, less a reserve of 64 for the
/// host's own descriptors, divided by [`HOST_FDS_PER_SESSION`].
pub fn session_ceiling() -> u64 {
    raise_nofile_limit().saturating_sub(HOST_FD_RESERVE) / HOST_FDS_PER_SESSION
}
