"""Operations on jobs: submit, follow, cancel, re-run; and the reconciler that keeps their
states true to the backend and stops them when their request ends.

A job runs under its owner's approved request, with a token of its own (stored hashed) that
lets it fetch its notebook, report metrics, send its output and ask for data grants under that
request only. The token dies with the job. Submitting and ending are audit events committed
with the job's row; the backend is asked to start the job only after that commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.actor import Actor
from workbench.audit import AuditEvent, AuditLog
from workbench.compute.service import NO_USE, usage, usage_of
from workbench.config import CatalogData, Profile, memory_bytes
from workbench.db import utcnow
from workbench.errors import Conflict, Forbidden, Invalid, NotFound
from workbench.jobs import notebooks
from workbench.jobs.backend import JobBackend, JobSpec
from workbench.jobs.models import Job, JobMetric, JobState
from workbench.requests.models import AccessRequest
from workbench.scopes import ACCESS_SERVICE, ADMIN, DATA

__all__ = ["Jobs", "NewJob"]

log = logging.getLogger(__name__)
METRICS_PAGE = 5000  # most metrics one `GET jobs/{id}/metrics` returns
TOKEN_PREFIX = "wbj_"
MAX_METRICS = 1000  # most metrics one report may carry


@dataclass(frozen=True)
class NewJob:
    request_id: int
    name: str
    notebook: dict[str, Any]
    notebook_name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    profile: str | None = None
    nodes: int = 1


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Jobs:
    """Submit, follow and end jobs; see the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        backend: JobBackend,
        api_url: str,
        output_dir: Path,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.catalog = catalog
        self.backend = backend
        self.api_url = api_url
        self.output_dir = output_dir
        # called with a job's id once it ended (the broker revokes the job's tokens)
        self.on_end: list[Callable[[int], object]] = []
        # jobs a cancel is stopping: the reconciler must not take their vanished process
        # for a lost job
        self._cancelling: set[int] = set()

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, actor: Actor, new: NewJob, rerun_of: int | None = None) -> dict[str, Any]:
        if actor.job_id is not None:
            raise Forbidden("a job cannot submit jobs; submit from a notebook server or the CLI")
        now = utcnow()
        with self.sessions() as s:
            req = s.get(AccessRequest, new.request_id)
            if req is None or req.requester != actor.name:
                raise NotFound(
                    f"you have no access request {new.request_id}",
                    request_id=new.request_id,
                    tenant=req.tenant if req else None,
                    action="job.submit",
                )
            ctx: dict[str, Any] = {
                "tenant": req.tenant,
                "request_id": req.id,
                "action": "job.submit",
            }
            if not req.is_active(now):
                why = "has expired" if req.state == "approved" else f"is {req.state}"
                raise Forbidden(
                    f"request {req.id} {why}: jobs run only under an approved, unexpired request",
                    **ctx,
                )
            profile = self._profile(req, new.profile, ctx)
            if new.nodes != 1 and new.nodes > self.backend.max_nodes:
                raise Invalid(
                    f"{new.nodes} nodes asked; the {self.backend.name} backend runs at most "
                    f"{self.backend.max_nodes}",
                    **ctx,
                )
            budget = req.gpu_hours if profile.gpu_count else 0.0
            try:
                snapshot = notebooks.snapshot(new.notebook)
                notebooks.check_parameters(snapshot, new.parameters)
            except notebooks.NotebookError as e:
                raise Invalid(str(e), **ctx) from e
            deadline = int((req.expires_at - now).total_seconds()) if req.expires_at else 0
            purpose, tenant, datasets = req.purpose, req.tenant, list(req.datasets)
        # servers' and jobs' hours (asked outside the first session: a second session inside
        # it would wait on SQLite's write lock)
        if budget and usage(self.sessions, new.request_id)["gpu_hours_used"] >= budget:
            raise Forbidden(
                f"request {new.request_id} has used its {budget:g} GPU-hours; ask for more",
                **ctx,
            )
        text = json.dumps(snapshot, sort_keys=True)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        job = Job(
            request_id=new.request_id,
            user=actor.name,
            tenant=tenant,
            name=new.name,
            state=JobState.QUEUED,
            profile=profile.name,
            gpus=profile.gpu_count,
            cpus=profile.cpu,
            nodes=new.nodes,
            notebook=text,
            notebook_name=new.notebook_name,
            notebook_sha256=hashlib.sha256(text.encode()).hexdigest(),
            parameters=json.dumps(new.parameters),
            backend=self.backend.name,
            token_hash=token_hash(token),
            created_at=now,
            rerun_of=rerun_of,
        )
        with self.sessions.begin() as s:
            s.add(job)
            s.flush()
            self.audit.append(
                s.connection(),
                [
                    AuditEvent(
                        action="job.submit",
                        actor=actor.name,
                        role=actor.role,
                        tenant=tenant,
                        purpose=purpose,
                        request_id=new.request_id,
                        resource=f"job:{job.id}",
                        client=actor.client,
                        detail={
                            "name": new.name,
                            "notebook": new.notebook_name,
                            "notebook_sha256": job.notebook_sha256,
                            "parameters": new.parameters,
                            "profile": profile.name,
                            "nodes": new.nodes,
                            "datasets": datasets,
                        },
                    )
                ],
            )
            job_id = job.id
        spec = JobSpec(
            job_id=job_id,
            name=new.name,
            user=actor.name,
            tenant=tenant,
            request_id=new.request_id,
            profile=profile,
            env={
                "WORKBENCH_API_URL": self.api_url,
                "WORKBENCH_TOKEN": token,
                "WORKBENCH_JOB_ID": str(job_id),
                "WORKBENCH_REQUEST_ID": str(new.request_id),
                "WORKBENCH_RESOURCE": f"job:{job_id}",
            },
            deadline_seconds=deadline,
            nodes=new.nodes,
        )
        try:
            ref = self.backend.start(spec)
        except Exception as e:
            log.exception("job %s could not start", job_id)
            self._finish(job_id, JobState.FAILED, "could not start", error=f"{e}")
        else:
            with self.sessions.begin() as s:
                row = s.get(Job, job_id)
                assert row is not None
                row.backend_ref = ref
                row.started_at = row.started_at or utcnow()
                if row.state == JobState.QUEUED:  # a quick job may have ended already
                    row.state = JobState.RUNNING
        return self._dict(job_id)

    def _profile(self, req: AccessRequest, name: str | None, ctx: dict[str, Any]) -> Profile:
        """The request's profile, or a smaller one of the catalog when `name` asks for it."""
        approved = Profile(
            **{k: v for k, v in req.profile_spec.items() if k != "name"}, name=req.profile
        )
        if not name or name == req.profile:
            return approved
        asked = self.catalog.profiles.get(name)
        if asked is None:
            raise Invalid(
                f"no compute profile {name!r}; known: {sorted(self.catalog.profiles)}", **ctx
            )
        within = (
            asked.gpu_count <= approved.gpu_count
            and asked.cpu <= approved.cpu
            and (not asked.gpu_count or asked.gpu_kind == approved.gpu_kind)
            and memory_bytes(asked.memory) <= memory_bytes(approved.memory)
        )
        if not within:
            raise Forbidden(
                f"profile {name!r} is beyond request {req.id}'s approved profile {req.profile!r}",
                **ctx,
            )
        return asked

    def rerun(self, actor: Actor, job_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            job = self._own(s, actor, job_id)
            new = NewJob(
                request_id=job.request_id,
                name=job.name,
                notebook=json.loads(job.notebook),
                notebook_name=job.notebook_name,
                parameters=job.params(),
                profile=job.profile,
                nodes=job.nodes,
            )
        return self.submit(actor, new, rerun_of=job_id)

    # -- following -----------------------------------------------------------------------------

    def _visible(self, actor: Actor, job: Job) -> bool:
        if actor.job_id is not None:
            return actor.job_id == job.id
        return (
            job.user == actor.name
            or actor.has(ADMIN)
            or self.catalog.governs(actor.name, job.tenant)
        )

    def _own(self, s: Session, actor: Actor, job_id: int) -> Job:
        job = s.get(Job, job_id)
        if job is None or not self._visible(actor, job):
            raise NotFound(f"you have no job {job_id}", action="job.read")
        return job

    def _dict(self, job_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            return job.as_dict(utcnow())

    def get(self, actor: Actor, job_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            return self._own(s, actor, job_id).as_dict(utcnow())

    def search(
        self, actor: Actor, request_id: int | None = None, state: str | None = None
    ) -> list[dict[str, Any]]:
        """My jobs (a manager also sees the jobs of the tenants they govern), newest first."""
        stmt = select(Job).order_by(Job.id.desc()).limit(500)
        governed = self.catalog.governed_by(actor.name)
        if actor.job_id is not None:  # a job sees itself only
            stmt = stmt.where(Job.id == actor.job_id)
        elif not actor.has(ADMIN):
            stmt = stmt.where((Job.user == actor.name) | Job.tenant.in_(governed))
        if request_id is not None:
            stmt = stmt.where(Job.request_id == request_id)
        if state is not None:
            stmt = stmt.where(Job.state == state)
        now = utcnow()
        with self.sessions() as s:
            return [j.as_dict(now) for j in s.scalars(stmt)]

    def logs(self, actor: Actor, job_id: int, tail: int = 65536) -> str:
        with self.sessions() as s:
            ref = self._own(s, actor, job_id).backend_ref
        return self.backend.logs(ref, tail) if ref else ""

    def metrics(self, actor: Actor, job_id: int, after: int = 0) -> list[dict[str, Any]]:
        with self.sessions() as s:
            self._own(s, actor, job_id)
            rows = s.scalars(
                select(JobMetric)
                .where(JobMetric.job_id == job_id, JobMetric.id > after)
                .order_by(JobMetric.id)
                .limit(METRICS_PAGE)
            )
            return [
                {
                    "id": m.id,
                    "name": m.name,
                    "step": m.step,
                    "value": m.value,
                    "at": m.at.isoformat().replace("+00:00", "Z"),
                }
                for m in rows
            ]

    def output(self, actor: Actor, job_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            job = self._own(s, actor, job_id)
            state = job.job_state
        path = self._output_path(job_id)
        if not state.ended or not path.exists():
            raise NotFound(f"job {job_id} has no executed notebook yet (it is {state})")
        nb: dict[str, Any] = json.loads(path.read_text())
        return nb

    def _output_path(self, job_id: int) -> Path:
        return self.output_dir / str(job_id) / "output.ipynb"

    # -- what a job itself calls, with its own token --------------------------------------------

    def identify(self, token: str, client: str | None = None) -> Actor | None:
        """The actor of a running job's token; None for any other string."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.sessions() as s:
            job = s.scalars(select(Job).where(Job.token_hash == token_hash(token))).first()
            if job is None or job.job_state.ended:
                return None
            return Actor(
                name=job.user,
                scopes=frozenset({DATA, ACCESS_SERVICE}),
                client=client,
                kind="job",
                job_id=job.id,
                request_id=job.request_id,
            )

    def _running_own(self, actor: Actor, job_id: int) -> None:
        if actor.job_id != job_id:
            raise Forbidden(f"only job {job_id} itself may do this, with its own token")

    def notebook(self, actor: Actor, job_id: int) -> dict[str, Any]:
        self._running_own(actor, job_id)
        with self.sessions() as s:
            job = self._own(s, actor, job_id)
            return {
                "notebook": json.loads(job.notebook),
                "notebook_name": job.notebook_name,
                "parameters": job.params(),
            }

    def record_metrics(self, actor: Actor, job_id: int, items: list[dict[str, Any]]) -> int:
        self._running_own(actor, job_id)
        now = utcnow()
        with self.sessions.begin() as s:
            s.add_all(
                JobMetric(job_id=job_id, name=m["name"], step=m["step"], value=m["value"], at=now)
                for m in items
            )
        return len(items)

    def save_output(
        self, actor: Actor, job_id: int, notebook: dict[str, Any] | None, error: str | None
    ) -> None:
        self._running_own(actor, job_id)
        if notebook is not None:
            path = self._output_path(job_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(notebook))
            tmp.replace(path)
        # the runner sends its output last: the job has ended now, whatever the backend says
        # at its next poll (so a finished job shows at once, not a poll later)
        if error:
            self._finish(job_id, JobState.FAILED, "a cell failed", error=error)
        else:
            self._finish(job_id, JobState.SUCCEEDED, "the notebook ran through")

    # -- ending --------------------------------------------------------------------------------

    def cancel(self, actor: Actor, job_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            job = self._own(s, actor, job_id)
            if job.user != actor.name and not actor.has(ADMIN):
                raise Forbidden(f"job {job_id} is {job.user}'s; only they may cancel it")
            if job.job_state.ended:
                raise Conflict(f"job {job_id} has already ended ({job.state})")
            ref = job.backend_ref
        self._cancelling.add(job_id)
        try:
            if ref:
                self.backend.stop(ref)
            self._finish(job_id, JobState.CANCELLED, f"cancelled by {actor.name}")
        finally:
            self._cancelling.discard(job_id)
        return self._dict(job_id)

    def reconcile(self) -> list[tuple[int, str, str]]:
        """Bring running jobs' states up to date with the backend; stop those whose request
        ended. Returns (job id, new state, reason) of each job that ended. The reaper calls it
        every few seconds; a restarted service finds its jobs again this way."""
        now = utcnow()
        with self.sessions() as s:
            rows = s.execute(
                select(Job.id, Job.backend_ref, Job.gpus, AccessRequest)
                .join(AccessRequest, AccessRequest.id == Job.request_id)
                .where(Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
            ).all()
            budgets = {req.id: req.gpu_hours for _, _, gpus, req in rows if gpus and req.gpu_hours}
            todo = [
                (jid, ref, req.is_active(now), _why(req, now), req.id) for jid, ref, _, req in rows
            ]
        used = usage_of(self.sessions, list(budgets)) if budgets else {}
        spent = {
            rid
            for rid, budget in budgets.items()
            if used.get(rid, NO_USE)["gpu_hours_used"] >= budget
        }
        ended = []
        for job_id, ref, active, why, rid in todo:
            if active and rid in spent:
                active, why = False, f"request {rid} has used its {budgets[rid]:g} GPU-hours"
            try:
                if not active:
                    if ref:
                        self.backend.stop(ref)
                    state, reason = JobState.CANCELLED, why
                elif not ref:
                    continue
                else:
                    status = self.backend.status(ref)
                    # checked after the status: a cancel marks its job before it stops it
                    if status.state == "running" or job_id in self._cancelling:
                        continue
                    state, reason = JobState(status.state), status.message or status.state
            except Exception:
                log.exception("could not reconcile job %s", job_id)
                continue
            self._finish(job_id, state, reason)
            ended.append((job_id, str(state), reason))
        return ended

    def _finish(self, job_id: int, state: JobState, reason: str, error: str | None = None) -> None:
        with self.sessions.begin() as s:
            job = s.get(Job, job_id)
            if job is None or job.job_state.ended:
                return
            job.state = state
            job.ended_at = utcnow()
            job.end_reason = reason
            if error:
                job.error = error[:4000]
            job.token_hash = None  # the job's token dies with it
            self.audit.append(
                s.connection(),
                [
                    AuditEvent(
                        action="job.end",
                        actor="workbench",
                        role="system",
                        tenant=job.tenant,
                        request_id=job.request_id,
                        resource=f"job:{job.id}",
                        outcome="ok" if state == JobState.SUCCEEDED else "error",
                        reason=reason,
                        detail={"state": str(state), "user": job.user, "error": job.error},
                    )
                ],
            )
        for hook in self.on_end:
            try:
                hook(job_id)
            except Exception:
                log.exception("ending job %s: hook failed", job_id)


def _why(req: AccessRequest, now: datetime) -> str:
    if req.state == "approved" and not req.is_active(now):
        return f"request {req.id} expired"
    return f"request {req.id} is {req.state}"
