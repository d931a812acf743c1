"""AccessRecorded: reads of the store's Secrets are kept as access records (where we can tell).

The operator can tell only when it follows the API server's audit log (`dataward run
--audit-log`). Then every reconcile's read of the key ring is a canary: the API server must
write an audit event for it (if the audit policy covers the store's Secrets) and the operator
must append it to the evidence log. The verdict:

- Unknown when the audit log cannot be read, or records cannot be appended: the operator
  cannot tell whether the reads are kept;
- False when a read the operator made is, `grace` later, still not in the audit log while the
  log is being read: the API server is not auditing this store's Secrets (its audit policy
  predates the store, or was not installed);
- True once a read of the ring at or after the operator's read is in the log and in the
  evidence log; Unknown before the first such read arrives.

Times here are the wall clock of the operator and the API server's audit timestamps, both
real: this measures the audit pipeline, not a policy duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dataward.checks.conditions import ACCESS_RECORDED, Condition

# The API server's clock may be a little behind the operator's.
CLOCK_SKEW = timedelta(seconds=5)


@dataclass(frozen=True)
class AccessCanary:
    """What the audit log follower knows of one store's key ring reads."""

    now: datetime  # the wall clock when this was taken
    log_error: str | None  # why the audit log cannot be read, if it cannot
    evidence_error: str | None  # why records cannot be appended, if they cannot
    asked: datetime | None  # the operator's oldest read not yet seen in the log
    answered: datetime | None  # the newest read of the ring seen in the log and recorded


def access_recorded(
    canary: AccessCanary, ring: str, log_path: str, grace: timedelta
) -> Condition:
    """Decide AccessRecorded for a store whose key ring is `ring`."""
    if canary.log_error is not None:
        return Condition(
            ACCESS_RECORDED,
            "Unknown",
            "AuditLogUnreadable",
            f"The API server's audit log {log_path} could not be read ({canary.log_error}), "
            "so whether reads of the store's Secrets are recorded cannot be told; the "
            "operator retries.",
        )
    if canary.evidence_error is not None:
        return Condition(
            ACCESS_RECORDED,
            "Unknown",
            "AccessEvidenceUnwritable",
            "Reads of the store's Secrets are in the audit log but could not be appended to "
            f"the evidence log ({canary.evidence_error}); the operator retries from the first "
            "read not appended.",
        )
    if canary.asked is not None and canary.now - canary.asked >= grace:
        return Condition(
            ACCESS_RECORDED,
            "False",
            "AccessReadNotAudited",
            f"The operator read key ring {ring} at {_time(canary.asked)} and the API server's "
            f"audit log {log_path} has no record of it {int(grace.total_seconds())} s later: "
            "the API server does not audit this store's Secrets (its audit policy predates "
            "the store, or it stopped writing this file). Install the policy `dataward "
            "audit-policy` renders now (it changes when stores are added).",
        )
    if canary.answered is not None:
        return Condition(
            ACCESS_RECORDED,
            "True",
            "AccessReadsRecorded",
            f"The API server audited a read of key ring {ring} at {_time(canary.answered)} "
            "and the operator appended it to the evidence log.",
        )
    return Condition(
        ACCESS_RECORDED,
        "Unknown",
        "AccessRecordPending",
        f"The operator read key ring {ring} and waits for the API server's audit record of "
        f"that read in {log_path} (up to {int(grace.total_seconds())} s).",
    )


def _time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
