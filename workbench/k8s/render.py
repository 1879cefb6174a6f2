"""What `workbench k8s render` prints: the notebook pod, the job manifests and the namespace's
NetworkPolicies one request would produce, each checked against the "restricted" profile and
the workbench's rules before it is shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import yaml

from workbench.config import Profile
from workbench.jobs.backend import JobSpec
from workbench.k8s.cluster import cluster_manifests
from workbench.k8s.jobs import job_manifests
from workbench.k8s.network import workload_policies
from workbench.k8s.pods import Workload, notebook_pod
from workbench.k8s.restricted import pod_spec_of, workbench_violations
from workbench.k8s.settings import ClusterSettings

__all__ = ["ALL_PARTS", "PARTS", "RenderInput", "Unsafe", "dump", "render"]

PARTS = ("pod", "job", "policy")  # printed by default
ALL_PARTS = (*PARTS, "cluster")  # cluster: namespace, RBAC and policies, once per install


class Unsafe(ValueError):
    """A manifest breaks the restricted profile (a setting made it so): nothing is printed."""


@dataclass(frozen=True)
class RenderInput:
    """A request (real or hypothetical) and the job to show for it."""

    workload: Workload
    api_url: str = "http://hub:8081/services/workbench/api/v1/"
    job_id: int = 1
    nodes: int = 1
    parts: tuple[str, ...] = PARTS


def job_spec(r: RenderInput) -> JobSpec:
    """The JobSpec a job submitted under the request would get (its token redacted)."""
    w = r.workload
    return JobSpec(
        job_id=r.job_id,
        name=f"job {r.job_id} of request {w.request_id}",
        user=w.user,
        tenant=w.tenant,
        request_id=w.request_id,
        profile=w.profile,
        env={
            "WORKBENCH_API_URL": r.api_url,
            "WORKBENCH_JOB_ID": str(r.job_id),
            "WORKBENCH_REQUEST_ID": str(w.request_id),
            "WORKBENCH_TOKEN": "the job's own token, issued at submit",
        },
        deadline_seconds=max(1, math.ceil(w.seconds_left)),
        nodes=r.nodes,
    )


def render(r: RenderInput, s: ClusterSettings) -> list[dict[str, Any]]:
    """The manifests, pod first; Unsafe naming every violation; ValueError for a profile that
    cannot be placed."""
    out: list[dict[str, Any]] = []
    if "pod" in r.parts:
        out.append(notebook_pod(r.workload, s, r.api_url))
    if "job" in r.parts:
        out += job_manifests(job_spec(r), s, redact=True)
    if "policy" in r.parts and "cluster" not in r.parts:
        out += workload_policies(
            s.namespace, s.endpoints, label_prefix=s.label_prefix, notebook_port=s.notebook_port
        )
    if "cluster" in r.parts:
        out += cluster_manifests(s)
    bad = [
        f"{m['kind']} {m['metadata']['name']}: {v}"
        for m in out
        if m["kind"] in ("Pod", "Job")
        for v in workbench_violations(pod_spec_of(m), read_only_root=s.hardening.read_only_root)
    ]
    if bad:
        raise Unsafe("refusing to render unsafe manifests:\n  " + "\n  ".join(bad))
    return out


def dump(manifests: list[dict[str, Any]], fmt: str = "yaml") -> str:
    """YAML documents separated by `---`, or one JSON `v1 List` (both `kubectl apply -f`)."""
    if fmt == "json":
        doc = {"apiVersion": "v1", "kind": "List", "items": manifests}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown format {fmt!r}: yaml or json")
    return yaml.safe_dump_all(manifests, sort_keys=False, allow_unicode=True)


def profile_from_spec(name: str, spec: dict[str, Any]) -> Profile:
    """A Profile from a request's stored `profile_spec`."""
    return Profile(
        name=name,
        cpu=float(spec.get("cpu", 1)),
        memory=str(spec.get("memory", "1G")),
        gpu_kind=spec.get("gpu_kind") or None,
        gpu_count=int(spec.get("gpu_count") or 0),
        image=str(spec.get("image") or ""),
    )
