"""A store deleted and recreated under the same name while a reconcile of the old one is under
way: nothing of the old store's key ring may land on the new one. The operator reads the store
again (`_fresh_record`, which checks its uid) before it records a ring; the writes that follow
must hold to that store, not to whatever then has its name.

Against an in-memory API; the caches are a copy made before the replacement (`StaleCache`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import ReconcileSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, RING, T0
from tests.controller.test_shredding import Sink, StaleCache, Synced, cluster, ring, run

STORE = ("PersonalDataStore", *KEY)


def recreate(kube: FakeKube) -> None:
    """`kubectl delete` then `kubectl apply` of the same manifest: a new uid, no status."""
    old = kube.objects.pop(STORE)
    new = copy.deepcopy(old)
    new["metadata"].pop("uid")
    new["metadata"]["generation"] = 1
    new.pop("status", None)
    kube._store(new)


def after_gets_of_the_store(kube: FakeKube, count: int, then: Callable[[], None]) -> None:
    """Run `then` right after the `count`-th GET of the store from the API."""
    real_get = kube.get
    seen = 0

    def get(kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        nonlocal seen
        answer = real_get(kind, namespace, name)
        if (kind, namespace, name) == STORE:
            seen += 1
            if seen == count:
                then()
        return answer

    kube.get = get  # type: ignore[method-assign]


def new_store(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[STORE]


def reconcile_from(stale: StaleCache, kube: FakeKube, sink: Sink | None, now: Any) -> None:
    settings = ReconcileSettings(evidence=sink)
    Synced(cast(Kube, kube), settings, caches=cast(Any, stale)).reconcile(KEY, now=now)


def test_a_store_replaced_after_the_fresh_read_gets_no_ring_record() -> None:
    """A new store, no ring yet: the operator reads the store (no record: a ring may be made),
    and right then it is deleted and recreated. The record of the ring made for the old one
    must not be written into the new one, and no ring is made for it."""
    kube = cluster()
    stale = StaleCache(kube)
    after_gets_of_the_store(kube, 1, lambda: recreate(kube))
    reconcile_from(stale, kube, None, T0)
    assert "encryption" not in (new_store(kube).get("status") or {})
    assert ("Secret", "crm", RING) not in kube.objects


def test_a_store_replaced_before_a_rotation_gets_no_pending_key() -> None:
    """The key is due for rotation; the cache still has the old store, whose record is
    settled. The store is recreated before the rotation records its new key: no pendingKeys
    of the old ring on the new store."""
    kube = cluster()
    run(kube, None, T0)
    run(kube, None, T0 + timedelta(minutes=1))  # settled
    stale = StaleCache(kube)
    recreate(kube)
    reconcile_from(stale, kube, None, T0 + timedelta(days=31))
    assert "encryption" not in (new_store(kube).get("status") or {})
    assert ring(kube).primary == 1, "no key added to the old store's ring for the new one"


def test_a_store_replaced_before_new_bucket_keys_gets_no_pending_key() -> None:
    """The ring is settled, bucket keys are due to be made; the store is recreated before
    they are recorded: no pendingKeys of the old ring on the new store."""
    kube = cluster()
    run(kube, None, T0)  # the ring, confirmed by the status write
    stale = StaleCache(kube)
    recreate(kube)
    reconcile_from(stale, kube, Sink(kube), T0 + timedelta(minutes=1))
    assert "encryption" not in (new_store(kube).get("status") or {})
    assert ring(kube).buckets == (), "no bucket key made for the old store"
