"""What each kind of evidence record may say: an allow-list of payload fields per kind.

Evidence is kept for years and shown to auditors, so it must never carry Secret data (key
material, passwords) or personal data (names, e-mail addresses, row contents). Free text
cannot be proven clean, so each kind lists the fields it may have and the shape of each
value; identifiers are held to patterns that leave no room for an e-mail address or a
sentence. Unknown fields, unknown kinds and wrong shapes are refused before anything is
written. `message` fields hold Dataward's own messages, which name tables and reasons, never
row contents; a word with `@` in them (an OIDC user's address) is kept as a digest. Refusals
name the field, never the value (it may be the personal data itself).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dataward.accounts import PLAIN_NAME, shown
from dataward.evidence.errors import EvidenceError
from dataward.evidence.records import format_time
from dataward.purge.result import is_count
from dataward.render.rbac import SECRET_READ_VERBS

log = logging.getLogger("dataward.evidence")

Check = Callable[[Any, str], None]


def _pattern(regex: str, what: str) -> Check:
    compiled = re.compile(regex)

    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise EvidenceError(f"{path}: the value is not {what}")

    return check


def _text(limit: int) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or len(value) > limit:
            raise EvidenceError(f"{path}: must be a string of at most {limit} characters")
        if any(ord(c) < 32 for c in value):
            raise EvidenceError(f"{path}: control characters are not allowed")

    return check


def _count(value: Any, path: str) -> None:
    if not is_count(value):
        raise EvidenceError(f"{path}: the value is not a count (a whole number 0..2**63-1)")


def _flag(value: Any, path: str) -> None:
    if not isinstance(value, bool):
        raise EvidenceError(f"{path}: the value is not true or false")


def _one_of(*choices: str) -> Check:
    def check(value: Any, path: str) -> None:
        if value not in choices:
            raise EvidenceError(f"{path}: the value is not one of {', '.join(choices)}")

    return check


def _list_of(item: Check, limit: int = 1000) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, list | tuple) or len(value) > limit:
            raise EvidenceError(f"{path}: must be a list of at most {limit} items")
        for index, element in enumerate(value):
            item(element, f"{path}[{index}]")

    return check


@dataclass(frozen=True)
class Shape:
    """The fields an object may have (each with its check) and the ones it must have."""

    fields: Mapping[str, Check]
    required: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, value: Any, path: str) -> None:
        """Refuse a value that is not an object of this shape."""
        if not isinstance(value, Mapping):
            raise EvidenceError(f"{path}: must be an object")
        unknown = sorted(str(key) for key in set(value) - set(self.fields))
        if unknown:
            raise EvidenceError(
                f"{path}: field {unknown[0]!r} is not allowed in evidence (allowed: "
                f"{', '.join(sorted(self.fields))})"
            )
        missing = sorted(k for k in self.required if value.get(k) is None)
        if missing:
            raise EvidenceError(f"{path}: field {missing[0]!r} is required")
        for key, item in value.items():
            if item is not None:
                self.fields[key](item, f"{path}.{key}")


TIME = _pattern(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", "an RFC 3339 time")
DATE = _pattern(r"\d{4}-\d\d-\d\d", "a date (YYYY-MM-DD)")
NAME = _pattern(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", "a Kubernetes object name")
TABLE = _pattern(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?", "a table name")
REASON = _pattern(r"[A-Za-z][A-Za-z0-9_.-]{0,127}", "a reason word (CamelCase)")
# Opaque ids only: no @, no spaces, so an e-mail address or a name cannot pass as one.
OPAQUE_ID = _pattern(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", "an opaque id")
HEX_DIGEST = _pattern(r"[0-9a-f]{16,64}", "a hex digest")
_MESSAGE_LIMIT = 1024
MESSAGE = _text(_MESSAGE_LIMIT)
# The fields that hold MESSAGE text, at any depth: Dataward's own messages, which may still
# name an account (AccessRestricted names the subjects a binding lets read the Secrets, and
# with OIDC a User is an e-mail address). A word with `@` in it is kept as the digest the
# access records use (`dataward.accounts.shown`: `sha256:` + the name's digest).
FREE_TEXT_FIELDS = frozenset({"message", "emergency"})
_ADDRESS = re.compile(r"[^\s,;()<>\[\]\"'`]*@[^\s,;()<>\[\]\"'`]*")


def _digest_word(match: re.Match[str]) -> str:
    word = match.group(0)
    core = word.rstrip(".")  # the end of a sentence is not part of the name
    return f"{shown(core)}{word[len(core):]}"  # `core` holds `@`: never plain


def redact_addresses(text: str) -> str:
    """`text` with each word holding `@` replaced by its digest (a text that fitted the
    message limit still fits: the digest is longer than most addresses)."""
    redacted = _ADDRESS.sub(_digest_word, text)
    if len(text) <= _MESSAGE_LIMIT < len(redacted):
        redacted = redacted[: _MESSAGE_LIMIT - 3] + "..."
    return redacted


def _redact_free_text(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: redact_addresses(item)
            if key in FREE_TEXT_FIELDS and isinstance(item, str)
            else _redact_free_text(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_free_text(item) for item in value]
    return value
# An account or group name as Kubernetes spells it (system:serviceaccount:NS:NAME, a group):
# no @ and no spaces, so an e-mail address cannot pass; such names are kept as a digest.
ACCOUNT = _pattern(PLAIN_NAME.pattern, "an account or group name")
SHA256 = _pattern(r"[0-9a-f]{64}", "a SHA-256 digest")
CONDITION_STATUS = _one_of("True", "False", "Unknown")

TABLE_RESULT = Shape(
    {
        "table": TABLE,
        "outcome": REASON,
        "cutoff": TIME,
        "rowsDeleted": _count,
        "rowsArchived": _count,
        "rowsDestroyed": _count,
        "expiredRemaining": _count,
        "nullTriggers": _count,
        "rowsSkippedLocked": _count,
        "rowsNoConsent": _count,
        "skipped": _flag,
        "skipReason": REASON,
    },
    frozenset({"table"}),
)

KEY_FIELDS: dict[str, Check] = {
    "secret": NAME,
    "keyId": _count,
    "algorithm": _one_of("AES-256-GCM"),
    "created": TIME,
    # A fingerprint is a domain-separated hash prefix (keys.ring.fingerprint), not material.
    "fingerprint": HEX_DIGEST,
    # Crypto-shredding: the month (YYYY-MM) or year (YYYY) of trigger times the key encrypts.
    "bucket": _pattern(r"\d{4}(-(0[1-9]|1[0-2]))?", "a bucket (YYYY-MM or YYYY)"),
}

OUTAGE_KIND = "evidence.outage"
OUTAGE_SUBJECT = "dataward"  # the log itself, no store's

SHAPES: dict[str, Shape] = {
    "purge.run": Shape(
        {
            # The run's Job: one run is one record however often it is appended (a status
            # write that failed after the append makes the next pass append it again).
            "jobName": NAME,
            # Unknown: the Job finished and left no result record the operator could read.
            "result": _one_of("Succeeded", "Failed", "Held", "Skipped", "Unknown"),
            "dryRun": _flag,
            "reason": REASON,
            "message": MESSAGE,
            "startTime": TIME,
            "completionTime": TIME,
            "cutoff": TIME,
            "archiveCutoff": TIME,
            "serverTime": TIME,
            "rowsDeleted": _count,
            "rowsArchived": _count,
            "rowsDestroyed": _count,
            "expiredRemaining": _count,
            "nullTriggers": _count,
            "rowsSkippedLocked": _count,
            "rowsNoConsent": _count,
            "stoppedEarly": REASON,
            "tables": _list_of(TABLE_RESULT),
            "tablesOmitted": _count,
        },
        frozenset({"result", "dryRun"}),
    ),
    "key.created": Shape(KEY_FIELDS, frozenset({"secret", "keyId"})),
    "key.rotated": Shape(
        {**KEY_FIELDS, "previousKeyId": _count}, frozenset({"secret", "keyId", "previousKeyId"})
    ),
    # Appended before the key leaves the ring: `expired` is when the bucket's last record
    # expired (retention, and the statutory period when there is one).
    "key.shredded": Shape(
        {**KEY_FIELDS, "reason": REASON, "expired": TIME},
        frozenset({"secret", "keyId", "reason"}),
    ),
    # A key.shredded record withdrawn: the key stayed in the ring (a legal hold, a dry run or
    # another gate set between the record and the act, the store's status could not list it,
    # the operator stopped in between, or the record's own append failed and may have been
    # committed). A later key.shredded record of the same key, if any, is the one that took
    # effect.
    "key.shred.cancelled": Shape(
        {**KEY_FIELDS, "reason": REASON},
        frozenset({"secret", "keyId", "reason"}),
    ),
    "request.answered": Shape(
        {
            "requestId": OPAQUE_ID,
            "requestType": _one_of(
                "access", "erasure", "rectification", "restriction", "portability", "objection"
            ),
            "outcome": _one_of(
                "fulfilled", "partially-fulfilled", "refused", "no-data", "failed"
            ),
            "receivedAt": TIME,
            "answeredAt": TIME,
            # receivedAt plus the answer period then in force: late is judged against it.
            "deadline": TIME,
            "recordsAffected": _count,
            "reason": REASON,
            "dryRun": _flag,
            "stores": _count,
            "rowsKept": _count,
        },
        frozenset({"requestId", "requestType", "outcome"}),
    ),
    "policy.revision": Shape(
        {
            "policy": NAME,
            "generation": _count,
            "resourceVersion": OPAQUE_ID,
            "digest": HEX_DIGEST,
            "effectiveDate": DATE,
            "announced": DATE,
            "since": TIME,
            "categories": _list_of(NAME),
            "emergency": MESSAGE,
        },
        frozenset({"policy", "generation"}),
    ),
    # dataward.evidence.access: the API server's audit record of a read of a store's Secrets.
    "access.read": Shape(
        {
            "auditID": OPAQUE_ID,
            "stageTimestamp": TIME,
            "requestReceivedTimestamp": TIME,
            "verb": _one_of(*SECRET_READ_VERBS),
            "namespace": NAME,
            "secret": NAME,
            "user": ACCOUNT,
            "userDigest": SHA256,
            "impersonatedUser": ACCOUNT,
            "impersonatedUserDigest": SHA256,
            "groups": _list_of(ACCOUNT, 64),
            "groupsDigested": _list_of(SHA256, 64),
            "responseCode": _count,
            "decision": _one_of("allow", "forbid"),
        },
        frozenset({"auditID", "stageTimestamp", "verb"}),
    ),
    "condition.transition": Shape(
        {
            "type": REASON,
            "status": CONDITION_STATUS,
            "previousStatus": CONDITION_STATUS,
            "reason": REASON,
            "message": MESSAGE,
            "observedGeneration": _count,
        },
        frozenset({"type", "status"}),
    ),
    # Appends that failed (the evidence database down, a payload refused) between `from` and
    # `to`: appended first thing once one succeeds again, so that what is missing is shown.
    OUTAGE_KIND: Shape(
        {"from": TIME, "to": TIME, "failedAppends": _count},
        frozenset({"from", "to", "failedAppends"}),
    ),
}

KINDS = tuple(sorted(SHAPES))

_SUBJECT = re.compile(r"([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def normalise(value: Any) -> Any:
    """`value` with datetimes as record times and tuples as lists (what JSON can hold)."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Mapping):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    return value


def validate(kind: str, subject: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload, normalised, if `kind` allows it; EvidenceError naming the field otherwise.

    `subject` is `namespace/name` for a store, or a cluster-scoped object's name (a policy).
    """
    shape = SHAPES.get(kind)
    if shape is None:
        raise EvidenceError(f"unknown evidence kind {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise EvidenceError("the subject is not NAMESPACE/NAME or NAME")
    normalised = _redact_free_text(normalise(payload))
    shape(normalised, "payload")
    result: dict[str, Any] = normalised
    return result


def refused(kind: str, subject: str, payload: Mapping[str, Any]) -> bool:
    """Whether the evidence log refuses this record whatever its state (a payload it does
    not take): appending it again cannot help, unlike after an outage."""
    try:
        validate(kind, subject, payload)
    except EvidenceError:
        return True
    return False


class EvidenceSink(Protocol):
    """What the operator needs of the evidence log: append one record."""

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> Any:
        """Append one signed record to the chain."""
        ...


class NotLeadingError(Exception):
    """An evidence record refused because this replica no longer holds the Lease."""


@dataclass(frozen=True)
class FencedSink:
    """`sink`, appending only while `may_write` answers True (the Lease is held), as
    Kube.may_write fences the API writes: a replica frozen past its Lease (SIGSTOP, a long
    GC) and resumed mid-pass records nothing its successor may contradict (a shredding it
    will not carry out)."""

    sink: EvidenceSink
    may_write: Callable[[], bool]

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> Any:
        if not self.may_write():
            raise NotLeadingError("not the leader: evidence record refused")
        return self.sink.append(kind, subject, payload)


def fenced(sink: EvidenceSink | None, may_write: Callable[[], bool] | None) -> EvidenceSink | None:
    """`sink` behind the writes' fence `may_write` (None: unfenced, or no sink)."""
    if sink is None or may_write is None:
        return sink
    return FencedSink(sink, may_write)


def append_record(
    sink: EvidenceSink, kind: str, subject: str, payload: Mapping[str, Any]
) -> str | None:
    """Append a record. None when it is written, or when the log refuses the payload itself
    (logged as an error: appending again cannot help, and the log counts it in its outage
    record); else the class of the error that kept it out (never its message, which could
    quote the payload): appending again may go through (the evidence database down)."""
    try:
        sink.append(kind, subject, payload)
    except Exception as error:  # the evidence database down, a payload refused, ...
        if refused(kind, subject, payload):
            log.error("evidence record %s for %s refused by the evidence log", kind, subject)
            return None
        return type(error).__name__
    return None


# Result JSON field -> purge.run payload field, for what `purge_run_payload` carries over.
_RUN_FIELDS = {
    "result": "result", "dryRun": "dryRun", "reason": "reason", "message": "message",
    "startTime": "startTime", "completionTime": "completionTime", "serverTime": "serverTime",
    "cutoff": "cutoff", "archiveCutoff": "archiveCutoff", "rowsDeleted": "rowsDeleted",
    "rowsArchived": "rowsArchived", "archiveRowsDestroyed": "rowsDestroyed",
    "expiredRemaining": "expiredRemaining", "nullTriggers": "nullTriggers",
    "rowsSkippedLocked": "rowsSkippedLocked", "stoppedEarly": "stoppedEarly",
    "tablesOmitted": "tablesOmitted", "rowsNoConsent": "rowsNoConsent",
}  # fmt: skip
_TABLE_FIELDS = {
    "table": "table", "rowsDeleted": "rowsDeleted", "rowsArchived": "rowsArchived",
    "archiveRowsDestroyed": "rowsDestroyed", "expiredRemaining": "expiredRemaining",
    "nullTriggers": "nullTriggers", "rowsSkippedLocked": "rowsSkippedLocked",
    "rowsNoConsent": "rowsNoConsent",
}  # fmt: skip


def purge_run_payload(result: Mapping[str, Any]) -> dict[str, Any]:
    """The `purge.run` payload for a purge result as `dataward purge` prints it (JSON).

    Carries over the counts, instants, outcome and Dataward's own message; leaves out what
    evidence does not keep (the store, which is the subject; floats such as durations; the
    acknowledge token). Each table gets the run's cutoff, except a table whose trigger is a
    wall clock or date of records[].timeZone (`timeZone` in its result): its bound is the
    zone's, on the zone's calendar, which the run's cutoff is not. The result still goes
    through `validate` on append.
    """
    payload = {
        to: result[source] for source, to in _RUN_FIELDS.items() if result.get(source) is not None
    }
    message = payload.get("message")
    if isinstance(message, str):
        # One line, within the limit: evidence keeps the gist, the Job's log keeps the rest.
        flat = " ".join(message.split())
        payload["message"] = (
            flat if len(flat) <= _MESSAGE_LIMIT else flat[: _MESSAGE_LIMIT - 3] + "..."
        )
    tables = result.get("tables")
    if isinstance(tables, list):
        payload["tables"] = [
            {
                **{
                    to: t[source]
                    for source, to in _TABLE_FIELDS.items()
                    if t.get(source) is not None
                },
                **(
                    {"cutoff": result["cutoff"]}
                    if result.get("cutoff") and not t.get("timeZone")
                    else {}
                ),
            }
            for t in tables
            if isinstance(t, Mapping)
        ]
    return payload
