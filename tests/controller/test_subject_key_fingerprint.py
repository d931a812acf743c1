"""An access request's key Secret is the request's only when it holds the key pair the
operator made for it: the public key's fingerprint status.keyFingerprint records, written
before the Secret is created.

Anyone who may create or patch Secrets in the request's namespace can write a Secret of the
key Secret's name with the request's controller owner reference (its uid is readable) and a
public key of their own in the annotation the operator reads. The operator took the owner
reference as proof: a Secret planted before it made the pair, an annotation patched after,
or a Secret "restored" with another pair, and the subject's rows were sealed to the
attacker's key. Now none of them is used: before any run the stores fail ChildNotOurs, after
one KeySecretLost; nothing is sealed to it and status never names it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dataward.checks.subjects import key_verdict
from dataward.controller.kube import Kube, KubeError
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from dataward.render.subject_jobs import render_key_secret
from dataward.subjects.request import parse_request
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import (
    ANNOTATION,
    KEY,
    KEY_SECRET,
    T0,
    finish,
    jobs,
    outcomes,
    pem_pair,
    sample_requests,
    sealed_to,
    status,
)

PAIRS = [pem_pair(seed) for seed in (1, 2, 3)]
ATTACKER = pem_pair(9)
ANSWER = {"outcome": "Succeeded", "rowsFound": 1, "rowsExported": 1}


def _fingerprint(seed: int) -> str:
    """The fingerprint of the public key of `pem_pair(seed)`, computed here: SHA-256 of the
    key's 32 raw bytes."""
    raw = X25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _controller(kube: FakeKube, pairs: Iterator[tuple[str, str]]) -> SubjectRequests:
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: next(pairs))
    return SubjectRequests(cast(Kube, kube), settings)


def _plant(kube: FakeKube, pair: tuple[str, str]) -> None:
    """A key Secret exactly as the operator renders it for the request (its controller owner
    reference to the request included), holding `pair`: what anyone who may create Secrets
    in the namespace, and read the request's uid, can make."""
    request = parse_request(kube.objects[("DataSubjectRequest", *KEY)])
    kube._store(render_key_secret(request, *pair))






def _annotate(kube: FakeKube, public: str) -> None:
    secret = kube.objects[("Secret", "privacy", KEY_SECRET)]
    secret["metadata"]["annotations"][ANNOTATION] = public
    kube._store(secret)


def _granted(kube: FakeKube) -> set[str]:
    """The Secrets the request's readers' Role names."""
    return {n for (k, ns, name), role in kube.objects.items()
            if k == "Role" and ns == "privacy" and "dsr-readers" in name
            for rule in role["rules"] for n in rule.get("resourceNames", [])}  # fmt: skip


def _finish_all(kube: FakeKube) -> None:
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, ANSWER)


def _no_key_in_status(kube: FakeKube) -> None:
    written = json.dumps(status(kube))
    for private, public in (*PAIRS, ATTACKER):
        for line in (*private.splitlines(), *public.splitlines()):
            if "-----" not in line:
                assert line not in written


def test_the_fingerprint_is_recorded_before_the_key_secret_is_created() -> None:
    kube = sample_requests(FakeKube())
    _controller(kube, iter(PAIRS)).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    calls = [c for c in kube.calls if c[0] != "get" and c[0] != "get_metadata" and c[0] != "list"]
    recorded = next(i for i, c in enumerate(calls) if c[:2] == ("patch/status",
                                                                 "DataSubjectRequest"))
    created = calls.index(("create", "Secret", KEY_SECRET))
    assert recorded < created
    assert sealed_to(kube) == {"privacy": PAIRS[0][1], "crm": PAIRS[0][1]}
    _no_key_in_status(kube)


def test_a_key_secret_planted_before_the_pair_is_made_is_not_sealed_to() -> None:
    kube = sample_requests(FakeKube())
    _plant(kube, ATTACKER)
    _controller(kube, iter(PAIRS)).reconcile(KEY)
    assert ATTACKER[1] not in sealed_to(kube).values(), "the rows sealed to the attacker's key"
    assert jobs(kube) == {}
    assert outcomes(kube) == {"privacy": ("Failed", "ChildNotOurs"),
                               "crm": ("Failed", "ChildNotOurs")}  # fmt: skip
    assert "keySecret" not in status(kube)
    # Its data never read: only its metadata.
    assert ("get", "Secret", KEY_SECRET) not in kube.calls
    _no_key_in_status(kube)


def _refuse_key_secret_creates(kube: FakeKube) -> Any:
    """The API refuses (500) to create the key Secret from now on (the operator stopped, or
    the API failed, after the fingerprint was recorded); the FakeKube's own create, to put
    back."""
    create = kube.create

    def refuse_key_secret(obj: Any) -> dict[str, Any]:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == KEY_SECRET:
            raise KubeError(500, "Internal Server Error", "create Secret")
        return create(obj)

    kube.create = refuse_key_secret  # type: ignore[method-assign]
    return create


def test_a_key_secret_planted_after_a_failed_create_is_not_adopted() -> None:
    # The fingerprint is recorded, the create fails (the operator stopped, the API refused):
    # the Secret found next is adopted only with the key whose fingerprint is recorded.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    create = _refuse_key_secret_creates(kube)
    with pytest.raises(KubeError):
        _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    kube.create = create  # type: ignore[method-assign]
    _plant(kube, ATTACKER)
    _controller(kube, pairs).reconcile(KEY)
    assert jobs(kube) == {}
    assert outcomes(kube) == {"privacy": ("Failed", "ChildNotOurs"),
                               "crm": ("Failed", "ChildNotOurs")}  # fmt: skip


def test_a_failed_create_with_nothing_planted_makes_a_pair_again() -> None:
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    create = _refuse_key_secret_creates(kube)
    with pytest.raises(KubeError):
        _controller(kube, pairs).reconcile(KEY)
    kube.create = create  # type: ignore[method-assign]
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(2)
    assert sealed_to(kube) == {"privacy": PAIRS[1][1], "crm": PAIRS[1][1]}


def test_a_key_secret_planted_between_the_record_and_the_create_is_not_adopted() -> None:
    kube = sample_requests(FakeKube())
    create = kube.create

    def race(obj: Any) -> dict[str, Any]:
        if obj["kind"] == "Secret" and obj["metadata"]["name"] == KEY_SECRET:
            _plant(kube, ATTACKER)  # first: the create meets a 409
        return create(obj)

    kube.create = race  # type: ignore[method-assign]
    _controller(kube, iter(PAIRS)).reconcile(KEY)
    assert jobs(kube) == {}
    assert outcomes(kube)["privacy"] == ("Failed", "ChildNotOurs")


def test_a_patched_annotation_before_any_run_is_not_sealed_to() -> None:
    kube = sample_requests(FakeKube())
    accounts = {k: kube.objects.pop(k) for k in list(kube.objects) if k[0] == "ServiceAccount"}
    pairs = iter(PAIRS)
    _controller(kube, pairs).reconcile(KEY)  # the pair made, no store ready
    assert jobs(kube) == {}
    _annotate(kube, ATTACKER[1])
    for account in accounts.values():
        kube._store(account)
    _controller(kube, pairs).reconcile(KEY)
    assert jobs(kube) == {}, "the rows sealed to the attacker's key"
    assert outcomes(kube) == {"privacy": ("Failed", "ChildNotOurs"),
                               "crm": ("Failed", "ChildNotOurs")}  # fmt: skip
    assert "keySecret" not in status(kube)


def test_a_patched_annotation_after_a_run_is_not_sealed_to() -> None:
    kube = sample_requests(FakeKube())
    account = kube.objects.pop(("ServiceAccount", "crm", "dataward-orders-purge"))
    pairs = iter(PAIRS)
    _controller(kube, pairs).reconcile(KEY)  # only tickets runs, sealed to PAIRS[0]
    _finish_all(kube)
    _controller(kube, pairs).reconcile(KEY)
    assert outcomes(kube)["privacy"] == ("Succeeded", "Answered")
    assert KEY_SECRET in _granted(kube)
    _annotate(kube, ATTACKER[1])
    kube._store(account)  # crm is ready now
    _controller(kube, pairs).reconcile(KEY)
    assert sealed_to(kube) == {"privacy": PAIRS[0][1]}, "crm sealed to the attacker's key"
    assert outcomes(kube) == {"privacy": ("Failed", "KeySecretLost"),
                               "crm": ("Failed", "KeySecretLost")}  # fmt: skip
    assert "keySecret" not in status(kube)
    assert KEY_SECRET not in _granted(kube)
    _annotate(kube, PAIRS[0][1])  # put back as it was: the request answers again
    _controller(kube, pairs).reconcile(KEY)
    assert sealed_to(kube) == {"privacy": PAIRS[0][1], "crm": PAIRS[0][1]}


def test_a_key_secret_restored_with_another_pair_is_lost() -> None:
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _controller(kube, pairs).reconcile(KEY)
    _finish_all(kube)
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _plant(kube, ATTACKER)  # "restored": the request's owner reference, another pair
    _controller(kube, pairs).reconcile(KEY)
    assert outcomes(kube) == {"privacy": ("Failed", "KeySecretLost"),
                               "crm": ("Failed", "KeySecretLost")}  # fmt: skip
    assert status(kube)["phase"] == "Failed"
    assert "keySecret" not in status(kube)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    _no_key_in_status(kube)


def test_a_request_of_an_earlier_version_with_runs_records_its_key_once() -> None:
    # Made before status recorded a fingerprint: the key its runs were given is the one the
    # key Secret's annotation holds, which that version wrote and sealed to; it is recorded
    # once, and from then on nothing else is used.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _controller(kube, pairs).reconcile(KEY)
    _finish_all(kube)
    kube.objects[("DataSubjectRequest", *KEY)]["status"].pop("keyFingerprint", None)
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    assert status(kube)["phase"] == "Succeeded"
    assert status(kube)["keySecret"] == KEY_SECRET
    _annotate(kube, ATTACKER[1])
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    assert outcomes(kube)["privacy"] == ("Failed", "KeySecretLost")


def test_a_request_of_an_earlier_version_without_runs_does_not_adopt_its_key_secret() -> None:
    # Nothing was sealed to it yet, and nothing proves who made it: it is not used (deleted,
    # the operator makes a pair of its own).
    kube = sample_requests(FakeKube())
    accounts = {k: kube.objects.pop(k) for k in list(kube.objects) if k[0] == "ServiceAccount"}
    _plant(kube, ATTACKER)
    pairs = iter(PAIRS)
    for account in accounts.values():
        kube._store(account)
    _controller(kube, pairs).reconcile(KEY)
    assert jobs(kube) == {}
    assert "keyFingerprint" not in status(kube)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["keyFingerprint"] == _fingerprint(1)
    assert sealed_to(kube) == {"privacy": PAIRS[0][1], "crm": PAIRS[0][1]}


def test_a_crd_that_drops_the_fingerprint_creates_no_key_secret() -> None:
    # An outdated CRD prunes status.keyFingerprint: a Secret made then could never be told
    # from a planted one. None is made.
    kube = sample_requests(FakeKube())
    json_patch = kube.json_patch

    def prune(kind: str, namespace: Any, name: str, ops: Any, sub: Any = None) -> Any:
        ops = [op for op in ops if "keyFingerprint" not in op["path"]]
        ops = [{**op, "value": {k: v for k, v in op["value"].items() if k != "keyFingerprint"}}
               if op["path"] == "/status" and isinstance(op.get("value"), dict) else op
               for op in ops]  # fmt: skip
        return json_patch(kind, namespace, name, ops, sub)

    kube.json_patch = prune  # type: ignore[method-assign]
    outcome = _controller(kube, iter(PAIRS)).reconcile_logged(KEY)
    assert not outcome.ok
    assert ("Secret", "privacy", KEY_SECRET) not in kube.objects
    assert jobs(kube) == {}


# found: None no Secret, else whether it has the request's controller owner reference;
# then the fingerprint of its annotation's key, what status records, whether runs are.
VERDICTS = [
    (None, None, None, False, "make"),
    (None, None, "sha256:a", False, "make"),  # a create that failed: nothing sealed yet
    (None, None, "sha256:a", True, "lost"),
    (False, "sha256:a", "sha256:a", False, "not-ours"),  # no owner reference
    (False, "sha256:a", "sha256:a", True, "lost"),
    (True, "sha256:a", "sha256:a", False, "use"),
    (True, "sha256:a", "sha256:a", True, "use"),
    (True, "sha256:b", "sha256:a", False, "not-ours"),  # planted, or its annotation changed
    (True, "sha256:b", "sha256:a", True, "lost"),
    (True, None, "sha256:a", False, "not-ours"),  # no key in its annotation
    (True, None, "sha256:a", True, "lost"),
    (True, "sha256:a", 7, True, "lost"),  # a record that is not a fingerprint is not absent
    (True, "sha256:a", None, False, "not-ours"),  # an earlier version's, or planted: unproven
    (True, "sha256:a", None, True, "adopt"),  # an earlier version's, its runs given its key
]


@pytest.mark.parametrize(("found", "fingerprint", "recorded", "ran", "verdict"), VERDICTS)
def test_key_verdict(
    found: bool | None, fingerprint: str | None, recorded: Any, ran: bool, verdict: str
) -> None:
    assert key_verdict(found, fingerprint, recorded, ran) == verdict
