"""Operator throughput, latency and steady-state cost on the real control plane.

    cd /work/main && python -m bench.reconcile_bench --stores 1000 --steady-seconds 60

Starts a local control plane (e2e/harness.py), installs the CRDs and the seed's policy, then,
side by side on that one control plane:

1. the baseline: N stores applied into namespace `raw`, then the children the operator would
   render for them server-side applied by a plain loop of `--threads` threads;
2. `dataward run` as a separate process (its own admin-equivalent user, so the audit log tells
   its requests apart; `--namespace bench`, an hour's resync), N stores applied at once into
   `bench`: time until all are Ready and its ratio to the baseline, the operator's writes;
3. a quiet window: mutating requests (expected 0; Lease renewals counted apart), reads/min;
4. `--samples` spec changes (purge schedule), one at a time with N present: latency until the
   CronJob carries it (p50/p99); the same for a deleted NetworkPolicy until it is back;
5. the operator's peak resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dataward.controller.kube import Kube, load_api_client
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.render import RenderSettings, render_children
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


def credentials(count: int, namespace: str) -> list[dict[str, object]]:
    """The credentials Secrets the stores name (a store without its Secret is not Ready)."""
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": f"creds-{index:03d}", "namespace": namespace},
         "type": "Opaque", "stringData": {"username": "purger", "password": "not-a-password"}}
        for index in range(count)
    ]


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


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def load() -> str:
    """The load averages, to print beside every figure (the machine is shared)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(peak, current) resident set of a process, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return (int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024)


def raw_apply_loop(plane: ControlPlane, docs: list[dict[str, Any]], namespace: str,
                   threads: int) -> tuple[float, int]:
    """The baseline: apply the stores, then server-side apply their children, `threads` at once.

    The same children the operator renders (owned by the stores, so the garbage collector keeps
    them); no key ring, status or Event. Returns (seconds, children applied).
    """
    kube = Kube(load_api_client(str(plane.kubeconfig)))
    policy = parse_policy(yaml.safe_load((REPO / "examples/policy.yaml").read_text()))
    moved = [{**d, "metadata": {**d["metadata"], "namespace": namespace}} for d in docs]
    start = time.monotonic()
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(moved))
    children = [
        child
        for raw in kube.list("PersonalDataStore", namespace)
        for child in render_children(parse_store(raw), policy, RenderSettings())
    ]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(kube.apply, children))
    return time.monotonic() - start, len(children)


def latencies(kube: Kube, namespace: str, names: list[str], change: Any, done: Any,
              timeout: float = 120) -> list[float]:
    """For each store: make `change`, then time until `done` holds (polled every 20 ms)."""
    out = []
    for index, name in enumerate(names):
        start = time.monotonic()
        change(name, index)
        while not done(name, index):
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{namespace}/{name}: not done after {timeout} s")
            time.sleep(0.02)
        out.append(time.monotonic() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--samples", type=int, default=20,
                        help="spec changes and deleted children timed (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the raw apply loop")
    parser.add_argument("--workers", type=int, default=4, help="the operator's --workers")
    parser.add_argument("--ready-timeout", type=float, default=1800)
    args = parser.parse_args()
    namespace = "bench"
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as tmp:
        # The operator gets its own admin-equivalent user so the audit log tells it apart.
        kubeconfig = plane.kubeconfig_for_user("dataward-bench", ["system:masters"])
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        for name in (namespace, "raw", "dataward-system"):
            plane.kubectl("create", "namespace", name)
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "examples/policy.yaml"))
        docs = stores(args.stores, namespace)
        admin = Kube(load_api_client(str(plane.kubeconfig)))
        plane.kubectl("apply", "--server-side", "-f", "-",
                      input=yaml.safe_dump_all(credentials(args.stores, namespace)))
        print(f"stores: {args.stores}   load before: {load()}")

        raw_seconds, raw_children = raw_apply_loop(plane, docs, "raw", args.threads)
        print(f"raw server-side apply loop ({args.threads} threads): stores + {raw_children} "
              f"children in {raw_seconds:.1f} s   load: {load()}")

        log = Path(tmp) / "operator.log"
        # Only the bench namespace: the raw loop's objects are not the operator's business.
        operator = subprocess.Popen(
            [sys.executable, "-m", "dataward", "run", "--kubeconfig", str(kubeconfig),
             "--namespace", namespace, "--resync-seconds", "3600", "--metrics-port", "0",
             "--workers", str(args.workers)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent(),
        )
        try:
            wait_for(lambda: "acquired lease" in log.read_text(), 60, "operator leads")
            since = datetime.now(UTC)
            start = time.monotonic()
            plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
            applied = time.monotonic()

            def all_ready() -> bool:
                items = admin.list("PersonalDataStore", namespace)
                return sum(
                    1 for item in items
                    for c in (item.get("status") or {}).get("conditions") or []
                    if c["type"] == "Ready" and c["status"] == "True"
                ) == args.stores

            wait_for(all_ready, args.ready_timeout, f"{args.stores} stores Ready", interval=1.0)
            elapsed = time.monotonic() - start
            converge = audit_since(plane, since, "dataward-bench")
            writes = sum(v for k, v in converge.items() if k in WRITES)
            print(f"apply of all stores (kubectl): {applied - start:.2f} s")
            print(f"operator: all Ready after {elapsed:.1f} s ({args.stores / elapsed:.1f} "
                  f"stores/s)   ratio to the raw loop: {elapsed / raw_seconds:.1f}x   "
                  f"load: {load()}")
            print(f"operator writes to converge: {writes} ({writes / args.stores:.1f} per store)"
                  f"  by verb: {dict(converge)}")
            peak, now = peak_rss_mib(operator.pid)
            print(f"operator RSS after Ready: peak {peak:.0f} MiB, now {now:.0f} MiB")

            time.sleep(5)
            quiet = datetime.now(UTC)
            time.sleep(args.steady_seconds)
            steady = audit_since(plane, quiet, "dataward-bench")
            mutating = sum(v for k, v in steady.items() if k in WRITES)
            reads = sum(v for k, v in steady.items() if k in ("get", "list", "watch"))
            minutes = args.steady_seconds / 60
            print(f"steady state over {args.steady_seconds:.0f} s: {mutating} mutating requests, "
                  f"lease renewals: {steady['lease update']}, reads: {reads} "
                  f"({reads / minutes:.1f}/min; by verb {dict(steady)})   load: {load()}")

            step = max(1, args.stores // args.samples)
            sample = [doc["metadata"]["name"] for doc in docs[::step][: args.samples]]

            def reschedule(name: str, index: int) -> None:
                admin.merge_patch("PersonalDataStore", namespace, name,
                                  {"spec": {"purge": {"schedule": f"{index % 60} 4 * * *"}}})

            def rescheduled(name: str, index: int) -> bool:
                cronjob = admin.get("CronJob", namespace, f"dataward-{name}-purge")
                return bool(cronjob and cronjob["spec"]["schedule"] == f"{index % 60} 4 * * *")

            spec = latencies(admin, namespace, sample, reschedule, rescheduled)
            print(f"spec change -> CronJob updated, {len(spec)} samples: "
                  f"p50 {percentile(spec, 50):.2f} s, p99 {percentile(spec, 99):.2f} s, "
                  f"max {max(spec):.2f} s   load: {load()}")

            def delete(name: str, index: int) -> None:
                admin.delete("NetworkPolicy", namespace, f"dataward-{name}-isolation")

            def restored(name: str, index: int) -> bool:
                found = admin.get("NetworkPolicy", namespace, f"dataward-{name}-isolation")
                return found is not None

            back = latencies(admin, namespace, sample, delete, restored)
            print(f"deleted NetworkPolicy -> restored, {len(back)} samples: "
                  f"p50 {percentile(back, 50):.2f} s, p99 {percentile(back, 99):.2f} s, "
                  f"max {max(back):.2f} s   load: {load()}")
            peak, now = peak_rss_mib(operator.pid)
            print(f"operator RSS at the end: peak {peak:.0f} MiB, now {now:.0f} MiB")
        finally:
            operator.terminate()
            operator.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
