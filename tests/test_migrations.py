"""Alembic migrations: up, down and up again, on SQLite and PostgreSQL, and the CLI entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from workbench import dbsetup
from workbench.db import make_engine

TABLES = {
    "access_requests",
    "request_decisions",
    "audit_events",
    "audit_checkpoints",
    "grants",
    "request_tokens",
    "server_sessions",
    "jobs",
    "job_metrics",
    "artifacts",
    "artifact_sources",
    "artifact_parents",
    "artifact_reports",
    "artifact_reviews",
    "artifact_uses",
    "tenant_erasures",
    "erased_objects",
    "exports",
}


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    dbsetup.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    dbsetup.upgrade(engine)  # idempotent
    dbsetup.downgrade(engine)
    assert not TABLES & set(inspect(engine).get_table_names())
    dbsetup.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_db_upgrade_command(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "workbench", "db", "upgrade", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "newest schema" in r.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'workbench.sqlite'}")
    assert set(inspect(engine).get_table_names()) >= TABLES
