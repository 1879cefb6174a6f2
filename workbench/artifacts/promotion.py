"""Reviews and promotion of artifacts (a part of `Artifacts`): the stage moves a person may ask
for, the checks before each (the lineage is the target tenant's alone, the object's checksum
still holds, a passing evaluation report, reviews by people other than the requester), and the
evaluation gate that moves a candidate to staging."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.actor import Actor
from workbench.artifacts import lineage
from workbench.artifacts.gates import Gates
from workbench.artifacts.models import (
    Artifact,
    ArtifactReview,
    ReportState,
    Scope,
    Stage,
)
from workbench.artifacts.store import ArtifactObjects, meta_key
from workbench.audit import AuditEvent, AuditLog
from workbench.config import ArtifactSettings, CatalogData
from workbench.db import utcnow
from workbench.errors import Conflict, Forbidden, Invalid
from workbench.scopes import ADMIN

log = logging.getLogger(__name__)
# where a promotion may go from each stage (quarantine is erasure's, and final)
MOVES: dict[str, tuple[str, ...]] = {
    Stage.CANDIDATE: (Stage.STAGING, Stage.ARCHIVED),
    Stage.STAGING: (Stage.PRODUCTION, Stage.ARCHIVED),
    Stage.PRODUCTION: (Stage.ARCHIVED,),
    Stage.ARCHIVED: (Stage.STAGING,),
    Stage.QUARANTINED: (),
}


class Promotion:
    """Mixed into `Artifacts`, whose registry attributes and helpers it uses."""

    sessions: sessionmaker[Session]
    audit: AuditLog
    catalog: CatalogData
    settings: ArtifactSettings
    objects: ArtifactObjects
    gates: Gates

    if TYPE_CHECKING:  # the registry's, in workbench.artifacts.service

        def _load(self, s: Session, actor: Actor, artifact_id: int, action: str) -> Artifact: ...
        def _event(
            self, actor: Actor | None, art: Artifact, action: str, **detail: Any
        ) -> AuditEvent: ...
        def get(self, actor: Actor, artifact_id: int) -> dict[str, Any]: ...

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
        found = self.objects.digest(meta["tenant"], meta_key(meta), meta["request_id"])
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
