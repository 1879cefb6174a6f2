"""Notebook spawners: the approval gate every one of them uses, and the embedded default's
local-process spawner.

`LocalRequestSpawner` starts `jupyterhub-singleuser` (JupyterLab) as a local process per
server, in its own working directory, with only the environment the gate allows. When the
hub runs as root, each hub user's servers run as that user's own unprivileged system account
(`wb-alice`), created on demand, whose home holds the servers' working directories
(`~wb-alice/r7`); the stack's state (`private_paths`: the workbench HOME, with the hub's, the
service's, OpenBao's and SeaweedFS's files) must then be unreadable to them, or no server
starts. Not as root, every server runs as the hub's own account: users are not isolated from
each other, which the hub log says. Production isolation comes from `KubeRequestSpawner`
(`workbench.hub.kube`).

The local spawner holds a server to its profile's CPU count (its CPU affinity) and records
the memory (MEM_LIMIT) without enforcing it; a CPU-only profile sees no GPU
(CUDA_VISIBLE_DEVICES is empty).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, List, TraitError, Unicode, default, validate

from workbench import accounts
from workbench.accounts import account_name
from workbench.hub.gate import ApprovalGate
from workbench.hub.rules import ApprovedRequest, Refused
from workbench.localpython import BridgeError, python_for_accounts

__all__ = ["ApprovalGate", "LocalRequestSpawner", "account_name", "ensure_account"]

_PREFIX = re.compile(r"[a-z_][a-z0-9_-]*")
SINGLEUSER = (sys.executable, "-m", "jupyterhub.singleuser")


async def ensure_account(name: str, user: str, home_root: str) -> pwd.struct_passwd:
    """`workbench.accounts.ensure_account`, off the event loop; refusals as `Refused`."""
    try:
        return await asyncio.to_thread(accounts.ensure_account, name, user, home_root)
    except accounts.AccountError as e:
        raise Refused(f"{e} (notebook servers of {user})", reason="account", status=503) from e


def check_private(paths: list[str]) -> None:
    """Refuse to start isolated servers while a path of the stack's state is open to other
    accounts (not owned by the hub's, or with group/other permissions)."""
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise Refused(
                f"{path} holds the workbench's state but is open to other accounts (mode "
                f"{stat.S_IMODE(st.st_mode):o}, owner uid {st.st_uid}); the administrator must "
                "`chmod 700` it before notebook servers can start",
                reason="state-exposed",
                status=503,
            )


class LocalRequestSpawner(ApprovalGate, LocalProcessSpawner):
    """The embedded default's spawner: gated local processes; see the module docstring."""

    isolate_users = Bool(
        help="""Run each hub user's servers as that user's own system account
        (`account_prefix` + name), created on demand with useradd. Needs root.
        Default: True when the hub runs as root.""",
    ).tag(config=True)

    account_prefix = Unicode(
        "wb-", help="""Prefix of the system accounts made for hub users (`wb-alice`)."""
    ).tag(config=True)

    account_home_root = Unicode(
        "/home",
        help="""Directory in which the accounts' home directories are made; servers' working
        directories are `~account/<server name>`.""",
    ).tag(config=True)

    work_root = Unicode(
        "",
        help="""Without isolation: the directory holding `<user>/<server name>` working
        directories (each user's `<user>` is its HOME). Default: `servers` in the hub's working
        directory.""",
    ).tag(config=True)

    bridge_root = Unicode(
        "/var/lib/workbench/python",
        help="""Where a Python the accounts can run is made when they cannot run the hub's own
        (see workbench.localpython). Used only with isolation and the default `cmd`.""",
    ).tag(config=True)

    private_paths = List(
        Unicode(),
        help="""Directories holding the stack's state (the workbench HOME). With isolation, no
        server starts while one of them is open to other accounts.""",
    ).tag(config=True)

    @default("isolate_users")
    def _default_isolate_users(self) -> bool:
        return os.geteuid() == 0

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # the hub's own Python, so JupyterLab and workbench.data come from the same install
        return list(SINGLEUSER)

    @validate("account_prefix")
    def _check_prefix(self, proposal: Any) -> str:
        value = str(proposal["value"])
        if not _PREFIX.fullmatch(value) or len(value) > 12:
            raise TraitError(
                f"account_prefix must be a short Linux user name prefix, not {value!r}"
            )
        return value

    _account: pwd.struct_passwd | None = None
    _workdir: Path | None = None
    _warned: bool = False

    @property
    def account(self) -> str:
        """The system account this user's servers run as."""
        if self.isolate_users:
            return account_name(self.account_prefix, self.user.name)
        return pwd.getpwuid(os.geteuid()).pw_name

    async def prepare(self, request: ApprovedRequest) -> None:
        await super().prepare(request)
        if self.isolate_users:
            if os.geteuid() != 0:
                raise Refused(
                    "LocalRequestSpawner.isolate_users needs the hub to run as root",
                    reason="isolation",
                    status=503,
                )
            check_private(list(self.private_paths))
            traits: Any = self  # LocalProcessSpawner is untyped
            if tuple(traits.cmd or ()) == SINGLEUSER:
                try:
                    python = python_for_accounts(Path(self.bridge_root))
                except BridgeError as e:
                    raise Refused(str(e), reason="python", status=503) from e
                traits.cmd = [python, *SINGLEUSER[1:]]
            self._account = await ensure_account(
                self.account, self.user.name, self.account_home_root
            )
            workdir = Path(self._account.pw_dir) / f"{self._stack_id()}-{self.name}"
            workdir.mkdir(mode=0o700, exist_ok=True)
            os.chown(workdir, self._account.pw_uid, self._account.pw_gid)
        else:
            if not LocalRequestSpawner._warned:
                LocalRequestSpawner._warned = True
                self.log.warning(
                    "workbench: notebook servers run as %s, the hub's own account: users are "
                    "not isolated from each other or from the stack's state (run as root to "
                    "isolate them; production isolation comes from the Kubernetes spawner)",
                    self.account,
                )
            root = Path(self.work_root or "servers").resolve()
            workdir = root / self.user.name / f"{self._stack_id()}-{self.name}"
            workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        workdir.chmod(0o700)
        self._workdir = workdir
        self.notebook_dir = str(workdir)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        """Become the account (when isolated), keep new files private, enter the working
        directory. Runs in the forked child: no imports, no lookups."""
        workdir = str(self._workdir)
        setuid = set_user_setuid(self._account.pw_name, chdir=False) if self._account else None
        request = self.workbench_request
        cpus = accounts.cpus_for(request.profile.cpu) if request is not None else None

        def preexec() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            if setuid is not None:
                setuid()
            os.umask(0o077)
            os.chdir(workdir)

        return preexec

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        # HOME is the server's own directory: JupyterLab workspaces, IPython history and caches
        # of a server for one tenant's request are never seen by a server for another's
        home = str(self._workdir or Path.cwd())
        name = self._account.pw_name if self._account is not None else self.account
        env.update(USER=name, LOGNAME=name, HOME=home, SHELL="/bin/sh")
        return env

    def _stack_id(self) -> str:
        return accounts.stack_id(Path(self.private_paths[0])) if self.private_paths else "local"

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        request = self.workbench_request
        if request is not None and not request.profile.gpu_count:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    def get_args(self) -> list[str]:
        args = list(super().get_args())
        # jupyterhub-singleuser refuses root without it; only a non-isolated root hub needs it
        if not self.isolate_users and os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    async def stop(self, now: bool = False) -> Any:
        """Stop the server; when its request has ended (revoked, expired), also remove its
        working directory: what a notebook wrote there under a request does not outlive it."""
        request, workdir = self.workbench_request, self._workdir
        result = await super().stop(now=now)
        if request is not None and workdir is not None and await self._ended(request.id):
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            self.log.info("workbench: removed %s of ended request %s", workdir, request.id)
        return result

    async def _ended(self, request_id: int) -> bool:
        """Whether the request is over; False when the service cannot say (keep the files)."""
        try:
            found = await self._ask("one", request_id)
        except Refused as e:
            return e.status == 404
        return bool(found.get("state") != "approved" or not found.get("seconds_left"))

    def clear_state(self) -> None:
        super().clear_state()
        self._account = None
        self._workdir = None

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        # internal_ssl is not used by the embedded default
        return paths
