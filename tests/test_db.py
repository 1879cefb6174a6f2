"""The hot path's raw statements (`RawQuery`, `RawInsert`): the same rows as SQLAlchemy's,
and SQLAlchemy's errors when the database cannot answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, Engine, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.exc import DBAPIError

from tests.audit.conftest import create_database, drop_database
from workbench.db import RawInsert, RawQuery, UTCDateTime, make_engine

ROWS = Table(
    "test_raw_rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(40), nullable=False),
    Column("tags", JSON),
    Column("at", UTCDateTime, nullable=True),
)
BY_ID = select(ROWS.c.name, ROWS.c.tags, ROWS.c.at).where(ROWS.c.id == bindparam("id"))
AT = datetime(2026, 11, 23, 4, 5, 6, 789000, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'raw.sqlite'}"
    if request.param == "postgres":
        url = create_database("wb_test_raw")
    engine = make_engine(url)
    ROWS.create(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if request.param == "postgres":
            drop_database(url)


def test_a_raw_query_converts_its_row_as_sqlalchemy_does(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(ROWS.insert(), [{"id": 1, "name": "calls", "tags": ["a", "b"], "at": AT}])
        conn.execute(ROWS.insert(), [{"id": 2, "name": "none", "tags": None, "at": None}])
        expected = [tuple(conn.execute(BY_ID, {"id": i}).one()) for i in (1, 2)]
    query = RawQuery(engine, BY_ID)
    got = [query.first(id=i) for i in (1, 2)]
    assert got == expected == [("calls", ["a", "b"], AT), ("none", None, None)]
    assert got[0] is not None and got[0][2].tzinfo is UTC  # aware, as UTCDateTime gives it
    assert query.first(id=3) is None


def test_a_raw_query_raises_sqlalchemy_s_error_when_the_database_cannot_answer(
    engine: Engine,
) -> None:
    query = RawQuery(engine, BY_ID)
    ROWS.drop(engine)
    with pytest.raises(DBAPIError):  # the service answers a DBAPIError with 503
        query.first(id=1)
    ROWS.create(engine)
    assert query.first(id=1) is None  # the broken connection was dropped, not reused


def test_a_raw_query_that_cannot_connect_raises_sqlalchemy_s_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}")
    with pytest.raises(DBAPIError):
        RawQuery(engine, BY_ID).first(id=1)


def test_a_raw_insert_writes_what_sqlalchemy_reads_back(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'raw.sqlite'}")
    ROWS.create(engine)
    insert = RawInsert(engine.dialect, ROWS)
    raw = engine.raw_connection()
    try:
        rows = [{"id": 1, "name": "calls", "tags": ["x"], "at": AT}]
        raw.driver_connection.executemany(insert.sql, [insert.params(r) for r in rows])  # type: ignore[union-attr]
    finally:
        raw.close()
    with engine.connect() as conn:
        assert tuple(conn.execute(BY_ID, {"id": 1}).one()) == ("calls", ["x"], AT)
    pg = make_engine("postgresql://postgres@127.0.0.1:5432/postgres")
    with pytest.raises(ValueError, match="positional"):  # psycopg takes named parameters
        RawInsert(pg.dialect, ROWS)
