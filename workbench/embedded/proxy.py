"""Find configurable-http-proxy, installing it with npm into a project-local prefix if missing.

JupyterHub starts the proxy itself; all it needs from us is the command. The local prefix is
`<sys.prefix>/node` (the virtual environment), so `make test` and `workbench up` share one
install and nothing is installed globally.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.errors import ConfigError

CHP = "configurable-http-proxy"


class ChpUnavailable(ConfigError):
    """configurable-http-proxy is not installed and could not be installed."""


def node_prefix() -> Path:
    """Where the project-local npm install lives: `<sys.prefix>/node`, overridable with
    `$WORKBENCH_NODE_PREFIX` (for a read-only system Python)."""
    return Path(os.environ.get("WORKBENCH_NODE_PREFIX") or Path(sys.prefix) / "node")


def local_chp(prefix: Path | None = None) -> Path:
    """Path of the proxy inside the project-local prefix (whether or not it exists)."""
    return (prefix or node_prefix()) / "node_modules" / ".bin" / CHP


def _node_major() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def ensure_chp(prefix: Path | None = None, *, quiet: bool = False) -> list[str]:
    """Return the command that runs configurable-http-proxy; install it first if needed.

    Prefers the project-local install, then one on PATH; otherwise runs `npm install` into
    the local prefix (idempotent: a second call finds it). Raises ChpUnavailable with what
    to do when neither works.
    """
    local = local_chp(prefix)
    if os.access(local, os.X_OK):
        return [str(local)]
    found = shutil.which(CHP)
    if found:
        return [found]
    npm = shutil.which("npm")
    major = _node_major()
    if npm is None or major is None:
        raise ChpUnavailable(
            f"{CHP} is not installed and Node.js/npm are missing; install them "
            "(Debian: apt-get install nodejs npm) or run `make up`, which does it for you"
        )
    # CHP 5 declares node >= 20; older Node.js still runs CHP 4.
    spec = f"{CHP}@5" if major >= 20 else f"{CHP}@4"
    target = prefix or node_prefix()
    if not quiet:
        print(f"workbench: installing {spec} into {target} (once)", file=sys.stderr, flush=True)
    cmd = [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund"]
    cmd += ["--no-update-notifier", "--loglevel=error", spec]
    try:
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        raise ChpUnavailable(f"could not run {' '.join(cmd)}: {e}") from e
    if done.returncode != 0 or not os.access(local_chp(target), os.X_OK):
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise ChpUnavailable(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}); is the npm registry "
            f"reachable?\n{tail}"
        )
    return [str(local_chp(target))]


def main() -> int:
    """`python -m workbench.embedded.proxy`: install if needed and print the command (Makefile)."""
    try:
        print(" ".join(ensure_chp()))
    except ChpUnavailable as e:
        print(f"workbench: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
