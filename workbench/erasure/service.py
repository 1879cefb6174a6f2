"""Tenant erasure: revoke, stop, delete, quarantine, and leave a certificate in the audit log.

`Erasure.erase(tenant)` first marks the tenant (so it takes no new requests), then runs every
step below in order. Each step is idempotent and safe to repeat, and what it did is added to
the mark's `progress` as soon as it is done; so an erasure cut short (a crash, a kill, a store
that was down) is finished by running it again, and the certificate covers every run. Objects
are recorded (key, checksum, size) before their delete is sent, so none is deleted unrecorded.

Steps: end the tenant's requests (pending denied, approved revoked, as the system); revoke
their tokens and leases (the broker); stop their jobs; wait for their notebook servers to be
gone (the running service's reaper stops them); erase their exports; quarantine and delete
their artifacts (the registry, when there is one); delete their storage identity, so S3 keys
handed out before stop working; delete every object under `tenants/<t>/` of both buckets;
delete their secrets (leases, KV, database role, policy); drop their SQL schema and any login
left on it. Then the certificate: `tenant.erase`, with the counts, the lists and the
checksums. The audit log keeps its events: they hold no tenant data values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from workbench.access.broker import Broker
from workbench.access.keys import identity_name
from workbench.access.models import RequestToken
from workbench.access.objects import tenant_prefix
from workbench.access.secrets import check_tenant, policy_name, schema_name
from workbench.audit import AuditEvent, AuditLog
from workbench.compute.models import ServerSession
from workbench.config import CatalogData
from workbench.db import utcnow
from workbench.erasure.models import ErasedObject, TenantErasure
from workbench.erasure.operator import Operator
from workbench.errors import Invalid, Unavailable
from workbench.jobs.models import Job, JobState
from workbench.jobs.service import Jobs
from workbench.requests.models import AccessRequest
from workbench.requests.service import Requests

log = logging.getLogger(__name__)
REASON = "tenant erased"
BATCH = 1000  # keys per DeleteObjects call (the S3 limit)
INLINE_OBJECTS = 1000  # objects listed in the certificate itself; all are in its manifest hash


class Artifacts(Protocol):
    """What erasure needs of the artifact registry (workbench.artifacts)."""

    def quarantine_tenant(self, tenant: str, reason: str) -> list[int]: ...
    def delete_tenant_objects(self, tenant: str) -> list[str]: ...


class Exports(Protocol):
    """What erasure needs of the airlock (workbench.airlock.service.Airlock)."""

    def erase_tenant(self, tenant: str) -> list[dict[str, Any]]: ...


class Erasure:
    """Erase tenants; see the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        requests: Requests,
        broker: Broker,
        jobs: Jobs,
        operator: Operator,
        *,
        artifacts: Artifacts | None = None,
        exports: Exports | None = None,
        server_wait: float = 90.0,
        delete_workers: int = 8,
        actor: str = "operator",
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.catalog = catalog
        self.requests = requests
        self.broker = broker
        self.jobs = jobs
        self.op = operator
        self.artifacts = artifacts
        self.exports = exports
        self.server_wait = server_wait
        self.delete_workers = delete_workers
        self.actor = actor
        # (step name, function) in order; each returns what it did, to add to the progress
        self.steps: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
            ("requests", self._requests),
            ("tokens", self._tokens),
            ("jobs", self._jobs),
            ("servers", self._servers),
            ("exports", self._exports),
            ("artifacts", self._artifacts),
            ("identity", self._identity),
            ("objects", self._objects),
            ("secrets", self._secrets),
            ("sql", self._sql),
        ]

    # -- what there is ---------------------------------------------------------------------

    def check(self, tenant: str) -> TenantErasure | None:
        return known_tenant(self.sessions, self.catalog, tenant)

    def plan(self, tenant: str) -> dict[str, Any]:
        """What an erasure of `tenant` would reach now (counts), changing nothing."""
        mark = self.check(tenant)
        ids = self._request_ids(tenant)
        with self.sessions() as s:
            open_requests = s.scalar(
                select(func.count())
                .select_from(AccessRequest)
                .where(
                    AccessRequest.tenant == tenant,
                    AccessRequest.state.in_(("pending", "approved")),
                )
            )
            tokens = s.scalar(
                select(func.count())
                .select_from(RequestToken)
                .where(RequestToken.tenant == tenant, RequestToken.revoked_at.is_(None))
            )
            jobs = s.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.tenant == tenant, Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
            )
            servers = s.scalar(
                select(func.count())
                .select_from(ServerSession)
                .where(ServerSession.request_id.in_(ids), ServerSession.stopped_at.is_(None))
            )
        objects = {
            bucket: sum(1 for _ in self._list(bucket, tenant_prefix(tenant)))
            for bucket in (self.op.data_bucket, self.op.artifacts_bucket)
        }
        return {
            "tenant": tenant,
            "state": mark.state if mark else "present",
            "open_requests": open_requests,
            "live_tokens": tokens,
            "running_jobs": jobs,
            "open_servers": servers,
            "objects": objects,
            "sql_schema": schema_name(tenant) if self.op.pg_url else None,
            "artifacts": "quarantined by the registry" if self.artifacts else "no registry",
        }

    # -- the erasure -----------------------------------------------------------------------

    def erase(self, tenant: str) -> dict[str, Any]:
        """Erase `tenant` (or finish an erasure cut short); return the certificate, whose
        `this_run` says what this run found left to do (all zero: nothing was left)."""
        self.check(tenant)
        first = self._mark(tenant)
        this_run: dict[str, Any] = {}
        for name, step in self.steps:
            done = step(tenant)
            this_run[name] = done
            self._record(tenant, name, done)
        return self._certify(tenant, this_run, first)

    def _mark(self, tenant: str) -> bool:
        """Close the tenant to new requests (committed before anything is erased); count the
        run. True when no earlier run finished."""
        now = utcnow()
        with self.sessions.begin() as s:
            mark = s.get(TenantErasure, tenant, with_for_update=True)
            if mark is None:
                mark = TenantErasure(
                    tenant=tenant,
                    state="erasing",
                    started_by=self.actor,
                    started_at=now,
                    runs=0,
                    progress={},
                )
                s.add(mark)
                self.audit.append(
                    s.connection(),
                    [self._event(tenant, "tenant.erase.start", detail={"reason": REASON})],
                )
            mark.runs += 1
            return mark.state != "erased"

    def _record(self, tenant: str, step: str, done: dict[str, Any]) -> None:
        with self.sessions.begin() as s:
            mark = s.get(TenantErasure, tenant, with_for_update=True)
            assert mark is not None
            progress = dict(mark.progress or {})
            progress[step] = _merge(progress.get(step, {}), done)
            mark.progress = progress

    def _event(self, tenant: str, action: str, **kw: Any) -> AuditEvent:
        return AuditEvent(action=action, actor=self.actor, role="admin", tenant=tenant, **kw)

    def _request_ids(self, tenant: str) -> list[int]:
        with self.sessions() as s:
            return list(s.scalars(select(AccessRequest.id).where(AccessRequest.tenant == tenant)))

    # -- steps -----------------------------------------------------------------------------

    def _requests(self, tenant: str) -> dict[str, Any]:
        return {"ended": self.requests.end_tenant(tenant, REASON)}

    def _tokens(self, tenant: str) -> dict[str, Any]:
        before = self._live_tokens(tenant)
        self.broker.revoke_ended()
        left = self._live_tokens(tenant)
        if left:
            raise Unavailable(
                f"{len(left)} token(s) of tenant {tenant} could not be revoked (is OpenBao up?); "
                "run the erasure again",
                tenant=tenant,
            )
        return {"revoked": len(before)}

    def _live_tokens(self, tenant: str) -> list[str]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(RequestToken.accessor).where(
                        RequestToken.tenant == tenant, RequestToken.revoked_at.is_(None)
                    )
                )
            )

    def _jobs(self, tenant: str) -> dict[str, Any]:
        ended = [job_id for job_id, _, _ in self.jobs.reconcile()]
        with self.sessions() as s:
            left = list(
                s.scalars(
                    select(Job.id).where(
                        Job.tenant == tenant, Job.state.in_((JobState.QUEUED, JobState.RUNNING))
                    )
                )
            )
        if left:
            raise Unavailable(
                f"job(s) {', '.join(map(str, left))} of tenant {tenant} could not be stopped; "
                "run the erasure again",
                tenant=tenant,
            )
        with self.sessions() as s:
            mine = set(s.scalars(select(Job.id).where(Job.tenant == tenant, Job.id.in_(ended))))
        return {"stopped": sorted(mine)}

    def _open_servers(self, ids: list[int]) -> list[str]:
        with self.sessions() as s:
            rows = s.execute(
                select(ServerSession.user, ServerSession.server).where(
                    ServerSession.request_id.in_(ids), ServerSession.stopped_at.is_(None)
                )
            ).all()
        return sorted(f"{user}/{server}" for user, server in rows)

    def _servers(self, tenant: str) -> dict[str, Any]:
        """Wait (bounded) until the service's reaper has stopped every server of the tenant's
        requests, which it does within a round or two of their revocation."""
        ids = self._request_ids(tenant)
        open_now = self._open_servers(ids)
        deadline = time.monotonic() + self.server_wait
        while open_now and time.monotonic() < deadline:
            time.sleep(1.0)
            open_now = self._open_servers(ids)
        if open_now:
            raise Unavailable(
                f"notebook server(s) {', '.join(open_now)} of tenant {tenant} are still running "
                f"after {self.server_wait:g} s; the workbench service's reaper stops them — is "
                "`workbench up` running? Run the erasure again",
                tenant=tenant,
            )
        with self.sessions() as s:
            mark = s.get(TenantErasure, tenant)
            assert mark is not None
            rows = s.execute(
                select(ServerSession.user, ServerSession.server).where(
                    ServerSession.request_id.in_(ids),
                    ServerSession.stopped_at >= mark.started_at,
                )
            ).all()
            known = set(mark.progress.get("servers", {}).get("stopped", []))
        return {"stopped": sorted({f"{u}/{name}" for u, name in rows} - known)}

    def _exports(self, tenant: str) -> dict[str, Any]:
        return {"erased": self.exports.erase_tenant(tenant) if self.exports else []}

    def _artifacts(self, tenant: str) -> dict[str, Any]:
        if self.artifacts is None:
            return {"quarantined": [], "deleted": []}
        quarantined = self.artifacts.quarantine_tenant(tenant, REASON)
        try:
            deleted = self.artifacts.delete_tenant_objects(tenant)
        except Exception as e:
            # The registry deletes with the tenant's own storage identity, which a resumed
            # erasure may already have deleted; the objects step sweeps the same prefix with
            # the operator's and records every object, so nothing is left either way.
            log.warning("the artifact registry could not delete %s's objects: %s", tenant, e)
            return {"quarantined": sorted(quarantined), "deleted": [], "swept_instead": True}
        return {"quarantined": sorted(quarantined), "deleted": sorted(deleted)}

    def _identity(self, tenant: str) -> dict[str, Any]:
        """Delete the tenant's storage identity (its access keys first, as AWS IAM requires):
        keys handed out before the erasure stop working now. One already gone is a no-op."""
        from botocore.exceptions import BotoCoreError, ClientError

        iam, name = self.op.iam, identity_name(tenant)
        if iam is None:  # the certificate says so, rather than implying nothing was there
            return {"deleted": [], "not_attempted": "identities are managed outside workbench"}
        try:
            for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
            iam.delete_user(UserName=name)
        except (ClientError, BotoCoreError) as e:
            if getattr(e, "response", {}).get("Error", {}).get("Code") == "NoSuchEntity":
                return {"deleted": []}
            raise Unavailable(
                f"the object store could not delete identity {name}: {e}; run the erasure again",
                tenant=tenant,
            ) from e
        return {"deleted": [name]}

    def _list(self, bucket: str, prefix: str) -> Any:
        """(key, etag, size) of every object under `prefix`; none for a missing bucket."""
        from botocore.exceptions import ClientError

        pages = self.op.s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": BATCH}
        )
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    yield obj["Key"], str(obj.get("ETag", "")).strip('"'), int(obj.get("Size", 0))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise

    def _objects(self, tenant: str) -> dict[str, Any]:
        """Delete every object under `tenants/<t>/` of both buckets: list a page, record it,
        send its DeleteObjects while the next page is listed."""
        prefix = tenant_prefix(tenant)
        deleted, size = 0, 0
        for bucket in (self.op.data_bucket, self.op.artifacts_bucket):
            for _ in range(3):  # again, for objects written while we deleted
                count, nbytes = self._delete_prefix(tenant, bucket, prefix)
                deleted, size = deleted + count, size + nbytes
                if count == 0:
                    break
            else:
                if any(True for _ in self._list(bucket, prefix)):
                    raise Unavailable(
                        f"objects keep appearing under {bucket}/{prefix}; run the erasure again",
                        tenant=tenant,
                    )
        return {"deleted": deleted, "bytes": size}

    def _delete_prefix(self, tenant: str, bucket: str, prefix: str) -> tuple[int, int]:
        pending: list[Future[None]] = []
        count, nbytes = 0, 0
        batch: list[tuple[str, str, int]] = []
        with ThreadPoolExecutor(self.delete_workers, thread_name_prefix="erase") as pool:
            try:
                for item in self._list(bucket, prefix):
                    batch.append(item)
                    if len(batch) == BATCH:
                        pending.append(self._send(pool, tenant, bucket, batch))
                        count, nbytes = count + len(batch), nbytes + sum(b[2] for b in batch)
                        batch = []
                if batch:
                    pending.append(self._send(pool, tenant, bucket, batch))
                    count, nbytes = count + len(batch), nbytes + sum(b[2] for b in batch)
            finally:
                for f in pending:
                    f.result()  # the first failure propagates; the rest finished or failed
        return count, nbytes

    def _send(
        self, pool: ThreadPoolExecutor, tenant: str, bucket: str, batch: list[tuple[str, str, int]]
    ) -> Future[None]:
        self._remember(tenant, bucket, batch)
        return pool.submit(self._delete_batch, bucket, [key for key, _, _ in batch])

    def _remember(self, tenant: str, bucket: str, batch: list[tuple[str, str, int]]) -> None:
        """Record the batch before its delete is sent (a key seen in an earlier run is kept
        with the checksum it had then)."""
        keys = [key for key, _, _ in batch]
        with self.sessions.begin() as s:
            known = set(
                s.scalars(
                    select(ErasedObject.key).where(
                        ErasedObject.tenant == tenant,
                        ErasedObject.bucket == bucket,
                        ErasedObject.key.in_(keys),
                    )
                )
            )
            rows = [
                {"tenant": tenant, "bucket": bucket, "key": k, "etag": e, "size": n}
                for k, e, n in batch
                if k not in known
            ]
            if rows:
                s.execute(insert(ErasedObject), rows)

    def _delete_batch(self, bucket: str, keys: list[str]) -> None:
        resp = self.op.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise Unavailable(
                f"{len(errors)} object(s) in {bucket} were not deleted, e.g. {first.get('Key')}: "
                f"{first.get('Message') or first.get('Code')}; run the erasure again"
            )

    def _secrets(self, tenant: str) -> dict[str, Any]:
        """Revoke the tenant's leases and delete its KV secrets, database role and policy.
        Each delete of something already gone is a no-op."""
        import hvac.exceptions as hx

        bao = self.op.bao
        if bao is None:
            raise Unavailable(
                "no OpenBao token to delete the tenant's secrets with; set "
                "WORKBENCH_ERASE_OPENBAO_TOKEN and run the erasure again",
                tenant=tenant,
            )
        kv, dbm, policy = self.op.kv_mount, self.op.database_mount, policy_name(tenant)
        deleted: list[str] = []
        try:
            bao.sys.revoke_prefix(f"{dbm}/creds/{policy}")
            for path in self._kv_paths(f"tenants/{tenant}"):
                bao.secrets.kv.v2.delete_metadata_and_all_versions(path, mount_point=kv)
                deleted.append(f"{kv}/{path}")
            try:
                bao.secrets.database.read_role(policy, mount_point=dbm)
                bao.secrets.database.delete_role(policy, mount_point=dbm)
                deleted.append(f"{dbm}/roles/{policy}")
            except hx.InvalidPath:
                pass
            if policy in bao.sys.list_acl_policies()["data"]["keys"]:
                bao.sys.delete_acl_policy(policy)
                deleted.append(f"sys/policies/acl/{policy}")
        except (hx.VaultError, OSError) as e:
            raise Unavailable(
                f"OpenBao could not delete tenant {tenant}'s secrets: {e}; run the erasure again",
                tenant=tenant,
            ) from e
        return {"deleted": deleted}

    def _kv_paths(self, folder: str) -> list[str]:
        import hvac.exceptions as hx

        try:
            keys = self.op.bao.secrets.kv.v2.list_secrets(folder, mount_point=self.op.kv_mount)
        except hx.InvalidPath:
            return []
        paths = []
        for key in keys["data"]["keys"]:
            if key.endswith("/"):
                paths += self._kv_paths(f"{folder}/{key.rstrip('/')}")
            else:
                paths.append(f"{folder}/{key}")
        return paths

    def _sql(self, tenant: str) -> dict[str, Any]:
        """Drop the logins that reach the tenant's schema, then the schema and its tables,
        recording each table's row count and content checksum."""
        if not self.op.pg_url:
            return {"tables": {}, "logins": []}
        import psycopg
        from psycopg import sql

        from workbench.embedded.openbao import libpq_url

        schema = schema_name(tenant)
        tables: dict[str, Any] = {}
        logins: list[str] = []
        url = libpq_url(self.op.pg_url, self.op.sql_database)
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            if "does not exist" in str(e):
                return {"tables": {}, "logins": []}  # no tenant database: nothing to drop
            raise Unavailable(f"PostgreSQL for tenant data: {e}", tenant=tenant) from e
        with conn:
            if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone():
                logins = [
                    r[0]
                    for r in conn.execute(
                        # the logins granted the schema explicitly (its owner aside)
                        "SELECT DISTINCT r.rolname FROM pg_namespace n,"
                        " aclexplode(n.nspacl) a JOIN pg_roles r ON r.oid = a.grantee"
                        " WHERE n.nspname = %s AND a.grantee <> n.nspowner AND NOT r.rolsuper"
                        " AND r.rolcanlogin",
                        (schema,),
                    )
                ]
                for login in logins:
                    role = sql.Identifier(login)
                    conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                        (login,),
                    )
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
                names = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                        (schema,),
                    )
                ]
                for name in names:
                    row = conn.execute(
                        sql.SQL(
                            "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                            "ORDER BY t::text), '')) FROM {}.{} t"
                        ).format(sql.Identifier(schema), sql.Identifier(name))
                    ).fetchone()
                    assert row is not None
                    tables[f"{schema}.{name}"] = {"rows": int(row[0]), "md5": row[1]}
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        return {"tables": tables, "logins": sorted(logins)}

    # -- the certificate --------------------------------------------------------------------

    def manifest(self, tenant: str) -> tuple[int, int, str, list[dict[str, Any]]]:
        """(count, bytes, sha256 of the sorted `bucket key etag size` lines, the first
        INLINE_OBJECTS entries) of every object the tenant's erasure recorded."""
        digest = hashlib.sha256()
        count, nbytes = 0, 0
        inline: list[dict[str, Any]] = []
        with self.sessions() as s:
            rows = s.execute(
                select(ErasedObject.bucket, ErasedObject.key, ErasedObject.etag, ErasedObject.size)
                .where(ErasedObject.tenant == tenant)
                .order_by(ErasedObject.bucket, ErasedObject.key)
            )
            for bucket, key, etag, size in rows:
                digest.update(f"{bucket}\t{key}\t{etag}\t{size}\n".encode())
                count, nbytes = count + 1, nbytes + size
                if len(inline) < INLINE_OBJECTS:
                    inline.append({"bucket": bucket, "key": key, "etag": etag, "size": size})
        return count, nbytes, digest.hexdigest(), inline

    def _certify(self, tenant: str, this_run: dict[str, Any], first: bool) -> dict[str, Any]:
        now = utcnow()
        count, nbytes, manifest_sha, inline = self.manifest(tenant)  # (SQLite: not nested)
        with self.sessions.begin() as s:
            mark = s.get(TenantErasure, tenant, with_for_update=True)
            assert mark is not None
            certificate = {
                "tenant": tenant,
                "started_at": mark.started_at.isoformat(),
                "finished_at": now.isoformat(),
                "runs": mark.runs,
                "steps": mark.progress,
                "objects": {
                    "count": count,
                    "bytes": nbytes,
                    "manifest_sha256": manifest_sha,
                    "listed": inline,
                    "complete_list": count <= INLINE_OBJECTS,
                },
            }
            digest = hashlib.sha256(
                json.dumps(certificate, sort_keys=True, default=str).encode()
            ).hexdigest()
            left = _total(this_run)
            if first:
                mark.state = "erased"
                mark.finished_at = now
                mark.certificate_sha256 = digest
                event = self._event(
                    tenant,
                    "tenant.erase",
                    reason=REASON,
                    detail={**certificate, "certificate_sha256": digest},
                )
            else:  # a run after the erasure finished: record what it found (nothing, usually)
                event = self._event(
                    tenant,
                    "tenant.erase.recheck",
                    detail={"this_run": this_run, "found_left": left},
                )
            self.audit.append(s.connection(), [event])
        return {
            **certificate,
            "certificate_sha256": mark.certificate_sha256,
            "this_run": this_run,
            "found_left": left,
        }


def known_tenant(
    sessions: sessionmaker[Session], catalog: CatalogData, tenant: str
) -> TenantErasure | None:
    """The tenant's erasure mark, if any; raise Invalid for a tenant that is neither in the
    catalog nor being erased."""
    with sessions() as s:
        mark = s.get(TenantErasure, tenant)
        if mark is not None:
            s.expunge(mark)
    if mark is None and tenant not in catalog.tenants:
        known = ", ".join(sorted(catalog.tenants)) or "none"
        raise Invalid(f"unknown tenant {tenant!r}; known tenants: {known}", tenant=tenant)
    check_tenant(tenant)
    return mark


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Progress of one step over runs: numbers add up, lists and dicts gather."""
    out = dict(old)
    for key, value in new.items():
        before = out.get(key)
        if isinstance(value, bool) or before is None:
            out[key] = value
        elif isinstance(value, int | float):
            out[key] = before + value
        elif isinstance(value, list):
            out[key] = before + [v for v in value if v not in before]
        elif isinstance(value, dict):
            out[key] = {**before, **value}
        else:
            out[key] = value
    return out


def _total(this_run: dict[str, Any]) -> int:
    """How many things a run found to erase: 0 means nothing was left."""
    total = 0
    for done in this_run.values():
        for value in done.values():
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                total += value if value and not isinstance(value, bool) else 0
            elif isinstance(value, list | dict):
                total += len(value)
    return total
