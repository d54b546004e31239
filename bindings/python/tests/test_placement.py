"""Placement across hosts through Python: two engines stand in for two hosts,
sharing one store directory, each with its own CLAUDE_CONFIG_DIR and workdir
path (the reference agent keeps CLI-style transcripts there). The semantics
are tested in Rust (tests/reference-agent/tests/placement.rs); this checks the
binding: the option, owns/adopt/release/drain/load, OwnedElsewhere.owner,
Fenced, and the asyncio engine."""

import asyncio

import pytest

import hotplex

from test_engine import AGENT


def _host(tmp_path, name, **extra):
    config = tmp_path / name / "config"
    work = tmp_path / name / "work dir"
    config.mkdir(parents=True)
    work.mkdir(parents=True)
    options = dict(
        binary=AGENT,
        env={"CLAUDE_CONFIG_DIR": str(config)},
        default_workdir=str(work),
        state_dir=str(tmp_path / name / "state"),
        turn_timeout=20.0,
        placement={"owner": name, "store": str(tmp_path / "store"), "lease_ttl": 10.0},
    )
    options.update(extra)
    return options


def test_a_released_session_moves_to_another_host_with_its_history(tmp_path):
    with hotplex.Engine(**_host(tmp_path, "host-a")) as a, \
            hotplex.Engine(**_host(tmp_path, "host-b")) as b:
        a.execute("s1", "apples")
        a.execute("s1", "pears")
        assert a.owns("s1") and not b.owns("s1")
        with pytest.raises(hotplex.OwnedElsewhere) as err:
            b.execute("s1", "steal")
        assert err.value.owner == "host-a"
        assert a.release("s1") is True
        assert a.release("s1") is False
        moved = b.execute("s1", "recall")
        assert moved.resumed and moved.text == "history: apples | pears"
        assert b.owns("s1") and not a.owns("s1")


def test_drain_hands_every_session_over_and_load_reports_it(tmp_path):
    with hotplex.Engine(**_host(tmp_path, "host-a")) as a, \
            hotplex.Engine(**_host(tmp_path, "host-b")) as b:
        for i in range(3):
            a.execute(f"d{i}", f"hello {i}")
        load = a.load()
        assert load["sessions"] == 3 and load["draining"] is False
        assert load["agent_memory_bytes"] > 0
        assert a.drain(10.0) == ["d0", "d1", "d2"]
        assert a.load()["draining"] is True
        with pytest.raises(hotplex.CapacityExceeded):
            a.execute("new", "x")
        b.adopt("d1")
        assert b.owns("d1")
        assert b.execute("d1", "recall").text == "history: hello 1"


def test_placement_needs_the_option_and_a_valid_owner(tmp_path):
    with hotplex.Engine(binary=AGENT, default_workdir=str(tmp_path)) as plain:
        assert plain.owns("anything") is True
        with pytest.raises(hotplex.InvalidConfig):
            plain.adopt("s")
        with pytest.raises(hotplex.InvalidConfig):
            plain.release("s")
        with pytest.raises(hotplex.InvalidConfig):
            plain.drain(1.0)
        with pytest.raises(hotplex.InvalidArgument):
            plain.drain(-1.0)
    with pytest.raises(hotplex.InvalidConfig):
        hotplex.Engine(**_host(tmp_path, "x", placement={"owner": "two words",
                                                         "store": str(tmp_path / "s")}))


def test_the_async_engine_releases_and_drains(tmp_path):
    async def main():
        async with hotplex.AsyncEngine(**_host(tmp_path, "host-a")) as a:
            await a.execute("s", "one")
            assert a.owns("s")
            assert await a.release("s") is True
            await a.execute("t", "two")
            assert await a.drain(5.0) == ["t"]
            assert a.load()["draining"] is True

    asyncio.run(main())
