"""Test tables: create them per engine and trigger column type, seed instants, read them back."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from dataward.model.durations import Duration, cutoff_for
from tests.databases import DatabaseServer
from tests.purge.support import instant

# name -> SQL type of the trigger column
TYPES: dict[str, dict[str, str]] = {
    "postgresql": {
        "timestamptz": "timestamptz",
        "timestamp": "timestamp",
        "timestamp0": "timestamp(0)",
        "date": "date",
    },
    "mysql": {
        "datetime6": "DATETIME(6)",
        "datetime": "DATETIME",
        "timestamp6": "TIMESTAMP(6) NULL DEFAULT NULL",
        "date": "DATE",
    },
}
CASES = [(engine, kind) for engine, kinds in TYPES.items() for kind in kinds]


def create_table(
    server: DatabaseServer,
    name: str,
    kind: str,
    *,
    primary_key: bool = True,
    ts_sql: str | None = None,
) -> None:
    """A table `(id, ts, payload)` owned by the purge login, with an index on ts."""
    ts_type = ts_sql or TYPES[server.engine][kind]
    pk = " PRIMARY KEY" if primary_key else ""
    if server.engine == "postgresql":
        server.execute(
            f"CREATE TABLE {name} (id bigint{pk}, ts {ts_type}, payload text)",
            f"CREATE INDEX ON {name} (ts)",
            f"ALTER TABLE {name} OWNER TO purger",
        )
    else:
        server.execute(
            f"CREATE TABLE {name} (id BIGINT{pk}, ts {ts_type}, payload VARCHAR(200), "
            "INDEX (ts)) ENGINE=InnoDB"
        )


def _offset(server: DatabaseServer) -> timezone:
    if server.time_zone.startswith(("+", "-")):
        sign = 1 if server.time_zone[0] == "+" else -1
        hours, minutes = server.time_zone[1:].split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    return timezone(timedelta(hours=9)) if server.time_zone == "Asia/Seoul" else UTC


def _value(server: DatabaseServer, kind: str, at: datetime | None) -> Any:
    """How to write the instant `at` into a column of `kind` so that it means `at` in UTC."""
    if at is None:
        return None
    if kind == "date":
        return at.astimezone(UTC).date()
    if kind == "timestamptz":
        return at.astimezone(_offset(server))  # an offset on purpose: the server must convert
    if kind.startswith("timestamp") and server.engine == "mysql":
        # TIMESTAMP is read in the session's zone: write the server zone's wall-clock time.
        return at.astimezone(_offset(server)).replace(tzinfo=None)
    return at.astimezone(UTC).replace(tzinfo=None)


def insert_rows(
    server: DatabaseServer, name: str, kind: str, rows: Iterable[tuple[int, datetime | None]]
) -> None:
    """Insert `(id, instant)` rows, the payload naming the id."""
    values = [(i, _value(server, kind, at), f"row-{i}") for i, at in rows]
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} (id, ts, payload) VALUES (%s, %s, %s)", values)
        conn.commit()
    finally:
        conn.close()


def read_rows(server: DatabaseServer, name: str) -> dict[int, tuple[datetime | None, str]]:
    """Every row as id -> (trigger instant in UTC, payload)."""
    conn = server.admin()
    try:
        with conn.cursor() as cur:
            if server.engine == "mysql":
                cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT id, ts, payload FROM {name}")
            return {int(i): (instant(ts), str(p)) for i, ts, p in cur.fetchall()}
    finally:
        conn.close()


def refusing_trigger(server: DatabaseServer, table: str, column: str) -> None:
    """A BEFORE DELETE trigger refusing every row with an error that quotes the row's `column`
    (in PostgreSQL's message, detail, hint and field names; in MariaDB's message)."""
    value = f"OLD.{column}"
    if server.engine == "postgresql":
        server.execute(
            f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"RAISE EXCEPTION 'row of % may not go', {value} "
            f"USING DETAIL = '{column} ' || {value}, HINT = {value}, COLUMN = {value}, "
            f"CONSTRAINT = {value}, TABLE = {value}; END $$",
            f"CREATE TRIGGER {table}_refuse BEFORE DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_refuse()",
        )
    else:
        server.execute(
            f"CREATE TRIGGER {table}_refuse BEFORE DELETE ON {table} FOR EACH ROW BEGIN "
            f"DECLARE text VARCHAR(250) DEFAULT CONCAT('row of ', {value}, ' may not go'); "
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = text; END"
        )


def count(server: DatabaseServer, name: str) -> int:
    """Rows in a table."""
    ((n,),) = server.query(f"SELECT count(*) FROM {name}")
    return int(n)


def seed_instants(now: datetime, period: Duration) -> list[datetime | None]:
    """Instants around the cutoff, at month ends and leap days, in the future, and NULLs."""
    boundary = cutoff_for(now, period)  # only to aim the seeds; the oracle never uses it
    steps = [
        timedelta(0), timedelta(microseconds=1), timedelta(microseconds=999),
        timedelta(milliseconds=500), timedelta(seconds=1), timedelta(seconds=2),
        timedelta(seconds=30), timedelta(hours=1), timedelta(hours=9), timedelta(days=1),
        timedelta(days=3), timedelta(days=40),
    ]  # fmt: skip
    points: list[datetime | None] = []
    for step in steps:
        points += [boundary - step, boundary + step]
    for year in (2020, 2021, 2023, 2024, 2025):
        feb = calendar.monthrange(year, 2)[1]
        points += [
            datetime(year, 2, feb, 0, 0, tzinfo=UTC),
            datetime(year, 2, feb, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(year, 3, 1, tzinfo=UTC),
            datetime(year, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        ]
    # Month ends near the boundary, where calendar arithmetic clamps.
    for back in range(0, 3):
        month_index = boundary.year * 12 + boundary.month - 1 - back
        year, month = divmod(month_index, 12)
        last = calendar.monthrange(year, month + 1)[1]
        for day in {28, 29, 30, 31} & set(range(1, last + 1)):
            points.append(datetime(year, month + 1, day, 23, 59, 59, 999999, tzinfo=UTC))
            points.append(datetime(year, month + 1, day, 0, 0, tzinfo=UTC))
    points += [now + timedelta(days=1), now + timedelta(days=400), None, None, None]
    return points


def seed(server: DatabaseServer, name: str, kind: str, instants: Sequence[datetime | None]) -> None:
    """Insert the instants with ids 1..n."""
    insert_rows(server, name, kind, list(enumerate(instants, start=1)))


def utc(text: str) -> datetime:
    """An ISO instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
