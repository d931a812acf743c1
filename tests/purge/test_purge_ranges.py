"""PostgreSQL's timestamp-range batches, against a real server.

A batch deletes every expired row up to the trigger of its `limit`-th row, unless many rows
share that trigger: then it takes exactly `limit` rows by `(ts, keys)` instead. Either way a
batch stays near `limit` rows, the oldest go first, and nothing past the cutoff goes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataward.purge.batches import Cursor, PostgresBatches
from dataward.purge.engine import EngineOptions, no_fault
from dataward.purge.plan import LargeCutThreshold
from dataward.purge.sql import TableName, TableStatements
from tests.databases import DatabaseServers
from tests.purge.support import connector, run_purge, store_doc, unique
from tests.purge.tables import create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
OLD = datetime.now(UTC) - timedelta(days=400)
NEW = datetime.now(UTC) + timedelta(days=30)
CUTOFF = datetime.now(UTC) - timedelta(days=365)
NO_HOLD = EngineOptions(large_cut=LargeCutThreshold(fraction=1.0, min_rows=10**12))


def _crowded_table(servers: DatabaseServers) -> tuple[str, dict[int, datetime]]:
    """300 spread-out expired rows, 500 expired rows sharing one instant, 300 more spread
    out, 200 unexpired rows (100 of them sharing one instant)."""
    live = servers.pg_live
    table = unique("ranges")
    create_table(live, table, "timestamptz")
    rows: dict[int, datetime] = {}
    for i in range(1, 301):
        rows[i] = OLD + timedelta(seconds=i)
    for i in range(301, 801):
        rows[i] = OLD + timedelta(seconds=500)
    for i in range(801, 1101):
        rows[i] = OLD + timedelta(seconds=1000 + i)
    for i in range(1101, 1201):
        rows[i] = NEW + timedelta(seconds=i)
    for i in range(1201, 1301):
        rows[i] = NEW
    insert_rows(live, table, "timestamptz", rows.items())
    return table, rows


def test_a_batch_stays_near_its_size_even_when_one_instant_holds_many_rows(
    servers: DatabaseServers,
) -> None:
    table, _ = _crowded_table(servers)
    session = connector(servers.pg_live, "live")()
    try:
        statements = TableStatements(session.dialect, TableName(None, table), "ts", ("id",))
        batches = PostgresBatches(session, statements, CUTOFF)
        after: Cursor | None = None
        limit = 40
        deleted = 0
        oldest_left_before: list[datetime] = []
        for _ in range(200):
            step = batches.delete(after, limit, no_fault)
            session.commit()
            assert step.deleted <= limit, step
            deleted += step.deleted
            left = [ts for ts, _ in read_rows(servers.pg_live, table).values() if ts is not None]
            expired_left = [ts for ts in left if ts <= CUTOFF]
            if expired_left:
                oldest_left_before.append(min(expired_left))
            if step.picked < limit or step.last is None:
                break
            after = step.last
    finally:
        session.close()
    assert deleted == 1100
    # Oldest first: the oldest expired row left never moves backwards.
    assert oldest_left_before == sorted(oldest_left_before)
    assert set(read_rows(servers.pg_live, table)) == set(range(1101, 1301))


def test_a_run_with_a_crowded_instant_deletes_exactly_the_expired_rows_oldest_first(
    servers: DatabaseServers,
) -> None:
    table, rows = _crowded_table(servers)
    live = servers.pg_live
    first = run_purge(
        store_doc(live, table, batchSize=64, maxRowsPerRun=600), live, options=NO_HOLD
    )
    assert first.result == "Succeeded", first.message
    assert first.rows_deleted == 600
    kept = read_rows(live, table)
    gone = set(rows) - set(kept)
    newest_gone = max(rows[i] for i in gone)
    assert all(
        ts is None or ts >= newest_gone for i, (ts, _) in kept.items() if rows[i] <= CUTOFF
    ), "a younger expired row went before an older one"
    second = run_purge(store_doc(live, table, batchSize=64), live, options=NO_HOLD)
    assert second.rows_deleted == 500
    assert set(read_rows(live, table)) == set(range(1101, 1301))


def test_statutory_ranges_and_a_crowded_instant_all_reach_the_archive(
    servers: DatabaseServers,
) -> None:
    """Range batches travel by COPY, the crowded instant by the keyset path: every row once."""
    table, rows = _crowded_table(servers)
    live, archive = servers.pair("postgresql")
    create_table(archive, table, "timestamptz")
    result = run_purge(
        store_doc(live, table, batchSize=64, category="contracts", archive=archive),
        live,
        archive,
        options=NO_HOLD,
    )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 1100
    assert set(read_rows(live, table)) == set(range(1101, 1301))
    copied = read_rows(archive, table)
    assert set(copied) == set(range(1, 1101))
    assert all(copied[i][0] == rows[i] for i in copied)


def test_a_predicted_range_never_exceeds_the_batch_when_the_rows_crowd_in(
    servers: DatabaseServers,
) -> None:
    """A batch that follows a range batch guesses its upper trigger from that batch's pace
    instead of walking the index; rows that suddenly crowd in (2,000 a millisecond apart
    after 100 an hour apart) must not make a batch larger than its limit, nor skip a row,
    nor take one past the cutoff (the first unexpired row is a microsecond after it)."""
    live = servers.pg_live
    table = unique("pace")
    create_table(live, table, "timestamptz")
    rows: dict[int, datetime] = {}
    for i in range(1, 101):
        rows[i] = OLD + timedelta(hours=i)
    for i in range(101, 2101):
        rows[i] = OLD + timedelta(hours=101, milliseconds=i)
    for i in range(2101, 2151):
        rows[i] = OLD + timedelta(hours=i - 1998)
    for i in range(2151, 2171):
        rows[i] = CUTOFF + timedelta(microseconds=i - 2150)
    insert_rows(live, table, "timestamptz", rows.items())
    session = connector(live, "live")()
    bounds = 0
    query = session.query

    def counting(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        nonlocal bounds
        bounds += "OFFSET" in sql
        return query(sql, params)  # type: ignore[arg-type]

    session.query = counting  # type: ignore[method-assign]
    try:
        statements = TableStatements(session.dialect, TableName(None, table), "ts", ("id",))
        batches = PostgresBatches(session, statements, CUTOFF)
        after: Cursor | None = None
        limit, steps, deleted = 50, 0, 0
        for _ in range(500):
            step = batches.delete(after, limit, no_fault)
            session.commit()
            steps += 1
            assert step.deleted <= limit, step
            deleted += step.deleted
            left = read_rows(live, table)
            gone = set(rows) - set(left)
            assert gone == set(range(1, len(gone) + 1)), "a row was skipped or taken early"
            if step.picked < limit or step.last is None:
                break
            after = step.last
    finally:
        session.close()
    assert deleted == 2150
    assert set(read_rows(live, table)) == set(range(2151, 2171))
    # Spread-out rows were taken without a bound query.
    assert bounds < steps - 20, (bounds, steps)


def test_a_slow_predicted_range_is_rolled_back_and_its_timeout_does_not_outlive_it(
    servers: DatabaseServers,
) -> None:
    """Every DELETE of more than one row takes over 20 ms (a trigger sleeps 10 ms a row), so
    each predicted range runs past twice a 1 ms lock-hold target and is cancelled: the batch
    must still be done (bounded from the index), and the cancelling statement timeout must
    not stay on the session for the batches and counts after it."""
    live = servers.pg_live
    table = unique("slow")
    create_table(live, table, "timestamptz")
    live.execute(
        f"CREATE FUNCTION {table}_slow() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(0.01); RETURN OLD; END $$",
        f"CREATE TRIGGER {table}_slow BEFORE DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION {table}_slow()",
    )
    rows = {i: OLD + timedelta(hours=i) for i in range(1, 41)}
    rows[41] = NEW
    insert_rows(live, table, "timestamptz", rows.items())
    session = connector(live, "live")()
    try:
        ((before,),) = session.query("SHOW statement_timeout")
        session.commit()
        statements = TableStatements(session.dialect, TableName(None, table), "ts", ("id",))
        batches = PostgresBatches(session, statements, CUTOFF, hold=0.001)
        after: Cursor | None = None
        cancelled = 0
        execute = session.execute

        def watching(sql: str, params: object = ()) -> int:
            nonlocal cancelled
            try:
                return execute(sql, params)  # type: ignore[arg-type]
            except Exception:
                cancelled += 1
                raise

        session.execute = watching  # type: ignore[method-assign]
        for _ in range(50):
            step = batches.delete(after, 4, no_fault)
            session.commit()
            assert step.deleted <= 4
            ((now,),) = session.query("SHOW statement_timeout")
            session.commit()
            assert now == before, "the predicted range's timeout outlived its transaction"
            if step.picked < 4 or step.last is None:
                break
            after = step.last
    finally:
        session.close()
    assert cancelled >= 5, "no predicted range was cancelled: the test did not test it"
    assert set(read_rows(live, table)) == {41}
