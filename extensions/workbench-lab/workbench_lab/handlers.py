"""Handlers under `/workbench-lab/`: each one is a call to the workbench service for this
server's request. The service's status and `{error}` message pass through unchanged, so a 403
or 409 from the service reaches the browser as itself."""

from __future__ import annotations

import asyncio
import json
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from .service import ServiceClient, ServiceError

if TYPE_CHECKING:
    from .app import WorkbenchLabApp

__all__ = ["routes"]


class LabHandler(APIHandler):
    """Base: the service client, errors written as `{"error": message}`."""

    def initialize(self, lab: WorkbenchLabApp) -> None:
        self.lab = lab

    @property
    def service(self) -> ServiceClient:
        return self.lab.service

    def request_id(self) -> int:
        rid = self.lab.request_id
        if not rid:
            raise web.HTTPError(
                503,
                "this notebook server was not started for an access request "
                "(WORKBENCH_REQUEST_ID is not set)",
            )
        if not rid.isdigit():
            raise web.HTTPError(503, f"WORKBENCH_REQUEST_ID is not a request id: {rid!r}")
        return int(rid)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = None
        if isinstance(exc, web.HTTPError):
            message = exc.log_message % exc.args if exc.log_message and exc.args else None
            message = message or exc.log_message or exc.reason
        message = message or self._reason
        self.set_header("Content-Type", "application/json")
        # `message` too: JupyterLab's ServerConnection.ResponseError reads that key
        self.finish(json.dumps({"error": message, "message": message}))

    async def call(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        try:
            return await self.service.call(method, path, query=query, body=body)
        except ServiceError as e:
            raise web.HTTPError(e.status, "%s", e.message) from None

    async def relay(
        self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None
    ) -> None:
        """Answers with the service's own status and JSON."""
        status, data = await self.call(method, path, query=query, body=body)
        self.set_status(status)
        self.finish(json.dumps(data))

    def json_body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as e:
            raise web.HTTPError(400, f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body must be a JSON object")
        return body

    def whole_number(self, name: str) -> int | None:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return None
        if not value.isdigit():
            raise web.HTTPError(400, f"{name} must be a whole number, not {value!r}")
        return int(value)

    def notebook_file(self, path: Any) -> Path:
        """The notebook at API path `path` under the server's root; never outside it."""
        if not isinstance(path, str) or not path.strip():
            raise web.HTTPError(400, "path is required: the notebook's path in the file browser")
        if not path.endswith(".ipynb"):
            raise web.HTTPError(400, f"{path} is not a notebook (.ipynb)")
        root = Path(self.contents_manager.root_dir).resolve()
        full = (root / path.lstrip("/")).resolve()
        if not full.is_relative_to(root):
            raise web.HTTPError(400, f"{path} is outside the server's folder")
        if not full.is_file():
            raise web.HTTPError(404, f"no notebook at {path}")
        return full


def _id(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 12:
        raise web.HTTPError(400, f"{what} id must be a number, not {value!r}")
    return int(value)


class ContextHandler(LabHandler):
    @web.authenticated
    async def get(self) -> None:
        """The request (`GET requests/{id}`), with its budget figures in one place."""
        rid = self.request_id()
        _, req = await self.call("GET", f"requests/{rid}")
        usage = req.get("usage") or {}
        used = usage.get("gpu_hours", usage.get("gpu_hours_used", 0.0))
        self.finish(
            json.dumps(
                {
                    "request_id": rid,
                    "tenant": req.get("tenant"),
                    "datasets": req.get("datasets", []),
                    "profile": req.get("profile"),
                    "state": req.get("state"),
                    "gpu_hours": req.get("gpu_hours", 0.0),
                    "gpu_hours_used": used,
                    "seconds_left": req.get("seconds_left"),
                    "usage": usage,
                    "request": req,
                }
            )
        )


def inspect_parameters(path: Path) -> list[dict[str, Any]]:
    """The notebook's `parameters` cell as papermill reads it: name, inferred_type_name,
    default (Python source), help. Empty when no cell is tagged `parameters`."""
    import papermill  # slow to import; only this endpoint needs it

    try:
        found = papermill.inspect_notebook(str(path))
    except Exception as e:  # noqa: BLE001 — papermill's own errors name the problem
        raise web.HTTPError(400, f"cannot read the parameters of {path.name}: {e}") from None
    return [
        {
            "name": p["name"],
            "inferred_type_name": p["inferred_type_name"],
            "default": p["default"],
            "help": p["help"],
        }
        for p in found.values()
    ]


def read_snapshot(path: Path) -> dict[str, Any]:
    """The notebook as saved, as a JSON object: the file's own JSON when it is nbformat 4 (so
    the snapshot is byte-for-byte what the researcher saved), else converted to 4."""
    text = path.read_text(encoding="utf-8")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # noqa: BLE001 — unreadable JSON or an unknown nbformat
        raise web.HTTPError(400, f"{path.name} is not a readable notebook: {e}") from None
    raw = json.loads(text)
    return raw if raw.get("nbformat") == 4 else dict(nb)


class ParametersHandler(LabHandler):
    @web.authenticated
    async def get(self) -> None:
        path = self.get_query_argument("path", "")
        params = await asyncio.to_thread(inspect_parameters, self.notebook_file(path))
        self.finish(json.dumps({"path": path, "parameters": params}))


class JobsHandler(LabHandler):
    @web.authenticated
    async def get(self) -> None:
        """My jobs under this server's request, newest first as the service lists them."""
        query = {"request_id": self.request_id(), "state": self.get_query_argument("state", None)}
        await self.relay("GET", "jobs", query=query)

    @web.authenticated
    async def post(self) -> None:
        """Submits the notebook as saved on disk, with the changed parameters."""
        body = self.json_body()
        rid = self.request_id()
        path = body.get("path")
        name = body.get("name")
        parameters = body.get("parameters", {})
        profile = body.get("profile")
        if not isinstance(name, str) or not name.strip():
            raise web.HTTPError(400, "name is required: a name for the job")
        if not isinstance(parameters, dict):
            raise web.HTTPError(400, "parameters must be an object of name → value")
        if profile is not None and not isinstance(profile, str):
            raise web.HTTPError(400, "profile must be a profile name")
        nb = await asyncio.to_thread(read_snapshot, self.notebook_file(path))
        job: dict[str, Any] = {
            "request_id": rid,
            "name": name.strip(),
            "notebook": nb,
            "notebook_name": posixpath.basename(str(path)),
            "parameters": parameters,
        }
        if profile:
            job["profile"] = profile
        await self.relay("POST", "jobs", body=job)


class JobHandler(LabHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        await self.relay("GET", f"jobs/{_id(job_id, 'job')}")


class LogsHandler(LabHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        query = {"tail": self.whole_number("tail")}
        await self.relay("GET", f"jobs/{_id(job_id, 'job')}/logs", query=query)


class MetricsHandler(LabHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        query = {"after": self.whole_number("after")}
        await self.relay("GET", f"jobs/{_id(job_id, 'job')}/metrics", query=query)


class CancelHandler(LabHandler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        await self.relay("POST", f"jobs/{_id(job_id, 'job')}/cancel")


class RerunHandler(LabHandler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        await self.relay("POST", f"jobs/{_id(job_id, 'job')}/rerun")


def result_name(job_id: int, name: str) -> str:
    """`<id>-<name>.ipynb`, the name reduced to characters safe in any file system."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "job"
    return f"{job_id}-{slug}.ipynb"


class OpenHandler(LabHandler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        """Saves the executed notebook (`GET jobs/{id}/output`) under the jobs folder and
        answers `{path}`, for the lab to open."""
        jid = _id(job_id, "job")
        _, job = await self.call("GET", f"jobs/{jid}")
        _, output = await self.call("GET", f"jobs/{jid}/output")
        if not isinstance(output, dict) or "cells" not in output:
            raise web.HTTPError(502, f"the service's output of job {jid} is not a notebook")
        cm = self.contents_manager
        folder = self.lab.jobs_dir.strip("/")
        if folder and not await ensure_async(cm.dir_exists(folder)):
            await ensure_async(cm.save({"type": "directory"}, folder))
        path = posixpath.join(folder, result_name(jid, str(job.get("name") or "job")))
        model = {"type": "notebook", "format": "json", "content": output}
        await ensure_async(cm.save(model, path))
        self.finish(json.dumps({"path": path, "job": job}))


class ArtifactsHandler(LabHandler):
    @web.authenticated
    async def get(self) -> None:
        job_id = self.get_query_argument("job_id", None)
        query = {"job_id": _id(job_id, "job") if job_id else None}
        if job_id is None:
            query["request_id"] = self.request_id()
        await self.relay("GET", "artifacts", query=query)


class PromoteHandler(LabHandler):
    @web.authenticated
    async def post(self, artifact_id: str) -> None:
        stage = self.json_body().get("stage")
        if not isinstance(stage, str) or not stage:
            raise web.HTTPError(400, "stage is required: the stage to promote the artifact to")
        await self.relay(
            "POST", f"artifacts/{_id(artifact_id, 'artifact')}/promote", body={"stage": stage}
        )


def routes(lab: WorkbenchLabApp) -> list[tuple[str, type[LabHandler], dict[str, Any]]]:
    """The handlers, relative to the server's base URL."""
    kw = {"lab": lab}
    one = r"/workbench-lab/jobs/([^/]+)"
    return [
        (r"/workbench-lab/context", ContextHandler, kw),
        (r"/workbench-lab/parameters", ParametersHandler, kw),
        (r"/workbench-lab/jobs", JobsHandler, kw),
        (one, JobHandler, kw),
        (one + "/logs", LogsHandler, kw),
        (one + "/metrics", MetricsHandler, kw),
        (one + "/cancel", CancelHandler, kw),
        (one + "/rerun", RerunHandler, kw),
        (one + "/open", OpenHandler, kw),
        (r"/workbench-lab/artifacts", ArtifactsHandler, kw),
        (r"/workbench-lab/artifacts/([^/]+)/promote", PromoteHandler, kw),
    ]
