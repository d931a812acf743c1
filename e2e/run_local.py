"""`make run`: a cluster (yours, or a local control plane), Dataward in it, the examples applied.

With a reachable cluster in $KUBECONFIG (or ~/.kube/config) it uses that cluster; otherwise it
starts the local control plane of e2e/harness.py. Then it installs the CRDs and the seed's
policy, runs the operator, applies the example stores, prints their status, and keeps
everything running until Ctrl-C. `--exit-after-status` stops once the status is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from e2e.cluster import DEFAULT_STATE_DIR, start_local_cluster, stop_local_cluster
from e2e.harness import ControlPlane, die_with_parent
from e2e.tools import REPO_ROOT, tool

OPERATOR_NAMESPACE = "dataward-system"


def say(text: str) -> None:
    """Progress for the person running `make run`."""
    print(f"==> {text}", flush=True)


def reachable(kubeconfig: str) -> bool:
    """True when the cluster of `kubeconfig` answers /readyz."""
    result = subprocess.run(
        [str(tool("kubectl")), "--kubeconfig", kubeconfig, "--request-timeout=5s",
         "get", "--raw", "/readyz"],
        capture_output=True, text=True, check=False,
    )
    return result.returncode == 0 and result.stdout.strip() == "ok"


def configured_kubeconfig() -> str | None:
    """The user's kubeconfig when it points at a cluster that answers."""
    candidate = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if candidate and all(Path(p).is_file() for p in candidate.split(os.pathsep)):
        return candidate if reachable(candidate) else None
    return None


def kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    """Run kubectl against the chosen cluster; fail loudly."""
    result = subprocess.run([str(tool("kubectl")), "--kubeconfig", kubeconfig, *args],
                            capture_output=True, text=True, input=stdin, check=False)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def wait_ready(kubeconfig: str, timeout: float) -> bool:
    """Wait until every store reports Ready=True (or the timeout passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = json.loads(kubectl(kubeconfig, "get", "pds", "-A", "-o", "json"))["items"]
        states = [
            next((c["status"] for c in (i.get("status") or {}).get("conditions") or []
                  if c["type"] == "Ready"), None)
            for i in items
        ]
        if items and all(s == "True" for s in states):
            return True
        time.sleep(1)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Bring up Dataward and the examples; return the exit status."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--exit-after-status", action="store_true",
                        help="stop everything once the stores' status is printed")
    args = parser.parse_args(argv)

    plane: ControlPlane | None = None
    kubeconfig = configured_kubeconfig()
    if kubeconfig:
        say(f"using the cluster of {kubeconfig}")
    else:
        say("no cluster configured: starting a local control plane "
            "(etcd, kube-apiserver, kube-controller-manager)")
        plane = start_local_cluster(args.state_dir)
        kubeconfig = str(args.state_dir / "kubeconfig")
        say(f"control plane ready in {plane.startup_seconds or 0:.1f} s at {plane.server}")
    operator: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        say("installing the CRDs")
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f",
                str(REPO_ROOT / "crds"))
        kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
                "crd/privacypolicies.dataward.io", "crd/personaldatastores.dataward.io")
        say("applying the seed's policy, the example namespaces and their credentials")
        examples = REPO_ROOT / "examples"
        namespace = json.dumps({"apiVersion": "v1", "kind": "Namespace",
                                "metadata": {"name": OPERATOR_NAMESPACE}})
        kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=namespace)
        for name in ("namespaces.yaml", "secrets.yaml", "policy.yaml"):
            kubectl(kubeconfig, "apply", "--server-side", "-f", str(examples / name))
        log_path = args.state_dir / "operator.log"
        args.state_dir.mkdir(parents=True, exist_ok=True)
        say(f"starting the operator (log: {log_path})")
        operator = subprocess.Popen(
            [sys.executable, "-m", "dataward", "run", "--kubeconfig", kubeconfig,
             "--metrics-port", "0"],
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
        )
        say("applying the example stores")
        kubectl(kubeconfig, "apply", "--server-side", "-f", str(examples / "stores"))
        if not wait_ready(kubeconfig, 90):
            say("not every store became Ready within 90 s; see the conditions below")
        print(kubectl(kubeconfig, "get", "privacypolicies,personaldatastores", "-A"), flush=True)
        print(kubectl(kubeconfig, "get", "pds", "support-inquiries", "-n", "crm", "-o",
                      "jsonpath={range .status.conditions[*]}{.type}={.status} "
                      "({.reason}){'\\n'}{end}"), flush=True)
        say(f"kubectl: export KUBECONFIG={kubeconfig}; PATH={tool('kubectl').parent}:$PATH")
        if args.exit_after_status:
            return 0
        say("running; press Ctrl-C to stop the operator"
            + (" and the local control plane" if plane else ""))
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.kill()
        if plane is not None:
            stop_local_cluster(plane, args.state_dir)
            say("stopped the local control plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
