//go:build !hotplex_system

package hotplex

// Where cgo finds the C header and the static library (the default; build
// with -tags hotplex_system to use an installed library through pkg-config
// instead, see link_system.go).
//
// The module as published (a release's module zip, made by scripts/dist.sh)
// carries include/hotplex.h and lib/<GOOS>_<GOARCH>/libhotplex.a, so a
// consumer needs only a C toolchain. In the source tree neither exists, and
// the search falls through to the repository's include/ and to
// target/release/ (`cargo build -p hotplex-ffi --release`); add
// CGO_LDFLAGS=-L$CARGO_TARGET_DIR/release when cargo builds elsewhere.
// `-l:libhotplex.a` picks the static library even where libhotplex.so sits
// next to it (GNU ld, gold, lld and mold read that form).

/*
#cgo CFLAGS: -I${SRCDIR}/include -I${SRCDIR}/../../include
#cgo linux,amd64 LDFLAGS: -L${SRCDIR}/lib/linux_amd64
#cgo linux,arm64 LDFLAGS: -L${SRCDIR}/lib/linux_arm64
#cgo darwin,amd64 LDFLAGS: -L${SRCDIR}/lib/darwin_amd64
#cgo darwin,arm64 LDFLAGS: -L${SRCDIR}/lib/darwin_arm64
#cgo LDFLAGS: -L${SRCDIR}/../../target/release
#cgo linux LDFLAGS: -l:libhotplex.a -lm -ldl -lpthread
#cgo darwin LDFLAGS: -lhotplex -lm -ldl -lpthread
*/
import "C"
