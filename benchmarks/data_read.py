"""Read throughput through the notebook client: `workbench.data` (`ObjectDataset.read` over
`files()`, reads reported to the audit log) against bare boto3 reading the same objects with the
same keys from the same SeaweedFS, measured in the same run. Two datasets: 256 MB of 4 MB
objects, and 2,000 objects of 10 KB. Goal: ≥ 0.95× the bare throughput for each.

    .venv/bin/python benchmarks/data_read.py [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import Figure, print_table
from _stack import LoadWatch, Service, Stores, catalog_tenants, running_service, running_stores

GOAL = 0.95
TENANT = "acme"
DATASETS = {  # name → (objects, bytes each)
    "bench4m": (64, 4 * 1024 * 1024),
    "bench10k": (2000, 10 * 1024),
}
PASSES = {"bench4m": (7, 15), "bench10k": (5, 9)}  # name → (--quick, full); 4 MB passes are short
SMOKE = {"bench4m": (16, 3), "bench10k": (500, 3)}  # --smoke: name → (objects, passes)


def seed(stores: Stores, name: str, count: int, size: int) -> None:
    """`count` objects of `size` random bytes under acme's dataset `name`."""
    s3 = stores.admin_s3(max_pool_connections=8)
    bucket = stores.objects.store.data_bucket
    block = os.urandom(size)

    def put(i: int) -> None:
        body = i.to_bytes(8, "big") + block[8:]
        s3.put_object(Bucket=bucket, Key=f"tenants/{TENANT}/{name}/part-{i:05d}.bin", Body=body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(count)))


def ours_pass(client: Any, name: str) -> tuple[int, int, float]:
    """(objects, bytes, seconds) of reading the dataset through workbench.data."""
    start = time.perf_counter()
    ds = client.open(f"{TENANT}/{name}")
    n = nbytes = 0
    for key in ds.files():
        nbytes += len(ds.read(key))
        n += 1
    ds.flush()  # the reads are on record before the pass ends
    return n, nbytes, time.perf_counter() - start


def bare_pass(s3: Any, bucket: str, prefix: str) -> tuple[int, int, float]:
    """(objects, bytes, seconds) of listing and reading the same objects with boto3."""
    start = time.perf_counter()
    n = nbytes = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            nbytes += len(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            n += 1
    return n, nbytes, time.perf_counter() - start


def bare_client(service: Service, request_id: int, name: str) -> tuple[Any, str, str]:
    """A boto3 client with the credentials the broker hands out for `name`, made once."""
    import boto3
    from botocore.config import Config

    g = service.data_client(request_id).grant(f"{TENANT}/{name}")
    loc, cred = g["location"], g["credentials"]
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=loc["endpoint_url"],
        region_name=loc["region"],
        aws_access_key_id=cred["access_key_id"],
        aws_secret_access_key=cred["secret_access_key"],
        config=Config(s3={"addressing_style": loc["addressing_style"]}),
    )
    return s3, loc["bucket"], loc["prefix"]


def measure(
    service: Service, request_id: int, name: str, rounds: int
) -> tuple[list[float], list[float], int, int]:
    """Throughputs (bytes/s) of each pass, ours and bare alternating; first passes warm up."""
    client = service.data_client(request_id)
    s3, bucket, prefix = bare_client(service, request_id, name)
    ours_pass(client, name)
    bare_pass(s3, bucket, prefix)
    ours: list[float] = []
    bare: list[float] = []
    for _ in range(rounds):
        n, nbytes, secs = bare_pass(s3, bucket, prefix)
        bare.append(nbytes / secs)
        n2, nbytes2, secs2 = ours_pass(client, name)
        if (n2, nbytes2) != (n, nbytes):
            raise RuntimeError(f"read {n2} objects ({nbytes2} B), expected {n} ({nbytes} B)")
        ours.append(nbytes2 / secs2)
    return ours, bare, n, nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer passes (under 2 minutes)")
    parser.add_argument(
        "--smoke", action="store_true", help="a quarter of the objects, 3 passes (benchmarks/run)"
    )
    args = parser.parse_args()
    if args.smoke:
        for name, (count, passes) in SMOKE.items():
            DATASETS[name] = (count, DATASETS[name][1])
            PASSES[name] = (passes, passes)
    load = LoadWatch()
    tenants = catalog_tenants(dict.fromkeys(DATASETS, "objects"))
    figures: list[Figure] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wb-bench-read-") as d:
        tmp = Path(d)
        with (
            running_stores(tmp / "stack", tenants, postgres=False) as stores,
            running_service(tmp / "service", stores, tenants) as service,
        ):
            rid = service.approved_request(TENANT, list(DATASETS))
            for name, (count, size) in DATASETS.items():
                print(f"seeding {count} objects of {size // 1024} KB …", flush=True)
                seed(stores, name, count, size)
            for name, (_, size) in DATASETS.items():
                print(f"reading {name} …", flush=True)
                rounds = PASSES[name][0 if args.quick else 1]
                ours, bare, n, nbytes = measure(service, rid, name, rounds)
                o, b = statistics.median(ours), statistics.median(bare)
                label = f"{n:,} objects of {size // 1024:,} KB ({nbytes / 2**20:,.0f} MB)"
                figures.append(
                    Figure(
                        f"read {label}",
                        f"{o / 2**20:,.1f} MB/s ({o / nbytes * n:,.0f} obj/s)",
                        f"{b / 2**20:,.1f} MB/s ({b / nbytes * n:,.0f} obj/s)",
                        o / b,
                        f">= {GOAL}x",
                        o / b >= GOAL,
                    )
                )
                notes.append(
                    f"{name}, median of {rounds} passes each: ours per pass "
                    + ", ".join(f"{x / 2**20:,.1f}" for x in ours)
                    + " MB/s; bare "
                    + ", ".join(f"{x / 2**20:,.1f}" for x in bare)
                    + " MB/s."
                )
    print_table(
        "Read throughput: workbench.data vs bare boto3 (same objects, same keys)",
        figures,
        [
            *notes,
            load.note(),
            "Ours and bare passes alternate after one warm-up pass each; one reader thread. A "
            "pass lists the dataset and reads every object; ours also reports the reads to the "
            "audit log (batches, background) and waits for them at the end (flush). SeaweedFS, "
            "the service and the reader share the machine's cores.",
        ],
    )


if __name__ == "__main__":
    main()
