//! Publishes this crate's directory to the build scripts of its dependents
//! (hotplex-core builds the supervisor program from it).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:manifest_dir={dir}");
    println!("cargo:rerun-if-changed=build.rs");
}
