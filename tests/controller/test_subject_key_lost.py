"""An access request whose key Secret is deleted after its Jobs sealed exports to its key.

Each store's Job seals the subject's rows to the public key of the request's key Secret.
Deleted (by a careless user, a namespace cleanup, an attacker), the operator found no key
Secret and made a new key pair without a word: the exports already sealed could not be
opened with the new private key, status still said the stores answered (Complete stayed
True), and a store not yet answered was sealed to the new key, so one request held exports
sealed to two keys. Now a key Secret gone after the request's runs were given its public key
is lost: no new pair is made, no store is asked again, and every store, and Complete, say
KeySecretLost and what to do. Before any run a new pair is harmless, and still made.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any, cast

from dataward.controller.kube import Kube
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import (
    ANNOTATION,
    KEY,
    KEY_SECRET,
    T0,
    Evidence,
    finish,
    jobs,
    outcomes,
    pem_pair,
    sample_requests,
    sealed_to,
    status,
)

PAIRS = [pem_pair(seed) for seed in (1, 2, 3)]
ANSWER = {"outcome": "Succeeded", "rowsFound": 1, "rowsExported": 1}


def _controller(
    kube: FakeKube, pairs: Iterator[tuple[str, str]], evidence: Evidence | None = None
) -> SubjectRequests:
    """The operator, making a new key pair (the next of `pairs`) each time it makes one,
    recording evidence in `evidence` when given."""
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: next(pairs), evidence=evidence)
    return SubjectRequests(cast(Kube, kube), settings)


def _key_secret(kube: FakeKube) -> dict[str, Any] | None:
    return kube.objects.get(("Secret", "privacy", KEY_SECRET))






def _complete(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in status(kube)["conditions"] if c["type"] == "Complete")


def _events(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (k, _, _), o in kube.objects.items() if k == "Event"]


def _finish_all(kube: FakeKube) -> None:
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, ANSWER)


def _answered(kube: FakeKube, pairs: Iterator[tuple[str, str]]) -> None:
    """Both stores answered, their exports sealed to the first key pair."""
    _controller(kube, pairs).reconcile(KEY)
    _finish_all(kube)
    _controller(kube, pairs).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert sealed_to(kube) == {"privacy": PAIRS[0][1], "crm": PAIRS[0][1]}


def _assert_lost(kube: FakeKube) -> None:
    assert outcomes(kube) == {"privacy": ("Failed", "KeySecretLost"),
                               "crm": ("Failed", "KeySecretLost")}  # fmt: skip
    for entry in status(kube)["stores"]:
        assert KEY_SECRET in entry["message"]
        assert "new request" in entry["message"]
    complete = _complete(kube)
    assert (complete["status"], complete["reason"]) == ("False", "KeySecretLost")
    assert status(kube)["phase"] == "Failed"
    assert "keySecret" not in status(kube)


def _no_key_material(kube: FakeKube) -> None:
    written = json.dumps([status(kube), _events(kube)])
    for private, public in PAIRS:
        for line in (*private.splitlines(), *public.splitlines()):
            if "-----" not in line:
                assert line not in written


def test_a_key_secret_deleted_after_the_stores_answered_is_reported_lost() -> None:
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]  # the careless user
    _controller(kube, pairs).reconcile(KEY)
    assert _key_secret(kube) is None, "a new key pair was made: the exports cannot be opened"
    _assert_lost(kube)
    assert any(e["reason"] == "KeySecretLost" and e["type"] == "Warning"
               for e in _events(kube))  # fmt: skip
    _no_key_material(kube)
    before = copy.deepcopy(status(kube))
    _controller(kube, pairs).reconcile(KEY)  # the same verdict on every pass, no new pair
    assert _key_secret(kube) is None and status(kube) == before


def test_a_store_not_yet_answered_is_not_sealed_to_a_new_key() -> None:
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    account = kube.objects.pop(("ServiceAccount", "crm", "dataward-orders-purge"))
    _controller(kube, pairs).reconcile(KEY)  # crm not ready: only tickets runs
    _finish_all(kube)
    _controller(kube, pairs).reconcile(KEY)
    assert outcomes(kube)["privacy"] == ("Succeeded", "Answered")
    assert outcomes(kube)["crm"][0] == "Pending"
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    kube._store(account)  # crm is ready now
    _controller(kube, pairs).reconcile(KEY)
    assert sealed_to(kube) == {"privacy": PAIRS[0][1]}, "sealed to a second key"
    assert _key_secret(kube) is None
    _assert_lost(kube)


def test_a_key_secret_deleted_while_the_jobs_run_is_lost_too() -> None:
    # The Jobs were given the public key: what they seal cannot be opened without it.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _controller(kube, pairs).reconcile(KEY)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    assert _key_secret(kube) is None
    _assert_lost(kube)
    _finish_all(kube)  # they finish, sealed to the lost key
    _controller(kube, pairs).reconcile(KEY)
    _assert_lost(kube)


def test_the_key_secret_restored_unchanged_answers_again() -> None:
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    backup = copy.deepcopy(_key_secret(kube))
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    _assert_lost(kube)
    assert backup is not None
    kube._store(backup)  # from a backup, its owner reference to the request included
    _controller(kube, pairs).reconcile(KEY)
    assert outcomes(kube) == {"privacy": ("Succeeded", "Answered"),
                               "crm": ("Succeeded", "Answered")}  # fmt: skip
    assert _complete(kube)["reason"] == "AllStoresAnswered"
    assert status(kube)["keySecret"] == KEY_SECRET


def test_a_key_secret_deleted_before_any_store_ran_is_made_again() -> None:
    # Nothing was sealed to it yet: a new pair is harmless, and every export is sealed to it.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    accounts = {k: kube.objects.pop(k) for k in list(kube.objects) if k[0] == "ServiceAccount"}
    _controller(kube, pairs).reconcile(KEY)
    assert _key_secret(kube) is not None and jobs(kube) == {}
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    for account in accounts.values():
        kube._store(account)
    _controller(kube, pairs).reconcile(KEY)
    secret = _key_secret(kube)
    assert secret is not None
    assert secret["metadata"]["annotations"][ANNOTATION] == PAIRS[1][1]
    assert sealed_to(kube) == {"privacy": PAIRS[1][1], "crm": PAIRS[1][1]}
    assert status(kube)["keySecret"] == KEY_SECRET
    _finish_all(kube)
    _controller(kube, pairs).reconcile(KEY)
    assert _complete(kube)["reason"] == "AllStoresAnswered"


def test_a_request_whose_status_records_no_renders_stays_lost_and_keeps_its_jobs_named() -> None:
    # An earlier version recorded no status.runs: the stores' jobName alone says the request
    # ran. The verdict keeps it, or the next pass would find no run and make a new pair; and
    # the finalizer deletes the runs status names.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    kube.objects[("DataSubjectRequest", *KEY)]["status"].pop("runs")
    named = {s["namespace"]: s["jobName"] for s in status(kube)["stores"]}
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    for _ in range(2):
        _controller(kube, pairs).reconcile(KEY)
        assert _key_secret(kube) is None
        _assert_lost(kube)
        assert {s["namespace"]: s.get("jobName") for s in status(kube)["stores"]} == named


def test_a_key_secret_replaced_by_someone_elses_after_the_answers_is_lost_too() -> None:
    # The attacker deletes the request's key Secret and plants one of the name, with a public
    # key of their own, without the request's owner reference. It is never used (not the
    # request's), and the stores that answered cannot be opened with any key the request
    # names: they say so, as when the Secret is only deleted.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    kube._store({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": KEY_SECRET, "namespace": "privacy",
                              "annotations": {ANNOTATION: PAIRS[2][1]}},
                 "data": {}})  # fmt: skip
    _controller(kube, pairs).reconcile(KEY)
    _assert_lost(kube)
    planted = _key_secret(kube)
    assert planted is not None and "ownerReferences" not in planted["metadata"]
    assert sealed_to(kube) == {"privacy": PAIRS[0][1], "crm": PAIRS[0][1]}
    _no_key_material(kube)


def _break(kube: FakeKube, namespace: str, name: str) -> None:
    """A store edited into a spec the CRD admits and the operator cannot parse (a
    records[].timeZone that names no zone)."""
    store = kube.objects[("PersonalDataStore", namespace, name)]
    store["spec"]["records"][0]["timeZone"] = "Mars/Olympus"


def test_a_store_broken_after_it_answered_is_lost_too_not_answered() -> None:
    # A careless edit of the store (or one meant to hide it) after its export was sealed:
    # its recorded answer cannot be opened any more than the other's. Red first: on ab6fc26
    # crm/orders kept its recorded Succeeded beside privacy's KeySecretLost.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    _break(kube, "crm", "orders")
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    _assert_lost(kube)


def test_every_store_broken_after_the_answers_is_lost_too() -> None:
    # No store parses: none is asked, and the key's loss is still what each says. Red first:
    # on ab6fc26 both kept their recorded Succeeded and the request stayed Succeeded.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    _break(kube, "crm", "orders")
    _break(kube, "privacy", "tickets")
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    assert _key_secret(kube) is None
    _assert_lost(kube)


def test_a_store_deleted_after_it_answered_is_lost_too_not_dropped() -> None:
    # The store deleted after its export was sealed: status kept no word of it (out of the
    # policy-wide scope), and the request read as if privacy alone had been asked. Red
    # first: on ab6fc26 status.stores named privacy alone.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _answered(kube, pairs)
    named = {s["namespace"]: s["jobName"] for s in status(kube)["stores"]}
    del kube.objects[("PersonalDataStore", "crm", "orders")]
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    _assert_lost(kube)
    # The run stays named: the finalizer deletes it with the request.
    assert {s["namespace"]: s.get("jobName") for s in status(kube)["stores"]} == named
    assert not any("orders" in str(s.get("exportSecret")) for s in status(kube)["stores"])


def test_a_store_broken_before_any_run_is_still_invalid_not_lost() -> None:
    # Nothing was sealed for it: a store the request never ran for says what it is.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    _break(kube, "crm", "orders")
    _controller(kube, pairs).reconcile(KEY)
    _finish_all(kube)
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _controller(kube, pairs).reconcile(KEY)
    assert outcomes(kube) == {"privacy": ("Failed", "KeySecretLost"),
                               "crm": ("Failed", "StoreInvalid")}  # fmt: skip


def test_a_lost_key_after_the_answer_appends_no_second_answer() -> None:
    # The request was answered (request.answered, fulfilled); the key Secret deleted later
    # does not make it answered a second time, "failed", at the first answer's time: the
    # loss is in status and Events. Red first: on ab6fc26 a second request.answered record
    # (outcome failed, answeredAt the first answer's time) was appended, and a third
    # (fulfilled) once the Secret was restored.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    evidence = Evidence()
    _answered_with = _controller(kube, pairs, evidence)
    _answered_with.reconcile(KEY)
    _finish_all(kube)
    _answered_with.reconcile(KEY)
    assert [(k, p["outcome"]) for k, _, p in evidence.records] == [
        ("request.answered", "fulfilled")]
    backup = copy.deepcopy(_key_secret(kube))
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    _answered_with.reconcile(KEY)
    _assert_lost(kube)
    assert any(e["reason"] == "KeySecretLost" for e in _events(kube))
    assert backup is not None
    kube._store(backup)
    _answered_with.reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert [(k, p["outcome"]) for k, _, p in evidence.records] == [
        ("request.answered", "fulfilled")]


def test_a_key_lost_before_the_answer_is_on_record_as_failed() -> None:
    # Never answered: the request failed, and that is on record, once.
    kube = sample_requests(FakeKube())
    pairs = iter(PAIRS)
    evidence = Evidence()
    operator = _controller(kube, pairs, evidence)
    operator.reconcile(KEY)  # the Jobs run, given the key
    del kube.objects[("Secret", "privacy", KEY_SECRET)]
    operator.reconcile(KEY)
    _finish_all(kube)
    operator.reconcile(KEY)
    _assert_lost(kube)
    assert [(k, p["outcome"]) for k, _, p in evidence.records] == [
        ("request.answered", "failed")]
