"""What the service's handlers share: settings, the database, the audit log and the domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from workbench import dbsetup
from workbench.access.broker import Broker, SqlLocation
from workbench.accounts import stack_id
from workbench.airlock.service import Airlock
from workbench.artifacts.service import Artifacts
from workbench.artifacts.store import ArtifactObjects
from workbench.audit import AuditLog, Signer
from workbench.config import ArtifactSettings, Settings
from workbench.db import make_engine, session_factory
from workbench.erasure.operator import Operator
from workbench.erasure.service import Erasure
from workbench.jobs.backend import JobBackend
from workbench.jobs.local import LocalJobBackend
from workbench.jobs.service import Jobs
from workbench.requests import Requests


@dataclass
class Workbench:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditLog
    requests: Requests
    broker: Broker
    jobs: Jobs
    airlock: Airlock
    artifacts: Artifacts

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Workbench:
        """Connect to the database (migrating it to head), load the signing key (creating it on
        first start) and build the domain objects."""
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.db_url)
        if migrate:
            dbsetup.upgrade(engine)
        signer = Signer.from_file(settings.signing_key_path, create=True)
        audit = AuditLog(
            engine,
            signer,
            checkpoint_every=settings.audit.checkpoint_every,
            checkpoint_seconds=settings.audit.checkpoint_seconds,
            max_batch=settings.audit.max_batch,
        )
        sessions = session_factory(engine)
        requests = Requests(sessions, audit, settings.catalog, settings.policy)
        data = settings.data
        secrets = data.secret_store_class(config=settings.config)
        broker = Broker(
            sessions,
            audit,
            settings.catalog,
            secrets,
            data.object_store_class(config=settings.config),
            sql_location(data.sql_url),
            data.grant_seconds,
        )
        # ending a request revokes its secret-store tokens at once (the reaper retries)
        requests.on_end.append(lambda _request_id: broker.revoke_ended())
        jobs = Jobs(
            sessions,
            audit,
            settings.catalog,
            job_backend(settings),
            settings.jobs.api_url,
            settings.home / "job-outputs",
        )
        # ...and stops its jobs; a job that ended loses its own tokens and leases
        requests.on_end.append(lambda _request_id: jobs.reconcile())
        jobs.on_end.append(broker.revoke_job)
        airlock = Airlock(sessions, audit, settings.catalog, settings.home / "exports")
        artifacts = Artifacts(
            sessions,
            audit,
            settings.catalog,
            ArtifactSettings(config=settings.config),
            ArtifactObjects(secrets, broker.objects),
            jobs,
        )
        jobs.on_end.append(artifacts.gates.job_ended)  # an evaluation's jobs end its report
        return cls(settings, engine, sessions, audit, requests, broker, jobs, airlock, artifacts)

    def erasure(self, operator: Operator, **options: Any) -> Erasure:
        """The tenant erasure over this workbench's parts, acting with `operator`'s storage
        and secret-store credentials (`workbench.erasure.operator`)."""
        return Erasure(
            self.sessions,
            self.audit,
            self.settings.catalog,
            self.requests,
            self.broker,
            self.jobs,
            operator,
            artifacts=self.artifacts,
            exports=self.airlock,
            **options,
        )

    def close(self) -> None:
        self.audit.close()
        self.engine.dispose()


def job_backend(settings: Settings) -> JobBackend:
    """The configured backend; the local one keeps its working directories under HOME."""
    backend = settings.jobs.backend_class(config=settings.config)
    if isinstance(backend, LocalJobBackend):
        if not backend.work_root:
            backend.work_root = str(settings.home / "jobs")
        if backend.stack_id == "local":
            backend.stack_id = stack_id(settings.home)
    return backend


def sql_location(url: str) -> SqlLocation | None:
    if not url:
        return None
    parsed = urlparse(url)
    return SqlLocation(parsed.hostname or "127.0.0.1", parsed.port or 5432, parsed.path.lstrip("/"))
