"""A researcher files a request in the browser and a manager approves it, through the real
JupyterHub login (OAuth) and the service's pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.hub]


def login(browser: Any, stack: Any, user: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(stack.url + "hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", stack.password)
    page.click("#login_submit")
    # the hub sends people to the workbench pages, which log them in through OAuth
    page.wait_for_url("**/services/workbench/**")
    return page


def snap(page: Any, shots: Path | None, name: str) -> None:
    if shots is not None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_manager_approves_alices_request(browser: Any, stack: Any, shots: Path | None) -> None:
    alice = login(browser, stack, "alice")
    assert alice.locator("h1").first.inner_text() == "My access requests"
    alice.select_option("select[name=tenant]", "acme")
    alice.check("input[value='acme/calls']")
    alice.fill("textarea[name=purpose]", "Churn model for the Q4 review")
    alice.select_option("select[name=profile]", "gpu-1")
    alice.fill("input[name=hours]", "4")
    snap(alice, shots, "01-researcher-files-request")
    alice.click("button:has-text('File request')")
    alice.wait_for_url("**/services/workbench/requests/*")
    assert alice.locator("#request-state").inner_text() == "pending"
    request_url = alice.url
    request_id = request_url.rsplit("/", 1)[1]

    maria = login(browser, stack, "maria")
    assert "waiting for your decision" in maria.content()
    maria.click("#nav-manage")
    row = maria.locator(f"tr[data-request-id='{request_id}']")
    assert "Churn model for the Q4 review" in row.inner_text()
    row.locator("input[name=comment]").fill("Approved for the Q4 review")
    snap(maria, shots, "02-manager-queue")
    row.locator("button.approve").click()
    maria.wait_for_url(f"**/requests/{request_id}")
    assert maria.locator("#request-state").inner_text() == "approved"
    assert "Approved for the Q4 review" in maria.content()
    snap(maria, shots, "03-request-approved")

    alice.goto(request_url)
    assert alice.locator("#request-state").inner_text() == "approved"

    sam = login(browser, stack, "sam")
    sam.click("#nav-audit")
    sam.fill("input[name=tenant]", "acme")
    sam.click("button:has-text('Search')")
    events = sam.locator("#events").inner_text()
    assert "request.approve" in events and "maria" in events and "request.file" in events
    snap(sam, shots, "04-security-audit-search")
