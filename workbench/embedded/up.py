"""`workbench up`: run the embedded stack in the foreground until SIGINT/SIGTERM.

Contract (DESIGN.md): once every part answers, print one line beginning
`workbench ready: http://127.0.0.1:PORT/`; on SIGINT/SIGTERM stop every child process and
return 0; state under HOME survives a restart. A part that fails to come up, or a taken port,
is a message on stderr and a non-zero return.

Layout of HOME: `hub/` (JupyterHub's database, cookie secret, pid files), `logs/hub.log`
(JupyterHub, the proxy and the service), `demo-password` (mode 0600, when generated).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import workbench
from workbench.embedded import openbao, seaweed
from workbench.embedded.hubconfig import (
    CONFIG_FILE_TEXT,
    DEMO_ROLES,
    DEMO_USERS,
    HEALTH_PATH,
    SPAWN_REFUSED_REASON,
    HubSettings,
)
from workbench.embedded.launch import READY
from workbench.embedded.proxy import ChpUnavailable, ensure_chp
from workbench.embedded.supervisor import ChildSpec, Interrupted, StartFailed, Supervisor

DEFAULT_PORT = 8000
READY_TIMEOUT = 90.0
PASSWORD_FILE = "demo-password"
MIN_PASSWORD = 8  # JupyterHub's SharedPasswordAuthenticator minimum

# Hub log lines that are expected here and stay out of the console (not out of the log):
# everything binds 127.0.0.1, so no SSL; the service is ours, so no OAuth confirmation; the
# service asks for every workbench scope and each person gets only theirs; the proxy is fresh
# at each start; our readiness polls reach the proxy before its routes exist; the shutdown we
# asked for; people's 4xx requests, refused spawns included; notebook servers' routine
# warnings. Also left out of the log's tail printed when the stack fails.
HUB_EXPECTED = re.compile(
    r"Running JupyterHub without SSL|complete OAuth without confirmation"
    r"|requested scopes .* granting only"
    r"|Adding missing route for|Received signal SIGTERM|\[ConfigProxy\] warn: Terminated"
    r"|\[ConfigProxy\] error: (404|503) GET (/hub/api/|" + re.escape(HEALTH_PATH) + ")"
    r"|GET /hub/error/404\?url=%2Fhub%2Fapi%2F "
    r"|^\[W [^]]* (log|web):\d+\] 4\d\d |reason="
    + SPAWN_REFUSED_REASON
    # notebook servers' (jupyter-server, JupyterLab) harmless start-up and OAuth warnings
    + r"|'extra_template_paths' was found in both|Skipping XSRF check for insecure request GET"
)


class UpError(Exception):
    """The stack cannot be started; the message says why and what to do."""


def check_port_free(port: int) -> None:
    """Raise UpError when something already listens on 127.0.0.1:PORT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port left in TIME_WAIT by our previous run is free; a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                raise UpError(
                    f"port {port} on 127.0.0.1 is already in use; stop what uses it or "
                    "choose another with --port"
                ) from e
            raise UpError(f"cannot use port {port} on 127.0.0.1: {e}") from e


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    return free_ports(1)[0]


def free_ports(count: int, exclude: int | None = None) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that were free a moment ago, none of them `exclude`."""
    return openbao.choose_ports(count, () if exclude is None else (exclude,))


def demo_password(home: Path) -> tuple[str, str]:
    """(password, where it came from): `$WORKBENCH_DEMO_PASSWORD`, else HOME/demo-password,
    which is generated (mode 0600) the first time."""
    given = os.environ.get("WORKBENCH_DEMO_PASSWORD")
    if given:
        if len(given) < MIN_PASSWORD:
            raise UpError(f"WORKBENCH_DEMO_PASSWORD must be at least {MIN_PASSWORD} characters")
        return given, "$WORKBENCH_DEMO_PASSWORD"
    path = home / PASSWORD_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(18) + "\n")
    path.chmod(0o600)  # it grants admin: keep it private even if someone loosened it
    password = path.read_text().strip()
    if len(password) < MIN_PASSWORD:
        raise UpError(f"{path} must hold a password of at least {MIN_PASSWORD} characters")
    return password, str(path)


def service_command(home: Path) -> tuple[str, ...]:
    """The workbench service's command: `$WORKBENCH_SERVICE_COMMAND` (a JSON list of strings,
    for tests and development) or `python -m workbench.service --home HOME`."""
    raw = os.environ.get("WORKBENCH_SERVICE_COMMAND")
    if not raw:
        return (sys.executable, "-m", "workbench.service", "--home", str(home))
    try:
        cmd = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UpError(f"WORKBENCH_SERVICE_COMMAND is not JSON: {e}") from e
    if not (isinstance(cmd, list) and cmd and all(isinstance(a, str) for a in cmd)):
        raise UpError("WORKBENCH_SERVICE_COMMAND must be a JSON list of strings")
    return tuple(cmd)


def config_file(home: Path) -> Path:
    """The file `jupyterhub -f` loads: `hub_config/jupyterhub_config.py` of a source checkout,
    else (an installed package) the same text written to HOME/hub/jupyterhub_config.py."""
    checkout = Path(workbench.__file__).resolve().parents[1] / "hub_config"
    if (checkout / "jupyterhub_config.py").is_file():
        return checkout / "jupyterhub_config.py"
    path = home / "hub" / "jupyterhub_config.py"
    if not path.exists() or path.read_text() != CONFIG_FILE_TEXT:
        path.write_text(CONFIG_FILE_TEXT)
    return path


def stack_specs(s: HubSettings, cfg: Path) -> list[ChildSpec]:
    """The supervised children, in start order. JupyterHub itself starts the proxy and the
    workbench service; parts the hub does not manage (OpenBao, SeaweedFS) go before it."""
    env = {**os.environ, **s.to_env(), "PYTHONUNBUFFERED": "1"}
    taken = (s.port, s.hub_port, s.proxy_api_port, s.service_port)
    objects = seaweed.prepare(s.home, exclude=taken)
    env[seaweed.ENDPOINT_ENV] = objects.endpoint  # the service's S3ObjectStore finds it there
    secrets = openbao.prepare(s.home, exclude=(*taken, *objects.ports.all()))
    env.update(secrets.service_env())  # the service's OpenBaoStore finds it there
    hub = ChildSpec(
        name="jupyterhub",
        argv=(sys.executable, "-m", "jupyterhub", "-f", str(cfg)),
        env=env,
        cwd=s.hub_dir,
        log_file=s.home / "logs" / "hub.log",
        # The hub itself, then through the proxy: hub, proxy and service are all up.
        ready_urls=(
            f"http://127.0.0.1:{s.hub_port}/hub/api/",
            f"{s.public_url}hub/api/",
            f"{s.public_url}{HEALTH_PATH.lstrip('/')}",
        ),
        expected=HUB_EXPECTED,
    )
    return [secrets.spec(), objects.spec, hub]


@contextlib.contextmanager
def _lock(home: Path) -> Iterator[None]:
    """Hold HOME/hub/up.lock: two stacks on one HOME would share (and corrupt) its state."""
    with (home / "hub" / "up.lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise UpError(f"another `workbench up` is running with --home {home}") from e
        yield


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set `stop` on SIGINT/SIGTERM for the duration (only possible in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _who() -> str:
    roles = {user: role for role, users in DEMO_ROLES.items() for user in users}
    return ", ".join(f"{user} ({roles[user]})" if user in roles else user for user in DEMO_USERS)


def _say(message: str) -> None:
    print(message, flush=True)


def _fail(message: str, spec: ChildSpec | None = None, lines: int = 25) -> int:
    """Print the error, after the end of the child's log that explains it; return 1."""
    if spec is not None and spec.log_file.exists():
        text = spec.log_file.read_text(errors="replace").splitlines()
        ours = spec.expected
        tail = [line for line in text if not (ours and ours.search(line))][-lines:]
        print(f"---- end of {spec.log_file}:", *tail, "----", sep="\n", file=sys.stderr)
    print(f"workbench up: error: {message}", file=sys.stderr, flush=True)
    return 1


def up(home: Path, port: int = DEFAULT_PORT, *, ready_timeout: float = READY_TIMEOUT) -> int:
    """Run the embedded stack with state in `home`, serving http://127.0.0.1:PORT/, until
    SIGINT/SIGTERM (→ 0). Returns 1 when it cannot start or a part dies."""
    home = home.expanduser().resolve()
    stop = threading.Event()
    try:
        check_port_free(port)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)  # notebook servers' accounts must not read the stack's state
        for sub in ("hub", "logs"):
            (home / sub).mkdir(exist_ok=True)
        with _lock(home), _stop_on_signals(stop):
            password, source = demo_password(home)
            hub_port, proxy_api_port, service_port = free_ports(3, exclude=port)
            settings = HubSettings(
                home=home,
                port=port,
                hub_port=hub_port,
                proxy_api_port=proxy_api_port,
                service_port=service_port,
                password=password,
                chp_command=tuple(ensure_chp()),
                service_command=service_command(home),
            )
            specs = stack_specs(settings, config_file(home))
            _say(f"workbench: home {home}; logs in {home / 'logs'}")
            shown = password if source != "$WORKBENCH_DEMO_PASSWORD" else source
            _say(f"workbench: demo users {_who()}; password: {shown}")
            if os.geteuid() != 0:
                _say(
                    "workbench: not running as root, so every notebook server runs as "
                    f"{getpass.getuser()}: users are not isolated from each other or from "
                    "HOME (run as root to isolate them; production isolation comes from the "
                    "Kubernetes spawner)"
                )
            return _run(Supervisor(specs), settings, stop, ready_timeout)
    except (UpError, ChpUnavailable) as e:
        return _fail(str(e))


def _run(sup: Supervisor, s: HubSettings, stop: threading.Event, ready_timeout: float) -> int:
    try:
        sup.start(stop, ready_timeout)
        _say(f"{READY}{s.public_url}")
        died = sup.watch(stop)
        if died is not None:
            return _fail(f"{died.name} exited unexpectedly; see {died.log_file}", died)
        return 0
    except Interrupted:
        return 0
    except StartFailed as e:
        return _fail(f"the stack did not start: {e}", e.spec)
    finally:
        _say("workbench: stopping")
        sup.stop()
        _say("workbench: stopped")
