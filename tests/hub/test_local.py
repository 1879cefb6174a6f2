"""The local spawner's pieces: account names, the state check, the Python the accounts run,
and the flags it starts servers with."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.hub.helpers import run_async
from workbench.hub.rules import ApprovedRequest, ComputeProfile, Refused
from workbench.hub.spawner import LocalRequestSpawner, account_name, check_private
from workbench.localpython import bridge_python, open_to_others

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def test_plain_names_get_plain_accounts() -> None:
    assert account_name("wb-", "alice") == "wb-alice"
    assert account_name("wb-", "bob2") == "wb-bob2"


def test_look_alike_names_never_share_an_account() -> None:
    names = ["alice", "Alice", "al.ice", "al-ice", "al_ice", "alice@example.org", "ALICE", ""]
    accounts = [account_name("wb-", n) for n in names]
    assert len(set(accounts)) == len(names)
    for account in accounts[1:]:
        assert account.startswith("wb-") and "-" in account[3:] and len(account) <= 32
    # a name shaped like a hashed account is not plain either (dashes never are)
    hashed = accounts[1].removeprefix("wb-")
    assert account_name("wb-", hashed) != accounts[1]
    assert len(account_name("wb-", "x" * 40)) <= 32


def test_state_open_to_others_stops_isolated_servers(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    check_private([str(home), str(tmp_path / "missing")])
    home.chmod(0o755)
    with pytest.raises(Refused, match="chmod 700") as e:
        check_private([str(home)])
    assert e.value.status_code == 503


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other accounts can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="wb-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_open_to_others(tmp_path: Path, public_dir: Path) -> None:
    assert open_to_others("/etc/passwd") and open_to_others("/usr/bin")
    assert not open_to_others(tmp_path)  # under /tmp/pytest-of-root, mode 0700
    (public_dir / "secret").write_text("x")
    (public_dir / "secret").chmod(0o600)
    assert not open_to_others(public_dir / "secret")
    assert not open_to_others(public_dir / "missing")


@ROOT_ONLY
def test_the_bridge_python_runs_the_hubs_packages_for_an_account(public_dir: Path) -> None:
    try:
        python = bridge_python(public_dir / "python")
    except Exception as e:  # no system python of this version: nothing to bridge to
        pytest.skip(str(e))
    assert bridge_python(public_dir / "python") == python  # made once
    code = "import jupyterhub.singleuser, jupyterlab, workbench.data, os; print(os.getuid())"
    done = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        user="nobody",
        group="nogroup",
        extra_groups=[],
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != "0"


def spawner(isolate: bool) -> LocalRequestSpawner:
    return LocalRequestSpawner(
        user=SimpleNamespace(name="alice"),
        orm_spawner=SimpleNamespace(name="r7", display_name="r7", server=None),
        isolate_users=isolate,
    )


def test_allow_root_only_for_a_root_server() -> None:
    assert "--allow-root" not in spawner(isolate=True).get_args()
    as_root = "--allow-root" in spawner(isolate=False).get_args()
    assert as_root == (os.geteuid() == 0)
    assert spawner(isolate=True).cmd[1:] == ["-m", "jupyterhub.singleuser"]


def test_without_isolation_servers_share_the_hubs_account_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = spawner(isolate=False)
    local.work_root = str(tmp_path / "servers")
    req = ApprovedRequest(7, "alice", "acme", ("calls",), ComputeProfile("c", 1, "2G"), 9e9)
    LocalRequestSpawner._warned = False
    run_async(local.prepare(req))
    workdir = tmp_path / "servers" / "alice" / "local-r7"  # no stack HOME: no stack id
    assert local.notebook_dir == str(workdir) and workdir.is_dir()
    assert oct(workdir.stat().st_mode & 0o777) == "0o700"
    env = local.user_env({})
    assert env["HOME"] == str(workdir) and env["USER"] == local.account
    assert "users are not isolated from each other" in caplog.text
    assert local.mem_limit == 2 * 1024**3 and local.cpu_limit == 1
