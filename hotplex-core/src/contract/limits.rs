//! Per-session resource limits ([`SessionLimits`], `EngineOptions.limits`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::proc::{Rlimits, SpawnOptions};
use crate::{Error, Result};

/// Resource limits applied to every session's process tree (the agent and
/// everything it starts). Each is off when absent.
///
/// Enforcement depends on the containment mode (`proc::detect_mode`):
/// with a per-session cgroup, memory and processes are limited for the
/// whole tree together (`memory.max`, `pids.max`); without one, memory
/// becomes the agent's `RLIMIT_AS` (address space of each process) and the
/// process limit a best effort through `RLIMIT_NPROC`, which Linux counts
/// per user and does not apply to root. CPU time and open files are always
/// per process (`RLIMIT_CPU`, `RLIMIT_NOFILE`), inherited by children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionLimits {
    /// Most bytes of memory the session may use (cgroup `memory.max`; the
    /// kernel kills the session's largest process past it). Without a
    /// cgroup: `RLIMIT_AS`, which counts reserved address space, so a
    /// runtime that reserves a lot (Node) needs a generous value.
    pub memory_bytes: Option<u64>,
    /// Most processes (tasks) of the session at once (cgroup `pids.max`: a
    /// fork past it fails). Without a cgroup: best effort through the
    /// per-user `RLIMIT_NPROC` (not enforced for root).
    pub max_processes: Option<u64>,
    /// CPU seconds each process of the session may use (`RLIMIT_CPU`:
    /// SIGXCPU, then SIGKILL).
    pub cpu_seconds: Option<u64>,
    /// Open files each process of the session may hold (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
}

impl SessionLimits {
    /// Checks that every limit given is at least 1 (a zero would stop the
    /// agent before its first instruction).
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("limits.memory_bytes", self.memory_bytes),
            ("limits.max_processes", self.max_processes),
            ("limits.cpu_seconds", self.cpu_seconds),
            ("limits.open_files", self.open_files),
        ] {
            if v == Some(0) {
                return Err(Error::InvalidConfig(format!("{name}: must be at least 1")));
            }
        }
        Ok(())
    }

    /// `spawn` with these limits added.
    pub fn apply(&self, mut spawn: SpawnOptions) -> SpawnOptions {
        spawn.memory_max = self.memory_bytes;
        spawn.pids_max = self.max_processes;
        let mut r: Rlimits = spawn.rlimits;
        if let Some(s) = self.cpu_seconds {
            r = r.cpu_seconds(s);
        }
        if let Some(n) = self.open_files {
            r = r.open_files(n);
        }
        spawn.rlimits(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_from_the_wire_and_reach_the_spawn_options() {
        let l: SessionLimits = serde_json::from_value(serde_json::json!({
            "memory_bytes": 1u64 << 30, "max_processes": 64, "cpu_seconds": 600, "open_files": 4096
        }))
        .unwrap();
        let s = l.apply(SpawnOptions::new("true"));
        assert_eq!(s.memory_max, Some(1 << 30));
        assert_eq!(s.pids_max, Some(64));
        assert_eq!(s.rlimits.cpu_seconds, Some(600));
        assert_eq!(s.rlimits.open_files, Some(4096));
        assert_eq!(s.rlimits.address_space, None);
    }

    #[test]
    fn unknown_or_zero_limits_are_refused() {
        assert!(serde_json::from_value::<SessionLimits>(serde_json::json!({"memory": 1})).is_err());
        let zero = SessionLimits {
            max_processes: Some(0),
            ..Default::default()
        };
        let e = zero.validate().unwrap_err().to_string();
        assert!(e.contains("limits.max_processes"), "{e}");
    }
}
