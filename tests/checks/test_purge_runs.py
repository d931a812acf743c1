"""Purge runs from Jobs and CronJobs as listed: stuck, missed, owned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.checks.purge_runs import (
    last_purge_status,
    missed_run,
    owned_by,
    stuck_at,
    stuck_run,
)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _cronjob(schedule: str = "17 3 * * *", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": "2026-02-01T00:00:00Z", "managedFields": []},
        "spec": {"schedule": schedule, "timeZone": "Asia/Seoul", "suspend": False},
        "status": {},
        **extra,
    }


def test_a_run_never_started_is_missed_in_the_cronjobs_own_zone() -> None:
    # 03:17 in Seoul is 18:17 UTC the day before.
    assert missed_run(_cronjob(), NOW, GRACE, "dataward") == datetime(
        2026, 3, 1, 18, 17, tzinfo=UTC
    )


def test_a_run_recorded_by_the_cronjob_controller_is_not_missed() -> None:
    cronjob = _cronjob(status={"lastScheduleTime": "2026-03-01T18:17:00Z"})
    assert missed_run(cronjob, NOW, GRACE, "dataward") is None


def test_a_run_due_within_the_grace_is_not_missed_yet() -> None:
    cronjob = _cronjob("55 11 * * *")
    cronjob["spec"]["timeZone"] = "Etc/UTC"
    cronjob["status"] = {"lastScheduleTime": "2026-03-01T11:55:00Z"}
    assert missed_run(cronjob, NOW, GRACE, "dataward") is None


def test_nothing_is_missed_before_the_schedule_was_last_changed_or_while_suspended() -> None:
    changed = _cronjob()
    changed["metadata"]["managedFields"] = [{"manager": "dataward", "time": "2026-03-02T00:00:00Z"}]
    assert missed_run(changed, NOW, GRACE, "dataward") is None
    someone_else = _cronjob()
    someone_else["metadata"]["managedFields"] = [
        {"manager": "kubectl", "time": "2026-03-02T00:00:00Z"}
    ]
    assert missed_run(someone_else, NOW, GRACE, "dataward") is not None
    suspended = _cronjob()
    suspended["spec"]["suspend"] = True
    assert missed_run(suspended, NOW, GRACE, "dataward") is None


def test_a_job_is_stuck_only_past_its_deadline_and_unfinished() -> None:
    def job(name: str, started: datetime, done: bool = False) -> dict[str, Any]:
        conditions = [{"type": "Complete", "status": "True"}] if done else []
        return {
            "metadata": {"name": name},
            "status": {
                "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "conditions": conditions,
            },
        }

    deadline = timedelta(hours=1)
    jobs = [
        job("fresh", NOW - timedelta(minutes=30)),
        job("done", NOW - timedelta(hours=5), done=True),
        job("stuck", NOW - timedelta(hours=2)),
    ]
    stuck = stuck_run(jobs, NOW, deadline)
    assert stuck is not None and stuck.job_name == "stuck"
    assert stuck_run(jobs[:2], NOW, deadline) is None
    # Without any event, the store is due again when the fresh run would become stuck.
    assert stuck_at(jobs, NOW, deadline) == NOW + timedelta(minutes=30)
    assert stuck_at(jobs[1:2], NOW, deadline) is None


def test_ownership_is_by_uid_not_by_name() -> None:
    job = {"metadata": {"ownerReferences": [{"kind": "CronJob", "name": "x", "uid": "u1"}]}}
    assert owned_by(job, "CronJob", "u1")
    assert not owned_by(job, "CronJob", "u2")


def test_a_garbled_result_record_is_not_copied_to_status() -> None:
    """The API server would refuse the status write (the reconcile failing for ever)."""
    job = {"startTime": "2026-01-10T03:17:00Z", "completionTime": "2026-01-10T03:18:00Z"}
    record = {"result": "Succeeded", "rowsDeleted": "GARBLE-7f3c", "cutoff": "2026-01-10"}
    last = last_purge_status("run-1", "Complete", record, job)
    assert last == {
        "jobName": "run-1",
        "startTime": "2026-01-10T03:17:00Z",
        "completionTime": "2026-01-10T03:18:00Z",
        "result": "Unknown",
        "reason": "NoResultRecord",
        "message": "Job run-1 finished but field(s) cutoff, rowsDeleted of its result record "
        "are not in the form the purge writes; read the Job's events and the pod's logs.",
    }
    failed = last_purge_status("run-1", "Failed", record, job)
    assert (failed["result"], failed["reason"]) == ("Failed", "JobFailed")
    good = {"result": "Succeeded", "rowsDeleted": 3, "dryRun": False}
    assert last_purge_status("run-1", "Complete", good, job) == {**good, "jobName": "run-1"}
