"""Tenant erasure against the real SeaweedFS, OpenBao and PostgreSQL: afterwards no object,
credential (token, lease, SQL login, KV secret, policy), server or job of the tenant remains,
the other tenant is untouched, and the certificate is in the audit log. Erasure cut short
finishes when run again; a second run finds nothing left."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import hvac.exceptions
import psycopg
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select
from traitlets.config import Config

from tests.access.conftest import PG_URL
from tests.access.test_broker import DataStack, events, stores  # noqa: F401 (a fixture)
from tests.conftest import Service
from tests.mocking import token_for
from workbench import data
from workbench.access.models import RequestToken
from workbench.audit import verify
from workbench.compute.models import ServerSession
from workbench.config import settings_for
from workbench.db import utcnow
from workbench.embedded.openbao import libpq_url
from workbench.embedded.seaweed import admin_client
from workbench.erasure.operator import Operator
from workbench.erasure.service import Erasure
from workbench.errors import Invalid
from workbench.jobs.models import Job
from workbench.service.context import Workbench

BODY = {"purpose": "Churn model", "profile": "cpu-small", "hours": 1}


@pytest.fixture
def wb(tmp_path: Path, stores: DataStack, config: Config) -> Iterator[Workbench]:  # noqa: F811
    cfg = stores.config()
    cfg.merge(config)
    workbench = Workbench.open(settings_for(tmp_path / "home", cfg))
    yield workbench
    workbench.close()


def eraser(wb: Workbench, stores: DataStack, **kw: Any) -> Erasure:  # noqa: F811
    operator = Operator(
        s3=admin_client(stores.seaweed.home, stores.seaweed.store, max_pool_connections=16),
        data_bucket="workbench-data",
        artifacts_bucket="workbench-artifacts",
        bao=stores.bao.root,
        pg_url=PG_URL,
        sql_database=stores.sql_database,
        iam=stores.seaweed.admin_iam(),
    )
    return wb.erasure(
        operator,
        server_wait=kw.pop("server_wait", 20),
        **kw,
    )


def approved(service: Service, tenant: str, datasets: list[str], user: str = "alice") -> int:
    with service.client(user) as c:
        r = c.post("requests", json={**BODY, "tenant": tenant, "datasets": datasets})
        rid = int(r.json()["id"])
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/approve", json={}).json()["state"] == "approved"
    return rid


def keys(stores: DataStack, bucket: str, prefix: str) -> list[str]:  # noqa: F811
    s3 = stores.seaweed.admin()
    out: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out


def put(stores: DataStack, bucket: str, prefix: str, n: int) -> None:  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    s3 = admin_client(stores.seaweed.home, stores.seaweed.store, max_pool_connections=16)

    def one(i: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}{i:05d}.json", Body=b'{"x": %d}' % i)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(n)))


def pg_roles(like: str) -> list[str]:
    with psycopg.connect(libpq_url(PG_URL)) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s", (like,))
        ]


def schemas(stores: DataStack) -> set[str]:  # noqa: F811
    with psycopg.connect(libpq_url(PG_URL, stores.sql_database)) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}


def reaper(wb: Workbench, stop: threading.Event) -> threading.Thread:
    """What the service's reaper does for a revoked request's server: stop it, close its row."""

    def run() -> None:
        while not stop.wait(0.5):
            with wb.sessions() as s:
                rows = s.execute(
                    select(ServerSession.id, ServerSession.request_id).where(
                        ServerSession.stopped_at.is_(None)
                    )
                ).all()
            ended = [sid for sid, rid in rows if wb.requests.active(rid) is None]
            with wb.sessions.begin() as s:
                for sid in ended:
                    row = s.get(ServerSession, sid)
                    assert row is not None
                    row.stopped_at, row.stop_reason = utcnow(), "request revoked"

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_erasure_leaves_nothing_of_the_tenant_and_the_other_untouched(
    service: Service,
    wb: Workbench,
    stores: DataStack,  # noqa: F811
) -> None:
    acme = approved(service, "acme", ["calls", "accounts"])
    globex = approved(service, "globex", ["calls", "accounts"])
    client = data.Client(acme, api_url=service.url + "api/v1/", token=token_for("alice"))
    assert list(client.open("acme/calls").records())
    s3_keys = client.grant("acme/calls")["credentials"]
    login = client.grant("acme/accounts")["credentials"]
    with service.client("bob") as bob:  # a pending request is denied
        pending = bob.post("requests", json={**BODY, "tenant": "acme", "datasets": ["calls"]})
        pending_id = pending.json()["id"]
        # an export of acme's data waits for review
        import base64

        exp = service.client("alice").post(
            "exports",
            json={
                "request_id": acme,
                "filename": "fig.png",
                "content": base64.b64encode(b"png").decode(),
                "reason": "report",
            },
        )
        assert exp.status_code == 201
    put(stores, "workbench-data", "tenants/acme/extra/", 30)
    put(stores, "workbench-artifacts", "tenants/acme/models/", 3)
    put(stores, "workbench-artifacts", "tenants/globex/models/", 2)
    globex_objects = keys(stores, "workbench-data", "tenants/globex/")
    now = utcnow()
    with wb.sessions.begin() as s:  # a running server and a queued job of acme
        s.add(
            ServerSession(
                request_id=acme,
                user="alice",
                server="r-1",
                started_at=now,
                last_seen=now,
                gpus=0,
                cpus=1,
            )
        )
        s.add(
            Job(
                request_id=acme,
                user="alice",
                tenant="acme",
                name="j",
                state="queued",
                profile="cpu-small",
                gpus=0,
                cpus=1,
                nodes=1,
                notebook="{}",
                notebook_name="n.ipynb",
                notebook_sha256="0",
                parameters="{}",
                backend="local",
                created_at=now,
            )
        )
    stop = threading.Event()
    reaper(wb, stop)
    try:
        cert = eraser(wb, stores).erase("acme")
    finally:
        stop.set()

    # objects: none of acme's in either bucket; globex's all there
    assert keys(stores, "workbench-data", "tenants/acme/") == []
    assert keys(stores, "workbench-artifacts", "tenants/acme/") == []
    assert keys(stores, "workbench-data", "tenants/globex/") == globex_objects
    assert len(keys(stores, "workbench-artifacts", "tenants/globex/")) == 2
    # its storage identity: the S3 keys handed out before the erasure are refused now
    handed_out = stores.seaweed.store.client(s3_keys["access_key_id"], s3_keys["secret_access_key"])
    with pytest.raises(ClientError) as refused:
        handed_out.list_objects_v2(Bucket="workbench-data", Prefix="tenants/acme/")
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert cert["steps"]["identity"]["deleted"] == ["tenant-acme"]
    # credentials: tokens revoked, SQL login dropped, KV, role and policy deleted
    with wb.sessions() as s:
        live = s.scalars(
            select(RequestToken).where(
                RequestToken.tenant == "acme", RequestToken.revoked_at.is_(None)
            )
        ).all()
        assert live == []
    assert pg_roles(login["username"]) == []
    root = stores.bao.root
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.kv.v2.read_secret_version(
            "tenants/acme/s3", mount_point="kv", raise_on_deleted_version=True
        )
    assert "tenant-acme" not in root.sys.list_acl_policies()["data"]["keys"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root.secrets.database.read_role("tenant-acme")
    assert "tenant_acme" not in schemas(stores) and "tenant_globex" in schemas(stores)
    # requests, servers, jobs
    with service.client("alice") as alice:
        assert alice.get(f"requests/{acme}").json()["state"] == "revoked"
        assert alice.get(f"requests/{globex}").json()["state"] == "approved"
        refused = alice.post("requests", json={**BODY, "tenant": "acme", "datasets": ["calls"]})
        assert refused.status_code == 409 and "was erased" in refused.json()["error"]
        assert alice.get(f"exports/{exp.json()['id']}").json()["state"] == "erased"
    with service.client("bob") as bob:
        assert bob.get(f"requests/{pending_id}").json()["state"] == "denied"
    with wb.sessions() as s:
        assert s.scalars(select(ServerSession.stopped_at)).all()[0] is not None
        assert {j.state for j in s.scalars(select(Job).where(Job.tenant == "acme"))} == {
            "cancelled"
        }
    assert wb.airlock.files_of("acme") == []
    # the other tenant still works
    other = data.Client(globex, api_url=service.url + "api/v1/", token=token_for("alice"))
    assert {r["tenant"] for r in other.open("globex/calls").records()} == {"globex"}
    assert {r["tenant"] for r in other.open("globex/accounts").rows()} == {"globex"}  # type: ignore[union-attr]
    # the certificate
    assert cert["objects"]["count"] == len([o for o in cert["objects"]["listed"]]) >= 33
    assert all(o["etag"] for o in cert["objects"]["listed"])
    assert cert["steps"]["sql"]["tables"]["tenant_acme.accounts"]["rows"] == 5
    assert (
        pending_id in cert["steps"]["requests"]["ended"]
        and acme in cert["steps"]["requests"]["ended"]
    )
    assert cert["steps"]["servers"]["stopped"] == ["alice/r-1"]
    on_record = events(service, action="tenant.erase")
    assert (
        len(on_record) == 1
        and on_record[0]["detail"]["certificate_sha256"] == cert["certificate_sha256"]
    )
    assert (
        on_record[0]["detail"]["objects"]["manifest_sha256"] == cert["objects"]["manifest_sha256"]
    )
    assert events(service, action="grant.issue", tenant="acme")  # the log kept its events
    with wb.engine.connect() as conn:
        assert verify(conn, None).ok

    again = eraser(wb, stores).erase("acme")
    assert again["found_left"] == 0 and again["certificate_sha256"] == cert["certificate_sha256"]
    assert events(service, action="tenant.erase.recheck")


def test_erasure_cut_short_finishes_when_run_again(
    service: Service,
    wb: Workbench,
    stores: DataStack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    put(stores, "workbench-data", "tenants/initech/tickets/", 2500)
    erasure = eraser(wb, stores, delete_workers=1)
    real = erasure._delete_batch
    calls = []

    def crash_on_second(bucket: str, batch: list[str]) -> None:
        calls.append(len(batch))
        if len(calls) == 2:
            raise RuntimeError("the operator's machine lost power")
        real(bucket, batch)

    monkeypatch.setattr(erasure, "_delete_batch", crash_on_second)
    with pytest.raises(RuntimeError, match="lost power"):
        erasure.erase("initech")
    left = keys(stores, "workbench-data", "tenants/initech/")
    assert 0 < len(left) < 2500
    with service.client("alice") as alice:  # closed already, half-erased or not
        r = alice.post("requests", json={**BODY, "tenant": "initech", "datasets": ["tickets"]})
        assert r.status_code == 409 and "erasing" in r.json()["error"]
    assert events(service, action="tenant.erase") == []

    cert = eraser(wb, stores).erase("initech")
    assert keys(stores, "workbench-data", "tenants/initech/") == []
    assert cert["runs"] == 2 and cert["objects"]["count"] == 2500
    assert not cert["objects"]["complete_list"] and len(cert["objects"]["listed"]) == 1000
    assert len(events(service, action="tenant.erase")) == 1
    assert eraser(wb, stores).erase("initech")["found_left"] == 0


def test_identity_step_without_an_iam_client_says_it_left_the_identity(
    wb: Workbench,
    stores: DataStack,  # noqa: F811
) -> None:
    erasure = eraser(wb, stores)
    erasure.op = replace(erasure.op, iam=None)  # identities managed outside workbench
    step = erasure._identity("initech")
    assert step["deleted"] == [] and "outside workbench" in step["not_attempted"]


def test_unknown_tenant(wb: Workbench, stores: DataStack, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(
        Invalid, match="unknown tenant 'nope'; known tenants: acme, globex, initech"
    ):
        eraser(wb, stores).erase("nope")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "tenant",
            "erase",
            "nope",
            "--yes",
            "--home",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "unknown tenant 'nope'" in r.stderr, r.stderr


def test_without_yes_it_shows_and_changes_nothing(
    service: Service,
    wb: Workbench,
    stores: DataStack,  # noqa: F811
) -> None:
    plan = eraser(wb, stores).plan("globex")
    assert plan["state"] == "present" and plan["objects"]["workbench-data"] > 0
    with service.client("alice") as alice:
        r = alice.post("requests", json={**BODY, "tenant": "globex", "datasets": ["calls"]})
        assert r.status_code == 201
