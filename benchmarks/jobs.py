"""Job overhead: the example training notebook (`examples/train_calls.ipynb`, reading acme's
calls through `workbench.data`) run as a job — submitted to the service, run by the local
backend as the user's account, followed until the service says it ended — against the same
notebook run bare with papermill in a fresh process with the same data access, in the same
run, alternating. Goal: ≤ 1.1× the bare wall time.

    .venv/bin/python benchmarks/jobs.py [--quick] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Figure, print_table
from _stack import LoadWatch, Service, catalog_tenants, running_service, running_stores, token_for

GOAL = 1.1
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_calls.ipynb"


def bare(service: Service, request_id: int, epochs: int, workdir: Path) -> float:
    """Seconds of `papermill` running the example in a new process, as a job's runner does."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "AWS_"))},
        "WORKBENCH_API_URL": service.url,
        "WORKBENCH_TOKEN": token_for("alice"),
        "WORKBENCH_REQUEST_ID": str(request_id),
    }
    started = time.perf_counter()
    subprocess.run(
        [
            *(sys.executable, "-m", "papermill", str(EXAMPLE), str(workdir / "out.ipynb")),
            *("-p", "epochs", str(epochs), "--cwd", str(workdir), "--no-progress-bar"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def as_job(service: Service, request_id: int, epochs: int) -> float:
    """Seconds from `POST jobs` until the service reports the job succeeded."""
    nb = json.loads(EXAMPLE.read_text())
    body = {
        "request_id": request_id,
        "name": "bench",
        "notebook": nb,
        "notebook_name": EXAMPLE.name,
        "parameters": {"epochs": epochs},
    }
    with service.client("alice") as c:
        started = time.perf_counter()
        r = c.post("jobs", json=body)
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            job = c.get(f"jobs/{job_id}").json()
            if job["state"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
    if job["state"] != "succeeded":
        raise RuntimeError(f"the benchmark job ended {job['state']}: {job.get('error')}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 runs of each instead of 5")
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    runs = 2 if args.quick else 5
    watch = LoadWatch()
    with tempfile.TemporaryDirectory(prefix="wb-bench-jobs-") as tmp:
        home = Path(tmp)
        home.chmod(0o700)
        with (
            running_stores(home / "stores", catalog_tenants()) as stores,
            running_service(home / "service", stores, catalog_tenants()) as service,
        ):
            rid = service.approved_request("acme", ["calls"])
            work = home / "bare"
            work.mkdir()
            bare(service, rid, 2, work)  # warm caches (imports, the bridge Python) for both
            as_job(service, rid, 2)
            ours, base = [], []
            for _ in range(runs):
                base.append(bare(service, rid, args.epochs, work))
                ours.append(as_job(service, rid, args.epochs))
    p50, b50 = statistics.median(ours), statistics.median(base)
    ratio = p50 / b50
    print_table(
        "Job overhead: the example training notebook as a job vs bare papermill",
        [
            Figure(
                f"wall time, {args.epochs} epochs, median of {runs}",
                f"{p50:.2f} s",
                f"{b50:.2f} s",
                ratio,
                f"<= {GOAL}x",
                ratio <= GOAL,
            )
        ],
        [
            "Job: POST jobs → snapshot stored, job.submit on record → local backend starts the "
            "runner as the user's account → papermill → output sent back → state seen by the "
            "client (polling every 0.1 s). Bare: papermill in a new process, same notebook, "
            "same data access.",
            f"runs (s): job {[round(x, 2) for x in ours]}, bare {[round(x, 2) for x in base]}",
            watch.note(),
        ],
    )


if __name__ == "__main__":
    main()
