"""What the manifest builders need to know about the cluster, as one frozen dataclass
(built from `KubeJobBackend`'s traits; tests build it directly)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.k8s.hardening import Hardening
from workbench.k8s.network import DEFAULT_ENDPOINTS, Endpoint, endpoint_from_dict
from workbench.k8s.resources import DEFAULT_GPU_POOLS, DEFAULT_GPU_TOLERATIONS

__all__ = ["ClusterSettings", "default_endpoints", "label_value"]

_LABEL = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value: itself when valid, else a readable slug plus a hash
    of the original (so two different names never share a label)."""
    if _LABEL.match(text):
        return text
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:54].strip("-")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{slug}-{digest}" if slug else f"x-{digest}"


def default_endpoints() -> tuple[Endpoint, ...]:
    return tuple(endpoint_from_dict(n, s) for n, s in DEFAULT_ENDPOINTS.items())


@dataclass(frozen=True)
class ClusterSettings:
    """Namespace, images, placement and hardening of the pods the workbench creates."""

    namespace: str = "workbench"
    image: str = "workbench-job:latest"  # jobs of profiles that name no image
    notebook_image: str = "workbench-notebook:latest"  # notebook pods of such profiles
    python: str = "python"
    hardening: Hardening = field(default_factory=Hardening)
    gpu_pools: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: DEFAULT_GPU_POOLS)
    gpu_tolerations: Sequence[Mapping[str, Any]] = field(
        default_factory=lambda: DEFAULT_GPU_TOLERATIONS
    )
    gpu_resource: str = "nvidia.com/gpu"
    guarantee_ratio: float = 1.0
    label_prefix: str = "workbench/"
    ttl_seconds_after_finished: int = 3600
    backoff_limit: int = 0
    torch_port: int = 29500
    notebook_port: int = 8888
    endpoints: tuple[Endpoint, ...] = field(default_factory=default_endpoints)
