"""The job backend interface: run one job's command somewhere, report its state, stop it.

Every backend runs the same command (`python -m workbench.jobs.runner`), which fetches the
notebook snapshot from the service with the job's own token, runs it with papermill and sends
back the executed notebook; so a backend needs to know nothing of notebooks — only how to start
a command with an environment and resources, watch it and stop it. Two implementations: local
processes (`workbench.jobs.local`, the embedded default) and Kubernetes Jobs
(`workbench.jobs.kube`, production), chosen by `JobSettings.backend_class`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from traitlets.config import LoggingConfigurable

if TYPE_CHECKING:  # workbench.config imports the backends to configure them
    from workbench.config import Profile

RUNNER = ("-m", "workbench.jobs.runner")  # after the image's python


@dataclass(frozen=True)
class JobSpec:
    """What a backend needs to start one job."""

    job_id: int
    name: str
    user: str
    tenant: str
    request_id: int
    profile: Profile
    env: dict[str, str]  # WORKBENCH_API_URL, WORKBENCH_TOKEN (the job's), WORKBENCH_JOB_ID, …
    deadline_seconds: int  # the request's time left: the job may not outlive it
    nodes: int = 1  # > 1: multi-node torch (torchrun), where the backend supports it
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """What the backend knows of a job: `running`, `succeeded`, `failed` or `lost`."""

    state: str
    message: str = ""


class JobBackend(LoggingConfigurable):
    """Runs jobs. Override `start`, `status`, `stop` and `logs`; each gets the `ref` that
    `start` returned (a process id, a Kubernetes Job name), which the service keeps in its
    database, so that a restarted service finds its jobs again."""

    name = "base"
    max_nodes = 1  # most nodes one job may span (multi-node torch)

    def start(self, spec: JobSpec) -> str:
        """Start the job; return the reference to find it by."""
        raise NotImplementedError

    def status(self, ref: str) -> Status:
        """The job's state now; `lost` when the backend does not know `ref`."""
        raise NotImplementedError

    def stop(self, ref: str) -> None:
        """Stop the job (idempotent: a job that already ended is left as it is)."""
        raise NotImplementedError

    def logs(self, ref: str, tail_bytes: int = 65536) -> str:
        """The last `tail_bytes` of the job's output (stdout and stderr together)."""
        raise NotImplementedError
