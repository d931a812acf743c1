"""What the cache keeps, compacted (issue 11), and drift still seen through it.

The cache keeps the CronJob in the form drift compares (`comparable_cronjob`: the pod
template's digest over the keys the render sets). Each test edits a child the way a careless
user does (`kubectl edit` stores the whole edited object under a new resourceVersion), lets
the cache re-list it, and expects the next reconcile to apply the child back; what the API
server or another manager adds where the render sets nothing must not be drift.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from dataward.checks.observed import ObservedObject
from dataward.checks.purge import purge_scheduled
from dataward.controller.cache import Caches
from dataward.model.store import parse_store
from dataward.render.names import names_for
from dataward.render.purge_job import comparable_cronjob, render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.controller.test_cache import ListingKube, _caches, _cluster, _reconciler, _relist
from tests.controller.test_reconcile import KEY, T0, conditions
from tests.model import samples

NAMES = names_for(KEY[1])
Edit = Callable[[dict[str, Any]], None]


def _converged() -> tuple[ListingKube, Caches]:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    _relist(caches)
    return kube, caches


def _edited(kind: str, name: str, edit: Edit) -> tuple[ListingKube, dict[str, Any], list[Any]]:
    """Converge, edit the child in the API, let the cache see it, reconcile: the API's child
    before the edit, and the writes of that reconcile."""
    kube, caches = _converged()
    key = (kind, KEY[0], name)
    before = copy.deepcopy(kube.objects[key])
    changed = copy.deepcopy(before)
    edit(changed)
    assert changed != before, "the edit changes nothing: the test would prove nothing"
    kube._store(changed)
    _relist(caches)
    cached = caches.get(kind, KEY[0], name)
    if kind == "CronJob":
        assert isinstance(cached["spec"]["jobTemplate"], str), "not the compact form"
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    return kube, before, kube.writes()


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def _container(cronjob: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = _pod(cronjob)["containers"][0]
    return container


CRONJOB_EDITS: dict[str, Edit] = {
    "schedule": lambda c: c["spec"].update(schedule="0 0 1 1 *"),
    "suspended": lambda c: c["spec"].update(suspend=True),
    "image": lambda c: _container(c).update(image="evil.example/purge:latest"),
    "args": lambda c: _container(c)["args"].append("--dry-run"),
    "credentials secret": lambda c: _container(c)["env"][1]["valueFrom"]["secretKeyRef"].update(
        name="someone-elses-secret"
    ),
    "env added": lambda c: _container(c)["env"].append({"name": "DEBUG", "value": "1"}),
    "env removed": lambda c: _container(c)["env"].pop(),
    "privileged": lambda c: _container(c)["securityContext"].update(privileged=True),
    "capabilities": lambda c: _container(c)["securityContext"]["capabilities"].update(drop=[]),
    "token mount writable": lambda c: _container(c)["volumeMounts"][0].pop("readOnly"),
    "memory limit": lambda c: _container(c)["resources"]["limits"].update(memory="64Gi"),
    "service account": lambda c: _pod(c).update(serviceAccountName="default"),
    "token automounted": lambda c: _pod(c).update(automountServiceAccountToken=True),
    "run as root": lambda c: _pod(c)["securityContext"].update(runAsUser=0),
    "volume swapped": lambda c: _pod(c)["volumes"][1].update(emptyDir={"sizeLimit": "100Gi"}),
    "token lifetime": lambda c: _pod(c)["volumes"][0]["projected"]["sources"][0][
        "serviceAccountToken"
    ].update(expirationSeconds=86400 * 365),
    "pod label": lambda c: c["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
        "labels"
    ].clear(),
    "deadline": lambda c: c["spec"]["jobTemplate"]["spec"].update(activeDeadlineSeconds=10**9),
}


@pytest.mark.parametrize("edit", CRONJOB_EDITS.values(), ids=CRONJOB_EDITS.keys())
def test_an_edited_cronjob_is_drift_and_applied_back(edit: Edit) -> None:
    kube, before, writes = _edited("CronJob", NAMES.purge_cronjob, edit)
    assert ("apply", "CronJob", NAMES.purge_cronjob) in writes
    after = kube.objects[("CronJob", KEY[0], NAMES.purge_cronjob)]
    assert after["spec"] == before["spec"]


@pytest.mark.parametrize("edit", CRONJOB_EDITS.values(), ids=CRONJOB_EDITS.keys())
def test_purge_scheduled_says_drifted_from_the_compact_forms(edit: Edit) -> None:
    """The verdict compares the forms the cache keeps: an edit is CronJobDrifted, what the
    server adds is not."""
    store = parse_store(samples.STORE)
    desired = render_purge_cronjob(store, RenderSettings(), compliant=True)
    live = copy.deepcopy(desired)
    _server_defaults(live)

    def verdict(observed: dict[str, Any]) -> str:
        body = ObservedObject.present(comparable_cronjob(observed))
        return purge_scheduled([], False, comparable_cronjob(desired), body).reason

    assert verdict(live) == "Scheduled"
    edit(live)
    assert verdict(live) == "CronJobDrifted"


def _ingress_from_anywhere(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"].append({})


def _peer_widened(policy: dict[str, Any]) -> None:
    policy["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]


def _subject_added(binding: dict[str, Any]) -> None:
    binding["subjects"].append(
        {"kind": "ServiceAccount", "name": "intruder", "namespace": KEY[0]}
    )


def _subject_swapped(binding: dict[str, Any]) -> None:
    binding["subjects"][0]["name"] = "intruder"


def _verbs_widened(role: dict[str, Any]) -> None:
    role["rules"][0]["verbs"] = ["*"]


OTHER_EDITS: dict[str, tuple[str, str, Edit]] = {
    "netpol ingress from anywhere": ("NetworkPolicy", NAMES.network_policy,
                                     _ingress_from_anywhere),
    "netpol peer widened": ("NetworkPolicy", NAMES.network_policy, _peer_widened),
    "readers binding subject added": ("RoleBinding", NAMES.readers, _subject_added),
    "readers binding subject swapped": ("RoleBinding", NAMES.readers, _subject_swapped),
    "readers role verbs widened": ("Role", NAMES.readers, _verbs_widened),
}  # fmt: skip


@pytest.mark.parametrize("case", OTHER_EDITS.values(), ids=OTHER_EDITS.keys())
def test_an_edited_policy_or_binding_is_drift_and_applied_back(
    case: tuple[str, str, Edit],
) -> None:
    kind, name, edit = case
    kube, before, writes = _edited(kind, name, edit)
    assert ("apply", kind, name) in writes
    after = kube.objects[(kind, KEY[0], name)]
    body = {k: v for k, v in before.items() if k not in ("metadata", "status")}
    assert {k: after.get(k) for k in body} == body


def _server_defaults(cronjob: dict[str, Any]) -> None:
    """What the API server adds to a CronJob the operator applied, and another manager's
    label: none of it is set by the render, none of it is drift."""
    cronjob["metadata"]["labels"]["team.example/owner"] = "crm"
    cronjob["spec"]["jobTemplate"]["metadata"]["creationTimestamp"] = None
    job = cronjob["spec"]["jobTemplate"]["spec"]
    job.update(completions=1, parallelism=1, completionMode="NonIndexed", suspend=False,
               podReplacementPolicy="TerminatingOrFailed")  # fmt: skip
    job["template"]["metadata"]["creationTimestamp"] = None
    pod = _pod(cronjob)
    pod.update(dnsPolicy="ClusterFirst", schedulerName="default-scheduler",
               terminationGracePeriodSeconds=30)  # fmt: skip
    pod["volumes"][0]["projected"]["sources"][1]["configMap"]["items"][0]["mode"] = 420
    _container(cronjob)["env"][1]["valueFrom"]["secretKeyRef"]["optional"] = False


def test_server_defaults_in_the_cronjob_are_not_drift() -> None:
    kube, caches = _converged()
    key = ("CronJob", KEY[0], NAMES.purge_cronjob)
    defaulted = copy.deepcopy(kube.objects[key])
    _server_defaults(defaulted)
    kube._store(defaulted)
    _relist(caches)
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("apply", "CronJob", NAMES.purge_cronjob) not in kube.writes()
    assert conditions(kube)["PurgeScheduled"] == ("True", "Scheduled")


def test_the_namespace_views_hold_equal_parts_once_and_change_no_value() -> None:
    from dataward.controller.reconcile import NamespaceStores
    from dataward.render import render_access

    stores = tuple(
        parse_store({**samples.STORE, "metadata": {**samples.STORE["metadata"], "name": name}})
        for name in ("alpha", "beta")
    )
    view = NamespaceStores.of(stores)
    for store, rendered in zip(stores, view.rbac, strict=True):
        assert list(rendered) == list(render_access(store)[1])  # the same values as a fresh render
    role, binding = view.rbac[0][0], view.rbac[0][1]
    refs = role["metadata"]["ownerReferences"]
    assert binding["metadata"]["ownerReferences"] is refs  # one copy of the store's owner
    assert view.rbac[1][0]["metadata"]["ownerReferences"] is not refs  # another store's


def test_the_namespace_views_hold_the_cached_childrens_labels_and_owners() -> None:
    # A view's render shares its labels and owner references with the cached children's (the
    # copies every cached object of the store holds), however many renders repeat them.
    from dataward.controller.cache import slim
    from dataward.controller.reconcile import NamespaceStores

    stores = tuple(
        parse_store({**samples.STORE, "metadata": {**samples.STORE["metadata"], "name": name}})
        for name in ("alpha", "beta", "gamma")
    )
    view = NamespaceStores.of(stores)
    for policy, rbac in zip(view.policies, view.rbac, strict=True):
        for item in (policy, *rbac):
            cached = slim(item["kind"], copy.deepcopy(item))
            assert item["metadata"]["labels"] is cached["metadata"]["labels"]
            assert item["metadata"]["ownerReferences"] is cached["metadata"]["ownerReferences"]
    assert view.rbac[0][0]["metadata"]["labels"] is not view.rbac[1][0]["metadata"]["labels"]


def test_equal_labels_and_owner_references_are_held_once_and_go_with_their_objects() -> None:
    import gc

    from dataward.controller.cache import slim, sweep_copies

    def child(name: str, store: str, component: str) -> dict[str, Any]:
        return {"metadata": {
            "name": name, "namespace": "crm", "uid": f"u-{name}",
            "labels": {"dataward.io/store": store, "app.kubernetes.io/component": component},
            "ownerReferences": [{"kind": "PersonalDataStore", "name": store, "uid": store}],
        }}  # fmt: skip

    role = slim("Role", child("r", "alpha", "access"))
    binding = slim("RoleBinding", child("b", "alpha", "access"))
    other = slim("Role", child("o", "beta", "access"))
    purge = slim("Role", child("p", "alpha", "purge"))
    assert role["metadata"]["ownerReferences"] is binding["metadata"]["ownerReferences"]
    assert role["metadata"]["labels"] is binding["metadata"]["labels"]
    assert other["metadata"]["ownerReferences"] == [
        {"kind": "PersonalDataStore", "name": "beta", "uid": "beta"}
    ]
    assert other["metadata"]["labels"]["dataward.io/store"] == "beta"
    assert purge["metadata"]["labels"] is not role["metadata"]["labels"]
    assert purge["metadata"]["labels"]["app.kubernetes.io/component"] == "purge"
    gc.collect()  # earlier tests' garbage holds copies until collected
    held = sweep_copies()
    del other
    gc.collect()
    assert sweep_copies() == held - 2  # beta's labels and owner reference went with it


def test_a_condition_message_changed_alone_is_written_back_though_the_cache_keeps_digests() -> None:
    kube, caches = _converged()
    key = ("PersonalDataStore", *KEY)
    written = copy.deepcopy(kube.objects[key]["status"]["conditions"])
    cached = caches.get("PersonalDataStore", *KEY)["status"]["conditions"]
    assert all(c["message"].startswith("sha256:") for c in cached)  # the compact form
    assert [c["type"] for c in cached] == [c["type"] for c in written]
    store = copy.deepcopy(kube.objects[key])
    store["status"]["conditions"][0]["message"] = "Everything is fine, nothing to see."
    kube._store(store)  # an older operator's message, or anyone's status write
    _relist(caches)
    kube.calls.clear()
    reconciler = _reconciler(kube, caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("patch/status", "PersonalDataStore", KEY[1]) in kube.writes()
    assert kube.objects[key]["status"]["conditions"] == written
    _relist(caches)
    kube.calls.clear()
    # Then nothing more to write, also for a restarted operator (no remembered writes).
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []


def test_stores_hold_their_equal_conditions_and_spec_parts_once_and_keep_their_own() -> None:
    from dataward.controller.cache import slim

    def store(name: str, reason: str) -> dict[str, Any]:
        raw = copy.deepcopy(samples.STORE)
        raw["metadata"]["name"] = name
        raw["spec"]["database"]["credentialsSecret"] = f"creds-{name}"
        raw["status"] = {"conditions": [
            {"type": "Ready", "status": "True", "reason": "AllControlsInForce",
             "message": "sha256:0123", "lastTransitionTime": "2026-01-10T08:00:00Z"},
            {"type": "NetworkIsolated", "status": "False", "reason": reason,
             "message": "sha256:4567", "lastTransitionTime": "2026-01-10T08:00:00Z"},
        ]}  # fmt: skip
        return raw

    alpha, beta = store("alpha", "Isolated"), store("beta", "OtherPolicyAllowsIngress")
    one, two = slim("PersonalDataStore", alpha), slim("PersonalDataStore", beta)
    assert one["status"]["conditions"][0] is two["status"]["conditions"][0]
    assert one["spec"]["purge"] is two["spec"]["purge"]
    assert one["spec"]["records"] is two["spec"]["records"]
    # What differs stays each store's own, and nothing reads another value than it sent.
    assert two["status"]["conditions"][1]["reason"] == "OtherPolicyAllowsIngress"
    assert one["status"]["conditions"][1]["reason"] == "Isolated"
    assert two["spec"]["database"]["credentialsSecret"] == "creds-beta"
    assert one["spec"]["database"]["credentialsSecret"] == "creds-alpha"
    for sent, kept in ((alpha, one), (beta, two)):
        assert kept["spec"] == sent["spec"]
        assert kept["status"]["conditions"] == sent["status"]["conditions"]


def test_a_view_holds_a_role_and_its_bindings_one_metadata_and_the_stores_one_vocabulary() -> None:
    from dataward.controller.reconcile import NamespaceStores

    stores = tuple(
        parse_store({**samples.STORE, "metadata": {**samples.STORE["metadata"], "name": name}})
        for name in ("alpha", "beta")
    )
    view = NamespaceStores.of(stores)
    kinds = [item["kind"] for item in view.rbac[0]]
    assert kinds == ["Role", "RoleBinding", "Role", "RoleBinding"]  # as the test reads them
    for first, second in ((0, 1), (2, 3)):  # the readers' Role and binding, the purge's
        role, binding = view.rbac[0][first], view.rbac[0][second]
        assert role["metadata"] == binding["metadata"] and role["metadata"] is binding["metadata"]
    assert view.rbac[0][0]["metadata"] is not view.rbac[0][2]["metadata"]  # another name
    assert view.rbac[0][0]["metadata"] is not view.rbac[1][0]["metadata"]  # another store's
    verbs = [store_rbac[0]["rules"][0]["verbs"] for store_rbac in view.rbac]
    assert verbs[0] == ["get"] and verbs[0] is verbs[1]
    types = [policy["spec"]["policyTypes"] for policy in view.policies]
    assert types[0] == ["Ingress"] and types[0] is types[1]


def test_a_converged_stores_view_renders_hold_its_cached_childrens_bodies() -> None:
    # The namespace views hold each store's renders; converged, their compared bodies are
    # the cached children's very objects (one copy, issue 11), and still equal a fresh render.
    from dataward.controller.reconcile import NamespaceStores
    from dataward.render import render_access

    _, caches = _converged()
    store = parse_store(caches.get("PersonalDataStore", *KEY))
    view = NamespaceStores.of((store,))
    policy = view.policies[0]
    assert policy == render_access(store)[0]
    cached = caches.get("NetworkPolicy", KEY[0], NAMES.network_policy)
    assert policy["spec"] is cached["spec"]
    assert policy["metadata"]["labels"] is cached["metadata"]["labels"]
    assert list(view.rbac[0]) == list(render_access(store)[1])
    _holds_the_cached_rbac(view.rbac[0], caches)


def _holds_the_cached_rbac(rbac: tuple[dict[str, Any], ...], caches: Caches) -> None:
    """Assert that each rendered Role's and RoleBinding's compared body and owner references
    are its cached child's very objects (one copy)."""
    for item in rbac:
        cached = caches.get(item["kind"], KEY[0], item["metadata"]["name"])
        body = ("rules",) if item["kind"] == "Role" else ("roleRef", "subjects")
        for field in body:
            assert item[field] is cached[field], (item["kind"], field)
        assert item["metadata"]["ownerReferences"] is cached["metadata"]["ownerReferences"]


def test_a_store_judges_its_own_rbac_on_the_views_renders_only_of_that_very_store() -> None:
    # The view's renders of the store stand for this pass's (no parse of their rules) only
    # when the view holds the very Store this pass rendered: an edited store's view renders
    # are of its old spec.
    from dataward.controller.reconcile import NamespaceStores
    from dataward.render import render_children

    store = parse_store(samples.STORE)
    view = NamespaceStores.of((store,))
    rendered = [c for c in render_children(store, None, RenderSettings())
                if c["kind"] in ("NetworkPolicy", "Role", "RoleBinding")]  # fmt: skip
    held = view.besides(store.name).own_renders(store)
    assert held is not None and [held[0], *held[1]] == rendered
    edited = copy.deepcopy(samples.STORE)
    edited["spec"]["access"]["readers"].append({"kind": "User", "name": "mallory"})
    assert view.besides(store.name).own_renders(parse_store(edited)) is None
    assert view.besides(store.name).own_renders(parse_store(samples.STORE)) is None  # not it


def test_the_views_renders_a_store_is_created_and_repaired_from_are_left_as_rendered() -> None:
    # A store's reconcile creates and applies its NetworkPolicy, Roles and RoleBindings from
    # the very objects its namespace view holds for its neighbours' verdicts: no write may
    # leave anything in them (a resourceVersion, a uid, the server's defaults).
    from dataward.render import render_access

    kube, caches = _converged()  # every child created from the view's renders
    reconciler = _reconciler(kube, caches)
    view = reconciler._namespace(KEY[0])
    store = view.by_name[KEY[1]]
    held = view.renders_of(store)
    assert held is not None
    for kind, name in (("NetworkPolicy", NAMES.network_policy), ("Role", NAMES.readers)):
        edited = copy.deepcopy(kube.objects[(kind, KEY[0], name)])
        edited["metadata"]["labels"] = {"edited": "yes"}
        kube._store(edited)
    _relist(caches)
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert {(w[1], w[2]) for w in kube.writes() if w[1] in ("NetworkPolicy", "Role")} == {
        ("NetworkPolicy", NAMES.network_policy), ("Role", NAMES.readers)
    }, kube.writes()
    assert reconciler._namespace(KEY[0]).renders_of(store) is held  # the same objects
    fresh = render_access(store)
    assert held[0] == fresh[0] and list(held[1]) == list(fresh[1])


def test_a_view_takes_a_converged_childs_equal_parts_from_the_cache_and_never_edited_ones() -> (
    None
):
    # Built with the cached children at hand (as the reconciler builds it), a view takes each
    # part of a render that equals the cached child's from the cache, one comparison a part.
    # An edited part is not the render's: someone widened the NetworkPolicy's ingress, and
    # the view must still hold the render, or the edit is no drift and is never put back.
    from dataward.controller.reconcile import NamespaceStores
    from dataward.render import render_access

    kube, caches = _converged()
    key = ("NetworkPolicy", KEY[0], NAMES.network_policy)
    edited = copy.deepcopy(kube.objects[key])
    edited["spec"]["ingress"] = [{}]  # from anywhere
    kube._store(edited)
    _relist(caches)
    store = parse_store(caches.get("PersonalDataStore", *KEY))
    view = NamespaceStores.of(
        (store,), cached=lambda kind, name: caches.held(kind, KEY[0], name)
    )
    cached = caches.get(*key)
    assert cached["spec"]["ingress"] == [{}]
    policy = view.policies[0]
    assert policy == render_access(store)[0]
    assert policy["spec"] is not cached["spec"]
    assert policy["metadata"]["labels"] is cached["metadata"]["labels"]  # not edited: shared
    assert list(view.rbac[0]) == list(render_access(store)[1])
    _holds_the_cached_rbac(view.rbac[0], caches)
    # The reconcile, whose view is built so, sees the drift and puts the render back.
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("apply", "NetworkPolicy", NAMES.network_policy) in kube.writes()
    assert kube.objects[key]["spec"] == policy["spec"]
