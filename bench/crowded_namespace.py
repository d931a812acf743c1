"""In-process cost of one reconcile in a crowded namespace (no control plane).

    PYTHONPATH=$PWD/operator python3 -m bench.crowded_namespace --stores 300

Puts N stores in one namespace of the in-memory API used by the unit tests, fills the watch
caches from it, reconciles every store once (converging), refills the caches, then times a
second pass (nothing to do) and prints ms per reconcile. `--profile` prints the top of a
cProfile of that second pass. Measures the per-store CPU the neighbour checks cost, which
the control-plane bench (reconcile_bench) cannot separate from API latency.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import time
from datetime import timedelta

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import _caches, _cluster, _relist
from tests.controller.test_reconcile import T0
from tests.model import samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    kube = _cluster()
    for i in range(1, args.stores):
        store = copy.deepcopy(samples.STORE)
        del store["metadata"]["uid"]
        store["metadata"]["name"] = f"store-{i}"
        kube._store(store)
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(kube, ReconcileSettings(), (), caches)  # type: ignore[arg-type]
    keys = [("crm", s["metadata"]["name"]) for s in caches.list("PersonalDataStore", "crm")]
    for key in keys:
        reconciler.reconcile(key, now=T0)
    _relist(caches)
    later = T0 + timedelta(minutes=5)
    profiler = cProfile.Profile() if args.profile else None
    start = time.process_time()
    if profiler:
        profiler.enable()
    for key in keys:
        reconciler.reconcile(key, now=later)
    if profiler:
        profiler.disable()
    spent = time.process_time() - start
    per = 1000 * spent / len(keys)
    print(f"{len(keys)} stores in one namespace: {per:.1f} ms CPU per reconcile")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
