"""Condition values, the Ready conjunction, and merging into status.conditions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dataward.checks.drift import digest
from dataward.keys.ring import format_time

Status = Literal["True", "False", "Unknown"]

POLICY_COMPLIANT = "PolicyCompliant"
NETWORK_ISOLATED = "NetworkIsolated"
ENCRYPTION_KEY_READY = "EncryptionKeyReady"
ACCESS_RESTRICTED = "AccessRestricted"
PURGE_SCHEDULED = "PurgeScheduled"
PURGE_SUCCEEDED = "PurgeSucceeded"
# Only when the operator follows the API server's audit log (checks/access_records.py).
ACCESS_RECORDED = "AccessRecorded"
READY = "Ready"
# A DataSubjectRequest's conditions (checks/subjects.py).
COMPLETE = "Complete"
DEADLINE_MET = "DeadlineMet"
# The order conditions appear in status, Ready first.
CONDITION_TYPES = (
    READY,
    POLICY_COMPLIANT,
    NETWORK_ISOLATED,
    ENCRYPTION_KEY_READY,
    ACCESS_RESTRICTED,
    PURGE_SCHEDULED,
    PURGE_SUCCEEDED,
    ACCESS_RECORDED,
)
# Every type the operator writes, on any kind: a condition of another type in an object's
# status is another controller's (Kubernetes' conventions let several keep conditions in one
# list, keyed by type), kept as it is (`merge_conditions`).
# A PrivacyPolicy's condition besides Ready: is the spec as written the revision in force?
REVISION_IN_FORCE = "RevisionInForce"
OPERATOR_CONDITION_TYPES = frozenset(
    (*CONDITION_TYPES, COMPLETE, DEADLINE_MET, REVISION_IN_FORCE)
)
# The CRDs' maxItems of status.conditions.
MAX_CONDITIONS = 16
# When the operator cannot read the stores themselves (or, sharded, which namespaces are its
# shard's) for longer than its grace period, each condition it last wrote True on a store becomes
# Unknown with one of these (controller/staleness.py): it is no longer checked.
STORE_CACHE_UNAVAILABLE = "StoreCacheUnavailable"
NAMESPACE_CACHE_UNAVAILABLE = "NamespaceCacheUnavailable"
# ... or, sharded, once the store's namespace has left this shard (relabelled): the shard that
# last judged it no longer does, and no other may (controller/reconcile.py `namespace_left`).
NAMESPACE_NOT_SERVED = "NamespaceNotServed"
# When the API server refuses a status write for what it says (controller/refused.py), each
# condition the object showed True becomes Unknown with this: it is no longer vouched for.
STATUS_REFUSED = "StatusRefused"
# metav1.Condition's pattern for `reason`.
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
MAX_MESSAGE_LENGTH = 32768


@dataclass(frozen=True)
class Condition:
    """One condition as a check decides it: type, status, CamelCase reason, a sentence."""

    type: str
    status: Status
    reason: str
    message: str

    def __post_init__(self) -> None:
        if not _REASON.match(self.reason):
            raise ValueError(f"condition reason {self.reason!r} is not CamelCase")


def named(items: Sequence[str], at_most: int, sep: str = ", ") -> str:
    """Up to `at_most` of `items`, in their order, for a message, and how many more: "a, b
    and 3 more" (with `sep` "; ": "a; b; and 3 more", for items that hold commas)."""
    more = len(items) - at_most
    shown = sep.join(items[:at_most])
    if more <= 0:
        return shown
    return shown + (sep.rstrip() if sep.strip() != "," else "") + f" and {more} more"


def as_reason(text: str, fallback: str) -> str:
    """`text` when it is a valid reason, else `fallback`."""
    return text if _REASON.match(text) else fallback


# The control each kind of a store's child belongs to (the purge's ServiceAccount is the
# identity its RoleBinding lets read the credentials: access).
CHILD_CONTROLS: dict[str, str] = {
    "NetworkPolicy": NETWORK_ISOLATED,
    "Role": ACCESS_RESTRICTED,
    "RoleBinding": ACCESS_RESTRICTED,
    "ServiceAccount": ACCESS_RESTRICTED,
    "CronJob": PURGE_SCHEDULED,
}


def child_not_ours(kind: str, namespace: str, name: str) -> Condition:
    """The control `kind` belongs to, False: an object of the child's name exists that the
    operator did not create (no controller owner reference to the store). It names the
    object, never its content."""
    message = (
        f"{kind} {namespace}/{name} exists but the operator did not create it (it has no "
        "controller owner reference to this store), so the operator neither changes nor "
        "uses it: whoever made it decides what it does. Delete it, or recreate it under "
        "another name, and the operator creates the store's own."
    )
    control = CHILD_CONTROLS[kind]
    if control == NETWORK_ISOLATED:
        return Condition(NETWORK_ISOLATED, "False", "ChildNotCreatedByOperator", message)
    if control == ACCESS_RESTRICTED:
        return Condition(ACCESS_RESTRICTED, "False", "ChildNotCreatedByOperator", message)
    return Condition(PURGE_SCHEDULED, "False", "ChildNotCreatedByOperator", message)


def child_held_different(kind: str, namespace: str, name: str) -> Condition:
    """The control `kind` belongs to, False: the child was changed back from its render right
    after each of the operator's last repairs (another controller or a policy engine holding
    another value), so the operator repairs it less and less often (controller/reconcile.py
    `repair_held_until`), not at every change. The message is the same at every repair: a
    status write per repair would be a write per repair again."""
    message = (
        f"{kind} {namespace}/{name} was changed back from what the store declares right after "
        "each of the operator's last repairs: something else (a controller, a policy engine "
        "or a script) holds it different. The operator no longer writes it at every change: "
        "it repairs it less and less often (at most every 5 minutes; the operator's log says "
        "when), and until then it is as that other writer leaves it. Its managedFields name "
        "the field manager that changes it."
    )
    control = CHILD_CONTROLS[kind]
    if control == NETWORK_ISOLATED:
        return Condition(NETWORK_ISOLATED, "False", "ChildHeldDifferent", message)
    if control == ACCESS_RESTRICTED:
        return Condition(ACCESS_RESTRICTED, "False", "ChildHeldDifferent", message)
    return Condition(PURGE_SCHEDULED, "False", "ChildHeldDifferent", message)


def with_children_not_ours(
    conditions: Sequence[Condition], namespace: str, foreign: Sequence[tuple[str, str]]
) -> list[Condition]:
    """`conditions` with the control of each foreign child ((kind, name), in order) False
    (`child_not_ours`; the first such child of a control names it)."""
    found: dict[str, Condition] = {}
    for kind, name in foreign:
        verdict = child_not_ours(kind, namespace, name)
        found.setdefault(verdict.type, verdict)
    return [found.get(c.type, c) for c in conditions]


def with_children_unreadable(
    conditions: Sequence[Condition], namespace: str, unreadable: Sequence[tuple[str, str]]
) -> list[Condition]:
    """`conditions` with AccessRestricted Unknown, where it was True, when one of its
    children (a Role, a RoleBinding, the purge ServiceAccount; (kind, name)) could not be
    read: whether the object of that name is the store's own is unknown (one someone else
    made makes it False), and access is judged from the namespace's RBAC alone otherwise.
    NetworkIsolated and PurgeScheduled judge their own child's failed read already
    (NetworkPolicyUnreadable, CronJobUnreadable); a False stays False."""
    for kind, name in unreadable:
        if CHILD_CONTROLS.get(kind) == ACCESS_RESTRICTED:
            unknown = Condition(
                ACCESS_RESTRICTED,
                "Unknown",
                "ChildUnreadable",
                f"{kind} {namespace}/{name}, one of the store's children, could not be read "
                "or written (an admission policy may refuse it), so whether it is the store's "
                "own and as rendered is unknown. The operator retries.",
            )
            return [
                unknown if c.type == ACCESS_RESTRICTED and c.status == "True" else c
                for c in conditions
            ]
    return list(conditions)


def ready(conditions: Sequence[Condition]) -> Condition:
    """Ready: True when every other condition is True; else names each that is not."""
    others = [c for c in conditions if c.type != READY]
    failing = [c for c in others if c.status == "False"]
    unknown = [c for c in others if c.status == "Unknown"]
    if not others:
        return Condition(READY, "Unknown", "NoConditions", "No control has been checked yet.")
    if not failing and not unknown:
        return Condition(READY, "True", "AllControlsInForce", "Every control is in force.")
    parts = [f"{c.type} is {c.status} ({c.reason}): {c.message}" for c in failing + unknown]
    if failing:
        return Condition(READY, "False", "ControlsNotInForce", " ".join(parts))
    return Condition(READY, "Unknown", "ControlsUnknown", " ".join(parts))


def merge_conditions(
    old: Sequence[Mapping[str, Any]],
    new: Sequence[Condition],
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """`status.conditions` for `new`, keeping `lastTransitionTime` where status is unchanged.

    Conditions are written in `CONDITION_TYPES` order (others after, by type), so the same
    inputs always give the same list and a reconcile with nothing changed writes nothing.
    A condition in `old` of a type the operator never writes (`OPERATOR_CONDITION_TYPES`) is
    another controller's: kept after the operator's, as it is and in its order, as many as
    the CRDs' maxItems leaves room for. Removing it was a write that the other controller
    answered by adding it back, at once, for as long as both ran (86 status writes in 30 s).
    """
    previous = {str(c.get("type")): c for c in old if isinstance(c, Mapping)}
    stamp = format_time(now)
    merged: list[dict[str, Any]] = []
    for condition in sorted(new, key=_order):
        before = previous.get(condition.type)
        unchanged = (
            before is not None
            and before.get("status") == condition.status
            and before.get("lastTransitionTime")
        )
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message[:MAX_MESSAGE_LENGTH],
                "lastTransitionTime": before["lastTransitionTime"]
                if unchanged and before is not None
                else stamp,
                "observedGeneration": generation,
            }
        )
    ours = {c.type for c in new}
    theirs = [
        dict(c) for c in old
        if isinstance(c, Mapping) and isinstance(c.get("type"), str)
        and c["type"] not in ours and c["type"] not in OPERATOR_CONDITION_TYPES
    ]  # fmt: skip
    return merged + theirs[: max(0, MAX_CONDITIONS - len(merged))]


def transitions(
    old: Sequence[Mapping[str, Any]], new: Sequence[Condition]
) -> list[tuple[Condition, str | None]]:
    """Conditions whose status changed, each with the status it had (None when new): for Events."""
    previous = {str(c.get("type")): c.get("status") for c in old if isinstance(c, Mapping)}
    return [
        (condition, previous.get(condition.type))
        for condition in sorted(new, key=_order)
        if previous.get(condition.type) != condition.status
    ]


def _order(condition: Condition) -> tuple[int, str]:
    if condition.type in CONDITION_TYPES:
        return CONDITION_TYPES.index(condition.type), ""
    return len(CONDITION_TYPES), condition.type


def comparable_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """`status` with each condition's message as its digest: the form the cache keeps a
    store's status in (the messages were a third of it, and only the comparison that decides
    whether to write reads them), and the form that comparison puts both sides in.
    Idempotent: a message already digested stays as it is."""
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return dict(status)
    return {**status, "conditions": [
        {**c, "message": _message_digest(c["message"])}
        if isinstance(c, Mapping) and isinstance(c.get("message"), str) else c
        for c in conditions
    ]}  # fmt: skip


def _message_digest(message: str) -> str:
    return message if message.startswith("sha256:") else digest(message)
