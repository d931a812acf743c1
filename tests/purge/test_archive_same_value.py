"""A crashed run's copy in an archive of the other engine, compared by the archive column's
type: the copy taken when the archive holds what copying the live value stores (a CHAR's
padding, jsonb's spelling, a uuid's case aside), and no copy when the archive holds another
value the drivers read alike (an interval of months and one of days, -0.0 and 0.0). And a
copy the archive column would round is refused before any live row goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataward.purge.errors import PurgeError
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows

pytestmark = pytest.mark.db
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}


def _pair(servers: DatabaseServers, engine: str) -> tuple[DatabaseServer, DatabaseServer]:
    """Live on `engine`, its archive on the other engine."""
    if engine == "postgresql":
        return servers.pg_live, servers.mysql_archive
    return servers.mysql_live, servers.pg_archive


def _table(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str, value: str
) -> tuple[DatabaseServer, DatabaseServer, str, dict[str, object]]:
    """Live rows 1 and 2 with `v` = `value`, archive of the other engine, `v` of each type."""
    live, archive = _pair(servers, engine)
    table = unique("samev")
    for server, kind in ((live, live_type), (archive, archive_type)):
        create_table(server, table, KIND[server.engine])
        server.execute(f"ALTER TABLE {table} ADD COLUMN v {kind}")
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, KIND[live.engine], [(1, old), (2, old)])
    live.execute(f"UPDATE {table} SET v = {value}")
    return live, archive, table, store_doc(live, table, category="contracts", archive=archive)


def _crash(point: str) -> None:
    if point == "after-archive-commit":
        raise PurgeError("Internal", "a crash between the two commits")


def _crashed_once(
    live: DatabaseServer, archive: DatabaseServer, table: str, doc: dict[str, object]
) -> None:
    """A run killed between the archive's commit and live's; the copy kept row 1 alone."""
    assert run_purge(doc, live, archive, fault=_crash).reason == "Internal"
    assert count(live, table) == 2
    archive.execute(f"DELETE FROM {table} WHERE id = 2")


def _text(server: DatabaseServer, table: str) -> list[tuple[object, ...]]:
    """`v` as the server's own text of it, by id."""
    cast = "v::text" if server.engine == "postgresql" else "CAST(v AS CHAR)"
    return server.query(f"SELECT id, {cast} FROM {table} ORDER BY id")


# (live engine, live type, archive type, live value): the archive's copy reads back in
# another form than the live value, yet is what copying it stores in the archive's type.
SAME = [
    ("postgresql", "char(5)", "CHAR(5)", "'ab'"),  # PG pads to 'ab   ', MariaDB strips
    ("postgresql", "text", "CHAR(5)", "'ab '"),  # a CHAR keeps no trailing space
    ("mysql", "CHAR(5)", "char(5)", "'ab'"),  # MariaDB 'ab', PostgreSQL 'ab   '
    ("mysql", "VARCHAR(5)", "char(5)", "'ab'"),
    ("mysql", "JSON", "jsonb", """'{"b": 1,   "a": [1, 2.50, "x"], "b": 3}'"""),
    ("postgresql", "jsonb", "JSON", """'{"b": 1,   "a": [1, 2.50, "x"]}'"""),
    ("postgresql", "json", "LONGTEXT", """'{"b": 1,   "a": [1, 2.50, "x"]}'"""),
    ("mysql", "CHAR(36)", "uuid", "'123E4567-E89B-12D3-A456-426655440000'"),
    ("postgresql", "float8", "DOUBLE", "'-0'"),  # MariaDB's DOUBLE has no -0: stores 0
    ("mysql", "TIME(6)", "interval", "'-01:00:00'"),  # '-1 days +23:00:00'
]


@pytest.mark.parametrize(("engine", "live_type", "archive_type", "value"), SAME)
def test_a_crashed_runs_copy_read_back_in_another_form_is_taken(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str, value: str
) -> None:
    """The re-run compared the live value with the archive's as the drivers read them: a
    CHAR's padding, jsonb's order and spacing, a uuid's case made the crashed run's own copy
    "another row", and every later run stopped at ArchiveKeyConflict."""
    live, archive, table, doc = _table(servers, engine, live_type, archive_type, value)
    _crashed_once(live, archive, table, doc)
    copied = _text(archive, table)
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert count(live, table) == 0 and count(archive, table) == 2
    assert _text(archive, table)[:1] == copied


# (live engine, live type, archive type, live value, another value the archive holds under
# the key, which the drivers read as the live value's copy but is not what copying stores).
OTHER = [
    ("mysql", "TIME(6)", "interval", "'720:00:00'", "'1 mon'"),  # both 30 days to psycopg
    ("mysql", "TIME(6)", "interval", "'24:00:00'", "'24:00:00'"),  # '1 day' is the copy
    ("mysql", "DOUBLE", "float8", "0", "'-0'"),  # -0.0 == 0.0 in Python
    ("mysql", "JSON", "jsonb", "'[1.0]'", "'[1.00000000000000001]'"),  # one double
    ("mysql", "CHAR(5)", "char(5)", "'ab'", "'AB'"),
    ("mysql", "CHAR(36)", "uuid", "'123E4567-E89B-12D3-A456-426655440000'",
     "'123e4567-e89b-12d3-a456-426655440001'"),
]  # fmt: skip


@pytest.mark.parametrize(("engine", "live_type", "archive_type", "value", "other"), OTHER)
def test_another_value_the_drivers_read_alike_is_no_copy(
    servers: DatabaseServers,
    engine: str,
    live_type: str,
    archive_type: str,
    value: str,
    other: str,
) -> None:
    """Under the key, the archive holds a value that reads as the live one through the
    drivers (psycopg reads interval '1 mon' and '30 days' alike, Python calls -0.0 and 0.0
    equal) but is another stored value: taken as the copy, the live row was deleted while
    the archive kept something else."""
    live, archive, table, doc = _table(servers, engine, live_type, archive_type, value)
    _crashed_once(live, archive, table, doc)
    archive.execute(f"UPDATE {table} SET v = {other} WHERE id = 1")
    held = _text(archive, table)
    result = run_purge(doc, live, archive)
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert count(live, table) == 2, "a live row deleted for another value's copy"
    assert _text(archive, table) == held


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_crashed_runs_copy_under_a_padded_key_is_taken(
    servers: DatabaseServers, engine: str
) -> None:
    """A CHAR key: PostgreSQL reads 'k1' of a char(6) as 'k1    ', MariaDB as 'k1' (and
    finds 'k1' under 'k1    ', PAD SPACE). The crashed run's copy is that row's copy."""
    live, archive = _pair(servers, engine)
    table = unique("padkey")
    for server in (live, archive):
        ts = "timestamptz" if server.engine == "postgresql" else "DATETIME(6)"
        owner = ["ALTER TABLE {t} OWNER TO purger"] if server.engine == "postgresql" else []
        server.execute(
            f"CREATE TABLE {table} (id char(6) PRIMARY KEY, ts {ts}, payload varchar(20))",
            f"CREATE INDEX {table}_ts ON {table} (ts)",
            *(s.format(t=table) for s in owner),
        )
    old = (datetime.now(UTC) - timedelta(days=400)).strftime("%Y-%m-%d %H:%M:%S")
    live.execute(
        f"INSERT INTO {table} VALUES ('k1', '{old}', 'one'), ('k2', '{old}', 'two')"
    )
    doc = store_doc(live, table, category="contracts", archive=archive)
    assert run_purge(doc, live, archive, fault=_crash).reason == "Internal"
    archive.execute(f"DELETE FROM {table} WHERE payload = 'two'")
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert count(live, table) == 0 and count(archive, table) == 2


def test_a_postgresql_interval_of_months_archived_into_mariadb_keeps_its_months(
    servers: DatabaseServers,
) -> None:
    """psycopg reads interval '1 mon' as 30 days: the copy wrote 720:00:00 into the archive
    and deleted the live row, one month become thirty days (and '1 year' 365)."""
    live, archive, table, doc = _table(
        servers, "postgresql", "interval", "VARCHAR(40)", "'1 year 2 mons 3 days 04:05:06'"
    )
    result = run_purge(doc, live, archive)
    if result.result == "Succeeded":
        ((_, held),) = {row for row in _text(archive, table) if row[0] == 1}
        assert held == "1 year 2 mons 3 days 04:05:06"
    else:
        assert count(live, table) == 2


@pytest.mark.parametrize(
    ("engine", "live_type", "archive_type", "value"),
    [
        ("postgresql", "numeric", "DECIMAL(10,2)", "1.005"),
        ("postgresql", "numeric(12,4)", "DECIMAL(10,2)", "12.3456"),
        ("mysql", "DECIMAL(12,4)", "numeric(10,2)", "12.3456"),
        ("mysql", "DOUBLE", "numeric(10,2)", "0.125"),
    ],
)
def test_a_value_the_archive_column_rounds_is_refused(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str, value: str
) -> None:
    """The archive's DECIMAL keeps fewer digits than the live value has: the archive's
    INSERT rounded it (a note, no error, on MariaDB; silently on PostgreSQL) and the live
    row was deleted, the archive keeping another number."""
    live, archive, table, doc = _table(servers, engine, live_type, archive_type, value)
    before = _text(live, table)
    result = run_purge(doc, live, archive)
    assert result.result == "Failed", result.message
    assert result.reason == "ArchiveVerifyFailed", result.message
    assert _text(live, table) == before, "a live row deleted for a rounded copy"
    assert count(archive, table) == 0
    assert value.strip("'") not in result.to_json()


@pytest.mark.parametrize(
    ("engine", "live_type", "archive_type", "value"),
    [
        ("postgresql", "numeric", "DECIMAL(10,2)", "1.500"),
        ("mysql", "DECIMAL(12,4)", "numeric(10,2)", "12.3400"),
    ],
)
def test_a_value_the_archive_column_holds_exactly_is_copied(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str, value: str
) -> None:
    """Trailing zeros are no digits the archive loses: 1.500 fits a DECIMAL(10,2)."""
    live, archive, table, doc = _table(servers, engine, live_type, archive_type, value)
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert count(live, table) == 0 and count(archive, table) == 2


@pytest.mark.parametrize("archive_engine", ["postgresql", "mysql"])
def test_identical_live_rows_sharing_a_key_split_across_batches_are_not_deleted(
    servers: DatabaseServers, archive_engine: str
) -> None:
    """Two identical rows under key 7 in a PostgreSQL table without a unique key, batches of
    one row: the first 7 went with its batch, the cursor (ts, 7) passed over the second, and
    the next run took the archived 7 as its copy: two live rows deleted, one archived (two
    identical ledger entries are two entries). The batch that would end between them stops."""
    live = servers.pg_live
    archive = servers.pg_archive if archive_engine == "postgresql" else servers.mysql_archive
    table = unique("twins")
    create_table(live, table, "timestamptz", primary_key=False)
    create_table(archive, table, KIND[archive_engine])
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, "timestamptz", [(6, old), (7, old), (7, old), (8, old)])
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=1)
    for _ in range(2):
        result = run_purge(doc, live, archive)
        assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
        assert "row-" not in result.to_json()
        assert sorted(i for (i,) in live.query(f"SELECT id FROM {table}")) == [7, 7, 8]
        assert archive.query(f"SELECT id FROM {table}") == [(6,)]


@pytest.mark.parametrize(
    ("engine", "live_type", "archive_type"),
    [("postgresql", "numeric", "numeric(10,2)"), ("mysql", "DECIMAL(12,4)", "DECIMAL(10,2)")],
)
def test_a_value_an_archive_of_the_same_engine_would_round_is_refused(
    servers: DatabaseServers, engine: str, live_type: str, archive_type: str
) -> None:
    """PostgreSQL's COPY and JSON copies cast 12.3456 into numeric(10,2) as 12.35, MariaDB's
    literal copy rounds it with a note: counted as copied, the live row deleted. Such a
    table's batches go row by row, where each number is looked at: 12.34 goes, 12.3456 not."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("narrow")
    for server, kind in ((live, live_type), (archive, archive_type)):
        create_table(server, table, KIND[server.engine])
        server.execute(f"ALTER TABLE {table} ADD COLUMN v {kind}")
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    insert_rows(live, table, KIND[engine], [(1, old), (2, old), (3, old)])
    live.execute(f"UPDATE {table} SET v = 12.34", f"UPDATE {table} SET v = 12.3456 WHERE id = 3")
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=2)
    result = run_purge(doc, live, archive)
    assert result.result == "Failed" and result.reason == "ArchiveVerifyFailed", result.message
    assert [i for (i,) in live.query(f"SELECT id FROM {table}")] == [3]
    assert _text(archive, table) == [(1, "12.34"), (2, "12.34")]
    assert "12.34" not in result.to_json()
