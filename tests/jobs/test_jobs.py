"""Jobs through the REST API, run by the real local backend (papermill in a subprocess)."""

from __future__ import annotations

import os
import time

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Service
from tests.jobs.conftest import approved, job_dir, notebook, wait_ended
from workbench.audit import Filters
from workbench.audit import query as q
from workbench.jobs.models import Job
from workbench.jobs.service import Jobs

TRAIN = notebook(
    "from workbench.jobs import log_metric\n"
    "for step in range(epochs):\n"
    "    log_metric('loss', 1.0 / (step + 1), step)\n"
    "print('trained', epochs)",
    parameters="epochs = 2\n",
)


def submit(service: Service, rid: int, nb: dict = TRAIN, user: str = "alice", **kw: object):
    with service.client(user) as c:
        return c.post(
            "jobs",
            json={
                "request_id": rid,
                "name": "train",
                "notebook": nb,
                "notebook_name": "t.ipynb",
                **kw,
            },
        )


def test_a_job_runs_its_notebook_reports_metrics_and_leaves_its_output(service: Service) -> None:
    rid = approved(service)
    r = submit(service, rid, parameters={"epochs": 3})
    assert r.status_code == 201, r.text
    job = r.json()
    assert (
        job["state"] == "running" and job["tenant"] == "acme" and job["parameters"] == {"epochs": 3}
    )
    done = wait_ended(service, job["id"])
    assert done["state"] == "succeeded", done
    with service.client("alice") as c:
        metrics = c.get(f"jobs/{job['id']}/metrics").json()["metrics"]
        assert [(m["name"], m["step"], m["value"]) for m in metrics] == [
            ("loss", 0, 1.0),
            ("loss", 1, 0.5),
            ("loss", 2, pytest.approx(1 / 3)),
        ]
        later = c.get(f"jobs/{job['id']}/metrics", params={"after": metrics[0]["id"]}).json()
        assert len(later["metrics"]) == 2
        out = c.get(f"jobs/{job['id']}/output").json()
        printed = "".join(
            "".join(o.get("text", "")) for cell in out["cells"] for o in cell.get("outputs", [])
        )
        assert "trained 3" in printed
        assert "trained 3" in c.get(f"jobs/{job['id']}/logs").json()["logs"]
    with service.wb.engine.connect() as conn:
        submitted = q.events(conn, Filters(action="job.submit"))
        ended = q.events(conn, Filters(action="job.end"))
    assert (
        submitted[0]["resource"] == f"job:{job['id']}" and submitted[0]["purpose"] == "Churn model"
    )
    assert submitted[0]["detail"]["notebook_sha256"] == job["notebook_sha256"]
    assert ended[0]["detail"]["state"] == "succeeded" and ended[0]["seq"] > submitted[0]["seq"]


def test_a_failing_notebook_ends_failed_with_the_error_cell(service: Service) -> None:
    rid = approved(service)
    job = submit(service, rid, notebook("x = 1", "raise ValueError('bad labels')")).json()
    done = wait_ended(service, job["id"])
    assert done["state"] == "failed"
    assert "ValueError: bad labels" in done["error"]
    with service.client("alice") as c:
        out = c.get(f"jobs/{job['id']}/output").json()
    errors = [
        o for cell in out["cells"] for o in cell.get("outputs", []) if o["output_type"] == "error"
    ]
    assert errors and errors[0]["evalue"] == "bad labels"


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"parameters": {"tenant": "globex"}}, 400, "not in the notebook's parameters cell"),
        ({"profile": "gpu-1"}, 403, "beyond request"),
        ({"profile": "gpu-9"}, 400, "no compute profile"),
        ({"nodes": 4}, 400, "runs at most 1"),
        ({"notebook": {"nbformat": 4}}, 400, "not valid nbformat"),
        ({"name": "../../etc"}, 400, "name"),
    ],
)
def test_bad_submissions_are_refused_and_nothing_runs(
    service: Service, change: dict, status: int, message: str
) -> None:
    rid = approved(service)
    with service.client("alice") as c:
        body = {"request_id": rid, "name": "t", "notebook": TRAIN, **change}
        r = c.post("jobs", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    with service.wb.sessions() as s:
        assert s.scalars(select(Job)).all() == []


def test_someone_elses_or_an_ended_request_is_refused_and_recorded(service: Service) -> None:
    rid = approved(service, user="bob")
    r = submit(service, rid)  # alice, on bob's request
    assert r.status_code == 404 and "no access request" in r.json()["error"]
    with service.client("bob") as b:
        assert b.post(f"requests/{rid}/withdraw", json={}).status_code in (200, 409)
    mine = approved(service)
    with service.client("maria") as m:
        m.post(f"requests/{mine}/revoke", json={"comment": "done"})
    r = submit(service, mine)
    assert r.status_code == 403 and "revoked" in r.json()["error"]
    with service.wb.engine.connect() as conn:
        refused = q.events(conn, Filters(action="job.submit", outcome="refused"))
    assert {e["request_id"] for e in refused} == {rid, mine}
    assert all(e["tenant"] == "acme" for e in refused)


def test_revoking_the_request_stops_its_running_job_and_kills_its_token(
    service: Service,
) -> None:
    rid = approved(service)
    job = submit(service, rid, notebook("import time\ntime.sleep(120)")).json()
    workdir = job_dir(service, job["id"])
    deadline = time.monotonic() + 30
    while not (workdir / "output.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/revoke", json={"comment": "stop"}).status_code == 200
    done = wait_ended(service, job["id"], timeout=30)
    assert done["state"] == "cancelled" and done["end_reason"] == f"request {rid} is revoked"
    assert (workdir / "exit-status").exists() or not _running_in(workdir)


def _running_in(workdir) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/cwd") == str(workdir):
                    return True
            except OSError:
                continue
    return False


def test_cancel_stops_the_process_and_the_job_token_stops_working(service: Service) -> None:
    rid = approved(service)
    job = submit(service, rid, notebook("import time\ntime.sleep(120)")).json()
    token = _job_token(service, job["id"])
    with httpx.Client(
        base_url=service.url + "api/v1/", headers={"Authorization": f"token {token}"}
    ) as jc:
        assert jc.get(f"jobs/{job['id']}/notebook").status_code == 200
        # the token acts for this job only
        assert (
            jc.post("jobs", json={"request_id": rid, "name": "x", "notebook": TRAIN}).status_code
            == 403
        )
        other = approved(service)
        assert jc.get(f"requests/{other}").status_code == 404
        g = jc.post("grants", json={"request_id": other, "dataset": "calls"})
        assert g.status_code == 403 and "its own request" in g.json()["error"]
        with service.client("bob") as b:
            assert b.post(f"jobs/{job['id']}/cancel").status_code == 404
        with service.client("alice") as c:
            r = c.post(f"jobs/{job['id']}/cancel")
            assert r.status_code == 200 and r.json()["state"] == "cancelled"
            assert c.post(f"jobs/{job['id']}/cancel").status_code == 409
        r = jc.get(f"jobs/{job['id']}/notebook")
        assert r.status_code == 401 and "ended" in r.json()["error"]
    assert not _running_in(job_dir(service, job["id"]))


def _job_token(service: Service, job_id: int) -> str:
    env = (job_dir(service, job_id) / "..").resolve()
    # the token exists only in the job's environment: read it from the process
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                raw = f.read().split(b"\0")
        except OSError:
            continue
        vars_ = dict(v.decode().split("=", 1) for v in raw if b"=" in v)
        if vars_.get("HOME") == str(job_dir(service, job_id)):
            return vars_["WORKBENCH_TOKEN"]
    raise AssertionError(f"no process of job {job_id} under {env}")


def test_a_restarted_service_finds_running_jobs_and_marks_vanished_ones_lost(
    service: Service,
) -> None:
    rid = approved(service)
    slow = submit(service, rid, notebook("import time\ntime.sleep(120)")).json()
    gone = submit(service, rid, notebook("import time\ntime.sleep(120)")).json()
    wb = service.wb
    # a new Jobs over the same database and a fresh backend: what a restarted service has
    fresh = Jobs(
        wb.sessions,
        wb.audit,
        wb.settings.catalog,
        type(wb.jobs.backend)(),
        wb.jobs.api_url,
        wb.jobs.output_dir,
    )
    gone_dir = job_dir(service, gone["id"])
    wb.jobs.backend.stop(_ref(service, gone["id"]))
    (gone_dir / "exit-status").unlink(missing_ok=True)
    # (the fixture's own follower, the first service, may notice first: either way it is lost)
    ended = dict((j, s) for j, s, _ in fresh.reconcile())
    assert ended in ({gone["id"]: "lost"}, {})
    with service.client("alice") as c:
        assert c.get(f"jobs/{slow['id']}").json()["state"] == "running"
        lost = c.get(f"jobs/{gone['id']}").json()
        assert lost["state"] == "lost" and "gone" in lost["end_reason"]


def _ref(service: Service, job_id: int) -> str:
    with service.wb.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.backend_ref
        return job.backend_ref


def test_rerun_makes_a_new_job_from_the_same_snapshot(service: Service) -> None:
    rid = approved(service)
    first = submit(service, rid, parameters={"epochs": 1}).json()
    wait_ended(service, first["id"])
    with service.client("alice") as c:
        r = c.post(f"jobs/{first['id']}/rerun")
        assert r.status_code == 201
        again = r.json()
        assert again["rerun_of"] == first["id"] and again["parameters"] == {"epochs": 1}
        assert again["notebook_sha256"] == first["notebook_sha256"]
        listed = c.get("jobs", params={"request_id": rid}).json()["jobs"]
        assert [j["id"] for j in listed] == [again["id"], first["id"]]
    with service.client("bob") as b:
        assert b.get("jobs").json()["jobs"] == []
        assert b.get(f"jobs/{first['id']}").status_code == 404
    with service.client("maria") as m:  # the manager of acme follows acme's jobs
        assert {j["id"] for j in m.get("jobs").json()["jobs"]} == {first["id"], again["id"]}
    wait_ended(service, again["id"])


def test_gpu_jobs_count_against_the_budget_and_stop_when_it_is_spent(service: Service) -> None:
    rid = approved(service, profile="gpu-1", gpu_hours=0.0005)  # 1.8 GPU-seconds
    job = submit(service, rid, notebook("import time\ntime.sleep(120)")).json()
    time.sleep(2.5)
    done = wait_ended(service, job["id"], timeout=30)
    assert done["state"] == "cancelled" and "GPU-hours" in done["end_reason"]
    with service.client("alice") as c:
        used = c.get(f"requests/{rid}").json()["usage"]["gpu_hours_used"]
        assert used >= 0.0005
        r = submit(service, rid, notebook("pass"))
    assert r.status_code == 403 and "GPU-hours" in r.json()["error"]


def test_a_job_runs_on_its_profiles_cpus(service: Service) -> None:
    rid = approved(service)  # cpu-small: 1 CPU
    job = submit(service, rid, notebook("import os\nprint('cpus', len(os.sched_getaffinity(0)))"))
    assert wait_ended(service, job.json()["id"])["state"] == "succeeded"
    with service.client("alice") as c:
        logs = c.get(f"jobs/{job.json()['id']}/logs").json()["logs"]
    assert "cpus 1" in logs


def test_a_job_whose_cancel_the_reconciler_overtakes_is_cancelled_not_lost(
    service: Service,
) -> None:
    """The reconciler runs while a cancel is stopping the job (the reaper's round): it sees
    the process gone with no exit status, and must leave the job to the cancel."""
    from tests.campaign.held import HeldJobBackend

    class ReconciledWhileStopping(HeldJobBackend):
        def stop(self, ref: str) -> None:
            super().stop(ref)  # the process is gone: status says "lost" from now on
            assert service.wb.jobs.reconcile() == []

    service.wb.jobs.backend = ReconciledWhileStopping()
    rid = approved(service)
    job = submit(service, rid).json()
    with service.client("alice") as c:
        r = c.post(f"jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    with service.wb.engine.connect() as conn:
        ends = q.events(conn, Filters(action="job.end"))
    assert [e["detail"]["state"] for e in ends] == ["cancelled"]
