"""Hub-side attacks: look-alike user names never share a system account or its home (the
scratch space of their servers), and a user holding `admin:users` cannot make anyone admin,
themselves included (JupyterHub's own rule, checked against a real JupyterHub)."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.campaign.conftest import profile
from tests.conftest import free_port
from workbench.accounts import ACCOUNT_COMMENT, account_name, ensure_account

LOOK_ALIKES = [
    "ab",
    "a-b",
    "a_b",
    "a.b",
    "A-B",
    "a b",
    "a--b",
    "a-b-",
    unicodedata.normalize("NFC", "aé"),
    unicodedata.normalize("NFD", "aé"),  # the same letters, decomposed
    "\u0430b",  # Cyrillic a
    "a\u200bb",  # a zero-width space between
    "ﬀ",  # noqa: RUF001 - a ligature whose case-fold is "ff"
    "ff",
]


def test_look_alike_names_get_distinct_accounts() -> None:
    accounts = [account_name("wb-", n) for n in LOOK_ALIKES]
    assert len(set(accounts)) == len(LOOK_ALIKES), dict(zip(LOOK_ALIKES, accounts, strict=True))
    assert all(len(a) <= 32 and a.startswith("wb-") for a in accounts)


@settings(max_examples=profile(300, 5000), deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_two_different_names_never_share_an_account(a: str, b: str) -> None:
    if a != b:
        assert account_name("wb-", a) != account_name("wb-", b)


@pytest.mark.skipif(os.geteuid() != 0, reason="making system accounts needs root")
def test_look_alike_accounts_have_separate_private_homes() -> None:
    root = Path(tempfile.mkdtemp(prefix="wb-campaign-homes-"))
    prefix = f"wbc{secrets.token_hex(2)}-"  # never a real stack's accounts
    names = ["a-b", "a_b", unicodedata.normalize("NFD", "aé")]
    made: list[str] = []
    try:
        found = []
        for user in names:
            account = account_name(prefix, user)
            made.append(account)
            found.append(ensure_account(account, user, str(root)))
        assert len({p.pw_uid for p in found}) == len(names)
        assert len({p.pw_dir for p in found}) == len(names)
        for p in found:
            assert os.stat(p.pw_dir).st_mode & 0o077 == 0, p.pw_dir
            assert ACCOUNT_COMMENT in p.pw_gecos
        # one look-alike cannot take over the other's account
        from workbench.accounts import AccountError

        with pytest.raises(AccountError):
            ensure_account(made[0], names[1], str(root))
    finally:
        for account in made:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(account)
                subprocess.run(["userdel", "-r", account], capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


# -- a real JupyterHub: admin:users does not make an admin ----------------------------------

HUB_CONFIG = """
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.ConfigurableHTTPProxy.command = {chp!r}
c.JupyterHub.db_url = "sqlite:///{home}/hub.sqlite"
c.JupyterHub.cookie_secret_file = "{home}/cookie_secret"
c.JupyterHub.pid_file = "{home}/hub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {{"alice", "bob"}}
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.load_roles = [
    {{"name": "user-managers", "scopes": ["admin:users", "tokens"], "users": ["alice"]}},
]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from workbench.embedded.proxy import ChpUnavailable, ensure_chp

    try:
        chp = ensure_chp(quiet=True)
    except ChpUnavailable as e:
        pytest.skip(f"configurable-http-proxy is not available: {e}")
    home = tmp_path_factory.mktemp("campaign-hub")
    port, password = free_port(), secrets.token_urlsafe(12)
    config = home / "jupyterhub_config.py"
    config.write_text(
        HUB_CONFIG.format(
            port=port,
            hub_port=free_port(),
            proxy_api=free_port(),
            chp=chp,
            home=home,
            password=password,
        )
    )
    log = (home / "hub.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        cwd=home,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(trust_env=False, timeout=2) as c:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if c.get(url + "hub/api/").status_code == 200:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((home / "hub.log").read_text()[-3000:])
                time.sleep(0.2)
        yield url, password
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def token_of(url: str, user: str, password: str) -> str:
    """Log in through the form and make an API token, as a person would."""
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
        c.get("hub/login").raise_for_status()
        r = c.post(
            "hub/login",
            data={"username": user, "password": password, "_xsrf": c.cookies.get("_xsrf") or ""},
        )
        assert r.status_code == 302, r.text[:300]
        c.get("hub/home")
        c.headers["X-XSRFToken"] = c.cookies.get("_xsrf", path="/hub/") or ""
        r = c.post(f"hub/api/users/{user}/tokens", json={"note": "campaign"})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def test_admin_users_scope_cannot_make_an_admin(hub: tuple[str, str]) -> None:
    url, password = hub
    token = token_of(url, "alice", password)
    with httpx.Client(
        base_url=url + "hub/api/",
        headers={"Authorization": f"token {token}"},
        trust_env=False,
        timeout=30,
    ) as alice:
        me = alice.get("user").json()
        assert "admin:users" in me["scopes"] and not me["admin"]
        # the scope works: alice may edit other users …
        assert alice.get("users/bob").status_code == 200
        # … but not make herself, or anyone, admin, nor create an admin
        r = alice.patch("users/alice", json={"admin": True})
        assert r.status_code == 403, r.text
        r = alice.patch("users/bob", json={"admin": True})
        assert r.status_code == 403, r.text
        r = alice.post("users/mallory", json={"admin": True})
        assert r.status_code == 403, r.text
        r = alice.post("users", json={"usernames": ["mallory"], "admin": True})
        assert r.status_code == 403, r.text
        # nor edit the real admin
        r = alice.patch("users/admin", json={"name": "admin2"})
        assert r.status_code in (403, 404), r.text
        assert alice.get("user").json()["admin"] is False
