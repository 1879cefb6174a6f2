"""A stand-in for the workbench service's requests/jobs/artifacts API, for the handler tests.

It runs in a thread with its own event loop, keeps jobs in memory, records every call, and
can be told to refuse a call with a status and message (`fail`)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

TOKEN = "server-token"
PREFIX = "/services/workbench/api/v1/"


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class FakeService:
    request: dict[str, Any] = field(default_factory=dict)
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    failures: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    port: int = 0

    def reset(self) -> None:
        self.request = {
            "id": 7,
            "requester": "alice",
            "tenant": "acme",
            "datasets": ["calls"],
            "profile": "gpu-1",
            "gpu_hours": 4.0,
            "state": "approved",
            "seconds_left": 3600.0,
            "usage": {"gpu_hours_used": 1.5, "cpu_hours_used": 3.0},
        }
        self.jobs.clear()
        self.outputs.clear()
        self.artifacts.clear()
        self.calls.clear()
        self.failures.clear()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}"

    def fail(self, method: str, path: str, status: int, message: str) -> None:
        """Answer `method path` with `status` and `{"error": message}` from now on."""
        self.failures[(method, path)] = (status, message)

    def last(self, method: str, path: str) -> Call:
        return [c for c in self.calls if c.method == method and c.path == path][-1]

    def add_job(self, **over: Any) -> dict[str, Any]:
        jid = max(self.jobs, default=0) + 1
        job = {
            "id": jid,
            "request_id": 7,
            "user": "alice",
            "tenant": "acme",
            "name": "train",
            "state": "queued",
            "profile": "gpu-1",
            "notebook_name": "train.ipynb",
            "notebook_sha256": "0" * 64,
            "parameters": {},
            "created_at": "2024-05-01T10:00:00Z",
            "started_at": None,
            "ended_at": None,
            "elapsed_seconds": None,
            "gpu_hours": 0.0,
            "cpu_hours": 0.0,
            "end_reason": None,
            "error": None,
            "rerun_of": None,
        }
        job.update(over)
        self.jobs[jid] = job
        return job

    # -- serving ---------------------------------------------------------------------------

    def answer(self, call: Call) -> tuple[int, Any]:
        if call.authorization != f"token {TOKEN}":
            return 403, {"error": "invalid token"}
        if (call.method, call.path) in self.failures:
            status, message = self.failures[(call.method, call.path)]
            return status, {"error": message}
        parts = call.path.split("/")
        match call.method, parts:
            case "GET", ["requests", rid]:
                if int(rid) != self.request["id"]:
                    return 404, {"error": f"no request {rid}"}
                return 200, self.request
            case "POST", ["jobs"]:
                body = call.body
                job = self.add_job(
                    name=body["name"],
                    notebook_name=body["notebook_name"],
                    parameters=body["parameters"],
                    profile=body.get("profile", "gpu-1"),
                )
                return 201, job
            case "GET", ["jobs"]:
                rid = int(call.query.get("request_id", "0"))
                jobs = [j for j in self.jobs.values() if j["request_id"] == rid]
                return 200, {"jobs": sorted(jobs, key=lambda j: -j["id"])}
            case "GET", ["jobs", jid]:
                return self._job(jid)
            case "GET", ["jobs", jid, "logs"]:
                status, job = self._job(jid)
                return (status, job) if status != 200 else (200, {"logs": "epoch 1\nepoch 2\n"})
            case "GET", ["jobs", jid, "metrics"]:
                after = int(call.query.get("after", "0"))
                metrics = [
                    {"id": i, "name": "loss", "step": i, "value": 1 / i, "at": None}
                    for i in range(1, 4)
                ]
                return 200, {"metrics": [m for m in metrics if m["id"] > after]}
            case "POST", ["jobs", jid, "cancel"]:
                status, job = self._job(jid)
                if status == 200:
                    job["state"] = "cancelled"
                return status, job
            case "POST", ["jobs", jid, "rerun"]:
                status, job = self._job(jid)
                if status != 200:
                    return status, job
                copied = {k: v for k, v in job.items() if k not in ("id", "state", "rerun_of")}
                return 201, self.add_job(**copied, rerun_of=job["id"])
            case "GET", ["jobs", jid, "output"]:
                if int(jid) not in self.outputs:
                    return 404, {"error": f"job {jid} has not ended; no output yet"}
                return 200, self.outputs[int(jid)]
            case "GET", ["artifacts"]:
                jid = call.query.get("job_id")
                found = [a for a in self.artifacts if jid is None or str(a["job_id"]) == jid]
                return 200, {"artifacts": found}
            case "POST", ["artifacts", aid, "promote"]:
                for a in self.artifacts:
                    if str(a["id"]) == aid:
                        a["stage"] = call.body["stage"]
                        return 200, a
                return 404, {"error": f"no artifact {aid}"}
        return 404, {"error": f"the fake has no {call.method} {call.path}"}

    def _job(self, jid: str) -> tuple[int, Any]:
        job = self.jobs.get(int(jid))
        return (200, job) if job else (404, {"error": f"no job {jid}"})

    def app(self) -> Application:
        fake = self

        class Handler(RequestHandler):
            def check_xsrf_cookie(self) -> None:
                pass

            def handle(self, path: str) -> None:
                body = json.loads(self.request.body) if self.request.body else None
                call = Call(
                    self.request.method or "",
                    path,
                    dict(parse_qsl(self.request.query)),
                    body,
                    self.request.headers.get("Authorization"),
                )
                fake.calls.append(call)
                status, data = fake.answer(call)
                self.set_status(status)
                self.set_header("Content-Type", "application/json")
                self.finish(json.dumps(data))

            get = post = handle

        return Application([(PREFIX + "(.*)", Handler)])

    def start(self) -> None:
        self.reset()
        ready = threading.Event()

        async def serve() -> None:
            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            server = HTTPServer(self.app(), max_body_size=200 * 1024 * 1024)
            server.add_sockets(sockets)
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            ready.set()
            await self._stop.wait()
            server.stop()

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
