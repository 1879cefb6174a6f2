"""`audit/events`, `audit/counts`, `audit/verify` — for security staff. Reading the log is
itself recorded."""

from __future__ import annotations

from typing import Any

from workbench.actor import Actor
from workbench.audit import AuditEvent, Filters, verify
from workbench.audit import query as q
from workbench.db import utcnow
from workbench.errors import Invalid
from workbench.scopes import AUDIT
from workbench.service.base import BaseHandler, Param, endpoint

FILTERS = (
    Param("tenant", "query", description="Tenant whose data the events concern"),
    Param("user", "query", description="Who acted"),
    Param("action", "query", description="Action, or its prefix before the dot (request, grant)"),
    Param("outcome", "query", enum=("ok", "refused", "error")),
    Param("request_id", "query", "integer"),
    Param("since", "query", description="ISO time or age (24h, 7d)"),
    Param("until", "query", description="ISO time or age (24h, 7d)"),
)


class AuditHandler(BaseHandler):
    def filters(self) -> Filters:
        now = utcnow()

        def arg(name: str) -> str | None:
            return self.get_query_argument(name, None) or None

        try:
            rid = arg("request_id")
            if rid is not None and not (rid.isdigit() and len(rid) <= 12):
                raise ValueError(f"request_id must be a request's number, not {rid[:40]!r}")
            return Filters(
                tenant=arg("tenant"),
                user=arg("user"),
                action=arg("action"),
                outcome=arg("outcome"),
                request_id=int(rid) if rid is not None else None,
                since=q.parse_when(s, now) if (s := arg("since")) else None,
                until=q.parse_when(u, now) if (u := arg("until")) else None,
            )
        except ValueError as e:
            raise Invalid(str(e)) from e

    async def note(self, actor: Actor, action: str, filters: Filters, **detail: Any) -> None:
        await self.wb.audit.arecord(
            AuditEvent(
                action=action,
                actor=actor.name,
                role=actor.role,
                client=actor.client,  # filed under no tenant: reading the log is not data access
                detail={k: str(v) for k, v in vars(filters).items() if v is not None} | detail,
            )
        )

    def _events(self, filters: Filters, limit: int) -> list[dict[str, Any]]:
        with self.wb.engine.connect() as conn:
            return q.events(conn, filters, limit)

    def _counts(self, filters: Filters) -> dict[str, int]:
        with self.wb.engine.connect() as conn:
            return q.count_by_user(conn, filters)


class EventsHandler(AuditHandler):
    @endpoint(
        "audit.query",
        "Audit events, newest first",
        scope=AUDIT,
        params=(*FILTERS, Param("limit", "query", "integer", "At most this many (≤ 10000)")),
    )
    async def get(self, actor: Actor) -> None:
        filters = self.filters()
        try:
            limit = int(self.get_query_argument("limit", "1000"))
        except ValueError:
            raise Invalid("limit must be a whole number") from None
        await self.note(actor, "audit.query", filters)
        events = await self.run(self._events, filters, limit)
        self.send_json({"events": events, "count": len(events)})


class CountsHandler(AuditHandler):
    @endpoint("audit.query", "Event counts per user", scope=AUDIT, params=FILTERS)
    async def get(self, actor: Actor) -> None:
        filters = self.filters()
        await self.note(actor, "audit.query", filters, view="counts")
        self.send_json({"counts": await self.run(self._counts, filters)})


class VerifyHandler(AuditHandler):
    @endpoint("audit.verify", "Verify the hash chain and signed checkpoints", scope=AUDIT)
    async def get(self, actor: Actor) -> None:
        verdict = await self.run(self._verify)
        await self.note(actor, "audit.verify", Filters(), ok=verdict.ok)
        self.send_json(
            {
                "ok": verdict.ok,
                "events": verdict.events,
                "checkpoints": verdict.checkpoints,
                "bad_seq": verdict.bad_seq,
                "message": str(verdict),
            }
        )

    def _verify(self) -> Any:
        signer = self.wb.audit.signer
        with self.wb.engine.connect() as conn:
            return verify(conn, signer.public_key if signer else None)


ROUTES = [
    ("audit/events", EventsHandler),
    ("audit/counts", CountsHandler),
    ("audit/verify", VerifyHandler),
]
