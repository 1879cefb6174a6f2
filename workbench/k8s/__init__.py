"""Kubernetes manifests of the production deployment, as pure functions: hardened notebook and
job pods, NetworkPolicies, the job manifests, and the `workbench k8s render` command.

Nothing here needs a cluster; `workbench.k8s.client` is the one module that talks to one.
"""

from workbench.k8s.hardening import Hardening
from workbench.k8s.jobs import job_manifests, job_name
from workbench.k8s.jobstate import JobWatch, job_status
from workbench.k8s.network import Endpoint, workload_policies
from workbench.k8s.pods import Workload, notebook_pod
from workbench.k8s.render import RenderInput, dump, render
from workbench.k8s.restricted import restricted_violations, workbench_violations
from workbench.k8s.settings import ClusterSettings, label_value

__all__ = [
    "ClusterSettings",
    "Endpoint",
    "Hardening",
    "JobWatch",
    "RenderInput",
    "Workload",
    "dump",
    "job_manifests",
    "job_name",
    "job_status",
    "label_value",
    "notebook_pod",
    "render",
    "restricted_violations",
    "workbench_violations",
    "workload_policies",
]
