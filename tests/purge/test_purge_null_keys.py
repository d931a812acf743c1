"""Key columns that may hold NULL (a UNIQUE key on a nullable column), on real PostgreSQL and
MariaDB.

Every way the purge takes rows names them by `keyColumns`: the keyset cursor steps past a
batch's last (ts, keys), MySQL deletes by key, a copy is verified and told from a crashed
run's copy by key, and the archive's unique key is what keeps a re-run from copying a row
twice. NULL names no row: `id = NULL` matches nothing, `id > NULL` is never true, and both
engines let any number of rows share NULL under a UNIQUE key. A table whose key columns are
nullable is purged as long as no row the run would take has NULL there; one that has stops
the run before anything is deleted or copied (ColumnRefused). Rows are told apart here by
`payload`, never by the key the engine uses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.purge.result import PurgeResult
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.test_children import children_doc, kids_policy, pinned
from tests.subjects.support import TS, create_table, insert

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
PAIRS = ["postgresql", "mysql", "postgresql-to-mysql", "mysql-to-postgresql"]
EXPIRED = timedelta(days=400)  # past the 1-month retention, within the 5-year statute
PAST_STATUTE = timedelta(days=6 * 366)


def _pair(servers: DatabaseServers, pair: str) -> tuple[DatabaseServer, DatabaseServer]:
    """Live and archive: one engine, or live of the first and archive of the second."""
    if pair == "postgresql-to-mysql":
        return servers.pg_live, servers.mysql_archive
    if pair == "mysql-to-postgresql":
        return servers.mysql_live, servers.pg_archive
    return servers.pair(pair)  # type: ignore[arg-type]


def _table(server: DatabaseServer, name: str) -> None:
    """`(id, ts, payload)`, id UNIQUE but nullable (keyColumns: [id]), an index on ts."""
    create_table(server, name, f"id bigint NULL, ts {TS[server.engine]} NULL, "
                               "payload varchar(200), UNIQUE (id)")  # fmt: skip
    server.execute(f"CREATE INDEX {name}_ts ON {name} (ts)")


def _rows(server: DatabaseServer, table: str, rows: list[tuple[Any, ...]]) -> None:
    insert(server, f"INSERT INTO {table} (id, ts, payload) VALUES (%s,%s,%s)", rows)


def _payloads(server: DatabaseServer, table: str) -> list[str]:
    return sorted(p for (p,) in server.query(f"SELECT payload FROM {table}"))


def _refused(result: PurgeResult, table: str, rows: int, role: str = "live") -> None:
    assert (result.result, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert f"{rows} row(s) of the {role} table {table}" in result.message, result.message
    assert "NULL in a key column (id)" in result.message, result.message
    assert "keyColumns" in result.message, result.message


@pytest.mark.parametrize("pair", PAIRS)
def test_an_expired_row_with_a_null_key_stops_a_statutory_purge_before_any_copy(
    servers: DatabaseServers, pair: str
) -> None:
    """PostgreSQL to MariaDB committed the NULL-key row's copy, then found it by `id = NULL`
    nowhere (ArchiveVerifyFailed), and every run added another copy; PostgreSQL to
    PostgreSQL archived it with nothing to tell a crashed run's copy from it; MariaDB live
    deleted it by `id = NULL`, which matches nothing: Succeeded, the row left every run.
    Now each run (and its dry run) is refused before anything is copied or deleted, and
    once the row has a key the next run archives it, once."""
    live, archive = _pair(servers, pair)
    table = unique("nullkey")
    _table(live, table)
    _table(archive, table)
    now = datetime.now(UTC)
    _rows(live, table, [(None, now - EXPIRED, "expired-null"),
                        (1, now - EXPIRED - timedelta(days=1), "expired-1"),
                        (None, now + timedelta(days=1), "fresh-null"),
                        (None, None, "no-trigger-null")])  # fmt: skip
    doc = store_doc(live, table, category="contracts", archive=archive)
    before = _payloads(live, table)

    for dry_run in (True, False, False):
        doc["spec"]["purge"]["dryRun"] = dry_run
        _refused(run_purge(doc, live, archive), table, 1)
        assert _payloads(live, table) == before
        assert _payloads(archive, table) == []

    live.execute(f"UPDATE {table} SET id = 5 WHERE payload = 'expired-null'")
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert _payloads(live, table) == ["fresh-null", "no-trigger-null"]
    assert _payloads(archive, table) == ["expired-1", "expired-null"]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_expired_row_with_a_null_key_stops_a_plain_purge_before_any_delete(
    servers: DatabaseServers, engine: str
) -> None:
    """No statute: MariaDB deleted by `id = NULL` (nothing) and its cursor `(ts, NULL)` then
    passed no row of that instant, so keyed rows behind the NULL-key ones stayed too, every
    run, Succeeded; PostgreSQL's cursor passed over the NULL-key rows sharing an instant,
    one run taking one of them. The run is refused; a NULL-key row the run would not take
    (unexpired, or without a trigger) refuses nothing."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    table = unique("nullkey")
    _table(live, table)
    now = datetime.now(UTC).replace(microsecond=0)
    _rows(live, table, [(None, now - EXPIRED, "expired-null-a"),
                        (None, now - EXPIRED, "expired-null-b"),
                        (3, now - EXPIRED, "expired-3"),
                        (1, now - EXPIRED - timedelta(days=1), "expired-1"),
                        (None, now + timedelta(days=1), "fresh-null"),
                        (None, None, "no-trigger-null")])  # fmt: skip
    doc = store_doc(live, table, batchSize=1)
    before = _payloads(live, table)

    _refused(run_purge(doc, live), table, 2)
    assert _payloads(live, table) == before

    live.execute(f"DELETE FROM {table} WHERE payload LIKE 'expired-null-%'")
    result = run_purge(doc, live)
    assert result.result == "Succeeded", result.message
    assert _payloads(live, table) == ["fresh-null", "no-trigger-null"]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_archived_row_past_the_statute_with_a_null_key_stops_the_purge(
    servers: DatabaseServers, engine: str
) -> None:
    """The archive's destroy pass takes rows the way the live pass does: MariaDB's
    `id = NULL` destroyed nothing and left the rows of that instant behind it, every run;
    PostgreSQL's cursor passed over NULL-key rows sharing an instant. Refused before any
    batch: nothing of live or the archive is deleted. A NULL-key row the statute still
    keeps refuses nothing."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("nullkey")
    _table(live, table)
    _table(archive, table)
    now = datetime.now(UTC).replace(microsecond=0)
    _rows(archive, table, [(None, now - PAST_STATUTE, "past-null-a"),
                           (None, now - PAST_STATUTE, "past-null-b"),
                           (3, now - PAST_STATUTE, "past-3"),
                           (None, now - EXPIRED, "kept-null")])  # fmt: skip
    _rows(live, table, [(1, now - EXPIRED, "expired-1")])
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=1)
    archived = _payloads(archive, table)

    _refused(run_purge(doc, live, archive), table, 2, role="archive")
    assert _payloads(archive, table) == archived
    assert _payloads(live, table) == ["expired-1"]

    archive.execute(f"DELETE FROM {table} WHERE payload LIKE 'past-null-%'")
    result = run_purge(doc, live, archive)
    assert result.result == "Succeeded", result.message
    assert _payloads(archive, table) == ["expired-1", "kept-null"]
    assert _payloads(live, table) == []


@pytest.mark.parametrize("pair", ["postgresql-to-mysql", "mysql-to-postgresql"])
def test_a_null_key_row_that_expires_during_the_run_is_never_copied(
    servers: DatabaseServers, pair: str
) -> None:
    """A NULL-key row written expired after the run's start counted it (a backdated
    insert). PostgreSQL live: the copy by rows committed it to the archive, then found it
    under no key (ArchiveVerifyFailed, the copy left there); the copy refuses it first now.
    MariaDB live: its batch reads rows by key, so it never took the row and the run said
    Succeeded with the row left; the run's end refuses it now. Either way no copy of it is
    archived and the live row stays."""
    live, archive = _pair(servers, pair)
    table = unique("nullkey")
    _table(live, table)
    _table(archive, table)
    now = datetime.now(UTC)
    _rows(live, table, [(i, now - EXPIRED - timedelta(days=i), f"expired-{i}")
                        for i in range(1, 4)])  # fmt: skip
    written: list[bool] = []

    def backdated(point: str) -> None:
        if point == "before-select" and not written:
            written.append(True)
            _rows(live, table, [(None, now - EXPIRED, "late-null")])

    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive), live, archive,
        fault=backdated,
    )  # fmt: skip

    _refused(result, table, 1)
    assert "late-null" in _payloads(live, table)
    assert "late-null" not in _payloads(archive, table)
    # Nothing in the archive that is not in live too: the refused batch copied nothing.
    assert set(_payloads(archive, table)) | set(_payloads(live, table)) == {
        "expired-1", "expired-2", "expired-3", "late-null"
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_a_childs_row_with_a_null_key_stops_the_childrens_pass(
    servers: DatabaseServers, engine: str
) -> None:
    """The children's pass takes the rows of children without consent past the grace (not
    the retention's, 10 years here) the same keyed way: a NULL-key child's row is refused;
    an adult's NULL-key row of the same age, which no pass takes, refuses nothing."""
    live = servers.pair(engine)[0]  # type: ignore[arg-type]
    table = unique("kidsnull")
    columns = f"id bigint NULL, ts {TS[engine]} NULL, age integer NULL, consent boolean NULL"
    create_table(live, table, f"{columns}, payload varchar(200), UNIQUE (id)")
    now = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    collected = now - timedelta(days=90)

    def add(key: int | None, age: int, payload: str) -> None:
        insert(live, f"INSERT INTO {table} (id, ts, age, consent, payload) "
                     "VALUES (%s,%s,%s,%s,%s)", [(key, collected, age, None, payload)])  # fmt: skip

    add(None, 40, "adult-null")
    add(1, 12, "child-1")
    doc = children_doc(live, table, {"ageColumn": "age", "consentColumn": "consent"})

    def purge() -> PurgeResult:
        return run_purge(doc, live, live_session_hook=pinned(now), job_clock=lambda: now,
                         policy_doc=kids_policy())  # fmt: skip

    result = purge()
    assert result.result == "Succeeded", result.message
    assert _payloads(live, table) == ["adult-null"]

    add(None, 12, "child-null")
    _refused(purge(), table, 1)
    assert _payloads(live, table) == ["adult-null", "child-null"]
