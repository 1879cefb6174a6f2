"""The one path into the audit log.

`AuditLog.record(event)` returns only once the event is durably committed; on PostgreSQL
concurrent callers share one transaction and one fsync (group commit) made by a single writer
thread, and a caller that finds nobody writing writes its own (on SQLite each caller writes;
see `record`). `AuditLog.append(conn, events)` writes inside a caller's transaction, so a
state change and the event that describes it commit together or not at all. `record` and
`submit` may carry such a state change too: rows of other tables inserted in the event's own
transaction (a grant and its `grant.issue` event), so that concurrent grants share a commit.

Every append holds the chain lock while it reads the chain's tail and links new events to it:
on PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock that `make_engine`'s
`BEGIN IMMEDIATE` takes. Either way the seq primary key makes a forked chain impossible.
No in-process lock is held while waiting for the database's lock: a caller whose transaction
already holds it may append again without deadlocking against the writer thread.

The writer keeps one connection. On PostgreSQL (psycopg) it remembers the tail it wrote last
and sends each batch as a single statement, so a batch costs one round trip and one commit.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text
from sqlalchemy.engine import Dialect, Engine
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
from workbench.db import RawInsert

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x5742_4155  # "WBAU"
UNIQUE_VIOLATION = "23505"


# Rows of other tables to commit with an event: called with the seq the event is about to get,
# before the event is hashed (so it may name that seq in the event's detail); it returns
# (table, row) pairs, each row naming every column. Called again if the batch is re-linked.
Companions = Callable[[int], list[tuple[Table, dict[str, Any]]]]


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
        """The canonical JSON the chain hashes: these fields plus `v`, `seq` and `at`."""
        # A shallow copy is enough for json and five times faster than asdict(); asdict()
        # remains for a `detail` holding dataclasses, and gives the same text.
        data = {name: getattr(self, name) for name in _EVENT_FIELDS}
        data.update(v=SCHEMA_VERSION, seq=seq, at=at)
        try:
            return canonical(data)
        except TypeError:
            data = asdict(self)
            data.update(v=SCHEMA_VERSION, seq=seq, at=at)
            return canonical(data)


_EVENT_FIELDS = tuple(f.name for f in fields(AuditEvent))


@dataclass(frozen=True)
class Recorded:
    seq: int
    hash: str
    at: str


@dataclass(frozen=True)
class _Item:
    """A queued event, its companion rows, and the future its caller waits on."""

    event: AuditEvent
    rows: Companions | None
    future: Future[Recorded]


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


def _companions(fns: list[Companions | None], seq: int) -> dict[Table, list[dict[str, Any]]]:
    """The rows `fns` add for events numbered from `seq + 1`, by table."""
    out: dict[Table, list[dict[str, Any]]] = {}
    for i, fn in enumerate(fns, start=seq + 1):
        for table, row in fn(i) if fn is not None else ():
            out.setdefault(table, []).append(row)
    return out


def _lock_chain(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY})


# Built once: building a statement costs more Python than running this one does.
_TAIL = select(audit_events.c.seq, audit_events.c.hash).order_by(audit_events.c.seq.desc()).limit(1)
_INSERT = insert(audit_events)


def _tail(conn: Connection) -> tuple[int, str]:
    row = conn.execute(_TAIL).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


# The chain's tail, for the writers that run SQL of their own.
TAIL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"

# One statement per batch, its arrays sent in binary: no statement per row, and no quoting
# of each body into an array literal.
PG_INSERT = (
    "INSERT INTO audit_events (seq, body, hash) "
    "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[])"
)


def _insert(conn: Connection, rows: list[_Row]) -> None:
    if not rows:
        return
    columns = ([r.seq for r in rows], [r.body for r in rows], [r.hash for r in rows])
    if conn.dialect.driver == "psycopg":
        conn.exec_driver_sql(PG_INSERT, columns)
    else:
        conn.execute(_INSERT, [{"seq": r.seq, "body": r.body, "hash": r.hash} for r in rows])


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
        write_timeout: float = 30.0,
    ) -> None:
        self.engine = engine
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.max_batch = max_batch
        # On PostgreSQL the longest one write may take (the writer connection's
        # statement_timeout), and so the least `timeout` of a record() written in the caller.
        self.write_timeout = write_timeout
        self._writer_lock = threading.Lock()
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._in_caller = engine.dialect.name == "sqlite"  # see record()
        # On PostgreSQL, one writer (it remembers the tail) for the writer thread and for
        # callers that find nobody writing; whoever uses it holds `_turn`.
        self._pg = _PgBatchWriter(self) if _PgBatchWriter.fits(engine) else None
        # Writers of this process take turns here (see record()).
        self._turn = threading.Lock()
        # SQLite callers waiting to be written together, and whether one of them writes now.
        self._gather = threading.Condition()
        self._gathered: list[_Item] = []
        self._gathering = False
        # Events this process appended since it last signed: decides when the writer signs
        # next without asking the database after every batch. Approximate by design.
        self._unsigned = 0
        self._signed_at = time.monotonic()

    # -- the record path ---------------------------------------------------------------

    def record(
        self, event: AuditEvent, timeout: float = 30.0, rows: Companions | None = None
    ) -> Recorded:
        """Commit `event` (with the `rows` it describes, in the same transaction); raise
        AuditUnavailable when it cannot be committed.

        On SQLite a caller's thread writes it: handing each event to the writer thread costs
        more in waits for the GIL than it saves (8 concurrent grants: ~4 ms each here, ~15 ms
        through the writer). Callers that come while one of them writes wait, and the first to
        wake writes every event that waits by then, in one transaction with one fsync: a group
        commit with no thread in between. Writers of this process take turns on a lock
        (`_turn`): one waiting on SQLite's own busy handler sleeps in growing steps (up to
        100 ms) and is overtaken by newcomers, one waiting on the lock is woken the moment it
        is free (8 concurrent grants here: p99 ~45-80 ms instead of ~250-360 ms).

        Elsewhere the writer thread group-commits it with its neighbours, unless nobody is
        writing or waiting: then the caller writes it itself, sparing two hand-offs between
        threads (~0.3 ms of a sequential grant's ~1 ms on PostgreSQL). The server then bounds
        the write by `write_timeout`, so only a call that allows at least that may."""
        if self._in_caller:
            return self._write_together(_Item(event, rows, Future()), timeout)
        if (
            self._pg is not None
            and timeout >= self.write_timeout
            and self._queue.empty()
            and self._turn.acquire(blocking=False)
        ):
            try:
                return self._write_here(self._pg.write_locked, event, rows)
            finally:
                self._turn.release()
        fut = self.submit(event, rows)
        try:
            return fut.result(timeout)
        except AuditUnavailable:
            raise
        except FutureTimeout as e:
            fut.cancel()  # when the writer has not taken it yet, it is never written
            raise AuditUnavailable(f"the audit log could not be written within {timeout}s") from e
        except Exception as e:  # the writer's own failure
            raise AuditUnavailable(f"the audit log could not be written: {e}") from e

    def _write_here(
        self, write: Callable[..., list[Recorded]], event: AuditEvent, rows: Companions | None
    ) -> Recorded:
        """Commit `event` with `write`, in the caller's thread."""
        self._open()
        try:
            return write([event], [rows], self._sign_due(1))[0]
        except AuditUnavailable:
            raise
        except Exception as e:
            raise AuditUnavailable(f"the audit log could not be written: {e}") from e

    def _write_together(self, item: _Item, timeout: float) -> Recorded:
        """SQLite: commit `item` in the caller's thread, with whatever other callers left
        waiting meanwhile (see record())."""
        self._open()
        deadline = time.monotonic() + timeout
        with self._gather:
            self._gathered.append(item)
            self._gather.wait_for(lambda: not self._gathering or item.future.done(), timeout)
            lead = not self._gathering and not item.future.done()
            if lead:  # nobody writes: this caller writes everything waiting
                self._gathering = True
                batch = self._gathered[: self.max_batch]
                del self._gathered[: self.max_batch]
            elif not item.future.done() and item.future.cancel():  # never written now
                if item in self._gathered:
                    self._gathered.remove(item)
                raise AuditUnavailable(f"the audit log could not be written within {timeout}s")
        if lead:
            self._write_batch(batch)
        try:
            return item.future.result(max(0.0, deadline - time.monotonic()))
        except AuditUnavailable:
            raise
        except FutureTimeout as e:
            raise AuditUnavailable(f"the audit log could not be written within {timeout}s") from e

    def _write_batch(self, batch: list[_Item]) -> None:
        """Write `batch` (gathered by `_write_together`) and wake its callers. When the batch
        fails, each event is tried alone, so that one bad event fails nobody else."""
        writer = _SqliteWriter(self)
        try:
            batch = [i for i in batch if i.future.set_running_or_notify_cancel()]
            alone = len(batch) == 1
            if batch and not self._commit(writer, batch, last_try=alone) and not alone:
                for item in batch:
                    self._commit(writer, [item], last_try=True)
        finally:
            writer.close()
            with self._gather:
                self._gathering = False
                self._gather.notify_all()

    def _commit(self, writer: _BatchWriter, items: list[_Item], last_try: bool) -> bool:
        """Commit `items` with `writer` in one transaction and resolve their futures; False
        when that failed, then with their futures failed only on the `last_try`."""
        try:
            recorded = writer.write(
                [i.event for i in items], [i.rows for i in items], self._sign_due(len(items))
            )
        except Exception as e:
            log.error("audit write of %d event(s) failed: %s", len(items), e)
            if last_try:
                error = e if isinstance(e, AuditUnavailable) else None
                for i in items:
                    i.future.set_exception(
                        error or AuditUnavailable(f"the audit log could not be written: {e}")
                    )
            return False
        for i, rec in zip(items, recorded, strict=True):
            i.future.set_result(rec)
        return True

    async def arecord(self, event: AuditEvent) -> Recorded:
        try:
            return await asyncio.wrap_future(self.submit(event))
        except AuditUnavailable:
            raise
        except Exception as e:
            raise AuditUnavailable(f"the audit log could not be written: {e}") from e

    def submit(self, event: AuditEvent, rows: Companions | None = None) -> Future[Recorded]:
        """Queue `event` (and its `rows`) for the next group commit; the future resolves once
        it is durable."""
        self._open()
        fut: Future[Recorded] = Future()
        self._queue.put(_Item(event, rows, fut))
        return fut

    def append(
        self,
        conn: Connection,
        events: list[AuditEvent],
        rows: list[Companions | None] | None = None,
    ) -> list[Recorded]:
        """Write `events` (and, aligned with them, their companion `rows`) inside the caller's
        open transaction (committed with it).

        The chain lock is held until that transaction ends, so keep it short."""
        _lock_chain(conn)
        tail = _tail(conn)
        extra = _companions(rows or [], tail[0])  # before linking: they may fill in details
        linked = _link_all(events, *tail)
        _insert(conn, linked)
        for table, values in extra.items():
            conn.execute(insert(table), values)
        self._unsigned += len(linked)
        return [Recorded(r.seq, r.hash, r.at) for r in linked]

    def checkpoint(self, force: bool = False) -> int | None:
        """Sign the chain's tail when `checkpoint_every` events (or, with `force`, any) are
        unsigned. Returns the checkpoint's seq, or None when none was due."""
        if self.signer is None:
            return None
        with self._turn, self.engine.begin() as conn:
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
        last = conn.execute(
            select(audit_checkpoints).order_by(audit_checkpoints.c.id.desc()).limit(1)
        ).first()
        unsigned = seq - (last.seq if last else 0)
        if unsigned <= 0 or (unsigned < self.checkpoint_every and not force):
            return None
        cid = (last.id if last else 0) + 1
        at = timestamp()
        sig = self.signer.sign(
            checkpoint_message(cid, seq, hash_, at, last.signature if last else "")
        )
        conn.execute(
            insert(audit_checkpoints).values(
                id=cid, seq=seq, hash=hash_, at=at, key_id=self.signer.key_id, signature=sig
            )
        )
        self._unsigned, self._signed_at = 0, time.monotonic()
        return seq

    def _sign_due(self, batch: int) -> bool:
        """Whether to sign the tail once a batch of `batch` events is appended."""
        return self.signer is not None and (
            self._unsigned + batch >= self.checkpoint_every
            or time.monotonic() - self._signed_at >= self.checkpoint_seconds
        )

    def _open(self) -> None:
        """Refuse when closed; otherwise make sure the writer thread runs (it also signs the
        tail when the log falls idle)."""
        if self._closed:
            raise AuditUnavailable("the audit log is closed")
        self._ensure_writer()

    def _ensure_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            with self._writer_lock:
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(
                        target=self._write_loop, name="audit-writer", daemon=True
                    )
                    self._writer.start()

    def _write_loop(self) -> None:
        writer = self._pg or _BatchWriter(self)
        try:
            while self._write_next(writer):
                pass
        finally:
            with self._turn:
                _quietly(writer.close)
            self._fail_queued(AuditUnavailable("the audit log is closed"))

    def _write_next(self, writer: _BatchWriter) -> bool:
        """Commit the next batch of queued events; False once the log is closed."""
        try:
            item = self._queue.get(timeout=self.checkpoint_seconds)
        except queue.Empty:
            self._checkpoint_quietly()
            return True
        batch: list[_Item] = []
        while item is not None:
            if item.future.set_running_or_notify_cancel():  # skip what record() gave up on
                batch.append(item)
            if len(batch) >= self.max_batch:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        if batch:
            self._commit(writer, batch, last_try=True)
        if item is None:  # close() was called: everything before it is written
            self._checkpoint_quietly()
            return False
        return True

    def _fail_queued(self, error: AuditUnavailable) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.future.set_running_or_notify_cancel():
                item.future.set_exception(error)

    def _checkpoint_quietly(self) -> None:
        try:
            self.checkpoint(force=True)
        except Exception as e:  # the next batch or timer tries again
            log.warning("audit checkpoint failed: %s", e)


class _BatchWriter:
    """Commits one batch of events (and, when due, a checkpoint) per transaction, over a
    connection it keeps between batches and drops after a failure."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit
        self._conn: Connection | None = None

    def write(
        self, events: list[AuditEvent], rows: list[Companions | None], sign: bool
    ) -> list[Recorded]:
        if self._conn is None:
            self._conn = self.audit.engine.connect()
        try:
            with self.audit._turn, self._conn.begin():
                recorded = self.audit.append(self._conn, events, rows)
                if sign:
                    last = recorded[-1]
                    self.audit._sign_tail(self._conn, (last.seq, last.hash), force=True)
        except BaseException:
            self.discard()
            raise
        return recorded

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def discard(self) -> None:
        """Drop the connection after a failure: it may be broken or mid-transaction."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            _quietly(conn.invalidate)
            _quietly(conn.close)


class _SqliteWriter(_BatchWriter):
    """A caller's batch on SQLite over the DBAPI connection alone: BEGIN IMMEDIATE, the tail,
    the rows, COMMIT, without SQLAlchemy's per-statement work (in a tight loop here 0.42 ms
    through SQLAlchemy, 0.13 ms without). A batch due to be signed goes the usual way."""

    EVENTS = "INSERT INTO audit_events (seq, body, hash) VALUES (?, ?, ?)"

    def write(
        self, events: list[AuditEvent], rows: list[Companions | None], sign: bool
    ) -> list[Recorded]:
        if sign:
            return super().write(events, rows, sign)
        raw = self.audit.engine.raw_connection()
        db: Any = raw.driver_connection
        try:
            with self.audit._turn:
                db.execute("BEGIN IMMEDIATE")
                seq, prev = db.execute(TAIL).fetchone() or (0, GENESIS)
                extra = _companions(rows, seq)  # before linking: they may fill in details
                linked = _link_all(events, seq, prev)
                db.executemany(self.EVENTS, [(r.seq, r.body, r.hash) for r in linked])
                for table, values in extra.items():
                    ins = _raw_insert(table, self.audit.engine.dialect)
                    db.executemany(ins.sql, [ins.params(v) for v in values])
                db.execute("COMMIT")
        except BaseException:
            raw.invalidate()  # closing it rolls back whatever was left open
            raise
        finally:
            raw.close()
        self.audit._unsigned += len(linked)
        return [Recorded(r.seq, r.hash, r.at) for r in linked]


@functools.lru_cache(maxsize=64)
def _raw_insert(table: Table, dialect: Dialect) -> RawInsert:
    return RawInsert(dialect, table)


class _PgBatchWriter(_BatchWriter):
    """The writer on PostgreSQL with psycopg: one statement, one round trip per batch.

    It remembers the chain's tail and last checkpoint from its own last commit, and sends one
    autocommit statement that takes the chain lock and inserts the batch (and, when due, the
    checkpoint over it) only if the chain still ends at the remembered tail. When another
    writer appended meanwhile, nothing is inserted — or, had that writer committed after the
    statement's snapshot, the seq primary key refuses it — and the batch is linked again to
    the tail read under the lock. One wait per batch matters: each hands the GIL back.
    """

    LOCK = "SELECT pg_advisory_xact_lock(%s)"
    LAST_CHECKPOINT = "SELECT id, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1"
    EVENTS = (
        "WITH locked AS (SELECT pg_advisory_xact_lock(%(key)s)), "
        "ev AS (INSERT INTO audit_events (seq, body, hash) "
        "SELECT u.seq, u.body, u.hash FROM locked, "
        "unnest(%(seqs)b::bigint[], %(bodies)b::text[], %(hashes)b::text[]) AS u(seq, body, hash) "
        "WHERE (SELECT coalesce(max(seq), 0) FROM audit_events) = %(after)s RETURNING 1)"
    )
    # Companion rows of one table, each row a JSON object naming every column; inserted only
    # when the events were.
    COMPANIONS = (
        ", {name} AS (INSERT INTO {table} SELECT * FROM "
        "jsonb_populate_recordset(NULL::{table}, %({name})s::jsonb) "
        "WHERE (SELECT count(*) FROM ev) = %(n)s)"
    )
    UNSIGNED = " SELECT (SELECT count(*) FROM ev), 0"
    SIGNED = (
        ", cp AS (INSERT INTO audit_checkpoints (id, seq, hash, at, key_id, signature) "
        "SELECT %(cid)s::integer, %(cseq)s::bigint, %(chash)s::text, %(cat)s::text, "
        "%(ckey)s::text, %(csig)s::text "
        "WHERE (SELECT count(*) FROM ev) = %(n)s "
        "AND (SELECT coalesce(max(id), 0) FROM audit_checkpoints) = %(cid)s - 1 RETURNING 1) "
        "SELECT (SELECT count(*) FROM ev), (SELECT count(*) FROM cp)"
    )

    @staticmethod
    def fits(engine: Engine) -> bool:
        return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"

    def __init__(self, audit: AuditLog) -> None:
        super().__init__(audit)
        self._raw: PoolProxiedConnection | None = None
        self._tail: tuple[int, str] | None = None  # (seq, hash)
        self._last_checkpoint: tuple[int, str] | None = None  # (id, signature)

    def write(
        self, events: list[AuditEvent], rows: list[Companions | None], sign: bool
    ) -> list[Recorded]:
        with self.audit._turn:
            return self.write_locked(events, rows, sign)

    def write_locked(
        self, events: list[AuditEvent], rows: list[Companions | None], sign: bool
    ) -> list[Recorded]:
        """`write`, by a caller that holds the log's `_turn`."""
        if self._raw is None:
            self._raw = self.audit.engine.raw_connection()
            driver: Any = self._raw.driver_connection
            driver.autocommit = True
            driver.execute(f"SET statement_timeout = {int(self.audit.write_timeout * 1000)}")
        conn: Any = self._raw.driver_connection
        try:
            recorded = None
            if self._tail is not None and (self._last_checkpoint is not None or not sign):
                recorded = self._insert(conn, events, rows, sign)
            if recorded is None:  # not known, or stale: read it under the lock
                with conn.transaction():
                    conn.execute(self.LOCK, (ADVISORY_LOCK_KEY,))
                    self._tail = conn.execute(TAIL).fetchone() or (0, GENESIS)
                    last = conn.execute(self.LAST_CHECKPOINT).fetchone()
                    self._last_checkpoint = last or (0, "")
                    recorded = self._insert(conn, events, rows, sign)
            if recorded is None:
                raise AuditUnavailable("the audit chain's tail moved while it was locked")
        except BaseException:
            self.discard()
            raise
        return recorded

    def _insert(
        self, conn: Any, events: list[AuditEvent], companions: list[Companions | None], sign: bool
    ) -> list[Recorded] | None:
        """Insert `events` (and their companion rows) after the remembered tail; None when
        that is no longer the tail."""
        assert self._tail is not None
        seq, prev = self._tail
        extra = _companions(companions, seq)  # before linking: they may fill in details
        rows = _link_all(events, seq, prev)
        params: dict[str, Any] = {
            "key": ADVISORY_LOCK_KEY,
            "seqs": [r.seq for r in rows],
            "bodies": [r.body for r in rows],
            "hashes": [r.hash for r in rows],
            "after": seq,
            "n": len(rows),
        }
        sql = self.EVENTS
        for i, (table, values) in enumerate(extra.items()):
            sql += self.COMPANIONS.format(name=f"c{i}", table=_quoted(table.name))
            params[f"c{i}"] = json.dumps(values, default=_json_value)
        checkpoint = self._sign(rows[-1], params) if sign else None
        try:
            inserted, signed = conn.execute(
                sql + (self.SIGNED if sign else self.UNSIGNED), params
            ).fetchone()
        except Exception as e:
            # A writer that committed after this statement's snapshot was taken (and before
            # it got the lock): stale, unless the tail was read under the lock.
            if getattr(e, "sqlstate", None) != UNIQUE_VIOLATION or conn.info.transaction_status:
                raise
            self._tail = self._last_checkpoint = None
            return None
        if inserted != len(rows):
            self._tail = self._last_checkpoint = None
            return None
        self._tail = (rows[-1].seq, rows[-1].hash)
        if signed and checkpoint is not None:
            self._last_checkpoint = checkpoint
            self.audit._unsigned, self.audit._signed_at = 0, time.monotonic()
        else:
            if sign:  # someone else signed meanwhile: read theirs next time
                self._last_checkpoint = None
            self.audit._unsigned += len(rows)
        return [Recorded(r.seq, r.hash, r.at) for r in rows]

    def _sign(self, tail: _Row, params: dict[str, Any]) -> tuple[int, str]:
        """Sign `tail`, adding the checkpoint's columns to `params`; returns its id and
        signature."""
        signer = self.audit.signer
        assert signer is not None and self._last_checkpoint is not None
        last_id, last_sig = self._last_checkpoint
        cid, at = last_id + 1, timestamp()
        sig = signer.sign(checkpoint_message(cid, tail.seq, tail.hash, at, last_sig))
        params.update(
            cid=cid,
            cseq=tail.seq,
            chash=tail.hash,
            cat=at,
            ckey=signer.key_id,
            csig=sig,
        )
        return cid, sig

    def close(self) -> None:
        self._tail = self._last_checkpoint = None
        if self._raw is not None:
            raw, self._raw = self._raw, None
            driver: Any = raw.driver_connection
            driver.execute("RESET statement_timeout")  # the pool's next user sets its own
            driver.autocommit = False
            raw.close()

    def discard(self) -> None:
        self._tail = self._last_checkpoint = None
        if self._raw is not None:
            raw, self._raw = self._raw, None
            _quietly(raw.invalidate)


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain table name: {name!r}")
    return f'"{name}"'


def _json_value(value: Any) -> Any:
    """Datetimes as ISO 8601 (PostgreSQL reads them back with their zone)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception as e:  # already broken: nothing more to lose
        log.debug("closing the audit writer's connection: %s", e)
