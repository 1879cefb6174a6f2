"""Searching the audit log: by tenant, user, action prefix and time; newest first."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from workbench.audit import AuditEvent, AuditLog, Filters
from workbench.audit import query as q

EARLY = [
    ("acme", "alice", "data.read"),
    ("acme", "alice", "data.read"),
    ("acme", "alice", "request.file"),
    ("acme", "bob", "request.approve"),
    ("acme", "bob", "data.read"),
    ("acme", "carol", "credential.issue"),
    ("globex", "alice", "data.read"),
    ("globex", "dave", "request.file"),
]
LATE = [
    ("acme", "alice", "data.read"),
    ("acme", "bob", "requests.list"),
    ("acme", "erin", "request"),
    ("acme", "erin", "dataxread.get"),
    ("globex", "alice", "data.read"),
]


@dataclass
class Log:
    engine: Engine
    middle: datetime  # after every EARLY event, before every LATE one

    def events(self, limit: int = 1000, **filters: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return q.events(conn, Filters(**filters), limit)

    def triples(self, **filters: Any) -> list[tuple[str, str, str]]:
        """(tenant, actor, action) of the matching events, oldest first."""
        return [(e["tenant"], e["actor"], e["action"]) for e in reversed(self.events(**filters))]

    def count_by_user(self, **filters: Any) -> dict[str, int]:
        with self.engine.connect() as conn:
            return q.count_by_user(conn, Filters(**filters))


@pytest.fixture
def log(engine: Engine, make_log: Callable[..., AuditLog]) -> Log:
    audit = make_log()
    for tenant, actor, action in EARLY:
        outcome = "refused" if action == "credential.issue" else "ok"
        audit.record(AuditEvent(action, actor, tenant=tenant, outcome=outcome, request_id=9))
    time.sleep(0.005)
    middle = datetime.now(UTC)
    time.sleep(0.005)
    for tenant, actor, action in LATE:
        audit.record(AuditEvent(action, actor, tenant=tenant))
    return Log(engine, middle)


def test_everything_newest_first_with_seq_and_hash(log: Log) -> None:
    events = log.events()
    assert [e["seq"] for e in events] == list(range(len(EARLY) + len(LATE), 0, -1))
    assert all(len(e["hash"]) == 64 for e in events)
    assert log.triples() == EARLY + LATE


def test_by_tenant(log: Log) -> None:
    assert log.triples(tenant="globex") == [t for t in EARLY + LATE if t[0] == "globex"]


def test_by_user(log: Log) -> None:
    assert log.triples(user="alice") == [t for t in EARLY + LATE if t[1] == "alice"]
    assert log.triples(user="alice", tenant="acme") == [
        t for t in EARLY + LATE if t[:2] == ("acme", "alice")
    ]


def test_an_action_prefix_matches_at_a_dot(log: Log) -> None:
    assert [t[2] for t in log.triples(action="request")] == [
        "request.file",
        "request.approve",
        "request.file",
        "request",
    ]  # not "requests.list"


def test_a_dotted_action_matches_exactly(log: Log) -> None:
    assert log.triples(action="request.file") == [
        ("acme", "alice", "request.file"),
        ("globex", "dave", "request.file"),
    ]


def test_an_action_prefix_is_not_a_like_pattern(log: Log) -> None:
    assert log.triples(action="data_read") == []
    assert [t[2] for t in log.triples(action="dataxread")] == ["dataxread.get"]


def test_since_and_until(log: Log) -> None:
    assert log.triples(since=log.middle) == LATE
    assert log.triples(until=log.middle) == EARLY
    assert log.triples(since=log.middle, until=log.middle) == []
    assert log.triples(since=log.middle, tenant="globex") == [("globex", "alice", "data.read")]


def test_outcome_and_request(log: Log) -> None:
    assert log.triples(outcome="refused") == [("acme", "carol", "credential.issue")]
    assert len(log.events(request_id=9)) == len(EARLY)


def test_limit_keeps_the_newest(log: Log) -> None:
    newest = log.events(limit=3, tenant="acme")
    assert [e["seq"] for e in newest] == [12, 11, 10]
    assert [e["actor"] for e in newest] == ["erin", "erin", "bob"]
    assert len(log.events(limit=0)) == 1  # at least one


def test_count_by_user(log: Log) -> None:
    assert log.count_by_user(tenant="acme") == {"alice": 4, "bob": 3, "carol": 1, "erin": 2}
    assert log.count_by_user(tenant="acme", since=log.middle) == {"alice": 1, "bob": 1, "erin": 2}
    assert log.count_by_user(tenant="acme", action="data") == {"alice": 3, "bob": 1}
    assert log.count_by_user(tenant="initech") == {}
