"""A birth date that names no day (PostgreSQL's -infinity or infinity; a MariaDB zero date,
or a zero month or day) is an unknown age, and unknown is not absent: the run refuses it
(`ColumnRefused`, table and column named, never the value) instead of reading it as an
adult's (MariaDB's zero date and PostgreSQL's -infinity made the rule take no one, silently,
without counting the row as unknownAge) or a child's (PostgreSQL's `infinity` plus 14 years
is after every row: the row was deleted as a child's without consent).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, unique
from tests.purge.test_children import (
    Row,
    children_doc,
    create_children_table,
    insert_children,
    kids_policy,
)

pytestmark = pytest.mark.db
YEAR = datetime.now(UTC).year - 2  # collected 2 years ago: past the consent grace
UNKNOWN = 99
CASES = [
    ("mysql", "0000-00-00"),
    ("mysql", f"{YEAR - 4}-05-00"),
    ("postgresql", "infinity"),
    ("postgresql", "-infinity"),
]


def ids(server: DatabaseServer, table: str) -> set[int]:
    return {int(i) for (i,) in server.query(f"SELECT id FROM {table}")}


def _kids(server: DatabaseServer, birth: str, consent: str) -> str:
    """Rows 1-2 a child's without consent, 3 an adult's, and row 99 born `birth`."""
    table = unique("kidbirth")
    create_children_table(server, table, "instant", "timestamp")
    child, adult = date(YEAR - 4, 5, 1), date(1980, 1, 1)
    rows: list[Row] = [(i, datetime(YEAR, 2, i, tzinfo=UTC), child, None, None) for i in (1, 2)]
    rows.append((3, datetime(YEAR, 2, 3, tzinfo=UTC), adult, None, None))
    insert_children(server, table, "instant", rows)
    zero = "SET SESSION sql_mode = ''" if server.engine == "mysql" else "SELECT 1"
    server.execute(
        zero,
        f"INSERT INTO {table} (id, ts, birth, consent, payload) VALUES ({UNKNOWN}, "
        f"'{YEAR}-02-04 00:00:00', '{birth}', {consent}, 'row-{UNKNOWN}')",
    )
    return table


def _server(servers: DatabaseServers, engine: str) -> DatabaseServer:
    return servers.pg_live if engine == "postgresql" else servers.mysql_live


@pytest.mark.parametrize("batch_size", [1, 100])
@pytest.mark.parametrize(("engine", "birth"), CASES)
def test_a_birth_date_naming_no_day_is_refused_and_nothing_is_deleted(
    servers: DatabaseServers, engine: str, birth: str, batch_size: int
) -> None:
    live = _server(servers, engine)
    table = _kids(live, birth, "NULL")
    doc = children_doc(
        live, table, {"birthDateColumn": "birth", "consentColumn": "consent"}, batchSize=batch_size
    )
    result = run_purge(doc, live, policy_doc=kids_policy())
    assert (result.result, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert f"table {table}" in result.message and "'birth'" in result.message, result.message
    assert "nothing was deleted" in result.message, result.message
    if engine == "mysql":  # (PostgreSQL's infinities are named as kinds of value)
        assert birth not in result.message and "-00" not in result.message, result.message
    assert ids(live, table) == {1, 2, 3, UNKNOWN}


@pytest.mark.parametrize(("engine", "birth"), CASES)
def test_with_consent_the_birth_date_decides_nothing(
    servers: DatabaseServers, engine: str, birth: str
) -> None:
    """A guard: a row with consent is no child's row without it, whatever its birth date."""
    live = _server(servers, engine)
    consent = f"'{YEAR}-02-05 00:00:00'"
    table = _kids(live, birth, consent)
    doc = children_doc(live, table, {"birthDateColumn": "birth", "consentColumn": "consent"})
    result = run_purge(doc, live, policy_doc=kids_policy())
    assert result.result == "Succeeded", result.message
    assert ids(live, table) == {3, UNKNOWN}


@pytest.mark.parametrize("batch_size", [1, 100])
def test_an_infinite_birth_date_written_during_the_run_is_never_a_childs(
    servers: DatabaseServers, batch_size: int
) -> None:
    """Written after the run's count, before its first batch: PostgreSQL's `infinity` plus 14
    years is after every row, so the children's batch took the row as a child's and deleted
    it. Now no batch takes it, and the count at the run's end refuses it."""
    live = servers.pg_live
    table = _kids(live, "1980-01-01", "NULL")  # row 99 an adult's at the count
    written: list[bool] = []

    def fault(point: str) -> None:
        if point == "before-select" and not written:
            written.append(True)
            live.execute(f"UPDATE {table} SET birth = 'infinity' WHERE id = {UNKNOWN}")

    doc = children_doc(
        live, table, {"birthDateColumn": "birth", "consentColumn": "consent"}, batchSize=batch_size
    )
    result = run_purge(doc, live, policy_doc=kids_policy(), fault=fault)
    assert UNKNOWN in ids(live, table), result.message
    assert (result.result, result.reason) == ("Failed", "ColumnRefused"), result.message
    assert "'birth'" in result.message and "2 rows were deleted before" in result.message
    assert ids(live, table) == {3, UNKNOWN}
