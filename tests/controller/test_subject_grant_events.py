"""A Secret the readers' Role grants is withdrawn on that Secret's watch event, not on a timer.

A request's readers get `get` on its key and export Secrets by name. When one of them is
deleted and another object is made under its name (by someone else, or the operator's own
Secret of another request whose cut and hashed name is this one), the next pass of the
request takes the name out of its Role (test_subject_readers_grant.py,
test_subject_readers_metadata.py). But a Secret's watch event queued only the requests naming
it as their identifier: a request that had succeeded was not looked at again until the hourly
resync, and for up to an hour its readers could read a Secret that was not the request's.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from tests.controller.test_cache import ListingKube
from tests.controller.test_subject_readers_metadata import EXPORTS, KEY_SECRET, READERS_ROLE
from tests.controller.test_subjects import KEY, T0, sample_requests


def _requests(kube: ListingKube, caches: Caches) -> SubjectRequests:
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: ("PRIVATE", "PUBLIC"))
    return SubjectRequests(cast(Kube, kube), settings, caches)


def _settled(events: list[tuple[str, Any, Any]]) -> tuple[ListingKube, Caches]:
    """The request reconciled once with every cache listed before and after (its Role grants
    the key and both exports), and the events of the caches recorded from then on."""
    kube = cast(ListingKube, sample_requests(ListingKube()))
    recording = [False]

    def on_event(kind: str, old: Any, new: Any) -> None:
        if recording[0]:
            events.append((kind, old, new))

    caches = Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600, on_event,
                    lambda kind, namespace: None)  # fmt: skip
    _relist(caches)
    _requests(kube, caches).reconcile(KEY)
    _relist(caches)
    recording[0] = True
    kube.calls.clear()
    return kube, caches


def _relist(caches: Caches) -> None:
    for informer in caches.informers.values():
        informer._relist()


def _granted(kube: ListingKube) -> set[str]:
    role = kube.objects[READERS_ROLE]
    return {name for rule in role["rules"] for name in rule.get("resourceNames") or ()}


def _queued(requests: SubjectRequests, events: list[tuple[str, Any, Any]]) -> set[Any]:
    """What the operator's `on_event` queues for the Secrets' events (their names)."""
    out = set()
    for kind, old, new in events:
        if kind == "Secret":
            meta = (new if new is not None else old)["metadata"]
            out.update(requests.keys_for_secret(meta["namespace"], meta["name"]))
    return out


def _replace(kube: ListingKube, name: str) -> None:
    """Delete the request's Secret `name` and make another under its name (no owner)."""
    planted = copy.deepcopy(kube.objects[("Secret", "privacy", name)])
    planted["metadata"].pop("ownerReferences")
    del kube.objects[("Secret", "privacy", name)]
    kube._store(planted)


def test_a_granted_secret_replaced_under_its_name_queues_the_request_at_once() -> None:
    events: list[tuple[str, Any, Any]] = []
    kube, caches = _settled(events)
    assert _granted(kube) == {KEY_SECRET, *EXPORTS}
    export = sorted(EXPORTS)[0]
    _replace(kube, export)
    _relist(caches)  # what the watch delivers: the Secret's event, no request's
    assert [kind for kind, _, _ in events] == ["Secret"]
    kube.calls.clear()
    requests = _requests(kube, caches)
    assert _queued(requests, events) == {KEY}
    assert kube.calls == []  # from the caches: a Secret event costs no API request
    requests.reconcile(KEY)  # the queued pass takes the name out of the Role
    assert _granted(kube) == {KEY_SECRET, *EXPORTS} - {export}


def test_a_granted_secret_deleted_queues_the_request() -> None:
    events: list[tuple[str, Any, Any]] = []
    kube, caches = _settled(events)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _relist(caches)
    assert _queued(_requests(kube, caches), events) == {KEY}


def test_a_secret_no_role_grants_queues_no_request() -> None:
    events: list[tuple[str, Any, Any]] = []
    kube, caches = _settled(events)
    for name in ("helm-release", "dataward-case-4711-dsr-export-00000000", "dataward-case-4711"):
        kube._store({"apiVersion": "v1", "kind": "Secret",
                     "metadata": {"name": name, "namespace": "privacy"}})  # fmt: skip
    # The same names in a namespace the request's Role does not reach.
    kube._store({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": KEY_SECRET, "namespace": "crm"}})  # fmt: skip
    _relist(caches)
    assert len(events) == 4
    assert _queued(_requests(kube, caches), events) == set()


def test_a_role_cache_not_synced_queues_the_access_requests_of_the_namespace() -> None:
    events: list[tuple[str, Any, Any]] = []
    kube, caches = _settled(events)
    _replace(kube, KEY_SECRET)
    informer = caches.informers[("Secret", None)]
    informer._relist()
    caches.informers[("Role", None)]._fail("HTTP 500 Internal Server Error")
    # Whether the Role grants it is Unknown: the request is queued (its pass fails on the
    # same cache and is retried until it reads), never left to the hourly resync.
    assert _queued(_requests(kube, caches), events) == {KEY}
