"""What each kind of request the operator sends costs the API server and etcd, in CPU.

    PYTHONPATH=$PWD/operator:$PWD python3 -u -m bench.apiserver_cost --stores 500

The operator converges slower than a raw server-side-apply loop writing the same children
because, on 2 shared cores, the API server spends about twice the CPU per store (bench/
RESULTS.md). This splits that CPU by request: on a fresh control plane, `--stores` stores
are created, then each request kind the operator sends while converging is sent once per
store, `--threads` at a time, and the API server's and etcd's CPU seconds (from /proc) are
read around each phase. The bodies are the operator's own: one store converged in-process
(the fake API of the unit tests) gives its status, its ring Secret and its Ready Event; the
children are rendered as the operator renders them. No watcher is connected, so the cost
of sending each change to the operator's watches is not in these figures, unless `--watched`
runs the operator's caches (its kinds, Secrets included, in the namespace) meanwhile; the
difference between the two runs is that cost.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench.reconcile_bench import (
    REPO,
    credentials,
    load,
    plane_pids,
    stores,
)
from bench.reconcile_bench import (
    cpu_seconds as process_cpu,
)
from dataward.controller.cache import Caches
from dataward.controller.kube import Kube, load_api_client
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.render import RenderSettings, render_children
from e2e.harness import ControlPlane, wait_for
from tests.controller.test_cache import _caches, _cluster, _relist
from tests.controller.test_reconcile import T0, add_store

NAMESPACE = "cost"


def operator_bodies() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(a converged store's status, its ring Secret, its Ready Event), as the operator wrote
    them to the unit tests' in-memory API."""
    kube = _cluster()
    add_store(kube, "store-001", "crm", "001")
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(kube, ReconcileSettings(), (), caches)  # type: ignore[arg-type]
    reconciler.reconcile(("crm", "store-001"), now=T0)
    objects = kube.objects
    store = objects[("PersonalDataStore", "crm", "store-001")]
    ring = next(o for (k, ns, _), o in objects.items() if k == "Secret" and ns == "crm"
                and "ring" in o["metadata"]["name"])
    event = next(o for (k, _, _), o in objects.items() if k == "Event")
    return copy.deepcopy(store["status"]), copy.deepcopy(ring), copy.deepcopy(event)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--watched", action="store_true",
        help="run the operator's watch caches (its kinds, the namespace) during the phases: "
             "what sending each change to the operator's watches adds",
    )
    parser.add_argument(
        "--crds", type=Path, default=REPO / "crds",
        help="the CRDs to install (e.g. a copy without x-kubernetes-validations: what the CEL "
             "rules cost each write of a store)",
    )
    args = parser.parse_args()
    status, ring, event = operator_bodies()
    policy = parse_policy(yaml.safe_load((REPO / "examples/policy.yaml").read_text()))
    docs = stores(args.stores, [NAMESPACE])
    with ControlPlane() as plane:
        plane.kubectl("apply", "--server-side", "-f", str(args.crds))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        plane.kubectl("apply", "--server-side", "-f", str(REPO / "examples/policy.yaml"))
        kube = Kube(load_api_client(str(plane.kubeconfig)))
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        pids = plane_pids(plane)
        caches = None
        if args.watched:
            caches = Caches(kube, (*CACHED_KINDS, *SECRET_KINDS), (NAMESPACE,), 3600,
                            lambda kind, old, new: None, lambda kind, namespace: None)
            caches.start()
            wait_for(caches.listed, 60, "caches listed", interval=0.1)
        rows: list[str] = []

        def phase(what: str, calls: list[Callable[[], Any]]) -> None:
            before = {name: process_cpu(pid) for name, pid in pids.items()}
            start = time.monotonic()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(lambda call: call(), calls))
            wall = time.monotonic() - start
            used = {name: process_cpu(pid) - before[name] for name, pid in pids.items()}
            per = {name: 1000 * seconds / len(calls) for name, seconds in used.items()}
            row = (f"| {what} | {len(calls)} | {wall:.2f} | {per['kube-apiserver']:.2f} | "
                   f"{per['etcd']:.2f} |")
            print(row + f"   load: {load()}", flush=True)
            rows.append(row)

        for secret in credentials(docs):
            kube.create(secret)
        names = [d["metadata"]["name"] for d in docs]
        phase("create store (POST)", [lambda d=d: kube.create(d) for d in docs])
        created = {s["metadata"]["name"]: s for s in kube.list("PersonalDataStore", NAMESPACE)}
        children = [c for name in names
                    for c in render_children(parse_store(created[name]), policy,
                                             RenderSettings())]
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for child in children:
            by_kind.setdefault(child["kind"], []).append(child)
        for kind, objs in sorted(by_kind.items()):
            phase(f"server-side apply {kind}", [lambda o=o: kube.apply(o) for o in objs])
        phase("GET store", [lambda n=n: kube.get("PersonalDataStore", NAMESPACE, n)
                            for n in names])
        pending = {"encryption": {"pending": "2026-12-02T00:00:00Z"}}
        phase("status merge patch, small (the pending mark)", [
            lambda n=n: kube.merge_patch("PersonalDataStore", NAMESPACE, n, pending, "status")
            for n in names])
        phase("status merge patch, the converged status", [
            lambda n=n: kube.merge_patch("PersonalDataStore", NAMESPACE, n, status, "status")
            for n in names])

        def ring_for(name: str) -> dict[str, Any]:
            body = copy.deepcopy(ring)
            meta = body["metadata"]
            for key in ("resourceVersion", "uid", "creationTimestamp", "ownerReferences"):
                meta.pop(key, None)
            meta["name"], meta["namespace"] = f"{name}-ring", NAMESPACE
            return body

        phase("create ring Secret (encrypted at rest)", [
            lambda n=n: kube.create(ring_for(n)) for n in names])

        def event_for(index: int) -> dict[str, Any]:
            body = copy.deepcopy(event)
            meta = body["metadata"]
            for key in ("resourceVersion", "uid", "creationTimestamp"):
                meta.pop(key, None)
            meta["name"], meta["namespace"] = f"ready-{index}", NAMESPACE
            body["regarding"] = {**body["regarding"], "namespace": NAMESPACE}
            return body

        phase("create Event", [lambda i=i: kube.create(event_for(i)) for i in range(len(names))])
        if caches is not None:
            caches.stop()
        print()
        print(f"{args.stores} stores, {args.threads} threads, one control plane, the operator's "
              f"caches {'watching' if args.watched else 'not running'}; CPU ms per request:")
        print("| request | count | wall s | API server CPU ms | etcd CPU ms |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(row)
        print(f"status bytes: {len(yaml.safe_dump(status))} (YAML), ring: "
              f"{len(yaml.safe_dump(ring))}, event: {len(yaml.safe_dump(event))}")


if __name__ == "__main__":
    main()
