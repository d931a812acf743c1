"""A shard keeps only its own namespaces' objects of the kinds only its stores read (issue 11).

Two shards split the stores by namespace label; before, each cached every namespace's
NetworkPolicies, Roles, RoleBindings, CronJobs and Secrets (and slimmed them), so a shard's
memory did not shrink with its share. Now those kinds (`CachedKind.per_shard`) keep the
shard's namespaces only, and the honesty of the caches holds across a namespace coming to the
shard or leaving it: a namespace's reads are answered only once a LIST has covered it.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import threading
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.controller import cache as cache_module
from dataward.controller import operator as operator_module
from dataward.controller.cache import CachedKind, Caches
from dataward.controller.kube import RESOURCES, Kube, KubeError
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS, OperatorSettings
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import ListingKube, _first_lists, _relist
from tests.controller.test_cache_watch import Clock
from tests.controller.test_operator_supervision import _until
from tests.controller.test_reconcile import KEY, T0, add_store, conditions, sample_cluster

SHARD_LABEL = "dataward.io/shard"
OTHER = ("sales", "other-store")
PER_SHARD = ("NetworkPolicy", "Role", "RoleBinding", "CronJob", "KeyRing", "Secret")


def _namespace(name: str, shard: str) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": name, "labels": {SHARD_LABEL: shard}}}


def _shard_a_caches(kube: ListingKube) -> tuple[Caches, list[tuple[str, str | None]]]:
    """Shard a's caches (not listed yet), and the health callbacks they make."""
    health: list[tuple[str, str | None]] = []
    kinds = (*CACHED_KINDS, *SECRET_KINDS,
             CachedKind("Namespace", f"{SHARD_LABEL}=a", cluster_scoped=True))  # fmt: skip
    caches = Caches(
        cast(Kube, kube), kinds, (), 3600, lambda *_: None,
        lambda kind, namespace: health.append((kind, namespace)),
    )  # fmt: skip
    return caches, health


def _two_shards() -> tuple[ListingKube, Caches, Reconciler, list[tuple[str, str | None]]]:
    """Shard a's caches and reconciler; its store KEY (in crm) and shard b's OTHER (in sales),
    each converged, sales's by shard b (an unsharded reconciler of the API here)."""
    kube = sample_cluster(ListingKube())
    add_store(kube, OTHER[1], OTHER[0], "sales")
    kube._store(_namespace("crm", "a"))
    kube._store(_namespace("sales", "b"))
    Reconciler(cast(Kube, kube), ReconcileSettings(), (), None).reconcile(OTHER, now=T0)
    caches, health = _shard_a_caches(kube)
    _relist(caches)
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)
    reconciler.reconcile(KEY, now=T0)
    _relist(caches)
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")
    return kube, caches, reconciler, health


def _condition(kube: ListingKube, key: tuple[str, str], type_: str) -> tuple[str, str]:
    store = kube.objects[("PersonalDataStore", *key)]
    found = next(c for c in store["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


def _ready(kube: ListingKube, key: tuple[str, str]) -> tuple[str, str]:
    return _condition(kube, key, "Ready")


def _move(kube: ListingKube, caches: Caches, namespace: str, shard: str) -> None:
    """Relabel `namespace` for `shard`, and deliver what shard a's Namespace watch (by its
    label selector) then sends: ADDED when it comes to shard a, DELETED when it leaves."""
    labelled = kube._store(_namespace(namespace, shard))
    caches.informers[("Namespace", None)]._apply("ADDED" if shard == "a" else "DELETED", labelled)


def _fill(caches: Caches) -> None:
    while caches.fill_once():
        pass


def test_a_shard_keeps_no_other_shards_children_rbac_or_secrets() -> None:
    """Red on 5e97f34: shard a held sales's NetworkPolicy, Roles, RoleBindings, CronJob, key
    ring and Secrets, and answered reads of them."""
    kube, caches, _, _ = _two_shards()
    for kind in PER_SHARD:
        held = caches.informers[(kind, None)].by_namespace
        assert held.get("crm"), f"{kind}: shard a's own namespace is cached"
        assert not held.get("sales"), f"{kind}: another shard's namespace is cached"
        with pytest.raises(KubeError):  # Unknown, never "none there"
            caches.list(kind, "sales")
    # What a subject request of shard a may read in any store's namespace, and every store
    # (a policy counts them all), are still every namespace's.
    for kind in ("PersonalDataStore", "ServiceAccount"):
        assert caches.informers[(kind, None)].by_namespace.get("sales"), kind
    # Nor does the watch bring them back.
    policy = next(o for (k, ns, _), o in kube.objects.items()
                  if k == "NetworkPolicy" and ns == "sales")  # fmt: skip
    caches.informers[("NetworkPolicy", None)]._apply("MODIFIED", copy.deepcopy(policy))
    assert not caches.informers[("NetworkPolicy", None)].by_namespace.get("sales")
    assert caches.counts()["NetworkPolicy"] == len(caches.list("NetworkPolicy", "crm"))


def test_a_namespace_that_comes_to_the_shard_is_judged_only_once_listed() -> None:
    """A careless admin relabels sales for shard a while a foreign RoleBinding there grants
    the store's key ring. Its caches of shard a held nothing of sales: judged on them before
    they have listed it, the store would read "no binding" and be True."""
    kube, caches, reconciler, health = _two_shards()
    ring = next(name for (k, ns, name) in kube.objects if k == "Secret" and ns == "sales"
                and name.endswith("keyring"))  # fmt: skip
    kube._store({"kind": "Role", "metadata": {"name": "peek", "namespace": "sales"},
                 "rules": [{"apiGroups": [""], "resources": ["secrets"],
                            "resourceNames": [ring], "verbs": ["get"]}]})  # fmt: skip
    kube._store({"kind": "RoleBinding", "metadata": {"name": "peek", "namespace": "sales"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "peek"},
                 "subjects": [{"kind": "User", "name": "mallory"}]})  # fmt: skip
    # Shard b had not judged the store yet (a new one): whatever its status says is shard a's.
    kube.objects[("PersonalDataStore", *OTHER)]["status"] = {}
    _move(kube, caches, "sales", "a")
    kube.calls.clear()
    reconciler.reconcile(OTHER, now=T0 + timedelta(minutes=1))
    assert kube.writes() == []  # not judged on caches that hold nothing of sales
    assert reconciler.stores_in("sales") == []
    assert not caches.owns("sales")
    _fill(caches)
    assert caches.owns("sales")
    assert ("Namespace", "sales") in health  # its stores and requests are queued now
    reconciler.reconcile(OTHER, now=T0 + timedelta(minutes=1))
    assert _condition(kube, OTHER, "AccessRestricted")[0] == "False"
    assert _ready(kube, OTHER)[0] == "False"


def test_a_namespace_listed_for_the_shard_leaves_what_is_known_of_the_others_known() -> None:
    """Red on 3167686: `list_namespace` bumped its cache's generation once and journalled
    every name it listed at that one generation, which the journal reads as a gap: it kept
    the last name alone. Asked what changed in sales since, it named one of sales's two
    RoleBindings; asked of crm, whose RoleBinding the watch had just brought, it answered
    "unknown", so every namespace's derived state (its stores' view, its RBAC snapshot and
    findings) was rebuilt whole after each namespace listed (at a restart, a hundred of them
    while the first pass runs). Now each name listed is a change of its own."""
    kube, caches, _, _ = _two_shards()
    kinds = ("RoleBinding", "Role", "NetworkPolicy", "CronJob")  # each a per-shard kind
    before = {kind: caches.generation(kind, "crm")[0] for kind in kinds}
    extra = kube._store({"kind": "RoleBinding", "metadata": {"name": "extra", "namespace": "crm"},
                         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                     "name": "none"}})  # fmt: skip
    caches.informers[("RoleBinding", None)]._apply("ADDED", extra)
    _move(kube, caches, "sales", "a")
    _fill(caches)
    assert caches.owns("sales")
    for kind in kinds:
        in_crm = {"extra"} if kind == "RoleBinding" else set()
        assert caches.changed_since(kind, "crm", before[kind]) == in_crm, kind
        in_sales = {o["metadata"]["name"] for o in caches.list(kind, "sales")}
        assert in_sales and caches.changed_since(kind, "sales", before[kind]) == in_sales, kind


def test_a_child_deleted_while_its_namespace_is_listed_is_not_brought_back() -> None:
    """The namespace's LIST began before the store's NetworkPolicy was deleted, and the watch
    delivered the deletion before the LIST's answer was taken in: the cache must not hold
    the deleted policy again (the store would be judged isolated with no policy in place)."""
    kube, caches, reconciler, _ = _two_shards()
    informer = caches.informers[("NetworkPolicy", None)]
    key = next(k for k in kube.objects if k[0] == "NetworkPolicy" and k[1] == "sales")
    _move(kube, caches, "sales", "a")
    listed = informer._list

    def racing(namespace: str) -> Any:
        answer = listed(namespace)  # the snapshot, with the policy
        gone = kube.objects.pop(key)
        kube.version += 1
        gone["metadata"]["resourceVersion"] = str(kube.version)
        informer._apply("DELETED", copy.deepcopy(gone))
        return answer

    informer._list = racing  # type: ignore[method-assign]
    _fill(caches)
    assert caches.owns("sales")
    assert informer.get("sales", key[2]) is None
    kube.calls.clear()
    reconciler.reconcile(OTHER, now=T0 + timedelta(minutes=1))
    assert ("create", "NetworkPolicy", key[2]) in kube.calls or key in kube.objects


def test_a_namespace_that_leaves_the_shard_is_forgotten_and_not_judged() -> None:
    kube, caches, reconciler, _ = _two_shards()
    _move(kube, caches, "crm", "b")
    assert not caches.owns("crm")
    for kind in PER_SHARD:
        assert not caches.informers[(kind, None)].by_namespace.get("crm"), kind
        with pytest.raises(KubeError):
            caches.list(kind, "crm")
    kube.calls.clear()
    assert reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1)) is None
    assert kube.writes() == []


def _namespace_event(kube: ListingKube, caches: Caches, reconciler: Reconciler,
                     namespace: str, shard: str, now_minutes: int) -> None:
    """Relabel `namespace` for `shard` as `_move` does, and have shard a's reconciler judge
    the stores its event names, as the operator's event handler queues them."""
    old = None if shard == "a" else copy.deepcopy(kube.objects[("Namespace", None, namespace)])
    _move(kube, caches, namespace, shard)
    new = kube.objects[("Namespace", None, namespace)] if shard == "a" else None
    keys, _ = operator_module.keys_for_event("Namespace", old, new, reconciler)
    for key in keys:
        reconciler.reconcile(key, now=T0 + timedelta(minutes=now_minutes))


def test_a_namespace_relabelled_to_no_shard_leaves_no_verdict_standing_true() -> None:
    """A careless admin relabels crm for a shard that does not exist (a typo). Shard a forgets
    crm and judges its store no more, and no other shard does: Ready=True, shard a's last
    word, would stand with nothing checking it. Shard a says it no longer checks it."""
    kube, caches, reconciler, _ = _two_shards()
    assert _ready(kube, KEY) == ("True", "AllControlsInForce")
    _namespace_event(kube, caches, reconciler, "crm", "typo", 1)
    store = kube.objects[("PersonalDataStore", *KEY)]
    shown = {c["type"]: c for c in store["status"]["conditions"]}
    assert {t: c["status"] for t, c in shown.items()} == dict.fromkeys(shown, "Unknown")
    assert {c["reason"] for c in shown.values()} == {"NamespaceNotServed"}
    assert "crm" in shown["Ready"]["message"] and "AllControlsInForce" in shown["Ready"]["message"]
    # Once: another shard's verdict written later is not patched over by shard a.
    for condition in store["status"]["conditions"]:
        condition.update(status="True", reason="JudgedByShardB")
    kube.calls.clear()
    keys, _ = operator_module.keys_for_event("PersonalDataStore", store, store, reconciler)
    for key in keys:
        reconciler.reconcile(key, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []
    # Back in shard a: judged as ever, True again.
    _namespace_event(kube, caches, reconciler, "crm", "a", 3)
    _fill(caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=4))
    assert _ready(kube, KEY) == ("True", "AllControlsInForce")


def test_a_store_of_another_shards_namespace_is_never_marked_by_this_one() -> None:
    kube, _, reconciler, _ = _two_shards()
    before = copy.deepcopy(kube.objects[("PersonalDataStore", *OTHER)]["status"])
    kube.calls.clear()
    for key in (OTHER, KEY):
        reconciler.reconcile(key, now=T0 + timedelta(minutes=1))
    assert kube.objects[("PersonalDataStore", *OTHER)]["status"] == before
    assert [w for w in kube.writes() if OTHER[1] in str(w)] == []


def test_a_namespace_whose_list_fails_is_the_shards_and_its_store_unknown() -> None:
    """Its RoleBindings cannot be listed: the store is judged, and Unknown (not True on an
    empty cache, nor left with the other shard's last verdict)."""
    kube, caches, reconciler, health = _two_shards()
    assert _ready(kube, OTHER) == ("True", "AllControlsInForce")  # as shard b judged it
    kube.fail_lists["RoleBinding"] = 500
    _move(kube, caches, "sales", "a")
    for _ in range(len(PER_SHARD)):
        caches.fill_once()  # each cache's LIST once; the failed one waits for its backoff
    assert caches.owns("sales")
    assert ("Namespace", "sales") in health
    reconciler.reconcile(OTHER, now=T0 + timedelta(minutes=1))
    assert _condition(kube, OTHER, "AccessRestricted")[0] == "Unknown"
    assert _ready(kube, OTHER)[0] == "Unknown"


def test_a_namespace_whose_list_keeps_failing_is_retried_on_the_caches_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same backoff as a cache's failed LIST or watch (`watch_backoff`): 1, 2, 4, 8, 15,
    15 s between tries, and done once a try answers."""
    kube, caches, _, _ = _two_shards()
    clock = Clock()
    monkeypatch.setattr(cache_module, "time", clock)
    kube.fail_lists["RoleBinding"] = 500
    _move(kube, caches, "sales", "a")
    tries: list[float] = []
    listed = caches.informers[("RoleBinding", None)].list_namespace

    def counted(namespace: str) -> None:
        tries.append(clock.now)
        if len(tries) == 7:
            del kube.fail_lists["RoleBinding"]
        listed(namespace)

    monkeypatch.setattr(caches.informers[("RoleBinding", None)], "list_namespace", counted)
    for _ in range(80):  # a simulated second at a time
        _fill(caches)
        clock.now += 1.0
    assert [round(b - a) for a, b in itertools.pairwise(tries)] == [1, 2, 4, 8, 15, 15]
    assert caches.owns("sales") and not caches._fills


def test_a_shards_cache_lists_only_once_its_namespaces_are_known() -> None:
    kube = sample_cluster(ListingKube())
    kube._store(_namespace("crm", "a"))
    kinds = (*CACHED_KINDS, CachedKind("Namespace", f"{SHARD_LABEL}=a", cluster_scoped=True))
    caches = Caches(cast(Kube, kube), kinds, (), 3600, lambda *_: None, lambda *_: None)
    with pytest.raises(KubeError):  # would keep nothing, and never list crm
        caches.informers[("NetworkPolicy", None)]._relist()
    caches.informers[("Namespace", None)]._relist()
    caches.informers[("NetworkPolicy", None)]._relist()
    with pytest.raises(KubeError):  # crm's own LIST not made yet
        caches.list("NetworkPolicy", "crm")
    _fill(caches)
    assert caches.list("NetworkPolicy", "crm") == []  # listed: none there, known


def test_a_namespace_that_leaves_while_its_cache_lists_holds_nothing_when_it_comes_back() -> None:
    """sales comes to shard a, leaves it while a's NetworkPolicy cache re-lists (its LIST
    still returns sales's policy), its policy is deleted while it is shard b's (a's watch
    drops the event: not a's namespace), and it comes back: the deleted policy must not be
    held (the store would be judged isolated with no policy in place)."""
    kube, caches, _, _ = _two_shards()
    informer = caches.informers[("NetworkPolicy", None)]
    _move(kube, caches, "sales", "a")
    _fill(caches)
    key = next(k for k in kube.objects if k[0] == "NetworkPolicy" and k[1] == "sales")
    listed = informer._list_pages

    def leaving(namespace: str | None, take: Any, restart: Any, limit: int) -> str:
        version = listed(namespace, take, restart, limit)
        if namespace is None:
            _move(kube, caches, "sales", "b")
        return version

    informer._list_pages = leaving  # type: ignore[method-assign]
    informer._relist()
    informer._list_pages = listed  # type: ignore[method-assign]
    assert not informer.by_namespace.get("sales")
    with pytest.raises(KubeError):
        caches.list("NetworkPolicy", "sales")
    gone = kube.objects.pop(key)
    kube.version += 1
    gone["metadata"]["resourceVersion"] = str(kube.version)
    informer._apply("DELETED", copy.deepcopy(gone))  # shard b's namespace now: dropped
    _move(kube, caches, "sales", "a")
    _fill(caches)
    assert caches.owns("sales")
    assert informer.get("sales", key[2]) is None


def _restarted_shard(kube: ListingKube) -> tuple[Caches, list[tuple[str, str | None]]]:
    """Shard a's caches anew, as a restarted operator makes them: every cache's first LIST
    made (the Namespace cache's first), the LISTs of its namespaces they ask for not yet."""
    caches, health = _shard_a_caches(kube)
    _first_lists(caches)
    return caches, health


def test_a_shards_first_lists_ask_only_for_its_own_namespaces_objects() -> None:
    """Red on a86033e: each cache of a per-shard kind LISTed the whole cluster and dropped
    the other shards' objects, so every shard decoded every namespace's (its CPU at start
    did not shrink with its share). Now it asks for one object, for the list's version, then
    lists its own namespaces one by one."""
    kube, _, _, _ = _two_shards()
    for n in range(3):
        add_store(kube, f"more-{n}", "sales", "sales")
        Reconciler(cast(Kube, kube), ReconcileSettings(), (), None).reconcile(
            ("sales", f"more-{n}"), now=T0)  # fmt: skip
    answered: list[tuple[str, dict[str, str], list[str]]] = []
    call = kube._call

    def recorded(method: str, path: str, *, query: Any = None, what: str, **kw: Any) -> Any:
        answer = call(method, path, query=query, what=what, **kw)
        namespaces = [str(i["metadata"].get("namespace")) for i in answer.get("items") or []]
        answered.append((what.removeprefix("list "), dict(query or []), namespaces))
        return answer

    kube._call = recorded  # type: ignore[method-assign]
    caches, _ = _restarted_shard(kube)
    _fill(caches)
    per_shard = [a for a in answered if a[0] in PER_SHARD]
    foreign = [ns for _, _, namespaces in per_shard for ns in namespaces if ns != "crm"]
    assert len(foreign) <= len(PER_SHARD), foreign  # at most the one object a version costs
    assert all(q.get("limit") == "1" for kind, q, ns in per_shard if set(ns) - {"crm"})
    for kind in PER_SHARD:  # and crm's are all there, read as before
        held = {o["metadata"]["name"] for o in caches.list(kind, "crm")}
        api = kind if kind != "KeyRing" else "Secret"
        expected = {name for (k, ns, name) in kube.objects if k == api and ns == "crm"}
        if kind == "KeyRing":
            expected = {name for name in expected if name.endswith("keyring")}
        assert held == expected, kind


def test_a_store_whose_namespace_is_still_listed_is_not_judged_nor_counted() -> None:
    """A restarted shard lists its namespaces one by one. A store of one not listed yet has
    no verdict to give (its RoleBindings may not be held): nothing is written, and the
    first pass does not count it re-verified; once listed, it is judged, and its stores are
    queued (`on_health`)."""
    kube, _, _, _ = _two_shards()
    caches, health = _restarted_shard(kube)
    settings = ReconcileSettings(clock=lambda: T0 + timedelta(minutes=1))
    reconciler = Reconciler(cast(Kube, kube), settings, (), caches)
    assert not caches.owns("crm")
    assert reconciler.shard_stores() == [KEY]  # the first pass waits for it
    assert reconciler.all_stores() == []
    kube.calls.clear()
    outcome = reconciler.reconcile_logged(KEY)
    assert outcome.ok and not outcome.judged
    assert kube.writes() == []
    _fill(caches)
    assert caches.owns("crm") and ("Namespace", "crm") in health
    outcome = reconciler.reconcile_logged(KEY)
    assert outcome.ok and outcome.judged
    assert kube.writes() == []  # converged before the restart: nothing to write
    assert _ready(kube, KEY) == ("True", "AllControlsInForce")


def test_a_shards_namespaces_are_listed_whole_one_after_another() -> None:
    """Each namespace's LISTs (every per-shard kind's) before the next namespace's, in the
    order they were asked for: its stores are judged while later ones are still listed."""
    kube = sample_cluster(ListingKube())
    for name in ("crm", "sales", "zoo"):
        kube._store(_namespace(name, "a"))
    caches, _ = _restarted_shard(kube)
    made: list[str] = []
    for informer in caches.informers.values():
        listed = informer.list_namespace

        def counted(namespace: str, listed: Any = listed) -> None:
            made.append(namespace)
            listed(namespace)

        informer.list_namespace = counted  # type: ignore[method-assign]
    _fill(caches)
    per = sum(1 for informer in caches.informers.values() if informer.shard is not None)
    assert per >= len(PER_SHARD)
    assert made == ["crm"] * per + ["sales"] * per + ["zoo"] * per


def test_a_namespace_asked_for_again_while_listed_waits_for_the_later_list() -> None:
    """sales comes to the shard, leaves it and comes back while its RoleBindings are listed
    (the fills run on several threads). That LIST began before sales left, and the watch
    dropped what happened to it meanwhile: its end must not make sales the shard's, even
    when every other cache has listed sales since; the LIST asked for later must."""
    kube, caches, _, _ = _two_shards()
    bindings = caches.informers[("RoleBinding", None)]
    _move(kube, caches, "sales", "a")
    tasks = [heapq.heappop(caches._fills) for _ in range(len(caches._fills))]
    running = next(t for t in tasks if t[3] is bindings)
    _move(kube, caches, "sales", "b")
    _move(kube, caches, "sales", "a")  # every kind asked again
    while caches._fills:
        _, _, number, informer, namespace, _ = heapq.heappop(caches._fills)
        if informer is bindings:
            later = number
            continue  # not made yet
        caches._filled(informer, namespace, number)
    caches._filled(bindings, "sales", running[2])  # the LIST begun before sales left
    assert not caches.owns("sales")
    caches._filled(bindings, "sales", later)
    assert caches.owns("sales")


def test_a_shards_cache_is_never_synced_before_it_asks_for_its_namespaces() -> None:
    """The first of a shard's caches to list says it is synced (`on_health`, which may let
    the first pass begin): at that moment no namespace it has not listed may be the shard's,
    or a store there would be judged on a cache that holds nothing of it (Unknown, written).
    Red before the LISTs of its namespaces were asked for ahead of the health callback."""
    kube = sample_cluster(ListingKube())
    kube._store(_namespace("crm", "a"))
    seen: list[tuple[str, bool]] = []
    holder: list[Caches] = []

    def on_health(kind: str, namespace: str | None) -> None:
        if kind == "NetworkPolicy":
            seen.append((kind, holder[0].owns("crm")))

    kinds = (*CACHED_KINDS, CachedKind("Namespace", f"{SHARD_LABEL}=a", cluster_scoped=True))
    caches = Caches(cast(Kube, kube), kinds, (), 3600, lambda *_: None, on_health)
    holder.append(caches)
    caches.informers[("Namespace", None)]._relist()
    caches.informers[("NetworkPolicy", None)]._relist()  # the first per-shard cache to list
    assert seen == [("NetworkPolicy", False)]
    _fill(caches)
    assert caches.owns("crm")


def test_idle_fill_threads_sleep_until_asked_and_end_with_the_caches() -> None:
    """With no namespace to list, a fill thread waits without a deadline: it is woken by a
    LIST asked for (then made at once) or by the caches' stop (then it ends). Red before:
    each of the FILL_THREADS woke every second for as long as the operator ran."""
    kube, caches, _, _ = _two_shards()
    waits: list[float | None] = []

    class Recorded(type(caches._fill_wake)):  # type: ignore[misc]
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            return super().wait(timeout)

    caches._fill_wake = Recorded()
    thread = threading.Thread(target=caches._fill_loop, daemon=True)
    thread.start()
    assert _until(lambda: waits == [None], 5)
    listed: list[str] = []
    sharded = [i for i in caches.informers.values() if i.shard is not None]
    for informer in sharded:
        informer.list_namespace = listed.append  # type: ignore[method-assign]
    _move(kube, caches, "sales", "a")  # a namespace comes to the shard: its LISTs asked for
    assert _until(lambda: len(listed) == len(sharded) and len(waits) >= 2, 5)
    assert listed == ["sales"] * len(sharded) and caches.owns("sales")
    assert set(waits) == {None}  # back asleep, nothing due
    caches.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_operator_of_every_namespace_lists_them_one_by_one_at_a_restart() -> None:
    """The chart's default operator (no selector, no named namespaces) caches every
    namespace (`cached_kinds`) and restarts as a shard of them all: a LIST of one object
    for the version, then each namespace's LISTs, a store judged once its namespace is
    listed. Red before: it LISTed each kind of the whole cluster and judged nothing until
    every LIST had ended."""
    kube = sample_cluster(ListingKube())
    add_store(kube, OTHER[1], OTHER[0], "sales")
    for namespace in ("crm", "sales"):
        kube._store({"kind": "Namespace", "metadata": {"name": namespace}})
    for key in (KEY, OTHER, KEY, OTHER):  # converged: a second pass has nothing to write
        Reconciler(cast(Kube, kube), ReconcileSettings(), (), None).reconcile(key, now=T0)
    asked: list[tuple[str, dict[str, str]]] = []
    call = kube._call

    def recorded(method: str, path: str, *, query: Any = None, what: str, **kw: Any) -> Any:
        asked.append((path, dict(query or [])))
        return call(method, path, query=query, what=what, **kw)

    kube._call = recorded  # type: ignore[method-assign]
    caches = Caches(cast(Kube, kube), operator_module.cached_kinds(OperatorSettings()), (),
                    3600, lambda *_: None, lambda *_: None)  # fmt: skip
    _first_lists(caches)
    settings = ReconcileSettings(clock=lambda: T0 + timedelta(minutes=1))
    reconciler = Reconciler(cast(Kube, kube), settings, (), caches)
    assert sorted(reconciler.shard_stores()) == sorted([KEY, OTHER])
    assert not caches.owns("crm") and not caches.owns("sales")
    kube.calls.clear()
    assert not reconciler.reconcile_logged(KEY).judged  # its namespace not listed yet
    per_shard = {RESOURCES[i.spec.api_kind].path(None) for i in caches.informers.values()
                 if i.shard is not None}  # fmt: skip
    assert per_shard and {q.get("limit") for p, q in asked if p in per_shard} == {"1"}
    _fill(caches)
    assert caches.owns("crm") and caches.owns("sales")
    for namespace in ("crm", "sales"):
        listed = {p for p, q in asked if namespace in p and "limit" in q}
        assert len(listed) == len(per_shard), namespace  # each per-shard kind, alone
    for key in (KEY, OTHER):
        assert reconciler.reconcile_logged(key).judged
        assert _ready(kube, key) == ("True", "AllControlsInForce")
    assert kube.writes() == []  # converged before the restart: nothing to write
