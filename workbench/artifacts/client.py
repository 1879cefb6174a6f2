"""Artifacts from notebooks and jobs: `workbench.artifacts.save(model, "name")`, `list()`,
`load(id)`.

Client side: talks to the service over HTTP and imports no server module. `save` asks the
service where to put the object (`POST artifacts/uploads`: the request's tenant's artifacts
prefix and credentials), uploads it there under its SHA-256, then registers it
(`POST artifacts`); the service verifies the checksum itself and derives the lineage from who
is calling, so only `parents` is taken from here.
"""

from __future__ import annotations

import builtins
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench._http import api_url, call, env_token, make_client, s3_client

__all__ = ["ArtifactError", "get", "list", "load", "save"]

CHUNK = 1024 * 1024


class ArtifactError(Exception):
    """The service refused, or the store failed; the message says why."""

    def _render_traceback_(self) -> builtins.list[str]:
        return [f"ArtifactError: {self}"]


def _request_id() -> int | None:
    rid = os.environ.get("WORKBENCH_REQUEST_ID")
    return int(rid) if rid else None


def _api(method: str, path: str, **kw: Any) -> Any:
    http = make_client(api_url(ArtifactError), env_token(ArtifactError), timeout=300)
    with http:
        return call(http, ArtifactError, method, path, **kw)


def _digest(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def save(
    path_or_model: Any,
    name: str,
    *,
    model_type: str | None = None,
    parents: Iterable[int | dict[str, Any]] = (),
    metrics: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Store a file (a path) or a torch model/object (saved with `torch.save`) as artifact
    `name` of this server's or job's request; returns the registered artifact with its lineage.
    `parents`: artifacts (ids or dicts from `list()`) it was built on."""
    if isinstance(path_or_model, str | os.PathLike):
        return _save_file(Path(path_or_model), name, model_type, parents, metrics)
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(path_or_model, path)
        return _save_file(path, name, model_type or "torch", parents, metrics)


def _save_file(
    path: Path,
    name: str,
    model_type: str | None,
    parents: Iterable[int | dict[str, Any]],
    metrics: dict[str, float] | None,
) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"no file {path}")
    sha256, size = _digest(path)
    rid = _request_id()
    upload = _api("POST", "artifacts/uploads", json={"request_id": rid})
    loc = upload["location"]
    try:
        s3_client(loc, upload["credentials"]).upload_file(
            str(path), loc["bucket"], loc["prefix"] + sha256
        )
    except Exception as e:
        raise ArtifactError(f"could not upload {path.name} to the artifact store: {e}") from e
    body = {
        "name": name,
        "sha256": sha256,
        "size": size,
        "model_type": model_type or "model",
        "request_id": upload["request_id"],
        "parents": [int(p["id"]) if isinstance(p, dict) else int(p) for p in parents],
        "metrics": dict(metrics or {}),
    }
    artifact: dict[str, Any] = _api("POST", "artifacts", json=body)
    return artifact


def list(**filters: Any) -> builtins.list[dict[str, Any]]:  # noqa: A001 - the documented name
    """Artifacts you may see, newest first; filters: job_id, request_id, tenant, stage."""
    params = {k: v for k, v in filters.items() if v is not None}
    found: builtins.list[dict[str, Any]] = _api("GET", "artifacts", params=params)["artifacts"]
    return found


def get(artifact_id: int) -> dict[str, Any]:
    """One artifact with its lineage, evaluation reports and reviews."""
    found: dict[str, Any] = _api("GET", f"artifacts/{int(artifact_id)}")
    return found


def load(artifact_id: int, path: str | os.PathLike[str] | None = None) -> Path:
    """Download an artifact (the service verifies its checksum first, and so does this) to
    `path` (default: a temporary file); returns the path. It becomes a parent of whatever this
    server or job saves next."""
    import httpx

    dest = Path(path) if path else Path(tempfile.mkdtemp()) / f"artifact-{int(artifact_id)}"
    params = {"request_id": _request_id()} if _request_id() else {}
    http = make_client(api_url(ArtifactError), env_token(ArtifactError), timeout=300)
    h = hashlib.sha256()
    try:
        with http, http.stream("GET", f"artifacts/{int(artifact_id)}/content", params=params) as r:
            if r.status_code >= 400:
                r.read()
                try:
                    message = r.json().get("error", r.text[:300])
                except ValueError:
                    message = r.text[:300]
                raise ArtifactError(f"{message} (HTTP {r.status_code})")
            expected = r.headers.get("X-Artifact-SHA256", "")
            with dest.open("wb") as f:
                for chunk in r.iter_bytes(CHUNK):
                    h.update(chunk)
                    f.write(chunk)
    except httpx.HTTPError as e:
        raise ArtifactError(f"the workbench service did not answer: {e}") from e
    if h.hexdigest() != expected:
        dest.unlink(missing_ok=True)
        raise ArtifactError(f"artifact {artifact_id} arrived with the wrong checksum")
    return dest
