"""Locks belong to the application (issue 12, item 3), against real databases.

An application transaction holding row locks must not fail a purge: the locked expired rows
are left for the next run and counted, the rest goes. A lock on a row the purge does not
delete must never make it wait. A legal hold set during a run stops it before the next batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataward.purge.batches import MySQLKeyBatches, PostgresBatches
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_purge, start_cli, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
OLD = datetime.now(UTC) - timedelta(days=400)  # expired in "support" (1y) and "contracts" (1mo)
NEW = datetime.now(UTC) + timedelta(days=30)


@contextmanager
def app_locks(server: DatabaseServer, table: str, ids: list[int]) -> Iterator[None]:
    """An application transaction holding FOR UPDATE on these rows until the block ends."""
    conn = server.admin(autocommit=False)
    try:
        with conn.cursor() as cur:
            # One primary-key lookup per row, reading a column no secondary index covers:
            # exactly these rows are locked (a covering index scan under MariaDB's REPEATABLE
            # READ would lock every row it passes).
            for i in ids:
                cur.execute(f"SELECT payload FROM {table} WHERE id = %s FOR UPDATE", (i,))
                assert len(cur.fetchall()) == 1
        if server.engine == "mysql":
            ((locks,),) = server.query(
                "SELECT count(*) FROM information_schema.INNODB_TRX WHERE trx_rows_locked > %s",
                (len(ids),),
            )
            assert locks == 0, "the application transaction locks more rows than asked"
        yield
    finally:
        conn.rollback()
        conn.close()


def _table(
    servers: DatabaseServers, engine: str, expired: int, fresh: int, *, statutory: bool = False
) -> tuple[DatabaseServer, DatabaseServer, str]:
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("locks")
    create_table(live, table, KIND[engine])
    if statutory:
        create_table(archive, table, KIND[engine])
    rows = [(i, OLD + timedelta(seconds=i)) for i in range(1, expired + 1)]
    rows += [(expired + i, NEW + timedelta(seconds=i)) for i in range(1, fresh + 1)]
    insert_rows(live, table, KIND[engine], rows)
    return live, archive, table


@pytest.mark.parametrize("statutory", [False, True], ids=["plain", "statutory"])
@pytest.mark.parametrize("engine", ENGINES)
def test_rows_an_application_holds_locked_are_skipped_and_counted(
    servers: DatabaseServers, engine: str, statutory: bool
) -> None:
    live, archive, table = _table(servers, engine, expired=100, fresh=10, statutory=statutory)
    locked = [5, 17, 33, 34, 90]
    extra: dict[str, Any] = {"category": "contracts", "archive": archive} if statutory else {}
    with app_locks(live, table, locked):
        started = time.monotonic()
        result = run_purge(
            store_doc(live, table, batchSize=10, **extra),
            live,
            archive if statutory else None,
        )
        took = time.monotonic() - started
    assert result.result == "Succeeded", result.message
    assert result.rows_skipped_locked == len(locked)
    assert result.rows_deleted == 100 - len(locked)
    assert set(read_rows(live, table)) == set(locked) | set(range(101, 111))
    assert result.expired_remaining == len(locked)
    assert "locked by another transaction" in result.message
    assert result.to_dict()["rowsSkippedLocked"] == len(locked)
    if statutory:
        assert result.rows_archived == 100 - len(locked)
        assert set(read_rows(archive, table)) == set(range(1, 101)) - set(locked)
    # Bisecting around 5 locked rows costs a few lock timeouts (0.2 s each), not a batch each.
    assert took < 30, f"took {took:.1f}s"
    # The next run, with the locks gone, takes them.
    again = run_purge(
        store_doc(live, table, batchSize=10, **extra), live, archive if statutory else None
    )
    assert again.rows_deleted == len(locked) and again.rows_skipped_locked == 0


@pytest.mark.parametrize("statutory", [False, True], ids=["plain", "statutory"])
@pytest.mark.parametrize("engine", ENGINES)
def test_a_lock_on_an_unexpired_row_never_blocks_the_purge(
    servers: DatabaseServers, engine: str, statutory: bool
) -> None:
    """A small table (where planners like full scans): the application locks unexpired rows,
    including the first one past the cutoff, which a range read of the expired rows touches."""
    live, archive, table = _table(servers, engine, expired=5, fresh=5, statutory=statutory)
    extra: dict[str, Any] = {"category": "contracts", "archive": archive} if statutory else {}
    with app_locks(live, table, [6, 7, 10]):
        result = run_purge(
            store_doc(live, table, batchSize=100, **extra),
            live,
            archive if statutory else None,
        )
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == 5
    assert result.rows_skipped_locked == 0
    assert set(read_rows(live, table)) == {6, 7, 8, 9, 10}


@contextmanager
def app_moves_trigger(server: DatabaseServer, table: str, row: int) -> Iterator[None]:
    """An application transaction that moved a row's trigger a second later (a "last
    activity" refreshed), uncommitted until the block ends: on MariaDB it holds the row's
    old and new entries in the trigger index locked."""
    conn = server.admin(autocommit=False)
    later = "ts + interval '1 second'" if server.engine == "postgresql" else (
        "ts + INTERVAL 1 SECOND"
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {table} SET ts = {later} WHERE id = %s", (row,))
            assert cur.rowcount == 1
        yield
    finally:
        conn.rollback()
        conn.close()


@pytest.mark.parametrize("statutory", [False, True], ids=["plain", "statutory"])
@pytest.mark.parametrize("engine", ENGINES)
def test_an_application_moving_the_first_unexpired_row_never_blocks_the_purge(
    servers: DatabaseServers, engine: str, statutory: bool
) -> None:
    """The first row past the cutoff is the index entry a range read of the expired rows
    meets last; an application updating that row's trigger (uncommitted) must not make any
    batch wait, nor an expired row be skipped as if it were locked. Batches of 2 make every
    batch end right before a row: each must stop reading at its own last row."""
    live, archive, table = _table(servers, engine, expired=5, fresh=5, statutory=statutory)
    extra: dict[str, Any] = {"category": "contracts", "archive": archive} if statutory else {}
    for batch in (100, 2):
        if batch == 2:
            expired = [(i, OLD + timedelta(seconds=i)) for i in range(1, 6)]
            insert_rows(live, table, KIND[engine], expired)
        with app_moves_trigger(live, table, 6):
            result = run_purge(
                store_doc(live, table, batchSize=batch, **extra),
                live,
                archive if statutory else None,
            )
        assert result.result == "Succeeded", result.message
        assert result.rows_skipped_locked == 0, f"batch {batch}: {result.message}"
        assert result.rows_deleted == 5, f"batch {batch}"
        assert set(read_rows(live, table)) == {6, 7, 8, 9, 10}
        if statutory:
            archive.execute(f"DELETE FROM {table}")


def _write_atomically(path: Path, doc: dict[str, Any]) -> None:
    part = path.with_suffix(".part")
    part.write_text(yaml.safe_dump(doc))
    os.replace(part, path)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hold_set_mid_run_stops_before_the_next_batch(
    servers: DatabaseServers, engine: str, tmp_path: Path
) -> None:
    """With the CLI's default re-check settings, at most the batch in flight when the store
    says `suspend: true` commits after that."""
    batch = 20
    total = 20000
    live, _, table = _table(servers, engine, expired=total, fresh=0)
    doc = store_doc(live, table, batchSize=batch)
    run = start_cli(tmp_path, doc, extra_args=("--large-purge-rows", str(10 * total)))
    deadline = time.monotonic() + 60
    while count(live, table) > total - 10 * batch:
        assert run.process.poll() is None, "the run ended before the hold could be set"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    doc["spec"]["purge"]["suspend"] = True
    _write_atomically(run.store_file, doc)
    at_hold = count(live, table)
    finished = run.wait()
    result = finished.result
    assert result["result"] == "Succeeded" and result["stoppedEarly"] == "Suspended", result
    after_hold = at_hold - count(live, table)
    assert after_hold <= batch, f"{after_hold} rows deleted after the hold was set"
    assert count(live, table) > 0


@pytest.mark.parametrize("statutory", [False, True], ids=["plain", "statutory"])
@pytest.mark.parametrize("engine", ENGINES)
def test_composite_keys_and_timestamp_ties_across_batches(
    servers: DatabaseServers, engine: str, statutory: bool
) -> None:
    """Many rows share each trigger instant, so batch boundaries fall inside ties and the
    keyset cursor must order by (ts, key1, key2); one of them is locked."""
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("pairs")
    if engine == "postgresql":
        ddl = (
            f"CREATE TABLE {table} (id bigint, region text, ts timestamptz, "
            "PRIMARY KEY (id, region))"
        )
        extra_ddl = [f"CREATE INDEX ON {table} (ts)", f"ALTER TABLE {table} OWNER TO purger"]
    else:
        ddl = (
            f"CREATE TABLE {table} (id BIGINT, region VARCHAR(8), ts DATETIME(6), "
            "PRIMARY KEY (id, region), INDEX (ts)) ENGINE=InnoDB"
        )
        extra_ddl = []
    for server in (live, archive) if statutory else (live,):
        server.execute(ddl, *extra_ddl)
    ts_value = OLD if engine == "postgresql" else OLD.replace(tzinfo=None)
    fresh = NEW if engine == "postgresql" else NEW.replace(tzinfo=None)
    rows = [
        (i, region, ts_value + timedelta(seconds=i // 7))
        for i in range(60)
        for region in ("eu", "us", "ap")
    ] + [(1000, "eu", fresh)]
    conn = live.admin(autocommit=False)
    with conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} (id, region, ts) VALUES (%s, %s, %s)", rows)
    conn.commit()
    conn.close()
    extra: dict[str, Any] = {"category": "contracts", "archive": archive} if statutory else {}
    locker = live.admin(autocommit=False)
    try:
        with locker.cursor() as cur:
            cur.execute(f"SELECT ts FROM {table} WHERE id = 20 AND region = 'us' FOR UPDATE")
        result = run_purge(
            store_doc(live, table, batchSize=16, key_columns=("id", "region"), **extra),
            live,
            archive if statutory else None,
        )
    finally:
        locker.rollback()
        locker.close()
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == 179 and result.rows_skipped_locked == 1
    left = {(int(i), str(r)) for i, r in live.query(f"SELECT id, region FROM {table}")}
    assert left == {(20, "us"), (1000, "eu")}
    if statutory:
        archived = archive.query(f"SELECT count(*) FROM {table}")[0][0]
        assert archived == 179 and result.rows_archived == 179


@pytest.mark.parametrize("engine", ENGINES)
def test_a_locked_archive_fails_the_run_instead_of_skipping_live_rows(
    servers: DatabaseServers, engine: str
) -> None:
    """Locks on the archive side are not the application's row locks on live data: the run
    stops with a timeout, every live row stays, none is counted as skipped."""
    live, archive, table = _table(servers, engine, expired=30, fresh=0, statutory=True)
    blocker = archive.admin(autocommit=False)
    try:
        with blocker.cursor() as cur:
            if engine == "postgresql":
                cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            else:  # an uncommitted row under key 1: the purge's INSERT of row 1 must wait
                cur.execute(
                    f"INSERT INTO {table} (id, ts, payload) VALUES (1, %s, 'x')",
                    (OLD.replace(tzinfo=None),),
                )
        started = time.monotonic()
        result = run_purge(
            store_doc(live, table, category="contracts", archive=archive, batchSize=10),
            live,
            archive,
        )
        took = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    assert result.result == "Failed" and result.reason == "Timeout", result.message
    assert result.rows_skipped_locked == 0 and result.rows_deleted == 0
    assert count(live, table) == 30
    assert took < 10, f"took {took:.1f}s"


@pytest.mark.parametrize("statutory", [False, True], ids=["plain", "statutory"])
@pytest.mark.parametrize("batch", [16, 1000])
def test_a_key_order_sweep_waits_for_no_unexpired_row_and_skips_only_the_held_expired_ones(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch, batch: int, statutory: bool
) -> None:
    """MariaDB, expired and unexpired rows interleaved in key order: every expired row fits
    the run's budget and half the key span is expired, so the batches sweep the primary
    key, and each batch reads the unexpired rows of its key range too. Application locks on
    unexpired rows inside those ranges, and an uncommitted move of an unexpired row's
    trigger, must neither make the run wait nor leave an expired row behind; the two
    expired rows the application holds are skipped and counted (and not archived)."""
    live, archive = servers.pair("mysql")
    table = unique("sweep")
    create_table(live, table, KIND["mysql"])
    if statutory:
        create_table(archive, table, KIND["mysql"])
    rows = [(i, (OLD if i % 2 else NEW) + timedelta(seconds=i)) for i in range(1, 201)]
    insert_rows(live, table, KIND["mysql"], rows)
    swept = []
    plain = MySQLKeyBatches._boundary_key

    def counted(self: MySQLKeyBatches, *args: Any) -> Any:
        swept.append(args)
        return plain(self, *args)

    monkeypatch.setattr(MySQLKeyBatches, "_boundary_key", counted)
    held_expired = [31, 77]
    extra: dict[str, Any] = {"category": "contracts", "archive": archive} if statutory else {}
    with app_locks(live, table, [10, 50, 52, 120, 200, *held_expired]):
        with app_moves_trigger(live, table, 100):
            started = time.monotonic()
            result = run_purge(
                store_doc(live, table, batchSize=batch, **extra),
                live,
                archive if statutory else None,
            )
            took = time.monotonic() - started
    assert swept, "the run did not sweep the primary key"
    assert result.result == "Succeeded", result.message
    assert result.rows_skipped_locked == len(held_expired), result.message
    assert result.rows_deleted == 100 - len(held_expired)
    assert set(read_rows(live, table)) == set(range(2, 201, 2)) | set(held_expired)
    if statutory:
        assert result.rows_archived == 100 - len(held_expired)
        assert set(read_rows(archive, table)) == set(range(1, 201, 2)) - set(held_expired)
    assert took < 30, f"took {took:.1f}s"


def _insert_once_after(
    monkeypatch: pytest.MonkeyPatch,
    cls: type,
    method: str,
    live: DatabaseServer,
    table: str,
    engine: str,
    row: tuple[int, datetime],
) -> list[int]:
    """Insert `row` into `table` right after the first call of `cls.method` (an application
    backdating a row mid-batch); the returned list holds its key once it was inserted."""
    injected: list[int] = []
    real = getattr(cls, method)

    def then_inserted(self: Any, *args: Any) -> Any:
        found = real(self, *args)
        if not injected:
            insert_rows(live, table, KIND[engine], [row])
            injected.append(row[0])
        return found

    monkeypatch.setattr(cls, method, then_inserted)
    return injected


def test_a_key_order_sweep_stops_at_max_rows_per_run_when_rows_expire_inside_its_range(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """maxRowsPerRun is a circuit breaker. A key-order sweep deletes a batch's key range in
    one statement; a row an application backdates (or inserts already expired) inside that
    range after the batch found its bounds is expired too, and the range DELETE took it
    beyond the run's budget. The DELETE is bounded by the batch, so the run stops at the
    budget and that row waits for the next run."""
    live, _ = servers.pair("mysql")
    table = unique("sweep")
    create_table(live, table, KIND["mysql"])
    rows = [(i, OLD + timedelta(seconds=i)) for i in range(1, 100, 2)]  # 50 expired
    rows += [(1000 + i, NEW) for i in range(50)]
    insert_rows(live, table, KIND["mysql"], rows)
    # After the first batch found its last key, before its DELETE.
    injected = _insert_once_after(
        monkeypatch, MySQLKeyBatches, "_boundary_key", live, table, "mysql", (40, OLD)
    )
    result = run_purge(store_doc(live, table, batchSize=100, maxRowsPerRun=50), live, None)
    assert injected, "the run did not sweep the primary key"
    assert result.rows_deleted == 50, result.message
    assert count(live, table) == 51  # the 50 unexpired rows and one expired row left


def test_a_timestamp_range_batch_stops_at_max_rows_per_run_when_rows_expire_inside_it(
    servers: DatabaseServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL's timestamp-range batch, the same circuit breaker: a row backdated into the
    batch's range after the batch chose its bound is expired, and the range DELETE took it
    beyond maxRowsPerRun. A range that deleted more than the batch is rolled back and the
    batch taken by the keyset statement, which takes exactly its rows."""
    live, _ = servers.pair("postgresql")
    table = unique("range")
    create_table(live, table, KIND["postgresql"])
    rows = [(i, OLD + timedelta(seconds=i)) for i in range(1, 51)]  # 50 expired
    rows += [(1000 + i, NEW) for i in range(50)]
    insert_rows(live, table, KIND["postgresql"], rows)
    # After the batch chose its bound, before its DELETE.
    backdated = (500, OLD + timedelta(seconds=20.5))
    injected = _insert_once_after(
        monkeypatch, PostgresBatches, "_upper", live, table, "postgresql", backdated
    )
    result = run_purge(store_doc(live, table, batchSize=100, maxRowsPerRun=50), live, None)
    assert injected, "the run took no timestamp-range batch"
    assert result.rows_deleted == 50, result.message
    assert count(live, table) == 51  # the 50 unexpired rows and one expired row left
