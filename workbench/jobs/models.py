"""ORM models of jobs and the metrics they report."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, UTCDateTime


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"  # the backend no longer knows it (e.g. its process vanished with the host)

    @property
    def ended(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class Job(Base):
    """One headless run of a notebook snapshot under one request."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    profile: Mapped[str] = mapped_column(String(255))
    gpus: Mapped[int] = mapped_column(Integer)
    cpus: Mapped[float] = mapped_column(Float)
    nodes: Mapped[int] = mapped_column(Integer, default=1)
    notebook: Mapped[str] = mapped_column(Text)  # the snapshot, as nbformat JSON
    notebook_name: Mapped[str] = mapped_column(String(255))
    notebook_sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[str] = mapped_column(Text)  # JSON object
    backend: Mapped[str] = mapped_column(String(64))
    backend_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    rerun_of: Mapped[int | None] = mapped_column(Integer, nullable=True)

    @property
    def job_state(self) -> JobState:
        return JobState(self.state)

    def params(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.parameters)
        return value

    def hours(self, now: datetime) -> float:
        if self.started_at is None:
            return 0.0
        end = self.ended_at or now
        return max(0.0, (end - self.started_at).total_seconds() / 3600)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        hours = self.hours(now)
        return {
            "id": self.id,
            "request_id": self.request_id,
            "user": self.user,
            "tenant": self.tenant,
            "name": self.name,
            "state": self.state,
            "profile": self.profile,
            "notebook_name": self.notebook_name,
            "notebook_sha256": self.notebook_sha256,
            "parameters": self.params(),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "elapsed_seconds": round(hours * 3600, 1),
            "gpu_hours": round(hours * self.gpus * self.nodes, 4),
            "cpu_hours": round(hours * self.cpus * self.nodes, 4),
            "end_reason": self.end_reason,
            "error": self.error,
            "rerun_of": self.rerun_of,
        }


class JobMetric(Base):
    """One value a job reported with `workbench.jobs.log_metric(name, value, step)`."""

    __tablename__ = "job_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    step: Mapped[int] = mapped_column(Integer)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None
