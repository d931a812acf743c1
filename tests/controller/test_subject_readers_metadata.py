"""The readers' grant asks whose each Secret is from its metadata alone, never its data.

A request's key Secret holds the person's private key and each export Secret their sealed
rows; whether spec.readers are granted one is a question about its owner references. Every
pass read each of them whole (GET, data and all, uncached). Now the Secrets' metadata-only
cache answers while it is synced (it keeps owner references for this), and otherwise a GET
of PartialObjectMetadata by name (`Kube.get_metadata`). A read that fails is Unknown: the
pass stops (retried), nothing is revoked and the request's status is not written from it.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube, KubeError
from dataward.controller.operator import CACHED_KINDS, SECRET_KINDS
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from dataward.model.store import parse_store
from dataward.render.names import child_name, stable_hash
from dataward.subjects.request import parse_request
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube
from tests.controller.test_subjects import KEY, KEYPAIR, T0, sample_requests

KEY_SECRET = "dataward-case-4711-dsr-key"
EXPORTS = {
    child_name("case-4711", f"dsr-export-{stable_hash(f'{ns}/{name}')}")
    for ns, name in (("privacy", "tickets"), ("crm", "orders"))
}
READERS_ROLE = ("Role", "privacy", child_name("case-4711", "dsr-readers"))


def _requests(kube: FakeKube, caches: Caches | None = None) -> SubjectRequests:
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: KEYPAIR)
    return SubjectRequests(cast(Kube, kube), settings, caches)


def _caches(kube: ListingKube) -> Caches:
    return Caches(cast(Kube, kube), (*CACHED_KINDS, *SECRET_KINDS), (), 3600,
                  lambda kind, old, new: None, lambda kind, namespace: None)  # fmt: skip


def _relist(caches: Caches) -> None:
    for informer in caches.informers.values():
        informer._relist()


def _whole_secret_reads(kube: FakeKube) -> list[str]:
    """The Secrets read whole; not the identifier, whose presence alone is read (`exists`,
    metadata only, which FakeKube records as a get)."""
    return [
        name
        for verb, kind, name in kube.calls
        if verb == "get" and kind == "Secret" and name != "case-4711-identifier"
    ]


def _granted(kube: FakeKube) -> set[str]:
    role = kube.objects[READERS_ROLE]
    return {name for rule in role["rules"] for name in rule.get("resourceNames") or ()}


def test_the_grant_reads_no_secret_whole() -> None:
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)  # the key, the exports, the Jobs
    kube.calls.clear()
    _requests(kube).reconcile(KEY)
    assert _granted(kube) == {KEY_SECRET, *EXPORTS}
    # Nor does the public key the Jobs seal to (test_subject_key_metadata.py).
    assert _whole_secret_reads(kube) == []
    asked = {name for verb, kind, name in kube.calls if verb == "get_metadata"}
    assert asked == {KEY_SECRET, *EXPORTS}


def _settled_with_caches() -> tuple[ListingKube, Caches]:
    kube = cast(ListingKube, sample_requests(ListingKube()))
    caches = _caches(kube)
    _relist(caches)
    _requests(kube, caches).reconcile(KEY)
    _relist(caches)  # what the watches would have delivered
    kube.calls.clear()
    return kube, caches


def test_with_the_secrets_cache_synced_the_grant_reads_no_secret_from_the_api() -> None:
    kube, caches = _settled_with_caches()
    _requests(kube, caches).reconcile(KEY)
    assert _granted(kube) == {KEY_SECRET, *EXPORTS}
    assert _whole_secret_reads(kube) == []
    assert not [c for c in kube.calls if c[0] == "get_metadata"]
    # The metadata cache holds owners, never data.
    cached = caches.get("Secret", "privacy", KEY_SECRET)
    assert cached is not None and "data" not in cached
    assert cached["metadata"]["ownerReferences"][0]["uid"] == "req-uid-1"


def test_a_secrets_cache_that_is_not_synced_grants_and_revokes_nothing() -> None:
    kube, caches = _settled_with_caches()
    before = copy.deepcopy(kube.objects[READERS_ROLE])
    caches.informers[("Secret", None)]._fail("HTTP 500 Internal Server Error")
    requests = _requests(kube, caches)
    parsed = parse_request(kube.objects[("DataSubjectRequest", *KEY)])
    stores = [parse_store(kube.objects[("PersonalDataStore", ns, name)])
              for ns, name in (("crm", "orders"), ("privacy", "tickets"))]  # fmt: skip
    with pytest.raises(KubeError):  # Unknown, never "not the request's"
        requests._readers(parsed, stores, True, {})
    assert kube.objects[READERS_ROLE] == before
    assert kube.writes() == [] and _whole_secret_reads(kube) == []
    # A pass meanwhile stops at the identifier's presence, Unknown too (`_precondition`).
    requests.reconcile(KEY)
    assert kube.objects[READERS_ROLE] == before


def test_a_cached_secret_replaced_by_someone_elses_is_no_longer_granted() -> None:
    kube, caches = _settled_with_caches()
    export = sorted(EXPORTS)[0]
    planted = copy.deepcopy(kube.objects[("Secret", "privacy", export)])
    planted["metadata"].pop("ownerReferences")
    del kube.objects[("Secret", "privacy", export)]
    kube._store(planted)
    _relist(caches)
    _requests(kube, caches).reconcile(KEY)
    assert _granted(kube) == {KEY_SECRET, *EXPORTS} - {export}
    assert not [c for c in kube.calls if c[0] == "get_metadata"]


def test_the_requests_own_secrets_are_granted_on_the_pass_that_makes_them_with_caches() -> None:
    kube = cast(ListingKube, sample_requests(ListingKube()))
    caches = _caches(kube)
    _relist(caches)  # no key or export Secret yet; no watch event before the grant
    _requests(kube, caches).reconcile(KEY)
    assert _granted(kube) == {KEY_SECRET, *EXPORTS}


class FailingReads(ListingKube):
    """Fails every read of the Secrets `failing` (whole or metadata) with `status`."""

    def __init__(self, failing: set[str], status: int) -> None:
        super().__init__()
        self.failing, self.status = failing, status

    def _check(self, kind: str, name: str) -> None:
        if kind == "Secret" and name in self.failing:
            raise KubeError(self.status, "Internal Server Error", f"get {kind}")

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._check(kind, name)
        return super().get(kind, namespace, name)

    def get_metadata(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._check(kind, name)
        return super().get_metadata(kind, namespace, name)


def test_a_failed_read_of_a_granted_secret_revokes_nothing_and_writes_no_status() -> None:
    kube = cast(FailingReads, sample_requests(FailingReads(set(), 500)))
    _requests(kube).reconcile(KEY)
    before_role = copy.deepcopy(kube.objects[READERS_ROLE])
    before_status = copy.deepcopy(kube.objects[("DataSubjectRequest", *KEY)].get("status"))
    assert _granted(kube) == {KEY_SECRET, *EXPORTS}
    for status in (403, 500, 0):
        kube.failing, kube.status = set(EXPORTS), status
        kube.calls.clear()
        outcome = _requests(kube).reconcile_logged(KEY)
        assert not outcome.ok  # retried: Unknown, never "not the request's"
        assert kube.objects[READERS_ROLE] == before_role
        assert kube.objects[("DataSubjectRequest", *KEY)].get("status") == before_status
        assert kube.writes() == []
