"""Domain errors. The service maps each class to one HTTP status in one place
(`workbench.service.errors`); the message is written for the person who made the call."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class. `tenant`, `action` and `request_id` say what the refused call was about, so
    that its refusal is filed in the audit log under the tenant whose data was asked for."""

    status = 400

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        action: str | None = None,
        request_id: int | None = None,
        dataset: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.tenant = tenant
        self.action = action
        self.request_id = request_id
        self.dataset = dataset


class Invalid(WorkbenchError):
    """The input is malformed or out of bounds (400)."""

    status = 400


class NotAuthenticated(WorkbenchError):
    """No valid JupyterHub token or login (401)."""

    status = 401


class Forbidden(WorkbenchError):
    """The caller may not do this (403)."""

    status = 403


class NotFound(WorkbenchError):
    """No such object, or not one the caller may see (404)."""

    status = 404


class Conflict(WorkbenchError):
    """The object is not in a state that allows this (409)."""

    status = 409


class TooLarge(WorkbenchError):
    """The request body is larger than the configured limit (413)."""

    status = 413


class Unavailable(WorkbenchError):
    """A part the call depends on is down; nothing was done (503)."""

    status = 503


class ConfigError(WorkbenchError):
    """The configuration is wrong; raised at start-up, never during a call."""

    status = 500
