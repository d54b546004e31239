//! One version everywhere: the workspace version (`[workspace.package]
//! version` in the root Cargo.toml, the only place it is written by hand) must
//! be the one in every other manifest and in the C header. Change it with
//! `scripts/set-version.sh X.Y.Z`, which writes all of these; this test fails
//! when one of them disagrees.

use std::path::PathBuf;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text between `before` and the next `"` in `text`.
fn quoted_after<'a>(text: &'a str, before: &str, path: &str) -> &'a str {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("{path} has no `{before}`"))
        + before.len();
    let len = text[start..].find('"').expect("a closing quote");
    &text[start..start + len]
}

#[test]
fn the_core_and_the_c_library_report_the_workspace_version() {
    assert_eq!(hotplex_core::VERSION, VERSION);
    // SAFETY: hotplex_version returns a static NUL-terminated string.
    let lib = unsafe { std::ffi::CStr::from_ptr(hotplex::hotplex_version()) };
    assert_eq!(lib.to_str().unwrap(), VERSION);
}

#[test]
fn the_header_carries_the_workspace_version() {
    let header = read("include/hotplex.h");
    assert_eq!(
        quoted_after(&header, "#define HOTPLEX_VERSION \"", "include/hotplex.h"),
        VERSION
    );
    let abi = format!(
        "#define HOTPLEX_ABI_VERSION {}\n",
        hotplex::HOTPLEX_ABI_VERSION
    );
    assert!(header.contains(&abi), "include/hotplex.h lacks `{abi}`");
}

#[test]
fn the_python_package_takes_its_version_from_cargo() {
    let pyproject = read("bindings/python/pyproject.toml");
    assert!(
        pyproject.contains("dynamic = [\"version\"]"),
        "bindings/python/pyproject.toml: the version must be dynamic (maturin reads Cargo's)"
    );
    assert!(
        !pyproject
            .lines()
            .any(|l| l.trim_start().starts_with("version =")),
        "bindings/python/pyproject.toml must not pin a version of its own"
    );
    let cargo = read("bindings/python/Cargo.toml");
    assert!(cargo.contains("version.workspace = true"));
}

#[test]
fn the_npm_packages_carry_the_workspace_version() {
    let main = json("bindings/node/package.json");
    assert_eq!(main["version"], VERSION, "bindings/node/package.json");
    let lock = json("bindings/node/package-lock.json");
    assert_eq!(lock["version"], VERSION, "bindings/node/package-lock.json");
    assert_eq!(
        lock["packages"][""]["version"], VERSION,
        "bindings/node/package-lock.json"
    );
    let dir = root().join("bindings/node/npm");
    let mut platforms = 0;
    for entry in std::fs::read_dir(&dir).expect("bindings/node/npm exists") {
        let path = entry.unwrap().path().join("package.json");
        let pkg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(pkg["version"], VERSION, "{}", path.display());
        platforms += 1;
    }
    assert!(platforms > 0, "no platform package under bindings/node/npm");
}

#[test]
fn the_go_module_carries_the_workspace_version() {
    let go = read("bindings/go/version.go");
    assert_eq!(
        quoted_after(&go, "const ModuleVersion = \"", "bindings/go/version.go"),
        VERSION
    );
}

#[test]
fn the_changelog_has_a_section_for_the_workspace_version() {
    let changelog = read("CHANGELOG.md");
    let heading = format!("## [{VERSION}]");
    assert!(
        changelog.lines().any(|l| l.starts_with(&heading)),
        "CHANGELOG.md has no `{heading}` section"
    );
}
