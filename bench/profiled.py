"""Run `python -m dataward ...` with every thread under cProfile, timed by each thread's CPU.

    python3 -m bench.profiled OUT.prof run --kubeconfig ...

`python -m cProfile` sees only the main thread; the operator's work is on its informer and
worker threads. Here each thread gets a profiler of its own, timed by `time.thread_time` (CPU,
not waiting), and their stats are merged into OUT.prof when the process exits (SIGTERM:
`dataward run` returns).
"""

from __future__ import annotations

import atexit
import cProfile
import gc
import os
import pstats
import runpy
import sys
import threading
import time

PROFILES: list[cProfile.Profile] = []
LOCK = threading.Lock()


def _profiled_run(original: object) -> object:
    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with LOCK:
            PROFILES.append(profile)
        profile.enable()
        try:
            original(self)  # type: ignore[operator]
        finally:
            profile.disable()

    return run


def dump(path: str) -> None:
    with LOCK:
        profiles = list(PROFILES)
    stats: pstats.Stats | None = None
    for profile in profiles:
        try:
            profile.create_stats()
        except Exception:  # noqa: S112 - a thread's profile in an odd state
            continue
        if not getattr(profile, "stats", None):
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is not None:
        stats.dump_stats(path)


GC_SECONDS = [0.0, 0.0]  # (time in collections, started at)
GC_COUNTS = [0, 0, 0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        GC_SECONDS[1] = time.perf_counter()
    else:
        GC_SECONDS[0] += time.perf_counter() - GC_SECONDS[1]
        GC_COUNTS[info["generation"]] += 1


def _gc_report(out: str) -> None:
    with open(out + ".gc", "w") as file:
        file.write(f"{GC_SECONDS[0]:.3f} s in {GC_COUNTS} collections (generations 0, 1, 2)\n")


def main() -> None:
    out = sys.argv[1]
    sys.argv = ["dataward", *sys.argv[2:]]
    gc.callbacks.append(_gc_timer)
    atexit.register(_gc_report, out)
    if os.environ.get("PROFILE_GC_ONLY"):  # no profiler: only the collector's time
        runpy.run_module("dataward", run_name="__main__", alter_sys=True)
        return
    threading.Thread.run = _profiled_run(threading.Thread.run)  # type: ignore[method-assign]
    main_profile = cProfile.Profile(time.thread_time)
    PROFILES.append(main_profile)
    atexit.register(dump, out)
    main_profile.enable()
    runpy.run_module("dataward", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
