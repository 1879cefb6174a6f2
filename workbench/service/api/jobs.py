"""`jobs`, `jobs/{id}`, `jobs/{id}/logs|metrics|output|cancel|rerun`, and what a job calls with
its own token: `jobs/{id}/notebook`, `POST jobs/{id}/metrics`, `PUT jobs/{id}/output`."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from workbench.actor import Actor
from workbench.errors import Invalid
from workbench.jobs.models import JobState
from workbench.jobs.service import MAX_METRICS, NewJob
from workbench.scopes import DATA
from workbench.service.api.schemas import _Body
from workbench.service.base import BaseHandler, Param, endpoint

NOTEBOOK_MAX_BYTES = 32 * 1024 * 1024
ID = Param("id", "path", "integer", "Job id")


class JobIn(_Body):
    """A notebook to run headless under one of your approved requests."""

    max_bytes = NOTEBOOK_MAX_BYTES

    request_id: int = Field(ge=1, le=10**12 - 1)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f/\\]+$")
    notebook: dict[str, Any] = Field(description="The notebook (nbformat 4 JSON)")
    notebook_name: str = Field(
        default="notebook.ipynb", min_length=1, max_length=255, pattern=r"^[^\x00-\x1f/\\]+$"
    )
    parameters: dict[str, Any] = Field(default_factory=dict, max_length=200)
    profile: str | None = Field(default=None, max_length=255)
    nodes: int = Field(default=1, ge=1, le=64)


class MetricIn(_Body):
    name: str = Field(min_length=1, max_length=255)
    value: float
    step: int = Field(ge=0, le=2**31 - 1)

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class MetricsIn(_Body):
    """Metrics a running job reports."""

    max_bytes = 1024 * 1024
    metrics: list[MetricIn] = Field(min_length=1, max_length=MAX_METRICS)


class OutputIn(_Body):
    """The executed notebook a job sends back, and its error when a cell failed."""

    max_bytes = NOTEBOOK_MAX_BYTES
    notebook: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=4000)


def _int_arg(handler: BaseHandler, name: str, default: int, low: int, high: int) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"{name} must be a whole number from {low} to {high}, not {raw[:40]!r}")
    return int(raw)


class JobsHandler(BaseHandler):
    @endpoint(
        "job.list",
        "My jobs (and those of the tenants I govern), newest first",
        scope=DATA,
        params=(
            Param("request_id", "query", "integer"),
            Param("state", "query", enum=tuple(s.value for s in JobState)),
        ),
    )
    async def get(self, actor: Actor) -> None:
        rid = _int_arg(self, "request_id", 0, 1, 10**12 - 1) or None
        state = self.get_query_argument("state", None) or None
        if state is not None and state not in {s.value for s in JobState}:
            raise Invalid(f"no job state {state[:40]!r}")
        jobs = await self.run(self.wb.jobs.search, actor, rid, state)
        self.send_json({"jobs": jobs})

    @endpoint(
        "job.submit", "Run a notebook as a job under a request", scope=DATA, body=JobIn, ok=201
    )
    async def post(self, actor: Actor, body: JobIn) -> None:
        job = await self.run(self.wb.jobs.submit, actor, NewJob(**body.model_dump()))
        self.send_json(job, 201)


class JobHandler(BaseHandler):
    @endpoint("job.read", "One job", scope=DATA, params=(ID,))
    async def get(self, actor: Actor, job_id: str) -> None:
        self.send_json(await self.run(self.wb.jobs.get, actor, int(job_id)))


class JobLogsHandler(BaseHandler):
    @endpoint(
        "job.logs",
        "The tail of a job's output",
        scope=DATA,
        params=(ID, Param("tail", "query", "integer", "Bytes from the end (default 65536)")),
    )
    async def get(self, actor: Actor, job_id: str) -> None:
        tail = _int_arg(self, "tail", 65536, 1, 4 * 1024 * 1024)
        self.send_json({"logs": await self.run(self.wb.jobs.logs, actor, int(job_id), tail)})


class JobMetricsHandler(BaseHandler):
    @endpoint(
        "job.metrics",
        "Metrics a job reported, after the one with id `after`",
        scope=DATA,
        params=(ID, Param("after", "query", "integer")),
    )
    async def get(self, actor: Actor, job_id: str) -> None:
        after = _int_arg(self, "after", 0, 0, 2**62)
        metrics = await self.run(self.wb.jobs.metrics, actor, int(job_id), after)
        self.send_json({"metrics": metrics})

    @endpoint(
        "job.report_metrics",
        "Report metrics (the running job itself, with its own token)",
        scope=DATA,
        body=MetricsIn,
        params=(ID,),
        ok=201,
    )
    async def post(self, actor: Actor, job_id: str, body: MetricsIn) -> None:
        items = [m.model_dump() for m in body.metrics]
        n = await self.run(self.wb.jobs.record_metrics, actor, int(job_id), items)
        self.send_json({"recorded": n}, 201)


class JobNotebookHandler(BaseHandler):
    @endpoint(
        "job.notebook",
        "The job's notebook snapshot and parameters (the running job itself)",
        scope=DATA,
        params=(ID,),
    )
    async def get(self, actor: Actor, job_id: str) -> None:
        self.send_json(await self.run(self.wb.jobs.notebook, actor, int(job_id)))


class JobOutputHandler(BaseHandler):
    @endpoint("job.output", "The executed notebook of a job that ended", scope=DATA, params=(ID,))
    async def get(self, actor: Actor, job_id: str) -> None:
        self.send_json(await self.run(self.wb.jobs.output, actor, int(job_id)))

    @endpoint(
        "job.save_output",
        "Send back the executed notebook (the running job itself)",
        scope=DATA,
        body=OutputIn,
        params=(ID,),
    )
    async def put(self, actor: Actor, job_id: str, body: OutputIn) -> None:
        await self.run(self.wb.jobs.save_output, actor, int(job_id), body.notebook, body.error)
        self.send_json({"saved": body.notebook is not None})


class JobCancelHandler(BaseHandler):
    @endpoint("job.cancel", "Stop a job", scope=DATA, params=(ID,))
    async def post(self, actor: Actor, job_id: str) -> None:
        self.send_json(await self.run(self.wb.jobs.cancel, actor, int(job_id)))


class JobRerunHandler(BaseHandler):
    @endpoint(
        "job.rerun", "Run a job's notebook again, as a new job", scope=DATA, params=(ID,), ok=201
    )
    async def post(self, actor: Actor, job_id: str) -> None:
        self.send_json(await self.run(self.wb.jobs.rerun, actor, int(job_id)), 201)


ROUTES = [
    ("jobs", JobsHandler),
    ("jobs/{id}", JobHandler),
    ("jobs/{id}/logs", JobLogsHandler),
    ("jobs/{id}/metrics", JobMetricsHandler),
    ("jobs/{id}/notebook", JobNotebookHandler),
    ("jobs/{id}/output", JobOutputHandler),
    ("jobs/{id}/cancel", JobCancelHandler),
    ("jobs/{id}/rerun", JobRerunHandler),
]
