"""Observed state: small frozen values the controller builds from what it read.

The checks take these, never the API's nested dicts, so that each check is a plain
function of values. Every read can be `unknown`: a failed read is never taken as "absent".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

from dataward.accounts import shown
from dataward.keys.buckets import BucketError, granularity_of
from dataward.keys.ring import KeyRing, KeyRingError, ShreddedKey, format_time, parse_ring
from dataward.model.k8s_names import service_account_of
from dataward.purge.result import is_count, is_seconds
from dataward.render.rbac import (
    CERTIFICATE_APPROVAL_GRANTS,
    ESCALATION_GRANTS,
    POD_STARTING_GRANTS,
    SECRET_READ_VERBS,
    SECRET_TOKEN_GRANTS,
    Grant,
)

Presence = Literal["present", "absent", "unknown"]
# A child's presence: also `foreign`, an object of its name the operator did not make.
ChildPresence = Literal["present", "absent", "unknown", "foreign"]


@dataclass(frozen=True)
class ObservedObject:
    """One object as a live read found it: present (with its body), absent (a 404), unknown,
    or foreign (an object of the name exists, but not the operator's: never used, no body)."""

    presence: ChildPresence
    body: Mapping[str, Any] | None = field(default=None, hash=False)
    error: str | None = None

    @classmethod
    def present(cls, body: Mapping[str, Any]) -> ObservedObject:
        """The read returned the object."""
        return cls("present", body)

    @classmethod
    def absent(cls) -> ObservedObject:
        """The read returned 404 Not Found."""
        return cls("absent")

    @classmethod
    def unknown(cls, error: str) -> ObservedObject:
        """The read failed; `error` says how (no object content)."""
        return cls("unknown", None, error)

    @classmethod
    def foreign(cls) -> ObservedObject:
        """An object of the child's name exists without the store's controller owner
        reference: the operator did not create it, so it neither changes nor uses it."""
        return cls("foreign")


@dataclass(frozen=True)
class Listing:
    """A LIST as read: its items, or the error that kept the operator from reading it.

    A failed LIST is never an empty one: a check that needs it says Unknown.
    """

    items: tuple[Mapping[str, Any], ...] = field(default=(), hash=False)
    error: str | None = None

    @classmethod
    def of(cls, items: Iterable[Mapping[str, Any]]) -> Listing:
        """The LIST succeeded with these items."""
        return cls(tuple(items))

    @classmethod
    def failed(cls, error: str) -> Listing:
        """The LIST failed; `error` says how (no object content)."""
        return cls((), error)


@dataclass(frozen=True)
class ObservedKeyRing:
    """The key ring Secret as read: a parsed ring, absent, unknown, or present but invalid."""

    presence: Presence
    ring: KeyRing | None = None
    problem: str | None = None

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str] | None) -> ObservedKeyRing:
        """Parse a Secret's `data`; a malformed ring is present with a problem, not absent."""
        try:
            return cls("present", parse_ring(data))
        except KeyRingError as error:
            return cls("present", None, str(error))

    @classmethod
    def absent(cls) -> ObservedKeyRing:
        """The Secret read returned 404 Not Found."""
        return cls("absent")

    @classmethod
    def unknown(cls, error: str) -> ObservedKeyRing:
        """The Secret read failed."""
        return cls("unknown", None, error)


@dataclass(frozen=True)
class Unreadable:
    """A record the operator wrote earlier (in status) that is not in the form it writes.

    A store's status may be written by anyone who may write its `status` subresource (with
    the chart's status guard: only holders of `override`), so a record read back can be
    garbled. `field` is where (a path such as
    `status.encryption.owedWithdrawals[0].keyId`), never the value, which could be anything.
    Never taken as "no record": what depends on it is Unknown, and nothing is created,
    adopted or destroyed on its strength.
    """

    field: str


class _Garbled(Exception):
    """Raised inside a parse of a recorded field that is not in the operator's form."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _entries(raw: Mapping[str, Any], key: str, path: str) -> list[tuple[Mapping[str, Any], str]]:
    """The objects of the list `raw[key]` (absent or null: none), each with its path."""
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Garbled(f"{path}.{key}")
    at = f"{path}.{key}"
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            raise _Garbled(f"{at}[{index}]")
    return [(entry, f"{at}[{index}]") for index, entry in enumerate(value)]


def _whole(raw: Mapping[str, Any], key: str, path: str) -> int:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Garbled(f"{path}.{key}")
    return value


def _text(raw: Mapping[str, Any], key: str, path: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _Garbled(f"{path}.{key}")
    return value


def _time(raw: Mapping[str, Any], key: str, path: str) -> str:
    """An RFC 3339 time with a zone, as written."""
    value = _text(raw, key, path)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Garbled(f"{path}.{key}") from None
    if parsed.tzinfo is None:
        raise _Garbled(f"{path}.{key}")
    return value


def _bucket(raw: Mapping[str, Any], key: str, path: str) -> str:
    value = _text(raw, key, path)
    try:
        granularity_of(value)
    except BucketError:
        raise _Garbled(f"{path}.{key}") from None
    return value


_FINGERPRINT = re.compile(r"[0-9a-f]{16}")
_REASON = re.compile(r"[A-Z][A-Za-z0-9]{0,63}")


def _fingerprint(raw: Mapping[str, Any], key: str, path: str) -> str:
    value = _text(raw, key, path)
    if not _FINGERPRINT.fullmatch(value):
        raise _Garbled(f"{path}.{key}")
    return value


def _reason(raw: Mapping[str, Any], key: str, path: str) -> str | None:
    if raw.get(key) is None:
        return None
    value = _text(raw, key, path)
    if not _REASON.fullmatch(value):
        raise _Garbled(f"{path}.{key}")
    return value


def _key(raw: Mapping[str, Any], path: str) -> KeyRecord:
    """An entry of `status.encryption.keys` (or `pendingKeys`)."""
    return KeyRecord(
        _whole(raw, "id", path),
        _time(raw, "created", path),
        _fingerprint(raw, "fingerprint", path),
        _bucket(raw, "bucket", path) if raw.get("bucket") is not None else None,
    )


@dataclass(frozen=True)
class KeyRecord:
    """What status recorded about one key version: never material."""

    id: int
    created: str
    fingerprint: str
    bucket: str | None = None  # the time bucket a crypto-shredding key encrypts

    def to_status(self) -> dict[str, Any]:
        """An entry of `status.encryption.keys` (or `pendingKeys`)."""
        return {
            "id": self.id,
            "created": self.created,
            "fingerprint": self.fingerprint,
            **({"bucket": self.bucket} if self.bucket else {}),
        }


@dataclass(frozen=True)
class ShreddedRecord:
    """A bucket key the operator decided to destroy, recorded (status) before it did."""

    id: int
    bucket: str
    shredded: str

    @classmethod
    def of(cls, gone: ShreddedKey) -> ShreddedRecord:
        """The record of a ring's `shredded` entry (an adopted ring's: taken in with it)."""
        return cls(gone.id, gone.bucket, format_time(gone.shredded))

    def to_status(self) -> dict[str, Any]:
        """An entry of `status.encryption.shreddedBuckets`."""
        return {"bucket": self.bucket, "keyId": self.id, "shredded": self.shredded}


@dataclass(frozen=True)
class OwedWithdrawal:
    """A key.shredded record that may stand in the evidence log while its key is still in
    the ring: withdrawn (key.shred.cancelled) unless status lists it in shreddedBuckets.

    Written to status before the record is appended, so that a restart finds it."""

    id: int
    bucket: str
    fingerprint: str
    reason: str | None = None  # of the withdrawal, once the pass that owed it knew it

    def to_status(self) -> dict[str, Any]:
        """An entry of `status.encryption.owedWithdrawals`."""
        return {
            "keyId": self.id,
            "bucket": self.bucket,
            "fingerprint": self.fingerprint,
            **({"reason": self.reason} if self.reason else {}),
        }


@dataclass(frozen=True)
class KeyRingRecord:
    """`status.encryption`: the ring the operator last saw, by fingerprint."""

    secret_name: str
    primary_id: int
    keys: tuple[KeyRecord, ...]
    last_rotation: str | None = None
    # Recorded before the operator creates the ring, so that the Secret it then finds can be
    # proven to be its own (same fingerprints) and not one planted under the ring's name.
    pending: bool = False
    # Bucket keys destroyed by crypto-shredding, recorded before the Secret loses them: a key
    # gone from the ring is a shredding only when status says so.
    shredded: tuple[ShreddedRecord, ...] = ()
    # Bucket keys recorded just before the operator adds them to the ring: a bucket key in the
    # ring that status lists neither here nor in `keys` was not added by the operator.
    pending_keys: tuple[KeyRecord, ...] = ()
    # key.shredded records to withdraw (the evidence log refused, or was not yet asked for,
    # their key.shred.cancelled record): no key of the store is destroyed meanwhile.
    owed: tuple[OwedWithdrawal, ...] = ()

    @classmethod
    def from_ring(
        cls,
        ring: KeyRing,
        secret_name: str,
        last_rotation: datetime | None = None,
        pending: bool = False,
        shredded: tuple[ShreddedRecord, ...] = (),
        owed: tuple[OwedWithdrawal, ...] = (),
    ) -> KeyRingRecord:
        """The record of `ring` as status keeps it (`shredded`, `owed`: as status recorded
        them)."""
        return cls(
            pending=pending,
            secret_name=secret_name,
            primary_id=ring.primary,
            keys=tuple(
                KeyRecord(key.id, format_time(key.created), fingerprint, key.bucket)
                for key, fingerprint in zip(ring.keys, ring.fingerprints().values(), strict=True)
            ),
            last_rotation=format_time(last_rotation) if last_rotation else None,
            shredded=shredded,
            owed=owed,
        )

    def shredded_ids(self) -> set[int]:
        """The ids of the keys status records as destroyed."""
        return {gone.id for gone in self.shredded}

    @property
    def next_id(self) -> int:
        """Above every id status records as given out, destroyed ones included: the floor of
        the next key's id, whatever the ring Secret's own `shredded` list says."""
        ids = [key.id for key in self.keys] + [gone.id for gone in self.shredded]
        return max(ids, default=0) + 1

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> KeyRingRecord | Unreadable | None:
        """Read `status.encryption`; None when status records no ring, Unreadable when what
        it records is not in the form the operator writes (garbled by someone who may write
        the store's status): never read as "no ring", nor as a ring with fewer duties."""
        encryption = (status or {}).get("encryption")
        path = "status.encryption"
        if encryption is None:
            return None
        if not isinstance(encryption, Mapping):
            return Unreadable(path)
        if encryption.get("primaryKeyId") is None:
            # Only an empty record (or one keeping nothing but a deleted store's schedule)
            # is "no ring": anything the operator writes with a ring has its primary.
            if any(encryption.get(k) is not None for k in encryption if k != "scheduledDeletion"):
                return Unreadable(f"{path}.primaryKeyId")
            return None
        try:
            last = (
                None if encryption.get("lastRotation") is None
                else _time(encryption, "lastRotation", path)
            )  # fmt: skip
            pending = encryption.get("pending")
            if pending is not None and not isinstance(pending, bool):
                raise _Garbled(f"{path}.pending")
            return cls(
                secret_name=_text(encryption, "keySecret", path),
                primary_id=_whole(encryption, "primaryKeyId", path),
                keys=tuple(_key(raw, at) for raw, at in _entries(encryption, "keys", path)),
                last_rotation=last,
                pending=pending is True,
                shredded=tuple(
                    ShreddedRecord(
                        _whole(raw, "keyId", at),
                        _bucket(raw, "bucket", at),
                        _time(raw, "shredded", at),
                    )
                    for raw, at in _entries(encryption, "shreddedBuckets", path)
                ),
                pending_keys=tuple(
                    _key(raw, at) for raw, at in _entries(encryption, "pendingKeys", path)
                ),
                owed=tuple(
                    OwedWithdrawal(
                        _whole(raw, "keyId", at),
                        _bucket(raw, "bucket", at),
                        _fingerprint(raw, "fingerprint", at),
                        _reason(raw, "reason", at),
                    )
                    for raw, at in _entries(encryption, "owedWithdrawals", path)
                ),
            )
        except _Garbled as garbled:
            return Unreadable(garbled.field)

    def to_status(self, next_rotation: datetime | None) -> dict[str, Any]:
        """`status.encryption` for this record."""
        primary = next((key for key in self.keys if key.id == self.primary_id), None)
        status: dict[str, Any] = {
            "keySecret": self.secret_name,
            "primaryKeyId": self.primary_id,
            "primaryKeyCreated": primary.created if primary else None,
            "nextRotation": format_time(next_rotation) if next_rotation else None,
            "keys": [key.to_status() for key in self.keys],
        }
        if self.pending_keys:
            status["pendingKeys"] = [key.to_status() for key in self.pending_keys]
        if self.shredded:
            status["shreddedBuckets"] = [gone.to_status() for gone in self.shredded]
        if self.owed:
            status["owedWithdrawals"] = [debt.to_status() for debt in self.owed]
        if self.last_rotation:
            status["lastRotation"] = self.last_rotation
        if self.pending:
            status["pending"] = True
        return status


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One RBAC rule, with every list kept as a sorted tuple so rules compare by value."""

    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> PolicyRule:
        """From a rule as the API writes it."""
        return cls(
            api_groups=_sorted(raw.get("apiGroups")),
            resources=_sorted(raw.get("resources")),
            verbs=_sorted(raw.get("verbs")),
            resource_names=_sorted(raw.get("resourceNames")),
        )

    def reads_secrets(self, secret_names: Iterable[str]) -> bool:
        """True when the rule lets its holder read any of `secret_names`: one of
        SECRET_READ_VERBS (patch, delete and deletecollection can answer with the whole
        Secret), or "*"."""
        return (
            bool({"", "*"} & set(self.api_groups))
            and bool({"secrets", "*"} & set(self.resources))
            and bool({*SECRET_READ_VERBS, "*"} & set(self.verbs))
            and (not self.resource_names or bool(set(self.resource_names) & set(secret_names)))
        )

    def starts_pods(self) -> bool:
        """True when the rule lets its holder start a pod of its own writing in the namespace
        it holds in (create a pod or a workload, rewrite a workload's pod template), enter
        one (exec, attach, an ephemeral container) or act as one of its ServiceAccounts
        (mint a token): POD_STARTING_GRANTS. The pods can mount any Secret of the
        namespace."""
        # Every one of them holds through a RoleBinding of the namespace as well.
        return self._grants(POD_STARTING_GRANTS, cluster_binding=False)

    def escalates(self, cluster_binding: bool) -> bool:
        """True when the rule, held through a ClusterRoleBinding (`cluster_binding`) or a
        RoleBinding, lets its holder act as another account (impersonate), bind or write a
        role, run commands in pods through the kubelet's API, write an admission webhook,
        make a PersistentVolume or request a node's client certificate (nodeclient, which
        kube-controller-manager approves unasked): ESCALATION_GRANTS. Any of them may read
        the Secrets.
        Approving certificates takes two grants, perhaps of two rules of a role
        (`approves_certificates`)."""
        return self._grants(ESCALATION_GRANTS, cluster_binding)

    def holds(self, grant: Grant, cluster_binding: bool) -> bool:
        """Whether the rule grants `grant` through a binding of that kind (a grant only a
        ClusterRoleBinding gives needs `cluster_binding`). A "*" verb or group counts, and
        resources match as RBAC matches them (`_resource_matches`). A rule limited by
        resourceNames to the grant's `harmless` names alone does not hold it."""
        return (
            (cluster_binding or not grant.cluster)
            and ("*" in self.verbs or not grant.verbs.isdisjoint(self.verbs))
            and ("*" in self.api_groups or grant.group in self.api_groups)
            and any(
                _resource_matches(mine, theirs)
                for mine in self.resources
                for theirs in grant.resources
            )
            and (grant.named or not self.resource_names)
            and not (self.resource_names and grant.harmless.issuperset(self.resource_names))
        )

    def _grants(self, table: Iterable[Grant], cluster_binding: bool) -> bool:
        """Whether the rule grants any of `table` through a binding of that kind (`holds`)."""
        return any(self.holds(grant, cluster_binding) for grant in table)


def approval_grants(rules: Sequence[PolicyRule], cluster_binding: bool) -> frozenset[int]:
    """Which of CERTIFICATE_APPROVAL_GRANTS (by index) the rules of one role grant between
    them through a binding of that kind (none through a RoleBinding: they are
    cluster-scoped)."""
    return frozenset(
        index
        for index, grant in enumerate(CERTIFICATE_APPROVAL_GRANTS)
        if any(rule.holds(grant, cluster_binding) for rule in rules)
    )


def mints_tokens_through_secrets(rules: Sequence[PolicyRule]) -> bool:
    """True when the rules of one role grant every one of SECRET_TOKEN_GRANTS between them
    (create Secrets, and read one of a name of its holder's choosing): their holder makes a
    ServiceAccount token Secret for any account of the namespace and reads the token
    kube-controller-manager fills in, as `create` on serviceaccounts/token would mint it
    (POD_STARTING_GRANTS). Both hold through a RoleBinding of the namespace."""
    return all(any(rule.holds(grant, False) for rule in rules) for grant in SECRET_TOKEN_GRANTS)


def approves_certificates(rules: Sequence[PolicyRule], cluster_binding: bool) -> bool:
    """True when the rules of one role, held through a binding of that kind, grant every one
    of CERTIFICATE_APPROVAL_GRANTS between them (the approval subresource and the signer's
    `approve`): their holder approves a CertificateSigningRequest of its own for a client
    certificate naming anyone. Only a ClusterRoleBinding grants them. One subject holding
    them through two bindings approves as well (`checks.access.split_approvals`)."""
    return len(approval_grants(rules, cluster_binding)) == len(CERTIFICATE_APPROVAL_GRANTS)


def _resource_matches(rule_resource: str, resource: str) -> bool:
    """Whether a rule's resource covers `resource` (`pods`, or `pods/exec` for a
    subresource), as Kubernetes' RBAC matches them (rbac ResourceMatches): "*" is every
    resource and subresource, and "*/<subresource>" is that subresource of every resource
    ("*/exec" is pods/exec); nothing else is a pattern."""
    if rule_resource in ("*", resource):
        return True
    _, slash, subresource = resource.partition("/")
    return bool(slash) and rule_resource == f"*/{subresource}"


@dataclass(frozen=True, slots=True)
class ObservedRole:
    """A Role or ClusterRole (aggregated rules already filled in by the API server)."""

    kind: Literal["Role", "ClusterRole"]
    name: str
    namespace: str | None
    rules: tuple[PolicyRule, ...]
    # The very `rules` list `rules` were parsed from (the cached object's, never changed):
    # a render holding that list holds these rules (`access.rbac_as_rendered`), no parse.
    source: object = field(default=None, compare=False, repr=False)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ObservedRole:
        """From a Role or ClusterRole as read from the API."""
        metadata = obj.get("metadata") or {}
        kind: Literal["Role", "ClusterRole"] = (
            "Role" if obj.get("kind") == "Role" else "ClusterRole"
        )
        raw = obj.get("rules")
        return cls(
            kind=kind,
            name=str(metadata.get("name", "")),
            namespace=metadata.get("namespace") if kind == "Role" else None,
            rules=tuple(PolicyRule.from_api(rule) for rule in raw or ()),
            source=raw,
        )


@dataclass(frozen=True, slots=True)
class BindingSubject:
    """A subject of a binding; `namespace` only for ServiceAccounts."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def from_api(cls, raw: Mapping[str, Any], default_namespace: str | None) -> BindingSubject:
        """From a binding's subject as the API writes it."""
        kind = str(raw.get("kind", ""))
        namespace = None
        if kind == "ServiceAccount":
            namespace = raw.get("namespace") or default_namespace
        return cls(kind, str(raw.get("name", "")), namespace)

    def as_principal(self) -> BindingSubject:
        """The identity the subject names: a User whose name is a ServiceAccount's username
        (`service_account_of`, as Kubernetes splits it) as that ServiceAccount, anything else
        as it is. RBAC matches a ServiceAccount subject by that username, so both name one
        account; a User only named like one (`system:serviceaccount:ns:x:y`) is a User."""
        if self.kind == "User":
            account = service_account_of(self.name)
            if account is not None:
                return BindingSubject("ServiceAccount", account[1], account[0])
        return self

    def describe(self) -> str:
        """`Kind name` or `ServiceAccount namespace/name`, for messages (status, Events): a
        name that may be personal data (an OIDC user's address, a person's name) as its
        digest (`dataward.accounts.shown`). A ServiceAccount's `namespace` too: the API server
        checks a subject's name but stores any text as its namespace."""
        if self.namespace:
            return f"{self.kind} {shown(self.namespace)}/{shown(self.name)}"
        return f"{self.kind} {shown(self.name)}"


@dataclass(frozen=True, slots=True)
class ObservedBinding:
    """A RoleBinding (in the store's namespace) or a ClusterRoleBinding."""

    kind: Literal["RoleBinding", "ClusterRoleBinding"]
    name: str
    namespace: str | None
    role_kind: str
    role_name: str
    subjects: frozenset[BindingSubject]
    # The very `subjects` list `subjects` were parsed from (the cached object's, never
    # changed): a render holding that list binds these subjects (`access.rbac_as_rendered`).
    source: object = field(default=None, compare=False, repr=False)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ObservedBinding:
        """From a RoleBinding or ClusterRoleBinding as read from the API."""
        metadata = obj.get("metadata") or {}
        kind: Literal["RoleBinding", "ClusterRoleBinding"] = (
            "RoleBinding" if obj.get("kind") == "RoleBinding" else "ClusterRoleBinding"
        )
        namespace = metadata.get("namespace") if kind == "RoleBinding" else None
        role_ref = obj.get("roleRef") or {}
        raw_subjects = obj.get("subjects")
        return cls(
            kind=kind,
            name=str(metadata.get("name", "")),
            namespace=namespace,
            role_kind=str(role_ref.get("kind", "")),
            role_name=str(role_ref.get("name", "")),
            subjects=frozenset(
                BindingSubject.from_api(raw, namespace) for raw in raw_subjects or ()
            ),
            source=raw_subjects,
        )

    def describe(self) -> str:
        """`RoleBinding namespace/name` or `ClusterRoleBinding name`, for messages: a name
        that may be personal data (RBAC names may hold `@` and spaces, and bindings are often
        named after the user they are for) as its digest (`dataward.accounts.shown`)."""
        if self.namespace:
            return f"{self.kind} {self.namespace}/{shown(self.name)}"
        return f"{self.kind} {shown(self.name)}"

    def describe_role(self) -> str:
        """`Kind name` of the role the binding names, for messages, as `describe`."""
        return f"{self.role_kind} {shown(self.role_name)}"


@dataclass(frozen=True)
class RbacSnapshot:
    """The RBAC objects that can grant access in the store's namespace.

    `bindings`: every RoleBinding in the namespace and every ClusterRoleBinding. `roles`: the
    Roles of the namespace and every ClusterRole (or at least those the bindings name).
    `base` and `replaced`: for a snapshot made by `with_objects`, the one it was made from and
    the keys of the bindings it replaced (what a namespace's shared findings are kept on).
    `versions`: the resourceVersion each object was read at, by (kind, namespace, name), where
    known (`with_objects` need not read again an object it holds at that version).
    """

    bindings: tuple[ObservedBinding, ...]
    roles: tuple[ObservedRole, ...]
    base: RbacSnapshot | None = field(default=None, compare=False, repr=False)
    replaced: frozenset[tuple[str, str | None, str]] = field(
        default=frozenset(), compare=False, repr=False
    )
    versions: Mapping[tuple[str, str | None, str], str | None] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_api(
        cls, bindings: Iterable[Mapping[str, Any]], roles: Iterable[Mapping[str, Any]]
    ) -> RbacSnapshot:
        """From lists of binding and role objects as read from the API."""
        return cls(
            tuple(ObservedBinding.from_api(obj) for obj in bindings),
            tuple(ObservedRole.from_api(obj) for obj in roles),
        )

    def with_objects(self, objects: Iterable[Mapping[str, Any]]) -> RbacSnapshot:
        """This snapshot with `objects` (Roles, RoleBindings as written) in place of theirs.

        Itself when every object is already here as written (a store with nothing to do), so
        what is derived from it stays shared by the namespace's stores (issue 11). An object
        held at its resourceVersion is the one held: not read again (a store's cached Roles
        and RoleBindings, read again on every reconcile, were 4% of a restart's first pass).
        """
        written = [o for o in objects if not self._holds(o)]
        if not written:
            return self
        bindings = [ObservedBinding.from_api(o) for o in written if "Binding" in o["kind"]]
        roles = [ObservedRole.from_api(o) for o in written if "Binding" not in o["kind"]]
        if all(self.binding(b.kind, b.namespace, b.name) == b for b in bindings) and all(
            self.role(r.kind, r.namespace, r.name) == r for r in roles
        ):
            return self
        replaced_b: set[tuple[str, str | None, str]] = {
            (b.kind, b.namespace, b.name) for b in bindings
        }
        replaced_r: set[tuple[str, str | None, str]] = {
            (r.kind, r.namespace, r.name) for r in roles
        }
        # The indexes: this snapshot's, the written objects over them (the first of
        # duplicates winning, as in a scan of the tuples), without a scan.
        by_binding = dict(self._bindings_by_key)
        for gone in replaced_b:
            by_binding.pop(gone, None)
        for binding in bindings:
            by_binding.setdefault((binding.kind, binding.namespace, binding.name), binding)
        by_role = dict(self._roles_by_key)
        for key in replaced_r:
            by_role.pop(key, None)
        for role in roles:
            by_role.setdefault((role.kind, role.namespace, role.name), role)
        unique = (
            len(self._bindings_by_key) == len(self.bindings)
            and len(self._roles_by_key) == len(self.roles)
            and len(replaced_b) == len(bindings)
            and len(replaced_r) == len(roles)
        )
        layered = RbacSnapshot(
            # Without duplicates, the index's order is the scan's: the others in place, the
            # written ones last (a copy made by C code: no per-binding step, issue 11).
            tuple(by_binding.values())
            if unique
            else tuple(b for b in self.bindings if (b.kind, b.namespace, b.name) not in replaced_b)
            + tuple(bindings),
            tuple(by_role.values())
            if unique
            else tuple(r for r in self.roles if (r.kind, r.namespace, r.name) not in replaced_r)
            + tuple(roles),
            base=self.base or self,
            replaced=self.replaced | replaced_b,
        )
        layered.__dict__["_bindings_by_key"] = by_binding
        layered.__dict__["_roles_by_key"] = by_role
        return layered

    def _holds(self, obj: Mapping[str, Any]) -> bool:
        """Whether `obj` is held here at its resourceVersion (then as it was read)."""
        metadata = obj.get("metadata") or {}
        version = metadata.get("resourceVersion")
        kind = str(obj.get("kind"))
        key = (kind, rbac_scope(kind, metadata.get("namespace")), str(metadata.get("name")))
        return version is not None and self.versions.get(key) == version

    @cached_property
    def memo(self) -> dict[object, object]:
        """Findings worked out once per snapshot and shared by the namespace's stores."""
        return {}

    @cached_property
    def _roles_by_key(self) -> dict[tuple[str, str | None, str], ObservedRole]:
        """The roles by (kind, namespace, name); the first of duplicates wins, as in a scan."""
        index: dict[tuple[str, str | None, str], ObservedRole] = {}
        for role in self.roles:
            index.setdefault((role.kind, role.namespace, role.name), role)
        return index

    @cached_property
    def _bindings_by_key(self) -> dict[tuple[str, str | None, str], ObservedBinding]:
        index: dict[tuple[str, str | None, str], ObservedBinding] = {}
        for binding in self.bindings:
            index.setdefault((binding.kind, binding.namespace, binding.name), binding)
        return index

    def role(self, kind: str, namespace: str | None, name: str) -> ObservedRole | None:
        """The Role (namespace) or ClusterRole (namespace None) of that name, if any."""
        return self._roles_by_key.get((kind, namespace, name))

    def binding(self, kind: str, namespace: str | None, name: str) -> ObservedBinding | None:
        """The RoleBinding (namespace) or ClusterRoleBinding of that name, if any."""
        return self._bindings_by_key.get((kind, namespace, name))

    def role_for(self, binding: ObservedBinding) -> ObservedRole | None:
        """The Role or ClusterRole a binding refers to, or None when it does not exist."""
        if binding.role_kind == "ClusterRole":
            return self._roles_by_key.get(("ClusterRole", None, binding.role_name))
        if binding.role_kind == "Role":
            return self._roles_by_key.get(("Role", binding.namespace, binding.role_name))
        return None


@dataclass(frozen=True)
class TrustedSubjects:
    """Subjects whose access to Secrets is the platform's, not a breach of the store's.

    An explicit, short list (the chart's `trustedSubjects`), never a pattern such as "every
    `system:` user": a RoleBinding to User `system:evil` is as foreign as one to `mallory`.
    The default names what every cluster has: `system:masters` (cluster-admin), the
    controller manager's user, and the ServiceAccounts of kube-system (the controllers run
    under them with --use-service-account-credentials). The operator's own ServiceAccount is
    added by the operator. `name` "*" on a ServiceAccount means every account of that
    namespace; nothing else takes wildcards.
    """

    groups: frozenset[str] = frozenset({"system:masters"})
    users: frozenset[str] = frozenset({"system:kube-controller-manager"})
    service_accounts: frozenset[tuple[str, str]] = frozenset({("kube-system", "*")})

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedSubjects:
        """From `Group:<name>`, `User:<name>` and `ServiceAccount:<namespace>/<name>` entries."""
        groups: set[str] = set()
        users: set[str] = set()
        accounts: set[tuple[str, str]] = set()
        for entry in entries:
            kind, _, name = entry.partition(":")
            if not name:
                raise ValueError(f"trusted subject {entry!r} is not Kind:name")
            if kind == "Group":
                groups.add(name)
            elif kind == "User":
                users.add(name)
            elif kind == "ServiceAccount" and "/" in name:
                namespace, _, account = name.partition("/")
                accounts.add((namespace, account))
            else:
                raise ValueError(
                    f"trusted subject {entry!r}: write Group:<name>, User:<name> or "
                    "ServiceAccount:<namespace>/<name>"
                )
        return cls(frozenset(groups), frozenset(users), frozenset(accounts))

    def with_service_account(self, namespace: str, name: str) -> TrustedSubjects:
        """These subjects plus one ServiceAccount (the operator's own)."""
        return TrustedSubjects(
            self.groups, self.users, self.service_accounts | {(namespace, name)}
        )

    def trusts(self, subject: BindingSubject) -> bool:
        """True when `subject` is part of the platform. A User named as a ServiceAccount is
        that account (`BindingSubject.as_principal`); one only named like an account is a
        User, trusted only when listed as one."""
        subject = subject.as_principal()
        if subject.kind == "Group":
            return subject.name in self.groups
        if subject.kind == "ServiceAccount":
            return self._trusts_account(subject.namespace or "", subject.name)
        if subject.kind == "User":
            return subject.name in self.users
        return False

    def _trusts_account(self, namespace: str, name: str) -> bool:
        return (namespace, name) in self.service_accounts or (
            namespace,
            "*",
        ) in self.service_accounts


@dataclass(frozen=True)
class LastPurge:
    """`status.lastPurge`: the result record of the last purge run.

    `result` is one of the purge's outcomes (Succeeded, Failed, Held, Skipped); `reason`
    says why a run stopped or failed (for example MaxRowsPerRun).
    """

    result: str
    start_time: str | None = None
    completion_time: str | None = None
    cutoff: str | None = None
    rows_deleted: int = 0
    rows_archived: int = 0
    dry_run: bool = False
    message: str = ""
    reason: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> LastPurge | None:
        """Read `status.lastPurge`; None when no purge has run. A record with a field not in
        the form the CRD types it is a run without a readable result (NoResultRecord, the
        fields named, never their values), not a result, and not "no run"."""
        raw = (status or {}).get("lastPurge")
        if not isinstance(raw, Mapping) or all(value is None for value in raw.values()):
            return None
        garbled = unreadable_purge_fields(raw)
        if raw.get("result") is None:  # every record has one: not "no run"
            garbled = sorted({*garbled, "result"})
        if garbled:
            return cls(
                result="Unknown",
                reason="NoResultRecord",  # as purge_runs.last_purge_status records it
                message=f"{unreadable_purge_message(garbled)}, so its result is not read.",
            )
        return cls(
            result=str(raw["result"]),
            start_time=_optional_str(raw.get("startTime")),
            completion_time=_optional_str(raw.get("completionTime")),
            cutoff=_optional_str(raw.get("cutoff")),
            rows_deleted=int(raw.get("rowsDeleted") or 0),
            rows_archived=int(raw.get("rowsArchived") or 0),
            dry_run=bool(raw.get("dryRun", False)),
            message=str(raw.get("message") or ""),
            reason=_optional_str(raw.get("reason")),
        )


# status.lastPurge's fields as the CRD types them. The purge's result record (its pod's
# termination message) is copied there: a field of another form would be refused by the API
# server (the status write failing for ever: a count beyond int64) or misread (bool("false")
# is True; a count below zero).
_PURGE_TIMES = ("startTime", "completionTime", "cutoff")
_PURGE_COUNTS = (
    "rowsDeleted", "rowsArchived", "archiveRowsDestroyed", "expiredRemaining", "nullTriggers",
    "rowsSkippedLocked", "rowsNoConsent",
)  # fmt: skip
PURGE_MESSAGE_LIMIT = 32768  # characters of status.lastPurge.message
_PURGE_TEXTS = {"result": 64, "reason": 128, "stoppedEarly": 128, "jobName": 253,
                "message": PURGE_MESSAGE_LIMIT}  # fmt: skip


def rbac_scope(kind: str, namespace: str | None) -> str | None:
    """The namespace an RBAC object of `kind` is keyed under: None for the cluster's kinds."""
    return None if kind.startswith("Cluster") else namespace


def unreadable_purge_fields(raw: Mapping[str, Any]) -> list[str]:
    """The fields of a purge result (`status.lastPurge`, or the record copied there) that are
    present but not in the form the CRD types them: their names, never their values."""
    garbled = []
    for key, value in raw.items():
        if value is None:
            continue
        if key in _PURGE_TIMES:
            try:
                _time(raw, key, "")
                fits = True
            except _Garbled:
                fits = False
        elif key in _PURGE_COUNTS:
            fits = is_count(value)
        elif key == "oldestExpiredAgeSeconds":
            fits = is_seconds(value)
        elif key == "dryRun":
            fits = isinstance(value, bool)
        elif key in _PURGE_TEXTS:
            fits = isinstance(value, str) and len(value) <= _PURGE_TEXTS[key]
            fits = fits and (key != "result" or bool(value))  # "" would read as "no run"
        else:
            continue  # not a field of status.lastPurge
        if not fits:
            garbled.append(key)
    return sorted(garbled)


def unreadable_purge_message(fields: Iterable[str]) -> str:
    """Why a purge result is not read: the fields only, never their values."""
    return f"field(s) {', '.join(fields)} of its result record are not in the form the purge writes"


def _sorted(values: Iterable[Any] | None) -> tuple[str, ...]:
    # map, not a generator: two thirds of the CPU, and every Role's rules are read with it.
    return tuple(sorted(map(str, values))) if values else ()


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
