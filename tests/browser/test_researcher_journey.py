"""The whole researcher journey in a browser, against the real embedded stack: alice files a
request for acme, maria approves it, alice starts a notebook server for it from the hub's spawn
page, reads acme's data in JupyterLab and is refused globex's; maria revokes the request and the
service's reaper stops alice's server.

With $WORKBENCH_SCREENSHOTS set, each step leaves a screenshot there (the docs' images come from
`WORKBENCH_SCREENSHOTS=docs/img pytest tests/browser`).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_approval_journey import login, snap
from tests.fixtures.hub import Stack
from tests.hub.helpers import hub_as

pytestmark = [pytest.mark.browser, pytest.mark.hub]

PURPOSE = "Call-deflection analysis for the support review"
SPAWN_TIMEOUT = 120_000  # ms: start the server, then load JupyterLab (slow on a small machine)
CELL_TIMEOUT = 90_000  # ms: the first cell also waits for the kernel to start
STOP_WITHIN = 60.0  # s: invariant 4, "ending is prompt"

READ_ACME = 'import workbench.data as wd\nprint(len(list(wd.open("acme/calls").records())))'
OPEN_GLOBEX = 'wd.open("globex/calls")'


def run_cell(page: Any, code: str) -> Any:
    """Type `code` into the notebook's last cell, run it (Shift+Enter) and return that cell.
    (Fixed by index: running the last cell appends a new one, which `.last` would follow.)"""
    cells = page.locator(".jp-Notebook .jp-Cell")
    cell = cells.nth(cells.count() - 1)
    editor = cell.locator(".cm-content")
    editor.click()
    # insert_text types no keys, so the editor adds no closing brackets or indentation
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")
    return cell


def dismiss_news(page: Any) -> None:
    """Answer JupyterLab's "notified about official Jupyter news?" toast, when it shows."""
    toast = page.locator(".Toastify__toast", has_text="Jupyter news")
    if toast.count():
        toast.locator("button", has_text="No").click()
        toast.wait_for(state="detached")


def hide_file_browser(page: Any) -> None:
    """Collapse JupyterLab's left panel, leaving the notebook the whole width."""
    page.locator(".jp-SideBar.jp-mod-left li[data-id='filebrowser']").click()
    page.locator(".jp-FileBrowser").wait_for(state="hidden")


def server_state(admin: Any, user: str, name: str) -> dict[str, Any] | None:
    """The server's model as the hub's REST API shows it to an admin (None: not running)."""
    r = admin.get(f"hub/api/users/{user}")
    r.raise_for_status()
    model = r.json().get("servers", {}).get(name)
    return dict(model) if model else None


def test_researcher_starts_a_server_reads_acme_and_loses_it_on_revoke(
    browser: Any, stack: Stack, shots: Path | None, tmp_path: Path
) -> None:
    admin = hub_as(stack, "admin")
    pages: list[Any] = []
    rid = None
    try:
        # -- alice files a request for acme/calls --------------------------------------------
        alice = login(browser, stack, "alice")
        pages.append(alice)
        alice.select_option("select[name=tenant]", "acme")
        alice.check("input[value='acme/calls']")
        alice.fill("textarea[name=purpose]", PURPOSE)
        alice.select_option("select[name=profile]", "cpu-small")
        alice.fill("input[name=hours]", "2")
        alice.click("button:has-text('File request')")
        alice.wait_for_url("**/services/workbench/requests/*")
        assert alice.locator("#request-state").inner_text() == "pending"
        request_url = alice.url
        rid = int(request_url.rsplit("/", 1)[1])
        server = f"r{rid}"

        # -- maria approves it from her queue ------------------------------------------------
        maria = login(browser, stack, "maria")
        pages.append(maria)
        maria.click("#nav-manage")
        row = maria.locator(f"tr[data-request-id='{rid}']")
        assert PURPOSE in row.inner_text()
        row.locator("input[name=comment]").fill("Approved: acme call transcripts only")
        row.locator("button.approve").click()
        maria.wait_for_url(f"**/requests/{rid}")
        assert maria.locator("#request-state").inner_text() == "approved"

        # -- alice starts the request's server from the hub's spawn page ---------------------
        alice.goto(f"{stack.url}hub/spawn/alice/{server}")
        mine = alice.locator(f"#workbench-request-{rid}")
        mine.wait_for()
        assert "acme" in mine.inner_text() and "calls" in mine.inner_text()
        assert "cpu-small" in mine.inner_text()
        snap(alice, shots, "05-spawn-page")
        mine.locator("button:has-text('Start')").click()
        alice.wait_for_url(
            f"**/user/alice/{server}/lab**", timeout=SPAWN_TIMEOUT, wait_until="commit"
        )
        # Servers of one user share its account's JupyterLab workspace, so a server may open
        # with another's notebooks restored; `?reset` starts from an empty one, a launcher.
        alice.goto(f"{stack.url}user/alice/{server}/lab?reset")
        launcher = alice.locator(".jp-Launcher")
        launcher.wait_for(timeout=SPAWN_TIMEOUT)
        model = server_state(admin, "alice", server)
        assert model is not None and model["ready"], model

        # -- a notebook: acme's data is readable ----------------------------------------------
        hide_file_browser(alice)
        launcher.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
        # a cell run before the kernel is connected is not queued: wait for it to be idle
        alice.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(
            timeout=CELL_TIMEOUT
        )
        first = run_cell(alice, READ_ACME)
        output = first.locator(".jp-OutputArea-output")
        output.first.wait_for(timeout=CELL_TIMEOUT)
        text = output.first.inner_text().strip()
        assert re.fullmatch(r"\d+", text), f"expected a count of acme's calls, got: {text}"
        assert int(text) > 0
        dismiss_news(alice)
        snap(alice, shots, "06-notebook-reads-acme")

        # -- and globex's is refused ----------------------------------------------------------
        second = run_cell(alice, OPEN_GLOBEX)
        refusal = second.locator(".jp-OutputArea-output")
        refusal.first.wait_for(timeout=CELL_TIMEOUT)
        message = refusal.first.inner_text()
        assert "DataError" in message, message
        assert "for tenant 'acme', not 'globex'" in message, message
        assert "HTTP 403" in message, message
        dismiss_news(alice)
        # the traceback is long: show its end, the refusal's message
        refusal.first.evaluate("e => e.scrollIntoView({block: 'end'})")
        snap(alice, shots, "07-notebook-refuses-globex")

        # -- maria revokes the request; alice's server stops ---------------------------------
        maria.goto(request_url)
        maria.fill("form[action$='/revoke'] input[name=comment]", "Review finished early")
        revoked_at = time.monotonic()
        maria.click("button:has-text('Revoke access now')")
        maria.wait_for_url(f"**/requests/{rid}")
        assert maria.locator("#request-state").inner_text() == "revoked"
        snap(maria, shots, "08-manager-revoked")

        model = server_state(admin, "alice", server)
        while model is not None and time.monotonic() - revoked_at < STOP_WITHIN:
            time.sleep(0.5)
            model = server_state(admin, "alice", server)
        took = time.monotonic() - revoked_at
        assert model is None, f"alice's {server} still there {took:.0f} s after the revoke: {model}"
        print(f"alice's {server} stopped {took:.1f} s after the revoke")

        # JupyterLab, still open, finds its server gone at its next call (the kernel's
        # connection, or its regular polls)
        gone = alice.locator(".jp-Dialog", has_text="is not running")
        gone.wait_for(timeout=CELL_TIMEOUT)
        print(f"JupyterLab noticed {time.monotonic() - revoked_at:.1f} s after the revoke")
        assert f"/user/alice/{server}/" in gone.inner_text()
        snap(alice, shots, "09-server-stopped")
        # its Restart opens the hub's spawn page in a new tab, which no longer offers the request
        with alice.context.expect_page() as opened:
            gone.locator("button", has_text="Restart").click()
        restart = opened.value
        restart.wait_for_url(f"**/hub/spawn/alice/{server}**")
        restart.locator("#workbench-requests").wait_for()
        assert restart.locator(f"#workbench-request-{rid}").count() == 0
    except BaseException:
        for i, page in enumerate(pages):  # what each person saw, for the failure's report
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / f"failure-{i}.png"))
        print(f"screenshots of the failure: {tmp_path}")
        raise
    finally:
        if rid is not None and server_state(admin, "alice", f"r{rid}") is not None:
            admin.delete(f"hub/api/users/alice/servers/r{rid}")
        for page in pages:
            page.context.close()
