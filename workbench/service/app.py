"""The tornado application of the workbench service, mounted by JupyterHub at its prefix."""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado.web import Application, RequestHandler, StaticFileHandler

from workbench import __version__
from workbench.scopes import ACCESS_SERVICE
from workbench.service import openapi, pages
from workbench.service.api import artifacts, audit, exports, grants, jobs, meta, requests, servers
from workbench.service.base import BaseHandler
from workbench.service.context import Workbench

HERE = Path(__file__).parent
API = "api/v1/"
API_ROUTES: list[tuple[str, type[RequestHandler]]] = [
    *requests.ROUTES,
    *grants.ROUTES,
    *jobs.ROUTES,
    *artifacts.ROUTES,
    *servers.ROUTES,
    *audit.ROUTES,
    *exports.ROUTES,
    *meta.ROUTES,
]


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """Finishes the login; must use the same HubOAuth (it holds the PKCE state) as the pages."""

    @property
    def hub_auth(self) -> HubOAuth:
        return self.settings["hub_auth"]


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        self._actor = None
        self.html = not self.request.path.startswith(self.settings["prefix"] + API)
        self.answer_error(404, f"nothing here: {self.request.path}")


def cookie_secret(home: Path) -> bytes:
    """The secret that signs the login cookie, kept under HOME so logins survive a restart."""
    path = home / "service-cookie-secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def make_app(
    wb: Workbench, prefix: str | None = None, hub_auth: HubOAuth | None = None
) -> Application:
    """Routes at `prefix` (default `$JUPYTERHUB_SERVICE_PREFIX`): pages, `api/v1/…`, the OAuth
    callback and static files."""
    prefix = prefix or os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/workbench/")
    hub_auth = hub_auth or HubOAuth(
        api_url=os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
        cache_max_age=60,
        access_scopes={ACCESS_SERVICE},
    )
    handlers: list[Any] = [
        (prefix + API + openapi.tornado_pattern(path, h), h) for path, h in API_ROUTES
    ]
    handlers += [
        (prefix + API + "health", meta.HealthHandler),
        (prefix + API + "openapi.json", meta.OpenAPIHandler),
        (prefix + "oauth_callback", OAuthCallbackHandler),
        (prefix + r"static/(.*)", StaticFileHandler, {"path": str(HERE / "static")}),
    ]
    handlers += [(prefix + openapi.tornado_pattern(p, h), h) for p, h in pages.ROUTES]
    hub_prefix = os.environ.get("JUPYTERHUB_BASE_URL", "/") + "hub/"
    return Application(
        handlers,
        workbench=wb,
        hub_auth=hub_auth,
        prefix=prefix,
        hub_prefix=hub_prefix,
        openapi=openapi.build(API_ROUTES, prefix + API, __version__),
        executor=ThreadPoolExecutor(32, thread_name_prefix="workbench"),
        cookie_secret=cookie_secret(wb.settings.home),
        template_path=str(HERE / "templates"),
        default_handler_class=NotFoundHandler,
        # no xsrf_cookies: HubOAuth checks xsrf itself for cookie-authenticated requests
        # and token-authenticated API calls need none
    )
