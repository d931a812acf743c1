"""`prepare_table`: the archive pass destroys a copy by reading the archive's trigger column,
so that column must hold the live trigger unchanged. A date column there keeps only the day
(PostgreSQL and MariaDB drop the time: `2020-05-05 23:00:00+00` becomes 2020-05-05, read as
midnight UTC, 23 h early), and fewer fractional digits round (PostgreSQL) or truncate
(MariaDB) the copy down by up to a second. Either way a copy would be destroyed before its
statute ends, with or without records[].timeZone: such an archive table is refused. Without
timeZone an instant and a UTC wall clock are one reading (the purge's sessions run in UTC), so
a column that keeps every value in the other kind is accepted.

Fake sessions: only the catalogue (columns, unique keys, indexes) is read before a refusal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dataward.model.durations import cutoff_for, parse_duration
from dataward.model.store import RecordSet
from dataward.purge.engine import prepare_table
from dataward.purge.errors import PurgeError
from dataward.purge.plan import PurgePlan
from dataward.purge.sql import MYSQL, POSTGRES, Column, Index, Session, TableName

# information_schema's DATA_TYPE and DATETIME_PRECISION of each column type used here.
PG_TYPES: dict[str, tuple[str, int | None]] = {
    "timestamptz": ("timestamp with time zone", 6),
    "timestamptz(3)": ("timestamp with time zone", 3),
    "timestamptz(0)": ("timestamp with time zone", 0),
    "timestamp": ("timestamp without time zone", 6),
    "timestamp(3)": ("timestamp without time zone", 3),
    "date": ("date", 0),
}
MYSQL_TYPES: dict[str, tuple[str, int | None]] = {
    "datetime": ("datetime", 0),
    "datetime(3)": ("datetime", 3),
    "datetime(6)": ("datetime", 6),
    "timestamp": ("timestamp", 0),
    "timestamp(6)": ("timestamp", 6),
    "date": ("date", None),
}


class FakeSession(Session):
    """A table `events (id integer key, created_at <trigger type>)`, unique on id."""

    def __init__(self, engine: str, trigger: str) -> None:
        super().__init__(None, "fake", lambda exc: PurgeError("DatabaseError", str(exc)))
        self.dialect = POSTGRES if engine == "postgresql" else MYSQL
        data_type, precision = (PG_TYPES if engine == "postgresql" else MYSQL_TYPES)[trigger]
        self._columns = (
            Column("id", "integer", None),
            Column("created_at", data_type, precision),
        )

    def columns(self, table: TableName) -> tuple[Column, ...]:
        return self._columns

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        return (frozenset({"id"}),)

    def indexes(self, table: TableName) -> tuple[Index, ...]:
        return (Index("PRIMARY", ("id",), True), Index("ts", ("created_at",), False))

    def commit(self) -> None:
        pass


NOW = datetime(2025, 5, 5, 0, 0, 1, tzinfo=UTC)


def plan(records: RecordSet) -> PurgePlan:
    retention, statute = parse_duration("1mo"), parse_duration("5y")
    return PurgePlan(
        store="ns/store",
        retention=retention,
        statutory=statute,
        now=NOW,
        cutoff=cutoff_for(NOW, retention),
        archive_now=NOW,
        archive_cutoff=cutoff_for(NOW, statute),
        records=(records,),
        batch_size=100,
        max_rows=1000,
        dry_run=False,
        acknowledge_token="",
    )


def prepare(live: tuple[str, str], archive: tuple[str, str], zone: str | None = None) -> Any:
    records = RecordSet("events", "created_at", ("id",), time_zone=zone)
    return prepare_table(FakeSession(*live), FakeSession(*archive), records, plan(records))


def test_an_instant_archived_as_a_date_is_refused_not_destroyed_a_day_early() -> None:
    """The reviewer's case: the copy of a row of 2020-05-05 23:00 UTC is the date 2020-05-05,
    and at 2025-05-05 00:00:01 UTC that date is past the 5-year statute, 23 h early."""
    with pytest.raises(PurgeError) as refused:
        prepare(("postgresql", "timestamptz"), ("postgresql", "date"))
    assert refused.value.category == "ArchiveTableInvalid"
    assert "created_at" in refused.value.message


@pytest.mark.parametrize(
    ("live", "archive"),
    [
        # The time of day is dropped: destroyed up to a day early.
        (("postgresql", "timestamp"), ("postgresql", "date")),
        (("mysql", "datetime(6)"), ("mysql", "date")),
        (("mysql", "timestamp(6)"), ("mysql", "date")),
        (("postgresql", "timestamptz"), ("mysql", "date")),
        # Fewer fractional digits: rounded (PostgreSQL) or truncated (MariaDB) down.
        (("postgresql", "timestamptz"), ("postgresql", "timestamptz(0)")),
        (("postgresql", "timestamptz"), ("postgresql", "timestamptz(3)")),
        (("postgresql", "timestamp"), ("postgresql", "timestamp(3)")),
        (("mysql", "datetime(6)"), ("mysql", "datetime")),
        (("mysql", "datetime(6)"), ("mysql", "datetime(3)")),
        (("mysql", "timestamp(6)"), ("mysql", "timestamp")),
        (("postgresql", "timestamp"), ("mysql", "datetime")),
        (("postgresql", "timestamptz"), ("mysql", "timestamp")),
    ],
)
def test_an_archive_trigger_that_loses_time_is_refused_without_a_time_zone(
    live: tuple[str, str], archive: tuple[str, str]
) -> None:
    with pytest.raises(PurgeError) as refused:
        prepare(live, archive)
    assert refused.value.category == "ArchiveTableInvalid"
    assert "created_at" in refused.value.message


@pytest.mark.parametrize(
    ("live", "archive"),
    [
        (("postgresql", "timestamp"), ("postgresql", "timestamp(3)")),
        (("mysql", "datetime(6)"), ("mysql", "datetime(3)")),
    ],
)
def test_an_archive_trigger_with_fewer_digits_is_refused_with_a_time_zone(
    live: tuple[str, str], archive: tuple[str, str]
) -> None:
    with pytest.raises(PurgeError) as refused:
        prepare(live, archive, "Europe/Berlin")
    assert refused.value.category == "ArchiveTableInvalid"


@pytest.mark.parametrize(
    ("live", "archive"),
    [
        (("postgresql", "timestamptz"), ("postgresql", "timestamptz")),
        (("postgresql", "timestamptz(3)"), ("postgresql", "timestamptz")),
        (("postgresql", "timestamp"), ("postgresql", "timestamp")),
        (("postgresql", "date"), ("postgresql", "date")),
        (("mysql", "datetime"), ("mysql", "datetime(3)")),
        (("mysql", "datetime(6)"), ("mysql", "datetime(6)")),
        (("mysql", "timestamp(6)"), ("mysql", "timestamp(6)")),
        (("mysql", "date"), ("mysql", "date")),
        (("postgresql", "timestamptz"), ("mysql", "timestamp(6)")),
        (("postgresql", "date"), ("mysql", "date")),
        (("mysql", "datetime(3)"), ("postgresql", "timestamp")),
        # Another kind that keeps every value, read the same way without timeZone.
        (("postgresql", "timestamptz"), ("mysql", "datetime(6)")),
        (("postgresql", "timestamptz"), ("postgresql", "timestamp")),
        (("mysql", "datetime(6)"), ("postgresql", "timestamptz")),
        (("mysql", "timestamp(6)"), ("mysql", "datetime(6)")),
        (("postgresql", "date"), ("postgresql", "timestamptz(0)")),
        (("mysql", "date"), ("mysql", "datetime")),
    ],
)
def test_an_archive_trigger_that_keeps_every_value_is_accepted(
    live: tuple[str, str], archive: tuple[str, str]
) -> None:
    prepared = prepare(live, archive)
    assert prepared.archive_bound is not None


def test_a_kept_copy_of_the_statutes_last_day_is_not_past_the_archive_bound() -> None:
    """Same kind both sides: a row of 2020-05-05 23:00 UTC is still inside its statute at
    2025-05-05 00:00:01 UTC, and so is its copy."""
    prepared = prepare(("postgresql", "timestamptz"), ("postgresql", "timestamptz"))
    assert not datetime(2020, 5, 5, 23, 0, tzinfo=UTC) <= prepared.archive_bound
