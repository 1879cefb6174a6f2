"""Schemathesis in stateful mode over the REST API, with the tokens of two tenants' users
swapped between calls: object-level authorisation.

alice works on acme, bob on globex; each holds an approved request, a grant, a job (held by
`HeldJobBackend`: the real jobs service, no process), an artifact and an export, made before
the fuzzing starts, and whatever the fuzzer itself creates. Schemathesis chains the calls by
the links it infers from the OpenAPI document (an id a POST returned feeds the GETs and POSTs
on it); every call is made as alice or bob in turn, and two of every three calls that name an
object name one of the *other* user's (the same kind: a request id in `requests/{id}`, a job id in
`jobs/{id}`, …). What must hold:

- no 5xx;
- no 2xx to a caller on an object of the other user (read, decide, cancel, re-run, promote,
  review, download, …);
- no list (`GET requests|grants|jobs|artifacts|exports`) shows the caller an object of the
  other user.

Quick by default; WORKBENCH_CAMPAIGN=long runs more and longer scenarios. The stateless
version (every operation, any caller, conformance to the document) is tests/service/
test_fuzz_api.py.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.campaign.conftest import Stores, profile
from tests.campaign.held import HeldJobBackend
from tests.campaign.test_stateful import NOTEBOOK
from tests.conftest import PREFIX, Service, make_config
from tests.mocking import token_for
from workbench import __version__
from workbench.config import settings_for
from workbench.service import openapi
from workbench.service.app import API, API_ROUTES
from workbench.service.context import Workbench

USERS = ("alice", "bob")
HOME_TENANT = {"alice": "acme", "bob": "globex"}
KINDS = ("requests", "grants", "jobs", "artifacts", "exports")  # first path segment = kind

schema = schemathesis.openapi.from_dict(openapi.build(API_ROUTES, PREFIX + API, __version__))


class Owners:
    """Who made each object, by kind and id."""

    def __init__(self) -> None:
        self.of: dict[tuple[str, int], str] = {}

    def add(self, kind: str, oid: int, user: str) -> None:
        self.of[(kind, oid)] = user

    def others(self, kind: str, user: str) -> list[int]:
        return sorted(i for (k, i), u in self.of.items() if k == kind and u != user)


def seed(service: Service, backend: HeldJobBackend, stores: Stores, owners: Owners) -> None:
    """Each user's approved request, grant, job, artifact and export."""
    with service.client("maria") as maria:
        for user in USERS:
            tenant = HOME_TENANT[user]
            with service.client(user) as c:
                body = {
                    "tenant": tenant,
                    "datasets": ["calls"],
                    "purpose": "swapped-token fuzzing",
                    "profile": "cpu-small",
                    "hours": 4,
                }
                rid = c.post("requests", json=body).json()["id"]
                r = maria.post(f"requests/{rid}/approve", json={"comment": "ok"})
                assert r.json()["state"] == "approved", r.text
                owners.add("requests", rid, user)
                r = c.post("grants", json={"request_id": rid, "dataset": f"{tenant}/calls"})
                assert r.status_code == 201, r.text
                owners.add("grants", r.json()["id"], user)
                r = c.post("jobs", json={"request_id": rid, "name": "j", "notebook": NOTEBOOK})
                assert r.status_code == 201, r.text
                owners.add("jobs", r.json()["id"], user)
                up = c.post("artifacts/uploads", json={"request_id": rid}).json()
                content = f"model of {user}".encode()
                sha = hashlib.sha256(content).hexdigest()
                keys, loc = up["credentials"], up["location"]
                s3 = stores.seaweed.store.client(keys["access_key_id"], keys["secret_access_key"])
                s3.put_object(Bucket=loc["bucket"], Key=loc["prefix"] + sha, Body=content)
                r = c.post(
                    "artifacts",
                    json={"name": "m", "sha256": sha, "size": len(content), "request_id": rid},
                )
                assert r.status_code == 201, r.text
                owners.add("artifacts", r.json()["id"], user)
                r = c.post(
                    "exports",
                    json={
                        "request_id": rid,
                        "filename": "summary.csv",
                        "content": base64.b64encode(b"n,1\n").decode(),
                        "reason": "aggregate counts",
                    },
                )
                assert r.status_code == 201, r.text
                owners.add("exports", r.json()["id"], user)


@pytest.fixture
def swapped_service(stores: Stores) -> Iterator[tuple[Service, Owners]]:
    tmp = Path(tempfile.mkdtemp(prefix="wb-swapped-"))
    cfg = make_config(**stores.config())
    cfg.ServiceSettings.db_url = f"sqlite:///{tmp / 'workbench.sqlite'}"
    wb = Workbench.open(settings_for(tmp / "home", cfg))
    backend = HeldJobBackend()
    wb.jobs.backend = backend
    service = Service(wb)
    owners = Owners()
    try:
        seed(service, backend, stores, owners)
        yield service, owners
    finally:
        service.stop()
        wb.close()
        shutil.rmtree(tmp, ignore_errors=True)


def kind_of(path: str) -> str | None:
    """`requests` for `/requests/{id}/…`, None for paths without an object id."""
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) >= 2 and parts[1] == "{id}" and parts[0] in KINDS else None


class SwappedTokens(schema.as_state_machine()):  # type: ignore[misc]
    service: ClassVar[Service]
    owners: ClassVar[Owners]
    steps: ClassVar[int] = 0

    def setup(self) -> None:
        # Who calls, and whether the call names the other user's object, follow the step
        # within this scenario alone: Hypothesis replays scenarios, and a replay must make the
        # same calls, or the rules it may choose differ and it stops with a flaky-strategy error.
        self.calls = 0
        self.caller = USERS[0]
        self.target: str | None = None  # the other user, when this call names their object

    def before_call(self, case: schemathesis.Case) -> None:
        type(self).steps += 1
        self.calls += 1
        self.caller = USERS[self.calls % 2]
        self.target = None
        kind = kind_of(case.operation.path)
        if kind and self.calls % 3 != 0:
            theirs = self.owners.others(kind, self.caller)
            if theirs:  # any of theirs: a refusal makes no link, so replays stay alike
                case.path_parameters = {
                    **(case.path_parameters or {}),
                    "id": theirs[type(self).steps % len(theirs)],
                }
        if kind and case.path_parameters and "id" in case.path_parameters:
            oid = case.path_parameters["id"]
            owner = self.owners.of.get((kind, oid)) if isinstance(oid, int) else None
            if owner is not None and owner != self.caller:
                self.target = owner
        case.headers = {**(case.headers or {}), "Authorization": f"token {token_for(self.caller)}"}

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
        return {"base_url": self.service.url + API.rstrip("/")}

    def after_call(self, response: Any, case: schemathesis.Case) -> None:
        kind = case.operation.path.strip("/")
        if case.method.upper() == "POST" and kind in KINDS and response.status_code == 201:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("id"), int):
                self.owners.add(kind, body["id"], self.caller)

    def validate_response(self, response: Any, case: schemathesis.Case, **kw: Any) -> None:
        what = f"{self.caller} {case.method} {case.formatted_path}: {response.status_code}"
        assert response.status_code < 500, f"{what} {response.text[:500]}"
        if self.target is not None:
            assert not 200 <= response.status_code < 300, (
                f"{what}: a 2xx on {self.target}'s object {response.text[:500]}"
            )
        kind = case.operation.path.strip("/")
        if case.method.upper() == "GET" and kind in KINDS and response.status_code == 200:
            items = response.json().get(kind, [])
            theirs = [
                i["id"]
                for i in items
                if self.owners.of.get((kind, i.get("id")), self.caller) != self.caller
            ]
            assert not theirs, f"{what}: the list shows another user's {kind} {theirs}"


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_swapped_tokens_never_reach_the_other_tenants_objects(
    swapped_service: tuple[Service, Owners],
) -> None:
    service, owners = swapped_service
    SwappedTokens.service, SwappedTokens.owners = service, owners
    SwappedTokens.run(
        settings=settings(
            max_examples=profile(40, 400),
            stateful_step_count=profile(10, 25),
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    # the swaps happened: each user named the other's objects of every kind
    assert SwappedTokens.steps > 50
