"""Notebook servers: spawn latency, a burst of spawns, and the hub's and service's memory.

Two hubs run side by side for the whole run, on the same machine and the same Python:

- **this project**: the real embedded stack (`workbench up`: JupyterHub with the approval-gated
  `LocalRequestSpawner`, the proxy, the workbench service, OpenBao, SeaweedFS), with 20 more
  researchers (`bench01`…`bench20`) besides the demo users. The stack has no setting for more
  users, so the bench runs `workbench.embedded.up.up()` with the hub config file swapped for
  one that calls the product's own `configure_from_env(c)` and then adds the 20 users to
  `allowed_users` and to the `researcher` role. Nothing else differs from `workbench up`.
- **bare**: JupyterHub with `SimpleLocalProcessSpawner`, the same configurable-http-proxy,
  named servers, shared-password login and the same `python -m jupyterhub.singleuser`
  (`--allow-root` when root); users and their tokens made through its REST API.

Every server is started as a person would, through the REST API with that user's own token:
`POST /hub/api/users/{user}/servers/{name}` (ours: `r{id}` with `{"request_id": id}` of an
approved request). A 201 means the server is ready; a 202 (still starting after the hub's 10 s)
is followed on the server's progress event stream, as the spawn page does, to `ready` or
`failed`. (Polling the server's model instead, 20 clients every 50 ms, loaded the 2-core hub
more than the burst itself did.)

1. Approved spawn to ready: one user's server started and stopped N times on each hub, the
   hubs taking turns (the order alternating), after one warm-up spawn each. Goal: p50 ≤ 1.15×.
   Also the time from the POST to the server's process being started (/proc), which is where
   the approval gate's work (reading the request from the service as the user, the account,
   the checks) falls; the rest is JupyterLab starting and the hub noticing it, with
   JupyterHub's randomised backoff, which makes single spawns vary by seconds on both hubs.
2. Burst: 20 users each start one server at the same moment (ours: each under their own
   approved request). Goal: every spawn ready or refused with 429 (JupyterHub's
   `concurrent_spawn_limit`), and the hub stays responsive: p99 of `GET /hub/api/` and of
   `GET /hub/api/user` (one probe thread, through the proxy, one request every 50 ms) under
   1 s during the burst. The same burst on the bare hub is the baseline (not with --quick).
   When run as root, each bench user's first spawn also creates their system account
   (`useradd`); the accounts a run created are removed at its end, so every run's burst is
   such a first spawn.
3. Memory: RSS (/proc) of the hub process and of the service process with M servers running
   (50; --quick: 10), started in waves of 10, users cycled, each server under its own approved
   request; with --bare-memory also the bare hub's RSS with M servers (~3 more minutes).

    .venv/bin/python benchmarks/spawn.py [--quick]     # ~9 min (--quick: ~3 min)

`--set 'Class.trait = VALUE'` (repeatable) adds a hub setting to both hubs, to try a
configuration; `--only N` runs one figure; `--keep` keeps the hubs' homes and logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import Figure, percentile, print_table  # noqa: E402

from tests.fixtures.hub import Stack  # noqa: E402
from workbench.embedded.launch import NotReady, launch  # noqa: E402
from workbench.embedded.proxy import ensure_chp  # noqa: E402
from workbench.embedded.up import free_port, free_ports  # noqa: E402

SPAWN_GOAL = 1.15
PROBE_GOAL = 1.0  # seconds, p99 during the burst
BURST = 20
WAVE = 10
POLL = 0.1  # while a server stops
PROBE_EVERY = 0.05
SPAWN_TIMEOUT = 180.0
START_TIMEOUT = 120.0
BENCH_USERS = [f"bench{i:02d}" for i in range(1, BURST + 1)]
RESEARCHER = "alice"  # figure 1's user on both hubs

# The hub config of "this project": the product's, plus the bench researchers.
BENCH_HUB_CONFIG = """\
# Written by benchmarks/spawn.py: the embedded default's hub config plus bench researchers.
from workbench.embedded.hubconfig import configure_from_env

c = get_config()  # noqa: F821
configure_from_env(c)
BENCH = {users!r}
c.Authenticator.allowed_users = set(c.Authenticator.allowed_users) | set(BENCH)
for role in c.JupyterHub.load_roles:
    if role["name"] == "researcher":
        role["users"] = sorted(set(role["users"]) | set(BENCH))
{extra}"""

BARE_HUB_CONFIG = """\
# Written by benchmarks/spawn.py: a bare JupyterHub, the baseline.
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}/"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = {chp!r}
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.pid_file = "{dir}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "bench", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["bench"]}}
]
c.JupyterHub.allow_named_servers = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{dir}/servers/{{username}}"
c.Spawner.cmd = {cmd!r}
c.Spawner.args = {args!r}
{extra}"""


# -- the two hubs ------------------------------------------------------------------------------


@dataclass
class Hub:
    """A running hub: its public URL, a way to get a user's token, and its processes."""

    label: str
    url: str
    token_of: Callable[[str], str]
    admin_token: Callable[[], str]  # may read servers' state
    hub_pid: Callable[[], int]
    service_pid: Callable[[], int | None]
    _clients: dict[tuple[str, int], httpx.Client] = field(default_factory=dict)

    def client(self, user: str) -> httpx.Client:
        """A client with `user`'s token, one per user and thread."""
        key = (user, threading.get_ident())
        if key not in self._clients:
            self._clients[key] = httpx.Client(
                base_url=self.url,
                headers={"Authorization": f"token {self.token_of(user)}"},
                trust_env=False,
                timeout=60,
            )
        return self._clients[key]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()


@dataclass
class Spawn:
    user: str
    server: str
    body: dict[str, Any]


@dataclass
class Outcome:
    status: int  # the POST's
    seconds: float  # to ready (or to the refusal)
    ready: bool
    detail: str = ""
    posted: float = 0.0  # CLOCK_BOOTTIME when the POST was sent


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def spawn(hub: Hub, s: Spawn) -> Outcome:
    """POST the server; when that answers 202 (still starting after the hub's 10 s), follow
    its progress event stream, as the spawn page does, to `ready` or `failed`. Seconds from
    the POST."""
    c = hub.client(s.user)
    path = f"hub/api/users/{s.user}/servers/{s.server}"
    posted, start = boottime(), time.perf_counter()
    r = c.post(path, json=s.body)
    if r.status_code == 201:
        return Outcome(201, time.perf_counter() - start, True, posted=posted)
    if r.status_code != 202:
        return Outcome(r.status_code, time.perf_counter() - start, False, r.text[:300], posted)
    last: dict[str, Any] = {}
    with c.stream("GET", f"{path}/progress", timeout=SPAWN_TIMEOUT) as events:
        for line in events.iter_lines():
            if not line.startswith("data:"):
                continue
            last = json.loads(line[5:])
            if last.get("ready") or last.get("failed"):
                break
    ready = bool(last.get("ready"))
    detail = "" if ready else str(last.get("message"))
    return Outcome(202, time.perf_counter() - start, ready, detail, posted)


def stop(hub: Hub, s: Spawn) -> None:
    """DELETE the server and wait until it has stopped."""
    c = hub.client(s.user)
    path = f"hub/api/users/{s.user}/servers/{s.server}"
    r = c.delete(path)
    if r.status_code not in (202, 204):
        raise RuntimeError(f"{hub.label}: stopping {s.user}/{s.server}: {r.status_code} {r.text}")
    deadline = time.perf_counter() + SPAWN_TIMEOUT
    while time.perf_counter() < deadline:
        model = c.get(path).json()
        if model.get("stopped") and not model.get("pending"):
            return
        time.sleep(POLL)
    raise RuntimeError(f"{hub.label}: {s.user}/{s.server} did not stop")


def spawn_ok(hub: Hub, s: Spawn) -> Outcome:
    out = spawn(hub, s)
    if not out.ready:
        raise RuntimeError(f"{hub.label}: {s.user}/{s.server}: {out.status} {out.detail}")
    return out


def process_started(hub: Hub, s: Spawn) -> float:
    """CLOCK_BOOTTIME at which the running server's process was started (/proc, 10 ms)."""
    r = httpx.get(
        f"{hub.url}hub/api/users/{s.user}/servers/{s.server}",
        headers={"Authorization": f"token {hub.admin_token()}"},
        trust_env=False,
        timeout=30,
    )
    pid = int(r.json()["state"]["pid"])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


# this project


@contextlib.contextmanager
def our_stack(home: Path, password: str, extra: str = "") -> Iterator[Stack]:
    """`workbench up` on HOME with the bench hub config (see the module docstring)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "bench_hub_config.py").write_text(
        BENCH_HUB_CONFIG.format(users=BENCH_USERS, extra=extra)
    )
    port = free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1", WORKBENCH_DEMO_PASSWORD=password)
    cmd = [sys.executable, __file__, "--up", str(home), str(port)]
    try:
        launched = launch(cmd, env=env, timeout=START_TIMEOUT)
    except NotReady as e:
        raise RuntimeError(f"workbench up did not start: {e}") from None
    stack = Stack(f"http://127.0.0.1:{port}/", home, password, port, launched.proc, launched.output)
    try:
        yield stack
    finally:
        code = stack.stop(timeout=120)
        if code != 0:
            print(f"workbench up exited with {code}:", *launched.output[-20:], sep="\n")


def run_up(home: Path, port: int) -> int:
    """The `--up` child: `workbench up`, its hub config file replaced by the bench's."""
    from workbench.embedded import up

    up.config_file = lambda _home: home / "bench_hub_config.py"  # type: ignore[assignment]
    return up.up(home, port)


def ours(stack: Stack) -> Hub:
    def service_pid() -> int | None:
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
            except OSError:
                continue
            if b"workbench.service" in cmdline and str(stack.home).encode() in cmdline:
                return int(p)
        return None

    return Hub(
        "ours",
        stack.url,
        stack.token,
        lambda: stack.token("admin"),
        lambda: int((stack.home / "hub" / "jupyterhub.pid").read_text()),
        service_pid,
    )


def approved(stack: Stack, user: str) -> int:
    """An approved request of `user` for acme (maria approves); its id."""
    body = {
        "tenant": "acme",
        "datasets": ["calls"],
        "purpose": "benchmark of notebook servers",
        "profile": "cpu-small",
        "hours": 4,
    }
    r = stack.api(user).post("requests", json=body)
    if r.status_code != 201:
        raise RuntimeError(f"filing a request for {user}: {r.status_code} {r.text}")
    rid = int(r.json()["id"])
    r = stack.api("maria").post(f"requests/{rid}/approve", json={"comment": "benchmark"})
    if r.status_code != 200 or r.json().get("state") != "approved":
        raise RuntimeError(f"approving {rid}: {r.status_code} {r.text}")
    return rid


def our_spawn(stack: Stack, user: str) -> Spawn:
    rid = approved(stack, user)
    return Spawn(user, f"r{rid}", {"request_id": rid})


# the bare hub


@contextlib.contextmanager
def bare_hub(directory: Path, password: str, extra: str = "") -> Iterator[Hub]:
    port, hub_port, proxy_api_port = free_ports(3)
    token = secrets.token_hex(32)
    (directory / "servers").mkdir(parents=True, exist_ok=True)
    config = directory / "jupyterhub_config.py"
    config.write_text(
        BARE_HUB_CONFIG.format(
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            chp=ensure_chp(quiet=True),
            dir=directory,
            password=password,
            users=[RESEARCHER, *BENCH_USERS],
            token=token,
            cmd=[sys.executable, "-m", "jupyterhub.singleuser"],
            args=["--allow-root"] if os.geteuid() == 0 else [],
            extra=extra,
        )
    )
    log = (directory / "hub.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    url = f"http://127.0.0.1:{port}/"
    admin = httpx.Client(
        base_url=url, headers={"Authorization": f"token {token}"}, trust_env=False, timeout=30
    )
    tokens: dict[str, str] = {}

    def token_of(user: str) -> str:
        if user not in tokens:
            r = admin.post(f"hub/api/users/{user}/tokens", json={"note": "bench"})
            if r.status_code != 201:
                raise RuntimeError(f"bare token for {user}: {r.status_code} {r.text}")
            tokens[user] = r.json()["token"]
        return tokens[user]

    hub = Hub(
        "bare",
        url,
        token_of,
        lambda: token,
        lambda: int((directory / "jupyterhub.pid").read_text()),
        lambda: None,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the bare hub exited; see {directory / 'hub.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if admin.get("hub/api/").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bare hub did not answer; see {directory / 'hub.log'}")
            time.sleep(0.2)
        r = admin.post("hub/api/users", json={"usernames": [RESEARCHER, *BENCH_USERS]})
        if r.status_code not in (201, 409):
            raise RuntimeError(f"bare users: {r.status_code} {r.text}")
        yield hub
    finally:
        hub.close()
        admin.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- measurements --------------------------------------------------------------------------------


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def secs(x: float) -> str:
    return f"{x:.2f} s"


@dataclass
class Latency:
    ready: list[float] = field(default_factory=list)  # POST to ready
    before_process: list[float] = field(default_factory=list)  # POST to the server's process


def spawn_latency(
    hubs: tuple[Hub, Hub], specs: tuple[Spawn, Spawn], rounds: int
) -> tuple[Latency, Latency]:
    """Figure 1 for (ours, bare), the hubs taking turns."""
    found = (Latency(), Latency())
    for hub, s in zip(hubs, specs, strict=True):  # warm-up: account, bridge Python, caches
        spawn_ok(hub, s)
        stop(hub, s)
    for i in range(rounds):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for k in order:
            out = spawn_ok(hubs[k], specs[k])
            found[k].ready.append(out.seconds)
            found[k].before_process.append(process_started(hubs[k], specs[k]) - out.posted)
            stop(hubs[k], specs[k])
    return found


@dataclass
class BurstResult:
    outcomes: list[Outcome]
    wall: float
    probe_root: list[float]
    probe_user: list[float]
    probe_errors: int

    @property
    def ready(self) -> int:
        return sum(o.ready for o in self.outcomes)

    @property
    def refused(self) -> int:
        return sum(o.status == 429 for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ready and o.status != 429]


def burst(hub: Hub, specs: list[Spawn], prober: str) -> BurstResult:
    """Figure 2: every spec's spawn at once, with a probe of the hub's API meanwhile."""
    for s in specs:  # tokens first: logging in is not part of the burst
        hub.client(s.user)
    probe = httpx.Client(base_url=hub.url, trust_env=False, timeout=30)
    probe_headers = {"Authorization": f"token {hub.token_of(prober)}"}
    root: list[float] = []
    user: list[float] = []
    errors = 0
    done = threading.Event()

    def probing() -> None:
        nonlocal errors
        while not done.is_set():
            for path, out, headers in (
                ("hub/api/", root, None),
                ("hub/api/user", user, probe_headers),
            ):
                t = time.perf_counter()
                try:
                    ok = probe.get(path, headers=headers).status_code == 200
                except httpx.HTTPError:
                    ok = False
                out.append(time.perf_counter() - t)
                errors += not ok
                time.sleep(PROBE_EVERY)

    barrier = threading.Barrier(len(specs) + 1)

    def one(s: Spawn) -> Outcome:
        hub.client(s.user)
        barrier.wait()
        return spawn(hub, s)

    thread = threading.Thread(target=probing)
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = [pool.submit(one, s) for s in specs]
        thread.start()
        barrier.wait()
        start = time.perf_counter()
        outcomes = [f.result() for f in futures]
        wall = time.perf_counter() - start
    done.set()
    thread.join()
    probe.close()
    return BurstResult(outcomes, wall, root, user, errors)


def start_many(hub: Hub, specs: list[Spawn]) -> None:
    """Start `specs` in waves of WAVE concurrent spawns; every one must be ready."""
    for i in range(0, len(specs), WAVE):
        wave = specs[i : i + WAVE]
        with ThreadPoolExecutor(len(wave)) as pool:
            list(pool.map(lambda s: spawn_ok(hub, s), wave))


def stop_all(hub: Hub, specs: list[Spawn]) -> None:
    with ThreadPoolExecutor(WAVE) as pool:
        list(pool.map(lambda s: stop(hub, s), specs))


def accounts() -> set[str]:
    return {p.pw_name for p in pwd.getpwall()}


def remove_accounts(names: set[str]) -> None:
    """Remove the notebook accounts this run made (only ones the spawner made: `wb-…` with
    its comment)."""
    for name in sorted(names):
        entry = pwd.getpwnam(name)
        if name.startswith("wb-") and entry.pw_gecos.startswith("workbench notebook account"):
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


# -- the run ----------------------------------------------------------------------------------


def figure_spawn(
    stack: Stack, hubs: tuple[Hub, Hub], rounds: int, notes: list[str]
) -> list[Figure]:
    specs = (our_spawn(stack, RESEARCHER), Spawn(RESEARCHER, "s1", {}))
    lat_o, lat_b = spawn_latency(hubs, specs, rounds)
    for label, lat in (("ours", lat_o), ("bare", lat_b)):
        notes.append(
            f"spawn to ready, {label}, in order (s): " + ", ".join(f"{t:.2f}" for t in lat.ready)
        )
    p50o, p50b = percentile(lat_o.ready, 50), percentile(lat_b.ready, 50)
    p90o, p90b = percentile(lat_o.ready, 90), percentile(lat_b.ready, 90)
    mino, minb = min(lat_o.ready), min(lat_b.ready)
    pre_o, pre_b = percentile(lat_o.before_process, 50), percentile(lat_b.before_process, 50)
    return [
        Figure(
            f"spawn to ready, p50 of {rounds}",
            secs(p50o),
            secs(p50b),
            p50o / p50b,
            f"<= {SPAWN_GOAL}x",
            p50o / p50b <= SPAWN_GOAL,
        ),
        Figure("spawn to ready, p90", secs(p90o), secs(p90b), p90o / p90b, "-", None),
        Figure("spawn to ready, min", secs(mino), secs(minb), mino / minb, "-", None),
        Figure(
            "POST to server process started, p50",
            f"{pre_o * 1000:.0f} ms",
            f"{pre_b * 1000:.0f} ms",
            pre_o / pre_b,
            "-",
            None,
        ),
    ]


def figure_burst(
    stack: Stack, hubs: tuple[Hub, Hub], notes: list[str], bare_too: bool
) -> list[Figure]:
    mine, bare = hubs
    runs = [("ours", mine, [our_spawn(stack, u) for u in BENCH_USERS])]
    if bare_too:
        runs.append(("bare", bare, [Spawn(u, "b1", {}) for u in BENCH_USERS]))
    results: dict[str, BurstResult] = {}
    for label, hub, specs in runs:
        results[label] = r = burst(hub, specs, RESEARCHER)
        stop_all(hub, [s for s, o in zip(specs, r.outcomes, strict=True) if o.ready])
        reasons: dict[str, int] = {}
        for o in r.failed:
            why = re.sub(r"https?://\S+", "URL", o.detail.split("\n")[0])[:160]
            reasons[why] = reasons.get(why, 0) + 1
        for why, n in reasons.items():
            notes.append(f"{label}: {n} burst spawn(s) failed: {why}")
        if r.probe_errors:
            notes.append(f"{label}: {r.probe_errors} probe(s) of the hub's API failed in the burst")
    ro = results["ours"]
    rb = results.get("bare")

    def counts(r: BurstResult | None) -> str:
        return "(not run)" if r is None else f"{r.ready} / {r.refused} / {len(r.failed)}"

    def ratio(a: float, b: float | None) -> float | None:
        return None if b is None or not b else a / b

    figures = [
        Figure(
            f"burst of {BURST}: ready / 429 / failed",
            counts(ro),
            counts(rb),
            None,
            "none failed",
            not ro.failed,
        ),
        Figure(
            f"burst of {BURST}: until the last answer",
            secs(ro.wall),
            secs(rb.wall) if rb else "-",
            ratio(ro.wall, rb.wall if rb else None),
            "-",
            None,
        ),
    ]
    ready_o = [o.seconds for o in ro.outcomes if o.ready]
    ready_b = [o.seconds for o in rb.outcomes if o.ready] if rb else []
    if ready_o:
        a = percentile(ready_o, 50)
        b = percentile(ready_b, 50) if ready_b else None
        figures.append(
            Figure(
                f"burst of {BURST}: p50 to ready (of the ready)",
                secs(a),
                secs(b) if b else "-",
                ratio(a, b),
                "-",
                None,
            )
        )
    for name, po, pb in (
        ("GET /hub/api/", ro.probe_root, rb.probe_root if rb else []),
        ("GET /hub/api/user", ro.probe_user, rb.probe_user if rb else []),
    ):
        a = percentile(po, 99)
        b = percentile(pb, 99) if pb else None
        figures.append(
            Figure(
                f"burst: {name} p99 ({len(po)} probes)",
                f"{a * 1000:.0f} ms",
                f"{b * 1000:.0f} ms" if b else "-",
                ratio(a, b),
                f"< {PROBE_GOAL * 1000:.0f} ms",
                a < PROBE_GOAL,
            )
        )
    return figures


def figure_memory(
    stack: Stack, hubs: tuple[Hub, Hub], servers: int, notes: list[str], bare_too: bool
) -> list[Figure]:
    mine, bare = hubs
    users = [BENCH_USERS[i % BURST] for i in range(servers)]
    before = rss_mb(mine.hub_pid()), rss_mb(mine.service_pid()), rss_mb(bare.hub_pid())
    our_many = [our_spawn(stack, u) for u in users]
    start_many(mine, our_many)
    time.sleep(2)
    hub_o, svc_o = rss_mb(mine.hub_pid()), rss_mb(mine.service_pid())
    stop_all(mine, our_many)
    hub_b = None
    if bare_too:
        bare_many = [Spawn(u, f"m{i}", {}) for i, u in enumerate(users)]
        start_many(bare, bare_many)
        time.sleep(2)
        hub_b = rss_mb(bare.hub_pid())
        stop_all(bare, bare_many)
    notes.append(
        f"RSS before figure 3's servers (after figures 1-2): ours: hub {before[0]:.0f} MB, "
        f"service {before[1]:.0f} MB; bare hub {before[2]:.0f} MB."
    )
    bare_text = f"{hub_b:.0f} MB" if hub_b else "(not run)"
    return [
        Figure(
            f"hub RSS, {servers} servers running",
            f"{hub_o:.0f} MB",
            bare_text,
            hub_o / hub_b if hub_b else None,
            "-",
            None,
        ),
        Figure(f"service RSS, {servers} servers", f"{svc_o:.0f} MB", "(none)", None, "-", None),
        Figure(
            f"hub + service RSS, {servers} servers",
            f"{hub_o + svc_o:.0f} MB",
            bare_text,
            (hub_o + svc_o) / hub_b if hub_b else None,
            "-",
            None,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer spawns, 10 servers")
    parser.add_argument("--rounds", type=int, help="figure 1's spawns per hub")
    parser.add_argument("--servers", type=int, help="figure 3's running servers")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="Class.trait=VALUE",
        help="extra hub setting for both hubs, VALUE a Python literal (to try a configuration)",
    )
    parser.add_argument(
        "--only", type=int, action="append", choices=(1, 2, 3), help="run only this figure"
    )
    parser.add_argument(
        "--bare-memory",
        action="store_true",
        help="figure 3 on the bare hub too (doubles its time: ~3 more minutes at 50 servers)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the hubs' homes and logs")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 12)
    servers = args.servers or (10 if args.quick else 50)
    extra = "".join(f"c.{setting}\n" for setting in args.set)
    password = "bench-" + secrets.token_urlsafe(12)
    before = accounts()
    began = time.perf_counter()
    figures: list[Figure] = []
    notes: list[str] = (
        [f"extra hub settings for both hubs: {', '.join(args.set)}"] if args.set else []
    )

    with contextlib.ExitStack() as cleanup:
        # runs last, after both hubs have stopped: no server runs as these accounts then
        cleanup.callback(lambda: remove_accounts(accounts() - before))
        if args.keep:
            tmp = Path(tempfile.mkdtemp(prefix="wb-bench-spawn-"))
            print(f"homes and logs in {tmp}", flush=True)
        else:
            tmp = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="wb-bench-")))
        print("starting workbench up and a bare JupyterHub", flush=True)
        stack = cleanup.enter_context(our_stack(tmp / "home", password, extra))
        bare = cleanup.enter_context(bare_hub(tmp / "bare", password, extra))
        hubs = (ours(stack), bare)
        cleanup.callback(hubs[0].close)
        parts = (
            (
                f"spawn to ready: {rounds} spawns on each hub, taking turns",
                lambda: figure_spawn(stack, hubs, rounds, notes),
            ),
            (
                f"burst: {BURST} users start a server at once",
                lambda: figure_burst(stack, hubs, notes, bare_too=not args.quick),
            ),
            (
                f"memory: {servers} running servers"
                + (" on each hub" if args.bare_memory else " (bare hub: with --bare-memory)"),
                lambda: figure_memory(stack, hubs, servers, notes, bare_too=args.bare_memory),
            ),
        )
        for number, (what, run) in enumerate(parts, 1):
            if args.only and number not in args.only:
                continue
            t = time.perf_counter()
            print(f"{number}. {what}", flush=True)
            figures += run()
            print(f"   {time.perf_counter() - t:.0f} s", flush=True)

    notes.append(
        ("as root: servers run as per-user accounts" if os.geteuid() == 0 else "not root")
        + f"; the whole run took {time.perf_counter() - began:.0f} s."
    )
    print_table("Notebook servers: approval-gated local spawner vs bare JupyterHub", figures, notes)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--up":
        sys.exit(run_up(Path(sys.argv[2]), int(sys.argv[3])))
    main()
