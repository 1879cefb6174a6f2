"""The namespace-wide objects of an install, besides the chart's: the namespace (enforcing the
"restricted" Pod Security Standard), the hub's permission to manage the workbench's Jobs, and
the workload NetworkPolicies. `workbench k8s render --only cluster` prints them;
hub_config/helm/manifests/workbench.yaml holds them for the default settings (a test keeps the
file equal to this function's output).
"""

from __future__ import annotations

from typing import Any

from workbench.k8s.network import workload_policies
from workbench.k8s.settings import ClusterSettings

__all__ = ["cluster_manifests"]

PART_OF = {"app.kubernetes.io/part-of": "workbench"}


def cluster_manifests(s: ClusterSettings, hub_service_account: str = "hub") -> list[dict[str, Any]]:
    """Namespace, Role and RoleBinding of the hub's service account, NetworkPolicies."""
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": s.namespace,
            "labels": {
                **PART_OF,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }
    # what KubeJobBackend does (workbench.k8s.client): nothing more
    rules = [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["services", "secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["create"]},
    ]
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "workbench-jobs", "namespace": s.namespace, "labels": dict(PART_OF)},
        "rules": rules,
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "workbench-jobs", "namespace": s.namespace, "labels": dict(PART_OF)},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "workbench-jobs",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": hub_service_account, "namespace": s.namespace}
        ],
    }
    policies = workload_policies(
        s.namespace, s.endpoints, label_prefix=s.label_prefix, notebook_port=s.notebook_port
    )
    return [namespace, role, binding, *policies]
