"""Notebook snapshots and parameter checks (pure)."""

from __future__ import annotations

import pytest

from tests.jobs.conftest import notebook
from workbench.jobs.notebooks import NotebookError, check_parameters, parameter_names, snapshot


def test_parameters_are_the_names_the_tagged_cell_assigns() -> None:
    nb = notebook("print(lr)", parameters="lr = 0.1\nepochs: int = 3\nx, y = 1, 2\n")
    assert parameter_names(nb) == ["lr", "epochs"]
    check_parameters(nb, {"lr": 0.5, "epochs": 1})


def test_a_parameter_the_notebook_does_not_declare_is_refused_by_name() -> None:
    nb = notebook("pass", parameters="lr = 0.1\n")
    with pytest.raises(NotebookError, match=r"\['tenant'\].*declares \['lr'\]"):
        check_parameters(nb, {"lr": 1, "tenant": "globex"})


def test_parameters_to_a_notebook_without_a_parameters_cell_are_refused() -> None:
    with pytest.raises(NotebookError, match="no cell tagged `parameters`"):
        check_parameters(notebook("pass"), {"lr": 1})
    check_parameters(notebook("pass"), {})


def test_snapshot_clears_outputs_and_refuses_what_is_not_a_notebook() -> None:
    nb = notebook("print(1)")
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "secret"}]
    nb["cells"][0]["execution_count"] = 7
    snap = snapshot(nb)
    assert snap["cells"][0]["outputs"] == [] and snap["cells"][0]["execution_count"] is None
    assert nb["cells"][0]["outputs"]  # the caller's copy is left alone
    for bad in ({}, {"nbformat": 3}, {"nbformat": 4, "cells": "x"}):
        with pytest.raises(NotebookError):
            snapshot(bad)
