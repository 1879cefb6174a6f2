"""Shared fixtures: a workbench on a fresh SQLite (or PostgreSQL) database, and the service
running on a real port with a fake hub behind its token checks."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from traitlets.config import Config

from tests.mocking import FakeHubAuth, token_for
from workbench.config import settings_for
from workbench.service.app import make_app
from workbench.service.context import Workbench

pytest_plugins = ["tests.fixtures.hub", "tests.fixtures.seaweed"]

PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PREFIX = "/services/workbench/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"wb_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {e}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def make_config(**sections: dict[str, Any]) -> Config:
    cfg = Config()
    for section, values in sections.items():
        for k, v in values.items():
            setattr(getattr(cfg, section), k, v)
    return cfg


@pytest.fixture
def config() -> Config:
    """Tests may add to this before `wb` is built. Acme needs two approvals here."""
    from workbench.config import DEMO_TENANTS

    tenants = {k: dict(v) for k, v in DEMO_TENANTS.items()}
    tenants["acme"] = dict(tenants["acme"], managers=["maria", "mike"], approvals_required=1)
    tenants["initech"] = {
        "managers": ["maria", "mike"],
        "approvals_required": 2,
        "datasets": {"tickets": {"kind": "objects"}},
    }
    return make_config(
        Catalog={"tenants": tenants},
        AuditSettings={"checkpoint_every": 5, "checkpoint_seconds": 0.5},
    )


@pytest.fixture(params=["sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'workbench.sqlite'}"


@pytest.fixture
def wb(tmp_path: Path, config: Config, db_url: str) -> Iterator[Workbench]:
    config.ServiceSettings.db_url = db_url
    workbench = Workbench.open(settings_for(tmp_path / "home", config))
    yield workbench
    workbench.close()


class Service:
    """The service on a real port, in its own thread and event loop. With `follow_jobs`, jobs
    reach it and a thread brings their states up to date, as the service's loop does."""

    def __init__(self, wb: Workbench, follow_jobs: bool = False) -> None:
        self.wb = wb
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{PREFIX}"
        self.hub_auth = FakeHubAuth()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "service did not start"
        self._following = threading.Event()
        self._follower: threading.Thread | None = None
        if follow_jobs:
            wb.jobs.api_url = self.url + "api/v1/"
            self._follower = threading.Thread(target=self._follow, daemon=True)
            self._follower.start()

    def _follow(self) -> None:
        while not self._following.wait(0.5):
            self.wb.jobs.reconcile()

    def _run(self) -> None:
        async def main() -> None:
            from tornado.httpserver import HTTPServer

            app = make_app(self.wb, PREFIX, self.hub_auth)
            server = HTTPServer(app, xheaders=True, max_body_size=1 << 20)
            server.listen(self.port, "127.0.0.1")
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            server.stop()

        asyncio.run(main())

    def stop(self) -> None:
        if self._follower is not None:
            self._following.set()
            self._follower.join(10)
            self._stop_running_jobs()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _stop_running_jobs(self) -> None:
        """Leave no job process behind."""
        from sqlalchemy import select

        from workbench.jobs.models import Job

        with self.wb.sessions() as s:
            refs = s.scalars(select(Job.backend_ref).where(Job.state == "running")).all()
        for ref in refs:
            if ref:
                self.wb.jobs.backend.stop(ref)

    def client(self, user: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"token {token_for(user)}"} if user else {}
        return httpx.Client(base_url=self.url + "api/v1/", headers=headers, timeout=30, **kw)


@pytest.fixture
def service(wb: Workbench) -> Iterator[Service]:
    svc = Service(wb)
    yield svc
    svc.stop()


@pytest.fixture
def api(service: Service) -> Callable[[str | None], httpx.Client]:
    clients: list[httpx.Client] = []

    def make(user: str | None) -> httpx.Client:
        c = service.client(user)
        clients.append(c)
        return c

    yield make  # type: ignore[misc]
    for c in clients:
        c.close()
