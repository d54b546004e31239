#!/usr/bin/env bash
# Builds every release artifact of hotplex for this platform (Linux x86_64,
# glibc) into dist/, with SHA256SUMS:
#
#   hotplex-<v>-cp39-abi3-manylinux2014_x86_64...whl   Python (abi3, stripped)
#   hotplex-<v>.tar.gz                                  Python sdist (builds with Rust)
#   hotplex-<v>.tgz                                     npm main package (no install script)
#   hotplex-hotplex-linux-x64-gnu-<v>.tgz               npm platform package (the addon)
#   hotplex-<v>-linux-x86_64.tar.gz                     C: relocatable prefix (lib, include,
#                                                       pkg-config, CMake config)
#   goproxy/github.com/hotplex/hotplex/bindings/go/@v/  Go: the module zip (with the header
#                                                       and libhotplex.a) as a GOPROXY tree
#
# Every native binary is linked by zig against glibc 2.17 (manylinux2014), so
# it loads on any glibc >= 2.17. The tools come from PyPI into a venv under
# target/dist-tools (maturin, ziglang, cargo-zigbuild's `zig cc`,
# auditwheel); the Rust builds go to target/dist-cargo, apart from the
# developers' target/release, because a zig-linked build and a host-linked
# build of the same target invalidate each other's artifacts. Needs cargo,
# python3 (with venv) and npm. Other platforms: CONTRIBUTING.md, "Releases".
#
# Usage: scripts/dist.sh            (from any directory; HOTPLEX_DIST_DIR=... to
#                                    write elsewhere than dist/)
# tests/run-dist.sh installs each artifact into a fresh environment and tests it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="${HOTPLEX_DIST_DIR:-$ROOT/dist}"
TOOLS="$ROOT/target/dist-tools"
STAGE="$ROOT/target/dist-stage"
TRIPLE=x86_64-unknown-linux-gnu
GLIBC=2.17
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }
die() { echo "dist.sh: $*" >&2; exit 1; }

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
    die "this script builds the linux x86_64 (glibc) artifacts; see CONTRIBUTING.md for other platforms"

VERSION="$(bash scripts/set-version.sh)"
ABI="$(sed -n 's/^pub const HOTPLEX_ABI_VERSION: u32 = \([0-9]*\);$/\1/p' hotplex-ffi/src/lib.rs)"
[[ -n "$VERSION" && -n "$ABI" ]] || die "cannot read the version or the ABI version"
HOMEPAGE="$(sed -n '/^\[workspace.package\]/,/^\[/s/^homepage = "\(.*\)"/\1/p' Cargo.toml)"
DESCRIPTION="$(sed -n 's/^description = "\(.*\)"/\1/p' bindings/python/pyproject.toml)"
# Reproducible archives: file times are the last commit's (or a fixed date).
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1767225600)}"
echo "hotplex $VERSION (C ABI $ABI) -> $DIST"

step "release tools (PyPI, pinned) in $TOOLS"
# maturin builds the wheel and the sdist; ziglang is the linker that reaches
# glibc 2.17; cargo-zigbuild provides the `zig cc` front end rustc links
# with; auditwheel confirms the wheel's manylinux tag.
TOOL_PINS=(maturin==1.16.0 ziglang==0.17.0 cargo-zigbuild==0.24.0 auditwheel==6.8.2)
if ! "$TOOLS/bin/python" -m pip show -q "${TOOL_PINS[@]%%==*}" >/dev/null 2>&1 ||
    [[ "$("$TOOLS/bin/maturin" --version 2>/dev/null)" != "maturin 1.16.0" ]]; then
    rm -rf "$TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install --disable-pip-version-check -q "${TOOL_PINS[@]}"
fi
export PATH="$TOOLS/bin:$PATH"

# One linker for every build (the same path, so cargo reuses artifacts
# between the three builds): zig cc targeting glibc 2.17.
mkdir -p "$TOOLS/zig"
ZIGCC="$TOOLS/zig/cc-$TRIPLE.$GLIBC"
cat >"$ZIGCC.tmp" <<EOF
#!/bin/sh
export CARGO_ZIGBUILD_ZIG_COMMAND="$TOOLS/bin/python3"
export CARGO_ZIGBUILD_ZIG_COMMAND_ARGS='-m ziglang'
exec "$TOOLS/bin/cargo-zigbuild" zig cc -- -g -fno-sanitize=all -target x86_64-linux-gnu.$GLIBC "\$@"
EOF
chmod +x "$ZIGCC.tmp"
cmp -s "$ZIGCC.tmp" "$ZIGCC" && rm "$ZIGCC.tmp" || mv "$ZIGCC.tmp" "$ZIGCC"
export CARGO_TARGET_DIR="$ROOT/target/dist-cargo"
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER="$ZIGCC"
# Released binaries are stripped: no debug info to build in the first place.
export CARGO_PROFILE_RELEASE_DEBUG=false
OUT="$CARGO_TARGET_DIR/$TRIPLE/release"

rm -rf "$DIST" "$STAGE"
mkdir -p "$DIST" "$STAGE"

glibc_floor() { objdump -T "$1" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1; }
check_floor() {
    local floor
    floor="$(glibc_floor "$1")"
    [[ "$(printf '%s\n' "$floor" "GLIBC_$GLIBC" | sort -V | tail -n 1)" == "GLIBC_$GLIBC" ]] ||
        die "$1 needs $floor (> $GLIBC)"
    echo "$(basename "$1"): needs $floor"
}

step "cargo build --release --locked -p hotplex-ffi -p hotplex-node (zig, glibc $GLIBC)"
cargo build --release --locked --target "$TRIPLE" -p hotplex-ffi -p hotplex-node
check_floor "$OUT/libhotplex.so"
check_floor "$OUT/libhotplex_node.so"
readelf -d "$OUT/libhotplex.so" | grep -q "SONAME.*\[libhotplex.so.$ABI\]" ||
    die "libhotplex.so has no SONAME libhotplex.so.$ABI"

step "Python: wheel (maturin, manylinux2014, stripped) and sdist"
maturin build --release --locked --strip --compatibility manylinux2014 --target "$TRIPLE" \
    -m bindings/python/Cargo.toml --out "$DIST"
maturin sdist -m bindings/python/Cargo.toml --out "$DIST" 2>&1 | grep -v '^warning: manifest has no\|^  |\|^  = note' || true
WHEEL="$(ls "$DIST"/hotplex-"$VERSION"-*.whl)"
auditwheel show "$WHEEL" | tee "$STAGE/auditwheel.txt"
grep -q 'manylinux_2_17_x86_64' "$STAGE/auditwheel.txt" || die "auditwheel does not agree on manylinux_2_17"

step "C: the library as a relocatable prefix"
C_NAME="hotplex-$VERSION-linux-x86_64"
P="$STAGE/$C_NAME"
mkdir -p "$P/include" "$P/lib/pkgconfig" "$P/lib/cmake/hotplex" "$P/share/doc/hotplex"
cp include/hotplex.h "$P/include/"
cp "$OUT/libhotplex.so" "$P/lib/libhotplex.so.$ABI"
strip --strip-unneeded "$P/lib/libhotplex.so.$ABI"
ln -s "libhotplex.so.$ABI" "$P/lib/libhotplex.so"
cp "$OUT/libhotplex.a" "$P/lib/libhotplex.a"
strip --strip-debug "$P/lib/libhotplex.a"
fill() {
    sed -e "s|@VERSION@|$VERSION|g" -e "s|@ABI@|$ABI|g" -e "s|@HOMEPAGE@|$HOMEPAGE|g" \
        -e "s|@DESCRIPTION@|$DESCRIPTION|g" \
        -e "s|@VERSION_MAJOR@|${VERSION%%.*}|g" \
        -e "s|@VERSION_MINOR@|$(cut -d. -f2 <<<"$VERSION")|g" "$1"
}
fill hotplex-ffi/pkg/hotplex.pc.in >"$P/lib/pkgconfig/hotplex.pc"
fill hotplex-ffi/pkg/hotplexConfig.cmake.in >"$P/lib/cmake/hotplex/hotplexConfig.cmake"
fill hotplex-ffi/pkg/hotplexConfigVersion.cmake.in >"$P/lib/cmake/hotplex/hotplexConfigVersion.cmake"
cp README.md LICENSE CHANGELOG.md "$P/share/doc/hotplex/"
tar_dir() { # <archive> <dir> <name>: a reproducible .tar.gz
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -C "$2" -cf - "$3" | gzip -9n >"$1"
}
tar_dir "$DIST/$C_NAME.tar.gz" "$STAGE" "$C_NAME"
ls -l "$P/lib"

step "Node: the main package and the linux-x64-gnu platform package (npm pack)"
NODE_TRIPLE=linux-x64-gnu
PLATFORM_PKG="$(node -p "require('./bindings/node/npm/$NODE_TRIPLE/package.json').name")"
N="$STAGE/npm/$NODE_TRIPLE"
mkdir -p "$N"
cp "bindings/node/npm/$NODE_TRIPLE/package.json" LICENSE "$N/"
cp "$OUT/libhotplex_node.so" "$N/hotplex.$NODE_TRIPLE.node"
strip --strip-unneeded "$N/hotplex.$NODE_TRIPLE.node"
printf '# %s\n\nThe prebuilt native addon of [hotplex](%s) for Linux x64 (glibc >= %s).\nInstall `hotplex`, which depends on this package optionally; npm picks the one for your platform.\n' \
    "$PLATFORM_PKG" "$HOMEPAGE" "$GLIBC" >"$N/README.md"
M="$STAGE/npm/hotplex"
mkdir -p "$M/scripts"
cp bindings/node/index.js bindings/node/index.mjs bindings/node/index.d.ts bindings/node/platform.js "$M/"
cp bindings/node/scripts/install.js "$M/scripts/"
cp README.md LICENSE "$M/"
# The published manifest: the source tree's, with the platform packages as
# optional dependencies and without scripts (no install script runs for
# users; scripts/install.js stays in the package for the error message's
# build-from-source instructions) or devDependencies.
node - "$ROOT/bindings/node/package.json" "$M/package.json" "$PLATFORM_PKG" "$VERSION" <<'EOF'
const fs = require('node:fs')
const [src, dest, platformPkg, version] = process.argv.slice(2)
const pkg = JSON.parse(fs.readFileSync(src, 'utf8'))
if (pkg.version !== version) throw new Error(`package.json has ${pkg.version}, the workspace ${version}`)
delete pkg.scripts
delete pkg.devDependencies
pkg.files = pkg.files.filter((f) => !f.endsWith('.node'))
pkg.optionalDependencies = { [platformPkg]: version }
fs.writeFileSync(dest, JSON.stringify(pkg, null, 2) + '\n')
EOF
for dir in "$N" "$M"; do
    (cd "$dir" && npm pack --silent --ignore-scripts --pack-destination "$DIST" >/dev/null)
done
ls -l "$DIST"/*.tgz

step "Go: the module zip (header and static library included) as a file-system GOPROXY"
GO_MODULE="$(sed -n 's/^module //p' bindings/go/go.mod)"
GO_LIB="$STAGE/go/libhotplex.a"
mkdir -p "$STAGE/go"
cp "$P/lib/libhotplex.a" "$GO_LIB"
# The module's files: what git tracks (or would) under bindings/go, less the
# nested modules (their own go.mod), plus the header, the library and LICENSE.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -co --exclude-standard -- bindings/go >"$STAGE/go/files"
else
    (find bindings/go -type f | sort) >"$STAGE/go/files"
fi
python3 - "$GO_MODULE" "v$VERSION" "$DIST/goproxy" "$STAGE/go/files" "$GO_LIB" "$SOURCE_DATE_EPOCH" <<'EOF'
import datetime, json, os, pathlib, sys, zipfile
module, version, proxy, listing, lib, epoch = sys.argv[1:7]
root = pathlib.Path("bindings/go")
files = [pathlib.Path(l) for l in open(listing).read().splitlines() if l]
nested = {f.parent for f in files if f.name == "go.mod" and f.parent != root}
entries = {}
for f in files:
    if not f.is_file() or any(n in f.parents for n in nested):
        continue
    entries[f.relative_to(root).as_posix()] = f
entries["include/hotplex.h"] = pathlib.Path("include/hotplex.h")
entries["lib/linux_amd64/libhotplex.a"] = pathlib.Path(lib)
entries["LICENSE"] = pathlib.Path("LICENSE")
lower = {}
for name in entries:  # the go command refuses names that differ only in case
    if name.lower() in lower:
        sys.exit(f"case-insensitive duplicate in the module: {name}")
    lower[name.lower()] = name
at = pathlib.Path(proxy, *module.split("/"), "@v")
at.mkdir(parents=True, exist_ok=True)
stamp = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
date = stamp.timetuple()[:6]
with zipfile.ZipFile(at / f"{version}.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for name in sorted(entries):
        info = zipfile.ZipInfo(f"{module}@{version}/{name}", date_time=date)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        z.writestr(info, entries[name].read_bytes())
(at / f"{version}.mod").write_bytes((root / "go.mod").read_bytes())
(at / f"{version}.info").write_text(json.dumps(
    {"Version": version, "Time": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n")
(at / "list").write_text(version + "\n")
print(f"{module}@{version}: {len(entries)} files, {os.path.getsize(at / f'{version}.zip')} bytes zipped")
EOF

step "SHA256SUMS"
(cd "$DIST" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
cat "$DIST/SHA256SUMS"
echo
echo "dist.sh: hotplex $VERSION built into $DIST"
