#!/usr/bin/env bash
# Renders the API documentation of every language into target/doc-site/:
#
#   rust/    rustdoc of hotplex-core and hotplex-ffi (RUSTDOCFLAGS=-D warnings:
#            a broken intra-doc link fails this script)
#   python/  pdoc of the installed `hotplex` package (docstrings, and the type
#            stubs of the native module)
#   node/    TypeDoc of bindings/node/index.d.ts (warnings fail it too)
#   go/      `go doc -all` of bindings/go and bindings/go/promcollector
#   index.html linking them.
#
# The tools come from the registries (pinned): pdoc into a venv under
# target/docs-tools, typedoc and typescript into target/docs-tools/node.
# Python needs the package built: the wheel in dist/ (scripts/dist.sh) when
# there is one for this version, otherwise the package is built from
# bindings/python (pip; needs cargo).
#
# Usage: scripts/docs.sh            (from any directory)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SITE="$ROOT/target/doc-site"
TOOLS="$ROOT/target/docs-tools"
VERSION="$(bash scripts/set-version.sh)"
export CARGO_TARGET_DIR="$ROOT/target"

step() { printf '\n==> %s\n' "$*"; }

rm -rf "$SITE"
mkdir -p "$SITE/go"

step "rustdoc (hotplex-core, hotplex-ffi; warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc -q --no-deps -p hotplex-core -p hotplex-ffi
cp -R "$ROOT/target/doc" "$SITE/rust"

step "Python: pdoc"
# prometheus_client: the optional dependency PrometheusCollector's types name.
if [[ ! -x "$TOOLS/venv/bin/pdoc" ]]; then
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/python" -m pip install --disable-pip-version-check -q 'pdoc==16.0.0' \
        'prometheus-client>=0.20'
fi
PY="$TOOLS/venv/bin/python"
WHEEL="$(ls -t "$ROOT"/dist/hotplex-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -n "$WHEEL" ]]; then
    "$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps "$WHEEL"
else
    "$PY" -m pip install --disable-pip-version-check -q --force-reinstall --no-deps ./bindings/python
fi
# From another directory, so the installed package is documented, not the
# source tree's python/ folder.
(cd "$TOOLS" && "$PY" -m pdoc --docformat markdown --footer-text "hotplex $VERSION" \
    -o "$SITE/python" hotplex)

step "Node: TypeDoc of index.d.ts"
NODE_TOOLS="$TOOLS/node"
if [[ ! -x "$NODE_TOOLS/node_modules/.bin/typedoc" ]]; then
    mkdir -p "$NODE_TOOLS"
    (cd "$NODE_TOOLS" && npm install --silent --no-audit --no-fund --no-save --ignore-scripts \
        typedoc@0.28.20 typescript@5.9.3 >/dev/null)
fi
TD="$TOOLS/typedoc-work"
rm -rf "$TD"
mkdir -p "$TD"
cp bindings/node/index.d.ts "$TD/index.d.ts"
cat >"$TD/tsconfig.json" <<'EOF'
{ "compilerOptions": { "strict": true, "lib": ["es2022"], "types": [], "noEmit": true },
  "files": ["index.d.ts"] }
EOF
(cd "$TD" && "$NODE_TOOLS/node_modules/.bin/typedoc" --tsconfig tsconfig.json \
    --entryPoints index.d.ts --name "hotplex (Node) $VERSION" --treatWarningsAsErrors --disableSources \
    --readme none --out "$SITE/node")

step "Go: go doc -all"
html_pre() { # <title> <text file> <html file>
    python3 - "$@" <<'EOF'
import html, sys
title, src, dest = sys.argv[1:4]
text = open(src, encoding="utf-8").read()
open(dest, "w", encoding="utf-8").write(
    f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
    f"<h1>{html.escape(title)}</h1><pre>{html.escape(text)}</pre>\n")
EOF
}
(cd bindings/go && go doc -all . >"$SITE/go/hotplex.txt")
(cd bindings/go/promcollector && go doc -all . >"$SITE/go/promcollector.txt")
[[ -s "$SITE/go/hotplex.txt" && -s "$SITE/go/promcollector.txt" ]]
html_pre "package hotplex (Go) $VERSION" "$SITE/go/hotplex.txt" "$SITE/go/hotplex.html"
html_pre "package promcollector (Go) $VERSION" "$SITE/go/promcollector.txt" "$SITE/go/promcollector.html"

cat >"$SITE/index.html" <<EOF
<!doctype html>
<meta charset="utf-8">
<title>hotplex $VERSION API documentation</title>
<h1>hotplex $VERSION: API documentation</h1>
<ul>
  <li>Rust: <a href="rust/hotplex_core/index.html">hotplex_core</a>,
      the C ABI crate <a href="rust/hotplex/index.html">hotplex-ffi</a>
      (the C header is <code>include/hotplex.h</code>)</li>
  <li>Python: <a href="python/hotplex.html">hotplex</a></li>
  <li>Node: <a href="node/index.html">hotplex</a> (TypeScript declarations)</li>
  <li>Go: <a href="go/hotplex.html">hotplex</a>,
      <a href="go/promcollector.html">promcollector</a></li>
</ul>
EOF
for page in rust/hotplex_core/index.html rust/hotplex/index.html python/hotplex.html \
    node/index.html go/hotplex.html go/promcollector.html; do
    [[ -s "$SITE/$page" ]] || { echo "docs.sh: $page was not written" >&2; exit 1; }
done
echo
echo "docs: $SITE/index.html"
