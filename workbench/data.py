"""Data access in notebooks and jobs: `workbench.data.open("acme/calls")`.

The request comes from the server's environment (`WORKBENCH_REQUEST_ID`), the service from
`WORKBENCH_API_URL` (or the hub's `JUPYTERHUB_*` variables), the token from
`JUPYTERHUB_API_TOKEN`. Credentials are asked of the broker once per dataset and reused until
shortly before they expire, and so is the S3 client made with them; the bytes come straight
from the store, not through the service. Reads are reported to the audit log in batches,
marked as client-reported, from a background thread, so that reporting does not slow reading;
`flush()` waits until they are on record.

This module imports no server code: a notebook image needs only httpx and boto3 (and psycopg
for SQL datasets, pandas for frames, torch for `torch_dataset`).
"""

from __future__ import annotations

import atexit
import csv
import io
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench._http import api_url as service_url
from workbench._http import call, env_token, make_client, s3_client

__all__ = ["Client", "DataError", "ObjectDataset", "TableDataset", "client", "datasets", "open"]

log = logging.getLogger(__name__)

REFRESH_SECONDS = 120  # ask again this long before a grant expires
REPORT_EVERY = 250  # report reads in batches of this many objects...
REPORT_SECONDS = 2.0  # ...or once the oldest unreported read is this old
REPORT_MAX = 1000  # most objects one report may name (the API's limit)
IDLE_SECONDS = 30.0  # the reporting thread ends after this long with nothing to report


class DataError(Exception):
    """The broker refused, or the store failed; the message says why."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback through this module: the message is what
        # a researcher needs
        return [f"DataError: {self}"]


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
        token = token or env_token(DataError)
        self.resource = resource or os.environ.get("WORKBENCH_RESOURCE")
        self.http = make_client(api_url or service_url(DataError), token)
        self._grants: dict[str, dict[str, Any]] = {}
        self._s3: dict[str, tuple[int, int, Any]] = {}  # dataset → (grant id, pid, client)
        self._lock = threading.Lock()
        self._reporter = _Reporter(self.report)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        return call(self.http, DataError, method, path, **kw)

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

    def s3(self, dataset: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """(boto3 client, location, grant) for an objects dataset. The client is made once
        per grant and process (making one costs milliseconds) and shared by threads, as boto3
        allows; a forked worker (a torch DataLoader's) makes its own rather than share the
        parent's pooled connections."""
        g = self.grant(dataset)
        pid = os.getpid()
        with self._lock:
            cached = self._s3.get(dataset)
            if cached is None or cached[:2] != (g["id"], pid):
                cached = (g["id"], pid, s3_client(g["location"], g["credentials"]))
                self._s3[dataset] = cached
        return cached[2], g["location"], g

    def report(self, grant_id: int, objects: list[str], nbytes: int) -> None:
        """Put reads of `objects` (`nbytes` in all) with grant `grant_id` on record now."""
        self._call(
            "POST",
            f"grants/{grant_id}/reads",
            json={"objects": objects, "bytes": nbytes, "resource": self.resource},
        )

    def note_read(self, grant_id: int, key: str, nbytes: int) -> None:
        """Queue one read for the next batched report (sent in the background)."""
        self._reporter.add(grant_id, key, nbytes)

    def flush(self, timeout: float = 60.0) -> None:
        """Report every read not yet reported and wait until they are on record; raise
        DataError when a report failed."""
        self._reporter.flush(timeout)

    def open(self, dataset: str) -> ObjectDataset | TableDataset:
        g = self.grant(dataset)
        if g["kind"] == "table":
            return TableDataset(self, dataset)
        return ObjectDataset(self, dataset)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class _Batch:
    since: float  # time.monotonic() of its oldest read
    objects: list[str] = field(default_factory=list)
    nbytes: int = 0


class _Reporter:
    """Sends reads to the audit log from a background thread, one batch per grant: when a
    batch holds REPORT_EVERY objects, when its oldest read is REPORT_SECONDS old, on
    `flush()`, and at exit. Reads that pile up while a report is on its way go in the next
    one, so a fast reader makes few, larger reports."""

    def __init__(self, send: Callable[[int, list[str], int], None]) -> None:
        self._send = send
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._batches: dict[int, _Batch] = {}
        self._sending = 0  # batches taken and not yet sent
        self._flushing = 0  # flush() calls waiting
        self._errors: list[str] = []
        self._thread: threading.Thread | None = None

    def add(self, grant_id: int, key: str, nbytes: int) -> None:
        if self._pid != os.getpid():  # a forked worker (e.g. a torch DataLoader's)
            self._reset()
        with self._cond:
            batch = self._batches.get(grant_id)
            if batch is None:
                batch = self._batches[grant_id] = _Batch(time.monotonic())
            batch.objects.append(key)
            batch.nbytes += nbytes
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="workbench-data-reports", daemon=True
                )
                self._thread.start()
                _REPORTERS.add(self)
            if len(batch.objects) == REPORT_EVERY:
                self._cond.notify_all()

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._batches or self._sending:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._thread is None or not self._thread.is_alive():
                        raise DataError("reads could not be reported to the audit log in time")
                    self._cond.wait(left)
            finally:
                self._flushing -= 1
            errors, self._errors = self._errors, []
        if errors:
            raise DataError(f"reads could not be reported to the audit log: {errors[0]}")

    def _due(self) -> list[tuple[int, _Batch]]:
        """Take the batches to send now (caller holds the lock)."""
        now = time.monotonic()
        due = [
            (gid, b)
            for gid, b in self._batches.items()
            if self._flushing or len(b.objects) >= REPORT_EVERY or now - b.since >= REPORT_SECONDS
        ]
        for gid, _ in due:
            del self._batches[gid]
        self._sending += len(due)
        return due

    def _run(self) -> None:
        while True:
            with self._cond:
                due = self._due()
                while not due:
                    oldest = min((b.since for b in self._batches.values()), default=None)
                    if oldest is None:
                        if not self._cond.wait(IDLE_SECONDS) and not self._batches:
                            self._thread = None  # the next read starts another
                            return
                    else:
                        self._cond.wait(max(oldest + REPORT_SECONDS - time.monotonic(), 0.001))
                    due = self._due()
            for grant_id, batch in due:
                try:
                    for i in range(0, len(batch.objects), REPORT_MAX):
                        chunk = batch.objects[i : i + REPORT_MAX]
                        share = batch.nbytes if i == 0 else 0  # the bytes count once
                        self._send(grant_id, chunk, share)
                except Exception as e:
                    log.warning("could not report reads of grant %s: %s", grant_id, e)
                    with self._cond:
                        self._errors.append(str(e))
                finally:
                    with self._cond:
                        self._sending -= 1
                        self._cond.notify_all()


_REPORTERS: weakref.WeakSet[_Reporter] = weakref.WeakSet()


@atexit.register
def _report_at_exit() -> None:
    """Reads not yet reported when the kernel or job ends are reported before it exits."""
    for reporter in list(_REPORTERS):
        try:
            reporter.flush(10.0)
        except DataError as e:
            log.warning("%s", e)


@dataclass
class ObjectDataset:
    """A dataset of objects under a tenant's prefix, read directly from S3."""

    client: Client
    name: str

    def files(self) -> list[str]:
        """Object keys of the dataset, relative to its prefix."""
        s3, loc, _ = self.client.s3(self.name)
        keys: list[str] = []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=loc["bucket"], Prefix=loc["prefix"]
            ):
                keys += [o["Key"][len(loc["prefix"]) :] for o in page.get("Contents", [])]
        except Exception as e:
            raise DataError(f"could not list {self.name}: {e}") from e
        return keys

    def read(self, key: str) -> bytes:
        """The bytes of one object (a key from `files()`); the read is reported in the
        background (see `flush`)."""
        s3, loc, g = self.client.s3(self.name)
        try:
            body = s3.get_object(Bucket=loc["bucket"], Key=loc["prefix"] + key)["Body"].read()
        except Exception as e:
            raise DataError(f"could not read {self.name}/{key}: {e}") from e
        self.client.note_read(g["id"], key, len(body))
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

    def flush(self) -> None:
        """Wait until every read so far is on record in the audit log (reports go in batches,
        in the background); raise DataError when one could not be reported."""
        self.client.flush()


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
