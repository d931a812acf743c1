"""In-process CPU of converging reconciles while stores arrive (no control plane).

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.arriving_stores --stores 1000 [--upfront]

kubectl applies 1,000 stores over ~25 s while the operator reconciles them, so most
converging reconciles of that phase find their namespace with a store more than the last
one. Here each store is put into the in-memory API used by the unit tests and into the
store cache (as its watch event would), then reconciled: the worst case, a new store before
every reconcile. `--upfront`: every store there from the start, for comparison. Prints ms
of CPU a reconcile, and how much of it went to building the namespace's view and its
declared bindings.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from dataward.controller import incremental
from dataward.controller import reconcile as reconcile_module
from tests.controller.test_cache import _caches, _cluster, _relist
from tests.controller.test_reconcile import T0, add_store

SPENT: Counter[str] = Counter()


def _timed(function: Callable[..., Any], label: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            SPENT[label] += time.process_time() - start

    return timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=600)
    parser.add_argument("--upfront", action="store_true")
    args = parser.parse_args()
    incremental._declare_all = _timed(incremental._declare_all, "declared from scratch")
    reconciler_class = reconcile_module.Reconciler
    reconciler_class._namespace_view = _timed(  # type: ignore[method-assign]
        reconciler_class._namespace_view, "namespace view"
    )
    kube = _cluster()
    caches = _caches(kube)
    names = [f"store-{i:05d}" for i in range(1, args.stores)]
    if args.upfront:
        for i, name in enumerate(names):
            add_store(kube, name, "crm", f"{i:05d}")
    _relist(caches)
    reconciler = reconciler_class(kube, reconcile_module.ReconcileSettings(), (), caches)
    spent = 0.0
    for i, name in enumerate(names):
        if not args.upfront:
            add_store(kube, name, "crm", f"{i:05d}")
            caches.store_written(kube.objects[("PersonalDataStore", "crm", name)])
        start = time.process_time()
        reconciler.reconcile(("crm", name), now=T0)
        spent += time.process_time() - start
    parts = ", ".join(f"{k} {1000 * v / len(names):.1f}" for k, v in sorted(SPENT.items()))
    print(f"{len(names)} stores {'there from the start' if args.upfront else 'arriving'}: "
          f"{1000 * spent / len(names):.1f} ms CPU a converging reconcile ({parts})")


if __name__ == "__main__":
    main()
