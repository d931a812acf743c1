"""The table of inputs admission must refuse (and tricky ones it must accept), as plain data.

Each case turns a valid base object into another with an RFC 6902 JSON Patch, so the same
table drives `dataward.validation.validate_object` in unit tests and `kubectl apply
--dry-run=server` (or `kubectl patch --type=json`) against a real API server in e2e tests.
Adding a case is one line.
"""

# One case per line, however long: the table is read (and extended) line by line.
# ruff: noqa: E501
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

POLICY = "PrivacyPolicy"
STORE = "PersonalDataStore"

BASE_POLICY: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": POLICY,
    "metadata": {"name": "admission-cases"},
    "spec": {
        "effectiveDate": "2021-04-26",
        "defaults": {"keyRotation": "90d", "accessLogRetention": "6mo"},
        "categories": [
            {
                "name": "newsletter",
                "purposes": ["marketing"],
                "retention": {"period": "0d", "trigger": "unsubscribed"},
            },
            {
                "name": "contract-records",
                "purposes": ["contract"],
                "retention": {"period": "0d", "trigger": "contract-ended"},
                "statutory": {
                    "period": "5y",
                    "statute": "Act on Consumer Protection in Electronic Commerce",
                },
            },
        ],
    },
}

BASE_STORE: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": STORE,
    "metadata": {"name": "admission-case", "namespace": "default"},
    "spec": {
        "policy": "admission-cases",
        "category": "contract-records",
        "retention": "0d",
        "workload": {
            "podSelector": {"matchLabels": {"app": "shop-postgres"}},
            "ports": [{"port": 5432, "protocol": "TCP"}],
        },
        "database": {
            "engine": "postgresql",
            "host": "shop-postgres.default.svc",
            "port": 5432,
            "name": "shop",
            "credentialsSecret": "shop-purger",
            "tls": "require",
        },
        "records": [
            {"table": "public.orders", "timestampColumn": "contract_ended_at", "keyColumns": ["id"]}
        ],
        "archive": {
            "database": {
                "engine": "postgresql",
                "host": "archive-postgres.compliance.svc",
                "port": 5432,
                "name": "archive",
                "credentialsSecret": "archive-writer",
            }
        },
        "encryption": {"keyRotation": "30d"},
        "access": {
            "readers": [
                {"kind": "ServiceAccount", "name": "shop-api"},
                {"kind": "Group", "name": "privacy-officers"},
            ]
        },
        "network": {"allowFrom": [{"podSelector": {"matchLabels": {"app": "shop-api"}}}]},
        "purge": {
            "schedule": "17 3 * * *",
            "batchSize": 1000,
            "maxRowsPerRun": 100000,
            "dryRun": False,
            "suspend": False,
        },
        "deletionPolicy": "Retain",
    },
}

BASES: Mapping[str, Mapping[str, Any]] = {POLICY: BASE_POLICY, STORE: BASE_STORE}

Patch = tuple[Mapping[str, Any], ...]


def put(pointer: str, value: Any) -> Patch:
    """Set a field (JSON Patch `add`, which replaces a member; `replace` for a list index)."""
    op = "replace" if pointer.rsplit("/", 1)[-1].isdigit() else "add"
    return ({"op": op, "path": pointer, "value": value},)


def drop(pointer: str) -> Patch:
    """Remove a field (JSON Patch `remove`)."""
    return ({"op": "remove", "path": pointer},)


@dataclass(frozen=True)
class Case:
    """One object admission must refuse, and the field the refusal must name."""

    description: str
    kind: str
    patch: Patch
    path: str  # a substring of the field path the error names, e.g. "spec.purge.batchSize"
    update: bool = False  # apply as an update of the unpatched base object (transition rules)


@dataclass(frozen=True)
class Accepted:
    """An unusual but valid object that admission must accept."""

    description: str
    kind: str
    patch: Patch = field(default=())


def patched(kind: str, patch: Patch) -> dict[str, Any]:
    """A deep copy of the base object of `kind` with an RFC 6902 patch applied."""
    obj = copy.deepcopy(dict(BASES[kind]))
    for op in patch:
        parent, last = _locate(obj, str(op["path"]))
        if op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] == "replace" and isinstance(parent, list):
            parent[int(last)] = copy.deepcopy(op["value"])
        elif op["op"] == "add" and isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            parent.insert(index, copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            parent[last] = copy.deepcopy(op["value"])
        else:
            raise ValueError(f"unsupported JSON Patch op {op['op']!r}")
    return obj


def _locate(obj: Any, pointer: str) -> tuple[Any, str]:
    """The container a JSON Pointer's last token lives in, and that token."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    node = obj
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node, tokens[-1]


P, S = POLICY, STORE
CAT0, CAT1 = "/spec/categories/0", "/spec/categories/1"
DB, ARCHIVE_DB = "/spec/database", "/spec/archive/database"
PURGE, RECORD = "/spec/purge", "/spec/records/0"
READER = "/spec/access/readers/0"
SELECTOR = "/spec/workload/podSelector"
LONG = "a" * 64

# fmt: off
CASES: Sequence[Case] = (
    # Durations, wherever they appear.
    Case("negative duration", S, put("/spec/retention", "-1d"), "spec.retention"),
    Case("decimal duration", S, put("/spec/retention", "1.5d"), "spec.retention"),
    Case("ISO 8601 duration", S, put("/spec/retention", "P30D"), "spec.retention"),
    Case("space in duration", S, put("/spec/retention", "30 d"), "spec.retention"),
    Case("capital unit", S, put("/spec/retention", "1D"), "spec.retention"),
    Case("empty duration", S, put("/spec/retention", ""), "spec.retention"),
    Case("duration without unit", S, put("/spec/retention", "30"), "spec.retention"),
    Case("minutes are not a unit", S, put("/spec/retention", "30m"), "spec.retention"),
    Case("leading zero", S, put("/spec/retention", "030d"), "spec.retention"),
    Case("absurd days", S, put("/spec/retention", "36501d"), "spec.retention"),
    Case("absurd weeks", S, put("/spec/retention", "5201w"), "spec.retention"),
    Case("absurd months", S, put("/spec/retention", "1201mo"), "spec.retention"),
    Case("absurd years", S, put("/spec/retention", "101y"), "spec.retention"),
    Case("six digits", S, put("/spec/retention", "100000d"), "spec.retention"),
    Case("duration is a number", S, put("/spec/retention", 30), "spec.retention"),
    Case("zero key rotation", S, put("/spec/encryption/keyRotation", "0d"), "spec.encryption.keyRotation"),
    Case("bad key rotation", S, put("/spec/encryption/keyRotation", "1.5w"), "spec.encryption.keyRotation"),
    Case("bad category period", P, put(f"{CAT0}/retention/period", "P1Y"), "spec.categories[0].retention.period"),
    Case("bad statutory period", P, put(f"{CAT1}/statutory/period", "-5y"), "spec.categories[1].statutory.period"),
    Case("zero statutory period", P, put(f"{CAT1}/statutory/period", "0y"), "spec.categories[1].statutory.period"),
    Case("bad default rotation", P, put("/spec/defaults/keyRotation", "90"), "spec.defaults.keyRotation"),
    Case("zero access log retention", P, put("/spec/defaults/accessLogRetention", "0mo"), "spec.defaults.accessLogRetention"),
    # Cron schedules.
    Case("six-field cron", S, put(f"{PURGE}/schedule", "* * * * * *"), "spec.purge.schedule"),
    Case("four-field cron", S, put(f"{PURGE}/schedule", "* * * *"), "spec.purge.schedule"),
    Case("minute 61", S, put(f"{PURGE}/schedule", "61 * * * *"), "spec.purge.schedule"),
    Case("@every", S, put(f"{PURGE}/schedule", "@every 1s"), "spec.purge.schedule"),
    Case("@daily", S, put(f"{PURGE}/schedule", "@daily"), "spec.purge.schedule"),
    Case("hour 24", S, put(f"{PURGE}/schedule", "0 24 * * *"), "spec.purge.schedule"),
    Case("day of month 0", S, put(f"{PURGE}/schedule", "0 3 0 * *"), "spec.purge.schedule"),
    Case("day of month 32", S, put(f"{PURGE}/schedule", "0 3 32 * *"), "spec.purge.schedule"),
    Case("month 13", S, put(f"{PURGE}/schedule", "0 3 * 13 *"), "spec.purge.schedule"),
    Case("day of week 8", S, put(f"{PURGE}/schedule", "0 3 * * 8"), "spec.purge.schedule"),
    Case("step 0", S, put(f"{PURGE}/schedule", "*/0 * * * *"), "spec.purge.schedule"),
    Case("range past 59", S, put(f"{PURGE}/schedule", "1-70 * * * *"), "spec.purge.schedule"),
    Case("empty schedule", S, put(f"{PURGE}/schedule", ""), "spec.purge.schedule"),
    Case("time zone in schedule", S, put(f"{PURGE}/schedule", "TZ=UTC 0 3 * * *"), "spec.purge.schedule"),
    # Pod selectors.
    Case("empty pod selector", S, put(SELECTOR, {}), "spec.workload.podSelector"),
    Case("empty matchLabels", S, put(SELECTOR, {"matchLabels": {}}), "spec.workload.podSelector"),
    Case("empty matchExpressions", S, put(SELECTOR, {"matchExpressions": []}), "spec.workload.podSelector"),
    Case("no pod selector", S, drop(SELECTOR), "spec.workload.podSelector"),
    Case("In without values", S, put(SELECTOR, {"matchExpressions": [{"key": "app", "operator": "In"}]}), "spec.workload.podSelector.matchExpressions[0]"),
    Case("Exists with values", S, put(SELECTOR, {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}), "spec.workload.podSelector.matchExpressions[0]"),
    Case("unknown selector operator", S, put(SELECTOR, {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["x"]}]}), "spec.workload.podSelector.matchExpressions[0].operator"),
    # Ports.
    Case("port 0", S, put("/spec/workload/ports/0/port", 0), "spec.workload.ports[0].port"),
    Case("port 65536", S, put("/spec/workload/ports/0/port", 65536), "spec.workload.ports[0].port"),
    Case("protocol HTTP", S, put("/spec/workload/ports/0/protocol", "HTTP"), "spec.workload.ports[0].protocol"),
    Case("lowercase protocol", S, put("/spec/workload/ports/0/protocol", "tcp"), "spec.workload.ports[0].protocol"),
    Case("no ports", S, put("/spec/workload/ports", []), "spec.workload.ports"),
    Case("database port 0", S, put(f"{DB}/port", 0), "spec.database.port"),
    Case("database port 70000", S, put(f"{DB}/port", 70000), "spec.database.port"),
    # Readers.
    Case("wildcard reader", S, put(READER, {"kind": "Group", "name": "*"}), "spec.access.readers[0].name"),
    Case("wildcard in a name", S, put(READER, {"kind": "User", "name": "admin-*"}), "spec.access.readers[0].name"),
    Case("system:authenticated", S, put(READER, {"kind": "Group", "name": "system:authenticated"}), "spec.access.readers[0].name"),
    Case("system:unauthenticated", S, put(READER, {"kind": "Group", "name": "system:unauthenticated"}), "spec.access.readers[0].name"),
    Case("system:serviceaccounts", S, put(READER, {"kind": "Group", "name": "system:serviceaccounts"}), "spec.access.readers[0].name"),
    Case("system:serviceaccounts:<ns>", S, put(READER, {"kind": "Group", "name": "system:serviceaccounts:crm"}), "spec.access.readers[0].name"),
    Case("system:masters", S, put(READER, {"kind": "Group", "name": "system:masters"}), "spec.access.readers[0].name"),
    Case("system:anonymous", S, put(READER, {"kind": "User", "name": "system:anonymous"}), "spec.access.readers[0].name"),
    Case("reader kind Role", S, put(READER, {"kind": "Role", "name": "reader"}), "spec.access.readers[0].kind"),
    Case("service account name not DNS", S, put(READER, {"kind": "ServiceAccount", "name": "Shop_API"}), "spec.access.readers[0].name"),
    Case("namespace on a group", S, put(READER, {"kind": "Group", "name": "ops", "namespace": "crm"}), "spec.access.readers[0].namespace"),
    Case("empty reader name", S, put(READER, {"kind": "User", "name": ""}), "spec.access.readers[0].name"),
    # SQL identifiers.
    Case("injected table", S, put(f"{RECORD}/table", "users; DROP TABLE users"), "spec.records[0].table"),
    Case("injected column", S, put(f"{RECORD}/timestampColumn", "created_at) OR (1=1"), "spec.records[0].timestampColumn"),
    Case("quoted table", S, put(f"{RECORD}/table", '"users"'), "spec.records[0].table"),
    Case("backquoted column", S, put(f"{RECORD}/timestampColumn", "`created_at`"), "spec.records[0].timestampColumn"),
    Case("single-quoted column", S, put(f"{RECORD}/timestampColumn", "'created_at'"), "spec.records[0].timestampColumn"),
    Case("two dots", S, put(f"{RECORD}/table", "db.public.users"), "spec.records[0].table"),
    Case("table longer than 63", S, put(f"{RECORD}/table", LONG), "spec.records[0].table"),
    Case("schema longer than 63", S, put(f"{RECORD}/table", f"{LONG}.users"), "spec.records[0].table"),
    Case("column longer than 63", S, put(f"{RECORD}/timestampColumn", LONG), "spec.records[0].timestampColumn"),
    Case("column starts with a digit", S, put(f"{RECORD}/timestampColumn", "1st"), "spec.records[0].timestampColumn"),
    Case("empty keyColumns", S, put(f"{RECORD}/keyColumns", []), "spec.records[0].keyColumns"),
    Case("injected key column", S, put(f"{RECORD}/keyColumns", ["id; --"]), "spec.records[0].keyColumns[0]"),
    Case("repeated key column", S, put(f"{RECORD}/keyColumns", ["id", "id"]), "spec.records[0].keyColumns[1]"),
    Case("repeated table", S, put("/spec/records/-", {"table": "public.orders", "timestampColumn": "t", "keyColumns": ["id"]}), "spec.records[1]"),
    Case("no records", S, put("/spec/records", []), "spec.records"),
    # records[].timeZone: an IANA name, never an offset or a path.
    Case("time zone as an offset", S, put(f"{RECORD}/timeZone", "+09:00"), "spec.records[0].timeZone"),
    Case("time zone as a path", S, put(f"{RECORD}/timeZone", "../../etc/passwd"), "spec.records[0].timeZone"),
    Case("time zone absolute path", S, put(f"{RECORD}/timeZone", "/usr/share/zoneinfo/Asia/Seoul"), "spec.records[0].timeZone"),
    Case("time zone with a space", S, put(f"{RECORD}/timeZone", "Asia/ Seoul"), "spec.records[0].timeZone"),
    Case("empty time zone", S, put(f"{RECORD}/timeZone", ""), "spec.records[0].timeZone"),
    # records[].subjectColumns: how a data-subject request finds a person's rows.
    Case("subject kind with capital", S, put(f"{RECORD}/subjectColumns", [{"kind": "Email", "column": "email"}]), "spec.records[0].subjectColumns[0].kind"),
    Case("subject kind with underscore", S, put(f"{RECORD}/subjectColumns", [{"kind": "e_mail", "column": "email"}]), "spec.records[0].subjectColumns[0].kind"),
    Case("injected subject column", S, put(f"{RECORD}/subjectColumns", [{"kind": "email", "column": "email OR 1=1"}]), "spec.records[0].subjectColumns[0].column"),
    Case("subject column expression", S, put(f"{RECORD}/subjectColumns", [{"kind": "email", "column": "lower(email)"}]), "spec.records[0].subjectColumns[0].column"),
    Case("subject kind twice in a table", S, put(f"{RECORD}/subjectColumns", [{"kind": "email", "column": "email"}, {"kind": "email", "column": "email2"}]), "spec.records[0].subjectColumns[1]"),
    Case("subject column missing", S, put(f"{RECORD}/subjectColumns", [{"kind": "email"}]), "spec.records[0].subjectColumns[0].column"),
    Case("subject match pattern", S, put(f"{RECORD}/subjectColumns", [{"kind": "email", "column": "email", "like": True}]), "spec.records[0].subjectColumns[0].like"),
    # Purge bounds.
    Case("batchSize 0", S, put(f"{PURGE}/batchSize", 0), "spec.purge.batchSize"),
    Case("batchSize negative", S, put(f"{PURGE}/batchSize", -1), "spec.purge.batchSize"),
    Case("batchSize too large", S, put(f"{PURGE}/batchSize", 100001), "spec.purge.batchSize"),
    Case("batchSize as text", S, put(f"{PURGE}/batchSize", "1000"), "spec.purge.batchSize"),
    Case("maxRowsPerRun 0", S, put(f"{PURGE}/maxRowsPerRun", 0), "spec.purge.maxRowsPerRun"),
    Case("maxRowsPerRun too large", S, put(f"{PURGE}/maxRowsPerRun", 1000000001), "spec.purge.maxRowsPerRun"),
    Case("maxRowsPerRun below batchSize", S, put(f"{PURGE}/maxRowsPerRun", 500), "spec.purge.maxRowsPerRun"),
    Case("maxRowsPerRun below default batchSize", S, drop(f"{PURGE}/batchSize") + put(f"{PURGE}/maxRowsPerRun", 999), "spec.purge.maxRowsPerRun"),
    Case("dryRun as text", S, put(f"{PURGE}/dryRun", "false"), "spec.purge.dryRun"),
    # Database.
    Case("host is a URL", S, put(f"{DB}/host", "postgres://shop-postgres:5432/shop"), "spec.database.host"),
    Case("host with port", S, put(f"{DB}/host", "shop-postgres:5432"), "spec.database.host"),
    Case("host with options", S, put(f"{DB}/host", "shop-postgres?sslmode=disable"), "spec.database.host"),
    Case("host with libpq options", S, put(f"{DB}/host", "shop-postgres sslmode=disable"), "spec.database.host"),
    Case("host with semicolon", S, put(f"{DB}/host", "shop-postgres;ssl=false"), "spec.database.host"),
    Case("empty host", S, put(f"{DB}/host", ""), "spec.database.host"),
    Case("archive host is a URL", S, put(f"{ARCHIVE_DB}/host", "mysql://archive"), "spec.archive.database.host"),
    Case("unknown engine", S, put(f"{DB}/engine", "oracle"), "spec.database.engine"),
    Case("unknown tls mode", S, put(f"{DB}/tls", "prefer"), "spec.database.tls"),
    Case("database name with quote", S, put(f"{DB}/name", "shop'; --"), "spec.database.name"),
    Case("credentials not a Secret name", S, put(f"{DB}/credentialsSecret", "Shop Purger"), "spec.database.credentialsSecret"),
    Case("no database", S, drop(DB), "spec.database"),
    Case("no host", S, drop(f"{DB}/host"), "spec.database.host"),
    Case("archive is the live database", S, put(ARCHIVE_DB, {"engine": "postgresql", "host": "shop-postgres.default.svc", "port": 5432, "name": "shop", "credentialsSecret": "archive-writer"}), "spec.archive.database"),
    Case("archive is the live database by default port", S, put(ARCHIVE_DB, {"engine": "postgresql", "host": "shop-postgres.default.svc", "name": "shop", "credentialsSecret": "archive-writer"}), "spec.archive.database"),
    Case("engine changed", S, put(f"{DB}/engine", "mysql"), "spec.database.engine", update=True),
    Case("archive engine changed", S, put(f"{ARCHIVE_DB}/engine", "mysql"), "spec.archive.database.engine", update=True),
    # Adopting an existing key ring: a boolean, spelt exactly (whether the requester may is the chart's admission policy).
    Case("adoptExistingKeyRing as text", S, put("/spec/encryption/adoptExistingKeyRing", "true"), "spec.encryption.adoptExistingKeyRing"),
    Case("adoptExistingKeyRing as a number", S, put("/spec/encryption/adoptExistingKeyRing", 1), "spec.encryption.adoptExistingKeyRing"),
    Case("adoptExistingKeyring typo", S, put("/spec/encryption/adoptExistingKeyring", True), "spec.encryption.adoptExistingKeyring"),
    # Other enums and references.
    Case("deletionPolicy Orphan", S, put("/spec/deletionPolicy", "Orphan"), "spec.deletionPolicy"),
    Case("deletionPolicy lowercase", S, put("/spec/deletionPolicy", "retain"), "spec.deletionPolicy"),
    Case("category not a DNS label", S, put("/spec/category", "Contract_Records"), "spec.category"),
    Case("no policy", S, drop("/spec/policy"), "spec.policy"),
    Case("policy not a name", S, put("/spec/policy", "Clunix Policy"), "spec.policy"),
    # Network peers.
    Case("empty peer", S, put("/spec/network/allowFrom", [{}]), "spec.network.allowFrom[0]"),
    Case("ipBlock with selector", S, put("/spec/network/allowFrom/0/ipBlock", {"cidr": "10.0.0.0/8"}), "spec.network.allowFrom[0]"),
    Case("cidr without prefix", S, put("/spec/network/allowFrom", [{"ipBlock": {"cidr": "10.0.0.0"}}]), "spec.network.allowFrom[0].ipBlock.cidr"),
    Case("cidr prefix 33", S, put("/spec/network/allowFrom", [{"ipBlock": {"cidr": "10.0.0.0/33"}}]), "spec.network.allowFrom[0].ipBlock.cidr"),
    # Unknown fields: a typo must never silently turn a setting off.
    Case("dryrun typo", S, put(f"{PURGE}/dryrun", True), "spec.purge.dryrun"),
    Case("retention typo", S, put("/spec/retenton", "30d"), "spec.retenton"),
    Case("connection option as a field", S, put(f"{DB}/sslmode", "disable"), "spec.database.sslmode"),
    Case("where clause", S, put(f"{RECORD}/where", "1=1"), "spec.records[0].where"),
    Case("policy field typo", P, put(f"{CAT0}/retension", {"period": "1y"}), "spec.categories[0].retension"),
    # PrivacyPolicy.
    Case("no categories", P, put("/spec/categories", []), "spec.categories"),
    Case("categories missing", P, drop("/spec/categories"), "spec.categories"),
    Case("duplicate category", P, put(f"{CAT1}/name", "newsletter"), "spec.categories[1]"),
    Case("category name with capital", P, put(f"{CAT0}/name", "Newsletter"), "spec.categories[0].name"),
    Case("category name with underscore", P, put(f"{CAT0}/name", "news_letter"), "spec.categories[0].name"),
    Case("category name longer than 63", P, put(f"{CAT0}/name", LONG), "spec.categories[0].name"),
    Case("category name ends with dash", P, put(f"{CAT0}/name", "newsletter-"), "spec.categories[0].name"),
    Case("statutory shorter, same unit", P, put(f"{CAT1}/retention/period", "6y"), "spec.categories[1].statutory.period"),
    Case("statutory months shorter than years", P, put(f"{CAT1}/retention/period", "1y") + put(f"{CAT1}/statutory/period", "6mo"), "spec.categories[1].statutory.period"),
    Case("statutory year shorter than days", P, put(f"{CAT1}/retention/period", "400d") + put(f"{CAT1}/statutory/period", "1y"), "spec.categories[1].statutory.period"),
    Case("statutory weeks shorter than months", P, put(f"{CAT1}/retention/period", "3mo") + put(f"{CAT1}/statutory/period", "11w"), "spec.categories[1].statutory.period"),
    Case("statutory without statute", P, drop(f"{CAT1}/statutory/statute"), "spec.categories[1].statutory.statute"),
    Case("statutory with empty statute", P, put(f"{CAT1}/statutory/statute", ""), "spec.categories[1].statutory.statute"),
    Case("no purposes", P, put(f"{CAT0}/purposes", []), "spec.categories[0].purposes"),
    Case("repeated purpose", P, put(f"{CAT0}/purposes", ["marketing", "marketing"]), "spec.categories[0].purposes[1]"),
    Case("trigger with capital", P, put(f"{CAT0}/retention/trigger", "Unsubscribed"), "spec.categories[0].retention.trigger"),
    Case("no trigger", P, drop(f"{CAT0}/retention/trigger"), "spec.categories[0].retention.trigger"),
    Case("February 30", P, put("/spec/effectiveDate", "2021-02-30"), "spec.effectiveDate"),
    Case("April 31", P, put("/spec/effectiveDate", "2021-04-31"), "spec.effectiveDate"),
    Case("February 29, common year", P, put("/spec/effectiveDate", "2023-02-29"), "spec.effectiveDate"),
    Case("February 29, 2100", P, put("/spec/effectiveDate", "2100-02-29"), "spec.effectiveDate"),
    Case("month 13 date", P, put("/spec/effectiveDate", "2021-13-01"), "spec.effectiveDate"),
    Case("slashed date", P, put("/spec/effectiveDate", "2021/04/26"), "spec.effectiveDate"),
    Case("two-digit year", P, put("/spec/effectiveDate", "21-04-26"), "spec.effectiveDate"),
    Case("announced February 30", P, put("/spec/announced", "2026-02-30"), "spec.announced"),
    Case("announced with slashes", P, put("/spec/announced", "2026/12/01"), "spec.announced"),
    Case("emergency without a reason", P, put("/spec/emergency", {}), "spec.emergency"),
    Case("emergency reason of one word", P, put("/spec/emergency", {"reason": "urgent"}), "spec.emergency.reason"),
    # Metadata, as the API server validates every object's.
    Case("label value of 64 characters", S, put("/metadata/labels", {"app": "v" * 64}), "metadata.labels"),
    Case("label value with a space", S, put("/metadata/labels", {"team": "a b"}), "metadata.labels"),
    Case("annotation key of three parts", S, put("/metadata/annotations", {"a/b/c": "x"}), "metadata.annotations"),
    Case("annotations over 256 KiB", P, put("/metadata/annotations", {"note": "z" * 262_145}), "metadata.annotations"),
)

ACCEPTED: Sequence[Accepted] = (
    Accepted("the base policy", P),
    Accepted("the base store", S),
    Accepted("leap day", P, put("/spec/effectiveDate", "2024-02-29")),
    Accepted("announced revision with an emergency", P, put("/spec/announced", "2026-12-01") + put("/spec/emergency", {"reason": "Court order 2026-77 requires it at once"})),
    Accepted("leap day, 2000", P, put("/spec/effectiveDate", "2000-02-29")),
    Accepted("statutory 12mo after retention 1y", P, put(f"{CAT1}/retention/period", "1y") + put(f"{CAT1}/statutory/period", "12mo")),
    Accepted("statutory equal to retention", P, put(f"{CAT1}/retention/period", "5y")),
    Accepted("largest durations", P, put(f"{CAT1}/retention/period", "100y") + put(f"{CAT1}/statutory/period", "1200mo")),
    Accepted("largest day count", S, put("/spec/retention", "36500d")),
    Accepted("no retention override", S, drop("/spec/retention")),
    Accepted("time zone Asia/Seoul", S, put(f"{RECORD}/timeZone", "Asia/Seoul")),
    Accepted("time zone with three parts", S, put(f"{RECORD}/timeZone", "America/Argentina/Buenos_Aires")),
    Accepted("time zone Etc/GMT+9", S, put(f"{RECORD}/timeZone", "Etc/GMT+9")),
    Accepted("rich cron", S, put(f"{PURGE}/schedule", "*/15 0-6/2 1,15 JAN-MAR mon-fri")),
    Accepted("cron with sunday as 7", S, put(f"{PURGE}/schedule", "0 3 * * 7")),
    Accepted("IPv4 host", S, put(f"{DB}/host", "10.0.0.5")),
    Accepted("IPv6 host", S, put(f"{DB}/host", "fd00::10")),
    Accepted("same server, other database", S, put(ARCHIVE_DB, {"engine": "postgresql", "host": "shop-postgres.default.svc", "name": "archive", "credentialsSecret": "archive-writer"})),
    Accepted("selector by expression only", S, put(SELECTOR, {"matchExpressions": [{"key": "app", "operator": "In", "values": ["shop-postgres"]}]})),
    Accepted("adopting an existing key ring", S, put("/spec/encryption/adoptExistingKeyRing", True)),
    Accepted("adoption alone, without keyRotation", S, put("/spec/encryption", {"adoptExistingKeyRing": False})),
    Accepted("cross-namespace service account", S, put(READER, {"kind": "ServiceAccount", "name": "shop-api", "namespace": "shop"})),
    Accepted("subject columns of several kinds", S, put(f"{RECORD}/subjectColumns", [{"kind": "email", "column": "email"}, {"kind": "customer-id", "column": "customer_no"}, {"kind": "phone", "column": "email"}])),
    Accepted("minimal store", S, drop("/spec/retention") + drop("/spec/archive") + drop("/spec/encryption") + drop("/spec/access") + drop("/spec/network") + drop(PURGE) + drop("/spec/deletionPolicy") + drop(f"{DB}/port") + drop(f"{DB}/tls")),
    Accepted("minimal policy", P, drop("/spec/effectiveDate") + drop("/spec/defaults")),
)
# fmt: on
