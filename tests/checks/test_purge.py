"""PurgeScheduled and PurgeSucceeded."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataward.checks.observed import LastPurge, ObservedObject, unreadable_purge_fields
from dataward.checks.purge import naming_runs_not_counted, purge_scheduled, purge_succeeded
from dataward.model.compliance import Finding
from dataward.model.store import parse_store
from dataward.render.purge_job import render_purge_cronjob
from dataward.render.settings import RenderSettings
from tests.model import samples

DESIRED = render_purge_cronjob(parse_store(samples.STORE), RenderSettings(), compliant=True)


def with_defaults() -> dict[str, Any]:
    body = copy.deepcopy(DESIRED)
    pod = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod["dnsPolicy"] = "ClusterFirst"
    pod["schedulerName"] = "default-scheduler"
    body["status"] = {"lastScheduleTime": "2025-01-01T03:17:00Z"}
    return body


def scheduled(
    observed: ObservedObject, findings: list[Finding] | None = None, suspended: bool = False
) -> tuple[str, str, str]:
    condition = purge_scheduled(findings or [], suspended, DESIRED, observed)
    assert condition.type == "PurgeScheduled"
    return condition.status, condition.reason, condition.message


def test_scheduled_when_the_cronjob_matches_with_server_defaults() -> None:
    status, reason, message = scheduled(ObservedObject.present(with_defaults()))
    assert (status, reason) == ("True", "Scheduled")
    assert "17 3 * * *" in message and "Etc/UTC" in message


def test_not_compliant_says_why() -> None:
    status, reason, message = scheduled(
        ObservedObject.present(with_defaults()), [Finding("RetentionTooLong", "x")]
    )
    assert (status, reason) == ("False", "PolicyNotCompliant")
    assert "RetentionTooLong" in message


def test_legal_hold() -> None:
    status, reason, message = scheduled(ObservedObject.present(with_defaults()), suspended=True)
    assert (status, reason) == ("False", "PurgeSuspended")
    assert "spec.purge.suspend" in message


def test_unknown_and_missing() -> None:
    assert scheduled(ObservedObject.unknown("boom"))[:2] == ("Unknown", "CronJobUnreadable")
    assert scheduled(ObservedObject.absent())[:2] == ("False", "CronJobMissing")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "suspend"), True),
        (("spec", "schedule"), "* * * * *"),
        (("spec", "concurrencyPolicy"), "Allow"),
    ],
)
def test_drift_is_reported(path: tuple[str, str], value: Any) -> None:
    body = with_defaults()
    body[path[0]][path[1]] = value
    assert scheduled(ObservedObject.present(body))[:2] == ("False", "CronJobDrifted")


def test_a_drifted_pod_security_context_is_reported() -> None:
    body = with_defaults()
    container = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    assert scheduled(ObservedObject.present(body))[1] == "CronJobDrifted"


def test_no_run_yet_is_true() -> None:
    condition = purge_succeeded(None)
    assert (condition.status, condition.reason) == ("True", "NoRunYet")
    assert LastPurge.from_status({}) is None


def test_a_successful_run() -> None:
    last = LastPurge.from_status(
        {
            "lastPurge": {
                "result": "Succeeded",
                "startTime": "2025-01-01T03:17:00Z",
                "cutoff": "2024-07-05T03:17:00Z",
                "rowsDeleted": 12,
                "rowsArchived": 3,
            }
        }
    )
    condition = purge_succeeded(last)
    assert (condition.status, condition.reason) == ("True", "Succeeded")
    assert "deleted 12" in condition.message and "archived 3" in condition.message


def test_a_dry_run_says_nothing_was_deleted() -> None:
    condition = purge_succeeded(LastPurge("Succeeded", dry_run=True, rows_deleted=5))
    assert (condition.status, condition.reason) == ("True", "DryRunSucceeded")
    assert "deleted nothing" in condition.message


def test_a_failed_run_carries_its_message_and_reason() -> None:
    condition = purge_succeeded(LastPurge("Failed", message="connection refused."))
    assert (condition.status, condition.reason) == ("False", "PurgeFailed")
    assert "connection refused" in condition.message
    with_reason = purge_succeeded(LastPurge("Failed", reason="RetentionChanged"))
    assert (with_reason.status, with_reason.reason) == ("False", "RetentionChanged")
    assert purge_succeeded(LastPurge("Failed", reason="not camel")).reason == "PurgeFailed"


@pytest.mark.parametrize(("result", "reason"), [("Held", "PurgeHeld"), ("Skipped", "PurgeSkipped")])
def test_held_and_skipped_runs_are_not_failures(result: str, reason: str) -> None:
    condition = purge_succeeded(LastPurge(result, message="legal hold."))
    assert (condition.status, condition.reason) == ("True", reason)


def test_a_run_stopped_by_the_row_limit_says_so() -> None:
    last = LastPurge.from_status(
        {"lastPurge": {"result": "Succeeded", "reason": "MaxRowsPerRun", "rowsDeleted": 100}}
    )
    condition = purge_succeeded(last)
    assert (condition.status, condition.reason) == ("True", "StoppedEarly")
    assert "MaxRowsPerRun" in condition.message
    assert "raise spec.purge.maxRowsPerRun" in condition.message


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("Suspended", "spec.purge.suspend became true during the run; stopped."),
        ("RetentionChanged", "the retention changed during the run; stopped."),
        ("StoreChanged", "the store's spec changed during the run; stopped."),
        ("AcknowledgementWithdrawn", "the annotation was removed during the run; stopped."),
    ],
)
def test_a_run_stopped_for_another_cause_than_the_row_limit_is_not_told_to_raise_it(
    reason: str, why: str
) -> None:
    """Only a run that reached maxRowsPerRun is advised to raise it; a legal hold or an edit
    that stopped the run is said as it is (the record's message), with no advice that would
    take more rows per run."""
    last = LastPurge.from_status(
        {"lastPurge": {"result": "Succeeded", "reason": reason, "rowsDeleted": 5,
                       "message": f"deleted 5 expired rows. {why}"}}
    )  # fmt: skip
    condition = purge_succeeded(last)
    assert (condition.status, condition.reason) == ("True", "StoppedEarly")
    assert why in condition.message and reason in condition.message
    assert "maxRowsPerRun" not in condition.message


def test_a_garbled_last_purge_is_no_result_record_never_a_result_nor_no_run() -> None:
    """status.lastPurge copies the purge pod's termination message: a field not in the form
    the CRD types it is read neither as a result (bool("false") is True: a dry run) nor as
    "no run" (NoRunYet, True), and the message names the field, never the value."""
    for field, value in [("rowsDeleted", "GARBLE-7f3c"), ("dryRun", "false"),
                         ("startTime", "GARBLE-7f3c"), ("reason", "x" * 129),
                         ("result", ""), ("result", None),
                         # A count is 0..2**63-1: the API server refuses 2**63 in status
                         # (int64), and no run deletes -1 rows.
                         ("rowsDeleted", 2**63), ("expiredRemaining", -1)]:  # fmt: skip
        last = LastPurge.from_status(
            {"lastPurge": {"result": "Succeeded", "rowsDeleted": 3, field: value}}
        )
        assert last is not None and (last.result, last.reason) == ("Unknown", "NoResultRecord")
        condition = purge_succeeded(last)
        assert (condition.status, condition.reason) == ("False", "NoResultRecord")
        assert field in condition.message and "GARBLE" not in condition.message
    assert unreadable_purge_fields(
        {"result": "Succeeded", "rowsDeleted": 2**63 - 1, "dryRun": False,
         "oldestExpiredAgeSeconds": 1.5,
         "cutoff": "2025-01-10T03:17:00Z", "tables": "not a field of lastPurge"}
    ) == []  # fmt: skip


def test_runs_not_counted_are_named_a_few_at_a_time_and_change_no_verdict() -> None:
    condition = purge_succeeded(None)
    named = naming_runs_not_counted(condition, ["j-5", "j-1", "j-3", "j-2", "j-4"])
    assert (named.status, named.reason) == (condition.status, condition.reason)
    assert named.message.startswith(condition.message)
    assert "j-1, j-2, j-3 and 2 more" in named.message
    assert "j-4" not in named.message
    assert naming_runs_not_counted(condition, []) == condition
