"""The secret store against a real OpenBao (tests/access/conftest.py) and real PostgreSQL.

Invariant 2 from the credential's side: a request token for acme reads acme's secrets and gets
403 on globex's, whatever the caller asks for; its SQL login reads acme's schema only; ending
the token ends the login. Plus the store's failure modes (sealed, down) and the embedded
server's life cycle (first start, restart, audit device).
"""

from __future__ import annotations

import os
import stat
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import psycopg
import pytest
from traitlets.config import Config

from tests.access.conftest import RunningBao, start_bao
from workbench.access.keys import master_secret, tenant_s3_keys
from workbench.access.secrets import (
    OpenBaoStore,
    SecretStore,
    check_tenant,
    render_tenant_policy,
)
from workbench.config import check_config
from workbench.errors import ConfigError, Forbidden, Invalid, NotFound, Unavailable

pytestmark = pytest.mark.postgres


def connect(bao: RunningBao, username: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1",
        port=5432,
        dbname=bao.bao.store.sql_database,
        user=username,
        password=password,
        connect_timeout=5,
    )


def login_refused_within(bao: RunningBao, username: str, password: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connect(bao, username, password).close()
        except psycopg.OperationalError as e:
            assert "does not exist" in str(e) or "authentication failed" in str(e)
            return True
        time.sleep(0.05)
    return False


# -- policies, rendered per tenant ------------------------------------------------------


def test_tenant_policy_reaches_only_its_paths() -> None:
    policy = render_tenant_policy("acme")
    paths = [line.split('"')[1] for line in policy.splitlines() if line.startswith("path ")]
    assert paths == ["kv/data/tenants/acme/*", "database/creds/tenant-acme"]
    assert "globex" not in policy and '*"' not in policy.replace("acme/*", "")


@pytest.mark.parametrize("bad", ["", "*", "acme/*", "acme/../globex", "Acme", "a+b", "x" * 41])
def test_tenant_names_that_could_widen_a_policy_are_refused(bad: str) -> None:
    with pytest.raises(Invalid, match="not usable"):
        check_tenant(bad)


def test_policies_for_ten_thousand_tenants_render_from_one_template() -> None:
    started = time.perf_counter()
    policies = [render_tenant_policy(f"tenant{i}") for i in range(10_000)]
    assert time.perf_counter() - started < 5
    assert all(f"tenants/tenant{i}/*" in p for i, p in enumerate(policies))


# -- request tokens and tenant isolation ---------------------------------------------------


def test_acme_token_reads_acme_keys_and_is_refused_globex(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    store.ensure_tenant("globex")  # globex's keys exist: the refusal is the policy's
    token = store.mint_request_token(1, "acme", 300)
    keys = store.read_s3_keys(token.token, "acme")
    expected = tenant_s3_keys(master_secret(bao.bao.paths.home), "acme")
    assert (keys["access_key_id"], keys["secret_access_key"]) == expected

    with pytest.raises(Forbidden, match="denied read the S3 keys of tenant globex") as e:
        store.read_s3_keys(token.token, "globex")
    assert e.value.status == 403 and e.value.tenant == "globex"
    with pytest.raises(Forbidden):
        store.sql_credentials(token.token, "globex", 60)
    # Not even a bug calling OpenBao directly gets further with that token.
    raw = hvac.Client(url=bao.bao.addr, token=token.token)
    for path in ("kv/data/tenants/globex/s3", "sys/policies/acl/tenant-acme", "kv/metadata/"):
        with pytest.raises(hvac.exceptions.Forbidden):
            raw.adapter.get(f"/v1/{path}")


def test_deleted_keys_are_not_found_and_a_revoked_token_is_refused(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    """The grant's read maps OpenBao's answers as hvac would: 404 → NotFound, 403 →
    Forbidden, each naming the tenant."""
    token = store.mint_request_token(7, "gone", 300)
    bao.root.secrets.kv.v2.delete_latest_version_of_secret("tenants/gone/s3", mount_point="kv")
    with pytest.raises(NotFound, match="has no such secret") as e:
        store.read_s3_keys(token.token, "gone")
    assert e.value.status == 404 and e.value.tenant == "gone"

    store.revoke_token(token.accessor)
    with pytest.raises(Forbidden, match="does not reach it") as f:
        store.read_s3_keys(token.token, "gone")
    assert f.value.status == 403


def test_request_token_has_only_its_tenant_policy(bao: RunningBao, store: OpenBaoStore) -> None:
    token = store.mint_request_token(42, "acme", 300)
    info = bao.root.auth.token.lookup_accessor(token.accessor)["data"]
    assert info["policies"] == ["tenant-acme"]
    assert info["meta"] == {"request_id": "42", "tenant": "acme"}
    assert info["orphan"] is True and info["renewable"] is False


def test_service_token_is_not_root_and_cannot_read_tenant_secrets(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    store.ensure_tenant("acme")
    service = hvac.Client(url=bao.bao.addr, token=bao.bao.paths.token_file.read_text().strip())
    info = service.auth.token.lookup_self()["data"]
    assert sorted(info["policies"]) == ["default", "workbench-broker"]
    assert info["period"] and info["renewable"]
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.kv.v2.read_secret_version(
            "tenants/acme/s3", mount_point="kv", raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):  # nor a login for a tenant
        service.secrets.database.generate_credentials("tenant-acme")
    for path in (bao.bao.paths.init_file, bao.bao.paths.token_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_token_ttl_is_clamped(bao: RunningBao, store: OpenBaoStore) -> None:
    now = datetime.now(UTC)
    token = store.mint_request_token(2, "acme", 30)
    assert now + timedelta(seconds=29) <= token.expires_at <= now + timedelta(seconds=31)
    assert 0 < bao.root.auth.token.lookup_accessor(token.accessor)["data"]["ttl"] <= 30

    short = bao.store(grant_max_ttl=120)
    long = short.mint_request_token(3, "acme", 10 * 86400)
    assert 0 < bao.root.auth.token.lookup_accessor(long.accessor)["data"]["ttl"] <= 120
    with pytest.raises(Invalid, match="no time left"):
        store.mint_request_token(4, "acme", 0)


def test_sql_lease_never_outlives_the_request(bao: RunningBao, store: OpenBaoStore) -> None:
    token = store.mint_request_token(5, "acme", 300)
    now = datetime.now(UTC)
    creds = store.sql_credentials(token.token, "acme", 20)  # the role's default is an hour
    assert creds.expires_at <= now + timedelta(seconds=21)
    lease = bao.root.sys.read_lease(creds.lease_id)["data"]
    assert 0 < lease["ttl"] <= 20
    store.revoke_lease(creds.lease_id)


# -- dynamic SQL logins ---------------------------------------------------------------------


def test_sql_login_reads_its_schema_only(bao: RunningBao, store: OpenBaoStore) -> None:
    token = store.mint_request_token(6, "acme", 300)
    creds = store.sql_credentials(token.token, "acme", 300)
    assert creds.username.startswith("wb-tenant-acme-request-6-")
    with connect(bao, creds.username, creds.password) as conn:
        rows = conn.execute("SELECT tenant FROM tenant_acme.accounts").fetchall()
        assert rows and {r[0] for r in rows} == {"acme"}
        for query in (
            "SELECT * FROM tenant_globex.accounts",
            "INSERT INTO tenant_acme.accounts VALUES (99, 'acme', 'x', 'y', 1)",
            "CREATE TABLE public.mine (x int)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(query)
            conn.rollback()
    store.revoke_token(token.accessor)


def test_revoking_the_token_drops_its_sql_login(bao: RunningBao, store: OpenBaoStore) -> None:
    token = store.mint_request_token(7, "acme", 300)
    creds = store.sql_credentials(token.token, "acme", 300)
    open_session = connect(bao, creds.username, creds.password)
    assert open_session.execute("SELECT count(*) FROM tenant_acme.accounts").fetchone()

    store.revoke_token(token.accessor)
    assert login_refused_within(bao, creds.username, creds.password, 5)
    with pytest.raises(psycopg.OperationalError):  # and its open session was ended
        open_session.execute("SELECT 1")
    open_session.close()
    with pytest.raises(Forbidden):  # the token itself is dead
        store.read_s3_keys(token.token, "acme")
    store.revoke_token(token.accessor)  # a second revocation is a no-op


def test_revoking_a_lease_drops_the_login_at_once(bao: RunningBao, store: OpenBaoStore) -> None:
    token = store.mint_request_token(8, "acme", 300)
    creds = store.sql_credentials(token.token, "acme", 300)
    connect(bao, creds.username, creds.password).close()
    store.revoke_lease(creds.lease_id)
    assert login_refused_within(bao, creds.username, creds.password, 0.5)
    store.revoke_lease(creds.lease_id)
    store.revoke_token(token.accessor)


# -- a large catalog: tenants are provisioned lazily ------------------------------------------


def test_new_tenants_are_provisioned_lazily_and_cheaply(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    catalog = [f"t{uuid.uuid4().hex[:8]}{i}" for i in range(10_000)]
    before = set(bao.root.sys.list_acl_policies()["data"]["keys"])
    assert not any(name.startswith("tenant-t") for name in before)  # nothing made up front
    store.ensure_tenant("acme")
    times = []
    for tenant in catalog[:20]:
        started = time.perf_counter()
        store.ensure_tenant(tenant)
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.1, times
    started = time.perf_counter()
    for tenant in catalog[:20]:
        store.ensure_tenant(tenant)
    assert time.perf_counter() - started < 0.01  # done once per process
    after = set(bao.root.sys.list_acl_policies()["data"]["keys"])
    assert {f"tenant-{t}" for t in catalog[:20]} <= after
    assert f"tenant-{catalog[20]}" not in after
    token = store.mint_request_token(9, catalog[0], 60)  # a fresh tenant works end to end
    assert store.read_s3_keys(token.token, catalog[0])["access_key_id"].startswith("WB")


# -- failure modes ------------------------------------------------------------------------------


def test_health_is_none_when_fine(store: OpenBaoStore) -> None:
    assert store.health() is None


def test_sealed_store_is_unavailable_then_works_after_unseal(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    token = store.mint_request_token(10, "acme", 300)
    bao.root.sys.seal()
    try:
        with pytest.raises(Unavailable, match="is sealed") as e:
            store.read_s3_keys(token.token, "acme")
        assert e.value.status == 503
        with pytest.raises(Unavailable, match="is sealed"):
            store.mint_request_token(11, "acme", 300)
        assert "sealed" in (store.health() or "")
    finally:
        bao.bao.bootstrap()  # what `workbench up` does at start: unseal, configure
    assert store.health() is None
    assert store.read_s3_keys(token.token, "acme")["access_key_id"]


def test_audit_device_records_requests_without_secrets(
    bao: RunningBao, store: OpenBaoStore
) -> None:
    token = store.mint_request_token(12, "acme", 300)
    store.read_s3_keys(token.token, "acme")
    text = bao.bao.paths.audit_log.read_text()
    assert '"path":"auth/token/create/workbench-grant"' in text
    assert '"path":"kv/data/tenants/acme/s3"' in text
    assert token.token not in text  # tokens and secrets are HMAC'd by the audit device


def test_stopped_store_is_unavailable_and_a_restart_keeps_its_data(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("bao-restart")
    first = start_bao(home)
    try:
        store = first.store()
        token = store.mint_request_token(1, "acme", 600)
        keys = store.read_s3_keys(token.token, "acme")
    finally:
        first.stop()
    with pytest.raises(Unavailable, match="is unreachable"):
        store.read_s3_keys(token.token, "acme")
    assert "unreachable" in (store.health() or "")

    second = start_bao(home)  # new ports, same data: unsealed again by the set-up
    try:
        assert second.bao.addr != first.bao.addr
        again = second.store()
        assert again.read_s3_keys(token.token, "acme") == keys  # tokens survive restarts
        assert again.mint_request_token(2, "acme", 60).token
    finally:
        second.stop()


# -- configuration --------------------------------------------------------------------------------


def test_traits_default_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_OPENBAO_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("WORKBENCH_OPENBAO_TOKEN_FILE", "/x/service-token")
    store = OpenBaoStore()
    assert (store.url, store.token_file) == ("http://127.0.0.1:9", "/x/service-token")
    assert isinstance(store, SecretStore)
    assert "unreachable" in (store.health() or "")


def test_config_knows_the_store_and_rejects_typos() -> None:
    cfg = Config()
    cfg.OpenBaoStore.kv_mount = "secret"
    check_config(cfg)
    assert OpenBaoStore(config=cfg).kv_mount == "secret"
    cfg.OpenBaoStore.kv_mout = "secret"
    with pytest.raises(ConfigError, match="kv_mout"):
        check_config(cfg)


def test_approle_login_works_like_the_token_file(
    bao: RunningBao, tmp_path: os.PathLike[str]
) -> None:
    root = bao.root
    if "approle/" not in root.sys.list_auth_methods()["data"]:
        root.sys.enable_auth_method("approle")
    root.auth.approle.create_or_update_approle(
        "workbench", token_policies=["workbench-broker"], token_ttl="1h"
    )
    role_id = root.auth.approle.read_role_id("workbench")["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("workbench")["data"]["secret_id"]
    secret_file = Path(tmp_path) / "secret-id"
    secret_file.write_text(secret_id)
    store = bao.store(auth_method="approle", role_id=role_id, secret_id_file=str(secret_file))
    token = store.mint_request_token(13, "acme", 60)
    assert store.read_s3_keys(token.token, "acme")["access_key_id"]
    store.revoke_token(token.accessor)


def test_missing_token_file_is_a_clear_unavailable(tmp_path: os.PathLike[str]) -> None:
    store = OpenBaoStore(url="http://127.0.0.1:9", token_file=f"{tmp_path}/nope")
    with pytest.raises(Unavailable, match="token_file"):
        store.ensure_tenant("acme")
