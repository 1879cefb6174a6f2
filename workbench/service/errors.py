"""The one mapping from failures to HTTP status and a message a person can act on."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from tornado.web import HTTPError

from workbench.audit import AuditUnavailable
from workbench.errors import Invalid, Unavailable, WorkbenchError


def validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def to_domain(exc: BaseException) -> WorkbenchError | None:
    """A WorkbenchError describing `exc`, or None for an unexpected failure (a 500)."""
    if isinstance(exc, WorkbenchError):
        return exc
    if isinstance(exc, ValidationError):
        return Invalid(f"invalid request body: {validation_message(exc)}")
    if isinstance(exc, AuditUnavailable):
        return Unavailable(
            "the audit log cannot be written right now, so nothing was done; try again shortly"
        )
    if isinstance(exc, DBAPIError):
        # the database (and with it the audit log) cannot be written: fail closed
        return Unavailable(
            "the workbench database cannot be written right now, so nothing was done and no "
            "credential was issued; try again shortly"
        )
    if isinstance(exc, HTTPError) and 400 <= exc.status_code < 500:
        err = WorkbenchError(exc.log_message or exc.reason or "bad request")
        err.status = exc.status_code
        return err
    return None
