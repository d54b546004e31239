//! Builds the supervisor program (crate `hotplex-supervisor`, binary of the
//! same name) as a small static executable and leaves it in
//! `$OUT_DIR/hotplex-supervisor`, which `src/proc/launch.rs` embeds with
//! `include_bytes!`: the library then carries its supervisor inside it and
//! nothing extra has to be installed next to a wheel, an npm addon, a C
//! library or a Go archive.
//!
//! How: a nested `cargo build --release --offline --locked` of that one crate
//! into a target directory of its own under `$OUT_DIR` (a separate directory,
//! so the outer build's lock is never contended), with `+crt-static` so the
//! program needs no loader and no particular glibc (the libraries
//! themselves may be linked for glibc 2.17 by `scripts/dist.sh`; the program
//! is independent of that). The environment the outer build gives build
//! scripts is scrubbed first: its rustflags, linker choice (the dist build's
//! zig linker cannot link glibc statically), wrappers (clippy) and target
//! directory are meant for hotplex itself, not for the program.
//!
//! The build never fails because of the program: where it cannot be built
//! (not Linux, no static libc, `HOTPLEX_SUPERVISOR_PROGRAM=0`), the embedded
//! file is empty, a warning says why, and sessions use the forked
//! supervisor (`hotplex_core::proc::supervisor_mode()` reports which).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("hotplex-supervisor");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HOTPLEX_SUPERVISOR_PROGRAM");
    match build(&out) {
        Ok(bin) => {
            std::fs::copy(&bin, &dest).expect("copy the supervisor program into OUT_DIR");
        }
        Err(why) => {
            if !why.is_empty() {
                println!("cargo:warning=hotplex: the supervisor program was not built ({why}); sessions will use forked supervisors");
            }
            std::fs::write(&dest, b"").expect("write OUT_DIR/hotplex-supervisor");
        }
    }
}

/// Builds the program; `Err("")` when it is deliberately not built.
fn build(out: &Path) -> Result<PathBuf, String> {
    let target = std::env::var("TARGET").unwrap_or_default();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return Err(String::new());
    }
    if std::env::var("HOTPLEX_SUPERVISOR_PROGRAM").as_deref() == Ok("0") {
        return Err("HOTPLEX_SUPERVISOR_PROGRAM=0".into());
    }
    // Where cargo put the supervisor crate's sources (workspace, sdist,
    // vendored): its build script publishes the directory.
    let dir = PathBuf::from(
        std::env::var_os("DEP_HOTPLEX_SUPERVISOR_MANIFEST_DIR")
            .ok_or("hotplex-supervisor did not publish its directory")?,
    );
    let manifest = dir.join("Cargo.toml");
    for f in ["Cargo.toml", "build.rs", "src"] {
        rerun_if_changed(&dir.join(f));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.join("supervisor-build");
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--bin", "hotplex-supervisor", "--release", "--offline"])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir);
    // The workspace's lock file pins libc; a crate outside a workspace (a
    // registry download) has none, and `--locked` would refuse to create one
    // (`--offline` still keeps it to what is already downloaded: libc, which
    // hotplex-core itself depends on).
    if has_lock_file(&dir) {
        cmd.arg("--locked");
    }
    // Small and self-contained: a supervisor never unwinds (it has nobody to
    // report a panic to) and its text is shared by every session anyway.
    for c in [
        "profile.release.opt-level=\"s\"",
        "profile.release.panic=\"abort\"",
        "profile.release.lto=true",
        "profile.release.codegen-units=1",
        "profile.release.debug=false",
        "profile.release.strip=true",
        "profile.release.incremental=false",
    ] {
        cmd.args(["--config", c]);
    }
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let scrub = k == "RUSTFLAGS"
            || k == "RUSTDOCFLAGS"
            || k == "RUSTC_WRAPPER"
            || k == "RUSTC_WORKSPACE_WRAPPER"
            || k == "CARGO_TARGET_DIR"
            || k == "CARGO_ENCODED_RUSTFLAGS"
            || k == "CARGO_BUILD_RUSTFLAGS"
            || k == "CARGO_BUILD_TARGET"
            || k == "CARGO_BUILD_TARGET_DIR"
            || (k.starts_with("CARGO_TARGET_")
                && (k.ends_with("_LINKER") || k.ends_with("_RUSTFLAGS") || k.ends_with("_RUNNER")))
            || k.starts_with("CARGO_PROFILE_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("DEP_")
            || k == "OUT_DIR"
            || k == "TARGET"
            || k == "HOST"
            || k == "PROFILE"
            || k == "OPT_LEVEL"
            || k == "DEBUG"
            || k == "NUM_JOBS"
            || k.starts_with("CLIPPY_");
        if scrub {
            cmd.env_remove(k);
        }
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let output = cmd.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        for l in tail.iter().rev() {
            println!("cargo:warning=  {l}");
        }
        return Err(format!("nested cargo build failed: {}", output.status));
    }
    let bin = target_dir
        .join(&target)
        .join("release")
        .join("hotplex-supervisor");
    if !bin.is_file() {
        return Err(format!("{} is missing after the build", bin.display()));
    }
    Ok(bin)
}

/// A lock file in the crate's directory or its workspace's (the parent in
/// this repository and in the Python sdist).
fn has_lock_file(crate_dir: &Path) -> bool {
    crate_dir.join("Cargo.lock").is_file()
        || crate_dir
            .parent()
            .is_some_and(|d| d.join("Cargo.lock").is_file())
}

fn rerun_if_changed(p: &Path) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                rerun_if_changed(&e.path());
            }
        }
    } else {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
