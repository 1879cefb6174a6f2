"""Who sees which of the things researchers file and a tenant's managers decide on (access
requests, exports): one rule for their lists."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Select, select

from workbench.actor import Actor
from workbench.config import CatalogData
from workbench.errors import Invalid
from workbench.scopes import ADMIN, APPROVE, AUDIT


def governed_list(
    model: Any,
    actor: Actor,
    catalog: CatalogData,
    view: str,
    state: str | None,
    states: type[enum.StrEnum],
    review: str,
) -> Select[Any]:
    """Rows of `model` (with `requester`, `tenant` and `state` columns), newest first, for
    `view`: `mine`, the actor's own; `review` (its name given), the pending ones the actor may
    decide (of a tenant they govern, filed by someone else); `all`, every one the actor may see
    (security and admins all, others their own and their tenants'). `state` narrows it."""
    views = ("mine", review, "all")
    if view not in views:
        raise Invalid(f"view must be one of {', '.join(views)}")
    if state is not None and state not in set(states):
        raise Invalid(f"state must be one of {', '.join(states)}")
    stmt = select(model).order_by(model.id.desc())
    governed = catalog.governed_by(actor.name) if actor.has(APPROVE) else []
    if view == "mine":
        stmt = stmt.where(model.requester == actor.name)
    elif view == review:
        stmt = stmt.where(
            model.tenant.in_(governed),
            model.state == states("pending"),
            model.requester != actor.name,
        )
    elif not (actor.has(AUDIT) or actor.has(ADMIN)):
        stmt = stmt.where((model.requester == actor.name) | model.tenant.in_(governed))
    if state:
        stmt = stmt.where(model.state == state)
    return stmt
