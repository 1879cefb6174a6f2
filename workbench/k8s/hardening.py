"""The hardening every notebook and job pod gets: the Pod Security Standards "restricted"
profile plus the workbench's own rules (no service-account token, no service links, ephemeral
scratch space, read-only root filesystem where the image allows).

Pure functions of one `Hardening`; `workbench.k8s.restricted` checks a pod against the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Hardening",
    "container_security_context",
    "pod_security_context",
    "pod_spec_fields",
    "volume_mounts",
    "volumes",
]

SCRATCH_VOLUME = "scratch"
TMP_VOLUME = "tmp"


@dataclass(frozen=True)
class Hardening:
    """How a workload pod is locked down. `uid`/`gid` are the image's non-root user (Jupyter
    Docker Stacks: jovyan, 1000:100). `scratch_path` (the user's HOME) and /tmp are `emptyDir`
    volumes that die with the pod; with `read_only_root` they are the only writable places,
    so turn it off only for an image that writes elsewhere."""

    uid: int = 1000
    gid: int = 100
    read_only_root: bool = True
    scratch_path: str = "/home/jovyan"
    scratch_size: str = "20Gi"
    tmp_size: str = "1Gi"
    scratch_medium: str = ""  # "" (node disk) or "Memory" (tmpfs, counts against memory)

    def __post_init__(self) -> None:
        if self.uid == 0:
            raise ValueError("pods never run as root: choose a uid other than 0")
        if self.scratch_medium not in ("", "Memory"):
            raise ValueError(f"scratch_medium must be '' or 'Memory', not {self.scratch_medium!r}")


def pod_security_context(h: Hardening) -> dict[str, Any]:
    """The pod's `securityContext`."""
    return {
        "runAsNonRoot": True,
        "runAsUser": h.uid,
        "runAsGroup": h.gid,
        "fsGroup": h.gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(h: Hardening) -> dict[str, Any]:
    """Every container's `securityContext`."""
    return {
        "runAsNonRoot": True,
        "runAsUser": h.uid,
        "runAsGroup": h.gid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": h.read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volumes(h: Hardening) -> list[dict[str, Any]]:
    """The pod's ephemeral volumes: scratch (HOME) and /tmp."""

    def empty_dir(size: str) -> dict[str, Any]:
        spec: dict[str, Any] = {"sizeLimit": size}
        if h.scratch_medium:
            spec["medium"] = h.scratch_medium
        return spec

    return [
        {"name": SCRATCH_VOLUME, "emptyDir": empty_dir(h.scratch_size)},
        {"name": TMP_VOLUME, "emptyDir": empty_dir(h.tmp_size)},
    ]


def volume_mounts(h: Hardening) -> list[dict[str, Any]]:
    """Where the container mounts `volumes(h)`."""
    return [
        {"name": SCRATCH_VOLUME, "mountPath": h.scratch_path},
        {"name": TMP_VOLUME, "mountPath": "/tmp"},
    ]


def pod_spec_fields(h: Hardening) -> dict[str, Any]:
    """The pod-spec fields of the hardening, besides containers and volumes: no token of the
    namespace's service account, no environment variables naming every Service, no host
    namespaces."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "securityContext": pod_security_context(h),
    }
