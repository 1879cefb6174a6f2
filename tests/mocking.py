"""Fakes for what the unit-level service tests need no real hub for. Integration tests use the
real JupyterHub (tests/fixtures/hub.py)."""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubOAuth

from workbench.scopes import ACCESS_SERVICE, ROLE_SCOPES

USERS: dict[str, str] = {
    "alice": "researcher",
    "bob": "researcher",
    "maria": "manager",
    "mike": "manager",
    "sam": "security",
    "admin": "workbench-admin",
    "eve": "",  # a hub user with no workbench role
}


def token_for(user: str) -> str:
    return f"token-of-{user}"


def model_for(user: str, scopes: list[str] | None = None) -> dict[str, Any]:
    role = USERS.get(user, "")
    return {
        "kind": "user",
        "name": user,
        "scopes": scopes if scopes is not None else list(ROLE_SCOPES.get(role, [ACCESS_SERVICE])),
        "groups": [],
    }


class FakeHubAuth(HubOAuth):
    """HubOAuth whose hub answers from a dict: token → user model."""

    models: dict[str, dict[str, Any]]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("api_token", "fake-service-token")
        kwargs.setdefault("oauth_client_id", "service-workbench")
        kwargs.setdefault("api_url", "http://127.0.0.1:1/hub/api")
        kwargs.setdefault("access_scopes", {ACCESS_SERVICE})
        super().__init__(**kwargs)
        self.models = {token_for(u): model_for(u) for u in USERS}

    async def _check_hub_authorization(
        self, url: str, api_token: str, cache_key: str | None = None, use_cache: bool = True
    ) -> dict[str, Any] | None:
        return self.models.get(api_token)
