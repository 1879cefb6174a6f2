"""The server extension: its settings and its handlers under `/workbench-lab/`."""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode, default

from .service import ServiceClient

__all__ = ["WorkbenchLabApp"]


class WorkbenchLabApp(ExtensionApp):
    """Serves `/workbench-lab/…` for the lab extension. The workbench's spawner sets the three
    environment variables these settings default to."""

    name = "workbench_lab"
    load_other_extensions = True

    api_url = Unicode(
        help="""The workbench service's API base, ending `/services/workbench/api/v1/`.
        Default: $WORKBENCH_API_URL.""",
    ).tag(config=True)

    request_id = Unicode(
        help="""The access request this server runs under; jobs are submitted and listed
        for it. Default: $WORKBENCH_REQUEST_ID.""",
    ).tag(config=True)

    token = Unicode(
        help="""The JupyterHub token the service is called with (the server's own, which the
        service accepts for the server's user). Default: $JUPYTERHUB_API_TOKEN.""",
    ).tag(config=True)

    timeout = Float(
        60.0,
        help="Seconds to wait for the service to answer one call (a notebook upload included).",
    ).tag(config=True)

    jobs_dir = Unicode(
        "jobs",
        help="""Folder, under the server's root, where "Open result" saves a job's executed
        notebook as `<id>-<name>.ipynb`.""",
    ).tag(config=True)

    @default("api_url")
    def _api_url_default(self) -> str:
        return os.environ.get("WORKBENCH_API_URL", "")

    @default("request_id")
    def _request_id_default(self) -> str:
        return os.environ.get("WORKBENCH_REQUEST_ID", "")

    @default("token")
    def _token_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def initialize_settings(self) -> None:
        self.service = ServiceClient(self.api_url, self.token, timeout=self.timeout)
        if not self.api_url or not self.request_id:
            self.log.info(
                "workbench_lab: no WORKBENCH_API_URL/WORKBENCH_REQUEST_ID; "
                "the Jobs panel will say this server has no access request"
            )

    def initialize_handlers(self) -> None:
        from .handlers import routes

        self.handlers.extend(routes(self))
