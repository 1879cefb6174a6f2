"""Scopes and roles for the hub config, defined in `workbench.scopes` (the domain uses them too)."""

from workbench.scopes import (
    ACCESS_SERVICE,
    ADMIN,
    APPROVE,
    AUDIT,
    CUSTOM_SCOPES,
    DATA,
    REQUEST,
    ROLE_SCOPES,
    SERVICE_NAME,
    hub_roles,
    role_of,
    service_scopes,
)

__all__ = [
    "ACCESS_SERVICE",
    "ADMIN",
    "APPROVE",
    "AUDIT",
    "CUSTOM_SCOPES",
    "DATA",
    "REQUEST",
    "ROLE_SCOPES",
    "SERVICE_NAME",
    "hub_roles",
    "role_of",
    "service_scopes",
]
