"""AdminNetworkPolicies in the controller: cached when served, their verdict Unknown when they
cannot be read, dropped (nothing read, nothing changed) when the API does not serve them, and
every store of the shard queued again when one changes."""

from __future__ import annotations

import asyncio
import copy
import threading
from datetime import timedelta
from typing import Any, cast

from dataward.controller import operator as operator_module
from dataward.controller.cache import CachedKind, Caches, slim
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import CACHED_KINDS, keys_for_event
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster

ANP = "AdminNetworkPolicy"


def admin_policy(name: str, action: str, subject: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": ANP,
        "metadata": {"name": name, "labels": {"team": "platform"}},
        "spec": {
            "priority": 5,
            "subject": subject if subject is not None else {"namespaces": {}},
            "ingress": [{"name": "scrape", "action": action,
                         "from": [{"namespaces": {"matchLabels": {"team": "monitoring"}}}],
                         "ports": [{"portNumber": {"protocol": "TCP", "port": 9187}}]}],
            "egress": [{"name": "out", "action": "Allow", "to": [{"namespaces": {}}]}],
        },
    }  # fmt: skip


def _relist_all(caches: Caches) -> None:
    """Every cache lists, as its informer's loop would: a failed LIST fails the cache."""
    for informer in caches.informers.values():
        try:
            informer._relist()
        except KubeError as error:
            informer._fail(f"HTTP {error.status} {error.reason}")


def _isolated_after(kube: ListingKube, *, drop: bool = False) -> tuple[str, str]:
    caches = _caches(kube)
    if drop:
        caches.drop(ANP)
    _relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    _relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=5))
    return conditions(kube)["NetworkIsolated"]


def test_an_allow_for_every_namespace_is_not_isolated() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))
    assert _isolated_after(kube) == ("False", "AdminNetworkPolicyAllows")
    assert conditions(kube)["Ready"][0] == "False"


def test_a_deny_only_admin_policy_changes_nothing() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("lockdown", "Deny"))
    assert _isolated_after(kube) == ("True", "Isolated")


def test_admin_policies_that_may_not_be_listed_make_it_unknown() -> None:
    kube = sample_cluster(ListingKube())
    kube.fail_lists[ANP] = 403
    assert _isolated_after(kube) == ("Unknown", "AdminNetworkPoliciesUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_admin_policies_not_served_change_nothing_and_are_never_read() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))  # what a reconcile must not look for
    kube.fail_lists[ANP] = 404
    assert _isolated_after(kube, drop=True) == ("True", "Isolated")
    assert not [call for call in kube.calls if call[1] == ANP]


def test_discovery_says_whether_admin_policies_are_served() -> None:
    class Discovering:
        def __init__(self, answer: set[str] | KubeError) -> None:
            self.answer = answer
            self.asked: list[str] = []

        def served(self, group_version: str) -> set[str]:
            self.asked.append(group_version)
            if isinstance(self.answer, KubeError):
                raise self.answer
            return self.answer

    served = Discovering({"adminnetworkpolicies", "baselineadminnetworkpolicies"})
    assert asyncio.run(operator_module._admin_policies_served(cast(Kube, served)))
    assert served.asked == ["policy.networking.k8s.io/v1alpha1"]
    assert not asyncio.run(operator_module._admin_policies_served(cast(Kube, Discovering(set()))))
    # Not known: cached all the same, and the cache's own list says (Unknown, never "none").
    failed = Discovering(KubeError(0, "timeout", "discover"))
    assert asyncio.run(operator_module._admin_policies_served(cast(Kube, failed)))


def test_an_admin_policy_change_queues_every_store_of_the_shard() -> None:
    kube = sample_cluster(ListingKube())
    other = copy.deepcopy(kube.objects[("PersonalDataStore", "crm", KEY[1])])
    other["metadata"].update(name="tickets", namespace="helpdesk")
    kube._store(other)
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    keys, policies = keys_for_event(ANP, None, admin_policy("monitoring", "Allow"), reconciler)
    assert sorted(keys) == [KEY, ("helpdesk", "tickets")]
    assert policies == []


def test_the_cache_keeps_only_what_the_verdict_reads() -> None:
    kept = slim(ANP, admin_policy("monitoring", "Allow"))
    assert kept["metadata"]["name"] == "monitoring"
    assert "labels" not in kept["metadata"]
    assert kept["spec"] == {
        "subject": {"namespaces": {}},
        "ingress": [{"name": "scrape", "action": "Allow"}],
    }


def test_a_refused_admin_policy_list_does_not_hold_the_first_pass() -> None:
    # The first pass waits for every cache's first list; a refused LIST of AdminNetworkPolicies
    # would hold every store's last verdict (perhaps True) for as long as it is refused.
    kube = sample_cluster(ListingKube())
    kube.fail_lists[ANP] = 403
    stop = threading.Event()
    health: list[str] = []

    def on_health(kind: str, namespace: str | None) -> None:
        health.append(kind)
        stop.set()

    caches = Caches(cast(Kube, kube), CACHED_KINDS, (), 3600, lambda *_: None, on_health)
    for (kind, _), informer in caches.informers.items():
        if kind != ANP:
            informer._relist()
    assert not caches.listed()
    health.clear()
    stop.clear()
    caches.informers[(ANP, None)].run(stop)  # its first LIST refused: it says so, once
    assert health == [ANP]
    assert caches.listed()
    assert caches.informers[(ANP, None)].synced is False  # its reads raise: Unknown


def _by_namespace_label(sharded: bool) -> tuple[str, str]:
    kube = sample_cluster(ListingKube())
    kube._store({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "crm", "labels": {"shard": "a", "env": "prod"}}})  # fmt: skip
    kube._store(admin_policy("prod", "Allow", {"namespaces": {"matchLabels": {"env": "prod"}}}))
    kinds = CACHED_KINDS
    if sharded:
        kinds = (*kinds, CachedKind("Namespace", "shard=a", cluster_scoped=True))
    caches = Caches(cast(Kube, kube), kinds, (), 3600, lambda *_: None, lambda *_: None)
    _relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    return conditions(kube)["NetworkIsolated"]


def test_a_shard_knows_its_namespaces_labels() -> None:
    assert _by_namespace_label(sharded=True) == ("False", "AdminNetworkPolicyAllows")


def test_without_the_namespaces_labels_an_allow_by_label_may_select() -> None:
    assert _by_namespace_label(sharded=False) == ("Unknown", "AdminNetworkPolicyMaySelect")
