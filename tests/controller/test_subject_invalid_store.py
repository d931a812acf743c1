"""A store that may be in a request's scope and whose spec does not parse is not answered
for: the request is not Succeeded.

The CRD admits what the operator's parsing refuses (a records[].timeZone of the right form
that names no zone, `Mars/Olympus`). Such a store was left out of every request as if it were
out of scope: an erasure said "All 1 store(s) in scope answered", evidence recorded
`no-data`, and the person's rows in that store were never read or erased. Each test acts
as the careless store author through `reconcile` on an in-memory API.
"""

from __future__ import annotations

from typing import Any

from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import KEY, Evidence, controller, finish, jobs, kube, status

__all__ = ["kube"]  # the fixture

ERASED = {"outcome": "Succeeded", "rowsFound": 1, "rowsDeleted": 1,
          "tables": [{"table": "support_inquiries", "rowsFound": 1, "rowsDeleted": 1}]}


def _erasure(kube: FakeKube, **spec: Any) -> None:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["type"] = "erasure"
    raw["spec"].pop("readers", None)
    raw["spec"].update(spec)


def _break(kube: FakeKube, namespace: str = "crm", name: str = "orders") -> None:
    """A records[].timeZone the CRD's pattern admits and no zone database knows."""
    store = kube.objects[("PersonalDataStore", namespace, name)]
    store["spec"]["records"][0]["timeZone"] = "Mars/Olympus"


def _answer_every_job(kube: FakeKube) -> None:
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, ERASED)


def _entry(kube: FakeKube, namespace: str) -> dict[str, Any] | None:
    return next((s for s in status(kube)["stores"] if s["namespace"] == namespace), None)


def test_an_unparseable_store_of_the_policy_keeps_the_request_from_succeeding(
    kube: FakeKube,
) -> None:
    evidence = Evidence()
    _erasure(kube)
    _break(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube, evidence=evidence).reconcile(KEY)
    done = status(kube)
    assert done["phase"] != "Succeeded", done
    orders = _entry(kube, "crm")
    assert orders is not None, done["stores"]
    assert orders["phase"] == "Failed"
    assert "invalid" in orders["reason"].lower() or "invalid" in orders["message"].lower()
    complete = next(c for c in done["conditions"] if c["type"] == "Complete")
    assert complete["status"] != "True", complete
    assert "crm/orders" in complete["message"]
    assert all(r[2]["outcome"] not in ("fulfilled", "no-data") for r in evidence.records)
    assert not [n for ns, n in jobs(kube) if ns == "crm"]  # it is not run as it stands


def test_an_unparseable_store_of_a_category_in_scope_keeps_the_request_from_succeeding(
    kube: FakeKube,
) -> None:
    _erasure(kube, scope={"categories": ["technical-support-inquiry"]})
    _break(kube)
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] != "Succeeded", status(kube)
    assert (_entry(kube, "crm") or {}).get("phase") == "Failed"


def test_an_unparseable_store_whose_category_is_not_in_scope_stays_out(kube: FakeKube) -> None:
    store = kube.objects[("PersonalDataStore", "crm", "orders")]
    store["spec"]["category"] = "newsletter"
    _break(kube)
    _erasure(kube, scope={"categories": ["technical-support-inquiry"]})
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert _entry(kube, "crm") is None


def test_an_unparseable_store_not_named_in_scope_stores_stays_out(kube: FakeKube) -> None:
    _break(kube)
    _erasure(kube, scope={"stores": [{"namespace": "privacy", "name": "tickets"}]})
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert [(s["namespace"], s["name"]) for s in status(kube)["stores"]] == [
        ("privacy", "tickets")]


def test_an_unparseable_store_of_another_policy_stays_out(kube: FakeKube) -> None:
    store = kube.objects[("PersonalDataStore", "crm", "orders")]
    store["spec"]["policy"] = "another-policy"
    _break(kube)
    _erasure(kube)
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert _entry(kube, "crm") is None


def test_a_store_named_in_scope_that_does_not_parse_is_said_to_be_invalid(
    kube: FakeKube,
) -> None:
    _break(kube)
    _erasure(kube, scope={"stores": [{"namespace": "crm", "name": "orders"}]})
    controller(kube).reconcile(KEY)
    orders = _entry(kube, "crm")
    assert orders is not None and orders["phase"] == "Failed"
    assert orders["reason"] != "StoreNotFound"  # it exists; it does not parse


def test_the_store_once_fixed_is_asked_and_answers(kube: FakeKube) -> None:
    _erasure(kube)
    _break(kube)
    controller(kube).reconcile(KEY)
    del kube.objects[("PersonalDataStore", "crm", "orders")]["spec"]["records"][0]["timeZone"]
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert (_entry(kube, "crm") or {}).get("phase") == "Succeeded"


def test_an_answer_recorded_before_the_store_broke_still_stands(kube: FakeKube) -> None:
    _erasure(kube)
    controller(kube).reconcile(KEY)
    _answer_every_job(kube)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    _break(kube)  # edited after it answered
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    assert (_entry(kube, "crm") or {}).get("phase") == "Succeeded"


def test_deleting_the_request_deletes_the_run_of_a_store_since_broken(kube: FakeKube) -> None:
    _erasure(kube, scope={"categories": ["technical-support-inquiry"]})
    controller(kube).reconcile(KEY)
    assert [n for ns, n in jobs(kube) if ns == "crm"]
    _break(kube)
    controller(kube).reconcile(KEY)  # status now says the store is invalid
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["metadata"]["deletionTimestamp"] = "2026-01-12T00:00:00Z"
    controller(kube).reconcile(KEY)
    assert not [n for ns, n in jobs(kube) if ns == "crm"]
