"""Jobs on the in-process service with the real local backend (papermill in a subprocess)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from traitlets.config import Config

from tests.conftest import Service
from workbench.service.context import Workbench

BODY = {"datasets": ["calls"], "purpose": "Churn model", "profile": "cpu-small"}


@pytest.fixture
def config(config: Config) -> Config:
    # servers' isolation is tested with the real hub; here jobs run as this account
    config.LocalJobBackend.isolate_users = False
    return config


@pytest.fixture
def service(wb: Workbench) -> Iterator[Service]:
    svc = Service(wb, follow_jobs=True)
    yield svc
    svc.stop()


def notebook(*cells: str, parameters: str | None = None) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    return dict(nbformat.from_dict(nb))


def approved(service: Service, user: str = "alice", tenant: str = "acme", **kw: Any) -> int:
    with service.client(user) as c:
        r = c.post("requests", json={**BODY, "tenant": tenant, "hours": 1, **kw})
        assert r.status_code == 201, r.text
        rid = int(r.json()["id"])
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/approve", json={}).json()["state"] == "approved"
    return rid


def wait_ended(service: Service, job_id: int, user: str = "alice", timeout: float = 90) -> dict:
    """Reconcile (as the service's loop does) until the job ended; its final state."""
    deadline = time.monotonic() + timeout
    with service.client(user) as c:
        while time.monotonic() < deadline:
            service.wb.jobs.reconcile()
            job = c.get(f"jobs/{job_id}").json()
            if job["state"] not in ("queued", "running"):
                return dict(job)
            time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def job_dir(service: Service, job_id: int) -> Path:
    import json

    from workbench.jobs.models import Job

    with service.wb.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.backend_ref
        return Path(json.loads(job.backend_ref)["dir"])
