"""The artifact registry: upload locations, registration with verified checksums and lineage
the service derives itself, listing, reads, reviews, promotion and, for erasure, quarantine.

Lineage (DESIGN.md, invariant 6) is never taken from the caller: a job's artifact records the
job's request, tenant, notebook hash, parameters, image and the datasets its own grants read; a
server's, its request and the datasets of grants under it. The only lineage a caller names is
its parents, which must be artifacts it may see; artifacts a server or job *read* become parents
of what it saves whether it names them or not. Each step is an audit event committed with its
rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.access.models import Grant
from workbench.actor import Actor
from workbench.artifacts import gates, lineage
from workbench.artifacts.models import (
    Artifact,
    ArtifactParent,
    ArtifactReport,
    ArtifactReview,
    ArtifactSource,
    ArtifactUse,
    Scope,
    Stage,
)
from workbench.artifacts.promotion import Promotion
from workbench.artifacts.store import ArtifactObjects, meta_key, object_key
from workbench.audit import AuditEvent, AuditLog
from workbench.config import ArtifactSettings, CatalogData
from workbench.db import utcnow
from workbench.errors import Conflict, Forbidden, Invalid, NotFound
from workbench.jobs.models import Job
from workbench.jobs.service import Jobs
from workbench.requests.models import AccessRequest
from workbench.scopes import ADMIN, DATA

__all__ = ["Artifacts", "NewArtifact"]

log = logging.getLogger(__name__)
# one path segment, as for tenants and datasets: no "/", no "..", no control characters
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_METRICS = 100
REGISTER = "artifact.register"
SPOOL_BYTES = 64 * 1024 * 1024


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise Invalid(
            f"{kind} {name[:80]!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/', no '..')",
            action="artifact.register",
        )
    return name


@dataclass(frozen=True)
class NewArtifact:
    """What a caller says of an artifact it uploaded; everything else is derived."""

    name: str
    sha256: str
    size: int
    model_type: str = "model"
    request_id: int | None = None  # a server's request (a job's is its own)
    parents: tuple[int, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Origin:
    """Where a caller's artifact comes from, as the service sees it."""

    request_id: int
    tenant: str
    purpose: str
    requester: str
    image: str | None
    job_id: int | None = None
    notebook_sha256: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    datasets: set[tuple[str, str]] = field(default_factory=set)
    used: set[int] = field(default_factory=set)  # artifacts read under it


class Artifacts(Promotion):
    """The registry; see the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        settings: ArtifactSettings,
        objects: ArtifactObjects,
        jobs: Jobs,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.catalog = catalog
        self.settings = settings
        self.objects = objects
        self.jobs = jobs
        self.gates = gates.Gates(self)

    # -- who may see what ----------------------------------------------------------------

    def visible(self, actor: Actor, art: Artifact) -> bool:
        return (
            actor.has(ADMIN)
            or art.created_by == actor.name
            or self.catalog.governs(actor.name, art.tenant)
            or (art.scope == Scope.SHARED and art.stage == Stage.PRODUCTION)
        )

    def _load(self, s: Session, actor: Actor, artifact_id: int, action: str) -> Artifact:
        art = s.get(Artifact, artifact_id)
        if art is None or not self.visible(actor, art):
            raise NotFound(f"you have no artifact {artifact_id}", action=action)
        return art

    def _event(self, actor: Actor | None, art: Artifact, action: str, **detail: Any) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=actor.name if actor else "workbench",
            role=actor.role if actor else "system",
            tenant=art.tenant,
            request_id=art.request_id,
            resource=f"artifact:{art.id}",
            client=actor.client if actor else None,
            detail={"name": art.name, "sha256": art.sha256, "stage": art.stage, **detail},
        )

    # -- where a caller's artifact comes from --------------------------------------------

    def origin(self, actor: Actor, request_id: int | None, action: str) -> Origin:
        """The caller's request (a job's own), which must be its own, approved and unexpired,
        and what was read under it."""
        if not actor.has(DATA):
            raise Forbidden("saving artifacts needs the researcher role", action=action)
        if actor.job_id is not None:
            if request_id is not None and request_id != actor.request_id:
                raise Forbidden(
                    f"job {actor.job_id} runs under request {actor.request_id}, not {request_id}",
                    action=action,
                    request_id=request_id,
                )
            request_id = actor.request_id
        if request_id is None:
            raise Invalid("name the request the artifact is made under (request_id)", action=action)
        now = utcnow()
        with self.sessions() as s:
            req = s.get(AccessRequest, request_id)
            if req is None or req.requester != actor.name:
                raise NotFound(f"you have no access request {request_id}", action=action)
            ctx: dict[str, Any] = {"tenant": req.tenant, "request_id": req.id, "action": action}
            if not req.is_active(now):
                why = "has expired" if req.state == "approved" else f"is {req.state}"
                raise Conflict(
                    f"request {req.id} {why}: artifacts are saved under an "
                    "approved, unexpired request",
                    **ctx,
                )
            origin = Origin(
                request_id=req.id,
                tenant=req.tenant,
                purpose=req.purpose,
                requester=req.requester,
                image=str(req.profile_spec.get("image") or "") or None,
            )
            grants = select(Grant.tenant, Grant.dataset).where(Grant.request_id == req.id)
            uses = select(ArtifactUse.artifact_id).where(ArtifactUse.request_id == req.id)
            if actor.job_id is not None:
                job = s.get(Job, actor.job_id)
                assert job is not None  # its token was valid a moment ago
                origin.job_id = job.id
                origin.notebook_sha256 = job.notebook_sha256
                origin.parameters = job.params()
                grants = grants.where(Grant.job_id == job.id)
                uses = uses.where(ArtifactUse.job_id == job.id)
            else:
                grants = grants.where(Grant.actor == actor.name)
            origin.datasets = {(t, d) for t, d in s.execute(grants)}
            origin.used = set(s.scalars(uses))
        return origin

    # -- uploading and registering --------------------------------------------------------

    def upload(self, actor: Actor, request_id: int | None) -> dict[str, Any]:
        """Where and with which credentials to put an artifact of the caller's request: the
        tenant's artifacts prefix, handed out only once the hand-out is on record."""
        origin = self.origin(actor, request_id, "artifact.upload")
        location = self.objects.location(origin.tenant)
        resource = f"job:{origin.job_id}" if origin.job_id else None
        self.audit.record(
            AuditEvent(
                action="artifact.upload",
                actor=actor.name,
                role=actor.role,
                tenant=origin.tenant,
                purpose=origin.purpose,
                request_id=origin.request_id,
                resource=resource,
                client=actor.client,
                detail={"bucket": location["bucket"], "prefix": location["prefix"]},
            )
        )
        keys = self.objects.keys(origin.tenant, origin.request_id, origin.job_id)
        return {
            "tenant": origin.tenant,
            "request_id": origin.request_id,
            "credentials": {
                "access_key_id": keys["access_key_id"],
                "secret_access_key": keys["secret_access_key"],
            },
            "location": location,
        }

    def register(self, actor: Actor, new: NewArtifact) -> dict[str, Any]:
        """Register an uploaded object once its checksum is verified; lineage is derived."""
        action = "artifact.register"
        check_name("artifact name", new.name)
        check_name("model type", new.model_type)
        metrics = _metrics(new.metrics)
        origin = self.origin(actor, new.request_id, action)
        ctx: dict[str, Any] = {
            "tenant": origin.tenant,
            "request_id": origin.request_id,
            "action": action,
        }
        parents = set(new.parents) | origin.used
        with self.sessions() as s:
            for pid in sorted(parents):
                parent = s.get(Artifact, pid)
                if parent is None or not self.visible(actor, parent):
                    raise NotFound(f"parent artifact {pid} is not one you may use", **ctx)
                if parent.stage == Stage.QUARANTINED:
                    raise Conflict(
                        f"parent artifact {pid} is quarantined ({parent.quarantine_reason}); "
                        "nothing may be built on it",
                        **ctx,
                    )
        key = object_key(origin.tenant, new.sha256)
        found = self.objects.digest(origin.tenant, key, origin.request_id)
        if found.sha256 != new.sha256 or found.size != new.size:
            raise Invalid(
                f"the object at s3://{self.objects.bucket}/{key} hashes to {found.sha256} "
                f"({found.size} bytes), not the declared {new.sha256} ({new.size} bytes): "
                "upload it again",
                **ctx,
            )
        if not metrics and origin.job_id is not None:
            metrics = gates.last_metrics(self.sessions, origin.job_id)
        now = utcnow()
        sources = set(origin.datasets)
        if not any(t == origin.tenant for t, _ in sources):
            sources.add((origin.tenant, ""))
        with self.sessions.begin() as s:
            art = Artifact(
                tenant=origin.tenant,
                scope=Scope.TENANT,
                name=new.name,
                model_type=new.model_type,
                sha256=new.sha256,
                size=new.size,
                bucket=self.objects.bucket,
                key=key,
                stage=Stage.CANDIDATE,
                request_id=origin.request_id,
                job_id=origin.job_id,
                notebook_sha256=origin.notebook_sha256,
                image=origin.image,
                parameters=json.dumps(origin.parameters, default=str),
                metrics=json.dumps(metrics),
                created_by=actor.name,
                created_at=now,
                stage_changed_at=now,
            )
            s.add(art)
            s.flush()
            s.add_all(
                ArtifactSource(artifact_id=art.id, tenant=t, dataset=d or None)
                for t, d in sorted(sources)
            )
            s.add_all(ArtifactParent(artifact_id=art.id, parent_id=p) for p in sorted(parents))
            s.flush()
            found_lineage = lineage.lineages(s, [art.id])[art.id]
            event = self._event(actor, art, action, lineage=found_lineage.as_dict())
            event.purpose = origin.purpose
            event.detail.update(
                job_id=origin.job_id,
                size=art.size,
                model_type=art.model_type,
                notebook_sha256=origin.notebook_sha256,
            )
            self.audit.append(s.connection(), [event])
            out = art.as_dict()
        out["lineage"] = found_lineage.as_dict()
        return out

    # -- reading ---------------------------------------------------------------------------

    def search(
        self,
        actor: Actor,
        job_id: int | None = None,
        request_id: int | None = None,
        tenant: str | None = None,
        stage: str | None = None,
    ) -> list[dict[str, Any]]:
        """The artifacts the caller may see, newest first, each with its lineage."""
        stmt = select(Artifact).order_by(Artifact.id.desc()).limit(500)
        if not actor.has(ADMIN):
            governed = self.catalog.governed_by(actor.name)
            stmt = stmt.where(
                (Artifact.created_by == actor.name)
                | Artifact.tenant.in_(governed)
                | ((Artifact.scope == Scope.SHARED) & (Artifact.stage == Stage.PRODUCTION))
            )
        for column, value in (
            (Artifact.job_id, job_id),
            (Artifact.request_id, request_id),
            (Artifact.tenant, tenant),
            (Artifact.stage, stage),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        with self.sessions() as s:
            rows = list(s.scalars(stmt))
            found = lineage.lineages(s, [a.id for a in rows])
            return [{**a.as_dict(), "lineage": found[a.id].as_dict()} for a in rows]

    def get(self, actor: Actor, artifact_id: int) -> dict[str, Any]:
        """One artifact with its lineage, evaluation reports (newest first) and reviews."""
        with self.sessions() as s:
            art = self._load(s, actor, artifact_id, "artifact.read")
            out = art.as_dict()
            out["lineage"] = lineage.lineages(s, [art.id])[art.id].as_dict()
            reports = s.scalars(
                select(ArtifactReport)
                .where(ArtifactReport.artifact_id == art.id)
                .order_by(ArtifactReport.id.desc())
            )
            out["reports"] = [r.as_dict() for r in reports]
            reviews = s.scalars(
                select(ArtifactReview)
                .where(ArtifactReview.artifact_id == art.id)
                .order_by(ArtifactReview.id)
            )
            out["reviews"] = [r.as_dict() for r in reviews]
        out["approvals_required"] = self.approvals_required(out["tenant"])
        return out

    def lineage_graph(self, actor: Actor, artifact_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            self._load(s, actor, artifact_id, "artifact.lineage")
            return lineage.graph(s, artifact_id)

    def read(
        self, actor: Actor, artifact_id: int, request_id: int | None
    ) -> tuple[dict[str, Any], IO[bytes]]:
        """The artifact's bytes, checksum verified before any is handed out, for a server or
        job under a request of the artifact's tenant (or any request, for a shared production
        model). The read is recorded, and makes the artifact a parent of what is saved under
        that request (or job) later."""
        action = "artifact.read"
        origin = self.origin(actor, request_id, action)
        with self.sessions() as s:
            art = self._load(s, actor, artifact_id, action)
            meta = art.as_dict()
            found = lineage.lineages(s, [art.id])[art.id]
        shared = meta["scope"] == Scope.SHARED and meta["stage"] == Stage.PRODUCTION
        if not shared and found.tenants != {origin.tenant}:
            raise Forbidden(
                f"artifact {artifact_id}'s lineage includes {found.describe()}: it cannot be "
                f"read under request {origin.request_id} of {origin.tenant}",
                tenant=origin.tenant,
                request_id=origin.request_id,
                action=action,
            )
        if meta["stage"] == Stage.QUARANTINED:
            raise Conflict(f"artifact {artifact_id} is quarantined", action=action)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned
        h = hashlib.sha256()
        for chunk in self.objects.stream(meta["tenant"], meta_key(meta), meta["request_id"]):
            h.update(chunk)
            spool.write(chunk)
        if h.hexdigest() != meta["sha256"]:
            spool.close()
            raise Conflict(
                f"artifact {artifact_id}'s object no longer matches its checksum (tampered or "
                "corrupted); it is not handed out",
                tenant=meta["tenant"],
                action=action,
            )
        spool.seek(0)
        with self.sessions.begin() as s:
            s.add(
                ArtifactUse(
                    artifact_id=artifact_id,
                    request_id=origin.request_id,
                    job_id=origin.job_id,
                    actor=actor.name,
                    at=utcnow(),
                )
            )
            row = s.get(Artifact, artifact_id)
            assert row is not None
            event = self._event(actor, row, action, reader_tenant=origin.tenant)
            event.request_id = origin.request_id
            event.tenant = origin.tenant
            event.detail["artifact_request_id"] = row.request_id
            if origin.job_id is not None:
                event.resource = f"job:{origin.job_id}"
                event.detail["artifact_id"] = row.id
            self.audit.append(s.connection(), [event])
        return meta, spool

    # -- erasure -------------------------------------------------------------------------

    def quarantine_tenant(self, tenant: str, reason: str) -> list[int]:
        """Quarantine every artifact with `tenant` anywhere in its lineage (through parents,
        at any depth); return all their ids. Idempotent: those already quarantined keep their
        first reason and get no second event."""
        now = utcnow()
        with self.sessions.begin() as s:
            ids = lineage.derived_from(s, tenant)
            events = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = s.scalars(
                    select(Artifact).where(
                        Artifact.id.in_(chunk), Artifact.stage != Stage.QUARANTINED
                    )
                )
                for art in rows:
                    events.append(
                        self._event(None, art, "artifact.quarantine", erased_tenant=tenant)
                    )
                    events[-1].reason = reason
                    art.stage, art.stage_changed_at = Stage.QUARANTINED, now
                    art.quarantine_reason = reason
            if events:
                self.audit.append(s.connection(), events)
        return ids

    def delete_tenant_objects(self, tenant: str) -> list[str]:
        """Delete every artifact object stored under the tenant's prefix; return one line per
        object for the erasure certificate: `s3://bucket/key sha256=<hex> size=<bytes>`
        (content-addressed keys name their hash; any other object gives its ETag)."""
        deleted = self.objects.delete_tenant(tenant)
        lines = []
        for key, etag, size in deleted:
            tail = key.rsplit("/", 1)[-1]
            digest = f"sha256={tail}" if "/artifacts/sha256/" in key else f"etag={etag}"
            lines.append(f"s3://{self.objects.bucket}/{key} {digest} size={size}")
        if deleted:
            self.audit.record(
                AuditEvent(
                    action="artifact.delete",
                    actor="workbench",
                    role="system",
                    tenant=tenant,
                    detail={"objects": len(deleted), "bytes": sum(d[2] for d in deleted)},
                )
            )
        return lines


def _metrics(raw: dict[str, Any]) -> dict[str, float]:
    if len(raw) > MAX_METRICS:
        raise Invalid(f"at most {MAX_METRICS} metrics", action="artifact.register")
    out = {}
    for name, value in raw.items():
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise Invalid(
                f"metric {name[:80]!r} must be a finite number", action="artifact.register"
            )
        out[str(name)[:255]] = float(value)
    return out
