#!/usr/bin/env bash
# Builds the C ABI (hotplex-ffi) and tests it from Rust, C and Go:
#   1. cargo build -p hotplex-ffi --release   (libhotplex.so / libhotplex.a)
#   2. cargo test -p hotplex-ffi              (ABI tests + include/hotplex.h drift check)
#   3. tests/c/app.c, compiled and linked the way a C user would
#   4. tests/c/engine.c: the session pool, driving the reference agent
#   5. tests/c/poll.c: the pollable stream fd and the callback form; then
#      every C test and tests/c/sequence.c (random ABI call sequences) again
#      under AddressSanitizer + UBSan with leak checking
#   6. go vet + go test -race in bindings/go  (cgo, links libhotplex.a statically)
#   7. go vet + go test in bindings/go/promcollector (a module of its own: the
#      client_golang collector, and the telemetry scenario parsed by
#      Prometheus' OpenMetrics parser; its modules come from the Go proxy)
# Needs only the Rust, Go and C toolchains. Runnable from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CC="${CC:-cc}"
# Cargo may be configured to put its output elsewhere; the C and Go builds
# expect target/ (as documented in the header and in bindings/go).
TARGET_DIR="$ROOT/target"
export CARGO_TARGET_DIR="$TARGET_DIR"

section() {
    printf '\n==> %s\n' "$*"
}

section "cargo build -p hotplex-ffi --release"
cargo build -p hotplex-ffi --release

section "cargo test -p hotplex-ffi (ABI tests, header drift check)"
cargo test -p hotplex-ffi

section "C: tests/c/app.c"
BUILD_DIR="$ROOT/tests/c/build"
mkdir -p "$BUILD_DIR"
"$CC" -Wall -Wextra -Werror tests/c/app.c \
    -Iinclude -L"$TARGET_DIR/release" -lhotplex -o "$BUILD_DIR/app"
LD_LIBRARY_PATH="$TARGET_DIR/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$BUILD_DIR/app"

section "C: tests/c/engine.c (the session pool, with the reference agent)"
cargo build -q -p hotplex-reference-agent
"$CC" -Wall -Wextra -Werror tests/c/engine.c \
    -Iinclude -L"$TARGET_DIR/release" -lhotplex -o "$BUILD_DIR/engine"
ENGINE_TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-c-engine.XXXXXX")"
LD_LIBRARY_PATH="$TARGET_DIR/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$BUILD_DIR/engine" "$TARGET_DIR/debug/hotplex-reference-agent" "$ENGINE_TMP"
rm -rf "$ENGINE_TMP"
export HOTPLEX_REFERENCE_AGENT="$TARGET_DIR/debug/hotplex-reference-agent"

section "C: tests/c/poll.c (the pollable stream fd, cancel, the callback form)"
"$CC" -Wall -Wextra -Werror tests/c/poll.c \
    -Iinclude -L"$TARGET_DIR/release" -lhotplex -pthread -o "$BUILD_DIR/poll"
POLL_TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-c-poll.XXXXXX")"
LD_LIBRARY_PATH="$TARGET_DIR/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$BUILD_DIR/poll" "$HOTPLEX_REFERENCE_AGENT" "$POLL_TMP"
rm -rf "$POLL_TMP"

section "C: every C test, and a random ABI call sequence, under AddressSanitizer + UBSan"
# Each C program is instrumented and linked against the uninstrumented
# libhotplex.so; ASan intercepts malloc/free process-wide, so the library's
# frees of what it handed out, and the host's use of every string and
# handle, are checked too. LeakSanitizer is on: the library leaks nothing
# unreachable (its process-wide state stays reachable). sequence.c drives
# random (fixed-seed) call sequences with NULLs and bad input on every
# handle; fuzz/fuzz_targets/c_abi.rs explores the same space with coverage.
for prog in app engine poll sequence; do
    "$CC" -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
        -fno-omit-frame-pointer -Wall -Wextra -Werror "tests/c/$prog.c" \
        -Iinclude -L"$TARGET_DIR/release" -lhotplex -pthread -o "$BUILD_DIR/$prog-asan"
    SAN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-c-$prog.XXXXXX")"
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" UBSAN_OPTIONS="print_stacktrace=1" \
        LD_LIBRARY_PATH="$TARGET_DIR/release${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$BUILD_DIR/$prog-asan" "$HOTPLEX_REFERENCE_AGENT" "$SAN_TMP" | grep -v "^ok "
    rm -rf "$SAN_TMP"
done

section "Go: bindings/go (go vet, go test -race)"
cd "$ROOT/bindings/go"
export CGO_ENABLED=1
# The go command does not notice changes to headers outside the package
# (include/hotplex.h); put the header's hash into the C flags so a new header
# rebuilds the cgo code instead of reusing stale cached objects. (The static
# library itself is re-read at every link.)
HEADER_SUM="$(sha256sum "$ROOT/include/hotplex.h" | cut -c1-16)"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DHOTPLEX_HEADER_SHA256_PREFIX=0x$HEADER_SUM"
go vet ./...
# Under the race detector (Stream's cancel runs on another goroutine than
# its reads; callbacks come from hotplex threads).
go test -race -count=1 ./...

section "Go: bindings/go/promcollector (go vet, go test; same cgo flags)"
cd "$ROOT/bindings/go/promcollector"
go mod download
go vet ./...
go test -count=1 ./...

section "C and Go bindings: all passed"
