"""`exports`, `exports/{id}`, `exports/{id}/approve|reject`, `exports/{id}/download`: the
export airlock (workbench.airlock.service)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from pydantic import Field

from workbench.actor import Actor
from workbench.airlock.models import ExportState
from workbench.airlock.service import MAX_BYTES
from workbench.errors import Invalid
from workbench.scopes import APPROVE, DATA
from workbench.service.api.schemas import _Body
from workbench.service.base import BaseHandler, Param, endpoint

ID = Param("id", "path", "integer", "Export id")


class ExportIn(_Body):
    """A file to take out, for review."""

    max_bytes = MAX_BYTES * 4 // 3 + 64 * 1024  # base64 of the largest file, and the rest

    request_id: int = Field(ge=1, le=10**12 - 1)
    filename: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, description="The file's bytes, base64")
    reason: str = Field(min_length=1, max_length=4000, description="Why it should leave")


class ReviewIn(_Body):
    comment: str = Field(default="", max_length=4000)


class ExportsHandler(BaseHandler):
    @endpoint(
        "export.list",
        "Exports: mine, those I may review, or all I may see",
        scope=None,
        params=(
            Param("view", "query", enum=("mine", "review", "all")),
            Param("state", "query", enum=tuple(ExportState)),
        ),
    )
    async def get(self, actor: Actor) -> None:
        view = self.get_query_argument("view", "all")
        state = self.get_query_argument("state", None) or None
        items = await self.run(self.wb.airlock.search, actor, view, state)
        self.send_json({"exports": items})

    @endpoint("export.request", "Ask to take a file out", scope=DATA, body=ExportIn, ok=201)
    async def post(self, actor: Actor, body: ExportIn) -> None:
        try:
            content = base64.b64decode(body.content, validate=True)
        except (binascii.Error, ValueError) as e:
            raise Invalid("content is not valid base64", request_id=body.request_id) from e
        export = await self.run(
            self.wb.airlock.submit, actor, body.request_id, body.filename, content, body.reason
        )
        self.send_json(export, 201)


class ExportHandler(BaseHandler):
    @endpoint("export.read", "One export", scope=None, params=(ID,))
    async def get(self, actor: Actor, export_id: str) -> None:
        self.send_json(await self.run(self.wb.airlock.get, actor, int(export_id)))


class ExportReviewHandler(BaseHandler):
    @endpoint(
        "export.review",
        "Approve or reject an export (a manager of its tenant, not its requester)",
        scope=APPROVE,
        body=ReviewIn,
        params=(ID, Param("decision", "path", enum=("approve", "reject"))),
    )
    async def post(self, actor: Actor, export_id: str, kind: str, body: ReviewIn) -> None:
        reviewed = await self.run(self.wb.airlock.review, actor, int(export_id), kind, body.comment)
        self.send_json(reviewed)


class ExportDownloadHandler(BaseHandler):
    @endpoint(
        "export.download",
        "The approved file, to its requester (or to a reviewer while pending)",
        scope=None,
        params=(ID,),
    )
    async def get(self, actor: Actor, export_id: str) -> None:
        meta, content = await self.run(self.wb.airlock.download, actor, int(export_id))
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header(
            "Content-Disposition", f"attachment; filename*=UTF-8''{quote(meta['filename'])}"
        )
        self.set_header("X-Checksum-SHA256", meta["sha256"])
        self.finish(content)


ROUTES = [
    ("exports", ExportsHandler),
    ("exports/{id}", ExportHandler),
    ("exports/{id}/download", ExportDownloadHandler),
    ("exports/{id}/{decision}", ExportReviewHandler),
]
