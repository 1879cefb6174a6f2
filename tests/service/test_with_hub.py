"""The service behind the real JupyterHub: real tokens, real RBAC scopes, the OAuth login."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.hub

BODY = {
    "tenant": "acme",
    "datasets": ["calls"],
    "purpose": "Hub test",
    "profile": "cpu-small",
    "hours": 1,
}


def test_real_tokens_carry_the_workbench_scopes(stack: Any) -> None:
    me = stack.api("maria").get("me").json()
    assert me["role"] == "manager" and me["governs"] == ["acme", "globex"]
    assert "custom:workbench:approve" in me["scopes"]
    assert stack.api("sam").get("me").json()["role"] == "security"


def test_request_approved_with_hub_tokens(stack: Any) -> None:
    r = stack.api("alice").post("requests", json=BODY)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert stack.api("bob").post(f"requests/{rid}/approve", json={}).status_code == 404
    r = stack.api("maria").post(f"requests/{rid}/approve", json={"comment": "go"})
    assert r.json()["state"] == "approved"
    events = stack.api("sam").get("audit/events", params={"request_id": rid}).json()["events"]
    assert [(e["action"], e["actor"], e["outcome"]) for e in events] == [
        ("request.approve", "maria", "ok"),
        ("request.approve", "bob", "refused"),  # bob's attempt is on record too
        ("request.file", "alice", "ok"),
    ]


def test_a_token_limited_in_scope_is_limited(stack: Any) -> None:
    """A token alice made with only access to the service cannot file requests."""
    hub = stack.login("alice")
    r = hub.post(
        "hub/api/users/alice/tokens",
        json={"note": "read-only", "scopes": ["access:services!service=workbench"]},
    )
    assert r.status_code == 201, r.text
    limited = stack.client(
        base_url=f"{stack.service_url}api/v1/",
        headers={"Authorization": f"token {r.json()['token']}"},
    )
    r = limited.post("requests", json=BODY)
    assert r.status_code == 403 and "custom:workbench:request" in r.json()["error"]


def test_forged_token_and_no_token(stack: Any) -> None:
    c = stack.client(base_url=f"{stack.service_url}api/v1/")
    assert c.get("requests").status_code == 401
    r = c.get("requests", headers={"Authorization": "token not-a-real-token"})
    assert r.status_code == 401
    events = stack.api("sam").get("audit/events", params={"user": "anonymous"}).json()["events"]
    assert events and events[0]["outcome"] == "refused"


def test_browser_login_reaches_the_pages(stack: Any) -> None:
    page = stack.login("alice").get(stack.service_url, follow_redirects=True)
    assert page.status_code == 200 and "My access requests" in page.text
