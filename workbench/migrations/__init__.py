"""Alembic migrations of the service database; run with `workbench db upgrade`."""
