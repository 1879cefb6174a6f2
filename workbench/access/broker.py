"""The credential broker: data credentials only for an approved, unexpired request of the
caller's own that covers the dataset — and only after that grant is durably on record.

Order of a grant (invariant 1): check the request; have the audit log commit the grant's event
and the grant row in one transaction (on PostgreSQL concurrent grants share it: group commit);
only then ask the secret store, with a token minted for that request whose policy reaches only that
tenant's paths (invariant 2: a bug here still cannot fetch another tenant's secret). A grant's
id is the seq of its `grant.issue` event. Ending a request revokes its tokens, and with them
their leases.

A job's grants use a token minted for that job alone (same tenant policy, no longer than its
request), so that ending the job (`revoke_job`) revokes its credentials and nothing else.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from workbench.access.models import Grant, RequestToken, grant_view
from workbench.actor import Actor
from workbench.audit import AuditEvent, AuditLog, AuditUnavailable
from workbench.config import CatalogData
from workbench.db import RawQuery, utcnow
from workbench.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable, WorkbenchError
from workbench.requests.models import AccessRequest, State
from workbench.scopes import DATA

log = logging.getLogger(__name__)


class MintedToken(Protocol):
    token: str
    accessor: str
    expires_at: datetime


class SqlCredentials(Protocol):
    username: str
    password: str
    lease_id: str
    expires_at: datetime


class Secrets(Protocol):
    """What the broker needs of a secret store (workbench.access.secrets.SecretStore)."""

    def ensure_tenant(self, tenant: str) -> None: ...
    def mint_request_token(
        self, request_id: int, tenant: str, ttl_seconds: int, job_id: int | None = None
    ) -> Any: ...
    def read_s3_keys(self, token: str, tenant: str) -> dict[str, str]: ...
    def sql_credentials(self, token: str, tenant: str, ttl_seconds: int) -> Any: ...
    def revoke_token(self, accessor: str) -> None: ...


class Objects(Protocol):
    """What the broker needs of an object store (workbench.access.objects.ObjectStore)."""

    def location(self, tenant: str, dataset: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SqlLocation:
    host: str
    port: int
    database: str

    def for_tenant(self, tenant: str, table: str) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "database": self.database,
            "schema": f"tenant_{tenant}",
            "table": table,
        }


def split_dataset(ref: str, default_tenant: str) -> tuple[str, str]:
    """`acme/calls` → (acme, calls); a bare `calls` belongs to the request's tenant."""
    tenant, _, name = ref.strip().rpartition("/")
    return (tenant or default_tenant), name


class Broker:
    """Hands out tenant-scoped credentials under approved requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        secrets: Secrets,
        objects: Objects,
        sql: SqlLocation | None = None,
        grant_seconds: int = 3600,
    ) -> None:
        self.sessions = sessions
        self.engine = sessions.kw["bind"]
        self.audit = audit
        self.catalog = catalog
        self.secrets = secrets
        self.objects = objects
        self.sql = sql
        self.grant_seconds = grant_seconds
        self._request = RawQuery(self.engine, _REQUEST)
        # (request id, job id or None) → minted token, kept in memory only
        self._tokens: dict[tuple[int, int | None], Any] = {}
        self._ended_jobs: set[int] = set()
        self._lock = threading.Lock()

    # -- the grant --------------------------------------------------------------------------

    def grant(
        self,
        actor: Actor,
        request_id: int,
        dataset: str,
        resource: str | None = None,
        *,
        job_id: int | None = None,
    ) -> dict[str, Any]:
        """Credentials for `dataset` under `request_id`, once the grant is on record.

        With `job_id` the credential comes from a token minted for that job alone (revoked by
        `revoke_job`), the grant row carries the job, and the event's resource is `job:<id>`.
        The caller (the jobs service) vouches that the job belongs to the request.
        """
        now = utcnow()
        if job_id is not None and resource is None:
            resource = f"job:{job_id}"
        row = self._request.first(id=request_id)  # the request alone, not its decisions
        req = _Request(*row) if row is not None else None
        tenant, name = split_dataset(dataset, req.tenant if req else "")
        kind = self._check(actor, request_id, req, tenant, name, now)
        assert req is not None
        expires = min(req.expires_at or now, now + timedelta(seconds=self.grant_seconds))
        grant: dict[str, Any] = {  # a row of `grants`; its id is the event's seq
            "request_id": req.id,
            "actor": actor.name,
            "tenant": tenant,
            "dataset": name,
            "kind": kind,
            "resource": resource,
            "issued_at": now,
            "expires_at": expires,
            "lease_id": None,
            "job_id": job_id,
        }
        event = _grant_event(actor, req, tenant, name, resource=resource)
        event.detail = {"kind": kind, "expires_at": str(expires)}
        if job_id is not None:
            event.detail["job_id"] = job_id

        def grant_row(seq: int) -> list[tuple[Table, dict[str, Any]]]:
            grant["id"] = event.detail["grant_id"] = seq
            return [(_GRANTS, grant)]

        try:  # the event and the grant row commit together: the grant is durable
            self.audit.record(event, rows=grant_row)
        except AuditUnavailable as e:
            raise Unavailable(
                f"{e}, so no credential was issued; try again shortly",
                tenant=tenant,
                dataset=name,
                request_id=req.id,
                action="grant.issue",
            ) from e
        out = grant_view(grant)
        remaining = int((expires - now).total_seconds())
        # committed: the grant is on record; only now may a credential leave
        try:
            credentials, location = self._credentials(req, tenant, name, kind, remaining, job_id)
        except WorkbenchError as e:
            self._record_failure(actor, req, tenant, name, grant["id"], e.message, resource)
            raise
        except Exception as e:  # the secret store misbehaved: fail closed, say so
            self._record_failure(actor, req, tenant, name, grant["id"], str(e), resource)
            raise Unavailable(
                f"the secret store could not issue credentials: {e}", tenant=tenant
            ) from e
        if job_id is not None:
            out["job_id"] = job_id
        return {**out, "credentials": credentials, "location": location}

    def _check(
        self,
        actor: Actor,
        request_id: int,
        req: _Request | None,
        tenant: str,
        name: str,
        now: datetime,
    ) -> str:
        """Raise unless `actor` may have `tenant/name` under `req` (request `request_id`, None
        when there is none); return the dataset's kind.
        Each refusal names the tenant whose data was asked for, so it is filed under it."""
        ctx: dict[str, Any] = {"tenant": tenant or None, "dataset": name, "action": "grant.issue"}
        if not actor.has(DATA):
            raise Forbidden("obtaining data credentials needs the researcher role", **ctx)
        if req is None or req.requester != actor.name:
            raise NotFound(f"you have no access request {request_id}", **ctx)
        ctx["request_id"] = req.id
        if not name:
            raise Invalid("name a dataset, e.g. acme/calls", **ctx)
        if tenant != req.tenant:
            raise Forbidden(
                f"request {req.id} is for tenant {req.tenant!r}, not {tenant!r}; "
                f"file a separate request for {tenant}'s data",
                **ctx,
            )
        if name not in req.datasets:
            raise Forbidden(
                f"request {req.id} covers {', '.join(req.datasets)} of {tenant}, not {name!r}",
                **ctx,
            )
        if req.state != State.APPROVED:
            raise Conflict(f"request {req.id} is {req.state}, not approved", **ctx)
        if not req.is_active(now):
            raise Conflict(f"request {req.id} has expired", **ctx)
        known = self.catalog.tenants.get(tenant)
        dataset = known.datasets.get(name) if known else None
        if dataset is None:
            raise NotFound(f"tenant {tenant!r} has no dataset {name!r} any more", **ctx)
        return dataset.kind

    def _credentials(
        self, req: _Request, tenant: str, name: str, kind: str, ttl: int, job_id: int | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        token = self._token(req, job_id)
        if kind == "table":
            if self.sql is None:
                raise Unavailable("SQL datasets are not configured here", tenant=tenant)
            creds = self.secrets.sql_credentials(token.token, tenant, ttl)
            return (
                {"username": creds.username, "password": creds.password},
                self.sql.for_tenant(tenant, name),
            )
        keys = self.secrets.read_s3_keys(token.token, tenant)
        return (
            {
                "access_key_id": keys["access_key_id"],
                "secret_access_key": keys["secret_access_key"],
            },
            self.objects.location(tenant, name),
        )

    def _token(self, req: _Request, job_id: int | None) -> Any:
        """The secret-store token of the request (or of one job of it): minted once, reused
        until shortly before it expires, recorded by accessor so that ending the request (or
        the job) revokes it. Minting holds the lock, so `revoke_job` cannot miss a token."""
        key = (req.id, job_id)
        with self._lock:
            cached = self._tokens.get(key)
            now = utcnow()
            if cached is not None and (cached.expires_at - now).total_seconds() > 60:
                return cached
            assert req.expires_at is not None
            ttl = int((req.expires_at - now).total_seconds())
            if ttl <= 0:
                raise Conflict(f"request {req.id} has expired", tenant=req.tenant)
            if job_id is not None:
                self._check_job_open(req, job_id)
            self.secrets.ensure_tenant(req.tenant)
            minted = self.secrets.mint_request_token(req.id, req.tenant, ttl, job_id=job_id)
            with self.sessions.begin() as s:
                s.add(
                    RequestToken(
                        accessor=minted.accessor,
                        request_id=req.id,
                        tenant=req.tenant,
                        created_at=now,
                        expires_at=minted.expires_at,
                        job_id=job_id,
                    )
                )
            self._tokens[key] = minted
            return minted

    def _check_job_open(self, req: _Request, job_id: int) -> None:
        """Refuse a token for a job that ended, or that holds tokens of another request."""
        ended = Conflict(f"job {job_id} has ended; it gets no more credentials", tenant=req.tenant)
        if job_id in self._ended_jobs:
            raise ended
        with self.sessions() as s:
            rows = s.execute(
                select(RequestToken.request_id, RequestToken.revoked_at).where(
                    RequestToken.job_id == job_id
                )
            ).all()
        if any(rid != req.id for rid, _ in rows):
            raise Forbidden(f"job {job_id} is not a job of request {req.id}", tenant=req.tenant)
        if any(revoked is not None for _, revoked in rows):
            self._ended_jobs.add(job_id)
            raise ended

    def _record_failure(
        self,
        actor: Actor,
        req: _Request,
        tenant: str,
        name: str,
        grant_id: int,
        why: str,
        resource: str | None,
    ) -> None:
        event = _grant_event(actor, req, tenant, name, resource=resource)
        event.outcome, event.reason = "error", f"no credential was issued: {why}"
        event.detail = {"grant_id": grant_id}
        try:
            self.audit.record(event)
        except Exception as e:
            log.error("could not record the failure of grant %s: %s", grant_id, e)

    # -- ending -----------------------------------------------------------------------------

    def revoke_ended(self) -> list[str]:
        """Revoke the tokens (and so the leases) of every request that is no longer active,
        its jobs' tokens included. Idempotent; the reaper calls it, and so does every decision
        that ends a request."""
        now = utcnow()
        with self.sessions() as s:
            rows = s.execute(
                select(RequestToken, AccessRequest)
                .join(AccessRequest, AccessRequest.id == RequestToken.request_id)
                .options(lazyload(AccessRequest.decisions))
                .where(RequestToken.revoked_at.is_(None))
            ).all()
            due = [
                _Due(t.accessor, t.request_id, r.tenant, t.job_id)
                for t, r in rows
                if not r.is_active(now)
            ]
        return self._revoke(due, "request ended")

    def revoke_job(self, job_id: int) -> None:
        """Revoke the tokens (and so the leases and SQL logins) minted for job `job_id`, and
        refuse it credentials from now on. Idempotent: a job already ended records nothing."""
        with self._lock:  # no token of this job is being minted while we look
            self._ended_jobs.add(job_id)
            for key in [k for k in self._tokens if k[1] == job_id]:
                del self._tokens[key]
        with self.sessions() as s:
            rows = s.execute(
                select(RequestToken).where(
                    RequestToken.job_id == job_id, RequestToken.revoked_at.is_(None)
                )
            ).scalars()
            due = [_Due(t.accessor, t.request_id, t.tenant, t.job_id) for t in rows]
        failed = len(due) - len(self._revoke(due, "job ended"))
        if failed:
            raise Unavailable(
                f"could not revoke {failed} token(s) of job {job_id}; the reaper tries again"
            )

    def _revoke(self, due: list[_Due], reason: str) -> list[str]:
        """Revoke each token in `due`, mark it revoked and record `token.revoke` with
        `reason`; return the accessors revoked (a failure is left for the next round)."""
        revoked = []
        for tok in due:
            try:
                self.secrets.revoke_token(tok.accessor)
            except Exception as e:  # the next round tries again
                log.warning("could not revoke token of request %s: %s", tok.request_id, e)
                continue
            with self.sessions.begin() as s:
                row = s.get(RequestToken, tok.accessor)
                if row is not None:
                    row.revoked_at = utcnow()
                self.audit.append(
                    s.connection(),
                    [
                        AuditEvent(
                            action="token.revoke",
                            actor="workbench",
                            role="system",
                            tenant=tok.tenant,
                            request_id=tok.request_id,
                            resource=f"job:{tok.job_id}" if tok.job_id is not None else None,
                            detail={"reason": reason},
                        )
                    ],
                )
            with self._lock:
                key = (tok.request_id, tok.job_id)
                cached = self._tokens.get(key)
                if cached is not None and cached.accessor == tok.accessor:
                    del self._tokens[key]
            revoked.append(tok.accessor)
        return revoked

    def list_grants(self, actor: Actor, request_id: int | None = None) -> list[dict[str, Any]]:
        stmt = select(Grant).where(Grant.actor == actor.name).order_by(Grant.id.desc())
        if request_id is not None:
            stmt = stmt.where(Grant.request_id == request_id)
        with self.sessions() as s:
            return [g.as_dict() for g in s.scalars(stmt.limit(1000))]

    def own_grant(self, actor: Actor, grant_id: int) -> dict[str, Any] | None:
        with self.sessions() as s:
            g = s.get(Grant, grant_id)
            return g.as_dict() if g is not None and g.actor == actor.name else None


@dataclass(frozen=True)
class _Request:
    """What a grant needs of its access request: a row, cheaper than the ORM object."""

    id: int
    requester: str
    tenant: str
    datasets: list[str]
    purpose: str
    state: str
    expires_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        return (
            self.state == State.APPROVED and self.expires_at is not None and now < self.expires_at
        )


# Built once: building a statement costs more Python than running this one does.
_REQUEST = select(
    AccessRequest.id,
    AccessRequest.requester,
    AccessRequest.tenant,
    AccessRequest.datasets,
    AccessRequest.purpose,
    AccessRequest.state,
    AccessRequest.expires_at,
).where(AccessRequest.id == bindparam("id"))
_GRANTS: Table = Grant.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class _Due:
    """A token to revoke."""

    accessor: str
    request_id: int
    tenant: str
    job_id: int | None


def _grant_event(
    actor: Actor, req: _Request, tenant: str, name: str, resource: str | None
) -> AuditEvent:
    return AuditEvent(
        action="grant.issue",
        actor=actor.name,
        role=actor.role,
        tenant=tenant,
        dataset=name,
        purpose=req.purpose,
        request_id=req.id,
        resource=resource,
        client=actor.client,
    )
