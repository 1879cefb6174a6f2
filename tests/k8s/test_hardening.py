"""The hardening and the checker of the "restricted" profile: the checker catches each
violation it names, and the hardened pod has none."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from workbench.k8s import hardening
from workbench.k8s.hardening import Hardening
from workbench.k8s.restricted import pod_spec_of, restricted_violations, workbench_violations


def hardened_spec(h: Hardening | None = None) -> dict[str, Any]:
    h = h or Hardening()
    return {
        **hardening.pod_spec_fields(h),
        "containers": [
            {
                "name": "c",
                "image": "img",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                "securityContext": hardening.container_security_context(h),
                "volumeMounts": hardening.volume_mounts(h),
            }
        ],
        "volumes": hardening.volumes(h),
    }


def test_the_hardening_field_by_field() -> None:
    h = Hardening()
    assert hardening.pod_security_context(h) == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 100,
        "fsGroup": 100,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert hardening.container_security_context(h) == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 100,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert hardening.volumes(Hardening(scratch_medium="Memory", scratch_size="4Gi")) == [
        {"name": "scratch", "emptyDir": {"sizeLimit": "4Gi", "medium": "Memory"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi", "medium": "Memory"}},
    ]
    assert hardening.volume_mounts(h) == [
        {"name": "scratch", "mountPath": "/home/jovyan"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    fields = hardening.pod_spec_fields(h)
    assert fields["automountServiceAccountToken"] is False
    assert fields["enableServiceLinks"] is False


def test_root_and_unknown_media_are_refused() -> None:
    with pytest.raises(ValueError, match="never run as root"):
        Hardening(uid=0)
    with pytest.raises(ValueError, match="scratch_medium"):
        Hardening(scratch_medium="Disk")


def test_a_hardened_pod_has_no_violation() -> None:
    assert workbench_violations(hardened_spec()) == []
    writable = hardened_spec(Hardening(read_only_root=False))
    assert workbench_violations(writable, read_only_root=False) == []
    assert workbench_violations(writable) == ["containers[c]: readOnlyRootFilesystem must be true"]


def _c(spec: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = spec["containers"][0]
    return container


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "host network": (lambda s: s.update(hostNetwork=True), "hostNetwork must be false"),
    "host pid": (lambda s: s.update(hostPID=True), "hostPID must be false"),
    "hostPath": (
        lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "volume 'h' has a forbidden type ['hostPath']",
    ),
    "privileged": (
        lambda s: _c(s)["securityContext"].update(privileged=True),
        "containers[c]: privileged must be false",
    ),
    "escalation": (
        lambda s: _c(s)["securityContext"].pop("allowPrivilegeEscalation"),
        "containers[c]: allowPrivilegeEscalation must be false",
    ),
    "root": (
        lambda s: _c(s)["securityContext"].update(runAsUser=0),
        "containers[c]: runAsUser must not be 0",
    ),
    "non-root off": (
        lambda s: _c(s)["securityContext"].update(runAsNonRoot=False),
        "containers[c]: runAsNonRoot must be true (pod or container)",
    ),
    "seccomp unconfined": (
        lambda s: _c(s)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "containers[c]: seccompProfile.type 'Unconfined' is not allowed",
    ),
    "capabilities kept": (
        lambda s: _c(s)["securityContext"].update(capabilities={}),
        "containers[c]: capabilities must drop ALL",
    ),
    "capability added": (
        lambda s: _c(s)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        "containers[c]: capabilities may add only NET_BIND_SERVICE, not ['SYS_ADMIN']",
    ),
    "host port": (
        lambda s: _c(s).update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "containers[c]: hostPort must not be set",
    ),
    "unsafe sysctl": (
        lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "sysctl 'kernel.msgmax' is not in the safe set",
    ),
    "privileged init container": (
        lambda s: s.update(initContainers=[{"name": "i", "securityContext": {"privileged": True}}]),
        "initContainers[i]: privileged must be false",
    ),
    "service account token": (
        lambda s: s.update(automountServiceAccountToken=True),
        "automountServiceAccountToken must be false",
    ),
    "service links": (lambda s: s.pop("enableServiceLinks"), "enableServiceLinks must be false"),
    "no limits": (
        lambda s: _c(s).pop("resources"),
        "containers[c]: resources.limits must set cpu and memory",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_violation_is_caught(name: str) -> None:
    mutate, message = MUTATIONS[name]
    spec = copy.deepcopy(hardened_spec())
    mutate(spec)
    assert message in workbench_violations(spec)


def test_runasnonroot_may_come_from_the_pod_alone() -> None:
    spec = hardened_spec()
    del _c(spec)["securityContext"]["runAsNonRoot"]
    del _c(spec)["securityContext"]["seccompProfile"]
    assert restricted_violations(spec) == []
    del spec["securityContext"]["runAsNonRoot"]
    del spec["securityContext"]["seccompProfile"]
    assert restricted_violations(spec) == [
        "containers[c]: runAsNonRoot must be true (pod or container)",
        "containers[c]: seccompProfile must be RuntimeDefault or Localhost",
    ]


def test_pod_spec_of_a_job_is_its_template() -> None:
    job: dict[str, Any] = {"spec": {"template": {"spec": {"containers": []}}}}
    assert pod_spec_of(job) == {"containers": []}
    assert pod_spec_of({"spec": {"containers": [1]}}) == {"containers": [1]}
