"""One subject, one answer: the live table and its archive must match her by the same rule,
and a value the engine cannot read as a date must not turn her request into `Internal`.
Attacked on real PostgreSQL 15 and MariaDB 10.11.

- A subject column typed one way live (uuid, numeric, integer) and another way in the archive
  (text): the live side compares by its type (`9F2C...` is `9f2c...`), the archive's text by
  its spelling, so her archived row was missed and the request said Succeeded. Such an
  archive is refused (`ArchiveTableInvalid`, table and column named, never a value) before
  anything is exported or deleted.
- MariaDB's zero date (`0000-00-00`), which PyMySQL returns as text: in any other column it is
  exported as the server shows it; in the trigger column it is no instant, and a request it
  decides (an access, an erasure under a statute) is refused (`ColumnRefused`, table and
  column named) rather than failing `Internal`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.subjects.support import create_table, ids, insert, run, subject_store

pytestmark = pytest.mark.db

U = "9f2c0b5e-3d4a-4c1b-8e7f-0a1b2c3d4e5f"  # as both engines print a uuid (and the purge copies)
OLD = datetime.now(UTC) - timedelta(days=365 * 7)  # past the 5-year statute: destroyed
RECENT = datetime.now(UTC) - timedelta(days=10)


def _stamp(server: DatabaseServer, at: datetime) -> datetime:
    return at if server.engine == "postgresql" else at.replace(tzinfo=None)


def _split_store(
    live: DatabaseServer, archive: DatabaseServer, live_type: str, archive_type: str
) -> tuple[dict[str, Any], str]:
    """A statutory store whose people.ref (customer-id) is `live_type` live and `archive_type`
    in the archive, both indexed."""
    doc, people, _notes, _audit = subject_store(live, archive, category="contracts")
    ts = "timestamptz" if live.engine == "postgresql" else "datetime(6)"
    for db, column_type in ((live, live_type), (archive, archive_type)):
        create_table(db, people, f"id bigint PRIMARY KEY, ts {ts} NULL, ref {column_type}")
        db.execute(f"CREATE INDEX {people}_ref ON {people} (ref)")
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "customer-id", "column": "ref"}]
    return doc, people


SPLIT = [
    # live, archive, stored live, stored in the archive (as the purge's copy wrote it), asked
    ("postgresql", "uuid", "text", U, U, U.upper()),
    ("postgresql", "uuid", "varchar(64)", U, U, "{" + U + "}"),
    ("postgresql", "numeric(10,2)", "text", "5.00", "5.00", "5"),
    ("mysql", "uuid", "varchar(64)", U, U, U.upper()),
    ("mysql", "decimal(10,2)", "varchar(64)", "5.00", "5.00", "5.0"),
    # PostgreSQL's char(n) is copied padded to its length; its own comparison ignores the
    # padding, the archive text's does not.
    ("postgresql", "char(12)", "text", "C-42", "C-42        ", "C-42"),
    # The same class nearby: an integer live, text archived. The purge copies 42 as `42`, the
    # one spelling the integer rule reads, but an archive written otherwise (a restore, a
    # migration) holding `042` holds her number 42 as the live column reads it: missed.
    ("postgresql", "bigint", "text", 42, "042", "42"),
    ("mysql", "bigint", "varchar(64)", 42, "042", "42"),
]


@pytest.mark.parametrize(
    ("engine", "live_type", "archive_type", "stored", "copied", "asked"),
    SPLIT,
    ids=[f"{e}-{lt}-{at}" for e, lt, at, *_ in SPLIT],
)
def test_a_subject_column_typed_otherwise_in_the_archive_is_refused_before_anything_is_done(
    servers: DatabaseServers,
    engine: str,
    live_type: str,
    archive_type: str,
    stored: Any,
    copied: Any,
    asked: str,
) -> None:
    """Her live row (recent) and her archived row (past the statute: an erasure destroys it).
    Before: the live side found her by type, the archive's text only by its spelling, so an
    access exported the live row alone and an erasure destroyed nothing there: Succeeded."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people = _split_store(live, archive, live_type, archive_type)
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(1, _stamp(live, RECENT), stored)])  # fmt: skip
    insert(archive, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(2, _stamp(archive, OLD), copied)])  # fmt: skip
    for request in ("access", "erasure"):
        outcome = run(doc, live, archive, request, {"customer-id": asked})
        result = outcome.result
        assert (result.outcome, result.reason) == ("Failed", "ArchiveTableInvalid"), (
            request, result.outcome, result.message)  # fmt: skip
        assert f"{people}.ref" in result.message, result.message
        said = result.message.replace(people, "")  # the table's name holds digits
        assert str(asked) not in said and U not in said, result.message
        assert outcome.document is None
    assert ids(live, people) == {1}
    assert ids(archive, people) == {2}


@pytest.mark.parametrize(
    ("engine", "column_type", "archive_type"),
    [("postgresql", "uuid", "uuid"), ("postgresql", "varchar(64)", "text"),
     ("mysql", "uuid", "uuid"), ("mysql", "varchar(64)", "text"),
     ("mysql", "int", "bigint")],
)  # fmt: skip
def test_an_archive_of_the_same_kind_still_answers(
    servers: DatabaseServers, engine: str, column_type: str, archive_type: str
) -> None:
    """The refusal is for another kind of column only: varchar and text, int and bigint are
    one kind; her archived row is found and (past its statute) destroyed."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people = _split_store(live, archive, column_type, archive_type)
    value = 7 if column_type == "int" else U
    insert(live, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(1, _stamp(live, RECENT), value)])  # fmt: skip
    insert(archive, f"INSERT INTO {people} (id, ts, ref) VALUES (%s,%s,%s)",
           [(2, _stamp(archive, OLD), value), (3, _stamp(archive, OLD), 8 if value == 7 else
            "0a1b2c3d-4e5f-4c1b-8e7f-9f2c0b5e3d4a")])  # fmt: skip
    access = run(doc, live, archive, "access", {"customer-id": str(value)})
    assert access.result.outcome == "Succeeded", access.result.message
    assert access.document is not None
    rows = json.loads(access.document)["rows"]
    assert sorted((r["location"], r["values"]["id"]) for r in rows) == [
        ("archive", 2), ("live", 1)]  # fmt: skip
    erasure = run(doc, live, archive, "erasure", {"customer-id": str(value)})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    assert ids(archive, people) == {1, 3}  # 1: recent, copied under the statute; 2 destroyed


# ------------------------------------------------------------------ MariaDB's zero dates


def _zero_store(live: DatabaseServer) -> tuple[dict[str, Any], str]:
    """people (id, ts DATETIME NULL, born DATE NULL, email): rows written with zero dates
    allowed (sql_mode ''), as an old application's session may have."""
    doc, people, _notes, _audit = subject_store(live)
    create_table(live, people, "id bigint PRIMARY KEY, ts datetime NULL, born date NULL, "
                               "email varchar(200)")  # fmt: skip
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    return doc, people


def test_a_zero_date_outside_the_trigger_is_exported_as_the_server_shows_it(
    servers: DatabaseServers,
) -> None:
    live = servers.mysql_live
    doc, people = _zero_store(live)
    live.execute(
        "SET SESSION sql_mode = ''",
        f"INSERT INTO {people} VALUES (1, '2024-01-02 03:04:05', '0000-00-00', 'kim@x'), "
        "(2, '2024-01-02 03:04:05', '1990-00-00', 'kim@x'), (3, NULL, NULL, 'lee@x')",
    )
    access = run(doc, live, None, "access", {"email": "kim@x"})
    assert access.result.outcome == "Succeeded", access.result.message
    assert access.document is not None
    born = {r["values"]["id"]: r["values"]["born"] for r in json.loads(access.document)["rows"]}
    assert born == {1: "0000-00-00", 2: "1990-00-00"}
    erasure = run(doc, live, None, "erasure", {"email": "kim@x"})
    assert erasure.result.outcome == "Succeeded", erasure.result.message
    assert ids(live, people) == {3}


@pytest.mark.parametrize("zero", ["0000-00-00 00:00:00", "2024-00-10 00:00:00"])
@pytest.mark.parametrize("request_type", ["access"])
def test_a_zero_date_in_the_trigger_is_refused_naming_the_column_not_internal(
    servers: DatabaseServers, zero: str, request_type: str
) -> None:
    """A zero trigger is no instant: nothing says when her row's retention (or statute) ends,
    which the access document states. Before: as_utc got the text PyMySQL returns and the
    request failed `Internal`. (An erasure without a statute erases whatever the trigger
    holds; under one it is refused: tests/subjects/test_subjects_infinite_db.py.)"""
    live = servers.mysql_live
    doc, people = _zero_store(live)
    live.execute(
        "SET SESSION sql_mode = ''",
        f"INSERT INTO {people} VALUES (1, '{zero}', NULL, 'kim@x'), "
        "(2, '2024-01-02 03:04:05', NULL, 'kim@x'), (3, NULL, NULL, 'lee@x')",
    )
    outcome = run(doc, live, None, request_type, {"email": "kim@x"})
    result = outcome.result
    assert (result.outcome, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert f"{people}" in result.message and "'ts'" in result.message, result.message
    assert "kim@x" not in result.message and zero[:10] not in result.message, result.message
    assert outcome.document is None
    assert ids(live, people) == {1, 2, 3}
