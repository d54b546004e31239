"""The Python binding against the core's contract, schema/hotplex.schema.json:
every record field and error class the schema names exists here, in the
objects and in their types; the stubs type-check typical user code."""

import json
import pathlib
import subprocess
import sys
import typing

import hotplex
import hotplex._records as records
from test_engine import AGENT, ROOT

SCHEMA = json.loads((ROOT / "schema" / "hotplex.schema.json").read_text(encoding="utf-8"))
DEFS = SCHEMA["$defs"]


def _properties(definition):
    """Property names of a schema definition, following a $ref."""
    props = set(definition.get("properties", {}))
    if "$ref" in definition:
        props |= _properties(DEFS[definition["$ref"].rsplit("/", 1)[-1]])
    return props


def _typed(cls):
    return set(typing.get_type_hints(cls))


def _run_turns(tmp_path):
    seen = []
    with hotplex.Engine(binary=AGENT, default_workdir=tmp_path, can_use_tool=lambda *a: True) as eng:
        turn = eng.execute("s", "tool:ls", on_event=seen.append)
        eng.execute("s", "tool:rm -rf /", on_event=seen.append)
        try:
            eng.execute("s", "fail", on_event=seen.append)
        except hotplex.TurnFailed:
            pass
        return turn, eng.sessions()[0], eng.session_stats("s"), seen


def test_every_record_field_of_the_schema_is_in_the_objects_and_their_types(tmp_path):
    turn, info, stats, events = _run_turns(tmp_path)
    for name, obj, typed in [
        ("Turn", turn, hotplex.Turn),
        ("SessionInfo", info, hotplex.SessionInfo),
        ("SessionStats", stats, hotplex.SessionStats),
    ]:
        fields = _properties(DEFS[name])
        assert fields - _typed(typed) == set(), f"{name}: missing from the types"
        if isinstance(obj, dict):
            assert fields - set(obj) == set(), f"{name}: missing from the dict"
        else:
            assert {f for f in fields if not hasattr(obj, f)} == set(), f"{name}: missing"
            assert _typed(typed) - fields == set(), f"{name}: fields the core does not have"
    seen = {e.type for e in events}
    assert {"session_start", "tool_use", "tool_result", "danger_block", "session_stats", "error"} <= seen
    names = []
    for variant in DEFS["Event"]["oneOf"]:
        name = variant["properties"]["type"]["const"]
        names.append(name)
        fields = _properties(variant) - {"type"}
        data_type = getattr(records, "".join(w.title() for w in name.split("_")) + "Data")
        assert fields - _typed(data_type) == set(), f"event {name}: missing from {data_type}"
        for e in (e for e in events if e.type == name):
            assert set(e.data) == fields, f"event {name}"
        assert data_type in typing.get_args(records.EventData)
    assert names == SCHEMA["x-hotplex-events"] == list(typing.get_args(records.EventName))


def test_every_error_code_has_its_own_exception_class():
    for entry in SCHEMA["x-hotplex-errors"]:
        if entry["name"] == "pending":  # C's poll status, not an error
            continue
        cls = getattr(hotplex, entry["class"], None)
        assert isinstance(cls, type) and issubclass(cls, hotplex.HotplexError), entry
        assert entry["class"] in hotplex.__all__ and cls.__module__ == "hotplex"
    assert issubclass(hotplex.IoError, OSError)


def test_typical_typed_code_passes_mypy_strict(tmp_path):
    snippet = pathlib.Path(__file__).with_name("typed_usage.py")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict",
         "--cache-dir", str(tmp_path / "cache"), str(snippet)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
