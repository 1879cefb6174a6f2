"""Grant latency: `POST grants` through the service's HTTP API (request check, grant row and
audit event committed, then the tenant's S3 keys read from OpenBao with the request's token)
against the least that work needs, measured in the same run: a bare KV read of the same secret
with a tenant-scoped token (one keep-alive HTTP GET over urllib3, as the broker reads) plus a
bare single-row INSERT + COMMIT into the same kind of database. Goal: p50 ≤ 1.3× that sum,
sequentially and with 8 clients at once, on SQLite (the embedded default) and on PostgreSQL
(production).

    .venv/bin/python benchmarks/grants.py [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from _common import Figure, ms, percentile, print_table, sample_event, scratch_database
from _stack import (
    LoadWatch,
    Service,
    Stores,
    catalog_tenants,
    direct_grant,
    run_workers,
    running_service,
    running_stores,
)

from workbench.audit.chain import timestamp

GOAL = 1.3
CONCURRENCY = 8
TENANT = "acme"
DATASET = "acme/calls"


def me_op(service: Service) -> Callable[[], object]:
    """`GET me`: the HTTP, token check and JSON floor of any API call."""
    client = service.client("alice")
    return lambda: client.get("me").raise_for_status()


def grant_op(service: Service, request_id: int) -> Callable[[], object]:
    client = service.client("alice")
    body = {"request_id": request_id, "dataset": DATASET}

    def op() -> None:
        r = client.post("grants", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"grant failed: HTTP {r.status_code} {r.text[:300]}")

    return op


def kv_path(stores: Stores) -> str:
    return f"{stores.bao.store.kv_mount}/data/tenants/{TENANT}/s3"


class Bare:
    """The bare work of a grant: one KV read and one single-row commit, each timed."""

    def __init__(self, stores: Stores, token: str, commit: Callable[[], Callable[[], None]]):
        self.stores, self.token, self.commit = stores, token, commit
        self.kv: list[float] = []
        self.db: list[float] = []

    def op(self, _worker: int) -> Callable[[], object]:
        read = self.stores.reader(self.token)
        path = kv_path(self.stores)
        commit = self.commit()

        def op() -> None:
            t0 = time.perf_counter()
            read(path)
            t1 = time.perf_counter()
            commit()
            t2 = time.perf_counter()
            self.kv.append(t1 - t0)
            self.db.append(t2 - t1)

        return op

    def reset(self) -> None:
        self.kv, self.db = [], []


def _row(i: int) -> str:
    """A row the size of a grant's audit event."""
    return sample_event(i).body(i, timestamp())


def sqlite_commits(path: Path) -> Callable[[], Callable[[], None]]:
    """Per connection: BEGIN IMMEDIATE; INSERT one row; COMMIT, with the service engine's
    pragmas (WAL, synchronous=FULL)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS bare (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

    def connect() -> Callable[[], None]:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000"):
            conn.execute(f"PRAGMA {pragma}")
        n = iter(range(10**9))

        def commit() -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bare (body) VALUES (?)", (_row(next(n)),))
            conn.execute("COMMIT")

        return commit

    return connect


def pg_commits(url: str) -> Callable[[], Callable[[], None]]:
    """Per connection: INSERT one row; COMMIT."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bare (id bigserial PRIMARY KEY, body text NOT NULL)"
        )

    def connect() -> Callable[[], None]:
        conn = psycopg.connect(url)
        n = iter(range(10**9))

        def commit() -> None:
            conn.execute("INSERT INTO bare (body) VALUES (%s)", (_row(next(n)),))
            conn.commit()

        return commit

    return connect


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[tuple[str | None, Callable[[], Any]]]:
    """(service db_url, bare commit factory) for `kind`."""
    if kind == "sqlite":
        yield None, sqlite_commits(tmp / f"bare-{kind}.sqlite")  # service: HOME/workbench.sqlite
    else:
        with scratch_database("wb_bench_grants") as url:
            yield url, pg_commits(url)


def measure(
    service: Service, bare: Bare, request_ids: list[int], workers: int, calls: int, rounds: int
) -> tuple[list[float], list[float], list[float], float, float]:
    """Rounds alternate ours and bare, so both see the same machine."""
    ours: list[float] = []
    kv: list[float] = []
    db: list[float] = []
    ours_wall = bare_wall = 0.0
    for _ in range(rounds):
        times, wall = run_workers(lambda w: grant_op(service, request_ids[w]), workers, calls)
        ours += times
        ours_wall += wall
        bare.reset()
        _, wall = run_workers(bare.op, workers, calls)
        kv += bare.kv
        db += bare.db
        bare_wall += wall
    return ours, kv, db, ours_wall, bare_wall


def hvac_op(stores: Stores, token: str) -> Callable[[], object]:
    """The bare KV read through hvac (over requests), the usual client."""
    kv = stores.hvac(token).secrets.kv.v2
    mount = stores.bao.store.kv_mount
    return lambda: kv.read_secret_version(
        f"tenants/{TENANT}/s3", mount_point=mount, raise_on_deleted_version=True
    )


def diagnostics(
    kind: str, service: Service, bare: Bare, request_id: int, calls: int
) -> list[Figure]:
    """Where a sequential grant's time goes: the HTTP floor (`GET me`) and the grant without
    HTTP, measured in rounds alternating with grants over HTTP and the bare pair; and what the
    bare KV read costs through hvac instead."""
    me_call, http_call = me_op(service), grant_op(service, request_id)
    hvac_call, bare_call = hvac_op(bare.stores, bare.token), bare.op(0)
    me: list[float] = []
    direct: list[float] = []
    http: list[float] = []
    via_hvac: list[float] = []
    bare.reset()
    with service.broker() as broker:
        direct_call = direct_grant(broker, request_id, DATASET)
        run_workers(lambda w: direct_call, 1, 10)  # warm up
        for _ in range(4):
            me += run_workers(lambda w: me_call, 1, calls // 4)[0]
            direct += run_workers(lambda w: direct_call, 1, calls // 4)[0]
            http += run_workers(lambda w: http_call, 1, calls // 4)[0]
            via_hvac += run_workers(lambda w: hvac_call, 1, calls // 4)[0]
            run_workers(lambda w: bare_call, 1, calls // 4)
    grant = percentile(http, 50)
    kv, pair = percentile(bare.kv, 50), percentile(bare.kv, 50) + percentile(bare.db, 50)
    over_http = f"grant over HTTP {ms(grant)}"
    return [
        _info(
            f"{kind}: (of which) GET me p50, sequential", me, over_http, grant, "HTTP + token floor"
        ),
        _info(
            f"{kind}: (of which) Broker.grant() p50, no HTTP",
            direct,
            over_http,
            grant,
            "share of the grant",
        ),
        _info(
            f"{kind}: Broker.grant() p50, no HTTP, vs the bare pair",
            direct,
            f"{ms(pair)} (kv {ms(kv)} + commit {ms(percentile(bare.db, 50))})",
            pair,
            "the broker's own cost",
        ),
        _info(
            f"{kind}: bare KV read p50 through hvac",
            via_hvac,
            f"urllib3 {ms(kv)}",
            kv,
            "client library cost",
        ),
    ]


def broker_concurrent(
    kind: str, service: Service, bare: Bare, request_ids: list[int], calls: int
) -> Figure:
    """`Broker.grant()` from `CONCURRENCY` threads of this process, in rounds alternating with
    the bare pair from as many: the broker's own cost under concurrency, without HTTP."""
    ours: list[float] = []
    bare.reset()
    with service.broker() as broker:

        def direct(w: int) -> Callable[[], object]:
            return direct_grant(broker, request_ids[w], DATASET)

        run_workers(direct, CONCURRENCY, 5)  # warm up
        for _ in range(3):
            ours += run_workers(direct, CONCURRENCY, calls)[0]
            run_workers(bare.op, CONCURRENCY, calls)
    kv, db = percentile(bare.kv, 50), percentile(bare.db, 50)
    return _info(
        f"{kind}: Broker.grant() p50, {CONCURRENCY} concurrent, no HTTP, vs the bare pair",
        ours,
        f"{ms(kv + db)} (kv {ms(kv)} + commit {ms(db)})",
        kv + db,
        "the broker's own cost",
    )


def _info(label: str, times: list[float], against: str, base: float, what: str) -> Figure:
    """An unjudged row: the p50 of `times` and its ratio to `base`."""
    p50 = percentile(times, 50)
    return Figure(label, ms(p50), against, p50 / base, what, None)


def bench_kind(
    kind: str, stores: Stores, tmp: Path, tenants: dict[str, Any], quick: bool
) -> tuple[list[Figure], list[str]]:
    figures, notes = [], []
    with (
        database(kind, tmp) as (db_url, commits),
        running_service(tmp / f"service-{kind}", stores, tenants, db_url) as service,
    ):
        request_ids = [service.approved_request(TENANT, ["calls"]) for _ in range(CONCURRENCY)]
        token = stores.tenant_token(TENANT)
        bare = Bare(stores, token, commits)
        for rid in request_ids:  # mints each request's token; provisions the tenant
            grant_op(service, rid)()
        run_workers(lambda w: grant_op(service, request_ids[w]), 1, 30)  # warm up
        run_workers(bare.op, 1, 30)
        for workers, calls, rounds in (
            (1, 60 if quick else 200, 3 if quick else 5),
            (CONCURRENCY, 10 if quick else 40, 3 if quick else 5),
        ):
            ours, kv, db, ours_wall, bare_wall = measure(
                service, bare, request_ids, workers, calls, rounds
            )
            label = "sequential" if workers == 1 else f"{workers} concurrent"
            for p in (50, 99):
                o = percentile(ours, p)
                b = percentile(kv, p) + percentile(db, p)
                figures.append(
                    Figure(
                        f"{kind}: grant p{p}, {label}",
                        ms(o),
                        f"{ms(b)} (kv {ms(percentile(kv, p))} + commit {ms(percentile(db, p))})",
                        o / b,
                        f"<= {GOAL}x" if p == 50 else "-",
                        o / b <= GOAL if p == 50 else None,
                    )
                )
            if workers == 1:
                figures += diagnostics(kind, service, bare, request_ids[0], calls)
            else:
                figures.append(broker_concurrent(kind, service, bare, request_ids, calls))
            n = len(ours)
            notes.append(
                f"{kind}, {label}: {n} grants in {ours_wall:.1f} s ({n / ours_wall:,.0f}/s); "
                f"bare pairs {n / bare_wall:,.0f}/s."
            )
    return figures, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (under 2 minutes)")
    args = parser.parse_args()
    load = LoadWatch()
    tenants = catalog_tenants()
    figures: list[Figure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-grants-") as d:
        tmp = Path(d)
        with running_stores(tmp / "stack", tenants) as stores:
            for kind in ("sqlite", "postgresql"):
                print(f"measuring grants on {kind} …", flush=True)
                f, n = bench_kind(kind, stores, tmp, tenants, args.quick)
                figures += f
                notes += n
    print_table(
        "Grant latency: POST grants (audit commit + OpenBao read) vs bare KV read + commit",
        figures,
        [
            *notes,
            load.note(),
            "Ours is one HTTP call to the service (its own process): token check, body "
            "parsing, request check, grant row and audit event in one committed transaction, "
            "then the KV read with the request's token. Bare runs in the benchmark process, "
            "no HTTP; its KV read is the same urllib3 GET the broker makes (through hvac it "
            "costs more: the 'through hvac' rows). Client, service, OpenBao and the database "
            "share the machine's cores; figures move by ~10-20% between runs.",
        ],
    )


if __name__ == "__main__":
    main()
