"""`python -m workbench.service --home DIR`: run the service where JupyterHub says
(`$JUPYTERHUB_SERVICE_URL`), expiring requests past their end in the background."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlparse

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback

from workbench.config import default_home, settings_for
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
    server = HTTPServer(app, xheaders=True, max_body_size=settings.service.max_body_bytes * 4)
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

    reaper = PeriodicCallback(reap, settings.service.reaper_seconds * 1000)
    reaper.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    reaper.stop()
    server.stop()
    wb.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.service")
    parser.add_argument("--home", type=Path, default=None)
    args = parser.parse_args(argv)
    asyncio.run(serve((args.home or default_home()).resolve()))


if __name__ == "__main__":
    main()
