//! Session records in the state directory, and the startup sweep that kills
//! what a crashed host left behind.
//!
//! Every session spawned with a `state_dir` writes `<state_dir>/<id>.json`
//! holding the pids AND start times (field 22 of `/proc/<pid>/stat`, in clock
//! ticks since boot) of the host, the supervisor and the agent, the agent's
//! process group and, in cgroup mode, the session cgroup. The record is
//! removed when the session ends cleanly. A record whose host is no longer
//! alive (same pid AND same start time) is stale: [`sweep_stale`] cleans it up.
//!
//! PID reuse never makes the sweep kill a stranger: a process is signalled
//! only through a pidfd opened FIRST and then checked (its start time equals
//! the recorded one, or its environment carries the session's unique
//! `HOTPLEX_SESSION_ID`), so the check and the signal are about the same
//! process even if the pid is recycled in between.

use super::env::SESSION_ENV;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What a session writes in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    pub session_id: String,
    pub host_pid: i32,
    pub host_start: Option<u64>,
    pub supervisor_pid: i32,
    pub supervisor_start: Option<u64>,
    pub agent_pid: i32,
    pub agent_start: Option<u64>,
    pub pgid: i32,
    pub cgroup: Option<PathBuf>,
    /// Limit-only cgroups (v1 controllers on a hybrid hierarchy).
    #[serde(default)]
    pub limit_cgroups: Vec<PathBuf>,
}

/// What [`sweep_stale`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Records found in the state directory.
    pub records: usize,
    /// Records that belong to a host that is still running (left alone).
    pub live: usize,
    /// Records of dead hosts that were cleaned up (and removed).
    pub stale: usize,
    /// Processes killed by the sweep (leftovers of crashed hosts).
    pub killed: usize,
    /// Records that could not be parsed (removed).
    pub invalid: usize,
}

/// Start time of `pid` (clock ticks since boot), from `/proc/<pid>/stat`.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and ')': split after the LAST ')'.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Start time of this process, computed once.
pub(crate) fn own_start_time() -> Option<u64> {
    static T: once_cell::sync::OnceCell<Option<u64>> = once_cell::sync::OnceCell::new();
    *T.get_or_init(|| start_time(std::process::id() as i32))
}

fn alive_as(pid: i32, start: Option<u64>) -> bool {
    match start {
        Some(s) => start_time(pid) == Some(s),
        None => false,
    }
}

pub(crate) fn record_path(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("{session_id}.json"))
}

/// Writes a record atomically (temp file + rename).
pub(crate) fn write_record(dir: &Path, rec: &Record) -> Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = record_path(dir, &rec.session_id);
    let tmp = dir.join(format!(".{}.tmp", rec.session_id));
    let body = serde_json::to_vec(rec).map_err(|e| Error::Io(e.to_string()))?;
    fs::write(&tmp, body)?;
    fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Kills what crashed hosts left behind, using the records in `state_dir`.
///
/// Call it once at host startup, before spawning sessions, with the same
/// `state_dir` the sessions use. Records of hosts that are still alive are
/// left alone, so several hosts may share one directory. For each stale
/// record:
///
/// 1. if the supervisor still runs (same start time) it is sent SIGTERM,
///    which makes it stop-and-kill its whole tree and exit (waited up to
///    1.5 s);
/// 2. in cgroup mode the session cgroup is killed (`cgroup.kill`) and removed;
/// 3. every process whose environment carries the session's
///    `HOTPLEX_SESSION_ID`, and the agent itself if it still runs with its
///    recorded start time, is stopped and killed, until none is left;
/// 4. limit-only cgroups (cgroup v1 `pids`/`memory` on a hybrid system) are
///    removed, and so is the record.
///
/// Blocks the calling thread (at most a few seconds per stale session); in
/// async code call it from `spawn_blocking`. A missing directory is not an
/// error. On platforms without `/proc` start times cannot be checked, so
/// nothing is killed there and stale records are only removed.
pub fn sweep_stale(state_dir: impl AsRef<Path>) -> Result<SweepReport> {
    let dir = state_dir.as_ref();
    let mut report = SweepReport::default();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(e.into()),
    };
    for entry in rd.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        report.records += 1;
        let rec: Record = match fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(r) => r,
            None => {
                report.invalid += 1;
                let _ = fs::remove_file(&path);
                continue;
            }
        };
        if alive_as(rec.host_pid, rec.host_start) {
            report.live += 1;
            continue;
        }
        report.stale += 1;
        report.killed += clean_session(&rec);
        let _ = fs::remove_file(&path);
    }
    Ok(report)
}

/// Cleans up one session whose host is gone. Returns processes killed.
#[cfg(target_os = "linux")]
pub(crate) fn clean_session(rec: &Record) -> usize {
    use super::sys;
    use std::time::{Duration, Instant};
    let mut killed = 0;
    // 1. A live supervisor does the job itself on SIGTERM.
    if let Some(fd) = sys::pidfd_open(rec.supervisor_pid) {
        if start_time(rec.supervisor_pid) == rec.supervisor_start && rec.supervisor_start.is_some()
        {
            sys::pidfd_signal(&fd, libc::SIGTERM);
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until && start_time(rec.supervisor_pid) == rec.supervisor_start {
                std::thread::sleep(Duration::from_millis(5));
            }
            if start_time(rec.supervisor_pid) == rec.supervisor_start {
                sys::pidfd_signal(&fd, libc::SIGKILL);
            }
        }
    }
    // 2. The cgroup, atomically.
    if let Some(cg) = &rec.cgroup {
        if cg.exists() {
            super::cgroup::kill(cg);
            let until = Instant::now() + Duration::from_secs(2);
            while super::cgroup::populated(cg) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            super::cgroup::remove(cg);
        }
    }
    // 3. Tagged processes and the agent, stop-then-kill until none is left.
    let tag = format!("{SESSION_ENV}={}", rec.session_id).into_bytes();
    for _round in 0..100 {
        let mut victims = Vec::new();
        if let Some(fd) = sys::pidfd_open(rec.agent_pid) {
            if rec.agent_start.is_some() && start_time(rec.agent_pid) == rec.agent_start {
                victims.push(fd);
            }
        }
        for pid in tagged_pids(&tag) {
            if let Some(fd) = sys::pidfd_open(pid) {
                // Re-check through the pidfd's process: still tagged?
                if has_tag(pid, &tag) {
                    victims.push(fd);
                }
            }
        }
        if victims.is_empty() {
            break;
        }
        for fd in &victims {
            sys::pidfd_signal(fd, libc::SIGSTOP);
        }
        for fd in &victims {
            if sys::pidfd_signal(fd, libc::SIGKILL) {
                killed += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // 4. Limit-only cgroups are empty once the tree is gone.
    for d in &rec.limit_cgroups {
        super::cgroup::remove(d);
    }
    killed
}

/// Without `/proc` nothing can be verified, so nothing is killed.
#[cfg(not(target_os = "linux"))]
pub(crate) fn clean_session(_rec: &Record) -> usize {
    0
}

#[cfg(target_os = "linux")]
fn has_tag(pid: i32, tag: &[u8]) -> bool {
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|kv| kv == tag),
        Err(_) => false,
    }
}

/// Pids of every process whose environment holds `tag` (`NAME=value`).
#[cfg(target_os = "linux")]
pub(crate) fn tagged_pids(tag: &[u8]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let pid: i32 = match e.file_name().to_str().and_then(|s| s.parse().ok()) {
                Some(p) => p,
                None => continue,
            };
            if pid > 1 && pid != me && has_tag(pid, tag) {
                out.push(pid);
            }
        }
    }
    out
}
