//! Resident memory of agent process trees, read from `/proc` when the
//! metrics are scraped (never on a turn's path).
//!
//! Each agent runs under its supervisor, which is also the subreaper that
//! adopts whatever the agent double-forks away; so the tree of a session is
//! every descendant of the agent's parent (the supervisor itself excluded:
//! it is a fork of the host and is the host's memory, not the agent's).

use std::collections::{HashMap, HashSet};

/// Sum of `VmRSS` over every descendant of the supervisors of `agents`
/// (pids); 0 where `/proc` cannot be read.
pub(crate) fn tree_rss_bytes(agents: &[i32]) -> u64 {
    if agents.is_empty() {
        return 0;
    }
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let roots: HashSet<i32> = agents.iter().filter_map(|p| parent_of(*p)).collect();
    let mut seen = HashSet::new();
    let mut stack: Vec<i32> = roots
        .iter()
        .flat_map(|r| children.get(r).into_iter().flatten().copied())
        .collect();
    let mut total = 0;
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        total += rss_bytes(pid);
        stack.extend(children.get(&pid).into_iter().flatten().copied());
    }
    total
}

/// The parent pid, from `/proc/<pid>/stat` (the field after the command,
/// which may itself contain spaces and parentheses).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn rss_bytes(pid: i32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_of_this_process_is_counted() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        // The "agent" is the child; its parent (this test) is the root.
        let bytes = tree_rss_bytes(&[child.id() as i32]);
        let _ = child.kill();
        let _ = child.wait();
        assert!(bytes > 0);
        assert_eq!(tree_rss_bytes(&[]), 0);
    }
}
