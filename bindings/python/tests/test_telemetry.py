"""Telemetry of hotplex.Engine against the reference agent: the metrics text
parsed by prometheus_client's OpenMetrics parser moves exactly as the
scripted scenario of tests/reference-agent/tests/telemetry.rs says, the
collector puts the families into a prometheus_client registry, the observer
receives typed records off the hot path, and the log bridge feeds the
logging module.

prometheus_client is a test dependency only (tests/run-python.sh installs it).
"""

import dataclasses
import gc
import logging
import subprocess
import sys
import threading
import time
import typing
import weakref

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import hotplex
from test_contract import DEFS, _conforms, _properties
from test_engine import AGENT

WAIT = 10.0  # seconds to wait for records delivered asynchronously


def _engine(tmp_path, **options):
    return hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": str(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        interrupt_grace=2.0,
        **options,
    )


def _samples(text):
    """Every sample of the OpenMetrics text, parsed by prometheus_client:
    (name, sorted label pairs) -> value."""
    assert text.endswith("# EOF\n")
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _get(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _run_scenario(engine):
    """max_sessions 1: three ok turns on "a", a WAF-blocked prompt, a
    timeout, a crash, an ok turn that resumes "a", and one on "b" that
    evicts it."""
    for _ in range(3):
        assert engine.execute("a", "hello").text == "echo: hello"
    with pytest.raises(hotplex.DangerBlocked):
        engine.execute("a", "run this: rm -rf /")
    with pytest.raises(hotplex.TurnTimeout):
        engine.execute("a", "stall:5000", timeout=0.3)
    with pytest.raises(hotplex.SessionDead):
        engine.execute("a", "crash")
    assert engine.execute("a", "hello").resumed
    engine.execute("b", "hello")


def test_the_scripted_scenario_moves_every_counter_exactly_and_the_observer_sees_it(tmp_path):
    records = []
    engine = _engine(tmp_path, max_sessions=1, observer=records.append)
    _run_scenario(engine)

    m = _samples(engine.metrics_text())
    assert _get(m, "hotplex_turns_total", outcome="ok") == 5, m
    assert _get(m, "hotplex_turns_total", outcome="blocked") == 1
    assert _get(m, "hotplex_turns_total", outcome="timeout") == 1
    assert _get(m, "hotplex_turns_total", outcome="dead") == 1
    assert _get(m, "hotplex_turns_total", outcome="failed") == 0
    assert _get(m, "hotplex_session_starts_total", mode="fresh") == 2
    assert _get(m, "hotplex_session_starts_total", mode="resume") == 1
    assert _get(m, "hotplex_session_exits_total", reason="crashed") == 1
    assert _get(m, "hotplex_session_exits_total", reason="evicted") == 1
    assert _get(m, "hotplex_capacity_rejections_total") == 0
    assert _get(m, "hotplex_waf_checks_total", source="prompt") == 8
    blocks = {"category": "file_delete", "level": "critical", "source": "prompt"}
    assert _get(m, "hotplex_waf_blocks_total", **blocks) == 1
    # Turns that ran: 5 ok, the timeout and the crash.
    assert _get(m, "hotplex_turn_duration_seconds_count") == 7
    assert _get(m, "hotplex_cold_start_seconds_count") == 3
    assert _get(m, "hotplex_cost_usd_total") == pytest.approx(0.005, abs=1e-9)
    assert _get(m, "hotplex_sessions", status="ready") == 1
    assert _get(m, "hotplex_sessions", status="busy") == 0
    assert _get(m, "hotplex_agent_memory_bytes") > 0
    assert _get(m, "hotplex_tokens_total", kind="input") > 0
    assert any(name == "hotplex_build_info" for name, _ in m)

    engine.close()
    m = _samples(engine.metrics_text())
    assert _get(m, "hotplex_session_exits_total", reason="closed") == 1
    assert _get(m, "hotplex_sessions", status="ready") == 0

    # The observer saw the same story, in order, as typed records.
    def exits():
        return [r.reason for r in records if isinstance(r, hotplex.SessionExited)]

    assert _wait_for(lambda: len(exits()) == 3), records
    assert exits() == ["crashed", "evicted", "closed"]
    outcomes = [r.outcome for r in records if isinstance(r, hotplex.TurnFinished)]
    assert outcomes == ["ok", "ok", "ok", "blocked", "timeout", "dead", "ok", "ok"]
    first, second = records[0], records[1]
    assert isinstance(first, hotplex.WafVerdict)
    assert (first.type, first.source, first.session_id) == ("waf_verdict", "prompt", "a")
    assert isinstance(second, hotplex.SessionStarted) and second.mode == "fresh" and second.pid > 0
    assert any(isinstance(r, hotplex.WafVerdict) and r.blocked for r in records)
    ok = next(r for r in records if isinstance(r, hotplex.TurnFinished))
    assert ok.cost_usd == pytest.approx(0.001) and ok.duration_ms > 0 and ok.output_tokens > 0
    modes = [r.mode for r in records if isinstance(r, hotplex.SessionStarted)]
    assert modes == ["fresh", "resume", "fresh"]


def test_lifecycle_records_hold_every_schema_field_with_its_annotated_type(tmp_path):
    records = []
    with _engine(tmp_path, observer=records.append, can_use_tool=lambda *a: True,
                 prewarm=[{"spares": 1}]) as engine:
        # Its first turn takes a ready spare: a spare_claimed record too.
        assert _wait_for(lambda: 'hotplex_spares{status="ready"} 1' in engine.metrics_text())
        engine.execute("s", "tool:ls")
        with pytest.raises(hotplex.DangerBlocked):
            engine.execute("s", "run this: rm -rf /")
    variants = {v["properties"]["type"]["const"]: v for v in DEFS["LifecycleRecord"]["oneOf"]}
    assert _wait_for(lambda: {r.type for r in records} == set(variants)), records
    for i, record in enumerate(records):
        fields = {f.name for f in dataclasses.fields(record)}
        assert fields == _properties(variants[record.type]), record.type
        _conforms(record, type(record), f"records[{i}]")
    assert set(typing.get_args(hotplex.LifecycleRecord)) == {type(r) for r in records}


def test_lifecycle_records_are_frozen_dataclasses_tagged_by_type():
    record = hotplex.TurnFinished(
        session_id="s", outcome="ok", duration_ms=1.0, queued_ms=0.0,
        input_tokens=1, output_tokens=2, cost_usd=0.5,
    )
    assert record.type == "turn_finished"
    assert dataclasses.asdict(record)["type"] == "turn_finished"
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.outcome = "failed"
    tags = {cls.type for cls in (hotplex.SessionStarted, hotplex.SessionExited,
                                 hotplex.TurnFinished, hotplex.WafVerdict,
                                 hotplex.ProcessSignalled)}
    assert tags == {"session_started", "session_exited", "turn_finished", "waf_verdict",
                    "process_signalled"}


def test_metrics_snapshot_holds_the_families_of_the_text(tmp_path):
    with _engine(tmp_path) as engine:
        engine.execute("s", "hello")
        snapshot = engine.metrics_snapshot()
    families = {f["name"]: f for f in snapshot}
    turns = families["hotplex_turns_total"]
    assert turns["type"] == "counter" and turns["help"]
    ok = [s for s in turns["samples"] if s["labels"] == {"outcome": "ok"}]
    assert ok == [{"name": "hotplex_turns_total", "labels": {"outcome": "ok"}, "value": 1.0}]
    assert "hotplex_observer_dropped_total" in families


def test_the_collector_puts_the_engines_families_into_a_prometheus_registry(tmp_path):
    with _engine(tmp_path) as engine:
        engine.execute("s", "hello")
        registry = CollectorRegistry()
        registry.register(hotplex.PrometheusCollector(engine))
        text = generate_latest(registry).decode()
        assert 'hotplex_turns_total{outcome="ok"} 1.0' in text, text
        assert "# TYPE hotplex_turn_duration_seconds histogram" in text
        assert "hotplex_build_info{" in text
        engine.execute("s", "hello")  # each scrape reads the engine anew
        assert 'hotplex_turns_total{outcome="ok"} 2.0' in generate_latest(registry).decode()
        # describe() names the families (from the schema), so a second
        # engine's collector clashes instead of duplicating every series.
        with pytest.raises(ValueError, match="hotplex_turns"):
            registry.register(hotplex.PrometheusCollector(engine))
        only = generate_latest(registry.restricted_registry(["hotplex_turns_total"])).decode()
        assert 'hotplex_turns_total{outcome="ok"} 2.0' in only


def test_hotplex_imports_without_prometheus_client():
    check = "import sys, hotplex; assert 'prometheus_client' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_raising_observer_loses_only_its_record_and_never_breaks_turns(tmp_path):
    seen, reported = [], []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: reported.append(u.exc_value)

    def observer(record):
        seen.append(record)
        if isinstance(record, hotplex.TurnFinished):
            raise RuntimeError("observer bug")

    try:
        with _engine(tmp_path, observer=observer) as engine:
            assert engine.execute("s", "hello").text == "echo: hello"
            assert engine.execute("s", "hello").text == "echo: hello"
        # Records after the failing ones still arrive (the session's exit).
        assert _wait_for(lambda: any(isinstance(r, hotplex.SessionExited) for r in seen))
        assert _wait_for(lambda: len(reported) == 2)
    finally:
        sys.unraisablehook = old
    assert all(isinstance(e, RuntimeError) for e in reported)
    assert [type(r).__name__ for r in seen][:3] == ["WafVerdict", "SessionStarted", "TurnFinished"]


def test_a_slow_observer_drops_records_counted_in_the_metric_and_never_stalls_turns(tmp_path):
    release = threading.Event()
    delivered = []

    def slow(record):
        delivered.append(record)
        release.wait(0.1)  # 0.1 s a record, until the test is done

    blocked = 600  # two records each (a WAF verdict, a blocked turn): past the 1024 queue
    with _engine(tmp_path, observer=slow) as engine:
        assert engine.execute("s", "hello").text == "echo: hello"
        started = time.monotonic()
        for _ in range(blocked):
            with pytest.raises(hotplex.DangerBlocked):
                engine.execute("s", "run this: rm -rf /")
        elapsed = time.monotonic() - started
        # Waiting for the observer would take 2 * 600 * 0.1 s = 120 s.
        assert elapsed < 10, elapsed
        started = time.monotonic()
        assert engine.execute("s", "hello").text == "echo: hello"
        assert time.monotonic() - started < 5
        m = _samples(engine.metrics_text())
        dropped = _get(m, "hotplex_observer_dropped_total")
        assert dropped > 0, "the queue never filled"
        release.set()
        # Every record was delivered or counted as dropped: none went missing.
        # The two ok turns made 3 + 2 records.
        total = 5 + 2 * blocked
        assert _wait_for(lambda: len(delivered) + dropped == total), (len(delivered), dropped)
    assert ("hotplex_observer_dropped_total", ()) in m


def test_an_engine_whose_observer_holds_it_is_garbage_collected(tmp_path):
    records = []

    class Owner:
        def __init__(self):
            self.engine = _engine(tmp_path, observer=self.on_record)

        def on_record(self, record):
            # Not self's attributes: records still queued may arrive after
            # the collector cleared them.
            records.append(record)

    owner = Owner()
    owner.engine.execute("s", "hello")
    assert _wait_for(lambda: len(records) >= 3)
    owner.engine.close()
    gone = weakref.ref(owner)
    del owner
    gc.collect()
    assert gone() is None, "the cycle through the observer was not collected"


def test_the_observer_must_be_callable(tmp_path):
    with pytest.raises(TypeError, match="observer must be callable"):
        _engine(tmp_path, observer=42)


@pytest.fixture
def bridge():
    yield hotplex
    hotplex.disable_logging()


def test_enable_logging_forwards_info_records_with_their_session_id(tmp_path, caplog, bridge):
    caplog.set_level(logging.INFO, logger="hotplex")
    bridge.enable_logging(logging.INFO)
    with _engine(tmp_path) as engine:
        engine.execute("s", "hello")

        def ours(prefix):
            return [r for r in caplog.records
                    if r.name == "hotplex" and r.getMessage().startswith(prefix)]

        assert _wait_for(lambda: ours("turn ended") and ours("agent started")), caplog.records
    started, ended = ours("agent started")[0], ours("turn ended")[0]
    assert started.levelno == logging.INFO and started.session_id == "s"
    assert ended.session_id == "s" and "outcome=\"ok\"" in ended.getMessage()
    assert ended.target.startswith("hotplex")


def test_agent_stderr_goes_to_the_hotplex_agent_logger_at_debug(tmp_path, caplog, bridge):
    caplog.set_level(logging.DEBUG, logger="hotplex")
    bridge.enable_logging("DEBUG")
    with _engine(tmp_path, args=["--exit-at-start"]) as engine:
        with pytest.raises(hotplex.StartFailed):
            engine.execute("s", "hello")

        def stderr():
            return [r for r in caplog.records if r.name == "hotplex.agent"
                    and "told to exit at start" in r.getMessage()]

        assert _wait_for(stderr), caplog.records
    assert stderr()[0].levelno == logging.DEBUG and stderr()[0].session_id == "s"


def test_disable_logging_stops_the_bridge(tmp_path, caplog, bridge):
    caplog.set_level(logging.DEBUG, logger="hotplex")
    bridge.enable_logging(logging.DEBUG)
    bridge.disable_logging()
    with _engine(tmp_path) as engine:
        engine.execute("s", "hello")
    time.sleep(0.3)
    assert not [r for r in caplog.records if r.name.startswith("hotplex")]


def test_enable_logging_rejects_an_unknown_level_name(bridge):
    with pytest.raises(ValueError, match="unknown logging level"):
        bridge.enable_logging("LOUD")
