"""A subject's erasure under a statute into an archive whose DECIMAL keeps fewer digits, on
real PostgreSQL 15 and MariaDB.

The purge refuses a number the archive's numeric(p,s) would round (`engine.unkept_columns`,
its PostgreSQL-to-PostgreSQL batches going row by row where a column may round). An erasure
copies the subject's rows with the purge's copy too: the same rule holds there. Before: a
PostgreSQL-to-PostgreSQL erasure copied by JSON (`TableRun.copy_json`), whose INSERT rounded
5.001 to 5.00 unseen (verified by count), and deleted her live row for a copy that is not it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.databases import DatabaseServer, DatabaseServers
from tests.subjects.support import create_table, ids, run, subject_store

pytestmark = pytest.mark.db

RECENT = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%d %H:%M:%S")


def _store(
    live: DatabaseServer, archive: DatabaseServer, amount: str
) -> tuple[dict[str, Any], str]:
    """people (id, ts, amount, email): rows 1 and 2 hers, past their trigger (the contracts
    statute keeps them), 2 with `amount`; row 3 someone else's. The archive's amount keeps
    two decimals, the live one three."""
    doc, people, _notes, _audit = subject_store(live, archive, category="contracts")
    create_table(live, people, "id bigint PRIMARY KEY, ts timestamp NULL, "
                               "amount numeric(12,3), email varchar(200)")  # fmt: skip
    create_table(archive, people, "id bigint PRIMARY KEY, ts timestamp NULL, "
                                  "amount numeric(10,2), email varchar(200)")  # fmt: skip
    doc["spec"]["records"] = doc["spec"]["records"][:1]
    doc["spec"]["records"][0]["subjectColumns"] = [{"kind": "email", "column": "email"}]
    live.execute(
        f"INSERT INTO {people} VALUES (1, '{RECENT}', 1.5, 'kim@x'), "
        f"(2, '{RECENT}', {amount}, 'kim@x'), (3, '{RECENT}', 2, 'lee@x')"
    )
    return doc, people


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_number_the_archive_would_round_is_refused_before_any_row_goes(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people = _store(live, archive, "5.001")
    outcome = run(doc, live, archive, "erasure", {"email": "kim@x"})
    result = outcome.result
    assert (result.outcome, result.reason) == ("Failed", "ArchiveVerifyFailed"), result.message
    assert "amount" in result.message and "5.001" not in result.message, result.message
    assert "kim@x" not in result.message, result.message
    assert ids(live, people) == {1, 2, 3}
    held = archive.query(f"SELECT id, amount FROM {people}")
    assert all(Decimal(str(a)) != Decimal("5.00") for _i, a in held), held


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_numbers_the_archive_keeps_are_copied_exactly(
    servers: DatabaseServers, engine: str
) -> None:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    doc, people = _store(live, archive, "5.010")
    outcome = run(doc, live, archive, "erasure", {"email": "kim@x"})
    assert outcome.result.outcome == "Succeeded", outcome.result.message
    assert ids(live, people) == {3}
    held = {int(i): Decimal(str(a)) for i, a in archive.query(f"SELECT id, amount FROM {people}")}
    assert held == {1: Decimal("1.5"), 2: Decimal("5.01")}
