"""Run `python -m dataward ...` with a timeline of its start: where a restart's wall time goes.

    python3 -m bench.restart_trace OUT.json run --kubeconfig ...

Records, on the monotonic clock (the same on every process of the machine, so a bench can
put the operator's timeline beside its own): the imports, the Lease, each cache's LIST (its
pages fetched and slimmed, then the index built) with the CPU its thread used, the instant
the caches had all listed, every store reconcile (thread, start, end, thread CPU), each
garbage collection, the process's CPU at each of those instants and, once the first pass is
done, each thread's CPU. Written to OUT.json a second after "first pass done" and again at
exit. Hooks wrap methods every tree of the operator has (bench/restart_bench.py runs main's
and a branch's operator the same way); the wrapping costs a few microseconds a call.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import json
import os
import runpy
import sys
import threading
import time
from typing import Any

TRACE: dict[str, Any] = {
    "marks": {}, "lists": [], "reconciles": [], "gc": [], "cpu": {}, "rss": {},
    "rss_samples": [],  # (time, peak, now) every RSS_EVERY reconciles
}
RSS_EVERY = 250
# Set (e.g. --tree PATH,DATAWARD_TRACE_TRIM=1): malloc_trim(0) once the caches have listed,
# as the first pass begins, and the RSS after it (mark "trimmed").
TRIM_AT_BEGIN = "DATAWARD_TRACE_TRIM"
LOCK = threading.Lock()
OUT = ""


def now() -> float:
    return time.monotonic()


def mark(name: str) -> None:
    """The first time `name` happens, and the process's CPU then."""
    with LOCK:
        if name not in TRACE["marks"]:
            TRACE["marks"][name] = now()
            TRACE["cpu"][name] = time.process_time()
            TRACE["rss"][name] = rss_mib()


def rss_mib() -> tuple[float, float]:
    """(peak, current) resident set of this process, MiB."""
    with open("/proc/self/status") as file:
        fields = dict(line.split(":", 1) for line in file if ":" in line)
    return (int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024)


def _threads_cpu() -> dict[str, float]:
    """Each live thread's CPU seconds (user + system), by its Python name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), f"native-{tid}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def dump() -> None:
    with LOCK:
        text = json.dumps(TRACE)
    with open(OUT + ".tmp", "w") as file:
        file.write(text)
    os.replace(OUT + ".tmp", OUT)


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        TRACE["_gc_began"] = now()
    else:
        began = TRACE.pop("_gc_began", now())
        TRACE["gc"].append((info["generation"], began, now() - began, info.get("collected", 0)))


def _hooks() -> None:
    from dataward.controller import cache, leader, queue, reconcile
    from dataward.controller import operator as operator_module

    mark("imported")

    list_pages = cache.Informer._list_pages
    relist = cache.Informer._relist

    def traced_list(self: Any, namespace: Any, take: Any, restart: Any, *limit: Any) -> Any:
        began, cpu = now(), time.thread_time()
        objects = 0

        def counted(items: Any) -> None:
            nonlocal objects
            objects += len(items)
            take(items)

        result = list_pages(self, namespace, counted, restart, *limit)
        with LOCK:
            TRACE["lists"].append({
                "where": self.where, "began": began, "listed": now(),
                "cpu": time.thread_time() - cpu, "objects": objects,
            })
        return result

    def traced_relist(self: Any) -> None:
        cpu = time.thread_time()
        relist(self)
        with LOCK:
            for entry in reversed(TRACE["lists"]):
                if entry["where"] == self.where and "stored" not in entry:
                    entry["stored"] = now()
                    entry["cpu_all"] = time.thread_time() - cpu
                    entry["rss"] = rss_mib()
                    break

    cache.Informer._list_pages = traced_list  # type: ignore[method-assign]
    cache.Informer._relist = traced_relist  # type: ignore[method-assign]

    reconcile_logged = reconcile.Reconciler.reconcile_logged

    def traced_reconcile(self: Any, key: Any) -> Any:
        began, cpu = now(), time.thread_time()
        try:
            return reconcile_logged(self, key)
        finally:
            entry = (threading.current_thread().name, "/".join(key), began, now(),
                     time.thread_time() - cpu)
            with LOCK:
                TRACE["reconciles"].append(entry)
                if len(TRACE["reconciles"]) % RSS_EVERY == 0:
                    TRACE["rss_samples"].append((now(), *rss_mib()))

    reconcile.Reconciler.reconcile_logged = traced_reconcile  # type: ignore[method-assign]

    acquire = leader.LeaderElector.acquire

    def traced_acquire(self: Any) -> bool:
        mark("acquire")
        got = acquire(self)
        mark("lease")
        return got

    leader.LeaderElector.acquire = traced_acquire  # type: ignore[method-assign]

    start = cache.Caches.start

    def traced_start(self: Any) -> None:
        mark("caches_start")
        start(self)

    cache.Caches.start = traced_start  # type: ignore[method-assign]

    begin = queue.FirstPass.begin

    def traced_begin(self: Any, keys: Any, at: float) -> None:
        mark("first_pass_begin")
        if os.environ.get(TRIM_AT_BEGIN):  # an experiment: glibc's free memory handed back
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            mark("trimmed")
        begin(self, keys, at)

    queue.FirstPass.begin = traced_begin  # type: ignore[method-assign]

    done = queue.FirstPass.done

    def traced_done(self: Any, key: Any, at: float) -> str | None:
        message = done(self, key, at)
        if message:
            mark("first_pass_done")
            with LOCK:
                TRACE["threads_cpu_at_done"] = _threads_cpu()
            threading.Timer(1.0, dump).start()
        return message

    queue.FirstPass.done = traced_done  # type: ignore[method-assign]

    run_operator = operator_module.run_operator

    async def traced_run_operator(*args: Any, **kwargs: Any) -> None:
        mark("run_operator")
        await run_operator(*args, **kwargs)

    operator_module.run_operator = traced_run_operator  # type: ignore[assignment]


def main() -> None:
    global OUT
    OUT = sys.argv[1]
    mark("main")
    sys.argv = ["dataward", *sys.argv[2:]]
    gc.callbacks.append(_gc_timer)
    _hooks()
    atexit.register(dump)
    runpy.run_module("dataward", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
