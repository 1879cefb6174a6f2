"""Per-tenant storage keys of the embedded default, derived from one master secret.

Deriving them (HMAC) lets the object store's identity file and the secret store's KV entries be
written independently and still agree, and scales to any number of tenants without a table.
Production stores issue their own keys; the broker only ever reads them from the secret store.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

IDENTITY_PREFIX = "tenant-"


def master_secret(home: Path) -> bytes:
    """HOME/storage-master.key (0600), created on first use."""
    path = home / "storage-master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def tenant_s3_keys(master: bytes, tenant: str) -> tuple[str, str]:
    """(access key id, secret key) of `tenant`'s S3 identity."""
    digest = hmac.new(master, f"s3:{tenant}".encode(), hashlib.sha256).hexdigest()
    secret = hmac.new(master, f"s3-secret:{tenant}".encode(), hashlib.sha256).hexdigest()
    return "WB" + digest[:18].upper(), secret[:40]


def identity_name(tenant: str) -> str:
    """The name of `tenant`'s storage identity (the user an erasure deletes)."""
    return IDENTITY_PREFIX + tenant
