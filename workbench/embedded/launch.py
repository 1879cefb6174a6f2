"""Start a `workbench up` (or anything that prints its ready line) as a child process and wait
for it to be ready: for the tests, the benchmarks and anyone scripting the embedded stack."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

READY = "workbench ready: "  # what `workbench up` prints once every part answers


class NotReady(RuntimeError):
    """The process exited, or was not ready in time (and was stopped); `output` is what it
    printed."""

    def __init__(self, why: str, output: list[str]) -> None:
        super().__init__(f"{why}\n--- output ---\n" + "\n".join(output))
        self.why = why
        self.output = output


@dataclass
class Launched:
    proc: subprocess.Popen[str]
    output: list[str]  # every line it printed, still growing while it runs
    seconds: float  # from launch to its ready line


def launch(
    cmd: Sequence[str],
    *,
    timeout: float,
    stop_signal: int = signal.SIGTERM,
    stop_timeout: float = 30.0,
    **popen: Any,
) -> Launched:
    """Run `cmd` and wait for a line starting with READY. Its output is drained for the
    process's whole life (so it never blocks on a full pipe) into `Launched.output`. Raises
    NotReady when it exits first or is not ready within `timeout` seconds; it is then stopped
    (`stop_signal`, then SIGKILL after `stop_timeout`)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )
    output: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith(READY):
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    deadline = started + timeout
    while not ready.wait(0.1):
        code = proc.poll()
        if code is not None:
            raise NotReady(f"exited with code {code}", output)
        if time.perf_counter() > deadline:
            stop(proc, stop_signal, stop_timeout)
            raise NotReady(f"was not ready within {timeout:.0f} s", output)
    return Launched(proc, output, time.perf_counter() - started)


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send `sig`, wait up to `timeout` seconds, then kill it (its whole process group when it
    leads one: started with `start_new_session`); return the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    return proc.wait()
