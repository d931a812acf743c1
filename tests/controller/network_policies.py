"""Arrangements shared by the tests of the policy kinds that may admit traffic whatever the
NetworkPolicies say (AdminNetworkPolicies, Cilium's, Calico's) in the controller."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import timedelta
from typing import cast

import pytest

from dataward.controller.cache import Caches, Informer
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import CACHED_KINDS
from dataward.controller.reconcile import Reconciler
from tests.controller.test_cache import ListingKube, _caches, _reconciler
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster

OTHER_KEY = ("helpdesk", "tickets")  # the store of `two_namespaces`


def relist_all(caches: Caches) -> None:
    """Every cache lists, as its informer's loop would: a failed LIST fails the cache."""
    for informer in caches.informers.values():
        try:
            informer._relist()
        except KubeError as error:
            informer._fail(f"HTTP {error.status} {error.reason}")


def isolated_after(kube: ListingKube, *, drop: Iterable[str] = ()) -> tuple[str, str]:
    """NetworkIsolated after two reconciles of KEY, each after every cache listed (the kinds
    of `drop` not cached, as where the API does not serve them)."""
    caches = _caches(kube)
    for kind in drop:
        caches.drop(kind)
    relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=5))
    return conditions(kube)["NetworkIsolated"]


def two_namespaces() -> Reconciler:
    """A reconciler of the sample cluster with a second store, OTHER_KEY, in another
    namespace, every cache listed."""
    kube = sample_cluster(ListingKube())
    other = copy.deepcopy(kube.objects[("PersonalDataStore", "crm", KEY[1])])
    other["metadata"].update(name=OTHER_KEY[1], namespace=OTHER_KEY[0])
    kube._store(other)
    caches = _caches(kube)
    relist_all(caches)
    return _reconciler(kube, caches)


class Discovering:
    """Discovery that answers `answer` (the resources served, or the error raised) to every
    group version, and notes what it was asked."""

    def __init__(self) -> None:
        self.answer: set[str] | KubeError = set()
        self.asked: list[str] = []

    def served(self, group_version: str) -> set[str]:
        self.asked.append(group_version)
        if isinstance(self.answer, KubeError):
            raise self.answer
        return self.answer


def discovering_caches(monkeypatch: pytest.MonkeyPatch) -> tuple[Discovering, Caches]:
    """Caches of every kind the operator caches over a Discovering API; no informer runs (no
    requests)."""
    monkeypatch.setattr(Informer, "run", lambda self, stop: None)
    kube = Discovering()
    caches = Caches(cast(Kube, kube), CACHED_KINDS, (), 3600, lambda *_: None, lambda *_: None)
    return kube, caches
