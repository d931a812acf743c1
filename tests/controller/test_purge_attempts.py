"""A purge Job that ran more than one pod: every attempt's work is on record.

The purge deletes in batches and commits as it goes, so a pod that fails has already
deleted rows, and says how many in its termination message. A Job that then starts another
pod (a Job rendered with a back-off limit above 0, or a pod someone else created in it that
runs the purge) is one run of several attempts: its record must count what each did, or say
its outcome is unknown when one attempt's result cannot be read, never show the last
attempt's success alone. Each test acts through the reconciler's public `reconcile` on an
in-memory API (the fakes of tests/controller/test_purge_forgery.py).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_evidence_records import Sink
from tests.controller.test_purge_forgery import (
    CRONJOB,
    _as_pod,
    _cluster,
    _job,
    _pod,
    _record,
    _template,
)
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster, status


def _attempt(result: str, rows: int, minute: int, **extra: Any) -> dict[str, Any]:
    """One attempt's result record, started at 07:MM:01 and done at 07:MM:20."""
    return _record(
        result, rows,
        startTime=f"2026-01-10T07:{minute:02d}:01Z",
        completionTime=f"2026-01-10T07:{minute:02d}:20Z",
        cutoff=f"2025-01-10T07:{minute:02d}:00Z",
        **extra,
    )  # fmt: skip


def _two_attempts(
    kube: FakeKube, uid: str, first: dict[str, Any] | None, second: dict[str, Any]
) -> dict[str, Any]:
    """Our Job `real`, Complete, whose first pod failed (`first`: its record, None when it
    left none) and whose second succeeded with `second`; the Job's status counts both."""
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    kube.objects[("Job", "crm", "real")]["status"].update(failed=1, succeeded=1)
    _pod(kube, "real-a1", real, _as_pod(template), {"purge": first} if first else {}, 0)
    _pod(kube, "real-a2", real, _as_pod(template), {"purge": second}, 1)
    return real


def _recorded(kube: FakeKube, minutes: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reconcile with an evidence log: (status.lastPurge, the one purge.run record)."""
    sink = Sink()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=sink))  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    (run,) = sink.of("purge.run")
    return status(kube)["lastPurge"], run


def test_the_rows_a_failed_first_attempt_deleted_are_on_record() -> None:
    """Red first: on 8919753 the record was read from the newest pod only: rowsDeleted 60,
    Succeeded, and the 40 rows the failed first attempt deleted were in no record."""
    kube, uid = _cluster()
    _two_attempts(
        kube, uid,
        _attempt("Failed", 40, 0, reason="ConnectionFailed", rowsArchived=5),
        _attempt("Succeeded", 60, 1, rowsArchived=7),
    )  # fmt: skip
    last, run = _recorded(kube)
    assert (last["rowsDeleted"], last["rowsArchived"]) == (100, 12)
    assert (run["rowsDeleted"], run["rowsArchived"]) == (100, 12)
    assert run["jobName"] == "real"
    # From the first attempt's start to the last one's end; the later cutoff bounds both.
    assert last["startTime"] == "2026-01-10T07:00:01Z"
    assert last["completionTime"] == "2026-01-10T07:01:20Z"
    assert last["cutoff"] == "2025-01-10T07:01:00Z"
    # The failed attempt is named, with what it did, where evidence keeps it (the start).
    assert "2 attempts" in run["message"] and "ConnectionFailed" in run["message"]
    assert "40" in run["message"]


def test_a_first_attempt_that_left_no_record_makes_the_run_unknown() -> None:
    """The first pod deleted rows and was killed before it wrote its record (OOM, node
    lost). Red first: on 8919753 the run was Succeeded with the second pod's 60 rows."""
    kube, uid = _cluster()
    _two_attempts(kube, uid, None, _attempt("Succeeded", 60, 1))
    last, run = _recorded(kube)
    assert (run["result"], run["reason"]) == ("Unknown", "NoResultRecord")
    assert (last["result"], last["reason"]) == ("Unknown", "NoResultRecord")
    assert run["rowsDeleted"] == 60  # what is known, the message says "at least"
    assert "real-a1" in run["message"] and "at least" in run["message"]
    assert conditions(kube)["PurgeSucceeded"][0] != "True"


def test_a_garbled_first_record_makes_the_run_unknown() -> None:
    kube, uid = _cluster()
    _two_attempts(
        kube, uid, _attempt("Failed", 40, 0, rowsDeleted="40"), _attempt("Succeeded", 60, 1)
    )
    _, run = _recorded(kube)
    assert (run["result"], run["reason"]) == ("Unknown", "NoResultRecord")
    assert "real-a1" in run["message"]


def test_an_attempt_whose_pod_is_gone_makes_the_run_unknown() -> None:
    """The Job's status counts two finished pods; only the second is left (the first
    deleted, by hand or by the pod garbage collector). Red first: on 8919753 the run was
    Succeeded with the second pod's 60 rows."""
    kube, uid = _cluster()
    _two_attempts(kube, uid, _attempt("Failed", 40, 0), _attempt("Succeeded", 60, 1))
    del kube.objects[("Pod", "crm", "real-a1")]
    _, run = _recorded(kube)
    assert (run["result"], run["reason"]) == ("Unknown", "NoResultRecord")
    assert run["rowsDeleted"] == 60
    assert "2" in run["message"] and "at least" in run["message"]


def test_a_failed_job_whose_last_attempt_left_no_record_keeps_the_first_ones_rows() -> None:
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Failed", minute=0)
    kube.objects[("Job", "crm", "real")]["status"]["failed"] = 2
    _pod(kube, "real-a1", real, _as_pod(template), {"purge": _attempt("Failed", 40, 0)}, 0)
    _pod(kube, "real-a2", real, _as_pod(template), {}, 1)
    _, run = _recorded(kube)
    assert (run["result"], run["reason"]) == ("Failed", "JobFailed")
    assert run["rowsDeleted"] == 40 and "at least" in run["message"]


def test_a_run_with_an_unread_attempt_waits_for_its_record_as_a_run_without_one_does() -> None:
    """RESULT_RECORD_GRACE: the Job's completion can reach the operator before its pod's
    record does; a run is recorded once, so it is not recorded Unknown within the grace."""
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=59)  # done at 07:59:30
    kube.objects[("Job", "crm", "real")]["status"].update(failed=1, succeeded=1)
    _pod(kube, "real-a1", real, _as_pod(template), {}, 58)
    _pod(kube, "real-a2", real, _as_pod(template), {"purge": _attempt("Succeeded", 6, 59)}, 59)
    sink = Sink()
    reconciler = Reconciler(kube, ReconcileSettings(evidence=sink))  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0)  # 30 s after the Job finished
    assert sink.of("purge.run") == []
    kube.objects[("Pod", "crm", "real-a1")]["status"] = {"containerStatuses": [
        {"name": "purge", "state": {"terminated": {
            "exitCode": 1, "message": json.dumps(_attempt("Failed", 4, 58))}}},
    ]}  # fmt: skip
    reconciler.reconcile(KEY, now=T0 + timedelta(seconds=5))
    (run,) = sink.of("purge.run")
    assert (run["result"], run["rowsDeleted"]) == ("Succeeded", 10)


def test_one_pod_is_read_as_before() -> None:
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    kube.objects[("Job", "crm", "real")]["status"]["succeeded"] = 1
    record = _attempt("Succeeded", 7, 0)
    _pod(kube, "real-a1", real, _as_pod(template), {"purge": record}, 0)
    last, _ = _recorded(kube)
    assert (last["result"], last["rowsDeleted"], last["startTime"]) == (
        "Succeeded",
        7,
        record["startTime"],
    )
    assert "attempt" not in last.get("message", "")
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")


def test_the_attempts_are_summed_through_the_caches() -> None:
    """The caches keep a pod's terminated messages only, and a Job's status whole."""
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0)
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    _two_attempts(kube, uid, _attempt("Failed", 40, 0), _attempt("Succeeded", 60, 1))
    _relist(caches)
    _reconciler(kube, caches).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert status(kube)["lastPurge"]["rowsDeleted"] == 100
