"""A compute profile as Kubernetes sees it: container resources and GPU node-pool placement.

Pure functions shared by notebook pods (`workbench.hub.kube`) and job pods (`workbench.k8s.jobs`),
so the two ask for the same thing for the same profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.config import memory_bytes

__all__ = [
    "DEFAULT_GPU_POOLS",
    "DEFAULT_GPU_TOLERATIONS",
    "NoGpuPool",
    "Placement",
    "Resources",
    "memory_bytes",
    "placement",
    "quantity",
    "resources",
]

DEFAULT_GPU_POOLS: dict[str, dict[str, Any]] = {
    "nvidia-h100": {"node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
}
DEFAULT_GPU_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
]


class NoGpuPool(ValueError):
    """A profile names a GPU kind that has no configured node pool."""


@dataclass(frozen=True)
class Placement:
    """Where a pod of a profile may run: GPU limits, node selector, tolerations."""

    gpu_limits: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Resources:
    """A container's `resources` (requests and limits), as Kubernetes quantities."""

    requests: dict[str, str]
    limits: dict[str, str]

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {"requests": dict(self.requests), "limits": dict(self.limits)}


def quantity(n_bytes: int) -> str:
    """Bytes as the shortest exact Kubernetes binary quantity (`17179869184` → `16Gi`)."""
    for suffix, unit in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n_bytes >= unit and n_bytes % unit == 0:
            return f"{n_bytes // unit}{suffix}"
    return str(n_bytes)


def _cpu(cores: float) -> str:
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def placement(
    gpu_kind: str | None,
    gpu_count: int,
    *,
    gpu_pools: Mapping[str, Mapping[str, Any]],
    gpu_tolerations: Sequence[Mapping[str, Any]] = DEFAULT_GPU_TOLERATIONS,
    gpu_resource: str = "nvidia.com/gpu",
) -> Placement:
    """The GPU limit, node selector and tolerations of `gpu_count` GPUs of `gpu_kind`; no GPU:
    an empty placement (the pod may land on any node, and never keeps a GPU node up). Raise
    NoGpuPool when `gpu_pools` ({kind: {node_selector, tolerations}}) lacks the kind."""
    if not gpu_count:
        return Placement()
    pool = gpu_pools.get(gpu_kind or "")
    if pool is None:
        raise NoGpuPool(f"no node pool is configured for GPU kind {gpu_kind!r}")
    return Placement(
        gpu_limits={gpu_resource: str(gpu_count)},
        node_selector=dict(pool.get("node_selector", {})),
        tolerations=[dict(t) for t in gpu_tolerations]
        + [dict(t) for t in pool.get("tolerations", [])],
    )


def resources(cpu: float, memory: str, where: Placement, guarantee_ratio: float = 1.0) -> Resources:
    """Requests and limits of a container; GPUs are limits only (Kubernetes sets the request
    of an extended resource equal to its limit). ValueError for a malformed `memory`."""
    mem = memory_bytes(memory)
    return Resources(
        requests={
            "cpu": _cpu(cpu * guarantee_ratio),
            "memory": quantity(int(mem * guarantee_ratio)),
        },
        limits={"cpu": _cpu(cpu), "memory": quantity(mem), **where.gpu_limits},
    )
