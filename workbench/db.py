"""The service database: one SQLAlchemy metadata, engines for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    MetaData,
    Select,
    Table,
    TypeDecorator,
    create_engine,
    event,
    exc,
    insert,
)
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and write-locking transactions
    (`BEGIN IMMEDIATE`), so that the audit chain's read-then-append cannot interleave."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.rstrip("/") != "sqlite:":
            # a file: every worker thread keeps its connection (the default 5 made the 6th
            # to 9th of 8 concurrent grants open and close one each time, PRAGMAs and all)
            kwargs.setdefault("pool_size", 20)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})  # a dead server is an error
    ping_idle = kwargs.pop("ping_idle_seconds", PING_IDLE_SECONDS)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, ping_idle)
    return engine


class RawQuery:
    """A SELECT compiled once for `engine` and run on a pooled DBAPI connection, for the one
    read on a hot path (a grant's request): SQLAlchemy's per-call work — a Connection, a
    BEGIN, the compiled-cache lookup, the result object — costs ~0.15 ms, twenty times the
    SELECT itself on SQLite. The columns' types still convert the row. A failure is raised
    as SQLAlchemy raises it (a DBAPIError), and drops the connection."""

    def __init__(self, engine: Engine, stmt: Select[*tuple[Any, ...]]) -> None:
        self.engine = engine
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for a named paramstyle (psycopg)
        self.types = [c.type for c in stmt.selected_columns]
        self.autocommit = engine.dialect.name == "postgresql"  # no BEGIN, no ROLLBACK
        self.processors: list[Any] | None = None

    def first(self, **params: Any) -> tuple[Any, ...] | None:
        args = tuple(params[k] for k in self.positions) if self.positions else params
        error = self.engine.dialect.loaded_dbapi.Error
        try:
            raw = self.engine.raw_connection()
        except error as e:  # no connection could be made
            raise exc.DBAPIError.instance(self.sql, args, e, error) from e
        try:
            driver: Any = raw.driver_connection
            if self.autocommit:
                driver.autocommit = True
            cursor = raw.cursor()
            try:
                cursor.execute(self.sql, args)
                row = cursor.fetchone()
                description = cursor.description
            finally:
                cursor.close()
                if self.autocommit:
                    driver.autocommit = False
        except error as e:
            raw.invalidate()
            raise exc.DBAPIError.instance(self.sql, args, e, error) from e
        finally:
            raw.close()
        if row is None:
            return None
        if self.processors is None:
            dialect = self.engine.dialect
            self.processors = [
                t.dialect_impl(dialect).result_processor(dialect, d[1])
                for t, d in zip(self.types, description, strict=True)
            ]
        return tuple(p(v) if p else v for p, v in zip(self.processors, row, strict=True))


class RawInsert:
    """An INSERT of whole rows of `table` (each naming every column), compiled once for a
    dialect with positional parameters (SQLite), for a DBAPI cursor's `executemany`; the
    columns' types still convert each value."""

    def __init__(self, dialect: Dialect, table: Table) -> None:
        keys = [c.key for c in table.columns]
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name} does not take positional parameters")
        self.sql = str(compiled)
        types = {c.key: c.type for c in table.columns}
        self.columns = [
            (k, types[k].dialect_impl(dialect).bind_processor(dialect))
            for k in compiled.positiontup
        ]

    def params(self, row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(p(row[k]) if p else row[k] for k, p in self.columns)


# A connection used within this many seconds is handed out without a ping.
PING_IDLE_SECONDS = 2.0


def _ping_when_idle(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection on checkout only when it sat idle longer than `seconds`.

    `pool_pre_ping` pings on every checkout: a round trip per transaction, a fifth of a
    grant's database time. Connections in steady use need none: a server that went away
    since is still noticed on first use, which invalidates the whole pool (SQLAlchemy's
    disconnect handling), so one call fails and the next gets a fresh connection.
    """

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as e:
            raise exc.DisconnectionError(f"pooled connection is gone: {e}") from e
        if not alive:  # the pool retries with a new connection
            raise exc.DisconnectionError("pooled connection did not answer a ping")


def session_factory(engine: Engine) -> sessionmaker[Any]:
    return sessionmaker(engine, expire_on_commit=False)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
