"""Fixtures for the audit log: a migrated SQLite file or PostgreSQL database per test, a
signing key, and `owner`, which tampers as someone with the database owner's rights would."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, text

from workbench import dbsetup
from workbench.audit import AuditLog, Signer
from workbench.db import make_engine

PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AUDIT_TABLES = ("audit_events", "audit_checkpoints")


def admin_engine() -> Engine:
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(prefix: str) -> str:
    """Create a uniquely named database; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {e}")
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    admin = admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def audit_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """One migrated PostgreSQL database for the test module, dropped afterwards."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    url = create_database(f"wb_{re.sub(r'[^a-z0-9]', '', module)[:20]}")
    engine = make_engine(url)
    try:
        dbsetup.upgrade(engine)
    finally:
        engine.dispose()
    yield url
    drop_database(url)


def clear_audit_tables(engine: Engine) -> None:
    """Empty the audit tables of the module's database between tests, as its owner."""
    with engine.begin() as conn:
        for table in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        conn.execute(text(f"TRUNCATE {', '.join(AUDIT_TABLES)}"))
        for table in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a migrated database with empty audit tables: a SQLite file, or the
    module's PostgreSQL database."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'workbench.sqlite'}")
        dbsetup.upgrade(eng)
    else:
        eng = make_engine(request.getfixturevalue("audit_pg_url"))
        clear_audit_tables(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def make_log(engine: Engine, signer: Signer) -> Iterator[Callable[..., AuditLog]]:
    """Build AuditLogs on `engine` (signed by `signer` unless told otherwise); all are closed
    at the end of the test."""
    logs: list[AuditLog] = []

    def make(**kwargs: Any) -> AuditLog:
        kwargs.setdefault("signer", signer)
        log = AuditLog(engine, **kwargs)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


class Owner:
    """Runs SQL with the rights of the database's owner, who can switch the append-only
    triggers off: on PostgreSQL `ALTER TABLE ... DISABLE TRIGGER`, on SQLite by dropping and
    afterwards recreating them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run `sql` with the triggers off; returns how many rows it changed."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for table in AUDIT_TABLES:
                    conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
                rowcount = conn.execute(text(sql), params or {}).rowcount
                for table in AUDIT_TABLES:
                    conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))
                return int(rowcount)
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            rowcount = conn.execute(text(sql), params or {}).rowcount
            for _, ddl in triggers:
                conn.execute(text(ddl))
            return int(rowcount)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}))


@pytest.fixture
def owner(engine: Engine) -> Owner:
    return Owner(engine)
