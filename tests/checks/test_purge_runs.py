"""Purge runs from Jobs and CronJobs as listed: stuck, missed, owned."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.checks.purge_runs import missed_run, owned_by, stuck_at, stuck_run

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
