"""Helpers for the notebook-server tests: approved requests, servers, code run in a
server's kernel (the Jupyter REST API and kernel websocket, as JupyterLab uses them)."""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from tests.fixtures.hub import Stack

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh event loop in a thread of its own. (Once
    Playwright's sync API has started, in tests/browser, the test thread counts as running a
    loop, and neither pytest-asyncio nor asyncio.run work there.)"""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


def in_thread(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test, run with `run_async` (fixtures and parameters as usual)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        run_async(test(*args, **kwargs))

    return run


def file_request(
    stack: Stack, user: str, tenant: str = "acme", *, profile: str = "cpu-small", hours: float = 1
) -> int:
    body = {
        "tenant": tenant,
        "datasets": ["calls"],
        "purpose": "notebook server tests",
        "profile": profile,
        "hours": hours,
    }
    r = stack.api(user).post("requests", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def approved(stack: Stack, user: str, tenant: str = "acme", **kw: Any) -> int:
    """A request of `user`, approved by maria; its id."""
    rid = file_request(stack, user, tenant, **kw)
    r = stack.api("maria").post(f"requests/{rid}/approve", json={"comment": "ok"})
    assert r.json()["state"] == "approved", r.text
    return rid


def hub_as(stack: Stack, user: str) -> httpx.Client:
    """A client for the hub's REST API with `user`'s token."""
    return stack.client(headers={"Authorization": f"token {stack.token(user)}"})


def wait_ready(stack: Stack, user: str, server: str, timeout: float = 60) -> dict[str, Any]:
    """The server's model (with its state, read as admin) once it is ready."""
    admin = hub_as(stack, "admin")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = admin.get(f"hub/api/users/{user}/servers/{server}").json()
        if model.get("ready"):
            return dict(model)
        if not model.get("pending") and model.get("stopped", False):
            break
        time.sleep(0.25)
    raise AssertionError(f"{user}/{server} not ready: {model}\n{stack.hub_log()[-4000:]}")


def proc_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def proc_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid for {pid}")


def run_in_kernel(stack: Stack, user: str, server: str, code: str, timeout: float = 60) -> str:
    """Start a kernel in `user`'s `server`, run `code`, return its stdout (AssertionError with
    the traceback when the code raised)."""
    token = stack.token(user)
    base = f"{stack.url}user/{user}/{server}/api/"
    client = stack.client(headers={"Authorization": f"token {token}"})
    r = client.post(f"{base}kernels", json={"name": "python3"})
    assert r.status_code == 201, r.text
    kernel = r.json()["id"]
    try:
        url = f"ws://127.0.0.1:{stack.port}/user/{user}/{server}/api/kernels/{kernel}/channels"
        return run_async(_execute(url, token, code, timeout))
    finally:
        client.delete(f"{base}kernels/{kernel}")


async def _execute(url: str, token: str, code: str, timeout: float) -> str:
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"})
    ws = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {}}
    content |= {"allow_stdin": False, "stop_on_error": True}
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    await ws.write_message(json.dumps({**message, "channel": "shell", "buffers": []}))
    out: list[str] = []
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.read_message(), deadline - time.monotonic())
            if raw is None:
                raise AssertionError("the kernel's websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                errors.append("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        ws.close()
    if errors:
        raise AssertionError("the code raised in the kernel:\n" + "\n".join(errors))
    return "".join(out)
