#!/usr/bin/env bash
# Idempotent installer of the pinned Claude Code CLI into tests/e2e/.claude-cli/
# (a private npm prefix; nothing global is touched). CLAUDE_CLI_VERSION=X picks
# another version, installed beside it into tests/e2e/.claude-cli-X/.
# Prints the absolute path of the `claude` binary on its last stdout line.
set -euo pipefail

PINNED=2.1.197
VERSION="${CLAUDE_CLI_VERSION:-$PINNED}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="$HERE/.claude-cli"
[ "$VERSION" = "$PINNED" ] || PREFIX="$HERE/.claude-cli-$VERSION"
BIN="$PREFIX/node_modules/.bin/claude"

installed_version() {
    [ -x "$BIN" ] || return 1
    "$BIN" --version 2>/dev/null | head -n1 | awk '{print $1}'
}

if [ "$(installed_version || true)" = "$VERSION" ]; then
    echo "claude $VERSION already installed" >&2
else
    command -v npm >/dev/null 2>&1 || { echo "install-claude.sh: npm not found" >&2; exit 1; }
    mkdir -p "$PREFIX"
    echo "installing @anthropic-ai/claude-code@$VERSION into $PREFIX" >&2
    npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$VERSION" >&2
    got="$(installed_version || true)"
    if [ "$got" != "$VERSION" ]; then
        echo "install-claude.sh: expected claude $VERSION, got '${got:-nothing}'" >&2
        exit 1
    fi
fi

echo "$BIN"
