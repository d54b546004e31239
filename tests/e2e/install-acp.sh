#!/usr/bin/env bash
# Idempotent installer of the pinned ACP agents used by tests/e2e/acp_probe.py, each into
# its own private npm prefix under target/acp-agents/ (nothing global is touched):
#   opencode-ai@1.18.33        -> target/acp-agents/opencode-1.18.33/  (`opencode acp`)
#   @google/gemini-cli@0.61.0  -> target/acp-agents/gemini-0.61.0/     (`gemini --acp`)
# OPENCODE_VERSION=X / GEMINI_CLI_VERSION=X pick other versions (installed beside them).
# ACP_AGENTS=opencode (or gemini) installs only that one.
# Prints the absolute path of each command on stdout, one line each, as `name path`
# (opencode first, then gemini); everything else goes to stderr.
set -euo pipefail

OPENCODE_PINNED=1.18.33
GEMINI_PINNED=0.61.0
OPENCODE_VERSION="${OPENCODE_VERSION:-$OPENCODE_PINNED}"
GEMINI_VERSION="${GEMINI_CLI_VERSION:-$GEMINI_PINNED}"
WANT="${ACP_AGENTS:-opencode gemini}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="$ROOT/target/acp-agents"

# installed_version <bin> <package dir>: the version of an installed package whose command
# exists (read from its package.json: `gemini --version` alone takes ~5 s).
installed_version() {
    [ -x "$1" ] && [ -f "$2/package.json" ] || return 1
    node -p 'require(process.argv[1]).version' "$2/package.json" 2>/dev/null
}

# install <name> <npm package> <version> <bin name>: prints `name path`.
install() {
    local name="$1" pkg="$2" version="$3" binname="$4"
    local prefix="$BASE/$name-$version"
    local bin="$prefix/node_modules/.bin/$binname"
    if [ "$(installed_version "$bin" "$prefix/node_modules/$pkg" || true)" = "$version" ]; then
        echo "$name $version already installed" >&2
    else
        command -v npm >/dev/null 2>&1 || { echo "install-acp.sh: npm not found" >&2; exit 1; }
        mkdir -p "$prefix"
        echo "installing $pkg@$version into $prefix" >&2
        npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error \
            "$pkg@$version" >&2
        local got
        # Now ask the command itself (scratch HOME: a version check writes nothing real).
        local scratch
        scratch="$(mktemp -d)"
        got="$(HOME="$scratch" XDG_CONFIG_HOME="$scratch/.config" XDG_DATA_HOME="$scratch/.local/share" \
            XDG_CACHE_HOME="$scratch/.cache" XDG_STATE_HOME="$scratch/.local/state" \
            timeout 60 "$bin" --version </dev/null 2>/dev/null | head -n1 | awk '{print $NF}' || true)"
        rm -rf "$scratch"
        if [ "$got" != "$version" ]; then
            echo "install-acp.sh: expected $name $version, got '${got:-nothing}'" >&2
            exit 1
        fi
    fi
    echo "$name $bin"
}

for agent in $WANT; do
    case "$agent" in
        opencode) install opencode opencode-ai "$OPENCODE_VERSION" opencode ;;
        gemini) install gemini @google/gemini-cli "$GEMINI_VERSION" gemini ;;
        *) echo "install-acp.sh: unknown agent '$agent' (opencode, gemini)" >&2; exit 2 ;;
    esac
done
