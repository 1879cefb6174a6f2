"""The embedded default's login: JupyterHub's shared-password authenticator, one password for all.

DESIGN gives every demo user, admin included, the one password `$WORKBENCH_DEMO_PASSWORD`.
JupyterHub's `SharedPasswordAuthenticator` insists on a second, 32-character admin password, so
this subclass also accepts `user_password` for the names in `admin_users`. Everything else
(allowed_users, the 8-character minimum, normalisation) is the upstream behaviour.
"""

from __future__ import annotations

from secrets import compare_digest
from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.authenticators.shared import SharedPasswordAuthenticator


class DemoAuthenticator(SharedPasswordAuthenticator):
    """Shared password for the demo users; admins log in with it too (and become admins)."""

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        username = self.normalize_username(data["username"])
        password = data.get("password", "")
        if (
            username in self.admin_users
            and self.user_password
            # bytes: compare_digest refuses non-ASCII str
            and compare_digest(password.encode(), self.user_password.encode())
        ):
            return {"name": username, "admin": True, "groups": []}
        result: dict[str, Any] | None = await super().authenticate(handler, data)
        return result

    def check_allow_config(self) -> None:
        # Skip the parent's "admin_users set but admin_password is not" warning: here the
        # admins deliberately use user_password.
        Authenticator.check_allow_config(self)
        if not self.user_password:
            self.log.error("DemoAuthenticator.user_password is not set; nobody can log in")
