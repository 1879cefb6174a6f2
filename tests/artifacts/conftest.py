"""The artifact registry on the in-process service with the real OpenBao and SeaweedFS (the
`stores` fixture of tests/access/test_broker.py) and the real local job backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.access.test_broker import DataStack, events, stores  # noqa: F401 (a fixture)
from tests.conftest import Service, make_config
from tests.mocking import token_for
from workbench.config import DEMO_TENANTS, settings_for
from workbench.service.context import Workbench

EXAMPLES = Path(__file__).parents[2] / "examples"
BODY = {"datasets": ["calls"], "purpose": "Topic model", "profile": "cpu-small", "hours": 1}


@pytest.fixture
def wb(tmp_path: Path, stores: DataStack) -> Iterator[Workbench]:  # noqa: F811
    """acme: managers maria and mike, one approval; globex: both, two approvals."""
    tenants = {k: dict(v) for k, v in DEMO_TENANTS.items()}
    tenants["acme"] = dict(tenants["acme"], managers=["maria", "mike"], approvals_required=1)
    tenants["globex"] = dict(tenants["globex"], managers=["maria", "mike"], approvals_required=2)
    paths = stores.bao.bao.paths
    cfg = make_config(
        Catalog={"tenants": tenants},
        OpenBaoStore={
            "url": stores.bao.bao.addr,
            "token_file": str(paths.token_file),
            "s3_master_key_file": str(stores.home / "storage-master.key"),
            "sql_database": stores.sql_database,
        },
        S3ObjectStore={"endpoint_url": stores.seaweed.endpoint},
        LocalJobBackend={"isolate_users": False},
        ArtifactSettings={
            "evaluation_notebook": str(EXAMPLES / "evaluate_calls.ipynb"),
            "shared_consent": ["globex"],
        },
    )
    home = tmp_path / "home"
    workbench = Workbench.open(settings_for(home, cfg))
    yield workbench
    workbench.close()


@pytest.fixture
def service(wb: Workbench) -> Iterator[Service]:
    svc = Service(wb)
    wb.jobs.api_url = svc.url + "api/v1/"
    stop = threading.Event()

    def follow() -> None:  # what the service's loop does every JobSettings.poll_seconds
        while not stop.wait(0.5):
            wb.jobs.reconcile()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    yield svc
    stop.set()
    follower.join(10)
    from workbench.jobs.models import Job

    with wb.sessions() as s:  # leave no job process behind
        refs = s.scalars(select(Job.backend_ref).where(Job.state == "running")).all()
    for ref in refs:
        if ref:
            wb.jobs.backend.stop(ref)
    svc.stop()


def approved(service: Service, tenant: str = "acme", user: str = "alice", **kw: Any) -> int:
    """A request of `user` for `tenant`, approved by every manager it needs."""
    with service.client(user) as c:
        r = c.post("requests", json={**BODY, "tenant": tenant, **kw})
        assert r.status_code == 201, r.text
        rid = int(r.json()["id"])
    for manager in ("maria", "mike"):
        if manager == user:
            continue
        with service.client(manager) as m:
            if m.get(f"requests/{rid}").json()["state"] == "approved":
                break
            r = m.post(f"requests/{rid}/approve", json={})
            assert r.status_code == 200, r.text
    return rid


@pytest.fixture
def as_server(service: Service, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the environment a notebook server of `user` for request `rid` has."""

    def use(rid: int, user: str = "alice") -> None:
        monkeypatch.setenv("WORKBENCH_API_URL", service.url + "api/v1/")
        monkeypatch.setenv("WORKBENCH_TOKEN", token_for(user))
        monkeypatch.setenv("WORKBENCH_REQUEST_ID", str(rid))
        monkeypatch.delenv("WORKBENCH_JOB_ID", raising=False)

    return use


__all__ = ["approved", "events"]
