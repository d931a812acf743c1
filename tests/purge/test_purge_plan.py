"""The pure parts of the purge: plan, gates, cutoff binding, identifiers, the result record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataward.model.durations import Duration, cutoff_for, parse_duration
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.purge.engine import _finished
from dataward.purge.errors import PurgeError
from dataward.purge.plan import (
    ACKNOWLEDGE_ANNOTATION,
    LargeCutThreshold,
    PurgePlan,
    Stop,
    TableCount,
    adapt_batch_size,
    clock_skew,
    dry_run_allocation,
    interruption,
    key_sweep,
    large_cut,
    make_plan,
    next_batch_size,
    refusal,
    server_side_copy,
)
from dataward.purge.result import ErrorInfo, PurgeResult, TableResult
from dataward.purge.sql import MYSQL, POSTGRES, TableStatements, bind_cutoff, parse_table
from tests.databases import DatabaseServer
from tests.expiry import is_safely_expired
from tests.purge.support import POLICY, store_doc

SERVER = DatabaseServer("postgresql", "live", 5432, directory=None, time_zone="UTC")  # type: ignore[arg-type]
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
)
periods = st.builds(Duration, st.integers(0, 100), st.sampled_from(["d", "w", "mo", "y"]))


def _store(**kw: object):  # type: ignore[no-untyped-def]
    return parse_store(store_doc(SERVER, "t", **kw))  # type: ignore[arg-type]


POLICY_V = parse_policy(POLICY)


@given(now=instants, period=periods, trigger=instants)
def test_plan_cutoff_matches_the_definition(
    now: datetime, period: Duration, trigger: datetime
) -> None:
    store = parse_store(store_doc(SERVER, "t", category="support", retention=None))
    policy = parse_policy(
        {
            **POLICY,
            "spec": {
                "categories": [
                    {"name": "support", "retention": {"period": str(period), "trigger": "x"}}
                ]
            },
        }
    )
    plan = make_plan(store, policy, now)
    assert (trigger <= plan.cutoff) == is_safely_expired(trigger, period, now)


@given(
    now=instants,
    value=instants,
    precision=st.integers(0, 6),
)
def test_bound_cutoff_compares_like_the_exact_one(
    now: datetime, value: datetime, precision: int
) -> None:
    """Without a zone, for a value stored at the column's precision, `v <= bound` iff
    `v <= cutoff` (the UTC calendar's safe cutoff, as before records[].timeZone)."""
    period = parse_duration("1mo")
    cutoff = cutoff_for(now, period)
    step = 10 ** (6 - precision)
    stored = value.replace(microsecond=value.microsecond - value.microsecond % step)
    bound = bind_cutoff(now, period, "wallclock", precision)
    assert isinstance(bound, datetime)
    assert (stored.replace(tzinfo=None) <= bound) == (stored <= cutoff)
    instant = bind_cutoff(now, period, "instant", precision)
    assert (stored <= instant) == (stored <= cutoff)
    day = bind_cutoff(now, period, "date", None)
    assert isinstance(day, date)
    as_midnight = datetime(stored.year, stored.month, stored.day, tzinfo=UTC)
    assert (stored.date() <= day) == (as_midnight <= cutoff)


@given(st.lists(st.integers(0, 10_000), max_size=6), st.integers(0, 30_000))
def test_dry_run_allocation_is_what_batches_would_take(expired: list[int], max_rows: int) -> None:
    allocation = dry_run_allocation(expired, max_rows)
    assert sum(allocation) == min(sum(expired), max_rows)
    assert all(0 <= a <= e for a, e in zip(allocation, expired, strict=True))
    # Simulate the engine's batches with a batch size of 7.
    used, simulated = 0, []
    for rows in expired:
        taken = 0
        while (limit := next_batch_size(7, max_rows, used)) > 0:
            got = min(limit, rows - taken)
            taken += got
            used += got
            if got < limit:
                break
        simulated.append(taken)
    assert tuple(simulated) == allocation


def test_refusal_gates() -> None:
    assert refusal(_store(), POLICY_V) is None
    gate = refusal(_store(suspend=True), POLICY_V)
    assert gate is not None and (gate.result, gate.reason) == ("Skipped", "Suspended")
    gate = refusal(_store(retention="2y"), POLICY_V)
    assert gate is not None and gate.result == "Failed" and "RetentionTooLong" in gate.message
    gate = refusal(_store(category="contracts"), POLICY_V)  # statutory without archive
    assert gate is not None and "ArchiveRequired" in gate.message
    assert refusal(_store(), None) is not None


def test_clock_skew_bound() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    bound = timedelta(minutes=5)
    assert clock_skew(now, now + bound, bound) is None
    assert clock_skew(now, now - bound, bound) is None
    gate = clock_skew(now, now + bound + timedelta(microseconds=1), bound)
    assert gate is not None and gate.reason == "ClockSkew"


class _Clock:
    """A session that only tells its server's time (all `_plan` asks of one)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def server_now(self) -> datetime:
        return self.now


JOB_NOON = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("live_ahead", "archive_ahead"),
    [(timedelta(minutes=4, seconds=59), timedelta(0)),
     (timedelta(0), timedelta(minutes=4, seconds=59)),
     (timedelta(minutes=4, seconds=59), timedelta(minutes=4, seconds=59)),
     (-timedelta(minutes=4, seconds=59), timedelta(minutes=4, seconds=59))],
)  # fmt: skip
def test_a_database_clock_ahead_of_the_job_within_the_bound_lets_no_row_go_early(
    live_ahead: timedelta, archive_ahead: timedelta
) -> None:
    """Within the allowed skew either clock may be the right one: the run plans at the
    earlier, so no row (live, or archived past the statute) is taken before its own expiry
    by either clock."""
    from dataward.purge.engine import EngineOptions, _plan

    archived = _Clock(JOB_NOON + archive_ahead)
    for category, archive in (("newsletter", None), ("contracts", archived)):
        store = parse_store(store_doc(
            SERVER, "t", category=category, archive=SERVER if archive else None,
            archive_port=5433,
        ))  # fmt: skip
        live = _Clock(JOB_NOON + live_ahead)
        plan = _plan(store, POLICY_V, live, archive, EngineOptions(), lambda: JOB_NOON)  # type: ignore[arg-type]
        assert isinstance(plan, PurgePlan)
        for clock in (JOB_NOON, live.now):
            assert is_safely_expired(plan.cutoff, plan.retention, clock), (category, clock)
        if archive is not None:
            assert plan.archive_cutoff is not None and plan.statutory is not None
            for clock in (JOB_NOON, archive.now):
                assert is_safely_expired(plan.archive_cutoff, plan.statutory, clock), clock
    # The newsletter's 0d: a row of the job's noon plus a second has not expired at noon.
    assert not is_safely_expired(JOB_NOON + SECOND, Duration(0, "d"), JOB_NOON)


def test_large_cut_threshold_and_acknowledgement() -> None:
    store = _store()
    plan = make_plan(store, POLICY_V, datetime(2025, 1, 1, tzinfo=UTC))
    threshold = LargeCutThreshold(0.10, 1000)
    small = [TableCount("t", 1000, 2000)]  # not more than min_rows
    assert large_cut(store, plan, small, threshold) is None
    routine = [TableCount("t", 5000, 100_000)]  # 5%
    assert large_cut(store, plan, routine, threshold) is None
    big = [TableCount("t", 20_000, 100_000)]
    gate = large_cut(store, plan, big, threshold)
    assert gate is not None and gate.result == "Held"
    # The cut of 20,000 rows, and a tenth more for the rows that expire before the next run.
    asked = f"{plan.acknowledge_token}-n22000"
    assert f"{ACKNOWLEDGE_ANNOTATION}={asked} " in gate.message
    acked = _store(annotations={ACKNOWLEDGE_ANNOTATION: asked})
    assert large_cut(acked, plan, big, threshold) is None
    assert large_cut(acked, plan, [TableCount("t", 22_000, 100_000)], threshold) is None
    assert large_cut(acked, plan, [TableCount("t", 22_001, 100_000)], threshold) is not None
    two = [TableCount("t", 20_000, 100_000), TableCount("u", 30_000, 100_000)]
    assert large_cut(acked, plan, two, threshold) is not None  # each large table is bounded
    # An earlier release's annotation (no rows named) releases nothing now.
    bare = _store(annotations={ACKNOWLEDGE_ANNOTATION: plan.acknowledge_token})
    assert large_cut(bare, plan, big, threshold) is not None
    # A small cut's allowance is at least min_rows more.
    assert threshold.allowance(1_200) == 2_200
    dry = make_plan(_store(dryRun=True), POLICY_V, datetime(2025, 1, 1, tzinfo=UTC))
    assert large_cut(store, dry, big, threshold) is None


def test_interruption_between_batches() -> None:
    plan = make_plan(_store(), POLICY_V, datetime(2025, 1, 1, tzinfo=UTC))
    assert interruption(plan, _store(), POLICY_V) is None
    assert interruption(plan, _store(suspend=True), POLICY_V).reason == "Suspended"  # type: ignore[union-attr]
    assert interruption(plan, _store(retention="2y"), POLICY_V).reason == "NotCompliant"  # type: ignore[union-attr]
    assert interruption(plan, _store(retention="6mo"), POLICY_V).reason == "RetentionChanged"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        "t; DROP TABLE x",
        'a"b',
        "a`b",
        "a.b.c",
        "1abc",
        "",
        "a b",
        "tab\u00e9",
        "x" * 64,
        "a.",
        ".a",
    ],
)
def test_identifiers_that_are_not_plain_are_refused(bad: str) -> None:
    with pytest.raises(PurgeError):
        parse_table(bad)


def test_identifiers_are_quoted_per_engine() -> None:
    table = parse_table("Crm.Support_Inquiries")
    pg = TableStatements(POSTGRES, table, "Inquired_At", ("id", "Region"))
    assert pg.delete_keys(2) == (
        'DELETE FROM "crm"."support_inquiries" WHERE (("id", "region") IN ((%s, %s), (%s, %s))) '
        'AND "inquired_at" <= %s AND "inquired_at" > \'-infinity\''
    )
    my = TableStatements(MYSQL, table, "ts", ("id",))
    assert my.boundary(True, "ts") == (
        "SELECT `ts`, `id` FROM `Crm`.`Support_Inquiries` FORCE INDEX (`ts`) WHERE `ts` <= %s "
        "AND `ts` >= %s AND (`ts` > %s OR (`ts` = %s AND `id` > %s)) ORDER BY `ts`, `id` "
        "LIMIT 1 OFFSET %s"
    )
    # The keys come from a derived table that drives point lookups on the unique index.
    through = my.delete_through(False, "PRIMARY", "ts")
    assert through.startswith("DELETE dw_t FROM (SELECT `id` FROM `Crm`.`Support_Inquiries`")
    assert "STRAIGHT_JOIN `Crm`.`Support_Inquiries` AS dw_t FORCE INDEX (`PRIMARY`)" in through
    # ... read in timestamp order and only up to the batch's own last row.
    assert "ORDER BY `ts` LIMIT %s) AS dw_p" in through
    assert my.lock_through(True, ["id", "ts"], "PRIMARY", None).endswith("FOR UPDATE")
    # MySQL deletes through the unique index by point lookups; composite keys as ORs.
    assert my.delete_keys(2, "PRIMARY") == (
        "DELETE `Crm`.`Support_Inquiries` FROM `Crm`.`Support_Inquiries` FORCE INDEX (`PRIMARY`) "
        "WHERE (`id` IN (%s, %s)) AND `ts` <= %s"
    )
    pair = TableStatements(MYSQL, table, "ts", ("a", "b"))
    assert "((`a` = %s AND `b` = %s) OR (`a` = %s AND `b` = %s))" in pair.delete_keys(2, "k")
    # No statement of a purge needs the UPDATE privilege.
    assert "DUPLICATE" not in MYSQL.insert_rows(table, ["id", "ts"], ["id"], 1)
    assert 'ON CONFLICT ("id") DO NOTHING' in POSTGRES.insert_rows(table, ["id"], ["id"], 1)
    for statement in (pg.delete_batch(True, None), pg.delete_batch(False, ["id", "ts"])):
        assert "FOR UPDATE" not in statement and "ctid = ANY(ARRAY(" in statement
        # The cutoff re-check must not be an index condition (it would scan the whole range).
        assert '("inquired_at" <= %s AND "inquired_at" > \'-infinity\') IS TRUE' in statement


def test_result_json_shape_and_termination_limit() -> None:
    start = datetime(2025, 3, 31, 3, 17, tzinfo=UTC)
    result = PurgeResult(
        store="crm/st",
        result="Failed",
        dry_run=False,
        start_time=start,
        completion_time=start + timedelta(seconds=2.5),
        message="x" * 5000,
        reason="ArchiveUnavailable",
        cutoff=start - timedelta(days=30),
        tables=tuple(TableResult(f"t{i}", rows_deleted=i) for i in range(200)),
        error=ErrorInfo("ArchiveUnavailable", "could not connect"),
    )
    data = json.loads(result.to_json())
    assert data["rowsDeleted"] == sum(range(200))
    assert data["cutoff"] == "2025-03-01T03:17:00Z"
    assert data["durationSeconds"] == 2.5
    assert data["error"] == {"category": "ArchiveUnavailable", "message": "could not connect"}
    message = result.termination_message()
    assert len(message.encode()) <= 4096
    short = json.loads(message)
    assert short["tablesOmitted"] == 200 and short["rowsDeleted"] == data["rowsDeleted"]


def test_rows_skipped_locked_reaches_status_last_purge() -> None:
    """The counter travels record -> termination message -> status.lastPurge, and both CRD
    copies admit it (status is structural: an unknown field would be pruned)."""
    import yaml

    from dataward.checks.purge_runs import last_purge_status
    from tests.purge.support import REPO

    start = datetime(2025, 3, 31, 3, 17, tzinfo=UTC)
    record = PurgeResult(
        store="crm/st",
        result="Succeeded",
        dry_run=False,
        start_time=start,
        completion_time=start,
        message="m",
        tables=(TableResult("a", rows_deleted=3, rows_skipped_locked=2),),
    )
    message = json.loads(record.termination_message())
    assert message["rowsSkippedLocked"] == 2
    assert last_purge_status("job", "Complete", message, {})["rowsSkippedLocked"] == 2
    for path in ("crds", "charts/dataward/crds"):
        crd = yaml.safe_load((REPO / path / "dataward.io_personaldatastores.yaml").read_text())
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        last = schema["properties"]["status"]["properties"]["lastPurge"]["properties"]
        assert last["rowsSkippedLocked"]["type"] == "integer"


@given(
    current=st.integers(1, 100_000),
    elapsed=st.floats(0, 10, allow_nan=False),
    ceiling=st.integers(1, 100_000),
)
def test_adapted_batch_size_moves_towards_the_lock_hold_target(
    current: int, elapsed: float, ceiling: int
) -> None:
    size = adapt_batch_size(current, elapsed, 0.1, ceiling)
    assert 1 <= size <= ceiling
    assert size <= 2 * current  # never more than doubles
    assert size >= min(ceiling, current // 2)  # never less than halves
    if elapsed > 0.1 and current > 1:
        assert size < current  # too slow: smaller
    if 0 < elapsed < 0.04 and current < ceiling:
        assert size > current  # well under the target: larger


def test_adapted_batch_size_examples() -> None:
    assert adapt_batch_size(100, 0.01, 0.1, 10_000) == 200
    assert adapt_batch_size(10_000, 0.01, 0.1, 10_000) == 10_000
    assert adapt_batch_size(10_000, 0.16, 0.1, 100_000) == 5_000
    assert adapt_batch_size(10_000, 0.1, 0.1, 100_000) == 8_000


def test_a_key_sweep_only_when_the_run_takes_every_expired_row_from_a_dense_span() -> None:
    # Every expired row fits the budget and half the span is expired: sweep the key.
    assert key_sweep(expired=1_000_000, span_rows=2_000_000, budget=1_000_000)
    # The budget stops the run early: the oldest must go first, by the timestamp index.
    assert not key_sweep(expired=1_000_001, span_rows=2_000_000, budget=1_000_000)
    # A daily sliver spread over the whole key range: a sweep would read 100 rows per row.
    assert not key_sweep(expired=10_000, span_rows=1_000_000, budget=10**9)
    # Nothing expired: nothing to sweep.
    assert not key_sweep(expired=0, span_rows=0, budget=10**9)
    # An estimate of zero rows (a tiny table): the count decides.
    assert key_sweep(expired=3, span_rows=0, budget=100)


def _edited(generation: int = 8, uid: str = "", **kw: object):  # type: ignore[no-untyped-def]
    """The store as the API returns it after an edit: a new generation (or a new object)."""
    doc = store_doc(SERVER, "t", **kw)  # type: ignore[arg-type]
    doc["metadata"]["generation"] = generation
    if uid:
        doc["metadata"]["uid"] = uid
    return parse_store(doc)


@pytest.mark.parametrize(
    "edited",
    [
        pytest.param(lambda: _edited(timestamp_column="last_seen"), id="timestamp-column"),
        pytest.param(lambda: _edited(key_columns=("tenant", "id")), id="key-columns"),
        pytest.param(lambda: _edited(dryRun=True), id="dry-run"),
        pytest.param(lambda: _edited(maxRowsPerRun=10), id="max-rows"),
        pytest.param(lambda: _edited(generation=7, uid="recreated"), id="recreated-store"),
    ],
)
def test_a_spec_edit_during_the_run_stops_it(edited) -> None:  # type: ignore[no-untyped-def]
    """A careless user edits the store while its purge runs (the column that says when a row
    expires, its keys, dryRun): the batches still to come must not delete by the spec the run
    started with; nor go on against a store deleted and created again under its name."""
    plan = make_plan(_store(), POLICY_V, datetime(2025, 1, 1, tzinfo=UTC))
    stop = interruption(plan, edited(), POLICY_V)
    assert stop is not None and stop.reason == "StoreChanged"
    assert interruption(plan, _store(annotations={"a": "b"}), POLICY_V) is None  # metadata only


def test_an_acknowledgement_does_not_outlive_the_store_it_was_given_for() -> None:
    """The token kept in a GitOps manifest: the store is deleted and created again under the
    same name (generation 7 again, same policy) with the annotation applied from the
    manifest. No person saw the new store's cut, so the old token must not release it."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    big = [TableCount("t", 20_000, 100_000)]
    threshold = LargeCutThreshold(0.10, 1000)
    old = _edited(generation=7, uid="0b5e7a6c-old")
    token = make_plan(old, POLICY_V, now).acknowledge_token + "-n22000"
    assert large_cut(
        _edited(generation=7, uid="0b5e7a6c-old", annotations={ACKNOWLEDGE_ANNOTATION: token}),
        make_plan(old, POLICY_V, now), big, threshold,
    ) is None  # fmt: skip
    kept = {ACKNOWLEDGE_ANNOTATION: token}
    recreated = _edited(generation=7, uid="9f1d2c3b-new", annotations=kept)
    gate = large_cut(recreated, make_plan(recreated, POLICY_V, now), big, threshold)
    assert gate is not None and gate.reason == "LargePurgeNotAcknowledged"
    # nor one copied from a store of the same name in another namespace
    other = store_doc(SERVER, "t", annotations={ACKNOWLEDGE_ANNOTATION: token})
    other["metadata"].update(namespace="billing", uid="0b5e7a6c-old")
    elsewhere = parse_store(other)
    assert large_cut(elsewhere, make_plan(elsewhere, POLICY_V, now), big, threshold) is not None


def test_withdrawing_the_acknowledgement_stops_the_large_cut() -> None:
    """A person acknowledged the wrong store's large cut and removes the annotation while the
    run deletes: the batches still to come must stop; the next run holds again."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    token = make_plan(_store(), POLICY_V, now).acknowledge_token
    acked = _store(annotations={ACKNOWLEDGE_ANNOTATION: token})
    plan = make_plan(acked, POLICY_V, now)
    assert interruption(plan, acked, POLICY_V) is None
    stop = interruption(plan, _store(), POLICY_V)
    assert stop is not None and stop.reason == "AcknowledgementWithdrawn"
    assert interruption(plan, _store(annotations={ACKNOWLEDGE_ANNOTATION: "no"}), POLICY_V)
    # A run that never leant on an acknowledgement goes on when one appears or goes.
    assert interruption(make_plan(_store(), POLICY_V, now), acked, POLICY_V) is None


def test_the_server_side_copy_only_when_every_fact_holds() -> None:
    facts = {
        "same_server": True,
        "mariadb": True,
        "live_table": ("live", "t"),
        "archive_table": ("archive", "t"),
        "engines": ("InnoDB", "InnoDB"),
        "may_insert": True,
        "may_select": True,
    }
    assert server_side_copy(**facts)  # type: ignore[arg-type]
    for name, other in (
        ("same_server", False),
        ("mariadb", False),
        ("archive_table", ("live", "t")),  # the live table itself
        ("engines", ("InnoDB", "MyISAM")),  # no transaction on the archive side
        ("engines", ("InnoDB", None)),  # unknown is not InnoDB
        ("engines", ("Aria", "InnoDB")),
        ("may_insert", False),
        ("may_select", False),
    ):
        assert not server_side_copy(**{**facts, name: other}), name  # type: ignore[arg-type]


def _stopped_run(stop: Stop, deleted: int = 0) -> PurgeResult:
    """The record of a run whose batches ended on `stop` (`deleted` rows gone before it)."""
    start = datetime(2025, 3, 31, 3, 17, tzinfo=UTC)
    plan = make_plan(_store(), POLICY_V, start)
    base = PurgeResult(
        store=plan.store, result="Failed", dry_run=False, start_time=start,
        completion_time=start, message="", cutoff=plan.cutoff,
    )  # fmt: skip
    left = TableResult("t", rows_deleted=deleted, expired_remaining=40)
    return _finished(base, plan, (left,), stop, start + timedelta(seconds=3))


@pytest.mark.parametrize("deleted", [0, 7])  # before the first batch, and after some
@pytest.mark.parametrize("job", ["Complete", "Failed"])
def test_a_store_that_could_not_be_read_again_is_no_successful_run(deleted: int, job: str) -> None:
    """The GET of the store before a batch timed out (or was refused): whether the store is
    still compliant, or under a legal hold, is unknown, so the run is no success and
    PurgeSucceeded is not True, whatever the run deleted before it."""
    from dataward.checks.observed import LastPurge
    from dataward.checks.purge import purge_succeeded
    from dataward.checks.purge_runs import last_purge_status

    stop = Stop("StoreUnavailable", "could not re-read the store (HTTP 403); stopped.")
    record = _stopped_run(stop, deleted)
    assert record.result == "Failed" and record.reason == "StoreUnavailable"
    assert record.error is not None and record.error.category == "StoreUnavailable"
    message = json.loads(record.termination_message())
    last = LastPurge.from_status({"lastPurge": last_purge_status("job", job, message, {})})
    condition = purge_succeeded(last)
    assert (condition.status, condition.reason) == ("False", "StoreUnavailable")
    assert "maxRowsPerRun" not in condition.message
