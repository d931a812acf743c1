"""An access request's public key is read from its key Secret's metadata, never its data.

The key Secret holds the person's private key and the public key its Jobs seal the export
to. Every pass read it whole (GET, private key included, uncached) only to take the public
key. The operator now writes the public key on the Secret as an annotation when it makes it
(it is not secret) and reads it with the Secret's metadata: the Secrets' metadata-only cache
while it is watched (which keeps that annotation), else PartialObjectMetadata by name. A
key Secret made by an earlier version has no annotation: it is read whole once, and
annotated at the resourceVersion read. A Secret of the name that is not the request's is
never read whole or written; a public key that is not an X25519 PEM key fails the stores
(KeySecretInvalid), it is not sealed to.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.controller.cache import Caches, metadata_only
from dataward.controller.kube import LAST_APPLIED
from dataward.render.subject_jobs import owner_reference
from dataward.subjects.export import public_key_fingerprint
from dataward.subjects.request import parse_request
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube
from tests.controller.test_subject_readers_metadata import _caches, _relist, _requests
from tests.controller.test_subjects import (
    ANNOTATION,
    KEY,
    KEY_SECRET,
    PUBLIC,
    jobs,
    pem_pair,
    sample_requests,
    sealed_to,
    status,
)
from tests.subjects.test_subjects_unit import _pem_of_unknown_algorithm


def _whole_key_reads(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [c for c in kube.calls if c == ("get", "Secret", KEY_SECRET)]


def _key_writes(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [w for w in kube.writes() if w[1:] == ("Secret", KEY_SECRET)]




def _key_secret(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("Secret", "privacy", KEY_SECRET)]


def test_a_steady_pass_never_reads_the_key_secret_whole() -> None:
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)  # makes the key pair, the exports, the Jobs
    assert set(sealed_to(kube).values()) == {PUBLIC}
    kube.calls.clear()
    _requests(kube).reconcile(KEY)
    assert _whole_key_reads(kube) == []
    assert ("get_metadata", "Secret", KEY_SECRET) in kube.calls
    assert set(sealed_to(kube).values()) == {PUBLIC}


def test_the_key_secret_is_made_with_its_public_key_annotated() -> None:
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)
    secret = _key_secret(kube)
    assert secret["metadata"]["annotations"][ANNOTATION] == PUBLIC
    # The data as before: readers take the private key from it.
    assert base64.b64decode(secret["data"]["public.key"]).decode() == PUBLIC


def test_with_the_secrets_cache_synced_a_steady_pass_reads_no_key_secret_from_the_api() -> None:
    kube = cast(ListingKube, sample_requests(ListingKube()))
    caches = _caches(kube)
    _relist(caches)
    _requests(kube, caches).reconcile(KEY)
    _relist(caches)  # what the watches would have delivered
    kube.calls.clear()
    _requests(kube, caches).reconcile(KEY)
    assert [c for c in kube.calls if c[1:] == ("Secret", KEY_SECRET)] == []
    assert set(sealed_to(kube).values()) == {PUBLIC}
    cached = cast(Caches, caches).get("Secret", "privacy", KEY_SECRET)
    assert cached is not None and "data" not in cached
    assert cached["metadata"]["annotations"] == {ANNOTATION: PUBLIC}


def test_the_metadata_cache_keeps_the_public_key_annotation_alone() -> None:
    secret = {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": KEY_SECRET, "namespace": "privacy", "resourceVersion": "3",
                     "annotations": {ANNOTATION: PUBLIC, LAST_APPLIED: '{"data": "x"}',
                                     "team": "privacy"}},
        "data": {"private.key": "cHJpdmF0ZQ=="},
    }  # fmt: skip
    kept = metadata_only(secret)
    assert kept == {"metadata": {"name": KEY_SECRET, "namespace": "privacy", "resourceVersion": "3",
                                 "annotations": {ANNOTATION: PUBLIC}}}  # fmt: skip
    del secret["metadata"]["annotations"][ANNOTATION]
    assert "annotations" not in metadata_only(secret)["metadata"]


def _earlier_key_secret(kube: FakeKube, public: str, *, owned: bool = True) -> None:
    """The key Secret as an earlier version made it: data alone, no annotation."""
    request = parse_request(kube.objects[("DataSubjectRequest", *KEY)])
    metadata: dict[str, Any] = {"name": KEY_SECRET, "namespace": "privacy"}
    if owned:
        metadata["ownerReferences"] = [owner_reference(request)]
    kube._store({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata,
                 "data": {"private.key": base64.b64encode(b"EARLIER-PRIVATE").decode(),
                          "public.key": base64.b64encode(public.encode()).decode()}})  # fmt: skip


def _ran_before_fingerprints(kube: FakeKube, public: str) -> dict[Any, Any]:
    """The request as an earlier version left it: its Jobs made (status.runs records them),
    no status.keyFingerprint, and its key Secret holding `public` as that version made it
    (`_earlier_key_secret`). Its Jobs, as they are."""
    _requests(kube).reconcile(KEY)
    assert jobs(kube)
    kube.objects[("DataSubjectRequest", *KEY)]["status"].pop("keyFingerprint")
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _earlier_key_secret(kube, public)
    kube.calls.clear()
    return copy.deepcopy(jobs(kube))


def test_a_key_secret_of_an_earlier_version_is_read_whole_once_and_annotated() -> None:
    # Its runs were given its public key: it is the request's key, taken from its data once
    # and recorded (status.keyFingerprint).
    kube = sample_requests(FakeKube())
    earlier = PUBLIC
    _ran_before_fingerprints(kube, earlier)
    version = _key_secret(kube)["metadata"]["resourceVersion"]
    data = copy.deepcopy(_key_secret(kube)["data"])
    _requests(kube).reconcile(KEY)
    assert _whole_key_reads(kube) == [("get", "Secret", KEY_SECRET)]
    assert _key_writes(kube) == [("patch", "Secret", KEY_SECRET)]
    assert _key_secret(kube)["metadata"]["annotations"] == {ANNOTATION: earlier}
    assert _key_secret(kube)["metadata"]["resourceVersion"] != version
    assert _key_secret(kube)["data"] == data  # its key pair is kept, not made again
    assert set(sealed_to(kube).values()) == {earlier}
    assert status(kube)["keyFingerprint"] == public_key_fingerprint(earlier)
    kube.calls.clear()
    _requests(kube).reconcile(KEY)
    assert _whole_key_reads(kube) == [] and _key_writes(kube) == []
    assert set(sealed_to(kube).values()) == {earlier}


class ChangedAfterTheRead(FakeKube):
    """The key Secret is changed (its resourceVersion bumped) right after it is read whole."""

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = super().get(kind, namespace, name)
        if (kind, name) == ("Secret", KEY_SECRET) and found is not None:
            self._store(copy.deepcopy(self.objects[(kind, namespace, name)]))
        return found


def test_the_annotation_is_written_only_on_the_version_read() -> None:
    kube = sample_requests(ChangedAfterTheRead())
    before = _ran_before_fingerprints(kube, PUBLIC)
    outcome = _requests(kube).reconcile_logged(KEY)
    assert not outcome.ok  # the patch was refused (409): retried, never written over
    assert "annotations" not in _key_secret(kube)["metadata"]
    assert jobs(kube).keys() == before.keys()
    assert "keyFingerprint" not in status(kube)


def test_a_planted_key_secret_is_neither_read_whole_nor_annotated() -> None:
    """Someone else's Secret under the key Secret's name (the request's labels do not make
    it the request's): its metadata shows no controller reference to the request."""
    kube = sample_requests(FakeKube())
    _, mallory = pem_pair(66)
    _earlier_key_secret(kube, mallory, owned=False)
    planted = copy.deepcopy(_key_secret(kube))
    _requests(kube).reconcile(KEY)
    assert _whole_key_reads(kube) == [] and _key_writes(kube) == []
    assert _key_secret(kube) == planted
    assert jobs(kube) == {}
    assert {(s["phase"], s["reason"]) for s in status(kube)["stores"]} == {
        ("Failed", "ChildNotOurs")}


def _ed25519_pem() -> str:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip


GARBLED = {
    "text": "not-a-key-4711",
    "empty": "",
    "ed25519": _ed25519_pem(),  # a PEM public key of another type
    "raw-32": "k" * 32,  # what `load_public_key` takes as raw bytes; never what we write
    "cut": PUBLIC[: len(PUBLIC) // 2],
    "unknown-algorithm": _pem_of_unknown_algorithm(b"PUBLIC KEY").decode(),
}


@pytest.mark.parametrize("value", GARBLED.values(), ids=GARBLED.keys())
def test_a_garbled_public_key_annotation_fails_the_stores_and_is_not_sealed_to(
    value: str,
) -> None:
    # A request of an earlier version (no fingerprint recorded) whose runs were made: its
    # key Secret's public key would be recorded as found, and is not a key.
    kube = sample_requests(FakeKube())
    before = _ran_before_fingerprints(kube, PUBLIC)
    _key_secret(kube)["metadata"]["annotations"] = {ANNOTATION: value}
    for _ in range(2):  # the same failure each pass: no exception, no retry loop
        kube.calls.clear()
        outcome = _requests(kube).reconcile_logged(KEY)
        assert outcome.ok
        entries = status(kube)["stores"]
        assert {(s["phase"], s["reason"]) for s in entries} == {("Failed", "KeySecretInvalid")}
        assert all(KEY_SECRET in s["message"] for s in entries)
        assert jobs(kube) == before
        assert "keyFingerprint" not in status(kube)
        # Neither read whole (its data is not the operator's to repair from) nor written.
        assert _whole_key_reads(kube) == [] and _key_writes(kube) == []
    if value:
        assert value not in str(status(kube))


def test_an_earlier_key_secret_with_a_garbled_public_key_fails_the_stores() -> None:
    kube = sample_requests(FakeKube())
    before = _ran_before_fingerprints(kube, "not-a-key-4711")
    outcome = _requests(kube).reconcile_logged(KEY)
    assert outcome.ok
    entries = status(kube)["stores"]
    assert {(s["phase"], s["reason"]) for s in entries} == {("Failed", "KeySecretInvalid")}
    assert _key_writes(kube) == [] and jobs(kube) == before
    assert "not-a-key-4711" not in str(status(kube))


def test_the_finalizer_tells_the_requests_runs_by_the_key_secrets_metadata() -> None:
    """The request withdrawn: its access runs are told by the key they seal to. The finalizer
    read the key Secret whole (private key included) for it; it takes the annotation."""
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)
    assert set(sealed_to(kube).values()) == {PUBLIC} and jobs(kube)
    kube.calls.clear()
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    _requests(kube).reconcile(KEY)
    assert _whole_key_reads(kube) == []
    assert not jobs(kube), "the request's runs outlived it"


def test_the_finalizer_takes_an_earlier_versions_key_from_its_data() -> None:
    kube = sample_requests(FakeKube())
    _requests(kube).reconcile(KEY)
    del _key_secret(kube)["metadata"]["annotations"][ANNOTATION]  # as an earlier version made it
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    _requests(kube).reconcile(KEY)
    assert not jobs(kube), "the request's runs outlived it"
