//! The supervisor program: what hotplex-core executes (from an in-memory copy
//! of this binary) for each session, instead of forking a copy of the host.
//!
//! The host starts it with the session's descriptors at fixed numbers
//! (`3` control socket, `4`..`6` the agent's stdin, stdout and stderr, `7`
//! the serialized [`Plan`]); it reads the plan and runs the very same
//! [`supervisor::run`] a forked supervisor runs. It is linked statically, so
//! it needs nothing from the machine it runs on (no loader, no glibc
//! version) and shares no page with the host.

use hotplex_supervisor::{plan, supervisor};

fn main() {
    plan::name_this_process();
    let p = match plan::read_inherited() {
        Ok(p) => p,
        Err(errno) => supervisor::fail_before_start(errno),
    };
    supervisor::run(&p)
}
