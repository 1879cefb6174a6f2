"""Shared helpers for the benchmarks: scratch PostgreSQL databases, timing, the result table.

The PostgreSQL server comes from `$WORKBENCH_BENCH_PG` (an admin URL allowed to CREATE
DATABASE), by default the local `postgresql://postgres@127.0.0.1:5432/postgres`.

When `$WORKBENCH_BENCH_JSON` names a file, every table `print_table` prints is also appended
to it as one JSON line (`emit_json`), which is how `benchmarks/run` collects the rows of all
the scripts into one report without parsing their output.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

# The benchmarks run from a checkout: `python benchmarks/audit_append.py`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.audit import AuditEvent, Signer  # noqa: E402
from workbench.audit.chain import GENESIS, checkpoint_message, link, timestamp  # noqa: E402

ADMIN_URL = os.environ.get("WORKBENCH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
JSON_ENV = "WORKBENCH_BENCH_JSON"


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, and drop it afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: Sequence[float], p: float) -> float:
    """The `p`-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sample_event(i: int, tenants: int = 10, users: int = 50) -> AuditEvent:
    """A realistic data-access event; `i` spreads it over tenants, users and actions."""
    tenant = f"tenant{i % tenants:02d}"
    return AuditEvent(
        action=("data.read", "credential.issue", "request.approve", "server.start")[i % 4],
        actor=f"user{(i // tenants) % users:03d}",
        role="researcher",
        tenant=tenant,
        dataset="calls" if i % 2 else "accounts",
        purpose="churn model for the quarterly review",
        request_id=1000 + i % 997,
        resource=f"server/{tenant}-{i % 13}",
        client="127.0.0.1",
        detail={"objects": i % 17, "bytes": 4096 * (i % 31)},
    )


@dataclass
class Figure:
    """One row of a result table. `ratio` is ours/bare (or bare/ours where lower is better:
    then say so in `figure`); `goal` is how the ratio or value is judged."""

    figure: str
    ours: str
    bare: str
    ratio: float | None
    goal: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "-" if self.passed is None else ("pass" if self.passed else "SHORT")


def emit_json(title: str, figures: list[Figure], notes: Sequence[str] = ()) -> None:
    """Append one table as a JSON line to `$WORKBENCH_BENCH_JSON`, when it is set."""
    path = os.environ.get(JSON_ENV)
    if not path:
        return
    table = {
        "script": Path(sys.argv[0]).stem,
        "title": title,
        "rows": [
            {**asdict(f), "ratio": None if f.ratio is None or math.isnan(f.ratio) else f.ratio}
            | {"verdict": f.verdict}
            for f in figures
        ],
        "notes": list(notes),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(table) + "\n")


def print_table(title: str, figures: list[Figure], notes: Sequence[str] = ()) -> None:
    emit_json(title, figures, notes)
    header = ("figure", "this project", "bare baseline", "ratio", "goal", "pass/short")
    rows = [
        (
            f.figure,
            f.ours,
            f.bare,
            "-" if f.ratio is None else f"{f.ratio:.2f}x",
            f.goal,
            f.verdict,
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    print()
    print(f"## {title}")
    print(f"({platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()})")
    print()
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    for note in notes:
        print(f"\n{note}")
    print()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bulk_load(
    url: str,
    n: int,
    *,
    days: int = 90,
    tenants: int = 10,
    users: int = 50,
    signer: Signer | None = None,
    checkpoint_every: int = 10_000,
    progress: bool = True,
) -> None:
    """COPY `n` valid chained events into a migrated database, their times spread evenly
    over the last `days` days, with a signed checkpoint every `checkpoint_every` events.

    Bodies and hashes come from the real chain functions; the database generates the other
    columns. The secondary indexes are dropped for the load and rebuilt from their own
    definitions afterwards, then the table is vacuumed and analysed.
    """
    end = datetime.now(UTC)
    start = end - timedelta(days=days)
    step = (end - start) / n
    prev, started = GENESIS, time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = [
            (name, ddl)
            for name, ddl in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'audit_events' AND indexname NOT LIKE 'pk_%'"
            )
        ]
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        checkpoints: list[tuple[int, int, str, str, str, str]] = []
        last_sig = ""
        with (
            conn.cursor() as cur,
            cur.copy("COPY audit_events (seq, body, hash) FROM STDIN") as copy,
        ):
            for seq in range(1, n + 1):
                body = sample_event(seq, tenants, users).body(seq, timestamp(start + step * seq))
                prev = link(prev, body)
                copy.write_row((seq, body, prev))
                if signer is not None and (seq % checkpoint_every == 0 or seq == n):
                    cid, at = len(checkpoints) + 1, timestamp()
                    last_sig = signer.sign(checkpoint_message(cid, seq, prev, at, last_sig))
                    checkpoints.append((cid, seq, prev, at, signer.key_id, last_sig))
                if progress and seq % 200_000 == 0:
                    print(f"  loaded {seq:,} events ({time.perf_counter() - started:.0f} s)")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO audit_checkpoints (id, seq, hash, at, key_id, signature) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                checkpoints,
            )
        for _, ddl in indexes:
            conn.execute(ddl)
        conn.execute("VACUUM ANALYZE audit_events")
        conn.execute("VACUUM ANALYZE audit_checkpoints")
    if progress:
        print(f"  loaded and indexed {n:,} events in {time.perf_counter() - started:.0f} s")
