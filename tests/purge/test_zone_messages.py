"""What a run says about the bounds it compared with, for records[].timeZone.

The children's pass compares the collection column with its own bound (`sql.bind_cutoff` of
the consent grace): for a wall-clock or date column of a zone, the zone's wall clock on the
zone's calendar, not the run's `children_cutoff` (UTC's calendar). The run's message must name
the bound the rows were compared with, not the UTC one alone.

Fake sessions: `prepare_table` reads only the catalogue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dataward.model.durations import cutoff_for, parse_duration
from dataward.model.store import ChildColumns, RecordSet
from dataward.purge.engine import (
    EngineOptions,
    PreparedTable,
    RunContext,
    TableRun,
    _summary,
    prepare_table,
)
from dataward.purge.errors import PurgeError
from dataward.purge.plan import PurgePlan
from dataward.purge.result import TableResult
from dataward.purge.sql import POSTGRES, Column, Index, Session, TableName, bind_cutoff

SEOUL = ZoneInfo("Asia/Seoul")
# 2026-04-01 05:00 in Seoul: a month before is 2026-03-01 05:00 there (2026-02-28T20:00Z);
# on UTC's calendar a month before 2026-03-31T20:00Z is the whole of February.
NOW = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
GRACE = parse_duration("1mo")
RETENTION = parse_duration("1y")
TYPES = {"wallclock": "timestamp without time zone", "instant": "timestamp with time zone"}


class FakeSession(Session):
    """`kids (id integer key, created_at <trigger>, collected_at <collection>, age, ok)`."""

    def __init__(self, trigger: str, collected: str) -> None:
        super().__init__(None, "fake", lambda exc: PurgeError("DatabaseError", str(exc)))
        self.dialect = POSTGRES
        self._columns = (
            Column("id", "integer", None, nullable=False),
            Column("created_at", TYPES[trigger], 6),
            Column("collected_at", TYPES[collected], 6),
            Column("age", "integer", None),
            Column("ok", "boolean", None),
        )

    def columns(self, table: TableName) -> tuple[Column, ...]:
        return self._columns

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        return (frozenset({"id"}),)

    def indexes(self, table: TableName) -> tuple[Index, ...]:
        return (Index("PRIMARY", ("id",), True),)

    def commit(self) -> None:
        pass


def plan(records: RecordSet) -> PurgePlan:
    return PurgePlan(
        store="ns/store",
        retention=RETENTION,
        statutory=None,
        now=NOW,
        cutoff=cutoff_for(NOW, RETENTION),
        archive_now=None,
        archive_cutoff=None,
        records=(records,),
        batch_size=100,
        max_rows=1000,
        dry_run=False,
        acknowledge_token="",
        consent_grace=GRACE,
        children_cutoff=cutoff_for(NOW, GRACE),
    )


# Seoul wall clocks of collection, a child's consent column: the table both tests purge.
KIDS = RecordSet(
    "kids",
    "created_at",
    ("id",),
    children=ChildColumns("ok", age_column="age", collected_column="collected_at"),
    time_zone="Asia/Seoul",
)


def _result(prepared: PreparedTable, live: FakeSession, the_plan: PurgePlan) -> TableResult:
    """The table's result as a run of it reports it: its counts and its zone's bounds."""
    run = TableRun(prepared, RunContext(live, None, the_plan, EngineOptions(), lambda _: None))
    return TableResult("kids", rows_deleted=2, rows_no_consent=2, **run.zone_bounds())


@pytest.mark.parametrize("trigger", ["wallclock", "instant"])
def test_the_message_names_a_zoned_childrens_bound(trigger: str) -> None:
    """Seoul wall clocks of collection, 1mo grace, at 2026-04-01 05:00 in Seoul: the rows
    compared were those collected at or before 2026-03-01 05:00 Seoul wall clock; the run's
    UTC `children_cutoff` is 2026-02-28T23:59:59.999999Z, three hours after a row of
    2026-03-01 06:00 Seoul (kept). The message names the zone's bound, with or without a
    zoned trigger column. Red on the old code: it named only the UTC cutoff."""
    records = KIDS
    the_plan = plan(records)
    live = FakeSession(trigger, "wallclock")
    prepared = prepare_table(live, None, records, the_plan)
    expected = bind_cutoff(NOW, GRACE, "wallclock", 6, SEOUL)
    assert prepared.children_bound == expected == datetime(2026, 3, 1, 5, 0)  # the oracle
    result = _result(prepared, live, the_plan)

    message = _summary((result,), the_plan, None)

    assert f"kids {expected.isoformat()} Asia/Seoul" in message, message
    assert result.to_dict()["zoneChildrenCutoff"] == expected.isoformat()


def test_an_instant_collection_column_keeps_the_runs_childrens_cutoff() -> None:
    """Instants ignore timeZone: their bound is the run's `children_cutoff`, and the message
    names no zone for them."""
    records = KIDS
    the_plan = plan(records)
    live = FakeSession("instant", "instant")
    prepared = prepare_table(live, None, records, the_plan)
    assert prepared.children_bound == the_plan.children_cutoff
    result = _result(prepared, live, the_plan)

    message = _summary((result,), the_plan, None)

    assert the_plan.children_cutoff is not None
    assert the_plan.children_cutoff.isoformat() in message
    assert "Asia/Seoul" not in message
    assert "zoneChildrenCutoff" not in result.to_dict()
