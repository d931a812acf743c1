"""PurgeScheduled and PurgeSucceeded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from dataward.checks.conditions import (
    PURGE_SCHEDULED,
    PURGE_SUCCEEDED,
    Condition,
    as_reason,
    named,
)
from dataward.checks.drift import matches
from dataward.checks.observed import LastPurge, ObservedObject
from dataward.checks.purge_runs import StuckRun
from dataward.keys.ring import format_time
from dataward.model.compliance import Finding
from dataward.purge.plan import WORK_LIMIT_STOP

NOT_COUNTED_NAMED = 3  # how many runs not counted a PurgeSucceeded message names


def purge_scheduled(
    findings: Sequence[Finding],
    suspended_by_spec: bool,
    desired: Mapping[str, Any],
    observed: ObservedObject,
) -> Condition:
    """True when the CronJob exists as rendered and is not suspended.

    The live CronJob must contain everything the rendered one says (the API server adds
    defaults, so this is a containment check, not equality).
    """
    name = f"{desired['metadata']['namespace']}/{desired['metadata']['name']}"
    if findings:
        return Condition(
            PURGE_SCHEDULED,
            "False",
            "PolicyNotCompliant",
            f"CronJob {name} is suspended because the store does not comply with its policy "
            f"({findings[0].reason}): fix what PolicyCompliant says; no purge runs until then.",
        )
    if suspended_by_spec:
        return Condition(
            PURGE_SCHEDULED,
            "False",
            "PurgeSuspended",
            f"spec.purge.suspend is true (a legal hold), so CronJob {name} runs no purge: "
            "set it to false when the hold ends.",
        )
    if observed.presence == "unknown":
        return Condition(
            PURGE_SCHEDULED,
            "Unknown",
            "CronJobUnreadable",
            f"CronJob {name} could not be read or written ({observed.error}); the operator "
            "retries. Check that it may get, create and update cronjobs in this namespace, "
            "and that no admission policy refuses them.",
        )
    if observed.presence == "absent" or observed.body is None:
        return Condition(
            PURGE_SCHEDULED,
            "False",
            "CronJobMissing",
            f"CronJob {name} does not exist; the operator recreates it. If this persists, "
            "check the operator's logs.",
        )
    if not matches(desired["spec"], observed.body.get("spec")):
        return Condition(
            PURGE_SCHEDULED,
            "False",
            "CronJobDrifted",
            f"CronJob {name} differs from what the store declares; the operator restores it. "
            "Change spec.purge of the store instead of editing the CronJob.",
        )
    spec = desired["spec"]
    return Condition(
        PURGE_SCHEDULED,
        "True",
        "Scheduled",
        f"CronJob {name} runs the purge on {spec['schedule']!r} ({spec['timeZone']}).",
    )


def purge_succeeded(
    last: LastPurge | None,
    runs_error: str | None = None,
    stuck: StuckRun | None = None,
    deadline: timedelta | None = None,
    missed: datetime | None = None,
    zoned: bool = False,
) -> Condition:
    """True when the last purge run finished without error (or none has run yet).

    `runs_error` says the purge Jobs (or the pods of the last one) could not be listed: then
    nothing is known. `stuck` is a run still going long past its deadline; `missed` the
    scheduled time of a run that never started. `zoned`: the store names records[].timeZone,
    so the run's cutoff (UTC's calendar) is not the bound of a table whose wall-clock or
    date trigger has one (`sql.bind_cutoff`: the zone's calendar), which the run's message
    names.
    """
    if runs_error is not None:
        return Condition(
            PURGE_SUCCEEDED,
            "Unknown",
            "PurgeRunsUnreadable",
            f"The purge Jobs of the store could not be read ({runs_error}); whether the last "
            "run succeeded is unknown. The operator retries; check that it may list jobs and "
            "pods in this namespace.",
        )
    if stuck is not None:
        limit = f" (its deadline is {int(deadline.total_seconds())}s)" if deadline else ""
        return Condition(
            PURGE_SUCCEEDED,
            "False",
            "PurgeRunStuck",
            f"Purge Job {stuck.job_name} started {stuck.started} and has not finished{limit}: "
            "read its pod's events and logs (a pod that never starts, a database that hangs); "
            "delete the Job to let the next scheduled run start.",
        )
    if missed is not None:
        return Condition(
            PURGE_SUCCEEDED,
            "False",
            "PurgeRunMissed",
            f"The purge scheduled for {format_time(missed)} never started: expired records "
            "stay until a run does. Check the CronJob's events and that the cluster's CronJob "
            "controller is running; `kubectl create job --from=cronjob/<name>` runs one now.",
        )
    if last is None:
        # Nothing has failed: the first run happens on schedule, and PurgeScheduled
        # already says whether one will.
        return Condition(
            PURGE_SUCCEEDED, "True", "NoRunYet", "No purge has run yet; none has failed."
        )
    started = f" that started {last.start_time}" if last.start_time else ""
    detail = f": {last.message}" if last.message else "."
    if last.result in ("Held", "Skipped"):
        # Not an error: the purge decided not to delete (legal hold, nothing to do, ...).
        return Condition(
            PURGE_SUCCEEDED,
            "True",
            f"Purge{last.result}",
            f"The purge{started} was {last.result.lower()} without error{detail}",
        )
    if last.result == "Succeeded":
        if last.dry_run:
            return Condition(
                PURGE_SUCCEEDED,
                "True",
                "DryRunSucceeded",
                f"The dry run{started} found {last.rows_deleted} expired row(s) and deleted "
                "nothing; set spec.purge.dryRun to false to enforce retention.",
            )
        if last.reason:
            # Only the work limit is advised: a hold or an edit is not lifted by more rows.
            advice = (
                " The next run continues; raise spec.purge.maxRowsPerRun if backlogs persist."
                if last.reason == WORK_LIMIT_STOP
                else ""
            )
            return Condition(
                PURGE_SUCCEEDED,
                "True",
                "StoppedEarly",
                f"The purge{started} deleted {last.rows_deleted} and archived "
                f"{last.rows_archived} row(s), then stopped ({last.reason}){detail}{advice}",
            )
        return Condition(
            PURGE_SUCCEEDED,
            "True",
            "Succeeded",
            f"The purge{started} deleted {last.rows_deleted} and archived "
            f"{last.rows_archived} row(s) up to cutoff {last.cutoff}{_zoned(zoned)}.",
        )
    reason = as_reason(last.reason or "", "PurgeFailed")
    return Condition(
        PURGE_SUCCEEDED,
        "False",
        reason,
        f"The purge{started} ended with {last.result}{detail} Read the purge Job's "
        "termination message, fix the cause, and the next scheduled run retries.",
    )


def _zoned(zoned: bool) -> str:
    """What PurgeSucceeded adds to the run's cutoff for a store with records[].timeZone."""
    if not zoned:
        return ""
    return (
        " on UTC's calendar (instant columns and tables without records[].timeZone); a table "
        "whose wall-clock or date trigger has a timeZone was cut at its own bound on the "
        "zone's calendar, which status.lastPurge.message names"
    )


def naming_runs_not_counted(condition: Condition, not_counted: Sequence[str]) -> Condition:
    """PurgeSucceeded with the Jobs and pods named that claim to be the store's purge work
    (an owner reference to its CronJob or to its purge Job) but do not run what the CronJob
    describes: the verdict ignores them, the message says so (their names only)."""
    if not not_counted:
        return condition
    listed = named(sorted(not_counted), NOT_COUNTED_NAMED)
    return replace(
        condition,
        message=f"{condition.message} Not counted as purge runs: {listed}, with an owner "
        "reference to the store's purge but not running its CronJob's pod template (made "
        "from an earlier template, or by someone else).",
    )
