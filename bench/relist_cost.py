"""In-process cost of a cache's LISTs: its first, a quiet re-list, and the safety resync's peak.

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.relist_cost --state /tmp/s.pickle

Over the converged fake API of `bench.first_pass --state` (its LIST answers kept as JSON
text and decoded afresh for each request, as the operator decodes each answer), printed:
- per kind, the thread CPU of a new informer's first LIST (`--repeat` times: min and
  median) and of a quiet re-list (nothing changed; the second, so that the fake's own
  dressing of a page size it has not answered yet is not counted);
- after every store reconciled once (a first pass), how far every cache's re-list, one after
  another as the safety resync makes them, raises the traced memory above what the caches
  and the rest hold (tracemalloc), and what it leaves: the operator's peak RSS over the
  resync is its steady memory plus this, against issue 11's 400 MiB.

To measure another tree on the same state: from that tree, with this file copied into its
bench/ (the set-up imports the tree's own tests and benches).
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import statistics
import time
import tracemalloc
from datetime import timedelta
from typing import cast

from bench.fake_api import fake_caches
from bench.first_pass import FrozenKube
from dataward.controller.cache import CachedKind, Informer
from dataward.controller.kube import Kube
from dataward.controller.operator import tune_garbage_collector
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import _relist
from tests.controller.test_reconcile import T0

KINDS = ("PersonalDataStore", "Role", "RoleBinding", "CronJob", "ServiceAccount")


def _list_cpu(kube: FrozenKube, kind: str, repeat: int) -> tuple[int, list[float], float]:
    """Objects listed; the first LISTs' thread CPU; a quiet re-list's."""
    firsts: list[float] = []
    informer = None
    for _ in range(repeat):
        informer = Informer(cast(Kube, kube), CachedKind(kind), None, 3600,
                            lambda *_: None, lambda *_: None)  # fmt: skip
        gc.collect()
        began = time.thread_time()
        informer._relist()
        firsts.append(time.thread_time() - began)
    assert informer is not None
    informer._relist()  # the fake answers this page size once before: not counted
    began = time.thread_time()
    informer._relist()
    return len(informer.items(None)), firsts, time.thread_time() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True, help="bench.first_pass's converged fake API")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with open(args.state, "rb") as saved:
        kube: FrozenKube = pickle.load(saved)  # noqa: S301 (the bench's own file)
    kube.frozen = True
    tune_garbage_collector()
    for kind in KINDS:
        count, firsts, quiet = _list_cpu(kube, kind, args.repeat)
        print(f"{kind}: {count} objects; first LIST {min(firsts):.3f} s CPU min, "
              f"{statistics.median(firsts):.3f} median ({args.repeat}); quiet re-list "
              f"{quiet:.3f} s", flush=True)  # fmt: skip
    caches = fake_caches(kube)
    _relist(caches)
    now = T0 + timedelta(minutes=10)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(clock=lambda: now), (), caches)
    for store in caches.list("PersonalDataStore"):
        reconciler.reconcile_logged((store["metadata"]["namespace"], store["metadata"]["name"]))
    informers = [i for i in caches.informers.values() if i.lists]
    for informer in informers:  # the fake answers the re-lists' page size once: not counted
        informer._relist()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for informer in informers:
        informer._relist()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"every cache re-listed after a first pass ({len(informers)} caches): traced peak "
          f"+{(peak - base) / 2**20:.1f} MiB, held after +{(held - base) / 2**20:.1f} MiB; "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
