"""The supervisor's start: set-up that must run before a child starts."""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

import pytest

from workbench.embedded.supervisor import ChildSpec, StartFailed, Supervisor, answers
from workbench.embedded.up import free_port


def web(tmp_path: Path, port: int, before_start: object) -> ChildSpec:
    return ChildSpec(
        name="web",
        argv=(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        log_file=tmp_path / "web.log",
        ready_urls=(f"http://127.0.0.1:{port}/",),
        before_start=before_start,  # type: ignore[arg-type]
    )


def test_before_start_runs_before_the_child_is_started(tmp_path: Path) -> None:
    port = free_port()
    seen: list[bool] = []
    sup = Supervisor(
        [web(tmp_path, port, lambda: seen.append(answers(f"http://127.0.0.1:{port}/")))],
        console=io.StringIO(),
    )
    try:
        sup.start(threading.Event(), 30)
        assert seen == [False] and answers(f"http://127.0.0.1:{port}/")
    finally:
        sup.stop()


def test_a_failing_before_start_fails_the_start_and_starts_nothing(tmp_path: Path) -> None:
    def broken() -> None:
        raise RuntimeError("the identities could not be imported")

    sup = Supervisor([web(tmp_path, free_port(), broken)], console=io.StringIO())
    with pytest.raises(StartFailed, match="could not be prepared: the identities"):
        sup.start(threading.Event(), 30)
    assert sup.children == []
    sup.stop()
