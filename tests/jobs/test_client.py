"""The client side: `workbench.jobs.submit` from a server's environment, the ipywidgets
monitor, and `workbench run` (one request, and --each-tenant)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Service
from tests.jobs.conftest import approved, notebook, wait_ended
from tests.mocking import token_for
from workbench import cli
from workbench.jobs import client as jobs_client
from workbench.jobs.widgets import metric_svg

TRAIN = notebook(
    "from workbench.jobs import log_metric\n"
    "for step in range(epochs):\n"
    "    log_metric('loss', 1.0 / (step + 1), step)",
    parameters="epochs = 2\n",
)


@pytest.fixture
def server_env(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a notebook server for alice has."""
    monkeypatch.setenv("WORKBENCH_API_URL", service.url + "api/v1/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token_for("alice"))
    monkeypatch.delenv("WORKBENCH_TOKEN", raising=False)
    monkeypatch.setattr(jobs_client, "_service", None)


def test_submit_from_a_notebook_and_monitor_it(
    service: Service, server_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = approved(service)
    monkeypatch.setenv("WORKBENCH_REQUEST_ID", str(rid))
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(TRAIN))
    with pytest.raises(jobs_client.JobError, match="not in the notebook's parameters"):
        jobs_client.submit(path, parameters={"tenant": "globex"})
    job = jobs_client.submit(path, parameters={"epochs": 4})
    assert job.state == "running" and job.data["name"] == "train"
    wait_ended(service, job.id)
    job.wait(poll=0.2, progress=False)
    assert job.state == "succeeded"
    monitor = job.monitor()
    monitor.close()
    assert "succeeded" in monitor.state.value
    assert monitor.plot.value.count("<polyline") == 1 and "loss 0.25" in monitor.plot.value
    assert [j.id for j in jobs_client.jobs()] == [job.id]


def test_metric_plot_scales_each_series_to_the_box() -> None:
    svg = metric_svg({"loss": [(0, 2.0), (1, 1.0), (2, 0.5)], "acc": [(0, 0.1), (2, 0.9)]})
    points = re.findall(r'points="([^"]+)"', svg)
    assert len(points) == 2
    for series in points:
        xy = [tuple(map(float, p.split(","))) for p in series.split()]
        assert min(x for x, _ in xy) == 24 and max(x for x, _ in xy) == 420 - 24
        assert min(y for _, y in xy) == 24 and max(y for _, y in xy) == 160 - 24
    assert metric_svg({}) == "<em>no metrics yet</em>"


def test_workbench_run_each_tenant_runs_one_job_per_tenant_under_its_own_request(
    service: Service, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    acme, globex = approved(service, tenant="acme"), approved(service, tenant="globex")
    path = tmp_path / "train.ipynb"
    path.write_text(json.dumps(TRAIN))
    base = service.url.removesuffix("services/workbench/")
    args = ["run", str(path), "--url", base, "--token", token_for("alice")]
    with pytest.raises(SystemExit) as done:
        cli.main([*args, "--each-tenant", "-p", "epochs", "3", "--output", str(tmp_path / "out")])
    assert done.value.code == 0, capsys.readouterr()
    with service.client("alice") as c:
        jobs = c.get("jobs").json()["jobs"]
    assert sorted((j["tenant"], j["request_id"], j["state"]) for j in jobs) == [
        ("acme", acme, "succeeded"),
        ("globex", globex, "succeeded"),
    ]
    assert all(j["parameters"] == {"epochs": 3} for j in jobs)
    assert len(list((tmp_path / "out").glob("*.ipynb"))) == 2
    with pytest.raises(SystemExit) as refused:
        cli.main([*args, "--request", str(acme), "-p", "lr", "0.1"])
    assert "not in the notebook's parameters cell" in str(refused.value)


def test_metrics_logged_faster_than_a_report_carries_go_in_several_reports() -> None:
    sent: list[list[dict]] = []
    metrics = jobs_client._Metrics(sent.append)
    for step in range(2500):  # a fast loop: more than one report's worth before any flush
        metrics.add("loss", 1.0 / (step + 1), None)
    metrics.flush()
    sizes = [len(b) for b in sent]
    assert sum(sizes) == 2500 and max(sizes) <= jobs_client.MAX_REPORT
    steps = [m["step"] for b in sent for m in b]
    assert sorted(steps) == list(range(2500))


def test_metrics_are_read_in_as_many_pages_as_it_takes() -> None:
    """A job that logged more than one page (the service's limit) between two reads: every
    metric arrives, in order, and the service is asked from where the last page ended."""
    logged = [{"id": i, "name": "loss", "step": i, "value": 1.0} for i in range(1, 12_001)]
    asked: list[int] = []

    def service(method: str, path: str, params: dict, **kw: object) -> dict:
        asked.append(params["after"])
        later = [m for m in logged if m["id"] > params["after"]]
        return {"metrics": later[: jobs_client.METRICS_PAGE]}

    job = jobs_client.Job({"id": 7, "state": "succeeded"}, service=service)  # type: ignore[arg-type]
    assert [m["id"] for m in job.metrics(100)] == list(range(101, 12_001))
    assert asked == [100, 5100, 10_100]
    from workbench.jobs.service import METRICS_PAGE

    assert jobs_client.METRICS_PAGE == METRICS_PAGE
