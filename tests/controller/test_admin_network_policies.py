"""AdminNetworkPolicies in the controller: cached when served, their verdict Unknown when they
cannot be read, dropped (nothing read, nothing changed) when the API does not serve them, and
every store of the shard queued again when one changes."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.controller import operator as operator_module
from dataward.controller.cache import CachedKind, Caches, Informer, slim
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import (
    ADMIN_POLICY_CACHE,
    CACHED_KINDS,
    OperatorSettings,
    keys_for_event,
    run_operator,
)
from tests.controller.network_policies import (
    OTHER_KEY,
    discovering_caches,
    isolated_after,
    relist_all,
    two_namespaces,
)
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_operator_supervision import _stubbed, _until
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


def test_an_allow_for_every_namespace_is_not_isolated() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))
    assert isolated_after(kube) == ("False", "AdminNetworkPolicyAllows")
    assert conditions(kube)["Ready"][0] == "False"


def test_a_deny_only_admin_policy_changes_nothing() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("lockdown", "Deny"))
    assert isolated_after(kube) == ("True", "Isolated")


def test_admin_policies_that_may_not_be_listed_make_it_unknown() -> None:
    kube = sample_cluster(ListingKube())
    kube.fail_lists[ANP] = 403
    assert isolated_after(kube) == ("Unknown", "AdminNetworkPoliciesUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_admin_policies_not_served_change_nothing_and_are_never_read() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))  # what a reconcile must not look for
    kube.fail_lists[ANP] = 404
    assert isolated_after(kube, drop=[ANP]) == ("True", "Isolated")
    assert not [call for call in kube.calls if call[1] == ANP]


def test_discovery_decides_whether_admin_policies_are_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube, caches = discovering_caches(monkeypatch)

    def follow(answer: set[str] | KubeError) -> bool:
        kube.answer = answer
        followed = operator_module.FOLLOWED[0]
        return asyncio.run(operator_module._follow(cast(Kube, kube), caches, followed))

    served = {"adminnetworkpolicies", "baselineadminnetworkpolicies"}
    failed = KubeError(0, "timeout", "discover")
    # At the start, no answer: cached all the same, and the cache's own list says whether
    # they can be read (Unknown until it does, never "none").
    follow(failed)
    assert caches.cached(ANP)
    assert kube.asked == ["policy.networking.k8s.io/v1alpha1"]
    follow(set())
    assert not caches.cached(ANP)
    caches.start()
    # Later: each change says so (every store is judged again); no answer changes nothing.
    assert follow(failed) is False and not caches.cached(ANP)
    assert follow(set()) is False
    assert follow(served) is True and caches.cached(ANP)
    assert follow(served) is False
    assert follow(failed) is False and caches.cached(ANP)
    assert follow(set()) is True and not caches.cached(ANP)
    caches.stop()


def _started(kube: ListingKube, monkeypatch: pytest.MonkeyPatch, *, served: bool) -> Caches:
    """The caches, every one listed, started with loops that only wait for their stop (the
    test lists for them); AdminNetworkPolicies among them when `served`."""
    stops: list[threading.Event] = []
    monkeypatch.setattr(Informer, "run", lambda self, stop: stops.append(stop) or stop.wait())
    caches = _caches(kube)
    if not served:
        caches.drop(ANP)
    relist_all(caches)
    caches.start()
    return caches


def _judged(kube: ListingKube, caches: Caches, minutes: int) -> tuple[str, str]:
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    return conditions(kube)["NetworkIsolated"]


def test_admin_policies_cached_after_the_start_are_unknown_until_they_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))
    caches = _started(kube, monkeypatch, served=False)
    try:
        _judged(kube, caches, 0)
        relist_all(caches)
        assert _judged(kube, caches, 1) == ("True", "Isolated")
        caches.add(ADMIN_POLICY_CACHE)  # the CRD installed since: its cache has not listed
        assert _judged(kube, caches, 2) == ("Unknown", "AdminNetworkPoliciesUnreadable")
        assert conditions(kube)["Ready"][0] == "Unknown"
        caches.informers[(ANP, None)]._relist()
        assert _judged(kube, caches, 3) == ("False", "AdminNetworkPolicyAllows")
    finally:
        caches.stop()


def test_admin_policies_no_longer_cached_are_judged_without_and_never_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = sample_cluster(ListingKube())
    kube._store(admin_policy("monitoring", "Allow"))
    caches = _started(kube, monkeypatch, served=True)
    try:
        _judged(kube, caches, 0)
        relist_all(caches)
        assert _judged(kube, caches, 1) == ("False", "AdminNetworkPolicyAllows")
        informer = caches.informers[(ANP, None)]
        kube.calls.clear()
        caches.drop(ANP)  # the CRD deleted (and every AdminNetworkPolicy with it)
        assert _judged(kube, caches, 2) == ("True", "Isolated")
        assert not [call for call in kube.calls if call[1] == ANP]
        # One who took the informer before it was dropped reads nothing from it.
        with pytest.raises(KubeError, match="no longer cached"):
            informer.items(None)
        with pytest.raises(KubeError, match="no longer cached"):
            caches.generation(ANP, None)
        assert (ANP, None) not in caches.informers and caches.listed()
        assert _until(lambda: "cache-AdminNetworkPolicy-all" not in
                      {thread.name for thread in threading.enumerate()}), "its loop runs on"
    finally:
        caches.stop()


def test_an_admin_policy_change_queues_every_store_of_the_shard() -> None:
    reconciler = two_namespaces()
    keys, policies = keys_for_event(ANP, None, admin_policy("monitoring", "Allow"), reconciler)
    assert sorted(keys) == [KEY, OTHER_KEY]
    assert policies == []


def test_the_cache_keeps_only_what_the_verdict_reads() -> None:
    kept = slim(ANP, admin_policy("monitoring", "Allow"))
    assert kept["metadata"]["name"] == "monitoring"
    assert "labels" not in kept["metadata"]
    assert kept["spec"] == {
        "subject": {"namespaces": {}},
        "ingress": [{"name": "scrape", "action": "Allow"}],
    }


@pytest.mark.parametrize("kind", [ANP, "CiliumNetworkPolicy"])
def test_a_refused_policy_list_does_not_hold_the_first_pass(kind: str) -> None:
    # The first pass waits for every cache's first list; a refused LIST of AdminNetworkPolicies
    # or Cilium policies (a chart without the rule, a cluster admin's narrowing) would hold
    # every store's last verdict (perhaps True) for as long as it is refused.
    kube = sample_cluster(ListingKube())
    kube.fail_lists[kind] = 403
    stop = threading.Event()
    health: list[str] = []

    def on_health(kind: str, namespace: str | None) -> None:
        health.append(kind)
        stop.set()

    caches = Caches(cast(Kube, kube), CACHED_KINDS, (), 3600, lambda *_: None, on_health)
    for (other, _), informer in caches.informers.items():
        if other != kind:
            informer._relist()
    assert not caches.listed()
    health.clear()
    stop.clear()
    caches.informers[(kind, None)].run(stop)  # its first LIST refused: it says so, once
    assert health == [kind]
    assert caches.listed()
    assert caches.informers[(kind, None)].synced is False  # its reads raise: Unknown


def _by_namespace_label(sharded: bool) -> tuple[str, str]:
    kube = sample_cluster(ListingKube())
    kube._store({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "crm", "labels": {"shard": "a", "env": "prod"}}})  # fmt: skip
    kube._store(admin_policy("prod", "Allow", {"namespaces": {"matchLabels": {"env": "prod"}}}))
    kinds = CACHED_KINDS
    if sharded:
        kinds = (*kinds, CachedKind("Namespace", "shard=a", cluster_scoped=True))
    caches = Caches(cast(Kube, kube), kinds, (), 3600, lambda *_: None, lambda *_: None)
    relist_all(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    return conditions(kube)["NetworkIsolated"]


def test_a_shard_knows_its_namespaces_labels() -> None:
    assert _by_namespace_label(sharded=True) == ("False", "AdminNetworkPolicyAllows")


def test_without_the_namespaces_labels_an_allow_by_label_may_select() -> None:
    assert _by_namespace_label(sharded=False) == ("Unknown", "AdminNetworkPolicyMaySelect")


def _as_the_operator_caches(settings: OperatorSettings, subject_labels: dict[str, str]) -> Any:
    """NetworkIsolated of KEY (in crm, labelled env=prod) under an AdminNetworkPolicy that
    allows every ingress to the pods of the namespaces `subject_labels` select, judged on
    the caches the operator makes with `settings`."""
    kube = sample_cluster(ListingKube())
    kube._store({"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "crm", "labels": {"env": "prod"}}})  # fmt: skip
    kube._store(admin_policy("by-label", "Allow", {"namespaces": {"matchLabels": subject_labels}}))
    caches = Caches(cast(Kube, kube), operator_module.cached_kinds(settings), settings.namespaces,
                    3600, lambda *_: None, lambda *_: None)  # fmt: skip
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    return conditions(kube)["NetworkIsolated"]


def test_an_operator_of_the_whole_cluster_knows_its_namespaces_labels() -> None:
    """Red before: only a shard cached Namespaces. The operator of the whole cluster (no
    selector, no named namespaces: the chart's default) judged an AdminNetworkPolicy that
    selects namespaces by label without the labels, "may select", and so said Unknown for a
    store whose namespace the policy does not select, and could not say False for one it
    does."""
    whole = OperatorSettings()
    assert _as_the_operator_caches(whole, {"env": "test"}) == ("True", "Isolated")
    assert _as_the_operator_caches(whole, {"env": "prod"}) == ("False", "AdminNetworkPolicyAllows")
    named = OperatorSettings(namespaces=("crm",))  # may not list Namespaces: Unknown, as before
    assert _as_the_operator_caches(named, {"env": "test"}) == (
        "Unknown", "AdminNetworkPolicyMaySelect")  # fmt: skip


# Discovery asked again while the operator runs: a CRD installed (or deleted) after it started.


ASKED: list[str] = []  # the group/versions `_operator_following`'s discovery was asked, in order


def _operator_following(
    monkeypatch: pytest.MonkeyPatch, anp: dict[str, bool], requests: dict[str, bool] | None = None
) -> tuple[OperatorSettings, list[Caches], set[str]]:
    """`run_operator` stubbed (tests/controller/test_operator_supervision.py), discovery
    serving Dataward's CRDs always, AdminNetworkPolicies while `anp["served"]` and
    DataSubjectRequests while `requests["served"]` (None: never); the settings, the Caches it
    makes, and the kinds whose informers run (idle until stopped)."""

    async def kopf_operator(*, stop_flag: asyncio.Event, **_: Any) -> None:
        await stop_flag.wait()

    settings = _stubbed(monkeypatch, {"served": True}, kopf_operator)
    asked = ASKED
    asked.clear()

    def served(self: Kube, group_version: str) -> set[str]:
        asked.append(group_version)
        if group_version == "policy.networking.k8s.io/v1alpha1":
            return {"adminnetworkpolicies"} if anp["served"] else set()
        answering = requests is not None and requests["served"]
        return {*operator_module.CRD_PLURALS, *(["datasubjectrequests"] if answering else [])}

    made: list[Caches] = []
    running: set[str] = set()

    def caches(*args: Any, **kwargs: Any) -> Caches:
        made.append(Caches(*args, **kwargs))
        return made[-1]

    def run(self: Informer, stop: threading.Event) -> None:
        running.add(self.spec.kind)
        stop.wait()
        running.discard(self.spec.kind)

    monkeypatch.setattr(Kube, "served", served, raising=False)
    monkeypatch.setattr(operator_module, "Caches", caches)
    monkeypatch.setattr(Informer, "run", run)
    return settings, made, running


def _running_operator(settings: OperatorSettings) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(run_operator(settings, stop)), daemon=True)
    thread.start()
    return thread, stop


def test_admin_policies_served_after_the_operator_started_are_cached_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A CNI upgrade (or a network team) installs the CRD after the operator started: an
    # AdminNetworkPolicy that allows ingress to a store's pods must be weighed from then on,
    # not from the operator's next restart.
    anp = {"served": False}
    settings, made, running = _operator_following(monkeypatch, anp)
    thread, stop = _running_operator(settings)
    try:
        assert _until(lambda: bool(made) and made[0].started and "PersonalDataStore" in running)
        time.sleep(0.2)  # several discovery checks (every 50 ms)
        assert not made[0].cached(ANP) and ANP not in running
        anp["served"] = True
        assert _until(lambda: ANP in running), "the AdminNetworkPolicy cache never started"
        assert made[0].cached(ANP)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert _until(lambda: not running), f"informers left running: {running}"


def test_admin_policies_no_longer_served_stop_their_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Their CRD deleted: no AdminNetworkPolicy can exist, and a cache whose LIST fails (a
    # 404) for ever would hold every store's NetworkIsolated at Unknown until a restart.
    anp = {"served": True}
    settings, made, running = _operator_following(monkeypatch, anp)
    thread, stop = _running_operator(settings)
    try:
        assert _until(lambda: ANP in running)
        anp["served"] = False
        assert _until(lambda: ANP not in running), "the AdminNetworkPolicy cache never stopped"
        assert not made[0].cached(ANP)
        assert "PersonalDataStore" in running  # the others go on
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.mark.parametrize("at_start", [False, True])
def test_requests_served_after_the_start_or_no_longer_are_followed_too(
    monkeypatch: pytest.MonkeyPatch, at_start: bool
) -> None:
    """The DataSubjectRequest CRD is applied by hand after a helm upgrade (which installs no
    new CRD): the operator said "restart", and until then it answered requests only at its
    hourly resync, from the API, with no watch. Now they are cached, watched and answered from
    the check that finds them served; and a CRD deleted stops their cache."""
    requests = {"served": at_start}
    settings, made, running = _operator_following(monkeypatch, {"served": False}, requests)
    thread, stop = _running_operator(settings)
    try:
        assert _until(lambda: bool(made) and made[0].started and "PersonalDataStore" in running)
        if at_start:  # its informer's thread running first: else "not running" proves nothing
            assert _until(lambda: "DataSubjectRequest" in running), "the cache never started"
        requests["served"] = not at_start
        if at_start:
            assert _until(lambda: "DataSubjectRequest" not in running), "never stopped"
            assert not made[0].cached("DataSubjectRequest")
        else:
            assert _until(lambda: "DataSubjectRequest" in running), "the cache never started"
            assert made[0].cached("DataSubjectRequest")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_each_check_asks_discovery_once_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's CRDs and the requests' are of one group/version: one discovery request
    a check serves both (steady state's reads, every 10 s)."""
    settings, _, _ = _operator_following(monkeypatch, {"served": False}, {"served": True})
    thread, stop = _running_operator(settings)
    try:
        assert _until(lambda: ASKED.count("policy.networking.k8s.io/v1alpha1") >= 6)
    finally:
        stop.set()
        thread.join(timeout=5)
    checks = ASKED.count("policy.networking.k8s.io/v1alpha1")
    # Each check: the group's once (and kopf's end, the start's wait for the CRDs: a few more).
    assert ASKED.count("dataward.io/v1alpha1") <= checks + 3, ASKED
