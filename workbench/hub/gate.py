"""The approval gate: a notebook server exists only for one approved, unexpired access request.

Every spawner of the product mixes in `ApprovalGate` (`class S(ApprovalGate, SomeSpawner)`).
Contract (DESIGN, "Notebook servers"): a server for request 7 is the user's named server `r7`,
started from the spawn page or with `POST /hub/api/users/{user}/servers/r7` and the body
`{"request_id": 7}`. The request fixes the compute profile; user options carry nothing else. The
server's environment names the request and the service, and holds no secret of the hub. The
server is stopped when the request's time is up. The rules themselves are pure functions in
`workbench.hub.rules`.

How the hub reads a user's requests: it mints, for that user, a short-lived JupyterHub token
limited to the workbench scopes and calls the service's ordinary REST API with it
(`GET requests?view=mine&state=approved`, `GET requests/{id}`), so the service sees the user
exactly as when they call it themselves, and applies the same visibility rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import jinja2
from jupyterhub import orm
from jupyterhub.objects import Server
from jupyterhub.utils import url_path_join
from tornado.httputil import url_concat
from traitlets import Any as AnyTrait
from traitlets import Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from workbench.compute import SERVER_PREFIX
from workbench.hub.rules import (
    DEFAULT_ENV_DENY,
    REASON_PREFIX,
    ApprovedRequest,
    ComputeProfile,
    Refused,
    check_request,
    duration,
    filter_env,
    request_id_from_options,
    server_name,
)
from workbench.scopes import ACCESS_SERVICE, DATA, REQUEST, SERVICE_NAME

if TYPE_CHECKING:
    from jupyterhub.spawner import Spawner as _SpawnerBase
else:
    _SpawnerBase = LoggingConfigurable

# the rules' names most used with the gate are re-exported
__all__ = [
    "REASON_PREFIX",
    "SERVER_PREFIX",
    "ApprovalGate",
    "ApprovedRequest",
    "Refused",
    "WorkbenchAPI",
    "WorkbenchAPIError",
]

TEMPLATES = Path(__file__).parent / "templates"
_jinja = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


# -- the service, as the hub calls it ---------------------------------------------------------


class WorkbenchAPIError(Exception):
    """The service answered with an error (status 0: it did not answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WorkbenchAPI:
    """The endpoints of the workbench service's REST API that the gate reads, called with a
    user's token. `transport` lets tests answer for the service."""

    def __init__(
        self, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.transport = transport

    async def approved_requests(self, token: str) -> list[dict[str, Any]]:
        """`GET requests?view=mine&state=approved`."""
        data = await self._get(token, "requests", {"view": "mine", "state": "approved"})
        return list(data["requests"])

    async def request(self, token: str, request_id: int) -> dict[str, Any]:
        """`GET requests/{id}`."""
        return dict(await self._get(token, f"requests/{request_id}", None))

    async def record_decision(self, token: str, decision: dict[str, Any]) -> None:
        """`POST servers/decisions`: put an admission decision on record."""
        await self._call(token, "POST", "servers/decisions", None, decision)

    async def _get(self, token: str, path: str, params: dict[str, str] | None) -> Any:
        return await self._call(token, "GET", path, params, None)

    async def _call(
        self,
        token: str,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any] | None,
    ) -> Any:
        async with httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout,
            trust_env=False,
            transport=self.transport,
        ) as client:
            try:
                r = await client.request(
                    method,
                    path,
                    params=params,
                    json=body,
                    headers={"Authorization": f"token {token}"},
                )
            except httpx.HTTPError as e:
                raise WorkbenchAPIError(0, f"{type(e).__name__}: {e}") from e
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400 or not isinstance(data, dict):
            message = data.get("error") if isinstance(data, dict) else None
            raise WorkbenchAPIError(r.status_code or 502, str(message or r.text[:200]))
        return data


# -- the mixin ---------------------------------------------------------------------------------


async def _options_form(spawner: ApprovalGate) -> str:
    return await spawner.render_options_form()


def _options_from_form(
    form_data: Mapping[str, list[str]], spawner: ApprovalGate | None = None
) -> dict[str, Any]:
    form_url = spawner.form_url if spawner is not None else ""
    return {"request_id": request_id_from_options(form_data, form_url=form_url)}


def _apply_user_options(spawner: ApprovalGate, options: Mapping[str, Any]) -> None:
    """Nothing: the gate reads (and checks) the user options when the server starts."""


class ApprovalGate(_SpawnerBase):
    """Mixin for every spawner of the product: admit a server only under one approved,
    unexpired access request of its user, with that request's compute profile.

    Put it first among the bases. Subclasses override `prepare` (call super) to turn the
    admitted request's profile into their resources before their own `start` runs; the gate
    handles the options form, user options, admission, environment, state and the stop at the
    request's end.
    """

    workbench_api_url = Unicode(
        "",
        help="""The workbench service's REST API as the hub reaches it
        (`http://host:port/services/workbench/api/v1/`). Default: the URL of the hub-managed
        service named `workbench`, plus `api/v1/`.""",
    ).tag(config=True)

    server_api_url = Unicode(
        "",
        help="""The workbench service's REST API as notebook servers reach it; given to them as
        WORKBENCH_API_URL. Default: `workbench_api_url`.""",
    ).tag(config=True)

    request_form_url = Unicode(
        "",
        help="""Where people file access requests, linked from every refusal.
        Default: the service's pages, `{base_url}services/workbench/`.""",
    ).tag(config=True)

    min_seconds_left = Float(
        60.0,
        help="""A server is not started for a request with less time than this left (seconds).""",
    ).tag(config=True)

    token_seconds = Integer(
        300,
        help="""Life of the token the hub mints for a user to read their access requests
        (seconds); it is reused until a minute before it expires.""",
    ).tag(config=True)

    api_timeout = Float(
        10.0, help="""Seconds to wait for the workbench service when reading a request."""
    ).tag(config=True)

    env_deny = List(
        Unicode(),
        DEFAULT_ENV_DENY,
        help="""Regular expressions of environment variable names that never reach a notebook
        server, whatever `env_keep` or `environment` say (JUPYTERHUB_API_TOKEN excepted).""",
    ).tag(config=True)

    workbench_request = AnyTrait(
        None, allow_none=True, help="The ApprovedRequest the running server was admitted under."
    )

    # user name → (token, monotonic expiry): one gate token per user for the whole hub
    _gate_tokens: ClassVar[dict[str, tuple[str, float]]] = {}
    _expiry: asyncio.TimerHandle | None = None

    @default("options_form")
    def _default_options_form(self) -> Any:
        return _options_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return _options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return _apply_user_options

    @default("server_token_scopes")
    def _default_server_token_scopes(self) -> list[str]:
        # the hub's `server` role, plus what workbench.data needs to call the service as the user
        return ["users:activity!user", "access:servers!server", ACCESS_SERVICE, DATA]

    @default("default_url")
    def _default_default_url(self) -> str:
        return "/lab"

    # -- addresses -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """JupyterHub's base URL (`/`), from the hub's (`/hub/`)."""
        return str(self.hub.base_url)[: -len("hub/")]

    @property
    def form_url(self) -> str:
        return self.request_form_url or f"{self.base_url}services/{SERVICE_NAME}/"

    def api_url(self) -> str:
        if self.workbench_api_url:
            return self.workbench_api_url.rstrip("/") + "/"
        found = orm.Service.find(self.user.db, SERVICE_NAME)
        if found is None or found.server is None:
            raise Refused(
                f"the hub has no service named {SERVICE_NAME!r} with a URL; set "
                "ApprovalGate.workbench_api_url",
                reason="no-service",
                status=503,
            )
        return str(Server(orm_server=found.server).url) + "api/v1/"

    def workbench_api(self) -> WorkbenchAPI:
        return WorkbenchAPI(self.api_url(), self.api_timeout)

    # -- reading the user's requests ---------------------------------------------------------

    def _user_token(self, fresh: bool = False) -> str:
        name = self.user.name
        cached = self._gate_tokens.get(name)
        if cached and not fresh and cached[1] - time.monotonic() > 60:
            return cached[0]
        try:
            token = self.user.new_api_token(
                scopes=[ACCESS_SERVICE, REQUEST],
                expires_in=self.token_seconds,
                note="workbench: the hub reads your access requests to start servers",
            )
        except ValueError as e:
            raise Refused(
                f"{name} may not start notebook servers: that needs the researcher role "
                f"({REQUEST}); ask an administrator",
                reason="no-role",
            ) from e
        self._gate_tokens[name] = (token, time.monotonic() + self.token_seconds)
        return str(token)

    async def _ask(self, what: str, request_id: int | None = None) -> Any:
        """GET the user's approved requests (`what="list"`) or one request, as the user."""
        api = self.workbench_api()
        for fresh in (False, True):  # a gate token the user deleted is made again, once
            token = self._user_token(fresh)
            try:
                if what == "list":
                    return await api.approved_requests(token)
                assert request_id is not None
                return await api.request(token, request_id)
            except WorkbenchAPIError as e:
                if e.status == 401 and not fresh:
                    continue
                raise self._refusal(e, request_id) from e
        raise AssertionError("unreachable")

    def _refusal(self, e: WorkbenchAPIError, request_id: int | None) -> Refused:
        if e.status == 404 and request_id is not None:
            return Refused(
                f"you have no access request {request_id}; file one at {self.form_url}",
                reason="no-request",
                status=404,
                link=self.form_url,
            )
        if 400 <= e.status < 500 and e.status != 401:
            return Refused(e.message, reason="service-refused", status=e.status)
        return Refused(
            f"the workbench service could not be asked about your access requests "
            f"({e.status or 'no answer'}: {e.message}); try again shortly",
            reason="service-unavailable",
            status=503,
        )

    # -- admission -------------------------------------------------------------------------------

    async def admit(self) -> ApprovedRequest:
        """The request this server may start under, or Refused."""
        request_id = request_id_from_options(self.user_options, form_url=self.form_url)
        if self.name != server_name(request_id):  # before asking: a server keeps its request
            raise Refused(
                f"server {self.name or 'default'!r} cannot run request {request_id}: the "
                f"server for request {request_id} is the named server "
                f"{server_name(request_id)!r}",
                reason="server-name",
                status=400,
            )
        data = await self._ask("one", request_id)
        return check_request(
            data,
            user=self.user.name,
            server=self.name,
            min_seconds_left=self.min_seconds_left,
            form_url=self.form_url,
        )

    async def prepare(self, request: ApprovedRequest) -> None:
        """Apply the admitted request's profile before the spawner starts. Override (call
        super) to map it to the spawner's own resources."""
        self.cpu_limit = request.profile.cpu
        self.mem_limit = request.profile.memory

    async def _record(
        self, outcome: str, request_id: int | None, reason: str = "", message: str = ""
    ) -> None:
        """Put the admission decision on record in the workbench audit log. A start that
        cannot be recorded does not happen (fail closed); a refusal that cannot is logged."""
        decision = {
            "server": self.name,
            "request_id": request_id,
            "outcome": outcome,
            "reason": reason,
            "message": message,
        }
        try:
            await self.workbench_api().record_decision(self._user_token(), decision)
        except (WorkbenchAPIError, Refused) as e:
            if outcome == "ok":
                raise Refused(
                    "the workbench could not put this server's start on record, so it was not "
                    f"started; try again shortly ({e.message})",
                    reason="not-recorded",
                    status=503,
                ) from e
            self.log.error("workbench: could not record a refusal: %s", e)

    def _requested_id(self) -> int | None:
        try:
            return request_id_from_options(self.user_options, form_url=self.form_url)
        except Refused:
            return None

    async def start(self) -> Any:
        try:
            request = await self.admit()
            await self._record("ok", request.id)
        except Refused as e:
            if e.reason != REASON_PREFIX + "not-recorded":
                await self._record("refused", self._requested_id(), e.reason, e.message)
            self.log.warning(
                "workbench: refused %s's server %r (reason=%s): %s",
                self.user.name,
                self.name,
                e.reason,
                e.message,
            )
            raise
        self.workbench_request = request
        await self.prepare(request)
        self.log.info(
            "workbench: starting %s's server %r for request %s (tenant %s, profile %s, %s left)",
            self.user.name,
            self.name,
            request.id,
            request.tenant,
            request.profile.name,
            duration(request.seconds_left),
        )
        url = await super().start()
        self._arm_expiry()
        return url

    async def stop(self, now: bool = False) -> Any:
        self._cancel_expiry()
        return await super().stop(now=now)

    async def rename(self, old_name: str, new_name: str) -> None:
        raise Refused(
            "a notebook server is named after its access request and cannot be renamed",
            reason="rename",
            status=400,
        )

    # -- the request's end -----------------------------------------------------------------

    def _arm_expiry(self) -> None:
        self._cancel_expiry()
        request = self.workbench_request
        if request is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # loaded outside the hub's loop: the next start arms it
            return
        self._expiry = loop.call_later(
            max(0.0, request.seconds_left), lambda: asyncio.ensure_future(self._expire())
        )

    def _cancel_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def _expire(self) -> None:
        """Stop the server at its request's end; the hub's poll then drops its route."""
        self._expiry = None
        request = self.workbench_request
        self.log.warning(
            "workbench: request %s ended: stopping %s's server %r",
            request.id if request else "?",
            self.user.name,
            self.name,
        )
        try:
            await self.stop()
            await self.poll_and_notify()
        except Exception:
            self.log.exception("workbench: stopping %s's server %r", self.user.name, self.name)

    # -- state and environment ---------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = dict(super().get_state())
        if self.workbench_request is not None:
            state["workbench_request"] = self.workbench_request.as_state()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        saved = state.get("workbench_request")
        if saved:
            self.workbench_request = ApprovedRequest.from_state(saved)
            self._arm_expiry()

    def clear_state(self) -> None:
        super().clear_state()
        self.workbench_request = None
        self._cancel_expiry()

    def get_env(self) -> dict[str, str]:
        env = filter_env(super().get_env(), list(self.env_deny))
        request = self.workbench_request
        if request is not None:
            env["WORKBENCH_REQUEST_ID"] = str(request.id)
            env["WORKBENCH_API_URL"] = self.server_api_url or self.api_url()
            env["WORKBENCH_RESOURCE"] = f"server:{self.user.name}/{self.name}"
        return env

    # -- the spawn page ----------------------------------------------------------------------

    async def render_options_form(self) -> str:
        """The spawn page's list of the user's approved requests, one Start button each."""
        error = ""
        try:
            found = await self._ask("list")
        except Refused as e:
            found, error = [], e.message
        xsrf = getattr(self.handler, "xsrf_token", b"")
        rows = []
        for item in found:
            if item.get("requester") != self.user.name or item.get("state") != "approved":
                continue
            left = float(item.get("seconds_left") or 0)
            if left <= 0:
                continue
            name = server_name(int(item["id"]))
            spawner = self.user.spawners.get(name)
            try:
                profile = ComputeProfile.from_api(str(item["profile"]), item["profile_spec"])
                summary = f"{profile.name} ({profile.summary()})"
            except (KeyError, TypeError, ValueError):
                summary = str(item.get("profile"))
            rows.append(
                {
                    "id": item["id"],
                    "tenant": item.get("tenant"),
                    "datasets": ", ".join(item.get("datasets", [])),
                    "profile": summary,
                    "left": duration(left),
                    "budget": _budget(item),
                    "startable": left >= self.min_seconds_left,
                    "running_url": (
                        self.user.server_url(name) if spawner is not None and spawner.active else ""
                    ),
                    "action": url_concat(
                        url_path_join(self.hub.base_url, "spawn", self.user.escaped_name, name),
                        {"_xsrf": xsrf.decode() if isinstance(xsrf, bytes) else str(xsrf)},
                    ),
                }
            )
        return _jinja.get_template("options_form.html").render(
            rows=rows, error=error, form_url=self.form_url, min_left=duration(self.min_seconds_left)
        )


def _budget(item: Mapping[str, Any]) -> str:
    """What is left of a request's GPU-hour budget, for the spawn page."""
    total = float(item.get("gpu_hours") or 0)
    if total <= 0:
        return "no GPU"
    used = float((item.get("usage") or {}).get("gpu_hours_used") or 0)
    return f"{max(0.0, total - used):.2f} of {total:g} GPU-hours"
