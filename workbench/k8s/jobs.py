"""The manifests of one job: a batch/v1 Job (an Indexed Job, a headless Service and a peer
NetworkPolicy when `spec.nodes > 1`), as pure functions of a `JobSpec` and `ClusterSettings`.

Contract: the Job's name is the backend's `ref` (`wb-job-{job_id}`); its pods carry the labels
`{prefix}component=job`, `{prefix}request-id`, `{prefix}tenant`, `{prefix}job-id`; it never
outlives the request (`activeDeadlineSeconds`), is not retried (`backoffLimit`, default 0: a
retry would run the notebook twice) and is deleted `ttlSecondsAfterFinished` after it ends. The
container runs `python -m workbench.jobs.runner` (multi-node: under `torch.distributed.run`,
rank = the completion index, rendezvous on pod 0 through the headless Service).
"""

from __future__ import annotations

import re
from typing import Any

from workbench.jobs.backend import RUNNER, JobSpec
from workbench.k8s import hardening
from workbench.k8s.network import job_peer_policy
from workbench.k8s.resources import placement, resources
from workbench.k8s.settings import ClusterSettings, label_value

__all__ = [
    "SECRET_ENV",
    "job_labels",
    "job_manifests",
    "job_name",
    "job_owner_reference",
    "secret_name",
]

# environment variables whose values go in the job's Secret, not in the Job object (which more
# people may read): the job's own token first of all
SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|CREDENTIAL|PRIVATE_KEY)", re.IGNORECASE)
RANK_ENV = "WORKBENCH_NODE_RANK"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def job_name(job_id: int) -> str:
    """The Job's (and its Service's) name: the backend's ref."""
    return f"wb-job-{job_id}"


def job_labels(spec: JobSpec, s: ClusterSettings) -> dict[str, str]:
    """The labels of the Job and its pods; the caller's `spec.labels` cannot override them."""
    p = s.label_prefix
    extra = {k: label_value(v) for k, v in spec.labels.items()}
    return {
        **extra,
        f"{p}component": "job",
        f"{p}request-id": str(spec.request_id),
        f"{p}tenant": label_value(spec.tenant),
        f"{p}job-id": str(spec.job_id),
        f"{p}profile": label_value(spec.profile.name),
    }


def _selector(spec: JobSpec, s: ClusterSettings) -> dict[str, str]:
    return {f"{s.label_prefix}job-id": str(spec.job_id)}


def _metadata(spec: JobSpec, s: ClusterSettings) -> dict[str, Any]:
    p = s.label_prefix
    return {
        "name": job_name(spec.job_id),
        "namespace": s.namespace,
        "labels": job_labels(spec, s),
        "annotations": {f"{p}job-name": spec.name, f"{p}user": spec.user},
    }


def _command(spec: JobSpec, s: ClusterSettings) -> list[str]:
    if spec.nodes <= 1:
        return [s.python, *RUNNER]
    name = job_name(spec.job_id)
    return [
        s.python,
        "-m",
        "torch.distributed.run",
        f"--nnodes={spec.nodes}",
        f"--nproc-per-node={max(1, spec.profile.gpu_count)}",
        f"--node-rank=$({RANK_ENV})",
        f"--master-addr={name}-0.{name}.{s.namespace}.svc",
        f"--master-port={s.torch_port}",
        *RUNNER,
    ]


def secret_name(job_id: int) -> str:
    """The Secret holding the job's secret environment variables."""
    return f"{job_name(job_id)}-env"


def _env(spec: JobSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    for key, value in sorted(spec.env.items()):
        if SECRET_ENV.search(key):
            ref = {"name": secret_name(spec.job_id), "key": key}
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
        else:
            env.append({"name": key, "value": value})
    if spec.nodes > 1:
        env += [
            {"name": "WORKBENCH_NODES", "value": str(spec.nodes)},
            {"name": RANK_ENV, "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}},
        ]
    return env


def job_manifest(spec: JobSpec, s: ClusterSettings) -> dict[str, Any]:
    """The batch/v1 Job. ValueError when the profile cannot be placed (no node pool for its
    GPU kind, malformed memory) or no image is known."""
    if spec.nodes < 1:
        raise ValueError(f"job {spec.job_id}: nodes must be at least 1, not {spec.nodes}")
    image = spec.profile.image or s.image
    if not image:
        raise ValueError(f"job {spec.job_id}: profile {spec.profile.name!r} names no image")
    where = placement(
        spec.profile.gpu_kind,
        spec.profile.gpu_count,
        gpu_pools=s.gpu_pools,
        gpu_tolerations=s.gpu_tolerations,
        gpu_resource=s.gpu_resource,
    )
    h = s.hardening
    container: dict[str, Any] = {
        "name": "job",
        "image": image,
        "command": _command(spec, s),
        "env": _env(spec),
        "resources": resources(
            spec.profile.cpu, spec.profile.memory, where, s.guarantee_ratio
        ).as_dict(),
        "securityContext": hardening.container_security_context(h),
        "volumeMounts": hardening.volume_mounts(h),
        "workingDir": h.scratch_path,
    }
    if spec.nodes > 1:
        container["ports"] = [{"name": "torch", "containerPort": s.torch_port}]
    pod_spec: dict[str, Any] = {
        **hardening.pod_spec_fields(h),
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": hardening.volumes(h),
    }
    if where.node_selector:
        pod_spec["nodeSelector"] = where.node_selector
    if where.tolerations:
        pod_spec["tolerations"] = where.tolerations
    meta = _metadata(spec, s)
    job_spec: dict[str, Any] = {
        "ttlSecondsAfterFinished": s.ttl_seconds_after_finished,
        "activeDeadlineSeconds": max(1, spec.deadline_seconds),
        "backoffLimit": s.backoff_limit,
        "template": {
            "metadata": {"labels": dict(meta["labels"]), "annotations": dict(meta["annotations"])},
            "spec": pod_spec,
        },
    }
    if spec.nodes > 1:
        pod_spec["subdomain"] = job_name(spec.job_id)
        job_spec.update(
            completionMode="Indexed",
            completions=spec.nodes,
            parallelism=spec.nodes,
        )
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}


def job_owner_reference(name: str, uid: str) -> dict[str, Any]:
    """Makes an object go with its Job (deleted by the garbage collector, TTL included)."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": uid,
        "blockOwnerDeletion": True,
    }


def job_manifests(
    spec: JobSpec, s: ClusterSettings, owner_uid: str = "", *, redact: bool = False
) -> list[dict[str, Any]]:
    """The Job, then the Secret of its secret environment variables (when it has any), then
    (multi-node) its headless Service and peer NetworkPolicy. With the Job's `owner_uid` (known
    once it is created) the others are owned by it, so they go when it goes. `redact` hides
    the secret values (for printing)."""
    job = job_manifest(spec, s)
    name = job_name(spec.job_id)
    labels = job_labels(spec, s)
    owned: list[dict[str, Any]] = []
    secrets = {k: v for k, v in sorted(spec.env.items()) if SECRET_ENV.search(k)}
    if secrets:
        owned.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": secret_name(spec.job_id),
                    "namespace": s.namespace,
                    "labels": dict(labels),
                },
                "type": "Opaque",
                "stringData": {k: "REDACTED" if redact else v for k, v in secrets.items()},
            }
        )
    if spec.nodes > 1:
        owned += _multi_node(spec, s, labels)
    if owner_uid:
        for obj in owned:
            obj["metadata"]["ownerReferences"] = [job_owner_reference(name, owner_uid)]
    return [job, *owned]


def _multi_node(spec: JobSpec, s: ClusterSettings, labels: dict[str, str]) -> list[dict[str, Any]]:
    name = job_name(spec.job_id)
    selector = _selector(spec, s)
    service: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": s.namespace, "labels": dict(labels)},
        "spec": {
            "clusterIP": "None",
            # torchrun on pod 0 must be found before any pod is "ready"
            "publishNotReadyAddresses": True,
            "selector": selector,
            "ports": [{"name": "torch", "port": s.torch_port, "targetPort": s.torch_port}],
        },
    }
    policy = job_peer_policy(f"{name}-peers", s.namespace, selector, s.torch_port)
    policy["metadata"]["labels"].update(labels)
    return [service, policy]
