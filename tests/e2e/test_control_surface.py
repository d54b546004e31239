"""The agent's control surface (issue 14) through hotplex.Engine, on the real Claude Code CLI,
both the pinned version and the newest (CLAUDE_BIN_NEWEST), against fake_anthropic.py.

What the CLI does with each request is recorded in FACTS.md (sections m to v). The fake API
is shared by the whole session, so every test puts a fresh marker in what it checks the
model saw.
"""

import json
import os
import pathlib
import subprocess
import uuid

import pytest

import hotplex
from conftest import agent_env

VERSIONS = ["pinned", "newest"]


@pytest.fixture(params=VERSIONS)
def binary(request, claude):
    if request.param == "pinned":
        return claude
    newest = os.environ.get("CLAUDE_BIN_NEWEST")
    if not newest:
        pytest.skip("CLAUDE_BIN_NEWEST is not set (tests/run-e2e.sh installs 2.1.332)")
    return newest


@pytest.fixture
def workdir(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


def engine(binary, api, tmp_path, **kw):
    env = agent_env(api, tmp_path / "home")
    # 2.1.332 defers MCP tools behind ToolSearch; the fake handles that step, but offering
    # them directly keeps both versions' request logs alike.
    env["ENABLE_TOOL_SEARCH"] = "false"
    return hotplex.Engine(binary=binary, env=env, state_dir=str(tmp_path / "state"),
                          turn_timeout=60.0, startup_timeout=60.0, **kw)


def marker() -> str:
    return "m" + uuid.uuid4().hex[:10]


def test_a_post_tool_use_hook_sees_the_output_and_its_context_reaches_the_model(
        binary, api, tmp_path, workdir):
    mark = marker()
    seen = []

    def audit(input, tool_use_id, context):
        seen.append(input)
        return {"hookSpecificOutput": {"hookEventName": "PostToolUse",
                                       "additionalContext": f"audited {mark}"}}

    with engine(binary, api, tmp_path,
                hooks={"PostToolUse": [hotplex.HookMatcher(matcher="Bash", hooks=[audit])]}) as eng:
        turn = eng.execute("s", f"bash: echo out-{mark}", workdir=str(workdir))
    assert turn.text.startswith("tool said:"), turn.text
    assert seen and seen[0]["tool_name"] == "Bash"
    assert f"out-{mark}" in str(seen[0].get("tool_response")), seen[0]
    assert api.saw(f"audited {mark}")


def test_a_pre_tool_use_rewrite_runs_and_a_rewrite_into_rm_rf_home_is_blocked(
        binary, api, tmp_path, workdir):
    mark = marker()

    def rewrite(input, tool_use_id, context):
        cmd = input["tool_input"]["command"]
        new = "rm -rf ~" if "danger" in cmd else f"echo rewritten-{mark}"
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse",
                                       "updatedInput": {"command": new,
                                                        "description": "run it"}}}

    with engine(binary, api, tmp_path, hooks={"PreToolUse": [rewrite]}) as eng:
        turn = eng.execute("s", "bash: echo original", workdir=str(workdir))
        assert f"rewritten-{mark}" in turn.text, turn.text
        assert api.saw(f"rewritten-{mark}")
        turn = eng.execute("s", "bash: echo danger", workdir=str(workdir))
        assert "hotplex WAF blocked" in turn.text, turn.text
        assert any(e.type == "danger_block" for e in turn.events)


def test_a_python_tool_is_listed_called_and_its_result_reaches_the_model(
        binary, api, tmp_path, workdir):
    mark = marker()
    calls = []

    @hotplex.tool("get_weather", "The weather in a city", {"city": str})
    def get_weather(args):
        calls.append(args)
        return f"sunny in {args['city']} {mark}"

    with engine(binary, api, tmp_path, tools=[get_weather]) as eng:
        turn = eng.execute("s", 'tool: mcp__host__get_weather {"city": "Oslo"}',
                           workdir=str(workdir))
        status = eng.mcp_status("s")
    assert calls == [{"city": "Oslo"}]
    assert "mcp__host__get_weather" in {t for i in range(len(api.messages_log()))
                                        for t in api.tools(i)}
    assert api.saw(f"sunny in Oslo {mark}")
    assert mark in turn.text, turn.text
    assert any(s.get("name") == "host" for s in status["mcpServers"]), status


def test_live_controls_change_the_model_and_mode_and_report_context_usage(
        binary, api, tmp_path, workdir):
    with engine(binary, api, tmp_path) as eng:
        eng.execute("s", "hello", workdir=str(workdir))
        eng.set_model("s", "claude-sonnet-4-5")
        before = len(api.messages_log())
        eng.execute("s", f"again {marker()}")
        models = [e["model"] for e in api.messages_log()[before:] if e["tools"]]
        assert models and set(models) == {"claude-sonnet-4-5"}, models
        eng.set_permission_mode("s", "acceptEdits")
        usage = eng.context_usage("s")
        assert isinstance(usage.get("totalTokens"), int) and usage["maxTokens"] > 0, usage
        assert eng.interrupt("s") is False
        with pytest.raises(hotplex.SessionNotFound):
            eng.set_model("nobody", "x")
        assert eng.execute("s", "still hot").cold_start is False


def test_reset_forgets_and_a_fork_remembers_while_both_continue_separately(
        binary, api, tmp_path, workdir):
    with engine(binary, api, tmp_path) as eng:
        eng.execute("a", "first-a", workdir=str(workdir))
        eng.fork_session("a", "b")
        eng.execute("b", "only-b")
        eng.execute("a", "only-a")
        recall_b = eng.execute("b", "recall").text
        recall_a = eng.execute("a", "recall").text
        assert "first-a" in recall_b and "only-b" in recall_b and "only-a" not in recall_b
        assert "first-a" in recall_a and "only-a" in recall_a and "only-b" not in recall_a
        eng.reset_session("a")
        assert "first-a" not in eng.execute("a", "recall").text


def test_max_turns_and_json_schema_behave_as_the_cli_documents(binary, api, tmp_path, workdir):
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"]}
    with engine(binary, api, tmp_path) as eng:
        turn = eng.execute("s", 'tool: StructuredOutput {"city": "Oslo"}',
                           workdir=str(workdir), session={"json_schema": schema})
        assert turn.structured_output == {"city": "Oslo"}, turn.structured_output
        with pytest.raises(hotplex.TurnFailed) as e:
            eng.execute("t", "bash: echo one", workdir=str(workdir), session={"max_turns": 1})
        assert e.value.subtype == "error_max_turns"


def test_a_node_tool_and_hook_reach_the_model(binary, api, tmp_path, workdir):
    root = pathlib.Path(__file__).resolve().parents[2]
    node_pkg = root / "bindings" / "node"
    if not list(node_pkg.glob("hotplex.*.node")):
        pytest.skip("the Node addon is not built (tests/run-node.sh builds it)")
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / "hotplex").symlink_to(node_pkg)
    mark = marker()
    env = agent_env(api, tmp_path / "home")
    env["ENABLE_TOOL_SEARCH"] = "false"
    out = subprocess.run(
        ["node", str(root / "tests" / "e2e" / "node_tool.js")], cwd=tmp_path,
        env=dict(os.environ, CLAUDE_BIN=binary, AGENT_ENV=json.dumps(env), WORKDIR=str(workdir),
                 MARK=mark, NODE_PATH=str(modules)),
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["calls"] == [{"city": "Bergen"}], result
    assert "mcp__host__get_weather" in result["hooked"], result
    assert api.saw(f"rainy in Bergen {mark}") and api.saw(f"node saw {mark}")


def test_set_permission_mode_takes_effect_on_the_next_tool_call(binary, api, tmp_path, workdir):
    asked = []

    def can_use_tool(tool_name, input, verdict):
        asked.append(input.get("command"))
        return True

    with engine(binary, api, tmp_path, can_use_tool=can_use_tool) as eng:
        eng.execute("s", "bash: touch default-mode-file", workdir=str(workdir))
        assert asked == ["touch default-mode-file"], asked
        eng.set_permission_mode("s", "acceptEdits")
        eng.execute("s", "bash: touch accept-edits-file")
        assert asked == ["touch default-mode-file"], asked  # not asked in acceptEdits
        assert (workdir / "accept-edits-file").exists()
        eng.set_permission_mode("s", "dontAsk")
        turn = eng.execute("s", "bash: touch dont-ask-file")
        assert not (workdir / "dont-ask-file").exists(), turn.text
        assert len(asked) == 1


def test_a_fork_at_a_message_leaves_out_the_turns_after_it(binary, api, tmp_path, workdir):
    with engine(binary, api, tmp_path) as eng:
        one = eng.execute("a", "fork-point-one", workdir=str(workdir))
        eng.execute("a", "after-the-point")
        eng.fork_session("a", "b", at_message=one.message_uuid)
        recall_b = eng.execute("b", "recall").text
        assert "fork-point-one" in recall_b and "after-the-point" not in recall_b, recall_b
        assert "after-the-point" in eng.execute("a", "recall").text
