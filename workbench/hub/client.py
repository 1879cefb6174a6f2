"""The service's client of the JupyterHub REST API: which named servers run, and stopping one.
One method per endpoint; the service's token (role `workbench-service`) allows exactly this."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from workbench.compute.reaper import Running


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class HubClient:
    def __init__(self, api_url: str | None = None, token: str | None = None) -> None:
        self.http = httpx.Client(
            base_url=(api_url or os.environ["JUPYTERHUB_API_URL"]).rstrip("/") + "/",
            headers={"Authorization": f"token {token or os.environ['JUPYTERHUB_API_TOKEN']}"},
            timeout=30,
            trust_env=False,
        )

    def running_servers(self) -> list[Running]:
        """`GET /users?state=active`: every named server that runs or is starting."""
        r = self.http.get("users", params={"state": "active", "limit": 10_000})
        r.raise_for_status()
        users: list[dict[str, Any]] = r.json()
        out = []
        for user in users:
            for name, srv in (user.get("servers") or {}).items():
                started = _time(srv.get("started"))
                if name and started is not None:
                    out.append(
                        Running(user["name"], name, started, _time(srv.get("last_activity")))
                    )
        return out

    def stop(self, user: str, name: str) -> None:
        """`DELETE /users/{user}/servers/{name}`: stop (202 while stopping, 204 when done)."""
        r = self.http.delete(f"users/{quote(user)}/servers/{quote(name)}")
        if r.status_code not in (202, 204, 404):
            r.raise_for_status()

    def close(self) -> None:
        self.http.close()
