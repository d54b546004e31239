"""Sessions spread over many hosts on Ray Serve (hotplex.ray_serve), on a local Ray
cluster of a head and 3 worker nodes, with the leases and transcripts in Redis
(HOTPLEX_CLUSTER_STORE=dir: a shared directory instead).

Each worker node offers one `hotplex_host` resource, so each of the 3 replicas runs
on its own node, as on separate machines: its own CLAUDE_CONFIG_DIR and workdir path
(so a moved conversation is written back under another project key). The agents are
the reference agent writing CLI-style transcripts. The tests run in order on one
cluster, each starting from what the one before left:

1. 30 sessions x 2 turns spread over the 3 replicas, each owned by one;
2. the node holding the most sessions is lost: every session's next turn answers with
   its whole history, the moved ones resumed on a survivor, never two agents of a
   session at once (a process scan all along), no transcript entry twice; the time
   from the loss to the first answer elsewhere is printed;
3. a replica frozen (SIGSTOP) past the lease TTL loses its session to another one;
   woken up, its turn in flight fails as Fenced and its agent is killed;
4. scaled down to one replica with turns running on every session: each stopped
   replica drains (running turns finish, its sessions are released), its sessions
   go on on the other one, no turn is lost;
5. a new version rolls out (every replica replaced) the same way.

Run by tests/run-cluster.sh; needs `pip install hotplex[ray]` and redis-server.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

# The caller's router keeps each replica's queue length for 10 s by default and
# would keep sending a frozen replica's sessions to it for that long.
os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S", "1")

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
from ray.cluster_utils import Cluster  # noqa: E402

import hotplex  # noqa: E402
from hotplex.ray_serve import deployment  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
AGENT = os.environ.get("HOTPLEX_REFERENCE_AGENT", str(ROOT / "target/debug/hotplex-reference-agent"))
SESSIONS = 30
LEASE_TTL = 3.0
APP = "hotplex-cluster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_options(owner: str) -> dict:
    """hotplex.AsyncEngine options of one replica ("host"), run on its node."""
    base = Path(os.environ["HOTPLEX_CLUSTER_BASE"]) / owner
    work = base / "work dir"
    work.mkdir(parents=True, exist_ok=True)
    (base / "config").mkdir(exist_ok=True)
    owners = base.parent / "owners"
    owners.mkdir(exist_ok=True)
    (owners / f"{owner}.json").write_text(
        json.dumps({"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()})
    )
    env = {"CLAUDE_CONFIG_DIR": str(base / "config")}
    return dict(
        binary=AGENT,
        env=env,
        default_workdir=str(work),
        state_dir=str(base / "state"),
        turn_timeout=60.0,
        startup_timeout=30.0,
        idle_timeout=600.0,
    )


class Agents:
    """The reference agents on this machine, by the replica (CLAUDE_CONFIG_DIR) that
    runs them; a sampler thread records every moment a session had agents on two."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.psids: Dict[str, str] = {}  # provider session id -> session id
        self.overlaps: List[str] = []
        self.watching = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def scan(self) -> Dict[int, tuple]:
        """pid -> (session id, owner) of every live agent of a known session."""
        out = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                argv = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")
                if not argv or not argv[0].endswith(b"hotplex-reference-agent"):
                    continue
                stat = Path(f"/proc/{d}/stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] == "Z":
                    continue
                env = Path(f"/proc/{d}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            config = next((e[18:].decode() for e in env if e.startswith(b"CLAUDE_CONFIG_DIR=")), "")
            owner = Path(config).parent.name
            words = [a.decode(errors="replace") for a in argv]
            sid = next((self.psids[w] for w in words if w in self.psids), None)
            if sid is not None:
                out[int(d)] = (sid, owner)
        return out

    def owners(self) -> Dict[str, Set[str]]:
        """session id -> the owners running an agent of it."""
        found: Dict[str, Set[str]] = {}
        for sid, owner in self.scan().values():
            found.setdefault(sid, set()).add(owner)
        return found

    def owner_of(self) -> Dict[str, str]:
        """session id -> the owner running its agent (one: the sampler and
        the tests check that no session has two)."""
        return {sid: next(iter(owners)) for sid, owners in self.owners().items()}

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            if not self.watching:
                continue
            for sid, owners in self.owners().items():
                if len(owners) > 1:
                    self.overlaps.append(f"{sid}: {sorted(owners)}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def transcript_lines(base: Path, owner: str, psid: str) -> List[str]:
    """The lines of a session's CLI-style transcript on one replica ("host")."""
    found = list((base / owner / "config" / "projects").glob(f"*/{psid}.jsonl"))
    assert len(found) == 1, f"{owner}: {found}"
    return found[0].read_text().splitlines()


class Client:
    """The caller: one turn per call through the deployment handle, retried (with
    the reason recorded) where a router would retry: a replica gone, or the session
    owned elsewhere."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.retries: List[str] = []
        self._handles: Dict[str, object] = {}
        self._lock = threading.Lock()

    def session(self, sid: str):
        """The handle routing to session sid (one per session: making one is not free)."""
        with self._lock:
            if sid not in self._handles:
                self._handles[sid] = self.handle.options(multiplexed_model_id=sid)
            return self._handles[sid]

    def turn(self, sid: str, prompt: str, retries: int = 20) -> hotplex.Turn:
        for attempt in range(retries + 1):
            try:
                return self.session(sid).execute.remote(prompt).result(
                    timeout_s=120
                )
            except Exception as e:  # noqa: BLE001 - recorded, retried, re-raised at the end
                if attempt == retries or isinstance(e, hotplex.Fenced):
                    raise
                self.retries.append(f"{sid}: {type(e).__name__}: {str(e)[:200]}")
                time.sleep(0.2)
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    os.environ["HOTPLEX_CLUSTER_BASE"] = str(base)
    os.environ.pop("HOTPLEX_REF_STATE", None)
    assert Path(AGENT).exists(), f"build the reference agent first: {AGENT}"
    server = None
    os.environ.pop("HOTPLEX_CLUSTER_REDIS_PORT", None)
    if os.environ.get("HOTPLEX_CLUSTER_STORE", "redis") == "redis":
        redis = shutil.which("redis-server")
        if redis is None:
            pytest.skip("redis-server not found (HOTPLEX_CLUSTER_STORE=dir uses a directory)")
        port = free_port()
        server = subprocess.Popen(
            [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        store = f"redis://127.0.0.1:{port}"
        os.environ["HOTPLEX_CLUSTER_REDIS_PORT"] = str(port)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
    else:
        store = str(base / "store")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    # The driver joins before the workers exist, so it attaches to the head (all
    # nodes share one address here), never to a node a test removes.
    ray.init(address=cluster.address, log_to_driver=False)
    workers = [cluster.add_node(num_cpus=2, resources={"hotplex_host": 1}) for _ in range(3)]
    cluster.wait_for_nodes()
    # The replicas unpickle replica_options by value, not by importing this file.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    serve.start(proxy_location="Disabled")
    options = dict(
        num_replicas=3,
        ray_actor_options={"num_cpus": 0, "resources": {"hotplex_host": 1}},
        max_sessions_per_replica=64,
        graceful_shutdown_timeout_s=60.0,
        health_check_period_s=2.0,
        health_check_timeout_s=60.0,
        # The same version: a later serve.run that changes num_replicas only
        # scales (serve.run of a new code version replaces every replica).
        version="v1",
    )
    args = dict(store=store, lease_ttl=LEASE_TTL, takeover_wait=30.0, drain_timeout=30.0)
    app = deployment(**options)
    handle = serve.run(app.bind(replica_options, **args), name=APP, route_prefix=None)
    agents = Agents(base)
    state = dict(
        base=base, cluster=cluster, workers=workers, handle=handle, client=Client(handle), agents=agents,
        app=app, options=options, args=args, expected={}, psid={},
    )
    try:
        yield state
    finally:
        agents.close()
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()
            if server is not None:
                server.terminate()
                server.wait()


def owner_files(base: Path) -> Dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (base / "owners").glob("*.json")}


def run_all(state, prompts: Dict[str, str], spacing: float = 0.0) -> Dict[str, hotplex.Turn]:
    """One turn on each session at once (the starts spaced by `spacing` s)."""
    client = state["client"]
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        futures = {}
        for sid, p in prompts.items():
            futures[sid] = pool.submit(client.turn, sid, p)
            time.sleep(spacing)
        return {sid: f.result() for sid, f in futures.items()}


def history(state, sid: str) -> str:
    """What `recall` answers on session sid: every prompt it was given so far."""
    return "history: " + " | ".join(state["expected"][sid])


def record(state, sid: str, turn: hotplex.Turn, prompt: str) -> None:
    state["psid"][sid] = turn.provider_session_id
    state["agents"].psids[turn.provider_session_id] = sid
    state["expected"].setdefault(sid, []).append(prompt)


def test_sessions_spread_over_three_replicas_each_owned_by_one(world):
    sids = [f"chat-{i:02}" for i in range(SESSIONS)]
    for round_ in ("alpha", "beta"):
        # New sessions go to the replica with the fewest; the router learns the
        # counts within ~0.1 s, so the first turns are spaced by that much.
        turns = run_all(world, {sid: f"{round_}-{sid}" for sid in sids}, 0.1 if round_ == "alpha" else 0)
        for sid, t in turns.items():
            assert t.text == f"echo: {round_}-{sid}"
            record(world, sid, t, f"{round_}-{sid}")
    owners = world["agents"].owners()
    assert sorted(owners) == sids, "every session has a live agent"
    assert all(len(o) == 1 for o in owners.values()), owners
    per_owner = Counter(world["agents"].owner_of().values())
    print(f"\nsessions per replica: {sorted(per_owner.values())}")
    assert len(per_owner) == 3, f"spread over every replica: {per_owner}"
    assert not world["agents"].overlaps, world["agents"].overlaps
    port = os.environ.get("HOTPLEX_CLUSTER_REDIS_PORT")
    if port:
        # The store is the Redis server: a lease and a transcript per session.
        for kind in ("lease", "transcript"):
            keys = subprocess.check_output(
                ["redis-cli", "-p", port, "--scan", "--pattern", f"hotplex:*:{kind}"], text=True
            ).split()
            assert len(keys) == SESSIONS, (kind, keys)
    world["owner_of"] = world["agents"].owner_of()


def lease_lapse(sessions: List[str]) -> Optional[float]:
    """Seconds from now until the first of these sessions' leases lapses, read
    from the Redis store (None with a directory store)."""
    port = os.environ.get("HOTPLEX_CLUSTER_REDIS_PORT")
    if not port:
        return None

    def cli(*args: str) -> List[str]:
        return subprocess.check_output(["redis-cli", "-p", port, *args], text=True).split()

    sec, usec = cli("TIME")
    now_ms = int(sec) * 1000 + int(usec) // 1000
    until = [int(cli("HGET", f"hotplex:{{{s.encode().hex()}}}:lease", "until")[0]) for s in sessions]
    return (min(until) - now_ms) / 1000


def test_losing_the_busiest_node_moves_its_sessions_with_their_history(world):
    owner_of = world["owner_of"]
    ((victim, _),) = Counter(owner_of.values()).most_common(1)
    info = owner_files(world["base"])[victim]
    node = next(n for n in world["workers"] if n.node_id == info["node"])
    moved = sorted(s for s, o in owner_of.items() if o == victim)
    agents = world["agents"]
    doomed = [pid for pid, (_, o) in agents.scan().items() if o == victim]
    assert len(doomed) == len(moved)

    lapse = lease_lapse(moved)
    # The machine is gone: its replica process killed outright, its node removed.
    lost_at = time.monotonic()
    os.kill(info["pid"], signal.SIGKILL)
    world["cluster"].remove_node(node, allow_graceful=False)
    world["workers"].remove(node)
    first_moved: List[float] = []
    client = world["client"]

    def recall(sid: str) -> hotplex.Turn:
        t = client.turn(sid, "recall")
        if sid in moved and not first_moved:
            first_moved.append(time.monotonic() - lost_at)
        return t

    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        futures = {sid: pool.submit(recall, sid) for sid in owner_of}
        turns = {sid: f.result() for sid, f in futures.items()}
    elapsed = time.monotonic() - lost_at
    print(
        f"\nnode lost with {len(moved)} sessions: first answer elsewhere after "
        f"{first_moved[0]:.2f} s, all 30 answered after {elapsed:.2f} s "
        f"(lease TTL {LEASE_TTL} s; the first of their leases lapsed "
        + (f"{lapse:.2f} s after the loss)" if lapse is not None else "at most a TTL after it)")
        + f"; router retries: {len(client.retries)}"
    )
    for sid, t in turns.items():
        assert t.text == history(world, sid), sid
        assert t.resumed == (sid in moved), sid
        record(world, sid, t, "recall")
    assert not any(os.path.exists(f"/proc/{p}") and agents.scan().get(p) for p in doomed), (
        "the lost host's agents died with it"
    )
    owners = agents.owners()
    assert all(len(o) == 1 and victim not in o for o in owners.values()), owners
    assert not agents.overlaps, f"a session ran on two replicas at once: {agents.overlaps[:5]}"
    world["owner_of"] = world["agents"].owner_of()
    for sid in moved:
        lines = transcript_lines(world["base"], world["owner_of"][sid], world["psid"][sid])
        assert [line.split("\x1f")[0] for line in lines] == world["expected"][sid][:-1] + ["recall"]
        uuids = [line.split("\x1f")[1] for line in lines if "\x1f" in line]
        assert len(uuids) == len(set(uuids)), f"{sid}: duplicated transcript entries"


def test_a_frozen_owner_loses_its_session_and_is_fenced_when_it_wakes(world):
    base, agents, client = world["base"], world["agents"], world["client"]
    owners = owner_files(base)
    live = sorted(set(world["owner_of"].values()))
    frozen = live[0]
    sid = next(s for s, o in sorted(world["owner_of"].items()) if o == frozen)
    pid = owners[frozen]["pid"]
    old_agents = [p for p, (s, o) in agents.scan().items() if s == sid and o == frozen]
    assert len(old_agents) == 1
    # A turn in flight when the host freezes: the agent answers meanwhile, but
    # nobody reads it until the host wakes up.
    stalled = client.session(sid).execute.remote("stall:2000")
    time.sleep(0.5)
    agents.watching = False  # the frozen host's agent lives on, unread, meanwhile
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(LEASE_TTL + 1.0)
        t = client.turn(sid, "recall")
        assert t.resumed, "taken up by another replica"
        assert t.text == history(world, sid)
        record(world, sid, t, "recall")
    finally:
        os.kill(pid, signal.SIGCONT)
    with pytest.raises(hotplex.Fenced):
        stalled.result(timeout_s=60)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and agents.scan().get(p) for p in old_agents):
        assert time.monotonic() < deadline, "the frozen host's agent was not killed"
        time.sleep(0.05)
    agents.watching = True
    # Its next turn goes to the new owner, with the conversation that owner kept.
    t = client.turn(sid, "recall")
    assert t.text == history(world, sid)
    assert not t.resumed
    record(world, sid, t, "recall")
    world["owner_of"] = agents.owner_of()
    assert world["owner_of"][sid] != frozen


def chatting_through(world, change, settled) -> dict:
    """Every session chats (one turn after another) while change() runs, until
    settled(owners) holds; returns what happened. No turn may fail."""
    client, agents = world["client"], world["agents"]
    before = agents.owner_of()
    stop = threading.Event()
    answered: Dict[str, List[str]] = {sid: [] for sid in before}
    slowest: List[float] = [0.0]
    errors: List[str] = []

    def chat(sid: str) -> None:
        n = 0
        while not stop.is_set():
            prompt = f"more-{sid}-{n}"
            started = time.monotonic()
            try:
                t = client.turn(sid, prompt, retries=0)
            except Exception as e:  # noqa: BLE001 - a lost turn
                errors.append(f"{sid} {prompt}: {type(e).__name__}: {e}"[:300])
                return
            slowest[0] = max(slowest[0], time.monotonic() - started)
            assert t.text == f"echo: {prompt}"
            answered[sid].append(prompt)
            record(world, sid, t, prompt)
            n += 1

    with ThreadPoolExecutor(max_workers=SESSIONS) as pool:
        futures = [pool.submit(chat, sid) for sid in answered]
        try:
            time.sleep(1)
            started = time.monotonic()
            change()
            deadline = time.monotonic() + 120
            while not settled(agents.owner_of()):
                assert time.monotonic() < deadline, "the change did not settle"
                time.sleep(0.1)
            took = time.monotonic() - started
            time.sleep(2)
        finally:
            stop.set()
        for f in futures:
            f.result()
    assert not errors, errors[:5]
    after = agents.owner_of()
    for sid in before:
        t = client.turn(sid, "recall")
        assert t.text == history(world, sid), sid
        record(world, sid, t, "recall")
    assert not agents.overlaps, agents.overlaps[:5]
    world["owner_of"] = after
    return dict(
        before=before,
        after=after,
        moved=sorted(s for s in before if before[s] != after[s]),
        took=took,
        turns=sum(map(len, answered.values())),
        slowest=slowest[0],
        answered=answered,
    )


def drained(base: Path, owner: str) -> Optional[str]:
    """The line a replica logged when its drain ended (Ray keeps replica logs)."""
    for log in Path("/tmp/ray/session_latest/logs/serve").glob("replica_*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if f"hotplex replica {owner} drained" in line:
                return line
    return None


def test_a_scale_down_drains_replicas_with_no_turn_lost(world):
    # The lost node's place is taken by a new one, where the replacement replica
    # starts: 3 replicas, two of them holding every session. Scaled to one, Ray
    # stops two gracefully while every session keeps chatting: at least one of
    # them holds sessions, which go on on the one left.
    world["workers"].append(world["cluster"].add_node(num_cpus=2, resources={"hotplex_host": 1}))
    deadline = time.monotonic() + 120
    while len(owner_files(world["base"])) < 4:
        assert time.monotonic() < deadline, "no replacement replica"
        time.sleep(0.2)
    serve.run(world["app"].bind(replica_options, **world["args"]), name=APP, route_prefix=None)
    owners = set(world["owner_of"].values())
    assert len(owners) == 2, owners

    def scale_down() -> None:
        serve.run(world["app"].options(num_replicas=1).bind(replica_options, **world["args"]),
                  name=APP, route_prefix=None)

    r = chatting_through(world, scale_down, lambda now: len(set(now.values())) == 1)
    gone = owners - set(r["after"].values())
    assert len(gone) >= 1
    print(
        f"\nscale-down to 1 replica: {len(r['moved'])} sessions moved off the stopped replicas, "
        f"which were empty after {r['took']:.1f} s; {r['turns']} turns answered meanwhile, "
        f"the slowest in {r['slowest']:.2f} s"
    )
    assert r["moved"] and all(r["before"][s] in gone for s in r["moved"])
    assert all(r["answered"][s] for s in r["moved"]), "the moved sessions answered during the drain"
    for owner in gone:
        line = drained(world["base"], owner)
        print(line)
        held = sum(1 for s in r["moved"] if r["before"][s] == owner)
        # Every session it held, and perhaps one the other stopping replica
        # released first and Ray routed here before this one stopped too.
        released = re.search(r"released (\d+) sessions", line or "")
        assert released and int(released.group(1)) >= held, line


def test_a_new_version_rolls_out_with_no_turn_lost(world):
    # A new version of the deployment (another class: Ray replaces every replica)
    # rolls out on 2 replicas.
    old = set(world["owner_of"].values())
    app = deployment(**{**world["options"], "num_replicas": 2, "version": "v2"})

    def roll_out() -> None:
        serve.run(app.bind(replica_options, **world["args"]), name=APP, route_prefix=None)

    r = chatting_through(world, roll_out, lambda now: not (set(now.values()) & old))
    print(
        f"\nrolled out: {len(r['moved'])} sessions moved to {len(set(r['after'].values()))} new "
        f"replicas in {r['took']:.1f} s; {r['turns']} turns answered meanwhile, the slowest in "
        f"{r['slowest']:.2f} s"
    )
    assert len(r["moved"]) == SESSIONS


def test_a_session_ray_evicts_is_released_and_resumes_later(world):
    # A second application of one replica that keeps 2 sessions: the third
    # evicts the least recently used, which Ray's eviction releases (agent
    # stopped, transcript saved, lease free); its next turn resumes it.
    app = deployment(**{**world["options"], "num_replicas": 1, "max_sessions_per_replica": 2})
    handle = serve.run(app.bind(replica_options, **world["args"]), name="hotplex-evict", route_prefix=None)
    agents = world["agents"]
    turns = {}
    for sid in ("evict-a", "evict-b", "evict-c"):
        turns[sid] = handle.options(multiplexed_model_id=sid).execute.remote(f"hello {sid}").result(timeout_s=60)
        agents.psids[turns[sid].provider_session_id] = sid
    deadline = time.monotonic() + 30
    while "evict-a" in agents.owners():
        assert time.monotonic() < deadline, "the evicted session's agent still runs"
        time.sleep(0.05)
    assert {"evict-b", "evict-c"} <= set(agents.owners())
    port = os.environ.get("HOTPLEX_CLUSTER_REDIS_PORT")
    if port:
        owner = subprocess.check_output(
            ["redis-cli", "-p", port, "HGET", f"hotplex:{{{b'evict-a'.hex()}}}:lease", "owner"], text=True
        ).strip()
        assert owner == "", f"the lease is free, not held by {owner!r}"
    again = handle.options(multiplexed_model_id="evict-a").execute.remote("recall").result(timeout_s=60)
    assert again.resumed and again.text == "history: hello evict-a"
    serve.delete("hotplex-evict")
