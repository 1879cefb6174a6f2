"""The reaper: which servers stop and why (pure), and a round against the real database with
a fake hub standing in for JupyterHub's REST API (the real one is in tests/hub)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import Service
from tests.mocking import token_for
from workbench.audit import Filters
from workbench.audit import query as q
from workbench.compute.reaper import Limits, RequestView, Running, decide
from workbench.compute.service import Compute

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = Limits(idle=timedelta(hours=1), idle_gpu=timedelta(minutes=20))


def view(rid: int = 7, **kw: object) -> RequestView:
    base: dict[str, object] = dict(
        id=rid,
        requester="alice",
        tenant="acme",
        active=True,
        state="approved",
        gpus=0,
        gpu_hours=0.0,
        gpu_hours_used=0.0,
    )
    base.update(kw)
    return RequestView(**base)  # type: ignore[arg-type]


def running(name: str = "r7", user: str = "alice", idle: timedelta = timedelta(0)) -> Running:
    return Running(user, name, NOW - timedelta(hours=2), NOW - idle)


def test_active_busy_servers_keep_running() -> None:
    assert decide([running()], {7: view()}, NOW, LIMITS) == []


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_ended_requests_lose_their_servers(state: str) -> None:
    [stop] = decide([running()], {7: view(active=False, state=state)}, NOW, LIMITS)
    assert stop.action == "server.stop" and state in stop.reason


def test_a_server_of_someone_elses_or_no_request_stops() -> None:
    assert decide([running(user="bob")], {7: view()}, NOW, LIMITS)[0].action == "server.stop"
    assert decide([running("r8")], {7: view()}, NOW, LIMITS)[0].action == "server.stop"


def test_idle_limits_are_shorter_for_gpus() -> None:
    idle = running(idle=timedelta(minutes=30))
    assert decide([idle], {7: view()}, NOW, LIMITS) == []
    [stop] = decide([idle], {7: view(gpus=1, gpu_hours=10)}, NOW, LIMITS)
    assert stop.action == "server.cull" and "20 minutes" in stop.reason


def test_gpu_budget_stops_at_100_percent() -> None:
    assert (
        decide([running()], {7: view(gpus=1, gpu_hours=4, gpu_hours_used=3.9)}, NOW, LIMITS) == []
    )
    [stop] = decide([running()], {7: view(gpus=1, gpu_hours=4, gpu_hours_used=4)}, NOW, LIMITS)
    assert stop.action == "server.budget" and "4 of 4" in stop.reason.replace(".00", "")


class FakeHub:
    """What JupyterHub's REST API would report, and the stops asked of it."""

    def __init__(self) -> None:
        self.servers: list[Running] = []
        self.stopped: list[tuple[str, str]] = []

    def running_servers(self) -> list[Running]:
        return list(self.servers)

    def stop(self, user: str, name: str) -> None:
        self.stopped.append((user, name))
        self.servers = [s for s in self.servers if (s.user, s.name) != (user, name)]


def test_a_round_accounts_use_and_stops_a_revoked_requests_server(service: Service) -> None:
    body = {"tenant": "acme", "datasets": ["calls"], "purpose": "p", "profile": "gpu-1", "hours": 2}
    with service.client("alice") as alice, service.client("maria") as maria:
        rid = alice.post("requests", json=body).json()["id"]
        maria.post(f"requests/{rid}/approve", json={})
        hub = FakeHub()
        started = datetime.now(UTC) - timedelta(minutes=30)
        hub.servers = [Running("alice", f"r{rid}", started, datetime.now(UTC))]
        compute = Compute(service.wb.sessions, service.wb.audit, hub, LIMITS)
        assert compute.reap() == []
        used = compute.usage(rid)["gpu_hours_used"]
        assert 0.49 < used < 0.6  # half an hour on one GPU
        maria.post(f"requests/{rid}/revoke", json={"comment": "done"})
    [stop] = compute.reap()
    assert hub.stopped == [("alice", f"r{rid}")] and "revoked" in stop.reason
    with service.wb.engine.connect() as conn:
        event = q.events(conn, Filters(action="server.stop"))[0]
    assert event["request_id"] == rid and event["tenant"] == "acme"
    assert event["resource"] == f"alice/r{rid}" and "revoked" in event["reason"]
    compute.reap()  # the server is gone: its session closes, its use stays
    assert compute.usage(rid)["gpu_hours_used"] >= used
    with service.wb.engine.connect() as conn:  # we stopped it: no second record of its end
        assert q.events(conn, Filters(action="server.end")) == []


class SlowHub(FakeHub):
    """A hub whose servers take a while to stop: one asked to stop is still listed."""

    def stop(self, user: str, name: str) -> None:
        self.stopped.append((user, name))


def test_a_server_still_stopping_is_on_record_once(service: Service) -> None:
    """Every round (and the round a revocation starts at once) stops a server that is still
    listed as running; its stop is on record once."""
    body = {"tenant": "acme", "datasets": ["calls"], "purpose": "p", "profile": "cpu-small"}
    with service.client("alice") as alice, service.client("maria") as maria:
        rid = alice.post("requests", json={**body, "hours": 1}).json()["id"]
        maria.post(f"requests/{rid}/approve", json={})
        hub = SlowHub()
        hub.servers = [Running("alice", f"r{rid}", datetime.now(UTC), datetime.now(UTC))]
        compute = Compute(service.wb.sessions, service.wb.audit, hub, LIMITS)
        compute.reap()
        maria.post(f"requests/{rid}/revoke", json={"comment": "done"})
    for _ in range(3):
        compute.reap()
    assert hub.stopped == [("alice", f"r{rid}")] * 3
    with service.wb.engine.connect() as conn:
        [event] = q.events(conn, Filters(action="server.stop"))
    assert "revoked" in event["reason"] and event["request_id"] == rid


def test_a_server_that_vanished_is_recorded_with_why(service: Service) -> None:
    body = {
        "tenant": "acme",
        "datasets": ["calls"],
        "purpose": "p",
        "profile": "cpu-small",
        "hours": 1,
    }
    with service.client("alice") as alice, service.client("maria") as maria:
        rid = alice.post("requests", json=body).json()["id"]
        maria.post(f"requests/{rid}/approve", json={})
    hub = FakeHub()
    hub.servers = [Running("alice", f"r{rid}", datetime.now(UTC), datetime.now(UTC))]
    compute = Compute(service.wb.sessions, service.wb.audit, hub, LIMITS)
    compute.reap()
    hub.servers = []  # its user stopped it from the hub's home page
    compute.reap()
    with service.wb.engine.connect() as conn:
        [event] = q.events(conn, Filters(action="server.end"))
    assert event["request_id"] == rid and event["reason"] == "stopped by its user or the hub"


def test_use_is_shown_to_the_researcher_and_the_manager(service: Service) -> None:
    body = {"tenant": "acme", "datasets": ["calls"], "purpose": "p", "profile": "gpu-1", "hours": 2}
    with service.client("alice") as alice, service.client("maria") as maria:
        rid = alice.post("requests", json=body).json()["id"]
        maria.post(f"requests/{rid}/approve", json={})
        hub = FakeHub()
        hub.servers = [
            Running("alice", f"r{rid}", datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
        ]
        Compute(service.wb.sessions, service.wb.audit, hub, LIMITS).reap()
        [mine] = alice.get("requests").json()["requests"]
        assert 0.99 < mine["usage"]["gpu_hours_used"] < 1.1
        assert 3.9 < mine["usage"]["cpu_hours_used"] < 4.4  # gpu-1 has 4 CPUs
    page = httpx.get(
        service.url + "manage", headers={"Authorization": f"token {token_for('maria')}"}
    )
    assert 'id="usage"' in page.text and "<td>alice</td><td>1.0" in page.text.replace("\n", "")
