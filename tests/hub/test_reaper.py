"""Ending is prompt (invariant 4): against the real hub, a revoked or expired request's server
stops within 60 s, and the stop is on record with its reason."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.hub import Stack
from tests.hub.helpers import approved, hub_as, proc_environ, wait_ready

pytestmark = pytest.mark.hub


def start(stack: Stack, rid: int) -> dict[str, Any]:
    r = hub_as(stack, "alice").post(f"hub/api/users/alice/servers/r{rid}", json={"request_id": rid})
    assert r.status_code in (201, 202), r.text
    return wait_ready(stack, "alice", f"r{rid}")


def wait_gone(stack: Stack, server: str, within: float) -> float:
    admin = hub_as(stack, "admin")
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        servers: dict[str, Any] = admin.get("hub/api/users/alice").json().get("servers", {})
        if server not in servers:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise AssertionError(f"{server} still running after {within} s:\n{stack.hub_log()[-3000:]}")


def stop_events(stack: Stack, rid: int) -> list[dict[str, Any]]:
    events = stack.api("sam").get("audit/events", params={"request_id": rid}).json()["events"]
    return [e for e in events if e["action"] in ("server.stop", "server.end")]


def test_revoking_a_request_stops_its_server(stack: Stack) -> None:
    rid = approved(stack, "alice")
    model = start(stack, rid)
    workdir = Path(proc_environ(model["state"]["pid"])["HOME"])
    assert workdir.is_dir()
    r = stack.api("maria").post(f"requests/{rid}/revoke", json={"comment": "project closed"})
    assert r.json()["state"] == "revoked"
    took = wait_gone(stack, f"r{rid}", within=60)
    assert took < 60
    # what the notebook wrote under the request does not outlive it
    deadline = time.monotonic() + 10
    while workdir.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not workdir.exists()
    [event] = [e for e in stop_events(stack, rid) if e["action"] == "server.stop"]
    assert "revoked" in event["reason"]
    assert event["resource"] == f"alice/r{rid}" and event["tenant"] == "acme"


@pytest.mark.skipif(not os.environ.get("WORKBENCH_SLOW"), reason="takes ~2 min; WORKBENCH_SLOW=1")
def test_an_expired_requests_server_stops(stack: Stack) -> None:
    rid = approved(stack, "alice", hours=0.025)  # 90 s: the gate needs 60 s left to start
    start(stack, rid)
    ends = stack.api("alice").get(f"requests/{rid}").json()["seconds_left"]
    wait_gone(stack, f"r{rid}", within=ends + 60)
    deadline = time.monotonic() + 30  # the reaper's next round records how it ended
    while not (events := stop_events(stack, rid)) and time.monotonic() < deadline:
        time.sleep(1)
    assert events and "expired" in events[0]["reason"]


def test_starts_and_refusals_are_on_record(stack: Stack) -> None:
    rid = approved(stack, "alice")
    start(stack, rid)
    bad = hub_as(stack, "alice").post(
        "hub/api/users/alice/servers/r999999", json={"request_id": 999999}
    )
    assert bad.status_code == 404
    events = stack.api("sam").get("audit/events", params={"user": "alice", "action": "server"})
    got = [(e["action"], e["outcome"], e["request_id"]) for e in events.json()["events"]]
    assert ("server.start", "ok", rid) in got
    assert ("server.refused", "refused", 999999) in got
    hub_as(stack, "alice").delete(f"hub/api/users/alice/servers/r{rid}")
