"""The service database (PostgreSQL) stopped or frozen while grants are requested: 503 with a
clear message, no credential, and the service recovers by itself once the database is back.

Only the campaign's own PostgreSQL (`private_pg`) is stopped or frozen, by its own pids."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.campaign.conftest import PrivatePostgres, ServiceProcess

Launch = Callable[..., ServiceProcess]
REFUSE_WITHIN = 10.0  # seconds a refusal may take on a frozen database


@pytest.fixture
def on_pg(private_pg: PrivatePostgres, launch: Launch) -> Iterator[ServiceProcess]:
    url = private_pg.create_database(f"wb_campaign_{uuid.uuid4().hex[:8]}")
    svc = launch(db_url=url)
    yield svc
    svc.stop()
    # whatever a test did, the server is running again for the next one
    if not (private_pg.datadir / "postmaster.pid").exists():
        private_pg.start()


def audited_grant_ids(url: str) -> set[int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT body FROM audit_events WHERE body::jsonb->>'action' = 'grant.issue'")
        ).all()
    engine.dispose()
    return {int(json.loads(b)["detail"]["grant_id"]) for (b,) in rows}


def assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert "credentials" not in body
    assert "database" in body["error"] or "audit" in body["error"], body


def test_stopped_database_refuses_grants_and_recovers(
    private_pg: PrivatePostgres, on_pg: ServiceProcess
) -> None:
    rid = on_pg.approved()
    assert on_pg.grant(rid).status_code == 201
    private_pg.stop("immediate")
    try:
        for _ in range(3):
            assert_refused(on_pg.grant(rid))
    finally:
        private_pg.start()
    # no restart of the service: its pool reconnects
    deadline = time.monotonic() + 30
    while (r := on_pg.grant(rid)).status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert r.status_code == 201, r.text
    assert r.json()["credentials"]["access_key_id"]
    assert on_pg.process is not None and on_pg.process.poll() is None


def test_frozen_database_refuses_grants_in_bounded_time(
    private_pg: PrivatePostgres, on_pg: ServiceProcess
) -> None:
    rid = on_pg.approved()
    assert on_pg.grant(rid).status_code == 201
    pids = private_pg.freeze()
    try:
        try:
            r = on_pg.client("alice", timeout=REFUSE_WITHIN).post(
                "grants", json={"request_id": rid, "dataset": "acme/calls"}
            )
        except httpx.TimeoutException:
            pytest.fail(f"no answer within {REFUSE_WITHIN} s on a frozen database")
        assert_refused(r)
    finally:
        private_pg.thaw(pids)


def test_frozen_database_recovers_and_the_stalled_grant_is_on_record(
    private_pg: PrivatePostgres, on_pg: ServiceProcess
) -> None:
    rid = on_pg.approved()
    assert on_pg.grant(rid).status_code == 201
    pids = private_pg.freeze()
    stalled: list[httpx.Response] = []

    def ask() -> None:
        stalled.append(
            on_pg.client("alice", timeout=60).post(
                "grants", json={"request_id": rid, "dataset": "acme/calls"}
            )
        )

    t = threading.Thread(target=ask)
    t.start()
    time.sleep(3)
    private_pg.thaw(pids)
    t.join(60)
    assert stalled and stalled[0].status_code in (201, 503), stalled
    if stalled[0].status_code == 201:  # issued after the thaw: then it is on record
        url = on_pg.db_url
        assert int(stalled[0].json()["id"]) in audited_grant_ids(url)
    r = on_pg.grant(rid)
    assert r.status_code == 201, r.text
