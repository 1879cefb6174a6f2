"""Notebook snapshots for jobs: validated, outputs cleared, parameters checked against the
notebook's `parameters` cell (papermill's convention: the cell tagged `parameters`)."""

from __future__ import annotations

import ast
import copy
from typing import Any

# imported with the service, not by the first job submission inside its call deadline (it
# takes seconds on a loaded machine)
import nbformat

__all__ = ["NotebookError", "check_parameters", "parameter_names", "snapshot"]

MAX_CELLS = 2000


class NotebookError(ValueError):
    """Not a notebook a job can run; the message says why."""


def snapshot(nb: dict[str, Any]) -> dict[str, Any]:
    """A validated copy of `nb` (nbformat 4) with outputs and execution counts cleared."""
    if not isinstance(nb, dict) or nb.get("nbformat") != 4:
        raise NotebookError("the notebook must be an nbformat 4 document (a .ipynb file's JSON)")
    try:
        node = nbformat.from_dict(copy.deepcopy(nb))
        nbformat.validate(node)
    except Exception as e:  # nbformat raises several kinds
        raise NotebookError(f"the notebook is not valid nbformat 4: {str(e)[:300]}") from e
    if len(node.cells) > MAX_CELLS:
        raise NotebookError(f"the notebook has {len(node.cells)} cells; at most {MAX_CELLS}")
    for cell in node.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    out: dict[str, Any] = nbformat.from_dict(node)
    return out


def parameter_names(nb: dict[str, Any]) -> list[str] | None:
    """Names assigned at the top level of the cell tagged `parameters`; None without one."""
    for cell in nb.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            try:
                tree = ast.parse(source)
            except SyntaxError as e:
                raise NotebookError(f"the parameters cell is not valid Python: {e}") from e
            names: list[str] = []
            for stmt in tree.body:
                targets = (
                    stmt.targets
                    if isinstance(stmt, ast.Assign)
                    else [stmt.target]
                    if isinstance(stmt, ast.AnnAssign)
                    else []
                )
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    return None


def check_parameters(nb: dict[str, Any], parameters: dict[str, Any]) -> None:
    """Every parameter given must be one the notebook's parameters cell declares."""
    if not parameters:
        return
    names = parameter_names(nb)
    if names is None:
        raise NotebookError(
            "the notebook has no cell tagged `parameters`, so it takes no parameters "
            f"(given: {sorted(parameters)})"
        )
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise NotebookError(
            f"parameter(s) {unknown} are not in the notebook's parameters cell; it declares {names}"
        )
