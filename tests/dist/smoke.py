"""Smoke check of an installed hotplex wheel (tests/run-dist.sh runs it in a
fresh venv, from a directory outside the repository).

Usage: python smoke.py <expected version> <reference-agent> <tmpdir>
"""

import pathlib
import sys

import hotplex

want, agent, tmp = sys.argv[1:4]
assert hotplex.__version__ == want, (hotplex.__version__, want)
# The installed package, not a source tree's python/ folder.
assert "site-packages" in pathlib.Path(hotplex.__file__).parts, hotplex.__file__
# The extension carries its supervisor program and can run it.
assert hotplex.supervisor_mode() == "exec", hotplex.supervisor_mode()

d = hotplex.Detector()
v = d.check_command("rm -rf /")
assert v.blocked and v.level == "critical", v
assert d.check_command("ls -la").level == "safe"

with hotplex.Engine(
    binary=agent, env={"HOTPLEX_REF_STATE": tmp}, default_workdir=f"{tmp}/work",
    limits={"max_processes": 64},
) as engine:
    turn = engine.execute("smoke", "hello")
    assert turn.text == "echo: hello" and turn.cold_start, turn
    assert not engine.execute("smoke", "again").cold_start

print(f"Python smoke (hotplex {hotplex.__version__} from {hotplex.__file__}): ok")
