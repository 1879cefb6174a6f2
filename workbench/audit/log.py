"""The one path into the audit log.

`AuditLog.record(event)` returns only once the event is durably committed; concurrent callers
share one transaction and one fsync (group commit) made by a single writer thread.
`AuditLog.append(conn, events)` writes inside a caller's transaction, so a state change and
the event that describes it commit together or not at all.

Every append holds the chain lock while it reads the chain's tail and links new events to it:
on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock that `make_engine`'s
`BEGIN IMMEDIATE` takes. Either way the seq primary key makes a forked chain impossible.
No in-process lock is held while waiting for the database's lock: a caller whose transaction
already holds it may append again without deadlocking against the writer thread.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from workbench.audit.chain import (
    GENESIS,
    SCHEMA_VERSION,
    Signer,
    canonical,
    checkpoint_message,
    link,
    timestamp,
)
from workbench.audit.models import audit_checkpoints, audit_events

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x5742_4155  # "WBAU"


class AuditUnavailable(Exception):
    """The audit log could not be written; whatever the event described must not happen."""


@dataclass
class AuditEvent:
    """Who did what to which tenant's data, why, and how it ended.

    `outcome` is "ok", "refused" or "error"; `reason` says why for the last two.
    """

    action: str
    actor: str
    role: str = ""
    tenant: str | None = None
    dataset: str | None = None
    purpose: str | None = None
    request_id: int | None = None
    resource: str | None = None
    outcome: str = "ok"
    reason: str | None = None
    client: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self, seq: int, at: str) -> str:
        data = asdict(self)
        data.update(v=SCHEMA_VERSION, seq=seq, at=at)
        return canonical(data)


@dataclass(frozen=True)
class Recorded:
    seq: int
    hash: str
    at: str


@dataclass(frozen=True)
class _Row:
    seq: int
    body: str
    hash: str
    at: str


def _link_all(events: list[AuditEvent], seq: int, prev: str) -> list[_Row]:
    """Number `events` after the tail (`seq`, `prev`) and chain them to it."""
    rows = []
    for event in events:
        seq += 1
        at = timestamp()
        body = event.body(seq, at)
        prev = link(prev, body)
        rows.append(_Row(seq, body, prev, at))
    return rows


def _lock_chain(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})


def _tail(conn: Connection) -> tuple[int, str]:
    row = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
    ).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


class AuditLog:
    """Appends events to the hash chain and signs checkpoints."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer | None = None,
        *,
        checkpoint_every: int = 100,
        checkpoint_seconds: float = 10.0,
        max_batch: int = 256,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.max_batch = max_batch
        self._writer_lock = threading.Lock()
        self._queue: queue.Queue[tuple[AuditEvent, Future[Recorded]] | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._closed = False
        # Events appended by this process since it last signed: decides when the writer
        # signs next, without asking the database after every batch.
        self._unsigned = 0
        self._signed_at = time.monotonic()

    # -- the record path ---------------------------------------------------------------

    def record(self, event: AuditEvent, timeout: float = 30.0) -> Recorded:
        """Commit `event`; raise AuditUnavailable when it cannot be committed."""
        fut = self.submit(event)
        try:
            return fut.result(timeout)
        except AuditUnavailable:
            raise
        except FutureTimeout as e:
            fut.cancel()  # not yet taken by the writer: it will not be written late
            raise AuditUnavailable(f"the audit log could not be written within {timeout}s") from e
        except Exception as e:  # the writer's own failure
            raise AuditUnavailable(f"the audit log could not be written: {e}") from e

    async def arecord(self, event: AuditEvent) -> Recorded:
        try:
            return await asyncio.wrap_future(self.submit(event))
        except AuditUnavailable:
            raise
        except Exception as e:
            raise AuditUnavailable(f"the audit log could not be written: {e}") from e

    def submit(self, event: AuditEvent) -> Future[Recorded]:
        """Queue `event` for the next group commit; the future resolves once it is durable."""
        if self._closed:
            raise AuditUnavailable("the audit log is closed")
        fut: Future[Recorded] = Future()
        self._ensure_writer()
        self._queue.put((event, fut))
        return fut

    def append(self, conn: Connection, events: list[AuditEvent]) -> list[Recorded]:
        """Write `events` inside the caller's open transaction (committed with it)."""
        _lock_chain(conn)
        rows = _link_all(events, *_tail(conn))
        if rows:
            conn.execute(
                insert(audit_events), [{"seq": r.seq, "body": r.body, "hash": r.hash} for r in rows]
            )
        self._unsigned += len(rows)
        return [Recorded(r.seq, r.hash, r.at) for r in rows]

    def checkpoint(self, force: bool = False) -> int | None:
        """Sign the chain's tail when `checkpoint_every` events (or, with `force`, any) are
        unsigned. Returns the checkpoint's seq, or None when none was due."""
        if self.signer is None:
            return None
        with self.engine.begin() as conn:
            _lock_chain(conn)
            return self._sign_tail(conn, _tail(conn), force)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_events)).scalar_one())

    def close(self) -> None:
        """Flush queued events and sign the tail."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(None)
            self._writer.join(timeout=30)

    # -- internals ---------------------------------------------------------------------

    def _sign_tail(self, conn: Connection, tail: tuple[int, str], force: bool) -> int | None:
        """Insert a checkpoint over `tail` in `conn`'s transaction, which holds the chain lock."""
        assert self.signer is not None
        seq, hash_ = tail
        if seq == 0:
            return None
        last = conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(1)
        ).first()
        unsigned = seq - (last.seq if last else 0)
        if unsigned <= 0 or (unsigned < self.checkpoint_every and not force):
            return None
        cid = (last.id if last else 0) + 1
        prev_sig = last.signature if last else ""
        at = timestamp()
        sig = self.signer.sign(checkpoint_message(cid, seq, hash_, at, prev_sig))
        conn.execute(
            insert(audit_checkpoints).values(
                id=cid, seq=seq, hash=hash_, at=at, key_id=self.signer.key_id, signature=sig
            )
        )
        self._unsigned, self._signed_at = 0, time.monotonic()
        return seq

    def _sign_due(self) -> bool:
        return self.signer is not None and (
            self._unsigned >= self.checkpoint_every
            or time.monotonic() - self._signed_at >= self.checkpoint_seconds
        )

    def _ensure_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            with self._writer_lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(
                        target=self._write_loop, name="audit-writer", daemon=True
                    )
                    self._writer.start()

    def _write_loop(self) -> None:
        batches = _batch_writer(self)
        try:
            while self._write_next(batches):
                pass
        finally:
            batches.close()

    def _write_next(self, batches: _BatchWriter) -> bool:
        """Commit the next batch of queued events; False once the log is closed."""
        try:
            item = self._queue.get(timeout=self.checkpoint_seconds)
        except queue.Empty:
            self._checkpoint_quietly()
            return True
        stop = item is None
        batch: list[tuple[AuditEvent, Future[Recorded]]] = []
        while item is not None:
            if item[1].set_running_or_notify_cancel():  # skip what record() gave up on
                batch.append(item)
            if len(batch) >= self.max_batch:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
        if batch:
            try:
                recorded = batches.write([event for event, _ in batch], self._sign_due())
            except Exception as e:
                log.error("audit write failed: %s", e)
                for _, fut in batch:
                    fut.set_exception(AuditUnavailable(f"the audit log could not be written: {e}"))
            else:
                for (_, fut), rec in zip(batch, recorded, strict=True):
                    fut.set_result(rec)
        if stop:
            self._checkpoint_quietly()
        return not stop

    def _checkpoint_quietly(self) -> None:
        try:
            self.checkpoint(force=True)
        except Exception as e:  # the next batch or timer tries again
            log.warning("audit checkpoint failed: %s", e)


class _BatchWriter:
    """Commits one batch of events (and, when due, a checkpoint) per transaction."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    def write(self, events: list[AuditEvent], sign: bool) -> list[Recorded]:
        with self.audit.engine.begin() as conn:
            recorded = self.audit.append(conn, events)
            if sign:
                last = recorded[-1]
                self.audit._sign_tail(conn, (last.seq, last.hash), force=True)
            return recorded

    def close(self) -> None:
        pass


class _PipelinedWriter(_BatchWriter):
    """PostgreSQL with psycopg: a dedicated connection and two round trips per batch, each
    a pipeline — (lock, read tail[, read last checkpoint]) then (insert, [sign,] commit)."""

    LOCK = "SELECT pg_advisory_xact_lock(%s)"
    TAIL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"
    LAST_CHECKPOINT = "SELECT id, seq, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1"
    INSERT = (
        "INSERT INTO audit_events (seq, body, hash) "
        "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[])"
    )
    INSERT_CHECKPOINT = (
        "INSERT INTO audit_checkpoints (id, seq, hash, at, key_id, signature) "
        "VALUES (%s, %s, %s, %s, %s, %s)"
    )

    def __init__(self, audit: AuditLog) -> None:
        super().__init__(audit)
        self._raw: PoolProxiedConnection | None = None

    def write(self, events: list[AuditEvent], sign: bool) -> list[Recorded]:
        if self._raw is None:
            self._raw = self.audit.engine.raw_connection()
        conn = self._raw.driver_connection
        try:
            with conn.pipeline():
                conn.execute(self.LOCK, (ADVISORY_LOCK_KEY,))
                tail_cur = conn.execute(self.TAIL)
                last_cur = conn.execute(self.LAST_CHECKPOINT) if sign else None
            tail = tail_cur.fetchone()
            rows = _link_all(events, *(tail or (0, GENESIS)))
            with conn.pipeline():
                conn.execute(
                    self.INSERT,
                    ([r.seq for r in rows], [r.body for r in rows], [r.hash for r in rows]),
                )
                if last_cur is not None:
                    self._sign(conn, rows[-1], last_cur.fetchone())
                conn.commit()
        except BaseException:
            self._raw.invalidate()  # a broken or half-done transaction: start afresh
            self._raw = None
            raise
        if last_cur is not None:
            self.audit._unsigned, self.audit._signed_at = 0, time.monotonic()
        else:
            self.audit._unsigned += len(rows)
        return [Recorded(r.seq, r.hash, r.at) for r in rows]

    def _sign(self, conn: Any, tail: _Row, last: tuple[int, int, str] | None) -> None:
        signer = self.audit.signer
        assert signer is not None
        cid, prev_sig = (last[0] + 1, last[2]) if last else (1, "")
        at = timestamp()
        sig = signer.sign(checkpoint_message(cid, tail.seq, tail.hash, at, prev_sig))
        conn.execute(self.INSERT_CHECKPOINT, (cid, tail.seq, tail.hash, at, signer.key_id, sig))

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None


def _batch_writer(audit: AuditLog) -> _BatchWriter:
    dialect = audit.engine.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return _PipelinedWriter(audit)
    return _BatchWriter(audit)
