"""Schemathesis against the service's own OpenAPI document: whatever the input and whoever
calls, never a 5xx, and every answer is one the document declares."""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PREFIX, Service
from tests.mocking import token_for
from workbench import __version__
from workbench.service import openapi
from workbench.service.app import API, API_ROUTES

CALLERS = itertools.cycle(["alice", "maria", "sam", "eve", "admin", None])


# the same document the service serves at api/v1/openapi.json (built by a pure function)
schema = schemathesis.openapi.from_dict(openapi.build(API_ROUTES, PREFIX + API, __version__))


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case: schemathesis.Case, service: Service) -> None:
    user = next(CALLERS)
    case.headers = {"Authorization": f"token {token_for(user)}"} if user else {}
    response = case.call(base_url=service.url + API.rstrip("/"))
    assert response.status_code < 500, (case.method, case.path, response.text)
    path_item = schema.raw_schema["paths"][case.operation.path]
    if case.method.lower() not in path_item:  # schemathesis probes undeclared methods too
        assert response.status_code == 405
        return
    declared = path_item[case.method.lower()]["responses"]
    assert str(response.status_code) in declared, (response.status_code, response.text)
