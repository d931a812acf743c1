"""The in-process benches' set-up over the unit tests' in-memory API (no control plane).

`fake_caches`: caches of every kind the operator caches by default (`watch_secrets`: the key
rings with their data, every Secret as metadata) but the Namespaces, with no event handlers:
each kind listed whole, as by an operator of named namespaces (the operator of the whole
cluster lists each namespace alone at a restart, `cached_kinds`; the reconciles are the
same). `listed`: such caches, listed once, over an API already populated (bench.memory's
`populate`), a reconciler reading them, and the stores' keys in the caches' order.
"""

from __future__ import annotations

from typing import cast

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import ListingKube, _relist


def fake_caches(kube: ListingKube) -> Caches:
    """Caches of every kind the operator caches, Secrets included, over `kube` (no
    Namespace cache: see above)."""
    return Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600,
                  lambda *_: None, lambda *_: None)  # fmt: skip


def listed(kube: ListingKube) -> tuple[Caches, Reconciler, list[tuple[str, str]]]:
    """Caches that have listed `kube` once, a reconciler reading them, the stores' keys."""
    caches = fake_caches(kube)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    keys = [(s["metadata"]["namespace"], s["metadata"]["name"])
            for s in caches.list("PersonalDataStore")]  # fmt: skip
    return caches, reconciler, keys
