"""NetworkPolicies: default deny, egress only to DNS and the configured endpoints."""

from __future__ import annotations

import pytest

from tests.k8s.helpers import validate
from workbench.k8s.network import Endpoint, endpoint_from_dict, workload_policies
from workbench.k8s.settings import default_endpoints

DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def test_notebook_and_job_policies_field_by_field() -> None:
    hub = Endpoint("hub", 8081, pod_labels={"component": "hub"})
    s3 = Endpoint("s3", 443, cidr="10.20.0.0/16")
    notebooks, jobs = workload_policies("wb", [hub, s3])
    hub_rule = {
        "to": [{"podSelector": {"matchLabels": {"component": "hub"}}}],
        "ports": [{"protocol": "TCP", "port": 8081}],
    }
    s3_rule = {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert notebooks["metadata"]["name"] == "workbench-notebooks"
    assert notebooks["spec"] == {
        "podSelector": {
            "matchLabels": {"workbench/component": "notebook"},
            "matchExpressions": [{"key": "workbench/request-id", "operator": "Exists"}],
        },
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [
            {
                "from": [
                    {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}},
                    {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "proxy"}}},
                ],
                "ports": [{"protocol": "TCP", "port": 8888}],
            }
        ],
        "egress": [DNS, hub_rule, s3_rule],
    }
    assert jobs["spec"]["podSelector"]["matchLabels"] == {"workbench/component": "job"}
    assert jobs["spec"]["ingress"] == []  # nothing connects to a job
    assert jobs["spec"]["egress"] == notebooks["spec"]["egress"]


def test_default_policies_validate() -> None:
    for policy in workload_policies("workbench", default_endpoints()):
        validate(policy)


def test_no_internet_and_no_metadata_address() -> None:
    with pytest.raises(ValueError, match="whole internet"):
        Endpoint("s3", 443, cidr="0.0.0.0/0")
    with pytest.raises(ValueError, match="whole internet"):
        Endpoint("s3", 443, cidr="::/0")
    wide = Endpoint("store", 443, cidr="169.254.0.0/16").peer()
    assert wide == {"ipBlock": {"cidr": "169.254.0.0/16", "except": ["169.254.169.254/32"]}}
    for policy in workload_policies("wb", [Endpoint("store", 443, cidr="169.254.0.0/16")]):
        validate(policy)
        for rule in policy["spec"]["egress"]:
            for peer in rule["to"]:
                block = peer.get("ipBlock")
                if block:
                    assert "169.254.169.254/32" in block.get("except", [])


def test_endpoints_from_configuration() -> None:
    e = endpoint_from_dict("bao", {"port": 8200, "pod_labels": {"a": "b"}, "namespace": "bao"})
    assert e.peer() == {
        "podSelector": {"matchLabels": {"a": "b"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "bao"}},
    }
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['cdir'\]"):
        endpoint_from_dict("s3", {"port": 443, "cdir": "10.0.0.0/8"})
    with pytest.raises(ValueError, match="either pod_labels or cidr"):
        endpoint_from_dict("s3", {"port": 443})
    with pytest.raises(ValueError, match="out of range"):
        endpoint_from_dict("s3", {"port": 0, "cidr": "10.0.0.0/8"})
    names = [e.name for e in default_endpoints()]
    assert names == ["hub", "workbench-service", "object-store", "secret-store", "tenant-sql"]
