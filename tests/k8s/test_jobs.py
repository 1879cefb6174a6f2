"""The job manifests, field by field, valid for the two newest Kubernetes versions and
hardened."""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.k8s.helpers import CPU, GPU, spec, validate
from workbench.config import Profile
from workbench.k8s.hardening import Hardening, container_security_context, pod_spec_fields
from workbench.k8s.jobs import job_manifests, job_name
from workbench.k8s.restricted import pod_spec_of, workbench_violations
from workbench.k8s.settings import ClusterSettings

S = ClusterSettings()
LABELS = {
    "workbench/component": "job",
    "workbench/request-id": "7",
    "workbench/tenant": "acme",
    "workbench/job-id": "42",
    "workbench/profile": "gpu-1",
}


def test_a_single_node_gpu_job_field_by_field() -> None:
    job, secret = job_manifests(spec(), S)
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"] == {
        "name": "wb-job-42",
        "namespace": "workbench",
        "labels": LABELS,
        "annotations": {"workbench/job-name": "train", "workbench/user": "alice"},
    }
    js = job["spec"]
    assert (js["ttlSecondsAfterFinished"], js["activeDeadlineSeconds"], js["backoffLimit"]) == (
        3600,
        3600,
        0,
    )
    assert "completionMode" not in js and "completions" not in js
    assert js["template"]["metadata"]["labels"] == LABELS
    pod = js["template"]["spec"]
    for key, value in pod_spec_fields(Hardening()).items():
        assert pod[key] == value
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert [v["name"] for v in pod["volumes"]] == ["scratch", "tmp"]
    (c,) = pod["containers"]
    assert c["image"] == "registry.example/job:1.0"
    assert c["command"] == ["python", "-m", "workbench.jobs.runner"]
    assert c["env"] == [
        {"name": "WORKBENCH_API_URL", "value": "http://svc/api/v1/"},
        {
            "name": "WORKBENCH_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "wb-job-42-env", "key": "WORKBENCH_TOKEN"}},
        },
    ]
    assert c["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi"},
        "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
    }
    assert c["securityContext"] == container_security_context(Hardening())
    # the job's token is in its Secret, never in the Job object
    assert "tok-42" not in str(job)
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "wb-job-42-env"
    assert secret["stringData"] == {"WORKBENCH_TOKEN": "tok-42"}
    assert "ownerReferences" not in secret["metadata"]


def test_a_cpu_job_gets_no_gpu_node_and_the_default_image() -> None:
    (job,) = job_manifests(spec(CPU, env={"A": "1"}, deadline_seconds=0), S)
    pod = pod_spec_of(job)
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert pod["containers"][0]["image"] == "workbench-job:latest"
    assert pod["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert job["spec"]["activeDeadlineSeconds"] == 1  # an ended request: gone at once


def test_a_multi_node_job_is_indexed_with_a_headless_service_and_peer_policy() -> None:
    job, secret, service, policy = job_manifests(spec(nodes=3), S, owner_uid="uid-1")
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"]) == ("Indexed", 3, 3)
    pod = js["template"]["spec"]
    assert pod["subdomain"] == "wb-job-42" == service["metadata"]["name"]
    c = pod["containers"][0]
    assert c["command"] == [
        "python",
        "-m",
        "torch.distributed.run",
        "--nnodes=3",
        "--nproc-per-node=1",
        "--node-rank=$(WORKBENCH_NODE_RANK)",
        "--master-addr=wb-job-42-0.wb-job-42.workbench.svc",
        "--master-port=29500",
        "-m",
        "workbench.jobs.runner",
    ]
    rank = [e for e in c["env"] if e["name"] == "WORKBENCH_NODE_RANK"]
    assert rank == [
        {
            "name": "WORKBENCH_NODE_RANK",
            "valueFrom": {
                "fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                }
            },
        }
    ]
    assert service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {"workbench/job-id": "42"},
        "ports": [{"name": "torch", "port": 29500, "targetPort": 29500}],
    }
    peers = [{"podSelector": {"matchLabels": {"workbench/job-id": "42"}}}]
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"workbench/job-id": "42"}},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers}],
        "egress": [{"to": peers}],
    }
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": "wb-job-42",
        "uid": "uid-1",
        "blockOwnerDeletion": True,
    }
    for obj in (secret, service, policy):
        assert obj["metadata"]["ownerReferences"] == [owner]
    assert "ownerReferences" not in job["metadata"]


@pytest.mark.parametrize("nodes", [1, 4])
@pytest.mark.parametrize("profile", [GPU, CPU], ids=["gpu", "cpu"])
def test_every_job_manifest_validates_and_is_hardened(profile: Profile, nodes: int) -> None:
    manifests = job_manifests(spec(profile, nodes), S, owner_uid="u")
    for m in manifests:
        validate(m)
    assert workbench_violations(pod_spec_of(manifests[0])) == []


def test_the_validator_would_catch_a_wrong_field() -> None:
    job = job_manifests(spec(), S)[0]
    job["spec"]["template"]["spec"]["automountToken"] = False  # misspelled
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


def test_caller_labels_cannot_override_the_workbench_labels() -> None:
    job = job_manifests(spec(labels={"workbench/tenant": "globex", "team": "a b"}), S)[0]
    assert job["metadata"]["labels"]["workbench/tenant"] == "acme"
    assert job["metadata"]["labels"]["team"].startswith("a-b-")


def test_unplaceable_jobs_are_refused() -> None:
    odd = Profile("a10", 2, "8G", "nvidia-a10", 1)
    with pytest.raises(ValueError, match="no node pool is configured for GPU kind 'nvidia-a10'"):
        job_manifests(spec(odd), S)
    with pytest.raises(ValueError, match="nodes must be at least 1"):
        job_manifests(spec(nodes=0), S)
    with pytest.raises(ValueError, match="not an amount of memory"):
        job_manifests(spec(Profile("x", 1, "lots")), S)
    assert job_name(3) == "wb-job-3"
