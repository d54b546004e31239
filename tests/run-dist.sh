#!/usr/bin/env bash
# Release artifacts: builds them (scripts/dist.sh) and installs each into a
# fresh environment outside the repository, the way a user of each ecosystem
# would, then runs the Detector and Engine smoke checks there (the Engine on
# the bundled reference agent):
#   1. the checksums, the version test (hotplex-ffi/tests/version.rs)
#   2. Python: a new venv, `pip install <wheel>` (size < 6 MB, auditwheel's
#      manylinux tag, README/URLs/license in METADATA); the sdist's contents
#      (with the supervisor program's crate)
#   3. Node: a new project, `npm install <main tarball> <platform tarball>`
#      with no cargo on PATH and no install script run
#   4. Go: a new module resolving github.com/hotplex/hotplex/bindings/go from
#      the file-system GOPROXY that scripts/dist.sh wrote, built with no cargo
#      on PATH (only the C toolchain); and with -tags hotplex_system against
#      the C prefix through pkg-config
#   5. C: the prefix tarball unpacked; tests/dist/smoke.c and examples/c built
#      with `pkg-config --cflags --libs hotplex` and with CMake
#      find_package(hotplex), shared and static
#   6. the docs command (scripts/docs.sh)
#
# Env: HOTPLEX_DIST_SKIP_BUILD=1 tests the artifacts already in dist/;
#      HOTPLEX_DIST_SDIST_BUILD=1 also builds the sdist in a fresh venv, cargo
#      offline (slow: a full release build of the extension).
# Every smoke program checks that its artifact runs the embedded supervisor
# program (supervisor mode "exec"), not the forked fallback.
# Usage: tests/run-dist.sh            (from any directory)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="${HOTPLEX_DIST_DIR:-$ROOT/dist}"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
step() { printf '\n==> %s\n' "$*"; }
die() { echo "run-dist.sh: $*" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/hotplex-dist.XXXXXX")"
cleanup() {
    chmod -R u+w "$TMP" 2>/dev/null || true # the Go module cache is read-only
    rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z "${HOTPLEX_DIST_SKIP_BUILD:-}" ]]; then
    step "scripts/dist.sh"
    start=$SECONDS
    bash scripts/dist.sh
    echo "dist.sh took $((SECONDS - start)) s"
fi
VERSION="$(bash scripts/set-version.sh)"
ABI="$(sed -n 's/^pub const HOTPLEX_ABI_VERSION: u32 = \([0-9]*\);$/\1/p' hotplex-ffi/src/lib.rs)"

step "checksums and the version test"
(cd "$DIST" && sha256sum --check --quiet SHA256SUMS)
cargo test -q -p hotplex-ffi --test version

# The reference agent, copied out of the tree; and a PATH without Rust.
cargo build -q -p hotplex-reference-agent
mkdir -p "$TMP/bin"
AGENT="$TMP/bin/hotplex-reference-agent"
cp "$ROOT/target/debug/hotplex-reference-agent" "$AGENT"
NO_RUST_PATH=""
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
    [[ -n "$d" && ! -e "$d/cargo" && ! -e "$d/rustc" ]] && NO_RUST_PATH="${NO_RUST_PATH:+$NO_RUST_PATH:}$d"
done
if PATH="$NO_RUST_PATH" command -v cargo >/dev/null; then die "cannot hide cargo"; fi
fresh() { mkdir -p "$TMP/$1" && echo "$TMP/$1"; } # a fresh directory outside the repository

step "Python: the wheel"
WHEEL="$(ls "$DIST"/hotplex-"$VERSION"-cp39-abi3-*.whl)"
size=$(stat -c %s "$WHEEL")
echo "$(basename "$WHEEL"): $size bytes"
((size < 6 * 1024 * 1024)) || die "the wheel is $size bytes (limit 6 MB)"
"$ROOT/target/dist-tools/bin/auditwheel" show "$WHEEL" | tee "$TMP/auditwheel.txt"
tr -s ' \n' ' ' <"$TMP/auditwheel.txt" | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' ||
    die "auditwheel does not report manylinux_2_17_x86_64"
python3 - "$WHEEL" <<'EOF'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
text = z.read(meta).decode()
for want in ("Project-URL: Homepage, https://", "License-Expression: MIT", "License-File: LICENSE",
             "Description-Content-Type: text/markdown", "# hotplex"):
    assert want in text, f"METADATA lacks {want!r}"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in z.namelist()), "no LICENSE in the wheel"
so = [i for i in z.infolist() if i.filename.endswith(".so")]
assert len(so) == 1, so
print(f"METADATA ok; {so[0].filename}: {so[0].file_size} bytes")
EOF
VENV="$(fresh py)/venv"
PATH="$NO_RUST_PATH" python3 -m venv "$VENV"
PATH="$NO_RUST_PATH" "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-index "$WHEEL"
cp tests/dist/smoke.py "$TMP/py/"
(cd "$TMP/py" && PATH="$NO_RUST_PATH" "$VENV/bin/python" smoke.py "$VERSION" "$AGENT" "$(fresh py-state)")

step "Python: the sdist"
SDIST="$DIST/hotplex-$VERSION.tar.gz"
tar -tzf "$SDIST" >"$TMP/sdist.txt"
for f in pyproject.toml Cargo.toml Cargo.lock README.md LICENSE bindings/python/Cargo.toml \
    bindings/python/src/lib.rs python/hotplex/__init__.py python/hotplex/_native.pyi \
    hotplex-core/Cargo.toml hotplex-core/src/lib.rs hotplex-core/build.rs \
    hotplex-supervisor/Cargo.toml hotplex-supervisor/build.rs hotplex-supervisor/src/main.rs; do
    grep -qx "hotplex-$VERSION/$f" "$TMP/sdist.txt" || die "the sdist lacks $f"
done
echo "the sdist has the workspace crates it builds from ($(wc -l <"$TMP/sdist.txt") files)"
if [[ -n "${HOTPLEX_DIST_SDIST_BUILD:-}" ]]; then
    python3 -m venv "$TMP/sdist-venv"
    # Cargo offline: every crate (also those of the supervisor program that
    # hotplex-core's build script builds from the sdist) must come from the
    # lock file and the local cache; smoke.py checks the program runs.
    CARGO_NET_OFFLINE=true "$TMP/sdist-venv/bin/python" -m pip install --disable-pip-version-check -q "$SDIST"
    (cd "$TMP" && "$TMP/sdist-venv/bin/python" "$ROOT/tests/dist/smoke.py" "$VERSION" "$AGENT" "$(fresh sdist-state)")
fi

step "Node: the main package and the platform package, no cargo on PATH"
APP="$(fresh node-app)"
MAIN_TGZ="$DIST/hotplex-$VERSION.tgz"
PLATFORM_TGZ="$DIST/hotplex-hotplex-linux-x64-gnu-$VERSION.tgz"
tar -xzOf "$MAIN_TGZ" package/package.json | node -e '
const pkg = JSON.parse(require("node:fs").readFileSync(0, "utf8"))
if (pkg.scripts) { console.error("the main package has scripts:", pkg.scripts); process.exit(1) }
if (!pkg.optionalDependencies || !pkg.optionalDependencies["@hotplex/hotplex-linux-x64-gnu"]) {
  console.error("the main package does not depend on its platform package"); process.exit(1) }'
if tar -tzf "$MAIN_TGZ" | grep -q '\.node$'; then die "the main package carries an addon"; fi
(
    cd "$APP"
    export PATH="$NO_RUST_PATH"
    npm init -y >/dev/null
    npm install --foreground-scripts --no-package-lock "$PLATFORM_TGZ" "$MAIN_TGZ" 2>&1 | tee "$TMP/npm-install.log"
    if grep -q "hotplex install:" "$TMP/npm-install.log"; then die "an install script ran"; fi
    cp "$ROOT/tests/dist/smoke.js" .
    node smoke.js "$VERSION" "$AGENT" "$(fresh node-state)"
)

step "Go: the module through a file-system GOPROXY, no cargo on PATH"
GOAPP="$(fresh go-app)"
GO_MODULE="$(sed -n 's/^module //p' bindings/go/go.mod)"
cp tests/dist/go/main.go "$GOAPP/"
cat >"$GOAPP/go.mod" <<EOF
module example.com/hotplexsmoke

go 1.23.0

require $GO_MODULE v$VERSION
EOF
(
    cd "$GOAPP"
    export PATH="$NO_RUST_PATH" GOPROXY="file://$DIST/goproxy" GOSUMDB=off GONOSUMDB="$GO_MODULE" \
        GOFLAGS="-mod=mod -modcacherw" GOMODCACHE="$TMP/gomodcache" GOTOOLCHAIN=local CGO_ENABLED=1
    go mod tidy
    go build -o smoke .
    ./smoke "$VERSION" "$AGENT" "$(fresh go-state)"
    # The module as unpacked in the cache carries the header and the library.
    dir="$(go list -m -f '{{.Dir}}' "$GO_MODULE")"
    ls "$dir/include/hotplex.h" "$dir/lib/linux_amd64/libhotplex.a" >/dev/null
)

step "C: the prefix tarball, pkg-config and CMake"
PREFIX="$(fresh prefix)"
tar -xzf "$DIST/hotplex-$VERSION-linux-x86_64.tar.gz" -C "$PREFIX" --strip-components=1
readelf -d "$PREFIX/lib/libhotplex.so.$ABI" | grep -q "SONAME.*\[libhotplex.so.$ABI\]" ||
    die "libhotplex.so.$ABI has no SONAME libhotplex.so.$ABI"
[[ "$(readlink "$PREFIX/lib/libhotplex.so")" == "libhotplex.so.$ABI" ]] || die "no libhotplex.so link"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
[[ "$(pkg-config --modversion hotplex)" == "$VERSION" ]] || die "pkg-config reports $(pkg-config --modversion hotplex)"
CB="$(fresh c-build)"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
cc -Wall -Wextra -Werror tests/dist/smoke.c $(pkg-config --cflags --libs hotplex) -o "$CB/smoke-pc"
readelf -d "$CB/smoke-pc" | grep -q "NEEDED.*\[libhotplex.so.$ABI\]" || die "smoke-pc does not need libhotplex.so.$ABI"
LD_LIBRARY_PATH="$PREFIX/lib" "$CB/smoke-pc" "$VERSION" "$AGENT" "$(fresh c-state1)"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror tests/dist/smoke.c $(pkg-config --cflags hotplex) \
    "$(pkg-config --variable=libdir hotplex)/libhotplex.a" -lm -ldl -lpthread -o "$CB/smoke-static"
if readelf -d "$CB/smoke-static" | grep -q libhotplex; then die "smoke-static is not static"; fi
"$CB/smoke-static" "$VERSION" "$AGENT" "$(fresh c-state2)"
cmake -S tests/dist -B "$CB/cmake" -DCMAKE_PREFIX_PATH="$PREFIX" -DHOTPLEX_WANT="$VERSION" >/dev/null
cmake --build "$CB/cmake" >/dev/null
"$CB/cmake/smoke" "$VERSION" "$AGENT" "$(fresh c-state3)"
"$CB/cmake/smoke_static" "$VERSION" "$AGENT" "$(fresh c-state4)"
echo "the examples/c way (Makefile with pkg-config; CMakeLists.txt with find_package):"
cp -R examples/c "$TMP/example-c"
make -s -C "$TMP/example-c" detector
LD_LIBRARY_PATH="$PREFIX/lib" "$TMP/example-c/detector"
cmake -S "$TMP/example-c" -B "$TMP/example-c/build" -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null
cmake --build "$TMP/example-c/build" >/dev/null
"$TMP/example-c/build/detector"

step "Go: -tags hotplex_system links the C prefix through pkg-config"
(
    cd "$GOAPP"
    export PATH="$NO_RUST_PATH" GOPROXY="file://$DIST/goproxy" GOSUMDB=off GONOSUMDB="$GO_MODULE" \
        GOFLAGS="-mod=mod -modcacherw" GOMODCACHE="$TMP/gomodcache" GOTOOLCHAIN=local CGO_ENABLED=1
    go build -tags hotplex_system -o smoke-system .
    readelf -d smoke-system | grep -q "NEEDED.*\[libhotplex.so.$ABI\]" || die "smoke-system does not need libhotplex.so.$ABI"
    LD_LIBRARY_PATH="$PREFIX/lib" ./smoke-system "$VERSION" "$AGENT" "$(fresh go-state2)"
)

step "the docs command (scripts/docs.sh)"
bash scripts/docs.sh

echo
echo "release artifacts: all installed and checked"
