"""`python -m workbench.service --home DIR`: run the service where JupyterHub says
(`$JUPYTERHUB_SERVICE_URL`), expiring requests past their end in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback

from workbench.compute.reaper import Limits
from workbench.compute.service import Compute
from workbench.config import default_home, settings_for
from workbench.hub.client import HubClient
from workbench.service.api.jobs import NOTEBOOK_MAX_BYTES
from workbench.service.app import make_app
from workbench.service.context import Workbench

log = logging.getLogger("workbench.service")


async def serve(home: Path) -> None:
    settings = settings_for(home)
    logging.basicConfig(
        level=logging.DEBUG if settings.service.debug else logging.INFO,
        format="[%(levelname).1s %(asctime)s %(name)s] %(message)s",
    )
    wb = Workbench.open(settings)
    app = make_app(wb)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    body_limit = max(settings.service.max_body_bytes * 4, NOTEBOOK_MAX_BYTES)
    server = HTTPServer(app, xheaders=True, max_body_size=body_limit)
    server.listen(url.port or 80, url.hostname or "127.0.0.1")
    log.info(
        "workbench service on %s (database %s)", url.geturl(), wb.engine.url.render_as_string()
    )

    async def reap() -> None:
        try:
            ended = await asyncio.get_running_loop().run_in_executor(None, wb.requests.expire_due)
            if ended:
                log.info("expired requests %s", ended)
        except Exception:
            log.exception("reaper failed")

    compute = _compute(wb)
    if compute is not None:
        # a revoked request's servers stop at once, not at the next round
        wb.requests.on_end.append(lambda _rid: compute.reap())

    async def reap_servers() -> None:
        if compute is None:
            return
        try:
            stops = await asyncio.get_running_loop().run_in_executor(None, compute.reap)
            for stop in stops:
                log.info(
                    "%s %s/%s: %s", stop.action, stop.server.user, stop.server.name, stop.reason
                )
        except Exception:
            log.exception("server reaper failed")

    async def round_() -> None:
        await reap()
        await reap_servers()

    reaper = PeriodicCallback(round_, settings.service.reaper_seconds * 1000)
    reaper.start()

    async def follow_jobs() -> None:
        try:
            ended = await asyncio.get_running_loop().run_in_executor(None, wb.jobs.reconcile)
            for job_id, state, reason in ended:
                log.info("job %s %s: %s", job_id, state, reason)
        except Exception:
            log.exception("job reconciler failed")

    jobs = PeriodicCallback(follow_jobs, settings.jobs.poll_seconds * 1000)
    jobs.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    reaper.stop()
    jobs.stop()
    server.stop()
    wb.close()


def _compute(wb: Workbench) -> Compute | None:
    """The server reaper, when the service runs under a hub that gave it a token."""
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        log.warning("no JUPYTERHUB_API_TOKEN: servers are not reaped by this service")
        return None
    svc = wb.settings.service
    limits = Limits(
        idle=timedelta(minutes=svc.idle_minutes), idle_gpu=timedelta(minutes=svc.idle_gpu_minutes)
    )
    return Compute(wb.sessions, wb.audit, HubClient(), limits)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.service")
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    asyncio.run(serve((args.home or default_home()).resolve()))


if __name__ == "__main__":
    main()
