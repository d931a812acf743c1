"""The safety rules of issue 5, each against real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge import mysql, postgres
from dataward.purge.credentials import Credentials, Timeouts
from dataward.purge.engine import EngineOptions, purge
from dataward.purge.plan import ACKNOWLEDGE_ANNOTATION, LargeCutThreshold, Stop
from tests.databases import DatabaseServers, free_port
from tests.purge.support import POLICY, run_purge, store_doc, unique
from tests.purge.tables import count, create_table, insert_rows, read_rows

pytestmark = pytest.mark.db
ENGINES = ["postgresql", "mysql"]
KIND = {"postgresql": "timestamptz", "mysql": "datetime6"}
OLD = datetime(2020, 1, 15, tzinfo=UTC)  # expired under every test category
NEW = datetime.now(UTC) + timedelta(days=30)


def _table(servers: DatabaseServers, engine: str, expired: int, fresh: int = 0, nulls: int = 0):
    live, archive = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("safety")
    create_table(live, table, KIND[engine])
    rows = [(i, OLD + timedelta(seconds=i)) for i in range(1, expired + 1)]
    rows += [(expired + i, NEW) for i in range(1, fresh + 1)]
    rows += [(expired + fresh + i, None) for i in range(1, nulls + 1)]
    insert_rows(live, table, KIND[engine], rows)
    return live, archive, table


@pytest.mark.parametrize("engine", ENGINES)
def test_dry_run_changes_nothing_and_counts_what_a_real_run_deletes(
    servers: DatabaseServers, engine: str
) -> None:
    live, _, table = _table(servers, engine, expired=250, fresh=40, nulls=2)
    before = read_rows(live, table)
    dry = run_purge(store_doc(live, table, batchSize=30, maxRowsPerRun=200, dryRun=True), live)
    assert dry.result == "Succeeded" and dry.dry_run
    assert read_rows(live, table) == before
    assert dry.rows_deleted == 200 and dry.stopped_early == "MaxRowsPerRun"
    assert dry.tables[0].null_triggers == 2

    real = run_purge(store_doc(live, table, batchSize=30, maxRowsPerRun=200), live)
    assert real.rows_deleted == dry.rows_deleted
    dry_all = run_purge(store_doc(live, table, batchSize=30, dryRun=True), live)
    real_all = run_purge(store_doc(live, table, batchSize=30), live)
    assert dry_all.rows_deleted == real_all.rows_deleted == 50


@pytest.mark.parametrize("engine", ENGINES)
def test_max_rows_per_run_stops_early_and_says_so(servers: DatabaseServers, engine: str) -> None:
    live, _, table = _table(servers, engine, expired=120, fresh=5)
    result = run_purge(store_doc(live, table, batchSize=25, maxRowsPerRun=60), live)
    assert result.result == "Succeeded"
    assert result.rows_deleted == 60
    assert result.stopped_early == "MaxRowsPerRun"
    assert result.expired_remaining == 60
    assert result.oldest_expired_age_seconds is not None
    assert result.oldest_expired_age_seconds > 0
    # The oldest go first.
    assert min(read_rows(live, table)) == 61


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("column_type", ["integer", "text"])
def test_a_column_that_is_no_timestamp_is_refused(
    servers: DatabaseServers, engine: str, column_type: str
) -> None:
    live, _ = servers.pair(engine)  # type: ignore[arg-type]
    table = unique("notts")
    sql_type = "BIGINT" if column_type == "integer" else "VARCHAR(40)"
    create_table(live, table, "", ts_sql=sql_type)
    insert_rows(live, table, "raw", [(1, None)])
    live.execute(f"UPDATE {table} SET ts = '1'")
    result = run_purge(store_doc(live, table), live)
    assert result.result == "Failed"
    assert result.error is not None and result.error.category == "ColumnRefused"
    assert "not a timestamp" in result.message
    assert count(live, table) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_missing_table_and_bad_key_column_are_refused(
    servers: DatabaseServers, engine: str
) -> None:
    live, _, table = _table(servers, engine, expired=3)
    missing = run_purge(store_doc(live, unique("nosuch")), live)
    assert missing.error is not None and missing.error.category == "TableNotFound"
    bad_key = run_purge(store_doc(live, table, key_columns=("nope",)), live)
    assert bad_key.error is not None and bad_key.error.category == "ColumnRefused"
    assert count(live, table) == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_suspend_observed_between_batches(servers: DatabaseServers, engine: str) -> None:
    live, _, table = _table(servers, engine, expired=100)
    calls = []

    def suspend_after_two() -> Stop | None:
        calls.append(1)
        if len(calls) >= 2:
            return Stop("Suspended", "spec.purge.suspend became true during the run; stopped.")
        return None

    result = run_purge(store_doc(live, table, batchSize=10), live, check_continue=suspend_after_two)
    assert result.stopped_early == "Suspended"
    assert result.rows_deleted == 10  # checked before the first batch, then before the second
    assert count(live, table) == 90


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hold_set_while_the_run_counts_stops_its_first_batch(
    servers: DatabaseServers, engine: str
) -> None:
    """The run reads the store, then connects, reads the clocks, checks and counts every
    table (minutes on large ones) before its first batch: a legal hold set meanwhile must
    stop that batch too, not only the ones after it."""
    live, _, table = _table(servers, engine, expired=100)
    checks = []

    def held_since_the_start() -> Stop | None:
        checks.append(1)
        return Stop("Suspended", "spec.purge.suspend became true during the run; stopped.")

    result = run_purge(
        store_doc(live, table, batchSize=10), live, check_continue=held_since_the_start
    )
    assert result.stopped_early == "Suspended" and checks
    assert result.rows_deleted == 0
    assert count(live, table) == 100


@pytest.mark.parametrize("engine", ENGINES)
def test_suspended_or_noncompliant_store_is_never_touched(
    servers: DatabaseServers, engine: str
) -> None:
    live, _, table = _table(servers, engine, expired=10)
    suspended = run_purge(store_doc(live, table, suspend=True), live)
    assert suspended.result == "Skipped" and suspended.reason == "Suspended"
    too_long = run_purge(store_doc(live, table, retention="2y"), live)
    assert too_long.result == "Failed" and too_long.reason == "NotCompliant"
    assert "RetentionTooLong" in too_long.message
    assert count(live, table) == 10


@pytest.mark.parametrize("engine", ENGINES)
def test_clock_skew_aborts(servers: DatabaseServers, engine: str) -> None:
    live, _, table = _table(servers, engine, expired=10)
    result = run_purge(
        store_doc(live, table), live, job_clock=lambda: datetime.now(UTC) + timedelta(minutes=6)
    )
    assert result.result == "Failed" and result.reason == "ClockSkew"
    assert count(live, table) == 10
    within = run_purge(
        store_doc(live, table), live, job_clock=lambda: datetime.now(UTC) + timedelta(minutes=4)
    )
    assert within.result == "Succeeded" and within.rows_deleted == 10


@pytest.mark.parametrize("engine", ENGINES)
def test_large_cut_is_held_until_acknowledged(servers: DatabaseServers, engine: str) -> None:
    live, _, table = _table(servers, engine, expired=60, fresh=40)
    options = EngineOptions(large_cut=LargeCutThreshold(fraction=0.10, min_rows=50))
    held = run_purge(store_doc(live, table), live, options=options)
    assert held.result == "Held" and held.reason == "LargePurgeNotAcknowledged"
    assert held.acknowledge_token == "1y-g7-p3-583b7d1b-n110"  # 60 rows and min_rows more
    assert f"{ACKNOWLEDGE_ANNOTATION}=1y-g7-p3-583b7d1b-n110" in held.message
    assert held.expired_remaining == 60
    assert count(live, table) == 100

    wrong = run_purge(
        store_doc(live, table, annotations={ACKNOWLEDGE_ANNOTATION: "0d-g6-p3"}),
        live,
        options=options,
    )
    assert wrong.result == "Held"
    acked = run_purge(
        store_doc(live, table, annotations={ACKNOWLEDGE_ANNOTATION: "1y-g7-p3-583b7d1b-n110"}),
        live,
        options=options,
    )
    assert acked.result == "Succeeded" and acked.rows_deleted == 60


@pytest.mark.parametrize("engine", ENGINES)
def test_an_acknowledgement_left_in_place_does_not_release_a_larger_later_cut(
    servers: DatabaseServers, engine: str
) -> None:
    """GitOps keeps the annotation in the manifest long after the backlog it released is gone.
    Months later a backup of old rows is restored into the table: that cut, 15 times the one
    a person saw, is held again, not deleted on the strength of the old acknowledgement. A
    backlog that grew by a few rows between the hold and the acknowledgement still goes."""
    live, _, table = _table(servers, engine, expired=60, fresh=40)
    options = EngineOptions(large_cut=LargeCutThreshold(fraction=0.10, min_rows=50))
    held = run_purge(store_doc(live, table), live, options=options)
    assert held.result == "Held" and held.acknowledge_token
    token = held.acknowledge_token
    grown = [(100 + i, OLD + timedelta(seconds=i)) for i in range(1, 6)]
    insert_rows(live, table, KIND[engine], grown)
    acked = store_doc(live, table, annotations={ACKNOWLEDGE_ANNOTATION: token})
    first = run_purge(acked, live, options=options)
    assert first.result == "Succeeded" and first.rows_deleted == 65

    restored = [(1000 + i, OLD + timedelta(seconds=i)) for i in range(1, 901)]
    insert_rows(live, table, KIND[engine], restored)
    later = run_purge(acked, live, options=options)
    assert later.result == "Held" and later.reason == "LargePurgeNotAcknowledged"
    assert count(live, table) == 940
    assert later.acknowledge_token and later.acknowledge_token != token


@pytest.mark.parametrize("engine", ENGINES)
def test_unreachable_live_database_fails_cleanly(servers: DatabaseServers, engine: str) -> None:
    live, _, table = _table(servers, engine, expired=1)
    doc = store_doc(live, table)
    doc["spec"]["database"]["port"] = free_port()
    store = parse_store(doc)
    module = postgres if engine == "postgresql" else mysql
    result = purge(
        store,
        parse_policy(POLICY),
        connect_live=lambda: module.connect(
            store.database, Credentials("purger", "purger-secret"), "live", Timeouts()
        ),
        connect_archive=None,
        job_clock=lambda: datetime.now(UTC),
    )
    assert result.result == "Failed" and result.reason == "ConnectionFailed"
    assert "purger-secret" not in result.to_json()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_failure_mid_run_still_reports_the_rows_already_deleted(
    servers: DatabaseServers, engine: str
) -> None:
    """The record is the audit trail: committed deletions count even when the run fails."""
    from dataward.purge.errors import PurgeError

    live, _, table = _table(servers, engine, expired=50)
    reached = []

    def lose_connection_at_third_batch(point: str) -> None:
        if point == "before-select":
            reached.append(point)
            if len(reached) == 3:
                raise PurgeError("ConnectionFailed", "lost the connection (injected)")

    result = run_purge(
        store_doc(live, table, batchSize=10), live, fault=lose_connection_at_third_batch
    )
    assert result.result == "Failed" and result.reason == "ConnectionFailed"
    assert count(live, table) == 30
    assert result.rows_deleted == 20
    assert result.expired_remaining == 30
