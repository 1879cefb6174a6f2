"""A job backend for the state machine: it starts nothing, keeps each job's own token (which
the real backends hand only to the job's process) and reports the job running until it is
stopped. The jobs service, its tokens, grants and reconciler are the real ones; what a job's
process does is covered by tests/jobs and test_stores.py (the real local backend)."""

from __future__ import annotations

import json

from workbench.jobs.backend import JobBackend, JobSpec, Status


class HeldJobBackend(JobBackend):
    name = "held"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.tokens: dict[int, str] = {}  # job id → its own token (wbj_…)
        self.stopped: set[int] = set()

    def start(self, spec: JobSpec) -> str:
        self.tokens[spec.job_id] = spec.env["WORKBENCH_TOKEN"]
        return json.dumps({"job": spec.job_id})

    def status(self, ref: str) -> Status:
        job = int(json.loads(ref)["job"])
        return Status("lost", "stopped") if job in self.stopped else Status("running")

    def stop(self, ref: str) -> None:
        self.stopped.add(int(json.loads(ref)["job"]))

    def logs(self, ref: str, tail_bytes: int = 65536) -> str:
        return ""
