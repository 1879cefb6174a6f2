"""Configuration: the demo catalog, validation, and unknown options as errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_config
from workbench.config import settings_for
from workbench.errors import ConfigError


def test_demo_catalog(tmp_path: Path) -> None:
    s = settings_for(tmp_path)
    assert set(s.catalog.tenants) == {"acme", "globex"}
    for tenant in s.catalog.tenants.values():
        assert {d: ds.kind for d, ds in tenant.datasets.items()} == {
            "calls": "objects",
            "accounts": "table",
        }
        assert tenant.managers == ("maria",)
    assert s.catalog.profiles["gpu-1"].gpu_count == 1
    assert s.catalog.profiles["cpu-small"].gpu_count == 0
    assert s.db_url == f"sqlite:///{tmp_path / 'workbench.sqlite'}"


def test_config_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "workbench_config.py").write_text("c.RequestPolicy.max_hours = 12\n")
    assert settings_for(tmp_path).policy.max_hours == 12


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c.RequestPolicy.max_hourz = 12", "unknown option RequestPolicy.max_hourz"),
        ("c.Catalogue.tenants = {}", "unknown configuration section 'Catalogue'"),
        (
            "c.Catalog.tenants = {'a': {'managers': ['m'], 'approvals': 2}}",
            "unknown key(s) ['approvals']",
        ),
        (
            "c.Catalog.tenants = {'a': {'managers': ['m'], 'approvals_required': 2}}",
            "needs 2 approvals but has 1 managers",
        ),
        (
            "c.Catalog.tenants = {'a': {'managers': ['m'], 'datasets': {'d': {'kind': 'csv'}}}}",
            "kind must be objects or table",
        ),
        ("c.Catalog.profiles = {'p': {'gpus': 1}}", "unknown key(s) ['gpus']"),
    ],
)
def test_mistakes_are_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "workbench_config.py").write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        settings_for(tmp_path)
    assert message in str(err.value)


def test_config_objects_are_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        settings_for(tmp_path, make_config(ServiceSettings={"db_uri": "x"}))
