"""A delete the API accepts is not an object gone: one with finalizers stays, with a
deletionTimestamp, until they are done, and a RoleBinding grants what it granted meanwhile."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from dataward.render.names import names_for
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster

READERS = names_for(KEY[1]).readers


class FinalizingKube(ListingKube):
    """As the API server: a DELETE of an object with finalizers sets its deletionTimestamp
    and answers with it; the object goes only once its finalizers are removed."""

    def delete(self, kind: str, namespace: str | None, name: str,
               propagation: str | None = None, version: str | None = None) -> Any:
        self.calls.append(("delete", kind, name))
        current = self.objects.get((kind, namespace, name))
        if current is None:
            return None
        if not current["metadata"].get("finalizers"):
            return self.objects.pop((kind, namespace, name))
        if not current["metadata"].get("deletionTimestamp"):
            current["metadata"]["deletionTimestamp"] = "2026-01-10T08:01:00Z"
            return self._store(current)
        return copy.deepcopy(current)  # already being deleted: unchanged, no new version


def test_a_readers_binding_held_by_a_finalizer_is_not_called_gone() -> None:
    kube = sample_cluster(FinalizingKube())
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0)
    _relist(caches)
    assert conditions(kube)["AccessRestricted"][0] == "True"
    # Someone's tool keeps the binding (a finalizer), and the store drops its readers.
    binding = kube.objects[("RoleBinding", *KEY[:1], READERS)]
    binding["metadata"]["finalizers"] = ["example.com/keep"]
    kube._store(binding)
    store = kube.objects[("PersonalDataStore", *KEY)]
    store["spec"]["access"]["readers"] = []
    store["metadata"]["generation"] = int(store["metadata"]["generation"]) + 1
    kube._store(store)
    _relist(caches)
    for minute in (1, 2, 3):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minute))
        if minute == 1:
            _relist(caches)  # the watch's event of the deletionTimestamp; nothing after it
    assert ("RoleBinding", KEY[0], READERS) in kube.objects  # still there, still binding
    # The former readers can still read the store's Secrets: not restricted.
    assert conditions(kube)["AccessRestricted"][0] != "True"
    assert conditions(kube)["Ready"][0] != "True"
