"""A small supervisor: start child processes in order, wait until each answers, watch them, and
stop them and everything they started.

A child is described by a `ChildSpec`; adding a part to the embedded stack (OpenBao, SeaweedFS)
means adding a spec before the hub's. Each child runs in its own session (so a terminal's Ctrl-C
reaches only `workbench up`, which then stops the children in reverse order) and gets SIGTERM if
`workbench up` dies. JupyterHub starts the proxy and the managed service in sessions of their
own, so stopping a process group is not enough: on Linux this process becomes a child
subreaper, and every process descended from a child is tracked by pid and start time and killed
if it outlives its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36

# Loaded in the parent: a preexec_fn must not import or dlopen in the forked child.
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None

# Log lines worth showing on the console: warnings, errors and the tracebacks that follow them.
_LOUD = re.compile(
    r"^\[[WEC] |^(WARNING|ERROR|CRITICAL)\b|\[ConfigProxy\] (warn|error)|^Traceback "
)
_QUIET = re.compile(r"^\[[ID] |^(INFO|DEBUG)\b|\[ConfigProxy\] (info|debug)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # configurable-http-proxy colours its levels


class StartFailed(Exception):
    """A child exited or did not answer in time while the stack was starting."""

    def __init__(self, spec: ChildSpec, reason: str) -> None:
        super().__init__(f"{spec.name} {reason}; see {spec.log_file}")
        self.spec = spec


class Interrupted(Exception):
    """Stopping was asked for (SIGINT/SIGTERM) while the stack was starting."""


@dataclass(frozen=True)
class ChildSpec:
    """One supervised process: how to start it, where its output goes, how to tell it is up.

    `env` is the child's whole environment. `ready_urls` must all answer 200 (no proxy, 2 s per
    try) before the next child starts. The child's output goes to `log_file`; its warnings and
    errors also go to the console, except lines matching `expected` (known, harmless ones).
    `on_ready`, when given, runs once the URLs answer and before the next child starts (set-up
    that needs the child running, e.g. unsealing OpenBao); `before_start` runs just before the
    child is started (set-up the child reads only when it starts, e.g. SeaweedFS's identities).
    An exception from either fails the start.
    """

    name: str
    argv: tuple[str, ...]
    log_file: Path
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    ready_urls: tuple[str, ...] = ()
    stop_timeout: float = 10.0
    expected: re.Pattern[str] | None = None
    on_ready: Callable[[], object] | None = None
    before_start: Callable[[], object] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    pump: threading.Thread


def _die_with_parent() -> None:
    # preexec_fn: the child gets SIGTERM when the thread that started it (up()) goes away.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux), so none escapes stop()."""
    if _libc is None:
        return False
    return bool(_libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a process from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; the fields after the last ")" do not.
    fields = raw.rsplit(")", 1)[1].split()
    return int(fields[1]), fields[0], int(fields[19])


def _process_table() -> dict[int, tuple[int, str, int]]:
    table = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            table[int(entry)] = st
    return table


def descendants(roots: set[int]) -> dict[int, int]:
    """Live processes below `roots` (not the roots themselves): pid → start time."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    todo = list(roots)
    while todo:
        for kid in children.get(todo.pop(), []):
            if kid not in found:
                found[kid] = table[kid][2]
                todo.append(kid)
    return found


def answers(url: str, timeout: float = 2.0) -> bool:
    """True when GET `url` returns 200 (environment proxies ignored: everything is local)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Supervisor:
    """Starts `specs` in order and stops them in reverse; see the module docstring."""

    def __init__(self, specs: Sequence[ChildSpec], *, console: TextIO | None = None) -> None:
        self.specs = list(specs)
        self.console = console or sys.stderr
        self.children: list[_Child] = []
        self._tracked: dict[int, int] = {}  # every descendant seen: pid → start time
        self._console_lock = threading.Lock()

    # -- starting -------------------------------------------------------------------------

    def start(self, stop: threading.Event, timeout: float) -> None:
        """Start every child and wait for its ready URLs; raise StartFailed or Interrupted.

        `timeout` bounds the wait for each child separately.
        """
        become_subreaper()
        for spec in self.specs:
            if stop.is_set():
                raise Interrupted
            if spec.before_start is not None:
                try:
                    spec.before_start()
                except Exception as e:
                    raise StartFailed(spec, f"could not be prepared: {e}") from e
            child = self._spawn(spec)
            self.children.append(child)
            self._wait_ready(child, stop, timeout)
            if spec.on_ready is not None:
                try:
                    spec.on_ready()
                except Exception as e:
                    raise StartFailed(spec, f"answered but could not be set up: {e}") from e

    def _spawn(self, spec: ChildSpec) -> _Child:
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = spec.log_file.open("a", encoding="utf-8", buffering=1)
        log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}: ")
        log.write(" ".join(spec.argv) + "\n")
        try:
            proc = subprocess.Popen(
                spec.argv,
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as e:
            log.close()
            raise StartFailed(spec, f"could not be started: {e}") from e
        assert proc.stdout is not None
        pump = threading.Thread(target=self._pump, args=(spec, proc.stdout, log), daemon=True)
        pump.start()
        return _Child(spec, proc, pump)

    def _pump(self, spec: ChildSpec, stream: IO[bytes], log: TextIO) -> None:
        """Copy a child's output to its log file; echo warnings and errors on the console."""
        loud = False  # a traceback's lines follow the loud line that introduced it
        with log:
            for raw in iter(stream.readline, b""):
                line = _ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\n"))
                log.write(line + "\n")
                if _LOUD.search(line):
                    loud = not (spec.expected and spec.expected.search(line))
                elif _QUIET.search(line):
                    loud = False
                if loud:
                    with self._console_lock:
                        print(f"[{spec.name}] {line}", file=self.console, flush=True)

    def _wait_ready(self, child: _Child, stop: threading.Event, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(child.spec.ready_urls)
        pause = 0.05  # doubling to 1 s: quick when quick, and few log lines when slow
        while pending:
            if stop.is_set():
                raise Interrupted
            code = child.proc.poll()
            if code is not None:
                raise StartFailed(child.spec, f"exited with code {code} while starting")
            if answers(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise StartFailed(child.spec, f"did not answer {pending[0]} within {timeout:.0f} s")
            self._track()
            stop.wait(pause)
            pause = min(pause * 2, 1.0)
        self._track()

    # -- running --------------------------------------------------------------------------

    def watch(self, stop: threading.Event, interval: float = 1.0) -> ChildSpec | None:
        """Block until `stop` is set (→ None) or a child exits (→ its spec)."""
        while not stop.wait(interval):
            for child in self.children:
                if child.proc.poll() is not None:
                    return child.spec
            self._track()
        return None

    def _track(self) -> None:
        """Remember the descendants now alive and reap those re-parented to us that exited."""
        # Roots: the live children, and tracked processes (orphans now re-parented to us).
        # A caller's own unrelated subprocesses are never roots, so they are never killed.
        roots = {c.proc.pid for c in self.children if c.proc.poll() is None}
        self._tracked.update(descendants(roots | set(self._alive_tracked())))
        self._reap()

    def _reap(self) -> None:
        own = {c.proc.pid for c in self.children}
        for pid in list(self._tracked):
            st = _stat(pid)
            if st is None or st[2] != self._tracked[pid]:
                del self._tracked[pid]
            elif st[0] == os.getpid() and st[1] == "Z" and pid not in own:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    # -- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM each child (last started first), SIGKILL it after its stop_timeout, then
        kill every descendant that outlived it. Safe to call more than once."""
        for child in reversed(self.children):
            self._track()
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
                try:
                    child.proc.wait(child.spec.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._killpg(child.proc.pid, signal.SIGKILL)
                    child.proc.kill()
                    child.proc.wait()
            self._killpg(child.proc.pid, signal.SIGKILL)
        self._kill_leftovers()
        for child in self.children:
            child.pump.join(timeout=2)

    @staticmethod
    def _killpg(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _alive_tracked(self) -> list[int]:
        alive = []
        for pid, started in self._tracked.items():
            st = _stat(pid)
            if st is not None and st[2] == started and st[1] != "Z":
                alive.append(pid)
        return alive

    def _kill_leftovers(self, grace: float = 3.0) -> None:
        self._track()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = self._alive_tracked()
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while alive and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.1)
                alive = self._alive_tracked()
            if not alive:
                break
        self._reap()
