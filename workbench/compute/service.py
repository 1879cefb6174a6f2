"""The reaper's round: account the servers' use, then stop those `reaper.decide` names, each
with an audit event saying why. Runs in the service every `ServiceSettings.reaper_seconds`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.audit import AuditEvent, AuditLog
from workbench.compute.models import ServerSession
from workbench.compute.reaper import Limits, RequestView, Running, Stop, decide
from workbench.db import utcnow
from workbench.jobs.models import Job
from workbench.requests.models import AccessRequest

log = logging.getLogger(__name__)


class Hub(Protocol):
    def running_servers(self) -> list[Running]: ...
    def stop(self, user: str, name: str) -> None: ...


class Compute:
    def __init__(
        self, sessions: sessionmaker[Session], audit: AuditLog, hub: Hub, limits: Limits
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.hub = hub
        self.limits = limits

    def reap(self) -> list[Stop]:
        now = utcnow()
        servers = [s for s in self.hub.running_servers() if s.request_id is not None]
        views = self._account(servers, now)
        stops = decide(servers, views, now, self.limits)
        for stop in stops:
            self._stop(stop)
        return stops

    def _account(self, servers: list[Running], now: datetime) -> dict[int, RequestView]:
        """Record each running server's session; close those no longer running."""
        with self.sessions.begin() as s:
            open_rows = {
                (row.user, row.server, row.started_at): row
                for row in s.scalars(
                    select(ServerSession).where(ServerSession.stopped_at.is_(None))
                )
            }
            ids = {srv.request_id for srv in servers} | {r.request_id for r in open_rows.values()}
            reqs = {
                r.id: r for r in s.scalars(select(AccessRequest).where(AccessRequest.id.in_(ids)))
            }
            for srv in servers:
                key = (srv.user, srv.name, srv.started)
                row = open_rows.pop(key, None)
                req = reqs.get(srv.request_id or -1)
                if row is not None:
                    row.last_seen = now
                elif req is not None:
                    spec = req.profile_spec
                    s.add(
                        ServerSession(
                            request_id=req.id,
                            user=srv.user,
                            server=srv.name,
                            started_at=srv.started,
                            last_seen=now,
                            gpus=int(spec.get("gpu_count") or 0),
                            cpus=float(spec.get("cpu") or 0),
                        )
                    )
            for row in open_rows.values():  # gone since the last round
                row.stopped_at = row.last_seen
                if row.stop_reason is None:  # not stopped by us: by its timer, user or hub
                    req = reqs.get(row.request_id)
                    row.stop_reason = _why_gone(req, now)
                    self.audit.append(
                        s.connection(),
                        [
                            AuditEvent(
                                action="server.end",
                                actor="workbench",
                                role="system",
                                tenant=req.tenant if req else None,
                                request_id=row.request_id,
                                resource=f"{row.user}/{row.server}",
                                reason=row.stop_reason,
                                detail={"user": row.user, "hours": round(row.hours(), 4)},
                            )
                        ],
                    )
            s.flush()
            return {rid: self._view(s, req, now) for rid, req in reqs.items()}

    def _view(self, s: Session, req: AccessRequest, now: datetime) -> RequestView:
        rows = s.scalars(select(ServerSession).where(ServerSession.request_id == req.id))
        used = sum(r.hours() * r.gpus for r in rows)
        return RequestView(
            id=req.id,
            requester=req.requester,
            tenant=req.tenant,
            active=req.is_active(now),
            state="expired" if req.state == "approved" and not req.is_active(now) else req.state,
            gpus=int(req.profile_spec.get("gpu_count") or 0),
            gpu_hours=req.gpu_hours,
            gpu_hours_used=used,
        )

    def _stop(self, stop: Stop) -> None:
        srv, req = stop.server, stop.request
        try:
            self.hub.stop(srv.user, srv.name)
        except Exception as e:  # the next round tries again
            log.warning("could not stop %s/%s: %s", srv.user, srv.name, e)
            return
        event = AuditEvent(
            action=stop.action,
            actor="workbench",
            role="system",
            tenant=req.tenant if req else None,
            request_id=req.id if req else srv.request_id,
            resource=f"{srv.user}/{srv.name}",
            reason=stop.reason,
            detail={"user": srv.user},
        )
        # A server still stopping is still listed as running, so a later round (or the round
        # an ended request starts at once) stops it again: only the first stop is on record,
        # committed with the reason it writes.
        with self.sessions.begin() as s:
            rows = list(
                s.scalars(
                    select(ServerSession)
                    .where(
                        ServerSession.user == srv.user,
                        ServerSession.server == srv.name,
                        ServerSession.stopped_at.is_(None),
                    )
                    .with_for_update()
                )
            )
            first = [row for row in rows if row.stop_reason is None]
            for row in first:
                row.stop_reason = stop.reason
            if first or not rows:
                self.audit.append(s.connection(), [event])

    def usage(self, request_id: int) -> dict[str, float]:
        return usage(self.sessions, request_id)


def usage(sessions: sessionmaker[Session], request_id: int) -> dict[str, float]:
    """GPU- and CPU-hours a request's servers have used so far."""
    return usage_of(sessions, [request_id]).get(request_id, {**NO_USE})


NO_USE = {"gpu_hours_used": 0.0, "cpu_hours_used": 0.0}


def usage_of(
    sessions: sessionmaker[Session], request_ids: list[int]
) -> dict[int, dict[str, float]]:
    """GPU- and CPU-hours used, per request."""
    out: dict[int, dict[str, float]] = {}
    now = utcnow()
    with sessions() as s:
        rows = s.scalars(select(ServerSession).where(ServerSession.request_id.in_(request_ids)))
        for r in rows:
            u = out.setdefault(r.request_id, {**NO_USE})
            u["gpu_hours_used"] += r.hours() * r.gpus
            u["cpu_hours_used"] += r.hours() * r.cpus
        # jobs count against the same budget as servers
        for job in s.scalars(select(Job).where(Job.request_id.in_(request_ids))):
            u = out.setdefault(job.request_id, {**NO_USE})
            u["gpu_hours_used"] += job.hours(now) * job.gpus * job.nodes
            u["cpu_hours_used"] += job.hours(now) * job.cpus * job.nodes
    return {rid: {k: round(v, 4) for k, v in u.items()} for rid, u in out.items()}


def usage_summary(sessions: sessionmaker[Session], tenants: list[str]) -> list[dict[str, object]]:
    """GPU- and CPU-hours per tenant and user, for the managers of `tenants`."""
    totals: dict[tuple[str, str], dict[str, float]] = {}
    with sessions() as s:
        rows = s.execute(
            select(ServerSession, AccessRequest.tenant)
            .join(AccessRequest, AccessRequest.id == ServerSession.request_id)
            .where(AccessRequest.tenant.in_(tenants))
        ).all()
        for session, tenant in rows:
            t = totals.setdefault((tenant, session.user), {**NO_USE})
            t["gpu_hours_used"] += session.hours() * session.gpus
            t["cpu_hours_used"] += session.hours() * session.cpus
    return [
        {"tenant": tenant, "user": user, **{k: round(v, 3) for k, v in t.items()}}
        for (tenant, user), t in sorted(totals.items())
    ]


def _why_gone(req: AccessRequest | None, now: datetime) -> str:
    if req is None:
        return "stopped"
    if req.state == "approved" and not req.is_active(now):
        return f"request {req.id} expired"
    if req.state != "approved":
        return f"request {req.id} is {req.state}"
    return "stopped by its user or the hub"
