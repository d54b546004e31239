"""The Python binding against the core's contract, schema/hotplex.schema.json.

The records and exceptions are generated from the schema
(scripts/gen_contract.py writes hotplex/_contract.py); these tests check that
the committed and installed copy is what the schema generates, that the
objects built from real engine output hold every field the schema names, with
values of the annotated types, and that the stubs type-check typical user code.
"""

import dataclasses
import importlib.resources
import importlib.util
import json
import pathlib
import subprocess
import sys
import typing

import hotplex
import hotplex._contract as contract
from test_engine import AGENT, ROOT

SCHEMA = json.loads((ROOT / "schema" / "hotplex.schema.json").read_text(encoding="utf-8"))
DEFS = SCHEMA["$defs"]
GENERATOR = ROOT / "bindings" / "python" / "scripts" / "gen_contract.py"
REGENERATE = "run `python bindings/python/scripts/gen_contract.py`"


def _generator():
    spec = importlib.util.spec_from_file_location("gen_contract", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_contract_is_what_the_schema_generates():
    gen = _generator()
    expected = gen.render()
    committed = gen.OUTPUT.read_text(encoding="utf-8")
    assert committed == expected, f"{gen.OUTPUT} is stale: {REGENERATE}"
    installed = importlib.resources.files("hotplex").joinpath("_contract.py")
    assert installed.read_text(encoding="utf-8") == expected, "the installed package is stale"
    check = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def _properties(definition):
    """Property names of a schema definition, following a $ref."""
    props = set(definition.get("properties", {}))
    if "$ref" in definition:
        props |= _properties(DEFS[definition["$ref"].rsplit("/", 1)[-1]])
    return props


def _conforms(value, annotation, where):
    """Asserts that value (from the engine) is of the annotated type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is typing.Any:
        return
    if origin is typing.Union:
        errors = []
        for arg in args:
            try:
                return _conforms(value, arg, where)
            except AssertionError as e:
                errors.append(str(e))
        raise AssertionError("; ".join(errors))
    if origin is typing.Literal:
        assert value in args, f"{where}: {value!r} not in {args}"
    elif origin is list:
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for i, item in enumerate(value):
            _conforms(item, args[0], f"{where}[{i}]")
    elif isinstance(annotation, type) and issubclass(annotation, dict):  # a TypedDict
        assert isinstance(value, dict), f"{where}: {value!r} is not a dict"
        hints = typing.get_type_hints(annotation)
        assert set(value) == set(hints), f"{where}: keys {sorted(value)} != {sorted(hints)}"
        for key, hint in hints.items():
            _conforms(value[key], hint, f"{where}.{key}")
    elif dataclasses.is_dataclass(annotation):
        assert isinstance(value, annotation), f"{where}: {value!r}"
        for name, hint in typing.get_type_hints(annotation).items():
            _conforms(getattr(value, name), hint, f"{where}.{name}")
    else:
        accepted = {float: (int, float), type(None): type(None)}.get(annotation, annotation)
        assert isinstance(value, accepted), f"{where}: {value!r} is not {annotation}"
        assert annotation is bool or not isinstance(value, bool), f"{where}: {value!r} is a bool"


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


def test_records_from_the_engine_hold_every_schema_field_with_its_annotated_type(tmp_path):
    turn, info, stats, events = _run_turns(tmp_path)
    for name, obj, typed in [
        ("Turn", turn, hotplex.Turn),
        ("SessionInfo", info, hotplex.SessionInfo),
        ("SessionStats", stats, hotplex.SessionStats),
    ]:
        fields = _properties(DEFS[name])
        present = set(obj) if isinstance(obj, dict) else {f for f in fields if hasattr(obj, f)}
        assert fields - present == set(), f"{name}: missing"
        _conforms(obj, typed, name)
    assert isinstance(info.workdir, pathlib.Path) and info.idle_seconds == info.idle_ms / 1000.0
    seen = {e.type for e in events}
    assert {"session_start", "tool_use", "tool_result", "danger_block", "session_stats", "error"} <= seen
    for variant in DEFS["Event"]["oneOf"]:
        name = variant["properties"]["type"]["const"]
        data_type = getattr(contract, "".join(w.title() for w in name.split("_")) + "Data")
        for e in (e for e in events if e.type == name):
            assert set(e.data) == _properties(variant) - {"type"}, f"event {name}"
            _conforms(e.data, data_type, f"event {name}")
    for i, e in enumerate(events):
        _conforms(e, hotplex.Event, f"events[{i}]")


def test_every_error_code_has_its_own_public_exception_class():
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
