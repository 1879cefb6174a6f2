"""The record path: group commit from many threads, append inside a caller's transaction,
and failing closed when the database cannot be written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, select, text

from tests.audit.conftest import create_database, drop_database
from workbench import dbsetup
from workbench.audit import AuditEvent, AuditLog, AuditUnavailable, Recorded, Signer, verify
from workbench.audit import log as log_module
from workbench.db import UTCDateTime, make_engine

MakeLog = Callable[..., AuditLog]


def event(i: int, tenant: str = "acme") -> AuditEvent:
    return AuditEvent(action="data.read", actor=f"user{i % 7}", tenant=tenant, detail={"i": i})


def seqs(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT seq FROM audit_events ORDER BY seq")).scalars())


def details(engine: Engine) -> list[int]:
    """The `detail.i` of each event in chain order."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT body FROM audit_events ORDER BY seq")).scalars()
        return [json.loads(body)["detail"]["i"] for body in rows]


def test_concurrent_records_get_gap_free_seqs(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    log = make_log(checkpoint_every=25)
    threads, per_thread = 16, 25
    barrier = threading.Barrier(threads)

    def work(t: int) -> list[int]:
        barrier.wait()
        return [log.record(event(t * 1000 + i)).seq for i in range(per_thread)]

    with ThreadPoolExecutor(threads) as pool:
        got = [seq for result in pool.map(work, range(threads)) for seq in result]
    total = threads * per_thread
    assert sorted(got) == list(range(1, total + 1))  # each caller got its own seq
    assert seqs(engine) == list(range(1, total + 1))
    log.close()
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
        last_signed = conn.execute(text("SELECT max(seq) FROM audit_checkpoints")).scalar()
    assert verdict.ok, verdict
    assert verdict.events == total and verdict.checkpoints >= 2
    assert last_signed == total  # close() signs the tail


def test_record_returns_what_was_committed(engine: Engine, make_log: MakeLog) -> None:
    log = make_log()
    first, second = log.record(event(1)), log.record(event(2))
    assert (first.seq, second.seq) == (1, 2)
    with engine.connect() as conn:
        stored = {seq: h for seq, h in conn.execute(text("SELECT seq, hash FROM audit_events"))}
        at = conn.execute(text("SELECT at FROM audit_events WHERE seq = 2")).scalar()
    assert stored == {1: first.hash, 2: second.hash}
    assert at == second.at


async def test_arecord(engine: Engine, make_log: MakeLog, signer: Signer) -> None:
    log = make_log()
    recorded = await asyncio.gather(*(log.arecord(event(i)) for i in range(20)))
    assert sorted(r.seq for r in recorded) == list(range(1, 21))
    with engine.connect() as conn:
        assert verify(conn, signer.public_key).ok


COMPANIONS = Table(
    "test_companion_rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("note", String(40), nullable=False),
    Column("at", UTCDateTime),
)


@pytest.fixture
def companions(engine: Engine) -> Iterator[Table]:
    COMPANIONS.create(engine, checkfirst=True)
    try:
        yield COMPANIONS
    finally:
        COMPANIONS.drop(engine)


def test_rows_commit_with_their_event_and_may_carry_its_seq(
    engine: Engine, make_log: MakeLog, signer: Signer, companions: Table
) -> None:
    """What a grant does: its row, keyed by its event's seq, commits with the event (on
    PostgreSQL in the writer's batches, shared by concurrent callers)."""
    log = make_log(checkpoint_every=10)
    at = datetime(2026, 11, 23, 4, 5, 6, 789000, tzinfo=UTC)

    def record(i: int) -> int:
        e = event(i)

        def rows(seq: int) -> list[tuple[Table, dict[str, Any]]]:
            e.detail["row"] = seq  # completed before the event is hashed
            return [(companions, {"id": seq, "note": f"row of {i}", "at": at})]

        return log.record(e, rows=rows).seq

    with ThreadPoolExecutor(8) as pool:
        got = sorted(pool.map(record, range(40)))
    assert got == list(range(1, 41))
    with engine.connect() as conn:
        stored = {r.id: (r.note, r.at) for r in conn.execute(select(companions))}
        bodies = [json.loads(b) for b in conn.scalars(text("SELECT body FROM audit_events"))]
        assert verify(conn, signer.public_key).ok
    assert {e["seq"]: e["detail"]["row"] for e in bodies} == {s: s for s in got}
    assert {seq: note for seq, (note, _) in stored.items()} == {
        e["seq"]: f"row of {e['detail']['i']}" for e in bodies
    }
    assert {when for _, when in stored.values()} == {at}


def test_a_row_that_cannot_be_written_takes_its_event_with_it(
    engine: Engine, make_log: MakeLog, companions: Table
) -> None:
    log = make_log()
    log.record(event(1))
    with pytest.raises(AuditUnavailable):
        log.record(event(2), rows=lambda seq: [(companions, {"id": seq, "note": None, "at": None})])
    assert seqs(engine) == [1]
    with engine.connect() as conn:
        assert conn.execute(select(companions)).all() == []
    assert (
        log.record(
            event(3), rows=lambda seq: [(companions, {"id": seq, "note": "x", "at": None})]
        ).seq
        == 2
    )


def _gathering(log: AuditLog, n: int) -> None:
    """Wait until `n` SQLite callers wait to be written together."""
    deadline = time.monotonic() + 10
    while len(log._gathered) < n:
        assert time.monotonic() < deadline, f"{len(log._gathered)} callers wait, not {n}"
        time.sleep(0.01)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_sqlite_callers_that_wait_are_written_together(
    engine: Engine, make_log: MakeLog, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one caller writes, the others gather; the next to wake writes them all in one
    transaction."""
    log = make_log(checkpoint_every=1000)
    batches: list[int] = []
    write = log_module._SqliteWriter.write

    def counted(self: Any, events: list[AuditEvent], rows: Any, sign: bool) -> Any:
        batches.append(len(events))
        return write(self, events, rows, sign)

    monkeypatch.setattr(log_module._SqliteWriter, "write", counted)
    with ThreadPoolExecutor(6) as pool:
        with log._turn:  # the first caller is stuck writing; the next five gather
            first = pool.submit(log.record, event(0))
            while not batches:
                time.sleep(0.01)
            rest = [pool.submit(log.record, event(i)) for i in range(1, 6)]
            _gathering(log, 5)
        got = [first.result(10).seq] + [f.result(10).seq for f in rest]
    assert batches == [1, 5]
    assert sorted(got) == [1, 2, 3, 4, 5, 6] and got[0] == 1
    assert details(engine)[0] == 0 and sorted(details(engine)) == [0, 1, 2, 3, 4, 5]
    with engine.connect() as conn:
        assert verify(conn, signer.public_key).ok


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_bad_event_written_together_fails_alone(
    engine: Engine, make_log: MakeLog, companions: Table
) -> None:
    log = make_log()

    def record(i: int, note: str | None) -> Recorded:
        return log.record(
            event(i), rows=lambda seq: [(companions, {"id": seq, "note": note, "at": None})]
        )

    with ThreadPoolExecutor(4) as pool:
        with log._turn:
            first = pool.submit(log.record, event(0))
            time.sleep(0.2)  # it holds the lead, waiting for the turn
            rest = [pool.submit(record, 1, "ok"), pool.submit(record, 2, None)]
            rest.append(pool.submit(record, 3, "ok"))
            _gathering(log, 3)
        assert first.result(10).seq == 1
        assert rest[0].result(10).seq and rest[2].result(10).seq
        with pytest.raises(AuditUnavailable, match="NOT NULL"):
            rest[1].result(10)
    assert seqs(engine) == [1, 2, 3] and sorted(details(engine)) == [0, 1, 3]
    with engine.connect() as conn:
        assert sorted(conn.execute(select(companions.c.note)).scalars()) == ["ok", "ok"]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_gathered_caller_that_times_out_is_never_written(
    engine: Engine, make_log: MakeLog
) -> None:
    log = make_log()
    with ThreadPoolExecutor(2) as pool:
        with log._turn:
            first = pool.submit(log.record, event(0))
            time.sleep(0.2)
            with pytest.raises(AuditUnavailable, match="within 0.3"):
                log.record(event(1), timeout=0.3)
            assert log._gathered == []
        assert first.result(10).seq == 1
    assert log.record(event(2)).seq == 2
    assert details(engine) == [0, 2]


def test_append_commits_with_the_callers_transaction(engine: Engine, make_log: MakeLog) -> None:
    log = make_log()
    with engine.begin() as conn:
        recorded = log.append(conn, [event(1), event(2)])
    assert [r.seq for r in recorded] == [1, 2]
    assert seqs(engine) == [1, 2]


def test_append_in_a_rolled_back_transaction_leaves_no_event(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    log = make_log()
    log.record(event(1))
    with engine.connect() as conn, conn.begin() as tx:
        assert [r.seq for r in log.append(conn, [event(2), event(3)])] == [2, 3]
        tx.rollback()
    assert seqs(engine) == [1]
    assert log.record(event(4)).seq == 2  # no gap where the rolled-back events were
    log.close()
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
    assert verdict.ok and verdict.events == 2, verdict


def unblock(engine: Engine) -> None:
    """End every other session on the database, so that a deadlocked test can end."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )


def test_append_twice_in_one_transaction_while_record_waits(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    """A caller's transaction holds the chain lock after its first append; the writer thread
    queues behind it. The caller's second append must not wait for the writer (deadlock)."""
    log = make_log()
    log.record(event(0))  # the writer now knows the tail
    done = threading.Event()

    def caller() -> None:
        with engine.begin() as conn:
            log.append(conn, [event(1)])
            pending.append(log.submit(event(2)))
            time.sleep(0.3)  # the writer is now waiting for the chain lock
            log.append(conn, [event(3)])
        done.set()

    pending: list[Future[Recorded]] = []
    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    if not done.wait(20):
        unblock(engine)
        pytest.fail("the second append deadlocked against the writer thread")
    assert pending[0].result(20).seq == 4
    assert details(engine) == [0, 1, 3, 2]
    log.close()
    with engine.connect() as conn:
        assert verify(conn, signer.public_key).ok


def test_record_links_to_events_appended_elsewhere(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    """Another process (here: another AuditLog) appends between two records of this one."""
    log, other = make_log(checkpoint_every=2), make_log(checkpoint_every=2)
    for i in range(6):
        writer = log if i % 3 else other
        if i % 2:
            with engine.begin() as conn:
                writer.append(conn, [event(i)])
        else:
            writer.record(event(i))
    log.checkpoint(force=True)
    assert details(engine) == list(range(6))
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
    assert verdict.ok and verdict.events == 6, verdict


def test_checkpoints_follow_checkpoint_every(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    log = make_log(checkpoint_every=10)
    for i in range(35):
        log.record(event(i))
    with engine.connect() as conn:
        signed = list(conn.execute(text("SELECT seq FROM audit_checkpoints ORDER BY id")).scalars())
    assert signed == [10, 20, 30]
    log.close()
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
    assert verdict.ok and verdict.checkpoints == 4, verdict


def test_an_idle_log_signs_its_tail(engine: Engine, make_log: MakeLog, signer: Signer) -> None:
    log = make_log(checkpoint_every=1000, checkpoint_seconds=0.2)
    log.record(event(1))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar():
                break
        time.sleep(0.05)
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
    assert verdict.ok and verdict.checkpoints == 1, verdict


def test_record_after_close_is_refused(make_log: MakeLog) -> None:
    log = make_log()
    log.record(event(1))
    log.close()
    with pytest.raises(AuditUnavailable):
        log.record(event(2))


# -- failing closed ------------------------------------------------------------------------


def assert_refused_promptly(log: AuditLog, limit: float = 5.0) -> None:
    start = time.monotonic()
    with pytest.raises(AuditUnavailable):
        log.record(event(1), timeout=20)
    assert time.monotonic() - start < limit


@pytest.mark.postgres
def test_record_fails_closed_when_postgres_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is: nothing listens there
    engine = make_engine(f"postgresql://postgres@127.0.0.1:{port}/workbench")
    log = AuditLog(engine)
    try:
        assert_refused_promptly(log)
        assert_refused_promptly(log)  # and stays closed
    finally:
        log.close()
        engine.dispose()


@pytest.mark.postgres
def test_record_fails_closed_when_the_database_is_dropped(signer: Signer) -> None:
    url = create_database("wb_audit_dropped")
    engine = make_engine(url)
    log = AuditLog(engine, signer)
    try:
        dbsetup.upgrade(engine)
        assert log.record(event(0)).seq == 1
        drop_database(url)
        assert_refused_promptly(log)
        assert_refused_promptly(log)
    finally:
        log.close()
        engine.dispose()
        drop_database(url)


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_record_recovers_after_its_connection_is_killed(
    engine: Engine, make_log: MakeLog, signer: Signer
) -> None:
    log = make_log()
    log.record(event(0))
    unblock(engine)
    with contextlib.suppress(AuditUnavailable):  # the batch on the dead connection may fail
        log.record(event(1))
    log.record(event(2))
    log.close()
    with engine.connect() as conn:
        verdict = verify(conn, signer.public_key)
    assert verdict.ok and verdict.events in (2, 3), verdict


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_record_times_out_while_the_table_is_locked(engine: Engine, make_log: MakeLog) -> None:
    log = make_log()
    log.record(event(0))
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"))
        start = time.monotonic()
        with pytest.raises(AuditUnavailable, match="within 1"):
            log.record(event(1), timeout=1)
        assert time.monotonic() - start < 3
        blocker.rollback()


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_a_caller_writing_its_own_event_is_stopped_by_the_write_timeout(
    engine: Engine, make_log: MakeLog, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record() that finds nobody writing writes in its own thread (no hand-off to the
    writer thread); the server's statement_timeout bounds it as `timeout` bounds the rest."""
    log = make_log(write_timeout=1)
    monkeypatch.setattr(log, "submit", lambda *a: pytest.fail("handed to the writer thread"))
    log.record(event(0))
    with engine.connect() as blocker:
        blocker.execute(text("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"))
        start = time.monotonic()
        with pytest.raises(AuditUnavailable, match="statement timeout"):
            log.record(event(1))  # the default timeout (30 s) allows a caller's own write
        assert time.monotonic() - start < 3
        blocker.rollback()
    assert log.record(event(2)).seq == 2  # a fresh connection, the chain unbroken
    log.close()
    with engine.connect() as conn:
        assert verify(conn, signer.public_key).ok
    assert details(engine) == [0, 2]


@pytest.mark.postgres
def test_the_writers_statement_timeout_stays_with_the_writer(audit_pg_url: str) -> None:
    """The writer's connection goes back to the pool as it came: no statement_timeout for
    the next user (a long audit query, say)."""
    engine = make_engine(audit_pg_url, pool_size=1, max_overflow=0)
    try:
        log = AuditLog(engine, write_timeout=1)
        log.record(event(0))
        log.close()
        with engine.connect() as conn:
            assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "0"
            assert conn.execute(text("SELECT pg_sleep(1.2)")).all()  # longer than 1 s
    finally:
        engine.dispose()


def test_record_fails_closed_on_a_read_only_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "workbench.sqlite"
    writable = make_engine(f"sqlite:///{path}")
    dbsetup.upgrade(writable)
    writable.dispose()
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
    # root ignores file modes; the read-only open mode is what a read-only mount gives
    engine = make_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    log = AuditLog(engine)
    try:
        assert_refused_promptly(log)
        assert_refused_promptly(log)
    finally:
        log.close()
        engine.dispose()


@pytest.mark.postgres
def test_a_pooled_connection_that_died_while_idle_is_replaced(audit_pg_url: str) -> None:
    """No ping per checkout (`pool_pre_ping`); a connection idle past `ping_idle_seconds` is
    pinged, and one the server dropped meanwhile is replaced without the caller noticing."""
    engine = make_engine(audit_pg_url, pool_size=1, max_overflow=0, ping_idle_seconds=0.2)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with make_engine(audit_pg_url).connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(0.3)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()
