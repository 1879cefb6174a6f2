"""The export airlock: a file leaves the workbench only after a reviewer approved it.

A researcher asks to export a file (a figure, a table) under one of their approved requests;
its bytes are kept under the service's HOME (`exports/<tenant>/<sha256>`), never handed back
until a manager of the request's tenant — not the requester — approves it. Every step and
every download is an audit event, committed before the bytes leave.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from workbench.actor import Actor
from workbench.airlock.models import Export, ExportState
from workbench.audit import AuditEvent, AuditLog
from workbench.config import CatalogData
from workbench.db import utcnow
from workbench.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unavailable
from workbench.listing import governed_list
from workbench.requests.models import AccessRequest
from workbench.scopes import ADMIN, APPROVE, AUDIT, DATA

MAX_BYTES = 10 * 1024 * 1024
# a file name, not a path: no separators, no leading dot, no control characters
FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.,()+=-]{0,199}")
KINDS = ("approve", "reject")


class Airlock:
    """Submit, review, list and release exports; erase a tenant's."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        audit: AuditLog,
        catalog: CatalogData,
        root: Path,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.sessions = sessions
        self.audit = audit
        self.catalog = catalog
        self.root = root
        self.max_bytes = max_bytes

    def _event(self, actor: Actor, export: Export, action: str, **detail: Any) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=actor.name,
            role=actor.role,
            tenant=export.tenant,
            request_id=export.request_id,
            resource=f"export:{export.id}",
            client=actor.client,
            detail={
                "filename": export.filename,
                "sha256": export.sha256,
                "size": export.size,
                "state": export.state,
                **detail,
            },
        )

    def _path(self, tenant: str, sha256: str) -> Path:
        return self.root / tenant / sha256

    # -- the researcher ------------------------------------------------------------------

    def submit(
        self, actor: Actor, request_id: int, filename: str, content: bytes, reason: str
    ) -> dict[str, Any]:
        """Keep `content` for review under `request_id` (the caller's, approved, unexpired)."""
        ctx: dict[str, Any] = {"action": "export.request", "request_id": request_id}
        if not actor.has(DATA):
            raise Forbidden("exporting files needs the researcher role", **ctx)
        if actor.job_id is not None and request_id != actor.request_id:
            raise NotFound(f"you have no access request {request_id}", **ctx)
        now = utcnow()
        with self.sessions() as s:
            req = s.get(AccessRequest, request_id)
            if req is None or req.requester != actor.name:
                raise NotFound(f"you have no access request {request_id}", **ctx)
            ctx["tenant"] = req.tenant
            if not req.is_active(now):
                raise Conflict(
                    f"request {request_id} is not approved and unexpired; export under an "
                    "active request",
                    **ctx,
                )
            tenant = req.tenant
        if not FILENAME.fullmatch(filename or ""):
            raise Invalid(
                f"file name {filename[:80]!r} is not valid: 1-200 letters, digits, spaces and "
                "._,()+=- starting with a letter or digit, no directories",
                **ctx,
            )
        if not content:
            raise Invalid("the file is empty", **ctx)
        if len(content) > self.max_bytes:
            raise TooLarge(f"the file is larger than {self.max_bytes} bytes", **ctx)
        reason = reason.strip()
        if not reason:
            raise Invalid("say why the file should leave (reason)", **ctx)
        digest = hashlib.sha256(content).hexdigest()
        self._store(tenant, digest, content)
        with self.sessions.begin() as s:
            export = Export(
                request_id=request_id,
                tenant=tenant,
                requester=actor.name,
                filename=filename,
                size=len(content),
                sha256=digest,
                reason=reason,
                state=ExportState.PENDING,
                created_at=now,
                downloads=0,
            )
            s.add(export)
            s.flush()
            self.audit.append(
                s.connection(), [self._event(actor, export, "export.request", reason=reason)]
            )
            return export.as_dict()

    def _store(self, tenant: str, digest: str, content: bytes) -> None:
        path = self._path(tenant, digest)
        if path.exists():
            return  # content-addressed: the same bytes are already kept
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    # -- seeing ---------------------------------------------------------------------------

    def _can_review(self, actor: Actor, export: Export) -> bool:
        return actor.has(APPROVE) and self.catalog.governs(actor.name, export.tenant)

    def _visible(self, actor: Actor, export: Export) -> bool:
        return (
            export.requester == actor.name
            or self._can_review(actor, export)
            or actor.has(AUDIT)
            or actor.has(ADMIN)
        )

    def _find(self, s: Session, actor: Actor, export_id: int, lock: bool = False) -> Export:
        export = s.get(Export, export_id, with_for_update=lock)
        if export is None or not self._visible(actor, export):
            raise NotFound(f"no export {export_id}")
        return export

    def get(self, actor: Actor, export_id: int) -> dict[str, Any]:
        with self.sessions() as s:
            return self._find(s, actor, export_id).as_dict()

    def search(self, actor: Actor, view: str = "all", state: str | None = None) -> list[dict]:
        """`mine`: my own; `review`: pending ones I may review; `all`: every one I may see."""
        stmt = governed_list(Export, actor, self.catalog, view, state, ExportState, "review")
        with self.sessions() as s:
            return [e.as_dict() for e in s.scalars(stmt.limit(1000))]

    # -- the reviewer ---------------------------------------------------------------------

    def review(self, actor: Actor, export_id: int, kind: str, comment: str = "") -> dict:
        """Approve or reject a pending export: a manager of its tenant, not its requester."""
        if kind not in KINDS:
            raise Invalid(f"unknown decision {kind!r}; use approve or reject")
        with self.sessions.begin() as s:
            export = self._find(s, actor, export_id, lock=True)
            ctx: dict[str, Any] = {
                "tenant": export.tenant,
                "request_id": export.request_id,
                "action": f"export.{kind}",
            }
            if export.requester == actor.name:
                raise Forbidden("you cannot review your own export; a manager must", **ctx)
            if not self._can_review(actor, export):
                raise Forbidden(
                    f"only a manager of tenant {export.tenant!r} may review its exports", **ctx
                )
            if export.state != ExportState.PENDING:
                raise Conflict(f"export {export_id} is {export.state}, not pending", **ctx)
            export.state = ExportState.APPROVED if kind == "approve" else ExportState.REJECTED
            export.reviewer = actor.name
            export.reviewed_at = utcnow()
            export.comment = comment
            self.audit.append(
                s.connection(), [self._event(actor, export, f"export.{kind}", comment=comment)]
            )
            return export.as_dict()

    # -- release ---------------------------------------------------------------------------

    def download(self, actor: Actor, export_id: int) -> tuple[dict[str, Any], bytes]:
        """The bytes: to the requester once approved (`export.download`), or to a reviewer
        of its tenant while it is pending (`export.inspect`). On record before they leave."""
        with self.sessions.begin() as s:
            export = self._find(s, actor, export_id, lock=True)
            ctx: dict[str, Any] = {
                "tenant": export.tenant,
                "request_id": export.request_id,
                "action": "export.download",
            }
            if export.requester == actor.name:
                if export.state != ExportState.APPROVED:
                    raise Conflict(
                        f"export {export_id} is {export.state}; it is released only after a "
                        "reviewer approves it",
                        **ctx,
                    )
                action = "export.download"
                export.downloads += 1
            elif self._can_review(actor, export) and export.state == ExportState.PENDING:
                action = "export.inspect"
            else:
                raise Forbidden(f"export {export_id} is not released to you", **ctx)
            content = self._read(export, ctx)
            self.audit.append(s.connection(), [self._event(actor, export, action)])
            meta = export.as_dict()
        return meta, content

    def _read(self, export: Export, ctx: dict[str, Any]) -> bytes:
        try:
            content = self._path(export.tenant, export.sha256).read_bytes()
        except OSError as e:
            raise Unavailable(f"the file of export {export.id} cannot be read", **ctx) from e
        if hashlib.sha256(content).hexdigest() != export.sha256:
            raise Conflict(f"the file of export {export.id} was altered; not released", **ctx)
        return content

    # -- erasure ----------------------------------------------------------------------------

    def erase_tenant(self, tenant: str) -> list[dict[str, Any]]:
        """Delete every kept file of `tenant` and mark its exports erased (idempotent);
        return what was erased: id, file name, size and checksum."""
        erased = []
        with self.sessions.begin() as s:
            rows = s.scalars(
                select(Export).where(Export.tenant == tenant, Export.state != ExportState.ERASED)
            ).all()
            for export in rows:
                export.state = ExportState.ERASED
                erased.append(
                    {
                        "id": export.id,
                        "filename": export.filename,
                        "size": export.size,
                        "sha256": export.sha256,
                    }
                )
        folder = self.root / tenant
        if folder.is_dir():
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()
        return erased

    def files_of(self, tenant: str) -> list[str]:
        folder = self.root / tenant
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
