"""AccessRecorded: reads of the store's Secrets are kept as access records (where we can tell).

The operator can tell only when it follows the API server's audit log (`dataward run
--audit-log`). Then every reconcile's read of each of the store's Secrets by name (the key
ring and the credentials) is a canary: the API server must write an audit event for it (if
the audit policy covers that Secret) and the operator must append it to the evidence log.
The verdict:

- Unknown when the audit log cannot be read, or records cannot be appended: the operator
  cannot tell whether the reads are kept;
- False when a read the operator made is, `grace` later, still not in the audit log while the
  log is being read: the API server is not auditing this store's Secrets (its audit policy
  predates the store, or was not installed);
- True once, for every one of the Secrets, a read at or after the operator's read is in the
  log and in the evidence log; Unknown before the first such read of each arrives.

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
    """What the audit log follower knows of the reads of one store's Secrets."""

    now: datetime  # the wall clock when this was taken
    log_error: str | None  # why the audit log cannot be read, if it cannot
    evidence_error: str | None  # why records cannot be appended, if they cannot
    asked: datetime | None  # the operator's oldest read of one of them not yet in the log
    # The newest read seen in the log and recorded of the Secret answered least recently;
    # None while one of them has had none.
    answered: datetime | None
    # The Secret `asked` is of, else the first one never answered (None: none is either).
    secret: str | None = None


def access_recorded(
    canary: AccessCanary, ring: str, log_path: str, grace: timedelta
) -> Condition:
    """Decide AccessRecorded for a store whose key ring is `ring`, from the canary of every
    one of its Secrets (the ring and its credentials): True only once each was audited."""
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
            f"The operator read {_secret(canary, ring)} at "
            f"{_time(canary.asked)} and the API server's audit log {log_path} has no record "
            f"of it {int(grace.total_seconds())} s later: "
            "the API server does not audit reads of it (its audit policy predates the store, "
            "or this Secret's name, or it stopped writing this file). Install the policy "
            "`dataward audit-policy` renders now (it changes when stores are added or their "
            "Secrets renamed).",
        )
    if canary.answered is not None:
        return Condition(
            ACCESS_RECORDED,
            "True",
            "AccessReadsRecorded",
            f"The API server audited reads of key ring {ring} and of every other Secret of the "
            f"store (the oldest last audited at {_time(canary.answered)}), and the operator "
            "appended them to the evidence log.",
        )
    return Condition(
        ACCESS_RECORDED,
        "Unknown",
        "AccessRecordPending",
        f"The operator read {_secret(canary, ring)} and waits for the API "
        f"server's audit record of that read in {log_path} (up to "
        f"{int(grace.total_seconds())} s).",
    )


def _secret(canary: AccessCanary, ring: str) -> str:
    """The Secret the canary's verdict is about, as a message names it."""
    name = canary.secret or ring
    return f"key ring {ring}" if name == ring else f"Secret {name}"


def _time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")
