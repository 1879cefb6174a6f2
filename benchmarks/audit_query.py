"""Audit queries on PostgreSQL over 2,000,000 events (10 tenants x 50 users x 90 days).

Two questions security asks, through `workbench.audit.query`:
  "tenant X, last 30 days, newest 1,000"  -> query.events(Filters(tenant, since), limit=1000)
  "count by user for tenant X, last 30 days" -> query.count_by_user(Filters(tenant, since))
The bare baseline runs the same SQL straight through psycopg, without our layer (SQLAlchemy,
JSON decoding of each body). Each run asks about the next tenant, round robin.

    .venv/bin/python benchmarks/audit_query.py [--quick] [--events N]
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from _common import Figure, bulk_load, ms, percentile, print_table, scratch_database, timed

from workbench import dbsetup
from workbench.audit import Filters, query
from workbench.audit.chain import timestamp
from workbench.db import make_engine

TENANTS = [f"tenant{i:02d}" for i in range(10)]
NEWEST_SQL = (
    "SELECT seq, body, hash FROM audit_events WHERE tenant = %s AND at >= %s "
    "ORDER BY at DESC, seq DESC LIMIT 1000"
)
COUNT_SQL = "SELECT actor, count(*) FROM audit_events WHERE tenant = %s AND at >= %s GROUP BY actor"


def latencies(runs: int, call: Callable[[str], object]) -> list[float]:
    for tenant in TENANTS:  # warm up: plans, caches
        call(tenant)
    gc.collect()  # not the loader's garbage
    out = []
    for i in range(runs):
        tenant = TENANTS[i % len(TENANTS)]
        out.append(timed(lambda: call(tenant)))  # noqa: B023  (called at once)
    return out


def explain(url: str, sql: str, since: str) -> str:
    with psycopg.connect(url) as conn:
        plan = conn.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql, (TENANTS[0], since))
        return "\n".join("    " + line for (line,) in plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 events instead of 2,000,000")
    parser.add_argument("--events", type=int, help="how many events to load")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each query")
    parser.add_argument("--plans", action="store_true", help="print the query plans")
    args = parser.parse_args()
    n = args.events or (200_000 if args.quick else 2_000_000)
    since = datetime.now(UTC) - timedelta(days=30)

    with scratch_database("wb_bench_query") as url:
        engine = make_engine(url)
        dbsetup.upgrade(engine)
        bulk_load(url, n)
        with engine.connect() as conn:
            newest = latencies(
                args.runs, lambda t: query.events(conn, Filters(tenant=t, since=since), 1000)
            )
            counts = latencies(
                args.runs, lambda t: query.count_by_user(conn, Filters(tenant=t, since=since))
            )
            sample = query.events(conn, Filters(tenant=TENANTS[0], since=since), 1000)
            by_user = query.count_by_user(conn, Filters(tenant=TENANTS[0], since=since))
        engine.dispose()
        with psycopg.connect(url) as raw:
            bare_newest = latencies(
                args.runs, lambda t: raw.execute(NEWEST_SQL, (t, timestamp(since))).fetchall()
            )
            bare_counts = latencies(
                args.runs, lambda t: raw.execute(COUNT_SQL, (t, timestamp(since))).fetchall()
            )
        plans = (
            [explain(url, sql, timestamp(since)) for sql in (NEWEST_SQL, COUNT_SQL)]
            if args.plans
            else []
        )

    figures = []
    for label, ours, bare in (
        ("tenant X, last 30 days, newest 1,000: p50", newest, bare_newest),
        ("count by user, tenant X, last 30 days: p50", counts, bare_counts),
    ):
        ours_p, bare_p = percentile(ours, 50), percentile(bare, 50)
        figures.append(
            Figure(label, ms(ours_p), ms(bare_p), ours_p / bare_p, "<= 50 ms", ours_p <= 0.050)
        )
        figures.append(
            Figure(
                label.replace("p50", "p99"),
                ms(percentile(ours, 99)),
                ms(percentile(bare, 99)),
                percentile(ours, 99) / percentile(bare, 99),
                "-",
                None,
            )
        )
    notes = [
        f"{n:,} events, 10 tenants x 50 users over 90 days"
        + (" (--quick: not the 2,000,000 of the goal)" if n < 2_000_000 else "")
        + f"; {args.runs} runs of each, round robin over tenants; ratio = ours / bare latency",
        f"check: newest query returned {len(sample)} events, newest first "
        f"({sample[0]['at']} .. {sample[-1]['at']}); count by user gave {len(by_user)} users, "
        f"{sum(by_user.values()):,} events",
    ]
    notes += [f"plan:\n{plan}" for plan in plans]
    print_table("Audit query on PostgreSQL", figures, notes)


if __name__ == "__main__":
    main()
