"""Access records: the API server's audit events of reads of a store's Secrets, as evidence.

The API server writes one JSON audit event per line (`--audit-log-format=json`) under the
policy `dataward audit-policy` renders. The operator follows that file and appends one
`access.read` record per store whose key ring or credentials Secret an event read. These pure
functions decide what an event is and what of it is kept:

- only events of the `ResponseComplete` or `Panic` stage (one per request) about `secrets`
  of the core group, with a verb of `SECRET_READ_VERBS` (get, list, watch, patch, delete,
  deletecollection: each can answer with the Secret's data);
- only events that name a store's Secret (`render.rbac.store_secrets`: the ring and every
  credentials Secret), or a collection request (list, watch or deletecollection without a
  name) of a namespace holding stores, or of all namespaces, since it returns the store's
  Secrets too;
- only metadata: who (user, groups, the impersonated user), what (verb, namespace, Secret),
  when (received, completed), the audit ID, the response code and the authorizer's decision;
  never a request or response body, source IP or user agent.

A user or group name that could be personal data beyond an account name (one with `@` or a
space, such as an e-mail address from an OIDC provider) is kept as its digest
(`dataward.accounts.name_digest`, as `userDigest`): an auditor holding a name can check it,
and the API server's own log keeps the name for its retention.

Resuming without duplicates or gaps: the last ingested events are in the evidence chain
itself. `Cursor` holds the newest `stageTimestamp` ingested and the (auditID, subject) pairs
of the last `RESUME_SLACK`; an event older than that window, or one of those pairs, was
ingested already. The window absorbs events written slightly out of time order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dataward.accounts import name_digest, plain
from dataward.model.store import Store
from dataward.render.rbac import SECRET_COLLECTION_READ_VERBS, SECRET_READ_VERBS, store_secrets

ACCESS_KIND = "access.read"
FINAL_STAGES = ("ResponseComplete", "Panic")
RESUME_SLACK = timedelta(minutes=5)
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
_OPAQUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
MAX_GROUPS = 64


@dataclass(frozen=True)
class AuditRead:
    """The metadata of one read of Secrets, as the API server's audit event states it."""

    audit_id: str
    stage_timestamp: str
    received: str | None
    verb: str
    namespace: str  # "" for a read across all namespaces
    secret: str | None  # None for a collection read
    user: str
    groups: tuple[str, ...]
    impersonated_user: str | None
    code: int | None
    decision: str | None

    @property
    def at(self) -> datetime:
        """`stage_timestamp` as an instant."""
        return parse_time(self.stage_timestamp)


def parse_time(text: str) -> datetime:
    """An audit timestamp (RFC 3339, up to nanoseconds) as an aware datetime (microseconds)."""
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise ValueError("not an RFC 3339 time")
    fraction = (match.group(2) or ".0")[:7].ljust(7, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}{fraction}{zone}")


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_audit_line(line: str | bytes) -> AuditRead | None:
    """The read of Secrets one audit log line records; None for any other line.

    A line that is not JSON, not an audit event, of another stage, resource or verb, or
    missing its audit ID or time is None: the log holds much besides store reads.
    """
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("kind") != "Event":
        return None
    if event.get("stage") not in FINAL_STAGES or event.get("verb") not in SECRET_READ_VERBS:
        return None
    ref = event.get("objectRef")
    if not isinstance(ref, dict) or ref.get("resource") != "secrets":
        return None
    if ref.get("apiGroup") not in (None, "") or ref.get("subresource"):
        return None
    audit_id, stage = _string(event.get("auditID")), _string(event.get("stageTimestamp"))
    if not audit_id or not _OPAQUE.fullmatch(audit_id) or not stage or not _TIME.fullmatch(stage):
        return None
    raw_user = event.get("user")
    user: dict[str, Any] = raw_user if isinstance(raw_user, dict) else {}
    impersonated = event.get("impersonatedUser")
    status = event.get("responseStatus")
    code = status.get("code") if isinstance(status, dict) else None
    annotations = event.get("annotations")
    decision = (
        annotations.get("authorization.k8s.io/decision") if isinstance(annotations, dict) else None
    )
    received = _string(event.get("requestReceivedTimestamp"))
    raw_groups = user.get("groups")
    groups: list[Any] = raw_groups if isinstance(raw_groups, list) else []
    return AuditRead(
        audit_id=audit_id,
        stage_timestamp=stage,
        received=received if received and _TIME.fullmatch(received) else None,
        verb=str(event["verb"]),
        namespace=_string(ref.get("namespace")) or "",
        secret=_string(ref.get("name")) or None,
        user=_string(user.get("username")) or "",
        groups=tuple(g for g in groups if isinstance(g, str)),
        impersonated_user=_string(impersonated.get("username"))
        if isinstance(impersonated, dict)
        else None,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        decision=decision if decision in ("allow", "forbid") else None,
    )


@dataclass(frozen=True)
class AccessTargets:
    """Which Secrets belong to which stores: (namespace, Secret) -> the stores' names."""

    secrets: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    namespaces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, stores: Iterable[Store]) -> AccessTargets:
        """The targets of `stores` (the Secrets `dataward audit-policy` audits for them)."""
        secrets: dict[tuple[str, str], set[str]] = {}
        namespaces: dict[str, set[str]] = {}
        for store in stores:
            namespaces.setdefault(store.namespace, set()).add(store.name)
            for secret in store_secrets(store):
                secrets.setdefault((store.namespace, secret), set()).add(store.name)
        return cls(
            {key: tuple(sorted(names)) for key, names in secrets.items()},
            {key: tuple(sorted(names)) for key, names in namespaces.items()},
        )

    def stores_read(self, read: AuditRead) -> list[tuple[str, str]]:
        """The (namespace, store) pairs whose Secrets `read` read, in order."""
        if read.secret is not None:
            named = self.secrets.get((read.namespace, read.secret), ())
            return [(read.namespace, s) for s in named]
        if read.verb not in SECRET_COLLECTION_READ_VERBS:
            return []
        if read.namespace:
            return [(read.namespace, s) for s in self.namespaces.get(read.namespace, ())]
        return [(ns, s) for ns, names in sorted(self.namespaces.items()) for s in names]


def access_payload(read: AuditRead) -> dict[str, Any]:
    """The `access.read` payload for `read`: metadata only, names kept or digested."""
    payload: dict[str, Any] = {
        "auditID": read.audit_id,
        "stageTimestamp": read.stage_timestamp,
        "verb": read.verb,
    }
    if read.received:
        payload["requestReceivedTimestamp"] = read.received
    if read.namespace and _NAME.fullmatch(read.namespace):
        payload["namespace"] = read.namespace
    if read.secret is not None and _NAME.fullmatch(read.secret):
        payload["secret"] = read.secret
    if read.user:
        payload["user" if plain(read.user) else "userDigest"] = (
            read.user if plain(read.user) else name_digest(read.user)
        )
    if read.impersonated_user:
        kept = plain(read.impersonated_user)
        payload["impersonatedUser" if kept else "impersonatedUserDigest"] = (
            read.impersonated_user if kept else name_digest(read.impersonated_user)
        )
    groups = [g for g in read.groups if plain(g)][:MAX_GROUPS]
    payload["groups"] = groups
    if len(groups) != len(read.groups):
        payload["groupsDigested"] = [name_digest(g) for g in read.groups if not plain(g)][
            :MAX_GROUPS
        ]
    if read.code is not None:
        payload["responseCode"] = read.code
    if read.decision is not None:
        payload["decision"] = read.decision
    return payload


@dataclass(frozen=True)
class Cursor:
    """Where ingestion stands: the newest event time ingested, and the last window's pairs."""

    newest: datetime
    recent: Mapping[tuple[str, str], datetime]  # (auditID, subject) -> the event's time

    @property
    def floor(self) -> datetime:
        """Events before this were all ingested (or had nothing to ingest)."""
        return self.newest - RESUME_SLACK


def resume_cursor(records: Iterable[tuple[str, Mapping[str, Any]]]) -> Cursor | None:
    """The cursor the `access.read` records (subject, payload) of the chain leave; None: none."""
    cursor: Cursor | None = None
    for subject, payload in records:
        stage, audit_id = payload.get("stageTimestamp"), payload.get("auditID")
        if not isinstance(stage, str) or not isinstance(audit_id, str):
            continue
        try:
            cursor = advance(cursor, audit_id, parse_time(stage), subject)
        except ValueError:
            continue
    return cursor


def already_ingested(cursor: Cursor | None, read: AuditRead, subject: str) -> bool:
    """True when the record of `read` for `subject` is in the chain (as far as `cursor` says)."""
    if cursor is None:
        return False
    return read.at < cursor.floor or (read.audit_id, subject) in cursor.recent


def advance(cursor: Cursor | None, audit_id: str, at: datetime, subject: str) -> Cursor:
    """The cursor once the record of event `audit_id` (at `at`) for `subject` is appended."""
    newest = at if cursor is None else max(cursor.newest, at)
    floor = newest - RESUME_SLACK
    recent = {} if cursor is None else {p: t for p, t in cursor.recent.items() if t >= floor}
    recent[(audit_id, subject)] = at
    return Cursor(newest, recent)
