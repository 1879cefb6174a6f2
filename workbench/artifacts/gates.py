"""The evaluation gate in front of staging.

Promotion to staging runs the configured evaluation notebook as jobs (`Jobs.submit`, under the
artifact's request, as the person who asked) on each golden dataset of the artifact's tenant
and model type, whole and on every configured slice. When the last job ends, each gated metric
is compared with its threshold and with the same metric of the artifact now in production (no
regression beyond the tolerance); the report is stored, and a passing one moves the artifact to
staging. A report's rows: {dataset, slice, metric, value, bound, baseline, gated, passed, why}.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from workbench.actor import Actor
from workbench.artifacts.models import Artifact, ArtifactReport, ReportState, Stage
from workbench.db import utcnow
from workbench.errors import Conflict, WorkbenchError
from workbench.jobs.models import Job, JobMetric, JobState
from workbench.jobs.service import NewJob

if TYPE_CHECKING:
    from workbench.artifacts.service import Artifacts

log = logging.getLogger(__name__)


def last_metrics(sessions: sessionmaker[Session], job_id: int) -> dict[str, float]:
    """The last value a job reported of each metric."""
    with sessions() as s:
        rows = s.execute(
            select(JobMetric.name, JobMetric.value)
            .where(JobMetric.job_id == job_id)
            .order_by(JobMetric.id)
        )
        return {name: value for name, value in rows}


@dataclass(frozen=True)
class _Ended:
    id: int
    state: str
    error: str | None
    end_reason: str | None


class Gates:
    def __init__(self, artifacts: Artifacts) -> None:
        self.a = artifacts
        self._lock = threading.Lock()

    @property
    def settings(self) -> Any:
        return self.a.settings

    def latest(self, s: Session, artifact_id: int) -> ArtifactReport | None:
        return s.scalars(
            select(ArtifactReport)
            .where(ArtifactReport.artifact_id == artifact_id)
            .order_by(ArtifactReport.id.desc())
        ).first()

    def plan(self, art: Artifact, datasets: list[str]) -> list[dict[str, Any]]:
        """One run per golden dataset and slice ("" is the whole dataset)."""
        golden = self.settings.golden.get(art.tenant, {}).get(art.model_type, [])
        ctx: dict[str, Any] = {
            "tenant": art.tenant,
            "request_id": art.request_id,
            "action": "artifact.evaluate",
        }
        if not golden:
            raise Conflict(
                f"no golden datasets for tenant {art.tenant} and model type {art.model_type!r} "
                "(ArtifactSettings.golden): it cannot be evaluated",
                **ctx,
            )
        missing = [d for d in golden if d not in datasets]
        if missing:
            raise Conflict(
                f"request {art.request_id} does not cover golden dataset(s) "
                f"{', '.join(missing)} of {art.tenant}; the evaluation reads them under it",
                **ctx,
            )
        slices = ["", *self.settings.slices.get(art.model_type, [])]
        return [{"dataset": d, "slice": sl, "job_id": None} for d in golden for sl in slices]

    def notebook(self, ctx: dict[str, Any]) -> tuple[dict[str, Any], str]:
        path = Path(self.settings.evaluation_notebook or "")
        if not self.settings.evaluation_notebook or not path.is_file():
            raise Conflict(
                "no evaluation notebook is configured (ArtifactSettings.evaluation_notebook "
                f"{str(path)!r} is not a file)",
                **ctx,
            )
        nb: dict[str, Any] = json.loads(path.read_text())
        return nb, path.name

    def start(self, actor: Actor, artifact_id: int, scope: str) -> dict[str, Any]:
        """Record the report and its audit event, then submit its jobs."""
        with self.a.sessions() as s:
            art = s.get(Artifact, artifact_id)
            assert art is not None
            from workbench.requests.models import AccessRequest

            req = s.get(AccessRequest, art.request_id)
            assert req is not None
            ctx: dict[str, Any] = {
                "tenant": art.tenant,
                "request_id": art.request_id,
                "action": "artifact.evaluate",
            }
            running = s.scalars(
                select(ArtifactReport.id).where(
                    ArtifactReport.artifact_id == art.id,
                    ArtifactReport.state == ReportState.RUNNING,
                )
            ).first()
            if running is not None:
                raise Conflict(f"evaluation {running} of artifact {art.id} is still running", **ctx)
            runs = self.plan(art, list(req.datasets))
            name = art.name
        nb, nb_name = self.notebook(ctx)
        with self.a.sessions.begin() as s:
            art = s.get(Artifact, artifact_id)
            assert art is not None
            report = ArtifactReport(
                artifact_id=art.id,
                state=ReportState.RUNNING,
                target_stage=Stage.STAGING,
                requested_by=actor.name,
                runs=json.dumps(runs),
                results="[]",
                scope=scope,
                created_at=utcnow(),
            )
            s.add(report)
            s.flush()
            report_id = report.id
            event = self.a._event(actor, art, "artifact.evaluate", report_id=report.id)
            event.detail.update(runs=runs, notebook=nb_name, scope=scope)
            self.a.audit.append(s.connection(), [event])
        for run in runs:
            where = run["dataset"] + (f" [{run['slice']}]" if run["slice"] else "")
            try:
                job = self.a.jobs.submit(
                    actor,
                    NewJob(
                        request_id=ctx["request_id"],
                        name=f"evaluate {name} #{artifact_id} on {where}",
                        notebook=nb,
                        notebook_name=nb_name,
                        parameters={
                            "artifact_id": artifact_id,
                            "dataset": run["dataset"],
                            "slice": run["slice"],
                        },
                    ),
                )
            except WorkbenchError as e:
                self._fail(report_id, f"the evaluation job on {where} could not start: {e}")
                raise
            run["job_id"] = job["id"]
            with self.a.sessions.begin() as s:
                s.execute(
                    update(ArtifactReport)
                    .where(ArtifactReport.id == report_id)
                    .values(runs=json.dumps(runs))
                )
        self.check(report_id)  # a job may have ended before its id was stored
        with self.a.sessions() as s:
            row = s.get(ArtifactReport, report_id)
            assert row is not None
            return row.as_dict()

    def _fail(self, report_id: int, message: str) -> None:
        with self.a.sessions.begin() as s:
            s.execute(
                update(ArtifactReport)
                .where(ArtifactReport.id == report_id, ArtifactReport.state == ReportState.RUNNING)
                .values(state=ReportState.FAILED, message=message, finished_at=utcnow())
            )

    # -- when jobs end ----------------------------------------------------------------------

    def job_ended(self, job_id: int) -> None:
        """Jobs' on_end hook: finish every running report that waited on this job."""
        with self.a.sessions() as s:
            running = s.execute(
                select(ArtifactReport.id, ArtifactReport.runs).where(
                    ArtifactReport.state == ReportState.RUNNING
                )
            ).all()
        for report_id, runs in running:
            if any(r.get("job_id") == job_id for r in json.loads(runs)):
                self.check(report_id)

    def check(self, report_id: int) -> None:
        """Finish the report when all its jobs ended; move the artifact when it passed."""
        with self._lock:
            self._check(report_id)

    def _check(self, report_id: int) -> None:
        # one session at a time: on SQLite every transaction holds the write lock
        with self.a.sessions() as s:
            report = s.get(ArtifactReport, report_id)
            if report is None or report.state != ReportState.RUNNING:
                return
            runs = json.loads(report.runs)
            if any(r["job_id"] is None for r in runs):
                return
            ids = [r["job_id"] for r in runs]
            jobs = {
                j.id: _Ended(j.id, j.state, j.error, j.end_reason)
                for j in s.scalars(select(Job).where(Job.id.in_(ids)))
            }
            if any(not JobState(j.state).ended for j in jobs.values()):
                return
            art = s.get(Artifact, report.artifact_id)
            assert art is not None
            baseline_id, baseline = self._baseline(s, art)
            model_type, stage, scope = art.model_type, art.stage, report.scope
            artifact_id = art.id
        metrics = {job_id: last_metrics(self.a.sessions, job_id) for job_id in jobs}
        results = self.compare(model_type, runs, jobs, metrics, baseline)
        gated = [r for r in results if r["gated"]]
        passed = bool(gated) and all(r["passed"] for r in gated)
        failing = sorted({r["why"] for r in results if r["passed"] is False})
        message = "all gated metrics passed" if passed else "; ".join(failing)
        if not gated and not failing:
            message = f"no thresholds are configured for model type {model_type!r}"
        with self.a.sessions.begin() as s:
            done = s.execute(
                update(ArtifactReport)
                .where(ArtifactReport.id == report_id, ArtifactReport.state == ReportState.RUNNING)
                .values(
                    state=ReportState.PASSED if passed else ReportState.FAILED,
                    results=json.dumps(results),
                    baseline_id=baseline_id,
                    message=message[:4000],
                    finished_at=utcnow(),
                )
            )
            if not getattr(done, "rowcount", 1):
                return
            art = s.get(Artifact, artifact_id)
            assert art is not None
            event = self.a._event(None, art, "artifact.report", report_id=report_id)
            event.outcome = "ok" if passed else "refused"
            event.reason = None if passed else message[:1000]
            event.detail.update(passed=passed, baseline_id=baseline_id, results=results)
            self.a.audit.append(s.connection(), [event])
        if passed and stage in (Stage.CANDIDATE, Stage.ARCHIVED):
            self.a.move(None, artifact_id, Stage.STAGING, scope=scope)

    def _baseline(
        self, s: Session, art: Artifact
    ) -> tuple[int | None, dict[tuple[str, str, str], float]]:
        """The artifact now in production for the same tenant and name, and its last passing
        report's values by (dataset, slice, metric)."""
        prod = s.scalars(
            select(Artifact).where(
                Artifact.tenant == art.tenant,
                Artifact.name == art.name,
                Artifact.stage == Stage.PRODUCTION,
                Artifact.id != art.id,
            )
        ).first()
        if prod is None:
            return None, {}
        report = s.scalars(
            select(ArtifactReport)
            .where(
                ArtifactReport.artifact_id == prod.id,
                ArtifactReport.state == ReportState.PASSED,
            )
            .order_by(ArtifactReport.id.desc())
        ).first()
        if report is None:
            return prod.id, {}
        values = {
            (r["dataset"], r["slice"], r["metric"]): r["value"]
            for r in json.loads(report.results)
            if r.get("value") is not None
        }
        return prod.id, values

    def compare(
        self,
        model_type: str,
        runs: list[dict[str, Any]],
        jobs: dict[int, _Ended],
        metrics: dict[int, dict[str, float]],
        baseline: dict[tuple[str, str, str], float],
    ) -> list[dict[str, Any]]:
        bounds: dict[str, dict[str, float]] = self.settings.thresholds.get(model_type, {})
        tolerance = float(self.settings.tolerance)
        rows: list[dict[str, Any]] = []
        for run in runs:
            job = jobs[run["job_id"]]
            where = {"dataset": run["dataset"], "slice": run["slice"], "job_id": job.id}
            if job.state != JobState.SUCCEEDED:
                why = f"evaluation job {job.id} {job.state}: {job.error or job.end_reason or ''}"
                rows.append(
                    {
                        **where,
                        "metric": None,
                        "value": None,
                        "bound": None,
                        "baseline": None,
                        "gated": True,
                        "passed": False,
                        "why": why.strip(": "),
                    }
                )
                continue
            values = metrics[job.id]
            for metric in sorted(set(values) | set(bounds)):
                value = values.get(metric)
                bound = bounds.get(metric)
                base = baseline.get((run["dataset"], run["slice"], metric))
                row = {
                    **where,
                    "metric": metric,
                    "value": value,
                    "baseline": base,
                    "bound": _bound_text(bound),
                    "gated": bound is not None,
                    "passed": None,
                    "why": "",
                }
                if bound is not None:
                    row["passed"], row["why"] = _judge(metric, value, bound, base, tolerance, run)
                rows.append(row)
        return rows


def _bound_text(bound: dict[str, float] | None) -> str | None:
    if not bound:
        return None
    return " ".join(f"{'≥' if k == 'min' else '≤'} {v:g}" for k, v in sorted(bound.items()))


def _judge(
    metric: str,
    value: float | None,
    bound: dict[str, float],
    base: float | None,
    tolerance: float,
    run: dict[str, Any],
) -> tuple[bool, str]:
    where = run["dataset"] + (f" [{run['slice']}]" if run["slice"] else "")
    if value is None:
        return False, f"{metric} on {where} was not reported"
    if "min" in bound and value < bound["min"]:
        return False, f"{metric} on {where} is {value:.4g}, below {bound['min']:g}"
    if "max" in bound and value > bound["max"]:
        return False, f"{metric} on {where} is {value:.4g}, above {bound['max']:g}"
    if base is not None:
        worse = (base - value) if "min" in bound else (value - base)
        if worse > tolerance:
            return False, (
                f"{metric} on {where} is {value:.4g}, worse than production's {base:.4g} by "
                f"more than {tolerance:g}"
            )
    return True, ""
