"""A write's answer and the watch race: the cache never holds what the server no longer has.

The operator stores the answer to its own write (`Informer.store_written`) and drops what it
deleted (`store_deleted`), so that its next read is not older than its own act. The watch
runs in another thread: its events for the same object can come before the writer thread
gets there. An answer the watch has already gone past (the object deleted since, or
re-listed without it) must not be stored, or the cache holds an object the server does not
have, and every verdict reading it says the control is in force until the next re-list
(hours). A delete must not drop a newer object of the same name the watch has delivered.
"""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any, cast

from dataward.controller.cache import CachedKind, Caches, Informer
from dataward.controller.kube import Kube
from dataward.controller.operator import CACHED_KINDS
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.test_cache import ListingKube
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster


def _binding(version: int, subject: str = "crm-api") -> dict[str, Any]:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "crm", "resourceVersion": str(version)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": subject}],
    }


def _informer(kube: ListingKube | None = None) -> Informer:
    informer = Informer(cast(Kube, kube or ListingKube()), CachedKind("RoleBinding"), None, 60,
                        lambda *_: None, lambda *_: None)  # fmt: skip
    informer.synced = True
    return informer


def test_an_answer_the_watch_has_passed_does_not_bring_back_a_deleted_object() -> None:
    informer = _informer()
    informer._apply("ADDED", _binding(10))  # the watch: the operator's create
    informer._apply("DELETED", _binding(11))  # and someone's delete right after
    informer.store_written(_binding(10))  # the writer thread stores the create's answer
    assert informer.get("crm", "b") is None


def test_an_answer_older_than_the_list_that_lacks_the_object_is_not_stored() -> None:
    class Listing(ListingKube):
        def _call(self, *args: Any, **kwargs: Any) -> Any:
            return {"metadata": {"resourceVersion": "20"}, "items": []}

    informer = _informer(Listing())
    informer._relist()  # listed at 20: the object (written at 10) is gone by then
    informer.store_written(_binding(10))
    assert informer.get("crm", "b") is None


def test_an_answer_the_watch_has_not_reached_is_stored() -> None:
    informer = _informer()
    informer._apply("ADDED", _binding(10, "someone"))
    informer.store_written(_binding(12))  # the operator's update: its event is still to come
    assert informer.get("crm", "b") == _binding(12)


def test_the_operators_delete_does_not_drop_an_object_recreated_since() -> None:
    informer = _informer()
    informer._apply("ADDED", _binding(10))
    # The operator deletes version 10; before its writer thread gets back, the watch has
    # delivered the delete and someone's new binding of the same name.
    informer._apply("DELETED", _binding(11))
    informer._apply("ADDED", _binding(12, "mallory"))
    informer.store_deleted("crm", "b", "10")
    assert informer.get("crm", "b") == _binding(12, "mallory")
    informer.store_deleted("crm", "b", "12")  # what it deleted is what it held: gone
    assert informer.get("crm", "b") is None


def test_an_older_deleted_event_does_not_drop_a_newer_object() -> None:
    informer = _informer()
    informer._apply("ADDED", _binding(10))
    informer.store_deleted("crm", "b", "10")
    informer.store_written(_binding(12, "new"))  # re-created by the operator: its answer
    informer._apply("DELETED", _binding(11))  # the old one's DELETED event, late
    assert informer.get("crm", "b") == _binding(12, "new")


class _DeletingAfterCreate(ListingKube):
    """Someone deletes the store's NetworkPolicy as soon as the operator creates it, and the
    watch delivers both events before the operator's writer thread stores the answer."""

    caches: Caches
    racing = True

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        answer = super().create(obj)
        if self.racing and obj["kind"] == "NetworkPolicy":
            informer = self.caches._informer("NetworkPolicy", "crm")
            informer._apply("ADDED", copy.deepcopy(answer))
            self.objects.pop(("NetworkPolicy", "crm", obj["metadata"]["name"]))
            self.version += 1
            gone = copy.deepcopy(answer)
            gone["metadata"]["resourceVersion"] = str(self.version)
            informer._apply("DELETED", gone)
        return answer


def _served(kube: ListingKube) -> tuple[Caches, Reconciler]:
    caches = Caches(cast(Kube, kube), CACHED_KINDS, (), 3600, lambda *_: None,
                    lambda *_: None)  # fmt: skip
    kube.caches = caches  # type: ignore[attr-defined]
    for informer in caches.informers.values():
        informer._relist()
    return caches, Reconciler(cast(Kube, kube), ReconcileSettings(), (), caches)


def test_a_network_policy_deleted_as_it_is_created_is_not_reported_in_force() -> None:
    kube = sample_cluster(_DeletingAfterCreate())
    _, reconciler = _served(kube)
    reconciler.reconcile(KEY, now=T0)
    kube.racing = False
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))  # the pass the event queued
    assert any(kind == "NetworkPolicy" for kind, _, _ in kube.objects), "not recreated"
    assert conditions(kube)["NetworkIsolated"][0] == "True"


def _mallorys_binding(namespace: str | None, name: str) -> dict[str, Any]:
    """A binding someone else makes under the readers' binding's name: another user, bound
    to a ClusterRole that reads Secrets (`_with_secret_reader`)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "secret-reader"},
        "subjects": [{"kind": "User", "name": "mallory"}],
    }  # fmt: skip


def _with_secret_reader(kube: ListingKube) -> tuple[Caches, Reconciler]:
    """The sample cluster with a ClusterRole that reads Secrets, served and converged."""
    kube._store({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "secret-reader"},
                 "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
    caches, reconciler = _served(kube)
    reconciler.reconcile(KEY, now=T0)
    return caches, reconciler


def _readers_removed(kube: ListingKube, caches: Caches) -> None:
    """The store lists no readers any more (its readers' binding is to go); the watch
    delivers the edit."""
    store = next(obj for (kind, _, _), obj in kube.objects.items() if kind == "PersonalDataStore")
    store["spec"]["access"]["readers"] = []
    store["metadata"]["generation"] = int(store["metadata"].get("generation") or 1) + 1
    kube._store(store)
    caches._informer("PersonalDataStore", "crm")._apply("MODIFIED", copy.deepcopy(store))


class _RecreatingAfterDelete(ListingKube):
    """Someone re-creates the readers' RoleBinding, binding another user to a role that reads
    Secrets, as soon as the operator deletes it; the watch delivers both first."""

    caches: Caches
    racing = True

    def delete(self, kind: str, namespace: str | None, name: str, *args: Any,
               **kwargs: Any) -> Any:  # fmt: skip
        answer = super().delete(kind, namespace, name, *args, **kwargs)
        if self.racing and kind == "RoleBinding" and name.endswith("-readers"):
            informer = self.caches._informer("RoleBinding", namespace)
            self.version += 1
            gone = copy.deepcopy(answer)
            gone["metadata"]["resourceVersion"] = str(self.version)
            informer._apply("DELETED", gone)
            foreign = self._store(_mallorys_binding(namespace, name))
            informer._apply("ADDED", copy.deepcopy(foreign))
        return answer


def test_a_binding_recreated_as_the_operator_deletes_it_is_still_seen() -> None:
    kube = sample_cluster(_RecreatingAfterDelete())
    caches, reconciler = _with_secret_reader(kube)
    assert conditions(kube)["AccessRestricted"][0] == "True"
    _readers_removed(kube, caches)
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    kube.racing = False
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))  # the pass the event queued
    assert conditions(kube)["AccessRestricted"][0] != "True"
    assert conditions(kube)["Ready"][0] != "True"


class _ReplacingBeforeDelete(ListingKube):
    """Between the operator's read of its readers' RoleBinding and its DELETE, someone
    deletes it and makes their own of the same name (another user, a role that reads
    Secrets)."""

    racing = True

    def delete(self, kind: str, namespace: str | None, name: str, *args: Any,
               **kwargs: Any) -> Any:  # fmt: skip
        if self.racing and kind == "RoleBinding" and name.endswith("-readers"):
            self.racing = False
            self.objects.pop((kind, namespace, name))
            self._store(_mallorys_binding(namespace, name))
        return super().delete(kind, namespace, name, *args, **kwargs)


def test_the_operator_never_deletes_a_binding_made_again_since_it_read_its_own() -> None:
    kube = sample_cluster(_ReplacingBeforeDelete())
    caches, reconciler = _with_secret_reader(kube)
    _readers_removed(kube, caches)
    outcome = reconciler.reconcile_logged(KEY)  # reads its binding; the DELETE finds another
    assert not outcome.ok  # the DELETE's precondition failed: the queue retries
    foreign = [obj for (kind, _, name), obj in kube.objects.items()
               if kind == "RoleBinding" and name.endswith("-readers")]  # fmt: skip
    assert [b["subjects"] for b in foreign] == [[{"kind": "User", "name": "mallory"}]]
    assert conditions(kube)["AccessRestricted"][0] != "True"


def test_a_delete_with_a_version_sends_it_as_a_precondition() -> None:
    sent: list[Any] = []

    class Answering:
        server = "https://api"
        pool = None

        def __init__(self) -> None:
            self.pool = self

        def headers(self) -> dict[str, str]:
            return {}

        def request(self, method: str, url: str, body: Any = None, **kwargs: Any) -> Any:
            sent.append((method, url, body))

            class Response:
                status, reason, headers = 200, "OK", {}
                data = b'{"kind":"Status","status":"Success"}'

            return Response()

    Kube(Answering()).delete("RoleBinding", "crm", "b", version="41")  # type: ignore[arg-type]
    [(method, url, body)] = sent
    assert (method, url) == ("DELETE",
                             "https://api/apis/rbac.authorization.k8s.io/v1/namespaces/crm/"
                             "rolebindings/b")  # fmt: skip
    assert json.loads(body) == {"preconditions": {"resourceVersion": "41"}}
