"""A real Jupyter server with the extension loaded from this source tree, talking to the fake
workbench service."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_service import TOKEN, FakeService

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent
LAB_TOKEN = "lab-test-token"


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeService]:
    service = FakeService()
    service.start()
    yield service
    service.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """The running server: its root folder and an HTTP client authenticated to it."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"token {LAB_TOKEN}"}, timeout=30
        )


@pytest.fixture(scope="session")
def lab_server(fake: FakeService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("root")
    home = tmp_path_factory.mktemp("jupyter")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")]),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "WORKBENCH_API_URL": fake.api_url,
        "WORKBENCH_REQUEST_ID": "7",
        "JUPYTERHUB_API_TOKEN": TOKEN,
    }
    log = open(home / "server.log", "w")  # noqa: SIM115 — closed after the server stops
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={LAB_TOKEN}",
            "--ServerApp.jpserver_extensions={'workbench_lab': True}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    lab = Lab(url, root)
    deadline = time.monotonic() + 60
    while True:
        try:
            if lab.http.get("/api/status").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("jupyter server did not start:\n" + (home / "server.log").read_text())
        time.sleep(0.2)
    yield lab
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def lab(lab_server: Lab, fake: FakeService) -> Lab:
    fake.reset()
    return lab_server
