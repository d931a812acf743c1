"""Calico's policy kinds in the controller: Calico NetworkPolicies (namespaced) and
GlobalNetworkPolicies (crd.projectcalico.org/v1) cached where the API serves them, their
verdict Unknown when they cannot be read, dropped when it does not serve them, and the stores
they may concern queued again when one changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.checks import network
from dataward.checks.network import calico_policy_admits, calico_selection
from dataward.controller import operator as operator_module
from dataward.controller import reconcile as reconcile_module
from dataward.controller.cache import Caches, slim
from dataward.controller.kube import Kube
from dataward.controller.operator import CACHED_KINDS, CALICO_GLOBAL_CACHE, keys_for_event
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.network_policies import (
    OTHER_KEY,
    discovering_caches,
    isolated_after,
    relist_all,
    two_namespaces,
)
from tests.controller.test_cache import ListingKube, _caches, _reconciler
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster, status

# The operator's names for the two kinds (the API's are NetworkPolicy and GlobalNetworkPolicy,
# the first of which is also networking.k8s.io's).
CNP, GNP = "CalicoNetworkPolicy", "CalicoGlobalNetworkPolicy"


def calico_policy(
    name: str,
    namespace: str | None = "crm",
    selector: str | None = "all()",
    ingress: list[Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Calico NetworkPolicy in `namespace` (None: a GlobalNetworkPolicy) selecting
    `selector`'s endpoints and allowing every source in (or `ingress`)."""
    meta: dict[str, Any] = {"name": name, "labels": {"team": "network"}}
    if namespace is not None:
        meta["namespace"] = namespace
    body: dict[str, Any] = {
        "order": 10,
        "ingress": ingress if ingress is not None else [{"action": "Allow"}],
        "egress": [{"action": "Allow"}],
        **spec,
    }
    if selector is not None:
        body["selector"] = selector
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": CNP if namespace is not None else GNP,
        "metadata": meta,
        "spec": body,
    }


def test_a_global_policy_allowing_all_ingress_is_not_isolated() -> None:
    # A platform team copies "allow-all-ingress" from a Calico tutorial to unbreak a
    # monitoring probe: every pod of the cluster, the store's database among them, takes
    # traffic from anywhere; the store's NetworkPolicy is as rendered all the while.
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("allow-all-ingress", None, "all()", types=["Ingress"]))
    verdict = isolated_after(kube)
    assert verdict[0] != "True"
    assert verdict == ("False", "CalicoPolicyAllows")
    assert conditions(kube)["Ready"][0] == "False"


def test_a_namespace_policy_allowing_some_source_is_not_isolated() -> None:
    kube = sample_cluster(ListingKube())
    from_lb = [{"action": "Allow", "source": {"nets": ["10.0.0.0/8"]}}]
    kube._store(calico_policy("lb-health", "crm", "", from_lb))
    assert isolated_after(kube) == ("False", "CalicoPolicyAllows")


def test_deny_egress_other_namespaces_and_excluded_pods_change_nothing() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("deny-all", "crm", "all()", [{"action": "Deny"}]))
    kube._store(calico_policy("pass", "crm", "all()", [{"action": "Pass"}, {"action": "Log"}]))
    kube._store(calico_policy("out-only", "crm", "all()", types=["Egress"]))
    kube._store(calico_policy("billing-open", "billing"))
    kube._store(calico_policy("billing-only", None, "projectcalico.org/namespace == 'billing'"))
    kube._store(calico_policy("not-crm", None, "all()", namespaceSelector="!has(x) && "
                              "kubernetes.io/metadata.name != 'crm'"))
    assert isolated_after(kube) == ("True", "Isolated")


def test_a_global_policy_by_a_namespace_label_not_known_may_select() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("prod-open", None, "all()", namespaceSelector="env == 'prod'"))
    assert isolated_after(kube) == ("Unknown", "CalicoPolicyMaySelect")


def test_a_selector_that_does_not_parse_may_select() -> None:
    kube = sample_cluster(ListingKube())
    # Calico's tokenizer takes no space between `has` and its parenthesis.
    kube._store(calico_policy("odd", "crm", "has (app)"))
    assert isolated_after(kube) == ("Unknown", "CalicoPolicyMaySelect")


def test_a_selector_by_a_string_operator_is_weighed() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("odd", "crm", "app contains 'postgres'"))
    assert isolated_after(kube) == ("False", "CalicoPolicyAllows")


# A selector that closes the parenthesis Calico puts it in: `(<selector>) && projectcalico.org/
# namespace == '<its namespace>'` then selects every endpoint of the cluster.
ESCAPE = "all()) || (all()"


def isolated_message(kube: ListingKube) -> str:
    found = [c for c in status(kube)["conditions"] if c["type"] == "NetworkIsolated"]
    return str(found[0]["message"])


def test_a_policy_of_another_namespace_that_escapes_it_is_weighed() -> None:
    # A tenant of namespace billing writes a Calico NetworkPolicy there whose selector closes
    # the parenthesis Calico joins it in: Calico applies its Allow to every pod of the
    # cluster, the store's database in crm among them.
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("open-everything", "billing", ESCAPE))
    assert isolated_after(kube) == ("False", "CalicoPolicyAllows")
    assert "Calico NetworkPolicy billing/open-everything" in isolated_message(kube)


def test_an_escape_that_leaves_the_workload_pods_changes_nothing() -> None:
    # It escapes billing, to pods labelled app=billing-api only: not the store's pods.
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("api", "billing", "app == 'x') || (app == 'billing-api'"))
    assert isolated_after(kube) == ("True", "Isolated")


def test_an_escape_to_a_namespace_the_selector_names_is_seen() -> None:
    # `ns == 'crm' || (ns == 'crm' && ns == 'billing')` once joined: crm's pods, by the name
    # of a namespace that is not the policy's own.
    kube = sample_cluster(ListingKube())
    named = "projectcalico.org/namespace == 'crm') || (projectcalico.org/namespace == 'crm'"
    kube._store(calico_policy("to-crm", "billing", named))
    assert isolated_after(kube) == ("False", "CalicoPolicyAllows")


def test_an_escaping_deny_changes_nothing() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("deny", "billing", ESCAPE, [{"action": "Deny"}]))
    assert isolated_after(kube) == ("True", "Isolated")


def test_other_namespaces_policies_are_decided_once_each_not_per_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cluster's other namespaces hold many ordinary Calico policies: each is decided once
    # (does its selector reach beyond its namespace?), not weighed against every store.
    reconciler = two_namespaces()
    kube = cast(ListingKube, reconciler.kube)
    for index in range(20):
        kube._store(calico_policy(f"ordinary-{index}", "billing", "all()"))
    kube._store(calico_policy("same-text", "payroll", "all()"))
    decided: list[tuple[str, Any]] = []
    weighed: list[str] = []
    decide = reconcile_module.calico_reaches_beyond
    judge = network.calico_selection

    def counted_decide(namespace: str, selector: Any) -> bool:
        decided.append((namespace, selector))
        return decide(namespace, selector)

    def counted_judge(policy: Any, namespace: str, *args: Any) -> str:
        weighed.append(policy["metadata"].get("namespace") or "")
        return judge(policy, namespace, *args)

    monkeypatch.setattr(reconcile_module, "calico_reaches_beyond", counted_decide)
    monkeypatch.setattr(network, "calico_selection", counted_judge)
    assert reconciler.caches is not None
    relist_all(reconciler.caches)
    for minutes in (0, 5, 10):
        for key in (KEY, OTHER_KEY):
            reconciler.reconcile(key, now=T0 + timedelta(minutes=minutes))
        relist_all(reconciler.caches)
    assert sorted(set(decided)) == [("billing", "all()"), ("payroll", "all()")]
    assert len(decided) == 2  # once per namespace and selector text, whatever the stores
    assert [ns for ns in weighed if ns in ("billing", "payroll")] == []
    assert conditions(kube)["NetworkIsolated"] == ("True", "Isolated")
    # The memo holds what the cache holds: a deleted policy is forgotten.
    del kube.objects[(CNP, "payroll", "same-text")]
    relist_all(reconciler.caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=15))
    assert len(reconciler._calico_escapes) == 1


def test_an_escape_from_a_watched_namespace_is_seen_with_watch_namespaces() -> None:
    # With `watchNamespaces` the operator lists each watched namespace's policies: an escape
    # from one of them reaches the others' stores.
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("open-everything", "billing", ESCAPE))
    watched = ("crm", "billing")
    caches = Caches(cast(Kube, kube), CACHED_KINDS, watched, 3600, lambda *_: None,
                    lambda *_: None)  # fmt: skip
    relist_all(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), watched, caches)
    reconciler.reconcile(KEY, now=T0)
    relist_all(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=5))
    assert conditions(kube)["NetworkIsolated"] == ("False", "CalicoPolicyAllows")


@pytest.mark.parametrize("kind", [CNP, GNP])
def test_calico_policies_that_may_not_be_listed_make_it_unknown(kind: str) -> None:
    kube = sample_cluster(ListingKube())
    kube.fail_lists[kind] = 403
    assert isolated_after(kube) == ("Unknown", "CalicoPoliciesUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_calico_policies_not_served_change_nothing_and_are_never_read() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("open-up"))  # what a reconcile must not look for
    kube._store(calico_policy("allow-all-ingress", None))
    assert isolated_after(kube, drop=[CNP, GNP]) == ("True", "Isolated")
    assert not [call for call in kube.calls if call[1] in (CNP, GNP)]


def test_a_calico_policy_cached_after_the_start_is_unknown_until_it_lists() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(calico_policy("allow-all-ingress", None))
    caches = _caches(kube)
    caches.drop(GNP)
    relist_all(caches)
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0)
    assert conditions(kube)["NetworkIsolated"] == ("True", "Isolated")
    caches.add(CALICO_GLOBAL_CACHE)  # Calico installed since: its cache has not listed
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["NetworkIsolated"] == ("Unknown", "CalicoPoliciesUnreadable")
    caches.informers[(GNP, None)]._relist()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert conditions(kube)["NetworkIsolated"] == ("False", "CalicoPolicyAllows")


def test_a_calico_policy_change_queues_the_stores_it_may_concern() -> None:
    reconciler = two_namespaces()
    # A namespace's policy selects endpoints of that namespace only: its stores.
    assert keys_for_event(CNP, None, calico_policy("open-up"), reconciler) == ([KEY], [])
    # A global one may select any namespace's: every store of the shard.
    keys, policies = keys_for_event(GNP, calico_policy("all", None), None, reconciler)
    assert sorted(keys) == [KEY, OTHER_KEY]
    assert policies == []
    # One whose selector escapes its namespace may select any namespace's: every store,
    # whether it escapes now or did before the change.
    escaping = calico_policy("open-everything", "billing", ESCAPE)
    ordinary = calico_policy("open-everything", "billing", "all()")
    for old, new in ((None, escaping), (ordinary, escaping), (escaping, ordinary)):
        keys, _ = keys_for_event(CNP, old, new, reconciler)
        assert sorted(keys) == [KEY, OTHER_KEY]
    assert keys_for_event(CNP, ordinary, None, reconciler) == ([], [])


@pytest.mark.parametrize("namespace", ["crm", None])
def test_the_cache_keeps_only_what_the_verdict_reads(namespace: str | None) -> None:
    policy = calico_policy(
        "open-up", namespace, "app == 'crm-postgres'",
        [{"action": "Deny", "source": {"nets": ["10.1.0.0/16"]}},
         {"action": "Allow", "protocol": "TCP", "destination": {"ports": [5432]}}],
        types=["Ingress", "Egress"], namespaceSelector="all()",
    )  # fmt: skip
    kept = slim(policy["kind"], policy)
    assert "labels" not in kept["metadata"]
    assert kept["metadata"].get("namespace") == namespace
    assert kept["spec"] == {
        "selector": "app == 'crm-postgres'",
        "namespaceSelector": "all()",
        "ingress": [{"action": "Allow"}],
    }
    # Judged as the whole policy is.
    store = {"matchLabels": {"app": "crm-postgres"}}
    assert calico_policy_admits(kept) and calico_policy_admits(policy)
    assert calico_selection(kept, "crm", store) == calico_selection(policy, "crm", store)
    assert calico_selection(kept, "crm", store) == "selects"
    egress_only = calico_policy("out", namespace, "all()", types=["Egress"])
    assert slim(egress_only["kind"], egress_only)["spec"]["ingress"] == []


def test_discovery_decides_whether_each_calico_kind_is_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube, caches = discovering_caches(monkeypatch)
    followed = [f for f in operator_module.FOLLOWED if f.cache.kind in (CNP, GNP)]
    assert len(followed) == 2

    def follow(answer: set[str]) -> list[bool]:
        kube.answer = answer
        asked: dict[str, Any] = {}
        return [asyncio.run(operator_module._follow(cast(Kube, kube), caches, f, asked))
                for f in followed]  # fmt: skip

    follow(set())  # not a Calico cluster: neither cached, nothing read
    assert not caches.cached(CNP) and not caches.cached(GNP)
    assert kube.asked == ["crd.projectcalico.org/v1"]
    caches.start()
    assert follow({"networkpolicies", "globalnetworkpolicies"}) == [True, True]
    assert caches.cached(CNP) and caches.cached(GNP)
    assert follow(set()) == [True, True]
    assert not caches.cached(CNP) and not caches.cached(GNP)
    caches.stop()
