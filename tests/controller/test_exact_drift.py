"""A child's parts the API server keeps as written are compared exactly, and put back.

An added key there (a namespaceSelector on a NetworkPolicy peer, which admits the peer's pods
of every namespace) is drift and is undone at the next reconcile; a key the render drops
(a label the store's workload selector no longer has) leaves the child too, although the
create's managedFields entry, not the operator's apply, owns it. Nothing is sent once the
child is as rendered.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.names import names_for
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster
from tests.model import samples

NAMES = names_for(KEY[1])
POLICY = ("NetworkPolicy", KEY[0], NAMES.network_policy)
READERS = ("RoleBinding", KEY[0], NAMES.readers)


def child_writes(kube: FakeKube, kind: str) -> list[str]:
    return [verb for verb, k, _ in kube.writes() if k == kind]


def test_a_namespace_selector_added_to_a_peer_is_removed_and_then_left_alone() -> None:
    kube = sample_cluster(FakeKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    rendered = copy.deepcopy(kube.objects[POLICY]["spec"])
    widened = copy.deepcopy(rendered)
    peer = widened["ingress"][0]["from"][0]
    assert set(peer) == {"podSelector"}, peer  # the sample's allowFrom peer: crm-api pods
    peer["namespaceSelector"] = {}  # now: crm-api pods of every namespace
    kube.objects[POLICY]["spec"] = widened
    kube._store(kube.objects[POLICY])
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert kube.objects[POLICY]["spec"] == rendered
    assert child_writes(kube, "NetworkPolicy")  # put back by the operator, not by the test
    assert conditions(kube)["NetworkIsolated"] == ("True", "Isolated")
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert child_writes(kube, "NetworkPolicy") == []


def test_a_label_the_workload_selector_drops_leaves_the_network_policy() -> None:
    """The render set `tier: db` when the child was created; the store's spec then drops
    it. The live selector must lose it (the pods without `tier` are the store's workload
    too, and would be left unisolated): the fake's apply merges maps, keeping what an apply
    does not name, as a granular map owned by the create's Update entry would be kept."""
    two = {"podSelector": {"matchLabels": {"app": "crm-postgres", "tier": "db"}}}
    kube = sample_cluster(FakeKube(), store=samples.store(workload=two))
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    assert kube.objects[POLICY]["spec"]["podSelector"]["matchLabels"]["tier"] == "db"
    store = kube.objects[("PersonalDataStore", *KEY)]
    store["spec"]["workload"] = {"podSelector": {"matchLabels": {"app": "crm-postgres"}}}
    store["metadata"]["generation"] = store["metadata"].get("generation", 1) + 1
    kube._store(store)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert kube.objects[POLICY]["spec"]["podSelector"] == {
        "matchLabels": {"app": "crm-postgres"}}  # fmt: skip
    assert conditions(kube)["NetworkIsolated"][0] == "True"
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert child_writes(kube, "NetworkPolicy") == []


def test_a_key_added_to_a_readers_binding_subject_is_removed() -> None:
    kube = sample_cluster(FakeKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    rendered = copy.deepcopy(kube.objects[READERS]["subjects"])
    edited: list[dict[str, Any]] = copy.deepcopy(rendered)
    edited[0]["extra"] = "by-someone"
    kube.objects[READERS]["subjects"] = edited
    kube._store(kube.objects[READERS])
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert kube.objects[READERS]["subjects"] == rendered


class MutatingKube(FakeKube):
    """As if a mutating admission webhook added a field to every NetworkPolicy written: the
    child can never be as rendered, whatever the operator sends."""

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "NetworkPolicy":
            obj["spec"]["ingress"][0]["ports"][0]["endPort"] = 65535
        return super()._store(obj)


def test_a_child_an_update_cannot_make_as_rendered_is_reported_not_rewritten_each_pass() -> None:
    """Exact comparison must not turn something the operator cannot undo into writes at every
    resync: after an update that left the child still different, the same object (same
    resourceVersion) under the same render is not written again; it is reported. Changed by
    someone, it is tried again."""
    kube = sample_cluster(MutatingKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    assert child_writes(kube, "NetworkPolicy") == ["create", "apply", "replace"]
    assert conditions(kube)["NetworkIsolated"] == ("False", "NetworkPolicyDrifted")
    kube.calls.clear()
    for minutes in (1, 2):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    assert child_writes(kube, "NetworkPolicy") == []
    assert conditions(kube)["NetworkIsolated"] == ("False", "NetworkPolicyDrifted")
    kube._store(kube.objects[POLICY])  # someone's edit: another resourceVersion
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=3))
    assert child_writes(kube, "NetworkPolicy") == ["apply", "replace"]


def test_a_purge_cronjob_that_retries_its_pod_is_put_back_to_one_pod_a_run() -> None:
    """A CronJob as 8919753 rendered it (`backoffLimit: 1`), or one edited to retry, is drift:
    the next reconcile updates it in place (same uid) to one pod a run, then leaves it be.
    Red first: on 8919753 `backoffLimit: 1` was the render's own and stayed."""
    kube = sample_cluster(FakeKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    key = ("CronJob", KEY[0], NAMES.purge_cronjob)
    uid = kube.objects[key]["metadata"]["uid"]
    kube.objects[key]["spec"]["jobTemplate"]["spec"]["backoffLimit"] = 1
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    cronjob = kube.objects[key]
    assert cronjob["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert cronjob["metadata"]["uid"] == uid
    before = len(child_writes(kube, "CronJob"))
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert len(child_writes(kube, "CronJob")) == before
