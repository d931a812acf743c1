"""A purge record's counts beyond what status can hold, or below zero: an unreadable record.

The CRD types every count of status.lastPurge `integer, format: int64`. On the e2e control
plane's kube-apiserver a status patch setting status.lastPurge.rowsDeleted to 2**63 is refused
(422) and 2**63-1 is kept; -1 is kept too (status.lastPurge has no minimum), though no run
deletes -1 rows. A record copied to status as it came (its pod's termination message, which
whoever runs a pod of the Job can write) was refused on every pass, and the store's last
status, Ready=True included, stood. The fake API refuses such a status as that server does
(tests/controller/fake_kube.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.controller.fake_kube import FakeKube
from tests.controller.test_purge_attempts import _attempt, _recorded, _two_attempts
from tests.controller.test_purge_forgery import _as_pod, _cluster, _job, _pod, _template
from tests.controller.test_reconcile import conditions

INT64_MAX = 2**63 - 1  # the largest integer the server kept


def _one_attempt(kube: FakeKube, uid: str, record: dict[str, Any]) -> None:
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Complete", minute=0)
    _pod(kube, "real-a1", real, _as_pod(template), {"purge": record}, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("rowsDeleted", 2**63), ("rowsArchived", 2**64), ("expiredRemaining", 2**63),
     ("rowsDeleted", -1), ("nullTriggers", -(2**63))],
)  # fmt: skip
def test_a_count_out_of_range_is_an_unreadable_record_never_a_refused_write(
    field: str, value: int
) -> None:
    """Red first: on fb11cd4 a count of 2**63 was copied to status.lastPurge, the write was
    refused (the reconcile raised, Ready=True stood); a count of -1 was copied and the run
    read as Succeeded."""
    kube, uid = _cluster()
    _one_attempt(kube, uid, _attempt("Succeeded", 60, 0, **{field: value}))
    last, run = _recorded(kube)
    assert (last["result"], last["reason"]) == ("Unknown", "NoResultRecord")
    assert field in last["message"] and str(value) not in last["message"]
    assert field not in last, "the count was copied to status"
    assert conditions(kube)["PurgeSucceeded"][0] != "True"
    assert conditions(kube)["Ready"][0] != "True"
    assert run["result"] == "Unknown"


def test_the_largest_count_the_server_keeps_is_read_as_is() -> None:
    kube, uid = _cluster()
    _one_attempt(kube, uid, _attempt("Succeeded", INT64_MAX, 0))
    last, _ = _recorded(kube)
    assert (last["result"], last["rowsDeleted"]) == ("Succeeded", INT64_MAX)
    assert conditions(kube)["PurgeSucceeded"][0] == "True"


def test_attempts_whose_sum_is_beyond_int64_make_an_unreadable_run() -> None:
    """Each count fits; their sum does not. Red first: on fb11cd4 the sum was copied to
    status.lastPurge and the write refused on every pass."""
    kube, uid = _cluster()
    half = 2**62
    _two_attempts(
        kube, uid, _attempt("Failed", half, 0, reason="ConnectionFailed"),
        _attempt("Succeeded", half, 1),
    )  # fmt: skip
    last, run = _recorded(kube)
    assert (last["result"], last["reason"]) == ("Unknown", "NoResultRecord")
    assert "rowsDeleted" in last["message"]
    assert "rowsDeleted" not in last and run["result"] == "Unknown"
    assert conditions(kube)["PurgeSucceeded"][0] != "True"


def test_a_run_with_an_unread_attempt_keeps_no_sum_beyond_int64() -> None:
    """One attempt left no record: the others' counts are kept as "at least" — unless their
    sum is not a count. Red first: on fb11cd4 that sum was copied and the write refused."""
    kube, uid = _cluster()
    template = _template(kube)
    real = _job(kube, "real", uid, template, "Failed", minute=0)
    kube.objects[("Job", "crm", "real")]["status"]["failed"] = 3
    half = 2**62
    _pod(kube, "real-a1", real, _as_pod(template), {"purge": _attempt("Failed", half, 0)}, 0)
    _pod(kube, "real-a2", real, _as_pod(template), {"purge": _attempt("Failed", half, 1)}, 1)
    _pod(kube, "real-a3", real, _as_pod(template), {}, 2)
    last, _ = _recorded(kube, minutes=3)
    assert (last["result"], last["reason"]) == ("Failed", "JobFailed")
    assert "rowsDeleted" not in last and "rowsDeleted" in last["message"]
    assert str(2**63) not in last["message"]


@pytest.mark.parametrize(
    "age", [float("nan"), float("inf"), float("-inf"), -1.0, 10**400, -5],
    ids=["NaN", "Infinity", "-Infinity", "-1.0", "10**400", "-5"],
)  # JSON's NaN and Infinity, which Python's json reads; a number no float holds; below zero
def test_an_oldest_expired_age_that_is_no_age_is_an_unreadable_record(age: Any) -> None:
    """dataward_purge_oldest_expired_age_seconds is what the overdue-rows alert compares: NaN
    compares false with every threshold (the alert never fires), a negative age hides the
    overdue rows, and 10**400 is no float (the status write or the metric raised on every
    pass). Red first: on the commit before, each was copied to status.lastPurge as it came."""
    kube, uid = _cluster()
    _one_attempt(kube, uid, _attempt("Succeeded", 3, 0, oldestExpiredAgeSeconds=age))
    last, run = _recorded(kube)
    assert (last["result"], last["reason"]) == ("Unknown", "NoResultRecord")
    assert "oldestExpiredAgeSeconds" in last["message"]
    assert "oldestExpiredAgeSeconds" not in last, "the age was copied to status"
    assert conditions(kube)["PurgeSucceeded"][0] != "True"
    assert run["result"] == "Unknown"


@pytest.mark.parametrize("age", [0, 0.0, 86400.5, 2**63 - 1])
def test_an_oldest_expired_age_that_is_one_is_read_as_is(age: Any) -> None:
    kube, uid = _cluster()
    _one_attempt(kube, uid, _attempt("Succeeded", 3, 0, oldestExpiredAgeSeconds=age))
    last, _ = _recorded(kube)
    assert (last["result"], last["oldestExpiredAgeSeconds"]) == ("Succeeded", age)
