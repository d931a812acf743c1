"""How an identifier matches rows, attacked on real PostgreSQL 15 and MariaDB 10.11.

The rule (README, "Answering an access or erasure request"): a row is the subject's when a
subject column holds exactly the identifier, code point for code point (or its canonically
equivalent NFC/NFD spelling: tests/subjects/test_subjects_typed_db.py), whatever the
column's collation (case-, accent- or width-blind, PAD SPACE) or character set says.
A number column matches only the identifier written as that number in plain decimal. Each
case is tried as an access request (another person's row in the export is a breach) and as
an erasure (another person's row deleted); and each must keep the column's index usable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.subjects.engine import locate
from dataward.subjects.identifiers import parse_identifiers
from dataward.subjects.plan import plan_request
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import POLICY, connector
from tests.subjects.support import TS, create_table, ids, insert, run, subject_store

pytestmark = pytest.mark.db

KIM = "kím@example.com"  # the subject (NFC)
# Other people, each equal to KIM under some collation or padding.
BLIND = [
    "KÍM@example.com",  # case
    "kim@example.com",  # accent
    "Kim@Example.com",  # case and accent
    "kím@example.com ",  # a trailing space (PAD SPACE)
]
# Fullwidth letters (width-blind ICU levels; NFKC, compatibility, not canonical equivalence).
# KIM in NFD is the same text as KIM and found with her (test_subjects_typed_db.py).
WIDE = ["ｋíｍ@example.com"]
# Spellings of 42 (or of nothing) that MariaDB's or Python's number conversion would accept:
# no integer column reads them (the request is refused when no other column of the kind can).
NOT_PLAIN_42 = [
    *("042", "42 ", " 42", "42\n", "+42", "42.0", "4.2e1", "0x2A", "42abc", "4_2", "-0"),
    *("0042", "\u0664\u0662"),
]
# Integers written plainly that no integer column holds (wider than BIGINT): they match nothing.
TOO_WIDE = ["99999999999999999999999", "-99999999999999999999999", str(2**64)]


def _seed(
    server: DatabaseServer,
    email_type: str,
    others: list[str],
    notes_type: str = "varchar(200)",
    archive: DatabaseServer | None = None,
    ts: datetime | None = None,
) -> tuple[Any, str, str]:
    """A store whose people.email column has `email_type`: KIM is id 1, the others 100...
    (MariaDB's tables are latin1 unless told: the test servers run without a config file.)
    With an archive, the category is kept under a statute and the tables exist there too."""
    category = "support" if archive is None else "contracts"
    doc, people, notes, _audit = subject_store(server, archive, category=category)
    for db in (server,) if archive is None else (server, archive):
        create_table(
            db,
            people,
            f"id bigint PRIMARY KEY, ts {TS[db.engine]}, email {email_type}, "
            "phone varchar(200), cust_no bigint, payload varchar(200)",
        )
        prefix = "(50)" if db.engine == "mysql" else ""  # MariaDB indexes TEXT by a prefix
        db.execute(f"CREATE INDEX {people}_email ON {people} (email{prefix})")
        create_table(
            db,
            notes,
            f"note_id bigint PRIMARY KEY, written {TS[db.engine]}, author_email {notes_type}, "
            "body varchar(200)",
        )
    rows = [(1, ts, KIM, "subject")] + [
        (100 + i, ts, value, f"other-{i}") for i, value in enumerate(others)
    ]
    insert(server, f"INSERT INTO {people} (id, ts, email, payload) VALUES (%s,%s,%s,%s)", rows)
    return doc, people, notes


def _exported(document: bytes | None) -> set[int]:
    assert document is not None
    return {int(r["values"]["id"]) for r in json.loads(document)["rows"] if "id" in r["values"]}


def _answers_row_1_alone(doc: dict[str, Any], server: DatabaseServer, email: str) -> None:
    """An access request for `email` exports row 1 alone, and its erasure deletes one row."""
    access = run(doc, server, None, "access", {"email": email})
    assert access.result.outcome == "Succeeded", access.result.message
    assert _exported(access.document) == {1}

    erasure = run(doc, server, None, "erasure", {"email": email})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    assert erasure.result.total("rows_deleted") == 1


def _only_kim(server: DatabaseServer, email_type: str, others: list[str]) -> None:
    doc, people, _notes = _seed(server, email_type, others)
    everyone = {1} | {100 + i for i in range(len(others))}
    _answers_row_1_alone(doc, server, KIM)
    assert ids(server, people) == everyone - {1}


@pytest.mark.parametrize(
    "email_type",
    [
        "varchar(200) COLLATE dw_blind",  # case-, accent- and width-blind ICU collation
        "dw_blind_text",  # a domain over text with that collation
        "citext",
    ],
)
def test_postgresql_blind_collations_never_match_another_person(
    servers: DatabaseServers, email_type: str
) -> None:
    live = servers.pg_live
    _blind_types(live)
    _only_kim(live, email_type, BLIND + WIDE)


def _blind_types(server: DatabaseServer) -> None:
    """PostgreSQL: the case-, accent- and width-blind collation, a domain with it, citext."""
    server.execute(
        "CREATE COLLATION IF NOT EXISTS dw_blind "
        "(provider = icu, locale = 'und-u-ks-level1', deterministic = false)",
        "DO $$ BEGIN CREATE DOMAIN dw_blind_text AS text COLLATE dw_blind; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        "CREATE EXTENSION IF NOT EXISTS citext",
    )


@pytest.mark.parametrize(
    ("engine", "email_type"),
    [("postgresql", "dw_blind_text"), ("mysql", "varchar(200) COLLATE utf8mb4_unicode_ci")],
)
def test_a_statutory_erasure_archives_and_deletes_only_the_subject(
    servers: DatabaseServers, engine: str, email_type: str
) -> None:
    """Under a statute the erasure takes its rows another way (PostgreSQL: DELETE RETURNING in
    a CTE; MariaDB: SELECT ... FOR UPDATE, then by key) and copies them to the archive: the
    same rule, so no neighbour is archived or deleted, and the export then finds her there."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    if engine == "postgresql":
        _blind_types(live)
        _blind_types(archive)
    recent = datetime.now(UTC) - timedelta(days=10)
    doc, people, _notes = _seed(live, email_type, BLIND, archive=archive, ts=recent)

    result = run(doc, live, archive, "erasure", {"email": KIM}).result
    assert result.outcome == "Succeeded", result.message
    assert (result.total("rows_deleted"), result.total("rows_archived")) == (1, 1)
    assert ids(live, people) == {100 + i for i in range(len(BLIND))}
    assert ids(archive, people) == {1}
    access = run(doc, live, archive, "access", {"email": KIM})
    assert _exported(access.document) == {1}


@pytest.mark.parametrize(
    ("email_type", "others"),
    [
        ("varchar(200) COLLATE utf8mb4_unicode_ci", BLIND + WIDE),
        ("text COLLATE utf8mb4_general_ci", BLIND + WIDE),
        ("varchar(200) CHARACTER SET utf8mb3", BLIND + WIDE),
        ("varchar(200) CHARACTER SET latin1", BLIND),  # latin1_swedish_ci (cp1252 really)
        ("varchar(200) CHARACTER SET utf16", BLIND + WIDE),
        # CHAR drops trailing spaces when it stores a value: `kím@example.com ` is stored as
        # KIM itself, the same value (README), so that neighbour is left out here.
        ("char(60) COLLATE utf8mb4_unicode_ci", BLIND[:3] + WIDE),
    ],
)
def test_mariadb_blind_collations_and_charsets_match_exactly_the_subject(
    servers: DatabaseServers, email_type: str, others: list[str]
) -> None:
    """Exactly KIM: not the people a `_ci`/PAD SPACE collation confuses with her, and her own
    row whatever the column's character set (its bytes are not the identifier's UTF-8)."""
    _only_kim(servers.mysql_live, email_type, others)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
@pytest.mark.parametrize("identifier", NOT_PLAIN_42)
def test_a_number_column_matches_only_the_plain_decimal(
    servers: DatabaseServers, engine: str, identifier: str
) -> None:
    """MariaDB compares `cust_no = '42abc'` as the number 42 and PostgreSQL casts: a crafted
    customer-id must match nothing, never customer 42 (nor 0, 100, ...). No column of its kind
    reads it, so it is refused (not `Succeeded, 0 rows`, which reads as "nothing held"); a
    plain integer wider than any column is read, and matches nothing."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    doc, people, notes = _seed(live, "varchar(200)", [])
    insert(
        live,
        f"INSERT INTO {people} (id, ts, email, cust_no, payload) VALUES (%s,%s,%s,%s,%s)",
        [(i, None, "n@x", n, "o") for i, n in ((2, 42), (3, 0), (4, 100), (5, -42))],
    )
    for request in ("access", "erasure"):
        outcome = run(doc, live, None, request, {"customer-id": identifier})
        assert (outcome.result.outcome, outcome.result.reason) == ("Failed", "Configuration"), (
            outcome.result.message)  # fmt: skip
        assert f"customer-id identifier by {people}.cust_no" in outcome.result.message
        assert outcome.document is None
        for wide in TOO_WIDE:
            outcome = run(doc, live, None, request, {"customer-id": wide})
            # notes has an email column only: not searched, so the store has not answered.
            assert (outcome.result.outcome, outcome.result.reason) == (
                "Failed", "NotSearchable"), outcome.result.message  # fmt: skip
            assert outcome.result.not_searchable[0] == notes
            assert outcome.result.total("rows_found") == 0
    assert ids(live, people) == {1, 2, 3, 4, 5}
    assert _exported(run(doc, live, None, "access", {"customer-id": "42"}).document) == {2}
    assert _exported(run(doc, live, None, "access", {"customer-id": "-42"}).document) == {5}


def _plan(server: DatabaseServer, sql: str, params: tuple[Any, ...]) -> str:
    """The plan of `sql` as one string; PostgreSQL told to avoid a sequential scan if it can."""
    session = connector(server, "live")()
    try:
        if server.engine == "postgresql":
            session.execute("SET enable_seqscan = off")
            return "\n".join(str(r[0]) for r in session.query("EXPLAIN " + sql, params))
        rows = session.query("EXPLAIN " + sql, params)
        return "\n".join(f"type={r[3]} key={r[5]}" for r in rows)
    finally:
        session.rollback()
        session.close()


def match_plan(
    live: DatabaseServer, doc: dict[str, Any], people: str, identifiers: dict[str, str]
) -> str:
    """The plan of the statement an access and an erasure both run on `people` (the request's
    match located on the live server, as the engine locates it)."""
    parsed = parse_identifiers(identifiers)
    table = plan_request(parse_store(doc), parse_policy(POLICY), parsed.kinds).tables[0]
    session = connector(live, "live")()
    try:
        located = locate(session, "live", table, parsed)
    finally:
        session.close()
    return _plan(live, f"SELECT id FROM {people} WHERE {located.predicate}", located.params)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
@pytest.mark.parametrize(
    ("kind", "value"), [("email", KIM), ("customer-id", "42"), ("customer-id", "42abc")]
)
def test_the_match_uses_the_columns_index(
    servers: DatabaseServers, engine: str, kind: str, value: str
) -> None:
    """The statement an access and an erasure both run finds the rows through the column's
    index: a scan would read (and on MariaDB, under FOR UPDATE, lock) every row."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    blind = "COLLATE utf8mb4_unicode_ci" if engine == "mysql" else ""
    doc, people, _notes = _seed(live, f"varchar(200) {blind}", [])
    live.execute(f"CREATE INDEX {people}_cust ON {people} (cust_no)")
    insert(
        live,
        f"INSERT INTO {people} (id, ts, email, cust_no, payload) VALUES (%s,%s,%s,%s,%s)",
        [(i, None, f"p{i}@example.com", i, "o") for i in range(10, 400)],
    )
    if engine == "postgresql":
        live.execute(f"ANALYZE {people}")
    plan = match_plan(live, doc, people, {kind: value})
    if value == "42abc":  # cannot be in a number column: nothing is read at all
        assert (
            ("One-Time Filter: false" in plan)
            if engine == "postgresql"
            else (plan == "type=None key=None")
        ), plan
    elif engine == "postgresql":
        assert "Index" in plan and "Seq Scan" not in plan, plan
    else:
        # ref/const: a lookup; `index` (the whole index read) or ALL would be a scan.
        assert all(line.split()[0] in ("type=ref", "type=const") for line in plan.split("\n")), plan


@pytest.mark.parametrize(
    "email_type", ["varchar(200) CHARACTER SET latin1", "varchar(200) CHARACTER SET utf8mb3"]
)
def test_an_identifier_a_narrow_charset_cannot_hold_still_finds_the_other_tables(
    servers: DatabaseServers, email_type: str
) -> None:
    """A Hangul name with an emoji cannot be in a latin1 (or utf8mb3) column: that column
    matches nothing, and the request still answers from the tables that can hold it."""
    live = servers.mysql_live
    doc, people, notes = _seed(live, email_type, BLIND, "varchar(200) CHARACTER SET utf8mb4")
    name = "김민지\U0001f642@example.com"
    insert(
        live,
        f"INSERT INTO {notes} (note_id, written, author_email, body) VALUES (%s,%s,%s,%s)",
        [(1, None, name, "subject-note"), (2, None, "kim@example.com", "other-note")],
    )
    access = run(doc, live, None, "access", {"email": name})
    assert access.result.outcome == "Succeeded", access.result.message
    assert access.document is not None
    rows = json.loads(access.document)["rows"]
    assert [(r["table"], r["values"].get("note_id")) for r in rows] == [(notes, 1)]

    erasure = run(doc, live, None, "erasure", {"email": name})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    assert ids(live, notes, "note_id") == {2}
    assert len(ids(live, people)) == 1 + len(BLIND)


def test_a_citext_whose_schema_the_login_cannot_use_is_still_compared_exactly(
    servers: DatabaseServers,
) -> None:
    """Looking citext up through its index names the type (`%s::"schema"."citext"`), which
    needs USAGE on its schema; the column itself can be read without. A type called citext
    in a schema the purge login may not use is compared exactly, without the cast."""
    live = servers.pg_live
    live.execute(
        "CREATE SCHEMA IF NOT EXISTS dw_private",
        "DO $$ BEGIN CREATE TYPE dw_private.citext AS ENUM ('kim@example.com', 'other'); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    doc, people, _notes = _seed(live, "varchar(200)", [])
    live.execute(
        f"ALTER TABLE {people} ADD COLUMN private_email dw_private.citext",
        f"UPDATE {people} SET private_email = 'kim@example.com' WHERE id = 1",
    )
    insert(
        live,
        f"INSERT INTO {people} (id, ts, email, private_email, payload) VALUES (%s,%s,%s,%s,%s)",
        [(2, None, "n@x", "other", "o")],
    )
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "private_email"}]
    access = run(doc, live, None, "access", {"email": "kim@example.com"})
    assert access.result.outcome == "Succeeded", access.result.message
    assert _exported(access.document) == {1}
