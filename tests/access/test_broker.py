"""The broker end to end: the service (fake hub tokens), the real OpenBao, SeaweedFS and
PostgreSQL, and the notebook client `workbench.data` reading the bytes.

Each attack of the data-access issue has a test here: another tenant's dataset, a dataset
outside the request, someone else's request, an ended request, a revoked lease, the audit log
unwritable, the secret store sealed."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import hvac
import hvac.exceptions
import psycopg
import pytest
from sqlalchemy import select, text
from traitlets.config import Config

from tests.access.conftest import PG_URL, RunningBao, start_bao
from tests.conftest import Service, make_config
from tests.fixtures.seaweed import Seaweed, running_seaweed
from tests.mocking import token_for
from workbench import data
from workbench.access.models import Grant, RequestToken
from workbench.access.secrets import OpenBaoStore
from workbench.actor import Actor
from workbench.audit import Filters
from workbench.audit import query as q
from workbench.config import settings_for
from workbench.embedded.openbao import libpq_url
from workbench.errors import Conflict, Forbidden
from workbench.scopes import ROLE_SCOPES
from workbench.service.context import Workbench

BODY = {"datasets": ["calls", "accounts"], "purpose": "Churn model", "profile": "cpu-small"}


@dataclass
class DataStack:
    home: Path
    seaweed: Seaweed
    bao: RunningBao
    sql_database: str

    def config(self, **sections: dict[str, Any]) -> Config:
        """What a workbench needs to reach these stores, with `sections` added."""
        paths = self.bao.bao.paths
        cfg = make_config(
            OpenBaoStore={
                "url": self.bao.bao.addr,
                "token_file": str(paths.token_file),
                "s3_master_key_file": str(self.home / "storage-master.key"),
                "sql_database": self.sql_database,
            },
            S3ObjectStore={"endpoint_url": self.seaweed.endpoint},
            DataSettings={"sql_url": f"postgresql://127.0.0.1:5432/{self.sql_database}"},
        )
        cfg.merge(make_config(**sections))
        return cfg


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataStack]:
    """OpenBao and SeaweedFS on one HOME, so the S3 keys in OpenBao are the ones SeaweedFS
    enforces, as under `workbench up`."""
    home = tmp_path_factory.mktemp("data-home")
    db = f"wb_broker_{uuid.uuid4().hex[:8]}"
    with running_seaweed(home) as seaweed:
        seaweed.seed()
        bao = start_bao(
            home,
            store=OpenBaoStore(sql_database=db),
            postgres_url=PG_URL,
            sql_tenants=("acme", "globex"),
        )
        try:
            yield DataStack(home, seaweed, bao, db)
        finally:
            bao.root.sys.revoke_prefix("database/creds/")
            bao.stop()
            with psycopg.connect(libpq_url(PG_URL), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def wb(tmp_path: Path, stores: DataStack, db_url: str) -> Iterator[Workbench]:
    cfg = stores.config(ServiceSettings={"db_url": db_url})
    workbench = Workbench.open(settings_for(tmp_path / "home", cfg))
    yield workbench
    workbench.close()


def approved(service: Service, tenant: str = "acme", user: str = "alice", **kw: Any) -> int:
    with service.client(user) as c:
        rid = int(
            c.post("requests", json={**BODY, "tenant": tenant, "hours": 1, **kw}).json()["id"]
        )
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/approve", json={}).json()["state"] == "approved"
    return rid


Client = Callable[..., data.Client]


@pytest.fixture
def client(service: Service) -> Client:
    def make(request_id: int, user: str = "alice") -> data.Client:
        return data.Client(request_id, api_url=service.url + "api/v1/", token=token_for(user))

    return make


def events(service: Service, **filters: Any) -> list[dict[str, Any]]:
    with service.wb.engine.connect() as conn:
        return q.events(conn, Filters(**filters))


def test_alice_reads_acme_and_the_grant_is_on_record_first(
    service: Service, client: Client
) -> None:
    rid = approved(service)
    c = client(rid)
    assert c.datasets() == ["acme/calls", "acme/accounts"]
    calls = c.open("acme/calls")
    records = list(calls.records())
    assert records and all(r["tenant"] == "acme" for r in records)
    grant = events(service, action="grant.issue")[0]
    assert grant["actor"] == "alice" and grant["tenant"] == "acme" and grant["dataset"] == "calls"
    assert grant["purpose"] == "Churn model" and grant["request_id"] == rid
    reads = events(service, action="data.read")
    assert reads and reads[0]["detail"]["client_reported"] is True
    assert reads[0]["seq"] > grant["seq"]


def test_sql_dataset_reads_only_its_tenant(service: Service, client: Client) -> None:
    rid = approved(service)
    accounts = client(rid).open("accounts")
    rows = accounts.rows()  # type: ignore[union-attr]
    assert rows and {r["tenant"] for r in rows} == {"acme"}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        accounts.sql("SELECT * FROM tenant_globex.accounts")  # type: ignore[union-attr]


def test_another_tenants_dataset_is_refused_and_filed_under_it(
    service: Service, client: Client
) -> None:
    rid = approved(service)
    with pytest.raises(data.DataError, match="is for tenant 'acme', not 'globex'") as err:
        client(rid).open("globex/calls")
    assert "403" in str(err.value)
    refused = events(service, tenant="globex", outcome="refused")[0]
    assert refused["actor"] == "alice" and refused["request_id"] == rid
    assert refused["action"] == "grant.issue" and refused["dataset"] == "calls"


def test_a_dataset_outside_the_request(service: Service, client: Client) -> None:
    rid = approved(service, datasets=["calls"])
    with pytest.raises(data.DataError, match="covers calls of acme, not 'accounts'"):
        client(rid).open("acme/accounts")


def test_someone_elses_request(service: Service, client: Client) -> None:
    rid = approved(service)
    with pytest.raises(data.DataError, match="HTTP 404"):
        client(rid, "bob").open("acme/calls")


@pytest.mark.parametrize("end", ["revoke", "deny", "withdraw"])
def test_ended_requests_get_nothing(service: Service, client: Client, end: str) -> None:
    with service.client("alice") as alice:
        rid = alice.post("requests", json={**BODY, "tenant": "acme", "hours": 1}).json()["id"]
        if end == "revoke":
            with service.client("maria") as m:
                m.post(f"requests/{rid}/approve", json={})
            alice.post(f"requests/{rid}/revoke", json={})
        elif end == "deny":
            with service.client("maria") as m:
                m.post(f"requests/{rid}/deny", json={})
        else:
            alice.post(f"requests/{rid}/withdraw", json={})
    with pytest.raises(data.DataError, match="HTTP 409"):
        client(rid).open("acme/calls")


def test_revoking_the_request_revokes_its_sql_login(
    service: Service, client: Client, stores: DataStack
) -> None:
    rid = approved(service)
    grant = client(rid).grant("acme/accounts")
    loc, cred = grant["location"], grant["credentials"]
    dsn = dict(host=loc["host"], port=loc["port"], dbname=loc["database"])
    with psycopg.connect(**dsn, user=cred["username"], password=cred["password"]) as conn:
        assert conn.execute("SELECT count(*) FROM tenant_acme.accounts").fetchone()[0] > 0  # type: ignore[index]
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/revoke", json={}).json()["state"] == "revoked"
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(**dsn, user=cred["username"], password=cred["password"])
    revoked = events(service, action="token.revoke", request_id=rid)
    assert revoked and revoked[0]["tenant"] == "acme"


def test_expired_request_is_refused(service: Service, client: Client) -> None:
    service.wb.requests.policy.min_hours = 0.00001
    rid = approved(service, hours=0.002)  # about 7 s
    c = client(rid)
    c.open("acme/calls")
    expires = data._epoch(c.request()["expires_at"])
    import time

    time.sleep(max(0.0, expires - time.time()) + 0.5)
    c._grants.clear()  # no cached grant: ask again
    with pytest.raises(data.DataError, match="expired"):
        c.open("acme/calls")


def test_acme_keys_do_not_open_globex(service: Service, client: Client) -> None:
    rid = approved(service)
    grant = client(rid).grant("acme/calls")
    cred, loc = grant["credentials"], grant["location"]
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=loc["endpoint_url"],
        region_name=loc["region"],
        aws_access_key_id=cred["access_key_id"],
        aws_secret_access_key=cred["secret_access_key"],
    )
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.list_objects_v2(Bucket=loc["bucket"], Prefix="tenants/globex/")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.get_object(Bucket=loc["bucket"], Key="tenants/globex/accounts/accounts.csv")


def test_no_credential_when_the_audit_log_cannot_be_written(
    service: Service, client: Client
) -> None:
    rid = approved(service)
    with service.wb.engine.begin() as conn:  # the audit table refuses every write
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
    with pytest.raises(data.DataError, match="HTTP 503") as err:
        client(rid).open("acme/calls")
    assert "no credential was issued" in str(err.value)
    with service.wb.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_down"))
    with service.wb.sessions() as s:
        assert s.execute(text("SELECT count(*) FROM grants")).scalar() == 0


def test_sealed_secret_store_fails_closed(
    service: Service, client: Client, stores: DataStack
) -> None:
    rid = approved(service)
    root = stores.bao.root
    root.sys.seal()
    try:
        with pytest.raises(data.DataError, match="HTTP 503") as err:
            client(rid).open("acme/calls")
        assert "sealed" in str(err.value)
        failed = events(service, action="grant.issue", outcome="error")
        assert any("no credential was issued" in e["reason"] for e in failed)
    finally:
        stores.bao.bao.bootstrap()  # what `workbench up` does at start: unseal, configure
    assert list(client(rid).open("acme/calls").records())


def test_grants_api_refuses_bad_input(service: Service) -> None:
    with service.client("alice") as c:
        assert c.post("grants", json={"dataset": "acme/calls"}).status_code == 400
        r = c.post("grants", json={"request_id": 999, "dataset": "acme/calls"})
        assert r.status_code == 404
        assert r.json()["error"] == "you have no access request 999"
    with service.client("sam") as c:  # security reads logs, not data
        assert c.post("grants", json={"request_id": 1, "dataset": "acme/calls"}).status_code == 403
    assert os.environ.get("WORKBENCH_REQUEST_ID") is None


def test_forged_or_missing_token_gets_nothing(service: Service) -> None:
    rid = approved(service)
    body = {"request_id": rid, "dataset": "acme/calls"}
    with service.client() as anon:
        assert anon.post("grants", json=body).status_code == 401
        forged = anon.post("grants", json=body, headers={"Authorization": "token forged"})
        assert forged.status_code == 401
    assert events(service, action="grant.issue", outcome="ok") == []


# -- per-job grants ------------------------------------------------------------------------------

ALICE = Actor("alice", frozenset(ROLE_SCOPES["researcher"]), "127.0.0.1")


def sql_login(grant: dict[str, Any]) -> psycopg.Connection[Any]:
    loc, cred = grant["location"], grant["credentials"]
    return psycopg.connect(
        host=loc["host"],
        port=loc["port"],
        dbname=loc["database"],
        user=cred["username"],
        password=cred["password"],
        connect_timeout=5,
    )


def assert_login_gone(grant: dict[str, Any]) -> None:
    """The login is dropped when its token is revoked (OpenBao revokes leases right after)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            sql_login(grant).close()
        except psycopg.OperationalError as e:
            assert "does not exist" in str(e) or "authentication failed" in str(e)
            return
        assert time.monotonic() < deadline, f"{grant['credentials']['username']} still logs in"
        time.sleep(0.2)


def tokens_of(service: Service, rid: int) -> list[RequestToken]:
    with service.wb.sessions() as s:
        return list(s.scalars(select(RequestToken).where(RequestToken.request_id == rid)))


def newest_sql_lease(stores: DataStack) -> dict[str, Any]:
    """The newest lease of a tenant-acme SQL login (read as root)."""
    root, prefix = stores.bao.root, "database/creds/tenant-acme/"
    keys = root.sys.list_leases(prefix)["data"]["keys"]
    leases = [root.sys.read_lease(prefix + key)["data"] for key in keys]
    return max(leases, key=lambda lease: str(lease["issue_time"]))


def test_a_sql_login_lasts_its_role_s_lease_within_the_request(
    service: Service, stores: DataStack
) -> None:
    """A request with hours left keeps the role's default lease (one OpenBao call, no
    renewal); a request ending sooner shortens it to the request's end."""
    broker = service.wb.broker
    broker.grant(ALICE, approved(service, hours=8), "acme/accounts")
    lease = newest_sql_lease(stores)
    assert lease["last_renewal"] is None
    assert 3500 < lease["ttl"] <= 3600 + 60
    broker.grant(ALICE, approved(service, hours=0.25), "acme/accounts")
    lease = newest_sql_lease(stores)
    assert lease["last_renewal"] is not None
    assert 0 < lease["ttl"] <= 15 * 60


def test_a_jobs_grant_uses_a_token_of_its_own(service: Service, stores: DataStack) -> None:
    broker = service.wb.broker
    rid = approved(service)
    server = broker.grant(ALICE, rid, "acme/accounts")
    job = broker.grant(ALICE, rid, "acme/accounts", job_id=7)
    assert job["job_id"] == 7 and job["tenant"] == "acme"
    tokens = {t.job_id: t for t in tokens_of(service, rid)}
    assert set(tokens) == {None, 7}
    assert tokens[None].accessor != tokens[7].accessor
    looked_up = stores.bao.root.auth.token.lookup_accessor(tokens[7].accessor)["data"]
    assert looked_up["policies"] == ["tenant-acme"]
    assert looked_up["meta"]["job_id"] == "7" and looked_up["meta"]["request_id"] == str(rid)
    with service.wb.sessions() as s:
        row = s.get(Grant, job["id"])
        assert row is not None and row.job_id == 7 and row.resource == "job:7"
    event = events(service, action="grant.issue", request_id=rid)[0]
    assert event["resource"] == "job:7" and event["detail"]["job_id"] == 7
    for grant in (server, job):
        with sql_login(grant) as conn:
            assert conn.execute("SELECT count(*) FROM tenant_acme.accounts").fetchone()[0] > 0  # type: ignore[index]
        with sql_login(grant) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM tenant_globex.accounts")
    # a second grant of the same job reuses the job's token
    broker.grant(ALICE, rid, "acme/calls", job_id=7)
    assert len(tokens_of(service, rid)) == 2


def test_revoking_a_job_ends_its_credentials_and_nothing_else(
    service: Service, stores: DataStack
) -> None:
    broker = service.wb.broker
    rid = approved(service)
    server = broker.grant(ALICE, rid, "acme/accounts")
    job = broker.grant(ALICE, rid, "acme/accounts", job_id=8)
    job_token = broker._tokens[(rid, 8)].token
    broker.revoke_job(8)
    assert_login_gone(job)
    with pytest.raises(hvac.exceptions.Forbidden):  # the job's token is unusable
        hvac_client(stores, job_token).auth.token.lookup_self()
    with sql_login(server) as conn:  # the server's grant keeps working
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert "access_key_id" in broker.grant(ALICE, rid, "acme/calls")["credentials"]
    with pytest.raises(Conflict, match="job 8 has ended"):
        broker.grant(ALICE, rid, "acme/calls", job_id=8)
    revoked = events(service, action="token.revoke", request_id=rid)
    assert [(e["resource"], e["detail"]["reason"]) for e in revoked] == [("job:8", "job ended")]
    broker.revoke_job(8)  # idempotent: nothing more to revoke, nothing more recorded
    assert len(events(service, action="token.revoke", request_id=rid)) == 1
    revoked_rows = [t for t in tokens_of(service, rid) if t.revoked_at is not None]
    assert [t.job_id for t in revoked_rows] == [8]


def test_a_job_token_stays_with_its_request(service: Service) -> None:
    broker = service.wb.broker
    first, second = approved(service), approved(service)
    broker.grant(ALICE, first, "acme/calls", job_id=9)
    broker._tokens.clear()  # as after a restart: the database decides
    with pytest.raises(Forbidden, match="not a job of request"):
        broker.grant(ALICE, second, "acme/calls", job_id=9)


def test_ending_the_request_revokes_its_jobs_tokens(service: Service, stores: DataStack) -> None:
    broker = service.wb.broker
    rid = approved(service)
    job = broker.grant(ALICE, rid, "acme/accounts", job_id=10)
    server = broker.grant(ALICE, rid, "acme/accounts")
    with service.client("maria") as m:
        assert m.post(f"requests/{rid}/revoke", json={}).json()["state"] == "revoked"
    assert_login_gone(job)
    assert_login_gone(server)
    assert all(t.revoked_at is not None for t in tokens_of(service, rid))
    revoked = events(service, action="token.revoke", request_id=rid)
    assert sorted((e["resource"] or "", e["detail"]["reason"]) for e in revoked) == [
        ("", "request ended"),
        ("job:10", "request ended"),
    ]


def hvac_client(stores: DataStack, token: str) -> hvac.Client:
    client = hvac.Client(url=stores.bao.bao.addr, token=token, timeout=10)
    client.session.trust_env = False
    return client
