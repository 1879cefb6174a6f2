"""`python -m workbench.service --home DIR`: run the service where JupyterHub says
(`$JUPYTERHUB_SERVICE_URL`), expiring requests past their end in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
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

    await run_until_signalled(wb, server, start_loops(wb, _compute(wb)))


async def run_until_signalled(
    wb: Workbench, server: HTTPServer, loops: list[PeriodicCallback]
) -> None:
    """Serve until SIGINT or SIGTERM; then stop the loops and the server, close the domain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for loop_ in loops:
        loop_.stop()
    server.stop()
    wb.close()


def start_loops(wb: Workbench, compute: Compute | None) -> list[PeriodicCallback]:
    """The service's background work on the running event loop: expire requests past their
    end and reap servers (every `reaper_seconds`), follow jobs (every `poll_seconds`)."""

    async def in_thread(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn)
        except Exception:
            log.exception("%s failed", name)
            return []

    if compute is not None:
        # a revoked request's servers stop at once, not at the next round
        wb.requests.on_end.append(lambda _rid: compute.reap())

    async def reap() -> None:
        ended = await in_thread("expiring requests", wb.requests.expire_due)
        if ended:
            log.info("expired requests %s", ended)
        if compute is not None:
            for stop in await in_thread("server reaper", compute.reap):
                log.info(
                    "%s %s/%s: %s", stop.action, stop.server.user, stop.server.name, stop.reason
                )

    async def follow_jobs() -> None:
        for job_id, state, reason in await in_thread("job reconciler", wb.jobs.reconcile):
            log.info("job %s %s: %s", job_id, state, reason)

    settings = wb.settings
    loops = [
        PeriodicCallback(reap, settings.service.reaper_seconds * 1000),
        PeriodicCallback(follow_jobs, settings.jobs.poll_seconds * 1000),
    ]
    for loop_ in loops:
        loop_.start()
    return loops


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
