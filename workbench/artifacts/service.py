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
    ReportState,
    Scope,
    Stage,
)
from workbench.artifacts.store import ArtifactObjects, object_key
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
# where a promotion may go from each stage (quarantine is erasure's, and final)
MOVES: dict[str, tuple[str, ...]] = {
    Stage.CANDIDATE: (Stage.STAGING, Stage.ARCHIVED),
    Stage.STAGING: (Stage.PRODUCTION, Stage.ARCHIVED),
    Stage.PRODUCTION: (Stage.ARCHIVED,),
    Stage.ARCHIVED: (Stage.STAGING,),
    Stage.QUARANTINED: (),
}


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


class Artifacts:
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
        for chunk in self.objects.stream(meta["tenant"], _key(meta), meta["request_id"]):
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

    # -- reviews and promotion -------------------------------------------------------------

    def approvals_required(self, tenant: str) -> int:
        known = self.catalog.tenants.get(tenant)
        return known.approvals_required if known else 1

    def review(
        self, actor: Actor, artifact_id: int, decision: str, comment: str = ""
    ) -> dict[str, Any]:
        """A manager of the artifact's tenant approves or rejects its promotion to production,
        against its latest passing report. Nobody reviews an artifact they made or asked to
        promote."""
        action = "artifact.review"
        if decision not in ("approve", "reject"):
            raise Invalid(f"decision must be approve or reject, not {decision[:40]!r}")
        with self.sessions.begin() as s:
            art = self._load(s, actor, artifact_id, action)
            ctx: dict[str, Any] = {
                "tenant": art.tenant,
                "request_id": art.request_id,
                "action": action,
            }
            if not self.catalog.governs(actor.name, art.tenant):
                raise Forbidden(f"only managers of {art.tenant} review its artifacts", **ctx)
            report = self.gates.latest(s, art.id)
            if art.stage != Stage.STAGING or report is None or report.state != ReportState.PASSED:
                raise Conflict(
                    f"artifact {art.id} is not awaiting review: it is {art.stage}"
                    + ("" if report else ", with no evaluation report"),
                    **ctx,
                )
            if actor.name in (art.created_by, report.requested_by):
                raise Forbidden(
                    f"{actor.name} made artifact {art.id} or asked to promote it; a reviewer "
                    "must be someone else",
                    **ctx,
                )
            already = s.scalars(
                select(ArtifactReview).where(
                    ArtifactReview.report_id == report.id, ArtifactReview.reviewer == actor.name
                )
            ).first()
            if already is not None:
                raise Conflict(
                    f"{actor.name} already reviewed report {report.id} ({already.decision})",
                    **ctx,
                )
            s.add(
                ArtifactReview(
                    artifact_id=art.id,
                    report_id=report.id,
                    reviewer=actor.name,
                    decision=decision,
                    comment=comment,
                    at=utcnow(),
                )
            )
            event = self._event(actor, art, action, decision=decision, report_id=report.id)
            event.reason = comment or None
            self.audit.append(s.connection(), [event])
        return self.get(actor, artifact_id)

    def promote(
        self,
        actor: Actor,
        artifact_id: int,
        stage: str,
        tenant: str | None = None,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Move an artifact to `stage` for its tenant (or, with scope `shared`, for every
        tenant). To staging: starts the evaluation, and the artifact moves once the report
        passes. To production: a passing report and the reviews it needs. Refused when the
        lineage reaches another tenant, or the object no longer matches its checksum."""
        action = "artifact.promote"
        if stage not in MOVES or stage == Stage.QUARANTINED:
            raise Invalid(
                f"no stage {stage[:40]!r}; promote to staging, production or archived",
                action=action,
            )
        if scope is not None and scope not in (Scope.TENANT, Scope.SHARED):
            raise Invalid(f"scope must be tenant or shared, not {scope[:40]!r}", action=action)
        with self.sessions() as s:
            art = self._load(s, actor, artifact_id, action)
            meta = art.as_dict()
            found = lineage.lineages(s, [art.id])[art.id]
        ctx: dict[str, Any] = {
            "tenant": meta["tenant"],
            "request_id": meta["request_id"],
            "action": action,
        }
        current = meta["stage"]
        if stage not in MOVES[current]:
            allowed = ", ".join(MOVES[current]) or "nowhere"
            why = f" ({meta['quarantine_reason']})" if current == Stage.QUARANTINED else ""
            raise Conflict(
                f"artifact {artifact_id} is {current}{why}; from there it may go to {allowed}",
                **ctx,
            )
        self._check_promoter(actor, meta, stage, ctx)
        scope = scope or meta["scope"]
        self._check_lineage(meta, found, tenant or meta["tenant"], scope, ctx)
        self._check_object(meta, ctx)
        if stage == Stage.STAGING:
            report = self.gates.start(actor, artifact_id, scope)
            return {**self.get(actor, artifact_id), "evaluation": report}
        if stage == Stage.PRODUCTION:
            self._check_reviews(artifact_id, ctx)
        self.move(actor, artifact_id, stage, scope=scope)
        return self.get(actor, artifact_id)

    def _check_promoter(
        self, actor: Actor, meta: dict[str, Any], stage: str, ctx: dict[str, Any]
    ) -> None:
        maker = meta["created_by"] == actor.name
        if stage == Stage.STAGING and not maker:
            # the evaluation runs as jobs under the maker's request
            raise Forbidden(
                f"only {meta['created_by']}, who made artifact {meta['id']}, asks for its "
                "evaluation",
                **ctx,
            )
        if not (maker or actor.has(ADMIN) or self.catalog.governs(actor.name, meta["tenant"])):
            raise Forbidden(
                f"only its maker or a manager of {meta['tenant']} promotes artifact {meta['id']}",
                **ctx,
            )

    def _check_lineage(
        self,
        meta: dict[str, Any],
        found: lineage.Lineage,
        tenant: str,
        scope: str,
        ctx: dict[str, Any],
    ) -> None:
        if scope == Scope.SHARED:
            refusing = sorted(found.tenants - set(self.settings.shared_consent))
            if refusing:
                raise Forbidden(
                    f"artifact {meta['id']} cannot be shared: its lineage includes "
                    f"{found.describe()}, and {', '.join(refusing)} did not allow shared "
                    "models from their data",
                    **ctx,
                )
            return
        if found.tenants != {tenant}:
            raise Forbidden(
                f"artifact {meta['id']}'s lineage includes {found.describe()}: it cannot be "
                f"promoted for {tenant}",
                **ctx,
            )

    def _check_object(self, meta: dict[str, Any], ctx: dict[str, Any]) -> None:
        found = self.objects.digest(meta["tenant"], _key(meta), meta["request_id"])
        if found.sha256 != meta["sha256"]:
            raise Conflict(
                f"artifact {meta['id']}'s object {meta['location']} no longer matches its "
                f"checksum (it hashes to {found.sha256}, registered {meta['sha256']}): it was "
                "tampered with or corrupted; promotion refused",
                **ctx,
            )

    def _check_reviews(self, artifact_id: int, ctx: dict[str, Any]) -> None:
        with self.sessions() as s:
            art = s.get(Artifact, artifact_id)
            assert art is not None
            report = self.gates.latest(s, artifact_id)
            if report is None or report.state != ReportState.PASSED:
                raise Conflict(
                    f"artifact {artifact_id} has no passing evaluation report; promote it to "
                    "staging to evaluate it",
                    **ctx,
                )
            reviews = list(
                s.scalars(select(ArtifactReview).where(ArtifactReview.report_id == report.id))
            )
            maker, asker = art.created_by, report.requested_by
        rejected = [r.reviewer for r in reviews if r.decision == "reject"]
        if rejected:
            raise Conflict(
                f"artifact {artifact_id} was rejected by {', '.join(rejected)}; it needs a new "
                "evaluation",
                **ctx,
            )
        approvers = {
            r.reviewer
            for r in reviews
            if r.reviewer not in (maker, asker) and self.catalog.governs(r.reviewer, ctx["tenant"])
        }
        needed = self.approvals_required(ctx["tenant"])
        if len(approvers) < needed:
            raise Conflict(
                f"artifact {artifact_id} has {len(approvers)} of the {needed} approval(s) "
                f"{ctx['tenant']} requires from a manager other than its maker",
                **ctx,
            )

    def move(
        self, actor: Actor | None, artifact_id: int, stage: str, scope: str | None = None
    ) -> None:
        """Set the stage (and scope) and record it; entering production archives the
        artifact that held it for the same tenant, scope and name."""
        now = utcnow()
        with self.sessions.begin() as s:
            art = s.get(Artifact, artifact_id)
            assert art is not None
            events = []
            if stage == Stage.PRODUCTION:
                previous = s.scalars(
                    select(Artifact).where(
                        Artifact.tenant == art.tenant,
                        Artifact.name == art.name,
                        Artifact.scope == (scope or art.scope),
                        Artifact.stage == Stage.PRODUCTION,
                        Artifact.id != art.id,
                    )
                )
                for old in previous:
                    old.stage, old.stage_changed_at = Stage.ARCHIVED, now
                    events.append(
                        self._event(actor, old, "artifact.stage", previous=Stage.PRODUCTION)
                    )
                    events[-1].detail["replaced_by"] = art.id
            before = art.stage
            art.stage, art.stage_changed_at = stage, now
            if scope:
                art.scope = scope
            events.append(self._event(actor, art, "artifact.stage", previous=before))
            events[-1].detail["scope"] = art.scope
            self.audit.append(s.connection(), events)

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


def _key(meta: dict[str, Any]) -> str:
    return str(meta["location"]).split("/", 3)[3]


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
