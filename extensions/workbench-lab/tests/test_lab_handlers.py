"""The server extension's handlers against the fake workbench service, through a real server."""

from __future__ import annotations

import asyncio
import json

import httpx
import nbformat
import pytest
from conftest import Lab
from fake_service import TOKEN, FakeService
from lab_notebooks import write_notebook
from nbformat.v4 import new_code_cell, new_notebook
from workbench_lab.handlers import result_name
from workbench_lab.service import ServiceClient, ServiceError

# -- context ------------------------------------------------------------------------------


def test_context_is_the_request_with_its_budget(lab: Lab, fake: FakeService) -> None:
    r = lab.http.get("/workbench-lab/context")
    assert r.status_code == 200
    ctx = r.json()
    assert ctx["request_id"] == 7
    assert ctx["tenant"] == "acme"
    assert ctx["datasets"] == ["calls"]
    assert ctx["profile"] == "gpu-1"
    assert ctx["gpu_hours"] == 4.0
    assert ctx["gpu_hours_used"] == 1.5
    assert ctx["seconds_left"] == 3600.0
    assert ctx["request"]["requester"] == "alice"
    # called with the server's own token
    assert fake.last("GET", "requests/7").authorization == f"token {TOKEN}"


def test_context_reads_usage_in_either_spelling(lab: Lab, fake: FakeService) -> None:
    fake.request["usage"] = {"gpu_hours": 0.25, "cpu_hours": 1.0}
    assert lab.http.get("/workbench-lab/context").json()["gpu_hours_used"] == 0.25


@pytest.mark.parametrize(("status", "message"), [(404, "no request 7"), (403, "not yours")])
def test_service_refusals_pass_through(
    lab: Lab, fake: FakeService, status: int, message: str
) -> None:
    fake.fail("GET", "requests/7", status, message)
    r = lab.http.get("/workbench-lab/context")
    assert r.status_code == status
    assert r.json()["error"] == message


def test_a_service_5xx_keeps_its_status_and_message(lab: Lab, fake: FakeService) -> None:
    fake.fail("GET", "jobs", 503, "the audit log cannot be written right now")
    r = lab.http.get("/workbench-lab/jobs")
    assert r.status_code == 503
    assert r.json()["error"] == "the audit log cannot be written right now"


def test_handlers_need_the_server_login(lab: Lab) -> None:
    # a fresh client: the shared one holds the login cookie the server set
    for auth in ({"Authorization": "token wrong"}, {}):
        r = httpx.get(f"{lab.url}/workbench-lab/jobs", headers=auth)
        assert r.status_code == 403
        assert "error" in r.json()
    r = httpx.post(f"{lab.url}/workbench-lab/jobs/1/cancel")
    assert r.status_code == 403


# -- parameters ---------------------------------------------------------------------------


def test_parameters_come_from_the_parameters_cell(lab: Lab) -> None:
    write_notebook(lab.root, "work/train.ipynb")
    r = lab.http.get("/workbench-lab/parameters", params={"path": "work/train.ipynb"})
    assert r.status_code == 200, r.text
    params = {p["name"]: p for p in r.json()["parameters"]}
    assert list(params) == ["epochs", "lr", "optimizer", "use_cuda"]
    assert params["epochs"]["inferred_type_name"] == "None"
    assert params["epochs"]["default"] == "5"
    assert params["epochs"]["help"] == "passes over the data"
    assert params["lr"]["inferred_type_name"] == "float"
    assert params["lr"]["default"] == "0.01"
    assert params["optimizer"]["default"] == '"adam"'


def test_a_notebook_without_parameters_has_none(lab: Lab) -> None:
    write_notebook(lab.root, "plain.ipynb", parameters=None)
    r = lab.http.get("/workbench-lab/parameters", params={"path": "plain.ipynb"})
    assert r.status_code == 200
    assert r.json()["parameters"] == []


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("", 400, "path is required"),
        ("notes.txt", 400, "not a notebook"),
        ("../outside.ipynb", 400, "outside the server's folder"),
        ("missing.ipynb", 404, "no notebook at missing.ipynb"),
    ],
)
def test_parameters_of_a_bad_path(lab: Lab, path: str, status: int, words: str) -> None:
    (lab.root.parent / "outside.ipynb").write_text("{}")
    r = lab.http.get("/workbench-lab/parameters", params={"path": path})
    assert r.status_code == status
    assert words in r.json()["error"]


def test_parameters_of_a_broken_notebook(lab: Lab) -> None:
    (lab.root / "broken.ipynb").write_text("{not json")
    r = lab.http.get("/workbench-lab/parameters", params={"path": "broken.ipynb"})
    assert r.status_code == 400
    assert "cannot read the parameters of broken.ipynb" in r.json()["error"]


# -- submitting ---------------------------------------------------------------------------


def test_submit_posts_the_saved_notebook(lab: Lab, fake: FakeService) -> None:
    saved = write_notebook(lab.root, "work/train.ipynb")
    r = lab.http.post(
        "/workbench-lab/jobs",
        json={
            "path": "work/train.ipynb",
            "name": " nightly ",
            "parameters": {"lr": 0.1, "optimizer": "sgd"},
            "profile": "gpu-1",
        },
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "queued"
    assert job["name"] == "nightly"
    sent = fake.last("POST", "jobs")
    assert sent.authorization == f"token {TOKEN}"
    assert sent.body["request_id"] == 7
    assert sent.body["name"] == "nightly"
    assert sent.body["notebook_name"] == "train.ipynb"
    assert sent.body["parameters"] == {"lr": 0.1, "optimizer": "sgd"}
    assert sent.body["profile"] == "gpu-1"
    # the snapshot is the notebook as saved, as an nbformat object (not a string)
    assert sent.body["notebook"]["cells"] == saved["cells"]
    assert sent.body["notebook"]["metadata"]["kernelspec"]["name"] == "python3"
    assert sent.body["notebook"]["nbformat"] == 4


def test_submit_without_profile_leaves_it_to_the_service(lab: Lab, fake: FakeService) -> None:
    write_notebook(lab.root, "train.ipynb")
    r = lab.http.post("/workbench-lab/jobs", json={"path": "train.ipynb", "name": "a"})
    assert r.status_code == 201
    body = fake.last("POST", "jobs").body
    assert "profile" not in body
    assert body["parameters"] == {}


def test_a_refused_submit_keeps_the_services_answer(lab: Lab, fake: FakeService) -> None:
    write_notebook(lab.root, "train.ipynb")
    fake.fail("POST", "jobs", 403, "profile gpu-4 is beyond request 7 (gpu-1)")
    r = lab.http.post(
        "/workbench-lab/jobs", json={"path": "train.ipynb", "name": "a", "profile": "gpu-4"}
    )
    assert r.status_code == 403
    assert r.json()["error"] == "profile gpu-4 is beyond request 7 (gpu-1)"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"path": "train.ipynb"}, "name is required"),
        ({"path": "train.ipynb", "name": "a", "parameters": [1]}, "parameters must be"),
        ({"path": "train.ipynb", "name": "a", "profile": 3}, "profile must be"),
        ({"name": "a"}, "path is required"),
    ],
)
def test_bad_submits_are_refused_before_the_service(
    lab: Lab, fake: FakeService, body: dict, words: str
) -> None:
    write_notebook(lab.root, "train.ipynb")
    r = lab.http.post("/workbench-lab/jobs", json=body)
    assert r.status_code == 400
    assert words in r.json()["error"]
    assert not [c for c in fake.calls if c.method == "POST"]


def test_a_body_that_is_not_json(lab: Lab) -> None:
    r = lab.http.post("/workbench-lab/jobs", content=b"nope")
    assert r.status_code == 400
    assert "not JSON" in r.json()["error"]


# -- following a job ----------------------------------------------------------------------


def test_list_is_for_this_servers_request(lab: Lab, fake: FakeService) -> None:
    fake.add_job(name="mine")
    fake.add_job(name="other", request_id=8)
    r = lab.http.get("/workbench-lab/jobs", params={"state": "queued"})
    assert r.status_code == 200
    assert [j["name"] for j in r.json()["jobs"]] == ["mine"]
    assert fake.last("GET", "jobs").query == {"request_id": "7", "state": "queued"}


def test_job_logs_and_metrics(lab: Lab, fake: FakeService) -> None:
    job = fake.add_job(state="running")
    jid = job["id"]
    assert lab.http.get(f"/workbench-lab/jobs/{jid}").json()["state"] == "running"
    r = lab.http.get(f"/workbench-lab/jobs/{jid}/logs", params={"tail": 5000})
    assert r.json() == {"logs": "epoch 1\nepoch 2\n"}
    assert fake.last("GET", f"jobs/{jid}/logs").query == {"tail": "5000"}
    r = lab.http.get(f"/workbench-lab/jobs/{jid}/metrics", params={"after": 1})
    assert [m["id"] for m in r.json()["metrics"]] == [2, 3]
    assert fake.last("GET", f"jobs/{jid}/metrics").query == {"after": "1"}


def test_an_unknown_job_is_the_services_404(lab: Lab) -> None:
    r = lab.http.get("/workbench-lab/jobs/99")
    assert r.status_code == 404
    assert r.json()["error"] == "no job 99"


@pytest.mark.parametrize(
    "url", ["/workbench-lab/jobs/abc", "/workbench-lab/jobs/1/metrics?after=x"]
)
def test_malformed_ids_and_numbers_are_400(lab: Lab, fake: FakeService, url: str) -> None:
    fake.add_job()
    r = lab.http.get(url)
    assert r.status_code == 400
    assert "must be" in r.json()["error"]


def test_cancel_and_rerun(lab: Lab, fake: FakeService) -> None:
    jid = fake.add_job(state="running")["id"]
    r = lab.http.post(f"/workbench-lab/jobs/{jid}/cancel")
    assert r.status_code == 200
    assert r.json()["state"] == "cancelled"
    r = lab.http.post(f"/workbench-lab/jobs/{jid}/rerun")
    assert r.status_code == 201
    again = r.json()
    assert again["rerun_of"] == jid
    assert again["id"] != jid
    assert again["state"] == "queued"


def test_open_saves_the_executed_notebook(lab: Lab, fake: FakeService) -> None:
    jid = fake.add_job(name="nightly run/2", state="succeeded")["id"]
    executed = new_notebook(cells=[new_code_cell("1 + 1", execution_count=1)])
    executed.cells[0].outputs = [
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)
    ]
    fake.outputs[jid] = json.loads(nbformat.writes(executed))
    r = lab.http.post(f"/workbench-lab/jobs/{jid}/open")
    assert r.status_code == 200, r.text
    path = r.json()["path"]
    assert path == f"jobs/{jid}-nightly-run-2.ipynb"
    saved = nbformat.read(lab.root / path, as_version=4)
    assert saved.cells[0].outputs[0]["data"]["text/plain"] == "2"
    # opening again overwrites the same file
    assert lab.http.post(f"/workbench-lab/jobs/{jid}/open").json()["path"] == path


def test_open_before_the_job_ended_is_the_services_404(lab: Lab, fake: FakeService) -> None:
    jid = fake.add_job(state="running")["id"]
    r = lab.http.post(f"/workbench-lab/jobs/{jid}/open")
    assert r.status_code == 404
    assert r.json()["error"] == f"job {jid} has not ended; no output yet"


def test_result_names_are_safe() -> None:
    assert result_name(3, "train") == "3-train.ipynb"
    assert result_name(4, "../../etc/passwd") == "4-etc-passwd.ipynb"
    assert result_name(5, "///") == "5-job.ipynb"
    assert len(result_name(6, "x" * 500)) < 80


# -- artifacts ----------------------------------------------------------------------------


def test_artifacts_of_a_job_and_promotion(lab: Lab, fake: FakeService) -> None:
    jid = fake.add_job(state="succeeded")["id"]
    fake.artifacts.append(
        {
            "id": 11,
            "name": "model",
            "tenant": "acme",
            "stage": "candidate",
            "sha256": "a" * 64,
            "size": 1234,
            "job_id": jid,
            "request_id": 7,
            "created_at": "2024-05-01T11:00:00Z",
        }
    )
    r = lab.http.get("/workbench-lab/artifacts", params={"job_id": jid})
    assert [a["id"] for a in r.json()["artifacts"]] == [11]
    assert fake.last("GET", "artifacts").query == {"job_id": str(jid)}
    r = lab.http.post("/workbench-lab/artifacts/11/promote", json={"stage": "staging"})
    assert r.status_code == 200
    assert r.json()["stage"] == "staging"
    assert fake.last("POST", "artifacts/11/promote").body == {"stage": "staging"}


def test_promotion_refused_by_the_service(lab: Lab, fake: FakeService) -> None:
    fake.fail("POST", "artifacts/11/promote", 409, "lineage includes tenant globex")
    r = lab.http.post("/workbench-lab/artifacts/11/promote", json={"stage": "staging"})
    assert r.status_code == 409
    assert r.json()["error"] == "lineage includes tenant globex"


def test_promotion_needs_a_stage(lab: Lab) -> None:
    r = lab.http.post("/workbench-lab/artifacts/11/promote", json={})
    assert r.status_code == 400
    assert "stage is required" in r.json()["error"]


# -- the client on its own ----------------------------------------------------------------


def test_an_unreachable_service_is_502() -> None:
    async def go() -> ServiceError:
        with pytest.raises(ServiceError) as e:
            await ServiceClient("http://127.0.0.1:9/api/", "t", timeout=5).call("GET", "jobs")
        return e.value

    err = asyncio.run(go())
    assert err.status == 502
    assert "did not answer" in err.message


def test_a_server_without_a_request_is_503() -> None:
    async def go() -> ServiceError:
        with pytest.raises(ServiceError) as e:
            await ServiceClient("", "t").call("GET", "jobs")
        return e.value

    err = asyncio.run(go())
    assert err.status == 503
    assert "not started for an access request" in err.message
