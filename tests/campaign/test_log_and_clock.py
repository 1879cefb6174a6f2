"""The whole stack's audit log tampered with after real use, and a request that expires while
its data is being read.

tests/audit/test_tamper.py covers each kind of tampering against the log library, and
tests/cli/test_audit_cli.py an altered body through the CLI; here the log is the one a running
service wrote (grants, reads, decisions, signed checkpoints), the attacker has the database file,
and `workbench audit verify --home` is asked, as an auditor would."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.campaign.conftest import ROOT, ServiceProcess, Stores, wait_until, write_config
from tests.conftest import free_port
from tests.mocking import token_for
from workbench import data

Launch = Callable[..., ServiceProcess]


def verify(svc: ServiceProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", "audit", "verify", "--home", str(svc.home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def used(stores: Stores, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """A service that has filed, approved, granted and read; stopped, its log signed and
    verified intact."""
    home = tmp_path_factory.mktemp("used-stack")
    config = stores.config()
    config["AuditSettings"] = {"checkpoint_every": 20, "checkpoint_seconds": 1.0}
    write_config(home, config)
    svc = ServiceProcess(home, free_port())
    svc.start()
    rid = svc.approved()
    client = data.Client(rid, api_url=svc.url, token=token_for("alice"))
    ds = client.open("acme/calls")
    assert isinstance(ds, data.ObjectDataset)
    for key in ds.files():
        ds.read(key)
    client.flush()
    for _ in range(3):
        assert svc.grant(rid).status_code == 201
    time.sleep(1.2)  # a periodic checkpoint (every 1 s here) covers the tail
    svc.stop()
    ok = verify(svc)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    yield svc


def tamper(svc: ServiceProcess, *sql: str) -> int:
    """Run `sql` on the service database as an attacker with the file; the last seq."""
    db = sqlite3.connect(svc.home / "workbench.sqlite", isolation_level=None)
    try:
        triggers = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
        ).fetchall()
        for (name,) in triggers:  # the append-only triggers are the first thing to go
            db.execute(f'DROP TRIGGER "{name}"')
        last = int(db.execute("SELECT max(seq) FROM audit_events").fetchone()[0])
        for statement in sql:
            db.execute(statement.format(last=last, mid=last // 2))
    finally:
        db.close()
    return last


@pytest.mark.parametrize(
    ("attack", "sql", "named"),
    [
        (
            "a grant's tenant edited",
            "UPDATE audit_events SET body = replace(body, '\"acme\"', '\"globex\"') "
            "WHERE seq = {mid}",
            "{mid}",
        ),
        ("an event deleted", "DELETE FROM audit_events WHERE seq = {mid}", "{mid}"),
        ("the tail truncated", "DELETE FROM audit_events WHERE seq > {last} - 3", ""),
    ],
)
def test_tampering_with_the_stacks_log_is_named(
    used: ServiceProcess, tmp_path: Path, attack: str, sql: str, named: str
) -> None:
    svc = ServiceProcess(tmp_path / "copy", used.port)  # the same log, for this attack alone
    shutil.copytree(used.home, svc.home)
    last = tamper(svc, sql)
    bad = verify(svc)
    assert bad.returncode == 1, f"{attack} went unnoticed: {bad.stdout}{bad.stderr}"
    if named:
        seq = named.format(mid=last // 2, last=last)
        assert f"event {seq}" in bad.stdout, bad.stdout
    else:  # the signed checkpoint names the missing tail
        assert "missing" in bad.stdout or str(last) in bad.stdout, bad.stdout


def test_a_request_expiring_mid_read_gets_no_next_grant(launch: Launch) -> None:
    # requests as short as 9 s, so it expires between reads
    svc = launch(RequestPolicy={"min_hours": 0.001})
    hours = 0.0025  # 9 s
    r = svc.client("alice").post(
        "requests",
        json={
            "tenant": "acme",
            "datasets": ["calls"],
            "purpose": "expiry mid-read",
            "profile": "cpu-small",
            "hours": hours,
        },
    )
    assert r.status_code == 201, r.text
    rid = int(r.json()["id"])
    approved = svc.client("maria").post(f"requests/{rid}/approve", json={})
    assert approved.json()["state"] == "approved", approved.text
    client = data.Client(rid, api_url=svc.url, token=token_for("alice"))
    ds = client.open("acme/calls")
    assert isinstance(ds, data.ObjectDataset)
    grant = client.grant("acme/calls")
    # the grant never outlives its request
    assert grant["expires_at"] <= approved.json()["expires_at"]
    keys = ds.files()
    ds.read(keys[0])
    ends = data._epoch(approved.json()["expires_at"])
    wait_until(lambda: time.time() > ends + 0.5, 30, "the request to expire")
    r = svc.grant(rid)
    assert r.status_code in (403, 409), r.text
    assert "expired" in r.json()["error"] or "not approved" in r.json()["error"], r.text
    # a fresh notebook client is refused too, with a DataError that says why
    with pytest.raises(data.DataError, match="expired|not approved"):
        data.Client(rid, api_url=svc.url, token=token_for("alice")).open("acme/calls")
