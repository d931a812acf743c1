"""The container image recipe: what can be tested without a container engine.

The Dockerfile builds a wheel and installs it; here the same wheel is built from a copy of
the sources, installed into a fresh virtual environment, and its console script run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_dockerfile_runs_the_operator_or_a_purge_as_a_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "FROM ${PYTHON_IMAGE} AS builder" in text and "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "pip wheel" in text and "--no-index --find-links /wheels dataward" in text
    assert "USER 65532:65532" in text
    assert 'ENTRYPOINT ["dataward"]' in text and 'CMD ["run"]' in text
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!operator/" in ignored  # only the sources go in


def test_the_wheel_installs_and_its_command_runs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    # What the Dockerfile copies into its builder stage, and nothing else.
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "operator", source / "operator",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(wheels), str(source)], check=True, timeout=300)
    (wheel,) = wheels.glob("dataward-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for crd in (REPO / "crds").glob("*.yaml"):
        assert f"dataward/crds/{crd.name}" in names, f"{crd.name} is not in the wheel"
    assert "dataward/py.typed" in names

    # A fresh environment; the dependencies the image would install from PyPI are taken from
    # this interpreter's (same pins), so the test needs no network.
    venv = tmp_path / "venv"
    # The wheel, not a source tree on PYTHONPATH (a worktree's checks set it), must answer.
    clean = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=300, env=clean)
    dataward = venv / "bin" / "dataward"
    # PYTHONPATH (set to a worktree's operator/ to test it) would shadow the installed wheel.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([str(dataward), "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=clean)
    assert result.returncode == 0, result.stderr
    for command in ("run", "purge", "check", "render"):
        assert command in result.stdout
    where = subprocess.run([str(python), "-c", "import dataward; print(dataward.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path,
                           env=clean).stdout
    assert where.startswith(str(venv)), f"dataward was imported from {where}, not the wheel"
