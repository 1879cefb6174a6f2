"""ORM models of access requests and the decisions on them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from workbench.db import Base, UTCDateTime


class State(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    EXPIRED = "expired"


FINAL = frozenset({State.DENIED, State.WITHDRAWN, State.REVOKED, State.EXPIRED})


class AccessRequest(Base):
    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester: Mapped[str] = mapped_column(String(255), index=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    datasets: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(String(255))
    profile_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    hours: Mapped[float] = mapped_column(Float)
    gpu_hours: Mapped[float] = mapped_column(Float)
    approvals_required: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    decisions: Mapped[list[Decision]] = relationship(
        back_populates="request", order_by="Decision.id", lazy="selectin"
    )

    def is_active(self, now: datetime) -> bool:
        """Approved and not past its end: the only state in which anything may be granted."""
        return (
            self.state == State.APPROVED and self.expires_at is not None and now < self.expires_at
        )

    def approvers(self) -> list[str]:
        return [d.actor for d in self.decisions if d.kind == "approve"]

    def as_dict(self, now: datetime) -> dict[str, Any]:
        remaining = (
            max(0.0, (self.expires_at - now).total_seconds())
            if self.expires_at and self.state == State.APPROVED
            else None
        )
        return {
            "id": self.id,
            "requester": self.requester,
            "tenant": self.tenant,
            "datasets": list(self.datasets),
            "purpose": self.purpose,
            "profile": self.profile,
            "profile_spec": self.profile_spec,
            "hours": self.hours,
            "gpu_hours": self.gpu_hours,
            "approvals_required": self.approvals_required,
            "approvals": self.approvers(),
            "state": self.state,
            "created_at": _iso(self.created_at),
            "approved_at": _iso(self.approved_at),
            "expires_at": _iso(self.expires_at),
            "ended_at": _iso(self.ended_at),
            "end_reason": self.end_reason,
            "seconds_left": remaining,
            "decisions": [d.as_dict() for d in self.decisions],
        }


class Decision(Base):
    __tablename__ = "request_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # approve, deny, revoke, withdraw, expire
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    request: Mapped[AccessRequest] = relationship(back_populates="decisions")

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "kind": self.kind,
            "comment": self.comment,
            "at": _iso(self.at),
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None
