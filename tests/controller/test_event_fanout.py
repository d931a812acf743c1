"""Which stores a change of a namespace-wide object queues: labels and owner references are
written by whoever creates the object, so they prove nothing about who made it."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from dataward.controller.operator import keys_for_event
from dataward.render.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_LABEL
from dataward.render.names import label_value, names_for
from tests.controller.test_cache import _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, add_store

OTHER = ("crm", "orders")
BOTH = sorted([KEY, OTHER])


def _converged() -> tuple[Any, Any, Any]:
    kube = _cluster()
    add_store(kube, OTHER[1], OTHER[0], "o")
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile(OTHER, now=T0)
    _relist(caches)
    return kube, caches, reconciler


def _copied_binding(caches: Any) -> dict[str, Any]:
    """A RoleBinding made from `kubectl get rolebinding <store>-readers -o yaml`: its labels
    and owner reference kept, a new name, a role that reads every Secret, another subject."""
    own = caches.get("RoleBinding", KEY[0], names_for(KEY[1]).readers)
    assert own is not None
    meta = own["metadata"]
    return {
        "kind": "RoleBinding",
        "metadata": {
            "name": "support-inquiries-readers-copy",
            "namespace": KEY[0],
            "labels": dict(meta["labels"]),
            "ownerReferences": [dict(ref) for ref in meta["ownerReferences"]],
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "secret-reader"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }  # fmt: skip


def test_a_copied_binding_with_a_stores_labels_and_owner_queues_every_store() -> None:
    _, caches, reconciler = _converged()
    copied = _copied_binding(caches)
    assert copied["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    assert copied["metadata"]["labels"][STORE_LABEL] == label_value(KEY[1])
    keys, _ = keys_for_event("RoleBinding", None, copied, reconciler)
    assert sorted(keys) == BOTH


def test_the_copied_binding_is_the_other_stores_business_indeed() -> None:
    """Why it must queue both: once reconciled, the other store is not AccessRestricted."""
    kube, caches, reconciler = _converged()
    assert _condition(kube, OTHER, "AccessRestricted") == "True"
    kube._store({"kind": "ClusterRole", "metadata": {"name": "secret-reader"}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
    kube._store(_copied_binding(caches))
    _relist(caches)
    reconciler.reconcile(OTHER, now=T0 + timedelta(minutes=1))
    assert _condition(kube, OTHER, "AccessRestricted") == "False"


def _condition(kube: Any, key: tuple[str, str], kind: str) -> str:
    status = kube.objects[("PersonalDataStore", *key)].get("status") or {}
    return next(c["status"] for c in status.get("conditions", []) if c["type"] == kind)


def test_a_binding_labelled_managed_by_dataward_but_not_rendered_queues_every_store() -> None:
    _, _, reconciler = _converged()
    labelled = {"kind": "RoleBinding", "metadata": {
        "name": "grant", "namespace": "crm", "labels": {MANAGED_BY_LABEL: MANAGED_BY}}}
    assert sorted(keys_for_event("RoleBinding", None, labelled, reconciler)[0]) == BOTH
    # The label added in the same update as a subject: still every store's business.
    before = {"kind": "RoleBinding", "metadata": {"name": "grant", "namespace": "crm"}}
    assert sorted(keys_for_event("RoleBinding", before, labelled, reconciler)[0]) == BOTH


def test_a_policy_labelled_as_a_stores_queues_every_store() -> None:
    _, caches, reconciler = _converged()
    own = caches.get("NetworkPolicy", KEY[0], names_for(KEY[1]).network_policy)
    assert own is not None
    copied = {**own, "metadata": {**own["metadata"], "name": "allow-all"}}
    assert sorted(keys_for_event("NetworkPolicy", None, copied, reconciler)[0]) == BOTH


def test_the_operators_own_children_still_queue_their_store_alone() -> None:
    _, caches, reconciler = _converged()
    for kind, name in (
        ("RoleBinding", names_for(KEY[1]).readers),
        ("Role", names_for(KEY[1]).purge),
        ("NetworkPolicy", names_for(KEY[1]).network_policy),
    ):
        own = caches.get(kind, KEY[0], name)
        assert own is not None, (kind, name)
        assert keys_for_event(kind, own, own, reconciler)[0] == [KEY], (kind, name)


def test_an_edit_of_a_stores_child_queues_that_store_whatever_owner_it_now_names() -> None:
    """Someone widens store A's readers' binding and points its owner reference at store B
    in the same edit: A, whose render it is (and whose Secrets it now opens), is queued."""
    _, caches, reconciler = _converged()
    own = caches.get("RoleBinding", KEY[0], names_for(KEY[1]).readers)
    other = caches.get("PersonalDataStore", *OTHER)
    assert own is not None and other is not None
    ref = {**own["metadata"]["ownerReferences"][0], "name": OTHER[1],
           "uid": other["metadata"]["uid"]}  # fmt: skip
    edited = {
        **own,
        "metadata": {**own["metadata"], "ownerReferences": [ref]},
        "subjects": [*own["subjects"], {"kind": "User", "name": "mallory"}],
    }
    keys, _ = keys_for_event("RoleBinding", own, edited, reconciler)
    assert KEY in keys


def test_a_neighbours_policy_replaced_wider_queues_every_store() -> None:
    """Store B's NetworkPolicy deleted and made again by someone else, without its owner
    reference and open to every pod: A's pods are B's (they share them), so A's verdict
    changes too. Red on the old code: only B was queued, and A kept NetworkIsolated=True
    until the safety resync."""
    _, caches, reconciler = _converged()
    own = caches.get("NetworkPolicy", OTHER[0], names_for(OTHER[1]).network_policy)
    assert own is not None
    meta = {k: v for k, v in own["metadata"].items() if k != "ownerReferences"}
    replaced = {**own, "metadata": meta,
                "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}
    assert sorted(keys_for_event("NetworkPolicy", None, replaced, reconciler)[0]) == BOTH
    assert sorted(keys_for_event("NetworkPolicy", own, replaced, reconciler)[0]) == BOTH


def test_a_neighbours_binding_edited_to_read_this_stores_ring_queues_every_store() -> None:
    """B's readers' binding pointed at A's readers' Role, with mallory: A's ring is what it
    opens now. Red on the old code: only B was queued."""
    _, caches, reconciler = _converged()
    own = caches.get("RoleBinding", OTHER[0], names_for(OTHER[1]).readers)
    assert own is not None
    edited = {**own, "roleRef": {**own["roleRef"], "name": names_for(KEY[1]).readers},
              "subjects": [{"kind": "User", "name": "mallory"}]}  # fmt: skip
    assert sorted(keys_for_event("RoleBinding", own, edited, reconciler)[0]) == BOTH
    role = caches.get("Role", OTHER[0], names_for(OTHER[1]).readers)
    assert role is not None
    widened = {**role, "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    assert sorted(keys_for_event("Role", role, widened, reconciler)[0]) == BOTH


def test_a_stores_own_children_re_rendered_queue_only_the_stores_they_touch() -> None:
    """The operator applies a store's new render (its readers, its allowFrom edited): the
    event's old object is the previous render, no longer the view's. Red on 74c64f7: that
    queued every store of the namespace, N reconciles an edit and N^2 after an upgrade that
    changes a render. The other store shares neither pods nor Secrets with it."""
    kube, caches, reconciler = _converged()
    other = kube.objects[("PersonalDataStore", *OTHER)]
    assert other["spec"]["workload"]["podSelector"] != kube.objects[
        ("PersonalDataStore", *KEY)]["spec"]["workload"]["podSelector"]
    store = copy.deepcopy(kube.objects[("PersonalDataStore", *KEY)])
    store["spec"]["access"]["readers"].append({"kind": "User", "name": "bob"})
    store["spec"]["network"]["allowFrom"].append({"podSelector": {"matchLabels": {"app": "x"}}})
    kube._store(store)
    children = (
        ("RoleBinding", names_for(KEY[1]).readers),
        ("Role", names_for(KEY[1]).readers),
        ("NetworkPolicy", names_for(KEY[1]).network_policy),
    )
    before = {(k, n): copy.deepcopy(kube.objects[(k, KEY[0], n)]) for k, n in children}
    _relist(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))  # the view has the new render
    changed = 0
    for kind, name in children:
        old, new = before[(kind, name)], kube.objects[(kind, KEY[0], name)]
        changed += old != new
        assert keys_for_event(kind, old, new, reconciler)[0] == [KEY], (kind, name)
    assert changed == 2  # the binding (its subjects) and the policy (its peers)


def _with_status(store: dict[str, Any], ready: str, preview: Any = None) -> dict[str, Any]:
    changed = copy.deepcopy(store)
    status = changed.setdefault("status", {})
    status["conditions"] = [{"type": "Ready", "status": ready, "reason": "R"}]
    if preview is not None:
        status["impactPreview"] = preview
    return changed


def test_another_shards_store_changing_ready_queues_its_policy() -> None:
    # The shard that writes the policy's status sees another shard's store change Ready only
    # as a watch event (its own Ready changes it hears from its reconciles): the policy's
    # count of Ready stores must follow it, not wait for the hourly resync.
    _, caches, reconciler = _converged()
    store = caches.get("PersonalDataStore", *KEY)
    assert store is not None
    policy = store["spec"]["policy"]
    ready, not_ready = _with_status(store, "True"), _with_status(store, "False")
    assert keys_for_event("PersonalDataStore", ready, not_ready, reconciler) == ([KEY], [policy])
    assert keys_for_event("PersonalDataStore", not_ready, ready, reconciler) == ([KEY], [policy])
    # The impact preview of the policy's pending revision is gathered from its stores too.
    previewed = _with_status(store, "True", {"revision": 2, "rows": 10})
    assert keys_for_event("PersonalDataStore", ready, previewed, reconciler) == ([KEY], [policy])
    # Anything else in status changes nothing the policy shows.
    other = copy.deepcopy(ready)
    other["status"]["observedGeneration"] = 7
    assert keys_for_event("PersonalDataStore", ready, other, reconciler) == ([KEY], [])
