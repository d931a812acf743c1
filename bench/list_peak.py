"""Peak memory while every cache lists at once, as at a restart (in-process, no control plane).

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.list_peak --stores 1000 --namespaces 10

Converges N stores over K namespaces of the in-memory API bench/memory.py uses (LIST answers
dressed as the API server sends them: managedFields, last-applied, in pages), with one
finished purge run each; then, traced by tracemalloc, new caches list it all, each informer
on its own thread as `Caches.start` runs them. Printed: what the caches hold once listed, the
peak while they listed, and the difference (the pages held at once as delivered, decoded).

The fake's answer is a copy of every object of the kind before it is cut to a page, and its
dressing and JSON round trip happen inside the request: the peak is above a real process's
for the same pages held, so compare runs of this bench with each other, not with RSS.
"""

from __future__ import annotations

import argparse
import gc
import threading
import time
import tracemalloc
from datetime import timedelta

from bench.fake_api import fake_caches, listed
from bench.memory import DressedKube, MiB, finished_runs, populate
from tests.controller.test_cache import _relist
from tests.controller.test_reconcile import T0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    args = parser.parse_args()
    kube = DressedKube()
    populate(kube, args.stores, args.namespaces)
    caches, reconciler, keys = listed(kube)
    for i, now in enumerate((T0, T0 + timedelta(minutes=1))):
        if i == 1:
            finished_runs(kube)
        _relist(caches)
        for key in keys:
            reconciler.reconcile(key, now=now)
    del caches, reconciler
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    fresh = fake_caches(kube)
    started = time.monotonic()
    threads = [threading.Thread(target=informer._relist) for informer in fresh.informers.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    gc.collect()  # what the caches keep, without the garbage not yet collected
    held = tracemalloc.get_traced_memory()[0]
    print(f"{args.stores} stores over {args.namespaces} namespaces, {len(threads)} caches "
          f"listing at once: held once listed {(held - base) / MiB:.1f} MiB, peak while "
          f"listing {(peak - base) / MiB:.1f} MiB, above what is held {(peak - held) / MiB:.1f} "
          f"MiB ({wall:.0f} s wall, traced)")  # fmt: skip


if __name__ == "__main__":
    main()
