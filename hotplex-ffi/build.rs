//! Gives the shared library its SONAME on Linux: `libhotplex.so.<ABI>`,
//! where `<ABI>` is `HOTPLEX_ABI_VERSION` (read from src/lib.rs, its only
//! definition), so a program linked against one ABI never loads a library of
//! another. Also writes the `libhotplex.so.<ABI> -> libhotplex.so` link next
//! to cargo's output, so programs linked with `-L target/release -lhotplex`
//! (which now record `libhotplex.so.<ABI>` as NEEDED) still run from the
//! build tree with `LD_LIBRARY_PATH=target/release`.

use std::path::{Path, PathBuf};

fn abi_version() -> u32 {
    const NEEDLE: &str = "pub const HOTPLEX_ABI_VERSION: u32 = ";
    let lib = std::fs::read_to_string("src/lib.rs").expect("src/lib.rs is readable");
    let start = lib
        .find(NEEDLE)
        .expect("src/lib.rs defines HOTPLEX_ABI_VERSION")
        + NEEDLE.len();
    let digits: String = lib[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .expect("HOTPLEX_ABI_VERSION is a u32 literal")
}

/// target/<profile> (or target/<triple>/<profile>): three levels above OUT_DIR.
fn profile_dir() -> Option<PathBuf> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    Some(out.ancestors().nth(3)?.to_path_buf())
}

fn link(profile: &Path, soname: &str) {
    let path = profile.join(soname);
    if std::fs::read_link(&path).is_ok_and(|t| t == Path::new("libhotplex.so")) {
        return;
    }
    let _ = std::fs::remove_file(&path);
    #[cfg(unix)]
    if let Err(e) = std::os::unix::fs::symlink("libhotplex.so", &path) {
        println!("cargo:warning=could not link {}: {e}", path.display());
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os != "linux" {
        // macOS: the install name is set when the library is installed
        // (install_name_tool); Windows has no SONAME.
        return;
    }
    let soname = format!("libhotplex.so.{}", abi_version());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    if let Some(profile) = profile_dir() {
        link(&profile, &soname);
    }
}
