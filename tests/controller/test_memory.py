"""Bounded memory (issue 11): what the operator keeps per store, and that it goes with it.

The figures at scale are bench/memory.py's; these tests hold the defects it found fixed: a
store's metric series cost ~20 KiB, a deleted store left its remembered status behind, a
cached Job kept the whole pod template no check reads. And stripping must not cost a
steady state: with objects as the API server sends them (managedFields, kubectl's
last-applied annotation), a second pass writes nothing.
"""

from __future__ import annotations

import copy
import gc
import json
import tracemalloc
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from bench.memory import DressedKube, finished_runs, populate
from dataward.controller.cache import RELIST_PAGE, CachedKind, Informer, slim
from dataward.controller.kube import Kube, KubeError
from dataward.controller.metrics import (
    STORES,
    exposition,
    forget_store,
    record_key_age,
    record_status,
)
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import ListingKube, _caches, _cluster, _relist
from tests.controller.test_reconcile import KEY, T0


def served() -> str:
    """What /metrics serves."""
    return b"".join(exposition()).decode()


def store_samples() -> list[Any]:
    """Every per-store sample /metrics serves, parsed by Prometheus' own parser."""
    return [s for m in text_string_to_metric_families(served()) for s in m.samples
            if "store" in s.labels]  # fmt: skip


TYPES = ("PolicyCompliant", "NetworkIsolated", "AccessRestricted", "EncryptionKeyReady",
         "PurgeScheduled", "PurgeSucceeded", "AccessRecorded", "Ready")  # fmt: skip


def test_a_stores_metric_series_cost_little_and_go_with_it() -> None:
    status = {
        "conditions": [{"type": t, "status": "True"} for t in TYPES],
        "lastPurge": {"expiredRemaining": 0, "oldestExpiredAgeSeconds": 12},
    }
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            record_status(f"ns-{i % 20}", f"mem-{i:05d}", status)
            record_key_age(f"ns-{i % 20}", f"mem-{i:05d}", 3600.0)
        per_store = (tracemalloc.get_traced_memory()[0] - before) / 2000
    finally:
        tracemalloc.stop()
    # 8 conditions x 3 statuses + 3 figures = 27 series; as labelled children ~20 KiB.
    assert per_store < 2048, f"{per_store:.0f} bytes of metrics per store"
    samples = [s for s in store_samples() if s.labels["store"] == "mem-00007"]
    assert len(samples) == 27
    assert {s.labels["status"] for s in samples if "status" in s.labels} == {
        "True", "False", "Unknown"}
    for i in range(2000):
        forget_store(f"ns-{i % 20}", f"mem-{i:05d}")
    assert not [s for s in store_samples() if s.labels["store"].startswith("mem-")]


def test_a_conditions_status_series_says_which_status_it_has() -> None:
    record_status("crm", "flip", {"conditions": [{"type": "Ready", "status": "False"}]})
    values = {s.labels["status"]: s.value for s in store_samples() if s.labels["store"] == "flip"}
    assert values == {"True": 0.0, "False": 1.0, "Unknown": 0.0}
    assert ('dataward_store_condition{namespace="crm",status="False",store="flip",type="Ready"} 1.0'
            in served())  # what alerts query  # fmt: skip
    forget_store("crm", "flip")
    assert 'store="flip"' not in served()


def test_another_controllers_condition_in_status_is_not_exported_as_the_stores() -> None:
    # Status keeps another controller's condition; dataward_store_condition is what alerts
    # read ("a store's condition False"): theirs is not a control of the store.
    record_status("crm", "kept", {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "ExampleSynced", "status": "False"}]})
    types = {s.labels["type"] for s in store_samples() if s.labels["store"] == "kept"
             and "type" in s.labels}  # fmt: skip
    forget_store("crm", "kept")
    assert types == {"Ready"}


def test_the_streamed_exposition_is_prometheus_clients_text_format() -> None:
    """Made a chunk at a time by hand, it must read as prometheus_client writes it."""
    odd = ('we"ird\\ns', "store\nname")  # escaping of label values
    stores = [("crm", f"fmt-{i}") for i in range(5)] + [odd]
    for i, (ns, name) in enumerate(stores):
        record_status(ns, name, {
            "conditions": [{"type": "Ready", "status": ("True", "False")[i % 2]},
                           {"type": "NetworkIsolated", "status": "Unknown"}],
            "lastPurge": {"expiredRemaining": i} if i % 2 else {},
        })
        if i % 3 == 0:
            record_key_age(ns, name, 1e10 + 0.25 * i)
    try:
        condition = GaugeMetricFamily("dataward_store_condition",
                                      "1 when the store's condition has this status.",
                                      labels=["namespace", "store", "type", "status"])
        remaining = GaugeMetricFamily("dataward_purge_expired_rows_remaining",
                                      "Expired rows the last purge left in the live database.",
                                      labels=["namespace", "store"])
        oldest = GaugeMetricFamily("dataward_purge_oldest_expired_age_seconds",
                                   "How long ago the most overdue remaining row expired.",
                                   labels=["namespace", "store"])
        key_age = GaugeMetricFamily("dataward_primary_key_age_seconds",
                                    "Age of the store's primary encryption key.",
                                    labels=["namespace", "store"])
        for i, (ns, name) in enumerate(stores):
            for type_, status in (("Ready", ("True", "False")[i % 2]),
                                  ("NetworkIsolated", "Unknown")):
                for value in ("True", "False", "Unknown"):
                    condition.add_metric([ns, name, type_, value], float(status == value))
            if i % 2:
                remaining.add_metric([ns, name], float(i))
            if i % 3 == 0:
                key_age.add_metric([ns, name], 1e10 + 0.25 * i)

        class Families:
            def collect(self) -> list[GaugeMetricFamily]:
                return [condition, remaining, oldest, key_age]

        registry = CollectorRegistry()
        registry.register(Families())  # type: ignore[arg-type]
        expected = [line for line in generate_latest(registry).decode().splitlines()
                    if "fmt-" in line or "we\\" in line or line.startswith("#")]  # fmt: skip
        for chunk in (1, 2, 500):
            made = b"".join(STORES.exposition(chunk)).decode().splitlines()
            assert [line for line in made if "fmt-" in line or "we\\" in line
                    or line.startswith("#")] == expected, chunk  # fmt: skip
    finally:
        for ns, name in stores:
            forget_store(ns, name)


class _OutdatedCrdKube(ListingKube):
    """An API server whose store CRD predates status.purgeRenders: a structural schema
    prunes it from every status written (Helm never upgrades CRDs)."""

    def json_patch(self, kind: str, namespace: str | None, name: str,
                   operations: Sequence[Mapping[str, Any]],
                   subresource: str | None = None) -> dict[str, Any]:  # fmt: skip
        answer = super().json_patch(kind, namespace, name, operations, subresource)
        if kind == "PersonalDataStore" and subresource == "status":
            self.objects[(kind, namespace, name)].get("status", {}).pop("purgeRenders", None)
            answer.get("status", {}).pop("purgeRenders", None)
        return answer


def _outdated_crd_cluster() -> _OutdatedCrdKube:
    kube = _OutdatedCrdKube()
    for obj in _cluster().objects.values():
        kube._store(copy.deepcopy(obj))
    return kube


def _status_writes(kube: ListingKube) -> int:
    return sum(1 for call in kube.calls if call[:2] == ("patch/status", "PersonalDataStore"))


def _reconciled_twice(kube: Any) -> tuple[Reconciler, Any]:
    """A reconciler over `kube`'s caches after two passes of KEY a minute apart (the caches
    relisted after each, as the watches would deliver the writes)."""
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    for minute in range(2):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minute))
        _relist(caches)
    return reconciler, caches


def test_a_status_the_server_kept_as_written_leaves_no_record_of_the_write() -> None:
    """The record of a store's last status write (resourceVersion, digest) only spares the
    write an outdated CRD's pruning would repeat. When the answer says all that was sent, the
    comparison with the cached store finds nothing to write without it: a converged store
    holds none, as a restarted operator holds none (issue 11). And the steady state still
    writes nothing."""
    kube = _cluster()
    reconciler, caches = _reconciled_twice(kube)
    written = _status_writes(kube)
    assert written >= 1
    assert ("PersonalDataStore", *KEY) not in reconciler._last_status
    for minute in range(2, 5):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minute))
        _relist(caches)
    assert _status_writes(kube) == written
    assert ("PersonalDataStore", *KEY) not in reconciler._last_status


def test_an_outdated_crd_that_prunes_a_store_status_field_costs_one_write() -> None:
    """What the record is for: the server drops status.purgeRenders from every write, so the
    cached store never says all a pass would write; the record of the write (at the answer's
    resourceVersion) keeps the next passes from writing the same status again."""
    kube = _outdated_crd_cluster()
    reconciler, caches = _reconciled_twice(kube)
    written = _status_writes(kube)
    assert "purgeRenders" not in kube.objects[("PersonalDataStore", *KEY)]["status"]
    assert ("PersonalDataStore", *KEY) in reconciler._last_status
    for minute in range(2, 5):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minute))
        _relist(caches)
    assert _status_writes(kube) == written


def test_a_deleted_store_leaves_nothing_in_the_reconcilers_memos() -> None:
    kube = _outdated_crd_cluster()  # so that a status write is remembered
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    reconciler.reconcile(KEY, now=T0)
    _relist(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("PersonalDataStore", *KEY) in reconciler._last_status
    kube.objects.pop(("PersonalDataStore", *KEY))
    _relist(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert [k for k in reconciler._last_status if k[0] == "PersonalDataStore"] == []
    assert KEY not in reconciler._parse_memo
    assert STORES.figures(*KEY) is None


def test_a_cached_job_keeps_its_metadata_and_status_not_its_pod_template() -> None:
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "j", "namespace": "crm", "uid": "u", "labels": {"a": "b"},
                     "annotations": {"dataward.io/store": "crm/x"},
                     "ownerReferences": [{"kind": "CronJob", "uid": "c"}],
                     "managedFields": [{"manager": "kube-controller-manager"}]},
        "spec": {"template": {"spec": {"containers": [{"name": "purge", "env": [
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}},
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    }  # fmt: skip
    kept = slim("Job", job)
    assert "spec" not in kept
    assert kept["status"] == job["status"]
    assert kept["metadata"]["annotations"] == {"dataward.io/store": "crm/x"}
    assert kept["metadata"]["ownerReferences"] == [{"kind": "CronJob", "uid": "c"}]
    assert "managedFields" not in kept["metadata"]


def test_objects_as_the_api_sends_them_reach_a_write_free_steady_state() -> None:
    """managedFields, last-applied, a finished run per store: stripped, and no rewrite."""
    kube = DressedKube()
    populate(kube, 12, 3)
    caches = _caches(kube)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    keys = [(s["metadata"]["namespace"], s["metadata"]["name"])
            for s in caches.list("PersonalDataStore")]  # fmt: skip
    for key in keys:
        reconciler.reconcile(key, now=T0)
    assert finished_runs(kube) == 12
    _relist(caches)
    for key in keys:
        reconciler.reconcile(key, now=T0 + timedelta(minutes=1))
    recorded = [o["status"].get("lastPurge") for (k, _, _), o in kube.objects.items()
                if k == "PersonalDataStore"]  # fmt: skip
    assert all(r and r.get("jobName") for r in recorded), recorded
    for informer in caches.informers.values():
        for objs in informer.by_namespace.values():
            for obj in objs.values():
                assert "managedFields" not in obj["metadata"] or obj["kind"] == "CronJob"
                assert "kubectl.kubernetes.io/last-applied-configuration" not in (
                    obj["metadata"].get("annotations") or {})
    _relist(caches)
    kube.calls.clear()
    for key in keys:
        reconciler.reconcile(key, now=T0 + timedelta(minutes=5))
    assert kube.writes() == []


def test_the_dressed_api_answers_every_page_of_a_list() -> None:
    """bench.memory's API, which the in-process benches list, dresses the pages ListingKube
    serves. Red on 137fef4: it paged those pages again, every LIST ended with its first
    page, and the benches measured caches of 500 objects a kind (and first passes that
    wrote, for children their caches lacked)."""
    kube = DressedKube()
    populate(kube, 1200, 4)
    informer = Informer(cast(Kube, kube), CachedKind("PersonalDataStore"), None, 3600,
                        lambda *_: None, lambda *_: None)  # fmt: skip
    informer._relist()
    assert len(informer.items(None)) == 1200


class PagingKube(ListingKube):
    """ListingKube's pages (limit/continue, as the API server serves them), each recorded;
    may expire a continue token once."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: list[tuple[str, int]] = []  # (path, items in the page)
        self.expire_once = False

    def _call(self, method: str, path: str, *, query: Any = None, what: str, **kw: Any) -> Any:
        if dict(query or []).get("continue") and self.expire_once:
            self.expire_once = False
            raise KubeError(410, "Gone", what)
        answer = super()._call(method, path, query=query, what=what, **kw)
        self.pages.append((path, len(answer["items"])))
        return answer


def test_a_relist_reads_in_pages_and_starts_over_when_its_token_expires() -> None:
    kube = PagingKube()
    populate(kube, 1200, 4)
    informer = Informer(cast(Kube, kube), CachedKind("PersonalDataStore"), None, 3600,
                        lambda *_: None, lambda *_: None)  # fmt: skip
    informer._relist()
    # 1,200 stores in one LIST was one body and every object as sent, held at once.
    assert [n for _, n in kube.pages] == [500, 500, 200]
    assert len(informer.items(None)) == 1200
    kube.pages.clear()
    kube.expire_once = True
    informer._relist()
    assert informer.synced
    # A re-list's pages are smaller (each is held beside the whole cache): page 2 was Gone,
    # so the list started again.
    assert [n for _, n in kube.pages] == [RELIST_PAGE] * (1 + 1200 // RELIST_PAGE)
    assert len(informer.items(None)) == 1200


def test_cached_objects_share_their_repeated_strings() -> None:
    """Two objects decoded from two answers: one copy of each label, kind, type, reason."""
    text = json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "j", "labels": {"app.kubernetes.io/managed-by": "dataward"}},
        "status": {"conditions": [{"type": "Complete", "status": "True"}]}})  # fmt: skip
    a, b = slim("Job", json.loads(text)), slim("Job", json.loads(text))
    assert a == b == slim("Job", json.loads(text))
    labels_a, labels_b = a["metadata"]["labels"], b["metadata"]["labels"]
    assert labels_a["app.kubernetes.io/managed-by"] is labels_b["app.kubernetes.io/managed-by"]
    assert a["status"]["conditions"][0]["type"] is b["status"]["conditions"][0]["type"]
    long_message = "x" * 5000  # a unique long string is not interned (no hashing for nothing)
    pod = slim("Pod", {"metadata": {"name": "p"}, "status": {"containerStatuses": [
        {"state": {"terminated": {"message": long_message}}}]}})  # fmt: skip
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == long_message
