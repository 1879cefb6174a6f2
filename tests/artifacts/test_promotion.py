"""Promotion behind the gates: the example model trained as a job, evaluated by the example
evaluation notebook as jobs, reviewed and promoted; and each refusal (self-review, no passing
report, too few approvals, across tenants, shared without consent)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import workbench.artifacts
from tests.artifacts.conftest import EXAMPLES, approved, events
from tests.artifacts.test_registry import save
from tests.conftest import Service
from tests.jobs.conftest import wait_ended
from workbench.artifacts.models import ArtifactReport, ReportState
from workbench.db import utcnow


def with_report(service: Service, artifact_id: int, state: str, asked_by: str) -> int:
    """Put an artifact in staging with a report in `state`, as a finished evaluation would."""
    wb = service.wb
    with wb.sessions.begin() as s:
        report = ArtifactReport(
            artifact_id=artifact_id,
            state=state,
            target_stage="staging",
            scope="tenant",
            requested_by=asked_by,
            runs="[]",
            results="[]",
            created_at=utcnow(),
            finished_at=utcnow(),
        )
        s.add(report)
        s.flush()
        report_id = report.id
    wb.artifacts.move(None, artifact_id, "staging")
    return report_id


def test_the_example_model_goes_from_job_to_production(service: Service) -> None:
    rid = approved(service)
    train = json.loads((EXAMPLES / "train_calls.ipynb").read_text())
    with service.client("alice") as c:
        body = {
            "request_id": rid,
            "name": "train",
            "notebook": train,
            "parameters": {"epochs": 100, "lr": 2.0},
        }
        r = c.post("jobs", json=body)
        assert r.status_code == 201, r.text
    job = wait_ended(service, r.json()["id"], timeout=240)
    assert job["state"] == "succeeded", job
    with service.client("alice") as c:
        (art,) = c.get(f"artifacts?job_id={job['id']}").json()["artifacts"]
    assert art["name"] == "topic-classifier" and art["stage"] == "candidate"
    assert art["job_id"] == job["id"] and art["request_id"] == rid
    assert art["notebook_sha256"] == job["notebook_sha256"]
    assert art["parameters"] == {"epochs": 100, "lr": 2.0}
    assert art["lineage"] == {"tenants": ["acme"], "datasets": ["acme/calls"], "parents": []}
    assert 0 < art["metrics"]["accuracy"] <= 1

    with service.client("alice") as c:
        r = c.post(f"artifacts/{art['id']}/promote", json={"stage": "production"})
        assert r.status_code == 409 and "staging" in r.json()["error"]
        r = c.post(f"artifacts/{art['id']}/promote", json={"stage": "staging"})
        assert r.status_code == 202, r.text
        runs = r.json()["evaluation"]["runs"]
        assert [(x["dataset"], x["slice"]) for x in runs] == [
            ("calls", ""),
            ("calls", "sentiment=negative"),
        ]
        again = c.post(f"artifacts/{art['id']}/promote", json={"stage": "staging"})
        assert again.status_code == 409 and "still running" in again.json()["error"]
    for run in runs:
        assert wait_ended(service, run["job_id"], timeout=240)["state"] == "succeeded"
    deadline = time.monotonic() + 30
    while True:
        with service.client("alice") as c:
            got = c.get(f"artifacts/{art['id']}").json()
        if got["reports"][0]["state"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    report = got["reports"][0]
    assert report["state"] == "passed", (report["message"], report["results"])
    assert got["stage"] == "staging"
    gated = [row for row in report["results"] if row["gated"]]
    assert {(row["slice"], row["metric"]) for row in gated} == {
        ("", "accuracy"),
        ("sentiment=negative", "accuracy"),
    }
    assert all(row["passed"] and row["value"] >= 0.6 for row in gated)

    with service.client("alice") as c:
        r = c.post(f"artifacts/{art['id']}/promote", json={"stage": "production"})
        assert r.status_code == 409 and "0 of the 1 approval" in r.json()["error"]
        assert (
            c.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve"}).status_code
            == 403
        )
    with service.client("mike") as m:
        r = m.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve", "comment": "ok"})
        assert r.status_code == 201, r.text
    with service.client("alice") as c:
        r = c.post(f"artifacts/{art['id']}/promote", json={"stage": "production"})
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == "production"
    actions = [
        e["action"] for e in events(service, tenant="acme") if e["action"].startswith("artifact.")
    ]
    for step in ("artifact.register", "artifact.evaluate", "artifact.report", "artifact.review"):
        assert step in actions
    stages = [e["detail"]["stage"] for e in events(service, action="artifact.stage")]
    assert {"staging", "production"} <= set(stages)


def test_self_review_and_review_by_a_non_manager_are_refused(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    rid = approved(service, user="maria")  # maria, a manager of acme, made it (mike approved)
    as_server(rid, "maria")
    art = save(tmp_path)
    with_report(service, art["id"], ReportState.PASSED, "maria")
    with service.client("maria") as m:
        r = m.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve"})
    assert r.status_code == 403 and "someone else" in r.json()["error"]
    with service.client("bob") as b:  # a researcher: no approve scope
        assert (
            b.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve"}).status_code
            == 403
        )
    with service.client("mike") as m:
        assert (
            m.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve"}).status_code
            == 201
        )
        again = m.post(f"artifacts/{art['id']}/reviews", json={"decision": "approve"})
        assert again.status_code == 409
    with service.client("maria") as m:
        r = m.post(f"artifacts/{art['id']}/promote", json={"stage": "production"})
        assert r.status_code == 200 and r.json()["stage"] == "production"


def test_production_needs_a_passing_report_and_enough_approvals(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service))
    failed = save(tmp_path, "failed", b"f")
    with_report(service, failed["id"], ReportState.FAILED, "alice")
    with service.client("alice") as c:
        r = c.post(f"artifacts/{failed['id']}/promote", json={"stage": "production"})
    assert r.status_code == 409 and "no passing evaluation report" in r.json()["error"]
    with service.client("mike") as m:
        r = m.post(f"artifacts/{failed['id']}/reviews", json={"decision": "approve"})
    assert r.status_code == 409 and "not awaiting review" in r.json()["error"]

    as_server(approved(service, tenant="globex"))  # globex needs two approvals
    two = save(tmp_path, "two", b"2")
    with_report(service, two["id"], ReportState.PASSED, "alice")
    with service.client("maria") as m:
        assert (
            m.post(f"artifacts/{two['id']}/reviews", json={"decision": "approve"}).status_code
            == 201
        )
    with service.client("alice") as c:
        r = c.post(f"artifacts/{two['id']}/promote", json={"stage": "production"})
        assert r.status_code == 409 and "1 of the 2 approval" in r.json()["error"]
    with service.client("mike") as m:
        r = m.post(f"artifacts/{two['id']}/reviews", json={"decision": "reject", "comment": "no"})
        assert r.status_code == 201
    with service.client("alice") as c:
        r = c.post(f"artifacts/{two['id']}/promote", json={"stage": "production"})
        assert r.status_code == 409 and "rejected by mike" in r.json()["error"]


def test_promotion_across_tenants_is_refused_naming_the_lineage(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service))
    acme = save(tmp_path, "acme-model", b"a")
    as_server(approved(service, tenant="globex"))
    mixed = save(tmp_path, "mixed", b"m", parents=[acme["id"]])
    with service.client("alice") as c:
        r = c.post(f"artifacts/{acme['id']}/promote", json={"stage": "staging", "tenant": "globex"})
        assert r.status_code == 403, r.text
        assert (
            "lineage includes tenants acme" in r.json()["error"]
            and "for globex" in r.json()["error"]
        )
        r = c.post(f"artifacts/{mixed['id']}/promote", json={"stage": "staging"})
        assert r.status_code == 403
        assert "tenants acme, globex" in r.json()["error"] and "for globex" in r.json()["error"]
        assert c.get(f"artifacts/{mixed['id']}").json()["stage"] == "candidate"
    refused = events(service, action="artifact.promote", outcome="refused")
    assert len(refused) == 2 and {e["tenant"] for e in refused} == {"acme", "globex"}


def test_shared_scope_needs_every_lineage_tenants_consent(
    service: Service, as_server: Any, tmp_path: Path
) -> None:
    as_server(approved(service))
    acme = save(tmp_path, "acme-base", b"a")
    as_server(approved(service, tenant="globex"))  # globex allows shared models
    globex = save(tmp_path, "globex-base", b"g")
    mixed = save(tmp_path, "mixed", b"m", parents=[acme["id"]])
    with service.client("alice") as c:
        for art in (acme, mixed):
            r = c.post(
                f"artifacts/{art['id']}/promote", json={"stage": "staging", "scope": "shared"}
            )
            assert r.status_code == 403 and "acme did not allow" in r.json()["error"]
        r = c.post(
            f"artifacts/{globex['id']}/promote", json={"stage": "archived", "scope": "shared"}
        )
        assert r.status_code == 200 and r.json()["scope"] == "shared"
    assert workbench.artifacts.get(globex["id"])["stage"] == "archived"
