"""The production job backend: each job is a Kubernetes Job (batch/v1).

The manifests come from the pure functions of `workbench.k8s.jobs` (hardened like notebook
pods, GPUs from the profile, deadline from the request, deleted after
`ttl_seconds_after_finished`; multi-node torch as an Indexed Job with a headless Service); the
states from `workbench.k8s.jobstate`. The Kubernetes API is reached through `KubeAPI`
(`workbench.k8s.client`), made on first use, so that importing this module needs no cluster.

Configure it in workbench_config.py: `c.JobSettings.backend_class =
"workbench.jobs.kube.KubeJobBackend"`, `c.KubeJobBackend.namespace = "workbench"`, …
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from traitlets import Any as AnyTrait
from traitlets import Bool, Dict, Float, Integer, List, Unicode

from workbench.jobs.backend import JobBackend, JobSpec, Status
from workbench.k8s.client import AsyncioKubeAPI, KubeAPI, KubeError
from workbench.k8s.hardening import Hardening
from workbench.k8s.jobs import job_manifests, job_name
from workbench.k8s.jobstate import JobWatch, WatchExpired, job_status
from workbench.k8s.network import DEFAULT_ENDPOINTS, endpoint_from_dict
from workbench.k8s.resources import DEFAULT_GPU_POOLS, DEFAULT_GPU_TOLERATIONS
from workbench.k8s.settings import ClusterSettings

__all__ = ["KubeJobBackend"]

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set by the Job controller on its pods


class KubeJobBackend(JobBackend):
    """Runs jobs as Kubernetes Jobs in `namespace`; `ref` is the Job's name."""

    name = "kubernetes"

    namespace = Unicode("workbench", help="Namespace of the jobs' Jobs.").tag(config=True)
    image = Unicode(
        "workbench-job:latest",
        help="Image of jobs whose profile names none (images/job/Dockerfile).",
    ).tag(config=True)
    notebook_image = Unicode(
        "workbench-notebook:latest",
        help="""Image of notebook pods whose profile names none, as `workbench k8s render`
        shows them (keep equal to KubeRequestSpawner.image).""",
    ).tag(config=True)
    python = Unicode("python", help="The image's Python interpreter.").tag(config=True)
    gpu_pools = Dict(
        DEFAULT_GPU_POOLS,
        help="""Node pool of each GPU kind: {kind: {node_selector: {...}, tolerations: [...]}}
        (keep equal to KubeRequestSpawner.gpu_pools).""",
    ).tag(config=True)
    gpu_tolerations = List(
        Dict(), DEFAULT_GPU_TOLERATIONS, help="Tolerations every GPU job pod gets."
    ).tag(config=True)
    gpu_resource = Unicode("nvidia.com/gpu", help="The extended resource counting GPUs.").tag(
        config=True
    )
    guarantee_ratio = Float(
        1.0, help="CPU and memory requests as a fraction of the profile's limits."
    ).tag(config=True)
    label_prefix = Unicode("workbench/", help="Prefix of the workbench's labels.").tag(config=True)
    ttl_seconds_after_finished = Integer(
        3600, help="Delete a Job (its pods and logs) this long after it ends."
    ).tag(config=True)
    backoff_limit = Integer(
        0, help="Retries of a failed job pod (0: a failed notebook run is not run again)."
    ).tag(config=True)
    torch_port = Integer(29500, help="torchrun's rendezvous port (multi-node jobs).").tag(
        config=True
    )
    uid = Integer(1000, help="The image's non-root user id.").tag(config=True)
    gid = Integer(100, help="The image's group id (also the pod's fsGroup).").tag(config=True)
    read_only_root = Bool(
        True, help="Read-only root filesystem (HOME and /tmp are emptyDir volumes)."
    ).tag(config=True)
    scratch_size = Unicode("20Gi", help="Size limit of the scratch (HOME) volume.").tag(config=True)
    tmp_size = Unicode("1Gi", help="Size limit of the /tmp volume.").tag(config=True)
    scratch_medium = Unicode("", help="'' (node disk) or 'Memory' (tmpfs).").tag(config=True)
    endpoints = Dict(
        DEFAULT_ENDPOINTS,
        help="""Where notebook and job pods may connect (NetworkPolicy egress), by name:
        {port, protocol, pod_labels, namespace} for pods in the cluster or {port, cidr} for
        addresses outside it. Used by `workbench k8s render`.""",
    ).tag(config=True)
    kube_context = Unicode("", help="kubeconfig context when not running in the cluster.").tag(
        config=True
    )
    api_timeout = Float(30.0, help="Seconds to wait for one Kubernetes API call.").tag(config=True)
    log_tail_lines = Integer(2000, help="Lines of each pod's log that `logs` reads.").tag(
        config=True
    )
    api = AnyTrait(
        None, allow_none=True, help="The KubeAPI to call (default: AsyncioKubeAPI, made on use)."
    )

    def cluster_settings(self) -> ClusterSettings:
        """The traits as the manifest builders take them; ValueError for a bad value."""
        return ClusterSettings(
            namespace=self.namespace,
            image=self.image,
            notebook_image=self.notebook_image,
            python=self.python,
            hardening=Hardening(
                uid=self.uid,
                gid=self.gid,
                read_only_root=self.read_only_root,
                scratch_size=self.scratch_size,
                tmp_size=self.tmp_size,
                scratch_medium=self.scratch_medium,
            ),
            gpu_pools=self.gpu_pools,
            gpu_tolerations=self.gpu_tolerations,
            gpu_resource=self.gpu_resource,
            guarantee_ratio=self.guarantee_ratio,
            label_prefix=self.label_prefix,
            ttl_seconds_after_finished=self.ttl_seconds_after_finished,
            backoff_limit=self.backoff_limit,
            torch_port=self.torch_port,
            endpoints=tuple(endpoint_from_dict(n, s) for n, s in self.endpoints.items()),
        )

    def kube(self) -> KubeAPI:
        if self.api is None:
            self.api = AsyncioKubeAPI(self.kube_context, self.api_timeout)
        api: KubeAPI = self.api
        return api

    # -- JobBackend -----------------------------------------------------------------------------

    def start(self, spec: JobSpec) -> str:
        """Create the Job, then the objects it owns. A Job of that name that already exists
        (a service restarted mid-start) is taken as started."""
        job, *owned = job_manifests(spec, self.cluster_settings())
        name = job_name(spec.job_id)
        api = self.kube()
        try:
            created = api.create(job)
        except KubeError as e:
            if e.status != 409:
                raise
            found = api.read_job(self.namespace, name)
            if found is None:
                raise
            created = found
        uid = str(created["metadata"]["uid"])
        for obj in job_manifests(spec, self.cluster_settings(), owner_uid=uid)[1:]:
            try:
                api.create(obj)
            except KubeError as e:
                if e.status != 409:
                    raise
        self.log.info("job %s: started Job %s/%s", spec.job_id, self.namespace, name)
        return name

    def status(self, ref: str) -> Status:
        job = self.kube().read_job(self.namespace, ref)
        if job is None:
            return Status("lost", f"no Job {ref} in namespace {self.namespace}")
        return job_status(job)

    def stop(self, ref: str) -> None:
        self.kube().delete_job(self.namespace, ref)

    def logs(self, ref: str, tail_bytes: int = 65536) -> str:
        """The pods' logs, rank 0 first; each under a header when there are several."""
        api = self.kube()
        pods = api.list_pods(self.namespace, f"{JOB_NAME_LABEL}={ref}")
        pods.sort(key=_pod_order)
        parts = []
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            try:
                text = api.pod_log(self.namespace, pod_name, self.log_tail_lines)
            except KubeError as e:
                text = f"(no log: {e.message})\n"
            parts.append(f"==> {pod_name} <==\n{text}" if len(pods) > 1 else text)
        out = "".join(parts).encode()
        return out[-tail_bytes:].decode(errors="replace")

    # -- watching -------------------------------------------------------------------------------

    def watch(self, timeout_seconds: int = 300) -> Iterator[tuple[str, Status]]:
        """Each change of a workbench Job's state, `(ref, Status)`, for about `timeout_seconds`:
        list the Jobs, then watch from the list's resourceVersion; list again when the watch
        expires (410 Gone)."""
        api = self.kube()
        selector = f"{self.label_prefix}component=job"
        state = JobWatch()
        while True:
            items, state.resource_version = api.list_jobs(self.namespace, selector)
            for item in items:
                change = state.apply({"type": "ADDED", "object": item})
                if change is not None:
                    yield change
            try:
                for event in api.watch_jobs(
                    self.namespace, selector, state.resource_version, timeout_seconds
                ):
                    change = state.apply(event)
                    if change is not None:
                        yield change
            except WatchExpired:
                self.log.info("job watch expired; listing Jobs again")
                continue
            return


def _pod_order(pod: dict[str, Any]) -> tuple[int, str]:
    annotations = pod["metadata"].get("annotations") or {}
    index = annotations.get("batch.kubernetes.io/job-completion-index", "0")
    return (int(index) if str(index).isdigit() else 0, pod["metadata"]["name"])
