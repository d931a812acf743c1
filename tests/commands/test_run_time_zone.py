"""`dataward run --time-zone` (the chart's `timeZone`): a name that is no IANA zone is refused
at start, naming the flag, instead of an operator that runs and has every store's purge
CronJob refused by the API server (`spec.timeZone: unknown time zone`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, zone: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    env.pop("KUBECONFIG", None)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "dataward", "run", "--kubeconfig", str(tmp_path / "none"),
         "--time-zone", zone],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)


def test_a_misspelt_time_zone_is_refused_before_the_operator_starts(tmp_path: Path) -> None:
    refused = _run(tmp_path, "Europe/Berln")  # an admin's typo in the chart's timeZone
    assert refused.returncode == 2, refused.stderr
    assert "--time-zone" in refused.stderr and "Europe/Berln" in refused.stderr
    assert "KubeConfigError" not in refused.stderr  # refused before connecting


def test_a_real_time_zone_passes_to_connecting(tmp_path: Path) -> None:
    started = _run(tmp_path, "Asia/Seoul")
    assert started.returncode != 0  # no kubeconfig here: it gets as far as looking for one
    assert "--time-zone" not in started.stderr
    assert "KubeConfigError" in started.stderr, started.stderr
