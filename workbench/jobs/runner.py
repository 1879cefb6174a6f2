"""`python -m workbench.jobs.runner`: what every job backend runs.

With the job's own token (`WORKBENCH_TOKEN`) it fetches the notebook snapshot and parameters
from the service, executes them with papermill in the working directory (the kernel inherits
the environment, so `workbench.data` in the notebook asks for grants as this job), and sends
the executed notebook back — also when a cell failed, with the error. Exit status 0 when the
notebook ran through, 1 when it failed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from workbench._http import api_url, call, env_token, make_client
from workbench.jobs.client import JobError


def _error_of(exc: BaseException) -> str:
    ename = getattr(exc, "ename", None)
    if ename:  # papermill's PapermillExecutionError: the failing cell's exception
        cell = getattr(exc, "exec_count", None)
        where = f" in cell [{cell}]" if cell else ""
        return f"{ename}: {getattr(exc, 'evalue', '')}{where}"
    return f"{type(exc).__name__}: {exc}"


def run(workdir: Path) -> int:
    import papermill

    job_id = os.environ["WORKBENCH_JOB_ID"]
    http = make_client(api_url(JobError), env_token(JobError), timeout=120)
    spec: dict[str, Any] = call(http, JobError, "GET", f"jobs/{job_id}/notebook")
    source = workdir / "input.ipynb"
    output = workdir / "output.ipynb"
    source.write_text(json.dumps(spec["notebook"]))
    print(f"workbench: job {job_id} runs {spec['notebook_name']} with {spec['parameters']}")
    sys.stdout.flush()
    error: str | None = None
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=spec["parameters"],
            kernel_name=spec.get("kernel_name") or None,
            cwd=str(workdir),
            log_output=True,
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
        )
    except Exception as e:
        error = _error_of(e)
        print(f"workbench: the notebook failed: {error}", file=sys.stderr)
        if not getattr(e, "ename", None):
            traceback.print_exc()
    executed = json.loads(output.read_text()) if output.exists() else None
    call(
        http,
        JobError,
        "PUT",
        f"jobs/{job_id}/output",
        json={"notebook": executed, "error": error},
    )
    print(f"workbench: job {job_id} {'failed' if error else 'finished'}")
    return 1 if error else 0


def main() -> None:
    try:
        sys.exit(run(Path.cwd()))
    except JobError as e:
        print(f"workbench: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
