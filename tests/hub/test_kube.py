"""The production spawner's pods, built by KubeSpawner against a stub kubeconfig (no cluster)
and validated against the official Kubernetes schema."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from tests.hub.helpers import in_thread
from tests.k8s.helpers import VERSIONS
from workbench.config import Profile
from workbench.hub.kube import (
    DEFAULT_GPU_POOLS,
    KubeRequestSpawner,
    PodResources,
    label_value,
    memory_bytes,
    pod_resources,
)
from workbench.hub.rules import ApprovedRequest, ComputeProfile, Refused
from workbench.k8s.hardening import Hardening, container_security_context, pod_security_context
from workbench.k8s.pods import Workload, notebook_pod
from workbench.k8s.restricted import workbench_violations
from workbench.k8s.settings import ClusterSettings

STUB_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: stub, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: stub, user: {token: not-a-real-token}}]
contexts: [{name: stub, context: {cluster: stub, user: stub, namespace: workbench}}]
current-context: stub
"""
GPU = ComputeProfile("gpu-1", 4, "16G", "nvidia-h100", 1)
CPU = ComputeProfile("cpu-small", 1, "2G")


def request(profile: ComputeProfile = GPU, tenant: str = "acme", rid: int = 7) -> ApprovedRequest:
    return ApprovedRequest(rid, "alice", tenant, ("calls", "accounts"), profile, time.time() + 3600)


# -- the pure mapping --------------------------------------------------------------------------


def test_a_gpu_profile_becomes_resources_placement_and_labels() -> None:
    res = pod_resources(request(), gpu_pools=DEFAULT_GPU_POOLS)
    assert res == PodResources(
        cpu_limit=4.0,
        cpu_guarantee=4.0,
        mem_limit=16 * 1024**3,
        mem_guarantee=16 * 1024**3,
        extra_resource_limits={"nvidia.com/gpu": "1"},
        node_selector={"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        labels={
            "workbench/component": "notebook",
            "workbench/request-id": "7",
            "workbench/tenant": "acme",
            "workbench/profile": "gpu-1",
        },
        annotations={
            "workbench/request-id": "7",
            "workbench/tenant": "acme",
            "workbench/datasets": "calls,accounts",
            "workbench/profile": "gpu-1",
        },
        image="",
        deadline_seconds=res.deadline_seconds,
    )
    assert 3590 <= res.deadline_seconds <= 3600


def test_a_cpu_profile_gets_no_gpu_and_no_gpu_node() -> None:
    res = pod_resources(request(CPU), gpu_pools=DEFAULT_GPU_POOLS, guarantee_ratio=0.5)
    assert (res.cpu_limit, res.cpu_guarantee) == (1.0, 0.5)
    assert (res.mem_limit, res.mem_guarantee) == (2 * 1024**3, 1024**3)
    assert res.extra_resource_limits == res.node_selector == {} and res.tolerations == []


def test_the_gpu_kind_mapping_is_configurable_and_an_unknown_kind_is_refused() -> None:
    pools = {"nvidia-a10": {"node_selector": {"pool": "a10"}, "tolerations": [{"key": "a10"}]}}
    profile = ComputeProfile("a10-2", 8, "32G", "nvidia-a10", 2)
    res = pod_resources(request(profile), gpu_pools=pools, gpu_tolerations=[])
    assert res.extra_resource_limits == {"nvidia.com/gpu": "2"}
    assert res.node_selector == {"pool": "a10"} and res.tolerations == [{"key": "a10"}]
    with pytest.raises(Refused, match="no node pool is configured for GPU kind 'nvidia-h100'"):
        pod_resources(request(), gpu_pools=pools)


def test_labels_are_label_safe() -> None:
    assert label_value("acme") == "acme"
    odd = label_value("Ünïcode tenant/with {braces} " + "x" * 80)
    assert len(odd) <= 63 and odd.replace("-", "").replace(".", "").replace("_", "").isalnum()
    res = pod_resources(request(tenant="a{b}"), gpu_pools=DEFAULT_GPU_POOLS)
    assert res.annotations["workbench/tenant"] == "a{{b}}"  # KubeSpawner expands braces once


@pytest.mark.parametrize(("text", "size"), [("512M", 512 * 1024**2), ("1.5G", 1536 * 1024**2)])
def test_memory_sizes(text: str, size: int) -> None:
    assert memory_bytes(text) == size
    with pytest.raises(ValueError, match="not an amount of memory"):
        memory_bytes("lots")


# -- KubeSpawner's manifest ----------------------------------------------------------------------


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(STUB_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads $KUBECONFIG once, when first imported
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    return path


def kube_spawner(server: str = "r7", **config: Any) -> KubeRequestSpawner:
    c = Config()
    c.KubeRequestSpawner.workbench_api_url = "http://hub:8081/services/workbench/api/v1/"
    for key, value in config.items():
        setattr(c.KubeRequestSpawner, key, value)
    user = SimpleNamespace(name="alice", id=1, url="/user/alice/", escaped_name="alice")
    orm_spawner = SimpleNamespace(name=server, display_name=server, server=None)
    return KubeRequestSpawner(_mock=True, user=user, orm_spawner=orm_spawner, config=c)


async def manifest(spawner: KubeRequestSpawner, req: ApprovedRequest) -> dict[str, Any]:
    from kubernetes_asyncio.client import ApiClient

    spawner.workbench_request = req
    await spawner.prepare(req)
    pod = await spawner.get_pod_manifest()
    data: dict[str, Any] = ApiClient().sanitize_for_serialization(pod)
    return data


@pytest.mark.parametrize("profile", [GPU, CPU], ids=["gpu", "cpu"])
@in_thread
async def test_pods_validate_against_the_kubernetes_schema(
    kubeconfig: Path, profile: ComputeProfile
) -> None:
    pod = await manifest(kube_spawner(), request(profile))
    for version in VERSIONS:
        assert kubernetes_validate.validate(pod, version, strict=True)
    container = pod["spec"]["containers"][0]
    limits = container["resources"]["limits"]
    assert limits["cpu"] == profile.cpu and limits["memory"] == memory_bytes(profile.memory)
    assert limits.get("nvidia.com/gpu") == ("1" if profile.gpu_count else None)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKBENCH_REQUEST_ID"] == "7"
    assert env["WORKBENCH_API_URL"] == "http://hub:8081/services/workbench/api/v1/"
    assert not [k for k in env if k.startswith(("BAO_", "VAULT_", "AWS_"))]
    meta = pod["metadata"]
    assert meta["labels"]["workbench/request-id"] == "7"
    assert meta["labels"]["workbench/tenant"] == "acme"
    assert meta["annotations"]["workbench/datasets"] == "calls,accounts"
    assert pod["spec"]["activeDeadlineSeconds"] <= 3600
    if profile.gpu_count:
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
        assert pod["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    else:
        assert not pod["spec"].get("nodeSelector") and not pod["spec"].get("tolerations")


@in_thread
async def test_the_request_adds_to_the_operators_settings(kubeconfig: Path) -> None:
    spawner = kube_spawner(
        image="registry.example/notebook:1.0",
        node_selector={"pool": "notebooks"},
        extra_labels={"team": "research"},
    )
    gpu = await manifest(spawner, request(GPU))
    assert gpu["spec"]["containers"][0]["image"] == "registry.example/notebook:1.0"
    assert gpu["spec"]["nodeSelector"] == {
        "pool": "notebooks",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    assert gpu["metadata"]["labels"]["team"] == "research"
    # the same spawner later started for a CPU request keeps no GPU setting of the first
    cpu = await manifest(spawner, request(ComputeProfile("cpu", 1, "2G", image="img:2")))
    assert cpu["spec"]["nodeSelector"] == {"pool": "notebooks"}
    assert "nvidia.com/gpu" not in cpu["spec"]["containers"][0]["resources"]["limits"]
    assert cpu["spec"]["containers"][0]["image"] == "img:2"


# -- hardening ---------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [GPU, CPU], ids=["gpu", "cpu"])
@in_thread
async def test_pods_are_hardened_to_the_restricted_profile(
    kubeconfig: Path, profile: ComputeProfile
) -> None:
    pod = await manifest(kube_spawner(), request(profile))
    assert workbench_violations(pod["spec"]) == []
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"] == pod_security_context(Hardening())
    container = spec["containers"][0]
    assert container["securityContext"] == container_security_context(Hardening())
    assert {"name": "scratch", "emptyDir": {"sizeLimit": "20Gi"}} in spec["volumes"]
    assert {"name": "scratch", "mountPath": "/home/jovyan"} in container["volumeMounts"]


@in_thread
async def test_the_operator_cannot_loosen_the_hardening(kubeconfig: Path) -> None:
    spawner = kube_spawner(
        privileged=True,
        allow_privilege_escalation=True,
        uid=1000,
        automount_service_account_token=True,
        container_security_context={"capabilities": {"add": ["SYS_ADMIN"]}},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}],
        volume_mounts=[
            {"name": "data", "mountPath": "/data"},
            {"name": "home", "mountPath": "/home/jovyan"},
        ],
        extra_container_config={"securityContext": {"privileged": True}, "stdin": True},
        read_only_root=False,
        scratch_size="5Gi",
    )
    pod = await manifest(spawner, request())
    assert workbench_violations(pod["spec"], read_only_root=False) == []
    container = pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is False
    assert container["stdin"] is True  # the operator's other settings stay
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["data", "scratch", "tmp"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/data", "/home/jovyan", "/tmp"]
    assert pod["spec"]["volumes"][1] == {"name": "scratch", "emptyDir": {"sizeLimit": "5Gi"}}


@in_thread
async def test_root_is_refused(kubeconfig: Path) -> None:
    with pytest.raises(Refused, match="never run as root"):
        await manifest(kube_spawner(uid=0), request())


@in_thread
async def test_the_spawners_pod_and_the_rendered_pod_agree(kubeconfig: Path) -> None:
    """`workbench k8s render` shows what the spawner builds: same hardening, labels,
    placement, resources and deadline."""
    req = request()
    real = await manifest(kube_spawner(), req)
    profile = Profile(GPU.name, GPU.cpu, GPU.memory, GPU.gpu_kind, GPU.gpu_count)
    work = Workload(7, "alice", "acme", ("calls", "accounts"), profile, req.seconds_left)
    shown = notebook_pod(work, ClusterSettings(namespace="workbench"))
    for key in (
        "securityContext",
        "automountServiceAccountToken",
        "enableServiceLinks",
        "volumes",
        "nodeSelector",
        "tolerations",
    ):
        assert real["spec"][key] == shown["spec"][key], key
    assert abs(real["spec"]["activeDeadlineSeconds"] - shown["spec"]["activeDeadlineSeconds"]) <= 2
    for label, value in shown["metadata"]["labels"].items():
        assert real["metadata"]["labels"][label] == value
    for key, value in shown["metadata"]["annotations"].items():
        assert real["metadata"]["annotations"][key] == value
    rc, sc = real["spec"]["containers"][0], shown["spec"]["containers"][0]
    for key in ("securityContext", "volumeMounts", "workingDir"):
        assert rc[key] == sc[key], key
    for kind in ("limits", "requests"):
        real_res = {k: str(v) for k, v in rc["resources"][kind].items()}
        want = dict(sc["resources"][kind])
        assert memory_bytes(want.pop("memory").replace("i", "")) == int(real_res.pop("memory"))
        assert float(want.pop("cpu")) == float(real_res.pop("cpu"))
        assert real_res == want
