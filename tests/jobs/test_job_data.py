"""Jobs reading tenant data with their own grants: the real OpenBao, SeaweedFS and PostgreSQL,
the example training notebook, and jobs run as the user's own system account."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.access.test_broker import DataStack, events, stores  # noqa: F401 (a fixture)
from tests.conftest import Service
from tests.jobs.conftest import approved, notebook, wait_ended
from workbench.config import settings_for
from workbench.service.context import Workbench

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_calls.ipynb"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="jobs run as system accounts (root)")


@pytest.fixture
def wb(tmp_path: Path, stores: DataStack) -> Iterator[Workbench]:  # noqa: F811
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    cfg = stores.config(LocalJobBackend={"isolate_users": True})
    workbench = Workbench.open(settings_for(home, cfg))
    yield workbench
    workbench.close()


def run(service: Service, rid: int, nb: dict[str, Any], **params: Any) -> dict[str, Any]:
    with service.client("alice") as c:
        body = {"request_id": rid, "name": "t", "notebook": nb, "parameters": params}
        r = c.post("jobs", json=body)
        assert r.status_code == 201, r.text
    return wait_ended(service, r.json()["id"], timeout=180)


def test_the_example_trains_on_acme_with_the_jobs_own_grant(service: Service) -> None:
    rid = approved(service)
    job = run(service, rid, json.loads(EXAMPLE.read_text()), epochs=15)
    assert job["state"] == "succeeded", job
    with service.client("alice") as c:
        metrics = c.get(f"jobs/{job['id']}/metrics").json()["metrics"]
        out = c.get(f"jobs/{job['id']}/output").json()
    loss = [m["value"] for m in metrics if m["name"] == "loss"]
    assert len(loss) == 15 and loss[-1] < loss[0]
    printed = "".join(
        "".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", [])
    )
    assert "24 calls of ['acme']" in printed
    grant = events(service, action="grant.issue", tenant="acme")[0]
    assert grant["resource"] == f"job:{job['id']}" and grant["request_id"] == rid
    assert grant["detail"]["job_id"] == job["id"]
    reads = events(service, action="data.read", tenant="acme")
    assert reads and reads[0]["resource"] == f"job:{job['id']}"
    revoked = events(service, action="token.revoke", tenant="acme")
    assert revoked and revoked[0]["detail"]["reason"] == "job ended"


def test_a_job_cannot_read_another_tenants_data_nor_the_stacks_state(
    service: Service,
) -> None:
    rid = approved(service)
    key = service.wb.settings.signing_key_path
    nb = notebook(
        f"try:\n    open({str(key)!r}).read()\n    print('READ THE KEY')\n"
        "except PermissionError:\n    print('state: denied')",
        "import os, pwd\nprint('account', pwd.getpwuid(os.geteuid()).pw_name)",
        "import workbench.data\nworkbench.data.open('globex/calls')",
    )
    job = run(service, rid, nb)
    assert job["state"] == "failed"
    assert "DataError" in job["error"] and "globex" in job["error"]
    with service.client("alice") as c:
        out = c.get(f"jobs/{job['id']}/output").json()
    printed = "".join(
        "".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", [])
    )
    assert "state: denied" in printed and "account wb-alice" in printed
    refused = events(service, action="grant.issue", tenant="globex", outcome="refused")
    assert refused and refused[0]["actor"] == "alice"
