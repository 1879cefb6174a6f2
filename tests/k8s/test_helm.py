"""The Helm values validate against their closed schema; the schema refuses a wrong key; the
spawner settings it allows exist; the shipped cluster manifests are the rendered ones."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.k8s.helpers import validate
from workbench.hub.kube import KubeRequestSpawner
from workbench.k8s.cluster import cluster_manifests
from workbench.k8s.settings import ClusterSettings

HELM = Path(__file__).parents[2] / "hub_config" / "helm"


def schema() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((HELM / "values.schema.yaml").read_text())
    return data


def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((HELM / "values.yaml").read_text())
    return data


def errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema())
    return [e.message for e in validator.iter_errors(doc)]


def test_the_values_validate() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    assert errors(values()) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("hub", "concurrentSpawnLimt"), 10, "'concurrentSpawnLimt' was unexpected"),
        (("hub", "config", "KubeRequestSpawner", "gpu_pool"), {}, "'gpu_pool' was unexpected"),
        (("singleuser", "cloudMetadata", "blockWithIptables"), True, "False was expected"),
        (("singleuser", "networkPolicy", "egressAllowRules", "nonPrivateIPs"), True, "False"),
        (("cull", "enabled"), True, "False was expected"),
        (("hub", "image", "tag"), "latest", "should not be valid"),
        (
            ("hub", "config", "JupyterHub", "spawner_class"),
            "kubespawner.KubeSpawner",
            "was expected",
        ),
    ],
)
def test_a_wrong_key_or_unsafe_value_is_refused(
    path: tuple[str, ...], value: Any, message: str
) -> None:
    doc = copy.deepcopy(values())
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    found = errors(doc)
    assert found and any(message in e for e in found), found


def test_the_spawner_settings_the_schema_allows_exist() -> None:
    allowed = set(
        schema()["properties"]["hub"]["properties"]["config"]["properties"]["KubeRequestSpawner"][
            "properties"
        ]
    )
    traits = set(KubeRequestSpawner.class_trait_names(config=True))
    assert allowed - traits == set()
    used = set(values()["hub"]["config"]["KubeRequestSpawner"])
    assert used <= allowed


def test_the_shipped_cluster_manifests_are_the_rendered_ones_and_valid() -> None:
    shipped = list(yaml.safe_load_all((HELM / "manifests" / "workbench.yaml").read_text()))
    assert shipped == cluster_manifests(ClusterSettings())
    kinds = [m["kind"] for m in shipped]
    assert kinds == ["Namespace", "Role", "RoleBinding", "NetworkPolicy", "NetworkPolicy"]
    for m in shipped:
        validate(m)
    ns = shipped[0]["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    # the hub may manage Jobs but never read Secrets or touch pods beyond reading them
    rules = {(tuple(r["resources"]), tuple(r["verbs"])) for r in shipped[1]["rules"]}
    assert (("services", "secrets"), ("create",)) in rules
    assert not any("*" in verbs or "update" in verbs for _, verbs in rules)
