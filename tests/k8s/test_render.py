"""`workbench k8s render`, through the argparse registration the main CLI uses."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.k8s.helpers import validate
from workbench.k8s.cli import register
from workbench.k8s.restricted import pod_spec_of, workbench_violations


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    home = argparse.ArgumentParser(add_help=False)
    home.add_argument("--home", type=Path)
    register(p.add_subparsers(dest="command", required=True), [home])
    args = p.parse_args(argv)
    code: int = args.fn(args)
    return code


def test_a_hypothetical_two_node_gpu_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["k8s", "render", "--home", str(tmp_path), "--profile", "gpu-1", "--nodes", "2"])
    assert code == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = [d["kind"] for d in docs]
    assert kinds == [
        "Pod",
        "Job",
        "Secret",
        "Service",
        "NetworkPolicy",
        "NetworkPolicy",
        "NetworkPolicy",
    ]
    for d in docs:
        validate(d)
        if d["kind"] in ("Pod", "Job"):
            assert workbench_violations(pod_spec_of(d)) == []
    assert docs[2]["stringData"] == {"WORKBENCH_TOKEN": "REDACTED"}
    assert docs[1]["spec"]["completionMode"] == "Indexed"
    assert docs[0]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_json_and_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["k8s", "render", "--home", str(tmp_path), "--profile", "cpu-small", "--format", "json"]
    assert run([*argv, "--only", "job"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "List" and [i["kind"] for i in doc["items"]] == ["Job", "Secret"]


def test_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench import config
    from workbench.jobs.kube import KubeJobBackend

    if KubeJobBackend not in config.CONFIGURABLES:  # until workbench.config lists it
        monkeypatch.setattr(config, "CONFIGURABLES", (*config.CONFIGURABLES, KubeJobBackend))
    assert run(["k8s", "render", "--home", str(tmp_path), "--profile", "huge"]) == 2
    assert "no profile 'huge'; known: cpu-small, gpu-1" in capsys.readouterr().err
    assert (
        run(["k8s", "render", "--home", str(tmp_path), "--profile", "gpu-1", "--nodes", "0"]) == 2
    )
    (tmp_path / "workbench_config.py").write_text("c.KubeJobBackend.gpu_pools = {}\n")
    code = run(["k8s", "render", "--home", str(tmp_path), "--profile", "gpu-1"])
    err = capsys.readouterr().err
    assert code == 1 and "no node pool is configured for GPU kind 'nvidia-h100'" in err
    (tmp_path / "workbench_config.py").write_text("c.KubeJobBackend.namespac = 'x'\n")
    assert run(["k8s", "render", "--home", str(tmp_path), "--profile", "gpu-1"]) == 2
    assert "unknown option KubeJobBackend.namespac" in capsys.readouterr().err


def test_a_stored_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workbench import dbsetup
    from workbench.config import settings_for
    from workbench.db import make_engine, session_factory
    from workbench.requests.models import AccessRequest

    settings = settings_for(tmp_path)
    engine = make_engine(settings.db_url)
    dbsetup.upgrade(engine)
    now = datetime.now(UTC)
    with session_factory(engine)() as s, s.begin():
        s.add(
            AccessRequest(
                id=9,
                requester="bob",
                tenant="globex",
                datasets=["calls"],
                purpose="p",
                profile="gpu-1",
                profile_spec={"cpu": 4, "memory": "16G", "gpu_kind": "nvidia-h100", "gpu_count": 1},
                hours=2,
                gpu_hours=2,
                approvals_required=1,
                state="approved",
                created_at=now,
                approved_at=now,
                expires_at=now + timedelta(hours=2),
            )
        )
    engine.dispose()
    assert run(["k8s", "render", "--home", str(tmp_path), "--request", "9", "--only", "pod"]) == 0
    (pod,) = yaml.safe_load_all(capsys.readouterr().out)
    assert pod["metadata"]["labels"]["workbench/request-id"] == "9"
    assert pod["metadata"]["labels"]["workbench/tenant"] == "globex"
    assert pod["metadata"]["annotations"]["workbench/datasets"] == "calls"
    assert 7100 <= pod["spec"]["activeDeadlineSeconds"] <= 7200
    assert run(["k8s", "render", "--home", str(tmp_path), "--request", "10"]) == 1
    assert "no access request 10" in capsys.readouterr().err
