"""The unprivileged system accounts that run users' code on the embedded stack.

When the stack runs as root, each hub user's notebook servers and jobs run as that user's own
system account (`wb-alice`), made on demand with useradd, so that user code cannot read the
stack's state or another user's files. Used by the local spawner and the local job backend.
"""

from __future__ import annotations

import hashlib
import math
import os
import pwd
import re
import secrets
import subprocess
import threading
from pathlib import Path

__all__ = [
    "ACCOUNT_COMMENT",
    "AccountError",
    "account_name",
    "cpus_for",
    "ensure_account",
    "stack_id",
]

ACCOUNT_COMMENT = "workbench notebook account"
MAX_ACCOUNT = 32  # Linux user names
_PLAIN_USER = re.compile(r"[a-z][a-z0-9]*")
_lock = threading.Lock()


class AccountError(Exception):
    """The account could not be made, or one of its name exists that is not the workbench's."""


def account_name(prefix: str, user: str) -> str:
    """The system account of hub user `user`: `wb-alice` for a plain lower-case name, else
    `wb-<letters>-<hash>` — which contains a dash after the prefix that no plain name has, so
    look-alike names (`Alice`, `al.ice`, `al-ice`) never share an account."""
    if _PLAIN_USER.fullmatch(user) and len(prefix) + len(user) <= MAX_ACCOUNT:
        return prefix + user
    letters = re.sub(r"[^a-z0-9]", "", user.lower())[:12] or "u"
    digest = hashlib.sha256(user.encode()).hexdigest()[:12]
    return f"{prefix}{letters}-{digest}"[:MAX_ACCOUNT]


def _comment(user: str) -> str:
    # passwd's comment field: no separators (':', ',') or control characters
    return f"{ACCOUNT_COMMENT} of {re.sub(r'[^A-Za-z0-9._@-]', '_', user)[:64]}"


def ensure_account(name: str, user: str, home_root: str) -> pwd.struct_passwd:
    """The system account `name` for hub user `user`, made with useradd when missing (home
    `home_root/name`, mode 0700). An existing account of that name that the workbench did not
    make, or that is root's, is refused with AccountError."""
    with _lock:
        try:
            found = pwd.getpwnam(name)
        except KeyError:
            home = os.path.join(home_root, name)
            done = subprocess.run(
                [
                    *("useradd", "--system", "--user-group", "--create-home"),
                    *("--home-dir", home, "--shell", "/bin/bash", "--comment", _comment(user)),
                    name,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
            try:
                found = pwd.getpwnam(name)
            except KeyError:
                why = done.stderr.decode(errors="replace").strip() or done.returncode
                raise AccountError(
                    f"could not create the system account {name} for {user} (useradd: {why}); "
                    "tell the administrator"
                ) from None
    if found.pw_uid == 0 or found.pw_gid == 0 or found.pw_gecos != _comment(user):
        raise AccountError(
            f"the system account {name} exists but is not the workbench's account for {user}; "
            "the administrator must remove it or change the account prefix"
        )
    os.chmod(found.pw_dir, 0o700)
    return found


def stack_id(home: Path) -> str:
    """A random id of the stack whose state is under `home`, made on first use: a new stack's
    server or job 1 never reuses the working directory of an earlier stack's."""
    path = home / "stack-id"
    if not path.exists():
        path.write_text(secrets.token_hex(4))
    return path.read_text().strip()


def cpus_for(cpu: float) -> set[int]:
    """The CPUs a local process of a profile with `cpu` cores may run on (its affinity): the
    first ceil(cpu) of those this process may use — the local spawner's and job backend's way
    of holding a server or job to its profile's cores (memory is enforced only on Kubernetes)."""
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[: max(1, min(len(allowed), math.ceil(cpu)))])
