"""Typed subject columns (uuid, numeric/DECIMAL) and Unicode canonical equivalence, attacked
on real PostgreSQL 15 and MariaDB 10.11.

Two failures, both trust defects: MISSING the subject (the type says the request's spelling is
the same value, a text comparison says it is not: the access exports nothing, the erasure
ends Succeeded having deleted nothing) and OVER-matching (a looser comparison finds another
person). A spelling the column's type cannot hold at all is refused, naming no value.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.subjects.support import create_table, ids, insert, run, subject_store
from tests.subjects.test_subjects_matching_db import match_plan

pytestmark = pytest.mark.db

U = "9f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e5f"  # the subject's uuid, as both engines print it
U_OTHERS = [
    "9f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e50",  # one digit apart
    "0a1b2c3d-4e5f-4c1b-8e7f-9f2c0b5e3d4a",
]
U_SPELLINGS = [
    U,
    U.upper(),
    "{" + U + "}",
    "{" + U.upper() + "}",
    U.replace("-", ""),
    U.replace("-", "").upper(),
]
NOT_UUIDS = [
    U[:-1],  # a digit short
    U + "0",
    U.replace("f", "g"),
    "{" + U,  # an unclosed brace
    U + " ",
    "urn:uuid:" + U,
    "not-a-uuid",
]

D = "5.00"  # the subject's number, as a numeric(10,2) column stores it
D_OTHERS = ["50.00", "5.01", "0.50", "500.00", "-5.00", "4.99"]
D_SPELLINGS = ["5", "5.0", "5.00", "5.000000"]
NOT_DECIMALS = ["5,00", "5abc", "5e0", "+5", " 5", "5 ", "05", ".5", "5.", "five", "\u0665"]
NOT_INTEGERS = ["42abc", "042", "+42", " 42", "42 ", "42.0", "4.2e1", "0x2A", "-0", "\u0664\u0662"]
D_NOT_HELD = ["5.001", "5.0001"]  # numbers, but none the column holds: they match nothing


def _typed(
    server: DatabaseServer, column_type: str, stored: Any, others: list[Any]
) -> tuple[dict[str, Any], str]:
    """A store whose people table finds a customer-id in the column `ref`, of `column_type`
    and indexed: row 1 holds `stored`, rows 100... hold the others."""
    doc, people, _notes, _audit = subject_store(server)
    ts = "timestamptz" if server.engine == "postgresql" else "datetime(6)"
    create_table(server, people, f"id bigint PRIMARY KEY, ts {ts} NULL, ref {column_type}")
    server.execute(f"CREATE INDEX {people}_ref ON {people} (ref)")
    insert(
        server,
        f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
        [(1, None, stored)] + [(100 + i, None, v) for i, v in enumerate(others)],
    )
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "customer-id", "column": "ref"}]
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    return doc, people


def _exported(document: bytes | None) -> set[int]:
    assert document is not None
    return {int(r["values"]["id"]) for r in json.loads(document)["rows"]}


def _finds_row_1_alone(
    doc: dict[str, Any], server: DatabaseServer, people: str, spellings: list[str], others: int
) -> None:
    for spelling in spellings:
        access = run(doc, server, None, "access", {"customer-id": spelling})
        assert access.result.outcome == "Succeeded", (spelling, access.result.message)
        assert _exported(access.document) == {1}, spelling
    erasure = run(doc, server, None, "erasure", {"customer-id": spellings[-1]})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    assert erasure.result.total("rows_deleted") == 1
    assert ids(server, people) == {100 + i for i in range(others)}


def _uuid_types(server: DatabaseServer) -> None:
    server.execute(
        "DO $$ BEGIN CREATE DOMAIN dw_uuid AS uuid; "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        "DO $$ BEGIN CREATE DOMAIN dw_money AS numeric(10,2); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )


TYPED = [
    ("postgresql", "uuid", U, U_OTHERS, U_SPELLINGS),
    ("postgresql", "dw_uuid", U, U_OTHERS, U_SPELLINGS),  # a domain over uuid
    ("mysql", "uuid", U, U_OTHERS, U_SPELLINGS),  # MariaDB 10.7+'s UUID type
    ("postgresql", "numeric(10,2)", D, D_OTHERS, D_SPELLINGS),
    ("postgresql", "dw_money", D, D_OTHERS, D_SPELLINGS),  # a domain over numeric(10,2)
    ("postgresql", "numeric", D, D_OTHERS, D_SPELLINGS),  # unconstrained: keeps 5.00's scale
    ("mysql", "decimal(10,2)", D, D_OTHERS, D_SPELLINGS),
    # MariaDB has no UUID_TO_BIN: a uuid kept in BINARY(16) is its 16 bytes in order.
    (
        "mysql",
        "binary(16)",
        bytes.fromhex(U.replace("-", "")),
        [bytes.fromhex(u.replace("-", "")) for u in U_OTHERS],
        U_SPELLINGS,
    ),
]


@pytest.mark.parametrize(
    ("engine", "column_type", "stored", "others", "spellings"),
    TYPED,
    ids=[f"{engine}-{column_type}" for engine, column_type, *_ in TYPED],
)
def test_a_typed_column_finds_the_subject_however_its_type_spells_the_value(
    servers: DatabaseServers,
    engine: str,
    column_type: str,
    stored: Any,
    others: list[Any],
    spellings: list[str],
) -> None:
    """`9F2C...`, `{9f2c...}` and `5.0` are the uuid and the number the row holds: the type's
    own equality finds the subject's row (and never a neighbour's one digit apart)."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    if engine == "postgresql":
        _uuid_types(live)
    doc, people = _typed(live, column_type, stored, others)
    _finds_row_1_alone(doc, live, people, spellings, len(others))


@pytest.mark.parametrize(
    ("engine", "column_type", "stored", "bad"),
    [
        *(("postgresql", "uuid", U, b) for b in NOT_UUIDS),
        *(("mysql", "uuid", U, b) for b in NOT_UUIDS),
        *(("postgresql", "numeric(10,2)", D, b) for b in NOT_DECIMALS),
        *(("mysql", "decimal(10,2)", D, b) for b in NOT_DECIMALS),
        # An integer column reads a plain decimal only (`42`): one rule with the others.
        *(("postgresql", "bigint", 42, b) for b in NOT_INTEGERS),
        *(("mysql", "bigint", 42, b) for b in NOT_INTEGERS),
        ("mysql", "int unsigned", 42, "42abc"),
    ],
)
def test_a_value_the_type_cannot_read_is_refused_without_naming_it(
    servers: DatabaseServers, engine: str, column_type: str, stored: Any, bad: str
) -> None:
    """Not `Succeeded, 0 rows` (which reads as "no data held"): Failed, the kind and column
    named, the value nowhere, nothing read or deleted."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    doc, people = _typed(live, column_type, stored, [])
    for request in ("access", "erasure"):
        outcome = run(doc, live, None, request, {"customer-id": bad})
        result = outcome.result
        assert result.outcome == "Failed", (bad, result.outcome, result.message)
        assert result.reason == "Configuration", result.reason
        assert f"customer-id identifier by {people}.ref" in result.message, result.message
        said = result.message.replace(people, "")  # the table's name holds the pid's digits
        assert len(bad.strip()) < 3 or bad.strip() not in said, result.message
        assert outcome.document is None
    assert ids(live, people) == {1}


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_number_the_decimal_column_cannot_hold_matches_nothing(
    servers: DatabaseServers, engine: str
) -> None:
    """5.001 is not 5.00: no rounding to the column's scale (a cast to numeric(10,2) would)."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    column_type = "numeric(10,2)" if engine == "postgresql" else "decimal(10,2)"
    doc, people = _typed(live, column_type, D, ["5.01"])
    # Nor the widest values for a number wider than the column (stored, it would saturate).
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(101, None, "99999999.99"), (102, None, "-99999999.99")])  # fmt: skip
    for value in [*D_NOT_HELD, "1000000000", "-1000000000", "1" + "0" * 70, "0." + "0" * 40 + "1"]:
        for request in ("access", "erasure"):
            result = run(doc, live, None, request, {"customer-id": value}).result
            assert result.outcome == "Succeeded", (value, result.message)
            assert result.total("rows_found") == 0, value
    assert ids(live, people) == {1, 100, 101, 102}


@pytest.mark.parametrize("column_type", ["decimal(10,2)", "decimal(10,0)"])
def test_zero_written_with_more_decimals_than_the_scale_still_finds_zero(
    servers: DatabaseServers, column_type: str
) -> None:
    """0.0000 is the number 0, which every DECIMAL holds: its zeros are no decimals the
    column lacks (5.0000 was read so, 0.0000 was not: the subject's row was missed and the
    erasure said Succeeded)."""
    live = servers.mysql_live
    doc, people = _typed(live, column_type, "0", ["5", "1"])
    _finds_row_1_alone(doc, live, people, ["0", "0.0", "0.00", "0.0000", "-0.000"], 2)


def test_a_binary16_column_still_finds_sixteen_bytes_given_as_text(
    servers: DatabaseServers,
) -> None:
    """An identifier that is no uuid is compared with a BINARY(16) column's bytes as before
    (its UTF-8), not refused: the uuid reading is only for a uuid's spelling."""
    live = servers.mysql_live
    doc, people = _typed(live, "binary(16)", b"ABCDEFGHIJKLMNOP", [b"abcdefghijklmnop"])
    _finds_row_1_alone(doc, live, people, ["ABCDEFGHIJKLMNOP"], 1)


def test_a_kind_another_column_reads_is_answered_there_not_refused(
    servers: DatabaseServers,
) -> None:
    """customer-id is a uuid column in people and text in notes: `C-42` cannot be in the uuid
    column (it matches nothing there) but is answered from notes, not refused."""
    live = servers.pg_live
    doc, people, notes, _audit = subject_store(live)
    create_table(live, people, "id bigint PRIMARY KEY, ts timestamptz NULL, ref uuid")
    create_table(live, notes, "note_id bigint PRIMARY KEY, written timestamptz NULL, ref text")
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)", [(1, None, U)])
    insert(live, f"INSERT INTO {notes} (note_id, written, ref) VALUES (%s,%s,%s)",
           [(1, None, "C-42"), (2, None, "C-420")])  # fmt: skip
    doc["spec"]["records"] = doc["spec"]["records"][:2]
    for record in doc["spec"]["records"]:
        record["subjectColumns"] = [{"kind": "customer-id", "column": "ref"}]
    for request in ("access", "erasure"):
        result = run(doc, live, None, request, {"customer-id": "C-42"}).result
        assert result.outcome == "Succeeded", result.message
        assert [t.rows_found for t in result.tables] == [0, 1]
    assert ids(live, notes, "note_id") == {2}
    assert ids(live, people) == {1}


# ------------------------------------------------------------- Unicode canonical equivalence

NFC = "kím@example.com"
NFD = unicodedata.normalize("NFD", NFC)
# Other people, never the subject: compatibility forms (fullwidth, a ligature), other letters.
NOT_HER = [
    "ｋíｍ@example.com",  # fullwidth letters: NFKC-equal only
    "kim@example.com",  # no accent
    "kìm@example.com",  # another accent
    "KÍM@example.com",  # case
    "ki\u0301\u0301m@example.com",  # two accents
    "kím@example.com ",  # a trailing space
]


@pytest.mark.parametrize(
    ("engine", "email_type"),
    [
        ("postgresql", "varchar(200)"),
        ("postgresql", "text COLLATE dw_blind"),
        ("postgresql", "citext"),
        ("mysql", "varchar(200) COLLATE utf8mb4_unicode_ci"),
        ("mysql", "varchar(200) CHARACTER SET utf16"),
    ],
)
@pytest.mark.parametrize(("stored", "asked"), [(NFD, NFC), (NFC, NFD)])
def test_a_canonically_equivalent_spelling_finds_the_subject_and_no_one_else(
    servers: DatabaseServers, engine: str, email_type: str, stored: str, asked: str
) -> None:
    """Unicode says NFC `kím` and NFD `ki\u0301m` are the same text: a name stored decomposed
    (macOS file names, some forms) must be found when asked composed, and the reverse. The
    neighbours differing in anything but canonical form are never found."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    if engine == "postgresql":
        live.execute(
            "CREATE COLLATION IF NOT EXISTS dw_blind "
            "(provider = icu, locale = 'und-u-ks-level1', deterministic = false)",
            "CREATE EXTENSION IF NOT EXISTS citext",
        )
    doc, people, _notes, _audit = subject_store(live)
    ts = "timestamptz" if engine == "postgresql" else "datetime(6)"
    create_table(live, people, f"id bigint PRIMARY KEY, ts {ts} NULL, email {email_type}")
    prefix = "(50)" if engine == "mysql" and "text" in email_type else ""
    live.execute(f"CREATE INDEX {people}_email ON {people} (email{prefix})")
    others = [v for v in NOT_HER if v != stored]
    insert(
        live,
        f"INSERT INTO {people} (id, ts, email) VALUES (%s,%s,%s)",
        [(1, None, stored)] + [(100 + i, None, v) for i, v in enumerate(others)],
    )
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    access = run(doc, live, None, "access", {"email": asked})
    assert access.result.outcome == "Succeeded", access.result.message
    assert _exported(access.document) == {1}
    erasure = run(doc, live, None, "erasure", {"email": asked})
    assert erasure.result.total("rows_deleted") == 1, erasure.result.message
    assert ids(live, people) == {100 + i for i in range(len(others))}


# ----------------------------------------------------------------------- the index still serves


@pytest.mark.parametrize(
    ("engine", "column_type", "stored", "value"),
    [
        ("postgresql", "uuid", U, U.upper()),
        ("postgresql", "dw_uuid", U, "{" + U + "}"),
        ("postgresql", "numeric(10,2)", D, "5.0"),
        ("postgresql", "dw_money", D, "5"),
        ("postgresql", "varchar(200)", NFC, NFD),
        ("mysql", "uuid", U, U.upper()),
        ("mysql", "decimal(10,2)", D, "5.0"),
        ("mysql", "binary(16)", bytes.fromhex(U.replace("-", "")), U.upper()),
        ("mysql", "varchar(200) COLLATE utf8mb4_unicode_ci", NFC, NFD),
    ],
)
def test_the_typed_and_normalised_match_uses_the_columns_index(
    servers: DatabaseServers, engine: str, column_type: str, stored: Any, value: str
) -> None:
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    if engine == "postgresql":
        _uuid_types(live)
    doc, people = _typed(live, column_type, stored, [])
    filler = (
        [bytes.fromhex(f"{i:08x}" + "0" * 24) for i in range(10, 400)]
        if column_type == "binary(16)"
        else [f"{i:08x}-0000-4000-8000-000000000000" for i in range(10, 400)]
        if "uuid" in column_type
        else [f"{i}.25" for i in range(10, 400)]
        if "num" in column_type or "dec" in column_type or "money" in column_type
        else [f"p{i}@example.com" for i in range(10, 400)]
    )
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(1000 + i, None, v) for i, v in enumerate(filler)])  # fmt: skip
    if engine == "postgresql":
        live.execute(f"ANALYZE {people}")
    plan = match_plan(live, doc, people, {"customer-id": value})
    if engine == "postgresql":
        assert "Index" in plan and "Seq Scan" not in plan, plan
    else:
        # ref/const/range on the column's index: a lookup of one or two values, not a scan.
        assert all(
            line.split()[0] in ("type=ref", "type=const", "type=range")
            and line.endswith(f"key={people}_ref")
            for line in plan.split("\n")
        ), plan


@pytest.mark.parametrize("column_type", ["decimal(10,2) unsigned", "bigint unsigned"])
def test_a_negative_number_never_finds_zero_in_an_unsigned_column(
    servers: DatabaseServers, column_type: str
) -> None:
    """MariaDB stores a negative constant in an UNSIGNED column as 0: looked up through the
    index, `-5` must not become customer 0."""
    live = servers.mysql_live
    doc, people = _typed(live, column_type, "0", ["5"])
    for value in ("-5", "-0.01", "-1"):
        if "bigint" in column_type and "." in value:
            continue
        for request in ("access", "erasure"):
            result = run(doc, live, None, request, {"customer-id": value}).result
            assert result.outcome == "Succeeded", (value, result.message)
            assert result.total("rows_found") == 0, value
    assert ids(live, people) == {1, 100}


def test_a_latin1_column_finds_the_composed_name_asked_decomposed(
    servers: DatabaseServers,
) -> None:
    """A latin1 column cannot hold a combining accent, only the composed `í`: asked in NFD,
    the NFC spelling still finds her (the NFD one matches nothing there, no error)."""
    live = servers.mysql_live
    doc, _people = _typed(live, "varchar(200) CHARACTER SET latin1", NFC, ["kim@example.com"])
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "ref"}]
    access = run(doc, live, None, "access", {"email": NFD})
    assert access.result.outcome == "Succeeded", access.result.message
    assert _exported(access.document) == {1}


@pytest.mark.parametrize(
    ("engine", "column_type", "stored", "other", "asked"),
    [
        ("postgresql", "uuid", U, U_OTHERS[0], U.upper()),
        ("postgresql", "numeric(10,2)", D, "5.01", "5.0"),
        ("mysql", "uuid", U, U_OTHERS[0], "{" + U.upper() + "}"),
        ("mysql", "decimal(10,2)", D, "5.01", "5"),
        ("mysql", "binary(16)", bytes.fromhex(U.replace("-", "")),
         bytes.fromhex(U_OTHERS[0].replace("-", "")), U.upper()),
    ],
)  # fmt: skip
def test_a_statutory_erasure_archives_and_deletes_the_typed_subject_alone(
    servers: DatabaseServers, engine: str, column_type: str, stored: Any, other: Any, asked: str
) -> None:
    """Under a statute the rows are taken another way (PostgreSQL DELETE ... RETURNING in a
    CTE; MariaDB SELECT ... FOR UPDATE, then by key), copied to the archive and read there
    again: the typed match holds on each path, for her row and not the neighbour's."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    recent = datetime.now(UTC) - timedelta(days=10)
    doc, people, _notes, _audit = subject_store(live, archive, category="contracts")
    ts = "timestamptz" if engine == "postgresql" else "datetime(6)"
    for db in (live, archive):
        create_table(db, people, f"id bigint PRIMARY KEY, ts {ts} NULL, ref {column_type}")
        db.execute(f"CREATE INDEX {people}_ref ON {people} (ref)")
    stamp = recent if engine == "postgresql" else recent.replace(tzinfo=None)
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(1, stamp, stored), (2, stamp, other)])  # fmt: skip
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "customer-id", "column": "ref"}]

    result = run(doc, live, archive, "erasure", {"customer-id": asked}).result
    assert result.outcome == "Succeeded", result.message
    assert (result.total("rows_deleted"), result.total("rows_archived")) == (1, 1)
    assert ids(live, people) == {2}
    assert ids(archive, people) == {1}
    access = run(doc, live, archive, "access", {"customer-id": asked})
    assert _exported(access.document) == {1}
