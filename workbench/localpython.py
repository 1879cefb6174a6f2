"""A Python that unprivileged accounts can run, for the local spawner and job backend.

The hub's own Python is used when every account can reach it. Often it cannot: a virtual
environment made from a Python under a private home (pyenv in `/root`) needs `/root` to run.
Then notebooks run on a *bridge*: a virtual environment on the system's Python of the same
version (`/usr/bin/python3.11`) whose site-packages adds the hub environment's site-packages,
and whose `share/` and `etc/` (JupyterLab's assets, the server extensions' configuration,
kernel specs) are the hub environment's. Same minor version, so compiled packages load.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import sys
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["BridgeError", "bridge_python", "open_to_others", "python_for_accounts"]


class BridgeError(Exception):
    """No Python that the accounts can run; the message says what to install or set."""


def open_to_others(path: str | Path, *, read: bool = True) -> bool:
    """True when a process of an unrelated account can reach `path` (every directory above it
    searchable by others) and read it (or, for a directory, list and enter it)."""
    real = Path(os.path.realpath(path))
    try:
        for parent in real.parents:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(real).st_mode
    except OSError:
        return False
    need = (stat.S_IROTH if read else 0) | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


def _hub_paths() -> list[str]:
    paths = sysconfig.get_paths()
    return [sys.executable, paths["stdlib"], paths["platstdlib"]]


def bridge_python(root: Path) -> str:
    """The bridge's interpreter (see the module docstring), made under `root` the first time;
    BridgeError when this machine has no system Python of the hub's version or the hub's
    packages are private too."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(f"python{version}", path="/usr/local/bin:/usr/bin:/bin")
    site = sysconfig.get_paths()["purelib"]
    if system is None or not open_to_others(system):
        raise BridgeError(
            f"notebook accounts cannot run this hub's Python ({sys.executable}) and there is "
            f"no system python{version} to run them on; install the workbench in a virtual "
            "environment every account can read, or set LocalRequestSpawner.cmd"
        )
    if not open_to_others(site):
        raise BridgeError(
            f"notebook accounts cannot read this hub's packages ({site}); install the "
            "workbench where every account can read it"
        )
    key = hashlib.sha256(f"{system}\0{sys.prefix}".encode()).hexdigest()[:12]
    target = root / f"python{version}-{key}"
    python = target / "bin" / "python"
    if python.exists() and open_to_others(target / "pyvenv.cfg"):
        return str(python)
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    build.chmod(0o755)
    (build / "bin").mkdir(mode=0o755)
    (build / "bin" / "python").symlink_to(system)
    (build / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(system)}\ninclude-system-site-packages = false\n"
        f"version = {version}\n"
    )
    packages = build / "lib" / f"python{version}" / "site-packages"
    packages.mkdir(mode=0o755, parents=True)
    # a .pth line starting with `import` runs: add the hub's site-packages with its own .pth
    (packages / "workbench-hub.pth").write_text(f"import site; site.addsitedir({site!r})\n")
    for shared in ("share", "etc"):
        if (Path(sys.prefix) / shared).is_dir():
            (build / shared).symlink_to(Path(sys.prefix) / shared)
    for path in (build, *build.rglob("*")):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        build.rename(target)
    except OSError:  # made meanwhile by another hub
        shutil.rmtree(build, ignore_errors=True)
    if not open_to_others(target / "pyvenv.cfg"):
        raise BridgeError(f"notebook accounts cannot reach {root}; choose another bridge_root")
    return str(python)


def python_for_accounts(bridge_root: Path) -> str:
    """The hub's Python when the accounts can run it, else the bridge's."""
    if all(open_to_others(p) for p in _hub_paths()) and open_to_others(
        sysconfig.get_paths()["purelib"]
    ):
        return sys.executable
    return bridge_python(bridge_root)
