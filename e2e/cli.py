"""The `dataward` command as an administrator or an auditor runs it: this checkout, a fresh
interpreter, and an evidence database login in the environment (never on the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def dataward(*args: str, login: tuple[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `dataward ARGS` in `cwd` with the evidence login `login` (user, password)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO / "operator"),
        "DATAWARD_EVIDENCE_USERNAME": login[0],
        "DATAWARD_EVIDENCE_PASSWORD": login[1],
    }
    return subprocess.run(
        [sys.executable, "-m", "dataward", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
