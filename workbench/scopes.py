"""The workbench's custom JupyterHub scopes and the roles that hold them.

The hub config declares these (`c.JupyterHub.custom_scopes`, `c.JupyterHub.load_roles`); the
service checks them on every call. Whether a manager may decide for a tenant is not a scope but
the catalog's `managers` list, checked by the domain.
"""

from __future__ import annotations

from typing import Any

SERVICE_NAME = "workbench"

REQUEST = "custom:workbench:request"
APPROVE = "custom:workbench:approve"
DATA = "custom:workbench:data"
AUDIT = "custom:workbench:audit"
ADMIN = "custom:workbench:admin"

CUSTOM_SCOPES: dict[str, dict[str, str]] = {
    REQUEST: {"description": "File, follow and withdraw your own access requests."},
    DATA: {"description": "Obtain data credentials under your own approved requests."},
    APPROVE: {"description": "Decide access requests for the tenants you govern."},
    AUDIT: {"description": "Read and verify the workbench audit log."},
    ADMIN: {"description": "Administer the workbench (catalog, erasure)."},
}

ACCESS_SERVICE = f"access:services!service={SERVICE_NAME}"

# The service's own hub role: it stops the servers of requests that ended (the reaper).
SERVICE_ROLE = "workbench-service"
SERVICE_ROLE_SCOPES: list[str] = ["admin:servers", "list:users", "read:users"]

ROLE_SCOPES: dict[str, list[str]] = {
    "researcher": [REQUEST, DATA, ACCESS_SERVICE],
    "manager": [APPROVE, REQUEST, DATA, ACCESS_SERVICE],
    "security": [AUDIT, ACCESS_SERVICE],
    "workbench-admin": [ADMIN, APPROVE, AUDIT, REQUEST, DATA, ACCESS_SERVICE],
}


def hub_roles(members: dict[str, list[str]]) -> list[dict[str, Any]]:
    """`load_roles` entries for the workbench roles; `members` maps role name → user names.
    The last entry is the service's own role."""
    roles: list[dict[str, Any]] = [
        {
            "name": role,
            "description": f"Workbench {role}",
            "scopes": scopes,
            "users": sorted(members.get(role, [])),
        }
        for role, scopes in ROLE_SCOPES.items()
    ]
    roles.append(
        {
            "name": SERVICE_ROLE,
            "description": "The workbench service: stops the servers of ended requests",
            "scopes": SERVICE_ROLE_SCOPES,
            "services": [SERVICE_NAME],
        }
    )
    return roles


def service_scopes() -> list[str]:
    """Scopes an OAuth token issued to the service may carry (`oauth_client_allowed_scopes`)."""
    return list(CUSTOM_SCOPES)


def role_of(scopes: set[str]) -> str:
    """The one-word role recorded in audit events for a caller holding `scopes`."""
    for scope, role in ((ADMIN, "admin"), (AUDIT, "security"), (APPROVE, "manager")):
        if scope in scopes:
            return role
    return "researcher" if REQUEST in scopes else "user"
