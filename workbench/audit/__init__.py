"""The tamper-evident audit log: one record path, a hash chain, signed checkpoints.

This package imports nothing of the domain; everything that happens reaches it as an
`AuditEvent` through `AuditLog.record()` or `AuditLog.append()`.
"""

from workbench.audit.chain import Signer
from workbench.audit.log import AuditEvent, AuditLog, AuditUnavailable, Recorded
from workbench.audit.query import Filters
from workbench.audit.verify import Verdict, verify

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditUnavailable",
    "Filters",
    "Recorded",
    "Signer",
    "Verdict",
    "verify",
]
