"""What the service's handlers share: settings, the database, the audit log and the domain."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from workbench import dbsetup
from workbench.audit import AuditLog, Signer
from workbench.config import Settings
from workbench.db import make_engine, session_factory
from workbench.requests import Requests


@dataclass
class Workbench:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    audit: AuditLog
    requests: Requests

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
        return cls(settings, engine, sessions, audit, requests)

    def close(self) -> None:
        self.audit.close()
        self.engine.dispose()
