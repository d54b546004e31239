"""Placement across hosts on the real Claude Code CLI: two engines stand in for two
hosts (their own HOME and CLAUDE_CONFIG_DIR, workdirs at different paths) sharing one
store directory. A session moves from one to the other with its whole conversation
(the CLI's transcript saved after each turn, written back under the other host's project
key), on the pinned CLI and the newest (FACTS.md section aa)."""

import os

import pytest

import hotplex

from conftest import agent_env


def versions():
    out = [("pinned", None)]
    if os.environ.get("CLAUDE_BIN_NEWEST"):
        out.append(("newest", os.environ["CLAUDE_BIN_NEWEST"]))
    return out


def host(claude, api, tmp_path, name, **extra):
    work = tmp_path / name / "repo dir"
    work.mkdir(parents=True)
    options = dict(
        binary=claude,
        env=agent_env(api, tmp_path / name / "home"),
        state_dir=str(tmp_path / name / "state"),
        default_workdir=str(work),
        turn_timeout=60.0,
        startup_timeout=60.0,
        placement={"owner": name, "store": str(tmp_path / "store"), "lease_ttl": 10.0},
    )
    options.update(extra)
    return options


@pytest.mark.parametrize("which", [v[0] for v in versions()])
def test_a_session_moves_between_hosts_with_its_conversation(claude, api, tmp_path, which):
    binary = dict(versions())[which] or claude
    with hotplex.Engine(**host(binary, api, tmp_path, "host-a")) as a, \
            hotplex.Engine(**host(binary, api, tmp_path, "host-b")) as b:
        a.execute("s", "remember the alamo")
        a.execute("s", "remember the maine")
        with pytest.raises(hotplex.OwnedElsewhere) as err:
            b.execute("s", "steal")
        assert err.value.owner == "host-a"
        # Host a lets the session go: host b takes it up with its history.
        assert a.release("s")
        moved = b.execute("s", "recall")
        assert moved.resumed and moved.cold_start
        assert "remember the alamo" in moved.text and "remember the maine" in moved.text
        # A drain hands it back the same way, the new turn included.
        assert b.drain(30.0) == ["s"]
        back = a.execute("s", "recall")
        assert back.resumed
        assert "remember the maine" in back.text and back.text.count("remember the alamo") == 1
