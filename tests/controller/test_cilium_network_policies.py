"""Cilium's policy kinds in the controller: CiliumNetworkPolicies (namespaced) and
CiliumClusterwideNetworkPolicies cached where the API serves them, their verdict Unknown when
they cannot be read, dropped when it does not serve them, and the stores they may concern
queued again when one changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.checks.network import cilium_selection
from dataward.controller import operator as operator_module
from dataward.controller.cache import slim
from dataward.controller.kube import Kube
from dataward.controller.operator import CILIUM_POLICY_CACHE, keys_for_event
from tests.controller.network_policies import (
    OTHER_KEY,
    discovering_caches,
    isolated_after,
    relist_all,
    two_namespaces,
)
from tests.controller.test_cache import ListingKube, _caches, _reconciler
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster

CNP, CCNP = "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"


def cilium_policy(
    name: str,
    namespace: str | None = "crm",
    selector: dict[str, Any] | None = None,
    ingress: list[Any] | None = None,
) -> dict[str, Any]:
    """A CiliumNetworkPolicy in `namespace` (None: a CiliumClusterwideNetworkPolicy) whose
    one rule selects every endpoint (or `selector`'s) and admits the world (or `ingress`)."""
    meta: dict[str, Any] = {"name": name, "labels": {"team": "network"}}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "cilium.io/v2",
        "kind": CNP if namespace is not None else CCNP,
        "metadata": meta,
        "spec": {
            "description": "let the load balancer in",
            "endpointSelector": selector if selector is not None else {},
            "ingress": ingress if ingress is not None else [{"fromEntities": ["world"]}],
            "egress": [{"toEntities": ["world"]}],
        },
    }


def test_a_namespace_policy_admitting_the_world_is_not_isolated() -> None:
    # A network team "fixes" a load balancer's health checks by letting the world in to
    # every pod of the namespace; the store's NetworkPolicy is as rendered all the while.
    kube = sample_cluster(ListingKube())
    kube._store(cilium_policy("open-up"))
    assert isolated_after(kube) == ("False", "CiliumPolicyAllows")
    assert conditions(kube)["Ready"][0] == "False"


def test_a_clusterwide_policy_by_the_namespace_name_is_not_isolated() -> None:
    kube = sample_cluster(ListingKube())
    by_name = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": "crm"}}
    kube._store(cilium_policy("crm-lb", None, by_name))
    assert isolated_after(kube) == ("False", "CiliumPolicyAllows")


def test_the_default_deny_idiom_and_other_namespaces_change_nothing() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(cilium_policy("lockdown", ingress=[{}]))
    kube._store(cilium_policy("open-up", "billing"))
    billing = {"matchLabels": {"io.kubernetes.pod.namespace": "billing"}}
    kube._store(cilium_policy("billing-lb", None, billing))
    assert isolated_after(kube) == ("True", "Isolated")


@pytest.mark.parametrize("kind", [CNP, CCNP])
def test_cilium_policies_that_may_not_be_listed_make_it_unknown(kind: str) -> None:
    kube = sample_cluster(ListingKube())
    kube.fail_lists[kind] = 403
    assert isolated_after(kube) == ("Unknown", "CiliumPoliciesUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_cilium_policies_not_served_change_nothing_and_are_never_read() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(cilium_policy("open-up"))  # what a reconcile must not look for
    kube._store(cilium_policy("crm-lb", None))
    assert isolated_after(kube, drop=[CNP, CCNP]) == ("True", "Isolated")
    assert not [call for call in kube.calls if call[1] in (CNP, CCNP)]


def test_a_cilium_policy_cached_after_the_start_is_unknown_until_it_lists() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(cilium_policy("open-up"))
    caches = _caches(kube)
    caches.drop(CNP)
    relist_all(caches)
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0)
    assert conditions(kube)["NetworkIsolated"] == ("True", "Isolated")
    caches.add(CILIUM_POLICY_CACHE)  # the CRD installed since: its cache has not listed
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["NetworkIsolated"] == ("Unknown", "CiliumPoliciesUnreadable")
    caches.informers[(CNP, None)]._relist()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["NetworkIsolated"] == ("False", "CiliumPolicyAllows")


def test_a_cilium_policy_change_queues_the_stores_it_may_concern() -> None:
    reconciler = two_namespaces()
    # A namespace's policy selects endpoints of that namespace only: its stores.
    assert keys_for_event(CNP, None, cilium_policy("open-up"), reconciler) == ([KEY], [])
    # A clusterwide one may select any namespace's: every store of the shard.
    keys, policies = keys_for_event(CCNP, None, cilium_policy("lb", None), reconciler)
    assert sorted(keys) == [KEY, OTHER_KEY]
    assert policies == []


@pytest.mark.parametrize("namespace", ["crm", None])
def test_the_cache_keeps_only_what_the_verdict_reads(namespace: str | None) -> None:
    policy = cilium_policy("open-up", namespace, {"matchLabels": {"app": "crm-postgres"}})
    policy["specs"] = [{"nodeSelector": {}, "ingress": [{"fromEntities": ["cluster"]}]},
                       {"endpointSelector": {}, "ingress": [{}], "ingressDeny": [{}]}]  # fmt: skip
    kept = slim(policy["kind"], policy)
    assert "labels" not in kept["metadata"]
    assert kept["metadata"].get("namespace") == namespace
    assert kept["spec"] == {
        "endpointSelector": {"matchLabels": {"app": "crm-postgres"}},
        "ingress": [{"admits": True}],
    }
    assert kept["specs"] == [{"nodeSelector": {}, "ingress": [{"admits": True}]},
                             {"endpointSelector": {}}]  # fmt: skip
    # Judged as the whole policy is.
    store = {"matchLabels": {"app": "crm-postgres"}}
    assert cilium_selection(kept, "crm", store) == cilium_selection(policy, "crm", store)
    assert cilium_selection(kept, "crm", store) == "selects"


def test_discovery_decides_whether_each_cilium_kind_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube, caches = discovering_caches(monkeypatch)
    followed = [f for f in operator_module.FOLLOWED if f.cache.kind in (CNP, CCNP)]
    assert len(followed) == 2

    def follow(answer: set[str]) -> list[bool]:
        kube.answer = answer
        asked: dict[str, Any] = {}  # one discovery request a check for both kinds
        return [asyncio.run(operator_module._follow(cast(Kube, kube), caches, f, asked))
                for f in followed]  # fmt: skip

    follow(set())  # not a Cilium cluster: neither cached, nothing read
    assert not caches.cached(CNP) and not caches.cached(CCNP)
    assert kube.asked == ["cilium.io/v2"]
    caches.start()
    # Cilium installed since (an older one served only the namespaced kind).
    assert follow({"ciliumnetworkpolicies"}) == [True, False]
    assert caches.cached(CNP) and not caches.cached(CCNP)
    assert follow({"ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"}) == [False, True]
    assert caches.cached(CCNP)
    assert follow(set()) == [True, True]
    assert not caches.cached(CNP) and not caches.cached(CCNP)
    caches.stop()
