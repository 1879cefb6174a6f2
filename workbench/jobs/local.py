"""The embedded default's job backend: one local process per job.

Each job runs the runner (`python -m workbench.jobs.runner`) in its own working directory,
under `timeout` set to the request's time left, on its profile's number of CPUs (affinity),
in a new process group (so stopping it stops
its kernel too), with only the environment the spec gives. When the service runs as root the
job runs as its user's own system account (`wb-alice`, the same one as the user's notebook
servers), which cannot read the stack's state. A small shell wrapper writes the exit status
to `exit-status` in the working directory, so a restarted service still learns how a job it
started earlier ended; a job whose process is gone without one is `lost`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from traitlets import Bool, Float, Unicode, default

from workbench import accounts
from workbench.jobs.backend import RUNNER, JobBackend, JobSpec, Status
from workbench.localpython import BridgeError, python_for_accounts

LOG = "output.log"
EXIT = "exit-status"
MARK = "WORKBENCH_JOB_MARK"
TIMEOUT_STATUS = 124  # `timeout`'s exit status when the deadline stopped the job


class LocalJobBackend(JobBackend):
    """Jobs as local processes; see the module docstring."""

    name = "local"

    isolate_users = Bool(
        help="""Run each user's jobs as that user's own system account (`account_prefix` +
        name), as the local spawner does for servers. Needs root. Default: True as root.""",
    ).tag(config=True)

    account_prefix = Unicode(
        "wb-", help="""Prefix of the system accounts (keep it the spawner's)."""
    ).tag(config=True)

    account_home_root = Unicode(
        "/home", help="""Directory holding the accounts' home directories."""
    ).tag(config=True)

    bridge_root = Unicode(
        "/var/lib/workbench/python",
        help="""Where a Python the accounts can run is made (see workbench.localpython).""",
    ).tag(config=True)

    work_root = Unicode(
        "",
        help="""Without isolation: the directory holding `<user>/job-<id>` working
        directories. Default: `jobs` in the workbench HOME.""",
    ).tag(config=True)

    stop_grace_seconds = Float(
        3.0,
        help="""How long a stopped job has after SIGTERM before SIGKILL (a cancel waits for
        it, within the service's call deadline).""",
    ).tag(config=True)

    stack_id = Unicode(
        "local", help="""Prefix of the jobs' directory names (a new stack never reuses one)."""
    ).tag(config=True)

    @default("isolate_users")
    def _default_isolate_users(self) -> bool:
        return os.geteuid() == 0

    _children: dict[int, subprocess.Popen[bytes]]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._children = {}

    def start(self, spec: JobSpec) -> str:
        python = sys.executable
        account: pwd.struct_passwd | None = None
        if self.isolate_users:
            account = accounts.ensure_account(
                accounts.account_name(self.account_prefix, spec.user),
                spec.user,
                self.account_home_root,
            )
            try:
                python = python_for_accounts(Path(self.bridge_root))
            except BridgeError as e:
                raise accounts.AccountError(str(e)) from e
            workdir = Path(account.pw_dir) / f"{self.stack_id}-job-{spec.job_id}"
        else:
            root = Path(self.work_root or "jobs").resolve()
            workdir = root / spec.user / f"{self.stack_id}-job-{spec.job_id}"
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in (LOG, EXIT):  # a re-used id after a reset
            (workdir / stale).unlink(missing_ok=True)
        if account is not None:
            os.chown(workdir, account.pw_uid, account.pw_gid)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(workdir),
            "USER": account.pw_name if account else pwd.getpwuid(os.geteuid()).pw_name,
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(max(1, int(spec.profile.cpu))),
            **spec.env,
        }
        if not spec.profile.gpu_count:
            env["CUDA_VISIBLE_DEVICES"] = ""
        # the kernel papermill starts leaves the process group (jupyter_client starts it in a
        # session of its own); every process of the job inherits this mark, so stop finds it
        mark = secrets.token_hex(16)
        env[MARK] = mark
        runner = shlex.join(
            ["timeout", "-k", "10", str(max(1, spec.deadline_seconds)), python, *RUNNER]
        )
        # the wrapper outlives a restart of the service and leaves the exit status behind
        script = f"{runner} >{LOG} 2>&1; echo $? >{EXIT}.tmp && mv {EXIT}.tmp {EXIT}"
        uid = account.pw_uid if account else None
        gid = account.pw_gid if account else None
        cpus = accounts.cpus_for(spec.profile.cpu)

        def become() -> None:
            os.setsid()
            os.sched_setaffinity(0, cpus)
            if gid is not None and uid is not None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            os.umask(0o077)

        proc = subprocess.Popen(
            ["/bin/sh", "-c", script],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=become,  # noqa: PLW1509 (no threads touch state between fork and exec)
            close_fds=True,
        )
        self._children[proc.pid] = proc
        return json.dumps({"pid": proc.pid, "dir": str(workdir), "mark": mark})

    def status(self, ref: str) -> Status:
        pid, workdir = _parse(ref)
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            self._children.pop(pid, None)
        exit_file = workdir / EXIT
        if exit_file.exists():
            code = int(exit_file.read_text().strip() or "1")
            if code == 0:
                return Status("succeeded")
            if code == TIMEOUT_STATUS:
                return Status("failed", "stopped at the request's end (deadline)")
            return Status("failed", _last_line(workdir / LOG) or f"exit status {code}")
        if _alive(pid, workdir):
            return Status("running")
        return Status("lost", "the job's process is gone and left no exit status")

    def stop(self, ref: str) -> None:
        """SIGTERM to the job's process group and every process carrying its mark; SIGKILL to
        what is left after a grace period."""
        pid, workdir = _parse(ref)
        mark = json.loads(ref).get("mark", "")
        for sig, grace in ((signal.SIGTERM, self.stop_grace_seconds), (signal.SIGKILL, 2.0)):
            found = _marked(mark)
            if _alive(pid, workdir):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
            for other in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(other, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                child = self._children.get(pid)
                if child is not None and child.poll() is not None:
                    self._children.pop(pid, None)
                if not _alive(pid, workdir) and not _marked(mark):
                    return
                time.sleep(0.1)

    def logs(self, ref: str, tail_bytes: int = 65536) -> str:
        _, workdir = _parse(ref)
        path = workdir / LOG
        try:
            with path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - tail_bytes))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""


def _marked(mark: str) -> list[int]:
    """Live processes whose environment carries the job's mark."""
    if not mark:
        return []
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except (OSError, IndexError):
            continue
        found.append(int(entry))
    return found


def _parse(ref: str) -> tuple[int, Path]:
    data = json.loads(ref)
    return int(data["pid"]), Path(data["dir"])


def _alive(pid: int, workdir: Path) -> bool:
    """The job's wrapper still runs: the pid exists, is no zombie, and runs in `workdir`
    (so a recycled pid is not mistaken for the job)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
        return os.readlink(f"/proc/{pid}/cwd") == str(workdir)
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except PermissionError:
        return True


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1][:500] if lines else ""
