"""EncryptionKeyReady: the key ring exists, is the one status recorded, and is fresh."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal

from dataward.checks.conditions import (
    ENCRYPTION_KEY_READY,
    OPERATOR_CONDITION_TYPES,
    READY,
    Condition,
    named,
)
from dataward.checks.observed import (
    KeyRecord,
    KeyRingRecord,
    ObservedKeyRing,
    OwedWithdrawal,
    ShreddedRecord,
)
from dataward.checks.reasons import lookup
from dataward.keys.ring import KeyRing, KeyVersion, fingerprint, format_time
from dataward.model.durations import Duration
from dataward.model.store import Store


def encryption_key_ready(
    observed: ObservedKeyRing,
    record: KeyRingRecord | None,
    secret_name: str,
    now: datetime,
    max_age: Duration,
    not_ours: bool = False,
    unreadable: str | None = None,
) -> Condition:
    """Decide EncryptionKeyReady; a ring that vanished, changed or was planted is never ready.

    `record` is what status recorded about the ring; its fingerprints are how a ring that
    was replaced out of band is told apart from one the operator rotated. `not_ours`: a
    Secret of the ring's name exists that the operator cannot prove it created (see
    `is_ours`), and the store does not ask to adopt it. `unreadable`: the field of
    status.encryption that is not in the operator's form (`Unreadable`); nothing was done.
    """
    if unreadable is not None:
        return Condition(
            ENCRYPTION_KEY_READY,
            "Unknown",
            "StatusUnreadable",
            f"The record of Secret {secret_name} in the store's status cannot be read: "
            f"{unreadable_problem(unreadable)}. Whether the ring is the operator's and "
            "unchanged, and what crypto-shredding still owes, is unknown: nothing is created, "
            "rotated, adopted or destroyed until the field is restored as the operator wrote "
            "it (the evidence log's key records give ids, fingerprints and buckets). Anyone "
            "who may write the store's status subresource can write it (with the chart's "
            "status guard: only holders of `override`): find who did in the API server's "
            "audit log.",
        )
    if observed.presence == "unknown":
        return Condition(
            ENCRYPTION_KEY_READY,
            "Unknown",
            "KeyRingUnreadable",
            f"Secret {secret_name} could not be read ({observed.problem}); nothing is created "
            "or rotated until a read succeeds. Check the operator's access to it.",
        )
    if observed.presence == "absent":
        if record is not None:
            return Condition(
                ENCRYPTION_KEY_READY,
                "False",
                "KeyRingMissing",
                f"Secret {secret_name} held key ring version(s) "
                f"{_ids(k.id for k in record.keys)} and has been deleted; the operator does "
                "not create a new ring, which could not decrypt existing data. Restore the "
                "Secret from a backup.",
            )
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyRingMissing",
            f"Secret {secret_name} does not exist yet; the operator creates it. If this "
            "persists, check the operator's logs.",
        )
    if not_ours:
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyRingNotCreatedByOperator",
            f"Secret {secret_name} exists but the operator did not create it (its keys match "
            "no fingerprint recorded in this store's status), so it is neither used nor "
            "changed: whoever made it may know its keys. Delete it and the operator creates "
            "a new ring; or, if it is this store's ring restored from a backup, set "
            "spec.encryption.adoptExistingKeyRing: true (only someone who may read the Secret "
            "can).",
        )
    if observed.ring is None:
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyRingInvalid",
            f"Secret {secret_name} is not a valid key ring ({observed.problem}); it was "
            "changed outside the operator. Restore it from a backup.",
        )
    ring = observed.ring
    if record is not None:
        changes = ring_changes(record, ring)
        if changes:
            return Condition(
                ENCRYPTION_KEY_READY,
                "False",
                "KeyMaterialChanged",
                f"Secret {secret_name} was changed outside the operator: {'; '.join(changes)}. "
                "Data encrypted with the recorded keys may be unreadable, and no key is "
                "rotated or shredded meanwhile: restore the Secret from a backup.",
            )
    primary = ring.primary_key
    expires = max_age.add_to(primary.created)
    if expires <= now:
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyRotationDue",
            f"Primary key {primary.id} of Secret {secret_name} was created "
            f"{format_time(primary.created)} and is older than keyRotation {max_age}; the "
            "operator rotates it (never twice within half the period). If this persists, "
            "check the operator's logs.",
        )
    return Condition(
        ENCRYPTION_KEY_READY,
        "True",
        "KeyReady",
        f"Primary key {primary.id} (fingerprint {fingerprint(primary)}) of Secret "
        f"{secret_name} was created {format_time(primary.created)}; it is rotated by "
        f"{format_time(expires)}.",
    )


def is_ours(record: KeyRingRecord | None, ring: KeyRing | None) -> bool:
    """True when status proves the operator made `ring`: it recorded these very keys.

    The operator records a ring's fingerprints in status before it creates the Secret, so a
    Secret planted under the ring's name (before the store existed, or in the moment before
    the create, which then gets a 409) never matches. A record of keys the ring has since
    outgrown by rotation still proves it; keys changed or gone are `ring_changes`.
    """
    if record is None or ring is None:
        return False
    current = ring.fingerprints()
    if record.pending:
        recorded = {key.id: key.fingerprint for key in record.keys}
        return current == recorded
    return any(current.get(key.id) == key.fingerprint for key in record.keys)


def entry_changes(recorded: KeyRecord, version: KeyVersion) -> tuple[str, ...]:
    """The fields of ring entry `version` that differ from what status recorded of it, by
    name, never value: `material` (its fingerprint), `created` (rotation reads it: moved
    forward, a key never looks old) and `bucket` (shredding reads it: relabelled, the key of
    a live bucket is destroyed for an expired one's). The algorithm is the ring's only one.

    Times compare as the instant to the second in UTC, the form every version recorded
    (a ring adopted from a backup may write the same instant with fractions or an offset).
    """
    changed: list[str] = []
    if fingerprint(version) != recorded.fingerprint:
        changed.append("material")
    if format_time(version.created) != _recorded_time(recorded.created):
        changed.append("created")
    if version.bucket != recorded.bucket:
        changed.append("bucket")
    return tuple(changed)


def _recorded_time(text: str) -> str | None:
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None  # never equal to a ring's time: a change, not a match
    return format_time(instant) if instant.tzinfo is not None else None


def _entry_change(key_id: int, changed: str) -> str:
    if changed == "material":
        return f"key {key_id} has different material"
    if changed == "created":
        return f"key {key_id} has a different created time than recorded"
    return f"key {key_id} has a different {changed} than recorded"


def ring_changes(record: KeyRingRecord, ring: KeyRing) -> list[str]:
    """How `ring` differs from what status recorded: keys gone, material, creation time or
    bucket changed (of a key status lists, or lists as pending), primary back, keys that
    status lists neither as its keys nor as pending (by fingerprint), and its list of
    shredded keys (`shredded_changes`)."""
    current = {version.id: version for version in ring.keys}
    changes: list[str] = []
    shredded = record.shredded_ids()
    for key in record.keys:
        if key.id not in current:
            if key.id not in shredded:  # a shredding status recorded first is no change
                changes.append(f"key {key.id} is gone")
        else:
            changes.extend(_entry_change(key.id, c) for c in entry_changes(key, current[key.id]))
    if ring.primary < record.primary_id:
        changes.append(f"the primary moved back from key {record.primary_id} to {ring.primary}")
    known = {key.id for key in record.keys}  # their changes are said above
    pending = {key.id: key for key in record.pending_keys}
    for version in ring.keys:
        if version.id in known:
            continue
        recorded = pending.get(version.id)
        if recorded is not None and recorded.fingerprint == fingerprint(version):
            # The operator's key, recorded before it was added: held to that record.
            changes.extend(_entry_change(version.id, c) for c in entry_changes(recorded, version))
            continue
        # Every key is recorded before it is added (at creation, rotation and for a
        # bucket), by its fingerprint: this one the operator never made, and whoever
        # added it may know its material.
        bucket = "" if version.bucket is None else f" of bucket {version.bucket}"
        changes.append(f"key {version.id}{bucket} was added outside the operator")
    changes.extend(shredded_changes(record, ring))
    return changes


def shredded_changes(record: KeyRingRecord, ring: KeyRing) -> list[str]:
    """How the ring's `shredded` list differs from the shreddings status recorded
    (shreddedBuckets, written before the Secret loses a key): an entry status never recorded
    (a live or future bucket marked destroyed: never given a key, refused by every
    application), a recorded one gone from the list while its key is gone too (its id could
    be given out again, its blobs read as "no key"), or one with another bucket or time.

    A recorded shredding whose key is still in the ring is no change: the Secret write that
    destroys it failed, or is still to come; nor is an entry dated after the recorded time (a
    key is destroyed at or after its shredding is recorded). Ids and buckets only, as status
    shows them.
    """
    recorded = {gone.id: gone for gone in record.shredded}
    listed = {gone.id for gone in ring.shredded}
    in_ring = {version.id for version in ring.keys}
    changes: list[str] = []
    for gone in ring.shredded:
        known = recorded.get(gone.id)
        if known is None:
            changes.append(
                f"key {gone.id} of bucket {gone.bucket} is listed as shredded, but the "
                "operator recorded no such shredding"
            )
            continue
        if gone.bucket != known.bucket:
            changes.append(f"shredded key {gone.id} has a different bucket than recorded")
        recorded_at = _recorded_time(known.shredded)
        # Destroyed at or after its shredding was recorded: the previous release wrote a
        # retried destruction at the retry's time (this one writes status' own time).
        if recorded_at is None or format_time(gone.shredded) < recorded_at:
            changes.append(
                f"shredded key {gone.id} has a shredded time before the recorded one"
            )
    for known in record.shredded:
        if known.id not in listed and known.id not in in_ring:
            changes.append(
                f"the record of shredded key {known.id} (bucket {known.bucket}) was removed"
            )
    return changes


def keys_to_record(new: KeyRing, recorded: KeyRingRecord) -> tuple[KeyRecord, ...]:
    """The keys of `new` that status (`recorded`, as read) does not list among its keys:
    what the operator records as pendingKeys before it writes `new` to the Secret, so that a
    key in the ring that status lists nowhere is known not to be its own (`ring_changes`),
    even when the status write after the ring write is lost."""
    known = {key.id for key in recorded.keys}
    records = KeyRingRecord.from_ring(new, recorded.secret_name).keys
    return tuple(key for key in records if key.id not in known)


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)


ShreddingBlocker = Literal[
    "legal-hold", "dry-run", "no-evidence-log", "failed",
    "clock-skew", "not-compliant", "not-acknowledged", "settling",
]  # fmt: skip
# More bucket keys due at once than this (after a long outage, a shortened retention) wait
# for a person: SHREDDING_ANNOTATION set to the token naming them (`shredding_token`).
LARGE_SHREDDING = 1
# The shredding's own acknowledgement; the purge's (dataward.io/acknowledge-large-purge) names
# a cut, not keys, and outlives it (annotations do not bump the generation): never this one's.
SHREDDING_ANNOTATION = "dataward.io/acknowledge-shredding"
# EncryptionKeyReady's reason while more bucket keys are due at once than may go unasked, as
# the plugin looks for it (`key_shredding` writes it; the plugin's tests build the condition
# with `key_shredding`, so a rename of one side fails them).
SHREDDING_NOT_ACKNOWLEDGED = "KeyShreddingNotAcknowledged"
# The verdicts a shredding does not wait for: its own (EncryptionKeyReady says why keys wait,
# so waiting on it would wait for ever) and Ready, which sums it.
_NOT_AWAITED = (ENCRYPTION_KEY_READY, READY)
# The reason of a key.shred.cancelled record, by what kept the key.
CANCEL_REASONS: dict[str, str] = {
    "legal-hold": "LegalHold",
    "dry-run": "DryRun",
    "clock-skew": "ClockSkew",
    "not-compliant": "NotCompliant",
    "not-acknowledged": "NotAcknowledged",
}
# ... and of one owed by an operator that stopped before it knew why (before the status write
# that lists the shredding, or before the one that records why the key stays).
INTERRUPTED = "Interrupted"
# ... and of one listed whose bucket has not expired after all (`listed_not_expired`).
NOT_EXPIRED = "NotExpired"


def listed_not_expired(
    record: KeyRingRecord, ring: KeyRing, expired: Callable[[str], bool]
) -> tuple[str, ...]:
    """The buckets status lists as shredded whose key is still in the ring (a destruction
    still to be written) but that have not expired (`expired`: at the latest instant the
    listing may have been made at, the API server's time within the allowed skew): the
    retention was lengthened since it was listed, or the listing is not the operator's
    (whoever may write the store's status). Carried out when due, it would destroy the key
    without a key.shredded record of its own, dated by that listing."""
    in_ring = {key.id for key in ring.keys}
    return tuple(
        gone.bucket for gone in record.shredded if gone.id in in_ring and not expired(gone.bucket)
    )


def _recorded_key_ready(status: Any) -> Condition | None:
    """EncryptionKeyReady as `status` records it, if that is one of the operator's verdicts
    (a status and reason the reference lists for it) with a message; else None."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return None
    found = [
        c for c in conditions if isinstance(c, Mapping) and c.get("type") == ENCRYPTION_KEY_READY
    ]
    if len(found) != 1 or not isinstance(found[0].get("message"), str):
        return None
    (entry,) = found
    known = any(
        e.status == entry.get("status") and e.reason == entry.get("reason")
        for e in lookup(str(entry.get("reason")), ENCRYPTION_KEY_READY)
    )
    return replace(
        _KEPT, status=entry["status"], reason=entry["reason"], message=entry["message"]
    ) if known else None  # fmt: skip


# What `_recorded_key_ready` fills in with the recorded status, reason and message.
_KEPT = Condition(ENCRYPTION_KEY_READY, "True", "KeyReady", "")


def standing_withdrawals(
    owed: Iterable[OwedWithdrawal], ring: KeyRing, suspend: bool, dry_run: bool
) -> tuple[OwedWithdrawal, ...]:
    """The withdrawals status says are owed whose key is still in the ring (same id and
    fingerprint), each with its reason. A key gone from the ring owes nothing: its
    key.shredded record is true now."""
    fingerprints = ring.fingerprints()
    unknown = (
        CANCEL_REASONS["legal-hold"] if suspend else CANCEL_REASONS["dry-run"] if dry_run
        else INTERRUPTED
    )  # fmt: skip
    return tuple(
        debt if debt.reason else replace(debt, reason=unknown)
        for debt in owed
        if fingerprints.get(debt.id) == debt.fingerprint
    )


def clock_skew_problem(now: datetime, server: datetime | None, bound: timedelta) -> str | None:
    """Why the operator's clock (`now`) cannot time a destruction: the API server's time
    (`server`, on the operator's scale) is unknown, or differs by more than `bound`."""
    if server is None:
        return "the API server's answer carried no Date header, so its time is unknown"
    skew = abs(now - server)
    if skew <= bound:
        return None
    # Whole minutes, no instants: the message (in status) stays the same from pass to pass.
    ahead = "ahead of" if now > server else "behind"
    return (
        f"the operator's clock is about {round(skew.total_seconds() / 60)} minute(s) {ahead} "
        f"the API server's, more than the {bound.total_seconds():.0f}s allowed: fix time "
        "synchronisation (NTP) on the operator's node or the API server's"
    )


def controls_not_in_force(status: Any, generation: int) -> str | None:
    """Why the store's recorded verdicts (`status`, as read from the API, of the store at
    `generation`) do not let a key be destroyed: a verdict other than EncryptionKeyReady and
    Ready, recorded for `generation`, that is not True, or one that does not say which
    generation of the spec it judged; no verdict yet, or conditions not in the form the
    operator writes (unknown is not True). A verdict recorded for an earlier generation says
    nothing of the spec as it is: no finding here, but a wait for the status write of the
    pass that judges the edit (`verdicts_behind`)."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if conditions is None:
        return "the store has no recorded verdicts yet"
    if not isinstance(conditions, list) or not all(
        isinstance(c, Mapping) and isinstance(c.get("type"), str)
        and isinstance(c.get("status"), str)
        for c in conditions
    ):  # fmt: skip
        return "status.conditions is not in the form the operator writes"
    # The operator's verdicts only: status keeps other controllers' conditions too.
    awaited = [
        c for c in conditions
        if c["type"] in OPERATOR_CONDITION_TYPES and c["type"] not in _NOT_AWAITED
    ]  # fmt: skip
    if not awaited:
        return "the store has no recorded verdicts yet"
    # Types only, never a message (status is anyone's to write who may patch it): capped.
    unsaid = sorted({c["type"] for c in awaited if _judged(c) is None})
    if unsaid:
        return (
            "these verdicts do not say which generation of the spec they judged: "
            f"{_named(unsaid)}"
        )
    failing = sorted({
        c["type"] for c in awaited if c["status"] != "True" and not _behind(c, generation)
    })  # fmt: skip
    if failing:
        return f"these controls are not in force (not True): {_named(failing)}"
    return None


def verdicts_behind(status: Any, generation: int) -> tuple[str, ...]:
    """The types of the recorded verdicts (`status`, in the form `controls_not_in_force`
    accepts) that judged a generation of the spec before `generation`, whatever they said:
    an edit that no pass has recorded its verdicts on yet."""
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    if not isinstance(conditions, list):
        return ()
    return tuple(sorted({
        str(c.get("type")) for c in conditions
        if isinstance(c, Mapping) and c.get("type") in OPERATOR_CONDITION_TYPES
        and c.get("type") not in _NOT_AWAITED and _behind(c, generation)
    }))  # fmt: skip


def behind_problem(behind: Iterable[str], generation: int) -> str:
    """Why verdicts recorded for an earlier generation keep the keys once the wait for this
    generation's own verdicts is over (they were never recorded: see `verdicts_behind`)."""
    return (
        f"these verdicts were recorded for an earlier generation of the spec than "
        f"{generation}: {_named(sorted(behind))}"
    )


def _named(types: list[str]) -> str:
    """Condition types as status gives them (anyone's to write who may patch it): eight at
    most, each cut to a type's length, and how many more."""
    return named([t[:63] for t in types], 8)


def _behind(condition: Mapping[str, Any], generation: int) -> bool:
    judged = _judged(condition)
    return judged is not None and judged < generation


def _judged(condition: Mapping[str, Any]) -> int | None:
    """The generation of the spec a recorded verdict judged (None: it does not say)."""
    observed = condition.get("observedGeneration")
    return observed if isinstance(observed, int) and not isinstance(observed, bool) else None


def shredding_token(store: Store, due: Iterable[str]) -> str:
    """The value of SHREDDING_ANNOTATION that releases the destruction of exactly the keys of
    `due` on `store`: the first and last bucket and how many (for a person to read), then a
    digest binding the whole set and the store's namespace, name and uid (an acknowledgement
    of other buckets, copied from another store, or kept in a manifest that outlived the
    store it was given for, releases nothing)."""
    buckets = sorted(set(due))
    named = f"{store.namespace}/{store.name}\n{store.uid}\n" + "\n".join(buckets)
    digest = hashlib.sha256(named.encode()).hexdigest()[:12]
    return f"{buckets[0]}..{buckets[-1]}-n{len(buckets)}-{digest}"


def large_shredding(due: tuple[str, ...], acknowledged: bool) -> bool:
    """Whether destroying `due` at once waits for the acknowledgement annotation."""
    return len(due) > LARGE_SHREDDING and not acknowledged


def unreadable_problem(field: str) -> str:
    """Why a recorded field is not used: its path only, never its value (anything)."""
    return f"{field} is not in the form the operator writes"


def owed_problem(owed: Iterable[OwedWithdrawal]) -> str:
    """Why no key is destroyed while withdrawals are owed (buckets only, never material)."""
    buckets = ", ".join(sorted({debt.bucket for debt in owed}))
    return (
        f"the evidence log still says the key of bucket(s) {buckets} was destroyed: its "
        "key.shred.cancelled record is not written yet"
    )


def expired_shreddings(
    record: KeyRingRecord, ring: KeyRing, expired: Callable[[str], bool]
) -> tuple[ShreddedRecord, ...]:
    """The ring's `shredded` entries status never recorded that are harmless to take in: each
    of a bucket already expired (`expired`: every record of it is past retention and statute),
    with no key in the ring or in status of that bucket or id. The previous release recorded an
    adopted ring's keys alone, not its destroyed ones: without this every such store would be
    KeyMaterialChanged after the upgrade. No live or future bucket is kept from a key by them
    (an expired bucket never gets one), and their ids are never given out again."""
    recorded = {gone.id for gone in record.shredded}
    listed = (*record.keys, *record.pending_keys)
    ids = {key.id for key in listed} | {key.id for key in ring.keys}
    buckets = {key.bucket for key in listed} | {key.bucket for key in ring.keys}
    return tuple(
        ShreddedRecord.of(gone)
        for gone in ring.shredded
        if gone.id not in recorded
        and gone.id not in ids
        and gone.bucket not in buckets
        and expired(gone.bucket)
    )


# How a shredding's message names the keys due; `waiting_buckets` reads it back.
_DUE_KEYS_PHRASE = "bucket key(s) {buckets} of Secret {secret}"
_BUCKET_LIST = re.compile(
    r"Every record of "
    + re.escape(_DUE_KEYS_PHRASE.split("{buckets}")[0])
    + r"(\d{4}(?:-\d{2})?(?:, \d{4}(?:-\d{2})?)*)"
    + re.escape(_DUE_KEYS_PHRASE.split("{buckets}")[1].split("{secret}")[0])
)


def waiting_buckets(message: str) -> tuple[str, ...] | None:
    """The buckets a KeyShreddingNotAcknowledged message (`key_shredding`) names as due, or
    None when it names none in that form (a message not the operator's)."""
    match = _BUCKET_LIST.search(message)
    return tuple(match.group(1).split(", ")) if match else None


def key_shredding(
    ready: Condition,
    secret_name: str,
    due: tuple[str, ...],
    blocker: ShreddingBlocker | None,
    problem: str | None = None,
    recorded: Any = None,
) -> Condition:
    """EncryptionKeyReady once crypto-shredding is weighed: `ready`, unless bucket keys
    whose every record has expired (`due`) are kept by `blocker`.

    A legal hold (spec.purge.suspend) or a dry run keeps them on purpose: True, with a reason
    a person should look at. No evidence log, or a failed record or write, keeps them against
    the policy: False, since data past retention stays readable (in backups too) until the
    key goes. A verdict that is already not True stays as it is.

    A wait for the store's verdicts on an edit of its spec to be recorded, or for both clocks
    to be past a revision of the policy that takes effect between them ("settling": the
    pass after this one decides) changes nothing: EncryptionKeyReady stays as `recorded` (the
    store's status as read) records it, when that is a verdict the operator gives; else
    `ready`.
    """
    if ready.status != "True" or not due or blocker is None:
        return ready
    if blocker == "settling":
        return _recorded_key_ready(recorded) or ready
    buckets = _DUE_KEYS_PHRASE.format(buckets=", ".join(due), secret=secret_name)
    if blocker in ("legal-hold", "dry-run"):
        why = (
            "spec.purge.suspend holds them (a legal hold); they are destroyed once it is lifted"
            if blocker == "legal-hold"
            else "spec.purge.dryRun is set, so they are only reported; unset it to destroy them"
        )
        return Condition(
            ENCRYPTION_KEY_READY,
            "True",
            "KeyShreddingHeld",
            f"{ready.message} Every record of {buckets} has expired, but {why}.",
        )
    if blocker == "clock-skew":
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyShreddingClockSkew",
            f"Every record of {buckets} has expired by the operator's clock, but {problem}. "
            "A key is destroyed only at the API server's time, and only while the two clocks "
            "agree: nothing was destroyed and the operator retries.",
        )
    if blocker == "not-compliant":
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyShreddingNotCompliant",
            f"Every record of {buckets} has expired, but the store is not compliant "
            f"({problem}): no key is destroyed on a store whose controls are not all in "
            "force. Fix what the other conditions say; the operator then destroys them.",
        )
    if blocker == "not-acknowledged":
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyShreddingNotAcknowledged",  # a literal: the reasons catalogue reads the site
            f"Every record of {buckets} has expired: more than {LARGE_SHREDDING} bucket "
            "key(s) at once (a long outage, or a shortened retention?) wait for a person. "
            f"Nothing was destroyed. If this is intended, run: {problem}",
        )
    if blocker == "no-evidence-log":
        return Condition(
            ENCRYPTION_KEY_READY,
            "False",
            "KeyShreddingNeedsEvidenceLog",
            f"Every record of {buckets} has expired, but the operator has no evidence log "
            "(DATAWARD_EVIDENCE_DATABASE): a key is destroyed only after its destruction is "
            "recorded there, so the expired data stays readable. Configure the evidence log.",
        )
    return Condition(
        ENCRYPTION_KEY_READY,
        "False",
        "KeyShreddingFailed",
        f"Every record of {buckets} has expired, but destroying them failed ({problem}); "
        "nothing unrecorded was destroyed and the operator retries.",
    )
