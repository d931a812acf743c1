"""Helpers of the data-subject request tests: a store of three tables, adversarial neighbours."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.credentials import Credentials
from dataward.subjects.engine import Outcome, RequestOptions, run_request
from dataward.subjects.identifiers import parse_identifiers
from tests.databases import DatabaseServer
from tests.purge.support import POLICY, connector, store_doc, unique

# The subject: an email full of characters SQL and LIKE treat specially, a phone, a number.
EMAIL = "a_b%c'd\"e\\f@example.com"
PHONE = "+82-10-5555-0101"
CUSTOMER = "42"
# Other people whose values resemble the subject's: none of these rows may ever match.
NEIGHBOURS = [
    "xa_b%c'd\"e\\f@example.com",  # prefix
    "a_b%c'd\"e\\f@example.comm",  # suffix
    "A_B%C'D\"E\\F@EXAMPLE.COM",  # case
    "a_b%c'd\"e\\f@example.com ",  # a trailing space (PAD SPACE collations)
    "aZbQQc'd\"e\\f@example.com",  # what `_` and `%` would match as LIKE wildcards
    "a_b%c'd\"e\\\\f@example.com",  # a doubled backslash
    "a_b%c'd\"e",  # a prefix cut at the quote
]
OTHER_NUMBERS = [420, 4, 142]
TS = {"postgresql": "timestamptz", "mysql": "DATETIME(6)"}


def create_people(server: DatabaseServer, name: str) -> None:
    """`(id, ts, email, phone, cust_no, payload)`: text, text, a number; key id."""
    text = "varchar(200)" if server.engine == "postgresql" else "VARCHAR(200)"
    ddl = (
        f"CREATE TABLE {name} (id bigint PRIMARY KEY, ts {TS[server.engine]}, email {text}, "
        f"phone {text}, cust_no bigint, payload {text})"
    )
    if server.engine == "postgresql":
        server.execute(
            ddl, f"CREATE INDEX ON {name} (email)", f"ALTER TABLE {name} OWNER TO purger"
        )
    else:
        server.execute(ddl + " ENGINE=InnoDB", f"CREATE INDEX {name}_email ON {name} (email)")


def create_table(server: DatabaseServer, name: str, columns: str) -> None:
    """`CREATE TABLE name (columns)` as the superuser: owned by the purge login on
    PostgreSQL, InnoDB on MySQL."""
    ddl = f"CREATE TABLE {name} ({columns})"
    if server.engine == "postgresql":
        server.execute(ddl, f"ALTER TABLE {name} OWNER TO purger")
    else:
        server.execute(ddl + " ENGINE=InnoDB")


def create_notes(server: DatabaseServer, name: str) -> None:
    """`(note_id, written, author_email, body)`: found by email only."""
    create_table(server, name, f"note_id bigint PRIMARY KEY, written {TS[server.engine]}, "
                               "author_email varchar(200), body varchar(200)")  # fmt: skip


def _naive(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC).replace(tzinfo=None)


def insert(server: DatabaseServer, statement: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert rows as the superuser (instants written as UTC wall-clock on MySQL)."""
    values = [
        tuple(_naive(v) if isinstance(v, datetime) and server.engine == "mysql" else v for v in r)
        for r in rows
    ]
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(statement, values)
        conn.commit()
    finally:
        conn.close()


def seed_people(server: DatabaseServer, name: str, now: datetime) -> dict[str, set[int]]:
    """The subject's rows (by how they match) and the neighbours' rows, ids by group."""
    rows: list[tuple[Any, ...]] = [
        (1, now - timedelta(days=400), EMAIL, "+82-10-0000-0001", 7, "subject-email-1"),
        (2, now - timedelta(days=10), EMAIL, None, None, "subject-email-2"),
        (3, now - timedelta(days=6 * 366), "ann@other.example", PHONE, None, "subject-phone"),
        (4, None, "ann2@other.example", None, int(CUSTOMER), "subject-customer"),
    ]
    neighbours = []
    for i, email in enumerate(NEIGHBOURS):
        neighbours.append((100 + i, now - timedelta(days=20), email, None, None, f"other-{i}"))
    for i, number in enumerate(OTHER_NUMBERS):
        neighbours.append(
            (200 + i, now - timedelta(days=20), "n@x", "+82-10-5555-010", number, "o")
        )
    insert(
        server,
        f"INSERT INTO {name} (id, ts, email, phone, cust_no, payload) VALUES (%s,%s,%s,%s,%s,%s)",
        rows + neighbours,
    )
    return {"subject": {1, 2, 3, 4}, "others": {r[0] for r in neighbours}}


def seed_notes(server: DatabaseServer, name: str, now: datetime) -> dict[str, set[int]]:
    """Two notes by the subject, two by neighbours."""
    insert(
        server,
        f"INSERT INTO {name} (note_id, written, author_email, body) VALUES (%s,%s,%s,%s)",
        [
            (1, now - timedelta(days=3), EMAIL, "subject-note-1"),
            (2, now - timedelta(days=500), EMAIL, "subject-note-2"),
            (3, now - timedelta(days=3), NEIGHBOURS[2], "other-note"),
            (4, now - timedelta(days=3), NEIGHBOURS[4], "other-note"),
        ],
    )
    return {"subject": {1, 2}, "others": {3, 4}}


def ids(server: DatabaseServer, name: str, key: str = "id") -> set[int]:
    """The keys of a table's rows."""
    return {int(i) for (i,) in server.query(f"SELECT {key} FROM {name}")}


def subject_store(
    live: DatabaseServer,
    archive: DatabaseServer | None = None,
    *,
    category: str = "support",
    people: str | None = None,
    notes: str | None = None,
    audit: str | None = None,
    **purge_spec: Any,
) -> tuple[dict[str, Any], str, str, str]:
    """A store with people (email, phone, customer-id), notes (email) and audit (no columns)."""
    people = people or unique("people")
    notes = notes or unique("notes")
    audit = audit or unique("audit")
    doc = store_doc(live, people, category=category, archive=archive, **purge_spec)
    doc["spec"]["records"] = [
        {
            "table": people,
            "timestampColumn": "ts",
            "keyColumns": ["id"],
            "subjectColumns": [
                {"kind": "email", "column": "email"},
                {"kind": "phone", "column": "phone"},
                {"kind": "customer-id", "column": "cust_no"},
            ],
        },
        {
            "table": notes,
            "timestampColumn": "written",
            "keyColumns": ["note_id"],
            "subjectColumns": [{"kind": "email", "column": "author_email"}],
        },
        {"table": audit, "timestampColumn": "ts", "keyColumns": ["id"]},
    ]
    return doc, people, notes, audit


class Seeded(NamedTuple):
    """A subject store whose tables exist, with its live rows: the store, its table names,
    the instant the rows were seeded against, and the ids of each group (subject, others)."""

    doc: dict[str, Any]
    people: str
    notes: str
    audit: str
    now: datetime
    groups: dict[str, set[int]]
    note_groups: dict[str, set[int]]


def seeded_store(
    live: DatabaseServer, archive: DatabaseServer | None = None, **store: Any
) -> Seeded:
    """`subject_store`, its people and notes tables made on live (and archive, empty there),
    and the live ones seeded as of now."""
    doc, people, notes, audit = subject_store(live, archive, **store)
    for server in (live,) if archive is None else (live, archive):
        create_people(server, people)
        create_notes(server, notes)
    now = datetime.now(UTC)
    return Seeded(doc, people, notes, audit, now, seed_people(live, people, now),
                  seed_notes(live, notes, now))  # fmt: skip


SUBJECT = {"email": EMAIL, "phone": PHONE, "customer-id": CUSTOMER}


def run(
    doc: dict[str, Any],
    live: DatabaseServer,
    archive: DatabaseServer | None,
    request: str,
    identifiers: dict[str, str] | None = None,
    *,
    live_login: Credentials | None = None,
    archive_login: Credentials | None = None,
    job_clock: Callable[[], datetime] | None = None,
    **options: Any,
) -> Outcome:
    """The engine in-process against the test servers."""
    return run_request(
        parse_store(doc),
        parse_policy(POLICY),
        parse_identifiers(identifiers or SUBJECT),
        request,  # type: ignore[arg-type]
        connect_live=connector(live, "live", credentials=live_login),
        connect_archive=(
            connector(archive, "archive", credentials=archive_login)
            if archive is not None
            else None
        ),
        job_clock=job_clock or (lambda: datetime.now(UTC)),
        options=RequestOptions(**options),
    )


def leaks(text: str, values: Iterable[str] = SUBJECT.values()) -> list[str]:
    """Identifier values (or their JSON-escaped forms) found in `text`; CUSTOMER is too short
    to search for and is checked by the result's shape instead."""
    found = []
    for value in values:
        if value == CUSTOMER:
            continue
        for form in (value, json.dumps(value)[1:-1], value.lower()):
            if form in text or form in text.lower():
                found.append(form)
    return found
