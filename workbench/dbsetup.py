"""`workbench db upgrade`: run the Alembic migrations, and on PostgreSQL grant the
application's role what it needs — and on the audit tables only INSERT and SELECT."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"
AUDIT_TABLES = ("audit_events", "audit_checkpoints")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def grant_app_role(engine: Engine, role: str) -> None:
    """Let `role` read and write the service tables, but only INSERT and SELECT the audit log."""
    if engine.dialect.name != "postgresql":
        raise ValueError("--app-role applies to PostgreSQL only")
    if not role.replace("_", "").isalnum():
        raise ValueError(f"role name {role!r} must be letters, digits and underscores")
    tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.begin() as conn:
        conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        conn.execute(text(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"'))
        for table in tables:
            conn.execute(text(f'REVOKE ALL ON "{table}" FROM "{role}"'))
            verbs = "SELECT, INSERT" if table in AUDIT_TABLES else "SELECT, INSERT, UPDATE, DELETE"
            conn.execute(text(f'GRANT {verbs} ON "{table}" TO "{role}"'))
        conn.execute(text(f'GRANT SELECT ON "alembic_version" TO "{role}"'))
