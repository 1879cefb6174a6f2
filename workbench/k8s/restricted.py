"""Check a pod against the Pod Security Standards "restricted" profile and the workbench's own
rules; every rendered pod and job passes this in the tests, and `workbench k8s render` refuses
to print a manifest that does not.

The rules follow https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the
"restricted" level includes "baseline"). The namespace should also enforce them:
`pod-security.kubernetes.io/enforce: restricted`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["pod_spec_of", "restricted_violations", "workbench_violations"]

ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})


def pod_spec_of(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a Pod, or of the pod template of a Job/Deployment-like object."""
    spec = manifest.get("spec", {})
    return spec["template"]["spec"] if "template" in spec else spec


def _containers(spec: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    found = []
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            found.append((f"{kind}[{c.get('name', '?')}]", c))
    return found


def restricted_violations(spec: Mapping[str, Any]) -> list[str]:
    """What in pod spec `spec` breaks the "restricted" profile; [] when nothing does."""
    bad: list[str] = []
    psc = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            bad.append(f"{host} must be false")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        bad.append("securityContext.windowsOptions.hostProcess must be false")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            bad.append(f"volume {volume.get('name')!r} has a forbidden type {sorted(kinds)}")
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            bad.append(f"sysctl {sysctl.get('name')!r} is not in the safe set")
    _selinux(bad, "securityContext", psc)
    if psc.get("runAsUser") == 0:
        bad.append("securityContext.runAsUser must not be 0")
    pod_non_root = psc.get("runAsNonRoot") is True
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in SECCOMP_OK:
        bad.append(f"securityContext.seccompProfile.type {pod_seccomp!r} is not allowed")
    if (psc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        bad.append("securityContext.appArmorProfile must not be Unconfined")
    for where, c in _containers(spec):
        csc = c.get("securityContext") or {}
        if csc.get("privileged"):
            bad.append(f"{where}: privileged must be false")
        if csc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{where}: allowPrivilegeEscalation must be false")
        if csc.get("runAsNonRoot") is False or not (pod_non_root or csc.get("runAsNonRoot")):
            bad.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if csc.get("runAsUser") == 0:
            bad.append(f"{where}: runAsUser must not be 0")
        seccomp = (csc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in SECCOMP_OK:
            bad.append(f"{where}: seccompProfile.type {seccomp!r} is not allowed")
        if seccomp is None and pod_seccomp is None:
            bad.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad.append(f"{where}: capabilities must drop ALL")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            bad.append(f"{where}: capabilities may add only NET_BIND_SERVICE, not {sorted(added)}")
        if csc.get("procMount", "Default") != "Default":
            bad.append(f"{where}: procMount must be Default")
        if (csc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            bad.append(f"{where}: appArmorProfile must not be Unconfined")
        if (csc.get("windowsOptions") or {}).get("hostProcess"):
            bad.append(f"{where}: windowsOptions.hostProcess must be false")
        _selinux(bad, where, csc)
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                bad.append(f"{where}: hostPort must not be set")
    return bad


def _selinux(bad: list[str], where: str, sc: Mapping[str, Any]) -> None:
    se = sc.get("seLinuxOptions") or {}
    if se.get("type", "") not in SELINUX_TYPES:
        bad.append(f"{where}: seLinuxOptions.type {se.get('type')!r} is not allowed")
    if se.get("user") or se.get("role"):
        bad.append(f"{where}: seLinuxOptions.user and role must not be set")


def workbench_violations(spec: Mapping[str, Any], *, read_only_root: bool = True) -> list[str]:
    """`restricted_violations` plus the workbench's rules: no service-account token, no
    service links, every container with CPU and memory limits and (unless the image needs a
    writable root) a read-only root filesystem."""
    bad = restricted_violations(spec)
    if spec.get("automountServiceAccountToken") is not False:
        bad.append("automountServiceAccountToken must be false")
    if spec.get("enableServiceLinks") is not False:
        bad.append("enableServiceLinks must be false")
    for where, c in _containers(spec):
        limits = (c.get("resources") or {}).get("limits") or {}
        if not {"cpu", "memory"} <= set(limits):
            bad.append(f"{where}: resources.limits must set cpu and memory")
        if (
            read_only_root
            and (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True
        ):
            bad.append(f"{where}: readOnlyRootFilesystem must be true")
    return bad
