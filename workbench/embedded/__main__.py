"""`python -m workbench.embedded [--home DIR] [--port PORT]`: `workbench up` without the CLI
(the test fixtures use it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.config import default_home
from workbench.embedded.up import DEFAULT_PORT, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.embedded", description=__doc__)
    parser.add_argument("--home", type=Path, default=None, help="state directory")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="public port")
    args = parser.parse_args(argv)
    return up(args.home or default_home(), args.port)


if __name__ == "__main__":
    sys.exit(main())
