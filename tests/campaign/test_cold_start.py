"""What the first call after a start pays inside its deadline.

Every call's database and store work runs under `ServiceSettings.call_seconds` (6 s; past it
the caller gets 503). Work that only the first call of its kind does, such as importing a
large module, must happen at start, not inside that deadline, or a loaded machine turns the
first valid call into a 503. The state machine met exactly that (see the campaign doc)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.campaign.conftest import ROOT

PROBE = """
import json, sys
import workbench.service.__main__  # what `python -m workbench.service` has loaded to serve
from workbench.jobs import notebooks
before = set(sys.modules)
nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
notebooks.check_parameters(notebooks.snapshot(nb), {})  # what POST jobs does first
print(json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""


def test_the_first_job_submission_imports_nothing_inside_its_deadline() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert "nbformat" not in imported, f"imported by the first submission: {imported}"
