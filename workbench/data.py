"""Data access in notebooks and jobs: `workbench.data.open("acme/calls")`.

The request comes from the server's environment (`WORKBENCH_REQUEST_ID`), the service from
`WORKBENCH_API_URL` (or the hub's `JUPYTERHUB_*` variables), the token from
`JUPYTERHUB_API_TOKEN`. Credentials are asked of the broker once per dataset and reused until
shortly before they expire; the bytes come straight from the store, not through the service.
Reads are reported to the audit log in batches, marked as client-reported.

This module imports no server code: a notebook image needs only httpx and boto3 (and psycopg
for SQL datasets, pandas for frames, torch for `torch_dataset`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Client", "DataError", "ObjectDataset", "TableDataset", "client", "datasets", "open"]

REFRESH_SECONDS = 120  # ask again this long before a grant expires
REPORT_EVERY = 50  # report reads in batches of this many objects


class DataError(Exception):
    """The broker refused, or the store failed; the message says why."""


def _api_url() -> str:
    url = os.environ.get("WORKBENCH_API_URL")
    if url:
        return url.rstrip("/") + "/"
    hub = os.environ.get("WORKBENCH_URL") or os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL", "")
    if not hub:
        raise DataError("no workbench address: set WORKBENCH_API_URL (the notebook server does)")
    base = hub.rstrip("/").removesuffix("/hub")
    return f"{base}/services/workbench/api/v1/"


class Client:
    """Talks to the broker for one request."""

    def __init__(
        self,
        request_id: int | None = None,
        api_url: str | None = None,
        token: str | None = None,
        resource: str | None = None,
    ) -> None:
        rid = request_id or os.environ.get("WORKBENCH_REQUEST_ID")
        if not rid:
            raise DataError("no access request: start a server for an approved request first")
        self.request_id = int(rid)
        token = token or os.environ.get("WORKBENCH_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise DataError("no JupyterHub token in the environment (JUPYTERHUB_API_TOKEN)")
        self.resource = resource or os.environ.get("WORKBENCH_RESOURCE")
        self.http = httpx.Client(
            base_url=api_url or _api_url(),
            headers={"Authorization": f"token {token}"},
            timeout=60,
            trust_env=False,
        )
        self._grants: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        try:
            data = r.json()
        except ValueError:
            data = {"error": r.text[:300]}
        if r.status_code >= 400:
            raise DataError(f"{data.get('error', data)} (HTTP {r.status_code})")
        return data

    def request(self) -> dict[str, Any]:
        return self._call("GET", f"requests/{self.request_id}")

    def datasets(self) -> list[str]:
        """The datasets of this request, as `tenant/dataset`."""
        req = self.request()
        return [f"{req['tenant']}/{d}" for d in req["datasets"]]

    def grant(self, dataset: str) -> dict[str, Any]:
        """Credentials for `dataset`, cached until shortly before they expire."""
        with self._lock:
            g = self._grants.get(dataset)
            if g is None or g["_expires"] - time.time() < REFRESH_SECONDS:
                g = self._call(
                    "POST",
                    "grants",
                    json={
                        "request_id": self.request_id,
                        "dataset": dataset,
                        "resource": self.resource,
                    },
                )
                g["_expires"] = _epoch(g["expires_at"])
                self._grants[dataset] = g
            return g

    def report(self, grant_id: int, objects: list[str], nbytes: int) -> None:
        self._call(
            "POST",
            f"grants/{grant_id}/reads",
            json={"objects": objects, "bytes": nbytes, "resource": self.resource},
        )

    def open(self, dataset: str) -> ObjectDataset | TableDataset:
        g = self.grant(dataset)
        if g["kind"] == "table":
            return TableDataset(self, dataset)
        return ObjectDataset(self, dataset)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class ObjectDataset:
    """A dataset of objects under a tenant's prefix, read directly from S3."""

    client: Client
    name: str
    _pending: list[str] = field(default_factory=list)
    _pending_bytes: int = 0

    def _s3(self) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        import boto3
        from botocore.config import Config

        g = self.client.grant(self.name)
        loc, cred = g["location"], g["credentials"]
        s3 = boto3.client(
            "s3",
            endpoint_url=loc.get("endpoint_url"),
            region_name=loc.get("region") or "us-east-1",
            aws_access_key_id=cred["access_key_id"],
            aws_secret_access_key=cred["secret_access_key"],
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 2},
                s3={"addressing_style": loc.get("addressing_style") or "auto"},
            ),
        )
        return s3, loc, g

    def files(self) -> list[str]:
        """Object keys of the dataset, relative to its prefix."""
        s3, loc, _ = self._s3()
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=loc["bucket"], Prefix=loc["prefix"]
        ):
            keys += [o["Key"][len(loc["prefix"]) :] for o in page.get("Contents", [])]
        return keys

    def read(self, key: str) -> bytes:
        s3, loc, g = self._s3()
        try:
            body = s3.get_object(Bucket=loc["bucket"], Key=loc["prefix"] + key)["Body"].read()
        except Exception as e:
            raise DataError(f"could not read {self.name}/{key}: {e}") from e
        self._note(g["id"], key, len(body))
        return bytes(body)

    def records(self) -> Iterator[dict[str, Any]]:
        """Every record of every JSON-lines or CSV object."""
        for key in self.files():
            text = self.read(key).decode()
            if key.endswith(".csv"):
                yield from csv.DictReader(io.StringIO(text))
            else:
                for line in text.splitlines():
                    if line.strip():
                        yield json.loads(line)
        self.flush()

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(list(self.records()))

    def torch_dataset(self) -> Any:
        """The records as a torch `IterableDataset`."""
        from torch.utils.data import IterableDataset

        outer = self

        class _Records(IterableDataset):
            def __iter__(self) -> Iterator[dict[str, Any]]:
                return outer.records()

        return _Records()

    def _note(self, grant_id: int, key: str, nbytes: int) -> None:
        self._pending.append(key)
        self._pending_bytes += nbytes
        self._grant_id = grant_id
        if len(self._pending) >= REPORT_EVERY:
            self.flush()

    def flush(self) -> None:
        """Report the reads not yet reported."""
        if self._pending:
            self.client.report(self._grant_id, self._pending, self._pending_bytes)
            self._pending, self._pending_bytes = [], 0


@dataclass
class TableDataset:
    """A table in the tenant's SQL schema, read with a dynamic login role."""

    client: Client
    name: str

    def sql(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        import psycopg
        from psycopg.rows import dict_row

        g = self.client.grant(self.name)
        loc, cred = g["location"], g["credentials"]
        with psycopg.connect(
            host=loc["host"],
            port=loc["port"],
            dbname=loc["database"],
            user=cred["username"],
            password=cred["password"],
            options=f"-c search_path={loc['schema']}",
            connect_timeout=10,
            row_factory=dict_row,
        ) as conn:
            return conn.execute(query, params).fetchall()

    def rows(self) -> list[dict[str, Any]]:
        table = self.client.grant(self.name)["location"]["table"]
        return self.sql(f'SELECT * FROM "{table}"')

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())


_default: Client | None = None


def client() -> Client:
    """The notebook's client, for the request its server was started for."""
    global _default
    if _default is None:
        _default = Client()
    return _default


def open(dataset: str) -> ObjectDataset | TableDataset:  # noqa: A001 - the documented name
    """`open("acme/calls")`: a dataset of the server's request, or a DataError saying why not."""
    return client().open(dataset)


def datasets() -> list[str]:
    return client().datasets()
