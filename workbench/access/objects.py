"""The object store: where tenants' datasets and the artifacts derived from them live.

Layout (the same on every S3 endpoint): dataset `acme/calls` is every object under
`s3://<data_bucket>/tenants/acme/calls/`; artifacts made from acme's data go under
`s3://<artifacts_bucket>/tenants/acme/`. A tenant's storage identity reaches only its own
`tenants/<tenant>/` prefixes (read in the data bucket, read and write in the artifacts bucket),
so the credentials the broker hands out are a second, independent wall between tenants.

The broker never reads data: it returns a `location()` and credentials, and the notebook reads
the objects itself.
"""

from __future__ import annotations

import os
import re
from typing import Any

from traitlets import Enum, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from workbench.errors import Invalid

S3Client = Any  # boto3's clients are generated at run time

ENDPOINT_ENV = "WORKBENCH_S3_ENDPOINT"

# One path segment: no "/" (it would reach into another prefix), no glob characters (storage
# policies match prefixes with "*"), no leading "." (no ".." traversal).
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_segment(kind: str, name: str) -> str:
    """Return `name` when it is usable as one path segment; raise Invalid saying why not."""
    if not isinstance(name, str) or not _SEGMENT.fullmatch(name):
        raise Invalid(
            f"{kind} name {name!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def tenant_prefix(tenant: str) -> str:
    """`tenants/<tenant>/`: the trailing slash keeps `acme` from matching `acme-evil`."""
    return f"tenants/{check_segment('tenant', tenant)}/"


def dataset_prefix(tenant: str, dataset: str) -> str:
    """`tenants/<tenant>/<dataset>/`, the key prefix of an objects dataset."""
    return f"{tenant_prefix(tenant)}{check_segment('dataset', dataset)}/"


class ObjectStore(LoggingConfigurable):
    """Where datasets and artifacts live and how a notebook reaches them.

    Subclasses override:

    - `location(tenant, dataset)`: the dict a notebook needs to read a dataset
      (`endpoint_url`, None for the provider's default, `bucket`, `prefix`, `region`);
    - `artifacts_location(tenant)`: the same for the tenant's artifacts;
    - `health()`: None when the store answers, else a message saying what is wrong.
    """

    def location(self, tenant: str, dataset: str) -> dict[str, str | None]:
        raise NotImplementedError

    def artifacts_location(self, tenant: str) -> dict[str, str | None]:
        raise NotImplementedError

    def health(self) -> str | None:
        raise NotImplementedError


class S3ObjectStore(ObjectStore):
    """Any S3 endpoint, through boto3: SeaweedFS (embedded default), AWS S3, a SeaweedFS
    cluster."""

    endpoint_url = Unicode(
        help=f"""S3 endpoint URL, e.g. http://127.0.0.1:8333. Empty: AWS S3 of `region`.
        Default: ${ENDPOINT_ENV} (set by `workbench up` for its SeaweedFS).""",
    ).tag(config=True)

    @default("endpoint_url")
    def _default_endpoint(self) -> str:
        return os.environ.get(ENDPOINT_ENV, "")

    region = Unicode("us-east-1", help="S3 region name (signing region).").tag(config=True)

    data_bucket = Unicode(
        "workbench-data", help="Bucket of tenants' datasets, under tenants/<tenant>/<dataset>/."
    ).tag(config=True)

    artifacts_bucket = Unicode(
        "workbench-artifacts", help="Bucket of artifacts (models), under tenants/<tenant>/."
    ).tag(config=True)

    addressing_style = Enum(
        ["path", "virtual", "auto"],
        "path",
        help="S3 addressing style; SeaweedFS needs path (http://host/bucket/key).",
    ).tag(config=True)

    health_timeout = Float(
        3.0, help="Seconds `health()` waits for the endpoint (connect, then read)."
    ).tag(config=True)

    # -- layout -----------------------------------------------------------------------------

    def location(self, tenant: str, dataset: str) -> dict[str, str | None]:
        return {
            "endpoint_url": self.endpoint_url or None,
            "bucket": self.data_bucket,
            "prefix": dataset_prefix(tenant, dataset),
            "region": self.region,
            "addressing_style": self.addressing_style,
        }

    def artifacts_location(self, tenant: str) -> dict[str, str | None]:
        return {
            "endpoint_url": self.endpoint_url or None,
            "bucket": self.artifacts_bucket,
            "prefix": tenant_prefix(tenant),
            "region": self.region,
        }

    # -- clients ----------------------------------------------------------------------------

    def client(
        self,
        access_key: str | None,
        secret_key: str | None,
        session_token: str | None = None,
        **config: Any,
    ) -> S3Client:
        """A boto3 S3 client for this endpoint with the given credentials (None: unsigned).
        `config` adds botocore Config options (timeouts, retries, max_pool_connections)."""
        from botocore import UNSIGNED

        options: dict[str, Any] = {"s3": {"addressing_style": self.addressing_style}, **config}
        if access_key is None:
            options["signature_version"] = UNSIGNED
        client: S3Client = self._boto("s3", access_key, secret_key, session_token, options)
        return client

    def iam_client(self, access_key: str, secret_key: str) -> Any:
        """A boto3 IAM client for this endpoint (SeaweedFS serves IAM on its S3 port; without
        an endpoint, AWS IAM)."""
        return self._boto("iam", access_key, secret_key, None, {})

    def _boto(
        self,
        service: str,
        access_key: str | None,
        secret_key: str | None,
        session_token: str | None,
        options: dict[str, Any],
    ) -> Any:
        import boto3
        from botocore.config import Config

        # a store that has just (re)started answers 5xx for a moment: retry those
        options = {"retries": {"mode": "standard", "max_attempts": 8}, **options}
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint_url or None,
            region_name=self.region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            config=Config(**options),
        )

    def health(self) -> str | None:
        """Ask the endpoint about the data bucket without credentials: any S3 answer (even
        403) means it is up; no answer is a message, and so is "no such bucket" where the
        endpoint says so to anonymous callers (AWS does, SeaweedFS answers 403)."""
        from botocore.exceptions import BotoCoreError, ClientError

        timeout = self.health_timeout
        where = self.endpoint_url or f"AWS S3 ({self.region})"
        client = self.client(
            None,
            None,
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        )
        try:
            client.head_bucket(Bucket=self.data_bucket)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                return f"object store {where}: bucket {self.data_bucket!r} does not exist"
            return None  # 403 and friends: the endpoint answered
        except BotoCoreError as e:
            return f"object store {where} does not answer: {e}"
        return None
