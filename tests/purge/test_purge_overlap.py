"""PostgreSQL batches committed one after another, and statutory batches on two live sessions
(the archive takes batch k while batch k+1's DELETE runs).

Each test acts on what a wrong implementation would get wrong: counting a batch before its
COMMIT returned, letting the next batch through after a failed COMMIT, losing rows when the
process dies between two commits, a live row gone before its archive copy committed. (Plain
batches ran on two sessions too, each COMMIT overlapping the next batch; measured no faster,
that was removed.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataward.purge.engine import EngineOptions
from dataward.purge.plan import Stop
from tests.databases import DatabaseServer, DatabaseServers
from tests.purge.support import run_cli, run_purge, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
OLD = datetime(2020, 1, 15, tzinfo=UTC)
NEW = datetime.now(UTC) + timedelta(days=30)
SLOW_CHECKS = EngineOptions(lock_hold_target=1000.0)
PURGE_BACKENDS = (
    "SELECT state FROM pg_stat_activity WHERE application_name = 'dataward-purge' "
    "AND datname = current_database()"
)


def _table(servers: DatabaseServers, expired: int, fresh: int) -> tuple[DatabaseServer, str]:
    live, _ = servers.pair("postgresql")
    table = unique("overlap")
    create_table(live, table, "timestamptz")
    rows = [(i, OLD + timedelta(seconds=i)) for i in range(1, expired + 1)]
    rows += [(expired + i, NEW) for i in range(1, fresh + 1)]
    insert_rows(live, table, "timestamptz", rows)
    return live, table


def wait_for_purge_backends_to_end(live: DatabaseServer) -> None:
    """A killed run's COMMIT already on the wire still commits: wait for its backends to end
    (each finishes the statement it received, then sees the closed socket)."""
    deadline = time.monotonic() + 30
    while live.query(PURGE_BACKENDS):
        assert time.monotonic() < deadline, "the killed run's backends did not end"
        time.sleep(0.05)


def test_a_failed_commit_is_not_counted_and_the_open_batch_is_rolled_back(
    servers: DatabaseServers,
) -> None:
    """A deferred constraint trigger refuses, at COMMIT, the batch holding row 25."""
    live, table = _table(servers, expired=50, fresh=2)
    live.execute(
        f"CREATE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF OLD.id = 25 THEN RAISE EXCEPTION 'refused'; END IF; RETURN OLD; END $$",
        f"CREATE CONSTRAINT TRIGGER {table}_refuse AFTER DELETE ON {table} DEFERRABLE "
        f"INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {table}_refuse()",
    )
    result = run_purge(store_doc(live, table, batchSize=10), live)
    assert result.result == "Failed" and result.reason == "DatabaseError", result.message
    # Batches 1 and 2 committed; 3 (ids 21-30) failed at COMMIT while 4 (31-40) was open.
    assert result.rows_deleted == 20
    assert set(read_rows(live, table)) == set(range(21, 53))


def test_max_rows_per_run_counts_the_batch_in_flight(servers: DatabaseServers) -> None:
    live, table = _table(servers, expired=100, fresh=1)
    result = run_purge(store_doc(live, table, batchSize=15, maxRowsPerRun=37), live)
    assert result.rows_deleted == 37 and result.stopped_early == "MaxRowsPerRun"
    assert set(read_rows(live, table)) == set(range(38, 102))


def test_a_hold_seen_before_a_batch_stops_it_and_lands_the_one_in_flight(
    servers: DatabaseServers,
) -> None:
    live, table = _table(servers, expired=80, fresh=1)
    checks: list[int] = []

    def hold_at_the_fourth_check() -> Stop | None:
        checks.append(count(live, table))
        if len(checks) == 4:
            return Stop("LegalHold", "a legal hold was set")
        return None

    landed: list[str] = []
    result = run_purge(
        store_doc(live, table, batchSize=10),
        live,
        check_continue=hold_at_the_fourth_check,
        fault=lambda point: landed.append(point) if point == "after-delete" else None,
    )
    # Asked before batches 1, 2, 3 and 4 (the first too); batch 3 was in flight when the
    # hold was seen: it lands, batch 4 never starts. (A batch takes at most 10 rows; one
    # whose range is predicted from the last batch's pace aims at 9.)
    assert result.stopped_early == "LegalHold" and len(landed) == 3
    assert count(live, table) == checks[-1] == 81 - result.rows_deleted
    assert 27 <= result.rows_deleted <= 30


@pytest.mark.parametrize(
    ("fault", "left"),
    [
        # batch 2 deleted on the second session while batch 1's COMMIT is on the wire
        ("after-select:2", 71),
        # batch 2 committed on the second session, batch 3 open on the first
        ("after-delete:2", 61),
        ("after-select:3", 61),
    ],
)
def test_a_kill_between_the_two_sessions_commits_loses_nothing(
    servers: DatabaseServers, fault: str, left: int, tmp_path: Path
) -> None:
    live, table = _table(servers, expired=80, fresh=1)
    crashed = run_cli(tmp_path, store_doc(live, table, batchSize=10), fault=fault)
    assert crashed.returncode == 137, crashed.stderr
    wait_for_purge_backends_to_end(live)
    assert count(live, table) == left
    assert set(read_rows(live, table)) == set(range(82 - left, 82))
    rerun = run_cli(tmp_path, store_doc(live, table, batchSize=10))
    assert rerun.returncode == 0 and rerun.result["rowsDeleted"] == left - 1
    assert set(read_rows(live, table)) == {81}


def test_statutory_rows_leave_live_only_after_their_archive_copy_committed(
    servers: DatabaseServers,
) -> None:
    """Statutory batches: the archive takes batch k while batch k+1's DELETE runs on the
    other live session; at every step each row gone from live is in the archive."""
    live, archive = servers.pair("postgresql")
    table = unique("overlap_statutory")
    create_table(live, table, "timestamptz")
    create_table(archive, table, "timestamptz")
    now = datetime.now(UTC)
    rows = [(i, now - timedelta(days=400, seconds=i)) for i in range(1, 61)]
    insert_rows(live, table, "timestamptz", [*rows, (61, NEW), (62, NEW)])
    everything = set(range(1, 63))
    seen: list[tuple[str, int, int, list[str]]] = []

    def check(point: str) -> None:
        gone = everything - set(read_rows(live, table))
        archived = set(read_rows(archive, table))
        assert gone <= archived, f"at {point}: rows {sorted(gone - archived)} are nowhere"
        states = sorted(str(state) for (state,) in live.query(PURGE_BACKENDS))
        seen.append((point, len(gone), len(archived), states))

    doc = store_doc(live, table, category="contracts", archive=archive, batchSize=10)
    # (a lock-hold target the slow checks cannot reach: the batch size stays 10)
    result = run_purge(doc, live, archive, fault=check, options=SLOW_CHECKS)
    assert result.result == "Succeeded", result.message
    assert result.rows_deleted == result.rows_archived == 60
    assert set(read_rows(live, table)) == {61, 62}
    assert set(read_rows(archive, table)) == set(range(1, 61))
    landed = [(gone, archived, states) for point, gone, archived, states in seen
              if point == "after-delete"]  # fmt: skip
    # Batch k's live COMMIT returned: k batches gone and archived, none more (batch k+1 is
    # deleted on the other session, uncommitted, and the archive has not got it yet).
    assert [(g, a) for g, a, _ in landed] == [(10 * k, 10 * k) for k in range(1, 7)]
    assert all(states == ["idle", "idle in transaction"] for _, _, states in landed), landed
