"""The TypeScript unit tests (`npm test`), run when the extension's node_modules are there
(`npm install` in extensions/workbench-lab, which `pip install` of the package also does)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    not (PACKAGE_ROOT / "node_modules" / "typescript").is_dir() or not shutil.which("npm"),
    reason="run `npm install` in extensions/workbench-lab first",
)
def test_typescript_unit_tests_pass() -> None:
    run = subprocess.run(
        ["npm", "test"], cwd=PACKAGE_ROOT, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"\bfail 0\b", run.stdout), run.stdout[-4000:]
