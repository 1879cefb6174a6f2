"""The production spawner: KubeSpawner behind the approval gate.

The admitted request's profile becomes the pod's resources (CPU and memory requests and limits,
`nvidia.com/gpu`), the node selector and tolerations of its GPU kind's node pool, its labels
and annotations (request id, tenant) and its deadline (`activeDeadlineSeconds`: the pod ends at
the request's end even if the hub is down). `pod_resources` computes all of it as a pure
function of the request and the settings; the spawner only applies it. Pod hardening and
network policy are the Kubernetes deployment's (issue 7).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
from traitlets import Dict, Float, List, Unicode

from workbench.hub.gate import ApprovalGate
from workbench.hub.rules import ApprovedRequest, Refused

__all__ = [
    "DEFAULT_GPU_POOLS",
    "KubeRequestSpawner",
    "PodResources",
    "label_value",
    "pod_resources",
]

DEFAULT_GPU_POOLS: dict[str, dict[str, Any]] = {
    "nvidia-h100": {"node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
}
DEFAULT_GPU_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
]
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class PodResources:
    """What a request's profile sets on the pod (KubeSpawner's trait names)."""

    cpu_limit: float
    cpu_guarantee: float
    mem_limit: int
    mem_guarantee: int
    extra_resource_limits: dict[str, str] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    image: str = ""
    deadline_seconds: int = 0


def memory_bytes(text: str) -> int:
    """`16G` → bytes (1024-based, like JupyterHub's ByteSpecification); ValueError otherwise."""
    match = _BYTES.fullmatch(text)
    if not match:
        raise ValueError(f"not an amount of memory: {text!r} (use e.g. 512M or 16G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def label_value(text: str) -> str:
    """`text` as a Kubernetes label value: itself when valid, else a safe slug with a hash."""
    return str(safe_slug(text, is_valid=is_valid_label, max_length=63))


def _literal(text: str) -> str:
    # KubeSpawner expands {username}-style fields in labels and annotations: keep braces
    return text.replace("{", "{{").replace("}", "}}")


def pod_resources(
    request: ApprovedRequest,
    *,
    gpu_pools: Mapping[str, Mapping[str, Any]],
    gpu_tolerations: Sequence[Mapping[str, Any]] = DEFAULT_GPU_TOLERATIONS,
    gpu_resource: str = "nvidia.com/gpu",
    guarantee_ratio: float = 1.0,
    label_prefix: str = "workbench/",
) -> PodResources:
    """The pod settings of a server admitted under `request`; Refused when its GPU kind has
    no node pool in `gpu_pools` ({kind: {node_selector: {...}, tolerations: [...]}})."""
    profile = request.profile
    try:
        mem = memory_bytes(profile.memory)
    except ValueError as e:
        raise Refused(str(e), reason="bad-profile", status=502) from e
    limits: dict[str, str] = {}
    selector: dict[str, str] = {}
    tolerations: list[dict[str, Any]] = []
    if profile.gpu_count:
        pool = gpu_pools.get(profile.gpu_kind or "")
        if pool is None:
            raise Refused(
                f"no node pool is configured for GPU kind {profile.gpu_kind!r} of request "
                f"{request.id} (KubeRequestSpawner.gpu_pools); tell the administrator",
                reason="gpu-pool",
                status=503,
            )
        limits[gpu_resource] = str(profile.gpu_count)
        selector.update(pool.get("node_selector", {}))
        tolerations = [dict(t) for t in gpu_tolerations] + [
            dict(t) for t in pool.get("tolerations", [])
        ]
    labels = {
        f"{label_prefix}request-id": str(request.id),
        f"{label_prefix}tenant": label_value(request.tenant),
        f"{label_prefix}profile": label_value(profile.name),
    }
    annotations = {
        f"{label_prefix}request-id": str(request.id),
        f"{label_prefix}tenant": _literal(request.tenant),
        f"{label_prefix}datasets": _literal(",".join(request.datasets)),
        f"{label_prefix}profile": _literal(profile.name),
    }
    return PodResources(
        cpu_limit=profile.cpu,
        cpu_guarantee=profile.cpu * guarantee_ratio,
        mem_limit=mem,
        mem_guarantee=int(mem * guarantee_ratio),
        extra_resource_limits=limits,
        node_selector=selector,
        tolerations=tolerations,
        labels=labels,
        annotations=annotations,
        image=profile.image,
        deadline_seconds=max(1, math.ceil(request.seconds_left)),
    )


class KubeRequestSpawner(ApprovalGate, KubeSpawner):
    """KubeSpawner whose pods are sized, placed and labelled by the admitted request."""

    gpu_pools = Dict(
        DEFAULT_GPU_POOLS,
        help="""Node pool of each GPU kind a profile may name: {kind: {node_selector: {label:
        value}, tolerations: [toleration]}}. A request for a kind not listed is refused.""",
    ).tag(config=True)

    gpu_tolerations = List(
        Dict(),
        DEFAULT_GPU_TOLERATIONS,
        help="""Tolerations every GPU pod gets (for GPU nodes tainted against other pods).""",
    ).tag(config=True)

    gpu_resource = Unicode(
        "nvidia.com/gpu", help="""The extended resource that counts GPUs."""
    ).tag(config=True)

    guarantee_ratio = Float(
        1.0,
        help="""CPU and memory requests as a fraction of the profile's limits (1: requests
        equal limits, the Guaranteed QoS class).""",
    ).tag(config=True)

    label_prefix = Unicode(
        "workbench/",
        help="""Prefix of the labels and annotations naming the request, tenant and profile.""",
    ).tag(config=True)

    _configured: dict[str, Any] | None = None

    async def prepare(self, request: ApprovedRequest) -> None:
        await super().prepare(request)
        res = pod_resources(
            request,
            gpu_pools=self.gpu_pools,
            gpu_tolerations=self.gpu_tolerations,
            gpu_resource=self.gpu_resource,
            guarantee_ratio=self.guarantee_ratio,
            label_prefix=self.label_prefix,
        )
        pod: Any = self  # KubeSpawner is untyped: its traits are set through this alias
        if self._configured is None:  # the operator's settings, before any request's
            self._configured = {
                "image": pod.image,
                "node_selector": dict(pod.node_selector),
                "tolerations": list(self._sorted_dict_values(pod.tolerations)),
                "extra_resource_limits": dict(pod.extra_resource_limits),
                "extra_labels": dict(pod.extra_labels),
                "extra_annotations": dict(pod.extra_annotations),
                "extra_pod_config": dict(pod.extra_pod_config),
            }
        base = self._configured
        pod.cpu_limit = res.cpu_limit
        pod.cpu_guarantee = res.cpu_guarantee
        pod.mem_limit = res.mem_limit
        pod.mem_guarantee = res.mem_guarantee
        pod.image = res.image or base["image"]
        pod.extra_resource_limits = {**base["extra_resource_limits"], **res.extra_resource_limits}
        pod.node_selector = {**base["node_selector"], **res.node_selector}
        pod.tolerations = [*base["tolerations"], *res.tolerations]
        pod.extra_labels = {**base["extra_labels"], **res.labels}
        pod.extra_annotations = {**base["extra_annotations"], **res.annotations}
        pod.extra_pod_config = {
            **base["extra_pod_config"],
            "activeDeadlineSeconds": res.deadline_seconds,
        }
