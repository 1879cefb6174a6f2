"""The installed labextension in a real JupyterLab, against the fake service, driven with
Playwright and Debian's Chromium: the dialog, the panel, the plot, promote, open result, and
the status bar. (The full journey on the real stack is the workbench's own browser test.)"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LAB_TOKEN, Lab
from fake_service import FakeService
from lab_notebooks import write_notebook

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_run_follow_promote_and_open(browser: Any, lab: Lab, fake: FakeService) -> None:
    done = fake.add_job(
        name="done",
        state="succeeded",
        started_at="2024-05-01T10:00:00Z",
        ended_at="2024-05-01T10:01:30Z",
        elapsed_seconds=90.0,
        gpu_hours=0.5,
    )
    live = fake.add_job(name="live", state="running", started_at="2024-05-01T10:00:00Z")
    fake.artifacts.append(
        {
            "id": 11,
            "name": "model",
            "tenant": "acme",
            "stage": "candidate",
            "sha256": "a" * 64,
            "size": 2048,
            "job_id": done["id"],
            "request_id": 7,
            "created_at": "2024-05-01T10:01:30Z",
        }
    )
    fake.outputs[done["id"]] = write_notebook(lab.root, "executed-copy.ipynb")
    write_notebook(lab.root, "train.ipynb")

    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{lab.url}/lab/tree/train.ipynb?token={LAB_TOKEN}")

    # the request in the status bar
    status = page.locator("#wb-request-status")
    status.filter(has_text="acme").wait_for()
    assert status.get_attribute("data-low") == "false"
    assert "GPU 2.5 of 4 h left" in status.inner_text()

    # Run as job: parameters from the notebook, only the changed one sent
    page.locator('[data-jp-item-name="workbench-run-as-job"] button').click()
    lr = page.locator('.wb-run-param[data-param="lr"]')
    assert lr.input_value() == "0.01"
    lr.fill("0.1")
    page.locator("#wb-run-name").fill("from the browser")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    new = page.locator('li.wb-job[data-job-id="3"]')
    new.wait_for()
    sent = fake.last("POST", "jobs").body
    assert sent["parameters"] == {"lr": 0.1}
    assert sent["name"] == "from the browser"
    assert sent["notebook_name"] == "train.ipynb"
    page.locator('.wb-job-detail[data-job-id="3"]').wait_for()

    # a running job: log tail and metric plot
    page.locator(f'li.wb-job[data-job-id="{live["id"]}"]').click()
    page.locator('svg.wb-metric-plot[data-points="3"]').wait_for()
    assert page.locator('path.wb-metric-line[data-metric="loss"]').count() == 1
    assert "epoch 2" in page.locator("pre.wb-job-logs").inner_text()
    assert page.locator("button.wb-job-cancel").is_enabled()
    shots = os.environ.get("WORKBENCH_SCREENSHOTS")
    if shots:
        page.screenshot(path=os.path.join(shots, "lab-jobs-panel.png"))

    # an ended job: its artifact is promoted, its result opened
    page.locator(f'li.wb-job[data-job-id="{done["id"]}"]').click()
    artifact = page.locator('li.wb-artifact[data-artifact-id="11"]')
    artifact.wait_for()
    assert page.locator(".wb-job-gpu-hours").first.inner_text()
    artifact.locator("button.wb-artifact-promote").click()
    page.locator('li.wb-artifact[data-artifact-id="11"][data-stage="staging"]').wait_for()
    assert fake.last("POST", "artifacts/11/promote").body == {"stage": "staging"}

    page.locator("button.wb-job-open").click()
    page.locator(
        f'.jp-DirListing-item[title*="{done["id"]}-done.ipynb"], '
        f'.lm-TabBar-tab[title*="{done["id"]}-done.ipynb"]'
    ).first.wait_for()
    assert (lab.root / "jobs" / f"{done['id']}-done.ipynb").is_file()

    # a service refusal reaches the panel as its message
    fake.fail("POST", f"jobs/{live['id']}/cancel", 409, "job 2 has already ended (failed)")
    page.locator(f'li.wb-job[data-job-id="{live["id"]}"]').click()
    page.locator("button.wb-job-cancel").click()
    error = page.locator(".wb-error", has_text="job 2 has already ended")
    error.wait_for()
    # the running job is polled every 2 s: a poll that succeeds must not wipe the refusal
    polls = sum(c.method == "GET" and c.path == "jobs" for c in fake.calls)
    deadline = time.monotonic() + 30
    while sum(c.method == "GET" and c.path == "jobs" for c in fake.calls) < polls + 2:
        assert time.monotonic() < deadline, "the panel stopped polling"
        page.wait_for_timeout(200)
    assert error.is_visible()

    # a workbench without the artifact registry (404) shows no artifacts, and no error
    fake.fail("GET", "artifacts", 404, "nothing here: /services/workbench/api/v1/artifacts")
    page.locator(f'li.wb-job[data-job-id="{done["id"]}"]').click()
    page.locator(".wb-artifacts-empty", has_text="keeps no artifacts").wait_for()
    assert page.locator(".wb-error").is_hidden()

    # under 10 % of the GPU budget left, the status bar turns red
    fake.request["usage"] = {"gpu_hours_used": 3.7, "cpu_hours_used": 1.0}
    page.reload()
    page.locator('#wb-request-status[data-low="true"].wb-mod-low').wait_for()
    assert "GPU 0.3 of 4 h left" in page.locator("#wb-request-status").inner_text()
    page.close()
