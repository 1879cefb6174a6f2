"""The service SIGKILLed at random moments during a burst of grants: afterwards every credential
that reached a client has its committed audit event, and the chain still verifies."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx

from tests.campaign.conftest import ROOT, ServiceProcess, profile
from tests.mocking import token_for

Launch = Callable[..., ServiceProcess]
ROUNDS = profile(3, 12)
CLIENTS = profile(4, 8)


def burst(svc: ServiceProcess, requests: dict[str, int], got: list[dict[str, object]]) -> None:
    """Grant from CLIENTS threads until the service dies; keep every 201 body."""
    stop = threading.Event()

    def client(user: str, rid: int) -> None:
        with httpx.Client(
            base_url=svc.url,
            headers={"Authorization": f"token {token_for(user)}"},
            timeout=10,
            trust_env=False,
        ) as c:
            while not stop.is_set():
                try:
                    r = c.post("grants", json={"request_id": rid, "dataset": "acme/calls"})
                except httpx.HTTPError:
                    return  # the service is gone
                if r.status_code == 201:
                    got.append(r.json())
                else:
                    assert r.status_code in (503,), r.text

    users = list(requests.items())
    threads = [threading.Thread(target=client, args=users[i % len(users)]) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.2, 1.5))
    svc.kill()
    stop.set()
    for t in threads:
        t.join(30)


def issued_grant_ids(svc: ServiceProcess) -> set[int]:
    db = sqlite3.connect(svc.home / "workbench.sqlite")
    try:
        rows = db.execute("SELECT body FROM audit_events").fetchall()
    finally:
        db.close()
    events = [json.loads(b) for (b,) in rows]
    return {
        int(e["detail"]["grant_id"])
        for e in events
        if e["action"] == "grant.issue" and e.get("outcome", "ok") == "ok"
    }


def test_sigkill_during_a_burst_loses_no_audit_event(launch: Launch) -> None:
    svc = launch()
    requests = {"alice": svc.approved(user="alice"), "bob": svc.approved(user="bob")}
    got: list[dict[str, object]] = []
    for _ in range(ROUNDS):
        burst(svc, requests, got)
        svc.start()
    assert got, "no grant reached a client"
    audited = issued_grant_ids(svc)
    missing = [g["id"] for g in got if int(g["id"]) not in audited]  # type: ignore[call-overload]
    assert not missing, f"credentials without a committed audit event: grants {missing}"
    # the chain survived the kills: `workbench audit verify` on the service's HOME
    svc.stop()
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "audit", "verify", "--home", str(svc.home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
