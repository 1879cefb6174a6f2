"""The privileges an erasure needs, which the service's own credentials deliberately lack:
deleting a tenant's objects, its storage identity, its secrets and its SQL schema.

Erasure is an operator's act, run with the operator's credentials: for the embedded stack
under HOME, the ones `workbench up` keeps there (SeaweedFS's admin identity, OpenBao's root
token, the tenant PostgreSQL superuser URL of the configuration); in production, an S3
identity, an OpenBao token and a PostgreSQL URL given in the environment.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.access.objects import ENDPOINT_ENV, S3ObjectStore
from workbench.access.secrets import OpenBaoStore
from workbench.config import Settings
from workbench.embedded.openbao import BaoPaths, EmbeddedOpenBao

S3_KEY_ENV = ("WORKBENCH_ERASE_S3_ACCESS_KEY_ID", "WORKBENCH_ERASE_S3_SECRET_ACCESS_KEY")
BAO_TOKEN_ENV = "WORKBENCH_ERASE_OPENBAO_TOKEN"
PG_URL_ENV = "WORKBENCH_ERASE_PG_URL"


@dataclass
class Operator:
    """What erasure acts with. `bao` None: no secret store to clean; `pg_url` empty: no SQL."""

    s3: Any  # a boto3 S3 client that may list and delete in both buckets
    data_bucket: str
    artifacts_bucket: str
    bao: Any  # an hvac client with a token that may delete tenant policies, roles and KV
    kv_mount: str = "kv"
    database_mount: str = "database"
    pg_url: str = ""  # a PostgreSQL URL (libpq) that may drop tenant schemas and logins
    sql_database: str = "workbench_data"
    # a boto3 IAM client that may delete the tenant's storage identity (`tenant-<name>`);
    # None leaves identities alone (a store whose identities are managed elsewhere)
    iam: Any = None


def stack_env(home: Path) -> dict[str, str]:
    """What `workbench up` gives its service to find the embedded stack under HOME (the S3
    endpoint, OpenBao's address and the service's token), read from HOME's state files; so a
    command run beside the stack reaches the same servers. Empty where HOME has no stack."""
    env: dict[str, str] = {}
    ports = home / "seaweedfs" / "ports.json"
    if ports.exists():
        env[ENDPOINT_ENV] = f"http://127.0.0.1:{json.loads(ports.read_text())['s3']}"
    paths = BaoPaths(home)
    if paths.config_file.exists():
        found = re.search(r'api_addr\s*=\s*"([^"]+)"', paths.config_file.read_text())
        if found:
            env["WORKBENCH_OPENBAO_ADDR"] = found.group(1)
        env["WORKBENCH_OPENBAO_TOKEN_FILE"] = str(paths.token_file)
        env["WORKBENCH_S3_MASTER_KEY_FILE"] = str(home / "storage-master.key")
    return env


def operator_for(settings: Settings) -> Operator:
    """The operator's credentials for the stack of `settings` (see the module docstring)."""
    import hvac

    home, config = settings.home, settings.config
    store = S3ObjectStore(config=config)
    admin = home / "seaweedfs" / "admin.json"
    if os.environ.get(S3_KEY_ENV[0]):
        keys = (os.environ[S3_KEY_ENV[0]], os.environ.get(S3_KEY_ENV[1], ""))
    elif admin.exists():
        data = json.loads(admin.read_text())
        keys = (data["access_key"], data["secret_key"])
    else:
        raise SystemExit(
            f"error: no S3 credentials to delete objects with: set {' and '.join(S3_KEY_ENV)}"
        )
    bao_store = OpenBaoStore(config=config)
    token = os.environ.get(BAO_TOKEN_ENV, "")
    init = BaoPaths(home).init_file
    if not token and init.exists():
        token = json.loads(init.read_text())["root_token"]
    bao = None
    if token:
        bao = hvac.Client(url=bao_store.url, token=token, timeout=bao_store.timeout)
        bao.session.trust_env = False
    return Operator(
        s3=store.client(*keys, max_pool_connections=16),
        data_bucket=store.data_bucket,
        artifacts_bucket=store.artifacts_bucket,
        bao=bao,
        kv_mount=bao_store.kv_mount,
        database_mount=bao_store.database_mount,
        pg_url=os.environ.get(PG_URL_ENV) or EmbeddedOpenBao(config=config).postgres_url,
        sql_database=bao_store.sql_database,
        iam=store.iam_client(*keys),
    )
