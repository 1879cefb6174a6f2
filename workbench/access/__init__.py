"""Tenant-scoped data access: the broker, the secret store and the object store adapters."""
