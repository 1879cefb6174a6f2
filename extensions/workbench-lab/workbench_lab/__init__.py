"""Workbench in JupyterLab: a server extension whose handlers under `/workbench-lab/` call the
workbench service for this server's access request, and the prebuilt labextension ("Run as
job", the Jobs panel, the request in the status bar)."""

from typing import Any

from ._version import __version__
from .app import WorkbenchLabApp

__all__ = ["WorkbenchLabApp", "__version__"]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "workbench-lab"}]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "workbench_lab", "app": WorkbenchLabApp}]
