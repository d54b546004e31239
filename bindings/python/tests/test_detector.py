"""Tests of hotplex.Detector / hotplex.Verdict against the installed package.

Run through tests/run-python.sh, which installs ./bindings/python into a venv
the way users do and then runs pytest on this directory.
"""

import ast
import collections
import importlib.resources
import inspect
import json
import pathlib
import pickle
import sys
import threading
import time

import pytest

import hotplex
import hotplex._native

RM_ROOT = "file_delete.rm_recursive_outside_tree"


@pytest.fixture(scope="module")
def d():
    return hotplex.Detector()


# --- commands -------------------------------------------------------------


def test_rm_rf_root_is_blocked_critical(d):
    v = d.check_command("rm -rf /")
    assert v.blocked is True
    assert v.level == "critical"
    assert v.level_value == 1
    assert v.rule_id == RM_ROOT
    assert v.category == "file_delete"
    assert v.reason
    assert v.span == (0, 8)
    assert v.canonical == "rm -rf /"
    assert isinstance(v.suggestions, list) and v.suggestions
    assert all(isinstance(s, str) for s in v.suggestions)


def test_ls_is_safe(d):
    v = d.check_command("ls -la")
    assert v.blocked is False
    assert v.level == "safe"
    assert v.level_value == -1
    assert v.rule_id is None and v.category is None
    assert v.span is None and v.canonical is None
    assert v.reason == "no rule matched"
    assert v.suggestions == []


def test_second_command_of_a_list_is_judged(d):
    v = d.check_command("git status; rm -rf /")
    assert v.blocked and v.level == "critical"
    start, end = v.span
    assert "git status; rm -rf /"[start:end] == "rm -rf /"


def test_quoted_text_is_not_a_command(d):
    assert not d.check_command("echo 'rm -rf /'").blocked


def test_moderate_does_not_block(d):
    v = d.check_command("git reset --hard")
    assert v.level == "moderate" and v.level_value == 3
    assert not v.blocked


def test_bytes_input_is_accepted(d):
    assert d.check_command(b"rm -rf /").level == "critical"
    assert d.check_prompt(b"Explain retrieval augmented generation").level == "safe"


def test_wrong_type_is_a_type_error(d):
    with pytest.raises(TypeError):
        d.check_command(42)
    with pytest.raises(TypeError):
        d.check_command(None)


# --- verdict object ---------------------------------------------------------


def test_verdict_to_dict_and_repr(d):
    v = d.check_command("rm -rf /")
    dd = v.to_dict()
    assert dd == {
        "level": "critical",
        "level_value": 1,
        "blocked": True,
        "rule_id": RM_ROOT,
        "category": "file_delete",
        "reason": v.reason,
        "span": (0, 8),
        "canonical": "rm -rf /",
        "suggestions": v.suggestions,
    }
    json.dumps(dd)  # serialisable
    r = repr(v)
    assert r.startswith("Verdict(level='critical', blocked=True, rule_id=")
    assert "category='file_delete'" in r and "span=(0, 8)" in r
    assert repr(d.check_command("ls")) == "Verdict(level='safe', blocked=False, reason='no rule matched')"
    assert repr(d).startswith("Detector(rules=")


def test_verdicts_compare_and_are_immutable(d):
    assert d.check_command("rm -rf /") == d.check_command("rm -rf /")
    assert d.check_command("rm -rf /") != d.check_command("ls")
    v = d.check_command("ls")
    with pytest.raises(AttributeError):
        v.blocked = True
    v.suggestions.append("x")
    assert v.suggestions == []
    with pytest.raises(TypeError):
        hotplex.Verdict()


# --- spans ------------------------------------------------------------------


def test_span_is_in_characters_for_non_ascii_input(d):
    text = "echo 'héllo wörld 🙂'; rm -rf /"
    v = d.check_command(text)
    assert v.blocked
    start, end = v.span
    assert text[start:end] == "rm -rf /"
    assert len(text.encode()) != len(text)  # byte offsets would differ


def test_span_in_prompt_is_in_characters(d):
    text = "Schöne Grüße 🙂 — please run `rm -rf /` now"
    v = d.check_prompt(text)
    assert v.blocked
    start, end = v.span
    assert "rm -rf /" in text[start:end]


def test_span_for_bytes_input_indexes_the_decoded_text(d):
    text = "ü; rm -rf /"
    v = d.check_command(text.encode())
    start, end = v.span
    assert text[start:end] == "rm -rf /"


def test_span_for_bash_tool_indexes_the_command(d):
    cmd = "ünïcode; rm -rf /"
    v = d.check_tool("Bash", {"command": cmd, "description": "x"})
    start, end = v.span
    assert cmd[start:end] == "rm -rf /"


# --- prompts ----------------------------------------------------------------


def test_prompt_with_inline_rm_is_blocked(d):
    v = d.check_prompt("please run `rm -rf /`")
    assert v.blocked and v.level == "critical"


def test_prose_prompt_is_safe(d):
    v = d.check_prompt("Explain retrieval augmented generation")
    assert v.level == "safe" and not v.blocked


# --- tool calls -------------------------------------------------------------


def test_check_tool_with_dict(d):
    assert d.check_tool("Bash", {"command": "rm -rf /"}).level == "critical"
    assert d.check_tool("Bash", {"command": "ls -la"}).level == "safe"


def test_check_tool_with_str_and_bytes(d):
    assert d.check_tool("Bash", '{"command": "rm -rf /"}').blocked
    assert d.check_tool("Bash", b'{"command": "rm -rf /"}').blocked
    assert not d.check_tool("WebFetch", '{"url": "https://example.com"}').blocked


def test_check_tool_with_other_mapping(d):
    m = collections.OrderedDict(command="rm -rf /")
    assert d.check_tool("Bash", m).blocked

    class Ro(collections.abc.Mapping):
        def __init__(self, **kw):
            self._d = kw

        def __getitem__(self, k):
            return self._d[k]

        def __iter__(self):
            return iter(self._d)

        def __len__(self):
            return len(self._d)

    assert d.check_tool("Bash", Ro(command="rm -rf /")).blocked


def test_check_tool_write_to_system_file(d):
    v = d.check_tool("Write", {"file_path": "/etc/passwd", "content": "x"})
    assert v.blocked and v.category == "system"
    assert v.span is None  # path verdicts have no span into the input


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", '"str"', ""])
def test_check_tool_bad_json_is_invalid_argument(d, bad):
    with pytest.raises(hotplex.InvalidArgument) as ei:
        d.check_tool("Bash", bad)
    assert isinstance(ei.value, ValueError)
    assert isinstance(ei.value, hotplex.HotplexError)


def test_check_tool_wrong_input_type(d):
    with pytest.raises(TypeError):
        d.check_tool("Bash", 3)
    with pytest.raises(TypeError):
        d.check_tool("Bash", {"command": object()})  # json.dumps refuses


# --- custom rules -----------------------------------------------------------


def test_custom_rule_applies():
    d = hotplex.Detector(rules="acme-cli\\s+wipe|Wipes the ACME account|high|system")
    v = d.check_command("acme-cli wipe --yes")
    assert v.blocked and v.level == "high"
    assert v.rule_id == "custom-1"
    assert v.category == "system"
    assert v.reason == "Wipes the ACME account"
    # built-ins still apply
    assert d.check_command("rm -rf /").blocked


def test_custom_rule_json_format():
    rules = json.dumps(
        [{"pattern": "drop\\s+database", "description": "no", "level": "critical", "category": "database"}]
    )
    d = hotplex.Detector(rules=rules)
    assert d.check_command("psql -c 'DROP DATABASE prod'").level == "critical"


def test_builtin_rules_can_be_turned_off():
    d = hotplex.Detector(rules="terraform destroy|x|high|system", builtin_rules=False)
    assert d.check_command("terraform destroy").blocked
    assert not d.check_command("rm -rf /").blocked


def test_bad_custom_rule_is_invalid_rule_with_line():
    with pytest.raises(hotplex.InvalidRule) as ei:
        hotplex.Detector(rules="ok|fine|high|system\n(unclosed|bad|high|system")
    e = ei.value
    assert e.line == 2
    assert isinstance(e, ValueError) and isinstance(e, hotplex.HotplexError)
    assert "line 2" in str(e)
    e2 = pickle.loads(pickle.dumps(e))
    assert e2.line == 2 and str(e2) == str(e)


def test_unknown_level_is_invalid_rule():
    with pytest.raises(hotplex.InvalidRule) as ei:
        hotplex.Detector(rules="# comment\n\nfoo|bar|severe|system")
    assert ei.value.line == 3


# --- allow paths ------------------------------------------------------------


def test_allow_paths(tmp_path):
    env = tmp_path / ".env"
    tool_input = {"file_path": str(env)}
    assert hotplex.Detector().check_tool("Read", tool_input).blocked
    for paths in ([str(tmp_path)], [tmp_path], (p for p in [tmp_path])):
        d = hotplex.Detector(allow_paths=paths)
        assert d.check_tool("Read", tool_input).level == "safe"
    # Only under the allowed path.
    d = hotplex.Detector(allow_paths=[tmp_path / "sub"])
    assert d.check_tool("Read", tool_input).blocked


def test_relative_allow_path_is_invalid_argument():
    with pytest.raises(hotplex.InvalidArgument):
        hotplex.Detector(allow_paths=["relative/path"])


def test_allow_paths_must_not_be_a_single_str(tmp_path):
    with pytest.raises(TypeError):
        hotplex.Detector(allow_paths=str(tmp_path))


# --- audit callback ---------------------------------------------------------


def test_audit_callback_order_and_arguments():
    events = []
    d = hotplex.Detector(on_audit=lambda kind, text, v: events.append((kind, text, v)))
    d.check_command("ls -la")  # safe: not audited
    d.check_command("rm -rf /")
    d.check_prompt("please run `rm -rf /`")
    d.check_tool("Bash", {"command": "git reset --hard"})
    d.check_command("git status; rm -rf ~")
    assert [(k, t) for k, t, _ in events] == [
        ("command", "rm -rf /"),
        ("prompt", "please run `rm -rf /`"),
        ("tool", '{"command": "git reset --hard"}'),
        ("command", "git status; rm -rf ~"),
    ]
    assert all(isinstance(v, hotplex.Verdict) for _, _, v in events)
    assert events[0][2] == d.check_command("rm -rf /")
    assert events[2][2].level == "moderate"
    assert events[3][2].span == (12, 20)


def test_audit_callback_exception_does_not_break_the_check(monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda args: reported.append(args))
    calls = []

    def bad(kind, text, v):
        calls.append(text)
        raise RuntimeError("audit sink down")

    d = hotplex.Detector(on_audit=bad)
    v = d.check_command("rm -rf /")
    assert v.blocked and v.level == "critical"
    v = d.check_tool("Bash", {"command": "rm -rf /"})
    assert v.blocked
    assert calls == ["rm -rf /", '{"command": "rm -rf /"}']
    assert len(reported) == 2
    assert isinstance(reported[0].exc_value, RuntimeError)
    assert reported[0].object is bad


def test_audit_callback_must_be_callable():
    with pytest.raises(TypeError):
        hotplex.Detector(on_audit="not callable")


def test_audit_callback_reference_cycle_is_collected():
    import gc
    import weakref

    class Owner:
        def __init__(self):
            self.d = hotplex.Detector(on_audit=self.log)

        def log(self, kind, text, v):
            pass

    o = Owner()
    ref = weakref.ref(o)
    del o
    gc.collect()
    assert ref() is None


# --- invalid UTF-8 ----------------------------------------------------------


@pytest.mark.parametrize("method", ["check_command", "check_prompt"])
def test_lone_surrogate_is_invalid_utf8(d, method):
    with pytest.raises(hotplex.InvalidUtf8) as ei:
        getattr(d, method)("rm -rf /\ud800")
    assert isinstance(ei.value, UnicodeError)
    assert isinstance(ei.value, hotplex.HotplexError)


@pytest.mark.parametrize("method", ["check_command", "check_prompt"])
def test_invalid_bytes_are_invalid_utf8(d, method):
    with pytest.raises(UnicodeError) as ei:
        getattr(d, method)(b"rm -rf /\xff\xfe")
    assert isinstance(ei.value, hotplex.InvalidUtf8)


def test_invalid_utf8_in_tool_calls_and_rules(d):
    with pytest.raises(hotplex.InvalidUtf8):
        d.check_tool("Bash", {"command": "ls \udc80"})
    with pytest.raises(hotplex.InvalidUtf8):
        d.check_tool("Bash", b'{"command": "\xc3"}')
    with pytest.raises(hotplex.InvalidUtf8):
        d.check_tool("Ba\ud800sh", "{}")
    with pytest.raises(hotplex.InvalidUtf8):
        hotplex.Detector(rules="x\udfff|y|high|system")


# --- threads and the GIL ----------------------------------------------------


def test_threads_check_concurrently():
    events = []
    d = hotplex.Detector(on_audit=lambda k, t, v: events.append(t))
    errors = []

    def work(i):
        try:
            for _ in range(200):
                assert d.check_command(f"rm -rf / # {i}").blocked
                assert d.check_command("ls -la").level == "safe"
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(events) == 8 * 200


def test_gil_is_released_during_a_check():
    d = hotplex.Detector()
    text = "word " * 1_000_000  # a prompt that takes a while to screen
    start = time.perf_counter()
    d.check_prompt(text)
    if time.perf_counter() - start < 0.02:
        text *= 8
    window = {}

    def worker():
        window["t0"] = time.perf_counter()
        d.check_prompt(text)
        window["t1"] = time.perf_counter()

    ticks = []
    t = threading.Thread(target=worker)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    t0, t1 = window["t0"], window["t1"]
    lo, hi = t0 + 0.3 * (t1 - t0), t1 - 0.3 * (t1 - t0)
    # With the GIL held for the whole check, this thread could not have run
    # in the middle of it.
    assert any(lo <= x <= hi for x in ticks), (t1 - t0, len(ticks))


# --- explain ----------------------------------------------------------------


def test_explain_shows_every_stage(d):
    cmd = "echo hi | sudo rm -rf / > /dev/null"
    e = d.explain(cmd)
    assert type(e) is dict
    assert list(e) == [
        "input",
        "control",
        "commands",
        "redirects",
        "pipelines",
        "code",
        "incomplete",
        "hits",
        "effects",
        "verdict",
    ]
    assert e["input"] == cmd and e["control"] is None and e["incomplete"] is False
    assert "sudo rm -rf /" in e["commands"] and "rm -rf /" in e["commands"]
    assert e["pipelines"] and e["redirects"] and e["code"] == []
    assert all(type(x) is str for k in ("commands", "redirects", "pipelines") for x in e[k])
    # The verdict is check_command's, in Verdict.to_dict() form.
    assert e["verdict"] == d.check_command(cmd).to_dict()
    # What the effect model derived: the recursive delete of the root.
    assert any("critical" in x and "delete" in x for x in e["effects"]), e["effects"]
    assert e["verdict"]["rule_id"] == RM_ROOT and e["verdict"]["blocked"] is True
    # Every matching rule, not only the reported one.
    assert len(e["hits"]) >= 2
    for hit in e["hits"]:
        assert set(hit) == {"rule_id", "level", "level_value", "category", "scope", "text"}
        assert hit["level_value"] == {"critical": 1, "high": 2, "moderate": 3}[hit["level"]]
        assert hit["scope"] in {"text", "script", "command", "redirect", "pipeline", "code"}
    assert any(h["rule_id"] == RM_ROOT and h["text"] == "rm -rf /" for h in e["hits"])
    assert any(h["category"] == "privilege" for h in e["hits"])
    json.dumps(e)  # plain values only


def test_explain_safe_bytes_and_spans_in_characters(d):
    e = d.explain(b"ls -la")
    assert e["input"] == "ls -la" and e["hits"] == []
    assert e["verdict"] == d.check_command("ls -la").to_dict()
    assert e["verdict"]["level"] == "safe" and e["verdict"]["span"] is None
    text = "echo ü; rm -rf /"
    e = d.explain(text)
    start, end = e["verdict"]["span"]
    assert text[start:end] == "rm -rf /"


def test_explain_control_bytes(d):
    # The control-byte pre-check decides alone: no hits, its verdict is final.
    e = d.explain("ls\x1b[2J; rm -rf /")
    assert e["control"] is not None and e["control"]["blocked"]
    assert e["control"] == e["verdict"] and e["hits"] == []
    assert e["verdict"]["span"] == (2, 3)


def test_explain_is_not_audited_and_checks_its_argument():
    events = []
    d = hotplex.Detector(on_audit=lambda *a: events.append(a))
    assert d.explain("rm -rf /")["verdict"]["blocked"]
    assert events == []
    with pytest.raises(hotplex.InvalidUtf8):
        d.explain(b"rm -rf \xff")
    with pytest.raises(hotplex.InvalidUtf8):
        d.explain("rm \ud800")
    with pytest.raises(TypeError):
        d.explain(None)


# --- package, stubs, version ------------------------------------------------


def test_version():
    assert isinstance(hotplex.__version__, str)
    assert hotplex.__version__ == hotplex._native.__version__
    assert hotplex.__version__.count(".") >= 2
    from importlib.metadata import version

    assert version("hotplex") == hotplex.__version__


def test_public_api():
    for name in hotplex.__all__:
        assert hasattr(hotplex, name), name
    assert issubclass(hotplex.InvalidRule, hotplex.HotplexError)
    assert issubclass(hotplex.InvalidRule, ValueError)
    assert issubclass(hotplex.InvalidArgument, ValueError)
    assert issubclass(hotplex.InvalidUtf8, UnicodeError)
    assert hotplex.Detector.__module__ == "hotplex"
    assert hotplex.HotplexError.__module__ == "hotplex"


def _stub_source(name):
    return importlib.resources.files("hotplex").joinpath(name)


def test_type_stubs_are_installed_and_parse():
    assert _stub_source("py.typed").is_file()
    tree = ast.parse(_stub_source("_native.pyi").read_text(encoding="utf-8"))
    compile(tree, "_native.pyi", "exec")


def test_type_stubs_match_the_runtime():
    tree = ast.parse(_stub_source("_native.pyi").read_text(encoding="utf-8"))
    stub_classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert set(stub_classes) == {
        "Detector", "Verdict", "Engine", "TurnStream", "AsyncTurnStream", "_AsyncEngine"
    }
    for cname, node in stub_classes.items():
        runtime = getattr(hotplex._native, cname)
        stub_doc = inspect.cleandoc(ast.get_docstring(node))
        run_doc = inspect.cleandoc(runtime.__doc__)
        if cname == "Engine":  # the runtime doc goes on with the core's defaults
            run_doc = run_doc.split("\n\nDefaults (from hotplex-core):")[0]
        assert stub_doc == run_doc, cname
        stub_members = {}
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                stub_members[item.name] = item
        public = {k for k in vars(runtime) if not k.startswith("_")}
        assert public == {k for k in stub_members if not k.startswith("_")}, cname
        for mname in public:
            stub_doc = ast.get_docstring(stub_members[mname])
            run_doc = getattr(runtime, mname).__doc__
            assert stub_doc and inspect.cleandoc(stub_doc) == inspect.cleandoc(run_doc), (cname, mname)
        # Parameters of methods match too.
        for mname in public:
            obj = getattr(runtime, mname)
            if callable(obj) and not isinstance(obj, property):
                sig = inspect.signature(obj)
                stub_args = stub_members[mname].args
                stub_params = [a.arg for a in stub_args.args + stub_args.kwonlyargs]
                assert stub_params == list(sig.parameters), (cname, mname)
    init = stub_classes["Detector"].body
    init_args = next(f for f in init if isinstance(f, ast.FunctionDef) and f.name == "__new__").args
    try:
        runtime_init = inspect.signature(hotplex.Detector)
    except ValueError:  # abi3 builds have no class text signature before 3.10
        assert sys.version_info < (3, 10)
        return
    assert [a.arg for a in init_args.args][1:] == list(runtime_init.parameters)


def test_extension_is_the_installed_one():
    # The tests must exercise the installed wheel, not a stray build.
    path = pathlib.Path(hotplex._native.__file__)
    assert path.name.startswith("_native") and path.parent.name == "hotplex"
