"""The state machine and the separation-of-duties rules, as pure functions.

States: pending → approved → expired | revoked; pending → denied | withdrawn.
Nobody decides their own request; managers decide only for tenants they govern; a tenant that
needs two approvals needs two different managers; only pending requests are approved or denied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.actor import Actor
from workbench.config import CatalogData, Profile, RequestPolicy, Tenant
from workbench.errors import Conflict, Forbidden, Invalid, NotFound
from workbench.requests.models import AccessRequest, State
from workbench.scopes import ADMIN, APPROVE, AUDIT, REQUEST

# kind of decision → the states it may be taken in
ALLOWED_FROM: dict[str, frozenset[str]] = {
    "approve": frozenset({State.PENDING}),
    "deny": frozenset({State.PENDING}),
    "withdraw": frozenset({State.PENDING}),
    "revoke": frozenset({State.APPROVED}),
}


@dataclass(frozen=True)
class NewRequest:
    tenant: str
    datasets: list[str]
    purpose: str
    profile: str
    hours: float
    gpu_hours: float | None = None


@dataclass(frozen=True)
class Checked:
    tenant: Tenant
    profile: Profile
    datasets: list[str]
    purpose: str
    hours: float
    gpu_hours: float


def check_new(
    actor: Actor, new: NewRequest, catalog: CatalogData, policy: RequestPolicy
) -> Checked:
    """Validate a new request against the catalog and the bounds; raise with what is wrong."""
    ctx: dict[str, Any] = {"tenant": new.tenant, "action": "request.file"}
    if not actor.has(REQUEST):
        raise Forbidden("you may not file access requests (no researcher role)", **ctx)
    tenant = catalog.tenants.get(new.tenant)
    if tenant is None:
        raise Invalid(
            f"unknown tenant {new.tenant!r}; known tenants: {', '.join(sorted(catalog.tenants))}",
            **ctx,
        )
    if not new.datasets:
        raise Invalid("name at least one dataset", **ctx)
    if len(new.datasets) > policy.max_datasets:
        raise Invalid(f"at most {policy.max_datasets} datasets per request", **ctx)
    datasets = []
    for ds in new.datasets:
        name = ds.split("/", 1)[1] if ds.startswith(f"{new.tenant}/") else ds
        if "/" in name:
            raise Invalid(
                f"dataset {ds!r} belongs to another tenant; one request covers one tenant", **ctx
            )
        if name not in tenant.datasets:
            raise Invalid(
                f"tenant {new.tenant!r} has no dataset {name!r}; it has: "
                f"{', '.join(sorted(tenant.datasets))}",
                **ctx,
            )
        if name not in datasets:
            datasets.append(name)
    purpose = new.purpose.strip()
    if not purpose:
        raise Invalid("purpose is required: say why you need this data", **ctx)
    if len(purpose) > policy.max_purpose_chars:
        raise Invalid(f"purpose is longer than {policy.max_purpose_chars} characters", **ctx)
    profile = catalog.profiles.get(new.profile)
    if profile is None:
        raise Invalid(
            f"unknown profile {new.profile!r}; known profiles: "
            f"{', '.join(sorted(catalog.profiles))}",
            **ctx,
        )
    if not policy.min_hours <= new.hours <= policy.max_hours:
        raise Invalid(f"hours must be between {policy.min_hours:g} and {policy.max_hours:g}", **ctx)
    gpu_hours = new.gpu_hours
    if gpu_hours is None:
        gpu_hours = profile.gpu_count * new.hours
    if not 0 <= gpu_hours <= policy.max_gpu_hours:
        raise Invalid(f"gpu_hours must be between 0 and {policy.max_gpu_hours:g}", **ctx)
    if profile.gpu_count == 0 and gpu_hours > 0:
        raise Invalid(f"profile {profile.name!r} has no GPU; gpu_hours must be 0", **ctx)
    return Checked(tenant, profile, datasets, purpose, float(new.hours), float(gpu_hours))


def can_see(actor: Actor, req: AccessRequest, catalog: CatalogData) -> bool:
    """The requester, the tenant's managers, security and admins see a request."""
    return (
        actor.name == req.requester
        or (actor.has(APPROVE) and catalog.governs(actor.name, req.tenant))
        or actor.has(AUDIT)
        or actor.has(ADMIN)
    )


def check_decision(actor: Actor, req: AccessRequest, kind: str, catalog: CatalogData) -> None:
    """Raise unless `actor` may take decision `kind` on `req` now."""
    ctx: dict[str, Any] = {"tenant": req.tenant, "action": f"request.{kind}", "request_id": req.id}
    if not can_see(actor, req, catalog):
        raise NotFound(f"no access request {req.id}", **ctx)
    if kind == "withdraw":
        if actor.name != req.requester:
            raise Forbidden("only the requester may withdraw a request", **ctx)
    elif kind == "revoke":
        # giving up one's own access is always allowed; otherwise a governing manager or admin
        governs = actor.has(APPROVE) and catalog.governs(actor.name, req.tenant)
        if actor.name != req.requester and not governs and not actor.has(ADMIN):
            raise Forbidden(
                f"only a manager of tenant {req.tenant!r} (or the requester) may revoke", **ctx
            )
    else:  # approve, deny
        if actor.name == req.requester:
            raise Forbidden("you cannot decide your own request; another manager must", **ctx)
        if not actor.has(APPROVE):
            raise Forbidden("deciding requests needs the manager role", **ctx)
        if not catalog.governs(actor.name, req.tenant):
            raise Forbidden(f"you do not govern tenant {req.tenant!r}", **ctx)
    if req.state not in ALLOWED_FROM[kind]:
        allowed = " or ".join(sorted(ALLOWED_FROM[kind]))
        raise Conflict(
            f"request {req.id} is {req.state}; only {allowed} requests can be {_past(kind)}", **ctx
        )
    if kind == "approve" and actor.name in req.approvers():
        raise Conflict(
            f"you already approved request {req.id}; it needs {req.approvals_required} "
            "approvals from different managers",
            **ctx,
        )


def _past(kind: str) -> str:
    return {"approve": "approved", "deny": "denied", "withdraw": "withdrawn", "revoke": "revoked"}[
        kind
    ]
