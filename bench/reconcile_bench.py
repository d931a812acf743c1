"""Operator throughput and steady-state cost on the real control plane.

    cd /work/main && python -m bench.reconcile_bench --stores 100 --steady-seconds 60

Starts a local control plane (e2e/harness.py), installs the CRDs and the seed's policy, runs
`dataward run` as a separate process (admin credentials, resync every 10 s), applies N stores at
once and reports: time until all are Ready, stores/s, the operator's writes per store to get
there, then over a quiet window: mutating requests (expected 0; Lease renewals counted apart)
and reads per store per resync. Compare with the ~460 applies/s sequential ceiling of this
machine in CONTROL-PLANE.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml

from e2e.harness import ControlPlane, die_with_parent, wait_for

REPO = Path(__file__).resolve().parent.parent
WRITES = {"create", "update", "patch", "delete"}


def stores(count: int, namespace: str) -> list[dict[str, object]]:
    """`count` copies of the support-inquiries example, named store-000 ..."""
    base = yaml.safe_load((REPO / "examples/stores/support-inquiries.yaml").read_text())
    out = []
    for index in range(count):
        doc = json.loads(json.dumps(base))
        doc["metadata"] = {"name": f"store-{index:03d}", "namespace": namespace}
        # Distinct pods and credentials: stores sharing them would rightly not be Ready.
        doc["spec"]["workload"]["podSelector"] = {"matchLabels": {"app": f"db-{index:03d}"}}
        doc["spec"]["network"]["allowFrom"] = [
            {"podSelector": {"matchLabels": {"app": f"api-{index:03d}"}}}]
        doc["spec"]["database"]["credentialsSecret"] = f"creds-{index:03d}"
        doc["spec"]["access"]["readers"] = [{"kind": "ServiceAccount", "name": f"api-{index:03d}"}]
        out.append(doc)
    return out


def ready_count(plane: ControlPlane, namespace: str) -> int:
    items = json.loads(plane.kubectl("get", "pds", "-n", namespace, "-o", "json").stdout)["items"]
    return sum(
        1 for item in items
        for c in (item.get("status") or {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    )


def audit_since(plane: ControlPlane, since: datetime, user: str) -> Counter[str]:
    """Requests by `user` since `since`, by verb (leases apart)."""
    counts: Counter[str] = Counter()
    for event in plane.audit_events():
        if event.get("stage") != "ResponseComplete":
            continue
        if event.get("user", {}).get("username") != user:
            continue
        when = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if when < since:
            continue
        resource = (event.get("objectRef") or {}).get("resource")
        verb = event["verb"]
        counts["lease " + verb if resource == "leases" else verb] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--steady-seconds", type=float, default=60)
    args = parser.parse_args()
    namespace = "bench"
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as tmp:
        # The operator gets its own admin-equivalent user so the audit log tells it apart.
        kubeconfig = plane.kubeconfig_for_user("dataward-bench", ["system:masters"])
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        plane.kubectl("create", "namespace", namespace)
        plane.kubectl("create", "namespace", "dataward-system")
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "examples/policy.yaml"))
        log = Path(tmp) / "operator.log"
        operator = subprocess.Popen(
            [sys.executable, "-m", "dataward", "run", "--kubeconfig", str(kubeconfig),
             "--resync-seconds", "10", "--metrics-port", "0"],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
        )
        try:
            wait_for(lambda: "acquired lease" in log.read_text(), 60, "operator leads")
            docs = stores(args.stores, namespace)
            since = datetime.now(UTC)
            start = time.monotonic()
            plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
            applied = time.monotonic()
            wait_for(lambda: ready_count(plane, namespace) == args.stores, 600,
                     f"{args.stores} stores Ready", interval=0.5)
            elapsed = time.monotonic() - start
            converge = audit_since(plane, since, "dataward-bench")
            writes = sum(v for k, v in converge.items() if k in WRITES)
            print(f"stores: {args.stores}")
            print(f"apply of all stores (kubectl): {applied - start:.2f} s")
            print(f"all Ready after: {elapsed:.2f} s  ({args.stores / elapsed:.1f} stores/s)")
            print(f"operator writes to converge: {writes} ({writes / args.stores:.1f} per store)"
                  f"  by verb: {dict(converge)}")
            time.sleep(12)  # let the first resync after Ready finish
            quiet = datetime.now(UTC)
            time.sleep(args.steady_seconds)
            steady = audit_since(plane, quiet, "dataward-bench")
            mutating = sum(v for k, v in steady.items() if k in WRITES)
            resyncs = args.steady_seconds / 10
            reads = steady["get"] + steady["list"]
            print(f"steady state over {args.steady_seconds:.0f} s: {mutating} mutating requests, "
                  f"lease renewals: {steady['lease update']}, "
                  f"reads: {reads} ({reads / max(resyncs, 1) / args.stores:.1f} per store per "
                  "resync)")
        finally:
            operator.terminate()
            operator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
