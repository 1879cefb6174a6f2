"""Operations on access requests. Each state change and its audit event commit in one
transaction, so the log never says something happened that did not, nor misses what did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.actor import Actor
from workbench.audit import AuditEvent, AuditLog
from workbench.config import CatalogData, RequestPolicy
from workbench.db import utcnow
from workbench.erasure.models import TenantErasure
from workbench.errors import Conflict, Invalid, NotFound
from workbench.listing import governed_list
from workbench.requests import rules
from workbench.requests.models import AccessRequest, Decision, State
from workbench.requests.rules import NewRequest

__all__ = ["NewRequest", "Requests"]

log = logging.getLogger(__name__)


class Requests:
    """File, decide, end and list access requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        policy: RequestPolicy,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.catalog = catalog
        self.policy = policy
        # called with a request's id after a decision ended it (revoke), outside the transaction
        self.on_end: list[Callable[[int], object]] = []

    def _event(self, actor: Actor, req: AccessRequest, action: str, **extra: Any) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=actor.name,
            role=actor.role,
            tenant=req.tenant,
            purpose=req.purpose,
            request_id=req.id,
            client=actor.client,
            detail={"state": req.state, "datasets": list(req.datasets), **extra},
        )

    def file(self, actor: Actor, new: NewRequest) -> dict[str, Any]:
        checked = rules.check_new(actor, new, self.catalog, self.policy)
        now = utcnow()
        with self.sessions.begin() as s:
            self._refuse_erased(s, checked.tenant.name, "request.file")
            req = AccessRequest(
                requester=actor.name,
                tenant=checked.tenant.name,
                datasets=checked.datasets,
                purpose=checked.purpose,
                profile=checked.profile.name,
                profile_spec=checked.profile.as_dict(),
                hours=checked.hours,
                gpu_hours=checked.gpu_hours,
                approvals_required=checked.tenant.approvals_required,
                state=State.PENDING,
                created_at=now,
            )
            s.add(req)
            s.flush()
            self.audit.append(
                s.connection(),
                [
                    self._event(
                        actor,
                        req,
                        "request.file",
                        profile=req.profile,
                        hours=req.hours,
                        gpu_hours=req.gpu_hours,
                    )
                ],
            )
            return req.as_dict(now)

    def get(self, actor: Actor, request_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            req = s.get(AccessRequest, request_id)
            if req is None or not rules.can_see(actor, req, self.catalog):
                raise NotFound(f"no access request {request_id}", request_id=request_id)
            return req.as_dict(utcnow())

    def search(
        self, actor: Actor, view: str = "mine", state: str | None = None
    ) -> list[dict[str, Any]]:
        """`mine`: my own; `decide`: pending ones I may decide; `all`: every one I may see."""
        stmt = governed_list(AccessRequest, actor, self.catalog, view, state, State, "decide")
        now = utcnow()
        with self.sessions() as s:
            return [r.as_dict(now) for r in s.scalars(stmt.limit(1000))]

    def decide(self, actor: Actor, request_id: int, kind: str, comment: str = "") -> dict[str, Any]:
        """approve, deny, revoke or withdraw; raise with what forbids it."""
        if kind not in rules.ALLOWED_FROM:
            raise Invalid(f"unknown decision {kind!r}")
        now = utcnow()
        with self.sessions.begin() as s:
            req = s.get(AccessRequest, request_id, with_for_update=True)
            if req is None:
                raise NotFound(f"no access request {request_id}", request_id=request_id)
            self._expire_if_due(s, req, now)
            rules.check_decision(actor, req, kind, self.catalog)
            if kind == "approve":
                self._refuse_erased(s, req.tenant, "request.approve", req.id)
            s.add(Decision(request_id=req.id, actor=actor.name, kind=kind, comment=comment, at=now))
            if kind == "approve":
                if len(req.approvers()) + 1 >= req.approvals_required:
                    req.state = State.APPROVED
                    req.approved_at = now
                    req.expires_at = now + timedelta(hours=req.hours)
            else:
                req.state = {"deny": State.DENIED, "withdraw": State.WITHDRAWN}.get(
                    kind, State.REVOKED
                )
                req.ended_at = now
                req.end_reason = f"{kind} by {actor.name}" + (f": {comment}" if comment else "")
            s.flush()
            s.refresh(req)
            self.audit.append(
                s.connection(),
                [self._event(actor, req, f"request.{kind}", comment=comment)],
            )
            decided = req.as_dict(now)
        if kind == "revoke":
            self._ended(req.id)
        return decided

    @staticmethod
    def _refuse_erased(s: Session, tenant: str, action: str, request_id: int | None = None) -> None:
        """A tenant under erasure, or erased, takes no new requests nor approvals."""
        mark = s.get(TenantErasure, tenant)
        if mark is not None:
            when = mark.started_at.date().isoformat()
            raise Conflict(
                f"tenant {tenant!r} was erased ({mark.state} since {when}); it takes no requests",
                tenant=tenant,
                action=action,
                request_id=request_id,
            )

    def end_tenant(self, tenant: str, reason: str) -> list[int]:
        """End every open request of `tenant` as the system: pending ones denied, approved
        ones revoked, each with its audit event; return the ids ended (idempotent)."""
        now = utcnow()
        system = Actor("workbench", kind="service")
        ended = []
        with self.sessions.begin() as s:
            open_requests = s.scalars(
                select(AccessRequest)
                .where(
                    AccessRequest.tenant == tenant,
                    AccessRequest.state.in_((State.PENDING, State.APPROVED)),
                )
                .with_for_update()
            ).all()
            for req in open_requests:
                kind = "deny" if req.state == State.PENDING else "revoke"
                req.state = State.DENIED if kind == "deny" else State.REVOKED
                req.ended_at = now
                req.end_reason = f"{kind} by workbench: {reason}"
                s.add(
                    Decision(
                        request_id=req.id, actor="workbench", kind=kind, comment=reason, at=now
                    )
                )
                s.flush()
                event = self._event(system, req, f"request.{kind}", comment=reason)
                event.role = "system"
                self.audit.append(s.connection(), [event])
                ended.append(req.id)
        for request_id in ended:
            self._ended(request_id)
        return ended

    def _ended(self, request_id: int) -> None:
        for hook in self.on_end:
            try:
                hook(request_id)
            except Exception:  # the reaper retries; the decision itself stands
                log.exception("ending request %s", request_id)

    def _expire_if_due(self, s: Session, req: AccessRequest, now: datetime) -> bool:
        if req.state != State.APPROVED or req.expires_at is None or now < req.expires_at:
            return False
        req.state = State.EXPIRED
        req.ended_at = now
        req.end_reason = "expired"
        s.add(Decision(request_id=req.id, actor="workbench", kind="expire", comment="", at=now))
        s.flush()
        system = Actor("workbench", kind="service")
        event = self._event(system, req, "request.expire")
        event.role = "system"
        self.audit.append(s.connection(), [event])
        return True

    def expire_due(self) -> list[int]:
        """End every approved request past its end (the reaper calls this); return their ids."""
        now = utcnow()
        ended = []
        with self.sessions.begin() as s:
            due = s.scalars(
                select(AccessRequest)
                .where(AccessRequest.state == State.APPROVED, AccessRequest.expires_at <= now)
                .with_for_update()
            ).all()
            for req in due:
                if self._expire_if_due(s, req, now):
                    ended.append(req.id)
        for request_id in ended:
            self._ended(request_id)
        return ended

    def active(self, request_id: int) -> AccessRequest | None:
        """The request if it is approved and unexpired, else None."""
        with self.sessions() as s:
            req = s.get(AccessRequest, request_id)
            return req if req is not None and req.is_active(utcnow()) else None
