"""`requests`, `requests/{id}`, `requests/{id}/approve|deny|revoke|withdraw`."""

from __future__ import annotations

from workbench.actor import Actor
from workbench.compute.service import NO_USE, usage, usage_of
from workbench.errors import NotFound
from workbench.requests import NewRequest
from workbench.scopes import REQUEST
from workbench.service.api.schemas import DecisionIn, RequestIn
from workbench.service.base import BaseHandler, Param, endpoint

ID = Param("id", "path", "integer", "Access request id")


class RequestsHandler(BaseHandler):
    @endpoint(
        "request.list",
        "List access requests: mine, those I may decide, or all I may see",
        scope=None,
        params=(
            Param("view", "query", enum=("mine", "decide", "all")),
            Param(
                "state",
                "query",
                enum=("pending", "approved", "denied", "withdrawn", "revoked", "expired"),
            ),
        ),
    )
    async def get(self, actor: Actor) -> None:
        view = self.get_query_argument("view", "mine")
        state = self.get_query_argument("state", None) or None
        items = await self.run(self.wb.requests.search, actor, view, state)
        used = await self.run(usage_of, self.wb.sessions, [r["id"] for r in items])
        for item in items:
            item["usage"] = used.get(item["id"], NO_USE)
        self.send_json({"requests": items})

    @endpoint("request.file", "File an access request", scope=REQUEST, body=RequestIn, ok=201)
    async def post(self, actor: Actor, body: RequestIn) -> None:
        new = NewRequest(**body.model_dump())
        self.send_json(await self.run(self.wb.requests.file, actor, new), 201)


class RequestHandler(BaseHandler):
    @endpoint("request.read", "One access request", scope=None, params=(ID,))
    async def get(self, actor: Actor, request_id: str) -> None:
        if actor.job_id is not None and int(request_id) != actor.request_id:
            raise NotFound(f"you have no access request {request_id}")
        req = await self.run(self.wb.requests.get, actor, int(request_id))
        req["usage"] = await self.run(usage, self.wb.sessions, req["id"])
        self.send_json(req)


class DecisionHandler(BaseHandler):
    @endpoint(
        "request.decide",
        "Approve, deny, revoke or withdraw an access request",
        scope=None,
        body=DecisionIn,
        params=(ID, Param("decision", "path", enum=("approve", "deny", "revoke", "withdraw"))),
    )
    async def post(self, actor: Actor, request_id: str, kind: str, body: DecisionIn) -> None:
        decided = await self.run(
            self.wb.requests.decide, actor, int(request_id), kind, body.comment
        )
        self.send_json(decided)


ROUTES = [
    ("requests", RequestsHandler),
    ("requests/{id}", RequestHandler),
    ("requests/{id}/{decision}", DecisionHandler),
]
