"""The embedded data stack for the data-access benchmarks, started with the package's own code.

`running_stores(home, tenants)` starts OpenBao and SeaweedFS on one HOME the way `workbench up`
does (the same `prepare`/`spec`/`bootstrap`/`seed` functions under the same `Supervisor`), so
the S3 keys in OpenBao are the ones SeaweedFS enforces, with tenant SQL data in a scratch
PostgreSQL database. `running_service(home, stores, db_url, tenants)` runs the workbench
service in its own process, as in production, from a `workbench_config.py` written to its
HOME; only the hub is replaced, by `BenchHubAuth`, which answers token checks from a dict (as
the real HubOAuth does from its cache). `python benchmarks/_stack.py serve --home DIR --port N`
is that process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import ADMIN_URL  # noqa: E402
from jupyterhub.services.auth import HubOAuth  # noqa: E402

from workbench.access.keys import master_secret, tenant_s3_keys  # noqa: E402
from workbench.access.objects import S3ObjectStore  # noqa: E402
from workbench.access.secrets import OpenBaoStore  # noqa: E402
from workbench.config import DEMO_TENANTS, Catalog, CatalogData  # noqa: E402
from workbench.embedded import openbao, seaweed  # noqa: E402
from workbench.embedded.supervisor import Supervisor  # noqa: E402
from workbench.scopes import ACCESS_SERVICE, ROLE_SCOPES  # noqa: E402

PREFIX = "/services/workbench/"
USERS = {"alice": "researcher", "bob": "researcher", "maria": "manager", "sam": "security"}
START_TIMEOUT = 120.0


def token_for(user: str) -> str:
    """The bench hub's token of `user`."""
    return f"bench-token-of-{user}"


def catalog_tenants(
    extra_datasets: dict[str, str] | None = None, generated: int = 0
) -> dict[str, Any]:
    """`Catalog.tenants`: the demo tenants (acme, globex), acme with `extra_datasets`
    (name → kind) as well, and `generated` more tenants `t00000…` shaped like the demo ones,
    so that the catalog holds 2 + `generated` tenants."""
    tenants = {k: json.loads(json.dumps(v)) for k, v in DEMO_TENANTS.items()}
    for name, kind in (extra_datasets or {}).items():
        tenants["acme"]["datasets"][name] = {"kind": kind, "description": "benchmark data"}
    for i in range(generated):
        tenants[f"t{i:05d}"] = {
            "display_name": f"Customer {i}",
            "managers": ["maria"],
            "approvals_required": 1,
            "datasets": json.loads(json.dumps(DEMO_TENANTS["acme"]["datasets"])),
        }
    return tenants


# -- OpenBao + SeaweedFS -------------------------------------------------------------------------


@dataclass
class Stores:
    """OpenBao and SeaweedFS running on one HOME, and clients for the bare baselines."""

    home: Path
    catalog: CatalogData
    bao: openbao.EmbeddedBao
    objects: seaweed.EmbeddedSeaweed
    supervisor: Supervisor
    sql_database: str  # empty: no tenant SQL data

    @property
    def root_token(self) -> str:
        return str(json.loads(self.bao.paths.init_file.read_text())["root_token"])

    def hvac(self, token: str | None) -> Any:
        """An hvac client on its own keep-alive session, no environment proxies."""
        import hvac
        import requests

        session = requests.Session()
        session.trust_env = False
        return hvac.Client(url=self.bao.addr, token=token, timeout=30, session=session)

    def reader(self, token: str) -> Callable[[str], dict[str, Any]]:
        """A bare GET of an OpenBao path (`kv/data/…`, `database/creds/…`) with `token`, over a
        keep-alive urllib3 pool: the HTTP the broker's own read makes, with nothing around it."""
        import urllib3

        pool = urllib3.connection_from_url(self.bao.addr, maxsize=8, retries=False)
        headers = {"X-Vault-Token": token}

        def read(path: str) -> dict[str, Any]:
            resp = pool.request("GET", f"/v1/{path}", headers=headers)
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: HTTP {resp.status} {resp.data[:200]!r}")
            return dict(resp.json())

        return read

    def tenant_token(self, tenant: str, ttl: str = "4h") -> str:
        """A token whose only policy is the tenant's, minted through the broker's token role:
        what the broker reads with (provision the tenant first)."""
        resp = self.hvac(self.root_token).auth.token.create(
            role_name=self.bao.store.grant_role,
            policies=[f"tenant-{tenant}"],
            no_default_policy=True,
            renewable=False,
            ttl=ttl,
            display_name=f"bench-{tenant}",
        )
        return str(resp["auth"]["client_token"])

    def secret_store(self) -> OpenBaoStore:
        """The service's secret store, with the service's own token."""
        return OpenBaoStore(**self.config()["OpenBaoStore"])

    def tenant_s3(self, tenant: str, **config: Any) -> Any:
        """A boto3 client with `tenant`'s own S3 keys (the ones OpenBao hands out)."""
        keys = tenant_s3_keys(master_secret(self.home), tenant)
        return self.objects.store.client(*keys, **config)

    def admin_s3(self, **config: Any) -> Any:
        return seaweed.admin_client(self.home, self.objects.store, **config)

    def config(self) -> dict[str, dict[str, Any]]:
        """The configuration sections a service needs to reach these stores."""
        sections: dict[str, dict[str, Any]] = {
            "OpenBaoStore": {
                "url": self.bao.addr,
                "token_file": str(self.bao.paths.token_file),
                "s3_master_key_file": str(self.home / "storage-master.key"),
            },
            "S3ObjectStore": {"endpoint_url": self.objects.endpoint},
        }
        if self.sql_database:
            sections["OpenBaoStore"]["sql_database"] = self.sql_database
            sections["DataSettings"] = {
                "sql_url": f"{_server_url(ADMIN_URL)}/{self.sql_database}",
            }
        return sections

    def revoke_sql_logins(self) -> None:
        """Drop every dynamic PostgreSQL login (server-wide roles) made so far."""
        if self.sql_database:
            self.hvac(self.root_token).sys.revoke_prefix(f"{self.bao.store.database_mount}/creds/")


def _server_url(url: str) -> str:
    """postgresql://host:port of `url`, without credentials or database."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"postgresql://{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"


@contextlib.contextmanager
def running_stores(
    home: Path,
    tenants: dict[str, Any],
    *,
    postgres: bool = True,
    sql_tenants: tuple[str, ...] = ("acme", "globex"),
) -> Iterator[Stores]:
    """Start SeaweedFS (identities generated from `tenants`, demo data seeded) and OpenBao
    (initialised, unsealed, configured; with `postgres`, `sql_tenants`' schemas seeded in a
    scratch database), as `workbench up` does; stop both and drop the database afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    catalog = Catalog(tenants=tenants).build()
    objects = seaweed.prepare(home, catalog, S3ObjectStore())
    db = f"wb_bench_data_{secrets.token_hex(4)}" if postgres else ""
    port, cluster_port = openbao.choose_ports(2, objects.ports.all())
    bao = openbao.EmbeddedBao(
        paths=openbao.BaoPaths(home),
        port=port,
        cluster_port=cluster_port,
        store=OpenBaoStore(sql_database=db) if db else OpenBaoStore(),
        postgres_url=ADMIN_URL if db else "",
        sql_tenants=sql_tenants if db else (),
    )
    sup = Supervisor([objects.spec, bao.spec()], console=io.StringIO())
    stores = Stores(home, catalog, bao, objects, sup, db)
    try:
        sup.start(threading.Event(), START_TIMEOUT)
        yield stores
    finally:
        try:
            with contextlib.suppress(Exception):
                stores.revoke_sql_logins()
        finally:
            sup.stop()
            if db:
                with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


# -- the service ---------------------------------------------------------------------------------


class BenchHubAuth(HubOAuth):
    """HubOAuth whose hub answers token checks from a dict (bench token → user model): the
    cost of the real one's cache hit, with no hub to run."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("api_token", "bench-service-token")
        kwargs.setdefault("oauth_client_id", "service-workbench")
        kwargs.setdefault("api_url", "http://127.0.0.1:1/hub/api")
        kwargs.setdefault("access_scopes", {ACCESS_SERVICE})
        super().__init__(**kwargs)
        self.models = {
            token_for(user): {
                "kind": "user",
                "name": user,
                "scopes": list(ROLE_SCOPES[role]),
                "groups": [],
            }
            for user, role in USERS.items()
        }

    async def _check_hub_authorization(
        self, url: str, api_token: str, cache_key: str | None = None, use_cache: bool = True
    ) -> dict[str, Any] | None:
        return self.models.get(api_token)


@dataclass
class Service:
    """A workbench service process; `url` is its API base (…/services/workbench/api/v1/)."""

    home: Path
    url: str
    process: subprocess.Popen[bytes]

    def client(self, user: str = "alice", **kw: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"token {token_for(user)}"},
            timeout=60,
            trust_env=False,
            **kw,
        )

    def approved_request(
        self, tenant: str, datasets: list[str], hours: float = 8, user: str = "alice"
    ) -> int:
        """File a request as `user` and have maria approve it; return its id."""
        body = {
            "tenant": tenant,
            "datasets": datasets,
            "purpose": "benchmark of data access",
            "profile": "cpu-small",
            "hours": hours,
        }
        with self.client(user) as c:
            r = c.post("requests", json=body)
            r.raise_for_status()
            rid = int(r.json()["id"])
        with self.client("maria") as m:
            m.post(f"requests/{rid}/approve", json={}).raise_for_status()
        return rid

    @contextlib.contextmanager
    def broker(self) -> Iterator[Any]:
        """The service's `Broker`, in this process, on the service's own configuration and
        database: grants without HTTP (see `direct_grant`)."""
        from workbench.config import settings_for
        from workbench.service.context import Workbench

        wb = Workbench.open(settings_for(self.home), migrate=False)
        try:
            yield wb.broker
        finally:
            wb.close()

    def data_client(self, request_id: int, user: str = "alice") -> Any:
        """The notebook client (`workbench.data.Client`) for `request_id`."""
        from workbench import data

        return data.Client(request_id, api_url=self.url, token=token_for(user))


def direct_grant(broker: Any, request_id: int, dataset: str) -> Callable[[], object]:
    """alice's grant of `dataset` under `request_id`, by `broker.grant()` in this process (see
    `Service.broker`): the grant without HTTP."""
    from workbench.actor import Actor
    from workbench.scopes import ROLE_SCOPES

    alice = Actor("alice", frozenset(ROLE_SCOPES["researcher"]), "127.0.0.1")
    return functools.partial(broker.grant, alice, request_id, dataset)


def write_config(home: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """HOME/workbench_config.py setting `sections` (values as Python literals)."""
    lines = ["# Written by benchmarks/_stack.py", "c = get_config()  # noqa"]
    for section, values in sections.items():
        for key, value in values.items():
            lines.append(f"c.{section}.{key} = {value!r}")
    path = home / "workbench_config.py"
    path.write_text("\n".join(lines) + "\n")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_service(
    home: Path,
    stores: Stores,
    tenants: dict[str, Any],
    db_url: str | None = None,
    **sections: dict[str, Any],
) -> Iterator[Service]:
    """Run the service in a child process on HOME (database `db_url`, default SQLite under
    HOME), reaching `stores`, with catalog `tenants`; stop it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    config = stores.config()
    config["Catalog"] = {"tenants": tenants}
    if db_url:
        config["ServiceSettings"] = {"db_url": db_url}
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    write_config(home, config)
    port = free_port()
    log = (home / "service.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", "--home", str(home), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "AWS_"))},
    )
    service = Service(home, f"http://127.0.0.1:{port}{PREFIX}api/v1/", proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(trust_env=False, timeout=2) as c:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited; see {home / 'service.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(service.url + "health").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not answer; see {home / 'service.log'}")
                time.sleep(0.1)
        yield service
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def serve(home: Path, port: int) -> None:
    """The service as `python -m workbench.service` runs it, with BenchHubAuth for the hub."""
    from tornado.httpserver import HTTPServer

    from workbench.config import settings_for
    from workbench.service.__main__ import run_until_signalled, start_loops
    from workbench.service.api.jobs import NOTEBOOK_MAX_BYTES
    from workbench.service.app import make_app
    from workbench.service.context import Workbench

    settings = settings_for(home)
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s"
    )

    async def main() -> None:
        wb = Workbench.open(settings)
        wb.jobs.api_url = f"http://127.0.0.1:{port}{PREFIX}api/v1/"
        app = make_app(wb, PREFIX, BenchHubAuth())
        server = HTTPServer(app, xheaders=True, max_body_size=NOTEBOOK_MAX_BYTES)
        server.listen(port, "127.0.0.1")
        await run_until_signalled(wb, server, start_loops(wb, None))  # no hub: no servers

    asyncio.run(main())


# -- timing ------------------------------------------------------------------------------------


class LoadWatch:
    """The machine's 1-minute load average at the start and the end of a run, for the notes:
    other work on the machine moves these figures more than anything measured here."""

    def __init__(self) -> None:
        self.start = os.getloadavg()[0]

    def note(self) -> str:
        cores = os.cpu_count() or 1
        return (
            f"Load average (1 min) {self.start:.1f} at the start, {os.getloadavg()[0]:.1f} at "
            f"the end, on {cores} cores (this run's own processes count; well above {cores}, "
            "other work was competing for the cores)."
        )


def run_workers(
    make_op: Callable[[int], Callable[[], object]], workers: int, calls: int
) -> tuple[list[float], float]:
    """Call the op `make_op(w)` returns `calls` times in each of `workers` threads at once
    (set-up in `make_op` is not timed); return every call's seconds and the wall time."""
    ops = [make_op(w) for w in range(workers)]
    times: list[list[float]] = [[] for _ in range(workers)]
    start = threading.Barrier(workers + 1)

    def work(w: int) -> None:
        op, mine = ops[w], times[w]
        start.wait()
        for _ in range(calls):
            t = time.perf_counter()
            op()
            mine.append(time.perf_counter() - t)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for th in threads:
        th.start()
    start.wait()
    began = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - began
    if any(len(t) != calls for t in times):
        raise RuntimeError("a worker failed; see the traceback above")
    return [x for t in times for x in t], wall


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="benchmarks/_stack.py")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.home.resolve(), args.port)
