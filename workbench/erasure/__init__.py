"""Tenant erasure: `workbench tenant erase TENANT --yes` (see service.py)."""
