"""The watch-fed caches: what a reconcile reads from them, and what it may not (issue 11).

The informers' list path runs for real against the in-memory API (`_call` serves a LIST from
FakeKube's objects); their threads and watches are not started here (e2e runs those).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from prometheus_client.parser import text_string_to_metric_families

from dataward.checks.observed import ObservedBinding, RbacSnapshot
from dataward.checks.purge_runs import job_runs, pod_runs
from dataward.controller.cache import RELIST_PAGE, CachedKind, Caches, Informer, slim
from dataward.controller.kube import RESOURCES, Kube, KubeError
from dataward.controller.metrics import STORES, exposition
from dataward.controller.operator import CACHED_KINDS, keys_for_event
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster
from tests.model import samples


def page(items: list[Any], asked: Mapping[str, str]) -> tuple[list[Any], str]:
    """The page of `items` a LIST with `limit` (and `continue`: an offset here) asks for,
    and the token of the next page ("" after the last), as the API server pages."""
    start, limit = int(asked.get("continue") or 0), int(asked["limit"])
    return items[start:start + limit], str(start + limit) if start + limit < len(items) else ""


class ListingKube(FakeKube):
    """FakeKube that also answers the informers' raw LIST requests."""

    def _call(self, method: str, path: str, *, query: Any = None, what: str, **_: Any) -> Any:
        assert method == "GET"
        namespaces = sorted({ns for _, ns, _ in self.objects if ns}
                            | {name for kind, _, name in self.objects if kind == "Namespace"})
        for kind, resource in RESOURCES.items():
            for namespace in [None, *namespaces] if resource.namespaced else [None]:
                if resource.path(namespace) == path:
                    asked = dict(query or [])
                    items = self.list(kind, namespace, asked.get("labelSelector"))
                    meta = {"resourceVersion": str(self.version)}
                    if asked.get("limit"):  # pages, as the API server serves them
                        items, meta["continue"] = page(items, asked)
                    return {"metadata": meta, "items": items}
        raise KubeError(404, "Not Found", what)


def _cluster() -> ListingKube:
    return sample_cluster(ListingKube())


def _caches(kube: ListingKube, events: list[tuple[str, Any, Any]] | None = None) -> Caches:
    def on_event(kind: str, old: Any, new: Any) -> None:
        if events is not None:
            events.append((kind, old, new))

    return Caches(
        cast(Kube, kube), CACHED_KINDS, (), 3600, on_event, lambda kind, namespace: None
    )


def _first_lists(caches: Caches) -> None:
    """Every cache's LIST, the Namespace cache first, as a shard's caches of its namespaces
    wait for it (`run`); not the LISTs of namespaces those ask for."""
    for _, informer in sorted(caches.informers.items(), key=lambda i: i[0][0] != "Namespace"):
        informer._relist()


def _relist(caches: Caches) -> None:
    # Then the LISTs of a shard's namespaces its caches' first lists ask for (`_fill_loop`).
    _first_lists(caches)
    while caches.fill_once():
        pass


def _reconciler(kube: ListingKube, caches: Caches) -> Reconciler:
    return Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)


def test_a_store_with_nothing_to_do_reads_only_its_secrets_from_the_api() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)  # creates children, ring, status
    _relist(caches)  # what the watches would have delivered
    kube.calls.clear()
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=5))
    assert kube.writes() == []
    # Was: GET store, policy, 7 children, ring; LIST Jobs, Pods, NetworkPolicies, Roles,
    # RoleBindings (14-17 requests). Now: the key ring and the credentials Secret, by name.
    assert sorted(kube.calls) == [
        ("get", "Secret", "crm-postgres-purger"),
        ("get", "Secret", "dataward-support-inquiries-keyring"),
    ]
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


def test_a_cache_that_has_not_listed_is_unknown_not_empty() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    _relist(caches)
    caches.informers[("NetworkPolicy", None)]._fail("HTTP 403 Forbidden")
    caches.informers[("Job", None)]._fail("HTTP 403 Forbidden")
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["NetworkIsolated"] == ("Unknown", "NetworkPoliciesUnreadable")
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_a_store_cache_that_failed_writes_nothing_and_raises() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    caches.informers[("PersonalDataStore", None)]._fail("HTTP 404 Not Found")
    kube.calls.clear()
    outcome = _reconciler(kube, caches).reconcile_logged(KEY)
    assert not outcome.ok  # the queue retries with backoff
    assert kube.writes() == []


def test_a_relist_reports_what_changed_and_what_went() -> None:
    kube = _cluster()
    events: list[tuple[str, Any, Any]] = []
    caches = _caches(kube, events)
    _relist(caches)
    assert events == []  # the first list is the starting point, not a change
    kube.objects.pop(("PrivacyPolicy", None, samples.POLICY["metadata"]["name"]))
    _relist(caches)
    assert [(kind, new) for kind, _, new in events] == [("PrivacyPolicy", None)]


def test_a_safety_relist_merges_page_by_page_keeping_what_did_not_change() -> None:
    """The safety resync re-lists every cache. Red on f4cf4e6: a re-list built the kind's
    new objects whole beside the old (20,007 RoleBindings at 10,000 stores: the running
    operator's peak RSS rose by 50-74 MiB each hour), then replaced every object, changed or
    not, and made every namespace's RBAC be rebuilt whole (its journal forgotten). Now each
    page (of RELIST_PAGE objects, not 500) is merged as it comes: an object held at the
    version listed stays the very object held, and only what the watch missed is stored,
    sent as an event, and journalled."""
    kube = _cluster()
    for i in range(300):  # three pages of a re-list's
        kube._store({"kind": "Role", "metadata": {"name": f"r{i:04}", "namespace": "crm"},
                     "rules": []})  # fmt: skip
    events: list[tuple[str, Any, Any]] = []
    caches = _caches(kube, events)
    _relist(caches)
    informer = caches.informers[("Role", None)]
    held = {name: obj for name, obj in informer.by_namespace["crm"].items()}
    generation = informer.generation
    # At each page asked for: its size, and how many objects held are not the first ones.
    pages: list[tuple[str, int]] = []
    listed = kube._call

    def counting(method: str, path: str, *, query: Any = None, **kw: Any) -> Any:
        if path.endswith("/roles"):
            changed = sum(informer.by_namespace["crm"].get(n) is not o for n, o in held.items())
            pages.append((dict(query)["limit"], changed))
        return listed(method, path, query=query, **kw)

    kube._call = counting  # type: ignore[method-assign]
    informer._relist()  # nothing changed
    assert all(informer.by_namespace["crm"][name] is obj for name, obj in held.items())
    assert informer.generation == generation
    assert caches.changed_since("Role", "crm", generation) == set()
    assert events == []
    # Changed, deleted and made with no watch event (missed): found, and only those sent.
    kube._store({"kind": "Role", "metadata": {"name": "r0150", "namespace": "crm"},
                 "rules": [{"verbs": ["get"], "resources": ["secrets"], "apiGroups": [""]}]})
    kube.objects.pop(("Role", "crm", "r0001"))
    kube._store({"kind": "Role", "metadata": {"name": "new", "namespace": "crm"}, "rules": []})
    pages.clear()
    informer._relist()
    # In pages of RELIST_PAGE, r0150 (on the second) stored before the last is asked for.
    assert {limit for limit, _ in pages} == {str(RELIST_PAGE)} and len(pages) >= 3
    assert pages[0][1] == 0 and pages[-1][1] == 1
    assert sorted((o or {}).get("metadata", {}).get("name", "") + ">" +
                  (n or {}).get("metadata", {}).get("name", "") for _, o, n in events) == [
        ">new", "r0001>", "r0150>r0150"]  # fmt: skip
    assert caches.changed_since("Role", "crm", generation) == {"r0001", "r0150", "new"}
    assert all(informer.by_namespace["crm"][name] is obj for name, obj in held.items()
               if name not in ("r0001", "r0150"))  # fmt: skip


def test_a_late_watch_event_does_not_undo_the_operators_own_write() -> None:
    informer = Informer(
        cast(Kube, ListingKube()), CachedKind("PersonalDataStore"), None, 60,
        lambda *_: None, lambda *_: None,
    )  # fmt: skip
    informer.synced = True
    new = {"kind": "PersonalDataStore", "metadata": {"name": "a", "namespace": "n",
                                                     "resourceVersion": "12"}}
    old = {"kind": "PersonalDataStore", "metadata": {"name": "a", "namespace": "n",
                                                     "resourceVersion": "11"}}
    informer.store_written(new)
    informer._put(old, notify=True)
    assert informer.get("n", "a") == new


def test_cached_objects_lose_managed_fields_but_a_cronjob_keeps_who_changed_it() -> None:
    managed = [{"manager": "dataward", "time": "2026-01-01T00:00:00Z", "fieldsV1": {"f:x": {}}}]
    cronjob = slim("CronJob", {"metadata": {"name": "c", "managedFields": managed}, "spec": {}})
    assert cronjob["metadata"]["managedFields"] == [
        {"manager": "dataward", "time": "2026-01-01T00:00:00Z"}]
    role = slim("Role", {"metadata": {"name": "r", "managedFields": managed}, "rules": []})
    assert "managedFields" not in role["metadata"]
    full = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "purge", "env": [{"name": "X", "value": "y"}]}]},
        "status": {"containerStatuses": [
            {"name": "purge", "image": "i", "state": {"terminated": {"message": "{}"}}}]},
    }  # fmt: skip
    pod = slim("Pod", full)
    assert "spec" not in pod
    assert pod["status"] == {
        "containerStatuses": [{"name": "purge", "state": {"terminated": {"message": "{}"}}}]
    }
    # What it runs is kept as the digest a full read gives, and tells another spec apart.
    other = {**full, "spec": {"containers": [{"name": "purge", "env": []}]}}
    assert pod_runs(pod) == pod_runs(full) != pod_runs(other)


def test_a_cached_job_keeps_what_it_runs() -> None:
    job = {
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "purge", "image": "a"}]}}},
        "status": {"succeeded": 1},
    }
    cached = slim("Job", job)
    assert "spec" not in cached and cached["status"] == {"succeeded": 1}
    assert job_runs(cached) == job_runs(job) is not None
    forged = {**job, "spec": {"template": {"spec": {"containers": [{"name": "purge",
                                                                    "image": "busybox"}]}}}}
    assert job_runs(slim("Job", forged)) != job_runs(cached)
    # A Job another controller manages can be marked finished with no pod run.
    managed = {**job, "spec": {**job["spec"], "managedBy": "example.com/fake"}}
    assert job_runs(slim("Job", managed)) != job_runs(cached)


def _event_keys(kind: str, obj: dict[str, Any], caches: Caches, kube: ListingKube) -> Any:
    return keys_for_event(kind, None, obj, _reconciler(kube, caches))


def test_each_change_queues_the_stores_whose_verdicts_read_it() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    foreign = {"metadata": {"name": "allow-all", "namespace": "crm"}}
    assert _event_keys("NetworkPolicy", foreign, caches, kube) == ([KEY], [])
    owned = {"metadata": {"name": "x", "namespace": "crm", "ownerReferences": [
        {"apiVersion": "dataward.io/v1alpha1", "kind": "PersonalDataStore",
         "name": "support-inquiries"}]}}  # fmt: skip
    assert _event_keys("Role", owned, caches, kube) == ([KEY], [])
    job = {"metadata": {"name": "j", "namespace": "crm", "labels": {
        "app.kubernetes.io/managed-by": "dataward", "dataward.io/store": "support-inquiries"}}}
    assert _event_keys("Job", job, caches, kube) == ([KEY], [])
    assert _event_keys("ClusterRoleBinding", {"metadata": {"name": "b"}}, caches, kube) == (
        [KEY], [])
    store = caches.get("PersonalDataStore", *KEY)
    assert store is not None
    policy = store["spec"]["policy"]
    # A status write changes no policy's count of stores; a new store does.
    assert keys_for_event("PersonalDataStore", store, store, _reconciler(kube, caches)) == (
        [KEY], [])
    assert _event_keys("PersonalDataStore", store, caches, kube) == ([KEY], [policy])


def test_a_deleted_store_takes_its_metric_series_with_it() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    def series() -> list[dict[str, str]]:
        text = b"".join(exposition()).decode()
        return [s.labels for m in text_string_to_metric_families(text) for s in m.samples
                if (s.labels.get("namespace"), s.labels.get("store")) == KEY]  # fmt: skip

    assert any(s["type"] == "Ready" and s["status"] == "True" for s in series())
    assert any(s.labels.get("store") == KEY[1] for m in text_string_to_metric_families(
        b"".join(exposition()).decode()) for s in m.samples
        if m.name == "dataward_primary_key_age_seconds")  # fmt: skip
    kube.objects.pop(("PersonalDataStore", *KEY))
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    assert series() == []
    assert STORES.figures(*KEY) is None


def test_a_binding_finds_its_role_by_kind_namespace_and_name() -> None:
    roles = [
        {"kind": "Role", "metadata": {"name": "r", "namespace": "other"}, "rules": []},
        {"kind": "Role", "metadata": {"name": "r", "namespace": "crm"}, "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
        {"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": []},
    ]  # fmt: skip
    snapshot = RbacSnapshot.from_api([], roles)
    binding = ObservedBinding.from_api({"kind": "RoleBinding", "metadata": {
        "name": "b", "namespace": "crm"}, "roleRef": {"kind": "Role", "name": "r"}})
    role = snapshot.role_for(binding)
    assert role is not None and role.namespace == "crm" and role.rules
    cluster = ObservedBinding.from_api({"kind": "RoleBinding", "metadata": {
        "name": "b", "namespace": "crm"}, "roleRef": {"kind": "ClusterRole", "name": "r"}})
    found = snapshot.role_for(cluster)
    assert found is not None and found.kind == "ClusterRole"
    missing = ObservedBinding.from_api({"kind": "RoleBinding", "metadata": {
        "name": "b", "namespace": "crm"}, "roleRef": {"kind": "Role", "name": "nope"}})
    assert snapshot.role_for(missing) is None


def test_a_stale_cached_store_never_makes_a_second_key_ring() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    informer = caches.informers[("PersonalDataStore", None)]
    before = copy.deepcopy(informer.get(*KEY))  # no ring recorded yet
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    ring = "dataward-support-inquiries-keyring"
    kube.objects.pop(("Secret", "crm", ring))  # deleted out of band
    with informer.lock:
        informer.by_namespace["crm"][KEY[1]] = before  # a cache that has not caught up
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert ("Secret", "crm", ring) not in kube.objects, "a new ring could not decrypt the data"
    assert conditions(kube)["EncryptionKeyReady"][0] == "False"


def test_the_echo_of_the_operators_own_write_queues_nothing() -> None:
    events: list[tuple[str, Any, Any]] = []
    informer = Informer(
        cast(Kube, ListingKube()), CachedKind("PersonalDataStore"), None, 60,
        lambda *event: events.append(event), lambda *_: None,
    )  # fmt: skip
    informer.synced = True
    written = {"kind": "PersonalDataStore", "metadata": {"name": "a", "namespace": "n",
                                                         "resourceVersion": "12"}}
    informer.store_written(written)
    informer._put(copy.deepcopy(written), notify=True)  # the watch event of that write
    assert events == []
    changed = copy.deepcopy(written)
    changed["metadata"]["resourceVersion"] = "13"  # someone else's change
    informer._put(changed, notify=True)
    assert [new for _, _, new in events] == [changed]


def test_a_policy_status_write_queues_no_store_but_a_spec_change_queues_its_stores() -> None:
    kube = _cluster()
    caches = _caches(kube)
    _relist(caches)
    reconciler = _reconciler(kube, caches)
    policy = copy.deepcopy(caches.get("PrivacyPolicy", None, samples.POLICY["metadata"]["name"]))
    assert policy is not None
    name = policy["metadata"]["name"]
    policy["metadata"]["generation"] = 1
    counted = {**policy, "status": {"stores": 1000}}  # the count of stores, written by us
    assert keys_for_event("PrivacyPolicy", policy, counted, reconciler) == ([], [name])
    edited = {**policy, "metadata": {**policy["metadata"], "generation": 2}}
    assert keys_for_event("PrivacyPolicy", policy, edited, reconciler) == ([KEY], [name])


def test_without_the_request_crd_the_stores_are_still_served() -> None:
    """`helm upgrade` installs no new CRD: the request kind is dropped, the rest still lists."""
    kube = _cluster()
    caches = _caches(kube)
    caches.drop("DataSubjectRequest")
    _relist(caches)
    assert caches.listed()
    assert not caches.cached("DataSubjectRequest")
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    assert conditions(kube)["PolicyCompliant"][0] == "True"
