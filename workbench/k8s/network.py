"""NetworkPolicies of notebook and job pods: default deny, then egress only to DNS and the
endpoints the workbench needs (the hub, the workbench service, the object store, the secret
store, the tenant SQL endpoint); ingress to a notebook only from the hub and the proxy; none to
a job, except from the other pods of the same multi-node job. No internet, no cloud metadata
address, no other notebook or job pod.

NetworkPolicies only add allowances, so any other policy selecting these pods (the
zero-to-jupyterhub chart's `singleuser.networkPolicy`) must allow nothing more: see
`hub_config/helm/values.yaml` and docs/deploy-kubernetes.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ENDPOINTS",
    "METADATA_ADDRESS",
    "Endpoint",
    "endpoint_from_dict",
    "job_peer_policy",
    "workload_policies",
]

METADATA_ADDRESS = "169.254.169.254"
WORKLOAD_LABEL = "request-id"  # every notebook and job pod carries PREFIX + this label


@dataclass(frozen=True)
class Endpoint:
    """One place workload pods may reach: pods (by labels, in `namespace` or the workload's
    own when empty) or addresses outside the cluster (`cidr`), on `port`."""

    name: str
    port: int
    protocol: str = "TCP"
    pod_labels: dict[str, str] = field(default_factory=dict)
    namespace: str = ""
    cidr: str = ""

    def __post_init__(self) -> None:
        if bool(self.cidr) == bool(self.pod_labels):
            raise ValueError(f"endpoint {self.name!r}: give either pod_labels or cidr")
        if self.cidr:
            net = ipaddress.ip_network(self.cidr, strict=False)
            if net.prefixlen == 0:
                raise ValueError(
                    f"endpoint {self.name!r}: {self.cidr} is the whole internet; workload pods "
                    "get no internet egress — name the store's own address range"
                )
        if not 0 < self.port < 65536:
            raise ValueError(f"endpoint {self.name!r}: port {self.port} is out of range")

    def peer(self) -> dict[str, Any]:
        """The NetworkPolicyPeer; a CIDR that holds the metadata address excepts it."""
        if self.cidr:
            block: dict[str, Any] = {"cidr": self.cidr}
            net = ipaddress.ip_network(self.cidr, strict=False)
            if net.version == 4 and ipaddress.ip_address(METADATA_ADDRESS) in net:
                block["except"] = [f"{METADATA_ADDRESS}/32"]
            return {"ipBlock": block}
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(self.pod_labels)}}
        if self.namespace:
            peer["namespaceSelector"] = {
                "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
            }
        return peer


def endpoint_from_dict(name: str, spec: Mapping[str, Any]) -> Endpoint:
    """An Endpoint from configuration ({port, protocol, pod_labels, namespace, cidr});
    ValueError naming the unknown key or the bad value."""
    allowed = {"port", "protocol", "pod_labels", "namespace", "cidr"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"endpoint {name!r}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return Endpoint(
        name=name,
        port=int(spec["port"]),
        protocol=str(spec.get("protocol", "TCP")),
        pod_labels=dict(spec.get("pod_labels", {})),
        namespace=str(spec.get("namespace", "")),
        cidr=str(spec.get("cidr", "")),
    )


# Where zero-to-jupyterhub's hub runs (the workbench service is a managed service in the hub
# pod, port 10101), and where docs/deploy-kubernetes.md installs the object store, the secret
# store and PostgreSQL. Override with `c.KubeJobBackend.endpoints`.
DEFAULT_ENDPOINTS: dict[str, dict[str, Any]] = {
    "hub": {"port": 8081, "pod_labels": {"app": "jupyterhub", "component": "hub"}},
    "workbench-service": {
        "port": 10101,
        "pod_labels": {"app": "jupyterhub", "component": "hub"},
    },
    "object-store": {
        "port": 8333,
        "pod_labels": {"app.kubernetes.io/name": "seaweedfs"},
        "namespace": "storage",
    },
    "secret-store": {
        "port": 8200,
        "pod_labels": {"app.kubernetes.io/name": "openbao"},
        "namespace": "openbao",
    },
    "tenant-sql": {
        "port": 5432,
        "pod_labels": {"app.kubernetes.io/name": "postgresql"},
        "namespace": "databases",
    },
}

_DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def _selector(label_prefix: str, component: str) -> dict[str, Any]:
    return {
        "matchLabels": {f"{label_prefix}component": component},
        "matchExpressions": [{"key": label_prefix + WORKLOAD_LABEL, "operator": "Exists"}],
    }


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "workbench"},
        },
        "spec": spec,
    }


def workload_policies(
    namespace: str,
    endpoints: Sequence[Endpoint],
    *,
    label_prefix: str = "workbench/",
    notebook_port: int = 8888,
    ingress_from: Sequence[Mapping[str, str]] = (
        {"app": "jupyterhub", "component": "hub"},
        {"app": "jupyterhub", "component": "proxy"},
    ),
) -> list[dict[str, Any]]:
    """The namespace's NetworkPolicies for notebook pods and job pods (selected by their
    `component` label and the presence of the request-id label)."""
    egress = [_DNS] + [
        {"to": [e.peer()], "ports": [{"protocol": e.protocol, "port": e.port}]} for e in endpoints
    ]
    notebook_ingress = [
        {
            "from": [{"podSelector": {"matchLabels": dict(labels)}} for labels in ingress_from],
            "ports": [{"protocol": "TCP", "port": notebook_port}],
        }
    ]
    return [
        _policy(
            "workbench-notebooks",
            namespace,
            {
                "podSelector": _selector(label_prefix, "notebook"),
                "policyTypes": ["Ingress", "Egress"],
                "ingress": notebook_ingress,
                "egress": egress,
            },
        ),
        _policy(
            "workbench-jobs",
            namespace,
            {
                "podSelector": _selector(label_prefix, "job"),
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": egress,
            },
        ),
    ]


def job_peer_policy(
    name: str, namespace: str, job_labels: Mapping[str, str], port: int
) -> dict[str, Any]:
    """The pods of one multi-node job may reach each other (torchrun's rendezvous and NCCL);
    `job_labels` select exactly that job's pods. NCCL opens ports of its own choosing, so every
    port is open between them, and only between them."""
    peers = [{"podSelector": {"matchLabels": dict(job_labels)}}]
    policy = _policy(
        name,
        namespace,
        {
            "podSelector": {"matchLabels": dict(job_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": peers}],
            "egress": [{"to": peers}],
        },
    )
    policy["metadata"]["annotations"] = {"workbench/rendezvous-port": str(port)}
    return policy
