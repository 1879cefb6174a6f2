"""The supervisor's start: a child whose set-up asks for it is started once more."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

from workbench.embedded.supervisor import RESTART, ChildSpec, Supervisor
from workbench.embedded.up import free_port


def test_on_ready_may_have_its_child_started_once_more(tmp_path: Path) -> None:
    port = free_port()
    pids: list[int] = []
    sup: Supervisor

    def on_ready() -> str | None:
        pids.append(sup.children[-1].proc.pid)
        return RESTART  # every time: the supervisor restarts once, not forever

    spec = ChildSpec(
        name="web",
        argv=(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        log_file=tmp_path / "web.log",
        ready_urls=(f"http://127.0.0.1:{port}/",),
        on_ready=on_ready,
    )
    sup = Supervisor([spec], console=io.StringIO())
    try:
        sup.start(threading.Event(), 30)
        assert len(pids) == 2 and pids[0] != pids[1]
        assert [c.proc.pid for c in sup.children] == [pids[1]]
        first = Path(f"/proc/{pids[0]}")
        assert not first.exists() or "Z" in (first / "stat").read_text().split()[2]
        assert sup.children[0].proc.poll() is None
    finally:
        sup.stop()
    assert sup.children[0].proc.poll() is not None
