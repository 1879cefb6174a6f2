"""What `workbench run` does after submitting: follow the jobs to their end with a progress
display, save their executed notebooks. Client side (HTTP only)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ENDED = ("succeeded", "failed", "cancelled", "lost")


@dataclass
class Run:
    job: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    last_metric: int = 0

    @property
    def ended(self) -> bool:
        return self.job["state"] in ENDED


def requests_per_tenant(answer: dict[str, Any]) -> dict[str, int]:
    """For each tenant, the newest of my approved requests with time left."""
    found: dict[str, int] = {}
    for req in answer["requests"]:
        if req["state"] == "approved" and (req.get("seconds_left") or 0) > 0:
            found[req["tenant"]] = max(found.get(req["tenant"], 0), int(req["id"]))
    return found


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(path, params=params)
    r.raise_for_status()
    return r.json()


def follow(client: httpx.Client, runs: list[Run], output: Path | None, poll: float = 2.0) -> int:
    """Show each job's state, elapsed time and newest metrics until all ended; 0 when all
    succeeded, else 1."""
    from rich.live import Live
    from rich.table import Table

    def table() -> Table:
        t = Table("job", "tenant", "state", "elapsed", "metrics", "error")
        for run in runs:
            j = run.job
            shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.metrics.items()))
            t.add_row(
                str(j["id"]),
                j["tenant"],
                j["state"],
                f"{j.get('elapsed_seconds') or 0:.0f} s",
                shown,
                (j.get("error") or "")[:80],
            )
        return t

    with Live(table(), refresh_per_second=2, transient=False) as live:
        while True:
            for run in runs:
                if run.ended:
                    continue
                jid = run.job["id"]
                run.job = _get(client, f"jobs/{jid}")
                for m in _get(client, f"jobs/{jid}/metrics", after=run.last_metric)["metrics"]:
                    run.metrics[m["name"]] = m["value"]
                    run.last_metric = m["id"]
            live.update(table())
            if all(r.ended for r in runs):
                break
            time.sleep(poll)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for run in runs:
            r = client.get(f"jobs/{run.job['id']}/output")
            if r.status_code == 200:
                path = output / f"{run.job['id']}-{run.job['tenant']}-{run.job['name']}.ipynb"
                path.write_text(json.dumps(r.json(), indent=1))
                print(f"executed notebook: {path}")
    return 0 if all(r.job["state"] == "succeeded" for r in runs) else 1
