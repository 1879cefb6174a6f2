"""A spawn flood against the real hub: twice `concurrent_spawn_limit` approved spawns at the
same moment. Each must be accepted (201 ready, 202 still starting) or refused cleanly (429,
"try again", as JupyterHub refuses past the limit), never a 5xx; the hub must stay responsive
(p99 of `GET /hub/api/` under 1 s, probed every 50 ms during the flood); the servers that
started are stopped afterwards.

The embedded stack's limit is `max(4, 4 × CPUs)` (workbench/embedded/hubconfig.py); the demo
stack has two researchers, so each starts half the flood as named servers, each under an
approved request of its own (the approval gate wants one per server)."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.fixtures.hub import Stack
from tests.hub.helpers import approved, hub_as

pytestmark = pytest.mark.hub

LIMIT = max(4, 4 * (os.cpu_count() or 1))  # the stack's concurrent_spawn_limit
PROBE_EVERY = 0.05
READY_TIMEOUT = 240.0


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def wait_stopped(stack: Stack, user: str, server: str, timeout: float = 120) -> None:
    admin = hub_as(stack, "admin")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = admin.get(f"hub/api/users/{user}/servers/{server}")
        if r.status_code == 404 or not r.json().get("pending") and not r.json().get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}/{server} did not stop")


def settle(stack: Stack, user: str, server: str) -> dict[str, Any]:
    """The server's model once it is no longer pending (ready, or failed and gone)."""
    admin = hub_as(stack, "admin")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        r = admin.get(f"hub/api/users/{user}/servers/{server}")
        if r.status_code == 404:
            return {}
        model = r.json()
        if not model.get("pending"):
            return dict(model)
        time.sleep(0.5)
    raise AssertionError(f"{user}/{server} still pending after {READY_TIMEOUT:.0f} s")


def test_a_spawn_flood_gets_only_429s_past_the_limit_and_the_hub_answers(stack: Stack) -> None:
    users = ("alice", "bob")
    flood, bodies = [], {}
    for i in range(2 * LIMIT):
        user = users[i % 2]
        rid = approved(stack, user)
        flood.append((user, f"r{rid}"))  # a request's server is the named server r<id>
        bodies[f"r{rid}"] = {"request_id": rid}
    clients = {user: hub_as(stack, user) for user in users}
    probe_client = stack.client()
    latencies: list[float] = []
    probe_errors: list[str] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            r = probe_client.get("hub/api/")
            latencies.append(time.perf_counter() - start)
            if r.status_code != 200:
                probe_errors.append(f"{r.status_code} {r.text[:200]}")
            stop.wait(PROBE_EVERY)

    barrier = threading.Barrier(len(flood))

    def post(user: str, name: str) -> tuple[str, str, int, str]:
        barrier.wait()
        r = clients[user].post(f"hub/api/users/{user}/servers/{name}", json=bodies[name])
        return user, name, r.status_code, r.text[:300]

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    started: list[tuple[str, str]] = []
    try:
        with ThreadPoolExecutor(len(flood)) as pool:
            outcomes = list(pool.map(lambda f: post(*f), flood))
        time.sleep(1.0)  # the hub keeps answering just after the flood too
        stop.set()
        prober.join(10)
        statuses = sorted(status for _, _, status, _ in outcomes)
        started = [(u, n) for u, n, status, _ in outcomes if status in (201, 202)]
        wrong = [o for o in outcomes if o[2] not in (201, 202, 429)]
        assert not wrong, f"a spawn got neither accepted nor a clean 429: {wrong}"
        refused = [o for o in outcomes if o[2] == 429]
        assert refused, f"{len(flood)} spawns at once and none refused: {statuses}"
        assert all("try again" in text.lower() for *_, text in refused), refused[0]
        assert not probe_errors, probe_errors[:3]
        assert len(latencies) >= 10, latencies
        assert p99(latencies) < 1.0, f"p99 of GET /hub/api/ {p99(latencies):.2f} s: {statuses}"
    finally:
        stop.set()
        for user, name in started:
            settle(stack, user, name)
        for user, name in started:
            clients[user].delete(f"hub/api/users/{user}/servers/{name}")
        for user, name in started:
            wait_stopped(stack, user, name)
