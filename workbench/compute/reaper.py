"""Which servers must stop, and why: a pure decision over what the hub reports and what the
requests say, so that every rule is tested without a hub.

A server stops when its request is no longer approved and unexpired (revoked, expired), when it
has been idle longer than its profile allows (GPU profiles sooner), or when its request has used
its GPU-hour budget. Each stop is an audit event with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workbench.compute import SERVER_PREFIX


@dataclass(frozen=True)
class Running:
    """A named server the hub reports as running."""

    user: str
    name: str
    started: datetime
    last_activity: datetime | None

    @property
    def request_id(self) -> int | None:
        digits = self.name.removeprefix(SERVER_PREFIX)
        return int(digits) if self.name.startswith(SERVER_PREFIX) and digits.isdigit() else None


@dataclass(frozen=True)
class RequestView:
    """What the reaper needs of a request."""

    id: int
    requester: str
    tenant: str
    active: bool
    state: str
    gpus: int
    gpu_hours: float
    gpu_hours_used: float


@dataclass(frozen=True)
class Stop:
    server: Running
    action: str  # server.stop (request ended), server.cull (idle), server.budget
    reason: str
    request: RequestView | None


@dataclass(frozen=True)
class Limits:
    idle: timedelta = timedelta(hours=1)
    idle_gpu: timedelta = timedelta(minutes=20)


def decide(
    servers: list[Running],
    requests: dict[int, RequestView],
    now: datetime,
    limits: Limits,
) -> list[Stop]:
    stops = []
    for srv in servers:
        rid = srv.request_id
        req = requests.get(rid) if rid is not None else None
        if req is None or req.requester != srv.user:
            stops.append(Stop(srv, "server.stop", "no approved request of this user", req))
        elif not req.active:
            stops.append(Stop(srv, "server.stop", f"request {req.id} is {req.state}", req))
        elif req.gpus and req.gpu_hours_used >= req.gpu_hours:
            stops.append(
                Stop(
                    srv,
                    "server.budget",
                    f"request {req.id} used its GPU-hour budget "
                    f"({req.gpu_hours_used:.2f} of {req.gpu_hours:g})",
                    req,
                )
            )
        else:
            idle_limit = limits.idle_gpu if req.gpus else limits.idle
            seen = srv.last_activity or srv.started
            if now - seen > idle_limit:
                minutes = idle_limit.total_seconds() / 60
                stops.append(
                    Stop(srv, "server.cull", f"idle for more than {minutes:g} minutes", req)
                )
    return stops
