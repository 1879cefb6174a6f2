"""Notebook servers behind the real JupyterHub, the real service and the local spawner.

One request per test reason; each refusal is a 4xx with a message saying what to do. The
happy path starts alice's servers for an acme and a globex request and looks inside them:
their environment, the account they run as, what they can read, and a grant from a kernel.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.hub import Stack
from tests.hub.helpers import (
    approved,
    file_request,
    hub_as,
    proc_environ,
    proc_uid,
    run_in_kernel,
    wait_ready,
)
from workbench.hub.spawner import account_name

pytestmark = pytest.mark.hub

FORM = "/services/workbench/"


def spawn(stack: Stack, user: str, server: str, body: Any = None) -> Any:
    return hub_as(stack, user).post(f"hub/api/users/{user}/servers/{server}", json=body)


def refusal(r: Any, status: int, *needles: str) -> str:
    assert r.status_code == status, r.text
    message = str(r.json()["message"])
    for needle in needles:
        assert needle in message, message
    return message


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["server", "servers/r1"])
def test_no_request_is_refused_with_a_link_to_the_form(stack: Stack, path: str) -> None:
    r = hub_as(stack, "bob").post(f"hub/api/users/bob/{path}", json={})
    refusal(r, 403, "approved access request", FORM)


def test_someone_elses_request_is_refused(stack: Stack) -> None:
    bobs = approved(stack, "bob")
    refusal(
        spawn(stack, "alice", f"r{bobs}", {"request_id": bobs}), 404, f"no access request {bobs}"
    )
    # maria governs acme, but the hub reads requests with a token that sees only her own
    refusal(spawn(stack, "maria", f"r{bobs}", {"request_id": bobs}), 404, "no access request")


def test_pending_and_revoked_requests_are_refused(stack: Stack) -> None:
    pending = file_request(stack, "alice")
    refusal(spawn(stack, "alice", f"r{pending}", {"request_id": pending}), 409, "is pending")
    revoked = approved(stack, "alice")
    stack.api("maria").post(f"requests/{revoked}/revoke", json={"comment": "over"})
    refusal(spawn(stack, "alice", f"r{revoked}", {"request_id": revoked}), 409, "is revoked", FORM)


def test_a_request_about_to_end_is_refused(stack: Stack) -> None:
    ending = approved(stack, "alice", hours=0.01)  # 36 s: less than the minute a server needs
    r = spawn(stack, "alice", f"r{ending}", {"request_id": ending})
    refusal(r, 409, f"request {ending} ends in", "at least 60 s")


def test_the_profile_cannot_be_chosen(stack: Stack) -> None:
    rid = approved(stack, "alice")
    r = spawn(stack, "alice", f"r{rid}", {"request_id": rid, "profile": "gpu-1", "cpu": 64})
    refusal(r, 400, "come from the approved access request", "cpu, profile")
    # the same through the spawn page's form, edited
    page = stack.login("alice")
    form = page.get(f"hub/spawn/alice/r{rid}")
    action = re.search(rf'value="{rid}"\s+formaction="([^"]+)"', form.text)
    assert action, form.text
    edited = {"request_id": str(rid), "profile": "gpu-1", "image": "evil/image"}
    r = page.post(action.group(1).replace("&amp;", "&"), data=edited)
    assert r.status_code == 400
    assert "come from the approved access request" in r.text and "image, profile" in r.text


def test_a_server_keeps_its_request(stack: Stack) -> None:
    first, second = approved(stack, "alice"), approved(stack, "alice", "globex")
    r = spawn(stack, "alice", f"r{first}", {"request_id": second})
    refusal(r, 400, f"server 'r{first}' cannot run request {second}", f"'r{second}'")
    r = spawn(stack, "alice", "notebook", {"request_id": first})
    refusal(r, 400, f"the named server 'r{first}'")
    bad = hub_as(stack, "alice").post("hub/api/users/alice/servers/x", json={"request_id": "7; x"})
    refusal(bad, 400, "request_id must be the number")


# -- the spawn page ----------------------------------------------------------------------------


def test_the_spawn_page_lists_only_my_approved_requests(stack: Stack) -> None:
    mine = approved(stack, "alice", "globex")
    pending = file_request(stack, "alice")
    bobs = approved(stack, "bob")
    page = stack.login("alice").get("hub/spawn/alice")
    assert page.status_code == 200
    rows = set(re.findall(r'id="workbench-request-(\d+)"', page.text))
    assert str(mine) in rows and str(pending) not in rows and str(bobs) not in rows
    row = page.text.split(f'id="workbench-request-{mine}"')[1].split("</tr>")[0]
    assert "globex" in row and "calls" in row and "cpu-small (1 CPU, 2G memory)" in row
    assert re.search(r"\d+ min", row)
    assert f'formaction="/hub/spawn/alice/r{mine}?_xsrf=' in row


def test_the_spawn_page_without_requests_links_to_the_form(stack: Stack) -> None:
    page = stack.login("sam").get("hub/spawn/sam")
    assert page.status_code == 200
    assert f'href="{FORM}"' in page.text


# -- running servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(stack: Stack) -> Iterator[dict[str, Any]]:
    """alice's servers for an acme request (started from the spawn page, as a browser does)
    and a globex request (through the REST API)."""
    acme, globex = approved(stack, "alice"), approved(stack, "alice", "globex")
    browser = stack.login("alice")
    page = browser.get(f"hub/spawn/alice/r{acme}")
    action = re.search(rf'value="{acme}"\s+formaction="([^"]+)"', page.text)
    assert action, page.text
    r = browser.post(action.group(1).replace("&amp;", "&"), data={"request_id": str(acme)})
    assert r.status_code == 302, r.text
    assert spawn(stack, "alice", f"r{globex}", {"request_id": globex}).status_code in (201, 202)
    models = {rid: wait_ready(stack, "alice", f"r{rid}") for rid in (acme, globex)}
    yield {"acme": acme, "globex": globex, "models": models, "browser": browser}
    for rid in (acme, globex):
        hub_as(stack, "alice").delete(f"hub/api/users/alice/servers/r{rid}")


def test_a_second_server_on_the_same_request_is_refused(stack: Stack, servers: Any) -> None:
    rid = servers["acme"]
    refusal(spawn(stack, "alice", f"r{rid}", {"request_id": rid}), 400, "already running")
    refusal(spawn(stack, "alice", "copy", {"request_id": rid}), 400, f"'r{rid}'")


def test_jupyterlab_opens(stack: Stack, servers: Any) -> None:
    r = servers["browser"].get(f"user/alice/r{servers['acme']}/lab", follow_redirects=True)
    assert r.status_code == 200
    assert "jupyter-config-data" in r.text and "JupyterLab" in r.text


def secrets_of_the_stack(stack: Stack) -> dict[str, str]:
    """Secret values held by the hub and the service processes, and the hub's cookie secret."""
    found = {"cookie secret": (stack.home / "hub" / "jupyterhub_cookie_secret").read_text()}
    hub_pid = int((stack.home / "hub" / "jupyterhub.pid").read_text())
    service = [
        int(p)
        for p in os.listdir("/proc")
        if p.isdigit()
        and b"workbench.service" in Path(f"/proc/{p}/cmdline").read_bytes()
        and str(stack.home).encode() in Path(f"/proc/{p}/cmdline").read_bytes()
    ]
    assert service, "no service process"
    for pid in (hub_pid, *service):
        for key, value in proc_environ(pid).items():
            secret = re.search(r"TOKEN|SECRET|PASSWORD|^BAO_|^VAULT_|^AWS_", key)
            if secret and len(value) >= 8:
                found[f"{key} of {pid}"] = value
    assert any("BAO" in k for k in found) and any("JUPYTERHUB_API_TOKEN" in k for k in found)
    return found


def test_the_servers_environment_names_its_request_and_holds_no_secret(
    stack: Stack, servers: Any
) -> None:
    secrets = secrets_of_the_stack(stack)
    for tenant in ("acme", "globex"):
        rid = servers[tenant]
        env = proc_environ(servers["models"][rid]["state"]["pid"])
        assert env["WORKBENCH_REQUEST_ID"] == str(rid)
        assert env["WORKBENCH_API_URL"].endswith("/services/workbench/api/v1/")
        assert env["JUPYTERHUB_SERVER_NAME"] == f"r{rid}" and env["CUDA_VISIBLE_DEVICES"] == ""
        assert not [k for k in env if re.match(r"BAO_|VAULT_|AWS_|CONFIGPROXY|WORKBENCH_DEMO", k)]
        leaked = [name for name, value in secrets.items() if value in "\n".join(env.values())]
        assert leaked == [], leaked


def test_servers_of_two_tenants_share_no_home(stack: Stack, servers: Any) -> None:
    """JupyterLab workspaces, IPython history and caches of alice's acme server are not those
    of her globex server: each server's HOME is its own directory, new for this stack."""
    homes = {}
    for tenant in ("acme", "globex"):
        rid = servers[tenant]
        pid = servers["models"][rid]["state"]["pid"]
        env = proc_environ(pid)
        homes[tenant] = env["HOME"]
        assert env["HOME"].endswith(f"-r{rid}") and os.readlink(f"/proc/{pid}/cwd") == env["HOME"]
    assert homes["acme"] != homes["globex"]
    assert not homes["globex"].startswith(homes["acme"] + "/")


@pytest.mark.skipif(os.geteuid() != 0, reason="users are isolated only when the hub runs as root")
def test_servers_run_as_the_users_account_and_cannot_read_home(stack: Stack, servers: Any) -> None:
    account = pwd.getpwnam(account_name("wb-", "alice"))
    assert account.pw_name == "wb-alice"
    rid = servers["acme"]
    assert proc_uid(servers["models"][rid]["state"]["pid"]) == account.pw_uid
    workdir = proc_environ(servers["models"][rid]["state"]["pid"])["HOME"]
    assert Path(workdir).parent == Path(account.pw_dir) and Path(workdir).is_dir()
    private = [str(stack.home)] + [str(p) for p in stack.home.rglob("*") if p.is_file()][:300]
    assert any(p.endswith("jupyterhub.sqlite") for p in private)
    readable = "/etc/passwd"  # the probe's control: a file every account may read
    code = f"""
import json, os, pwd
out = {{"user": pwd.getpwuid(os.getuid()).pw_name, "cwd": os.getcwd(), "read": [],
       "cpus": len(os.sched_getaffinity(0))}}
for path in {[readable, *private]!r}:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(1)
        out["read"].append(path)
    except PermissionError:
        pass
print(json.dumps(out))
"""
    out = json.loads(run_in_kernel(stack, "alice", f"r{rid}", code))
    assert out["user"] == "wb-alice" and out["cwd"] == workdir
    assert out["read"] == [readable]
    assert out["cpus"] == 1  # cpu-small: the server (and its kernels) hold one CPU


def test_workbench_data_gets_a_grant_from_inside_the_server(stack: Stack, servers: Any) -> None:
    code = """
import json
from workbench import data
out = {}
for ref in ("acme/calls", "globex/calls"):
    try:
        grant = data.client().grant(ref)
        out[ref] = {"ok": True, "tenant": grant["tenant"], "request": data.client().request_id}
    except data.DataError as e:
        out[ref] = {"ok": False, "error": str(e)}
print(json.dumps(out))
"""
    out = json.loads(run_in_kernel(stack, "alice", f"r{servers['acme']}", code))
    acme, globex = out["acme/calls"], out["globex/calls"]
    # past authentication and authorisation; with the stores up, a grant
    assert "HTTP 401" not in str(acme) and "HTTP 403" not in str(acme), acme
    assert acme == {"ok": True, "tenant": "acme", "request": servers["acme"]}, acme
    assert not globex["ok"] and "HTTP 403" in globex["error"], globex


def test_the_service_may_stop_servers(stack: Stack) -> None:
    """The workbench service's own token holds the hub role its reaper needs."""
    token = next(v for k, v in secrets_of_the_stack(stack).items() if "JUPYTERHUB_API_TOKEN" in k)
    me = stack.client(headers={"Authorization": f"token {token}"}).get("hub/api/user").json()
    assert me["kind"] == "service" and me["name"] == "workbench"
    assert {"admin:servers", "list:users", "read:users"} <= set(me["scopes"])
