"""The approval gate's rules, as pure functions: which user options are allowed, whether a
request admits a server, what of the hub's environment a server may see. Every refusal is a
`Refused`: an HTTP status and a message that says what to do."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from jupyterhub.spawner import SpawnException
from markupsafe import escape

from workbench.compute import server_name

__all__ = [
    "DEFAULT_ENV_DENY",
    "REASON_PREFIX",
    "ApprovedRequest",
    "ComputeProfile",
    "Refused",
    "check_request",
    "duration",
    "filter_env",
    "request_id_from_options",
    "server_name",
]

# Every refusal's `reason` starts with this (metrics label; `workbench up` keeps them off the
# console).
REASON_PREFIX = "workbench-"

# Variables of the hub's environment that never reach a notebook server, even if `env_keep` or
# `environment` names them: the secret store's and object store's credentials, the proxy's
# token, the workbench's own settings (its demo password among them), anything that looks
# like a secret. The server's own JUPYTERHUB_API_TOKEN is the one token it gets.
DEFAULT_ENV_DENY = [
    r"^(BAO|VAULT|OPENBAO|AWS|CONFIGPROXY|WORKBENCH)_",
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY)",
]
ENV_ALWAYS = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})


class Refused(SpawnException):
    """A spawn the gate does not allow: an HTTP 4xx (5xx when the fault is ours) whose
    message says what to do; the spawn page shows `message_html`."""

    def __init__(self, message: str, *, reason: str, status: int = 403, link: str = "") -> None:
        html = str(escape(message))
        if link:
            quoted = str(escape(link))
            html = html.replace(quoted, f'<a href="{quoted}">{quoted}</a>')
        super().__init__(
            message, reason=REASON_PREFIX + reason, message_html=html, status_code=status
        )


# -- the request, as the service describes it ------------------------------------------------


@dataclass(frozen=True)
class ComputeProfile:
    """What a request was approved to use (the service's `profile_spec`)."""

    name: str
    cpu: float
    memory: str
    gpu_kind: str | None = None
    gpu_count: int = 0
    image: str = ""

    @classmethod
    def from_api(cls, name: str, spec: Mapping[str, Any]) -> ComputeProfile:
        """Raise ValueError when the service's answer lacks a usable profile."""
        cpu = float(spec["cpu"])
        memory = str(spec["memory"])
        gpu_count = int(spec.get("gpu_count") or 0)
        if cpu <= 0 or not memory or gpu_count < 0:
            raise ValueError(f"unusable compute profile {dict(spec)}")
        gpu_kind = spec.get("gpu_kind") or None
        if gpu_count and not gpu_kind:
            raise ValueError(f"profile {name!r} asks for GPUs of no kind")
        return cls(name, cpu, memory, gpu_kind, gpu_count, str(spec.get("image") or ""))

    def summary(self) -> str:
        text = f"{self.cpu:g} CPU, {self.memory} memory"
        if self.gpu_count:
            text += f", {self.gpu_count} × {self.gpu_kind}"
        return text


@dataclass(frozen=True)
class ApprovedRequest:
    """An approved request a server may run under; `ends_at` is this machine's clock (epoch)."""

    id: int
    requester: str
    tenant: str
    datasets: tuple[str, ...]
    profile: ComputeProfile
    ends_at: float

    @property
    def seconds_left(self) -> float:
        return self.ends_at - time.time()

    def as_state(self) -> dict[str, Any]:
        """JSON for the hub's database (`Spawner.get_state`)."""
        state = asdict(self)
        state["datasets"] = list(self.datasets)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ApprovedRequest:
        profile = ComputeProfile(**state["profile"])
        return cls(
            int(state["id"]),
            str(state["requester"]),
            str(state["tenant"]),
            tuple(state["datasets"]),
            profile,
            float(state["ends_at"]),
        )


def request_id_from_options(options: Any, *, form_url: str = "") -> int:
    """The request id of user options from the REST API (`{"request_id": 7}`) or a form post
    (`{"request_id": ["7"]}`). Anything else in them is refused: the profile, image and
    resources come from the approved request, never from the user."""
    if options is not None and not isinstance(options, Mapping):
        raise Refused("user options must be an object", reason="bad-options", status=400)
    options = options or {}
    extra = sorted(str(k) for k in options if k not in ("request_id", "_xsrf"))
    if extra:
        raise Refused(
            "the compute profile, image and resources come from the approved access request "
            "and cannot be chosen; the only option is request_id "
            f"(remove: {', '.join(extra)})",
            reason="bad-options",
            status=400,
        )
    if options.get("request_id") in (None, "", []):
        raise Refused(
            "a notebook server is started for an approved access request: choose one on the "
            'spawn page, or send {"request_id": ID}; file a request at ' + form_url,
            reason="no-request",
            link=form_url,
        )
    value = options.get("request_id")
    if isinstance(value, list) and len(value) == 1:  # a form field
        value = value[0]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 10**12:
        raise Refused(
            f"request_id must be the number of one of your approved requests, not {value!r}",
            reason="bad-options",
            status=400,
        )
    return value


def check_request(
    data: Mapping[str, Any], *, user: str, server: str, min_seconds_left: float, form_url: str
) -> ApprovedRequest:
    """Admit a server named `server` of `user` under the request the service described as
    `data`, or raise Refused saying why not."""
    rid = int(data["id"])
    if server != server_name(rid):
        raise Refused(
            f"the server for request {rid} is the named server {server_name(rid)!r}, not "
            f"{server or 'the default server'!r}: start it as {server_name(rid)}",
            reason="server-name",
            status=400,
        )
    if data.get("requester") != user:
        raise Refused(
            f"request {rid} was filed by {data.get('requester')}, not by {user}: a notebook "
            f"server runs only under its owner's own approved request; file yours at {form_url}",
            reason="not-yours",
            link=form_url,
        )
    state = data.get("state")
    seconds_left = data.get("seconds_left")
    if state != "approved" or not seconds_left or seconds_left <= 0:
        why = {
            "pending": "it has not been approved yet",
            "denied": "it was denied",
            "withdrawn": "it was withdrawn",
            "revoked": "it was revoked",
        }.get(str(state), "it has ended")
        if state == "approved":
            state = "expired"
        raise Refused(
            f"request {rid} is {state}: {why}; a server needs an approved, unexpired request "
            f"(file a new one at {form_url})",
            reason=f"request-{state}",
            status=409,
            link=form_url,
        )
    if seconds_left < min_seconds_left:
        raise Refused(
            f"request {rid} ends in {seconds_left:.0f} s; a server needs at least "
            f"{min_seconds_left:.0f} s: file a new request at {form_url}",
            reason="request-ending",
            status=409,
            link=form_url,
        )
    try:
        profile = ComputeProfile.from_api(str(data["profile"]), data["profile_spec"])
    except (KeyError, TypeError, ValueError) as e:
        raise Refused(
            f"the workbench service described request {rid} without a usable compute profile "
            f"({e}); tell the administrator",
            reason="bad-profile",
            status=502,
        ) from e
    return ApprovedRequest(
        id=rid,
        requester=user,
        tenant=str(data["tenant"]),
        datasets=tuple(str(d) for d in data.get("datasets", ())),
        profile=profile,
        ends_at=time.time() + float(seconds_left),
    )


def filter_env(env: Mapping[str, str], deny: list[str]) -> dict[str, str]:
    """`env` without the variables whose names match a `deny` pattern (the server's own
    API token excepted)."""
    patterns = [re.compile(p) for p in deny]
    return {
        k: v for k, v in env.items() if k in ENV_ALWAYS or not any(p.search(k) for p in patterns)
    }


def duration(seconds: float) -> str:
    """`2 d 3 h`, `3 h 12 min`, `12 min`, `under a minute`."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
