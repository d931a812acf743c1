"""Never adopt what the operator did not make: a child of the store's name that someone else
created (no controller owner reference to the store) is never written, and its control says
so. A child the operator made is still kept as rendered."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.names import names_for
from tests.controller.fake_kube import FakeKube
from tests.controller.test_keyed_list_drift import PURGE, KeyedListKube, pod
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster
from tests.model import samples

NAMES = names_for(KEY[1])
NOT_OURS = "ChildNotCreatedByOperator"


def foreign(kind: str, api_version: str, name: str, **body: Any) -> dict[str, Any]:
    """An object of a child's name, made by someone else: no owner reference to the store."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": KEY[0], "labels": {"team": "careless"}},
        **body,
    }


FOREIGN_POLICY_SPEC = {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}


def writes_of(kube: FakeKube, kind: str) -> list[tuple[str, str, str]]:
    return [c for c in kube.writes() if c[1] == kind]


def test_a_foreign_network_policy_of_the_childs_name_is_never_written() -> None:
    kube = sample_cluster(FakeKube())
    kube._store(foreign("NetworkPolicy", "networking.k8s.io/v1", NAMES.network_policy,
                        spec=copy.deepcopy(FOREIGN_POLICY_SPEC)))  # fmt: skip
    before = copy.deepcopy(kube.objects[("NetworkPolicy", *KEY[:1], NAMES.network_policy)])
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile(KEY, now=T0)
    assert [c for c in writes_of(kube, "NetworkPolicy") if c[2] == NAMES.network_policy] == []
    assert kube.objects[("NetworkPolicy", KEY[0], NAMES.network_policy)] == before
    seen = conditions(kube)
    assert seen["NetworkIsolated"] == ("False", NOT_OURS)
    assert seen["Ready"][0] == "False"
    # The other children are the operator's own, and made.
    assert ("create", "CronJob", NAMES.purge_cronjob) in kube.writes()


def test_the_condition_names_the_object_and_never_its_content() -> None:
    kube = sample_cluster(FakeKube())
    kube._store(foreign("NetworkPolicy", "networking.k8s.io/v1", NAMES.network_policy,
                        spec=copy.deepcopy(FOREIGN_POLICY_SPEC)))  # fmt: skip
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)
    status = kube.objects[("PersonalDataStore", *KEY)]["status"]
    message = next(c["message"] for c in status["conditions"] if c["type"] == "NetworkIsolated")
    assert f"NetworkPolicy {KEY[0]}/{NAMES.network_policy}" in message
    assert "careless" not in message and "policyTypes" not in message


def test_a_reference_to_the_store_that_is_not_its_controller_is_not_enough() -> None:
    kube = sample_cluster(FakeKube())
    uid = kube.objects[("PersonalDataStore", *KEY)]["metadata"]["uid"]
    binding = foreign("RoleBinding", "rbac.authorization.k8s.io/v1", NAMES.purge,
                      roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                               "name": "admin"},
                      subjects=[{"kind": "ServiceAccount", "name": "x", "namespace": KEY[0]}])
    binding["metadata"]["ownerReferences"] = [{
        "apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore", "name": KEY[1],
        "uid": uid}]  # fmt: skip
    kube._store(binding)
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)
    assert [c for c in writes_of(kube, "RoleBinding") if c[2] == NAMES.purge] == []
    assert kube.objects[("RoleBinding", KEY[0], NAMES.purge)]["roleRef"]["name"] == "admin"
    assert conditions(kube)["AccessRestricted"] == ("False", NOT_OURS)


class LabelSelectedRead:
    """Reads as the operator's label-selected caches serve them: a CronJob or ServiceAccount
    without the operator's labels is not seen (None), everything else as the API has it."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = self.kube.get(kind, namespace, name)
        labels = ((found or {}).get("metadata") or {}).get("labels") or {}
        if kind in ("CronJob", "ServiceAccount") and "app.kubernetes.io/managed-by" not in labels:
            return None
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kube, name)


def test_a_foreign_cronjob_the_label_selected_cache_cannot_see_is_never_written() -> None:
    kube = sample_cluster(FakeKube())
    kube._store(foreign("CronJob", "batch/v1", NAMES.purge_cronjob, spec={
        "schedule": "* * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"containers": [
            {"name": "x", "image": "someone/else"}]}}}},
    }))  # fmt: skip
    before = copy.deepcopy(kube.objects[("CronJob", KEY[0], NAMES.purge_cronjob)])
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.read = cast(Kube, LabelSelectedRead(kube))
    reconciler.reconcile(KEY, now=T0)
    assert [v for v, _, name in writes_of(kube, "CronJob") if name == NAMES.purge_cronjob] == [
        "create"]  # refused (409): nothing else is sent to it
    assert kube.objects[("CronJob", KEY[0], NAMES.purge_cronjob)] == before
    assert conditions(kube)["PurgeScheduled"] == ("False", NOT_OURS)
    assert conditions(kube)["Ready"][0] == "False"


def test_a_child_the_operator_made_is_still_restored_when_edited() -> None:
    kube = sample_cluster(FakeKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    rendered = copy.deepcopy(kube.objects[("NetworkPolicy", KEY[0], NAMES.network_policy)])
    kube.objects[("NetworkPolicy", KEY[0], NAMES.network_policy)]["spec"] = copy.deepcopy(
        FOREIGN_POLICY_SPEC)  # fmt: skip
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0)
    assert ("apply", "NetworkPolicy", NAMES.network_policy) in kube.writes()
    assert kube.objects[("NetworkPolicy", KEY[0], NAMES.network_policy)]["spec"] == (
        rendered["spec"])
    assert conditions(kube)["NetworkIsolated"][0] == "True"


def test_a_new_store_s_children_are_created_with_one_request_each() -> None:
    kube = sample_cluster(FakeKube())
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)
    children = ("NetworkPolicy", "Role", "RoleBinding", "ServiceAccount", "CronJob")
    sent = [(verb, kind) for verb, kind, _ in kube.writes() if kind in children]
    assert sorted(sent) == sorted(
        [("create", "NetworkPolicy"), ("create", "Role"), ("create", "RoleBinding"),
         ("create", "RoleBinding"), ("create", "Role"), ("create", "ServiceAccount"),
         ("create", "CronJob")])  # fmt: skip


def test_an_item_the_create_set_and_the_render_drops_is_removed_by_an_update() -> None:
    """A created child's fields belong to the create's managedFields entry (an Update), which
    a later apply cannot take away: the stub keeps, as the API server does, keyed-list items
    an apply does not name. An item the render stops setting is then removed by the update
    that follows the apply (`_replace_child`), not left for ever."""
    kube = sample_cluster(KeyedListKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    assert ("create", "CronJob", NAMES.purge_cronjob) in kube.writes()
    # As if an earlier render had set one more env variable, which this one no longer does.
    spec = pod(kube.objects[PURGE])
    spec["containers"][0].setdefault("env", []).append({"name": "DROPPED", "value": "1"})
    kube.objects[PURGE]["spec"]["jobTemplate"]["spec"]["template"]["spec"] = spec
    kube._store(kube.objects[PURGE])
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert [v for v, k, _ in kube.writes() if k == "CronJob"] == ["apply", "replace"]
    env = pod(kube.objects[PURGE])["containers"][0].get("env", [])
    assert all(e["name"] != "DROPPED" for e in env)
    assert conditions(kube)["PurgeScheduled"][0] == "True"


def test_a_readers_binding_the_operator_did_not_make_is_not_pruned() -> None:
    """A store without readers has its readers' binding deleted, if it is the store's own:
    one that merely references the store (not as its controller) is someone else's."""
    store = copy.deepcopy(samples.STORE)
    store["spec"]["access"]["readers"] = []
    kube = sample_cluster(FakeKube(), store=store)
    uid = kube.objects[("PersonalDataStore", *KEY)]["metadata"]["uid"]
    binding = foreign("RoleBinding", "rbac.authorization.k8s.io/v1", NAMES.readers,
                      roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                               "name": NAMES.readers},
                      subjects=[{"kind": "ServiceAccount", "name": "x", "namespace": KEY[0]}])
    binding["metadata"]["ownerReferences"] = [{
        "apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore", "name": KEY[1],
        "uid": uid}]  # fmt: skip
    kube._store(binding)
    Reconciler(cast(Kube, kube), ReconcileSettings()).reconcile(KEY, now=T0)
    assert ("delete", "RoleBinding", NAMES.readers) not in kube.writes()
    assert ("RoleBinding", KEY[0], NAMES.readers) in kube.objects


POLICY_KEY = ("NetworkPolicy", KEY[0], NAMES.network_policy)


def _edited_behind_a_stale_read(kube: FakeKube) -> tuple[Reconciler, dict[str, Any]]:
    """The store converged, then its NetworkPolicy edited (it needs a repair); a reconciler
    reading a copy of the API taken now (a cache the next change has not reached yet), and
    the NetworkPolicy as rendered."""
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile(KEY, now=T0)
    rendered = copy.deepcopy(kube.objects[POLICY_KEY])
    kube.objects[POLICY_KEY]["spec"] = copy.deepcopy(FOREIGN_POLICY_SPEC)
    kube._store(kube.objects[POLICY_KEY])
    stale = FakeKube()
    stale.objects = copy.deepcopy(kube.objects)
    reconciler.read = cast(Kube, stale)
    return reconciler, rendered


def test_a_child_made_again_by_someone_else_after_the_read_is_never_applied_over() -> None:
    # Someone deletes the operator's NetworkPolicy and makes their own of the name; the
    # watch has not brought that to the cache yet.
    kube = sample_cluster(FakeKube())
    reconciler, _ = _edited_behind_a_stale_read(kube)
    del kube.objects[POLICY_KEY]
    theirs = kube._store(foreign("NetworkPolicy", "networking.k8s.io/v1", NAMES.network_policy,
                                 spec={"podSelector": {}, "policyTypes": ["Egress"]}))  # fmt: skip
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0)
    assert kube.objects[POLICY_KEY] == theirs  # not taken over, not changed
    # The refused repair is judged again on a read of the API: someone else's, and said so.
    assert ("get", "NetworkPolicy", NAMES.network_policy) in kube.calls
    assert conditions(kube)["NetworkIsolated"] == ("False", NOT_OURS)
    assert conditions(kube)["Ready"][0] == "False"


def test_a_child_changed_by_another_manager_after_the_read_is_still_repaired() -> None:
    # The operator's own NetworkPolicy, edited again; the cache holds the first edit only.
    kube = sample_cluster(FakeKube())
    reconciler, rendered = _edited_behind_a_stale_read(kube)
    kube.objects[POLICY_KEY]["spec"]["policyTypes"] = ["Egress"]
    kube._store(kube.objects[POLICY_KEY])
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0)
    assert [c for c in kube.writes() if c[1] == "NetworkPolicy"] == [
        ("apply", "NetworkPolicy", NAMES.network_policy)] * 2  # refused (409), then applied
    assert kube.objects[POLICY_KEY]["spec"] == rendered["spec"]
    assert conditions(kube)["NetworkIsolated"][0] == "True"
