"""A training job from JupyterLab, against the real embedded stack: alice opens the example
notebook in her server, sends it off with *Run as job*, watches its metrics plot grow in the
Jobs panel, stops her server, starts it again and finds the finished job, the model it saved
(an artifact, a candidate for promotion) and its executed notebook there.

With $WORKBENCH_SCREENSHOTS set, each step leaves a screenshot there.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_approval_journey import login, snap
from tests.browser.test_researcher_journey import SPAWN_TIMEOUT, dismiss_news, server_state
from tests.fixtures.hub import Stack
from tests.hub.helpers import approved, hub_as, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.hub]

EXAMPLE = Path(__file__).parents[2] / "examples" / "train_calls.ipynb"
# Long enough to watch the plot grow (loss and accuracy per epoch) through the panel's 2 s
# polls: ~2 ms an epoch with this vocabulary on the 2-core VM, ~12 s of training.
EPOCHS = 6000
BUCKETS = 32768
JOB_TIMEOUT = 240_000  # ms: a job imports torch and trains on a small, busy machine


def start_server(stack: Stack, rid: int) -> str:
    server = f"r{rid}"
    alice = hub_as(stack, "alice")
    r = alice.post(f"hub/api/users/alice/servers/{server}", json={"request_id": rid})
    assert r.status_code in (201, 202), r.text
    wait_ready(stack, "alice", server, timeout=SPAWN_TIMEOUT / 1000)
    return server


def put_notebook(stack: Stack, server: str, name: str, nb: dict[str, Any]) -> None:
    alice = hub_as(stack, "alice")
    r = alice.put(
        f"{stack.url}user/alice/{server}/api/contents/{name}",
        json={"type": "notebook", "format": "json", "content": nb},
    )
    assert r.status_code in (200, 201), r.text


def select(page: Any, job_id: str) -> None:
    """Show the job's detail (a click on a selected job would close it)."""
    item = page.locator(f'li.wb-job[data-job-id="{job_id}"]')
    if "wb-mod-selected" not in (item.get_attribute("class") or ""):
        item.click()
    page.locator(f'.wb-job-detail[data-job-id="{job_id}"]').wait_for()


def test_alice_runs_the_example_as_a_job_and_finds_it_after_a_restart(
    browser: Any, stack: Stack, shots: Path | None, tmp_path: Path
) -> None:
    admin = hub_as(stack, "admin")
    rid = approved(stack, "alice", hours=2)
    server = start_server(stack, rid)
    put_notebook(stack, server, "train_calls.ipynb", json.loads(EXAMPLE.read_text()))
    page = None
    try:
        page = login(browser, stack, "alice")
        page.goto(f"{stack.url}user/alice/{server}/lab/tree/train_calls.ipynb?reset")
        status = page.locator("#wb-request-status")
        status.filter(has_text="acme").wait_for(timeout=SPAWN_TIMEOUT)
        assert status.get_attribute("data-request-id") == str(rid)

        # -- Run as job: the dialog offers the notebook's parameters --------------------------
        page.locator(".Toastify__toast", has_text="Jupyter news").wait_for(timeout=15_000)
        dismiss_news(page)
        page.locator('[data-jp-item-name="workbench-run-as-job"] button').click()
        dialog = page.locator(".wb-run-dialog")
        dialog.wait_for()
        epochs = page.locator('.wb-run-param[data-param="epochs"]')
        assert epochs.input_value() == "30"
        epochs.fill(str(EPOCHS))
        page.locator('.wb-run-param[data-param="buckets"]').fill(str(BUCKETS))
        page.locator("#wb-run-name").fill("topics from the browser")
        snap(page, shots, "10-run-as-job")
        page.locator(".jp-Dialog-button.jp-mod-accept").click()

        # -- the Jobs panel: the job runs, its plot grows --------------------------------------
        job = page.locator("li.wb-job", has_text="topics from the browser")
        job.wait_for(timeout=30_000)
        job_id = job.get_attribute("data-job-id")
        assert job_id
        select(page, job_id)
        plot = page.locator("svg.wb-metric-plot")
        done = page.locator(f'li.wb-job[data-job-id="{job_id}"][data-job-state="succeeded"]')
        seen: list[int] = []  # the plot's point count, as alice watches it while the job runs
        deadline = time.monotonic() + JOB_TIMEOUT / 1000
        while not done.count() and time.monotonic() < deadline:
            if plot.count():
                seen.append(int(plot.get_attribute("data-points") or 0))
            time.sleep(0.3)
        done.wait_for(timeout=5_000)
        page.wait_for_function(
            f"() => +document.querySelector('svg.wb-metric-plot')?.dataset.points === {2 * EPOCHS}",
            timeout=30_000,
        )
        growing = sorted({n for n in seen if 0 < n < 2 * EPOCHS})
        assert growing, f"the plot never showed a partial run: {sorted(set(seen))} of {len(seen)}"
        assert page.locator('path.wb-metric-line[data-metric="loss"]').count() == 1
        snap(page, shots, "11-jobs-panel")
        page.context.close()
        page = None

        # -- the server goes; the job and its results stay ----------------------------------
        assert admin.delete(f"hub/api/users/alice/servers/{server}").status_code in (202, 204)
        deadline = time.monotonic() + 60
        while server_state(admin, "alice", server) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        server = start_server(stack, rid)
        page = login(browser, stack, "alice")
        page.goto(f"{stack.url}user/alice/{server}/lab?reset")
        page.locator("#wb-request-status").wait_for(timeout=SPAWN_TIMEOUT)
        page.locator(".jp-SideBar.jp-mod-left li[data-id='wb-jobs-panel']").click()
        again = page.locator(f'li.wb-job[data-job-id="{job_id}"][data-job-state="succeeded"]')
        again.wait_for(timeout=30_000)
        select(page, job_id)
        # the model the job saved, with the job's lineage, waits as a candidate
        artifact = page.locator('li.wb-artifact[data-stage="candidate"]')
        artifact.wait_for(timeout=30_000)
        assert "topic-classifier" in artifact.inner_text()
        page.locator("button.wb-job-open").click()
        page.locator(".jp-Notebook .jp-OutputArea-output", has_text="final loss").first.wait_for(
            timeout=60_000
        )
        snap(page, shots, "12-job-result-after-restart")
    except BaseException:
        if page is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "failure.png"))
        print(f"screenshot of the failure: {tmp_path}")
        raise
    finally:
        if page is not None:
            page.context.close()
        if server_state(admin, "alice", server) is not None:
            admin.delete(f"hub/api/users/alice/servers/{server}")
