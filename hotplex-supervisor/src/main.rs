//! The supervisor program: what hotplex-core executes (from an in-memory copy
//! of this binary) once per host process as the *launcher* that forks each
//! session's supervisor ([`hotplex_supervisor::launcher`]), instead of
//! forking a copy of the host.
//!
//! The host starts it with the argument [`launcher::LAUNCHER_ARG`] and the
//! launcher's end of the request socket at descriptor
//! [`launcher::FD_LAUNCHER`]. It is linked statically, so it needs nothing
//! from the machine it runs on (no loader, no glibc version) and shares no
//! page with the host.

#[cfg(target_os = "linux")]
use hotplex_supervisor::launcher;

fn main() {
    #[cfg(target_os = "linux")]
    if std::env::args_os().nth(1).as_deref() == Some(launcher::LAUNCHER_ARG.as_ref()) {
        launcher::run();
    }
    eprintln!(
        "hotplex-supervisor: started by hotplex-core only (as `hotplex-supervisor launcher`)"
    );
    std::process::exit(2);
}
