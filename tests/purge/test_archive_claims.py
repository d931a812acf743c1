"""Archive tables claimed by one store: stores sharing an archive database never copy into,
count or destroy from a table another store archives into (its statute, legal hold and time
zone are not theirs to apply)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import POLICY, run_purge, store_doc, unique
from tests.purge.tables import create_table, insert_rows, read_rows

pytestmark = pytest.mark.db

KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}

# Store B's category: a shorter statute than `contracts` (5y), so B's bound reaches rows A
# must keep.
POLICY_3Y = copy.deepcopy(POLICY)
POLICY_3Y["spec"]["categories"].append(
    {"name": "complaints", "purposes": ["service"],
     "retention": {"period": "1mo", "trigger": "inquired"},
     "statutory": {"period": "3y", "statute": "E-Commerce Act (complaints)"}})  # fmt: skip

YEAR = timedelta(days=366)


def _store(
    live: DatabaseServer, archive: DatabaseServer, table: str, who: str, **spec: Any
) -> dict[str, Any]:
    """Store A (`crm/store-a`, contracts, 5y) or B (`shop/store-b`, complaints, 3y)."""
    category = "contracts" if who == "a" else "complaints"
    doc = store_doc(live, table, category=category, archive=archive, **spec)
    doc["metadata"]["name"] = f"store-{who}"
    doc["metadata"]["namespace"] = "crm" if who == "a" else "shop"
    return doc


def _shared(servers: DatabaseServers, engine: str) -> tuple[DatabaseServer, str]:
    """One archive table that both stores name: A's live is PostgreSQL, B's MariaDB."""
    archive = servers.pg_archive if engine == "postgresql" else servers.mysql_archive
    table = unique("orders")
    create_table(servers.pg_live, table, "timestamptz")
    create_table(servers.mysql_live, table, "datetime6")
    create_table(archive, table, KIND[engine])
    return archive, table


def _owner(archive: DatabaseServer, table: str) -> list[tuple[Any, ...]]:
    from dataward.purge.claims import CLAIMS_TABLE

    return archive.query(
        f"SELECT store FROM {CLAIMS_TABLE} WHERE archive_table = %s", (table.lower(),)
    )


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_store_never_destroys_another_stores_archived_rows(
    servers: DatabaseServers, engine: str
) -> None:
    """The reviewer's case: A archives rows triggered 4 years ago (5y statute); B (3y) names
    the same archive table. B's run must leave A's copies, and its own live rows, alone."""
    archive, table = _shared(servers, engine)
    now = datetime.now(UTC)
    insert_rows(servers.pg_live, table, "timestamptz", [(i, now - 4 * YEAR) for i in (1, 2, 3)])
    insert_rows(servers.mysql_live, table, "datetime6", [(100, now - timedelta(days=40))])

    ra = run_purge(
        _store(servers.pg_live, archive, table, "a"), servers.pg_live, archive,
        policy_doc=POLICY_3Y,
    )  # fmt: skip
    assert ra.result == "Succeeded", ra.message
    assert sorted(read_rows(archive, table)) == [1, 2, 3]

    for dry in (False, True):
        rb = run_purge(
            _store(servers.mysql_live, archive, table, "b", dryRun=dry), servers.mysql_live,
            archive, policy_doc=POLICY_3Y,
        )  # fmt: skip
        left = sorted(read_rows(archive, table))
        assert left == [1, 2, 3], f"B's run (dryRun {dry}) destroyed A's copies: {left}"
        assert rb.result == "Failed", rb.message
        assert rb.reason == "ArchiveClaimed"
        assert "crm/store-a" in rb.message and table in rb.message
        assert rb.rows_deleted == rb.rows_archived == 0
        assert sorted(read_rows(servers.mysql_live, table)) == [100]  # nothing left live
    assert _owner(archive, table) == [("crm/store-a",)]


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_store_still_destroys_its_own_archived_rows_past_its_statute(
    servers: DatabaseServers, engine: str
) -> None:
    """The owner's archive keeps working: its copies past the statute go, the others stay."""
    live = servers.pg_live if engine == "postgresql" else servers.mysql_live
    archive = servers.pg_archive if engine == "postgresql" else servers.mysql_archive
    table = unique("orders")
    create_table(live, table, KIND[engine])
    create_table(archive, table, KIND[engine])
    now = datetime.now(UTC)
    insert_rows(live, table, KIND[engine], [(1, now - 4 * YEAR), (2, now - 2 * YEAR)])
    first = run_purge(_store(live, archive, table, "a"), live, archive, policy_doc=POLICY_3Y)
    assert first.result == "Succeeded", first.message
    assert first.rows_archived == 2
    # Copies archived long ago by the same store: two past its statute (5y), one within.
    insert_rows(
        archive, table, KIND[engine],
        [(10, now - 6 * YEAR), (11, now - 7 * YEAR), (12, now - 4 * YEAR)],
    )  # fmt: skip
    again = run_purge(_store(live, archive, table, "a"), live, archive, policy_doc=POLICY_3Y)
    assert again.result == "Succeeded", again.message
    assert again.tables[0].archive_rows_destroyed == 2
    assert sorted(read_rows(archive, table)) == [1, 2, 12]
    assert _owner(archive, table) == [("crm/store-a",)]


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_an_unclaimed_archive_table_goes_to_the_first_store_that_runs(
    servers: DatabaseServers, engine: str
) -> None:
    """Archives made before claims existed: the first store to run claims the table with the
    rows it holds (nothing tells whose they are); a dry run claims nothing; every other store
    is refused from then on."""
    archive, table = _shared(servers, engine)
    now = datetime.now(UTC)
    insert_rows(archive, table, KIND[engine], [(1, now - 4 * YEAR), (2, now - 6 * YEAR)])

    dry = run_purge(
        _store(servers.mysql_live, archive, table, "b", dryRun=True), servers.mysql_live,
        archive, policy_doc=POLICY_3Y,
    )  # fmt: skip
    assert dry.result == "Succeeded", dry.message
    assert dry.tables[0].archive_expired_remaining == 2  # B's 3y bound: counted, not claimed
    assert _owner(archive, table) == []

    ra = run_purge(
        _store(servers.pg_live, archive, table, "a"), servers.pg_live, archive,
        policy_doc=POLICY_3Y,
    )  # fmt: skip
    assert ra.result == "Succeeded", ra.message
    assert ra.tables[0].archive_rows_destroyed == 1  # 6y old: past A's 5y
    assert _owner(archive, table) == [("crm/store-a",)]

    rb = run_purge(
        _store(servers.mysql_live, archive, table, "b"), servers.mysql_live, archive,
        policy_doc=POLICY_3Y,
    )  # fmt: skip
    assert rb.result == "Failed" and rb.reason == "ArchiveClaimed", rb.message
    assert sorted(read_rows(archive, table)) == [1]


def test_an_archive_without_the_claims_table_is_refused(servers: DatabaseServers) -> None:
    """No registry beside the archive table (a schema the DBA has not prepared): the run
    refuses before any copy, naming what to create; nothing leaves the live table."""
    schema = unique("noclaims")
    for server in (servers.pg_live, servers.pg_archive):
        server.execute(f"CREATE SCHEMA {schema} AUTHORIZATION purger")
    table = f"{schema}.orders"
    create_table(servers.pg_live, table, "timestamptz")
    create_table(servers.pg_archive, table, "timestamptz")
    now = datetime.now(UTC)
    insert_rows(servers.pg_live, table, "timestamptz", [(1, now - 4 * YEAR)])
    result = run_purge(
        _store(servers.pg_live, servers.pg_archive, table, "a"), servers.pg_live,
        servers.pg_archive, policy_doc=POLICY_3Y,
    )  # fmt: skip
    assert result.result == "Failed"
    assert result.reason == "ArchiveClaimsMissing", result.message
    assert "CREATE TABLE" in result.message and "GRANT SELECT, INSERT" in result.message
    assert sorted(read_rows(servers.pg_live, table)) == [1]
    assert read_rows(servers.pg_archive, table) == {}
