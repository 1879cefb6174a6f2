"""The secret store: per-tenant policies, request tokens, S3 keys and dynamic SQL logins.

`SecretStore` is the pluggable part; `OpenBaoStore` talks to OpenBao or Vault through hvac (and,
for a grant's one read, through urllib3 alone) and is used by both deployments (embedded: a
token file written by `workbench up`; production: AppRole or Kubernetes auth).

Tenant scope is enforced by the credential itself (DESIGN.md, invariant 2): every read of a
tenant's secret is made with a *request token* whose only policy is `tenant-<tenant>`, rendered
from `policies/tenant.hcl`, so even a broker bug that asks for another tenant's path gets a 403
from OpenBao. The service's own token (policy `workbench-broker`) can provision tenants and mint
and revoke request tokens, but cannot read any tenant's secret.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from traitlets import Enum, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from workbench.access.keys import tenant_s3_keys
from workbench.errors import Forbidden, Invalid, NotFound, Unavailable

if TYPE_CHECKING:  # hvac (and requests) cost ~120 ms to import: only stores that talk load it
    import hvac
    import urllib3

GRANT_ROLE = "workbench-grant"
BROKER_POLICY = "workbench-broker"
# Tenant names become policy, role, path and schema names: no room for globs, dots or slashes.
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
KUBERNETES_JWT = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def policies_dir() -> Path:
    """The `policies/` templates: of a source checkout, else packaged as `workbench/policies`."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "policies"
    return checkout if checkout.is_dir() else here.parents[1] / "policies"


@functools.cache
def _template(name: str) -> Template:
    return Template((policies_dir() / name).read_text())


def render_template(name: str, **values: str) -> str:
    """`policies/NAME` with `${key}` filled in; SQL comment lines are dropped (OpenBao splits
    statements on `;` and would send them along)."""
    text = _template(name).substitute(values)
    if name.endswith(".sql"):
        text = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return text.strip() + "\n"


def check_tenant(tenant: str) -> str:
    """Return `tenant`, or raise Invalid when it cannot safely name policies and paths."""
    if not isinstance(tenant, str) or not TENANT_NAME.match(tenant):
        raise Invalid(
            f"tenant name {tenant!r} is not usable for secrets: lower-case letters, digits, "
            "'-' and '_', at most 40 characters",
            tenant=tenant if isinstance(tenant, str) else None,
        )
    return tenant


def policy_name(tenant: str) -> str:
    return f"tenant-{tenant}"


def schema_name(tenant: str) -> str:
    """The PostgreSQL schema holding a tenant's SQL datasets."""
    return f"tenant_{tenant}"


def render_tenant_policy(
    tenant: str, kv_mount: str = "kv", database_mount: str = "database"
) -> str:
    """The HCL policy `tenant-<tenant>`: read its KV paths and its database role's creds only."""
    return render_template(
        "tenant.hcl",
        tenant=check_tenant(tenant),
        kv_mount=kv_mount,
        database_mount=database_mount,
    )


def render_broker_policy(kv_mount: str = "kv", database_mount: str = "database") -> str:
    """The HCL policy of the service's own token (`workbench-broker`)."""
    return render_template("workbench-broker.hcl", kv_mount=kv_mount, database_mount=database_mount)


def grant_role_settings(max_ttl_seconds: int) -> dict[str, Any]:
    """The token role request tokens are minted through (`auth/token/roles/workbench-grant`).

    Orphans, so that renewing or replacing the service's token never cascades to grants; not
    renewable, so a token never outlives the TTL it was minted with; no `default` policy, so
    its tenant's policy is its only one. Revoking it revokes the leases it created.
    """
    return {
        "allowed_policies_glob": ["tenant-*"],
        "orphan": True,
        "renewable": False,
        "token_no_default_policy": True,
        "token_type": "service",
        "token_explicit_max_ttl": max_ttl_seconds,
    }


def tenant_sql_role(
    tenant: str, connection: str, database: str, default_ttl: int, max_ttl: int
) -> dict[str, Any]:
    """The database-engine role `tenant-<tenant>`: a login that reads only its schema."""
    values = {"tenant": check_tenant(tenant), "schema": schema_name(tenant), "database": database}
    return {
        "db_name": connection,
        "creation_statements": [render_template("tenant-sql-creation.sql", **values)],
        "revocation_statements": [render_template("tenant-sql-revocation.sql", **values)],
        "default_ttl": default_ttl,
        "max_ttl": max_ttl,
    }


# Usernames of dynamic SQL logins (a setting of the database connection): they say whose login
# it is in pg_stat_activity and PostgreSQL's logs, e.g. wb-tenant-acme-request-7-<random>.
SQL_USERNAME_TEMPLATE = (
    '{{ printf "wb-%s-%s-%s" (.RoleName | truncate 30) '
    '(.DisplayName | replace "token-" "" | truncate 16) (random 8) | truncate 63 }}'
)


@dataclass(frozen=True)
class RequestToken:
    """A token minted for one access request; `accessor` revokes it without knowing it."""

    token: str = field(repr=False)
    accessor: str
    expires_at: datetime


@dataclass(frozen=True)
class SqlCredentials:
    """A dynamic PostgreSQL login; dropped when its lease ends or its request token is revoked."""

    username: str
    password: str = field(repr=False)
    lease_id: str
    expires_at: datetime


class SecretStore(LoggingConfigurable):
    """Where tenant credentials come from. Subclasses override:

    - `ensure_tenant(tenant)`: provision the tenant's policy (and roles, keys); idempotent, cheap
      when already done, called lazily on a tenant's first grant.
    - `mint_request_token(request_id, tenant, ttl_seconds, job_id=None) -> RequestToken`:
      one token per request, or per job of a request
    - `read_s3_keys(token, tenant) -> dict` and `sql_credentials(token, tenant, ttl_seconds)`:
      read with the request token, never with the store's own credentials.
    - `revoke_token(accessor)` (and its leases), `revoke_lease(lease_id)`.
    - `health() -> str | None`: None when usable, else what is wrong.

    Errors: `Unavailable` when the store is down or sealed, `Forbidden` when a read is denied.
    """

    def ensure_tenant(self, tenant: str) -> None:
        raise NotImplementedError

    def mint_request_token(
        self, request_id: int, tenant: str, ttl_seconds: int, job_id: int | None = None
    ) -> RequestToken:
        raise NotImplementedError

    def read_s3_keys(self, token: str, tenant: str) -> dict[str, str]:
        raise NotImplementedError

    def sql_credentials(self, token: str, tenant: str, ttl_seconds: int) -> SqlCredentials:
        raise NotImplementedError

    def revoke_token(self, accessor: str) -> None:
        raise NotImplementedError

    def revoke_lease(self, lease_id: str) -> None:
        raise NotImplementedError

    def health(self) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""


class OpenBaoStore(SecretStore):
    """OpenBao or Vault through hvac. One method per endpoint; errors mapped in `_errors`."""

    url = Unicode(
        help="""OpenBao/Vault address, e.g. https://vault.example:8200. Default:
        $WORKBENCH_OPENBAO_ADDR (set by `workbench up`), else http://127.0.0.1:8200."""
    ).tag(config=True)

    @default("url")
    def _default_url(self) -> str:
        return os.environ.get("WORKBENCH_OPENBAO_ADDR") or "http://127.0.0.1:8200"

    ca_cert = Unicode(
        "", help="CA bundle (PEM) to verify the server's TLS certificate; empty: system CAs."
    ).tag(config=True)

    timeout = Float(5.0, help="Seconds to wait for each call to OpenBao.").tag(config=True)

    auth_method = Enum(
        ["token", "approle", "kubernetes"],
        "token",
        help="""How the service authenticates: `token` (a token read from token_file; the
        embedded default), `approle` (role_id + secret_id_file) or `kubernetes` (the pod's
        service-account JWT).""",
    ).tag(config=True)

    token_file = Unicode(
        help="""File holding the service's token (auth_method=token). Default:
        $WORKBENCH_OPENBAO_TOKEN_FILE (set by `workbench up`)."""
    ).tag(config=True)

    @default("token_file")
    def _default_token_file(self) -> str:
        return os.environ.get("WORKBENCH_OPENBAO_TOKEN_FILE", "")

    role_id = Unicode("", help="AppRole role_id (auth_method=approle).").tag(config=True)
    secret_id_file = Unicode(
        "", help="File holding the AppRole secret_id (auth_method=approle)."
    ).tag(config=True)
    approle_mount = Unicode("approle", help="Mount path of the AppRole auth method.").tag(
        config=True
    )
    kubernetes_role = Unicode("", help="Kubernetes auth role (auth_method=kubernetes).").tag(
        config=True
    )
    kubernetes_jwt_file = Unicode(
        KUBERNETES_JWT, help="The service-account JWT presented to Kubernetes auth."
    ).tag(config=True)
    kubernetes_mount = Unicode("kubernetes", help="Mount path of the Kubernetes auth method.").tag(
        config=True
    )

    kv_mount = Unicode("kv", help="Mount path of the KV v2 engine holding tenant secrets.").tag(
        config=True
    )
    database_mount = Unicode("database", help="Mount path of the database secrets engine.").tag(
        config=True
    )
    database_connection = Unicode(
        "workbench",
        help="Name of the PostgreSQL connection (database/config/NAME) tenant roles use.",
    ).tag(config=True)
    sql_database = Unicode(
        "workbench_data",
        help="PostgreSQL database holding one schema per tenant (tenant_<name>).",
    ).tag(config=True)
    sql_default_ttl = Integer(
        3600, help="Default lease of a dynamic SQL login, seconds (never past its request)."
    ).tag(config=True)
    sql_max_ttl = Integer(7 * 86400, help="Longest lease of a dynamic SQL login, seconds.").tag(
        config=True
    )
    grant_role = Unicode(GRANT_ROLE, help="Token role request tokens are minted through.").tag(
        config=True
    )
    grant_max_ttl = Integer(
        7 * 86400, help="Longest life of a request token, seconds (the longest request)."
    ).tag(config=True)

    s3_master_key_file = Unicode(
        help="""When set, each tenant's S3 keys are derived from this master secret
        (workbench.access.keys) and stored in KV at tenants/<tenant>/s3 on the tenant's first
        grant: the embedded default. Empty (production): the keys are stored by whoever creates
        the S3 identities. Default: $WORKBENCH_S3_MASTER_KEY_FILE."""
    ).tag(config=True)

    @default("s3_master_key_file")
    def _default_s3_master_key_file(self) -> str:
        return os.environ.get("WORKBENCH_S3_MASTER_KEY_FILE", "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._service_client: hvac.Client | None = None
        self._refresh_at = 0.0  # monotonic time to renew or log in again
        self._provisioned: set[str] = set()
        self._session: Any = None  # one requests.Session (keep-alive) for hvac's clients
        # keep-alive connections for grants, to OpenBao's host (of `url`) alone
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._api = "/v1/"  # the API's path on that host

    # -- clients ----------------------------------------------------------------------

    def _client(self, token: str | None) -> hvac.Client:
        """An hvac client for `token`, sharing one HTTP session."""
        import hvac
        import requests

        if self._session is None:
            with self._lock:
                if self._session is None:
                    session = requests.Session()
                    session.trust_env = False  # never send tokens through an environment proxy
                    # hvac takes `verify` from a given session (over its own argument).
                    session.verify = self.ca_cert or True
                    self._session = session
        return hvac.Client(url=self.url, token=token, timeout=self.timeout, session=self._session)

    def _read(self, token: str, path: str) -> dict[str, Any]:
        """GET /v1/<path> with a request token: the one call to OpenBao a grant makes.

        urllib3 alone, not hvac over requests: those layers cost ~0.6 ms of a ~1.4 ms KV read
        here, more than OpenBao's own work (benchmarks/grants.py). No environment proxies, TLS
        verified against `ca_cert` (else the system's CAs). A failure raises what hvac would,
        so that `_errors` maps both alike; only a connection that could not be made is
        retried (a GET of a SQL login must not run twice).
        """
        import hvac.utils
        import urllib3

        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    tls = {"ca_certs": self.ca_cert or None} if self.url.startswith("https") else {}
                    self._api = (urllib3.util.parse_url(self.url).path or "").rstrip("/") + "/v1/"
                    self._pool = urllib3.connection_from_url(
                        self.url,
                        maxsize=16,
                        timeout=self.timeout,
                        retries=urllib3.Retry(total=1, read=0, status=0, redirect=0, other=0),
                        **tls,
                    )
        resp = self._pool.urlopen("GET", self._api + path, headers={"X-Vault-Token": token})
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status >= 400:
            text = resp.data.decode(errors="replace")
            hvac.utils.raise_for_error(
                "GET",
                f"{self.url.rstrip('/')}/v1/{path}",
                resp.status,
                errors=body.get("errors"),
                text=text,
                json=body,
            )
        return dict(body)

    def _service(self) -> hvac.Client:
        """The client with the service's own token; renewed or logged in again when due."""
        with self._lock:
            client = self._service_client
            if client is not None and time.monotonic() < self._refresh_at:
                return client
        with self._errors("authenticate the workbench service", service=True):
            client, ttl = self._login(client)
        with self._lock:
            self._service_client = client
            # Renew (or log in again) at half the TTL; a TTL of 0 never expires.
            self._refresh_at = time.monotonic() + (ttl / 2 if ttl else float("inf"))
        return client

    def _login(self, current: hvac.Client | None) -> tuple[hvac.Client, int]:
        """Authenticate per auth_method; return the client and its token's TTL in seconds."""
        if self.auth_method == "token":
            if current is None:
                current = self._client(self._read_secret_file(self.token_file, "token_file"))
            # auth/token/lookup-self proves the token works; auth/token/renew-self keeps a
            # periodic token alive (a root or non-renewable token is used as it is).
            info = current.auth.token.lookup_self()["data"]
            if not (info.get("renewable") and info.get("ttl")):
                return current, int(info.get("ttl") or 0)
            resp = current.auth.token.renew_self()
            return current, int(resp["auth"]["lease_duration"])
        client = self._client(None)
        if self.auth_method == "approle":
            secret_id = self._read_secret_file(self.secret_id_file, "secret_id_file")
            # auth/<approle_mount>/login
            resp = client.auth.approle.login(
                self.role_id, secret_id, mount_point=self.approle_mount
            )
        else:
            jwt = self._read_secret_file(self.kubernetes_jwt_file, "kubernetes_jwt_file")
            # auth/<kubernetes_mount>/login
            resp = client.auth.kubernetes.login(
                self.kubernetes_role, jwt, mount_point=self.kubernetes_mount
            )
        client.token = resp["auth"]["client_token"]
        return client, int(resp["auth"]["lease_duration"])

    @staticmethod
    def _read_secret_file(path: str, trait: str) -> str:
        if not path:
            raise Unavailable(f"OpenBaoStore.{trait} is not set: the service cannot authenticate")
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise Unavailable(f"cannot read OpenBaoStore.{trait} {path}: {e.strerror}") from e

    # -- errors -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(
        self, what: str, *, tenant: str | None = None, service: bool = False
    ) -> Iterator[None]:
        """Map hvac/requests/urllib3 errors to domain errors, in one place.

        A 403 on the service's own token is our configuration's fault (Unavailable), and
        forgets the token so that the next call reads or logs in again; a 403 on a request
        token is the caller's (Forbidden).
        """
        import hvac.exceptions as hx
        import requests
        import urllib3

        where = f"OpenBao at {self.url}"
        try:
            yield
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as e:
            raise Unavailable(
                f"{where} is unreachable ({type(e).__name__}); could not {what}", tenant=tenant
            ) from e
        except hx.VaultDown as e:
            raise Unavailable(
                f"{where} is sealed or down (503); could not {what}. Unseal it "
                "(`bao operator unseal`) or restart `workbench up`",
                tenant=tenant,
            ) from e
        except hx.Forbidden as e:
            if service:
                with self._lock:
                    self._service_client = None
                raise Unavailable(
                    f"{where} refused the workbench service's token; could not {what}. "
                    "Check its policy (workbench-broker) and that it has not expired",
                    tenant=tenant,
                ) from e
            raise Forbidden(
                f"{where} denied {what}: the request's token does not reach it", tenant=tenant
            ) from e
        except hx.InvalidPath as e:
            raise NotFound(f"could not {what}: {where} has no such secret", tenant=tenant) from e
        except hx.VaultError as e:
            raise Unavailable(f"{where} could not {what}: {e}", tenant=tenant) from e

    # -- provisioning -------------------------------------------------------------------

    def ensure_tenant(self, tenant: str) -> None:
        """Write the tenant's policy, database role and (embedded) S3 keys, once per process.

        PUT sys/policies/acl/tenant-<t>, POST <database_mount>/roles/tenant-<t>, and
        POST <kv_mount>/data/tenants/<t>/s3 with cas=0 (never overwrites).
        """
        if tenant in self._provisioned:
            return
        check_tenant(tenant)
        client = self._service()
        with self._errors(f"provision tenant {tenant}", tenant=tenant, service=True):
            client.sys.create_or_update_acl_policy(
                policy_name(tenant),
                render_tenant_policy(tenant, self.kv_mount, self.database_mount),
            )
            role = tenant_sql_role(
                tenant,
                self.database_connection,
                self.sql_database,
                self.sql_default_ttl,
                self.sql_max_ttl,
            )
            client.adapter.post(f"/v1/{self.database_mount}/roles/{policy_name(tenant)}", json=role)
            if self.s3_master_key_file:
                self._store_s3_keys(client, tenant)
        self._provisioned.add(tenant)

    def _store_s3_keys(self, client: hvac.Client, tenant: str) -> None:
        import hvac.exceptions as hx

        # The file format of workbench.access.keys.master_secret (hex); never created here.
        master = bytes.fromhex(
            self._read_secret_file(self.s3_master_key_file, "s3_master_key_file")
        )
        access_key_id, secret_access_key = tenant_s3_keys(master, tenant)
        try:
            client.secrets.kv.v2.create_or_update_secret(
                f"tenants/{tenant}/s3",
                {"access_key_id": access_key_id, "secret_access_key": secret_access_key},
                cas=0,
                mount_point=self.kv_mount,
            )
        except hx.InvalidRequest as e:
            if "check-and-set" not in str(e):
                raise  # anything but "already there"

    # -- request tokens ----------------------------------------------------------------

    def mint_request_token(
        self, request_id: int, tenant: str, ttl_seconds: int, job_id: int | None = None
    ) -> RequestToken:
        """A token for one request (or, with `job_id`, for one job of it alone) whose only
        policy is `tenant-<tenant>`, living at most `ttl_seconds` (the request's remaining
        time) and at most grant_max_ttl.

        POST auth/token/create/<grant_role>.
        """
        if ttl_seconds < 1:
            raise Invalid(
                f"request {request_id} has no time left for a token", request_id=request_id
            )
        self.ensure_tenant(tenant)
        ttl = min(int(ttl_seconds), self.grant_max_ttl)
        now = datetime.now(UTC)
        meta = {"request_id": str(request_id), "tenant": tenant}
        name = f"request-{request_id}"
        if job_id is not None:
            meta["job_id"] = str(job_id)
            name += f"-job-{job_id}"
        with self._errors(f"mint a token for {name}", tenant=tenant, service=True):
            resp = self._service().auth.token.create(
                role_name=self.grant_role,
                policies=[policy_name(tenant)],
                meta=meta,
                display_name=name,
                no_default_policy=True,
                renewable=False,
                ttl=f"{ttl}s",
                explicit_max_ttl=f"{ttl}s",
            )
        auth = resp["auth"]
        return RequestToken(
            token=auth["client_token"],
            accessor=auth["accessor"],
            expires_at=now + timedelta(seconds=auth["lease_duration"]),
        )

    def read_s3_keys(self, token: str, tenant: str) -> dict[str, str]:
        """The tenant's S3 keys {access_key_id, secret_access_key}, read with the request token.

        GET <kv_mount>/data/tenants/<tenant>/s3 (a deleted version is a 404 there).
        """
        check_tenant(tenant)
        with self._errors(f"read the S3 keys of tenant {tenant}", tenant=tenant):
            resp = self._read(token, f"{self.kv_mount}/data/tenants/{tenant}/s3")
        data = resp["data"]["data"]
        return {k: str(data[k]) for k in ("access_key_id", "secret_access_key")}

    def sql_credentials(self, token: str, tenant: str, ttl_seconds: int) -> SqlCredentials:
        """A dynamic login reading only the tenant's schema, made with the request token, its
        lease shortened to `ttl_seconds` when the role's default is longer.

        GET <database_mount>/creds/tenant-<tenant>, then PUT sys/leases/renew (service token).
        """
        check_tenant(tenant)
        if ttl_seconds < 1:
            raise Invalid(f"no time left for SQL credentials of tenant {tenant}", tenant=tenant)
        now = datetime.now(UTC)
        with self._errors(f"create a SQL login for tenant {tenant}", tenant=tenant):
            resp = self._read(token, f"{self.database_mount}/creds/{policy_name(tenant)}")
        lease_id, duration = resp["lease_id"], int(resp["lease_duration"])
        if duration > ttl_seconds:
            try:
                with self._errors(f"shorten SQL lease {lease_id}", tenant=tenant, service=True):
                    renewed = self._service().sys.renew_lease(lease_id, increment=int(ttl_seconds))
                duration = int(renewed["lease_duration"])
            except Unavailable:
                # A login that outlives its request must not be handed out, nor left behind.
                with contextlib.suppress(Unavailable, NotFound):
                    self.revoke_lease(lease_id)
                raise
        data = resp["data"]
        return SqlCredentials(
            username=data["username"],
            password=data["password"],
            lease_id=lease_id,
            expires_at=now + timedelta(seconds=duration),
        )

    # -- ending -------------------------------------------------------------------------

    def revoke_token(self, accessor: str) -> None:
        """Revoke a request token and every lease it created (SQL logins are dropped).

        POST auth/token/revoke-accessor. The token is unusable at once; OpenBao revokes its
        leases right after, in the background. Revoking an unknown or revoked token is a no-op.
        """
        import hvac.exceptions as hx

        with self._errors("revoke a request token", service=True):
            try:
                self._service().auth.token.revoke_accessor(accessor)
            except hx.InvalidRequest as e:
                if "invalid accessor" not in str(e):
                    raise

    def revoke_lease(self, lease_id: str) -> None:
        """Revoke one lease now (the SQL login is dropped before this returns).

        PUT sys/leases/revoke. An unknown or already revoked lease is a no-op.
        """
        with self._errors(f"revoke lease {lease_id}", service=True):
            self._service().sys.revoke_lease(lease_id)

    def health(self) -> str | None:
        """None when OpenBao is up, initialised and unsealed; else what is wrong.

        GET sys/health (unauthenticated).
        """
        try:
            with self._errors("check its health"):
                resp = self._client(None).sys.read_health_status(
                    method="GET", standby_ok=True, sealed_code=200, uninit_code=200
                )
        except Unavailable as e:
            return e.message
        status = resp if isinstance(resp, dict) else resp.json()
        if not status.get("initialized", False):
            return f"OpenBao at {self.url} is not initialised"
        if status.get("sealed", True):
            return f"OpenBao at {self.url} is sealed; unseal it (`bao operator unseal`)"
        return None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
        if self._pool is not None:
            self._pool.close()
