"""Erasure of a tenant with 10,000 objects (`Erasure.erase`, every step: requests, tokens,
jobs, servers, exports, artifacts, objects, secrets, the certificate) against bare boto3
erasing a prefix of as many objects (list a page, DeleteObjects it, 1000 keys per call), in
the same run.

    python benchmarks/erasure.py [--objects 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import Figure, print_table
from _stack import LoadWatch, Stores, catalog_tenants, running_stores

from workbench.config import settings_for
from workbench.erasure.operator import Operator
from workbench.erasure.service import Erasure
from workbench.service.context import Workbench

GOAL = 0.8
BUCKET = "workbench-data"


def seed(s3: Any, prefix: str, count: int) -> None:
    def put(i: int) -> None:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}{i:06d}.json", Body=b'{"n": %d}\n' % i)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


def bare_delete(s3: Any, prefix: str, count: int) -> float:
    """What a bare script erasing a prefix does: list it a page (1000 keys) at a time and send
    each page's DeleteObjects; seconds."""
    start = time.perf_counter()
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        batch = [{"Key": o["Key"]} for o in page.get("Contents", ())]
        if not batch:
            continue
        resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": batch, "Quiet": True})
        if resp.get("Errors"):
            raise RuntimeError(f"bare delete failed: {resp['Errors'][:1]}")
        deleted += len(batch)
    if deleted != count:
        raise RuntimeError(f"bare delete removed {deleted} of {count} objects")
    return time.perf_counter() - start


def erasure_for(wb: Workbench, stores: Stores) -> Erasure:
    operator = Operator(
        s3=stores.admin_s3(max_pool_connections=16),
        data_bucket=BUCKET,
        artifacts_bucket="workbench-artifacts",
        bao=stores.hvac(stores.root_token),
    )
    return wb.erasure(
        operator,
        server_wait=5,
        actor="bench",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load = LoadWatch()
    tenants = catalog_tenants(generated=args.rounds + 1)
    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-erase-") as d:
        tmp = Path(d)
        with running_stores(tmp / "stack", tenants, postgres=False) as stores:
            from traitlets.config import Config

            cfg = Config()
            for section, values in stores.config().items():
                for key, value in values.items():
                    setattr(getattr(cfg, section), key, value)
            cfg.Catalog.tenants = tenants
            wb = Workbench.open(settings_for(tmp / "service", cfg))
            s3 = stores.admin_s3(max_pool_connections=16)
            try:
                # warm-up, not timed: first imports, first connections, the registry's set-up
                warm = f"t{args.rounds:05d}"
                seed(s3, f"tenants/{warm}/calls/", 100)
                erasure_for(wb, stores).erase(warm)
                seed(s3, "warm/", 100)
                bare_delete(s3, "warm/", 100)
                for r in range(args.rounds):
                    tenant = f"t{r:05d}"
                    print(f"round {r + 1}: seeding 2 × {args.objects:,} objects …", flush=True)
                    seed(s3, f"tenants/{tenant}/calls/", args.objects)
                    seed(s3, f"bare/{r}/", args.objects)
                    bare.append(bare_delete(s3, f"bare/{r}/", args.objects))
                    start = time.perf_counter()
                    cert = erasure_for(wb, stores).erase(tenant)
                    ours.append(time.perf_counter() - start)
                    if cert["objects"]["count"] != args.objects:
                        raise RuntimeError(f"erased {cert['objects']['count']} objects")
                    print(f"  bare {bare[-1]:.2f} s, erasure {ours[-1]:.2f} s", flush=True)
            finally:
                wb.close()
    o, b = statistics.median(ours), statistics.median(bare)
    n = args.objects
    print_table(
        "Tenant erasure vs bare boto3 batch delete (same store, same run)",
        [
            Figure(
                f"erase a tenant of {n:,} objects (objects/s)",
                f"{n / o:,.0f} obj/s ({o:.2f} s)",
                f"{n / b:,.0f} obj/s ({b:.2f} s)",
                b / o,
                f">= {GOAL}x",
                b / o >= GOAL,
            )
        ],
        [
            f"median of {args.rounds} rounds after an untimed warm-up; erasure per round "
            + ", ".join(f"{x:.2f}" for x in ours)
            + " s; bare "
            + ", ".join(f"{x:.2f}" for x in bare)
            + " s.",
            "Ours is the whole `workbench tenant erase` minus process start: it lists the "
            "tenant's prefix in both buckets, records every key with its ETag before deleting "
            "it (SQLite), sends DeleteObjects of 1000 keys from 8 threads while it lists on, "
            "deletes the tenant's OpenBao policy, role and KV secrets, and writes the "
            "certificate. Bare lists the prefix a page of 1000 keys at a time and sends each "
            "page's DeleteObjects, one after another (what a script erasing a prefix does).",
            load.note(),
        ],
    )


if __name__ == "__main__":
    main()
