"""The store read again by name before a key ring is made (`Reconciler._fresh_record`): a store
deleted (404) or replaced (another uid) since the cache's copy is no store without a ring.

Both were read as "no ring recorded": a ring was then made for a store that is no more, its
pending record written into whatever now has the name (a new store of the same name, whose
status then records a ring owned by the old uid, collected with it: a ring that "existed"
and is gone, for ever). The reconcile must stop there instead: the watch's DELETED or
ADDED event queues the store again, and that reconcile reads the store as it is.
"""

from __future__ import annotations

import copy
from typing import Any

from dataward.controller.cache import Caches
from tests.controller.test_cache import ListingKube, _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0

RING = "dataward-support-inquiries-keyring"


def _stale_cache_without_the_ring() -> tuple[ListingKube, Caches, dict[str, Any]]:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    informer = caches.informers[("PersonalDataStore", None)]
    before = copy.deepcopy(informer.get(*KEY))  # no ring recorded yet
    assert before is not None
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    kube.objects.pop(("Secret", "crm", RING))
    with informer.lock:
        informer.by_namespace["crm"][KEY[1]] = before  # a cache that has not caught up
    return kube, caches, before


def test_a_store_deleted_since_the_cached_copy_gets_no_ring_and_no_status() -> None:
    kube, caches, _ = _stale_cache_without_the_ring()
    kube.objects.pop(("PersonalDataStore", *KEY))
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0.replace(minute=1))
    after = kube.calls[kube.calls.index(("get", "PersonalDataStore", KEY[1])):]
    assert [c for c in after if c[0] != "get"] == [], "nothing written after the store is gone"
    assert ("Secret", "crm", RING) not in kube.objects


def test_a_store_replaced_since_the_cached_copy_is_not_given_the_old_ones_ring() -> None:
    kube, caches, before = _stale_cache_without_the_ring()
    replacement = copy.deepcopy(before)
    replacement["metadata"]["uid"] = "uid-of-a-new-store"
    replacement.pop("status", None)
    kube.objects[("PersonalDataStore", *KEY)] = replacement
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0.replace(minute=1))
    after = kube.calls[kube.calls.index(("get", "PersonalDataStore", KEY[1])):]
    assert [c for c in after if c[0] != "get"] == []
    assert ("Secret", "crm", RING) not in kube.objects
    assert "encryption" not in (kube.objects[("PersonalDataStore", *KEY)].get("status") or {})
