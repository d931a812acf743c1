"""In-process cost of one reconcile in a crowded namespace (no control plane).

    PYTHONPATH=$PWD/operator python3 -m bench.crowded_namespace --stores 300

Puts N stores in one namespace of the in-memory API used by the unit tests (each with its own
pods, peers, credentials and readers, as reconcile_bench), fills the watch caches from it,
times a first pass (converging: children, ring and status written, each write kept in the
caches), refills the caches, times a second pass (nothing to do), then a third by a new
reconciler over the same caches (a restart: its memos empty); ms of CPU per reconcile.
`--profile` (`--profile-converging`, `--profile-restart`) prints the top of a cProfile of
that pass. Measures the per-store CPU the neighbour checks cost, which
the control-plane bench (reconcile_bench) cannot separate from API latency.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import datetime, timedelta

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import _caches, _cluster, _relist
from tests.controller.test_reconcile import T0, add_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="profile the second pass")
    parser.add_argument(
        "--profile-converging", action="store_true", help="profile the first pass instead"
    )
    parser.add_argument(
        "--profile-restart",
        action="store_true",
        help="profile the pass of a new reconciler over the same caches (a restart) instead",
    )
    args = parser.parse_args()
    kube = _cluster()
    for i in range(1, args.stores):
        add_store(kube, f"store-{i:03d}", "crm", f"{i:03d}")
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(kube, ReconcileSettings(), (), caches)  # type: ignore[arg-type]
    keys = [("crm", s["metadata"]["name"]) for s in caches.list("PersonalDataStore", "crm")]
    _timed_pass(reconciler, keys, T0, "converging reconcile", args.profile_converging, 40)
    _relist(caches)
    later = T0 + timedelta(minutes=5)
    _timed_pass(reconciler, keys, later, "reconcile with nothing to do", args.profile, 30)
    # A restarted operator: its caches listed again, its reconciler's memos empty.
    restarted = Reconciler(kube, ReconcileSettings(), (), caches)  # type: ignore[arg-type]
    _timed_pass(restarted, keys, later, "first reconcile after a restart", args.profile_restart, 40)


def _timed_pass(
    reconciler: Reconciler,
    keys: list[tuple[str, str]],
    now: datetime,
    what: str,
    profile: bool,
    top: int,
) -> None:
    """Reconcile every store once at `now`; print the ms of CPU per reconcile (then, with
    `profile`, the top `top` lines of its cProfile)."""
    profiler = cProfile.Profile() if profile else None
    start = time.process_time()
    if profiler:
        profiler.enable()
    for key in keys:
        reconciler.reconcile(key, now=now)
    if profiler:
        profiler.disable()
    per = 1000 * (time.process_time() - start) / len(keys)
    print(f"{len(keys)} stores in one namespace: {per:.1f} ms CPU per {what}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
