"""KubeJobBackend against a fake Kubernetes API (tests/k8s/fakes.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets.config import Config

from tests.k8s.fakes import FakeKubeAPI
from tests.k8s.helpers import spec, validate
from workbench.jobs.backend import JobBackend, Status
from workbench.jobs.kube import KubeJobBackend
from workbench.k8s.client import KubeError

FIXTURES = Path(__file__).parent / "fixtures"


def backend(**config: object) -> tuple[KubeJobBackend, FakeKubeAPI]:
    c = Config()
    for key, value in config.items():
        setattr(c.KubeJobBackend, key, value)
    api = FakeKubeAPI()
    return KubeJobBackend(config=c, api=api), api


def test_it_is_a_job_backend_configured_by_traits() -> None:
    b, _ = backend(namespace="research", ttl_seconds_after_finished=60, uid=1234)
    assert isinstance(b, JobBackend)
    s = b.cluster_settings()
    assert (s.namespace, s.ttl_seconds_after_finished, s.hardening.uid) == ("research", 60, 1234)
    names = set(KubeJobBackend.class_trait_names(config=True))
    assert {"namespace", "image", "gpu_pools", "endpoints", "read_only_root"} <= names


def test_start_creates_the_job_then_what_it_owns() -> None:
    b, api = backend()
    ref = b.start(spec(nodes=2))
    assert ref == "wb-job-42"
    assert [c for c in api.calls if c[0] == "create"] == [
        ("create", "Job", "wb-job-42"),
        ("create", "Secret", "wb-job-42-env"),
        ("create", "Service", "wb-job-42"),
        ("create", "NetworkPolicy", "wb-job-42-peers"),
    ]
    for kind in ("Secret", "Service", "NetworkPolicy"):
        obj = api.objects[
            kind, "wb-job-42" + {"Secret": "-env", "NetworkPolicy": "-peers"}.get(kind, "")
        ]
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-wb-job-42"
        obj["metadata"].pop("uid")
        validate(obj)
    assert api.objects["Secret", "wb-job-42-env"]["stringData"] == {"WORKBENCH_TOKEN": "tok-42"}


def test_start_again_after_a_restart_is_idempotent_and_errors_surface() -> None:
    b, api = backend()
    b.start(spec())
    assert b.start(spec()) == "wb-job-42"
    assert len([o for o in api.objects if o[0] == "Job"]) == 1
    b2, api2 = backend()
    api2.fail_create["Job"] = KubeError(403, "forbidden: cannot create jobs")
    with pytest.raises(KubeError, match="403"):
        b2.start(spec())


def test_status_stop_and_lost() -> None:
    b, api = backend()
    ref = b.start(spec())
    assert b.status(ref) == Status("running", "waiting for a pod to be scheduled")
    api.objects["Job", ref]["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "succeeded": 1,
    }
    assert b.status(ref) == Status("succeeded", "1 pod(s) succeeded")
    b.stop(ref)
    b.stop(ref)  # idempotent
    assert b.status(ref) == Status("lost", "no Job wb-job-42 in namespace workbench")
    assert ("delete_job", "workbench", ref) in api.calls


def test_logs_of_every_pod_rank_zero_first_and_tailed() -> None:
    b, api = backend()
    api.pods = [
        {
            "metadata": {
                "name": f"wb-job-42-{i}-x",
                "annotations": {"batch.kubernetes.io/job-completion-index": str(i)},
            }
        }
        for i in (1, 0)
    ]
    api.logs = {"wb-job-42-0-x": "rank0\n"}
    text = b.logs("wb-job-42")
    assert text == (
        "==> wb-job-42-0-x <==\nrank0\n"
        "==> wb-job-42-1-x <==\n(no log: container is waiting to start)\n"
    )
    assert ("list_pods", "workbench", "batch.kubernetes.io/job-name=wb-job-42") in api.calls
    assert b.logs("wb-job-42", tail_bytes=10) == text[-10:]


def test_watch_lists_then_watches_and_relists_when_expired() -> None:
    b, api = backend()
    recorded = json.loads((FIXTURES / "watch_succeeded.json").read_text())
    expired = json.loads((FIXTURES / "watch_expired.json").read_text())
    first = recorded[0]["object"]
    api.lists = [([first], "1001"), ([], "1040")]
    api.watches = [recorded[1:3] + expired, recorded[3:]]
    changes = list(b.watch(timeout_seconds=5))
    assert [s.state for _, s in changes] == ["running"] * 3 + ["succeeded"] * 2
    watch_calls = [c for c in api.calls if c[0] == "watch_jobs"]
    assert watch_calls == [
        ("watch_jobs", "workbench", "workbench/component=job", "1001"),
        ("watch_jobs", "workbench", "workbench/component=job", "1040"),
    ]
