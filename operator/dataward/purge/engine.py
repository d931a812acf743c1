"""Run a purge: the gates from `plan`, then batches against live (and archive) sessions.

Every batch of a table:
1. live: `SELECT keys (all columns when archiving) ... WHERE ts <= cutoff ORDER BY ts, keys
   LIMIT n FOR UPDATE`: the oldest expired rows, locked until this batch commits;
2. statutory only: archive: INSERT them keeping rows already there (idempotent on the key
   columns), COMMIT, then read the keys back; any key missing aborts the run with the live
   transaction rolled back, so nothing of the batch is deleted;
3. live: `DELETE ... WHERE keys IN (...) AND ts <= cutoff` (the cutoff re-checked), COMMIT.

A crash between any two steps leaves either the rows untouched or copied twice-safe: the
next run selects them again, the INSERT skips what the archive already holds, the DELETE goes
through. After the live tables, archive rows past the statutory period are destroyed the same
way (steps 1 and 3 on the archive). `maxRowsPerRun` bounds the live deletions of the run and,
separately, the archive destructions.

Fault injection for the crash tests: the engine calls `fault(point)` at `before-select`,
`after-select`, `after-archive-commit` and `after-delete` (the benchmark uses the same hook to
time batches); the CLI turns `DATAWARD_PURGE_FAULT` into a
function that kills the process there. It exists only for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from dataward.model.policy import Policy
from dataward.model.store import RecordSet, Store
from dataward.purge.errors import PurgeError
from dataward.purge.plan import (
    DEFAULT_MAX_CLOCK_SKEW,
    Gate,
    LargeCutThreshold,
    Outcome,
    PurgePlan,
    Stop,
    TableCount,
    clock_skew,
    dry_run_allocation,
    large_cut,
    make_plan,
    next_batch_size,
    overdue_seconds,
    refusal,
    store_ref,
)
from dataward.purge.result import ErrorInfo, PurgeResult, TableResult
from dataward.purge.sql import (
    Session,
    TableName,
    TableStatements,
    TimestampKind,
    as_utc,
    bind_cutoff,
    parse_table,
)

Fault = Callable[[str], None]
CheckContinue = Callable[[], Stop | None]
Clock = Callable[[], datetime]
T = TypeVar("T")

FAULT_POINTS = ("before-select", "after-select", "after-archive-commit", "after-delete")


def no_fault(point: str) -> None:
    """The fault hook of a real run: does nothing."""


def keep_going() -> Stop | None:
    """The interruption check of a run nobody can interrupt."""
    return None


@dataclass(frozen=True)
class EngineOptions:
    """Bounds of a run that are not in the store's spec."""

    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW
    large_cut: LargeCutThreshold = field(default_factory=LargeCutThreshold)


@dataclass(frozen=True)
class PreparedTable:
    """A records entry checked against the catalogue(s)."""

    records: RecordSet
    live: TableStatements
    bound: datetime | date
    columns: tuple[str, ...]
    archive: TableStatements | None = None
    archive_table: TableName | None = None
    archive_bound: datetime | date | None = None


class _Tally:
    """Counters of one table during a run (mutable, private to the engine)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.deleted = 0
        self.archived = 0
        self.destroyed = 0
        self.expired_at_start = 0
        self.null_triggers = 0
        self.remaining: int | None = None
        self.oldest_age: float | None = None
        self.archive_remaining = 0

    def result(self) -> TableResult:
        remaining = self.remaining
        if remaining is None:
            remaining = max(0, self.expired_at_start - self.deleted)
        return TableResult(
            table=self.table,
            rows_deleted=self.deleted,
            rows_archived=self.archived,
            archive_rows_destroyed=self.destroyed,
            expired_remaining=remaining,
            oldest_expired_age_seconds=self.oldest_age,
            null_triggers=self.null_triggers,
            archive_expired_remaining=self.archive_remaining,
        )


def purge(
    store: Store,
    policy: Policy | None,
    *,
    connect_live: Callable[[], Session],
    connect_archive: Callable[[], Session] | None,
    job_clock: Clock,
    check_continue: CheckContinue = keep_going,
    fault: Fault = no_fault,
    options: EngineOptions | None = None,
) -> PurgeResult:
    """Run one purge of `store` and return its record; never raises for database trouble."""
    options = options or EngineOptions()
    start = job_clock()
    base = PurgeResult(
        store=store_ref(store),
        result="Failed",
        dry_run=store.purge.dry_run,
        start_time=start,
        completion_time=start,
        message="",
    )
    gate = refusal(store, policy)
    if gate is not None:
        return _gated(base, gate, job_clock())
    assert policy is not None
    tallies: list[_Tally] = []
    plan: PurgePlan | None = None
    live: Session | None = None
    archive: Session | None = None
    try:
        category = policy.category(store.category)
        assert category is not None
        live = connect_live()
        if category.statutory is not None:
            if connect_archive is None:
                raise PurgeError("Configuration", "the category is statutory but no archive")
            # Before anything else: an unreachable archive must leave the live rows alone.
            archive = connect_archive()
        live_now = live.server_now()
        gate = clock_skew(live_now, job_clock(), options.max_clock_skew, "live database")
        archive_now = None
        if gate is None and archive is not None:
            archive_now = archive.server_now()
            gate = clock_skew(archive_now, job_clock(), options.max_clock_skew, "archive")
        if gate is not None:
            return _gated(replace(base, server_time=live_now), gate, job_clock())
        plan = make_plan(store, policy, live_now, archive_now)
        base = replace(
            base, server_time=plan.now, cutoff=plan.cutoff, archive_cutoff=plan.archive_cutoff
        )
        tables = [_prepare(live, archive, records, plan) for records in plan.records]
        if archive is not None and archive.read_only():
            raise PurgeError(
                "ArchiveReadOnly",
                "the archive database is read-only for the archive login: nothing was "
                "deleted from the live database; make the archive writable.",
            )
        tallies = [_Tally(t.records.table) for t in tables]
        counts = _count_start(live, archive, tables, tallies, plan, options.large_cut)
        gate = large_cut(store, plan, counts, options.large_cut)
        if gate is not None:
            for tally in tallies:
                tally.remaining = tally.expired_at_start
            _final_ages(live, tables, tallies, plan)
            held = replace(base, tables=tuple(t.result() for t in tallies))
            return replace(
                _gated(held, gate, job_clock()), acknowledge_token=plan.acknowledge_token
            )
        if plan.dry_run:
            return _dry_run(base, plan, tallies, live, tables, job_clock)
        stop = _run_batches(live, archive, tables, tallies, plan, check_continue, fault)
        _final_counts(live, archive, tables, tallies, plan)
        if (
            stop is None
            and any(t.remaining for t in tallies)
            and sum(t.deleted for t in tallies) >= plan.max_rows
        ):
            stop = Stop("MaxRowsPerRun", f"stopped at maxRowsPerRun ({plan.max_rows} rows).")
        results = tuple(t.result() for t in tallies)
        outcome: Outcome = (
            "Failed" if stop is not None and stop.reason == "NotCompliant" else "Succeeded"
        )
        return replace(
            base,
            result=outcome,
            # No reason when nothing stopped the run: the operator's PurgeSucceeded reads a
            # reason on a Succeeded record as "stopped early" (API: why it stopped or failed).
            reason=stop.reason if stop else None,
            tables=results,
            stopped_early=stop.reason if stop else None,
            message=_summary(results, plan, stop),
            error=ErrorInfo("NotCompliant", stop.message) if outcome == "Failed" and stop else None,
            completion_time=job_clock(),
        )
    except PurgeError as error:
        if live is not None:
            live.rollback()
        if archive is not None:
            archive.rollback()
        return replace(
            base,
            result="Failed",
            reason=error.category,
            message=error.message,
            tables=tuple(t.result() for t in tallies),
            error=ErrorInfo(error.category, error.message),
            completion_time=job_clock(),
        )
    finally:
        if live is not None:
            live.close()
        if archive is not None:
            archive.close()


def _gated(result: PurgeResult, gate: Gate, at: datetime) -> PurgeResult:
    return replace(
        result,
        result=gate.result,
        reason=gate.reason,
        message=gate.message,
        error=ErrorInfo(gate.reason, gate.message) if gate.result == "Failed" else None,
        completion_time=at,
    )


def _column_map(session: Session, table: TableName, role: str, spec: str) -> dict[str, Any]:
    columns = session.columns(table)
    if not columns:
        raise PurgeError(
            "TableNotFound",
            f"table {spec} does not exist in the {role} database, or the {role} login "
            "cannot see it: create it or fix spec.records.",
        )
    return {c.name.lower(): c for c in columns}


def _prepare(
    live: Session, archive: Session | None, records: RecordSet, plan: PurgePlan
) -> PreparedTable:
    """Check a records entry against the catalogues; refuse anything unsafe."""
    table = parse_table(records.table)
    columns = _column_map(live, table, "live", records.table)
    ts_kind, precision = _timestamp_column(live, columns, records, "live")
    for key in records.key_columns:
        if key.lower() not in columns:
            raise PurgeError(
                "ColumnRefused",
                f"key column {key!r} is not in table {records.table}: fix spec.records keyColumns.",
            )
    statements = TableStatements(live.dialect, table, records.timestamp_column, records.key_columns)
    live_bound = bind_cutoff(plan.cutoff, ts_kind, precision)
    names = tuple(c.name for c in columns.values())
    if archive is None:
        return PreparedTable(records, statements, live_bound, names)
    assert plan.archive_cutoff is not None
    archive_columns = _column_map(archive, table, "archive", records.table)
    missing = [c for c in columns if c not in archive_columns]
    if missing:
        raise PurgeError(
            "ArchiveTableInvalid",
            f"archive table {records.table} lacks columns {', '.join(sorted(missing))} of the "
            "live table: give it every live column; nothing was deleted.",
        )
    archive_kind, archive_precision = _timestamp_column(
        archive, archive_columns, records, "archive"
    )
    wanted = frozenset(archive.dialect.name(k).lower() for k in records.key_columns)
    uniques = {frozenset(c.lower() for c in u) for u in archive.unique_keys(table)}
    archive.commit()
    if wanted not in uniques:
        raise PurgeError(
            "ArchiveTableInvalid",
            f"archive table {records.table} has no unique key on exactly "
            f"({', '.join(records.key_columns)}): without one a re-run after a crash could "
            "copy rows twice; add a PRIMARY KEY or UNIQUE constraint on the key columns.",
        )
    return PreparedTable(
        records,
        statements,
        live_bound,
        names,
        archive=TableStatements(
            archive.dialect, table, records.timestamp_column, records.key_columns
        ),
        archive_table=table,
        archive_bound=bind_cutoff(plan.archive_cutoff, archive_kind, archive_precision),
    )


def _timestamp_column(
    session: Session, columns: dict[str, Any], records: RecordSet, role: str
) -> tuple[TimestampKind, int | None]:
    column = columns.get(records.timestamp_column.lower())
    if column is None:
        raise PurgeError(
            "ColumnRefused",
            f"timestamp column {records.timestamp_column!r} is not in the {role} table "
            f"{records.table}: fix spec.records timestampColumn.",
        )
    kind = session.dialect.timestamp_kind(column)
    if kind is None:
        raise PurgeError(
            "ColumnRefused",
            f"column {records.timestamp_column!r} of {records.table} ({role}) is of type "
            f"{column.data_type}, not a timestamp, datetime or date: Dataward will not guess "
            "what its values mean; point timestampColumn at a timestamp column.",
        )
    precision: int | None = column.precision
    return kind, precision


def _count_start(
    live: Session,
    archive: Session | None,
    tables: Sequence[PreparedTable],
    tallies: Sequence[_Tally],
    plan: PurgePlan,
    threshold: LargeCutThreshold,
) -> list[TableCount]:
    counts = []
    for table, tally in zip(tables, tallies, strict=True):
        ((expired, _oldest),) = live.query(table.live.count_expired(), (table.bound,))
        ((nulls,),) = live.query(table.live.count_null())
        total = int(expired)
        if int(expired) > threshold.min_rows:
            ((total,),) = live.query(table.live.count_all())
        live.commit()
        tally.expired_at_start = int(expired)
        tally.null_triggers = int(nulls)
        counts.append(TableCount(table.records.table, int(expired), int(total)))
        if archive is not None and table.archive is not None:
            ((archived_expired, _),) = archive.query(
                table.archive.count_expired(), (table.archive_bound,)
            )
            archive.commit()
            tally.archive_remaining = int(archived_expired)
    return counts


def _dry_run(
    base: PurgeResult,
    plan: PurgePlan,
    tallies: Sequence[_Tally],
    live: Session,
    tables: Sequence[PreparedTable],
    job_clock: Clock,
) -> PurgeResult:
    would = dry_run_allocation([t.expired_at_start for t in tallies], plan.max_rows)
    would_destroy = dry_run_allocation([t.archive_remaining for t in tallies], plan.max_rows)
    for tally, rows, destroy in zip(tallies, would, would_destroy, strict=True):
        tally.remaining = tally.expired_at_start
        tally.deleted = rows
        tally.archived = rows if plan.statutory is not None else 0
        tally.destroyed = destroy
    _final_ages(live, tables, tallies, plan)
    stopped = "MaxRowsPerRun" if sum(would) < sum(t.expired_at_start for t in tallies) else None
    results = tuple(t.result() for t in tallies)
    total = sum(would)
    message = (
        f"dry run: would delete {total} expired rows"
        + (" (archiving them first)" if plan.statutory is not None else "")
        + (f" and destroy {sum(would_destroy)} archived rows" if plan.statutory else "")
        + f" at cutoff {plan.cutoff.isoformat()}; nothing was changed."
        + (f" A real run would stop at maxRowsPerRun ({plan.max_rows})." if stopped else "")
    )
    return replace(
        base,
        result="Succeeded",
        reason="DryRun",
        tables=results,
        stopped_early=stopped,
        message=message,
        completion_time=job_clock(),
    )


def _run_batches(
    live: Session,
    archive: Session | None,
    tables: Sequence[PreparedTable],
    tallies: Sequence[_Tally],
    plan: PurgePlan,
    check_continue: CheckContinue,
    fault: Fault,
) -> Stop | None:
    first = True
    used = 0
    for table, tally in zip(tables, tallies, strict=True):
        while True:
            limit = next_batch_size(plan.batch_size, plan.max_rows, used)
            if limit == 0:
                break
            if not first:
                stop = check_continue()
                if stop is not None:
                    return stop
            first = False
            if archive is not None and table.archive is not None:
                deleted, inserted = _archive_batch(live, archive, table, limit, fault)
                tally.archived += inserted
            else:
                deleted = _delete_batch(live, table.live, table.bound, limit, fault)
            tally.deleted += deleted
            used += deleted
            if deleted < limit:
                break
    if archive is None:
        return None
    used = 0
    for table, tally in zip(tables, tallies, strict=True):
        assert table.archive is not None and table.archive_bound is not None
        while True:
            limit = next_batch_size(plan.batch_size, plan.max_rows, used)
            if limit == 0:
                break
            stop = check_continue()
            if stop is not None:
                return stop
            destroyed = _delete_batch(archive, table.archive, table.archive_bound, limit, no_fault)
            tally.destroyed += destroyed
            used += destroyed
            if destroyed < limit:
                break
    return None


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]


def _delete_keys(
    session: Session,
    statements: TableStatements,
    keys: Sequence[tuple[Any, ...]],
    bound: datetime | date,
) -> int:
    per = max(1, (session.max_parameters - 1) // len(statements.keys))
    deleted = 0
    for chunk in _chunks(keys, per):
        deleted += session.execute(statements.delete_keys(len(chunk)), [*_flat(chunk), bound])
    return deleted


def _delete_batch(
    session: Session,
    statements: TableStatements,
    bound: datetime | date,
    limit: int,
    fault: Fault,
) -> int:
    """Select up to `limit` expired keys (locked), delete them re-checking the cutoff, commit."""
    fault("before-select")
    keys = session.query(statements.select_expired(None), (bound, limit))
    fault("after-select")
    if not keys:
        session.rollback()
        return 0
    try:
        deleted = _delete_keys(session, statements, keys, bound)
        session.commit()
    except PurgeError:
        session.rollback()
        raise
    fault("after-delete")
    return deleted


def _archive_batch(
    live: Session, archive: Session, table: PreparedTable, limit: int, fault: Fault
) -> tuple[int, int]:
    """Copy a batch to the archive, commit, verify, then delete it from live."""
    assert table.archive is not None and table.archive_table is not None
    fault("before-select")
    rows = live.query(table.live.select_expired(table.columns), (table.bound, limit))
    fault("after-select")
    if not rows:
        live.rollback()
        return 0, 0
    lowered = [c.lower() for c in table.columns]
    positions = [lowered.index(k.lower()) for k in table.records.key_columns]
    keys = [tuple(row[i] for i in positions) for row in rows]
    try:
        inserted = 0
        per = max(1, archive.max_parameters // len(table.columns))
        for chunk in _chunks(rows, per):
            inserted += archive.execute(
                archive.dialect.insert_keeping_existing(
                    table.archive_table, table.columns, table.records.key_columns, len(chunk)
                ),
                _flat(chunk),
            )
        archive.commit()
    except PurgeError:
        archive.rollback()
        live.rollback()
        raise
    fault("after-archive-commit")
    try:
        present: set[tuple[Any, ...]] = set()
        per = max(1, archive.max_parameters // len(table.records.key_columns))
        for chunk in _chunks(keys, per):
            present.update(archive.query(table.archive.select_keys(len(chunk)), _flat(chunk)))
        archive.commit()
    except PurgeError:
        live.rollback()
        raise
    missing = sum(1 for key in keys if key not in present)
    if missing:
        live.rollback()
        raise PurgeError(
            "ArchiveVerifyFailed",
            f"{missing} of {len(keys)} rows of {table.records.table} were not found in the "
            "archive after the copy committed; none of them was deleted from the live "
            "database. Check the archive table's unique keys and triggers.",
        )
    try:
        deleted = _delete_keys(live, table.live, keys, table.bound)
        live.commit()
    except PurgeError:
        live.rollback()
        raise
    fault("after-delete")
    return deleted, inserted


def _final_counts(
    live: Session,
    archive: Session | None,
    tables: Sequence[PreparedTable],
    tallies: Sequence[_Tally],
    plan: PurgePlan,
) -> None:
    for table, tally in zip(tables, tallies, strict=True):
        ((remaining, _),) = live.query(table.live.count_expired(), (table.bound,))
        live.commit()
        tally.remaining = int(remaining)
        if archive is not None and table.archive is not None:
            ((left, _),) = archive.query(table.archive.count_expired(), (table.archive_bound,))
            archive.commit()
            tally.archive_remaining = int(left)
    _final_ages(live, tables, tallies, plan)


def _final_ages(
    live: Session, tables: Sequence[PreparedTable], tallies: Sequence[_Tally], plan: PurgePlan
) -> None:
    for table, tally in zip(tables, tallies, strict=True):
        ((_, oldest),) = live.query(table.live.count_expired(), (table.bound,))
        live.commit()
        tally.oldest_age = (
            None if oldest is None else overdue_seconds(as_utc(oldest), plan.retention, plan.now)
        )


def _summary(results: Sequence[TableResult], plan: PurgePlan, stop: Stop | None) -> str:
    deleted = sum(r.rows_deleted for r in results)
    remaining = sum(r.expired_remaining for r in results)
    nulls = sum(r.null_triggers for r in results)
    parts = [f"deleted {deleted} expired rows at cutoff {plan.cutoff.isoformat()}"]
    if plan.statutory is not None:
        parts.append(
            f"archived {sum(r.rows_archived for r in results)} new rows and destroyed "
            f"{sum(r.archive_rows_destroyed for r in results)} archived rows past "
            f"{plan.statutory}"
        )
    if remaining:
        parts.append(f"{remaining} expired rows remain")
    if nulls:
        parts.append(f"{nulls} rows have no trigger timestamp and were kept")
    text = "; ".join(parts) + "."
    if stop is not None:
        text += " " + stop.message
    return text
