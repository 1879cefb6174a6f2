"""ORM models of tenant erasures: the tenant's mark, and the objects an erasure deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from workbench.db import Base, UTCDateTime


class TenantErasure(Base):
    """A tenant being (or having been) erased. Its existence closes the tenant to new
    requests; `progress` holds what each step has done so far, summed over interrupted runs."""

    __tablename__ = "tenant_erasures"

    tenant: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # erasing | erased
    started_by: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ErasedObject(Base):
    """One object an erasure deletes, recorded before the delete is sent (so a run cut short
    still knows it), with the checksum the store gave it."""

    __tablename__ = "erased_objects"
    __table_args__ = (UniqueConstraint("tenant", "bucket", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(255), index=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
