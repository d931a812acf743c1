"""The purge runs of a store, from its Jobs and their pods: pure functions of what was listed.

Only Jobs that the store's own CronJob created count (an owner reference to its uid), and
only pods of such a Job (an owner reference to the Job's uid): a Job someone else labelled
as the store's purge cannot forge `status.lastPurge`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dataward.checks.observed import unreadable_purge_fields, unreadable_purge_message
from dataward.model.cron import parse_cron
from dataward.model.errors import ModelError

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def owned_by(obj: Mapping[str, Any], kind: str, uid: str, *, controller: bool = False) -> bool:
    """True when `obj` has an owner reference to the `kind` with this uid (`controller`: one
    that also says `controller: true`, as every child the operator renders carries)."""
    return any(
        ref.get("kind") == kind
        and ref.get("uid") == uid
        and (not controller or ref.get("controller") is True)
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or ()
    )


def finished(job: Mapping[str, Any]) -> str | None:
    """`Complete` or `Failed` once the Job has finished, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def newest_finished(jobs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The Job that finished last, or None."""
    done = [job for job in jobs if finished(job)]
    if not done:
        return None
    return max(
        done,
        key=lambda j: (
            (j.get("status") or {}).get("completionTime") or "",
            j["metadata"].get("creationTimestamp") or "",
        ),
    )


@dataclass(frozen=True)
class StuckRun:
    """A purge Job still running long past the deadline it was given."""

    job_name: str
    started: str


def stuck_run(
    jobs: Sequence[Mapping[str, Any]], now: datetime, deadline: timedelta
) -> StuckRun | None:
    """The oldest unfinished Job that started more than `deadline` ago, or None."""
    stuck = []
    for job in jobs:
        started = (job.get("status") or {}).get("startTime")
        if finished(job) or not started:
            continue
        if datetime.fromisoformat(str(started).replace("Z", "+00:00")) + deadline < now:
            stuck.append(StuckRun(str(job["metadata"]["name"]), str(started)))
    return min(stuck, key=lambda run: run.started) if stuck else None


def stuck_at(
    jobs: Sequence[Mapping[str, Any]], now: datetime, deadline: timedelta
) -> datetime | None:
    """When the next unfinished Job becomes stuck (its start plus `deadline`, still ahead)."""
    due = [
        _instant(str(started)) + deadline
        for job in jobs
        for started in [(job.get("status") or {}).get("startTime")]
        if started and not finished(job)
    ]
    ahead = [at for at in due if at > now]
    return min(ahead) if ahead else None


def missed_run(
    cronjob: Mapping[str, Any], now: datetime, grace: timedelta, manager: str
) -> datetime | None:
    """The scheduled time of a run the CronJob should have started by now and did not.

    A run is missed when its scheduled time is more than `grace` ago (the CronJob's own
    starting deadline and a margin), later than the CronJob was created or last changed by
    `manager` (a new schedule, or the end of a suspension, starts afresh), and later than the
    CronJob controller's `status.lastScheduleTime`. A suspended CronJob misses nothing; a
    schedule or time zone this cannot read is not judged.
    """
    spec = cronjob.get("spec") or {}
    if spec.get("suspend"):
        return None
    try:
        zone = ZoneInfo(str(spec.get("timeZone") or "Etc/UTC"))
        cron = parse_cron(str(spec.get("schedule", "")))
    except (ZoneInfoNotFoundError, ValueError, ModelError):
        return None
    due = cron.last_fire_at_or_before((now - grace).astimezone(zone))
    if due is None:
        return None
    metadata = cronjob.get("metadata") or {}
    changed = [
        str(entry["time"])
        for entry in metadata.get("managedFields") or ()
        if entry.get("manager") == manager and entry.get("time")
    ]
    since = max([str(metadata.get("creationTimestamp") or ""), *changed])
    last = (cronjob.get("status") or {}).get("lastScheduleTime")
    if not since or due <= _instant(since) or (last and due <= _instant(str(last))):
        return None
    return due.astimezone(UTC)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def result_record(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The purge's JSON result record from the newest pod's termination message, if any."""
    for pod in sorted(
        pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True
    ):
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                try:
                    parsed = json.loads(terminated["message"])
                except ValueError:
                    continue
                if isinstance(parsed, Mapping):
                    return parsed
    return None


_COPIED = (
    "startTime",
    "completionTime",
    "cutoff",
    "rowsDeleted",
    "rowsArchived",
    "archiveRowsDestroyed",
    "expiredRemaining",
    "oldestExpiredAgeSeconds",
    "nullTriggers",
    "rowsSkippedLocked",
    "rowsNoConsent",
    "dryRun",
    "result",
    "reason",
    "stoppedEarly",
    "message",
)


def last_purge_status(
    job_name: str, outcome: str, record: Mapping[str, Any] | None, job_status: Mapping[str, Any]
) -> dict[str, Any]:
    """`status.lastPurge` from a finished Job and the purge's result record, if it wrote one."""
    failed = outcome == "Failed"
    if record is None:
        # The pod died before writing its record (OOM, deadline, image pull): say so.
        return _without_record(job_name, failed, job_status, "without a purge result record")
    status = {key: record[key] for key in _COPIED if record.get(key) is not None}
    error = record.get("error")
    if isinstance(error, Mapping) and error.get("message") and "message" not in status:
        status["message"] = str(error["message"])
    status["jobName"] = job_name
    status.setdefault("result", "Failed" if failed else "Unknown")
    garbled = unreadable_purge_fields(status)
    if garbled:
        # Not the purge's form (written by something else in its pod, or a bug): neither
        # copied to status (the API server would refuse it) nor read as a result.
        return _without_record(
            job_name, failed, job_status, f"but {unreadable_purge_message(garbled)}"
        )
    return status


def _without_record(
    job_name: str, failed: bool, job_status: Mapping[str, Any], why: str
) -> dict[str, Any]:
    """`status.lastPurge` of a finished Job without a (readable) result record."""
    return {
        "jobName": job_name,
        "startTime": job_status.get("startTime"),
        "completionTime": job_status.get("completionTime"),
        "result": "Failed" if failed else "Unknown",
        "reason": "JobFailed" if failed else "NoResultRecord",
        "message": f"Job {job_name} {'failed' if failed else 'finished'} {why}; read the "
        "Job's events and the pod's logs.",
    }
