"""Workbench: a secure research workbench on JupyterHub."""

__version__ = "0.1.0"
