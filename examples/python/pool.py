import os
import tempfile

import hotplex

agent = os.environ.get("HOTPLEX_AGENT", "claude")  # the Claude Code CLI by default
state = tempfile.mkdtemp()  # in production e.g. /var/lib/myapp/hotplex
key = os.environ.get("ANTHROPIC_API_KEY", "")

with hotplex.Engine(binary=agent, max_sessions=64, turn_timeout=300.0, state_dir=state,
                    env={"ANTHROPIC_API_KEY": key}) as engine:
    turn = engine.execute("chat-42", "fix the failing test", workdir=os.path.join(state, "app"),
                          on_event=lambda e: print(e.type, e.data))
    print(turn.text, turn.cold_start, turn.duration_ms, turn.usage, turn.cost_usd)
    # Later turns without a workdir stay in the session's workdir (same process).
    for event in engine.stream("chat-42", "now run it"):  # events as they arrive
        print(event.type)
    print(engine.sessions(), engine.session_stats("chat-42"))
    engine.stop_session("chat-42")
