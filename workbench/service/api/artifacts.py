"""`artifacts` (list, register), `artifacts/uploads` (where to put one), `artifacts/{id}`,
`artifacts/{id}/lineage|content|promote|reviews`."""

from __future__ import annotations

from pydantic import Field

from workbench.actor import Actor
from workbench.artifacts.models import Stage
from workbench.artifacts.service import NewArtifact
from workbench.errors import Invalid
from workbench.scopes import APPROVE, DATA
from workbench.service.api.schemas import _Body
from workbench.service.base import BaseHandler, Param, endpoint

ID = Param("id", "path", "integer", "Artifact id")
RID = Field(default=None, ge=1, le=10**12 - 1, description="Your request (a job: its own)")
CHUNK = 256 * 1024


class UploadIn(_Body):
    """Ask where to upload an artifact made under one of your requests."""

    request_id: int | None = RID


class ArtifactIn(_Body):
    """An uploaded object to register; its lineage is derived by the service."""

    name: str = Field(min_length=1, max_length=128, description="e.g. topic-classifier")
    sha256: str = Field(min_length=64, max_length=64, description="Hex SHA-256 of the object")
    size: int = Field(ge=0, le=2**50)
    model_type: str = Field(default="model", min_length=1, max_length=128)
    request_id: int | None = RID
    parents: list[int] = Field(default_factory=list, max_length=100)
    metrics: dict[str, float] = Field(default_factory=dict)


class PromoteIn(_Body):
    """The stage to move to; `tenant` (default: the artifact's own) whose stages it enters,
    or `scope: shared` for a base model every tenant may use."""

    stage: str = Field(min_length=1, max_length=32)
    tenant: str | None = Field(default=None, max_length=255)
    scope: str | None = Field(default=None, max_length=16)


class ReviewIn(_Body):
    """A manager's decision on promoting an artifact to production."""

    decision: str = Field(pattern=r"^(approve|reject)$")
    comment: str = Field(default="", max_length=4000)


def _int_arg(handler: BaseHandler, name: str) -> int | None:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise Invalid(f"{name} must be a whole number, not {raw[:40]!r}")
    return int(raw)


class ArtifactsHandler(BaseHandler):
    @endpoint(
        "artifact.list",
        "Artifacts I made (and those of the tenants I govern), newest first, with lineage",
        scope=DATA,
        params=(
            Param("job_id", "query", "integer"),
            Param("request_id", "query", "integer"),
            Param("tenant", "query"),
            Param("stage", "query", enum=tuple(s.value for s in Stage)),
        ),
    )
    async def get(self, actor: Actor) -> None:
        stage = self.get_query_argument("stage", None) or None
        if stage is not None and stage not in {s.value for s in Stage}:
            raise Invalid(f"no stage {stage[:40]!r}")
        found = await self.run(
            self.wb.artifacts.search,
            actor,
            _int_arg(self, "job_id"),
            _int_arg(self, "request_id"),
            self.get_query_argument("tenant", None) or None,
            stage,
        )
        self.send_json({"artifacts": found})

    @endpoint(
        "artifact.register",
        "Register an uploaded object, once its checksum is verified",
        scope=DATA,
        body=ArtifactIn,
        ok=201,
    )
    async def post(self, actor: Actor, body: ArtifactIn) -> None:
        new = NewArtifact(**{**body.model_dump(), "parents": tuple(body.parents)})
        self.send_json(await self.run(self.wb.artifacts.register, actor, new), 201)


class UploadsHandler(BaseHandler):
    @endpoint(
        "artifact.upload",
        "Where and with which credentials to upload an artifact (the hand-out is on record)",
        scope=DATA,
        body=UploadIn,
        ok=201,
    )
    async def post(self, actor: Actor, body: UploadIn) -> None:
        self.send_json(await self.run(self.wb.artifacts.upload, actor, body.request_id), 201)


class ArtifactHandler(BaseHandler):
    @endpoint(
        "artifact.read", "One artifact, its lineage, reports and reviews", scope=DATA, params=(ID,)
    )
    async def get(self, actor: Actor, artifact_id: str) -> None:
        self.send_json(await self.run(self.wb.artifacts.get, actor, int(artifact_id)))


class LineageHandler(BaseHandler):
    @endpoint("artifact.lineage", "An artifact's lineage as a graph", scope=DATA, params=(ID,))
    async def get(self, actor: Actor, artifact_id: str) -> None:
        self.send_json(await self.run(self.wb.artifacts.lineage_graph, actor, int(artifact_id)))


class ContentHandler(BaseHandler):
    @endpoint(
        "artifact.read",
        "The artifact's bytes, checksum verified, under a request of its tenant",
        scope=DATA,
        params=(ID, Param("request_id", "query", "integer")),
    )
    async def get(self, actor: Actor, artifact_id: str) -> None:
        meta, data = await self.run(
            self.wb.artifacts.read, actor, int(artifact_id), _int_arg(self, "request_id")
        )
        try:
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Artifact-SHA256", meta["sha256"])
            self.set_header("Content-Length", str(meta["size"]))
            while chunk := await self.run(data.read, CHUNK):
                self.write(chunk)
                await self.flush()
            self.finish()
        finally:
            data.close()


class PromoteHandler(BaseHandler):
    @endpoint(
        "artifact.promote",
        "Move an artifact to a stage (to staging: starts its evaluation; answers 202)",
        scope=DATA,
        body=PromoteIn,
        params=(ID,),
    )
    async def post(self, actor: Actor, artifact_id: str, body: PromoteIn) -> None:
        out = await self.run(
            self.wb.artifacts.promote,
            actor,
            int(artifact_id),
            body.stage,
            body.tenant,
            body.scope,
        )
        self.send_json(out, 202 if "evaluation" in out else 200)


class ReviewsHandler(BaseHandler):
    @endpoint(
        "artifact.review",
        "Approve or reject an artifact's promotion to production (a manager of its tenant)",
        scope=APPROVE,
        body=ReviewIn,
        params=(ID,),
        ok=201,
    )
    async def post(self, actor: Actor, artifact_id: str, body: ReviewIn) -> None:
        out = await self.run(
            self.wb.artifacts.review, actor, int(artifact_id), body.decision, body.comment
        )
        self.send_json(out, 201)


ROUTES = [
    ("artifacts", ArtifactsHandler),
    ("artifacts/uploads", UploadsHandler),
    ("artifacts/{id}", ArtifactHandler),
    ("artifacts/{id}/lineage", LineageHandler),
    ("artifacts/{id}/content", ContentHandler),
    ("artifacts/{id}/promote", PromoteHandler),
    ("artifacts/{id}/reviews", ReviewsHandler),
]
