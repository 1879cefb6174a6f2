"""ORM models of data grants and the secret-store tokens minted for requests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, UTCDateTime


class Grant(Base):
    """One hand-out of credentials for one dataset under one request."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    dataset: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # objects | table
    resource: Mapped[str | None] = mapped_column(Text, nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a job's own grant

    def as_dict(self) -> dict[str, Any]:
        return grant_view({c.key: getattr(self, c.key) for c in self.__table__.columns})


def grant_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the API shows of a grant, from its row (or a Grant's attributes)."""
    return {
        "id": row["id"],
        "request_id": row["request_id"],
        "tenant": row["tenant"],
        "dataset": row["dataset"],
        "kind": row["kind"],
        "issued_at": row["issued_at"].isoformat().replace("+00:00", "Z"),
        "expires_at": row["expires_at"].isoformat().replace("+00:00", "Z"),
    }


class RequestToken(Base):
    """A secret-store token minted for a request; kept (by accessor) so that it is revoked
    when the request ends, even across a restart of the service."""

    __tablename__ = "request_tokens"

    accessor: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    tenant: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # minted for one job
