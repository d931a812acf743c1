"""What a store's verdicts derive from its neighbours is shared, never stale (issue 11).

The reconciler derives the namespace's rendered children and the neighbours' bindings in
place once per change of the namespace's stores (store cache generation) and RBAC, and
shares them between the reconciles of the namespace. One reconciler is kept across passes
here, as in the operator, so a memo that outlived a neighbour's change would show.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from dataward.controller.cache import Caches
from dataward.controller.reconcile import Reconciler
from tests.controller.test_cache import ListingKube, _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions
from tests.controller.test_verdicts import _second_store

OTHER = ("crm", "contract-records")


def _both_ready() -> tuple[ListingKube, Caches, Reconciler]:
    kube = _cluster()
    kube._store(_second_store())
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    for minutes in (0, 1):
        for key in (KEY, OTHER):
            reconciler.reconcile(key, now=T0 + timedelta(minutes=minutes))
            _relist(caches)  # what the watches would have delivered
    verdict = conditions(kube)
    assert verdict["NetworkIsolated"] == ("True", "Isolated"), verdict
    assert verdict["AccessRestricted"] == ("True", "OnlyDeclaredReaders"), verdict
    return kube, caches, reconciler


def _edit_neighbour(kube: ListingKube, change: dict[str, Any]) -> None:
    """The neighbour's spec edited; the operator has not reconciled it yet."""
    other = copy.deepcopy(kube.objects[("PersonalDataStore", *OTHER)])
    other["spec"].update(change)
    other["metadata"]["generation"] = int(other["metadata"].get("generation") or 1) + 1
    kube._store(other)


def test_a_neighbours_new_peers_do_not_vouch_for_its_old_policy() -> None:
    kube, caches, reconciler = _both_ready()
    # Its live NetworkPolicy still admits app=billing; the store no longer declares that,
    # so that policy is now a foreign one admitting more than this store declares.
    _edit_neighbour(
        kube, {"network": {"allowFrom": [{"podSelector": {"matchLabels": {"app": "audit"}}}]}}
    )
    _relist(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["NetworkIsolated"] == ("False", "OtherPolicyAllowsIngress")


def test_a_neighbours_removed_reader_is_no_longer_declared() -> None:
    kube, caches, reconciler = _both_ready()
    # The neighbour dropped its reader: the binding still in place is nobody's declaration.
    _edit_neighbour(kube, {"access": {"readers": [{"kind": "ServiceAccount", "name": "audit"}]}})
    _relist(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["AccessRestricted"] == ("False", "OtherBindingGrantsSecrets")


def test_a_neighbours_binding_widened_in_place_is_foreign_at_once() -> None:
    kube, caches, reconciler = _both_ready()
    binding = kube.objects[("RoleBinding", "crm", "dataward-contract-records-readers")]
    binding["subjects"].append({"kind": "User", "name": "mallory",
                                "apiGroup": "rbac.authorization.k8s.io"})  # fmt: skip
    kube._store(binding)
    _relist(caches)  # the stores did not change; the namespace's RBAC did
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["AccessRestricted"] == ("False", "OtherBindingGrantsSecrets")
