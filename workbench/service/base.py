"""The base handler: who is calling (HubOAuth: token header or login cookie), the `endpoint`
decorator that checks scope, parses the body and turns every refusal into a 4xx that is
also on record in the audit log."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated, UserNotAllowed
from pydantic import BaseModel
from tornado.ioloop import IOLoop
from tornado.web import HTTPError, RequestHandler

from workbench.actor import Actor
from workbench.audit import AuditEvent, AuditUnavailable
from workbench.errors import (
    Forbidden,
    Invalid,
    NotAuthenticated,
    TooLarge,
    Unavailable,
    WorkbenchError,
)
from workbench.scopes import ADMIN, APPROVE, AUDIT, REQUEST
from workbench.service.context import Workbench
from workbench.service.errors import to_domain

log = logging.getLogger(__name__)
REFUSAL_RECORD_SECONDS = 2.0

T = TypeVar("T")
Body = TypeVar("Body", bound="FormBody")
Handler = Callable[..., Awaitable[None]]


class FormBody(BaseModel):
    """A body that may also come from an HTML form."""

    # a body larger than the service's max_body_bytes (a notebook) says how large it may be
    max_bytes: ClassVar[int | None] = None

    @classmethod
    def list_fields(cls) -> set[str]:
        return {
            name
            for name, f in cls.model_fields.items()
            if getattr(f.annotation, "__origin__", None) is list
        }


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    type: str = "string"  # JSON schema type
    description: str = ""
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class Meta:
    """What the OpenAPI document says of one endpoint."""

    action: str
    summary: str
    scope: str | None
    body: type[FormBody] | None = None
    params: tuple[Param, ...] = ()
    ok: int = 200
    errors: tuple[int, ...] = field(default=(400, 401, 403, 404, 409))


class BaseHandler(HubOAuthenticated, RequestHandler):
    """Authenticates once per request; handlers take the `Actor` from `endpoint`."""

    html = False  # pages render errors as HTML and send the unauthenticated to log in

    @property
    def hub_auth(self) -> HubOAuth:
        """The application's HubOAuth (tests swap in a fake hub through the settings)."""
        return self.settings["hub_auth"]

    @property
    def wb(self) -> Workbench:
        return self.settings["workbench"]

    async def prepare(self) -> None:
        self._actor: Actor | None = None
        self._auth_problem = "log in, or send a JupyterHub token as 'Authorization: token …'"
        job_token = self._job_token()
        if job_token is not None:  # a job's own token: it acts only for that job
            self._actor = await self.run(self.wb.jobs.identify, job_token, self.request.remote_ip)
            if self._actor is None:
                self._auth_problem = "this job token is not valid (the job has ended)"
            return
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                self._auth_problem = (
                    f"your token does not grant access to the workbench service "
                    f"({model.get('name')} lacks the access:services scope for it)"
                )
                model = None
        self.current_user = model
        if model:
            self._actor = Actor(
                name=model["name"],
                scopes=frozenset(model.get("scopes", [])),
                client=self.request.remote_ip,
                kind=model.get("kind", "user"),
            )

    def _job_token(self) -> str | None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() in ("token", "bearer") and token.startswith("wbj_") else None

    def actor(self, scope: str | None) -> Actor:
        if self._actor is None:
            raise NotAuthenticated(self._auth_problem)
        if scope is not None and not self._actor.has(scope):
            raise Forbidden(
                f"this needs the scope {scope}; {self._actor.name} does not hold it "
                f"(ask an administrator for the role that grants it)"
            )
        return self._actor

    def parse(self, model: type[Body]) -> Body:
        limit = model.max_bytes or self.wb.settings.service.max_body_bytes
        if len(self.request.body) > limit:
            raise TooLarge(f"the request body is larger than {limit} bytes")
        ctype = self.request.headers.get("Content-Type", "application/json").split(";")[0]
        if ctype == "application/x-www-form-urlencoded":
            # a form: repeated fields are lists, empty fields are left out
            data: Any = {
                k: [v.decode() for v in vs] if k in model.list_fields() else vs[-1].decode()
                for k, vs in self.request.body_arguments.items()
                if k != "_xsrf" and any(vs)
            }
        else:
            try:
                data = json.loads(self.request.body or b"{}")
            except (ValueError, UnicodeDecodeError) as e:
                raise Invalid(f"the request body is not valid JSON: {e}") from e
        return model.model_validate(data)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking domain code off the event loop; Unavailable when it has not answered
        within `ServiceSettings.call_seconds` (a database or store that hangs rather than
        fails). Work still under way then finishes in its thread, but its answer — a
        credential, say — is never sent."""
        limit = self.wb.settings.service.call_seconds
        future = IOLoop.current().run_in_executor(self.settings["executor"], fn, *args)
        try:
            return await asyncio.wait_for(future, limit)
        except TimeoutError:
            raise Unavailable(
                f"the workbench's database or stores did not answer within {limit:g} s, so "
                "nothing was handed out; try again shortly"
            ) from None

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, default=str))

    async def refuse(self, err: WorkbenchError, action: str) -> None:
        """Put the refusal on record, then answer with its status and message."""
        actor = self._actor
        event = AuditEvent(
            action=err.action or action,
            actor=actor.name if actor else "anonymous",
            role=actor.role if actor else "",
            tenant=err.tenant,
            dataset=err.dataset,
            request_id=err.request_id,
            outcome="refused" if err.status < 500 else "error",
            reason=err.message,
            client=self.request.remote_ip,
            detail={"status": err.status, "method": self.request.method, "path": self.request.path},
        )
        try:
            # bounded: a refusal because the database hangs must still be answered
            await asyncio.wait_for(self.wb.audit.arecord(event), REFUSAL_RECORD_SECONDS)
        except (AuditUnavailable, TimeoutError) as e:
            log.error("could not record refusal %s: %s", event.action, e or "timed out")
        self.answer_error(err.status, err.message)

    def get_template_namespace(self) -> dict[str, Any]:
        ns = super().get_template_namespace()
        actor = self._actor
        ns.update(
            user=actor,
            prefix=self.settings["prefix"],
            hub_url=self.settings["hub_prefix"],
            can_request=bool(actor and actor.has(REQUEST)),
            can_decide=bool(actor and actor.has(APPROVE)),
            can_audit=bool(actor and (actor.has(AUDIT) or actor.has(ADMIN))),
            catalog=self.wb.settings.catalog,
        )
        return ns

    def answer_error(self, status: int, message: str) -> None:
        if self.html:
            self.set_status(status)
            self.render("error.html", status=status, message=message, user=self._actor)
        else:
            self.send_json({"status": status, "error": message}, status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Unexpected failures (a 500) and tornado's own errors; refusals go through `refuse`."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = "internal error; it has been logged"
        if isinstance(exc, HTTPError) and exc.log_message:
            message = exc.log_message
        elif status_code < 500:
            message = self._reason
        self.answer_error(status_code, message)


def endpoint(
    action: str,
    summary: str,
    *,
    scope: str | None,
    body: type[FormBody] | None = None,
    params: tuple[Param, ...] = (),
    ok: int = 200,
) -> Callable[[Handler], Handler]:
    """Wrap a handler method `(self, actor, *path_args, [body])`: authenticate, check `scope`,
    parse `body`; map any refusal to its status after recording it under `action`."""

    def wrap(method: Handler) -> Handler:
        @functools.wraps(method)
        async def inner(self: BaseHandler, *args: Any) -> None:
            try:
                actor = self.actor(scope)
                extra = (self.parse(body),) if body is not None else ()
                await method(self, actor, *args, *extra)
            except Exception as exc:
                err = to_domain(exc)
                if err is None:
                    raise
                if isinstance(err, NotAuthenticated) and self.html and self._actor is None:
                    self.redirect(self.get_login_url())
                    return
                await self.refuse(err, action)

        inner.__wb_meta__ = Meta(action, summary, scope, body, params, ok)  # type: ignore[attr-defined]
        return inner

    return wrap
