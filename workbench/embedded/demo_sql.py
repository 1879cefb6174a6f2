"""Demo tenant SQL data of the embedded default: one schema per tenant in one database.

`seed_tenant_tables` creates the database (no privileges for PUBLIC), a schema `tenant_<name>`
per tenant holding an `accounts` table, and a few rows, every one carrying its tenant id. Only
OpenBao's dynamic logins (role `tenant-<name>`) are granted anything, and only on their schema.
Idempotent: tenants whose schema exists are left alone, so a restart costs one query.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql

from workbench.access.secrets import check_tenant, schema_name
from workbench.embedded.openbao import libpq_url

BATCH = 200  # tenants per statement batch: 10,000 tenants are 50 round trips
PLANS = ("starter", "business", "enterprise")


def _tenant_statements(tenant: str) -> sql.Composed:
    schema = sql.Identifier(schema_name(tenant))
    rows = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {})").format(
            sql.Literal(i),
            sql.Literal(tenant),
            sql.Literal(f"{tenant} customer {i}"),
            sql.Literal(PLANS[i % len(PLANS)]),
            sql.Literal(100 * i + len(tenant)),
        )
        for i in range(1, 6)
    )
    return sql.SQL(
        "CREATE SCHEMA {s};"
        " REVOKE ALL ON SCHEMA {s} FROM PUBLIC;"
        " CREATE TABLE {s}.accounts ("
        "id integer PRIMARY KEY, tenant text NOT NULL CHECK (tenant = {t}),"
        " name text NOT NULL, plan text NOT NULL, monthly_revenue numeric(12, 2) NOT NULL);"
        " INSERT INTO {s}.accounts (id, tenant, name, plan, monthly_revenue) VALUES {rows};"
    ).format(s=schema, t=sql.Literal(tenant), rows=rows)


def seed_tenant_tables(
    pg_url: str, tenants: Iterable[str], database: str = "workbench_data"
) -> None:
    """Create `database` on the server of `pg_url` (a superuser) and each tenant's schema."""
    names = [check_tenant(t) for t in tenants]
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            db = sql.Identifier(database)
            admin.execute(sql.SQL("CREATE DATABASE {}").format(db))
            admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    with psycopg.connect(libpq_url(pg_url, database)) as conn:
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        have = {row[0] for row in conn.execute("SELECT nspname FROM pg_namespace")}
        todo = [t for t in names if schema_name(t) not in have]
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            conn.execute(sql.SQL(" ").join(_tenant_statements(t) for t in batch))
            # A transaction per batch: one holding the locks of every new schema, table and
            # index runs out of PostgreSQL's lock table (max_locks_per_transaction) at a few
            # thousand tenants. A start cut short resumes at the first missing schema.
            conn.commit()
