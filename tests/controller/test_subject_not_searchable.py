"""A store the request could not search for the subject has not answered it.

The identifier Secret gives `email`; the store's tables have subject columns of kind
`customer-id` only. Its Job searched nothing, and the request said Succeeded with evidence
`no-data`: a false statement to the person and the regulator. A store searched in part
(some tables need a kind the Secret does not give) said `Answered`, and the tables it did
not search reached neither status nor evidence. Each test acts through `reconcile` on an
in-memory API, as the requester would.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import (
    EMAIL,
    KEY,
    Evidence,
    controller,
    finish,
    jobs,
    kube,
    status,
)

__all__ = ["kube"]  # the fixture

ANSWERED = {"outcome": "Succeeded", "rowsFound": 1, "rowsDeleted": 1,
            "tables": [{"table": "support_inquiries", "rowsFound": 1, "rowsDeleted": 1}]}
# What the engine recorded for a store none of whose tables it could search (before the fix).
NOTHING_SEARCHED = {"outcome": "Succeeded", "reason": "NotSearchable",
                    "notSearchable": ["support_inquiries"]}
# A store searched in part: support_inquiries by email, orders needs customer-id.
PARTLY = {"outcome": "Failed", "reason": "NotSearchable", "rowsFound": 2, "rowsDeleted": 2,
          "notSearchable": ["orders"], "kindsNeeded": ["customer-id"],
          "tables": [{"table": "support_inquiries", "rowsFound": 2, "rowsDeleted": 2}]}


def _erasure(kube: FakeKube) -> None:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["type"] = "erasure"
    raw["spec"].pop("readers", None)


def _answer(kube: FakeKube, crm: dict[str, Any]) -> None:
    """The crm store's Job leaves `crm`; the privacy store's answers in full."""
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, crm if namespace == "crm" else ANSWERED)


def _crm(kube: FakeKube) -> dict[str, Any]:
    return next(s for s in status(kube)["stores"] if s["namespace"] == "crm")


def test_a_store_that_searched_nothing_is_not_answered_and_not_no_data(kube: FakeKube) -> None:
    evidence = Evidence()
    _erasure(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    _answer(kube, NOTHING_SEARCHED)
    controller(kube, evidence=evidence).reconcile(KEY)
    done = status(kube)
    crm = _crm(kube)
    assert (crm["phase"], crm["reason"]) == ("Failed", "NotSearchable"), crm
    assert crm["notSearchable"] == ["support_inquiries"]
    assert done["phase"] == "Failed"
    complete = next(c for c in done["conditions"] if c["type"] == "Complete")
    assert (complete["status"], complete["reason"]) == ("False", "StoresFailed")
    assert "completionTime" not in done  # not answered
    assert [r[2]["outcome"] for r in evidence.records] == ["failed"]


def test_a_store_searched_in_part_names_what_it_did_not_search(kube: FakeKube) -> None:
    evidence = Evidence()
    _erasure(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    _answer(kube, PARTLY)
    controller(kube, evidence=evidence).reconcile(KEY)
    done = status(kube)
    crm = _crm(kube)
    assert (crm["phase"], crm["reason"]) == ("Failed", "NotSearchable"), crm
    assert crm["notSearchable"] == ["orders"] and crm["kindsNeeded"] == ["customer-id"]
    # What the searched table did is still reported.
    assert crm["tables"] == [{"table": "support_inquiries", "rowsFound": 2, "rowsDeleted": 2}]
    # The requester is told which kinds to add and how to have the store asked again.
    assert "orders" in crm["message"] and "customer-id" in crm["message"]
    assert "spec.acknowledgeToken" in crm["message"]
    assert done["phase"] == "Failed"
    assert "customer-id" in next(
        c["message"] for c in done["conditions"] if c["type"] == "Complete"
    )
    (record,) = [r[2] for r in evidence.records]
    assert record["outcome"] not in ("fulfilled", "no-data")
    assert record["outcome"] == "failed" and record["recordsAffected"] == 3
    everything = json.dumps([status(kube), evidence.records])
    assert EMAIL not in everything
    assert base64.b64encode(EMAIL.encode()).decode() not in everything


def test_adding_the_identifier_and_a_new_token_asks_the_store_again(kube: FakeKube) -> None:
    evidence = Evidence()
    _erasure(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    _answer(kube, PARTLY)
    controller(kube, evidence=evidence).reconcile(KEY)
    first = set(jobs(kube))
    # The requester adds the kind the message names. The Secret alone asks nothing again
    # (the message says so): the store's Job has run and its answer stands.
    secret = kube.objects[("Secret", "privacy", "case-4711-identifier")]
    secret["data"]["customer-id"] = base64.b64encode(b"4711").decode()
    controller(kube, evidence=evidence).reconcile(KEY)
    assert set(jobs(kube)) == first
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["acknowledgeToken"] = "with-customer-id"
    raw["metadata"]["generation"] = 2
    controller(kube, evidence=evidence).reconcile(KEY)
    new = set(jobs(kube)) - first
    assert [ns for ns, _ in new] == ["crm"]
    (name,) = [n for _, n in new]
    finish(kube, "crm", name, {**ANSWERED, "rowsFound": 1, "rowsDeleted": 1})
    controller(kube, evidence=evidence).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert "notSearchable" not in _crm(kube)
    assert [r[2]["outcome"] for r in evidence.records] == ["failed", "fulfilled"]


def test_a_store_recorded_answered_without_being_searched_is_not_an_answer(
    kube: FakeKube,
) -> None:
    """An earlier operator recorded the store that searched nothing as Succeeded: that
    record does not stand, and its run's record says why."""
    evidence = Evidence()
    _erasure(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    (name,) = [n for ns, n in jobs(kube) if ns == "crm"]
    _answer(kube, ANSWERED)
    controller(kube, evidence=evidence).reconcile(KEY)
    # As the earlier operator left it: the Job's record and the store's entry.
    pod = kube.objects[("Pod", "crm", f"{name}-x")]
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = json.dumps(
        NOTHING_SEARCHED
    )
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    entry = next(s for s in raw["status"]["stores"] if s["namespace"] == "crm")
    for key in ("rowsFound", "rowsDeleted", "tables"):
        entry.pop(key, None)
    entry.update(reason="NotSearchable", notSearchable=["support_inquiries"])
    controller(kube, evidence=evidence).reconcile(KEY)
    assert (_crm(kube)["phase"], _crm(kube)["reason"]) == ("Failed", "NotSearchable")
    assert status(kube)["phase"] == "Failed"
    assert [r[2]["outcome"] for r in evidence.records] == ["fulfilled", "failed"]
