"""Jobs from notebooks: `workbench.jobs.submit(...)` and, inside a job,
`workbench.jobs.log_metric(name, value, step)`.

Client side: talks to the service over HTTP and imports no server module. In a notebook server
the request and token come from its environment; in a job, the job's own token.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench._http import api_url, call, env_token, make_client

__all__ = ["Job", "JobError", "in_job", "jobs", "log_metric", "submit"]

ENDED = ("succeeded", "failed", "cancelled", "lost")
FLUSH_SECONDS = 1.0  # metrics are sent at least this often while a job runs
FLUSH_EVERY = 200  # ...or once this many are waiting
MAX_REPORT = 1000  # most metrics one report carries (the service's limit)
METRICS_PAGE = 5000  # most metrics one GET returns (the service's page)


class JobError(Exception):
    """The service refused, or the job failed; the message says why."""

    def _render_traceback_(self) -> list[str]:
        return [f"JobError: {self}"]


def in_job() -> bool:
    """True inside a running job (its runner sets `WORKBENCH_JOB_ID`)."""
    return bool(os.environ.get("WORKBENCH_JOB_ID"))


class _Service:
    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.http = make_client(url or api_url(JobError), token or env_token(JobError))

    def __call__(self, method: str, path: str, **kw: Any) -> Any:
        return call(self.http, JobError, method, path, **kw)


_service: _Service | None = None


def _api() -> _Service:
    global _service
    if _service is None:
        _service = _Service()
    return _service


class Job:
    """A submitted job; `refresh()` asks the service again."""

    def __init__(self, data: dict[str, Any], service: _Service | None = None) -> None:
        self._api = service or _api()
        self.data = data

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def state(self) -> str:
        return str(self.data["state"])

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.data.get('name')!r} {self.state}>"

    def refresh(self) -> Job:
        self.data = self._api("GET", f"jobs/{self.id}")
        return self

    def logs(self, tail: int = 65536) -> str:
        return str(self._api("GET", f"jobs/{self.id}/logs", params={"tail": tail})["logs"])

    def metrics(self, after: int = 0) -> list[dict[str, Any]]:
        """Every metric logged after metric id `after`, in as many pages as it takes."""
        found: list[dict[str, Any]] = []
        while True:
            page = self._api("GET", f"jobs/{self.id}/metrics", params={"after": after})["metrics"]
            found += page
            if len(page) < METRICS_PAGE:
                return found
            after = page[-1]["id"]

    def cancel(self) -> Job:
        self.data = self._api("POST", f"jobs/{self.id}/cancel")
        return self

    def output(self) -> dict[str, Any]:
        """The executed notebook (nbformat JSON), once the job has ended."""
        nb: dict[str, Any] = self._api("GET", f"jobs/{self.id}/output")
        return nb

    def wait(self, poll: float = 2.0, timeout: float | None = None, progress: bool = True) -> Job:
        """Block until the job ends (a progress bar of elapsed time); JobError on timeout."""
        started = time.monotonic()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(desc=f"job {self.id}", unit="s", bar_format="{desc}: {elapsed} {postfix}")
        try:
            while self.refresh().state not in ENDED:
                if bar is not None:
                    bar.set_postfix_str(self.state)
                if timeout is not None and time.monotonic() - started > timeout:
                    raise JobError(f"job {self.id} still {self.state} after {timeout:.0f} s")
                time.sleep(poll)
            if bar is not None:
                bar.set_postfix_str(self.state)
        finally:
            if bar is not None:
                bar.close()
        return self

    def monitor(self, poll: float = 2.0) -> Any:
        """An ipywidgets view (state, progress, metric plot, log tail) updated while it runs."""
        from workbench.jobs.widgets import JobMonitor

        return JobMonitor(self, poll=poll)


def submit(
    notebook: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    parameters: dict[str, Any] | None = None,
    profile: str | None = None,
    request_id: int | None = None,
) -> Job:
    """Run `notebook` (default: the one this kernel belongs to) as a job under this server's
    request, with papermill `parameters`; returns at once with the queued job."""
    path = Path(notebook or os.environ.get("JPY_SESSION_NAME") or "")
    if not path.name:
        raise JobError("name the notebook to run: submit('train.ipynb', ...)")
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise JobError(f"cannot read the notebook {path}: {e}") from e
    rid = request_id or os.environ.get("WORKBENCH_REQUEST_ID")
    if not rid:
        raise JobError("no access request: submit from a server started for one")
    body: dict[str, Any] = {
        "request_id": int(rid),
        "name": name or path.stem,
        "notebook": nb,
        "notebook_name": path.name,
        "parameters": parameters or {},
    }
    if profile:
        body["profile"] = profile
    return Job(_api()("POST", "jobs", json=body))


def jobs(request_id: int | None = None) -> list[Job]:
    """My jobs (under `request_id`, default this server's request), newest first."""
    rid = request_id or os.environ.get("WORKBENCH_REQUEST_ID")
    params = {"request_id": rid} if rid else {}
    return [Job(j) for j in _api()("GET", "jobs", params=params)["jobs"]]


class _Metrics:
    """Buffers metrics and sends them from a background thread (at most every FLUSH_SECONDS),
    so that logging a metric in a training loop costs microseconds."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], None]) -> None:
        self._send = send
        self._pending: list[dict[str, Any]] = []
        self._steps: dict[str, int] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        atexit.register(self.flush)

    def add(self, name: str, value: float, step: int | None) -> None:
        with self._cond:
            if step is None:
                step = self._steps.get(name, -1) + 1
            self._steps[name] = step
            self._pending.append({"name": name, "value": float(value), "step": int(step)})
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            if len(self._pending) >= FLUSH_EVERY:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait(FLUSH_SECONDS)
                batch, self._pending = self._pending, []
            try:
                self._send_all(batch)
            except JobError as e:  # a metric lost is not worth failing the training for
                print(f"workbench: could not report {len(batch)} metrics: {e}")

    def _send_all(self, batch: list[dict[str, Any]]) -> None:
        # a fast loop logs more in a second than one report may carry (the API's limit)
        for start in range(0, len(batch), MAX_REPORT):
            self._send(batch[start : start + MAX_REPORT])

    def flush(self) -> None:
        with self._cond:
            batch, self._pending = self._pending, []
        self._send_all(batch)


_metrics: _Metrics | None = None
_metrics_lock = threading.Lock()


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Report a metric of the running job (shown live in the Jobs panel). Outside a job it is
    printed, so the same notebook runs interactively."""
    job_id = os.environ.get("WORKBENCH_JOB_ID")
    if not job_id:
        print(f"metric {name}={value}" + (f" step={step}" if step is not None else ""))
        return
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            api = _api()
            _metrics = _Metrics(
                lambda batch: api("POST", f"jobs/{job_id}/metrics", json={"metrics": batch})
            )
    _metrics.add(name, value, step)


def flush_metrics() -> None:
    """Send every metric logged so far (the runner calls it at the job's end)."""
    if _metrics is not None:
        _metrics.flush()
