"""`audit verify` on PostgreSQL: verify() over N events against bare sha256 over the same bytes.

The bare baseline streams the same rows' body column through a server-side cursor fetching
as many rows at a time as verify() does, and chains sha256 over them exactly as the log
does — the least any verifier has to do. verify() also compares every stored hash and seq
and checks every signed checkpoint.

    .venv/bin/python benchmarks/audit_verify.py [--quick] [--events N]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import psycopg
from _common import Figure, bulk_load, print_table, rate, scratch_database, timed
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workbench import dbsetup
from workbench.audit import Signer, Verdict, verify
from workbench.audit.chain import GENESIS
from workbench.audit.verify import FETCH_ROWS
from workbench.db import make_engine


def bare_chain(url: str) -> str:
    sha = hashlib.sha256
    prev = GENESIS
    with psycopg.connect(url) as conn, conn.cursor(name="bare") as cur:
        cur.itersize = FETCH_ROWS
        cur.execute("SELECT body FROM audit_events ORDER BY seq")
        for (body,) in cur:
            prev = sha(f"{prev}\n{body}".encode()).hexdigest()
    return prev


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 events instead of 1,000,000")
    parser.add_argument("--events", type=int, help="how many events to verify")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each (median)")
    args = parser.parse_args()
    n = args.events or (200_000 if args.quick else 1_000_000)
    signer = Signer(Ed25519PrivateKey.generate())

    with scratch_database("wb_bench_verify") as url:
        engine = make_engine(url)
        dbsetup.upgrade(engine)
        bulk_load(url, n, signer=signer)
        ours: list[float] = []
        bare: list[float] = []
        verdicts: list[Verdict] = []
        bare_chain(url)  # warm the cache for both
        for _ in range(args.rounds):
            bare.append(timed(lambda: bare_chain(url)))
            with engine.connect() as conn:
                start = time.perf_counter()
                verdicts.append(verify(conn, signer.public_key))
                ours.append(time.perf_counter() - start)
        engine.dispose()

    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    ratio = bare_s / ours_s  # throughput ratio
    print_table(
        f"audit verify on PostgreSQL over {n:,} events",
        [
            Figure(
                "verify throughput",
                rate(n, ours_s),
                rate(n, bare_s),
                ratio,
                ">= 0.5x bare",
                ratio >= 0.5,
            ),
            Figure("verify wall time", f"{ours_s:.2f} s", f"{bare_s:.2f} s", None, "-", None),
        ],
        [
            f"median of {args.rounds} runs each" + (" (--quick)" if args.quick else ""),
            f"verdict: {verdicts[-1]}",
        ],
    )
    if not all(v.ok for v in verdicts):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
