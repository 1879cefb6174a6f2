"""The artifact registry on the in-process service with the real OpenBao and SeaweedFS (the
`stores` fixture of tests/access/test_broker.py) and the real local job backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.access.test_broker import DataStack, events, stores  # noqa: F401 (a fixture)
from tests.conftest import Service
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
    cfg = stores.config(
        Catalog={"tenants": tenants},
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
    svc = Service(wb, follow_jobs=True)
    yield svc
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
