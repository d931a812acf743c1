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
import threading
from datetime import datetime, timedelta
from typing import Any, cast

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.reconcile import KEY_RING_CACHE
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube
from tests.controller.test_secret_caches import ForbiddingKube
from tests.controller.test_subject_readers_metadata import EXPORTS, KEY_SECRET, READERS_ROLE
from tests.controller.test_subjects import KEY, KEYPAIR, T0, finish, sample_requests, status


def _requests(kube: ListingKube, caches: Caches) -> SubjectRequests:
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: KEYPAIR)
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
        if not informer.forbidden:  # a kind it may not list is read by name
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


# Where Secrets are not watched (the chart's watchSecrets: false, or their LIST refused) no
# Secret event comes: a succeeded request whose readers are granted Secrets is looked at again
# every RECHECK, so a Secret replaced under a granted name is withdrawn that soon; it was left
# to the hourly resync (`reconcile` answered no time to look at it again).


def _succeeded(kube: FakeKube, caches: Caches | None = None) -> datetime | None:
    """Answer the request (both stores' Jobs finish); when its last pass is due again."""
    requests = SubjectRequests(cast(Kube, kube), SubjectSettings(
        clock=lambda: T0, keypair=lambda: KEYPAIR), caches)  # fmt: skip
    requests.reconcile(KEY)
    for (kind, namespace, name) in list(kube.objects):
        if kind == "Job":
            finish(kube, str(namespace), name, {"outcome": "Succeeded", "rowsExported": 1})
    if caches is not None:
        _relist(caches)
    due = requests.reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    return due


def test_a_succeeded_request_granting_unwatched_secrets_is_looked_at_again_soon() -> None:
    kube = sample_requests(FakeKube())  # no caches: every Secret read by name
    due = _succeeded(kube)
    assert due is not None and due <= T0 + timedelta(minutes=1)
    # Forbidden to list Secrets: the same.
    kube = cast(ListingKube, sample_requests(ForbiddingKube()))
    caches = Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600,
                    lambda kind, old, new: None, lambda kind, namespace: None)  # fmt: skip
    stop = threading.Event()
    for key, informer in caches.informers.items():
        if key[0] in (KEY_RING_CACHE, "Secret"):
            informer.run(stop)  # returns on the 403: read by name from now on
        else:
            informer._relist()
    assert not caches.watching("Secret", "privacy")
    due = _succeeded(kube, caches)
    assert due is not None and due <= T0 + timedelta(minutes=1)


def test_a_succeeded_request_whose_secrets_are_watched_waits_for_their_events() -> None:
    kube = cast(ListingKube, sample_requests(ListingKube()))
    caches = Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600,
                    lambda kind, old, new: None, lambda kind, namespace: None)  # fmt: skip
    _relist(caches)
    assert _succeeded(kube, caches) is None


def test_a_succeeded_request_that_grants_no_one_is_not_looked_at_again() -> None:
    kube = sample_requests(FakeKube())
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"].pop("readers")  # no binding: the Role grants no one
    assert _succeeded(kube) is None
    kube = sample_requests(FakeKube())
    kube.objects[("DataSubjectRequest", *KEY)]["spec"]["type"] = "erasure"
    assert _succeeded(kube) is None
