"""The export airlock through the REST API and the notebook client: a file leaves only after
a manager of its tenant other than its requester approved it, and every step is on record."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from traitlets.config import Config

from tests.conftest import Service
from tests.mocking import token_for
from workbench import airlock
from workbench.audit import Filters
from workbench.audit import query as q

BODY = {"datasets": ["calls"], "purpose": "Churn model", "profile": "cpu-small", "hours": 1}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def config(config: Config) -> Config:
    # maria governs acme and globex, mike only globex
    tenants = dict(config.Catalog.tenants)
    tenants["acme"] = dict(tenants["acme"], managers=["maria"], approvals_required=1)
    tenants["globex"] = dict(tenants["globex"], managers=["maria", "mike"])
    config.Catalog.tenants = tenants
    return config


def approved(
    service: Service, user: str = "alice", tenant: str = "acme", manager: str = "maria"
) -> int:
    with service.client(user) as c:
        rid = int(c.post("requests", json={**BODY, "tenant": tenant}).json()["id"])
    with service.client(manager) as m:
        assert m.post(f"requests/{rid}/approve", json={}).json()["state"] == "approved"
    return rid


def submit(c: httpx.Client, rid: int, content: bytes = PNG, **kw: Any) -> httpx.Response:
    body = {
        "request_id": rid,
        "filename": "churn plot.png",
        "content": base64.b64encode(content).decode(),
        "reason": "figure for the quarterly report",
        **kw,
    }
    return c.post("exports", json=body)


def events(service: Service, **filters: Any) -> list[dict[str, Any]]:
    with service.wb.engine.connect() as conn:
        return q.events(conn, Filters(**filters))


def test_released_only_after_approval_and_every_step_on_record(service: Service) -> None:
    rid = approved(service)
    with service.client("alice") as alice, service.client("maria") as maria:
        r = submit(alice, rid)
        assert r.status_code == 201, r.text
        export = r.json()
        assert export["state"] == "pending" and export["tenant"] == "acme"
        early = alice.get(f"exports/{export['id']}/download")
        assert (
            early.status_code == 409 and "only after a reviewer approves" in early.json()["error"]
        )
        assert [
            e["id"] for e in maria.get("exports", params={"view": "review"}).json()["exports"]
        ] == [export["id"]]
        peek = maria.get(f"exports/{export['id']}/download")  # the reviewer sees what leaves
        assert peek.status_code == 200 and peek.content == PNG
        ok = maria.post(f"exports/{export['id']}/approve", json={"comment": "aggregate only"})
        assert ok.status_code == 200 and ok.json()["state"] == "approved"
        got = alice.get(f"exports/{export['id']}/download")
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["X-Checksum-SHA256"] == export["sha256"]
        assert "attachment" in got.headers["Content-Disposition"]
        again = maria.post(f"exports/{export['id']}/reject", json={})
        assert again.status_code == 409
    actions = [
        e["action"]
        for e in events(service, tenant="acme", outcome="ok")
        if e["action"].startswith("export.")
    ]
    assert actions[:4] == ["export.download", "export.approve", "export.inspect", "export.request"]
    download = events(service, action="export.download", outcome="ok")[0]
    assert download["actor"] == "alice" and download["detail"]["sha256"] == export["sha256"]
    refused = events(service, action="export.download", outcome="refused")[0]
    assert refused["actor"] == "alice" and refused["tenant"] == "acme"


def test_self_review_is_refused(service: Service) -> None:
    rid = approved(service, user="maria", tenant="globex", manager="mike")
    with service.client("maria") as maria:
        export = submit(maria, rid).json()
        r = maria.post(f"exports/{export['id']}/approve", json={})
        assert r.status_code == 403 and "your own export" in r.json()["error"]
        assert maria.get(f"exports/{export['id']}").json()["state"] == "pending"


def test_another_tenants_manager_and_other_users_are_refused(service: Service) -> None:
    rid = approved(service)
    with service.client("alice") as alice:
        export = submit(alice, rid).json()
    with service.client("mike") as mike:  # manages globex, not acme
        r = mike.post(f"exports/{export['id']}/approve", json={})
        assert r.status_code == 404  # not even visible to him
        assert mike.get(f"exports/{export['id']}/download").status_code == 404
    with service.client("bob") as bob:
        assert bob.post(f"exports/{export['id']}/approve", json={}).status_code == 403
        assert bob.get(f"exports/{export['id']}/download").status_code == 404
    with service.client("maria") as maria:
        assert maria.post(f"exports/{export['id']}/reject", json={}).json()["state"] == "rejected"
    with service.client("alice") as alice:
        assert alice.get(f"exports/{export['id']}/download").status_code == 409


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"filename": "../../etc/passwd"}, 400, "no directories"),
        ({"filename": ".bashrc"}, 400, "not valid"),
        ({"content": "not base64!"}, 400, "base64"),
        ({"reason": "  "}, 400, "reason"),
        ({"request_id": 999}, 404, "no access request"),
    ],
)
def test_bad_input(service: Service, change: dict[str, Any], status: int, message: str) -> None:
    rid = approved(service)
    with service.client("alice") as alice:
        body = {
            "request_id": rid,
            "filename": "t.csv",
            "content": base64.b64encode(b"a,b\n").decode(),
            "reason": "r",
            **change,
        }
        r = alice.post("exports", json=body)
        assert r.status_code == status and message in r.json()["error"], r.text


def test_someone_elses_or_an_ended_request(service: Service) -> None:
    rid = approved(service)
    with service.client("bob") as bob:
        assert submit(bob, rid).status_code == 404
    with service.client("alice") as alice:
        alice.post(f"requests/{rid}/revoke", json={})
        r = submit(alice, rid)
        assert r.status_code == 409 and "not approved and unexpired" in r.json()["error"]


def test_the_notebook_client(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = approved(service)
    monkeypatch.setenv("WORKBENCH_API_URL", service.url + "api/v1/")
    monkeypatch.setenv("WORKBENCH_TOKEN", token_for("alice"))
    monkeypatch.setenv("WORKBENCH_REQUEST_ID", str(rid))
    fig = tmp_path / "fig.png"
    fig.write_bytes(PNG)
    export = airlock.request_export(fig, "the churn plot")
    assert export["state"] == "pending" and export["filename"] == "fig.png"
    with pytest.raises(airlock.AirlockError, match="HTTP 409"):
        airlock.download(export["id"])
    with service.client("maria") as maria:
        maria.post(f"exports/{export['id']}/approve", json={})
    out = tmp_path / "out.png"
    assert airlock.download(export["id"], out) == PNG and out.read_bytes() == PNG
    assert [e["id"] for e in airlock.exports()] == [export["id"]]
