"""Search the audit log by tenant, user, action and time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select

from workbench.audit.chain import timestamp
from workbench.audit.models import audit_events

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Filters:
    tenant: str | None = None
    user: str | None = None
    action: str | None = None
    outcome: str | None = None
    request_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[Any]:
        c = audit_events.c
        clauses: list[Any] = []
        if self.tenant:
            clauses.append(c.tenant == self.tenant)
        if self.user:
            clauses.append(c.actor == self.user)
        if self.action:
            # "request" matches request.file, request.approve, ... (and "request" itself)
            if "." in self.action:
                clauses.append(c.action == self.action)
            else:
                clauses.append(
                    or_(
                        c.action == self.action,
                        c.action.startswith(f"{self.action}.", autoescape=True),
                    )
                )
        if self.outcome:
            clauses.append(c.outcome == self.outcome)
        if self.request_id is not None:
            clauses.append(c.request_id == self.request_id)
        if self.since:
            clauses.append(c.at >= timestamp(self.since))
        if self.until:
            clauses.append(c.at < timestamp(self.until))
        return clauses


def events(conn: Connection, filters: Filters, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest `limit` matching events, newest first, each with its seq and hash."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = (
        select(audit_events.c.seq, audit_events.c.body, audit_events.c.hash)
        .where(*filters.where())
        .order_by(audit_events.c.at.desc(), audit_events.c.seq.desc())
        .limit(limit)
    )
    out = []
    for seq, body, hash_ in conn.execute(stmt):
        event = json.loads(body)
        event["seq"], event["hash"] = seq, hash_
        out.append(event)
    return out


def count_by_user(conn: Connection, filters: Filters) -> dict[str, int]:
    """How many matching events each user caused."""
    stmt = (
        select(audit_events.c.actor, func.count())
        .where(*filters.where())
        .group_by(audit_events.c.actor)
    )
    return {actor: int(n) for actor, n in conn.execute(stmt)}


_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: datetime) -> datetime:
    """'2026-11-01', '2026-11-01T12:00:00Z', or relative: '30m', '24h', '7d', '2w' ago."""
    from datetime import UTC, timedelta

    text = text.strip()
    if text and text[:-1].isdigit() and text[-1] in _UNITS:
        return now - timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use an ISO date or time (2026-11-01, "
            "2026-11-01T12:00:00Z) or an age such as 30m, 24h, 7d, 2w"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
