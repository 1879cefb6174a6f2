"""The production spawner: KubeSpawner behind the approval gate.

The admitted request's profile becomes the pod's resources (CPU and memory requests and limits,
`nvidia.com/gpu`), the node selector and tolerations of its GPU kind's node pool, its labels
and annotations (request id, tenant) and its deadline (`activeDeadlineSeconds`: the pod ends at
the request's end even if the hub is down). `pod_resources` computes all of it as a pure
function of the request and the settings; the spawner only applies it. Pod hardening and
the pod is hardened (`workbench.k8s.hardening`: the "restricted" Pod Security Standard, no
service-account token, no service links, HOME and /tmp on `emptyDir` volumes that die with the
pod, a read-only root filesystem unless `read_only_root` is off); the operator's own settings
cannot loosen that. The NetworkPolicies that select these pods are `workbench.k8s.network`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubespawner import KubeSpawner
from traitlets import Bool, Dict, Float, List, Unicode

from workbench.hub.gate import ApprovalGate
from workbench.hub.rules import ApprovedRequest, Refused
from workbench.k8s import hardening
from workbench.k8s.hardening import Hardening
from workbench.k8s.resources import (
    DEFAULT_GPU_POOLS,
    DEFAULT_GPU_TOLERATIONS,
    NoGpuPool,
    memory_bytes,
    placement,
)
from workbench.k8s.settings import label_value

__all__ = [
    "DEFAULT_GPU_POOLS",
    "KubeRequestSpawner",
    "PodResources",
    "label_value",
    "memory_bytes",
    "pod_resources",
]


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
    try:
        where = placement(
            profile.gpu_kind,
            profile.gpu_count,
            gpu_pools=gpu_pools,
            gpu_tolerations=gpu_tolerations,
            gpu_resource=gpu_resource,
        )
    except NoGpuPool as e:
        raise Refused(
            f"{e} of request {request.id} (KubeRequestSpawner.gpu_pools); tell the administrator",
            reason="gpu-pool",
            status=503,
        ) from e
    labels = {
        f"{label_prefix}component": "notebook",
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
        extra_resource_limits=where.gpu_limits,
        node_selector=where.node_selector,
        tolerations=where.tolerations,
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

    read_only_root = Bool(
        True,
        help="""Read-only root filesystem for notebook containers; HOME and /tmp are emptyDir
        volumes. Turn off only for an image that must write elsewhere.""",
    ).tag(config=True)

    scratch_size = Unicode(
        "20Gi", help="""Size limit of the scratch volume mounted at HOME (dies with the pod)."""
    ).tag(config=True)

    tmp_size = Unicode("1Gi", help="""Size limit of the /tmp volume.""").tag(config=True)

    scratch_medium = Unicode(
        "", help="""Medium of the scratch and /tmp volumes: '' (node disk) or 'Memory'."""
    ).tag(config=True)

    scratch_path = Unicode(
        "/home/jovyan", help="""Where the scratch volume is mounted: the image's HOME."""
    ).tag(config=True)

    _configured: dict[str, Any] | None = None

    def hardening(self) -> Hardening:
        """The pods' hardening, from the settings (uid/gid: KubeSpawner's, else 1000:100)."""
        pod: Any = self
        uid = pod.uid if isinstance(pod.uid, int) else 1000
        gid = pod.gid if isinstance(pod.gid, int) else 100
        try:
            return Hardening(
                uid=uid,
                gid=gid,
                read_only_root=self.read_only_root,
                scratch_path=self.scratch_path,
                scratch_size=self.scratch_size,
                tmp_size=self.tmp_size,
                scratch_medium=self.scratch_medium,
            )
        except ValueError as e:
            raise Refused(
                f"the notebook pod settings are unsafe: {e}", reason="config", status=500
            ) from e

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
                "extra_container_config": dict(pod.extra_container_config),
                "volumes": list(pod.volumes),
                "volume_mounts": list(pod.volume_mounts),
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
        self._harden(self.hardening(), base)
        pod.extra_pod_config = {
            **base["extra_pod_config"],
            **hardening.pod_spec_fields(self.hardening()),
            "activeDeadlineSeconds": res.deadline_seconds,
        }

    def _harden(self, h: Hardening, base: dict[str, Any]) -> None:
        """Apply `h` over the operator's settings: where they disagree, the hardening wins."""
        pod: Any = self
        csc = hardening.container_security_context(h)
        pod.uid, pod.gid, pod.fs_gid = h.uid, h.gid, h.gid
        pod.privileged = False
        pod.allow_privilege_escalation = False
        pod.container_security_context = csc
        pod.pod_security_context = hardening.pod_security_context(h)
        pod.automount_service_account_token = False
        ours = {v["name"] for v in hardening.volumes(h)}
        pod.volumes = [
            *(v for v in base["volumes"] if v.get("name") not in ours),
            *hardening.volumes(h),
        ]
        paths = {m["mountPath"] for m in hardening.volume_mounts(h)}
        pod.volume_mounts = [
            *(
                m
                for m in base["volume_mounts"]
                if m.get("name") not in ours and m.get("mountPath") not in paths
            ),
            *hardening.volume_mounts(h),
        ]
        pod.extra_container_config = {
            **base["extra_container_config"],
            "securityContext": csc,
            "workingDir": h.scratch_path,
        }
