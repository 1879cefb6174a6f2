"""A real OpenBao for the secret-store tests: the embedded default's server, started once per
session in a temporary HOME by the same code `workbench up` runs, with tenant SQL data in a
fresh database on the test PostgreSQL server (dropped afterwards, with every dynamic login)."""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import psycopg
import pytest

from workbench.access.secrets import OpenBaoStore
from workbench.embedded.openbao import BaoPaths, EmbeddedBao, choose_ports, libpq_url
from workbench.embedded.supervisor import Supervisor

PG_URL = os.environ.get("WORKBENCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TENANTS = ("acme", "globex")


@dataclass
class RunningBao:
    """An embedded OpenBao under supervision, and a root client for the tests' own checks."""

    bao: EmbeddedBao
    supervisor: Supervisor

    @property
    def root(self) -> hvac.Client:
        client = hvac.Client(url=self.bao.addr, token=self.init["root_token"], timeout=10)
        client.session.trust_env = False
        return client

    @property
    def init(self) -> dict[str, object]:
        import json

        data: dict[str, object] = json.loads(self.bao.paths.init_file.read_text())
        return data

    def store(self, **traits: object) -> OpenBaoStore:
        return OpenBaoStore(
            url=self.bao.addr,
            token_file=str(self.bao.paths.token_file),
            s3_master_key_file=str(self.bao.paths.home / "storage-master.key"),
            sql_database=self.bao.store.sql_database,
            **traits,
        )

    def stop(self) -> None:
        self.supervisor.stop()


def start_bao(home: Path, **kw: object) -> RunningBao:
    """Start (or restart) HOME's embedded OpenBao on fresh ports, set up as `workbench up` does."""
    port, cluster_port = choose_ports(2)
    bao = EmbeddedBao(BaoPaths(home), port, cluster_port, **kw)  # type: ignore[arg-type]
    sup = Supervisor([bao.spec()], console=io.StringIO())
    try:
        sup.start(threading.Event(), 60)
    except BaseException:
        sup.stop()
        raise
    return RunningBao(bao, sup)


@pytest.fixture(scope="session")
def sql_database() -> Iterator[str]:
    """A fresh database name for tenant SQL data; dropped at the end."""
    name = f"wb_secrets_{uuid.uuid4().hex[:10]}"
    try:
        psycopg.connect(libpq_url(PG_URL), connect_timeout=5).close()
    except psycopg.Error as e:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable: {e}")
    yield name
    with psycopg.connect(libpq_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def bao(tmp_path_factory: pytest.TempPathFactory, sql_database: str) -> Iterator[RunningBao]:
    home = tmp_path_factory.mktemp("bao-home")
    running = start_bao(
        home,
        store=OpenBaoStore(sql_database=sql_database),
        postgres_url=PG_URL,
        sql_tenants=TENANTS,
    )
    yield running
    try:
        # Drop every dynamic login the tests left (they are server-wide PostgreSQL roles).
        running.root.sys.revoke_prefix("database/creds/")  # synchronous by default
    finally:
        running.stop()


@pytest.fixture(scope="session")
def store(bao: RunningBao) -> Iterator[OpenBaoStore]:
    s = bao.store()
    yield s
    s.close()
