"""Lineage query: "every artifact derived from tenant X" over a registry of 100,000 artifacts
whose parent chains reach depth 5, on SQLite and PostgreSQL.

Ours is `workbench.artifacts.lineage.derived_from` (SQLAlchemy, a recursive CTE, through a
session); the bare baseline is the same recursive CTE as SQL text on the driver's own cursor
(sqlite3, psycopg). Goal: p50 ≤ 100 ms.

    python benchmarks/lineage.py [--artifacts 100000] [--tenants 50] [--depth 5] [--runs 30]
                                 [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import Figure, percentile, print_table, scratch_database

from workbench import dbsetup
from workbench.artifacts import lineage
from workbench.artifacts.models import Artifact, ArtifactParent, ArtifactSource
from workbench.db import make_engine, session_factory
from workbench.requests.models import AccessRequest

BARE = """
WITH RECURSIVE derived(id) AS (
    SELECT artifact_id FROM artifact_sources WHERE tenant = {p}
    UNION
    SELECT p.artifact_id FROM artifact_parents p JOIN derived d ON p.parent_id = d.id
)
SELECT id FROM derived ORDER BY id
"""


def generate(
    n: int, tenants: int, depth: int, seed: int = 7
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], int]:
    """Artifacts, their sources and parents: 70 % made from data only, the rest built on one
    or two earlier artifacts (of any tenant) no deeper than depth - 1. Returns the deepest
    depth reached too."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    arts, sources, parents = [], [], []
    depth_of: list[int] = []
    by_depth: dict[int, list[int]] = {d: [] for d in range(depth + 1)}
    for i in range(1, n + 1):
        tenant = f"t{rng.randrange(tenants):02d}"
        arts.append(
            {
                "id": i, "tenant": tenant, "scope": "tenant", "name": f"m{i}",
                "model_type": "topic-classifier", "sha256": f"{i:064x}", "size": 1,
                "bucket": "b", "key": f"tenants/{tenant}/artifacts/sha256/{i:064x}",
                "stage": "candidate", "request_id": 1, "parameters": "{}", "metrics": "{}",
                "created_by": "alice", "created_at": now,
            }
        )  # fmt: skip
        sources.append({"artifact_id": i, "tenant": tenant, "dataset": "calls"})
        d = 0
        if i > 10 and rng.random() < 0.3:
            shallower = [k for k in range(depth) if by_depth[k]]
            picked = {rng.choice(by_depth[rng.choice(shallower)]) for _ in range(rng.randint(1, 2))}
            for p in sorted(picked):
                parents.append({"artifact_id": i, "parent_id": p})
            d = 1 + max(depth_of[p - 1] for p in picked)
        depth_of.append(d)
        by_depth[d].append(i)
    return arts, sources, parents, max(depth_of)


def load(url: str, data: tuple[list[Any], list[Any], list[Any], int]) -> Any:
    engine = make_engine(url)
    dbsetup.upgrade(engine)
    arts, sources, parents, _ = data
    with session_factory(engine).begin() as s:
        s.add(
            AccessRequest(
                id=1, requester="alice", tenant="t00", datasets=["calls"], purpose="bench",
                profile="cpu-small", profile_spec={}, hours=1, gpu_hours=0,
                approvals_required=1, state="approved", created_at=datetime.now(UTC),
            )
        )  # fmt: skip
    with engine.begin() as conn:
        for table, rows in (
            (Artifact.__table__, arts),
            (ArtifactSource.__table__, sources),
            (ArtifactParent.__table__, parents),
        ):
            for start in range(0, len(rows), 10000):
                conn.execute(table.insert(), rows[start : start + 10000])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return engine


def sample(fn: Callable[[str], int], tenants: list[str], runs: int) -> tuple[list[float], int]:
    times, found = [], 0
    for i in range(runs):
        start = time.perf_counter()
        found += fn(tenants[i % len(tenants)])
        times.append(time.perf_counter() - start)
    return times, found // runs


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgres":
        with scratch_database("wb_lineage") as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'lineage.sqlite'}"


def measure(kind: str, args: argparse.Namespace, data: Any) -> list[Figure]:
    with database(kind) as url:
        started = time.perf_counter()
        engine = load(url, data)
        print(f"{kind}: loaded {args.artifacts} artifacts in {time.perf_counter() - started:.1f} s")
        sessions = session_factory(engine)
        tenants = [f"t{i:02d}" for i in random.Random(1).sample(range(args.tenants), args.tenants)]

        def ours(tenant: str) -> int:
            with sessions() as s:
                return len(lineage.derived_from(s, tenant))

        if kind == "postgres":
            import psycopg

            conn: Any = psycopg.connect(url.replace("+psycopg", ""))
            sql = BARE.format(p="%s")
        else:
            conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            sql = BARE.format(p="?")

        def bare(tenant: str) -> int:
            return len(conn.execute(sql, (tenant,)).fetchall())

        sample(ours, tenants, 3)  # warm both: caches, prepared plans
        sample(bare, tenants, 3)
        ours_t, ours_n = sample(ours, tenants, args.runs)
        bare_t, bare_n = sample(bare, tenants, args.runs)
        assert ours_n == bare_n, (ours_n, bare_n)
        conn.close()
        engine.dispose()
    p50, bare50 = statistics.median(ours_t) * 1000, statistics.median(bare_t) * 1000
    p95 = percentile(ours_t, 95) * 1000
    return [
        Figure(
            f"{kind}: derived from one tenant, p50 (~{ours_n} artifacts found)",
            f"{p50:.1f} ms (p95 {p95:.1f})",
            f"{bare50:.1f} ms",
            p50 / bare50 if bare50 else None,
            "p50 ≤ 100 ms",
            p50 <= 100,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    data = generate(args.artifacts, args.tenants, args.depth)
    figures: list[Figure] = []
    for kind in args.db.split(","):
        figures += measure(kind.strip(), args, data)
    print_table(
        f"Lineage query over {args.artifacts:,} artifacts, {args.tenants} tenants, "
        f"parent chains to depth {data[3]}",
        figures,
        notes=[
            "ours: workbench.artifacts.lineage.derived_from through a SQLAlchemy session; "
            "bare: the same recursive CTE as SQL text on the driver's cursor",
            f"{len(data[2]):,} parent links; {args.runs} runs, one tenant each",
        ],
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
