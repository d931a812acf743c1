"""MariaDB statutory copy inside the live transaction, when the archive is a database of the
live server and the live login may write it (`plan.server_side_copy`): chosen only then,
falls back otherwise, and keeps every rule of the copy (held copies, counts, crashes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.purge.batches import MySQLKeyBatches
from dataward.purge.credentials import Credentials
from tests.databases import PURGER_USER, DatabaseServer, DatabaseServers, create_claims_table
from tests.purge.support import run_cli, run_purge, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
KIND = "datetime6"
ARCHIVER = Credentials("archiver", "archiver-secret")
ARCHIVER_ENV = {
    "DATAWARD_ARCHIVE_USERNAME": ARCHIVER.username,
    "DATAWARD_ARCHIVE_PASSWORD": ARCHIVER.password,
}


@pytest.fixture(scope="module")
def beside(servers: DatabaseServers) -> Iterator[DatabaseServer]:
    """A second database of the MariaDB live server, written by a login of its own
    (`archiver`): the live login `purger` holds nothing there unless a test grants it."""
    live = servers.mysql_live
    name = f"arch_{os.getpid()}"
    live.execute(
        f"CREATE DATABASE {name}",
        f"CREATE USER IF NOT EXISTS '{ARCHIVER.username}'@'%' "
        f"IDENTIFIED BY '{ARCHIVER.password}'",
        f"GRANT ALL PRIVILEGES ON {name}.* TO '{ARCHIVER.username}'@'%'",
    )
    archive = replace(live, role=name, process=None)
    create_claims_table(archive)
    yield archive
    live.execute(f"DROP DATABASE {name}")


def _tables(
    live: DatabaseServer, archive: DatabaseServer, expired: int = 30, fresh: int = 3
) -> tuple[str, dict[int, tuple[datetime | None, str]]]:
    """Expired ids 1..`expired` (dense: the key sweep takes them), `fresh` unexpired ids after
    them; the same empty table in the archive."""
    table = unique("stat")
    create_table(live, table, KIND)
    create_table(archive, table, KIND)
    now = datetime.now(UTC)
    rows = [(i, now - timedelta(days=400, seconds=i)) for i in range(1, expired + 1)]
    rows += [(expired + i, now + timedelta(days=1)) for i in range(1, fresh + 1)]
    insert_rows(live, table, KIND, rows)
    return table, read_rows(live, table)


def _grant(live: DatabaseServer, archive: DatabaseServer, table: str, privileges: str) -> None:
    live.execute(f"GRANT {privileges} ON {archive.database}.{table} TO '{PURGER_USER}'@'%'")


def _purge(live: DatabaseServer, archive: DatabaseServer, table: str, **kwargs: object):  # type: ignore[no-untyped-def]
    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=10)
    return run_purge(doc, live, archive, archive_login=ARCHIVER, **kwargs)  # type: ignore[arg-type]


def _moved_exactly(
    live: DatabaseServer,
    archive: DatabaseServer,
    table: str,
    before: dict[int, tuple[datetime | None, str]],
    expired: int = 30,
) -> None:
    assert read_rows(archive, table) == {i: before[i] for i in range(1, expired + 1)}
    assert read_rows(live, table) == {i: r for i, r in before.items() if i > expired}


@pytest.mark.parametrize(
    ("privileges", "path"),
    [
        (None, "TwoLogins"),
        ("INSERT", "TwoLogins"),  # no SELECT to verify the copy with
        ("SELECT", "TwoLogins"),
        ("INSERT, SELECT", "ServerSide"),
    ],
)
def test_the_server_side_copy_is_chosen_only_when_the_live_login_may_write_the_archive(
    servers: DatabaseServers,
    beside: DatabaseServer,
    privileges: str | None,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same server, and a privilege missing: the run falls back to the archive login's copy
    (it does not fail), known at the start: no server-side batch is even tried. With INSERT
    and SELECT on the archive table, the copy runs in the live transaction. Either way every
    row moves exactly."""
    live = servers.mysql_live
    table, before = _tables(live, beside)
    if privileges:
        _grant(live, beside, table, privileges)
    tried: list[int] = []
    real = MySQLKeyBatches.move

    def move(self: MySQLKeyBatches, *args: Any) -> Any:
        tried.append(1)
        return real(self, *args)

    monkeypatch.setattr(MySQLKeyBatches, "move", move)
    result = _purge(live, beside, table)
    assert bool(tried) == (path == "ServerSide")
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 30
    assert result.tables[0].archive_copy == path
    assert result.to_dict()["tables"][0]["archiveCopy"] == path
    _moved_exactly(live, beside, table, before)


def test_an_archive_on_another_server_is_never_written_by_the_live_login(
    servers: DatabaseServers,
) -> None:
    """The live server has a database and table of the archive's very name, which the live
    login may write: a check by names (DSN, database, table) would copy the rows there, into
    the wrong server. The archive is the other server: the rows must land there."""
    live, archive = servers.pair("mysql")
    table, before = _tables(live, archive)
    decoy = replace(live, role=archive.database, process=None)
    live.execute(f"CREATE DATABASE IF NOT EXISTS {archive.database}")
    create_table(decoy, table, KIND)
    _grant(live, decoy, table, "INSERT, SELECT")
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=10), live, archive
    )
    assert result.result == "Succeeded", result.message
    assert result.tables[0].archive_copy == "TwoLogins"
    assert count(decoy, table) == 0
    _moved_exactly(live, archive, table, before)


def test_a_copy_already_in_the_archive_is_kept_and_another_row_under_the_key_stops_the_run(
    servers: DatabaseServers, beside: DatabaseServer
) -> None:
    """A crashed run's copy (of the two-login path) under a key: the server-side INSERT meets
    the duplicate, that batch goes the two-login way, which keeps the copy once it equals
    the live row; a different row there (a key reused) is ArchiveKeyConflict, its batch
    left in live."""
    live = servers.mysql_live
    table, before = _tables(live, beside)
    _grant(live, beside, table, "INSERT, SELECT")
    insert_rows(beside, table, KIND, [(4, before[4][0]), (17, before[17][0])])
    beside.execute(f"UPDATE {table} SET payload = 'someone-else' WHERE id = 17")
    result = _purge(live, beside, table)
    assert result.result == "Failed" and result.reason == "ArchiveKeyConflict", result.message
    assert "someone" not in result.to_json()
    now_live, archived = read_rows(live, table), read_rows(beside, table)
    assert now_live[17] == before[17] and archived[17][1] == "someone-else"
    for i in set(before) - set(now_live):
        assert archived[i] == before[i], f"row {i} deleted without its copy"
    assert 4 not in now_live and archived[4] == before[4]
    beside.execute(f"UPDATE {table} SET payload = 'row-17' WHERE id = 17")
    again = _purge(live, beside, table)
    assert again.result == "Succeeded", again.message
    _moved_exactly(live, beside, table, before)


def test_a_row_entering_the_range_after_the_copy_is_not_deleted_without_one(
    servers: DatabaseServers, beside: DatabaseServer
) -> None:
    """An expired row committed into a batch's key range between its INSERT ... SELECT and
    its DELETE: the DELETE takes one row more than the copy, the batch is rolled back and
    redone the two-login way, the newcomer copied too."""
    live = servers.mysql_live
    table, before = _tables(live, beside)
    _grant(live, beside, table, "INSERT, SELECT")
    live.execute(f"DELETE FROM {table} WHERE id = 5")
    old = before.pop(5)
    injected: list[str] = []

    def newcomer(point: str) -> None:
        if point == "after-select" and not injected:
            insert_rows(live, table, KIND, [(5, old[0])])
            live.execute(f"UPDATE {table} SET payload = '{old[1]}' WHERE id = 5")
            injected.append(point)

    result = _purge(live, beside, table, fault=newcomer)
    assert injected
    assert result.result == "Succeeded", result.message
    before[5] = old
    _moved_exactly(live, beside, table, before)
    assert result.rows_deleted == result.rows_archived == 30


@pytest.mark.parametrize("fault", ["after-select", "after-delete"])
def test_a_crash_in_a_server_side_batch_loses_and_duplicates_nothing(
    servers: DatabaseServers, beside: DatabaseServer, fault: str, tmp_path: Path
) -> None:
    """Killed with the batch copied but not committed (after-select: the copy and the DELETE
    roll back together) or after its commit: no row lost, none twice; a re-run finishes."""
    live = servers.mysql_live
    table, before = _tables(live, beside, expired=35)
    _grant(live, beside, table, "INSERT, SELECT")
    doc = store_doc(live, table, category="contracts", archive=beside, batchSize=10)
    crashed = run_cli(tmp_path, doc, fault=f"{fault}:2", env=ARCHIVER_ENV)
    assert crashed.returncode == 137, crashed.stderr
    now_live, archived = read_rows(live, table), read_rows(beside, table)
    assert not set(now_live) & set(archived), "a row both in live and in the archive"
    assert set(now_live) | set(archived) == set(before), "a row lost"
    assert all(archived[i] == before[i] for i in archived)
    assert len(archived) == (10 if fault == "after-select" else 20)
    rerun = run_cli(tmp_path, doc, env=ARCHIVER_ENV)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.result["result"] == "Succeeded"
    assert rerun.result["tables"][0]["archiveCopy"] == "ServerSide"
    _moved_exactly(live, beside, table, before, expired=35)


def test_a_copied_row_stays_locked_until_the_batch_commits(
    servers: DatabaseServers, beside: DatabaseServer
) -> None:
    """Between the INSERT ... SELECT and the DELETE an application tries to change a copied
    row: it must wait (FOR UPDATE; under READ COMMITTED the SELECT alone locks nothing),
    else the DELETE would take the changed row and the archive keep the old one."""
    live = servers.mysql_live
    table, before = _tables(live, beside)
    _grant(live, beside, table, "INSERT, SELECT")
    changed: list[bool] = []

    def change(point: str) -> None:
        if point != "after-select" or changed:
            return
        conn = live.admin()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
                try:
                    cur.execute(f"UPDATE {table} SET payload = 'changed' WHERE id = 3")
                    changed.append(True)
                except Exception:
                    changed.append(False)
        finally:
            conn.close()

    result = _purge(live, beside, table, fault=change)
    assert result.result == "Succeeded", result.message
    assert result.tables[0].archive_copy == "ServerSide"
    archived = read_rows(beside, table)
    assert archived[3][1] == ("changed" if changed[0] else before[3][1]), "a change was lost"
    assert changed == [False], "the copied row was not locked"


def test_an_archive_database_name_sql_cannot_spell_plainly_keeps_the_two_login_copy(
    servers: DatabaseServers,
) -> None:
    """The server-side copy names the archive database in SQL, and Dataward writes only
    plain identifiers there: an archive database called `arch-…` (legal in MariaDB, and
    reached today by its connection alone) keeps the two-login copy; the run must not fail."""
    live = servers.mysql_live
    name = f"arch-{os.getpid()}"
    live.execute(
        f"CREATE DATABASE `{name}`",
        f"CREATE USER IF NOT EXISTS '{ARCHIVER.username}'@'%' "
        f"IDENTIFIED BY '{ARCHIVER.password}'",
        f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{ARCHIVER.username}'@'%'",
        f"GRANT INSERT, SELECT ON `{name}`.* TO '{PURGER_USER}'@'%'",
    )
    try:
        odd = replace(live, role=name, process=None)
        create_claims_table(odd)
        table, before = _tables(live, odd)
        result = _purge(live, odd, table)
        assert result.result == "Succeeded", result.message
        assert result.tables[0].archive_copy == "TwoLogins"
        _moved_exactly(live, odd, table, before)
    finally:
        live.execute(f"DROP DATABASE `{name}`")
