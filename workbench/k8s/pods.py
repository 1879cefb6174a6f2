"""The notebook pod a request would get, as a pure function: what `KubeRequestSpawner` builds
through KubeSpawner (the tests compare the two), without a hub, for `workbench k8s render`.

Left out, because the hub adds them at spawn time: the JUPYTERHUB_* environment (the server's
own API token among them) and KubeSpawner's own labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.config import Profile
from workbench.k8s import hardening
from workbench.k8s.resources import placement, resources
from workbench.k8s.settings import ClusterSettings, label_value

__all__ = ["Workload", "notebook_labels", "notebook_pod"]


@dataclass(frozen=True)
class Workload:
    """What a notebook pod is started for: one approved request."""

    request_id: int
    user: str
    tenant: str
    datasets: tuple[str, ...]
    profile: Profile
    seconds_left: float


def notebook_labels(w: Workload, label_prefix: str) -> dict[str, str]:
    """The labels `KubeRequestSpawner` puts on a server's pod (see `pod_resources`)."""
    return {
        f"{label_prefix}component": "notebook",
        f"{label_prefix}request-id": str(w.request_id),
        f"{label_prefix}tenant": label_value(w.tenant),
        f"{label_prefix}profile": label_value(w.profile.name),
    }


def notebook_pod(w: Workload, s: ClusterSettings, api_url: str = "") -> dict[str, Any]:
    """The v1 Pod of the server `r{id}` of request `w`; ValueError as `job_manifest`."""
    where = placement(
        w.profile.gpu_kind,
        w.profile.gpu_count,
        gpu_pools=s.gpu_pools,
        gpu_tolerations=s.gpu_tolerations,
        gpu_resource=s.gpu_resource,
    )
    h = s.hardening
    p = s.label_prefix
    env = [{"name": "WORKBENCH_REQUEST_ID", "value": str(w.request_id)}]
    if api_url:
        env.append({"name": "WORKBENCH_API_URL", "value": api_url})
    container = {
        "name": "notebook",
        "image": w.profile.image or s.notebook_image,
        "args": ["jupyterhub-singleuser"],
        "env": env,
        "ports": [{"name": "notebook-port", "containerPort": s.notebook_port}],
        "resources": resources(w.profile.cpu, w.profile.memory, where, s.guarantee_ratio).as_dict(),
        "securityContext": hardening.container_security_context(h),
        "volumeMounts": hardening.volume_mounts(h),
        "workingDir": h.scratch_path,
    }
    spec: dict[str, Any] = {
        **hardening.pod_spec_fields(h),
        "activeDeadlineSeconds": max(1, math.ceil(w.seconds_left)),
        "restartPolicy": "OnFailure",
        "containers": [container],
        "volumes": hardening.volumes(h),
    }
    if where.node_selector:
        spec["nodeSelector"] = where.node_selector
    if where.tolerations:
        spec["tolerations"] = where.tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-{label_value(w.user)}--r{w.request_id}",
            "namespace": s.namespace,
            "labels": notebook_labels(w, p),
            "annotations": {
                f"{p}request-id": str(w.request_id),
                f"{p}tenant": w.tenant,
                f"{p}datasets": ",".join(w.datasets),
                f"{p}profile": w.profile.name,
            },
        },
        "spec": spec,
    }
