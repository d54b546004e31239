//! Sets up linking for the Node addon (a no-op on Linux; `-undefined
//! dynamic_lookup` on macOS) and the rerun triggers `napi build` relies on.

fn main() {
    napi_build::setup();
}
