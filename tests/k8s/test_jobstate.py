"""Job states from the watch events in fixtures/: what the backend reports at each step."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench.jobs.backend import Status
from workbench.k8s.jobstate import JobWatch, WatchExpired, job_status

FIXTURES = Path(__file__).parent / "fixtures"


def events(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / f"watch_{name}.json").read_text())
    return data


def test_a_job_that_succeeds() -> None:
    watch = JobWatch()
    assert watch.replay(events("succeeded")) == [
        ("wb-job-11", Status("running", "waiting for a pod to be scheduled")),
        ("wb-job-11", Status("running", "1 pod(s) active, 0 ready")),
        ("wb-job-11", Status("running", "1 pod(s) active, 1 ready")),
        ("wb-job-11", Status("succeeded", "0 pod(s) succeeded")),
        ("wb-job-11", Status("succeeded", "1 pod(s) succeeded")),
    ]
    # the TTL controller's deletion of a finished Job is not a loss
    assert watch.states["wb-job-11"].state == "succeeded"
    assert watch.resource_version == "1300"


def test_a_job_past_the_requests_deadline_fails_saying_so() -> None:
    watch = JobWatch()
    changes = watch.replay(events("deadline_exceeded"))
    assert [s.state for _, s in changes] == ["running", "running", "failed"]
    assert changes[-1][1] == Status(
        "failed",
        "the request's time ran out (DeadlineExceeded): "
        "Job was active longer than specified deadline",
    )


def test_a_failed_run_fails_and_never_comes_back() -> None:
    watch = JobWatch()
    changes = watch.replay(events("backoff_limit"))
    assert changes[-1] == (
        "wb-job-13",
        Status("failed", "BackoffLimitExceeded: Job has reached the specified backoff limit"),
    )
    # the last event (a stale "running" object) does not revive it
    assert watch.states["wb-job-13"].state == "failed"
    assert len(changes) == 3


def test_a_job_deleted_while_running_is_lost() -> None:
    watch = JobWatch()
    changes = watch.replay(events("deleted_while_running"))
    assert changes == [
        ("wb-job-14", Status("running", "1 pod(s) active, 1 ready")),
        ("wb-job-14", Status("lost", "the Job was deleted before it ended")),
    ]


def test_a_two_node_indexed_job() -> None:
    watch = JobWatch()
    states = [s for _, s in watch.replay(events("indexed_two_nodes"))]
    assert [s.state for s in states] == ["running"] * 4 + ["succeeded"]
    assert states[2].message == "2 pod(s) active, 2 ready"
    assert states[-1] == Status("succeeded", "2 pod(s) succeeded")


def test_an_expired_watch_asks_for_a_new_list() -> None:
    with pytest.raises(WatchExpired, match="too old resource version"):
        JobWatch().replay(events("expired"))
    with pytest.raises(RuntimeError, match="watch error: boom"):
        JobWatch().apply({"type": "ERROR", "object": {"code": 500, "message": "boom"}})
    with pytest.raises(ValueError, match="unknown watch event type"):
        JobWatch().apply({"type": "WEIRD", "object": {}})


def test_job_status_of_single_objects() -> None:
    assert job_status({"spec": {"suspend": True}, "status": {}}) == Status("running", "suspended")
    cond = {"type": "Failed", "status": "False", "reason": "X"}
    assert job_status({"status": {"conditions": [cond], "active": 1}}).state == "running"
