//! cgroup v2 support: detect a writable (delegated) cgroup, create one child
//! cgroup per session, kill and remove it.
//!
//! Detection (once per process): find the unified (`cgroup2`) mount in
//! `/proc/self/mountinfo` and our own cgroup from the `0::` line of
//! `/proc/self/cgroup`, then probe that we may create a child there that has
//! `cgroup.kill` (Linux 5.14 or later), and remove the probe. Session cgroups
//! are children of the host's own cgroup, named `hotplex-<session id>`:
//! moving a process between two cgroups needs write access to their common
//! ancestor, which is the host's cgroup, i.e. exactly what a delegation
//! grants. The agent is created directly inside its cgroup (clone3 with
//! `CLONE_INTO_CGROUP`), so no migration is needed.
//!
//! Limits (`memory.max`, `pids.max`) are written into the session cgroup
//! when its parent delegates those controllers. On a *hybrid* system (cgroup
//! v1 controllers, an empty v2 hierarchy for process tracking: older
//! distributions, many container hosts) the controllers are not on v2 at
//! all; there [`v1_base`] finds the v1 `pids`/`memory` hierarchy and the
//! session gets a limit-only v1 cgroup per controller, which the agent joins
//! before exec. Killing still goes through the v2 cgroup and the subreaper
//! walk; the v1 cgroups only carry limits.

use once_cell::sync::OnceCell;
use std::fs;
use std::path::{Path, PathBuf};

/// The directory under which session cgroups are created, if usable.
pub(crate) fn base() -> Option<&'static Path> {
    static BASE: OnceCell<Option<PathBuf>> = OnceCell::new();
    BASE.get_or_init(detect).as_deref()
}

#[cfg(target_os = "linux")]
fn detect() -> Option<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // mountinfo: id parent maj:min root mountpoint opts... - fstype src sopts
    let (root, mnt) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("cgroup2 ") {
            return None;
        }
        let f: Vec<&str> = pre.split(' ').collect();
        Some((f.get(3)?.to_string(), f.get(4)?.to_string()))
    })?;
    let rel = rel.trim_end();
    // Our cgroup path is relative to the mount's root (cgroup namespaces).
    let sub = rel.strip_prefix(root.trim_end_matches('/')).unwrap_or(rel);
    let dir = Path::new(&unescape(&mnt)).join(sub.trim_start_matches('/'));
    if !dir.join("cgroup.procs").exists() {
        return None;
    }
    // `cgroup.kill` exists only in non-root cgroups, so look for it in the
    // probe (a child), which also proves we may create session cgroups.
    let probe = dir.join(format!("hotplex-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let usable = probe.join("cgroup.kill").exists() && probe.join("cgroup.procs").exists();
    let _ = fs::remove_dir(&probe);
    usable.then_some(dir)
}

#[cfg(not(target_os = "linux"))]
fn detect() -> Option<PathBuf> {
    None
}

/// mountinfo escapes spaces etc. as `\040`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Creates the session cgroup `<base>/hotplex-<id>`.
pub(crate) fn create(base: &Path, session_id: &str) -> std::io::Result<PathBuf> {
    let dir = base.join(format!("hotplex-{session_id}"));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// Kills everything in a session cgroup (and its sub-cgroups).
pub(crate) fn kill(dir: &Path) {
    let _ = fs::write(dir.join("cgroup.kill"), b"1");
}

/// True while the cgroup (or a sub-cgroup) still holds a process.
pub(crate) fn populated(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("cgroup.events")) {
        Ok(s) => s.lines().any(|l| l.trim() == "populated 1"),
        Err(_) => false,
    }
}

/// Removes a session cgroup, depth first (an agent running as root may have
/// created sub-cgroups). Returns true when the directory is gone.
pub(crate) fn remove(dir: &Path) -> bool {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove(&e.path());
            }
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Writes `value` to the control file `name` of cgroup `dir`. False when the
/// file does not exist (controller not enabled there) or refuses the value.
pub(crate) fn set(dir: &Path, name: &str, value: &str) -> bool {
    let f = dir.join(name);
    f.exists() && fs::write(f, value).is_ok()
}

/// The directory under which limit-only cgroups of the cgroup v1 controller
/// `controller` (`"pids"` or `"memory"`) are created, if that hierarchy is
/// mounted and writable (detected once per controller).
pub(crate) fn v1_base(controller: &str) -> Option<&'static Path> {
    static PIDS: OnceCell<Option<PathBuf>> = OnceCell::new();
    static MEMORY: OnceCell<Option<PathBuf>> = OnceCell::new();
    let (cell, probe_file) = match controller {
        "pids" => (&PIDS, "pids.max"),
        "memory" => (&MEMORY, "memory.limit_in_bytes"),
        _ => return None,
    };
    cell.get_or_init(|| detect_v1(controller, probe_file))
        .as_deref()
}

#[cfg(target_os = "linux")]
fn detect_v1(controller: &str, probe_file: &str) -> Option<PathBuf> {
    // /proc/self/cgroup: `<id>:<controllers, comma-separated>:<path>`.
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })?;
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mnt) = mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut p = post.split(' ');
        if p.next()? != "cgroup" {
            return None;
        }
        let opts = p.nth(1)?;
        if !opts.split(',').any(|o| o == controller) {
            return None;
        }
        let f: Vec<&str> = pre.split(' ').collect();
        Some((f.get(3)?.to_string(), f.get(4)?.to_string()))
    })?;
    let sub = rel.strip_prefix(root.trim_end_matches('/')).unwrap_or(&rel);
    let dir = Path::new(&unescape(&mnt)).join(sub.trim_start_matches('/'));
    let probe = dir.join(format!("hotplex-probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let usable = probe.join(probe_file).exists() && probe.join("cgroup.procs").exists();
    let _ = fs::remove_dir(&probe);
    usable.then_some(dir)
}

#[cfg(not(target_os = "linux"))]
fn detect_v1(_controller: &str, _probe_file: &str) -> Option<PathBuf> {
    None
}
