"""Alembic environment: the URL comes from the caller (`workbench db upgrade`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import workbench.access.models  # noqa: F401  (registers tables on the metadata)
import workbench.airlock.models  # noqa: F401
import workbench.artifacts.models  # noqa: F401
import workbench.audit.models  # noqa: F401
import workbench.compute.models  # noqa: F401
import workbench.erasure.models  # noqa: F401
import workbench.jobs.models  # noqa: F401
import workbench.requests.models  # noqa: F401
from workbench.db import Base, make_engine

config = context.config


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


conn = config.attributes.get("connection")
if conn is not None:
    run(conn)
else:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        run(connection)
    engine.dispose()
