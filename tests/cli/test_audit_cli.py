"""`workbench audit verify` and `workbench audit query` as a person runs them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import Service
from tests.mocking import token_for

BODY = {
    "tenant": "acme",
    "datasets": ["calls"],
    "purpose": "Churn",
    "profile": "cpu-small",
    "hours": 1,
}


def workbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def filed(service: Service) -> Service:
    with service.client("alice") as alice:
        rid = alice.post("requests", json=BODY).json()["id"]
        alice.post("requests", json={**BODY, "tenant": "globex"})
    with service.client("maria") as maria:
        maria.post(f"requests/{rid}/approve", json={"comment": "ok"})
    service.wb.audit.checkpoint(force=True)
    return service


def hub_base(service: Service) -> str:
    return service.url.split("/services/")[0] + "/"


def test_verify_exits_0_then_names_the_altered_event(filed: Service) -> None:
    home = filed.wb.settings.home
    db = filed.wb.settings.db_url
    (home / "workbench_config.py").write_text(f"c.ServiceSettings.db_url = {db!r}\n")
    ok = workbench("audit", "verify", "--home", str(home))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact: 3 events" in ok.stdout
    with filed.wb.engine.begin() as conn:  # an attacker with the database file
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(
            text("UPDATE audit_events SET body = replace(body, 'maria', 'mallory') WHERE seq = 3")
        )
    bad = workbench("audit", "verify", "--home", str(home))
    assert bad.returncode == 1
    assert "broken at event 3" in bad.stdout and "altered" in bad.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_query_formats(filed: Service, fmt: str) -> None:
    r = workbench(
        "audit",
        "query",
        "--url",
        hub_base(filed),
        "--token",
        token_for("sam"),
        "--tenant",
        "acme",
        "--format",
        fmt,
    )
    assert r.returncode == 0, r.stderr
    if fmt == "json":
        events = json.loads(r.stdout)
        assert [e["action"] for e in events] == ["request.approve", "request.file"]
        assert all(e["tenant"] == "acme" for e in events)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(r.stdout)))
        assert [row["action"] for row in rows] == ["request.approve", "request.file"]
        assert rows[1]["purpose"] == "Churn"
    else:
        assert "request.approve" in r.stdout and "globex" not in r.stdout


def test_query_needs_the_security_role(filed: Service) -> None:
    r = workbench("audit", "query", "--url", hub_base(filed), "--token", token_for("alice"))
    assert r.returncode != 0 and "error 403" in r.stderr and "custom:workbench:audit" in r.stderr


def test_query_without_url_says_what_to_give(tmp_path: Path) -> None:
    r = workbench("audit", "query", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode != 0 and "--url/--token" in r.stderr
