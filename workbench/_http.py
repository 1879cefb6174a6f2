"""What the notebook clients (`workbench.data`, `workbench.jobs`, `workbench.artifacts`) share:
the service's address and token from the environment, and one way to call it.

Client side only: imports no server module.
"""

from __future__ import annotations

import os
from typing import Any

import httpx


def api_url(error: type[Exception]) -> str:
    """The service's API base: `$WORKBENCH_API_URL` (set in servers and jobs), else derived
    from the hub's address (`$WORKBENCH_URL`, `$JUPYTERHUB_PUBLIC_HUB_URL`)."""
    url = os.environ.get("WORKBENCH_API_URL")
    if url:
        return url.rstrip("/") + "/"
    hub = os.environ.get("WORKBENCH_URL") or os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL", "")
    if not hub:
        raise error("no workbench address: set WORKBENCH_API_URL (the notebook server does)")
    base = hub.rstrip("/").removesuffix("/hub")
    return f"{base}/services/workbench/api/v1/"


def env_token(error: type[Exception]) -> str:
    """`$WORKBENCH_TOKEN` (a job's own token, or one given to the CLI), else the server's
    `$JUPYTERHUB_API_TOKEN`."""
    token = os.environ.get("WORKBENCH_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise error("no token in the environment (WORKBENCH_TOKEN or JUPYTERHUB_API_TOKEN)")
    return token


def make_client(url: str, token: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"token {token}"},
        timeout=timeout,
        trust_env=False,
    )


def call(http: httpx.Client, error: type[Exception], method: str, path: str, **kw: Any) -> Any:
    """The JSON answer; `error` with the service's message on a 4xx or 5xx."""
    try:
        r = http.request(method, path, **kw)
    except httpx.HTTPError as e:
        raise error(f"the workbench service did not answer: {e}") from e
    try:
        data = r.json()
    except ValueError:
        data = {"error": r.text[:300]}
    if r.status_code >= 400:
        message = data.get("error", data) if isinstance(data, dict) else data
        raise error(f"{message} (HTTP {r.status_code})")
    return data


def s3_client(location: dict[str, Any], credentials: dict[str, Any]) -> Any:
    """A boto3 S3 client for a grant's `location` and `credentials`. A session of its own:
    boto3's default session is not safe to share between threads."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=location.get("endpoint_url"),
        region_name=location.get("region") or "us-east-1",
        aws_access_key_id=credentials["access_key_id"],
        aws_secret_access_key=credentials["secret_access_key"],
        config=Config(
            signature_version="s3v4",
            retries={"max_attempts": 2},
            s3={"addressing_style": location.get("addressing_style") or "auto"},
        ),
    )
