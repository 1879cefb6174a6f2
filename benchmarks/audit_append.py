"""Audit append on PostgreSQL: `AuditLog.record()` against bare INSERT+COMMIT.

Each `record()` call returns only once its event is committed, as does each bare
INSERT+COMMIT. The bare baseline writes rows of the same sizes (real chained bodies and
hashes) into a copy of `audit_events` (`LIKE ... INCLUDING ALL`: the same generated columns
and indexes, none of our triggers), one psycopg connection per writer thread.

The two are interleaved so that both see the same load from whatever else runs on the
machine: with one writer, each thread alternates one bare call and one record(); with 16,
bare and ours take turns for several rounds and the median round counts.

    .venv/bin/python benchmarks/audit_append.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
from _common import Figure, ms, percentile, print_table, rate, sample_event, scratch_database
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench import dbsetup
from workbench.audit import AuditLog, Signer, verify
from workbench.audit.chain import GENESIS, link, timestamp
from workbench.db import make_engine

Call = Callable[[], None]


def bare_rows(n: int) -> Iterator[tuple[int, str, str]]:
    """`n` rows as the log writes them: chained bodies of the same events."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = sample_event(seq).body(seq, timestamp())
        prev = link(prev, body)
        rows.append((seq, body, prev))
    return iter(rows)


class Bare:
    """Single-row INSERT+COMMIT, each writer on its own connection."""

    def __init__(self, url: str, rows: int) -> None:
        self.url = url
        self.rows = bare_rows(rows)  # made before any clock starts
        self.lock = threading.Lock()
        self.conns: list[psycopg.Connection] = []

    def writer(self) -> Call:
        conn = psycopg.connect(self.url)
        self.conns.append(conn)

        def call() -> None:
            with self.lock:
                row = next(self.rows)
            conn.execute("INSERT INTO bare_events (seq, body, hash) VALUES (%s, %s, %s)", row)
            conn.commit()

        return call

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


class Ours:
    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.counter = itertools.count()

    def writer(self) -> Call:
        def call() -> None:
            self.log.record(sample_event(next(self.counter)))

        return call


def run(writers: list[list[Call]], per_writer: int) -> tuple[float, list[float]]:
    """Run one thread per entry of `writers`, each calling its calls in turn `per_writer`
    times. Returns the wall time and the latency of every call, per call kind."""
    kinds = len(writers[0])
    latencies: list[list[float]] = [[] for _ in range(kinds)]
    lock = threading.Lock()
    ready = threading.Barrier(len(writers) + 1)

    def thread(calls: list[Call]) -> None:
        mine: list[list[float]] = [[] for _ in range(kinds)]
        ready.wait()
        for _ in range(per_writer):
            for k, call in enumerate(calls):
                start = time.perf_counter()
                call()
                mine[k].append(time.perf_counter() - start)
        with lock:
            for k in range(kinds):
                latencies[k].extend(mine[k])

    threads = [threading.Thread(target=thread, args=(calls,)) for calls in writers]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - start, [x for per in latencies for x in per]


def single_writer(bare: Bare, ours: Ours, n: int) -> list[Figure]:
    """One thread alternating a bare call and a record()."""
    b, o = bare.writer(), ours.writer()
    bare_lat: list[float] = []
    ours_lat: list[float] = []
    for _ in range(n):
        for call, out in ((b, bare_lat), (o, ours_lat)):
            start = time.perf_counter()
            call()
            out.append(time.perf_counter() - start)
    figures = [
        Figure(
            "throughput, 1 writer",
            rate(n, sum(ours_lat)),
            rate(n, sum(bare_lat)),
            sum(bare_lat) / sum(ours_lat),
            "-",
            None,
        )
    ]
    for p in (50, 99):
        ours_p, bare_p = percentile(ours_lat, p), percentile(bare_lat, p)
        judged = p == 99
        figures.append(
            Figure(
                f"p{p} latency, 1 writer",
                ms(ours_p),
                ms(bare_p),
                ours_p / bare_p,
                "<= 1.5x bare" if judged else "-",
                ours_p <= 1.5 * bare_p if judged else None,
            )
        )
    return figures


def many_writers(
    bare: Bare, ours: Ours, writers: int, per_writer: int, rounds: int
) -> list[Figure]:
    """Bare and ours take turns; each round runs `writers` threads of one of them."""
    n = writers * per_writer
    bare_rates: list[float] = []
    ours_rates: list[float] = []
    bare_lat: list[float] = []
    ours_lat: list[float] = []
    for r in range(rounds):
        order: list[tuple[Bare | Ours, list[float], list[float]]] = [
            (bare, bare_rates, bare_lat),
            (ours, ours_rates, ours_lat),
        ]
        for side, rates, lat in order if r % 2 == 0 else reversed(order):
            wall, latencies = run([[side.writer()] for _ in range(writers)], per_writer)
            rates.append(n / wall)
            lat.extend(latencies)
    ours_rate, bare_rate = statistics.median(ours_rates), statistics.median(bare_rates)
    label = f"{writers} writers"
    figures = [
        Figure(
            f"throughput, {label}",
            f"{ours_rate:,.0f}/s",
            f"{bare_rate:,.0f}/s",
            ours_rate / bare_rate,
            ">= 3x bare",
            ours_rate >= 3 * bare_rate,
        )
    ]
    for p in (50, 99):
        ours_p, bare_p = percentile(ours_lat, p), percentile(bare_lat, p)
        figures.append(
            Figure(f"p{p} latency, {label}", ms(ours_p), ms(bare_p), ours_p / bare_p, "-", None)
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events per run")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers (16)")
    parser.add_argument("--rounds", type=int, default=5, help="turns each at N writers (5)")
    args = parser.parse_args()
    single, per_writer = (1000, 100) if args.quick else (4000, 300)
    signer = Signer(Ed25519PrivateKey.generate())

    with scratch_database("wb_bench_append") as url:
        engine = make_engine(url)
        dbsetup.upgrade(engine)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE bare_events (LIKE audit_events INCLUDING ALL)")
        log = AuditLog(engine, signer)  # signs every 100 events, as the service does
        bare = Bare(url, single + args.rounds * args.writers * per_writer)
        ours = Ours(log)
        log.record(sample_event(0))  # start the writer thread and its connection
        figures = single_writer(bare, ours, single)
        figures += many_writers(bare, ours, args.writers, per_writer, args.rounds)
        bare.close()
        log.close()
        with engine.connect() as conn:
            verdict = verify(conn, signer.public_key)
        engine.dispose()

    print_table(
        "Audit append on PostgreSQL (record() vs bare INSERT+COMMIT)",
        figures,
        [
            f"1 writer: {single} calls of each, alternating in one thread; "
            f"{args.writers} writers: {args.rounds} turns each of {args.writers} x {per_writer} "
            "calls, median turn" + (" (--quick)" if args.quick else ""),
            "ratio: ours/bare for throughput and latency",
            f"after the runs: {verdict}",
        ],
    )
    if not verdict.ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
