"""The workbench service in its own process, as `python -m workbench.service --home DIR` runs it,
with the tests' fake hub (`tests.mocking.FakeHubAuth`) answering token checks, so a campaign
test can SIGKILL it, restart it on the same HOME and port, and watch it fail and recover.

    python -m tests.campaign.serve --home DIR --port N
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from tornado.httpserver import HTTPServer

from tests.mocking import FakeHubAuth
from workbench.config import settings_for
from workbench.service.app import make_app
from workbench.service.context import Workbench

PREFIX = "/services/workbench/"


def serve(home: Path, port: int) -> None:
    settings = settings_for(home)
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname).1s %(asctime)s %(name)s] %(message)s"
    )

    async def main() -> None:
        wb = Workbench.open(settings)
        app = make_app(wb, PREFIX, FakeHubAuth())
        server = HTTPServer(app, xheaders=True, max_body_size=settings.service.max_body_bytes * 4)
        server.listen(port, "127.0.0.1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        server.stop()
        wb.close()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.campaign.serve")
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.home.resolve(), args.port)
