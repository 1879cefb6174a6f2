"""Server-rendered pages for people: my requests and the form to file one, a request's detail
with its decisions, the manager's queue, and the audit search for security staff."""

from __future__ import annotations

from typing import Any

from workbench.actor import Actor
from workbench.audit import Filters
from workbench.compute.service import usage_summary
from workbench.requests import NewRequest
from workbench.scopes import ADMIN, APPROVE, AUDIT, REQUEST
from workbench.service import artifact_pages
from workbench.service.api.audit import FILTERS, AuditHandler
from workbench.service.api.schemas import DecisionIn, RequestIn
from workbench.service.base import BaseHandler, Param, endpoint

ID = Param("id", "path", "integer")
DECISION = Param("decision", "path", enum=("approve", "deny", "revoke", "withdraw"))


class Page(BaseHandler):
    html = True

    def back(self, path: str) -> None:
        self.redirect(self.settings["prefix"] + path)


class IndexPage(Page):
    @endpoint("page.requests", "My access requests", scope=None)
    async def get(self, actor: Actor) -> None:
        mine = await self.run(self.wb.requests.search, actor, "mine", None)
        to_decide = (
            await self.run(self.wb.requests.search, actor, "decide", None)
            if actor.has(APPROVE)
            else []
        )
        self.render("index.html", requests=mine, pending_count=len(to_decide))

    @endpoint("request.file", "File a request (form)", scope=REQUEST, body=RequestIn)
    async def post(self, actor: Actor, body: RequestIn) -> None:
        created = await self.run(self.wb.requests.file, actor, NewRequest(**body.model_dump()))
        self.back(f"requests/{created['id']}")


class RequestPage(Page):
    @endpoint("page.request", "One request", scope=None, params=(ID,))
    async def get(self, actor: Actor, request_id: str) -> None:
        req = await self.run(self.wb.requests.get, actor, int(request_id))
        governs = actor.has(APPROVE) and self.wb.settings.catalog.governs(actor.name, req["tenant"])
        self.render(
            "request.html",
            req=req,
            may_decide=governs and req["requester"] != actor.name and req["state"] == "pending",
            may_revoke=req["state"] == "approved"
            and (governs or req["requester"] == actor.name or actor.has(ADMIN)),
            may_withdraw=req["state"] == "pending" and req["requester"] == actor.name,
        )


class DecisionPage(Page):
    @endpoint("request.decide", "Decide (form)", scope=None, body=DecisionIn, params=(ID, DECISION))
    async def post(self, actor: Actor, request_id: str, kind: str, body: DecisionIn) -> None:
        await self.run(self.wb.requests.decide, actor, int(request_id), kind, body.comment)
        self.back(f"requests/{request_id}")


class ManagePage(Page):
    @endpoint("page.manage", "The manager's queue", scope=APPROVE)
    async def get(self, actor: Actor) -> None:
        pending = await self.run(self.wb.requests.search, actor, "decide", None)
        everything = await self.run(self.wb.requests.search, actor, "all", None)
        recent = [r for r in everything if r["state"] != "pending"][:50]
        governs = self.wb.settings.catalog.governed_by(actor.name)
        self.render(
            "manage.html",
            pending=pending,
            recent=recent,
            governs=governs,
            usage=await self.run(usage_summary, self.wb.sessions, governs),
        )


class AuditPage(Page, AuditHandler):
    @endpoint("page.audit", "Audit search", scope=AUDIT, params=FILTERS)
    async def get(self, actor: Actor) -> None:
        filters = self.filters()
        searched = any(v is not None for v in vars(filters).values())
        events: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        if searched:
            await self.note(actor, "audit.query", filters, view="page")
            events = await self.run(self._events, filters, 500)
            counts = await self.run(self._counts, filters)
        self.render(
            "audit.html",
            events=events,
            counts=counts,
            searched=searched,
            args={p.name: self.get_query_argument(p.name, "") for p in FILTERS},
            filters=filters if searched else Filters(),
        )


ROUTES = [
    ("", IndexPage),
    ("requests/{id}", RequestPage),
    ("requests/{id}/{decision}", DecisionPage),
    ("manage", ManagePage),
    ("audit", AuditPage),
    *artifact_pages.ROUTES,
]
