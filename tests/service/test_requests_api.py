"""The REST contract of access requests, against the service on a real port (fake hub tokens),
on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import Service
from workbench.audit import Filters
from workbench.audit import query as q
from workbench.requests.models import AccessRequest

Api = Callable[[str | None], httpx.Client]
BODY = {
    "tenant": "acme",
    "datasets": ["calls"],
    "purpose": "Churn model for Q4",
    "profile": "cpu-small",
    "hours": 8,
}


def file(api: Api, user: str = "alice", **change: Any) -> httpx.Response:
    return api(user).post("requests", json={**BODY, **change})


def n_requests(service: Service) -> int:
    with service.wb.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AccessRequest)) or 0)


def events(service: Service, **filters: Any) -> list[dict[str, Any]]:
    with service.wb.engine.connect() as conn:
        return q.events(conn, Filters(**filters))


both = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@both
def test_file_and_approve(api: Api, service: Service) -> None:
    r = file(api)
    assert r.status_code == 201, r.text
    req = r.json()
    assert req["state"] == "pending" and req["requester"] == "alice" and req["id"] > 0
    assert (
        api("maria").get("requests", params={"view": "decide"}).json()["requests"][0]["id"]
        == req["id"]
    )
    r = api("maria").post(f"requests/{req['id']}/approve", json={"comment": "ok for Q4"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["expires_at"]
    assert api("alice").get(f"requests/{req['id']}").json()["state"] == "approved"
    actions = [e["action"] for e in events(service, request_id=req["id"])]
    assert actions == ["request.approve", "request.file"]
    approve = events(service, action="request.approve")[0]
    assert approve["actor"] == "maria" and approve["role"] == "manager"
    assert approve["purpose"] == "Churn model for Q4" and approve["tenant"] == "acme"
    assert approve["detail"]["comment"] == "ok for Q4" and approve["client"] == "127.0.0.1"


def test_nobody_approves_their_own(api: Api, service: Service) -> None:
    req = file(api, "maria").json()
    r = api("maria").post(f"requests/{req['id']}/approve", json={})
    assert r.status_code == 403 and "your own request" in r.json()["error"]
    refused = events(service, outcome="refused")[0]
    assert refused["actor"] == "maria" and refused["tenant"] == "acme"
    assert refused["request_id"] == req["id"] and refused["action"] == "request.approve"
    assert api("mike").post(f"requests/{req['id']}/approve", json={}).json()["state"] == "approved"


def test_manager_of_another_tenant_cannot_decide(api: Api) -> None:
    req = file(api, tenant="globex").json()  # globex is governed by maria alone
    r = api("mike").post(f"requests/{req['id']}/approve", json={})
    assert r.status_code == 404
    assert api("alice").get(f"requests/{req['id']}").json()["state"] == "pending"


def test_two_approvals_from_two_managers(api: Api) -> None:
    req = file(api, tenant="initech", datasets=["tickets"]).json()
    assert req["approvals_required"] == 2
    first = api("maria").post(f"requests/{req['id']}/approve", json={}).json()
    assert first["state"] == "pending" and first["approvals"] == ["maria"]
    again = api("maria").post(f"requests/{req['id']}/approve", json={})
    assert again.status_code == 409 and "already approved" in again.json()["error"]
    second = api("mike").post(f"requests/{req['id']}/approve", json={}).json()
    assert second["state"] == "approved" and second["approvals"] == ["maria", "mike"]


def test_only_pending_requests_are_decided_and_revoke_ends(api: Api) -> None:
    req = file(api).json()
    api("maria").post(f"requests/{req['id']}/approve", json={})
    r = api("maria").post(f"requests/{req['id']}/deny", json={})
    assert r.status_code == 409 and "only pending" in r.json()["error"]
    r = api("maria").post(f"requests/{req['id']}/revoke", json={"comment": "project cancelled"})
    assert r.json()["state"] == "revoked" and "project cancelled" in r.json()["end_reason"]
    r = api("maria").post(f"requests/{req['id']}/revoke", json={})
    assert r.status_code == 409


def test_deny_and_withdraw(api: Api) -> None:
    a = file(api).json()
    assert (
        api("maria").post(f"requests/{a['id']}/deny", json={"comment": "no"}).json()["state"]
        == "denied"
    )
    b = file(api).json()
    assert api("bob").post(f"requests/{b['id']}/withdraw", json={}).status_code == 404
    assert api("alice").post(f"requests/{b['id']}/withdraw", json={}).json()["state"] == "withdrawn"


def test_requests_are_private_to_their_people(api: Api) -> None:
    req = file(api).json()
    assert api("bob").get(f"requests/{req['id']}").status_code == 404
    assert api("bob").get("requests").json()["requests"] == []
    assert api("sam").get(f"requests/{req['id']}").status_code == 200  # security reads all
    assert [
        r["id"] for r in api("maria").get("requests", params={"view": "all"}).json()["requests"]
    ] == [req["id"]]


@both
@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**BODY, "tenant": "umbrella"}, 400, "unknown tenant"),
        ({**BODY, "datasets": ["payroll"]}, 400, "has no dataset"),
        ({**BODY, "purpose": ""}, 400, "purpose"),
        ({**BODY, "profile": "gpu-9000"}, 400, "unknown profile"),
        ({**BODY, "hours": 100000}, 400, "hours"),
        ({**BODY, "hours": -1}, 400, "hours"),
        ({**BODY, "hours": "lots"}, 400, "hours"),
        ({**BODY, "gpu_hours": 5000}, 400, "gpu_hours"),
        ({**BODY, "owner": "mallory"}, 400, "owner"),
        ({k: v for k, v in BODY.items() if k != "tenant"}, 400, "tenant"),
        ("{not json", 400, "not valid JSON"),
        ([1, 2], 400, "invalid request body"),
        ({**BODY, "purpose": "x" * 100_000}, 413, "larger than"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    api: Api, service: Service, body: Any, status: int, message: str
) -> None:
    before = service.wb.audit.count()
    content = body if isinstance(body, str) else json.dumps(body)
    r = api("alice").post("requests", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert n_requests(service) == 0
    assert service.wb.audit.count() == before + 1
    assert events(service)[0]["outcome"] == "refused"


@pytest.mark.parametrize(
    ("user", "status", "message"),
    [
        (None, 401, "token"),
        ("forged", 401, "token"),
        ("eve", 403, "custom:workbench:request"),
        ("sam", 403, "custom:workbench:request"),
    ],
)
def test_callers_without_the_scope_are_refused(
    service: Service, user: str | None, status: int, message: str
) -> None:
    with service.client(user) as c:
        r = c.post("requests", json=BODY)
    assert r.status_code == status and message in r.json()["error"]
    assert n_requests(service) == 0
    assert events(service)[0]["outcome"] == "refused"


def test_deciding_a_missing_request(api: Api) -> None:
    r = api("maria").post("requests/999/approve", json={})
    assert r.status_code == 404 and "no access request 999" in r.json()["error"]
    assert api("maria").post("requests/1/explode", json={}).status_code == 404


def test_expiry_ends_an_approved_request(api: Api, service: Service) -> None:
    service.wb.requests.policy.min_hours = 0.00001
    req = file(api, hours=0.0001).json()  # 0.36 s
    api("maria").post(f"requests/{req['id']}/approve", json={})
    import time

    time.sleep(0.5)
    assert service.wb.requests.expire_due() == [req["id"]]
    assert api("alice").get(f"requests/{req['id']}").json()["state"] == "expired"
    assert events(service, action="request.expire")[0]["actor"] == "workbench"
    r = api("alice").post(f"requests/{req['id']}/revoke", json={})
    assert r.status_code == 409


def test_audit_api_is_for_security(api: Api) -> None:
    file(api)
    assert api("alice").get("audit/events").status_code == 403
    r = api("sam").get("audit/events", params={"tenant": "acme", "since": "1d"})
    assert r.status_code == 200 and r.json()["events"][0]["action"] == "request.file"
    assert api("sam").get("audit/events", params={"since": "yesterday"}).status_code == 400
    v = api("sam").get("audit/verify").json()
    assert v["ok"] is True and v["events"] >= 2
    # reading the log is itself on record
    assert (
        api("sam").get("audit/events", params={"action": "audit"}).json()["events"][0]["actor"]
        == "sam"
    )


def test_openapi_and_health(service: Service) -> None:
    with service.client() as c:
        assert c.get("health").json() == {"status": "ok"}
        doc = c.get("openapi.json").json()
    assert {"/requests", "/requests/{id}", "/requests/{id}/{decision}", "/audit/events"} <= set(
        doc["paths"]
    )
    assert "RequestIn" in doc["components"]["schemas"]
