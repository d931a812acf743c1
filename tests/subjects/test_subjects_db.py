"""Access and erasure requests on real PostgreSQL and MariaDB: exactly the subject's rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dataward.model.durations import parse_duration
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.test_purge_privileges import least_privilege_login
from tests.subjects.support import (
    EMAIL,
    NEIGHBOURS,
    create_notes,
    create_people,
    ids,
    insert,
    leaks,
    run,
    seeded_store,
    subject_store,
)

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
STATUTE = parse_duration("5y")


def _values(document: bytes) -> dict[tuple[str, str], set[int]]:
    """(table, location) -> ids of the exported rows."""
    parsed = json.loads(document)
    out: dict[tuple[str, str], set[int]] = {}
    for row in parsed["rows"]:
        key = row["values"].get("id", row["values"].get("note_id"))
        out.setdefault((row["table"], row["location"]), set()).add(int(key))
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_access_exports_exactly_the_subjects_rows(servers: DatabaseServers, engine: str) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, audit, now, groups, note_groups = seeded_store(live)

    outcome = run(doc, live, None, "access")

    result = outcome.result
    assert result.outcome == "Succeeded", result.message
    assert outcome.document is not None
    assert _values(outcome.document) == {
        (people, "live"): groups["subject"],
        (notes, "live"): note_groups["subject"],
    }
    assert result.not_searchable == (audit,)
    assert [(t.table, t.rows_found, t.rows_exported) for t in result.tables] == [
        (people, 4, 4),
        (notes, 2, 2),
    ]
    parsed = json.loads(outcome.document)
    assert {(m["table"], m["rows"]) for m in parsed["manifest"]} == {(people, 4), (notes, 2)}
    row = next(r for r in parsed["rows"] if r["values"].get("id") == 2)
    assert row["category"] == "support" and row["purposes"] == ["service"]
    assert row["retention"] == "1y" and row["trigger"] == "inquired" and row["statute"] is None
    triggered = datetime.fromisoformat(row["triggeredAt"].replace("Z", "+00:00"))
    assert abs(triggered - (now - timedelta(days=10))) < timedelta(seconds=1)
    assert row["expiresAt"] == parse_duration("1y").add_to(triggered).isoformat().replace(
        "+00:00", "Z"
    )
    assert row["values"]["email"] == EMAIL  # the document holds the value; the result never
    assert not leaks(result.to_json())
    assert ids(live, people) == groups["subject"] | groups["others"]  # access deletes nothing


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "identifier",
    [
        "' OR '1'='1",
        "%",
        "_",
        "a_b%",
        "%example.com",
        "x@x' UNION SELECT 1 --",
        "\\",
        EMAIL.title(),
    ],
)
def test_hostile_identifiers_match_nothing_and_break_nothing(
    servers: DatabaseServers, engine: str, identifier: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, _now, groups, _note_groups = seeded_store(live)

    for request in ("access", "erasure"):
        outcome = run(doc, live, None, request, {"email": identifier})
        assert outcome.result.outcome == "Succeeded", outcome.result.message
        assert outcome.result.total("rows_found") == 0
        assert outcome.result.total("rows_deleted") == 0
        assert identifier not in outcome.result.to_json() or identifier in ("%", "_", "\\")
        # customer-id is an integer column alone: no integer reads these, so it is refused.
        outcome = run(doc, live, None, request, {"email": identifier, "customer-id": identifier})
        assert (outcome.result.outcome, outcome.result.reason) == ("Failed", "Configuration")
        assert outcome.document is None
        assert identifier not in outcome.result.to_json() or identifier in ("%", "_", "\\")
    assert ids(live, people) == groups["subject"] | groups["others"]
    assert len(ids(live, notes, "note_id")) == 4


@pytest.mark.parametrize("engine", ENGINES)
def test_erasure_deletes_exactly_them_and_a_rerun_finds_nothing(
    servers: DatabaseServers, engine: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, _now, groups, note_groups = seeded_store(live)

    dry = run(doc, live, None, "erasure", dry_run=True)
    assert dry.result.outcome == "Succeeded" and dry.result.reason == "DryRun"
    assert [(t.rows_found, t.rows_deleted) for t in dry.result.tables] == [(4, 4), (2, 2)]
    assert ids(live, people) == groups["subject"] | groups["others"]  # the dry run changed nothing

    first = run(doc, live, None, "erasure")
    assert first.result.outcome == "Succeeded", first.result.message
    assert [(t.rows_found, t.rows_deleted) for t in first.result.tables] == [(4, 4), (2, 2)]
    assert ids(live, people) == groups["others"]
    assert ids(live, notes, "note_id") == note_groups["others"]
    assert first.document is None and not leaks(first.result.to_json())

    again = run(doc, live, None, "erasure")
    assert again.result.outcome == "Succeeded"
    assert again.result.total("rows_found") == 0 and again.result.total("rows_deleted") == 0
    assert ids(live, people) == groups["others"]


@pytest.mark.parametrize("engine", ENGINES)
def test_statutory_rows_are_archived_then_deleted_and_reported(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, now, groups, note_groups = seeded_store(
        live, archive, category="contracts"
    )
    before = {int(r[0]): r for r in live.query(f"SELECT id, email, payload FROM {people}")}
    # Archived long ago and past the statute: the subject's (50) and a neighbour's (51).
    ancient = now - timedelta(days=6 * 366)
    insert(
        archive,
        f"INSERT INTO {people} (id, ts, email, payload) VALUES (%s, %s, %s, %s)",
        [(50, ancient, EMAIL, "subject-old"), (51, ancient, NEIGHBOURS[0], "other-old")],
    )

    dry = run(doc, live, archive, "erasure", dry_run=True)
    people_dry = dry.result.tables[0]
    # 1 (400 days) and 2 (10 days) are within the 5-year statute; 3 is past it; 4 has no trigger.
    assert (people_dry.rows_deleted, people_dry.rows_archived, people_dry.rows_kept_live) == (
        3,
        2,
        1,
    )
    assert people_dry.archive_rows_destroyed == 1
    assert ids(archive, people) == {50, 51}
    assert ids(live, people) == groups["subject"] | groups["others"]

    result = run(doc, live, archive, "erasure").result
    assert result.outcome == "Succeeded", result.message
    table = result.tables[0]
    assert (table.rows_found, table.rows_deleted, table.rows_archived) == (4, 3, 2)
    assert (table.rows_kept, table.rows_kept_live, table.statute) == (3, 1, "E-Commerce Act")
    # Row 4 stays in live because its trigger is pending, not under the statute: say which.
    assert "4 rows are kept in the archive under the E-Commerce Act" in result.message
    assert "1 rows whose trigger has not happened stay in the live store" in result.message
    assert table.archive_rows_destroyed == 1
    assert ids(live, people) == groups["others"] | {4}
    assert ids(archive, people) == {1, 2, 51}
    archived = {int(r[0]): r for r in archive.query(f"SELECT id, email, payload FROM {people}")}
    assert archived == {1: before[1], 2: before[2], 51: (51, NEIGHBOURS[0], "other-old")}
    assert table.kept_until is not None
    assert abs(table.kept_until - STATUTE.add_to(now - timedelta(days=10))) < timedelta(seconds=1)
    notes_result = result.tables[1]
    # Note 1 (3 days) and note 2 (500 days) are both within the statute.
    assert (notes_result.rows_deleted, notes_result.rows_archived) == (2, 2)
    assert ids(live, notes, "note_id") == note_groups["others"]
    assert ids(archive, notes, "note_id") == note_groups["subject"]
    assert not leaks(result.to_json())

    again = run(doc, live, archive, "erasure").result
    assert again.outcome == "Succeeded"
    table = again.tables[0]
    assert (table.rows_found, table.rows_deleted, table.rows_archived) == (1, 0, 0)
    assert (table.rows_kept, table.rows_kept_live) == (3, 1)
    assert again.tables[0].archive_rows_destroyed == 0
    assert ids(archive, people) == {1, 2, 51} and ids(live, people) == groups["others"] | {4}

    access = run(doc, live, archive, "access")
    assert access.document is not None
    assert _values(access.document) == {
        (people, "live"): {4},
        (people, "archive"): {1, 2},
        (notes, "archive"): {1, 2},
    }
    kept = [r for r in json.loads(access.document)["rows"] if r["location"] == "archive"]
    assert all(r["statute"] == "E-Commerce Act" and r["keptUntil"] for r in kept)


@pytest.mark.parametrize("engine", ENGINES)
def test_legal_hold_blocks_erasure_but_not_access(servers: DatabaseServers, engine: str) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, _now, groups, _note_groups = seeded_store(live, suspend=True)

    held = run(doc, live, None, "erasure").result
    assert (held.outcome, held.reason) == ("Held", "LegalHold")
    assert ids(live, people) == groups["subject"] | groups["others"]
    assert len(ids(live, notes, "note_id")) == 4
    access = run(doc, live, None, "access")
    assert access.result.outcome == "Succeeded" and access.result.total("rows_exported") == 6


@pytest.mark.parametrize("engine", ENGINES)
def test_large_match_is_held_until_acknowledged(servers: DatabaseServers, engine: str) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, _notes, _audit, _now, groups, _note_groups = seeded_store(live)

    held = run(doc, live, None, "erasure", max_rows=5).result
    assert (held.outcome, held.reason) == ("Held", "LargeMatch")
    assert held.acknowledge_token and held.acknowledge_token in held.message
    assert ids(live, people) == groups["subject"] | groups["others"]
    wrong = run(doc, live, None, "erasure", max_rows=5, acknowledge="rows5-g7-p3").result
    assert wrong.outcome == "Held"
    access = run(doc, live, None, "access", max_rows=5)
    assert access.result.outcome == "Held" and access.document is None

    done = run(doc, live, None, "erasure", max_rows=5, acknowledge=held.acknowledge_token).result
    assert done.outcome == "Succeeded" and done.total("rows_deleted") == 6
    assert ids(live, people) == groups["others"]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failure_never_quotes_the_identifier(servers: DatabaseServers, engine: str) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit = subject_store(live)
    create_people(live, people)
    create_notes(live, notes)
    doc["spec"]["records"][1]["subjectColumns"] = [{"kind": "email", "column": "no_such_column"}]

    result = run(doc, live, None, "erasure").result
    assert result.outcome == "Failed" and result.reason == "ColumnRefused"
    assert "no_such_column" in result.message
    assert not leaks(result.to_json())


@pytest.mark.parametrize("engine", ENGINES)
def test_the_purge_logins_privileges_are_enough(servers: DatabaseServers, engine: str) -> None:
    """Live: SELECT and DELETE; archive: SELECT and INSERT (the purge's README recipe, which
    also grants DELETE on the archive for its destructions; the request does not need it)."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, notes, _audit, _now, groups, _note_groups = seeded_store(
        live, archive, category="contracts"
    )
    live_login = least_privilege_login(live, people, "SELECT, DELETE")
    archive_login = least_privilege_login(archive, people, "SELECT, INSERT")
    grant(live, notes, "SELECT, DELETE", live_login.username)
    grant(archive, notes, "SELECT, INSERT", archive_login.username)

    reader = least_privilege_login(live, people, "SELECT")
    grant(live, notes, "SELECT", reader.username)
    denied = run(doc, live, archive, "erasure", live_login=reader, archive_login=archive_login)
    assert (denied.result.outcome, denied.result.reason) == ("Failed", "PermissionDenied")
    assert not leaks(denied.result.to_json())
    assert ids(live, people) == groups["subject"] | groups["others"]
    # MySQL locks with SELECT ... FOR UPDATE and copies before its DELETE is refused: the
    # copies stay (the rows are in both, as after a crash); PostgreSQL's DELETE fails first.
    assert ids(archive, people) == (set() if engine == "postgresql" else {1, 2})

    access = run(doc, live, archive, "access", live_login=live_login, archive_login=archive_login)
    assert access.result.outcome == "Succeeded", access.result.message
    result = run(
        doc, live, archive, "erasure", live_login=live_login, archive_login=archive_login
    ).result
    assert result.outcome == "Succeeded", result.message
    assert ids(live, people) == groups["others"] | {4} and ids(archive, people) == {1, 2}


def grant(server: DatabaseServer, table: str, privileges: str, login: str) -> None:
    """Grant `privileges` on one more table to a login."""
    if server.engine == "postgresql":
        server.execute(f"GRANT {privileges} ON {table} TO {login}")
    else:
        server.execute(f"GRANT {privileges} ON {server.database}.{table} TO '{login}'@'%'")


@pytest.mark.parametrize("pair", ["postgresql-to-mysql", "mysql-to-postgresql"])
def test_statutory_copy_across_engines(servers: DatabaseServers, pair: str) -> None:
    live, archive = (
        (servers.pg_live, servers.mysql_archive)
        if pair == "postgresql-to-mysql"
        else (servers.mysql_live, servers.pg_archive)
    )
    doc, people, _notes, _audit, now, groups, _note_groups = seeded_store(
        live, archive, category="contracts"
    )
    before = {
        int(r[0]): tuple(r[1:]) for r in live.query(f"SELECT id, email, payload FROM {people}")
    }

    result = run(doc, live, archive, "erasure").result

    assert result.outcome == "Succeeded", result.message
    assert ids(live, people) == groups["others"] | {4}
    copied = {
        int(r[0]): tuple(r[1:]) for r in archive.query(f"SELECT id, email, payload FROM {people}")
    }
    assert copied == {1: before[1], 2: before[2]}
    assert result.tables[0].kept_until is not None
    assert abs(result.tables[0].kept_until - STATUTE.add_to(now - timedelta(days=10))) < timedelta(
        seconds=1
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_a_clock_far_from_the_databases_deletes_nothing(
    servers: DatabaseServers, engine: str
) -> None:
    """Which rows a statute keeps depends on "now": a job clock a day off fails the request."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, _notes, _audit, _now, groups, _note_groups = seeded_store(
        live, archive, category="contracts"
    )

    result = run(
        doc, live, archive, "erasure", job_clock=lambda: datetime.now(UTC) + timedelta(days=1)
    ).result
    assert (result.outcome, result.reason) == ("Failed", "ClockSkew")
    assert ids(live, people) == groups["subject"] | groups["others"]
    assert ids(archive, people) == set()


@pytest.mark.parametrize("engine", ENGINES)
def test_an_archive_table_another_store_claimed_is_neither_erased_nor_exported(
    servers: DatabaseServers, engine: str
) -> None:
    # Red first: the purge refused another store's archive table (`purge.claims`), but a
    # data-subject request did not look: an erasure destroyed the person's rows that store
    # archived, by this store's statute (past 5y here: a 10-year store keeps them), and an
    # access exported them to this request's readers.
    from dataward.purge.claims import CLAIMS_TABLE

    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people, _notes, _audit, now, groups, _ = seeded_store(live, archive, category="contracts")
    ancient = now - timedelta(days=6 * 366)
    insert(archive, f"INSERT INTO {people} (id, ts, email, payload) VALUES (%s, %s, %s, %s)",
           [(50, ancient, EMAIL, "theirs")])  # fmt: skip
    claimed = f"INSERT INTO {CLAIMS_TABLE} (archive_table, store, claimed_at) VALUES (%s, %s, %s)"
    insert(archive, claimed, [(people.lower(), "ledger/other-store", now)])
    for request in ("erasure", "access"):
        outcome = run(doc, live, archive, request)
        result = outcome.result
        assert (result.outcome, result.reason) == ("Failed", "ArchiveClaimed"), result.message
        assert "ledger/other-store" in result.message and EMAIL not in result.message
        assert outcome.document is None
    assert ids(archive, people) == {50}
    assert ids(live, people) == groups["subject"] | groups["others"]
