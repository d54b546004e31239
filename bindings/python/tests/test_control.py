"""The agent's control surface through Python (issue 14), against the bundled
reference agent: host hooks, host tools, the permission context, live
controls, reset and fork, per-session options, task instructions and
images. What the core does with them is tested in Rust; these tests prove
the Python shapes (callables, async def, decorators, dicts, exceptions) reach
it and come back."""

import asyncio
import sys
import threading
import time

import pytest

import hotplex
from test_engine import AGENT


def _state(tmp_path):
    """The reference agent's transcripts (needed by resume and fork)."""
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return str(state)


def _engine(tmp_path, **options):
    return hotplex.Engine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": _state(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        interrupt_grace=2.0,
        **options,
    )


def _async_engine(tmp_path, **options):
    return hotplex.AsyncEngine(
        binary=AGENT,
        env={"HOTPLEX_REF_STATE": _state(tmp_path)},
        default_workdir=str(tmp_path / "work"),
        interrupt_grace=2.0,
        **options,
    )


class _Reported:
    """Collects what goes to sys.unraisablehook."""

    def __enter__(self):
        self.errors = []
        self._old = sys.unraisablehook
        sys.unraisablehook = lambda u: self.errors.append(u.exc_value)
        return self.errors

    def __exit__(self, *exc):
        sys.unraisablehook = self._old


def _context(text, event="PostToolUse"):
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


def _tool_result(turn):
    return next(e.data for e in turn.events if e.type == "tool_result")


# --- hooks --------------------------------------------------------------------


def test_a_post_tool_use_hook_sees_the_call_and_its_context_reaches_the_answer(tmp_path):
    calls = []

    def after(hook_input, tool_use_id, context):
        calls.append((hook_input, tool_use_id, context))
        return _context("checked by the host")

    with _engine(tmp_path, hooks={"PostToolUse": [after]}) as eng:
        turn = eng.execute("s", "tool:ls")
    assert turn.text == "tool ran: ls [context: checked by the host]"
    [(hook_input, tool_use_id, context)] = calls
    assert hook_input["hook_event_name"] == "PostToolUse"
    assert hook_input["tool_name"] == "Bash" and hook_input["tool_input"]["command"] == "ls"
    assert "tool_response" in hook_input
    assert tool_use_id and tool_use_id == hook_input["tool_use_id"]
    assert isinstance(context, hotplex.HookContext)
    assert context.session_id == "s" and context.event == "PostToolUse"


def test_a_pre_tool_use_hook_rewrites_the_command_that_runs(tmp_path):
    seen = []

    def rewrite(hook_input, tool_use_id, context):
        command = hook_input["tool_input"]["command"]
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "updatedInput": {"command": command + " -la"},
            }
        }

    def decide(tool, tool_input, verdict):
        seen.append(tool_input["command"])
        return True

    hooks = {"PreToolUse": [hotplex.HookMatcher(matcher="Bash", hooks=[rewrite])]}
    with _engine(tmp_path, hooks=hooks, can_use_tool=decide) as eng:
        assert eng.execute("s", "tool:ls").text == "tool ran: ls -la"
    assert seen == ["ls -la"], "can_use_tool sees the rewritten command"


def test_the_waf_answers_before_the_host_hook_and_screens_its_rewrite(tmp_path):
    asked = []

    def rewrite_to_danger(hook_input, tool_use_id, context):
        asked.append(hook_input["tool_input"]["command"])
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "updatedInput": {"command": "rm -rf ~"},
            }
        }

    with _engine(tmp_path, hooks={"PreToolUse": [rewrite_to_danger]}) as eng:
        blocked = eng.execute("s", "tool:rm -rf /")
        assert blocked.text == "tool denied: rm -rf /"
        assert asked == [], "a call the WAF blocks never reaches the host hook"
        assert any(e.type == "danger_block" for e in blocked.events)
        rewritten = eng.execute("s", "tool:ls")
    assert asked == ["ls"]
    assert rewritten.text.startswith("tool denied:"), "the rewrite into rm -rf ~ is blocked"
    assert "ran: rm -rf ~" not in str(_tool_result(rewritten))


def test_a_matcher_limits_a_hook_to_the_tools_it_names(tmp_path):
    called = []
    hooks = {
        "PostToolUse": [
            hotplex.HookMatcher(matcher="Write|Edit", hooks=[lambda i, t, c: called.append(i)]),
        ]
    }
    with _engine(tmp_path, hooks=hooks) as eng:
        assert eng.execute("s", "tool:ls").text == "tool ran: ls"
    assert called == []


def test_an_async_hook_runs_on_the_loop(tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        ran_on = []

        async def after(hook_input, tool_use_id, context):
            await asyncio.sleep(0.01)
            ran_on.append(asyncio.get_running_loop())
            return _context("async")

        async with _async_engine(tmp_path, hooks={"PostToolUse": [after]}) as eng:
            turn = await eng.execute("s", "tool:ls")
        assert ran_on == [loop]
        return turn.text

    assert asyncio.run(main()) == "tool ran: ls [context: async]"


def test_a_raising_pre_tool_use_hook_denies_and_is_reported(tmp_path):
    def broken(hook_input, tool_use_id, context):
        raise RuntimeError("hook bug")

    with _Reported() as reported, _engine(tmp_path, hooks={"PreToolUse": [broken]}) as eng:
        turn = eng.execute("s", "tool:ls")
    assert turn.text == "tool denied: ls"
    assert [str(e) for e in reported] == ["hook bug"]


def test_a_raising_post_tool_use_hook_lets_the_turn_go_on_with_an_error_event(tmp_path):
    def broken(hook_input, tool_use_id, context):
        raise RuntimeError("hook bug")

    with _Reported() as reported, _engine(tmp_path, hooks={"PostToolUse": [broken]}) as eng:
        turn = eng.execute("s", "tool:ls")
    assert turn.text == "tool ran: ls"
    assert any(e.type == "error" and "hook bug" in str(e.data) for e in turn.events)
    assert [str(e) for e in reported] == ["hook bug"]


def test_a_slow_pre_tool_use_hook_times_out_and_denies(tmp_path):
    async def main():
        async def slow(hook_input, tool_use_id, context):
            await asyncio.sleep(30)

        hooks = {"PreToolUse": [hotplex.HookMatcher(hooks=[slow], timeout=0.5)]}
        async with _async_engine(tmp_path, hooks=hooks) as eng:
            started = time.monotonic()
            turn = await eng.execute("s", "tool:ls")
            return turn.text, time.monotonic() - started

    with _Reported():
        text, took = asyncio.run(main())
    assert text == "tool denied: ls"
    assert took < 10


def test_user_prompt_submit_and_stop_hooks_are_called(tmp_path):
    events = []

    def record(hook_input, tool_use_id, context):
        events.append((context.event, hook_input.get("prompt")))
        if context.event == "UserPromptSubmit":
            return _context("prompt seen", "UserPromptSubmit")
        return None

    hooks = {"UserPromptSubmit": [record], "Stop": [record]}
    with _engine(tmp_path, hooks=hooks) as eng:
        turn = eng.execute("s", "hello")
    assert turn.text == "echo: hello [context: prompt seen]"
    assert events == [("UserPromptSubmit", "hello"), ("Stop", None)]


def test_a_hook_call_the_agent_cancels_does_not_hold_up_the_turn(tmp_path):
    async def main():
        async def slow(hook_input, tool_use_id, context):
            await asyncio.sleep(1.0)
            return _context("too late")

        async with _async_engine(tmp_path, hooks={"PostToolUse": [slow]}) as eng:
            started = time.monotonic()
            cancelled = await eng.execute("s", "cancel:100")
            took = time.monotonic() - started
            after = await eng.execute("s", "hello")
            return cancelled.text, took, after.text

    text, took, after = asyncio.run(main())
    assert text == "cancelled" and took < 1.0
    assert after == "echo: hello"


def test_an_unknown_control_request_from_the_agent_gets_an_error(tmp_path):
    with _engine(tmp_path) as eng:
        turn = eng.execute("s", "control:no_such_subtype")
    assert turn.text.startswith("control answered: error")


def test_hooks_must_be_functions_or_matchers(tmp_path):
    with pytest.raises(TypeError):
        _engine(tmp_path, hooks={"PostToolUse": [42]})
    with pytest.raises(TypeError):
        _engine(tmp_path, hooks=[lambda *a: None])
    with pytest.raises(hotplex.InvalidConfig):
        _engine(tmp_path, hooks={"Post Tool Use": [lambda *a: None]})


# --- host tools -------------------------------------------------------------


@hotplex.tool("get_weather", "The weather in a city", {"city": str})
def get_weather(args):
    if args["city"] == "Atlantis":
        raise LookupError("no such city: Atlantis")
    return f"sunny in {args['city']}"


def test_the_tool_decorator_makes_a_tool_with_a_json_schema():
    assert isinstance(get_weather, hotplex.Tool)
    assert get_weather.name == "get_weather"
    assert get_weather.description == "The weather in a city"
    assert get_weather.input_schema == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert get_weather({"city": "Oslo"}) == "sunny in Oslo", "a Tool calls its function"
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert hotplex.tool("t", "d", schema)(lambda a: "x").input_schema == schema
    assert hotplex.tool("t", "d", {})(lambda a: "x").input_schema["type"] == "object"
    with pytest.raises(TypeError):
        hotplex.tool("t", "d", {"when": object})


def test_a_host_tool_is_listed_and_called_and_its_result_reaches_the_answer(tmp_path):
    with _engine(tmp_path, tools=[get_weather]) as eng:
        listed = eng.execute("s", "tools?")
        assert "mcp__host__get_weather" in listed.text
        turn = eng.execute("s", 'mcp:host/get_weather {"city": "Paris"}')
        assert turn.text == "tool said: sunny in Paris"
        use = next(e.data for e in turn.events if e.type == "tool_use")
        assert use["name"] == "mcp__host__get_weather" and use["input"] == {"city": "Paris"}
        status = eng.mcp_status("s")
    assert {"name": "host", "status": "connected"} in status["mcpServers"]


def test_a_tool_server_names_its_tools(tmp_path):
    server = hotplex.ToolServer("weather", [get_weather], version="2.0.0")
    with _engine(tmp_path, tools=[server]) as eng:
        assert "mcp__weather__get_weather" in eng.execute("s", "tools?").text
        turn = eng.execute("s", 'mcp:weather/get_weather {"city": "Rome"}')
    assert turn.text == "tool said: sunny in Rome"


def test_a_raising_tool_is_an_error_result_the_model_sees(tmp_path):
    with _Reported() as reported, _engine(tmp_path, tools=[get_weather]) as eng:
        turn = eng.execute("s", 'mcp:host/get_weather {"city": "Atlantis"}')
    assert turn.text == "tool said: no such city: Atlantis"
    assert _tool_result(turn)["is_error"] is True
    assert reported == [], "a tool's exception is its answer, not a host bug"


def test_an_async_tool_runs_on_the_loop(tmp_path):
    @hotplex.tool("slow_add", "Adds", {"a": int, "b": int})
    async def slow_add(args):
        await asyncio.sleep(0.01)
        return {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}

    async def main():
        async with _async_engine(tmp_path, tools=[slow_add]) as eng:
            turn = await eng.execute("s", 'mcp:host/slow_add {"a": 2, "b": 3}')
            return turn.text

    assert asyncio.run(main()) == "tool said: 5"


def test_host_tool_calls_go_through_can_use_tool(tmp_path):
    asked = []

    def decide(tool, tool_input, verdict):
        asked.append((tool, tool_input))
        return "not today"

    with _engine(tmp_path, tools=[get_weather], can_use_tool=decide) as eng:
        turn = eng.execute("s", 'mcp:host/get_weather {"city": "Paris"}')
    assert asked == [("mcp__host__get_weather", {"city": "Paris"})]
    assert "sunny" not in turn.text


def test_tools_must_be_tools_or_servers(tmp_path):
    with pytest.raises(TypeError):
        _engine(tmp_path, tools=[lambda a: "x"])
    with pytest.raises(TypeError):
        _engine(tmp_path, tools=[get_weather, hotplex.ToolServer("s", [get_weather])])
    with pytest.raises(hotplex.InvalidConfig):
        _engine(tmp_path, tools=[hotplex.ToolServer("bad name", [get_weather])])


# --- permissions ------------------------------------------------------------------


def test_can_use_tool_with_four_parameters_gets_the_context_and_grants_rules(tmp_path):
    contexts = []

    def decide(tool, tool_input, verdict, context):
        contexts.append(context)
        return {"behavior": "allow", "updatedPermissions": context["permission_suggestions"]}

    with _engine(tmp_path, can_use_tool=decide) as eng:
        first = eng.execute("s", "tool:ls")
        second = eng.execute("s", "tool:ls")
    assert first.text == second.text == "tool ran: ls"
    assert len(contexts) == 1, "the granted rule lets the second call skip can_use_tool"
    suggestions = contexts[0]["permission_suggestions"]
    assert suggestions and suggestions[0]["type"] == "addRules"
    assert contexts[0]["tool_use_id"]


def test_a_deny_with_interrupt_ends_the_turn(tmp_path):
    def decide(tool, tool_input, verdict):
        return {"behavior": "deny", "message": "stop everything", "interrupt": True}

    with _engine(tmp_path, can_use_tool=decide) as eng:
        with pytest.raises(hotplex.TurnFailed) as err:
            eng.execute("s", "tool:ls")
    assert err.value.subtype == "error_during_execution"


# --- live controls ----------------------------------------------------------------


def test_live_controls_change_the_running_agent(tmp_path):
    with _engine(tmp_path) as eng:
        eng.execute("s", "hello")
        eng.set_model("s", "reference-large")
        assert eng.execute("s", "model?").text == "model: reference-large"
        eng.set_model("s", None)
        assert eng.execute("s", "model?").text == "model: default"
        eng.set_permission_mode("s", "plan")
        assert eng.execute("s", "mode?").text == "mode: plan"
        usage = eng.context_usage("s")
        assert usage["maxTokens"] == 200000 and usage["totalTokens"] > 0
        assert isinstance(usage["percentage"], (int, float))
        assert eng.mcp_status("s") == {"mcpServers": []}
        assert eng.interrupt("s") is False, "no turn is running"
        with pytest.raises(hotplex.SessionNotFound):
            eng.set_model("nobody", "m")
        with pytest.raises(hotplex.InvalidArgument):
            eng.set_permission_mode("s", "")


def test_interrupt_stops_a_running_turn_and_the_session_stays_hot(tmp_path):
    with _engine(tmp_path) as eng:
        pid = eng.execute("s", "hello").pid
        results = []
        worker = threading.Thread(
            target=lambda: results.append(_outcome(lambda: eng.execute("s", "stall:20000")))
        )
        worker.start()
        deadline = time.monotonic() + 10
        while eng.sessions()[0].status != "busy" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert eng.interrupt("s") is True
        worker.join(15)
        assert not worker.is_alive()
        assert isinstance(results[0], hotplex.TurnTimeout), results[0]
        assert eng.execute("s", "again").pid == pid


def _outcome(fn):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc


def test_an_agent_without_live_controls_raises_unsupported(tmp_path):
    with _engine(tmp_path, args=["--no-live-controls"]) as eng:
        eng.execute("s", "hello")
        with pytest.raises(hotplex.Unsupported):
            eng.set_model("s", "m")
        with pytest.raises(hotplex.Unsupported):
            eng.context_usage("s")


def test_live_controls_are_awaitable_on_the_async_engine(tmp_path):
    async def main():
        async with _async_engine(tmp_path) as eng:
            await eng.execute("s", "hello")
            await eng.set_model("s", "reference-large")
            await eng.set_permission_mode("s", "acceptEdits")
            model = (await eng.execute("s", "model?")).text
            mode = (await eng.execute("s", "mode?")).text
            usage = await eng.context_usage("s")
            status = await eng.mcp_status("s")
            idle = await eng.interrupt("s")
            stalled = asyncio.ensure_future(eng.execute("s", "stall:20000"))
            while eng.sessions()[0].status != "busy":
                await asyncio.sleep(0.02)
            running = await eng.interrupt("s")
            with pytest.raises(hotplex.TurnTimeout, match="interrupted"):
                await stalled
            with pytest.raises(hotplex.SessionNotFound):
                await eng.context_usage("nobody")
            return model, mode, usage, status, idle, running

    model, mode, usage, status, idle, running = asyncio.run(main())
    assert model == "model: reference-large" and mode == "mode: acceptEdits"
    assert usage["totalTokens"] > 0 and status == {"mcpServers": []}
    assert idle is False and running is True


# --- reset and fork -----------------------------------------------------------------


def test_reset_session_forgets_the_conversation(tmp_path):
    with _engine(tmp_path) as eng:
        eng.execute("s", "one")
        assert eng.execute("s", "recall").text == "history: one"
        eng.reset_session("s")
        assert eng.execute("s", "recall").text == "history: "
        eng.execute("s", "two")
        eng.stop_session("s")
        eng.reset_session("s", forget_transcript=True)  # not in the pool: works too
        assert eng.execute("s", "recall").text == "history: "


def test_fork_session_continues_a_copy_while_the_original_goes_on(tmp_path):
    with _engine(tmp_path) as eng:
        eng.execute("s", "one")
        eng.fork_session("s", "f")
        assert eng.execute("f", "recall").text == "history: one"
        eng.execute("f", "fork only")
        eng.execute("s", "original only")
        assert "fork only" not in eng.execute("s", "recall").text
        assert "original only" not in eng.execute("f", "recall").text
        with pytest.raises(hotplex.SessionNotFound):
            eng.fork_session("never-used", "g")
        with pytest.raises(hotplex.InvalidArgument):
            eng.fork_session("s", "f")


def test_a_fork_at_a_message_leaves_out_the_turns_after_it(tmp_path):
    with _engine(tmp_path) as eng:
        one = eng.execute("s", "one")
        eng.execute("s", "two")
        eng.fork_session("s", "f", at_message=one.message_uuid)
        assert eng.execute("f", "recall").text == "history: one"
        assert eng.execute("s", "recall").text == "history: one | two"
        with pytest.raises(hotplex.InvalidArgument):
            eng.fork_session("s", "g", at_message="not an id")


def test_reset_and_fork_on_the_async_engine(tmp_path):
    async def main():
        async with _async_engine(tmp_path) as eng:
            await eng.execute("s", "one")
            await eng.fork_session("s", "f")
            await eng.reset_session("s")
            return (await eng.execute("s", "recall")).text, (await eng.execute("f", "recall")).text

    assert asyncio.run(main()) == ("history: ", "history: one")


# --- per-session and per-turn options ------------------------------------------------


def test_max_turns_via_session_options_ends_the_turn(tmp_path):
    with _engine(tmp_path) as eng:
        with pytest.raises(hotplex.TurnFailed) as err:
            eng.execute("s", "tools:5", session={"max_turns": 2})
    assert err.value.subtype == "error_max_turns"


def test_a_json_schema_gives_the_turn_structured_output(tmp_path):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    options: hotplex.SessionOptions = {"json_schema": schema}
    with _engine(tmp_path) as eng:
        turn = eng.execute("s", 'json:{"a": 1}', session=options)
        assert turn.structured_output == {"a": 1}
        plain = eng.execute("t", "hello")
    assert plain.structured_output is None


def test_session_options_reach_the_agent_and_a_change_restarts_it(tmp_path):
    with _engine(tmp_path) as eng:
        first = eng.execute("s", "args?", session={"model": "reference-large", "effort": "high"})
        assert "--model reference-large" in first.text and "--effort high" in first.text
        assert eng.execute("s", "env?TENANT", session={"env": {"TENANT": "a"}}).text == "env: a"
        with pytest.raises(hotplex.InvalidConfig):
            eng.execute("s", "x", session={"max_turns": 0})
        with pytest.raises(hotplex.InvalidConfig):
            eng.execute("s", "x", session={"no_such_option": 1})


def test_instructions_and_images_go_with_the_prompt(tmp_path):
    image = {"media_type": "image/png", "data": "iVBORw0KGgo="}
    with _engine(tmp_path) as eng:
        assert eng.execute("s", "images?", images=[image, image]).text == "images: 2"
        wrapped = eng.execute("s", "hello", instructions="be brief")
        assert "be brief" in wrapped.text and "hello" in wrapped.text
        with pytest.raises(hotplex.InvalidConfig):
            eng.execute("s", "x", images=[{"media_type": "image/tiff", "data": "AAAA"}])
        with pytest.raises(hotplex.DangerBlocked):
            eng.execute("s", "hello", instructions="please run `rm -rf /`")
