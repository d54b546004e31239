//! include/hotplex.h must be exactly what cbindgen generates from this crate.
//!
//! The header is committed so that C and Go users need no Rust tooling. This
//! test regenerates it with the cbindgen library and the same configuration
//! the CLI uses (`hotplex-ffi/cbindgen.toml`), so it catches an ABI change
//! that was not followed by a regeneration. With `HOTPLEX_BLESS=1` it writes
//! the header instead of comparing:
//!
//! ```text
//! HOTPLEX_BLESS=1 cargo test -p hotplex-ffi --test header
//! ```
//!
//! The output is byte-identical to the CLI's:
//! `cbindgen --config hotplex-ffi/cbindgen.toml --crate hotplex-ffi --output include/hotplex.h`.

use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("..").join("include").join("hotplex.h")
}

fn generate() -> Vec<u8> {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml"))
        .expect("hotplex-ffi/cbindgen.toml is readable and valid");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_crate(&dir)
        .generate()
        .expect("cbindgen can generate the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

/// The first differing line, 1-based, with both versions of it.
fn first_difference(old: &str, new: &str) -> String {
    let (mut old_lines, mut new_lines) = (old.lines(), new.lines());
    let mut n = 0;
    loop {
        n += 1;
        match (old_lines.next(), new_lines.next()) {
            (Some(a), Some(b)) if a == b => continue,
            (None, None) => return "the files differ only in line endings".to_owned(),
            (a, b) => {
                return format!(
                    "first difference at line {n}:\n  committed: {}\n  generated: {}",
                    a.unwrap_or("<end of file>"),
                    b.unwrap_or("<end of file>")
                )
            }
        }
    }
}

#[test]
fn header_matches_cbindgen_output() {
    let generated = generate();
    let path = header_path();
    if std::env::var_os("HOTPLEX_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/hotplex.h");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != generated {
        let hint = first_difference(
            &String::from_utf8_lossy(&committed),
            &String::from_utf8_lossy(&generated),
        );
        panic!(
            "include/hotplex.h is out of date with hotplex-ffi ({} bytes committed, {} generated).\n{hint}\n\n\
             If the ABI change is intended, regenerate the header and commit it:\n    \
             HOTPLEX_BLESS=1 cargo test -p hotplex-ffi --test header\nor\n    \
             cbindgen --config hotplex-ffi/cbindgen.toml --crate hotplex-ffi --output include/hotplex.h\n\
             and review the diff (`git diff include/hotplex.h`): changing or removing an existing \
             item needs a HOTPLEX_ABI_VERSION bump.",
            committed.len(),
            generated.len(),
        );
    }
}

#[test]
fn header_declares_the_abi_version() {
    let generated = String::from_utf8(generate()).unwrap();
    let expected = format!(
        "#define HOTPLEX_ABI_VERSION {}",
        hotplex::HOTPLEX_ABI_VERSION
    );
    assert!(generated.contains(&expected), "missing {expected:?}");
    assert!(generated.contains("HOTPLEX_STATUS_OK = 0"));
    assert!(generated.contains("HOTPLEX_LEVEL_SAFE = -1"));
}
