"""The PersonalDataStore as a typed value."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dataward.model.cron import parse_cron
from dataward.model.durations import Duration, parse_duration
from dataward.model.errors import ModelError
from dataward.model.fields import (
    boolean,
    integer,
    mapping,
    optional_text,
    sequence,
    text,
)
from dataward.model.wallclock import parse_zone

Engine = Literal["postgresql", "mysql"]
TLSMode = Literal["disable", "require", "verify-full"]
SubjectKind = Literal["ServiceAccount", "User", "Group"]
DeletionPolicy = Literal["Retain", "Delete"]

DEFAULT_PORTS: dict[str, int] = {"postgresql": 5432, "mysql": 3306}


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    """One `matchExpressions` entry of a label selector."""

    key: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector, kept in the API's order so rendering is deterministic."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[SelectorRequirement, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The selector as the API writes it."""
        out: dict[str, Any] = {}
        if self.match_labels:
            out["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            out["matchExpressions"] = [
                {
                    "key": r.key,
                    "operator": r.operator,
                    **({"values": list(r.values)} if r.values else {}),
                }
                for r in self.match_expressions
            ]
        return out


@dataclass(frozen=True, slots=True)
class Port:
    """A port of the workload that the NetworkPolicy opens to allowed peers."""

    port: int
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class Workload:
    """The pods that hold the data."""

    pod_selector: LabelSelector
    ports: tuple[Port, ...]


@dataclass(frozen=True, slots=True)
class Database:
    """How the purge job reaches a database; credentials stay in a Secret."""

    engine: Engine
    host: str
    port: int
    name: str
    credentials_secret: str
    tls: TLSMode = "require"

    @property
    def address(self) -> tuple[str, int, str]:
        """What makes two databases the same one."""
        return (self.host.lower(), self.port, self.name)


@dataclass(frozen=True, slots=True)
class SubjectColumn:
    """A column of a table that holds one kind of a data subject's identifier."""

    kind: str
    column: str


@dataclass(frozen=True, slots=True)
class ChildColumns:
    """Where a table of a children's category says a row's subject is a child without consent.

    Exactly one of `birth_date_column` (date or timestamp) and `age_column` (whole years at
    collection). `consent_column` records the legal representative's consent: a timestamp
    (consent recorded when not NULL) or a boolean (recorded when true). The subject's age
    and the grace period are taken at `collected_column` (default: the records'
    timestampColumn).
    """

    consent_column: str
    birth_date_column: str | None = None
    age_column: str | None = None
    collected_column: str | None = None


@dataclass(frozen=True, slots=True)
class RecordSet:
    """A table whose rows the retention applies to."""

    table: str
    timestamp_column: str
    key_columns: tuple[str, ...]
    # records[].subjectColumns: where a DataSubjectRequest finds a subject's rows.
    subject_columns: tuple[SubjectColumn, ...] = ()
    children: ChildColumns | None = None
    # records[].timeZone: the IANA zone whose wall clock a naive timestamp column holds
    # (None: UTC, and a date is midnight UTC). Checked against the zone database when parsed.
    time_zone: str | None = None

    @property
    def zone(self) -> ZoneInfo | None:
        """The zone of the naive trigger values, None for UTC (the behaviour without it)."""
        return None if self.time_zone is None else parse_zone(self.time_zone)


@dataclass(frozen=True, slots=True)
class Subject:
    """A reader allowed to get the store's key ring and credentials."""

    kind: SubjectKind
    name: str
    namespace: str | None = None

    def to_rbac(self, default_namespace: str) -> dict[str, Any]:
        """The subject as an RBAC binding writes it."""
        if self.kind == "ServiceAccount":
            return {
                "kind": "ServiceAccount",
                "name": self.name,
                "namespace": self.namespace or default_namespace,
            }
        return {"kind": self.kind, "name": self.name, "apiGroup": "rbac.authorization.k8s.io"}


@dataclass(frozen=True, slots=True)
class NetworkPeer:
    """A NetworkPolicy peer, kept as the API dict (frozen as sorted JSON-like tuples)."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: tuple[str, tuple[str, ...]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The peer as a NetworkPolicy writes it."""
        out: dict[str, Any] = {}
        if self.pod_selector is not None:
            out["podSelector"] = self.pod_selector.to_dict()
        if self.namespace_selector is not None:
            out["namespaceSelector"] = self.namespace_selector.to_dict()
        if self.ip_block is not None:
            cidr, excepts = self.ip_block
            out["ipBlock"] = {"cidr": cidr, **({"except": list(excepts)} if excepts else {})}
        return out


@dataclass(frozen=True, slots=True)
class Purge:
    """When and how the purge job runs."""

    schedule: str = "17 3 * * *"
    batch_size: int = 1000
    max_rows_per_run: int = 100000
    dry_run: bool = False
    suspend: bool = False


# The defaults, read from an instance: a slotted class's attributes are its slots' descriptors.
PURGE_DEFAULTS = Purge()


@dataclass(frozen=True, slots=True)
class Store:
    """One store of personal data, belonging to one category of one policy."""

    namespace: str
    name: str
    uid: str
    generation: int
    policy: str
    category: str
    retention: Duration | None
    workload: Workload
    database: Database
    records: tuple[RecordSet, ...]
    archive: Database | None
    key_rotation: Duration | None
    # spec.encryption.adoptExistingKeyRing: use a ring Secret the operator did not create.
    adopt_key_ring: bool
    readers: tuple[Subject, ...]
    allow_from: tuple[NetworkPeer, ...]
    purge: Purge
    deletion_policy: DeletionPolicy
    annotations: tuple[tuple[str, str], ...] = field(default=())

    def annotation(self, key: str) -> str | None:
        """The value of one of the store's annotations, or None."""
        return dict(self.annotations).get(key)

    @property
    def connection_pin(self) -> str:
        """A digest of where the store's Jobs log in and with which Secrets (spec.database,
        spec.archive.database): a Job mounts the Secrets the store named when it was made,
        so it must not log in to the databases the store names after an edit."""
        parts = [
            (d.engine, d.host, d.port, d.name, d.credentials_secret, d.tls)
            for d in (self.database, self.archive)
            if d is not None
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def parse_store(obj: Mapping[str, Any]) -> Store:
    """Turn a PersonalDataStore dict from the API (or a file) into a Store."""
    metadata = mapping(obj, "metadata", "")
    spec = mapping(obj, "spec", "")
    namespace = text(metadata, "namespace", "metadata", default="default")
    workload = mapping(spec, "workload", "spec")
    encryption = mapping(spec, "encryption", "spec", required=False)
    access = mapping(spec, "access", "spec", required=False)
    network = mapping(spec, "network", "spec", required=False)
    purge = mapping(spec, "purge", "spec", required=False)
    archive = mapping(spec, "archive", "spec", required=False)
    retention = optional_text(spec, "retention", "spec")
    key_rotation = optional_text(encryption, "keyRotation", "spec.encryption")
    annotations = metadata.get("annotations") or {}
    return Store(
        namespace=namespace,
        name=text(metadata, "name", "metadata"),
        uid=str(metadata.get("uid") or ""),
        generation=int(metadata.get("generation") or 0),
        policy=text(spec, "policy", "spec"),
        category=text(spec, "category", "spec"),
        retention=parse_duration(retention, "spec.retention") if retention is not None else None,
        workload=Workload(
            pod_selector=parse_selector(
                mapping(workload, "podSelector", "spec.workload"), "spec.workload.podSelector"
            ),
            ports=tuple(
                _parse_port(raw, f"spec.workload.ports[{i}]")
                for i, raw in enumerate(sequence(workload, "ports", "spec.workload"))
            ),
        ),
        database=parse_database(mapping(spec, "database", "spec"), "spec.database"),
        records=tuple(
            _parse_records(raw, f"spec.records[{i}]")
            for i, raw in enumerate(sequence(spec, "records", "spec", required=True))
        ),
        archive=parse_database(
            mapping(archive, "database", "spec.archive"), "spec.archive.database"
        )
        if archive
        else None,
        key_rotation=parse_duration(key_rotation, "spec.encryption.keyRotation")
        if key_rotation is not None
        else None,
        adopt_key_ring=encryption.get("adoptExistingKeyRing") is True,
        readers=tuple(
            _parse_subject(raw, f"spec.access.readers[{i}]")
            for i, raw in enumerate(sequence(access, "readers", "spec.access"))
        ),
        allow_from=tuple(
            _parse_peer(raw, f"spec.network.allowFrom[{i}]")
            for i, raw in enumerate(sequence(network, "allowFrom", "spec.network"))
        ),
        purge=Purge(
            schedule=_schedule(
                text(purge, "schedule", "spec.purge", default=PURGE_DEFAULTS.schedule)
            ),
            batch_size=integer(purge, "batchSize", "spec.purge", default=PURGE_DEFAULTS.batch_size),
            max_rows_per_run=integer(
                purge, "maxRowsPerRun", "spec.purge", default=PURGE_DEFAULTS.max_rows_per_run
            ),
            dry_run=boolean(purge, "dryRun", "spec.purge", default=False),
            suspend=boolean(purge, "suspend", "spec.purge", default=False),
        ),
        deletion_policy=_choice(spec, "deletionPolicy", "spec", ("Retain", "Delete"), "Retain"),  # type: ignore[arg-type]
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
    )


@dataclass(frozen=True, slots=True)
class StoreScope:
    """What decides whether a store answers a data subject request (subjects/request.py
    `SubjectRequest.in_scope`), read from a store whose spec does not parse: each field as
    far as it reads, None where it does not (not known, which is not "out of scope")."""

    namespace: str
    name: str
    policy: str | None
    category: str | None


def store_scope(obj: Mapping[str, Any]) -> StoreScope | None:
    """`obj`'s StoreScope, its fields read as `parse_store` reads them; None when not even
    its name reads (never so from the API)."""
    try:
        metadata = mapping(obj, "metadata", "")
        namespace = text(metadata, "namespace", "metadata", default="default")
        name = text(metadata, "name", "metadata")
    except ModelError:
        return None
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return StoreScope(namespace, name, None, None)

    def read(key: str) -> str | None:
        try:
            return text(spec, key, "spec")
        except ModelError:
            return None

    return StoreScope(namespace, name, read("policy"), read("category"))


def parse_database(raw: Mapping[str, Any], path: str) -> Database:
    """Parse the `database` shape shared by the live store and its archive."""
    engine = _choice(raw, "engine", path, ("postgresql", "mysql"), None)
    return Database(
        engine=engine,  # type: ignore[arg-type]
        host=text(raw, "host", path),
        port=integer(raw, "port", path, default=DEFAULT_PORTS[engine]),
        name=text(raw, "name", path),
        credentials_secret=text(raw, "credentialsSecret", path),
        tls=_choice(raw, "tls", path, ("disable", "require", "verify-full"), "require"),  # type: ignore[arg-type]
    )


def parse_selector(raw: Mapping[str, Any], path: str) -> LabelSelector:
    """Parse a label selector."""
    labels = raw.get("matchLabels") or {}
    if not isinstance(labels, Mapping):
        raise ModelError(f"{path}.matchLabels", "must be an object of label: value")
    expressions = []
    for i, item in enumerate(sequence(raw, "matchExpressions", path)):
        where = f"{path}.matchExpressions[{i}]"
        if not isinstance(item, Mapping):
            raise ModelError(where, "must be an object")
        expressions.append(
            SelectorRequirement(
                key=text(item, "key", where),
                operator=text(item, "operator", where),
                values=tuple(str(v) for v in sequence(item, "values", where)),
            )
        )
    return LabelSelector(
        match_labels=tuple((str(k), str(v)) for k, v in labels.items()),
        match_expressions=tuple(expressions),
    )


def _parse_port(raw: Any, path: str) -> Port:
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be an object with port and protocol")
    return Port(
        port=integer(raw, "port", path), protocol=text(raw, "protocol", path, default="TCP")
    )


def _parse_records(raw: Any, path: str) -> RecordSet:
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be an object")
    keys = tuple(str(k) for k in sequence(raw, "keyColumns", path, required=True))
    if not keys:
        raise ModelError(f"{path}.keyColumns", "must name at least one column")
    return RecordSet(
        table=text(raw, "table", path),
        timestamp_column=text(raw, "timestampColumn", path),
        key_columns=keys,
        subject_columns=_parse_subject_columns(raw, path),
        children=_parse_children(raw.get("children"), f"{path}.children"),
        time_zone=_parse_time_zone(raw, path),
    )


def _parse_time_zone(raw: Mapping[str, Any], path: str) -> str | None:
    name = optional_text(raw, "timeZone", path)
    if name is not None:
        parse_zone(name, f"{path}.timeZone")
    return name


def _parse_children(raw: Any, path: str) -> ChildColumns | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be an object")
    birth = optional_text(raw, "birthDateColumn", path)
    age = optional_text(raw, "ageColumn", path)
    if (birth is None) == (age is None):
        raise ModelError(path, "give exactly one of birthDateColumn and ageColumn")
    return ChildColumns(
        consent_column=text(raw, "consentColumn", path),
        birth_date_column=birth,
        age_column=age,
        collected_column=optional_text(raw, "collectedColumn", path),
    )


def _parse_subject_columns(raw: Mapping[str, Any], path: str) -> tuple[SubjectColumn, ...]:
    columns: list[SubjectColumn] = []
    for i, item in enumerate(sequence(raw, "subjectColumns", path)):
        where = f"{path}.subjectColumns[{i}]"
        if not isinstance(item, Mapping):
            raise ModelError(where, "must be an object with kind and column")
        column = SubjectColumn(kind=text(item, "kind", where), column=text(item, "column", where))
        if any(c.kind == column.kind for c in columns):
            raise ModelError(f"{where}.kind", f"kind {column.kind!r} is listed twice")
        columns.append(column)
    return tuple(columns)


def _parse_subject(raw: Any, path: str) -> Subject:
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be an object with kind and name")
    kind = _choice(raw, "kind", path, ("ServiceAccount", "User", "Group"), None)
    return Subject(
        kind=kind,  # type: ignore[arg-type]
        name=text(raw, "name", path),
        namespace=optional_text(raw, "namespace", path),
    )


def _parse_peer(raw: Any, path: str) -> NetworkPeer:
    if not isinstance(raw, Mapping):
        raise ModelError(path, "must be a NetworkPolicy peer")
    pod = raw.get("podSelector")
    ns = raw.get("namespaceSelector")
    block = raw.get("ipBlock")
    ip_block = None
    if isinstance(block, Mapping):
        ip_block = (
            text(block, "cidr", f"{path}.ipBlock"),
            tuple(str(c) for c in sequence(block, "except", f"{path}.ipBlock")),
        )
    return NetworkPeer(
        pod_selector=parse_selector(pod, f"{path}.podSelector")
        if isinstance(pod, Mapping)
        else None,
        namespace_selector=parse_selector(ns, f"{path}.namespaceSelector")
        if isinstance(ns, Mapping)
        else None,
        ip_block=ip_block,
    )


def _choice(
    obj: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...], default: str | None
) -> str:
    value = text(obj, key, path, default=default)
    if value not in allowed:
        raise ModelError(f"{path}.{key}", f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _schedule(schedule: str) -> str:
    """`spec.purge.schedule`, refused when it is no schedule the purge's CronJob runs on
    (the CRD's pattern admits a reversed range and the 30th of February)."""
    parse_cron(schedule)
    return schedule
