"""Statutory categories: copy to the archive, verify, then delete; destroy after the statute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dataward.model.durations import cutoff_for, parse_duration
from dataward.purge.batches import Literals, MySQLBatches, MySQLKeyBatches
from dataward.purge.errors import PurgeError
from dataward.purge.mysql import MySQLSession
from tests.databases import DatabaseServer, DatabaseServers, free_port
from tests.expiry import is_safely_expired
from tests.purge.support import (
    assert_exact_statutory_copy,
    run_cli,
    run_purge,
    server_time,
    store_doc,
    unique,
)
from tests.purge.tables import count, create_table, insert_rows, read_rows
from tests.subjects.support import insert

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
RETENTION = parse_duration("1mo")
STATUTE = parse_duration("5y")
FAULTS = ["after-select", "after-archive-commit", "after-delete"]


def _setup(
    servers: DatabaseServers, engine: str, *, expired: int = 45, ancient: int = 5, fresh: int = 7
) -> tuple[DatabaseServer, DatabaseServer, str]:
    """Live rows: `expired` (within the statute), `ancient` (past it), `fresh`, 2 NULLs."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("contracts")
    create_table(live, table, KIND[engine])
    create_table(archive, table, KIND[engine])
    now = datetime.now(UTC)
    rows = [(i, now - timedelta(days=400, seconds=i)) for i in range(1, expired + 1)]
    rows += [(1000 + i, now - timedelta(days=6 * 366 + i)) for i in range(ancient)]
    rows += [(2000 + i, now + timedelta(days=1)) for i in range(fresh)]
    rows += [(3000, None), (3001, None)]
    insert_rows(live, table, KIND[engine], rows)
    return live, archive, table


def _check_lossless(
    live: DatabaseServer,
    archive: DatabaseServer,
    table: str,
    before: dict[int, tuple[datetime | None, str]],
    archive_now: datetime | None,
) -> None:
    """Every row is in live or (unless past the statute) in the archive, with its content."""
    now_live = read_rows(live, table)
    now_archive = read_rows(archive, table)
    for i, row in before.items():
        if i in now_live:
            assert now_live[i] == row
            continue
        ts = row[0]
        assert ts is not None, "a row without trigger was deleted"
        if i in now_archive:
            assert now_archive[i] == row, f"archived copy of {i} differs"
        else:
            assert archive_now is not None and is_safely_expired(ts, STATUTE, archive_now), (
                f"row {i} is gone from live and not in the archive"
            )


@pytest.mark.parametrize("engine", ENGINES)
def test_statutory_rows_move_to_the_archive_and_expire_there(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive, table = _setup(servers, engine)
    # An archived row from long ago, past the statute, and one still within it.
    insert_rows(
        archive, table, KIND[engine],
        [(9000, datetime(2015, 5, 1, tzinfo=UTC)), (9001, datetime.now(UTC) - timedelta(days=900))],
    )  # fmt: skip
    before = read_rows(live, table)
    archived_before = read_rows(archive, table)

    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=10), live, archive
    )

    assert result.result == "Succeeded", result.message
    now = server_time(result)
    moved = {
        i
        for i, (ts, _) in before.items()
        if ts is not None and is_safely_expired(ts, RETENTION, now)
    }
    assert set(before) - set(read_rows(live, table)) == moved
    assert result.rows_deleted == len(moved) == 50
    assert result.rows_archived == 50
    expected_archive = {**archived_before, **{i: before[i] for i in moved}}
    assert result.archive_cutoff is not None
    gone = {
        i for i, (ts, _) in expected_archive.items() if ts and is_safely_expired(ts, STATUTE, now)
    }
    assert gone == {9000, 1000, 1001, 1002, 1003, 1004}
    assert read_rows(archive, table) == {i: r for i, r in expected_archive.items() if i not in gone}
    assert result.tables[0].archive_rows_destroyed == len(gone)
    _check_lossless(live, archive, table, before, now)

    again = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert (again.rows_deleted, again.rows_archived, again.tables[0].archive_rows_destroyed) == (
        0,
        0,
        0,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_copy_already_in_the_archive_is_not_duplicated(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive, table = _setup(servers, engine, expired=10, ancient=0, fresh=0)
    before = read_rows(live, table)
    # As if a run crashed after committing the copy: the archive already holds rows 1-4.
    insert_rows(archive, table, KIND[engine], [(i, before[i][0]) for i in range(1, 5)])
    archive.execute(
        *(f"UPDATE {table} SET payload = 'row-{i}' WHERE id = {i}" for i in range(1, 5))
    )
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=3), live, archive
    )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == 10 and result.rows_archived == 6
    assert count(archive, table) == 10


@pytest.mark.parametrize("engine", ENGINES)
def test_another_row_under_the_key_in_the_archive_is_no_copy(
    servers: DatabaseServers, engine: str
) -> None:
    """A key reused (an AUTO_INCREMENT value handed out again, an order number or e-mail
    given to someone else, a table restored from a backup): the archive already holds a
    DIFFERENT row under a live row's key. That row is no crashed run's copy: the live row
    must not be deleted uncopied; the table stops, nothing of the batch leaves live, the
    archive is unchanged and the message quotes no value."""
    live, archive, table = _setup(servers, engine, expired=10, ancient=0, fresh=0)
    before = read_rows(live, table)
    # Key 4: someone else's row (another instant, another payload). Key 7: the same instant,
    # a payload differing only in letter case (a case-insensitive collation must not hide it).
    # Key 2: a crashed run's own copy, identical.
    insert_rows(
        archive, table, KIND[engine],
        [(4, datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)), (7, before[7][0]), (2, before[2][0])],
    )  # fmt: skip
    archive.execute(
        f"UPDATE {table} SET payload = 'someone-else' WHERE id = 4",
        f"UPDATE {table} SET payload = 'ROW-7' WHERE id = 7",
    )
    archived_before = read_rows(archive, table)
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=100), live, archive
    )
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert read_rows(live, table) == before, "a live row left without its copy"
    assert read_rows(archive, table) == archived_before
    assert result.rows_deleted == 0
    shown = result.to_json()
    for value in ("someone", "ROW-7", "row-"):
        assert value not in shown


@pytest.mark.parametrize("key", [False, True])
def test_a_row_a_blind_collation_calls_equal_in_a_postgres_archive_is_no_copy(
    servers: DatabaseServers, key: bool
) -> None:
    """PostgreSQL archive whose column has a case- and accent-blind (nondeterministic) ICU
    collation: a row there that differs from the live row in case alone is still another
    row (the key: another person's e-mail under a case-blind unique key; a column: the value
    the copy would lose). Compared in that collation it was "equal", taken as the copy, and
    the live row deleted without one."""
    live, archive = servers.pair("postgresql")
    archive.execute(
        "CREATE COLLATION IF NOT EXISTS dw_blind "
        "(provider = icu, locale = 'und-u-ks-level1', deterministic = false)"
    )
    table = unique("blind")
    blind = "text COLLATE dw_blind"
    for server, kind in ((live, "text"), (archive, blind)):
        if key:
            server.execute(
                f"CREATE TABLE {table} (id {kind} PRIMARY KEY, ts timestamptz, payload text)",
                f"ALTER TABLE {table} OWNER TO purger",
            )
        else:
            server.execute(
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, ts timestamptz, payload {kind})",
                f"ALTER TABLE {table} OWNER TO purger",
            )
    old = datetime.now(UTC) - timedelta(days=400)
    ids = ["ann@x.org", "bob@x.org"] if key else [1, 2]
    statement = f"INSERT INTO {table} (id, ts, payload) VALUES (%s, %s, %s)"
    insert(live, statement, [(i, old, f"row-{i}") for i in ids])
    # Under the first key: the live row's content in other letters (other key or payload).
    insert(archive, statement, [("ANN@X.ORG", old, "row-ann@x.org") if key else (1, old, "ROW-1")])
    live_before = live.query(f"SELECT id::text, ts, payload FROM {table} ORDER BY 1")
    archive_before = archive.query(f"SELECT id::text, ts, payload FROM {table} ORDER BY 1")
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert live.query(f"SELECT id::text, ts, payload FROM {table} ORDER BY 1") == live_before
    assert archive.query(f"SELECT id::text, ts, payload FROM {table} ORDER BY 1") == archive_before


@pytest.mark.parametrize("engine", ENGINES)
def test_a_crashed_runs_copy_of_a_key_reused_later_is_no_copy_either(
    servers: DatabaseServers, engine: str
) -> None:
    """Batches before the conflicting one go through; the conflict stops the table at its
    batch, and a re-run stops there again (no row lost on either run)."""
    live, archive, table = _setup(servers, engine, expired=10, ancient=0, fresh=0)
    before = read_rows(live, table)
    insert_rows(archive, table, KIND[engine], [(3, before[3][0])])
    archive.execute(f"UPDATE {table} SET payload = 'another person' WHERE id = 3")
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=2)
    for _ in range(2):
        result = run_purge(doc, live, archive)
        assert result.result == "Failed" and result.reason == "ArchiveKeyConflict"
        now_live = read_rows(live, table)
        assert 3 in now_live and now_live[3] == before[3]
        archived = read_rows(archive, table)
        assert archived[3][1] == "another person"
        for i in set(before) - set(now_live):
            assert archived[i] == before[i], f"row {i} deleted without its copy"


def test_another_row_under_the_key_in_a_postgres_archive_of_mariadb_is_no_copy(
    servers: DatabaseServers,
) -> None:
    """MariaDB live, PostgreSQL archive: the copy goes row by row and PostgreSQL's INSERT
    leaves a present key out without an error (ON CONFLICT DO NOTHING), so no duplicate key
    announces the row there: it must still be compared."""
    live, archive = servers.mysql_live, servers.pg_archive
    table = unique("mixed")
    create_table(live, table, "datetime6")
    create_table(archive, table, "timestamptz")
    now = datetime.now(UTC)
    rows = [(i, now - timedelta(days=400, seconds=i)) for i in range(1, 6)]
    insert_rows(live, table, "datetime6", rows)
    before = read_rows(live, table)
    insert_rows(archive, table, "timestamptz", [(2, before[2][0]), (4, before[4][0])])
    archive.execute(f"UPDATE {table} SET payload = 'someone-else' WHERE id = 4")
    archived_before = read_rows(archive, table)
    doc = store_doc(live, table, category="contracts", archive=archive)
    result = run_purge(doc, live, archive)
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert read_rows(live, table) == before
    assert read_rows(archive, table) == archived_before
    assert "someone" not in result.to_json()
    # The crashed run's own copy alone is taken as the copy.
    archive.execute(f"UPDATE {table} SET payload = 'row-4' WHERE id = 4")
    again = run_purge(doc, live, archive)
    assert again.result == "Succeeded", again.message
    assert read_rows(live, table) == {}
    assert read_rows(archive, table) == before


@pytest.mark.parametrize("engine", ENGINES)
def test_unreachable_archive_leaves_live_untouched(servers: DatabaseServers, engine: str) -> None:
    live, archive, table = _setup(servers, engine, expired=5)
    before = read_rows(live, table)
    port = free_port()
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, archive_port=port),
        live, archive, archive_port=port,
    )  # fmt: skip
    assert result.result == "Failed" and result.reason == "ArchiveUnavailable"
    assert read_rows(live, table) == before


@pytest.mark.parametrize("engine", ENGINES)
def test_read_only_archive_leaves_live_untouched(servers: DatabaseServers, engine: str) -> None:
    live, archive, table = _setup(servers, engine, expired=5)
    before = read_rows(live, table)
    archive.set_read_only(True)
    try:
        result = run_purge(
            store_doc(live, table, category="contracts", archive=archive), live, archive
        )
    finally:
        archive.set_read_only(False)
    assert result.result == "Failed" and result.reason == "ArchiveReadOnly", result.message
    assert read_rows(live, table) == before
    assert count(archive, table) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_archive_table_without_unique_key_or_columns_is_refused(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("contracts")
    create_table(live, table, KIND[engine])
    create_table(archive, table, KIND[engine], primary_key=False)
    insert_rows(live, table, KIND[engine], [(1, datetime(2024, 1, 1, tzinfo=UTC))])
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert result.reason == "ArchiveTableInvalid" and "unique key" in result.message
    archive.execute(f"DROP TABLE {table}")
    create_table(archive, table, KIND[engine])
    archive.execute(f"ALTER TABLE {table} DROP COLUMN payload")
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert result.reason == "ArchiveTableInvalid" and "payload" in result.message
    assert count(live, table) == 1


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("engine", ENGINES)
def test_crash_at_each_step_loses_and_duplicates_nothing(
    servers: DatabaseServers, engine: str, fault: str, tmp_path: Path
) -> None:
    live, archive, table = _setup(servers, engine, expired=35, ancient=3, fresh=4)
    before = read_rows(live, table)
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=10)

    crashed = run_cli(tmp_path, doc, fault=f"{fault}:2")
    assert crashed.returncode == 137, crashed.stderr
    _check_lossless(live, archive, table, before, None)
    assert count(archive, table) == len(set(read_rows(archive, table)))

    rerun = run_cli(tmp_path, doc)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    result = rerun.result
    assert result["result"] == "Succeeded"
    now = datetime.fromisoformat(result["serverTime"].replace("Z", "+00:00"))
    _check_lossless(live, archive, table, before, now)
    remaining = read_rows(live, table)
    assert all(
        ts is None or not is_safely_expired(ts, RETENTION, now) for ts, _ in remaining.values()
    ), "expired rows remain after the re-run"
    assert len(remaining) == 4 + 2
    assert set(read_rows(archive, table)) == set(range(1, 36))
    assert rerun.termination == rerun.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("fault", ["after-select", "after-delete"])
@pytest.mark.parametrize("engine", ENGINES)
def test_crash_without_archive_then_rerun_finishes(
    servers: DatabaseServers, engine: str, fault: str, tmp_path: Path
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("crash")
    create_table(live, table, KIND[engine])
    insert_rows(
        live,
        table,
        KIND[engine],
        [(i, datetime(2020, 1, 1, tzinfo=UTC)) for i in range(30)]
        + [(99, datetime.now(UTC) + timedelta(days=3))],
    )
    doc = store_doc(live, table, batchSize=10)
    crashed = run_cli(tmp_path, doc, fault=f"{fault}:2")
    assert crashed.returncode == 137
    assert count(live, table) == (21 if fault == "after-select" else 11)
    rerun = run_cli(tmp_path, doc)
    assert rerun.returncode == 0 and rerun.result["rowsDeleted"] == count(live, table) * 0 + (
        20 if fault == "after-select" else 10
    )
    assert set(read_rows(live, table)) == {99}


def test_archive_copy_is_exact_for_awkward_postgres_types(servers: DatabaseServers) -> None:
    """The PostgreSQL-to-PostgreSQL copy travels as COPY text (as JSON for a crowded
    timestamp or after a duplicate key): every type must come back equal.

    Known limit of the JSON path only: a json/jsonb value that is JSON `null` arrives as SQL
    NULL (json_populate_recordset's rule).
    """
    live, archive, table = _awkward_postgres(servers)
    rows = f"SELECT t::text FROM {table} AS t ORDER BY id, region"
    assert_exact_statutory_copy(live, archive, table, rows, moved=3)


def _awkward_postgres(
    servers: DatabaseServers, json_null: bool = False
) -> tuple[DatabaseServer, DatabaseServer, str]:
    live, archive = servers.pair("postgresql")
    table = unique("awkward")
    ddl = (
        f"CREATE TABLE {table} (id bigint, region text, ts timestamp(3), amount numeric(30,10), "
        "ratio double precision, blob bytea, doc jsonb, tags text[], day date, note varchar(40), "
        "PRIMARY KEY (id, region))"
    )
    for server in (live, archive):
        server.execute(ddl, f"ALTER TABLE {table} OWNER TO purger")
    old = "now() - interval '400 days'"
    live.execute(
        f"INSERT INTO {table} VALUES "
        f"(1, 'eu', {old} - interval '0.123 seconds', 12345678901234567890.0123456789, 0.1, "
        "'\\x00ff27'::bytea, '{\"a\": [1, \"x\\\"y\"]}', ARRAY['a,b', NULL, 'c\"d'], "
        "'2020-02-29', E'quote '' back\\\\slash \\u00e9 \\t tab'), "
        f"(1, 'us', {old}, NULL, 'NaN', NULL, '\"null\"', '{{}}', NULL, NULL), "
        f"(2, 'eu', {old} - interval '1 day', -0.0000000001, '-Infinity', '', '[]', "
        "ARRAY[]::text[], '1999-12-31', '')"
        + (f", (3, 'eu', {old}, 0, 0, NULL, 'null', NULL, NULL, NULL)" if json_null else "")
    )
    return live, archive, table


@pytest.mark.parametrize("engine", ENGINES)
def test_a_crashed_runs_copy_of_awkward_values_is_taken_as_the_copy(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """Killed after the archive committed, before live did: the re-run must see each row
    the archive holds as that row's copy (no false ArchiveKeyConflict), whatever the values,
    and move the batch without duplicating or losing a row. PostgreSQL: the first run's
    copy went by COPY, the re-run compares it against the JSON path's rows (a JSON `null`
    included, which that path reads as SQL NULL); MariaDB: as literals, then as rows."""
    if engine == "postgresql":
        live, archive, table = _awkward_postgres(servers, json_null=True)
        query = f"SELECT t::text FROM {table} AS t ORDER BY id, region"
        before: Any = live.query(query)
    else:
        live, archive, table = _awkward_mariadb(servers, AWKWARD_ROWS)
        before = _exact_rows(live, table)
    doc = store_doc(
        live, table, category="contracts", archive=archive, key_columns=("id", "region")
    )
    crashed = run_cli(tmp_path, doc, fault="after-archive-commit:1")
    assert crashed.returncode == 137, crashed.stderr
    assert count(live, table) == count(archive, table) == len(before)
    rerun = run_cli(tmp_path, doc)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.result["result"] == "Succeeded"
    assert count(live, table) == 0
    if engine == "postgresql":
        assert archive.query(query) == before
    else:
        assert _exact_rows(archive, table) == before


def test_an_archive_that_silently_drops_rows_fails_verification(servers: DatabaseServers) -> None:
    """A BEFORE INSERT trigger that swallows some rows: the copy commits, but fewer rows than
    the batch; nothing of that batch may leave the live database."""
    live, archive, table = _setup(servers, "postgresql", expired=10, ancient=0, fresh=0)
    archive.execute(
        f"CREATE FUNCTION drop_{table}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN IF NEW.id = 7 THEN RETURN NULL; END IF; RETURN NEW; END $$",
        f"CREATE TRIGGER swallow BEFORE INSERT ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION drop_{table}()",
    )
    before = read_rows(live, table)
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=100), live, archive
    )
    assert result.result == "Failed" and result.reason == "ArchiveVerifyFailed", result.message
    assert read_rows(live, table) == before


# MariaDB: every column type the purge copies, with the values most likely to be mangled on
# the way (the statutory copy travels as SQL literals the live server writes).
AWKWARD_MARIADB = (
    "id BIGINT, region VARCHAR(8), ts DATETIME(6), amount DECIMAL(65,30), ratio DOUBLE, "
    "single FLOAT, big BIGINT UNSIGNED, small TINYINT, yr YEAR, bits BIT(10), "
    "blob_ LONGBLOB, vb VARBINARY(16), doc JSON, day DATE, span TIME(3), "
    "stamp TIMESTAMP(6) NULL DEFAULT NULL, note VARCHAR(200), latin TEXT CHARACTER SET latin1, "
    "bin_text VARCHAR(40) COLLATE utf8mb4_bin, kind ENUM('a', 'b c', 'd''e'), "
    "tags SET('x', 'y z'), "
    "spot POINT NULL, ip INET6, uid UUID, PRIMARY KEY (id, region), INDEX (ts)"
)
AWKWARD_ROWS = [
    # Every value at an edge: exact decimals past a double's digits, a FLOAT whose own text
    # (6 digits) is not its value, backslashes, quotes, NUL, Ctrl-Z, %, the bytes of a
    # separator, utf8mb4 beyond the BMP, Latin-1, bytes that are no UTF-8.
    "(1, 'eu', {old} - INTERVAL 0.123456 SECOND, "
    "-12345678901234567890123456789012345.123456789012345678901234567891, "
    "0.30000000000000004, 1.0000001, 18446744073709551615, -128, 1901, b'1010101010', "
    "X'00FF27225C0A0D1A2C29', X'', '{{\"a\": [1, \"x\\\\\"y\"], \"b\": null}}', '2020-02-29', "
    "'-838:59:59.999', '2038-01-19 03:14:07.999999', "
    "CONCAT('quote '' back\\\\slash \\\\0 100% ),( ', CHAR(0), ' ', CHAR(26), ' \\U+1F600 ', "
    "_utf8mb4 X'F09F9880', ' \\t tab'), 'caf\\xe9 \\\\ '' x', 'Ab''\\\\', 'd''e', 'x,y z', "
    "POINT(1.5, -2.25), '::ffff:1.2.3.4', '123e4567-e89b-12d3-a456-426655440000')",
    "(1, 'us', {old}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'null', NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(2, 'e''u', {old} - INTERVAL 1 DAY, 0, 5e-324, 16777217, 0, 127, 2155, b'0', "
    "X'5C30', X'00', '[]', '1000-01-01', '00:00:00', '1970-01-01 09:00:01', '', '', '', "
    "'a', '', POINT(0, 0), '::', '00000000-0000-0000-0000-000000000000')",
    "(3, '\\\\', {old} - INTERVAL 2 DAY, 0.000000000000000000000000000001, "
    "-1.7976931348623157e308, "
    "3.4e38, 1, 0, 2000, b'1111111111', REPEAT(X'00', 300), X'FFFFFFFF', "
    "'{{\"k\": \"\\\\u0000\"}}', '9999-12-31', '838:59:59', '2000-02-29 12:00:00', "
    "REPEAT('\\\\''', 50), 'ÿ', ' trailing ', 'b c', 'x', NULL, NULL, NULL)",
]


def _exact_rows(server: DatabaseServer, table: str) -> list[tuple[object, ...]]:
    """Every column as text that differs whenever the stored value differs (floats as their
    double, TIMESTAMPs as the instant: the live and archive servers run in other zones)."""
    return server.query(
        "SELECT id, region, HEX(ts), CONCAT(amount), HEX(CONCAT(ratio)), "
        "CONCAT(CAST(single AS DOUBLE)), CONCAT(big), small, yr, bits + 0, HEX(blob_), "
        "HEX(vb), HEX(doc), day, CONCAT(span), CONCAT(UNIX_TIMESTAMP(stamp)), HEX(note), "
        "HEX(CONVERT(latin USING utf8mb4)), HEX(bin_text), kind, tags, HEX(ST_AsWKB(spot)), "
        f"CONCAT(ip), CONCAT(uid) FROM {table} ORDER BY id, region"
    )


def _awkward_mariadb(
    servers: DatabaseServers, rows: list[str]
) -> tuple[DatabaseServer, DatabaseServer, str]:
    live, archive = servers.pair("mysql")
    table = unique("awkward")
    for server in (live, archive):
        server.execute(f"CREATE TABLE {table} ({AWKWARD_MARIADB}) ENGINE=InnoDB")
    old = "UTC_TIMESTAMP(6) - INTERVAL 400 DAY"
    live.execute(f"INSERT INTO {table} VALUES " + ", ".join(r.format(old=old) for r in rows))
    return live, archive, table


def _archive_awkward(live: DatabaseServer, archive: DatabaseServer, table: str, rows: int) -> None:
    before = _exact_rows(live, table)
    assert len(before) == rows
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, key_columns=("id", "region")),
        live,
        archive,
    )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == rows
    assert _exact_rows(archive, table) == before
    assert count(live, table) == 0


def _spy(monkeypatch: pytest.MonkeyPatch, cls: Any, name: str) -> list[tuple[Any, Any]]:
    """Record (first argument, result) of every call of `cls.name` (and of the subclasses'
    own `name`: MySQLKeyBatches overrides MySQLBatches'); the real method runs."""
    calls: list[tuple[Any, Any]] = []
    for owner in (cls, *cls.__subclasses__()):
        if name not in vars(owner):
            continue
        real = getattr(owner, name)

        def spy(self: Any, *args: Any, real: Any = real) -> Any:
            result = real(self, *args)
            calls.append((args[0] if args else None, result))
            return result

        monkeypatch.setattr(owner, name, spy)
    return calls


def test_archive_copy_is_exact_for_awkward_mariadb_types(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MariaDB to MariaDB: every supported column type comes back equal in the archive,
    NULLs, empty values and the extremes of each type included, copied as literals."""
    taken = _spy(monkeypatch, MySQLBatches, "take_literals")
    live, archive, table = _awkward_mariadb(servers, AWKWARD_ROWS)
    # The values went in as meant (else the comparison below proves little).
    (row,) = live.query(
        f"SELECT HEX(blob_), CAST(single AS DOUBLE), LOCATE(CHAR(0), note), stamp IS NULL "
        f"FROM {table} WHERE id = 1 AND region = 'eu'"
    )
    assert row[0] == "00FF27225C0A0D1A2C29" and row[1] != 1.0 and row[2] > 0 and not row[3]
    _archive_awkward(live, archive, table, len(AWKWARD_ROWS))
    assert taken and all(result is not None for _, result in taken), "not copied as literals"


@pytest.mark.parametrize("small", ["live", "archive"])
def test_mariadb_batches_beyond_a_packet_still_copy_every_row(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch, small: str
) -> None:
    """A batch's literals longer than the server's max_allowed_packet: a live server that
    cannot send them has the batch copied through PyMySQL instead; an archive that cannot
    take them in one INSERT gets several. Either way every row arrives, exactly."""
    taken = _spy(monkeypatch, MySQLBatches, "take_literals")
    inserts = _spy(monkeypatch, MySQLSession, "execute_bytes")
    live, archive = servers.pair("mysql")
    table = unique("packets")
    for server in (live, archive):
        server.execute(
            f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, ts DATETIME(6), "
            "payload VARCHAR(200), INDEX (ts)) ENGINE=InnoDB"
        )
    live.execute(
        f"INSERT INTO {table} SELECT seq, UTC_TIMESTAMP(6) - INTERVAL 400 DAY - INTERVAL seq "
        f"SECOND, CONCAT(seq, REPEAT('\\\\''%\\\\0', 38)) FROM seq_1_to_1000"
    )
    before = live.query(f"SELECT id, HEX(ts), HEX(payload) FROM {table} ORDER BY id")
    server = live if small == "live" else archive
    server.execute("SET GLOBAL max_allowed_packet = 65536")
    try:
        result = run_purge(
            store_doc(live, table, category="contracts", archive=archive, batchSize=1000),
            live,
            archive,
        )
    finally:
        server.execute("SET GLOBAL max_allowed_packet = 16777216")
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 1000
    assert archive.query(f"SELECT id, HEX(ts), HEX(payload) FROM {table} ORDER BY id") == before
    assert count(live, table) == 0
    batches = [r for _, r in taken]
    if small == "live":
        assert None in batches, "no batch was too large for the live server's packets"
    else:
        assert None not in batches
        statements = [sql for sql, _ in inserts if sql.startswith(b"INSERT")]
        assert len(statements) > len(batches), "no batch needed more than one INSERT"
        assert max(len(sql) for sql in statements) <= 65536


def test_mariadb_row_entering_a_locked_batch_is_archived_not_lost(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An application commits an expired row into the range of a batch after the batch
    locked its rows: a DELETE of the batch's range would take the newcomer too, which has
    no copy. The batch must delete only the rows it locked and copied; the newcomer stays
    in live until a run archives it before deleting it."""
    live, archive, table = _setup(servers, "mysql", expired=50, ancient=0, fresh=3)
    newcomer = datetime.now(UTC) - timedelta(days=400, seconds=25.5)  # between rows 25 and 26
    injected: list[int] = []
    for cls in (MySQLBatches, MySQLKeyBatches):

        def drop_after_a_newcomer(
            self: MySQLBatches, taken: Literals, real: Any = cls.drop_literals
        ) -> int:
            if not injected:
                insert_rows(live, table, KIND["mysql"], [(5000, newcomer)])
                injected.append(5000)
            return int(real(self, taken))

        monkeypatch.setattr(cls, "drop_literals", drop_after_a_newcomer)
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=100)
    result = run_purge(doc, live, archive)
    assert injected, "the batch never reached its DELETE"
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 50
    assert set(read_rows(archive, table)) == set(range(1, 51))
    assert set(read_rows(live, table)) == {5000, 2000, 2001, 2002, 3000, 3001}
    again = run_purge(doc, live, archive)
    assert again.rows_deleted == again.rows_archived == 1
    assert set(read_rows(archive, table)) == set(range(1, 51)) | {5000}
    assert set(read_rows(live, table)) == {2000, 2001, 2002, 3000, 3001}


def test_mariadb_row_entering_a_swept_key_range_is_archived_not_lost(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key-order sweep (the expired rows are dense in their key span) deletes a batch by
    its key range again after locking and copying its rows: an expired row an application
    commits into that range meanwhile must not be deleted without a copy. The count gives
    it away; the batch is redone with the newcomer copied too."""
    live, archive = servers.pair("mysql")
    table = unique("sweep")
    create_table(live, table, KIND["mysql"])
    create_table(archive, table, KIND["mysql"])
    now = datetime.now(UTC)
    rows = [(i, now - timedelta(days=400, seconds=i)) for i in range(1, 100, 2)]
    rows += [(1000 + i, now + timedelta(days=1)) for i in range(50)]
    insert_rows(live, table, KIND["mysql"], rows)
    injected: list[int] = []
    real = MySQLKeyBatches.drop_literals

    def drop_after_a_newcomer(self: MySQLKeyBatches, taken: Literals) -> int:
        if not injected:
            insert_rows(live, table, KIND["mysql"], [(40, now - timedelta(days=400))])
            injected.append(40)
        return real(self, taken)

    monkeypatch.setattr(MySQLKeyBatches, "drop_literals", drop_after_a_newcomer)
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=100)
    result = run_purge(doc, live, archive)
    assert injected, "the run did not sweep the key range"
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 51
    assert set(read_rows(archive, table)) == set(range(1, 100, 2)) | {40}
    assert set(read_rows(live, table)) == set(range(1000, 1050))


@pytest.mark.parametrize("archive_engine", ENGINES)
def test_identical_live_rows_sharing_a_key_are_not_deleted_for_one_copy(
    servers: DatabaseServers, archive_engine: str
) -> None:
    """A PostgreSQL live table needs no unique key: two rows equal in every column share key
    7. The archive's unique key keeps one row, which equals each of them: taken as the copy
    of both, two rows left live for one archived (two identical entries of a ledger are two
    entries). Each live row needs a row of its own in the archive: the table stops."""
    live = servers.pg_live
    archive = servers.pg_archive if archive_engine == "postgresql" else servers.mysql_archive
    table = unique("twins")
    create_table(live, table, "timestamptz", primary_key=False)
    create_table(archive, table, KIND[archive_engine])
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, "timestamptz", [(6, old), (7, old), (7, old), (8, old)])
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert count(live, table) == 4 - result.rows_deleted
    assert sorted(i for (i,) in live.query(f"SELECT id FROM {table}") if i == 7) == [7, 7], (
        "a row of the pair deleted while the archive holds one copy for both"
    )
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert "row-" not in result.to_json()


def _float_table(live: DatabaseServer, archive: DatabaseServer) -> str:
    """`(id, ts, payload, single)`: `single` a single-precision float on each engine."""
    table = unique("single")
    for server in (live, archive):
        create_table(server, table, KIND[server.engine])
        kind = "real" if server.engine == "postgresql" else "FLOAT"
        server.execute(f"ALTER TABLE {table} ADD COLUMN single {kind}")
    return table


FLOAT_PAIRS = ["mysql", "mysql-to-postgresql", "postgresql-to-mysql"]


def _float_pair(servers: DatabaseServers, pair: str) -> tuple[DatabaseServer, DatabaseServer]:
    if pair == "mysql-to-postgresql":
        return servers.mysql_live, servers.pg_archive
    if pair == "postgresql-to-mysql":
        return servers.pg_live, servers.mysql_archive
    return servers.pair("mysql")


def _exact_floats(server: DatabaseServer, table: str) -> list[tuple[int, float]]:
    """`single` as the double its single-precision value is (MariaDB's own text of a FLOAT
    keeps 6 digits: 1.0000001 reads back as 1)."""
    cast = "single::float8" if server.engine == "postgresql" else "CAST(single AS DOUBLE)"
    return server.query(f"SELECT id, {cast} FROM {table} ORDER BY id")


@pytest.mark.parametrize("pair", ["mysql", "postgresql-to-mysql"])
def test_another_float_under_the_key_in_a_mariadb_archive_is_no_copy(
    servers: DatabaseServers, pair: str
) -> None:
    """The archive holds, under a live row's key, the row with 1.0000001 in a FLOAT column
    where live holds 1. MariaDB writes a FLOAT with 6 digits, so both read as 1.0 and the
    row was taken as the live row's copy: the live row deleted, its value never archived."""
    live, archive = _float_pair(servers, pair)
    table = _float_table(live, archive)
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, KIND[live.engine], [(1, old), (2, old)])
    insert_rows(archive, table, KIND[archive.engine], [(1, old)])
    live.execute(f"UPDATE {table} SET single = 1")
    archive.execute(f"UPDATE {table} SET single = 1.0000001")
    before, archived = _exact_floats(live, table), _exact_floats(archive, table)
    assert before[0][1] != archived[0][1]
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert _exact_floats(live, table) == before, "a live row deleted for another row's copy"
    assert _exact_floats(archive, table) == archived
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message


@pytest.mark.parametrize("pair", FLOAT_PAIRS)
def test_a_crashed_runs_copy_of_a_float_is_taken_and_the_rest_copied_exactly(
    servers: DatabaseServers, pair: str
) -> None:
    """After a crash between the archive's commit and live's, the re-run copies the rest
    row by row: a FLOAT read through MariaDB's own text lost its digits (1.0000001 archived
    as 1) while the live row was deleted. The crashed run's copy is taken, the rest copied
    with every bit."""
    live, archive = _float_pair(servers, pair)
    table = _float_table(live, archive)
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, KIND[live.engine], [(1, old), (2, old), (3, old)])
    live.execute(f"UPDATE {table} SET single = 1.0000001 + id * 0.0000002")
    before = _exact_floats(live, table)
    doc = store_doc(live, table, category="contracts", archive=archive)

    def crash(point: str) -> None:
        if point == "after-archive-commit":
            raise PurgeError("Internal", "a crash between the two commits")

    first = run_purge(doc, live, archive, fault=crash)
    assert first.reason == "Internal" and count(archive, table) == 3 == count(live, table)
    archive.execute(f"DELETE FROM {table} WHERE id > 1")  # the crashed copy held one row
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert count(live, table) == 0
    assert _exact_floats(archive, table) == before


# Mixed engines: (live engine, live type, archive type, the live value, another value), each
# a pair whose two drivers hand back one value in two forms (a uuid object and its text, a
# time and a duration, a Decimal and a float, a date and a midnight).
MIXED_VALUES = [
    ("postgresql", "uuid", "CHAR(36)", "'123e4567-e89b-12d3-a456-426655440000'",
     "'123e4567-e89b-12d3-a456-426655440001'"),
    ("postgresql", "inet", "VARCHAR(50)", "'1.2.3.4'", "'1.2.3.5'"),
    ("postgresql", "time", "TIME(6)", "'01:02:03.5'", "'01:02:04'"),
    ("postgresql", "numeric", "DOUBLE", "0.1", "0.2"),
    ("mysql", "UUID", "uuid", "'123e4567-e89b-12d3-a456-426655440000'",
     "'123e4567-e89b-12d3-a456-426655440001'"),
    ("mysql", "TIME(6)", "time", "'01:02:03.5'", "'01:02:04'"),
    ("mysql", "DECIMAL(10,2)", "double precision", "1.10", "1.2"),
    ("mysql", "DATE", "timestamp", "'2020-02-29'", "'2020-02-29 00:00:01'"),
]  # fmt: skip


def _mixed(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str, prefix: str
) -> tuple[DatabaseServer, DatabaseServer, str, datetime]:
    """A live table on `engine` and its archive on the other engine, each with a column `v`
    of the given type; and a trigger instant past every test category's retention."""
    live, archive = (
        (servers.pg_live, servers.mysql_archive)
        if engine == "postgresql"
        else (servers.mysql_live, servers.pg_archive)
    )
    table = unique(prefix)
    for server, kind in ((live, live_type), (archive, archive_type)):
        create_table(server, table, KIND[server.engine])
        server.execute(f"ALTER TABLE {table} ADD COLUMN v {kind}")
    return live, archive, table, datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)


@pytest.mark.parametrize(("engine", "live_type", "archive_type", "value", "other"), MIXED_VALUES)
def test_a_crashed_runs_copy_into_the_other_engine_is_taken_and_another_value_is_not(
    servers: DatabaseServers,
    engine: str,
    live_type: str,
    archive_type: str,
    value: str,
    other: str,
) -> None:
    """A run killed between the archive's commit and live's, into an archive of the other
    engine: the re-run compared the two drivers' forms of one value (a uuid and its text, a
    time and a duration, a Decimal and a float) as different, called the crashed run's own
    copy another row and stopped for good (ArchiveKeyConflict, nothing moving). The copy is
    taken now; a row holding another value under the key still stops the run."""
    live, archive, table, old = _mixed(servers, engine, live_type, archive_type, "mixed")
    insert_rows(live, table, KIND[live.engine], [(1, old), (2, old)])
    live.execute(f"UPDATE {table} SET v = {value}")
    doc = store_doc(live, table, category="contracts", archive=archive)

    def crash(point: str) -> None:
        if point == "after-archive-commit":
            raise PurgeError("Internal", "a crash between the two commits")

    assert run_purge(doc, live, archive, fault=crash).reason == "Internal"
    archive.execute(f"DELETE FROM {table} WHERE id = 2")  # the crashed copy held one row
    copied = archive.query(f"SELECT id, v FROM {table}")
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert count(live, table) == 0 and count(archive, table) == 2
    assert archive.query(f"SELECT id, v FROM {table} WHERE id = 1") == copied

    insert_rows(live, table, KIND[live.engine], [(3, old)])
    live.execute(f"UPDATE {table} SET v = {value} WHERE id = 3")
    archive.execute(f"UPDATE {table} SET id = 3, v = {other} WHERE id = 1")
    again = run_purge(doc, live, archive)
    assert again.result == "Failed" and again.reason == "ArchiveKeyConflict", again.message
    assert count(live, table) == 1


# (live engine, live float type, archive exact type): a live double beside an archived
# decimal the double rounds to but that no copy of the double stores (the copy writes the
# double's shortest digits, 1e16 -> 10000000000000000).
FLOAT_INTO_DECIMAL = [
    ("postgresql", "double precision", "DECIMAL(30,0)"),
    ("mysql", "DOUBLE", "numeric(30,0)"),
]


@pytest.mark.parametrize(("engine", "live_type", "archive_type"), FLOAT_INTO_DECIMAL)
def test_another_decimal_a_live_double_rounds_to_is_no_copy(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str
) -> None:
    """10000000000000001 in the archive under the key is not the copy of the live 1e16
    (copying it stores 10000000000000000), though float(10000000000000001) == 1e16: taken
    as the copy, the live row was deleted while the archive kept another row's value."""
    live, archive, table, old = _mixed(servers, engine, live_type, archive_type, "fdec")
    insert_rows(live, table, KIND[live.engine], [(1, old)])
    live.execute(f"UPDATE {table} SET v = 1e16")
    insert_rows(archive, table, KIND[archive.engine], [(1, old)])
    archive.execute(f"UPDATE {table} SET v = 10000000000000001")
    doc = store_doc(live, table, category="contracts", archive=archive)
    result = run_purge(doc, live, archive)
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert count(live, table) == 1


def test_a_mariadb_double_archived_into_a_postgresql_numeric_keeps_every_digit(
    servers: DatabaseServers,
) -> None:
    """The copy bound a MariaDB DOUBLE as a PostgreSQL float8, which the server casts to the
    archive's numeric with 15 digits: 1.2345678901234567 was archived as 1.23456789012346
    and the live row deleted. (PostgreSQL to PostgreSQL and into MariaDB keep all 17.)"""
    live, archive = servers.mysql_live, servers.pg_archive
    table = unique("dblnum")
    for server, kind in ((live, "DOUBLE"), (archive, "numeric")):
        create_table(server, table, KIND[server.engine])
        server.execute(f"ALTER TABLE {table} ADD COLUMN v {kind}")
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, KIND[live.engine], [(1, old), (2, old)])
    live.execute(f"UPDATE {table} SET v = 1.2345678901234567e0 WHERE id = 1")
    live.execute(f"UPDATE {table} SET v = -2.5e-300 WHERE id = 2")
    result = run_purge(store_doc(live, table, category="contracts", archive=archive), live, archive)
    assert result.result == "Succeeded", result.message
    held = dict(archive.query(f"SELECT id, v FROM {table}"))
    assert held == {1: Decimal("1.2345678901234567"), 2: Decimal("-2.5E-300")}


@pytest.mark.parametrize(
    ("engine", "archive_sql"),
    [
        ("postgresql", "date"),
        ("postgresql", "timestamptz(0)"),
        ("mysql", "DATE"),
        ("mysql", "DATETIME"),
    ],
)
def test_an_archive_trigger_that_cuts_the_live_one_down_is_refused_and_destroys_nothing(
    servers: DatabaseServers, engine: str, archive_sql: str
) -> None:
    """Without timeZone: a copy cut to its day (or whole seconds) would be destroyed up to a
    day (a second) before its statute ends. The run fails before reading any row: nothing
    leaves live, and the archive's copy of the statute's last day stays."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("cut")
    create_table(live, table, KIND[engine])
    create_table(archive, table, KIND[engine], ts_sql=archive_sql)
    now = datetime.now(UTC)
    insert_rows(live, table, KIND[engine], [(1, now - timedelta(days=400))])
    # A copy a minute inside its statute: as a date, the old code read it as midnight, past.
    kept = cutoff_for(now, STATUTE) + timedelta(minutes=1)
    insert_rows(archive, table, "date" if "date" in archive_sql.lower() else KIND[engine],
                [(9, kept)])  # fmt: skip
    doc = store_doc(live, table, category="contracts", archive=archive)

    result = run_purge(doc, live, archive)

    assert result.result == "Failed"
    assert result.reason == "ArchiveTableInvalid", result.message
    assert set(read_rows(live, table)) == {1}
    assert set(read_rows(archive, table)) == {9}
