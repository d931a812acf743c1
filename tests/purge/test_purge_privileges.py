"""Least privilege (issue 12, item 2): the grants README.md documents are enough, and a
missing one fails with a message naming the privilege, the table and the GRANT that fixes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dataward.purge.claims import CLAIMS_TABLE
from dataward.purge.credentials import Credentials
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
PASSWORD = "least-privilege-secret"


def least_privilege_login(
    server: DatabaseServer, table: str, privileges: str, claims: str = "SELECT, INSERT"
) -> Credentials:
    """A new login with exactly `privileges` on `table` (the README's recipe, one table),
    and on an archive server `claims` on the registry of archive tables' owners."""
    # Unique across processes and across the module being imported twice (pytest collects
    # it, and tests/subjects imports it): a per-module counter collided.
    name = f"lp_{uuid.uuid4().hex[:16]}"
    if server.engine == "postgresql":
        server.execute(
            f"CREATE ROLE {name} LOGIN PASSWORD '{PASSWORD}'",
            f"GRANT CONNECT ON DATABASE {server.database} TO {name}",
            f"GRANT USAGE ON SCHEMA public TO {name}",
            f"GRANT {privileges} ON {table} TO {name}",
        )
    else:
        server.execute(
            f"CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT {privileges} ON {server.database}.{table} TO '{name}'@'%'",
        )
    if server.role == "archive" and claims:
        if server.engine == "postgresql":
            server.execute(f"GRANT {claims} ON {CLAIMS_TABLE} TO {name}")
        else:
            server.execute(f"GRANT {claims} ON {server.database}.{CLAIMS_TABLE} TO '{name}'@'%'")
    return Credentials(name, PASSWORD)


def _rows(now: datetime) -> list[tuple[int, datetime | None]]:
    rows: list[tuple[int, datetime | None]] = [
        (i, now - timedelta(days=400, seconds=i)) for i in range(1, 41)
    ]
    rows += [(100 + i, now - timedelta(days=6 * 366 + i)) for i in range(3)]  # past the statute
    rows += [(200 + i, now + timedelta(days=1)) for i in range(5)]
    return rows


def _seeded(
    servers: DatabaseServers, engine: str, *, archive_table: bool = False
) -> tuple[DatabaseServer, DatabaseServer, str]:
    """The engine's pair and a new table holding `_rows` on the live server (and an empty
    one of the same name on the archive with `archive_table`)."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("leastpriv")
    create_table(live, table, KIND[engine])
    if archive_table:
        create_table(archive, table, KIND[engine])
    insert_rows(live, table, KIND[engine], _rows(datetime.now(UTC)))
    return live, archive, table


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_purge_works_with_select_and_delete_only(
    servers: DatabaseServers, engine: str
) -> None:
    live, _, table = _seeded(servers, engine)
    login = least_privilege_login(live, table, "SELECT, DELETE")
    result = run_purge(store_doc(live, table, batchSize=7), live, live_login=login)
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == 43
    assert set(read_rows(live, table)) == {200, 201, 202, 203, 204}


@pytest.mark.parametrize("engine", ENGINES)
def test_statutory_purge_works_with_the_documented_grants(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive, table = _seeded(servers, engine, archive_table=True)
    # A crashed run's copy of row 1 (the same row: another one under the key is no copy).
    insert_rows(archive, table, KIND[engine], [(1, read_rows(live, table)[1][0])])
    live_login = least_privilege_login(live, table, "SELECT, DELETE")
    archive_login = least_privilege_login(archive, table, "SELECT, INSERT, DELETE")
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive, batchSize=7),
        live,
        archive,
        live_login=live_login,
        archive_login=archive_login,
    )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == 43
    assert result.rows_archived == 42  # row 1 was already there
    assert result.tables[0].archive_rows_destroyed == 3
    assert set(read_rows(archive, table)) == set(range(1, 41))
    assert set(read_rows(live, table)) == {200, 201, 202, 203, 204}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_login_without_delete_fails_naming_the_grant(
    servers: DatabaseServers, engine: str
) -> None:
    live, _, table = _seeded(servers, engine)
    login = least_privilege_login(live, table, "SELECT")
    result = run_purge(store_doc(live, table), live, live_login=login)
    assert result.result == "Failed"
    assert result.error is not None and result.error.category == "PermissionDenied"
    assert "DELETE privilege" in result.message and table in result.message
    assert f"GRANT DELETE ON {table if engine == 'postgresql' else 'live.' + table}" in (
        result.message
    )
    assert PASSWORD not in result.to_json() and login.username not in result.to_json()
    assert count(live, table) == 48


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("table_grants", "claims_grants", "named"),
    [("SELECT, DELETE", "SELECT, INSERT", "GRANT INSERT ON"),  # no INSERT on the table
     # The registry of archive tables' owners needs INSERT too: without it the run cannot
     # claim its archive table, so nothing is copied, destroyed or deleted.
     ("SELECT, INSERT, DELETE", "SELECT", CLAIMS_TABLE)],
)  # fmt: skip
def test_an_archive_login_without_insert_fails_naming_the_grant(
    servers: DatabaseServers, engine: str, table_grants: str, claims_grants: str, named: str
) -> None:
    live, archive, table = _seeded(servers, engine, archive_table=True)
    result = run_purge(
        store_doc(live, table, category="contracts", archive=archive),
        live,
        archive,
        live_login=least_privilege_login(live, table, "SELECT, DELETE"),
        archive_login=least_privilege_login(archive, table, table_grants, claims_grants),
    )
    assert result.result == "Failed" and result.reason == "PermissionDenied", result.message
    assert "INSERT privilege" in result.message and named in result.message
    assert count(live, table) == 48 and count(archive, table) == 0
