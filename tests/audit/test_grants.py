"""On PostgreSQL the application's role may only INSERT and SELECT audit rows: the database
refuses it UPDATE, DELETE and TRUNCATE by permission, whether or not the triggers are on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError

from tests.audit.conftest import AUDIT_TABLES, admin_engine, create_database, drop_database
from workbench import dbsetup
from workbench.audit import AuditEvent, AuditLog, Signer, verify
from workbench.db import make_engine

pytestmark = pytest.mark.postgres


@dataclass
class Databases:
    role: str
    owner: Engine  # postgres, who ran the migrations and owns the tables
    app: Engine  # the service's role, as granted by `workbench db upgrade --app-role`
    signer: Signer


@pytest.fixture(scope="module")
def dbs() -> Iterator[Databases]:
    role = f"wb_app_{uuid.uuid4().hex[:8]}"
    admin = admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    url = create_database("wb_grants")
    owner = make_engine(url)
    app = make_engine(make_url(url).set(username=role).render_as_string(hide_password=False))
    try:
        dbsetup.upgrade(owner)
        dbsetup.grant_app_role(owner, role)
        signer = Signer(Ed25519PrivateKey.generate())
        seed = AuditLog(owner, signer)
        seed.record(AuditEvent(action="server.start", actor="alice", tenant="acme"))
        seed.close()  # signs it: both audit tables have a row
        yield Databases(role, owner, app, signer)
    finally:
        app.dispose()
        owner.dispose()
        drop_database(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@contextmanager
def triggers_off(owner: Engine) -> Iterator[None]:
    """The owner switches the append-only triggers off, as an attacker with its rights could."""
    with owner.begin() as conn:
        for table in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
    try:
        yield
    finally:
        with owner.begin() as conn:
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))


def test_the_app_role_appends_and_reads(dbs: Databases) -> None:
    log = AuditLog(dbs.app, dbs.signer, checkpoint_every=3)
    try:
        for i in range(7):
            log.record(
                AuditEvent(action="data.read", actor="alice", tenant="acme", detail={"i": i})
            )
        with dbs.app.begin() as conn:
            log.append(conn, [AuditEvent(action="request.file", actor="bob", tenant="acme")])
    finally:
        log.close()
    with dbs.app.connect() as conn:
        user = conn.execute(text("SELECT current_user")).scalar()
        verdict = verify(conn, dbs.signer.public_key)
    assert user == dbs.role
    assert verdict.ok and verdict.events >= 9 and verdict.checkpoints >= 3, verdict


@pytest.mark.parametrize("table", AUDIT_TABLES)
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {table} SET hash = hash",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
    ],
)
def test_the_app_role_may_not_change_audit_rows_even_with_triggers_off(
    dbs: Databases, table: str, sql: str
) -> None:
    with triggers_off(dbs.owner):
        with pytest.raises(DBAPIError) as refused, dbs.app.begin() as conn:
            conn.execute(text(sql.format(table=table)))
        assert refused.value.orig is not None
        assert getattr(refused.value.orig, "sqlstate", None) == "42501"
        assert f"permission denied for table {table}" in str(refused.value)
    with dbs.owner.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_the_app_role_may_not_switch_the_triggers_off(dbs: Databases) -> None:
    with pytest.raises(DBAPIError, match="must be owner"), dbs.app.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER ALL"))


def test_the_app_role_updates_access_requests(dbs: Databases) -> None:
    now = datetime.now(UTC)
    with dbs.app.begin() as conn:
        rid = conn.execute(
            text(
                "INSERT INTO access_requests (requester, tenant, datasets, purpose, profile, "
                "profile_spec, hours, gpu_hours, approvals_required, state, created_at) "
                "VALUES ('alice', 'acme', '[\"calls\"]', 'churn', 'cpu-small', '{}', 1, 0, 1, "
                "'pending', :now) RETURNING id"
            ),
            {"now": now},
        ).scalar_one()
    with dbs.app.begin() as conn:
        changed = conn.execute(
            text("UPDATE access_requests SET state = 'approved' WHERE id = :id"), {"id": rid}
        ).rowcount
    assert changed == 1
