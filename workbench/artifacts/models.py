"""ORM models of the artifact registry: artifacts, where they came from (sources: the tenants
and datasets read; parents: the artifacts they were built on), evaluation reports and reviews."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, UTCDateTime


class Stage(enum.StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    QUARANTINED = "quarantined"  # erasure of a tenant in its lineage; never leaves it


class Scope(enum.StrEnum):
    TENANT = "tenant"  # promoted for its own tenant only
    SHARED = "shared"  # a base model many tenants use (every lineage tenant allowed it)


class ReportState(enum.StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"


class Artifact(Base):
    """One stored object (a model) and the request, job and code it came from."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)  # stored under its prefix
    scope: Mapped[str] = mapped_column(String(16), default=Scope.TENANT)
    name: Mapped[str] = mapped_column(String(128), index=True)
    model_type: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    notebook_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    parameters: Mapped[str] = mapped_column(Text, default="{}")  # JSON object
    metrics: Mapped[str] = mapped_column(Text, default="{}")  # JSON object, as reported
    created_by: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stage_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    quarantine_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model_type": self.model_type,
            "tenant": self.tenant,
            "scope": self.scope,
            "stage": self.stage,
            "sha256": self.sha256,
            "size": self.size,
            "location": f"s3://{self.bucket}/{self.key}",
            "request_id": self.request_id,
            "job_id": self.job_id,
            "notebook_sha256": self.notebook_sha256,
            "image": self.image,
            "parameters": json.loads(self.parameters),
            "metrics": json.loads(self.metrics),
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "stage_changed_at": iso(self.stage_changed_at),
            "quarantine_reason": self.quarantine_reason,
        }


class ArtifactSource(Base):
    """A tenant (and dataset, when one was read) an artifact was made from directly. Every
    artifact has at least its request's tenant; inherited sources come through parents."""

    __tablename__ = "artifact_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    dataset: Mapped[str | None] = mapped_column(String(255), nullable=True)


class ArtifactParent(Base):
    """`artifact_id` was built on `parent_id` (fine-tuned from it, distilled from it, …)."""

    __tablename__ = "artifact_parents"

    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), primary_key=True, index=True)


class ArtifactReport(Base):
    """One evaluation of an artifact on the golden datasets of its tenant: the jobs it ran
    (`runs`: [{job_id, dataset, slice}]) and, once they ended, one row per metric."""

    __tablename__ = "artifact_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    target_stage: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default=Scope.TENANT)  # asked for
    requested_by: Mapped[str] = mapped_column(String(255))
    runs: Mapped[str] = mapped_column(Text)  # JSON list
    results: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    baseline_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # production's
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "artifact_id": self.artifact_id,
            "state": self.state,
            "target_stage": self.target_stage,
            "scope": self.scope,
            "requested_by": self.requested_by,
            "runs": json.loads(self.runs),
            "results": json.loads(self.results),
            "baseline_id": self.baseline_id,
            "message": self.message,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
        }


class ArtifactReview(Base):
    """A manager's decision on promoting an artifact to production, against one report."""

    __tablename__ = "artifact_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("artifact_reports.id"))
    reviewer: Mapped[str] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(16))  # approve | reject
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "report_id": self.report_id,
            "reviewer": self.reviewer,
            "decision": self.decision,
            "comment": self.comment,
            "at": iso(self.at),
        }


class ArtifactUse(Base):
    """An artifact read by a server or job under a request: whatever that server or job saves
    next has it as a parent, whether or not the notebook says so."""

    __tablename__ = "artifact_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    request_id: Mapped[int] = mapped_column(Integer, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


def iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None
