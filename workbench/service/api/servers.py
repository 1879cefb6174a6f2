"""`servers/decisions`: the hub's approval gate reports each admission decision here, with the
user's own token, before the server starts (audit before access) or when it refuses one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from workbench.actor import Actor
from workbench.audit import AuditEvent
from workbench.errors import NotFound, WorkbenchError
from workbench.scopes import REQUEST
from workbench.service.api.schemas import _Body
from workbench.service.base import BaseHandler, endpoint


class ServerDecisionIn(_Body):
    """One admission decision of the gate about one of the caller's servers."""

    server: str = Field(max_length=255)
    request_id: int | None = Field(default=None, ge=1, le=10**12 - 1)
    outcome: Literal["ok", "refused"]
    reason: str = Field(default="", max_length=255, description="The gate's reason code")
    message: str = Field(default="", max_length=4000)


class ServerDecisionsHandler(BaseHandler):
    @endpoint(
        "server.start",
        "Record the gate's decision on starting one of my servers",
        scope=REQUEST,
        body=ServerDecisionIn,
        ok=201,
    )
    async def post(self, actor: Actor, body: ServerDecisionIn) -> None:
        req = None
        if body.request_id is not None:
            try:
                req = await self.run(self.wb.requests.get, actor, body.request_id)
            except NotFound:
                req = None
            except WorkbenchError:
                raise
        rec = await self.wb.audit.arecord(
            AuditEvent(
                action="server.start" if body.outcome == "ok" else "server.refused",
                actor=actor.name,
                role=actor.role,
                tenant=req["tenant"] if req else None,
                purpose=req["purpose"] if req else None,
                request_id=req["id"] if req else body.request_id,
                resource=f"{actor.name}/{body.server or 'default'}",
                outcome=body.outcome,
                reason=body.message or None,
                client=actor.client,
                detail={"gate_reason": body.reason, "reported_by": "hub"},
            )
        )
        self.send_json({"recorded": rec.seq}, 201)


ROUTES = [("servers/decisions", ServerDecisionsHandler)]
