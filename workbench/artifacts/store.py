"""The registry's own way to the artifacts bucket, one tenant at a time.

The service never holds a key that reaches every tenant: to read (verify a checksum), serve or
delete a tenant's artifact objects it mints a short-lived secret-store token whose only policy
is that tenant's, reads the tenant's S3 keys with it and revokes it at once (DESIGN.md,
invariant 2: a bug that names the wrong tenant meets the storage identity's own wall).

Layout: `s3://<artifacts_bucket>/tenants/<tenant>/artifacts/sha256/<hex>`, content-addressed,
so the key says what the bytes must hash to.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from workbench.access.objects import tenant_prefix
from workbench.errors import Invalid, NotFound, Unavailable

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
KEYS_TTL_SECONDS = 120  # life of the token minted to read a tenant's keys
CLIENT_CACHE_SECONDS = 60.0
SHA256 = re.compile(r"[0-9a-f]{64}")


class Secrets(Protocol):
    def mint_request_token(
        self, request_id: int, tenant: str, ttl_seconds: int, job_id: int | None = None
    ) -> Any: ...
    def read_s3_keys(self, token: str, tenant: str) -> dict[str, str]: ...
    def revoke_token(self, accessor: str) -> None: ...


def object_key(tenant: str, sha256: str) -> str:
    if not SHA256.fullmatch(sha256):
        raise Invalid(f"sha256 must be 64 lower-case hex digits, not {sha256[:80]!r}")
    return f"{tenant_prefix(tenant)}artifacts/sha256/{sha256}"


@dataclass(frozen=True)
class Digest:
    sha256: str
    size: int


class ArtifactObjects:
    """Reads, writes the location of, and deletes a tenant's artifact objects."""

    def __init__(self, secrets: Secrets, objects: Any) -> None:
        self.secrets = secrets
        self.objects = objects  # an S3ObjectStore (its `client()` and `artifacts_bucket`)
        self._clients: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    @property
    def bucket(self) -> str:
        return str(self.objects.artifacts_bucket)

    def location(self, tenant: str) -> dict[str, Any]:
        """Where a notebook puts the tenant's artifacts: the store's artifacts location with
        the content-addressed prefix."""
        loc = dict(self.objects.artifacts_location(tenant))
        loc["prefix"] = f"{tenant_prefix(tenant)}artifacts/sha256/"
        loc["addressing_style"] = getattr(self.objects, "addressing_style", "auto")
        return loc

    def keys(self, tenant: str, request_id: int, job_id: int | None = None) -> dict[str, str]:
        """The tenant's S3 keys, read with a token minted for this read alone (policy
        `tenant-<tenant>` only) and revoked straight after."""
        try:
            token = self.secrets.mint_request_token(
                request_id, tenant, KEYS_TTL_SECONDS, job_id=job_id
            )
        except Exception as e:
            raise Unavailable(f"the secret store could not mint a token for {tenant}: {e}") from e
        try:
            return self.secrets.read_s3_keys(token.token, tenant)
        finally:
            try:
                self.secrets.revoke_token(token.accessor)
            except Exception as e:  # it expires in KEYS_TTL_SECONDS anyway
                log.warning("could not revoke the key-reading token for %s: %s", tenant, e)

    def client(self, tenant: str, request_id: int = 0) -> Any:
        """A boto3 client with the tenant's own keys, kept a minute."""
        now = time.monotonic()
        with self._lock:
            cached = self._clients.get(tenant)
            if cached is not None and now - cached[0] < CLIENT_CACHE_SECONDS:
                return cached[1]
        keys = self.keys(tenant, request_id)
        made = self.objects.client(keys["access_key_id"], keys["secret_access_key"])
        with self._lock:
            self._clients[tenant] = (now, made)
        return made

    def digest(self, tenant: str, key: str, request_id: int = 0) -> Digest:
        """sha256 and size of the object, read as a stream; NotFound when it is missing."""
        h = hashlib.sha256()
        size = 0
        for chunk in self.stream(tenant, key, request_id):
            h.update(chunk)
            size += len(chunk)
        return Digest(h.hexdigest(), size)

    def stream(self, tenant: str, key: str, request_id: int = 0) -> Iterator[bytes]:
        body = self._get(tenant, key, request_id)
        try:
            while chunk := body.read(CHUNK):
                yield chunk
        finally:
            body.close()

    def _get(self, tenant: str, key: str, request_id: int) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client(tenant, request_id).get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey"):
                raise NotFound(
                    f"no object s3://{self.bucket}/{key}: upload it before registering",
                    tenant=tenant,
                ) from e
            raise Unavailable(f"the object store refused to read {key}: {code}") from e
        except BotoCoreError as e:
            raise Unavailable(f"the object store does not answer: {e}") from e
        body: BinaryIO = resp["Body"]
        return body

    def delete_tenant(self, tenant: str) -> list[tuple[str, str, int]]:
        """Delete every object under the tenant's prefix of the artifacts bucket; return
        (key, ETag, size) of each deleted. Idempotent: nothing left is nothing deleted."""
        client = self.client(tenant)
        prefix = tenant_prefix(tenant)
        deleted: list[tuple[str, str, int]] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            found = page.get("Contents", [])
            if not found:
                continue
            resp = client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": o["Key"]} for o in found], "Quiet": True},
            )
            failed = {e["Key"] for e in resp.get("Errors", [])}
            deleted += [
                (o["Key"], str(o.get("ETag", "")).strip('"'), int(o.get("Size", 0)))
                for o in found
                if o["Key"] not in failed
            ]
            if failed:
                raise Unavailable(
                    f"the object store did not delete {len(failed)} artifact object(s) of "
                    f"{tenant}; run the erasure again"
                )
        return deleted


def meta_key(meta: dict[str, Any]) -> str:
    """The object key of an artifact, from its `location` (`s3://bucket/key`)."""
    return str(meta["location"]).split("/", 3)[3]
