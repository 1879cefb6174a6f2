"""The Dockerfiles in images/ (they cannot be built here): a structural lint (hadolint too,
when installed) and their package pins checked against pyproject.toml."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[2]
IMAGES = sorted((ROOT / "images").glob("*/Dockerfile"))
# packages an image needs that the workbench package itself does not depend on
IMAGE_ONLY = {
    "ipywidgets": "widgets in notebooks",
    "oauthenticator": "OIDC login on the cluster (the hub image)",
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    text = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def pins(path: Path) -> dict[str, str]:
    """name → version of every `pip install`ed requirement; a wheel path is skipped."""
    found: dict[str, str] = {}
    for word, args in instructions(path):
        if word != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            tokens = shlex.split(command)
            if tokens[:2] != ["pip", "install"]:
                continue
            for token in tokens[2:]:
                if token.startswith("-") or token.endswith(".whl"):
                    continue
                req = Requirement(token)
                (spec,) = req.specifier
                found[req.name.lower()] = spec.version
    return found


def project_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {Requirement(r).name.lower(): Requirement(r) for r in reqs}


def test_there_are_the_three_images() -> None:
    assert [p.parent.name for p in IMAGES] == ["hub", "job", "notebook"]


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.parent.name)
def test_dockerfile_structure(path: Path) -> None:
    steps = instructions(path)
    assert steps[0][0] == "FROM", "the first instruction is FROM"
    base = steps[0][1].split()[0]
    assert "@sha256:" in base or re.search(r":[\w.-]+$", base), f"unpinned base {base}"
    assert not base.endswith(":latest")
    users = [args for word, args in steps if word == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1] not in ("root", "0", "0:0"), "the image ends as root"
    for word, args in steps:
        if word == "ADD":
            assert "://" not in args, "ADD of a URL: download in RUN with a checksum"
        if word != "RUN":
            continue
        assert "sudo " not in args and "chmod 777" not in args
        assert not re.search(r"curl[^|]*\|\s*(ba)?sh", args), "curl | sh"
        if "pip install" in args:
            assert "--no-cache-dir" in args
        if "apt-get install" in args:
            assert "--no-install-recommends" in args and "rm -rf /var/lib/apt/lists" in args
        for command in re.split(r"&&|;", args):
            tokens = shlex.split(command)
            if tokens[:2] == ["pip", "install"]:
                for token in tokens[2:]:
                    if not token.startswith("-") and not token.endswith(".whl"):
                        assert "==" in token, f"{path.parent.name}: {token} is not pinned"


def test_the_lint_catches_an_unpinned_package_and_a_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install --no-cache-dir httpx\n")
    with pytest.raises(AssertionError):
        test_dockerfile_structure(bad)
    bad.write_text("FROM python:3.12\nUSER root\n")
    with pytest.raises(AssertionError, match="ends as root"):
        test_dockerfile_structure(bad)


def test_pins_match_the_project() -> None:
    reqs = project_requirements()
    seen: dict[str, tuple[str, str]] = {}
    for path in IMAGES:
        for name, version in pins(path).items():
            image = path.parent.name
            if name in IMAGE_ONLY:
                continue
            assert name in reqs, f"{image} installs {name}, which pyproject.toml does not name"
            assert reqs[name].specifier.contains(version), (
                f"{image} pins {name}=={version} outside pyproject's {reqs[name].specifier}"
            )
            if name in seen:  # images that share a package share its version
                assert seen[name][1] == version, f"{name}: {seen[name]} vs {image} {version}"
            seen[name] = (image, version)
    # the notebook servers and the hub speak the same JupyterHub
    assert (
        pins(ROOT / "images/hub/Dockerfile")["jupyterhub"]
        == pins(ROOT / "images/notebook/Dockerfile")["jupyterhub"]
    )


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint is not installed")
@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.parent.name)
def test_hadolint(path: Path) -> None:
    result = subprocess.run(
        ["hadolint", "--failure-threshold", "warning", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
