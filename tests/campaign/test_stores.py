"""OpenBao sealed or stopped, SeaweedFS stopped: grants fail closed with a message that says so,
notebooks and jobs get a DataError, nothing is recorded as read that was not, and everything
recovers without restarting the service once the store is back."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.campaign.conftest import ServiceProcess, Stores
from tests.jobs.conftest import notebook
from tests.mocking import token_for
from workbench import data

Launch = Callable[..., ServiceProcess]


def events(svc: ServiceProcess, action: str) -> list[dict[str, object]]:
    db = sqlite3.connect(svc.home / "workbench.sqlite")
    try:
        rows = db.execute("SELECT body FROM audit_events ORDER BY seq").fetchall()
    finally:
        db.close()
    return [e for (b,) in rows if (e := json.loads(b))["action"] == action]


def granted_eventually(
    svc: ServiceProcess, rid: int, user: str = "alice", timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while (r := svc.grant(rid, user=user)).status_code != 201:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)


def test_sealed_openbao_fails_closed_and_recovers(launch: Launch, stores: Stores) -> None:
    svc = launch()
    rid = svc.approved()
    assert svc.grant(rid).status_code == 201
    stores.seal()
    try:
        r = svc.grant(rid)
        assert r.status_code == 503, r.text
        assert "credentials" not in r.json()
        assert "OpenBao" in r.json()["error"] and "sealed" in r.json()["error"]
    finally:
        stores.unseal()
    granted_eventually(svc, rid)
    failed = [e for e in events(svc, "grant.issue") if e.get("outcome") == "error"]
    assert failed and "sealed" in str(failed[-1]["reason"])  # the refusal is on record


def test_stopped_openbao_fails_closed_and_recovers(launch: Launch, stores: Stores) -> None:
    svc = launch()
    rid = svc.approved()
    assert svc.grant(rid).status_code == 201
    stores.stop_bao()
    try:
        r = svc.grant(rid)
        assert r.status_code == 503, r.text
        assert "credentials" not in r.json()
        assert "OpenBao" in r.json()["error"], r.json()
        # a request never seen before needs a token minted: refused the same way
        rid2 = svc.approved(user="bob")
        r = svc.grant(rid2, user="bob")
        assert r.status_code == 503 and "OpenBao" in r.json()["error"], r.text
    finally:
        stores.start_bao()  # same ports; unsealed and configured as `workbench up` does
    granted_eventually(svc, rid)
    granted_eventually(svc, rid2, "bob")


def test_stopped_seaweedfs_gives_a_data_error_and_records_no_read(
    launch: Launch, stores: Stores
) -> None:
    svc = launch()
    rid = svc.approved()
    client = data.Client(rid, api_url=svc.url, token=token_for("alice"))
    ds = client.open("acme/calls")
    assert isinstance(ds, data.ObjectDataset)
    keys = ds.files()
    assert keys
    ds.read(keys[0])
    ds.flush()
    before = events(svc, "data.read")
    stores.stop_seaweed()
    try:
        with pytest.raises(data.DataError) as err:
            for key in keys:
                ds.read(key)
        message = str(err.value)
        assert message.startswith("could not read acme/calls/") and "endpoint" in message.lower()
        assert len(message) < 500
        ds.flush()
        after = events(svc, "data.read")
        read_keys = [k for e in after[len(before) :] for k in e["detail"]["objects"]]  # type: ignore[index]
        assert keys[1] not in read_keys and read_keys in ([], [keys[0]]), read_keys
    finally:
        stores.start_seaweed()
    # the same client recovers (a just-restarted SeaweedFS may answer 500 for a moment)
    deadline = time.monotonic() + 30
    while True:
        try:
            assert ds.read(keys[1])
            break
        except data.DataError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    client.flush()


def test_listing_with_seaweedfs_stopped_is_a_data_error(launch: Launch, stores: Stores) -> None:
    svc = launch()
    rid = svc.approved()
    ds = data.Client(rid, api_url=svc.url, token=token_for("alice")).open("acme/calls")
    assert isinstance(ds, data.ObjectDataset)
    stores.stop_seaweed()
    try:
        with pytest.raises(data.DataError, match="acme/calls"):
            ds.files()
    finally:
        stores.start_seaweed()


# A job that reads one object, says so, waits for the test to stop SeaweedFS, then reads on.
READER = notebook(
    "import pathlib, time\n"
    "from workbench import data\n"
    "ds = data.open('acme/calls')\n"
    "keys = ds.files()\n"
    "ds.read(keys[0])\n"
    "ds.flush()\n"
    "pathlib.Path(sync, 'keys').write_text('\\n'.join(keys))\n"
    "while not pathlib.Path(sync, 'go').exists():\n"
    "    time.sleep(0.1)\n"
    "for key in keys[1:]:\n"
    "    ds.read(key)\n"
    "print('read them all')",
    parameters="sync = ''\n",
)


def test_stopped_seaweedfs_fails_a_reading_job_with_a_data_error(
    launch: Launch, stores: Stores, tmp_path: Path
) -> None:
    svc = launch(LocalJobBackend={"isolate_users": False})
    rid = svc.approved()
    sync = tmp_path / "sync"
    sync.mkdir()
    body = {
        "request_id": rid,
        "name": "reader",
        "notebook": READER,
        "parameters": {"sync": str(sync)},
    }
    r = svc.client("alice").post("jobs", json=body)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 120
    while not (sync / "keys").exists():
        job = svc.client("alice").get(f"jobs/{job_id}").json()
        assert job["state"] == "running", job
        assert time.monotonic() < deadline, "the job did not read its first object"
        time.sleep(0.2)
    keys = (sync / "keys").read_text().split("\n")
    stores.stop_seaweed()
    try:
        (sync / "go").touch()
        while (job := svc.client("alice").get(f"jobs/{job_id}").json())["state"] == "running":
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.3)
    finally:
        stores.start_seaweed()
    assert job["state"] == "failed", job
    error = job["error"] or ""
    assert (
        "DataError" in error and f"could not read acme/calls/{keys[1].rsplit('/', 1)[-1]}" in error
    ), error
    reads = [e for e in events(svc, "data.read") if e.get("resource") == f"job:{job_id}"]
    read_keys = [k for e in reads for k in e["detail"]["objects"]]  # type: ignore[index]
    assert read_keys == [keys[0]], read_keys  # the one read that happened, nothing more
