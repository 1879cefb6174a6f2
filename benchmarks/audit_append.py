"""Audit append on PostgreSQL: `AuditLog.record()` against bare INSERT+COMMIT.

Each `record()` call returns only once its event is committed, as does each bare
INSERT+COMMIT. The bare baseline writes rows of the same sizes (real chained bodies and
hashes) into a copy of `audit_events` (`LIKE ... INCLUDING ALL`: the same generated columns
and indexes, none of our triggers), one psycopg connection per writer thread.

    .venv/bin/python benchmarks/audit_append.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections.abc import Callable

import psycopg
from _common import (
    Figure,
    ms,
    percentile,
    print_table,
    rate,
    sample_event,
    scratch_database,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench import dbsetup
from workbench.audit import AuditLog, Signer, verify
from workbench.audit.chain import GENESIS, link, timestamp
from workbench.db import make_engine


def run_threads(writers: int, per_writer: int, work: Callable[[int], Callable[[int], None]]) -> tuple[float, list[float]]:
    """Run `writers` threads; `work(w)` returns the per-call function of writer `w`.
    Returns the wall time and every call's latency."""
    latencies: list[list[float]] = [[] for _ in range(writers)]
    ready = threading.Barrier(writers + 1)

    def thread(w: int) -> None:
        call = work(w)
        ready.wait()
        out = latencies[w]
        for i in range(per_writer):
            start = time.perf_counter()
            call(i)
            out.append(time.perf_counter() - start)

    threads = [threading.Thread(target=thread, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return wall, [x for per in latencies for x in per]


def bare_rows(n: int) -> list[tuple[int, str, str]]:
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = sample_event(seq).body(seq, timestamp())
        prev = link(prev, body)
        rows.append((seq, body, prev))
    return rows


def bench_bare(url: str, writers: int, per_writer: int) -> tuple[float, list[float]]:
    rows = iter(bare_rows(writers * per_writer))
    lock = threading.Lock()
    conns: list[psycopg.Connection] = []

    def work(_w: int) -> Callable[[int], None]:
        conn = psycopg.connect(url)
        conns.append(conn)

        def call(_i: int) -> None:
            with lock:
                row = next(rows)
            conn.execute("INSERT INTO bare_events (seq, body, hash) VALUES (%s, %s, %s)", row)
            conn.commit()

        return call

    try:
        return run_threads(writers, per_writer, work)
    finally:
        for conn in conns:
            conn.close()


def bench_ours(log: AuditLog, writers: int, per_writer: int) -> tuple[float, list[float]]:
    counter = itertools.count()

    def work(_w: int) -> Callable[[int], None]:
        def call(_i: int) -> None:
            log.record(sample_event(next(counter)))

        return call

    return run_threads(writers, per_writer, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events per run")
    args = parser.parse_args()
    single, multi = (1000, 150) if args.quick else (4000, 500)
    signer = Signer(Ed25519PrivateKey.generate())

    with scratch_database("wb_bench_append") as url:
        engine = make_engine(url)
        dbsetup.upgrade(engine)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bare_events (LIKE audit_events INCLUDING ALL)")
        log = AuditLog(engine, signer)
        log.record(sample_event(0))  # start the writer and warm the pool

        figures: list[Figure] = []
        for writers, per_writer in ((1, single), (16, multi)):
            n = writers * per_writer
            bare_wall, bare_lat = bench_bare(url, writers, per_writer)
            ours_wall, ours_lat = bench_ours(log, writers, per_writer)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE bare_events")
            ours_rate, bare_rate = n / ours_wall, n / bare_wall
            label = "1 writer" if writers == 1 else f"{writers} writers"
            tput_ok = ours_rate >= 3 * bare_rate if writers > 1 else None
            figures.append(
                Figure(
                    f"throughput, {label}",
                    rate(n, ours_wall),
                    rate(n, bare_wall),
                    ours_rate / bare_rate,
                    ">= 3x bare" if writers > 1 else "-",
                    tput_ok,
                )
            )
            for p in (50, 99):
                ours_p, bare_p = percentile(ours_lat, p), percentile(bare_lat, p)
                judged = writers == 1 and p == 99
                figures.append(
                    Figure(
                        f"p{p} latency, {label}",
                        ms(ours_p),
                        ms(bare_p),
                        ours_p / bare_p,
                        "<= 1.5x bare" if judged else "-",
                        ours_p <= 1.5 * bare_p if judged else None,
                    )
                )
        log.close()
        with engine.connect() as conn:
            verdict = verify(conn, signer.public_key)
        engine.dispose()

    print_table(
        "Audit append on PostgreSQL (record() vs bare INSERT+COMMIT)",
        figures,
        [
            f"events per run: 1 writer {single}, 16 writers 16 x {multi}"
            + (" (--quick)" if args.quick else ""),
            f"after the runs: {verdict}",
        ],
    )
    if not verdict.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
