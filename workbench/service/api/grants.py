"""`grants` (data credentials under an approved request) and `grants/{id}/reads` (reads that
notebooks report, marked as client-reported)."""

from __future__ import annotations

import functools

from pydantic import Field

from workbench.actor import Actor
from workbench.audit import AuditEvent
from workbench.errors import Forbidden, Invalid, NotFound
from workbench.scopes import DATA
from workbench.service.api.schemas import _Body
from workbench.service.base import BaseHandler, Param, endpoint


class GrantIn(_Body):
    """Ask for credentials to one dataset under one of your approved requests."""

    request_id: int = Field(ge=1, le=10**12 - 1)
    dataset: str = Field(min_length=1, max_length=511, description="tenant/dataset or dataset")
    resource: str | None = Field(
        default=None, max_length=255, description="Server, kernel or job asking"
    )


class ReadsIn(_Body):
    """Objects a notebook read with a grant's credentials."""

    objects: list[str] = Field(min_length=1, max_length=1000)
    bytes: int = Field(default=0, ge=0)
    resource: str | None = Field(default=None, max_length=255)


class GrantsHandler(BaseHandler):
    @endpoint(
        "grant.list",
        "My grants, newest first",
        scope=DATA,
        params=(Param("request_id", "query", "integer"),),
    )
    async def get(self, actor: Actor) -> None:
        rid = self.get_query_argument("request_id", None)
        if rid is not None and not (rid.isdigit() and len(rid) <= 12):
            raise Invalid(f"request_id must be a request's number, not {rid[:40]!r}")
        request_id = int(rid) if rid else None
        if actor.job_id is not None:  # a job sees its own request's grants only
            request_id = actor.request_id
        grants = await self.run(self.wb.broker.list_grants, actor, request_id)
        self.send_json({"grants": grants})

    @endpoint(
        "grant.issue",
        "Credentials for one dataset, issued only once the grant is on record",
        scope=DATA,
        body=GrantIn,
        ok=201,
    )
    async def post(self, actor: Actor, body: GrantIn) -> None:
        if actor.job_id is not None and body.request_id != actor.request_id:
            raise Forbidden(
                f"job {actor.job_id} runs under request {actor.request_id}, not "
                f"{body.request_id}: a job asks for data of its own request only",
                request_id=body.request_id,
                action="grant.issue",
            )
        grant = await self.run(
            functools.partial(self.wb.broker.grant, job_id=actor.job_id),
            actor,
            body.request_id,
            body.dataset,
            body.resource if actor.job_id is None else None,
        )
        self.send_json(grant, 201)


class ReadsHandler(BaseHandler):
    @endpoint(
        "data.read",
        "Report objects read with a grant (client-reported)",
        scope=DATA,
        body=ReadsIn,
        params=(Param("id", "path", "integer", "Grant id"),),
        ok=201,
    )
    async def post(self, actor: Actor, grant_id: str, body: ReadsIn) -> None:
        grant = await self.run(self.wb.broker.own_grant, actor, int(grant_id))
        if grant is None:
            raise NotFound(f"you have no grant {grant_id}")
        rec = await self.wb.audit.arecord(
            AuditEvent(
                action="data.read",
                actor=actor.name,
                role=actor.role,
                tenant=grant["tenant"],
                dataset=grant["dataset"],
                request_id=grant["request_id"],
                resource=body.resource,
                client=actor.client,
                detail={
                    "client_reported": True,
                    "grant_id": grant["id"],
                    "objects": body.objects,
                    "bytes": body.bytes,
                },
            )
        )
        self.send_json({"recorded": rec.seq}, 201)


ROUTES = [
    ("grants", GrantsHandler),
    ("grants/{id}/reads", ReadsHandler),
]
