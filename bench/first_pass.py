"""In-process CPU of a restarted operator's first pass (no control plane).

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.first_pass --stores 1000 --namespaces 10

Puts N stores over K namespaces of the in-memory API the unit tests use, dressed as the API
server answers (bench.memory's DressedKube: managedFields, kubectl's last-applied annotation),
converges them and their policy (a pass writing children, ring and status, then one with
nothing to do; the policy's status with its revision in force), then
per repetition models a restart: new caches list everything, a new reconciler reconciles
every store once, as `reconcile_logged` does (its metrics and logging included), in the cache's
order. Printed per repetition: the caches' LIST CPU and the first pass's CPU per store, and
the writes it made (0 expected). `--threads N`: the pass is run by N threads at once, as the
operator's workers run it (0, the default: in this thread); its wall time is then printed
too, and `taskset -c 1` before the command holds them to one core, as `dataward run
--cpu-affinity one` does. `--profile` (not with `--threads`) prints the top of a cProfile of
the last repetition's pass (cProfile inflates small calls: read shares, not seconds). `--state FILE`
saves the converged API to FILE, or loads it from there (then --stores and --namespaces are
the file's), so that several trees are measured on the very same objects:

    PYTHONPATH=<tree>/operator:$PWD python3 -m bench.first_pass --repeat 3 --state /tmp/s.pickle
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pickle
import pstats
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from bench.fake_api import fake_caches, listed
from bench.memory import DressedKube, finished_runs, populate
from dataward.controller.cache import sweep_copies
from dataward.controller.kube import Kube
from dataward.controller.operator import tune_garbage_collector
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import _relist
from tests.controller.test_reconcile import T0


class FrozenKube(DressedKube):
    """DressedKube whose LIST answers, once `frozen`, are kept as JSON text and decoded
    afresh for each request (nothing changes after convergence; dressing is the slow part)."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False
        self._answers: dict[tuple[str, str, str], str] = {}

    def _call(self, method: str, path: str, *, query: Any = None, what: str, **kw: Any) -> Any:
        if not self.frozen or method != "GET":
            return super()._call(method, path, query=query, what=what, **kw)
        key = (method, path, json.dumps(query))
        if key not in self._answers:
            self._answers[key] = json.dumps(super()._call(method, path, query=query, what=what,
                                                          **kw))  # fmt: skip
        return json.loads(self._answers[key])


def _converged(args: argparse.Namespace) -> FrozenKube:
    """The fake API with every store converged (`--state`: loaded from, or saved to, a file,
    so that several trees are measured on the very same objects)."""
    if args.state and os.path.exists(args.state):
        with open(args.state, "rb") as saved:
            kube: FrozenKube = pickle.load(saved)  # noqa: S301 (the bench's own file)
        print(f"converged fake API loaded from {args.state}")
        return kube
    kube = FrozenKube()
    populate(kube, args.stores, args.namespaces)
    caches, reconciler, keys = listed(kube)
    now = T0
    for what in ("converging", "nothing to do"):
        if what == "nothing to do":
            # The day's run, as the CronJob controller would have started it: the restart
            # at T0 + 10 min finds no missed run (PurgeRunMissed would be a real verdict).
            finished_runs(kube, scheduled=T0.replace(hour=3, minute=17))
        _relist(caches)
        kube.calls.clear()
        start = time.process_time()
        # The policy's status too, as the operator writes it: with its revision in force
        # recorded, every reconcile decides the revisions as it does on a real cluster.
        for name in reconciler.all_policies():
            reconciler.reconcile_policy(name, now=now)
        _relist(caches)
        for key in keys:
            reconciler.reconcile(key, now=now)
        print(f"setup pass ({what}): {1000 * (time.process_time() - start) / len(keys):.2f} "
              f"ms CPU per store, {len(kube.writes())} writes")  # fmt: skip
        now += timedelta(minutes=5)
    kube.calls.clear()
    ready = sum(
        any(c.get("type") == "Ready" and c.get("status") == "True"
            for c in (o.get("status") or {}).get("conditions") or ())
        for (kind, _, _), o in kube.objects.items() if kind == "PersonalDataStore"
    )  # fmt: skip
    print(f"converged: {ready} of {len(keys)} stores Ready=True")
    if args.state:
        with open(args.state, "wb") as saving:
            pickle.dump(kube, saving)
    return kube


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--state", help="load the converged fake API from this file (or save it)")
    parser.add_argument("--threads", type=int, default=0,
                        help="reconcile with this many threads at once (0: in this thread)")
    args = parser.parse_args()
    if args.profile and args.threads:
        parser.error("--profile profiles the calling thread only: not with --threads")
    kube = _converged(args)
    now = T0 + timedelta(minutes=10)
    kube.frozen = True
    tune_garbage_collector()
    per_store: list[float] = []
    for rep in range(args.repeat):
        gc.unfreeze()
        gc.collect()
        sweep_copies()  # the shared copies only the dropped caches held
        start = time.process_time()
        caches = fake_caches(kube)
        _relist(caches)
        list_cpu = time.process_time() - start
        gc.freeze()  # as _resync does once every cache has listed
        keys = [(s["metadata"]["namespace"], s["metadata"]["name"])
                for s in caches.list("PersonalDataStore")]  # fmt: skip
        settings = ReconcileSettings(clock=lambda: now)  # as `reconcile_logged` reads it
        reconciler = Reconciler(cast(Kube, kube), settings, (), caches)
        kube.calls.clear()
        profiler = cProfile.Profile() if args.profile and rep == args.repeat - 1 else None
        start, began = time.process_time(), time.monotonic()
        if profiler:
            profiler.enable()
        if args.threads:
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(reconciler.reconcile_logged, keys))
        else:
            for key in keys:
                reconciler.reconcile_logged(key)
        if profiler:
            profiler.disable()
        spent, wall = time.process_time() - start, time.monotonic() - began
        per_store.append(1000 * spent / len(keys))
        threads = f", {args.threads} threads: {wall:.2f} s wall" if args.threads else ""
        print(f"rep {rep + 1}: caches listed {list_cpu:.2f} s CPU; first pass "
              f"{per_store[-1]:.3f} ms CPU per store{threads}, {len(kube.writes())} writes; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        del reconciler, caches
    spaces = len({namespace for namespace, _ in keys})
    print(f"{len(keys)} stores over {spaces} namespaces: first pass median "
          f"{statistics.median(per_store):.3f} ms CPU per store (min {min(per_store):.3f}, "
          f"max {max(per_store):.3f}, {args.repeat} repetitions)")


if __name__ == "__main__":
    main()
