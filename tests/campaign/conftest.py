"""Fixtures of the fault and attack campaign: real servers that the tests may break.

- `private_pg`: a PostgreSQL of the campaign's own (initdb in a temporary directory, run as the
  `postgres` system account when the tests run as root, on a free port). Only this server is
  ever stopped or frozen; the machine's shared PostgreSQL on 5432 is never touched.
- `stores`: OpenBao and SeaweedFS on one HOME, as `workbench up` runs them (the S3 keys in
  OpenBao are the ones SeaweedFS enforces), restartable on the same ports.
- `launch`: the workbench service as a child process (`python -m tests.campaign.serve`, the
  real service with the fake hub of tests/mocking.py) on a HOME of the test's own, which the
  test may SIGKILL and start again.

`WORKBENCH_CAMPAIGN=long` selects the long profile (more examples, bigger bursts); see
docs/security-campaign.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import PREFIX, free_port
from tests.fixtures.seaweed import Seaweed, running_seaweed
from tests.mocking import token_for
from workbench.access.secrets import OpenBaoStore
from workbench.config import DEMO_TENANTS, Catalog, CatalogData
from workbench.embedded.openbao import BaoPaths, EmbeddedBao, choose_ports
from workbench.embedded.supervisor import Supervisor

LONG = os.environ.get("WORKBENCH_CAMPAIGN", "").lower() == "long"
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def profile(quick: T, long: T) -> T:
    """`quick` by default, `long` under WORKBENCH_CAMPAIGN=long."""
    return long if LONG else quick


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


def campaign_tenants() -> dict[str, Any]:
    """The demo tenants (acme, globex: maria governs both) and initech (maria and mike,
    two approvals), each with an objects dataset `calls`."""
    tenants = {k: json.loads(json.dumps(v)) for k, v in DEMO_TENANTS.items()}
    tenants["acme"]["managers"] = ["maria", "mike"]
    tenants["initech"] = {
        "managers": ["maria", "mike"],
        "approvals_required": 2,
        "datasets": {"calls": {"kind": "objects"}},
    }
    return tenants


# -- a PostgreSQL of our own -----------------------------------------------------------------


def _pg_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return found[0].parent if found else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL server the campaign owns: stop, start, freeze and thaw act on it alone."""

    bindir: Path
    datadir: Path
    port: int
    log: Path
    user: str | None  # the system account it runs as (None: this process's)

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.datadir} -c fsync=on -c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    @property
    def postmaster_pid(self) -> int:
        return int((self.datadir / "postmaster.pid").read_text().split()[0])

    def processes(self) -> list[int]:
        """The postmaster and every process it forked (backends, checkpointer, …)."""
        pm = self.postmaster_pid
        pids = [pm]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pm:
                    pids.append(int(stat.parent.name))
        return pids

    def freeze(self) -> list[int]:
        """SIGSTOP this server's postmaster and its children (by pid: only ours)."""
        pids = self.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    base = Path(tempfile.mkdtemp(prefix="wb-campaign-pg-"))
    user = None
    if os.geteuid() == 0:  # postgres refuses to run as root: a directory its account owns
        user = "postgres"
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            pytest.skip("running as root and there is no postgres account to run PostgreSQL as")
        os.chown(base, account.pw_uid, account.pw_gid)
    pg = PrivatePostgres(bindir, base / "data", free_port(), base / "postgres.log", user)
    try:
        pg._run("initdb", "-D", str(pg.datadir), "-A", "trust", "-U", "postgres", "--no-sync")
        pg.start()
        yield pg
    finally:
        with contextlib.suppress(Exception):
            pg.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


# -- OpenBao and SeaweedFS -------------------------------------------------------------------


@dataclass
class Stores:
    home: Path
    catalog: CatalogData
    seaweed: Seaweed
    bao: EmbeddedBao
    supervisor: Supervisor
    _seaweed_cm: Any = field(repr=False, default=None)

    @property
    def init(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.bao.paths.init_file.read_text())
        return data

    def root(self) -> Any:
        import hvac

        client = hvac.Client(url=self.bao.addr, token=self.init["root_token"], timeout=10)
        client.session.trust_env = False
        return client

    def config(self) -> dict[str, dict[str, Any]]:
        return {
            "OpenBaoStore": {
                "url": self.bao.addr,
                "token_file": str(self.bao.paths.token_file),
                "s3_master_key_file": str(self.home / "storage-master.key"),
            },
            "S3ObjectStore": {"endpoint_url": self.seaweed.endpoint},
            "Catalog": {"tenants": campaign_tenants()},
        }

    # OpenBao: seal/unseal, stop/start on the same ports
    def seal(self) -> None:
        self.root().sys.seal()

    def unseal(self) -> None:
        self.bao.bootstrap()  # unseal with the saved key, as a restart of the stack does

    def stop_bao(self) -> None:
        self.supervisor.stop()

    def start_bao(self) -> None:
        self.supervisor = Supervisor([self.bao.spec()], console=io.StringIO())
        self.supervisor.start(threading.Event(), 60)

    # SeaweedFS: stop, start on the same ports
    def stop_seaweed(self) -> None:
        self._seaweed_cm.__exit__(None, None, None)

    def start_seaweed(self) -> None:
        self._seaweed_cm = running_seaweed(self.home, self.catalog)
        self.seaweed = self._seaweed_cm.__enter__()


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    home = tmp_path_factory.mktemp("campaign-stores")
    catalog = Catalog(tenants=campaign_tenants()).build()
    cm = running_seaweed(home, catalog)
    seaweed = cm.__enter__()
    s: Stores | None = None
    try:
        seaweed.seed()
        port, cluster_port = choose_ports(2, seaweed.embedded.ports.all())
        bao = EmbeddedBao(BaoPaths(home), port, cluster_port, store=OpenBaoStore())
        sup = Supervisor([bao.spec()], console=io.StringIO())
        sup.start(threading.Event(), 60)
        s = Stores(home, catalog, seaweed, bao, sup, cm)
        yield s
    finally:
        if s is not None:
            s.supervisor.stop()
            with contextlib.suppress(Exception):
                s._seaweed_cm.__exit__(None, None, None)
        else:
            cm.__exit__(None, None, None)


# -- the service as a process ----------------------------------------------------------------


@dataclass
class ServiceProcess:
    """The service running on HOME and a fixed port; kill() and start() keep both."""

    home: Path
    port: int
    db_url: str = ""  # empty: SQLite under HOME
    process: subprocess.Popen[bytes] | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIX}api/v1/"

    def start(self, timeout: float = 60) -> None:
        log = (self.home / "service.log").open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "AWS_"))}
        env["PYTHONPATH"] = str(ROOT)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.campaign.serve", "--home", str(self.home)]
            + ["--port", str(self.port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2) as c:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the service exited:\n{self.log()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(self.url + "health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not answer:\n{self.log()[-3000:]}")
                time.sleep(0.1)

    def log(self) -> str:
        path = self.home / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        for c in self._clients:
            c.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self, user: str, timeout: float = 30) -> httpx.Client:
        c = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"token {token_for(user)}"},
            timeout=timeout,
            trust_env=False,
        )
        self._clients.append(c)
        return c

    def approved(self, tenant: str = "acme", user: str = "alice", hours: float = 4) -> int:
        body = {
            "tenant": tenant,
            "datasets": ["calls"],
            "purpose": "fault campaign",
            "profile": "cpu-small",
            "hours": hours,
        }
        r = self.client(user).post("requests", json=body)
        assert r.status_code == 201, r.text
        rid = int(r.json()["id"])
        r = self.client("maria").post(f"requests/{rid}/approve", json={"comment": "ok"})
        assert r.json()["state"] == "approved", r.text
        return rid

    def grant(self, rid: int, user: str = "alice", dataset: str = "acme/calls") -> httpx.Response:
        return self.client(user).post("grants", json={"request_id": rid, "dataset": dataset})


def write_config(home: Path, sections: dict[str, dict[str, Any]]) -> None:
    lines = ["c = get_config()  # noqa"]
    for section, values in sections.items():
        for key, value in values.items():
            lines.append(f"c.{section}.{key} = {value!r}")
    (home / "workbench_config.py").write_text("\n".join(lines) + "\n")


@pytest.fixture
def launch(tmp_path: Path, stores: Stores) -> Iterator[Callable[..., ServiceProcess]]:
    """launch(db_url=None, **sections): the service on a fresh HOME reaching `stores`."""
    started: list[ServiceProcess] = []

    def make(db_url: str | None = None, **sections: dict[str, Any]) -> ServiceProcess:
        home = tmp_path / f"service-{len(started)}"
        home.mkdir()
        port = free_port()
        config = stores.config()
        # jobs reach the service at its own port (the hub's environment is not there)
        config["JobSettings"] = {"api_url": f"http://127.0.0.1:{port}{PREFIX}api/v1/"}
        config["AuditSettings"] = {"checkpoint_every": 20, "checkpoint_seconds": 1.0}
        if db_url:
            config["ServiceSettings"] = {"db_url": db_url}
        for name, values in sections.items():
            config.setdefault(name, {}).update(values)
        write_config(home, config)
        svc = ServiceProcess(home, port, db_url or "")
        started.append(svc)
        svc.start()
        return svc

    yield make
    for svc in started:
        svc.stop()
        if svc.process is not None and svc.process.returncode not in (0, -9, None):
            print(svc.log()[-2000:])
    shutil.rmtree(tmp_path, ignore_errors=True)
