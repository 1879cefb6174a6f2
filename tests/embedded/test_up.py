"""`workbench up` against real JupyterHub and configurable-http-proxy.

The workbench service is replaced by a stub (a few lines of http.server, written to a
temporary directory) that serves only the health check and an empty list of requests: these
tests are about starting, configuring and stopping the stack, not about the service.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets.config import Config

from tests.fixtures.hub import Stack, running_stack
from workbench.embedded.hubconfig import CONFIG_FILE_TEXT, HubSettings, configure
from workbench.embedded.launch import READY
from workbench.embedded.up import free_port

PASSWORD = "embedded-test-password"
REPO = Path(__file__).resolve().parents[2]

STUB = """
import json, os, signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

# The hub stops a managed service with SIGINT/SIGTERM; exit quietly.
for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, lambda *_: os._exit(0))
url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
prefix = os.environ["JUPYTERHUB_SERVICE_PREFIX"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == prefix + "api/v1/health":
            body, kind = json.dumps({"status": "ok"}).encode(), "application/json"
        elif self.path.startswith(prefix + "api/v1/requests?"):
            body, kind = json.dumps({"requests": []}).encode(), "application/json"
        elif self.path.startswith(prefix):
            body, kind = b"<h1>workbench stub</h1>", "text/html"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer((url.hostname, url.port), Handler).serve_forever()
"""


def stub_command(tmp: Path, home: Path) -> list[str]:
    """The stub service's command; `--home` puts HOME in its command line like the real one."""
    script = tmp / "stub_service.py"
    script.write_text(STUB)
    return [sys.executable, str(script), "--home", str(home)]


def processes_of(home: Path) -> dict[int, str]:
    """Live processes that mention `home` in their command line, working directory or
    environment: pid → command line."""
    found = {}
    needle = str(home)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        base = Path("/proc", entry)
        try:
            if base.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = base.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(base / "cwd")
            environ = base.joinpath("environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline or cwd.startswith(needle) or needle in environ:
            found[int(entry)] = cmdline
    return found


def listening_addresses(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets in LISTEN state that `pids` hold."""
    inodes = set()
    for pid in pids:
        with_fds = Path(f"/proc/{pid}/fd")
        for fd in with_fds.iterdir() if with_fds.exists() else ():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                addr, port = cols[1].split(":")
                if len(addr) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1])
                else:
                    ip = "v6:" + addr
                found.add((ip, int(port, 16)))
    return found


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack with the stub service for the read-only tests of this module."""
    home = tmp_path_factory.mktemp("home")
    cmd = stub_command(tmp_path_factory.mktemp("stub"), home)
    with running_stack(home, password=PASSWORD, service_command=cmd) as s:
        yield s


def test_thin_hub_config_matches_the_packaged_copy() -> None:
    assert (REPO / "hub_config" / "jupyterhub_config.py").read_text() == CONFIG_FILE_TEXT


def test_configure_binds_loopback_and_registers_the_service(tmp_path: Path) -> None:
    s = HubSettings(tmp_path, 8000, 8001, 8002, 8003, PASSWORD, ("chp",), ("svc", "--x"))
    c = Config()
    configure(c, s)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8001"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8002"
    (service,) = c.JupyterHub.services
    assert service["url"] == "http://127.0.0.1:8003"
    assert service["command"] == ["svc", "--x"]
    assert HubSettings.from_env(s.to_env()) == s


def test_ready_line_is_printed_once(embedded: Stack) -> None:
    ready = [line for line in embedded.output if line.startswith(READY)]
    assert ready == [f"{READY}http://127.0.0.1:{embedded.port}/"]


def test_hub_api_and_service_health_answer_through_the_proxy(embedded: Stack) -> None:
    c = embedded.client()
    assert "version" in c.get("hub/api/").json()
    assert c.get("services/workbench/api/v1/health").json() == {"status": "ok"}


def test_state_and_logs_live_under_home(embedded: Stack) -> None:
    for name in ("hub/jupyterhub.sqlite", "hub/jupyterhub_cookie_secret", "logs/hub.log"):
        assert (embedded.home / name).exists(), name
    # The password came from the environment: nothing is written.
    assert not (embedded.home / "demo-password").exists()


def test_everything_listens_on_loopback_only(embedded: Stack) -> None:
    addresses = listening_addresses(set(processes_of(embedded.home)))
    assert ("127.0.0.1", embedded.port) in addresses
    assert len(addresses) >= 4  # proxy, proxy API, hub, service
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}


def test_login_lands_on_the_workbench(embedded: Stack) -> None:
    c = embedded.client()
    c.get("hub/login")
    form = {"username": "alice", "password": PASSWORD, "_xsrf": c.cookies.get("_xsrf") or ""}
    r = c.post("hub/login", data=form)
    assert r.status_code == 302
    assert r.headers["location"] == "/services/workbench/"
    home = c.get("hub/home")
    assert home.status_code == 200
    assert 'href="/services/workbench/"' in home.text
    assert "Access requests" in home.text


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong-password"), ("mallory", PASSWORD)])
def test_bad_logins_are_refused(embedded: Stack, user: str, password: str) -> None:
    with pytest.raises(AssertionError, match="login as .* failed: 403"):
        embedded.login(user, password)


def test_demo_users_have_their_roles(embedded: Stack) -> None:
    hub = embedded.client(headers={"Authorization": f"token {embedded.token('admin')}"})
    users = {u["name"]: set(u["roles"]) for u in hub.get("hub/api/users").json()}
    assert users == {
        "alice": {"user", "researcher"},
        "bob": {"user", "researcher"},
        "maria": {"user", "manager"},
        "sam": {"user", "security"},
        "admin": {"user", "admin", "workbench-admin"},
    }
    alice = hub.get("hub/api/users/alice").json()
    assert alice["admin"] is False
    assert "researcher" in alice["roles"]


def test_tokens_carry_the_workbench_scopes(embedded: Stack) -> None:
    me = embedded.client(headers={"Authorization": f"token {embedded.token('maria')}"})
    scopes = set(me.get("hub/api/user").json()["scopes"])
    assert {"custom:workbench:approve", "access:services!service=workbench"} <= scopes


@pytest.mark.parametrize("path", ["server", "servers/r1"])
def test_notebook_servers_need_an_approved_request(embedded: Stack, path: str) -> None:
    hub = embedded.client(headers={"Authorization": f"token {embedded.token('alice')}"})
    r = hub.post(f"hub/api/users/alice/{path}", json={})
    assert r.status_code == 403
    assert "started for an approved access request" in r.json()["message"]
    assert "/services/workbench/" in r.json()["message"]


def test_the_spawn_page_explains_how_to_get_a_server(embedded: Stack) -> None:
    page = embedded.login("bob").get("hub/spawn/bob/r1")
    assert page.status_code == 200
    assert "You have no approved access request" in page.text
    assert 'href="/services/workbench/"' in page.text


def test_a_second_stack_on_the_same_home_is_refused(embedded: Stack) -> None:
    done = run_up(embedded.home, free_port())
    assert done.returncode == 1
    assert "another `workbench up` is running" in done.stderr


def run_up(home: Path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "workbench.embedded", "--home", str(home), "--port", str(port)]
    environ = {**os.environ, "WORKBENCH_DEMO_PASSWORD": PASSWORD, **env}
    return subprocess.run(cmd, env=environ, capture_output=True, text=True, timeout=30)


def test_a_taken_port_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = run_up(tmp_path / "home", port)
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert time.monotonic() - started < 10


def test_a_short_password_is_refused(tmp_path: Path) -> None:
    done = run_up(tmp_path / "home", free_port(), WORKBENCH_DEMO_PASSWORD="short")
    assert done.returncode == 1
    assert "WORKBENCH_DEMO_PASSWORD must be at least 8 characters" in done.stderr


def test_sigterm_and_sigint_stop_everything_and_a_restart_keeps_state(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cmd = stub_command(tmp_path, home)
    with running_stack(home, service_command=cmd) as first:
        password_file = home / "demo-password"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert any(first.password in line for line in first.output)  # printed at start
        token = first.token("alice")
        secret = (home / "hub" / "jupyterhub_cookie_secret").read_bytes()
        running = processes_of(home)
        assert len(running) >= 4, running  # workbench up, hub, proxy, service
        assert first.stop() == 0
    assert processes_of(home) == {}

    with running_stack(home, service_command=cmd) as second:
        assert second.password == first.password
        assert (home / "hub" / "jupyterhub_cookie_secret").read_bytes() == secret
        # The token made before the restart is still in the hub's database.
        hub = second.client(headers={"Authorization": f"token {token}"})
        r = hub.get("hub/api/user")
        assert r.status_code == 200
        assert r.json()["name"] == "alice"
        assert second.stop(sig=signal.SIGINT) == 0  # Ctrl-C
    assert processes_of(home) == {}
