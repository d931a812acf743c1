"""Locate the pinned binaries (control plane and checking tools) built by e2e/build-tools.sh."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "e2e" / "build-tools.sh"

CONTROL_PLANE_TOOLS: tuple[str, ...] = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kubectl",
)
CHECK_TOOLS: tuple[str, ...] = ("helm", "kubeconform", "cyclonus", "promtool")
ALL_TOOLS: tuple[str, ...] = CONTROL_PLANE_TOOLS + CHECK_TOOLS

_HOW_TO_BUILD = "build them with `make tools` (or `bash e2e/build-tools.sh`)"


@functools.cache
def _resolve_bin_dir() -> Path:
    """Return DATAWARD_BIN, or the directory printed by the build script (building if needed)."""
    override = os.environ.get("DATAWARD_BIN")
    if override:
        return Path(override).expanduser().resolve()
    # stderr is inherited, not captured: a cold build takes minutes and its progress lines are
    # the only sign that something is happening.
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} failed with exit code {result.returncode}; "
            f"the control-plane binaries are required: {_HOW_TO_BUILD}"
        )
    return Path(lines[-1].strip())


def _check_executable(bin_dir: Path, name: str) -> Path:
    """Return bin_dir/name, or raise a RuntimeError that names the missing tool."""
    path = bin_dir / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        source = "DATAWARD_BIN" if os.environ.get("DATAWARD_BIN") else "the build cache"
        raise RuntimeError(
            f"required tool {name!r} is missing or not executable at {path} "
            f"(from {source}); {_HOW_TO_BUILD}"
        )
    return path


def tool_bin_dir(required: Iterable[str] = ALL_TOOLS) -> Path:
    """Return the directory holding the pinned binaries, after checking each required one."""
    bin_dir = _resolve_bin_dir()
    for name in required:
        _check_executable(bin_dir, name)
    return bin_dir


def tool(name: str) -> Path:
    """Return the path of one pinned binary (etcd, kubectl, helm, ...)."""
    return _check_executable(tool_bin_dir(required=()), name)
