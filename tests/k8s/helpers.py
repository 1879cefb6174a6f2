"""What the Kubernetes tests share: schema validation against the two newest Kubernetes
versions kubernetes-validate ships, and small builders."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from kubernetes_validate import utils

from workbench.config import Profile
from workbench.jobs.backend import JobSpec


def _newest_two() -> tuple[str, ...]:
    versions = sorted(set(utils.all_versions()), key=lambda v: tuple(int(p) for p in v.split(".")))
    return tuple(reversed(versions[-2:]))


VERSIONS = _newest_two()
GPU = Profile("gpu-1", 4, "16G", "nvidia-h100", 1, "registry.example/job:1.0")
CPU = Profile("cpu-small", 1, "2G")


def validate(manifest: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `manifest` is valid (strict: no
    unknown field) for each of VERSIONS."""
    for version in VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def spec(profile: Profile = GPU, nodes: int = 1, **kw: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": 42,
        "name": "train",
        "user": "alice",
        "tenant": "acme",
        "request_id": 7,
        "profile": profile,
        "env": {"WORKBENCH_API_URL": "http://svc/api/v1/", "WORKBENCH_TOKEN": "tok-42"},
        "deadline_seconds": 3600,
        "nodes": nodes,
    }
    values.update(kw)
    return JobSpec(**values)
