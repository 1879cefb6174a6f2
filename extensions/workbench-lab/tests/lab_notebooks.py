"""Notebooks for the tests, written as JupyterLab saves them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

PARAMS = """epochs = 5  # passes over the data
lr: float = 0.01
optimizer = "adam"
use_cuda = False
"""


def write_notebook(root: Path, path: str, *, parameters: str | None = PARAMS) -> dict[str, Any]:
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"},
            "language_info": {"name": "python"},
        }
    )
    if parameters is not None:
        nb.cells.append(new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.append(new_code_cell("print(epochs * lr)"))
    full = root / path
    full.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, full)
    return json.loads(full.read_text())
