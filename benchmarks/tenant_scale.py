"""Scale of tenants: nothing may be made by hand per tenant, and 10,000 tenants in the catalog
must cost neither grants nor start-up.

1. Grant latency (`POST grants`, sequential) on a stack whose catalog holds 10,000 tenants
   (SeaweedFS with 10,001 generated identities, the service with the 10,000-tenant catalog,
   OpenBao with many tenants provisioned through the broker's own `ensure_tenant`: policy,
   database role and S3 keys each) against the same on a 2-tenant stack, both running at once
   and measured in alternating rounds. The tenant under test is provisioned first, as in a
   system that has served it before. Goal: p50 ≤ 1.05× the 2-tenant figure.
2. Start-up: the real `workbench up --home H --port P` (SeaweedFS identities generated and
   started, OpenBao started, initialised or unsealed and configured, JupyterHub, the proxy and
   the service) with a `workbench_config.py` holding 10,000 tenants, timed from launch to its
   `workbench ready:` line; first start on a fresh HOME and a restart. Goal: under 60 s.

    .venv/bin/python benchmarks/tenant_scale.py [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import ADMIN_URL, Figure, ms, percentile, print_table
from _stack import (
    LoadWatch,
    Service,
    Stores,
    catalog_tenants,
    free_port,
    run_workers,
    running_service,
    running_stores,
    write_config,
)

from workbench.embedded.launch import NotReady, launch, stop

TENANTS = 10_000
GRANT_GOAL = 1.05
START_GOAL = 60.0
TENANT = "acme"
ROOT = Path(__file__).resolve().parent.parent


def provision(stores: Stores, tenants: list[str]) -> float:
    """Provision `tenants` in OpenBao as the broker does on a first grant; return seconds."""
    store = stores.secret_store()
    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store.ensure_tenant, tenants))
    store.close()
    return time.perf_counter() - start


def grant_op(service: Service, request_id: int) -> Any:
    client = service.client("alice")
    body = {"request_id": request_id, "dataset": f"{TENANT}/calls"}

    def op() -> None:
        r = client.post("grants", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"grant failed: HTTP {r.status_code} {r.text[:300]}")

    return op


def grant_scale(tmp: Path, quick: bool, smoke: bool = False) -> tuple[list[Figure], list[str]]:
    small, large = catalog_tenants(), catalog_tenants(generated=TENANTS - 2)
    provisioned = 200 if smoke else 1_000 if quick else TENANTS
    calls, rounds = (15, 4) if smoke else (30, 8) if quick else (50, 20)
    notes = []
    with (
        running_stores(tmp / "stack-2", small, postgres=False) as stores2,
        running_stores(tmp / "stack-10k", large, postgres=False) as stores10k,
    ):
        # acme first (the tenant under test), then as many others as this run affords
        names = [TENANT, *sorted(t for t in large if t != TENANT)][:provisioned]
        secs = provision(stores10k, names)
        provision(stores2, sorted(small))
        notes.append(
            f"Provisioned {len(names):,} tenants in OpenBao (policy, database role, S3 keys "
            f"each) in {secs:.1f} s with 8 threads ({len(names) / secs:,.0f}/s): a tenant's "
            "first grant pays this once."
        )
        started = time.perf_counter()
        with running_service(tmp / "service-2", stores2, small) as svc2:
            start2 = time.perf_counter() - started
            started = time.perf_counter()
            with running_service(tmp / "service-10k", stores10k, large) as svc10k:
                start10k = time.perf_counter() - started
                notes.append(
                    f"Service start to first answer: {start2:.1f} s with 2 tenants, "
                    f"{start10k:.1f} s with {TENANTS:,}."
                )
                op2 = grant_op(svc2, svc2.approved_request(TENANT, ["calls"]))
                op10k = grant_op(svc10k, svc10k.approved_request(TENANT, ["calls"]))
                for op in (op2, op10k):
                    run_workers(lambda w, op=op: op, 1, 20)  # mint the request token; warm up
                two: list[float] = []
                many: list[float] = []
                for i in range(rounds):  # alternate which goes first
                    pair = [(op2, two), (op10k, many)]
                    for op, out in pair if i % 2 == 0 else pair[::-1]:
                        out += run_workers(lambda w, op=op: op, 1, calls)[0]
    figures = []
    for p in (50, 99):
        ratio = percentile(many, p) / percentile(two, p)
        figures.append(
            Figure(
                f"grant p{p}, {TENANTS:,} tenants vs 2",
                ms(percentile(many, p)),
                ms(percentile(two, p)),
                ratio,
                f"<= {GRANT_GOAL}x" if p == 50 else "-",
                ratio <= GRANT_GOAL if p == 50 else None,
            )
        )
    return figures, notes


# -- start-up --------------------------------------------------------------------------------


def time_up(home: Path, timeout: float = 180.0) -> float:
    """Run `workbench up --home HOME`, return seconds from launch to its ready line, stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "AWS_"))}
    env.pop("WORKBENCH_TENANT_PG_URL", None)
    env["WORKBENCH_DEMO_PASSWORD"] = "bench-demo-password"
    cmd = [sys.executable, "-m", "workbench", "up", "--home", str(home)]
    cmd += ["--port", str(free_port())]
    try:
        launched = launch(
            cmd,
            timeout=timeout,
            stop_signal=signal.SIGINT,
            stop_timeout=60,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    except NotReady as e:
        raise RuntimeError(f"workbench up {e}") from None
    stop(launched.proc, signal.SIGINT, timeout=60)
    return launched.seconds


def startup(tmp: Path, restart: bool = True) -> tuple[list[Figure], list[str]]:
    from workbench.access.objects import S3ObjectStore
    from workbench.config import Catalog
    from workbench.embedded import seaweed

    figures, notes = [], []
    large = catalog_tenants(generated=TENANTS - 2)
    started = time.perf_counter()
    catalog = Catalog(tenants=large).build()
    built = time.perf_counter() - started
    started = time.perf_counter()
    scratch = tmp / "identities"
    scratch.mkdir()
    seaweed.write_identity_config(scratch, catalog, S3ObjectStore())
    identities = time.perf_counter() - started
    notes.append(
        f"Of which, in process: the {TENANTS:,}-tenant catalog validates in {ms(built)}, and "
        f"its {TENANTS + 1:,} SeaweedFS identities are generated in {ms(identities)}."
    )
    results: dict[int, tuple[float, float]] = {}
    for tenants in (large, catalog_tenants()):
        home = tmp / f"up-{len(tenants)}"
        home.mkdir()
        write_config(home, {"Catalog": {"tenants": tenants}})
        print(f"timing workbench up with {len(tenants):,} tenants …", flush=True)
        first = time_up(home)
        results[len(tenants)] = (first, time_up(home) if restart else first)
    for i, what in enumerate(("first start", "restart") if restart else ("first start",)):
        ours, base = results[TENANTS][i], results[2][i]
        figures.append(
            Figure(
                f"workbench up to ready, {TENANTS:,} tenants, {what}",
                f"{ours:.1f} s",
                f"{base:.1f} s (2 tenants)",
                ours / base,
                f"< {START_GOAL:.0f} s",
                ours < START_GOAL,
            )
        )
    return figures, notes


def startup_with_sql(tmp: Path) -> tuple[list[Figure], list[str]]:
    """`workbench up` with tenant SQL data on PostgreSQL: the first start creates a schema
    per tenant (10,000), a restart finds them."""
    import psycopg

    home = tmp / "up-sql"
    home.mkdir()
    database = f"wb_bench_scale_{os.getpid()}"
    write_config(
        home,
        {
            "Catalog": {"tenants": catalog_tenants(generated=TENANTS - 2)},
            "EmbeddedOpenBao": {"postgres_url": ADMIN_URL},
            "OpenBaoStore": {"sql_database": database},
        },
    )
    print(f"timing workbench up with {TENANTS:,} tenants and SQL data …", flush=True)
    try:
        first, again = time_up(home), time_up(home)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    figures = [
        Figure(
            f"workbench up to ready, {TENANTS:,} tenants + SQL schemas, {what}",
            f"{secs:.1f} s",
            "-",
            None,
            f"< {START_GOAL:.0f} s",
            secs < START_GOAL,
        )
        for what, secs in (("first start", first), ("restart", again))
    ]
    return figures, []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1,000 tenants provisioned in OpenBao (not 10,000), fewer grants, no SQL start-up",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="as --quick with 200 tenants provisioned, fewer grants, no restart (benchmarks/run)",
    )
    args = parser.parse_args()
    args.quick = args.quick or args.smoke
    load = LoadWatch()
    with tempfile.TemporaryDirectory(prefix="wb-bench-scale-") as d:
        tmp = Path(d)
        print("measuring grants with 2 and with 10,000 tenants …", flush=True)
        figures, notes = grant_scale(tmp, args.quick, args.smoke)
        print_table(
            f"Scale of tenants: grant latency with {TENANTS:,} tenants in the catalog",
            figures,
            [
                *notes,
                load.note(),
                "One client, sequential, both stacks running at once (two OpenBao, two "
                "SeaweedFS, two services on the machine's 2 cores), rounds alternating which "
                "goes first. A 5% goal is near this machine's run-to-run noise.",
            ],
        )
        load = LoadWatch()
        figures, notes = startup(tmp, restart=not args.smoke)
        if not args.quick:
            f, n = startup_with_sql(tmp)
            figures += f
            notes += n
        print_table(
            f"Scale of tenants: `workbench up` start-up with {TENANTS:,} tenants",
            figures,
            [
                *notes,
                load.note(),
                "The real `workbench up`, launch to its ready line, without tenant SQL data "
                "(the embedded default) unless the figure says otherwise.",
            ],
        )


if __name__ == "__main__":
    main()
