"""JupyterHub integration: custom RBAC scopes and roles, spawner gates."""
