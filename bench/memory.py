"""Memory the operator holds per store, in-process (no control plane). Prints figures only.

    PYTHONPATH=$PWD/operator python3 -m bench.memory --stores 10000 --namespaces 100

Puts N stores over K namespaces of the in-memory API the unit tests use (each store with its
own pods, peers, credentials and readers, as bench/crowded_namespace.py), fills the watch caches
from it, reconciles every store once (converging: children, ring and status written), gives
each store a finished purge run (a Job made from its CronJob's jobTemplate, as the CronJob
controller would, and its pod with a result record), reconciles again (lastPurge recorded),
then once more with nothing to do (with --restart: then new caches and a new reconciler,
one pass, as after a restart). Every LIST answer is dressed as the API server sends it
(managedFields of two managers, kubectl's last-applied annotation on what users apply, uid,
creationTimestamp), so the caches ingest what a real watch delivers. Secrets are cached as
the operator caches them by default (SECRET_KINDS): the key rings with their data, every Secret
(the credentials and the rings) as metadata.

Then the in-memory API's own objects are dropped (a real operator has no such copy) and
tracemalloc tells what is still held by allocations made under operator/dataward: the
caches, the reconciler's memos, the metric series. Reported: that total and per store, the
top allocation sites (innermost operator frame), objects per cached kind, bytes per kind as
delivered vs as kept, Prometheus series (all, and per store), and the largest single LIST
as delivered (what a re-list holds at once on top, in the real process, before slimming).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import FunctionType, MethodType, ModuleType
from typing import Any, cast

from prometheus_client.parser import text_string_to_metric_families

from bench.fake_api import fake_caches, listed
from dataward.checks.purge_runs import JOB_NAME_LABEL
from dataward.controller.cache import Caches, sweep_copies
from dataward.controller.kube import Kube
from dataward.controller.metrics import STORES, exposition
from dataward.controller.operator import tune_garbage_collector
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import ListingKube, _relist, page
from tests.controller.test_reconcile import T0, add_store
from tests.model import samples

OPERATOR = "*/operator/dataward/*"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
APPLIED_BY_USERS = {"PersonalDataStore", "PrivacyPolicy"}
MiB = 1024 * 1024


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of a value, each object once: JSON-like values, and the operator's own records
    (dataclasses, named tuples, __slots__ classes), followed through their fields. Classes,
    functions, modules, locks are not followed (shared by the process, not per store)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, type | ModuleType | FunctionType | MethodType):
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, Mapping):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif type(obj).__module__.startswith("dataward."):
        fields = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    fields[slot] = getattr(obj, slot)
        size += sum(deep_size(v, seen) for v in fields.values())
    return size


def breakdown(caches: Any, reconciler: Reconciler) -> list[tuple[str, int]]:
    """Bytes held per structure, each object counted once, in this order: the cached objects
    per kind first (so a structure that points into them counts only what it adds), then the
    caches' indexes and journals, the reconciler's per-store and per-namespace memos, the
    metric records. Strings shared by several structures count for the first."""
    seen: set[int] = set()
    out: list[tuple[str, int]] = []
    by_kind: Counter[str] = Counter()
    for (kind, _), informer in caches.informers.items():
        by_kind[kind] += deep_size(informer.by_namespace, seen)
    out += [(f"cache {kind}", size) for kind, size in sorted(by_kind.items())]
    indexes = journals = 0
    for informer in caches.informers.values():
        indexes += deep_size(informer.index, seen)
        journals += deep_size(informer.journal, seen)
    out += [("cache label indexes (index.py)", indexes), ("cache journals", journals)]
    for name in ("_parse_memo", "_last_status", "_ns_memo", "_declared_memo", "_rbac_states"):
        out.append((f"reconciler {name}", deep_size(getattr(reconciler, name), seen)))
    out.append(("metric records (StoreMetrics)", deep_size(STORES._stores, seen)))
    return out


def _fields(value: Any) -> Any:
    """fieldsV1 of a value, as the API server records it (one `f:` key per field)."""
    if isinstance(value, Mapping):
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    if isinstance(value, list):
        return {f'k:{{"i":{i}}}': _fields(v) for i, v in enumerate(value)}
    return {}


def dressed(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the API server would answer it: managedFields, uid, creation time, ..."""
    meta = obj["metadata"]
    kind = obj.get("kind", "")
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    meta.setdefault("generation", 1)
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    if kind in APPLIED_BY_USERS:
        applied = {"apiVersion": obj.get("apiVersion"), "kind": kind,
                   "metadata": {k: meta[k] for k in ("name", "namespace", "labels") if k in meta},
                   **body}  # fmt: skip
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               LAST_APPLIED: json.dumps(applied) + "\n"}  # fmt: skip
    managers = [("kubectl-client-side-apply" if kind in APPLIED_BY_USERS else "dataward",
                 {"f:metadata": _fields({k: meta.get(k) for k in ("labels", "annotations",
                                                                  "ownerReferences") if k in meta}),
                  **_fields(body)}, None)]  # fmt: skip
    if obj.get("status"):
        managers.append(("dataward", {"f:status": _fields(obj["status"])}, "status"))
    meta["managedFields"] = [
        {"manager": name, "operation": "Update", "apiVersion": obj.get("apiVersion", "v1"),
         "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields,
         **({"subresource": sub} if sub else {})}
        for name, fields, sub in managers
    ]  # fmt: skip
    return obj


class DressedKube(ListingKube):
    """The in-memory API whose LIST answers look like the API server's; sizes them."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: Counter[str] = Counter()
        self.largest_list = 0
        self.sizing = False  # deep_size is slow: only the last re-list is sized
        # A LIST answered in pages: the whole answer, listed once for its first page.
        self._paged: dict[tuple[str, str | None], dict[str, Any]] = {}

    def _call(self, method: str, path: str, *, query: Any = None, what: str, **kw: Any) -> Any:
        params = dict(query or [])
        start = int(params.get("continue") or 0)
        key = (path, params.get("labelSelector"))
        paged = self.__dict__.setdefault("_paged", {})  # not in a state pickled before it
        if "limit" in params and start and key in paged:
            answer = paged[key]  # the rest of the LIST the first page began
        else:  # the whole LIST, paged here: ListingKube would answer one page of it
            whole = [(k, v) for k, v in query or [] if k not in ("limit", "continue")]
            answer = super()._call(method, path, query=whole, what=what, **kw)
        if "limit" in params:  # pages, as the API server answers a LIST with a limit
            items, token = page(answer["items"], params)
            if token:
                paged[key] = answer
            else:
                paged.pop(key, None)
            answer = {**answer, "metadata": {**answer["metadata"], "continue": token}}
            answer["items"] = items
        for item in answer["items"]:
            dressed(item)
        # Decoded from JSON, as the real client's answer is: a string object per occurrence
        # (the fake's deep copies would share them and hide what interning saves).
        answer = json.loads(json.dumps(answer))
        if not self.sizing:
            return answer
        size = deep_size(answer)
        self.largest_list = max(self.largest_list, size)
        self.delivered[what.removeprefix("list ")] += size  # every page of the kind
        return answer


def populate(kube: ListingKube, stores: int, namespaces: int) -> None:
    kube._store(copy.deepcopy(samples.POLICY))
    for i in range(stores):
        name = f"store-{i:05d}"
        add_store(kube, name, f"ns-{i % namespaces:03d}", name)


def finished_runs(kube: ListingKube, scheduled: datetime | None = None) -> int:
    """Per CronJob of ours, one finished Job (from its jobTemplate) and its pod. `scheduled`:
    the run the CronJob controller started then, recorded as its `status.lastScheduleTime`
    (else a run of 2026-01-01 whose Job's name says 2025, and no schedule recorded)."""
    made = 0
    minutes = 29000000 if scheduled is None else int(scheduled.timestamp()) // 60
    ran = "2026-01-01T03:17:00Z" if scheduled is None else scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
    done = "2026-01-01T03:18:00Z" if scheduled is None else (
        scheduled + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for (kind, ns, name), cronjob in list(kube.objects.items()):
        if kind != "CronJob":
            continue
        if scheduled is not None:  # as the CronJob controller records it: a new version
            cronjob = kube._store({**cronjob, "status": {**(cronjob.get("status") or {}),
                                                         "lastScheduleTime": ran}})
        template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
        job_name = f"{name}-{minutes}"
        labels = {**(template["metadata"].get("labels") or {}), JOB_NAME_LABEL: job_name}
        job = kube._store({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name, "namespace": ns, "labels": labels,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                              "name": name, "uid": cronjob["metadata"]["uid"],
                                              "controller": True}]},
            "spec": template["spec"],
            "status": {"startTime": ran, "completionTime": done, "succeeded": 1,
                       "conditions": [{"type": "Complete", "status": "True",
                                       "lastTransitionTime": done}]},
        })  # fmt: skip
        record: dict[str, Any] = {"version": 1, "deleted": 120, "expiredRemaining": 0,
                                  "batches": 1}
        if scheduled is not None:  # a run that succeeded, as the purge's record says it
            record = {"result": "Succeeded", "rowsDeleted": 120, "rowsArchived": 0,
                      "expiredRemaining": 0, "startTime": ran, "completionTime": done}
        kube._store({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{job_name}-x7k2p", "namespace": ns, "labels": labels,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                              "name": job_name, "uid": job["metadata"]["uid"],
                                              "controller": True}]},
            "spec": copy.deepcopy(template["spec"]["template"]["spec"]),
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "purge", "state": {"terminated": {
                    "exitCode": 0, "reason": "Completed", "message": json.dumps(record)}}}]},
        })  # fmt: skip
        made += 1
    return made


def series() -> tuple[int, int]:
    """Prometheus series /metrics serves: all, and those that name a store."""
    total = per_store = 0
    for metric in text_string_to_metric_families(b"".join(exposition()).decode()):
        for sample in metric.samples:
            total += 1
            per_store += "store" in sample.labels
    return total, per_store


def sites(snapshot: tracemalloc.Snapshot, top: int) -> list[tuple[str, int, int]]:
    """(innermost operator frame, bytes, blocks), largest first."""
    by_site: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for stat in snapshot.statistics("traceback"):
        frame = next(
            (f for f in stat.traceback if "/operator/dataward/" in f.filename), None
        )  # tracemalloc keeps the most recent frame first
        where = f"{frame.filename.split('/operator/')[-1]}:{frame.lineno}" if frame else "?"
        by_site[where] += stat.size
        blocks[where] += stat.count
    return [(site, size, blocks[site]) for site, size in by_site.most_common(top)]


def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: now, VmHWM: the peak so far); 0 elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Collections:
    """The cyclic collector's runs (gc.callbacks): how many per generation, objects found."""

    def __init__(self) -> None:
        self.runs: Counter[int] = Counter()
        self.collected = 0
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.runs[info["generation"]] += 1
        self.collected += info["collected"]

    def take(self) -> str:
        said = (f"collections {dict(sorted(self.runs.items()))}, {self.collected} objects "
                f"collected, {1000 * self.seconds:.0f} ms")  # fmt: skip
        self.runs.clear()
        self.collected, self.seconds = 0, 0.0
        return said


def restart(args: argparse.Namespace, kube: DressedKube, keys: list[tuple[str, str]],
            now: Any) -> tuple[Caches, Reconciler]:  # fmt: skip
    """A restarted operator over the converged fake API: new caches list, one first pass.

    The converged process's caches and reconciler are gone first (a new process has none),
    and the cyclic collector is set as `dataward run` sets it (tune_garbage_collector, and
    _resync's freeze once the caches have listed). Per phase: traced bytes now and the traced
    peak within the phase (both above the fake API's and the metrics' bytes, which stay),
    the process's RSS now and its high-water mark, the collector's runs.
    """
    gc.collect()
    sweep_copies()  # the shared copies only the dropped caches held (a new process has none)
    tune_garbage_collector()
    collections = Collections()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    base_hwm = _status_kib("VmHWM")
    print(f"\nrestart (fake API and metrics held: {base / MiB:.1f} MiB traced, "
          f"RSS {_status_kib('VmRSS') / 1024:.0f} MiB, high-water so far "
          f"{base_hwm / 1024:.0f} MiB; collector threshold {gc.get_threshold()})")

    def phase(what: str, cpu: float) -> None:
        now_b, peak_b = tracemalloc.get_traced_memory()
        print(f"  {what}: {cpu:.2f} s CPU; traced held {(now_b - base) / MiB:.1f} MiB, "
              f"peak {(peak_b - base) / MiB:.1f} MiB; RSS {_status_kib('VmRSS') / 1024:.0f} "
              f"MiB (high-water {_status_kib('VmHWM') / 1024:.0f}); {collections.take()}")
        tracemalloc.reset_peak()

    start = time.process_time()
    caches = fake_caches(kube)
    _relist(caches)
    phase("caches listed", time.process_time() - start)
    gc.freeze()  # as _resync does once every cache has listed
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    kube.calls.clear()
    start = time.process_time()
    every = max(1, len(keys) // 10)
    for i, key in enumerate(keys, 1):
        reconciler.reconcile(key, now=now)
        if args.verbose and i % every == 0:
            phase(f"  {i} reconciled", time.process_time() - start)
    spent = time.process_time() - start
    print(f"  restart pass: {1000 * spent / len(keys):.2f} ms CPU per store, "
          f"{len(kube.writes())} writes, gc counts {gc.get_count()}, "
          f"frozen {gc.get_freeze_count()}")  # fmt: skip
    phase("first pass done", spent)
    start = time.process_time()
    gc.collect()
    phase("then gc.collect()", time.process_time() - start)
    gc.unfreeze()
    start = time.process_time()
    gc.collect()
    phase("then unfrozen, gc.collect()", time.process_time() - start)
    n = len(keys)
    held, _ = tracemalloc.get_traced_memory()
    print(f"  held by the restarted operator: {(held - base) / n / 1024:.1f} KiB per store; "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return caches, reconciler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--restart", action="store_true",
                        help="measure a new reconciler over new caches after one pass (a restart)")
    parser.add_argument("--frames", type=int, default=1,
                        help="traceback depth: 1 is fast; 64 names the operator's sites")
    parser.add_argument("--verbose", action="store_true",
                        help="with --restart: the figures every tenth of the first pass")
    args = parser.parse_args()
    started = time.monotonic()
    tracemalloc.start(args.frames)
    baseline = tracemalloc.get_traced_memory()[0]
    kube = DressedKube()
    populate(kube, args.stores, args.namespaces)
    # Every kind the operator caches by default (`watch_secrets`): the key rings with their
    # data, every Secret as metadata.
    caches, reconciler, keys = listed(kube)
    passes = [("converging", T0), ("purge runs recorded", T0 + timedelta(minutes=1)),
              ("nothing to do", T0 + timedelta(minutes=5))]  # fmt: skip
    for i, (what, now) in enumerate(passes):
        if i == 1:
            finished_runs(kube)
        kube.sizing = i == len(passes) - 1
        _relist(caches)  # what the watches would have delivered
        kube.calls.clear()
        start = time.process_time()
        for key in keys:
            reconciler.reconcile(key, now=now)
        spent = time.process_time() - start
        writes = len(kube.writes())
        print(f"pass {i + 1} ({what}): {1000 * spent / len(keys):.1f} ms CPU per store, "
              f"{writes} writes")  # fmt: skip
    if args.restart:
        del reconciler, caches  # a new process has none of the converged one's
        caches, reconciler = restart(args, kube, keys, passes[-1][1] + timedelta(minutes=5))
    delivered = dict(kube.delivered)
    largest = kube.largest_list
    counts = caches.counts()
    held = breakdown(caches, reconciler)
    kept: Counter[str] = Counter()
    for (kind, _), informer in caches.informers.items():
        for objs in informer.by_namespace.values():
            kept[kind] += sum(deep_size(o) for o in objs.values())
    # A real operator has no in-memory API: drop its objects, keep what the operator holds.
    kube.objects.clear()
    kube.calls.clear()
    gc.collect()
    traced, peak = tracemalloc.get_traced_memory()
    traced -= baseline
    n = len(keys)
    print(f"\n{n} stores over {args.namespaces} namespaces "
          f"({time.monotonic() - started:.0f} s wall)")  # fmt: skip
    print(f"held after dropping the fake API (all traced since start): {traced / MiB:.1f} MiB, "
          f"{traced / n / 1024:.1f} KiB per store (peak with the fake: {peak / MiB:.1f} MiB)")
    if args.frames > 1:
        snapshot = tracemalloc.take_snapshot()
        held = snapshot.filter_traces([tracemalloc.Filter(True, OPERATOR, all_frames=True)])
        total_held = sum(stat.size for stat in held.statistics("filename"))
        print(f"of which allocated under operator frames: {total_held / MiB:.1f} MiB")
        print("\ntop allocation sites (innermost operator frame):")
        for site, size, blocks in sites(held, args.top):
            print(f"  {size / MiB:8.1f} MiB {size / n:8.0f} B/store {blocks:9d} blocks  {site}")
    print("\ncached objects per kind: objects, as delivered (last re-list), as kept")
    for kind in sorted(counts):
        print(f"  {kind:20s} {counts[kind]:7d} {delivered.get(kind, 0) / MiB:8.1f} MiB "
              f"{kept.get(kind, 0) / MiB:8.1f} MiB")  # fmt: skip
    print(f"  {'total':20s} {sum(counts.values()):7d} {sum(delivered.values()) / MiB:8.1f} MiB "
          f"{sum(kept.values()) / MiB:8.1f} MiB")  # fmt: skip
    print("largest single LIST answer (page) as delivered, held at once by a re-list: "
          f"{largest / MiB:.1f} MiB")
    print("\nheld per structure (deep sizes, each object once, in this order), per store:")
    for what, size in held:
        print(f"  {what:36s} {size / MiB:8.1f} MiB {size / n / 1024:8.2f} KiB/store")
    total = sum(size for _, size in held)
    print(f"  {'total of these':36s} {total / MiB:8.1f} MiB {total / n / 1024:8.2f} KiB/store")
    total_series, store_series = series()
    print(f"\nprometheus series: {total_series} ({store_series} name a store, "
          f"{store_series / n:.1f} per store)")  # fmt: skip
    memo = {name: len(getattr(reconciler, name)) for name in vars(reconciler)
            if name.endswith(("_memo", "_status", "_objects"))}  # fmt: skip
    print(f"reconciler memo entries: {memo}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"this process's peak RSS (with the fake API and tracemalloc): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
