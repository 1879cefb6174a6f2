"""The approval gate without a hub: user options, the admission rules, the environment, the
spawn page's list, and the stop at the request's end. The service is answered by an
httpx.MockTransport; the hub user by a small fake."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from traitlets.config import Config

from tests.hub.helpers import in_thread
from workbench.hub.gate import WorkbenchAPI
from workbench.hub.rules import (
    DEFAULT_ENV_DENY,
    ApprovedRequest,
    ComputeProfile,
    Refused,
    check_request,
    duration,
    filter_env,
    request_id_from_options,
    server_name,
)
from workbench.hub.spawner import LocalRequestSpawner

FORM = "/services/workbench/"
API = "http://127.0.0.1:9/services/workbench/api/v1/"


def described(rid: int = 7, **changes: Any) -> dict[str, Any]:
    """A request as the service's `GET requests/{id}` describes it."""
    data = {
        "id": rid,
        "requester": "alice",
        "tenant": "acme",
        "datasets": ["calls"],
        "profile": "gpu-1",
        "profile_spec": {"cpu": 4, "memory": "16G", "gpu_kind": "nvidia-h100", "gpu_count": 1},
        "state": "approved",
        "seconds_left": 3600.0,
    }
    return data | changes


# -- user options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "rid"),
    [
        ({"request_id": 7}, 7),
        ({"request_id": "12"}, 12),
        ({"request_id": ["3"], "_xsrf": ["x"]}, 3),
    ],
)
def test_user_options_carry_only_the_request_id(options: Any, rid: int) -> None:
    assert request_id_from_options(options) == rid


@pytest.mark.parametrize("options", [None, {}, {"request_id": None}, {"_xsrf": ["x"]}])
def test_no_request_is_a_403_linking_to_the_form(options: Any) -> None:
    with pytest.raises(Refused) as e:
        request_id_from_options(options, form_url=FORM)
    assert e.value.status_code == 403 and e.value.reason == "workbench-no-request"
    assert f'<a href="{FORM}">{FORM}</a>' in e.value.message_html


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"request_id": 7, "profile": "gpu-1"}, "remove: profile"),
        ({"request_id": 7, "cpu": 64, "image": "x"}, "remove: cpu, image"),
        ({"request_id": 0}, "must be the number"),
        ({"request_id": True}, "must be the number"),
        ({"request_id": "7 or 1=1"}, "must be the number"),
        ({"request_id": ["1", "2"]}, "must be the number"),
        ({"request_id": 7.5}, "must be the number"),
        (["request_id", 7], "must be an object"),
    ],
)
def test_anything_else_in_the_options_is_a_400(options: Any, needle: str) -> None:
    with pytest.raises(Refused, match=needle) as e:
        request_id_from_options(options)
    assert e.value.status_code == 400


# -- admission ---------------------------------------------------------------------------------


def admit(data: dict[str, Any], server: str = "r7", user: str = "alice") -> ApprovedRequest:
    return check_request(data, user=user, server=server, min_seconds_left=60, form_url=FORM)


def test_an_approved_request_fixes_the_profile() -> None:
    before = time.time()
    req = admit(described())
    assert (req.id, req.tenant, req.datasets) == (7, "acme", ("calls",))
    assert req.profile == ComputeProfile("gpu-1", 4.0, "16G", "nvidia-h100", 1, "")
    assert before + 3600 <= req.ends_at <= time.time() + 3600
    assert ApprovedRequest.from_state(req.as_state()) == req


@pytest.mark.parametrize(
    ("changes", "server", "status", "needle"),
    [
        ({}, "r8", 400, "is the named server 'r7'"),
        ({}, "", 400, "not 'the default server'"),
        ({"requester": "bob"}, "r7", 403, "filed by bob, not by alice"),
        ({"state": "pending"}, "r7", 409, "is pending: it has not been approved yet"),
        ({"state": "revoked", "seconds_left": None}, "r7", 409, "is revoked"),
        ({"state": "expired", "seconds_left": None}, "r7", 409, "is expired"),
        ({"state": "denied", "seconds_left": None}, "r7", 409, "it was denied"),
        ({"seconds_left": 0.0}, "r7", 409, "is expired"),
        ({"seconds_left": 59.0}, "r7", 409, "ends in 59 s; a server needs at least 60 s"),
        ({"profile_spec": {}}, "r7", 502, "without a usable compute profile"),
        ({"profile_spec": {"cpu": 1, "memory": "1G", "gpu_count": 2}}, "r7", 502, "of no kind"),
    ],
)
def test_refusals_say_why(changes: dict[str, Any], server: str, status: int, needle: str) -> None:
    with pytest.raises(Refused, match=needle) as e:
        admit(described(**changes), server)
    assert e.value.status_code == status
    assert e.value.reason.startswith("workbench-")


def test_server_names_and_durations() -> None:
    assert server_name(7) == "r7"
    assert [duration(s) for s in (30, 60, 3599, 3600 * 5 + 61, 86400 * 2 + 3600)] == [
        "under a minute",
        "1 min",
        "59 min",
        "5 h 1 min",
        "2 d 1 h",
    ]


def test_the_environment_keeps_no_secret_of_the_hub() -> None:
    env = {
        "PATH": "/usr/bin",
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JPY_API_TOKEN": "server-token",
        "JUPYTERHUB_USER": "alice",
        "BAO_ADDR": "http://127.0.0.1:8200",
        "BAO_TOKEN": "s.root",
        "VAULT_TOKEN": "s.root",
        "AWS_SECRET_ACCESS_KEY": "k",
        "CONFIGPROXY_AUTH_TOKEN": "p",
        "WORKBENCH_DEMO_PASSWORD": "pw",
        "JUPYTERHUB_COOKIE_SECRET": "c",
        "MY_DB_PASSWORD": "x",
    }
    kept = filter_env(env, DEFAULT_ENV_DENY)
    assert kept == {
        "PATH": "/usr/bin",
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JPY_API_TOKEN": "server-token",
        "JUPYTERHUB_USER": "alice",
    }


# -- the mixin, with a fake hub user and service ---------------------------------------------


@dataclass
class FakeUser:
    """What the gate uses of jupyterhub.user.User."""

    name: str = "alice"
    escaped_name: str = "alice"
    url: str = "/user/alice/"
    spawners: dict[str, Any] = field(default_factory=dict)
    tokens: list[dict[str, Any]] = field(default_factory=list)

    def new_api_token(self, **kw: Any) -> str:
        self.tokens.append(kw)
        return f"gate-token-{len(self.tokens)}"

    def server_url(self, name: str) -> str:
        return f"{self.url}{name}/"


class FakeService:
    """Answers `GET requests…` from `requests`; remembers the tokens it was shown."""

    def __init__(self, *requests: dict[str, Any], reject: set[str] | None = None) -> None:
        self.requests = {r["id"]: r for r in requests}
        self.reject = reject or set()
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("token ")
        self.seen.append((request.url.path, token))
        if token in self.reject:
            return httpx.Response(401, json={"error": "bad token"})
        path = request.url.path.removeprefix("/services/workbench/api/v1/")
        if path == "requests":
            assert dict(request.url.params) == {"view": "mine", "state": "approved"}
            items = [r for r in self.requests.values() if r["state"] == "approved"]
            return httpx.Response(200, json={"requests": items})
        found = self.requests.get(int(path.split("/")[1]))
        if found is None:
            return httpx.Response(404, json={"error": "no access request"})
        return httpx.Response(200, json=found)


def gate(service: FakeService, server: str = "r7", **options: Any) -> LocalRequestSpawner:
    config = Config()
    config.LocalRequestSpawner.workbench_api_url = API
    spawner = LocalRequestSpawner(
        user=FakeUser(),
        hub=SimpleNamespace(base_url="/hub/"),
        orm_spawner=SimpleNamespace(name=server, display_name=server, server=None),
        config=config,
    )
    spawner.user_options = options
    transport = httpx.MockTransport(service)
    spawner.workbench_api = lambda: WorkbenchAPI(API, 5, transport)  # type: ignore[method-assign]
    spawner._gate_tokens.clear()
    return spawner


@in_thread
async def test_admission_reads_the_request_as_its_user() -> None:
    service = FakeService(described())
    spawner = gate(service, request_id=7)
    req = await spawner.admit()
    assert req.id == 7 and req.profile.gpu_count == 1
    (minted,) = spawner.user.tokens
    assert minted["scopes"] == ["access:services!service=workbench", "custom:workbench:request"]
    assert minted["expires_in"] == 300
    assert service.seen == [("/services/workbench/api/v1/requests/7", "gate-token-1")]
    await spawner.admit()  # the token is reused
    assert len(spawner.user.tokens) == 1


@in_thread
async def test_a_rejected_gate_token_is_made_again_once() -> None:
    service = FakeService(described(), reject={"gate-token-1"})
    spawner = gate(service, request_id=7)
    assert (await spawner.admit()).id == 7
    assert [t for _, t in service.seen] == ["gate-token-1", "gate-token-2"]


@pytest.mark.parametrize(
    ("service", "server", "options", "status", "needle"),
    [
        (FakeService(), "r9", {"request_id": 9}, 404, "you have no access request 9"),
        (FakeService(described()), "r8", {"request_id": 7}, 400, "cannot run request 7"),
        (FakeService(described()), "r7", {"request_id": 7, "gpu_count": 8}, 400, "remove"),
        (FakeService(reject={"gate-token-1", "gate-token-2"}), "r7", {"request_id": 7}, 503, "401"),
    ],
)
@in_thread
async def test_admission_refusals(
    service: FakeService, server: str, options: Any, status: int, needle: str
) -> None:
    spawner = gate(service, server, **options)
    with pytest.raises(Refused, match=needle) as e:
        await spawner.admit()
    assert e.value.status_code == status


@in_thread
async def test_an_unreachable_service_is_a_503() -> None:
    spawner = gate(FakeService(), request_id=7)
    spawner.workbench_api = lambda: WorkbenchAPI("http://127.0.0.1:9/", 0.5)  # type: ignore[method-assign]
    with pytest.raises(Refused, match="could not be asked") as e:
        await spawner.admit()
    assert e.value.status_code == 503


@in_thread
async def test_the_spawn_page_lists_approved_requests_with_their_buttons() -> None:
    service = FakeService(
        described(7, tenant="<b>acme</b>"),
        described(8, profile="cpu-small", profile_spec={"cpu": 1, "memory": "2G"}),
        described(9, seconds_left=30.0),
        described(10, state="pending"),
        described(11, requester="bob"),
    )
    spawner = gate(service, "")
    spawner.user.spawners["r8"] = SimpleNamespace(active=True)
    html = await spawner.render_options_form()
    assert 'id="workbench-request-7"' in html and "&lt;b&gt;acme&lt;/b&gt;" in html
    assert "gpu-1 (4 CPU, 16G memory, 1 × nvidia-h100)" in html and "1 h 0 min" in html
    assert 'formaction="/hub/spawn/alice/r7?_xsrf=' in html
    assert 'href="/user/alice/r8/">Open</a>' in html  # running: open, not start
    assert "ends in under 1 min" in html  # request 9: too little time left
    assert "workbench-request-10" not in html and "workbench-request-11" not in html


@in_thread
async def test_the_spawn_page_without_requests_links_to_the_form() -> None:
    html = await gate(FakeService(), "").render_options_form()
    assert "You have no approved access request" in html and f'href="{FORM}"' in html


@in_thread
async def test_the_server_stops_when_its_request_ends() -> None:
    spawner = gate(FakeService())
    stopped: list[str] = []

    async def stop(now: bool = False) -> None:
        stopped.append("stop")

    async def poll_and_notify() -> None:
        stopped.append("poll")

    spawner.stop = stop  # type: ignore[method-assign]
    spawner.poll_and_notify = poll_and_notify  # type: ignore[method-assign]
    req = admit(described(seconds_left=3600))
    state = {"workbench_request": {**req.as_state(), "ends_at": time.time() + 0.05}}
    spawner.load_state(state)  # a hub restart re-arms the stop
    assert spawner.get_state()["workbench_request"]["id"] == 7
    await asyncio.sleep(0.2)
    assert stopped == ["stop", "poll"]
    spawner.load_state(state | {"workbench_request": {**req.as_state()}})
    spawner.clear_state()  # a stop disarms it
    assert spawner._expiry is None and spawner.workbench_request is None
