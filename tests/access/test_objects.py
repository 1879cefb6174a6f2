"""The object store: layout, the generated SeaweedFS identities, and tenant isolation enforced by
a real `weed mini` (the `seaweed` fixture of tests.fixtures.seaweed)."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.seaweed import Seaweed, running_seaweed, tenants_catalog
from workbench.access.keys import master_secret, tenant_s3_keys
from workbench.access.objects import ENDPOINT_ENV, S3ObjectStore, dataset_prefix
from workbench.config import Catalog, settings_for
from workbench.embedded import demo_data
from workbench.embedded.seaweed import (
    ADMIN_ACTIONS,
    GRPC_OFFSET,
    Ports,
    admin_keys,
    choose_ports,
    identity_config,
    prepare,
    tenant_actions,
    write_identity_config,
)
from workbench.errors import ConfigError, Invalid

DATA, ARTIFACTS = "workbench-data", "workbench-artifacts"


def refused(call: Callable[[], Any], code: str = "AccessDenied") -> None:
    """`call` fails with the S3 error `code` (HEAD requests carry only the status, 403)."""
    with pytest.raises(ClientError) as info:
        call()
    got = info.value.response["Error"]["Code"]
    assert got in (code, "403"), f"expected {code}, got {got}: {info.value}"


def keys_of(tenant: str) -> tuple[str, str]:
    return f"AK-{tenant}", f"SK-{tenant}"


# -- layout (pure) ---------------------------------------------------------------------------


def test_location_layout() -> None:
    store = S3ObjectStore(endpoint_url="http://s3.example:8333", region="eu-west-1")
    assert store.location("acme", "calls") == {
        "endpoint_url": "http://s3.example:8333",
        "bucket": DATA,
        "prefix": "tenants/acme/calls/",
        "region": "eu-west-1",
        "addressing_style": "path",
    }
    assert store.artifacts_location("acme")["prefix"] == "tenants/acme/"
    assert store.artifacts_location("acme")["bucket"] == ARTIFACTS
    aws = S3ObjectStore(endpoint_url="", data_bucket="corp-data")
    assert aws.location("acme", "calls")["endpoint_url"] is None  # boto3's default (AWS)
    assert aws.location("acme", "calls")["bucket"] == "corp-data"


@pytest.mark.parametrize(
    "tenant, dataset",
    [("acme/../globex", "calls"), ("acme", "../globex"), ("acme*", "calls"), ("", "calls"),
     ("acme", ""), (".hidden", "calls"), ("acme", "calls/x"), ("ac me", "calls")],
)  # fmt: skip
def test_bad_names_are_refused(tenant: str, dataset: str) -> None:
    with pytest.raises(Invalid):
        dataset_prefix(tenant, dataset)


def test_endpoint_defaults_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, "http://127.0.0.1:9999")
    assert S3ObjectStore().endpoint_url == "http://127.0.0.1:9999"
    assert S3ObjectStore(endpoint_url="http://other").endpoint_url == "http://other"


def test_object_store_options_are_checked_config(tmp_path: Path) -> None:
    (tmp_path / "workbench_config.py").write_text("c.S3ObjectStore.data_bucket = 'corp-data'\n")
    settings_for(tmp_path)  # known option: accepted
    (tmp_path / "workbench_config.py").write_text("c.S3ObjectStore.data_buckett = 'x'\n")
    with pytest.raises(ConfigError, match="data_buckett"):
        settings_for(tmp_path)


# -- the generated identities (pure) ---------------------------------------------------------


def test_identity_config() -> None:
    doc = identity_config(["acme", "globex"], keys_of, ("ADMIN", "adminsecret"), DATA, ARTIFACTS)
    by_name = {i["name"]: i for i in doc["identities"]}
    assert set(by_name) == {"workbench-admin", "tenant-acme", "tenant-globex"}
    assert by_name["workbench-admin"]["actions"] == list(ADMIN_ACTIONS)
    assert by_name["tenant-acme"]["credentials"] == [
        {"accessKey": "AK-acme", "secretKey": "SK-acme"}
    ]
    assert by_name["tenant-acme"]["actions"] == [
        "Read:workbench-data/tenants/acme/*",
        "List:workbench-data/tenants/acme/*",
        "Read:workbench-artifacts/tenants/acme/*",
        "Write:workbench-artifacts/tenants/acme/*",
        "List:workbench-artifacts/tenants/acme/*",
    ]
    # No tenant action reaches beyond its own prefix, and every prefix ends in a slash.
    for name, identity in by_name.items():
        if name != "workbench-admin":
            tenant = name.removeprefix("tenant-")
            for action in identity["actions"]:
                assert action.split(":", 1)[1].endswith(f"/tenants/{tenant}/*")
                assert not action.startswith(("Write:workbench-data", "Admin"))


@pytest.mark.parametrize("tenant", ["acme/x", "acme*", "", "..", "a b"])
def test_identity_config_refuses_unsafe_tenant_names(tenant: str) -> None:
    with pytest.raises(ConfigError, match="tenant"):
        identity_config([tenant], keys_of, ("A", "S"), DATA, ARTIFACTS)


def test_identity_config_refuses_shared_keys() -> None:
    with pytest.raises(ConfigError, match="share"):
        identity_config(["acme", "globex"], lambda t: ("SAME", t), ("A", "S"), DATA, ARTIFACTS)


def test_identity_config_scales_to_10000_tenants(tmp_path: Path) -> None:
    master = master_secret(tmp_path)
    tenants = [f"tenant{i:05d}" for i in range(10_000)]
    started = time.perf_counter()
    doc = identity_config(tenants, lambda t: tenant_s3_keys(master, t), ("A", "S"), DATA, ARTIFACTS)
    text = json.dumps(doc)
    elapsed = time.perf_counter() - started
    assert len(doc["identities"]) == 10_001
    assert elapsed < 5, f"generating 10,000 identities took {elapsed:.2f} s"
    assert len(text) < 10_000 * 600


def test_an_erased_tenant_gets_no_identity_at_the_next_start(tmp_path: Path) -> None:
    from workbench import dbsetup
    from workbench.db import make_engine, utcnow
    from workbench.erasure.models import TenantErasure

    settings = settings_for(tmp_path)
    catalog, store = settings.catalog, S3ObjectStore()

    def names() -> set[str]:
        doc = json.loads(write_identity_config(tmp_path, catalog, store).tenants.read_text())
        return {i["name"] for i in doc["identities"]}

    assert {"tenant-acme", "tenant-globex"} <= names()  # no database yet: nobody erased
    engine = make_engine(settings.db_url)
    dbsetup.upgrade(engine)
    assert {"tenant-acme", "tenant-globex"} <= names()
    with engine.begin() as conn:
        conn.execute(
            TenantErasure.__table__.insert().values(
                tenant="acme", state="erasing", started_by="admin", started_at=utcnow(), runs=1
            )
        )
    engine.dispose()
    assert "tenant-acme" not in names() and "tenant-globex" in names()


def test_tenant_actions_match_the_store_layout() -> None:
    store = S3ObjectStore()
    loc = store.location("acme", "calls")
    read = tenant_actions("acme", store.data_bucket, store.artifacts_bucket)[0]
    assert f"{loc['bucket']}/{loc['prefix']}".startswith(read.removeprefix("Read:").rstrip("*"))


# -- ports and the child spec (pure, or nearly) ----------------------------------------------


def test_choose_ports_pairs_and_reuse() -> None:
    ports = choose_ports()
    assert len(set(ports.all())) == 11
    assert all(0 < p + GRPC_OFFSET <= 65535 for p in ports.all()[:5])
    assert choose_ports(ports) == ports  # still free: the endpoint stays put across restarts
    assert choose_ports(ports, exclude=[ports.s3]) != ports
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.filer + GRPC_OFFSET))
        taken.listen()
        assert choose_ports(ports) != ports


def test_prepare_writes_private_files_and_strips_aws_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # weed mini turns AWS_* keys in its environment into an identity with every right.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    embedded = prepare(tmp_path, tenants_catalog(), S3ObjectStore())
    assert not any(k.startswith("AWS_") for k in embedded.spec.env)
    for name in ("s3.json", "tenants.json", "admin.json", "ports.json"):
        assert (tmp_path / "seaweedfs" / name).stat().st_mode & 0o077 == 0
    assert admin_keys(tmp_path) == admin_keys(tmp_path)  # made once
    # weed's static identity file holds the admin alone; the tenants go to weed's IAM
    static = json.loads((tmp_path / "seaweedfs" / "s3.json").read_text())["identities"]
    assert [i["name"] for i in static] == ["workbench-admin"]
    tenants = json.loads((tmp_path / "seaweedfs" / "tenants.json").read_text())["identities"]
    assert {i["name"] for i in tenants} == {"tenant-acme", "tenant-globex", "tenant-acme-evil"}
    argv = " ".join(embedded.spec.argv)
    assert "-s3.iam.readOnly=false" in argv and "-s3=true" in argv
    for port in embedded.ports.all():
        assert f"={port}" in argv
    assert "-disableHttp=true" in argv and "-s3.port.iceberg=0" in argv
    assert embedded.spec.log_file == tmp_path / "logs" / "seaweedfs.log"
    assert prepare(tmp_path, tenants_catalog(), S3ObjectStore()).ports == embedded.ports


def test_prepare_refuses_a_catalog_with_an_unsafe_tenant(tmp_path: Path) -> None:
    catalog = Catalog(tenants={"acme*": {"managers": ["m"]}}).build()
    with pytest.raises(ConfigError):
        prepare(tmp_path, catalog, S3ObjectStore())


# -- demo data (pure) ------------------------------------------------------------------------


def test_demo_records_carry_their_tenant() -> None:
    for tenant in ("acme", "globex"):
        objects = demo_data.demo_objects(tenant, tenant.title())
        assert objects == demo_data.demo_objects(tenant, tenant.title())  # deterministic
        calls = [k for k in objects if k.startswith(f"tenants/{tenant}/calls/")]
        assert len(calls) == 3
        for key in calls:
            for line in objects[key].decode().splitlines():
                record = json.loads(line)
                assert record["tenant"] == tenant
                assert record["call_id"].startswith(f"{tenant}-")
                assert record["transcript"] and record["duration_seconds"] > 0
        table = objects[f"tenants/{tenant}/accounts/accounts.csv"].decode()
        rows = list(csv.DictReader(io.StringIO(table)))
        assert rows and all(r["tenant"] == tenant for r in rows)


# -- against a real SeaweedFS ----------------------------------------------------------------


def test_listens_only_on_the_ports_it_was_given(seaweed: Seaweed) -> None:
    inodes = {
        os.readlink(f"/proc/{seaweed.process.pid}/fd/{fd}")[8:-1]
        for fd in os.listdir(f"/proc/{seaweed.process.pid}/fd")
        if os.readlink(f"/proc/{seaweed.process.pid}/fd/{fd}").startswith("socket:")
    }
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            f = row.split()
            if f[3] == "0A" and f[9] in inodes:  # LISTEN, one of weed's sockets
                assert f[1].split(":")[0] in ("0100007F", "00000000000000000000000001000000")
                listening.add(int(f[1].split(":")[1], 16))
    assert listening <= set(seaweed.embedded.ports.all())
    assert seaweed.embedded.ports.s3 in listening


def test_health(seaweed: Seaweed) -> None:
    assert seaweed.store.health() is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = S3ObjectStore(endpoint_url=f"http://127.0.0.1:{closed}", health_timeout=1)
    assert "does not answer" in str(down.health())


def test_tenant_reads_its_own_data(seaweed: Seaweed) -> None:
    acme, loc = seaweed.client("acme"), seaweed.store.location("acme", "calls")
    listed = acme.list_objects_v2(Bucket=loc["bucket"], Prefix=loc["prefix"])["Contents"]
    assert len(listed) == 3
    body = acme.get_object(Bucket=loc["bucket"], Key=listed[0]["Key"])["Body"].read()
    assert {json.loads(line)["tenant"] for line in body.decode().splitlines()} == {"acme"}
    table = acme.get_object(Bucket=DATA, Key="tenants/acme/accounts/accounts.csv")
    assert table["Body"].read().startswith(b"tenant,account_id,")
    whole = acme.list_objects_v2(Bucket=DATA, Prefix="tenants/acme/")
    assert {o["Key"].split("/")[2] for o in whole["Contents"]} == {"calls", "accounts"}


def test_tenant_cannot_read_another_tenants_data(seaweed: Seaweed) -> None:
    acme = seaweed.client("acme")
    key = "tenants/globex/calls/calls-2026-03-02.jsonl"
    refused(lambda: acme.get_object(Bucket=DATA, Key=key))
    refused(lambda: acme.head_object(Bucket=DATA, Key=key))
    refused(lambda: acme.get_object(Bucket=DATA, Key="tenants/globex/accounts/accounts.csv"))
    # The request signs the key as sent, so a traversal never reaches globex either.
    with pytest.raises(ClientError):
        acme.get_object(Bucket=DATA, Key="tenants/acme/../globex/calls/calls-2026-03-02.jsonl")


def test_a_tenant_whose_name_extends_anothers_is_separate(seaweed: Seaweed) -> None:
    """`tenants/acme*` would match `tenants/acme-evil/`; the identities end the prefix in /."""
    admin = seaweed.admin()
    admin.put_object(Bucket=DATA, Key="tenants/acme-evil/calls/x.jsonl", Body=b'{"t":"evil"}')
    admin.put_object(Bucket=DATA, Key="tenants/acme", Body=b"not under the prefix")
    acme, evil = seaweed.client("acme"), seaweed.client("acme-evil")
    refused(lambda: acme.get_object(Bucket=DATA, Key="tenants/acme-evil/calls/x.jsonl"))
    refused(lambda: acme.get_object(Bucket=DATA, Key="tenants/acme"))
    refused(lambda: acme.list_objects_v2(Bucket=DATA, Prefix="tenants/acme-evil/"))
    refused(lambda: evil.get_object(Bucket=DATA, Key="tenants/acme/accounts/accounts.csv"))
    refused(lambda: evil.list_objects_v2(Bucket=DATA, Prefix="tenants/acme/"))
    assert evil.get_object(Bucket=DATA, Key="tenants/acme-evil/calls/x.jsonl")["Body"].read()


@pytest.mark.parametrize(
    "prefix", ["tenants/globex/", "tenants/globex", "tenants/acme", "tenants/", "t", ""]
)
def test_tenant_cannot_list_outside_its_prefix(seaweed: Seaweed, prefix: str) -> None:
    acme = seaweed.client("acme")
    refused(lambda: acme.list_objects_v2(Bucket=DATA, Prefix=prefix))
    refused(lambda: acme.list_objects(Bucket=DATA, Prefix=prefix))
    refused(lambda: acme.list_objects_v2(Bucket=DATA, Prefix=prefix, Delimiter="/"))


def test_tenant_sees_no_buckets_and_cannot_change_them(seaweed: Seaweed) -> None:
    acme = seaweed.client("acme")
    assert acme.list_buckets()["Buckets"] == []
    refused(lambda: acme.create_bucket(Bucket="acme-own-bucket"))
    refused(lambda: acme.delete_bucket(Bucket=ARTIFACTS))
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
    policy += '"Action":"s3:*","Resource":"*"}]}'
    refused(lambda: acme.put_bucket_policy(Bucket=DATA, Policy=policy))


def test_tenant_cannot_write_the_data_bucket(seaweed: Seaweed) -> None:
    acme = seaweed.client("acme")
    refused(lambda: acme.put_object(Bucket=DATA, Key="tenants/acme/calls/new.jsonl", Body=b"x"))
    refused(lambda: acme.delete_object(Bucket=DATA, Key="tenants/acme/accounts/accounts.csv"))
    refused(lambda: acme.create_multipart_upload(Bucket=DATA, Key="tenants/acme/calls/big"))
    assert acme.head_object(Bucket=DATA, Key="tenants/acme/accounts/accounts.csv")


def test_tenant_writes_only_its_own_artifacts(seaweed: Seaweed) -> None:
    acme = seaweed.client("acme")
    loc = seaweed.store.artifacts_location("acme")
    key = f"{loc['prefix']}models/churn/model.bin"
    acme.put_object(Bucket=loc["bucket"], Key=key, Body=b"weights")
    assert acme.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read() == b"weights"
    assert acme.list_objects_v2(Bucket=ARTIFACTS, Prefix=loc["prefix"])["KeyCount"] >= 1
    for other in ("tenants/globex/models/m.bin", "tenants/acme-evil/m.bin", "tenants/acmex"):
        refused(partial(acme.put_object, Bucket=ARTIFACTS, Key=other, Body=b"x"))
    refused(lambda: acme.create_multipart_upload(Bucket=ARTIFACTS, Key="tenants/globex/big"))
    # Copying globex's data into acme's own prefix needs Read on globex's: refused.
    source = {"Bucket": DATA, "Key": "tenants/globex/accounts/accounts.csv"}
    refused(lambda: acme.copy_object(Bucket=ARTIFACTS, Key=f"{loc['prefix']}s", CopySource=source))
    seaweed.admin().put_object(Bucket=ARTIFACTS, Key="tenants/globex/m.bin", Body=b"globex")
    refused(lambda: acme.get_object(Bucket=ARTIFACTS, Key="tenants/globex/m.bin"))
    refused(lambda: acme.delete_object(Bucket=ARTIFACTS, Key="tenants/globex/m.bin"))


def test_wrong_or_no_credentials_are_refused(seaweed: Seaweed) -> None:
    key = "tenants/acme/accounts/accounts.csv"
    access_key, _ = seaweed.keys("acme")
    forged = seaweed.store.client(access_key, "0" * 40)
    refused(lambda: forged.get_object(Bucket=DATA, Key=key), "SignatureDoesNotMatch")
    unknown = seaweed.store.client("WBNOSUCHKEY", "0" * 40)
    refused(lambda: unknown.get_object(Bucket=DATA, Key=key), "InvalidAccessKeyId")
    anonymous = seaweed.store.client(None, None)
    refused(lambda: anonymous.get_object(Bucket=DATA, Key=key))
    refused(lambda: anonymous.list_objects_v2(Bucket=DATA, Prefix="tenants/acme/"))


def test_filer_http_is_closed(seaweed: Seaweed) -> None:
    """S3 is the only HTTP path to the objects: the filer's own HTTP API would ignore the
    identities."""
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{seaweed.embedded.ports.filer}/buckets/{DATA}/tenants/globex/"
    with pytest.raises((urllib.error.URLError, OSError)):
        urllib.request.urlopen(url + "accounts/accounts.csv", timeout=5).read()


def test_seeding_is_idempotent(seaweed: Seaweed) -> None:
    again = seaweed.seed()
    assert again.buckets_created == [] and again.objects_written == []
    admin, key = seaweed.admin(), "tenants/globex/accounts/accounts.csv"
    admin.delete_object(Bucket=DATA, Key=key)
    assert seaweed.seed().objects_written == [key]
    body = admin.get_object(Bucket=DATA, Key=key)["Body"].read()
    assert body == demo_data.demo_objects("globex", "Globex Corporation")[key]
    assert seaweed.seed().objects_written == []


def test_restart_keeps_data_and_endpoint(tmp_path: Path) -> None:
    with running_seaweed(tmp_path) as first:
        first.seed()
        first.client("acme").put_object(Bucket=ARTIFACTS, Key="tenants/acme/m.bin", Body=b"m")
        endpoint = first.endpoint
    with running_seaweed(tmp_path) as second:
        assert second.endpoint == endpoint
        assert second.seed().objects_written == []
        acme = second.client("acme")
        assert acme.get_object(Bucket=ARTIFACTS, Key="tenants/acme/m.bin")["Body"].read() == b"m"
        csv_key = "tenants/acme/accounts/accounts.csv"
        body = acme.get_object(Bucket=DATA, Key=csv_key)["Body"].read()
        assert body == demo_data.demo_objects("acme", "Acme Corp")[csv_key]


def mark_erased(home: Path, tenant: str) -> None:
    """Record `tenant` as erased in HOME's service database, as `workbench tenant erase` does."""
    from workbench import dbsetup
    from workbench.db import make_engine, utcnow
    from workbench.erasure.models import TenantErasure

    engine = make_engine(settings_for(home).db_url)
    dbsetup.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            TenantErasure.__table__.insert().values(
                tenant=tenant, state="erased", started_by="admin", started_at=utcnow(), runs=1
            )
        )
    engine.dispose()


def test_an_erased_demo_tenant_is_not_seeded_again_at_the_next_start(tmp_path: Path) -> None:
    """The start's seeding (`on_ready`) writes globex's demo data again, never acme's once
    acme is erased, and acme's old keys are refused."""
    mark_erased(tmp_path, "acme")
    with running_seaweed(tmp_path) as server:
        assert server.embedded.spec.on_ready is not None
        server.embedded.spec.on_ready()
        admin = server.admin()
        listed = admin.list_objects_v2(Bucket=DATA, Prefix="tenants/")
        tenants = {obj["Key"].split("/")[1] for obj in listed.get("Contents", [])}
        assert tenants == {"globex"}
        acme = server.client("acme")
        refused(lambda: acme.list_objects_v2(Bucket=DATA, Prefix="tenants/"), "InvalidAccessKeyId")


def test_deleting_a_tenants_identity_stops_its_keys_at_once(tmp_path: Path) -> None:
    """What an erasure does to the tenant's storage identity: through weed's IAM API, which
    only the admin identity may use, not another tenant; acme's keys are refused at once and
    stay refused after a restart, globex's keep working."""
    key = "tenants/acme/accounts/accounts.csv"
    with running_seaweed(tmp_path) as server:
        server.seed()
        acme, globex = server.client("acme"), server.client("globex")
        assert acme.get_object(Bucket=DATA, Key=key)["Body"].read()
        as_globex = server.store.iam_client(*server.keys("globex"))
        for attack in (
            lambda: as_globex.delete_user(UserName="tenant-acme"),
            lambda: as_globex.list_users(),
            lambda: as_globex.create_user(UserName="globex-admin"),
        ):
            with pytest.raises(ClientError):
                attack()
        assert acme.get_object(Bucket=DATA, Key=key)["Body"].read()

        mark_erased(tmp_path, "acme")  # an erasure marks the tenant first
        admin = server.admin_iam()
        admin.delete_user(UserName="tenant-acme")
        refused(lambda: acme.get_object(Bucket=DATA, Key=key), "InvalidAccessKeyId")
        refused(
            lambda: acme.list_objects_v2(Bucket=DATA, Prefix="tenants/acme/"), "InvalidAccessKeyId"
        )
        assert globex.list_objects_v2(Bucket=DATA, Prefix="tenants/globex/")["KeyCount"] > 0
        with pytest.raises(ClientError) as gone:
            admin.delete_user(UserName="tenant-acme")
        assert gone.value.response["Error"]["Code"] == "NoSuchEntity"
    with running_seaweed(tmp_path) as again:  # the start imports the identities without acme
        refused(lambda: again.client("acme").get_object(Bucket=DATA, Key=key), "InvalidAccessKeyId")
        assert again.client("globex").list_objects_v2(Bucket=DATA, Prefix="tenants/globex/")
        assert not again.import_identities()  # nothing changed since the start's import


def test_an_erased_tenant_gets_no_sql_schema_at_the_next_start(tmp_path: Path) -> None:
    from workbench.embedded import openbao

    assert "acme" in openbao.prepare(tmp_path).sql_tenants
    mark_erased(tmp_path, "acme")
    assert openbao.prepare(tmp_path).sql_tenants == ("globex",)


def test_ten_thousand_tenants(tmp_path: Path) -> None:
    """Weed starts with 10,000 identities, and the last tenant's key works at once."""
    tenants = {f"t{i:05d}": {"managers": ["m"]} for i in range(10_000)}
    catalog = Catalog(tenants=tenants).build()
    with running_seaweed(tmp_path, catalog) as server:
        store = server.store
        admin = server.admin()
        demo_data.ensure_buckets(admin, [DATA], store.region)
        admin.put_object(Bucket=DATA, Key="tenants/t09999/calls/x", Body=b"x")
        last = server.client("t09999")
        assert last.get_object(Bucket=DATA, Key="tenants/t09999/calls/x")["Body"].read() == b"x"
        first = server.client("t00000")
        refused(lambda: first.get_object(Bucket=DATA, Key="tenants/t09999/calls/x"))


def test_ports_dataclass_roundtrip() -> None:
    ports = Ports(1, 2, 3, 4, 5, 6)
    assert ports.all() == [1, 2, 3, 4, 5, 6] + [p + GRPC_OFFSET for p in (1, 2, 3, 4, 5)]
