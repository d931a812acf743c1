"""Verdicts the operator can no longer check are not left standing (bench/notes/stale-stores.md).

When the cache of the stores themselves fails (their list/watch forbidden, erroring), or in a
sharded operator the Namespace cache does (every `owns()` is then False), no store is
reconciled at all: each store's last status, perhaps Ready=True, would stand for ever. After
a grace period the operator downgrades the verdicts it last wrote True to Unknown, exports
them so, and its readiness fails; the stores become True again only by a real reconcile
once the cache is back. The informers' list path runs against the in-memory API; their
threads and watches are not started (e2e/test_stale_stores.py runs those).
"""

from __future__ import annotations

import copy
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any, cast

from dataward.controller.cache import CachedKind, Caches
from dataward.controller.kube import Kube, KubeError
from dataward.controller.metrics import STORES, serve, unwatch_health, watch_health
from dataward.controller.operator import CACHED_KINDS
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.controller.staleness import StaleVerdicts, unverified_patch
from tests.controller.test_cache import ListingKube, _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, add_store, conditions, sample_cluster

GRACE = 300.0
SHARD = "dataward.io/shard=a"


def _ready(kube: ListingKube) -> tuple[str, str]:
    return conditions(kube)["Ready"]


def _watchdog(kube: ListingKube, caches: Caches, reconciler: Reconciler) -> StaleVerdicts:
    return StaleVerdicts(cast(Kube, kube), caches, GRACE, reconciler,
                         wall=lambda: T0 + timedelta(hours=1))  # fmt: skip


def _converged() -> tuple[ListingKube, Caches, Reconciler]:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0)
    _relist(caches)  # what the watches would have delivered
    assert _ready(kube) == ("True", "AllControlsInForce")
    return kube, caches, reconciler


def _metric_ready(key: tuple[str, str]) -> str | None:
    figures = STORES.figures(*key)
    return dict(figures.conditions).get("Ready") if figures else None


def test_today_a_failed_store_cache_leaves_the_last_ready_true_standing() -> None:
    """What happens without the watchdog: the reconcile cannot read the store, so it writes
    nothing, and Ready=True stands however long the cache stays failed."""
    kube, caches, reconciler = _converged()
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    for _ in range(3):
        assert not reconciler.reconcile_logged(KEY).ok
    assert _ready(kube) == ("True", "AllControlsInForce")


def test_a_store_cache_failed_past_the_grace_period_makes_ready_unknown() -> None:
    kube, caches, reconciler = _converged()
    watchdog = _watchdog(kube, caches, reconciler)
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 403 Forbidden")
    failed = time.monotonic()
    kube.calls.clear()
    watchdog.check(now=failed + GRACE - 5)  # a short relist: nothing yet
    assert kube.writes() == []
    assert watchdog.problems(now=failed + GRACE - 5) == []
    watchdog.check(now=failed + GRACE + 1)
    assert _ready(kube) == ("Unknown", "StoreCacheUnavailable")
    # Every control last judged True is no longer vouched for; its old reason is said.
    assert {status for status, _ in conditions(kube).values()} == {"Unknown"}
    ready = next(c for c in kube.objects[("PersonalDataStore", *KEY)]["status"]["conditions"]
                 if c["type"] == "Ready")  # fmt: skip
    assert "AllControlsInForce" in ready["message"] and "403" in ready["message"]
    assert _metric_ready(KEY) == "Unknown"
    assert watchdog.problems(now=failed + GRACE + 1) != []
    # Once said, not said again (no write on every tick).
    kube.calls.clear()
    watchdog.check(now=failed + GRACE + 60)
    assert kube.writes() == []


def test_a_false_verdict_is_kept_so_its_alert_keeps_firing() -> None:
    kube, caches, reconciler = _converged()
    store = kube.objects[("PersonalDataStore", *KEY)]
    for condition in store["status"]["conditions"]:
        if condition["type"] in ("AccessRestricted", "Ready"):
            condition["status"], condition["reason"] = "False", "Broken"
    kube._store(store)  # a new resourceVersion, as the API gives every change
    _relist(caches)
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 500 Internal Server Error")
    _watchdog(kube, caches, reconciler).check(now=time.monotonic() + GRACE + 1)
    found = conditions(kube)
    assert found["AccessRestricted"] == ("False", "Broken")
    assert found["Ready"] == ("False", "Broken")
    assert found["NetworkIsolated"] == ("Unknown", "StoreCacheUnavailable")


def test_a_recovered_cache_and_a_real_reconcile_make_it_true_again() -> None:
    kube, caches, reconciler = _converged()
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 403 Forbidden")
    watchdog = _watchdog(kube, caches, reconciler)
    watchdog.check(now=time.monotonic() + GRACE + 1)
    assert _ready(kube)[0] == "Unknown"
    informer._relist()  # the permission is back
    assert watchdog.problems(now=time.monotonic() + 2 * GRACE) == []
    kube.calls.clear()
    watchdog.check(now=time.monotonic() + 2 * GRACE)
    assert kube.writes() == []  # the watchdog never writes True
    assert _ready(kube)[0] == "Unknown"
    reconciler.reconcile(KEY, now=T0 + timedelta(hours=2))
    assert _ready(kube) == ("True", "AllControlsInForce")
    assert _metric_ready(KEY) == "True"


def test_healthy_caches_write_nothing() -> None:
    kube, caches, reconciler = _converged()
    kube.calls.clear()
    watchdog = _watchdog(kube, caches, reconciler)
    watchdog.check(now=time.monotonic() + 10 * GRACE)
    assert kube.calls == []
    assert watchdog.problems(now=time.monotonic() + 10 * GRACE) == []


def test_a_store_changed_since_the_last_copy_is_not_overwritten() -> None:
    """The patch tests each condition it changes: a status reordered since the cached copy
    (by a write the failed cache never saw) is refused, not corrupted."""
    kube, caches, reconciler = _converged()
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    live = kube.objects[("PersonalDataStore", *KEY)]["status"]
    live["conditions"] = list(reversed(live["conditions"]))
    before = copy.deepcopy(live)
    _watchdog(kube, caches, reconciler).check(now=time.monotonic() + GRACE + 1)
    assert kube.objects[("PersonalDataStore", *KEY)]["status"] == before


def test_a_store_made_again_under_the_name_since_the_last_copy_is_not_patched() -> None:
    """The copy is of the store that had the name; one made again since (its own verdicts,
    just reconciled, in the same order) is another object: the patch is refused for it too."""
    kube, caches, reconciler = _converged()
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    live = kube.objects[("PersonalDataStore", *KEY)]
    live["metadata"]["uid"] = "uid-made-again"
    before = copy.deepcopy(live["status"])
    _watchdog(kube, caches, reconciler).check(now=time.monotonic() + GRACE + 1)
    assert kube.objects[("PersonalDataStore", *KEY)]["status"] == before


def test_a_refused_patch_leaves_readiness_and_the_metric_to_say_it() -> None:
    kube, caches, reconciler = _converged()
    add_store(kube, "zz-second", "crm", "second")  # after the first: its metric still says it
    _relist(caches)
    reconciler.reconcile(("crm", "zz-second"), now=T0)
    _relist(caches)
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    kube.fail_patches = 403
    watchdog = _watchdog(kube, caches, reconciler)
    now = time.monotonic() + GRACE + 1
    watchdog.check(now=now)
    assert _ready(kube) == ("True", "AllControlsInForce")  # it could not do better
    assert _metric_ready(KEY) == "Unknown"
    assert _metric_ready(("crm", "zz-second")) == "Unknown"
    assert watchdog.problems(now=now) != []
    # Not hammered: the refused patch is tried again only a grace period later.
    kube.calls.clear()
    watchdog.check(now=now + 10)
    assert kube.writes() == []
    watchdog.check(now=now + GRACE + 1)
    assert len(kube.writes()) == 1


def _sharded() -> tuple[ListingKube, Caches, Reconciler]:
    kube = sample_cluster(ListingKube())
    add_store(kube, "other-store", "sales", "sales")
    kube._store({"kind": "Namespace", "metadata": {"name": "crm",
                                                   "labels": {"dataward.io/shard": "a"}}})
    kube._store({"kind": "Namespace", "metadata": {"name": "sales",
                                                   "labels": {"dataward.io/shard": "b"}}})
    kinds = (*CACHED_KINDS, CachedKind("Namespace", SHARD, cluster_scoped=True))
    caches = Caches(cast(Kube, kube), kinds, (), 3600, lambda *_: None, lambda *_: None)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    reconciler.reconcile(KEY, now=T0)
    # The other shard's store, judged True by the other shard.
    other = kube.objects[("PersonalDataStore", "sales", "other-store")]
    other["status"] = copy.deepcopy(kube.objects[("PersonalDataStore", *KEY)]["status"])
    _relist(caches)
    assert _ready(kube) == ("True", "AllControlsInForce")
    return kube, caches, reconciler


def test_today_a_failed_namespace_cache_makes_every_store_nobodys() -> None:
    kube, caches, reconciler = _sharded()
    caches.informers[("Namespace", None)]._fail("HTTP 403 Forbidden")
    assert reconciler.all_stores() == []
    kube.calls.clear()
    assert reconciler.reconcile(KEY, now=T0 + timedelta(minutes=5)) is None
    assert kube.writes() == []
    assert _ready(kube) == ("True", "AllControlsInForce")


def test_a_failed_namespace_cache_makes_this_shards_stores_unknown_not_the_others() -> None:
    kube, caches, reconciler = _sharded()
    caches.informers[("Namespace", None)]._fail("HTTP 403 Forbidden")
    watchdog = _watchdog(kube, caches, reconciler)
    watchdog.check(now=time.monotonic() + GRACE + 1)
    assert _ready(kube) == ("Unknown", "NamespaceCacheUnavailable")
    other = kube.objects[("PersonalDataStore", "sales", "other-store")]
    assert {c["status"] for c in other["status"]["conditions"]} == {"True"}
    assert watchdog.problems(now=time.monotonic() + GRACE + 1) != []


def test_a_store_cache_that_never_listed_fails_readiness_after_the_grace() -> None:
    kube = _cluster()
    kube.fail_lists["PersonalDataStore"] = 403
    caches = _caches(kube)
    informer = caches.informers[("PersonalDataStore", None)]
    try:
        informer._relist()
    except KubeError as error:
        informer._fail(f"HTTP {error.status} {error.reason}")
    watchdog = _watchdog(kube, caches, _reconciler(kube, caches))
    started = time.monotonic()
    assert watchdog.problems(now=started) == []
    problems = watchdog.problems(now=started + GRACE + 1)
    assert problems and "PersonalDataStore" in problems[0]
    kube.calls.clear()
    watchdog.check(now=started + GRACE + 1)
    assert kube.writes() == []  # nothing was ever read: nothing to say it of


def test_cache_health_is_exported_per_kind() -> None:
    kube, caches, reconciler = _converged()
    watchdog = _watchdog(kube, caches, reconciler)
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    now = time.monotonic() + 42
    health = {kind: (synced, round(seconds)) for kind, synced, seconds in watchdog.health(now)}
    assert health["PersonalDataStore"][0] is False and health["PersonalDataStore"][1] >= 42
    assert health["Role"] == (True, 0)


class _Evidence:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, str, dict[str, object]]] = []

    def record_evidence(self, namespace: str, name: str, kind: str, payload: Any) -> None:
        self.records.append((namespace, name, kind, dict(payload)))


def test_each_verdict_made_unknown_is_recorded_as_a_transition() -> None:
    kube, caches, _ = _converged()
    evidence = _Evidence()
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
    watchdog = StaleVerdicts(cast(Kube, kube), caches, GRACE, evidence)
    watchdog.check(now=time.monotonic() + GRACE + 1)
    ready = [p for _, _, kind, p in evidence.records
             if kind == "condition.transition" and p["type"] == "Ready"]  # fmt: skip
    assert len(ready) == 1
    assert ready[0]["status"] == "Unknown" and ready[0]["previousStatus"] == "True"
    assert ready[0]["reason"] == "StoreCacheUnavailable"
    assert len(evidence.records) == len(conditions(kube))


def test_the_stores_marked_in_an_outage_are_queued_again_when_it_ends() -> None:
    """A mark that crossed the recovery (the store reconciled True just before the patch
    landed) is judged again, not left Unknown until the safety resync."""
    kube, caches, reconciler = _converged()
    queued: list[tuple[str, str]] = []
    watchdog = StaleVerdicts(cast(Kube, kube), caches, GRACE, reconciler, requeue=queued.append)
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 403 Forbidden")
    watchdog.check(now=time.monotonic() + GRACE + 1)
    assert queued == []
    informer._relist()
    watchdog.check(now=time.monotonic() + GRACE + 2)
    assert queued == [KEY]
    watchdog.check(now=time.monotonic() + GRACE + 3)
    assert queued == [KEY]  # once


def test_readyz_fails_while_the_stores_are_unchecked_and_healthz_does_not() -> None:
    server = serve(0, "127.0.0.1")
    port = server.server_address[1]

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        kube, caches, reconciler = _converged()
        watchdog = _watchdog(kube, caches, reconciler)
        watch_health(lambda: watchdog.problems(time.monotonic() + GRACE + 1), watchdog.health)
        assert get("/readyz") == (200, "ok\n")
        caches.informers[("PersonalDataStore", None)]._fail("HTTP 403 Forbidden")
        status, body = get("/readyz")
        assert status == 503 and "PersonalDataStore" in body and "403" in body
        assert get("/healthz")[0] == 200  # a restart would not mend it: liveness holds
        metrics = get("/metrics")[1]
        assert 'dataward_cache_synced{kind="PersonalDataStore"} 0.0' in metrics
        assert 'dataward_cache_synced{kind="Role"} 1.0' in metrics
        unwatch_health()  # a standby replica: ready, no cache series
        assert get("/readyz") == (200, "ok\n")
        assert "dataward_cache_synced{" not in get("/metrics")[1]
    finally:
        unwatch_health()
        server.shutdown()
        server.server_close()


def test_failed_retries_do_not_restart_the_grace_period_and_a_relist_ends_it() -> None:
    """The informer retries a failed re-list every few seconds: each failure must not count
    as a new outage, or the grace period would never run out."""
    _, caches, _ = _converged()
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 403 Forbidden")
    (outage,) = caches.outages()
    time.sleep(0.01)
    informer._fail("HTTP 403 Forbidden")
    informer._fail("HTTP 500 Internal Server Error")
    (again,) = caches.outages()
    assert again.since == outage.since and again.error == "HTTP 500 Internal Server Error"
    informer._relist()
    assert caches.outages() == []


def test_a_store_whose_patch_was_refused_is_queued_again_too() -> None:
    """Its exported conditions were made Unknown though its status was not: the end of the
    outage must judge it again, or the metric says Unknown until the safety resync (red
    before: only stores whose patch landed were queued)."""
    kube, caches, reconciler = _converged()
    queued: list[tuple[str, str]] = []
    watchdog = StaleVerdicts(cast(Kube, kube), caches, GRACE, reconciler, requeue=queued.append)
    informer = caches.informers[("PersonalDataStore", None)]
    informer._fail("HTTP 403 Forbidden")
    kube.fail_patches = 403
    watchdog.check(now=time.monotonic() + GRACE + 1)
    assert _metric_ready(KEY) == "Unknown" and _ready(kube) == ("True", "AllControlsInForce")
    informer._relist()
    watchdog.check(now=time.monotonic() + GRACE + 2)
    assert queued == [KEY]


def test_another_controllers_true_condition_is_not_made_unknown_in_the_operators_name() -> None:
    # Status keeps another controller's condition (merge_conditions); an outage or a refused
    # write must not rewrite it with the operator's reason and message: a later pass keeps it
    # as it is, so it would stand Unknown "StoreCacheUnavailable" for good.
    theirs = {"type": "ExampleSynced", "status": "True", "reason": "Synced", "message": "m",
              "lastTransitionTime": "2020-01-01T00:00:00Z"}  # fmt: skip
    ours = {**theirs, "type": "Ready", "reason": "AllControlsInForce"}
    ops = unverified_patch([ours, theirs], "StoreCacheUnavailable", lambda t, r: "x", "now")
    touched = {op["path"] for op in ops if op["op"] != "test"}
    assert "/status/conditions/0/status" in touched
    assert not any(path.startswith("/status/conditions/1/") for path in touched), touched
