package hotplex

// ModuleVersion is the hotplex release this Go module belongs to, e.g.
// "0.1.0" (module version v0.1.0). Version() is the release of the library
// that was linked: the two agree for the library a release's module ships;
// with -tags hotplex_system they can differ, and ABIVersion() is what has to
// match. scripts/set-version.sh writes it; hotplex-ffi/tests/version.rs checks
// it against the workspace version.
const ModuleVersion = "0.1.0"
