"""The service database: one SQLAlchemy metadata, engines for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, create_engine, event, exc
from sqlalchemy.engine import Connection, Engine
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
    (`BEGIN IMMEDIATE`), so that the audit chain's read-then-append cannot interleave; the
    connections `reading` hands out begin without the write lock."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
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
            read_only = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("connect_args", {"connect_timeout": 5})  # a dead server is an error
    ping_idle = kwargs.pop("ping_idle_seconds", PING_IDLE_SECONDS)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, ping_idle)
    return engine


READ_ONLY = "workbench_read_only"


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads alone: on SQLite its transaction takes no write lock (so it
    does not queue behind the audit writer), elsewhere it runs in autocommit (no ROLLBACK
    round trip when it is returned)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            yield conn.execution_options(**{READ_ONLY: True})
        else:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")


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
