"""The workbench service's REST API as the notebook server calls it: with the server's own
JupyterHub token, for the request the server was started for."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

__all__ = ["ServiceClient", "ServiceError"]


class ServiceError(Exception):
    """The service refused (its status and message), or could not be reached (502/504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ServiceClient:
    """Calls `{api_url}{path}` with `Authorization: token …`; JSON in and out."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        http: AsyncHTTPClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/") + "/" if api_url else ""
        self.token = token
        self.timeout = timeout
        self._http = http

    @property
    def http(self) -> AsyncHTTPClient:
        # created on first use, so it belongs to the server's running event loop
        if self._http is None:
            self._http = AsyncHTTPClient()
        return self._http

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> tuple[int, Any]:
        """The service's status and decoded JSON; raises `ServiceError` for 4xx/5xx."""
        if not self.api_url:
            raise ServiceError(
                503,
                "this notebook server was not started for an access request "
                "(WORKBENCH_API_URL is not set)",
            )
        url = self.api_url + path.lstrip("/")
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        request = HTTPRequest(
            url,
            method=method,
            headers={
                "Authorization": f"token {self.token}",
                "Accept": "application/json",
                "Content-Type": "application/json",
            },
            body=json.dumps(body) if body is not None else ("{}" if method == "POST" else None),
            request_timeout=self.timeout,
            connect_timeout=min(10.0, self.timeout),
        )
        try:
            response = await self.http.fetch(request, raise_error=False)
        except Exception as e:  # noqa: BLE001 — refused, reset, DNS, TLS, timeout: all one answer
            raise ServiceError(
                502, f"the workbench service at {self.api_url} did not answer: {e}"
            ) from e
        if response.code == 599:
            raise ServiceError(504, f"the workbench service at {self.api_url} timed out")
        text = response.body.decode("utf-8", "replace") if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if response.code >= 400:
            message = data.get("error") if isinstance(data, dict) else None
            raise ServiceError(
                response.code, str(message or text[:300] or response.reason or "error")
            )
        if data is None and text:
            raise ServiceError(502, f"the workbench service answered {path} with no JSON")
        return response.code, data
