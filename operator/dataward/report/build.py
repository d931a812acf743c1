"""Build the self-audit report from evidence records: pure functions, no I/O.

Every figure carries `evidence`, the sequence numbers of the records it was computed from.
The records are trusted only as far as the chain verification went: when the chain is broken
at record N, records N and later are left out and the gap says so. Times are the records'
times (the operator's clock). Durations are whole seconds, so every figure is exact.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dataward.checks.access import BEYOND_READERS
from dataward.checks.conditions import (
    ACCESS_RESTRICTED,
    ENCRYPTION_KEY_READY,
    NETWORK_ISOLATED,
    PURGE_SCHEDULED,
    PURGE_SUCCEEDED,
)
from dataward.evidence.chain import Verdict
from dataward.evidence.payloads import KINDS, OUTAGE_KIND
from dataward.evidence.records import Record, format_time
from dataward.model.durations import Duration
from dataward.model.policy import Policy

SCHEMA_VERSION = 1
SCHEMA_ID = "https://dataward.io/schemas/report-v1.json"
UNKNOWN_CATEGORY = "(unknown)"

# What appends each kind of record. None: nothing in this version of Dataward appends it, so
# an absent kind says nothing about whether the event happened.
PRODUCERS: dict[str, str | None] = {
    "purge.run": "the operator, when a store's purge Job has finished,",
    "key.created": "the operator, when it creates a store's key ring,",
    "key.rotated": "the operator, when it rotates a store's key ring,",
    "key.shredded": "the operator, when it destroys an expired bucket's key (keyBuckets),",
    "key.shred.cancelled": "the operator, when a recorded key.shredded does not take effect "
    "(a legal hold or another gate set in between, a failed status write, the operator "
    "stopped in between, or the key.shredded append failed and may have been committed),",
    "request.answered": "the operator, when a DataSubjectRequest has been answered,",
    "policy.revision": "the operator, when a policy revision comes into force,",
    "condition.transition": "the operator, when a store's condition changes status,",
    "access.read": "the operator, when it follows the API server's audit log (--audit-log),",
}

_QUARTER = re.compile(r"(\d{4})Q([1-4])")


def previous_quarter(now: datetime) -> Quarter:
    """The last quarter that ended before `now` (UTC): 2026Q4 on any day of 2027Q1."""
    now = now.astimezone(UTC)
    number = (now.month - 1) // 3 + 1
    year, number = (now.year - 1, 4) if number == 1 else (now.year, number - 1)
    return parse_quarter(f"{year}Q{number}")


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter in UTC: [start, end)."""

    label: str
    start: datetime
    end: datetime


def parse_quarter(text: str) -> Quarter:
    """`2026Q4` as a Quarter; ValueError naming the format otherwise."""
    match = _QUARTER.fullmatch(text.strip().upper())
    if not match:
        raise ValueError(f"quarter {text!r}: write YEARQN, e.g. 2026Q4")
    year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, 3 * number - 2, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if number == 4
        else datetime(year, 3 * number + 1, 1, tzinfo=UTC)
    )
    return Quarter(f"{year}Q{number}", start, end)


@dataclass(frozen=True)
class StoreInfo:
    """What the stores files say about one store (`namespace/name`)."""

    category: str
    key_rotation: Duration | None = None


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time from a payload or a record; None when absent or malformed."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo else None


def _t(record: Record) -> datetime:
    value = parse_time(record.time)
    if value is None:
        raise ValueError(f"record {record.seq} has no valid time")
    return value


def _iso(instant: datetime) -> str:
    return format_time(instant)


def _seconds(delta: timedelta) -> int:
    # Never negative: two times out of order (writers' clocks) are no time, not time back.
    return max(0, int(delta.total_seconds()))


DAY = 86400


def days_text(seconds: object) -> str:
    """Seconds as days for a reader (`2.50 d`); `unknown` when not a number."""
    return f"{seconds / DAY:.2f} d" if isinstance(seconds, int) else "unknown"


def _count(payload: Mapping[str, Any], key: str) -> int:
    value = payload.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def week_start(instant: datetime) -> date:
    """The Monday (UTC) of the ISO week `instant` falls in."""
    day = instant.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _weeks(quarter: Quarter) -> list[date]:
    first = week_start(quarter.start)
    weeks = []
    while datetime(first.year, first.month, first.day, tzinfo=UTC) < quarter.end:
        weeks.append(first)
        first += timedelta(days=7)
    return weeks


# --- the chain --------------------------------------------------------------------------


def _chain(verdict: Verdict | None) -> dict[str, Any]:
    if verdict is None:
        return {"verdict": "unverified", "records": 0, "head": None, "broken": None}
    head = {"seq": verdict.last.seq, "hash": verdict.last.hash} if verdict.last.seq else None
    broken = (
        None
        if verdict.broken is None
        else {
            "seq": verdict.broken.seq,
            "check": verdict.broken.check,
            "message": verdict.broken.message,
        }
    )
    return {
        "verdict": "intact" if verdict.intact else "broken",
        "records": verdict.records,
        "head": head,
        "broken": broken,
    }


def trusted_records(records: Iterable[Record], verdict: Verdict | None) -> list[Record]:
    """The records the report may use: all of them up to the first break, in sequence order."""
    ordered = sorted(records, key=lambda r: r.seq)
    if verdict is not None and verdict.broken is not None:
        return [r for r in ordered if r.seq < verdict.broken.seq]
    return ordered


# --- stores and conditions --------------------------------------------------------------


def _conditions(records: Sequence[Record], quarter: Quarter) -> list[dict[str, Any]]:
    """Per store and condition type: the status at the start, each change, the status at the
    end, and the seconds of the quarter it was known not to be True."""
    by_key: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        if record.kind == "condition.transition" and _t(record) < quarter.end:
            by_key.setdefault((record.subject, str(record.payload.get("type"))), []).append(record)
    stores: dict[str, list[dict[str, Any]]] = {}
    for (subject, kind), changes in sorted(by_key.items()):
        before = [r for r in changes if _t(r) < quarter.start]
        during = [r for r in changes if _t(r) >= quarter.start]
        status = str(before[-1].payload.get("status")) if before else None
        evidence = ([before[-1].seq] if before else []) + [r.seq for r in during]
        # Seconds not True: from each instant the status is known to be other than True.
        not_true, since, current = 0, quarter.start, status
        for change in during:
            # A change never takes effect before the one appended ahead of it: a writer whose
            # clock runs behind must not take seconds off (the gap `time-order` says so).
            at = max(_t(change), since)
            if current is not None and current != "True":
                not_true += _seconds(at - since)
            since, current = at, str(change.payload.get("status"))
        if current is not None and current != "True":
            not_true += _seconds(quarter.end - since)
        stores.setdefault(subject, []).append(
            {
                "type": kind,
                "statusAtStart": status,
                "statusAtEnd": current,
                "secondsNotTrue": not_true,
                "unknownBeforeSeconds": 0
                if status is not None
                else _seconds((_t(during[0]) if during else quarter.end) - quarter.start),
                "transitions": [
                    {
                        "seq": r.seq,
                        "time": r.time,
                        "status": str(r.payload.get("status")),
                        "reason": r.payload.get("reason"),
                        "message": r.payload.get("message"),
                    }
                    for r in during
                ],
                "evidence": evidence,
            }
        )
    return [{"subject": s, "conditions": c} for s, c in sorted(stores.items())]


# --- purges -----------------------------------------------------------------------------


def _in(record: Record, quarter: Quarter) -> bool:
    return quarter.start <= _t(record) < quarter.end


def _runs(records: Sequence[Record], quarter: Quarter) -> list[Record]:
    """The purge.run records of the quarter, each run once: a run appended again (its status
    write failed after the append) has the same store and Job; the first record stands."""
    seen: set[tuple[str, str]] = set()
    runs = []
    for record in records:
        if record.kind != "purge.run" or not _in(record, quarter):
            continue
        job = record.payload.get("jobName")
        if isinstance(job, str):
            if (record.subject, job) in seen:
                continue
            seen.add((record.subject, job))
        runs.append(record)
    return runs


def _purges(
    records: Sequence[Record], quarter: Quarter, stores: Mapping[str, StoreInfo]
) -> dict[str, Any]:
    runs = _runs(records, quarter)
    real = [r for r in runs if r.payload.get("dryRun") is not True]
    categories: dict[str, dict[str, Any]] = {}
    weekly: dict[tuple[str, str], dict[str, Any]] = {}
    for run in real:
        category = stores[run.subject].category if run.subject in stores else UNKNOWN_CATEGORY
        entry = categories.setdefault(
            category,
            {
                "category": category,
                "runs": 0,
                "failedRuns": 0,
                "rowsDeleted": 0,
                "rowsArchived": 0,
                "rowsDestroyed": 0,
                "stores": [],
                "evidence": [],
            },
        )
        entry["runs"] += 1
        entry["failedRuns"] += run.payload.get("result") == "Failed"
        for key in ("rowsDeleted", "rowsArchived", "rowsDestroyed"):
            entry[key] += _count(run.payload, key)
        if run.subject not in entry["stores"]:
            entry["stores"].append(run.subject)
        entry["evidence"].append(run.seq)
        week = week_start(_t(run)).isoformat()
        cell = weekly.setdefault(
            (week, category),
            {
                "week": week,
                "category": category,
                "rowsDeleted": 0,
                "rowsDestroyed": 0,
                "evidence": [],
            },
        )
        cell["rowsDeleted"] += _count(run.payload, "rowsDeleted")
        cell["rowsDestroyed"] += _count(run.payload, "rowsDestroyed")
        cell["evidence"].append(run.seq)
    return {
        "runs": [
            {
                "seq": r.seq,
                "time": r.time,
                "subject": r.subject,
                "category": stores[r.subject].category if r.subject in stores else UNKNOWN_CATEGORY,
                "result": r.payload.get("result"),
                "reason": r.payload.get("reason"),
                "dryRun": r.payload.get("dryRun") is True,
                "rowsDeleted": _count(r.payload, "rowsDeleted"),
                "rowsArchived": _count(r.payload, "rowsArchived"),
                "rowsDestroyed": _count(r.payload, "rowsDestroyed"),
                "expiredRemaining": _count(r.payload, "expiredRemaining"),
            }
            for r in runs
        ],
        "byCategory": sorted(categories.values(), key=lambda e: e["category"]),
        "weekly": [weekly[key] for key in sorted(weekly)],
    }


def _overdue(records: Sequence[Record], quarter: Quarter) -> list[dict[str, Any]]:
    """Per store: rows expired but still there, at its last real run and at the worst run."""
    latest: dict[str, Record] = {}
    worst: dict[str, Record] = {}
    for run in _runs(records, quarter):
        if run.payload.get("dryRun") is True:
            continue
        latest[run.subject] = run
        best = worst.get(run.subject)
        if best is None or _count(run.payload, "expiredRemaining") > _count(
            best.payload, "expiredRemaining"
        ):
            worst[run.subject] = run
    return [
        {
            "subject": subject,
            "expiredRemainingAtLastRun": _count(last.payload, "expiredRemaining"),
            "lastRunSeq": last.seq,
            "maxExpiredRemaining": _count(worst[subject].payload, "expiredRemaining"),
            "maxSeq": worst[subject].seq,
            # purge.run payloads do not carry the oldest expired row's age (see gaps).
            "oldestExpired": None,
            "evidence": sorted({last.seq, worst[subject].seq}),
        }
        for subject, last in sorted(latest.items())
    ]


# --- keys -------------------------------------------------------------------------------


def _key_created(record: Record) -> datetime:
    return parse_time(record.payload.get("created")) or _t(record)


def _keys(
    records: Sequence[Record],
    quarter: Quarter,
    stores: Mapping[str, StoreInfo],
    policy: Policy | None,
) -> list[dict[str, Any]]:
    """Per store: each primary key in force during the quarter, its age against the limit."""
    primaries: dict[str, list[Record]] = {}
    for record in records:
        # A bucket key (crypto-shredding: `bucket` in its record) is never the primary key.
        if (
            record.kind in ("key.created", "key.rotated")
            and "bucket" not in record.payload
            and _t(record) < quarter.end
        ):
            primaries.setdefault(record.subject, []).append(record)
    result = []
    for subject, history in sorted(primaries.items()):
        info = stores.get(subject)
        limit = (info.key_rotation if info else None) or (policy.key_rotation if policy else None)
        # Keys that became primary before the quarter matter only from the last one on.
        first = max((i for i, r in enumerate(history) if _t(r) < quarter.start), default=0)
        keys = []
        for index in range(first, len(history)):
            record = history[index]
            created = _key_created(record)
            until = _t(history[index + 1]) if index + 1 < len(history) else quarter.end
            due = limit.add_to(created) if limit else None
            keys.append(
                {
                    "keyId": _count(record.payload, "keyId"),
                    "secret": record.payload.get("secret"),
                    "created": _iso(created),
                    "primaryUntil": _iso(until) if index + 1 < len(history) else None,
                    "maxAgeSeconds": _seconds(until - created),
                    "rotationDue": _iso(due) if due else None,
                    "overdue": bool(due is not None and due < until),
                    "rotatedInQuarter": record.kind == "key.rotated" and _in(record, quarter),
                    "evidence": [record.seq]
                    + ([history[index + 1].seq] if index + 1 < len(history) else []),
                }
            )
        result.append(
            {
                "subject": subject,
                "rotationLimit": str(limit) if limit else None,
                "rotations": sum(1 for r in history if r.kind == "key.rotated" and _in(r, quarter)),
                "keys": keys,
                "evidence": [r.seq for r in history[first:]],
            }
        )
    return result


# --- access, requests, revisions --------------------------------------------------------


def _foreign_access(records: Sequence[Record], quarter: Quarter) -> list[dict[str, Any]]:
    """Each time AccessRestricted went False because someone beyond the readers can read the
    Secrets (`BEYOND_READERS`: a binding on them, one to start pods that mount them, or one
    to become someone who reads them), and when it became True again; kept when the
    interval touches the quarter."""
    open_: dict[str, Record] = {}
    found: list[dict[str, Any]] = []
    for record in records:
        if record.kind != "condition.transition" or record.payload.get("type") != (
            "AccessRestricted"
        ):
            continue
        if _t(record) >= quarter.end:
            continue  # dated later (or by a clock ahead): records after it may still count
        status, reason = record.payload.get("status"), record.payload.get("reason")
        if status == "False" and reason in BEYOND_READERS:
            open_.setdefault(record.subject, record)
        elif status == "True" and record.subject in open_:
            start = open_.pop(record.subject)
            if _t(record) >= quarter.start:
                found.append(_finding(start, record))
    for start in open_.values():
        found.append(_finding(start, None))
    return sorted(found, key=lambda f: f["foundSeq"])


def _finding(start: Record, end: Record | None) -> dict[str, Any]:
    return {
        "subject": start.subject,
        "found": start.time,
        "foundSeq": start.seq,
        "message": start.payload.get("message"),
        "resolved": end.time if end else None,
        "resolvedSeq": end.seq if end else None,
        "openSeconds": _seconds(_t(end) - _t(start)) if end else None,
        "evidence": [start.seq] + ([end.seq] if end else []),
    }


def _requests(records: Sequence[Record], quarter: Quarter) -> list[dict[str, Any]]:
    """The request.answered records of the quarter, each answer once: one appended again
    (appended before its status write, which failed) has the same request and outcome; the
    first record stands (its answeredAt is when the answer first went on record)."""
    answered = []
    seen: set[tuple[str, object, object]] = set()
    for record in records:
        if record.kind != "request.answered" or not _in(record, quarter):
            continue
        key = (record.subject, record.payload.get("requestId"), record.payload.get("outcome"))
        if key in seen:
            continue
        seen.add(key)
        received = parse_time(record.payload.get("receivedAt"))
        at = parse_time(record.payload.get("answeredAt")) or _t(record)
        due = parse_time(record.payload.get("deadline"))
        answered.append(
            {
                "seq": record.seq,
                "subject": record.subject,
                "requestId": record.payload.get("requestId"),
                "requestType": record.payload.get("requestType"),
                "outcome": record.payload.get("outcome"),
                "received": _iso(received) if received else None,
                "answered": _iso(at),
                "deadline": _iso(due) if due else None,
                "late": at > due if due else None,
                "secondsToAnswer": _seconds(at - received) if received else None,
                "evidence": [record.seq],
            }
        )
    return answered


def _revisions(records: Sequence[Record], quarter: Quarter) -> list[dict[str, Any]]:
    return [
        {
            "seq": r.seq,
            "time": r.time,
            "policy": r.payload.get("policy"),
            "generation": r.payload.get("generation"),
            "effectiveDate": r.payload.get("effectiveDate"),
            "digest": r.payload.get("digest"),
            "evidence": [r.seq],
        }
        for r in records
        if r.kind == "policy.revision" and _in(r, quarter)
    ]


# --- gaps -------------------------------------------------------------------------------


def _gaps(
    chain: Mapping[str, Any],
    records: Sequence[Record],
    quarter: Quarter,
    stores: Mapping[str, StoreInfo],
    report: Mapping[str, Any],
) -> list[dict[str, Any]]:
    gaps: list[dict[str, Any]] = []

    def gap(code: str, message: str, evidence: Sequence[int] = ()) -> None:
        gaps.append({"code": code, "message": message, "evidence": list(evidence)})

    if chain["verdict"] == "unverified":
        gap(
            "chain-unverified",
            "the evidence chain was not verified (no public key given): "
            "no figure here is shown to be unaltered",
        )
    elif chain["verdict"] == "broken":
        broken = chain["broken"]
        gap(
            "chain-broken",
            f"the evidence chain is broken at record {broken['seq']} ({broken['check']}): "
            f"{broken['message']}; records {broken['seq']} and later are left out of every "
            "figure",
            [broken["seq"]],
        )
    in_quarter = [r for r in records if _in(r, quarter)]
    if not in_quarter:
        gap("no-records", f"no evidence record falls in {quarter.label}")
    else:
        busy = {week_start(_t(r)) for r in in_quarter}
        for week in _weeks(quarter):
            if week not in busy:
                gap("no-records", f"no evidence record in the week of {week.isoformat()}")
    backwards = [
        (before, after)
        for before, after in _time_order(records)
        if _in(before, quarter) or _in(after, quarter)
    ]
    if backwards:
        gap(
            "time-order",
            f"{len(backwards)} record(s) touching {quarter.label} carry a time earlier than a "
            "record appended before them: the writers' clocks disagree (replicas, a clock set "
            "back or ahead), so times and durations around them are approximate (a change is "
            "taken to happen no earlier than the one appended before it)",
            sorted({r.seq for pair in backwards for r in pair})[:40],
        )
    for record in records:
        if record.kind != OUTAGE_KIND:
            continue
        began = parse_time(record.payload.get("from")) or _t(record)
        ended = parse_time(record.payload.get("to")) or _t(record)
        if began < quarter.end and ended >= quarter.start:
            gap(
                "evidence-outage",
                f"the evidence log took no record from {_iso(began)} to {_iso(ended)} "
                f"({_count(record.payload, 'failedAppends')} append(s) failed): records of "
                "that time may be missing, so no figure here is shown complete",
                [record.seq],
            )
    present = {r.kind for r in in_quarter}
    for kind in KINDS:
        if kind in present or kind == OUTAGE_KIND:  # its absence is the good news
            continue
        producer = PRODUCERS.get(kind)
        why = (
            f"{producer} appends it: either nothing happened, or it was not recorded"
            if producer
            else "nothing in this version of Dataward appends it yet, so its absence proves nothing"
        )
        gap("kind-absent", f"no {kind} record in {quarter.label}: {why}")
    if report["purges"]["runs"]:
        gap(
            "oldest-expired-not-recorded",
            "purge.run records carry how many expired rows "
            "remain, not how old the oldest is: the oldest expired row cannot be reported",
        )
    subjects = {r.subject for r in in_quarter if "/" in r.subject}
    for subject in sorted(subjects - set(stores)):
        seqs = [r.seq for r in in_quarter if r.subject == subject]
        gap(
            "store-not-in-files",
            f"{subject} has records but is not in the stores files: its "
            "category and key rotation limit are unknown",
            seqs[:20],
        )
    for subject in sorted(set(stores) - subjects):
        gap(
            "store-without-records",
            f"{subject} is in the stores files but has no record in {quarter.label}",
        )
    return gaps


def _time_order(records: Sequence[Record]) -> list[tuple[Record, Record]]:
    """(the latest-dated record before it, a record) for each record dated earlier than one
    appended before it: in chain order (the order of appends), times should not go back."""
    pairs: list[tuple[Record, Record]] = []
    latest: Record | None = None
    for record in records:
        if latest is not None and _t(record) < _t(latest):
            pairs.append((latest, record))
        else:
            latest = record
    return pairs


# --- clauses ----------------------------------------------------------------------------


def _evidence_of(items: Iterable[Mapping[str, Any]]) -> list[int]:
    return sorted({seq for item in items for seq in item.get("evidence", [])})


def _clause(
    clause_id: str,
    source: str,
    text: str,
    controls: Sequence[str],
    sections: Sequence[str],
    evidence: Sequence[int],
    findings: Sequence[str] = (),
    verifiable: bool = True,
) -> dict[str, Any]:
    return {
        "id": clause_id,
        "source": source,
        "text": text,
        "controls": list(controls),
        "sections": list(sections),
        "status": _status(verifiable, findings, evidence),
        "findings": list(findings),
        "evidence": sorted(set(evidence)),
    }


def _status(verifiable: bool, findings: Sequence[str], evidence: Sequence[int]) -> str:
    """A clause's status: what its findings and evidence show, if the log can show it."""
    if not verifiable:
        return "not-verifiable"
    if findings:
        return "findings"
    return "evidenced" if evidence else "no-evidence"


def _not_in_force(
    report: Mapping[str, Any], types: Collection[str], subjects: Collection[str] | None = None
) -> tuple[list[str], list[int]]:
    """The findings and records of each condition of `types` (of `subjects`; None: every
    store) that was not True for some of the quarter: False or Unknown, a control that was
    not shown in force, is never part of a clause `evidenced`."""
    findings: list[str] = []
    evidence: list[int] = []
    for store in report["stores"]:
        if subjects is not None and store["subject"] not in subjects:
            continue
        for condition in store["conditions"]:
            if condition["type"] in types and condition["secondsNotTrue"] > 0:
                findings.append(
                    f"{store['subject']}: {condition['type']} was not True for "
                    f"{days_text(condition['secondsNotTrue'])} of the quarter (records "
                    f"{', '.join(str(seq) for seq in condition['evidence'][:20])})"
                )
                evidence += condition["evidence"]
    return findings, evidence


def _unrecorded(
    report: Mapping[str, Any], types: Sequence[str], stores: Mapping[str, StoreInfo]
) -> list[str]:
    """A finding for each store of the files with no record of a condition of `types`, ever:
    the log does not show that control in force for it (only changes are recorded, so a
    store steady since before the evidence log was configured has none)."""
    recorded = {(s["subject"], c["type"]) for s in report["stores"] for c in s["conditions"]}
    return [
        f"{subject}: no {kind} record in the evidence log, so it is not shown in force"
        for subject in sorted(stores)
        for kind in types
        if (subject, kind) not in recorded
    ]


def _clauses(
    report: Mapping[str, Any], policy: Policy | None, stores: Mapping[str, StoreInfo]
) -> list[dict[str, Any]]:
    purges, overdue = report["purges"], report["overdue"]
    clauses = []
    for category in policy.categories if policy else ():
        members = sorted(s for s, info in stores.items() if info.category == category.name)
        runs = [r for r in purges["runs"] if r["category"] == category.name and not r["dryRun"]]
        late = [o for o in overdue if o["subject"] in members and o["expiredRemainingAtLastRun"]]
        findings = [
            f"purge run {r['seq']} of {r['subject']} failed"
            if r["result"] == "Failed"
            else f"purge run {r['seq']} of {r['subject']}: its outcome is unknown ({r['reason']})"
            for r in runs
            if r["result"] in ("Failed", "Unknown")
        ]
        findings += [
            f"{o['subject']}: {o['expiredRemainingAtLastRun']} expired rows remained at its "
            f"last run (record {o['lastRunSeq']})"
            for o in late
        ]
        unscheduled, unscheduled_evidence = _not_in_force(
            report, (PURGE_SCHEDULED, PURGE_SUCCEEDED), members
        )
        findings += unscheduled
        period = category.retention.period
        clauses.append(
            _clause(
                f"retention/{category.name}",
                "Retention table; destruction clause ①",
                f"{category.description or category.name}: destroyed {period.describe()} after "
                f"{category.retention.trigger}",
                [
                    f"PersonalDataStore {m}: purge CronJob, conditions PurgeScheduled and "
                    "PurgeSucceeded"
                    for m in members
                ]
                or ["no store of this category in the stores files"],
                ["purges", "overdue"],
                [r["seq"] for r in runs] + _evidence_of(late) + unscheduled_evidence,
                findings,
            )
        )
        if category.statutory:
            archived = [r for r in runs if r["rowsArchived"] or r["rowsDestroyed"]]
            clauses.append(
                _clause(
                    f"statutory/{category.name}",
                    "Statutory table; destruction clauses ② and ③",
                    f"{category.name}: kept {category.statutory.period.describe()} under "
                    f"{category.statutory.statute}, apart from live data, then destroyed",
                    [
                        "spec.archive: a separate archive database; the purge copies, then "
                        "deletes, and destroys archived copies after the statutory period"
                    ],
                    ["purges"],
                    [r["seq"] for r in archived],
                )
            )
    keys = report["keys"]
    late_keys = [
        f"{k['subject']}: key {key['keyId']} was primary past its rotation due {key['rotationDue']}"
        for k in keys
        for key in k["keys"]
        if key["overdue"]
    ]
    access_changes = [
        c
        for s in report["stores"]
        for c in s["conditions"]
        if c["type"] in (ACCESS_RESTRICTED, NETWORK_ISOLATED)
    ]
    access_down, _ = _not_in_force(report, (ACCESS_RESTRICTED, NETWORK_ISOLATED))
    access_down += _unrecorded(report, (ACCESS_RESTRICTED, NETWORK_ISOLATED), stores)
    with_keys = {k["subject"] for k in keys}
    keys_unrecorded = [
        f"{subject}: no key.created or key.rotated record in the evidence log, so its key "
        "ring is not shown"
        for subject in sorted(set(stores) - with_keys)
    ]
    key_down, key_down_evidence = _not_in_force(report, (ENCRYPTION_KEY_READY,))
    foreign = report["foreignAccess"]
    clauses += [
        _clause(
            "encryption",
            "Safety measures ⑤",
            "important data is encrypted"
            + (f"; keys rotate at least every {policy.key_rotation.describe()}" if policy else ""),
            ["key ring Secret per store (AES-256-GCM)", "condition EncryptionKeyReady"],
            ["keys", "stores"],
            _evidence_of(keys) + key_down_evidence,
            late_keys + key_down + keys_unrecorded,
        ),
        _clause(
            "access-restriction",
            "Safety measures ⑦ and ⑨",
            "access to personal information is granted, changed and revoked deliberately; "
            "unauthorised access is blocked",
            [
                "Role and RoleBinding on exactly the store's Secrets",
                "NetworkPolicy",
                "conditions AccessRestricted and NetworkIsolated",
            ],
            ["stores", "foreignAccess"],
            _evidence_of(access_changes) + _evidence_of(foreign),
            [
                f"{f['subject']}: another binding granted its Secrets from record {f['foundSeq']}"
                + (
                    f", resolved at record {f['resolvedSeq']}"
                    if f["resolvedSeq"]
                    else ", not resolved by the end of the quarter"
                )
                for f in foreign
            ]
            + access_down,
        ),
        _clause(
            "access-records",
            "Safety measures ⑥",
            "access records are kept at least "
            + (policy.access_log_retention.describe() if policy else "the policy's period")
            + " and protected against forgery",
            [
                "API server audit policy (dataward audit-policy)",
                "signed, hash-chained evidence log (dataward evidence verify)",
            ],
            ["chain"],
            [],
            verifiable=False,
        ),
        _clause(
            "subject-requests",
            "Access requests (Article 35); destruction clause ①",
            "requests to view or erase personal information are processed promptly",
            ["request.answered evidence records"],
            ["requests"],
            _evidence_of(report["requests"]),
            [
                f"request {r['requestId']} ({r['subject']}, record {r['seq']}) "
                + ("failed" if r["outcome"] == "failed" else f"was answered after {r['deadline']}")
                for r in report["requests"]
                if r["outcome"] == "failed" or r["late"]
            ],
        ),
        _clause(
            "revisions",
            "Revision notice",
            "changes to the policy are announced at least 7 days (30 for significant changes) "
            "before they take effect",
            ["policy.revision evidence records"],
            ["revisions"],
            _evidence_of(report["revisions"]),
        ),
        _clause(
            "self-audit",
            "Safety measures ①",
            "self-audits are conducted once a quarter",
            ["this report", "dataward evidence verify"],
            ["chain", "gaps"],
            [report["chain"]["head"]["seq"]] if report["chain"]["head"] else [],
            [g["message"] for g in report["gaps"] if g["code"] == "chain-broken"],
        ),
    ]
    return clauses


# --- the report -------------------------------------------------------------------------


def build_report(
    records: Iterable[Record],
    quarter: Quarter,
    *,
    verdict: Verdict | None,
    policy: Policy | None = None,
    stores: Mapping[str, StoreInfo] | None = None,
    generated_at: datetime,
) -> dict[str, Any]:
    """The report for `quarter` from `records` (the whole chain, so state before it counts)."""
    stores = dict(stores or {})
    chain = _chain(verdict)
    usable = [r for r in trusted_records(records, verdict) if parse_time(r.time) is not None]
    period = quarter
    # A quarter not yet over is measured to the report's time: what comes after is unknown.
    quarter = _measured(quarter, generated_at)
    report: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "schemaVersion": SCHEMA_VERSION,
        "quarter": quarter.label,
        "period": {"start": _iso(period.start), "end": _iso(period.end)},
        "generatedAt": _iso(generated_at),
        "chain": chain,
        "policy": None
        if policy is None
        else {
            "name": policy.name,
            "effectiveDate": policy.effective_date.isoformat() if policy.effective_date else None,
            "keyRotation": str(policy.key_rotation),
            "accessLogRetention": str(policy.access_log_retention),
            "categories": [c.name for c in policy.categories],
        },
        "recordsInPeriod": sum(1 for r in usable if _in(r, quarter)),
        "stores": _conditions(usable, quarter),
        "purges": _purges(usable, quarter, stores),
        "overdue": _overdue(usable, quarter),
        "keys": _keys(usable, quarter, stores, policy),
        "foreignAccess": _foreign_access(usable, quarter),
        "requests": _requests(usable, quarter),
        "revisions": _revisions(usable, quarter),
    }
    report["gaps"] = _gaps(chain, usable, quarter, stores, report)
    if quarter.end < period.end:
        report["gaps"].append({
            "code": "quarter-not-ended",
            "message": f"this report was written at {_iso(quarter.end)}, before "
            f"{period.label} ends at {_iso(period.end)}: every figure runs to then only, "
            "and no clause is shown for the whole quarter",
            "evidence": [],
        })  # fmt: skip
    report["clauses"] = _clauses(report, policy, stores)
    # No clause is evidenced on a log that may lack records of the period, or whose records
    # are not shown to be the operator's.
    incomplete = _incomplete(report["gaps"], usable, quarter)
    for clause in report["clauses"] if incomplete else ():
        if clause["status"] != "not-verifiable":
            clause["findings"] += incomplete
            clause["status"] = _status(True, clause["findings"], clause["evidence"])
    return report


def _measured(quarter: Quarter, now: datetime) -> Quarter:
    """`quarter`, ending at `now` when it has not ended yet (at its start, if not begun)."""
    if now >= quarter.end:
        return quarter
    return Quarter(quarter.label, quarter.start, max(quarter.start, now.astimezone(UTC)))


def _incomplete(
    gaps: Sequence[Mapping[str, Any]], usable: Sequence[Record], quarter: Quarter
) -> list[str]:
    """The messages of the gaps that leave the quarter's evidence incomplete or unproven:
    appends that failed in it; a chain not verified (anyone with the evidence login can
    insert rows); a chain broken before the log reached the quarter's end (the records left
    out from the break on, or cut off the end, may be the quarter's). A break right after a
    record dated past the quarter leaves the quarter's records, appended before it, verified
    (the last record before the break: one dated ahead earlier on, by a clock ahead, is no
    sign that the log went on past the quarter)."""
    reached_end = bool(usable) and _t(usable[-1]) >= quarter.end
    return [
        g["message"]
        for g in gaps
        if g["code"] in ("evidence-outage", "chain-unverified", "quarter-not-ended")
        or (g["code"] == "chain-broken" and not reached_end)
    ]
