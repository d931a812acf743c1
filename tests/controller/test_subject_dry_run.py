"""A dry run answers only a dry-run request.

spec.dryRun was mutable and the Job's name does not depend on it: a request that ran as a
dry run and then had spec.dryRun set to false kept the dry run's Job as each store's answer.
Its phase stayed Succeeded, its result said `dryRun: false` with the dry run's counts
(`rowsDeleted`), and nothing was deleted. The CRD now refuses the change; these tests act as
a user whose CRD predates that rule (Helm does not upgrade CRDs), through `reconcile`.
"""

from __future__ import annotations

from typing import Any

from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import KEY, Evidence, controller, finish, jobs, kube, status

__all__ = ["kube"]  # the fixture

COUNTED = {"outcome": "Succeeded", "dryRun": True, "rowsFound": 3, "rowsDeleted": 3,
           "tables": [{"table": "orders", "rowsFound": 3, "rowsDeleted": 3}]}
ERASED = {"outcome": "Succeeded", "dryRun": False, "rowsFound": 3, "rowsDeleted": 3,
          "tables": [{"table": "orders", "rowsFound": 3, "rowsDeleted": 3}]}


def _erasure(kube: FakeKube, *, dry_run: bool) -> dict[str, Any]:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["type"] = "erasure"
    raw["spec"].pop("readers", None)
    raw["spec"]["dryRun"] = dry_run
    return raw


def _set_dry_run(kube: FakeKube, value: bool) -> None:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["dryRun"] = value
    raw["metadata"]["generation"] = int(raw["metadata"]["generation"]) + 1


def _ran(kube: FakeKube, record: dict[str, Any]) -> None:
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, record)


def _dry_run_flags(kube: FakeKube) -> list[bool]:
    return [
        "--dry-run" in job["spec"]["template"]["spec"]["containers"][0]["args"]
        for job in jobs(kube).values()
    ]


def test_an_answered_dry_run_does_not_answer_the_request_once_dry_run_is_off(
    kube: FakeKube,
) -> None:
    evidence = Evidence()
    _erasure(kube, dry_run=True)
    controller(kube, evidence=evidence).reconcile(KEY)
    _ran(kube, COUNTED)
    controller(kube, evidence=evidence).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"  # the dry run, answered as one
    assert [r[2]["dryRun"] for r in evidence.records] == [True]
    _set_dry_run(kube, False)
    controller(kube, evidence=evidence).reconcile(KEY)
    done = status(kube)
    assert done["phase"] != "Succeeded", done
    assert done["result"]["dryRun"] is False
    assert "rowsDeleted" not in done["result"], done["result"]  # nothing was deleted
    assert not [s for s in done["stores"] if s["phase"] == "Succeeded"]
    assert all("spec.dryRun" in s.get("message", "") for s in done["stores"]), done["stores"]
    # No record says a real erasure was answered, let alone that it deleted rows.
    real = [r[2] for r in evidence.records if r[2]["dryRun"] is False]
    assert all(r["outcome"] not in ("fulfilled", "no-data") for r in real), real
    assert all(r["recordsAffected"] == 0 for r in real), real


def test_a_dry_run_finishing_after_dry_run_is_off_does_not_answer_the_request(
    kube: FakeKube,
) -> None:
    _erasure(kube, dry_run=True)
    controller(kube).reconcile(KEY)
    assert _dry_run_flags(kube) == [True, True]
    _set_dry_run(kube, False)  # while the dry run's Jobs run
    controller(kube).reconcile(KEY)
    _ran(kube, COUNTED)
    controller(kube).reconcile(KEY)
    done = status(kube)
    assert done["phase"] != "Succeeded", done
    assert "rowsDeleted" not in done["result"], done["result"]
    assert not [s for s in done["stores"] if s["phase"] == "Succeeded"]


def test_a_real_erasure_is_not_reported_as_a_dry_run_once_dry_run_is_on(
    kube: FakeKube,
) -> None:
    _erasure(kube, dry_run=False)
    controller(kube).reconcile(KEY)
    _ran(kube, ERASED)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded"
    _set_dry_run(kube, True)
    controller(kube).reconcile(KEY)
    done = status(kube)
    # Not "a dry run that succeeded, deleting nothing": the rows were deleted.
    assert not (done["phase"] == "Succeeded" and done["result"]["dryRun"] is True), done


def test_the_dry_run_set_back_is_answered_by_its_run_again(kube: FakeKube) -> None:
    _erasure(kube, dry_run=True)
    controller(kube).reconcile(KEY)
    _ran(kube, COUNTED)
    controller(kube).reconcile(KEY)
    _set_dry_run(kube, False)
    controller(kube).reconcile(KEY)
    _set_dry_run(kube, True)
    controller(kube).reconcile(KEY)
    done = status(kube)
    assert done["phase"] == "Succeeded", done
    assert done["result"]["dryRun"] is True and done["result"]["rowsDeleted"] == 6
    assert _dry_run_flags(kube) == [True, True]  # no second Job
