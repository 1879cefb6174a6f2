"""The export airlock's notebook client: ask to take a file out, see the answer, fetch it.

    import workbench.airlock
    export = workbench.airlock.request_export("figure.png", "the churn plot for the report")
    # ...a manager of the tenant approves it on the workbench pages, then:
    workbench.airlock.download(export["id"], "released/figure.png")

Client side only (workbench._http): the request comes from the server's environment
(`WORKBENCH_REQUEST_ID`), the service's address and token too. The service and its domain
live in `workbench.airlock.service`.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from workbench._http import api_url, call, env_token, make_client

__all__ = ["AirlockError", "download", "exports", "request_export"]


class AirlockError(Exception):
    """The service refused or could not be reached; the message says why."""


def _client(url: str | None, token: str | None) -> Any:
    return make_client(url or api_url(AirlockError), token or env_token(AirlockError))


def request_export(
    path: str | os.PathLike[str],
    reason: str,
    *,
    request_id: int | None = None,
    url: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """Ask to take the file at `path` out; returns the pending export (`id`, `state`, …)."""
    file = Path(path)
    try:
        content = file.read_bytes()
    except OSError as e:
        raise AirlockError(f"cannot read {file}: {e.strerror}") from e
    rid = request_id or os.environ.get("WORKBENCH_REQUEST_ID")
    if not rid:
        raise AirlockError("no request: pass request_id= (a notebook server sets it)")
    body = {
        "request_id": int(rid),
        "filename": file.name,
        "content": base64.b64encode(content).decode(),
        "reason": reason,
    }
    with _client(url, token) as http:
        result: dict[str, Any] = call(http, AirlockError, "POST", "exports", json=body)
    return result


def exports(*, url: str | None = None, token: str | None = None) -> list[dict[str, Any]]:
    """Your exports, newest first."""
    with _client(url, token) as http:
        data = call(http, AirlockError, "GET", "exports", params={"view": "mine"})
    return list(data["exports"])


def download(
    export_id: int,
    dest: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    token: str | None = None,
) -> bytes:
    """The approved file's bytes (also written to `dest` when given)."""
    with _client(url, token) as http:
        try:
            r = http.get(f"exports/{int(export_id)}/download")
        except Exception as e:
            raise AirlockError(f"the workbench service did not answer: {e}") from e
    if r.status_code >= 400:
        try:
            message = r.json().get("error", r.text[:300])
        except ValueError:
            message = r.text[:300]
        raise AirlockError(f"{message} (HTTP {r.status_code})")
    if dest is not None:
        Path(dest).write_bytes(r.content)
    return r.content
