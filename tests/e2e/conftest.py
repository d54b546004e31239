"""Fixtures for the end-to-end suite: the pinned Claude Code CLI (installed
by install-claude.sh) against fake_anthropic.py on 127.0.0.1, with a private
HOME / CLAUDE_CONFIG_DIR per test so nothing touches the real home."""

import os
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_anthropic import FakeAnthropic  # noqa: E402


def claude_binary() -> str:
    path = os.environ.get("CLAUDE_BIN")
    if path:
        return path
    out = subprocess.run(
        ["bash", str(HERE / "install-claude.sh")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def claude():
    return claude_binary()


@pytest.fixture(scope="session")
def api():
    with FakeAnthropic() as fake:
        yield fake


def agent_env(api, home: pathlib.Path) -> dict:
    """What the CLI needs to talk to the fake model and nothing else."""
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": api.url,
        "ANTHROPIC_API_KEY": "sk-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
    }
