"""e2e/build-tools.sh: two builds at once (make run during make test) share one result.

`go` is replaced by a stub that takes a moment and writes placeholder binaries, so the race
is exercised in seconds; the real build is exercised by every e2e test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm", "kubeconform",
         "cyclonus", "promtool")  # fmt: skip

STUB_GO = """#!/usr/bin/env bash
# A stand-in for go: build/install write executables named after their targets; `mod
# download -json` points at a go.mod that names a client-go, as helm's does.
if [ "$1" = mod ]; then
  gomod="$(dirname "$0")/helm.go.mod"
  printf 'module helm.sh/helm/v3\\nrequire (\\n\\tk8s.io/client-go v0.37.0\\n)\\n' > "$gomod"
  printf '{\\n\\t"GoMod": "%s",\\n}\\n' "$gomod"
  exit 0
fi
sleep 1
out=""; targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    build|install|-trimpath) ;;
    -ldflags) shift ;;
    -o) shift; out="$1" ;;
    -ldflags*) ;;
    *) targets+=("$1") ;;
  esac
  shift
done
for t in "${targets[@]}"; do
  name=$(basename "${t%@*}")
  [ "$name" = v3 ] && name=etcd
  dest="${out:-$GOBIN/}"
  case "$dest" in */) dest="$dest$name" ;; esac
  printf '#!/bin/sh\\n' > "$dest"; chmod +x "$dest"
done
"""


def test_two_builds_at_once_both_end_with_every_tool(tmp_path: Path) -> None:
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "go").write_text(STUB_GO)
    (stub / "go").chmod(0o755)
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}",
           "DATAWARD_CACHE": str(tmp_path / "cache")}  # fmt: skip
    builds = [
        subprocess.Popen(["bash", "e2e/build-tools.sh"], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [build.communicate(timeout=120) for build in builds]
    for build, (_, err) in zip(builds, results, strict=True):
        assert build.returncode == 0, err
    dirs = {out.strip().splitlines()[-1] for out, _ in results}
    assert len(dirs) == 1, dirs
    bin_dir = Path(dirs.pop())
    missing = [t for t in TOOLS if not os.access(bin_dir / t, os.X_OK)]
    assert not missing, f"{missing} missing after two concurrent builds"
    assert not list((tmp_path / "cache").glob("*.building.*")), "a build left its work directory"
