"""Erasure on tables whose keys or triggers do not tell rows apart, on real PostgreSQL and
MariaDB.

A careless schema (a UNIQUE key column that allows NULL, which both engines let many rows
share; a float key; no unique key at all) or an archive filled by hand (another person's row
under the subject's key, a row with no trigger): an erasure must still end with "only this
person's rows, and all of them" true and accounted for, or say it could not. Rows are told
apart here by `payload`, never by the key the engine uses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import store_doc, unique
from tests.subjects.support import EMAIL, NEIGHBOURS, TS, create_table, insert, run

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
OTHER = NEIGHBOURS[2]  # the subject's email in capitals: another person
LONG_AGO = timedelta(days=6 * 366)  # past the 5-year statute of `contracts`
RECENT = timedelta(days=10)  # within it


def _table(server: DatabaseServer, name: str) -> None:
    """`(id, ts, email, payload)`, id UNIQUE but nullable (keyColumns: [id])."""
    create_table(server, name, f"id bigint NULL, ts {TS[server.engine]} NULL, "
                               "email varchar(200), payload varchar(200), UNIQUE (id)")  # fmt: skip


def _store(live: DatabaseServer, archive: DatabaseServer, table: str) -> dict[str, Any]:
    doc = store_doc(live, table, category="contracts", archive=archive)
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    return doc


def _rows(server: DatabaseServer, table: str, rows: list[tuple[Any, ...]]) -> None:
    insert(server, f"INSERT INTO {table} (id, ts, email, payload) VALUES (%s,%s,%s,%s)", rows)


def _payloads(server: DatabaseServer, table: str) -> list[str]:
    return sorted(p for (p,) in server.query(f"SELECT payload FROM {table}"))


def _setup(servers: DatabaseServers, engine: str) -> tuple[DatabaseServer, DatabaseServer, str]:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("nullkey")
    _table(live, table)
    _table(archive, table)
    return live, archive, table


@pytest.mark.parametrize("engine", ENGINES)
def test_a_null_key_row_past_its_statute_is_erased_and_no_one_elses(
    servers: DatabaseServers, engine: str
) -> None:
    """The subject's row with a NULL key and a trigger past the statute is deleted, not
    archived; another person's row shares the NULL key. MariaDB's erasure deleted by
    `id = NULL`, which matches nothing: it said Succeeded and left the subject's row."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(live, table, [
        (None, now - LONG_AGO, EMAIL, "subject-null-key"),
        (1, now - LONG_AGO, EMAIL, "subject-1"),
        (None, now - LONG_AGO, OTHER, "other-null-key"),
        (2, now - LONG_AGO, OTHER, "other-2"),
    ])  # fmt: skip

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(live, table) == ["other-2", "other-null-key"]
    assert result.outcome == "Succeeded", result.message
    assert (result.tables[0].rows_found, result.tables[0].rows_deleted) == (2, 2)
    assert result.tables[0].rows_archived == 0 and _payloads(archive, table) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_a_null_key_row_the_statute_keeps_is_refused_before_any_copy(
    servers: DatabaseServers, engine: str
) -> None:
    """A row the statute keeps, with a NULL key: the archive's unique key cannot tell its
    copies apart (NULLs are never duplicates), nor can a check by key find it. MariaDB's
    copy was committed, then its check (`id = NULL`) failed, and every retry added another
    copy. It is refused before anything is copied, and the row stays in the live table.
    (PostgreSQL's copy, verified by the INSERT's count, stored it; a retry after a crash
    would have stored it twice. One rule for both now.)"""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(live, table, [
        (None, now - RECENT, EMAIL, "subject-null-key"),
        (None, now - RECENT, OTHER, "other-null-key"),
    ])  # fmt: skip
    doc = _store(live, archive, table)

    for _attempt in range(2):
        result = run(doc, live, archive, "erasure", {"email": EMAIL}).result
        assert (result.outcome, result.reason) == ("Failed", "ColumnRefused"), result.message
        assert "NULL" in result.message and EMAIL not in result.message
        assert _payloads(live, table) == ["other-null-key", "subject-null-key"]
        assert _payloads(archive, table) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_archived_null_key_rows_past_the_statute_are_destroyed_and_no_others(
    servers: DatabaseServers, engine: str
) -> None:
    """The archive holds, under a NULL key, the subject's row past its statute, the subject's
    row still within it and another person's row past it. The destroy matched `id = NULL`:
    the row past its statute stayed while the erasure said Succeeded; matching only
    `id IS NULL` would destroy the row the statute still keeps, or the other person's."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(archive, table, [
        (None, now - LONG_AGO, EMAIL, "subject-past"),
        (None, now - RECENT, EMAIL, "subject-kept"),
        (None, now - LONG_AGO, OTHER, "other-past"),
        (3, now - LONG_AGO, EMAIL, "subject-past-3"),
    ])  # fmt: skip

    dry = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL},
              dry_run=True).result  # fmt: skip
    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(archive, table) == ["other-past", "subject-kept"]
    assert result.outcome == "Succeeded", result.message
    assert dry.tables[0].archive_rows_destroyed == result.tables[0].archive_rows_destroyed == 2
    assert result.tables[0].rows_kept == 1


@pytest.mark.parametrize("location", ["live", "archive"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_key_that_does_not_read_back_as_itself_fails_the_erasure(
    servers: DatabaseServers, engine: str, location: str
) -> None:
    """A single-precision key: 0.1 reads back as the double 0.1, which the column's value
    (0.100000001490116...) does not equal, so a DELETE by the key read removes nothing.
    MariaDB's live erasure and both archives' destroy said Succeeded and left the row; the
    erasure must fail instead, naming keyColumns. (PostgreSQL's live erasure deletes by the
    subject's predicate, RETURNING the rows: no key needed.)"""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("floatkey")
    real = "real" if engine == "postgresql" else "FLOAT"
    for server in (live, archive):
        columns = f"id {real} NOT NULL, ts {TS[engine]} NULL, email varchar(200), payload "
        create_table(server, table, columns + "varchar(200), UNIQUE (id)")
    server = live if location == "live" else archive
    _rows(server, table, [(0.1, datetime.now(UTC) - LONG_AGO, EMAIL, "subject-float-key"),
                          (0.2, datetime.now(UTC) - LONG_AGO, OTHER, "other")])  # fmt: skip
    if location == "archive":  # erased (committed) before the archive's destroy fails
        _rows(live, table, [(5, datetime.now(UTC) - LONG_AGO, EMAIL, "subject-live")])

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    if engine == "postgresql" and location == "live":
        assert result.outcome == "Succeeded", result.message
        assert _payloads(live, table) == ["other"]
        return
    assert (result.outcome, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert "keyColumns" in result.message and EMAIL not in result.message
    assert _payloads(server, table) == ["other", "subject-float-key"]
    if location == "archive":
        assert _payloads(live, table) == [] and result.tables[0].rows_deleted == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_another_persons_archived_row_under_the_key_is_no_copy_of_the_subjects(
    servers: DatabaseServers, engine: str
) -> None:
    """The archive already holds another person's row under key 7 (a key used again, an
    archive filled by hand). The copy took it for one a crashed run left, its check by key
    found it, and the subject's row, which the statute keeps, was deleted from the live
    table without a copy: Succeeded, 0 archived, where the dry run promised 1."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(live, table, [(7, now - RECENT, EMAIL, "subject-7")])
    _rows(archive, table, [(7, now - RECENT, OTHER, "other-archived-7")])

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(live, table) == ["subject-7"]
    assert _payloads(archive, table) == ["other-archived-7"]
    # The purge's copy (which the erasure shares) finds the row under the key is another.
    assert (result.outcome, result.reason) == ("Failed", "ArchiveKeyConflict"), result.message
    assert EMAIL not in result.message and OTHER not in result.message


def test_rows_sharing_a_key_are_not_deleted_when_the_archive_holds_one_copy(
    servers: DatabaseServers,
) -> None:
    """PostgreSQL's live table needs no unique key (MariaDB's does: IndexMissing): two of
    the subject's rows share key 7, and the archive's unique key takes one copy. The second
    was deleted from the live table without a copy: Succeeded, 2 deleted, 1 archived."""
    live, archive = servers.pair("postgresql")
    table = unique("dupkey")
    create_table(live, table, "id bigint, ts timestamptz, email varchar(200), payload varchar(200)")
    _table(archive, table)
    now = datetime.now(UTC)
    _rows(live, table, [(7, now - RECENT, EMAIL, f"subject-{n}") for n in "ab"])

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(live, table) == ["subject-a", "subject-b"]
    assert _payloads(archive, table) == []
    assert (result.outcome, result.reason) == ("Failed", "ArchiveKeyConflict"), result.message
    assert EMAIL not in result.message


@pytest.mark.parametrize("engine", ENGINES)
def test_an_archived_row_without_a_trigger_is_counted_as_kept(
    servers: DatabaseServers, engine: str
) -> None:
    """The archive holds the subject's row with a NULL trigger (an archive filled by hand, a
    column altered). It is not past its statute (the period has not started), so it stays,
    as such a live row does; but it was neither destroyed nor counted as kept: the result
    accounted for 1 of the subject's 2 archived rows and said Succeeded."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(archive, table, [(8, None, EMAIL, "subject-no-trigger"),
                           (9, now - RECENT, EMAIL, "subject-kept")])  # fmt: skip

    dry = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL},
              dry_run=True).result  # fmt: skip
    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert result.outcome == "Succeeded", result.message
    assert _payloads(archive, table) == ["subject-kept", "subject-no-trigger"]
    table_result = result.tables[0]
    assert table_result.archive_rows_found == 2
    assert dry.tables[0].rows_kept == table_result.rows_kept == 2
    assert table_result.archive_rows_destroyed == 0
    assert "2 rows are kept in the archive" in result.message


@pytest.mark.parametrize("engine", ENGINES)
def test_without_a_statute_the_subjects_archived_rows_are_destroyed(
    servers: DatabaseServers, engine: str
) -> None:
    """A store with an archive whose category no statute keeps (the statute left the
    policy; the archive stayed): the erasure deleted the live row and left the subject's
    archived rows, destroying and counting none (archiveRowsFound 2, rowsKept 0,
    archiveRowsDestroyed 0), Succeeded. Nothing keeps them: they go, another person's stays,
    and a large match counts them."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(live, table, [(1, now - RECENT, EMAIL, "subject-live")])
    _rows(archive, table, [(2, now - RECENT, EMAIL, "subject-archived"),
                           (3, None, EMAIL, "subject-archived-no-trigger"),
                           (4, now - RECENT, OTHER, "other-archived")])  # fmt: skip
    doc = store_doc(live, table, category="support", archive=archive)
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]

    held = run(doc, live, archive, "erasure", {"email": EMAIL}, max_rows=2).result
    assert (held.outcome, held.reason) == ("Held", "LargeMatch"), held.message
    dry = run(doc, live, archive, "erasure", {"email": EMAIL}, dry_run=True).result
    result = run(doc, live, archive, "erasure", {"email": EMAIL}, max_rows=2,
                 acknowledge=held.acknowledge_token).result  # fmt: skip

    assert result.outcome == "Succeeded", result.message
    assert _payloads(live, table) == []
    assert _payloads(archive, table) == ["other-archived"]
    assert dry.tables[0].archive_rows_destroyed == result.tables[0].archive_rows_destroyed == 2
    assert result.tables[0].rows_kept == 0
    assert "2 archived rows no statute keeps would be destroyed" in dry.message
    assert "and 2 from the archive" in result.message


PAIRS = ["postgresql", "mysql", "postgresql-to-mysql", "mysql-to-postgresql"]


def _pair(servers: DatabaseServers, pair: str) -> tuple[DatabaseServer, DatabaseServer]:
    """Live and archive: one engine, or live of the first and archive of the second."""
    if pair == "postgresql-to-mysql":
        return servers.pg_live, servers.mysql_archive
    if pair == "mysql-to-postgresql":
        return servers.mysql_live, servers.pg_archive
    return servers.pair(pair)  # type: ignore[arg-type]


@pytest.mark.parametrize("pair", PAIRS)
def test_the_subjects_own_older_row_under_a_reused_key_is_no_copy_of_her_new_row(
    servers: DatabaseServers, pair: str
) -> None:
    """The subject's order 7, archived years ago (still within the statute); the key reused
    for her new order 7, with other contents. The archived row is hers (a check that the row
    under the key is the subject's finds it), but it is no copy of the new row: deleting the
    new row would lose its contents, which were never archived. Only the whole row tells."""
    live, archive = _pair(servers, pair)
    table = unique("reused")
    _table(live, table)
    _table(archive, table)
    now = datetime.now(UTC)
    _rows(live, table, [(7, now - RECENT, EMAIL, "subject-new-7")])
    _rows(archive, table, [(7, now - timedelta(days=3 * 366), EMAIL, "subject-old-7")])

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(live, table) == ["subject-new-7"], "her new row deleted uncopied"
    assert _payloads(archive, table) == ["subject-old-7"]
    assert (result.outcome, result.reason) == ("Failed", "ArchiveKeyConflict"), result.message
    assert EMAIL not in result.message and "subject-" not in result.message


@pytest.mark.parametrize("pair", ["postgresql", "postgresql-to-mysql"])
def test_identical_rows_sharing_a_key_are_not_deleted_for_one_copy(
    servers: DatabaseServers, pair: str
) -> None:
    """PostgreSQL's live table needs no unique key: two of the subject's rows, equal in every
    column, share key 7. The archive's unique key keeps one row: each live row equals it, so
    a row-by-row comparison takes it as the copy of both, and two rows would leave live for
    one archived (two identical entries of a ledger are two entries)."""
    live, archive = _pair(servers, pair)
    table = unique("twins")
    create_table(live, table, f"id bigint, ts {TS['postgresql']}, email varchar(200), "
                              "payload varchar(200)")  # fmt: skip
    _table(archive, table)
    at = datetime.now(UTC).replace(microsecond=0) - RECENT
    _rows(live, table, [(7, at, EMAIL, "subject-twin")] * 2)

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert _payloads(live, table) == ["subject-twin", "subject-twin"]
    assert _payloads(archive, table) == []
    assert result.outcome == "Failed", result.message
    assert result.reason in ("ArchiveKeyConflict", "ArchiveVerifyFailed"), result.message
    assert EMAIL not in result.message and "subject-" not in result.message


@pytest.mark.parametrize("stored", ["lower", "mixed"])
def test_a_copy_the_archive_finds_under_another_spelling_only_fails_the_erasure(
    servers: DatabaseServers, stored: str
) -> None:
    """What the erasure's own check (`_verify_copies`) still catches after the copy's
    whole-row rule and the refusal of subject columns of another kind in the archive: the
    archive table rewrites what it is given (a BEFORE INSERT trigger lower-cases e-mail
    addresses). The subject, asked as stored (`Alice@...`), is found live, but her copy
    is `alice@...`, which her search in the archive does not find: the erasure would say 0
    rows kept, and a later access (or the erasure after the statute) would miss the row.
    Nothing is deleted from live; a value the trigger leaves as it is goes. (A uuid live
    and text archived is refused before this, by the kinds' rule.)"""
    live, archive = servers.pair("postgresql")
    table = unique("rewrite")
    create_table(live, table, "id bigint PRIMARY KEY, ts timestamptz, cust text, payload text")
    create_table(archive, table, "id bigint PRIMARY KEY, ts timestamptz, cust text, payload text")
    archive.execute(
        f"CREATE FUNCTION {table}_lower() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.cust := lower(NEW.cust); RETURN NEW; END $$",
        f"CREATE TRIGGER {table}_lower BEFORE INSERT ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_lower()",
    )
    cust = "alice@example.com" if stored == "lower" else "Alice@Example.com"
    insert(live, f"INSERT INTO {table} VALUES (%s, %s, %s, %s)",
           [(7, datetime.now(UTC) - RECENT, cust, "subject-7")])  # fmt: skip
    doc = store_doc(live, table, category="contracts", archive=archive)
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "customer-id", "column": "cust"}]

    result = run(doc, live, archive, "erasure", {"customer-id": cust}).result

    if stored == "lower":
        assert result.outcome == "Succeeded", result.message
        assert result.tables[0].rows_kept == 1 and _payloads(live, table) == []
        assert archive.query(f"SELECT id, cust FROM {table}") == [(7, cust)]
        return
    assert _payloads(live, table) == ["subject-7"]
    # The archive committed what its trigger made of the copy; live holds the row.
    assert archive.query(f"SELECT id, cust FROM {table}") == [(7, cust.lower())]
    assert (result.outcome, result.reason) == ("Failed", "ArchiveVerifyFailed"), result.message
    assert "alice" not in result.message.lower() and "subject-" not in result.message


def test_a_uuid_live_and_text_archived_is_refused_before_any_copy(
    servers: DatabaseServers,
) -> None:
    """The case `_verify_copies` caught before the kinds' rule: now refused up front, in
    either spelling, with nothing copied or deleted."""
    live, archive = servers.pair("postgresql")
    table = unique("uuidtext")
    create_table(live, table, "id bigint PRIMARY KEY, ts timestamptz, cust uuid, payload text")
    create_table(archive, table, "id bigint PRIMARY KEY, ts timestamptz, cust text, payload text")
    cust = "9f2c0b5e-1111-4222-8333-444455556666"
    insert(live, f"INSERT INTO {table} VALUES (%s, %s, %s, %s)",
           [(7, datetime.now(UTC) - RECENT, cust, "subject-7")])  # fmt: skip
    doc = store_doc(live, table, category="contracts", archive=archive)
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "customer-id", "column": "cust"}]
    for identifier in (cust, cust.upper()):
        result = run(doc, live, archive, "erasure", {"customer-id": identifier}).result
        assert (result.outcome, result.reason) == ("Failed", "ArchiveTableInvalid")
        assert cust not in result.message.lower()
    assert archive.query(f"SELECT count(*) FROM {table}") == [(0,)]
    assert _payloads(live, table) == ["subject-7"]


@pytest.mark.parametrize("pair", ["mysql", "mysql-to-postgresql"])
def test_the_erasure_archives_a_float_with_every_bit(servers: DatabaseServers, pair: str) -> None:
    """MariaDB live: the erasure read the subject's rows through the server's own text of a
    FLOAT (6 digits), so 1.0000003 was archived as 1 and the live row deleted."""
    live, archive = _pair(servers, pair)
    table = unique("single")
    for server in (live, archive):
        _table(server, table)
        kind = "real" if server.engine == "postgresql" else "FLOAT"
        server.execute(f"ALTER TABLE {table} ADD COLUMN single {kind}")
    _rows(live, table, [(7, datetime.now(UTC) - RECENT, EMAIL, "subject-7")])
    live.execute(f"UPDATE {table} SET single = 1.0000003")
    cast = {"postgresql": "single::float8", "mysql": "CAST(single AS DOUBLE)"}
    before = live.query(f"SELECT {cast[live.engine]} FROM {table}")
    assert before != [(1.0,)]

    result = run(_store(live, archive, table), live, archive, "erasure", {"email": EMAIL}).result

    assert result.outcome == "Succeeded", result.message
    assert _payloads(live, table) == []
    assert archive.query(f"SELECT {cast[archive.engine]} FROM {table}") == before


@pytest.mark.parametrize("engine", ENGINES)
def test_a_dry_run_says_a_real_run_would_refuse_a_null_key_row_the_statute_keeps(
    servers: DatabaseServers, engine: str
) -> None:
    """The dry run promised "would delete 1, archiving 1" where the real run refuses the
    table (ColumnRefused: a row to archive whose key holds NULL). It says so now, in counts
    and the table's name; a NULL-key row past its statute (deleted, not archived) is not
    refused and not named."""
    live, archive, table = _setup(servers, engine)
    now = datetime.now(UTC)
    _rows(live, table, [(None, now - RECENT, EMAIL, "subject-null-key"),
                        (None, now - LONG_AGO, EMAIL, "subject-null-key-past"),
                        (None, now - RECENT, OTHER, "other-null-key")])  # fmt: skip
    doc = _store(live, archive, table)

    dry = run(doc, live, archive, "erasure", {"email": EMAIL}, dry_run=True).result
    real = run(doc, live, archive, "erasure", {"email": EMAIL}).result

    assert (real.outcome, real.reason) == ("Failed", "ColumnRefused"), real.message
    assert (dry.outcome, dry.reason) == ("Succeeded", "DryRun"), dry.message
    assert "would be refused (ColumnRefused): 1 of the subject's rows" in dry.message
    assert table in dry.message and EMAIL not in dry.message and "subject-" not in dry.message

    live.execute(f"DELETE FROM {table} WHERE payload = 'subject-null-key'")
    dry = run(doc, live, archive, "erasure", {"email": EMAIL}, dry_run=True).result
    assert "refused" not in dry.message, dry.message
