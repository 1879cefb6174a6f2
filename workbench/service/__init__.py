"""The workbench service: REST API and pages, run by JupyterHub as a managed service."""
