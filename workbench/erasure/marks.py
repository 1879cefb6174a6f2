"""Which tenants are erased, for the embedded stack's start (no demo data and no storage
identity for them again)."""

from __future__ import annotations

from pathlib import Path


def erased_tenants(home: Path) -> set[str]:
    """Tenants erased (or being erased) on the stack under HOME; none before its database."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from workbench.config import settings_for
    from workbench.db import make_engine
    from workbench.erasure.models import TenantErasure

    url = settings_for(home).db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return set()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.scalars(select(TenantErasure.tenant)))
    except SQLAlchemyError:  # no such table yet: nothing erased
        return set()
    finally:
        engine.dispose()
