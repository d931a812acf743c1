"""Run a purge: the gates from `plan`, then batches against live (and archive) sessions.

A batch takes the next expired rows after the previous batch's last `(ts, keys)` (keyset
continuation: no batch re-walks the index entries of rows an earlier one deleted), oldest
first, and never asks for more than SELECT and DELETE on a live table:

- PostgreSQL, plain: find the trigger `u` about `n` rows on in the timestamp index (no lock;
  after a range batch, `u` is predicted from that batch's pace instead, and the DELETE rolled
  back and redone with a `u` from the index if it took more than `n` rows or none, or ran past
  twice the lock-hold target), then one range DELETE of the expired rows after the cursor up
  to `u`; when too many rows
  share `u` to keep the batch within `n`, one statement instead that picks exactly `n` rows
  in `(ts, keys)` order, DELETEs them by ctid re-checking the cutoff and returns the last one.
  Statutory to a PostgreSQL archive: the range DELETE RETURNING its rows as a COPY text
  stream that the archive takes with COPY FROM (a plain INSERT); for a crowded timestamp or
  after a duplicate key, the keyset statement RETURNING the rows as one JSON text (to a MySQL
  archive: as rows). Either way the live transaction stays open until the archive holds them.
- MySQL: find the batch's last row and its number of rows (consistent reads, no lock, one
  row back), then one DELETE (statutory: first a SELECT ... FOR UPDATE) whose keys come
  from a derived table that reads the timestamp index in order and stops at that row, and
  reach the rows through the unique key index: point lookups, so a lock an application
  holds on any row outside the batch, expired or not, never blocks it (InnoDB locks what a
  DELETE's derived table reads, the entry past a range's end included, so the read never
  goes past the batch's last row). Statutory to a MySQL archive: the SELECT ... FOR UPDATE
  has the live server write the rows and keys as SQL literals (two GROUP_CONCATs), a DELETE
  of exactly those keys runs beside the archive's INSERT of those bytes and its count of
  the keys, and the archive commits before live; a batch that cannot go that way (a column
  type without a literal form, more than a packet, a duplicate key) goes through PyMySQL
  as rows.
- MariaDB, when the key columns are the whole primary key (one column), the run may take
  every expired row (maxRowsPerRun covers them) and at least a quarter of the rows in the
  key span of the expired rows are expired (`plan.key_sweep`): the batches sweep the
  primary key instead, not oldest first (MySQLKeyBatches): the last key of the batch by a
  consistent read in key order, then one single-table DELETE (statutory: a SELECT ... FOR
  UPDATE writing literals as above, then that DELETE, beside the archive's INSERT) of the
  expired rows of the key range, reading them where they are stored, as the naive DELETE
  does. It never waits for a lock (it reads unexpired rows of its range with a lock too):
  any row held in the range fails it at once and the batch is split as below; a batch of
  one row goes by its key alone, so only the held expired row itself is skipped.
  Statutory, with the archive a database of the same server that the live login may write
  (`plan.server_side_copy`, read at the start): each such batch is copied by the live
  session itself, `INSERT INTO archive_db.t ... SELECT ... FOR UPDATE`, counted there,
  deleted, one COMMIT for both tables (`TableRun._attempt_server_side`); a batch it cannot
  settle goes the two-login way above.

Statutory batches, in order: live rows deleted (PostgreSQL) or locked (MySQL), uncommitted;
archive: a plain INSERT, COMMIT, verified by the committed row count (PostgreSQL archive) or
by counting the batch's keys there; after a duplicate-key error (a crashed run's copy is
there) the INSERT leaves the present keys out and the keys are counted, and a row present
under a key must equal the live row in every copied column, and be under no other live
row's key of the batch (one query per batch: in SQL on a PostgreSQL archive, `verify_json`;
else the rows under the keys, `held_copies`, the two drivers' forms of a value compared by
`same_value`): any other row there is no copy (a key reused, a table restored from a
backup, one row for two live rows sharing a key) and stops the run with
ArchiveKeyConflict, nothing of the batch deleted. "Equal" is by the archive column's type
(`same_value`: a CHAR without trailing spaces, a uuid in any case, jsonb by structure), and
values the drivers read alike but stored apart are read apart (`postgres.IntervalText`,
json as text). A PostgreSQL live table without a unique key on the key columns: a keyset
batch that ends between two rows identical in (ts, keys) stops the run too
(`TableRun._twin_left`). A number the archive's DECIMAL(p,s) would round is refused before
the copy (`unkept_columns`); a table where that can happen copies row by row
(`PreparedTable.narrowed`). Single-precision floats are read as the
doubles they are wherever rows travel through a driver (`TableStatements.read`). Any row missing
aborts the run with the live transaction rolled back, so nothing of the batch is deleted;
live: DELETE (MySQL), COMMIT. A crash between any two steps leaves the rows in live, in live
and the archive, or only in the archive: the next run takes them again and the INSERT skips
what the archive already holds. After the live tables, archive rows past the statutory
period are destroyed by the same batch loop. `maxRowsPerRun` bounds the live deletions of the
run and, separately, the archive destructions.

Statutory batches from PostgreSQL to a PostgreSQL archive use a second live session: batch k
goes into the archive while batch k+1's DELETE runs on the other session
(`TableRun._archived_overlapped`). Commits land in batch order, a batch counts once its
COMMIT returned, and a live batch still commits only after its archive copy.

Rows a run could take but not safely, a trigger naming no instant or a key column holding
NULL (a UNIQUE key on a nullable column: `id = NULL` finds nothing, `id > NULL` passes the
rows of its instant, the archive's unique key keeps no NULL-key copy single), fail the run
before any batch and again at its end (`TableRun._refuse_untakeable`); a copy by rows
refuses a NULL key it meets (written meanwhile) before the INSERT.

Application locks: a batch waits at most the session's lock timeout for a row lock. When it
waits longer, the batch is split in halves until the locked rows stand alone; those are left
for the next run and counted (`rowsSkippedLocked`), everything else goes. The batch size
adapts so each batch holds its locks about `lock_hold_target` (never above batchSize).
`check_continue` runs before every batch, the first included (legal hold, compliance).

Fault injection for the crash tests: the engine calls `fault(point)` at `before-select`,
`after-select` (rows picked and locked or deleted, uncommitted), `after-archive-commit` and
`after-delete` (committed); the benchmark uses the same hook to time batches. The CLI turns
`DATAWARD_PURGE_FAULT` into a function that kills the process there. It exists only for tests.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from dataward.model.policy import CHILD_AGE, Policy
from dataward.model.revisions import UnknownRevision
from dataward.model.store import RecordSet, Store
from dataward.model.wallclock import birth_offsets, birthday_shifts
from dataward.purge.batches import (
    Batches,
    Cursor,
    Literals,
    Moved,
    MySQLBatches,
    MySQLKeyBatches,
    Step,
    Taken,
    batches_for,
    chunks,
    flat,
)
from dataward.purge.claims import claim_all
from dataward.purge.errors import (
    DuplicateKey,
    LockTimeout,
    NoInstant,
    PrivilegeMissing,
    PurgeError,
    instant_or_refused,
    missing_privilege,
    unkeyed,
)
from dataward.purge.mysql import MySQLSession, count_literal_keys, insert_literals, same_server
from dataward.purge.plan import (
    DEFAULT_MAX_CLOCK_SKEW,
    FIRST_BATCH,
    WORK_LIMIT_STOP,
    Gate,
    LargeCutThreshold,
    Outcome,
    PurgePlan,
    Stop,
    TableCount,
    adapt_batch_size,
    clock_skew,
    dry_run_allocation,
    held_token,
    key_sweep,
    large_cut,
    make_plan,
    next_batch_size,
    overdue_seconds,
    planning_instant,
    refusal,
    revision_at_clocks,
    server_side_copy,
    store_ref,
)
from dataward.purge.result import ErrorInfo, PurgeResult, TableResult
from dataward.purge.sql import (
    ChildRule,
    Column,
    Session,
    TableName,
    TableStatements,
    TimestampKind,
    bind_cutoff,
    column_zone,
    decimal_fits,
    expiry_of,
    fraction_digits,
    narrowed_columns,
    parse_table,
    plain_uuid,
    same_copy_types,
    single_floats,
)

Fault = Callable[[str], None]  # the same hook as batches.Fault, part of this module's API
CheckContinue = Callable[[], Stop | None]
Clock = Callable[[], datetime]
# The policy as the revision in force at an instant (`StoreSource.policy_at`): no I/O.
PolicyAt = Callable[[datetime], Policy | UnknownRevision | None]

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
    lock_hold_target: float = 0.1  # seconds a batch may hold its row locks
    # PostgreSQL to PostgreSQL statutory batches: copy batch k into the archive while batch
    # k+1 runs on a second live session (`TableRun.second_lane`); False: one session.
    overlap_commits: bool = True


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
    # MySQL only: the unique index on the key columns and an index led by the timestamp.
    live_unique_index: str | None = None
    live_ts_index: str | None = None
    # MySQL: the key column when it alone is the primary key (the clustered index), so plain
    # batches may sweep it in key order (MySQLKeyBatches).
    live_primary_key: str | None = None
    archive_unique_index: str | None = None
    archive_ts_index: str | None = None
    # A children's category: the rows of children without consent past the grace period.
    children: TableStatements | None = None
    children_bound: datetime | date | None = None
    children_ts_index: str | None = None
    # Statutory: the archive's cutoff bound to the live column (live rows already past the
    # statute, which a run archives and then destroys; dry runs count them).
    live_statute_bound: datetime | date | None = None
    # PostgreSQL to PostgreSQL with identical column types: COPY in binary (same_copy_types).
    binary_copy: bool = False
    # PostgreSQL archive: the copied columns of type json/jsonb there (`verify_json`).
    archive_json: tuple[str, ...] = ()
    # The archive's columns, in the order of `columns`: what a copy stores is by their types
    # (`same_value`, `unkept_columns`).
    archive_columns: tuple[Column, ...] = ()
    # Statutory, PostgreSQL live: no unique key on the key columns, so two identical rows can
    # share a key and a batch can end between them (`TableRun._twin_left`).
    live_twins: bool = False
    # Copied columns whose numbers the archive's DECIMAL(p,s) may round (`narrowed_columns`):
    # such a table's statutory batches go row by row, where `unkept_columns` sees each value
    # (the same-engine COPY, JSON, literal and server-side copies would round unseen).
    narrowed: tuple[str, ...] = ()
    # records[].timeZone when the live trigger column is naive (wall clock or date), else None.
    live_zone: ZoneInfo | None = None
    # MariaDB, the archive a database of the live server that the live login may write: the
    # archive table as the live session names it (`plan.server_side_copy`), else None.
    server_side: TableName | None = None


# --------------------------------------------------------------------- one table's run


@dataclass(frozen=True)
class StartCount:
    """A table at the start of a run."""

    expired: int
    oldest: datetime | date | None
    nulls: int
    total: int
    archive_expired: int = 0
    children: int = 0  # rows of children without consent past the grace period
    overlap: int = 0  # of those, rows the retention has expired too
    live_past_statute: int = 0  # live rows a run would archive and then destroy
    unknown_age: int = 0  # rows of a children's table with a NULL birth date or age
    # MySQL, a single-column primary key: the smallest and largest key of the expired rows
    # and the optimiser's estimate of the rows between them (plan.key_sweep).
    key_span: tuple[Any, Any] | None = None
    span_rows: int = 0

    @property
    def removable(self) -> int:
        """Rows a run would remove from the live table (the two passes' sum)."""
        return self.expired + self.children - self.overlap


@dataclass(frozen=True)
class Drained:
    """What the batches of one table did."""

    deleted: int = 0
    archived: int = 0
    skipped: int = 0
    stop: Stop | None = None
    error: PurgeError | None = None  # what ended the run; the counts are what was committed


@dataclass(frozen=True)
class _Landed(Drained):
    """Drained, plus the lock hold of the batch that just landed (None: no batch did)."""

    limit: int = 0
    hold: float | None = None


@dataclass(frozen=True)
class _Archiving:
    """A statutory batch deleted on a live session (uncommitted) whose archive copy runs."""

    batches: Batches
    taken: Taken
    future: Future[int]
    after: Cursor | None  # the cursor the batch started after (to do it again)
    limit: int
    started: float


class _Redo(PurgeError):
    """The archive held some of the batch in flight already: do it again, one at a time."""

    def __init__(self, after: Cursor | None, limit: int) -> None:
        super().__init__("DatabaseError", "the archive holds some of the batch already")
        self.after = after
        self.limit = limit


class Pacer:
    """Asks `check_continue` before every batch, the run's first included: between the read
    of the store the run started from and its first batch lie the connections, the clocks
    and the count of every table, time enough for a legal hold to be set."""

    def __init__(self, check: CheckContinue) -> None:
        self._check = check

    def may_start(self) -> Stop | None:
        """None when the next batch may run."""
        return self._check()


@dataclass(frozen=True)
class RunContext:
    """What every records entry of one run shares: its sessions, plan, bounds and fault hook."""

    live: Session
    archive: Session | None
    plan: PurgePlan
    options: EngineOptions
    fault: Fault
    # Opens a second session to the live database (PostgreSQL): see `TableRun.second_lane`.
    spare: Callable[[], Session | None] | None = None


class TableRun:
    """One records entry during one run: counts, batches, the result."""

    def __init__(self, table: PreparedTable, run: RunContext) -> None:
        self.table = table
        self.live = run.live
        self.archive = run.archive
        self.plan = run.plan
        self.options = run.options
        self.fault = run.fault
        self.name = table.records.table
        self._spare = run.spare
        # Statutory batches committed by the server-side copy (`_attempt_server_side`).
        self.server_side_batches = 0

    def _needs(self, session: Session, privilege: str, error: PurgeError) -> PurgeError:
        """A PermissionDenied of `session` as the privilege, table and GRANT that fix it.

        A lock timeout on the archive is no application's row lock on live data: it fails
        the run (a LockTimeout would have the batch split and the live rows skipped).
        """
        if isinstance(error, LockTimeout) and session is self.archive:
            return PurgeError(
                "Timeout",
                f"{error.message} while copying rows of {self.name}; nothing of the batch was "
                "deleted from the live database.",
            )
        if error.category != "PermissionDenied" or isinstance(error, PrivilegeMissing):
            return error
        return missing_privilege(
            session.dialect.engine, session.role, privilege, self.name, session.database_name
        )

    def count_start(self, threshold: LargeCutThreshold) -> StartCount:
        """Expired rows (and the oldest), rows without trigger, the table when it matters."""
        t = self.table
        children = overlap = unknown = span_rows = 0
        span: tuple[Any, Any] | None = None
        try:
            if t.live_primary_key is None:
                ((expired, oldest),) = self.live.query(t.live.count_expired(), (t.bound,))
            else:
                ((expired, oldest, low, high),) = self.live.query(
                    t.live.count_expired_span(), (t.bound,)
                )
                if expired:
                    span = (low, high)
                    assert isinstance(self.live, MySQLSession)
                    span_rows = self.live.estimated_rows(t.live.span_rows(), span)
            ((nulls,),) = self.live.query(t.live.count_null())
            if t.children is not None:
                ((children, _),) = self.live.query(t.children.count_expired(), (t.children_bound,))
                ((overlap,),) = self.live.query(
                    t.children.count_expired_by(t.records.timestamp_column),
                    (t.children_bound, t.bound),
                )
                ((unknown,),) = self.live.query(t.children.count_unknown_age())
            past = 0
            if t.live_statute_bound is not None:
                ((past, _),) = self.live.query(t.live.count_expired(), (t.live_statute_bound,))
            removable = int(expired) + int(children) - int(overlap)
            total = removable
            if removable > threshold.min_rows:
                ((total,),) = self.live.query(t.live.count_all())
            self._refuse_untakeable(self.live, t.live, t.bound)
            if t.children is not None:
                self._refuse_untakeable(self.live, t.children, t.children_bound)
            instant_or_refused(oldest, "live", self.name, t.records.timestamp_column)
            self.live.commit()
        except PurgeError as error:
            raise self._needs(self.live, "SELECT", error) from None
        archive_expired = 0
        if self.archive is not None and t.archive is not None:
            try:
                ((archive_expired, _),) = self.archive.query(
                    t.archive.count_expired(), (t.archive_bound,)
                )
                self._refuse_untakeable(self.archive, t.archive, t.archive_bound)
                self.archive.commit()
            except PurgeError as error:
                raise self._needs(self.archive, "SELECT", error) from None
        return StartCount(
            int(expired),
            oldest,
            int(nulls),
            int(total),
            int(archive_expired),
            int(children),
            int(overlap),
            int(past),
            int(unknown),
            span,
            span_rows,
        )

    def _refuse_untakeable(
        self, session: Session, statements: TableStatements, bound: datetime | date | None
    ) -> None:
        """Refuse, before any batch (and again at the run's end, for one written meanwhile),
        rows the run could reach (at or before `bound`) that it cannot take safely: a
        trigger naming no instant (`_refuse_no_instant`), a key holding NULL (`unkeyed`)."""
        if bound is None:
            return
        self._refuse_no_instant(session, statements, bound)
        wanted = statements.count_unkeyed()
        if wanted is None:
            return
        ((rows,),) = session.query(wanted, (bound,))
        if rows:
            raise unkeyed(session.role, self.name, statements.keys, int(rows))

    def _refuse_no_instant(
        self, session: Session, statements: TableStatements, bound: datetime | date | None
    ) -> None:
        """NoInstant when a trigger the run could reach (at or before `bound`) names no
        instant (`Dialect.no_instant`), before any batch: a MariaDB zero date compares as the
        earliest date of its year and PostgreSQL's -infinity as earlier than every date, so
        either is "expired" there and would be deleted (or copied) unseen. A children's
        table: also a birth date naming no day among the rows its rule could reach."""
        if bound is None:
            return
        ((rows,),) = session.query(statements.count_no_instant(), (bound,))
        if rows:
            raise NoInstant(session.role, str(statements.table), statements.timestamp, int(rows))
        child = statements.child
        if child is not None and child.birth_date is not None:
            ((rows,),) = session.query(statements.count_no_birth(), (bound,))
            if rows:
                raise NoInstant(
                    session.role, str(statements.table), child.birth_date, int(rows), birth=True
                )

    def count_end(self) -> tuple[int, datetime | date | None, int, int]:
        """Expired rows left, the oldest of them, archive rows past the statute left, rows of
        children without consent past the grace period left."""
        t = self.table
        ((remaining, oldest),) = self.live.query(t.live.count_expired(), (t.bound,))
        # One written during the run (the start refused any there was): a batch that read
        # it back refused it; one the batches left (never deleted) is refused here.
        instant_or_refused(oldest, "live", self.name, t.records.timestamp_column)
        self._refuse_untakeable(self.live, t.live, t.bound)
        children = 0
        if t.children is not None:
            ((children, _),) = self.live.query(t.children.count_expired(), (t.children_bound,))
            self._refuse_untakeable(self.live, t.children, t.children_bound)
        self.live.commit()
        archive_left = 0
        if self.archive is not None and t.archive is not None:
            ((archive_left, _),) = self.archive.query(t.archive.count_expired(), (t.archive_bound,))
            self._refuse_untakeable(self.archive, t.archive, t.archive_bound)
            self.archive.commit()
        return int(remaining), oldest, int(archive_left), int(children)

    def zone_bounds(self) -> dict[str, Any]:
        """TableResult's fields for a trigger column of records[].timeZone (a wall clock or a
        date): the zone and the bounds compared with, which count on its calendar; and the
        children's bound when their collection column is such a column (an instant's bound
        is aware: the run's children's cutoff)."""
        t = self.table
        fields: dict[str, Any] = {}
        kids = t.children_bound
        if (
            t.records.zone is not None
            and kids is not None
            and not (isinstance(kids, datetime) and kids.tzinfo is not None)
        ):
            fields["zone_children_cutoff"] = kids.isoformat()
        if t.live_zone is None:
            return fields
        return {
            **fields,
            "time_zone": t.live_zone.key,
            "zone_cutoff": t.bound.isoformat(),
            "zone_archive_cutoff": None if t.archive_bound is None else t.archive_bound.isoformat(),
        }

    def age(self, oldest: datetime | date | None) -> float | None:
        """Seconds since the oldest expired row expired."""
        if oldest is None:
            return None
        return overdue_seconds(
            expiry_of(oldest, self.plan.retention, self.table.live_zone), self.plan.now
        )

    def live_batches(self, session: Session | None = None) -> Batches:
        """The batches that delete (and archive) expired live rows (on `session`, a second
        live session, when given)."""
        t = self.table
        return batches_for(
            session or self.live,
            t.live,
            t.bound,
            t.live_unique_index,
            t.live_ts_index,
            self.options.lock_hold_target,
        )

    def key_batches(self, span: tuple[Any, Any]) -> Batches:
        """Batches that sweep the primary key over `span` (see MySQLKeyBatches)."""
        t = self.table
        return MySQLKeyBatches(
            self.live, t.live, t.bound, t.live_unique_index, None, low=span[0], high=span[1]
        )

    def children_batches(self, session: Session | None = None) -> Batches:
        """The batches that remove rows of children without consent past the grace period."""
        t = self.table
        assert t.children is not None and t.children_bound is not None
        return batches_for(
            session or self.live,
            t.children,
            t.children_bound,
            t.live_unique_index,
            t.children_ts_index,
            self.options.lock_hold_target,
        )

    def archive_by_copy(self) -> bool:
        """PostgreSQL to PostgreSQL: the archive takes range batches by COPY (unless a
        column's numbers go row by row, `PreparedTable.narrowed`)."""
        assert self.archive is not None
        return (
            self.archive.dialect.engine == self.live.dialect.engine == "postgresql"
            and not self.table.narrowed
        )

    def second_lane(
        self, make: Callable[[Session | None], Batches], statutory: bool
    ) -> Batches | None:
        """The same batches on the second live session, for `drain` to copy statutory batch k
        into a PostgreSQL archive while batch k+1 runs; None otherwise (plain batches: a
        second session overlapping each durable COMMIT with the next batch was measured no
        faster, 0.87-0.93x on a quiet machine, bench/RESULTS.md)."""
        if self._spare is None or not self.options.overlap_commits:
            return None
        if not statutory or self.archive is None or not self.archive_by_copy():
            return None
        spare = self._spare()
        return None if spare is None else make(spare)

    def archive_batches(self) -> Batches:
        """The batches that destroy archive rows past the statute."""
        t = self.table
        assert self.archive is not None and t.archive is not None
        assert t.archive_bound is not None
        return batches_for(
            self.archive,
            t.archive,
            t.archive_bound,
            t.archive_unique_index,
            t.archive_ts_index,
            self.options.lock_hold_target,
        )

    def drain(
        self,
        batches: Batches,
        budget: int,
        pacer: Pacer,
        statutory: bool,
        spare: Batches | None = None,
    ) -> Drained:
        """Run batches until the table has no expired row left, the budget is spent or a
        check says stop. The one batch loop of the engine; with `spare` (statutory batches to
        a PostgreSQL archive, on a second session of the live database), the archive takes
        each batch while the next one runs."""
        if spare is not None:
            return self._archived_overlapped((batches, spare), budget, pacer)
        size = min(FIRST_BATCH, self.plan.batch_size)
        after: Cursor | None = None
        done = Drained()
        while True:
            limit = next_batch_size(size, budget, done.deleted)
            if limit == 0:
                return done
            stop = pacer.may_start()
            if stop is not None:
                return replace(done, stop=stop)
            started = time.monotonic()
            try:
                steps = self._batch(batches, after, limit, statutory)
            except PurgeError as error:
                return replace(done, error=error)
            elapsed = time.monotonic() - started
            picked = sum(s.picked for s in steps)
            done = Drained(
                done.deleted + sum(s.deleted for s in steps),
                done.archived + sum(s.archived for s in steps),
                done.skipped + sum(s.skipped for s in steps),
            )
            lasts = [s.last for s in steps if s.last is not None]
            if picked < limit or not lasts:
                return done
            after = lasts[-1]
            if len(steps) == 1:
                size = adapt_batch_size(
                    size, elapsed, self.options.lock_hold_target, self.plan.batch_size
                )

    def _batch(
        self, batches: Batches, after: Cursor | None, limit: int, statutory: bool
    ) -> list[Step]:
        """One batch; on a lock timeout, its halves in turn, down to single locked rows."""
        try:
            return [self._attempt(batches, after, limit, statutory)]
        except LockTimeout:
            batches.session.rollback()
            if self.archive is not None:
                self.archive.rollback()
        return self._split(batches, after, limit, statutory)

    def _split(
        self, batches: Batches, after: Cursor | None, limit: int, statutory: bool
    ) -> list[Step]:
        """A batch that hit the lock timeout (rolled back): its halves in turn, down to the
        single locked rows, which are skipped."""
        if limit == 1:
            # A row an application holds locked: leave it for the next run, step past it.
            locked = batches.peek(after)
            batches.session.commit()
            if locked is None:
                return [Step(0)]
            return [Step(1, skipped=1, last=locked)]
        first = self._batch(batches, after, limit // 2, statutory)
        picked = sum(s.picked for s in first)
        lasts = [s.last for s in first if s.last is not None]
        if picked < limit // 2 or not lasts:
            return first
        return first + self._batch(batches, lasts[-1], limit - limit // 2, statutory)

    def _archived_overlapped(
        self, lanes: tuple[Batches, Batches], budget: int, pacer: Pacer
    ) -> Drained:
        """Statutory range batches, PostgreSQL to PostgreSQL, alternating between two live
        sessions: while the archive takes batch k (COPY in and COMMIT, on a worker thread
        that alone uses the archive session meanwhile), batch k+1's live DELETE runs on the
        other live session. Live batch k commits only after its archive copy committed and
        its row count matched, and before the archive gets batch k+1; a crash at any point
        leaves each batch in live, in both, or only in the archive (as `_attempt_range`).
        A crowded timestamp, a duplicate key (a crashed run's copy), or a lock timeout
        settles the batch in flight and does that batch one at a time (`_batch`).
        """
        t = self.table
        size = min(FIRST_BATCH, self.plan.batch_size)
        after: Cursor | None = None
        done = Drained()
        flight: _Archiving | None = None
        lane = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive") as pool:
            while True:
                limit = next_batch_size(
                    size, budget, done.deleted + (flight.taken.deleted if flight else 0)
                )
                stop = pacer.may_start() if limit else None
                if limit == 0 or stop is not None:
                    landed = self._settle(done, flight)
                    if landed.error is not None and not isinstance(landed.error, _Redo):
                        return landed
                    # (a batch to redo was rolled back on both sides: left for the next run)
                    return Drained(landed.deleted, landed.archived, landed.skipped, stop)
                batches = lanes[lane]
                session = batches.session
                started = time.monotonic()
                taken: Taken | None = None
                failed: PurgeError | None = None
                try:
                    self.fault("before-select")
                    taken = batches.take_range(after, limit, t.columns, t.binary_copy)
                    if taken is not None:
                        self.fault("after-select")
                except PurgeError as error:
                    session.rollback()
                    taken, failed = None, error
                landed = self._settle(done, flight)
                flight = None
                if landed.error is not None and not isinstance(landed.error, _Redo):
                    session.rollback()
                    return landed
                if landed.hold is not None:
                    size = adapt_batch_size(
                        landed.limit, landed.hold, self.options.lock_hold_target,
                        self.plan.batch_size,
                    )  # fmt: skip
                done = Drained(landed.deleted, landed.archived, landed.skipped)
                if isinstance(landed.error, _Redo):
                    # The archive already held some of batch k: both live batches were
                    # rolled back; batch k again, one at a time (`take` leaves those keys).
                    session.rollback()
                    failed, taken = None, None
                    after, limit = landed.error.after, landed.error.limit
                if failed is not None and not isinstance(failed, LockTimeout):
                    return replace(done, error=self._needs(session, "DELETE", failed))
                if taken is None:
                    try:
                        if failed is not None:
                            steps = self._split(batches, after, limit, True)
                        else:
                            session.rollback()
                            steps = self._batch(batches, after, limit, True)
                    except PurgeError as error:
                        return replace(done, error=error)
                    done = Drained(
                        done.deleted + sum(s.deleted for s in steps),
                        done.archived + sum(s.archived for s in steps),
                        done.skipped + sum(s.skipped for s in steps),
                    )
                    lasts = [s.last for s in steps if s.last is not None]
                    if sum(s.picked for s in steps) < limit or not lasts:
                        return done
                    after = lasts[-1]
                    continue
                if not taken.picked:
                    session.rollback()
                    return done
                future = pool.submit(self._archive_copy, taken.copied if taken.deleted else None)
                flight = _Archiving(batches, taken, future, after, limit, started)
                if taken.picked < limit or taken.last is None:
                    return self._last(done, flight)
                after = taken.last
                lane = 1 - lane

    def _last(self, done: Drained, flight: _Archiving) -> Drained:
        """Settle the run's last statutory batch; one the archive partly held already is
        done again, one at a time."""
        landed = self._settle(done, flight)
        if not isinstance(landed.error, _Redo):
            return landed
        done = Drained(landed.deleted, landed.archived, landed.skipped)
        try:
            steps = self._batch(flight.batches, landed.error.after, landed.error.limit, True)
        except PurgeError as error:
            return replace(done, error=error)
        return Drained(
            done.deleted + sum(s.deleted for s in steps),
            done.archived + sum(s.archived for s in steps),
            done.skipped + sum(s.skipped for s in steps),
        )

    def _archive_copy(self, data: bytes | None) -> int:
        """On the worker thread: COPY a batch into the archive and commit; the rows stored.
        Rolled back on any error (a DuplicateKey included)."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive is not None
        if data is None:
            return 0
        try:
            inserted = archive.copy_in(t.archive.copy_in(t.columns, t.binary_copy), data)
            archive.commit()
        except PurgeError:
            archive.rollback()
            raise
        return inserted

    def _settle(self, done: Drained, flight: _Archiving | None) -> _Landed:
        """`done` with the statutory batch in flight added once its archive copy committed,
        its count matched and its live DELETE committed; `error` set (the batch not counted,
        its live DELETE rolled back) when any of that failed; `_Redo` after a duplicate key."""
        if flight is None:
            return _Landed(done.deleted, done.archived, done.skipped, done.stop, done.error)
        taken = flight.taken
        try:
            inserted = flight.future.result()
        except DuplicateKey:
            flight.batches.session.rollback()
            return _Landed(
                done.deleted, done.archived, done.skipped,
                error=_Redo(flight.after, flight.limit),
            )  # fmt: skip
        except PurgeError as error:
            flight.batches.session.rollback()
            assert self.archive is not None
            return _Landed(
                done.deleted, done.archived, done.skipped,
                error=self._needs(self.archive, "INSERT", error),
            )  # fmt: skip
        try:
            if taken.deleted:
                self.fault("after-archive-commit")
            if inserted != taken.deleted:
                raise self._unverified(taken.deleted, inserted)
            flight.batches.session.commit()
        except PurgeError as error:
            flight.batches.session.rollback()
            return _Landed(done.deleted, done.archived, done.skipped, error=error)
        return self._committed(done, taken.deleted, taken.deleted, flight.limit, flight.started)

    def _committed(
        self, done: Drained, deleted: int, archived: int, limit: int, started: float
    ) -> _Landed:
        """`done` with a batch whose live COMMIT returned: counted, even if the fault hook
        then stops the run."""
        landed = _Landed(
            done.deleted + deleted,
            done.archived + archived,
            done.skipped,
            limit=limit,
            hold=time.monotonic() - started,
        )
        try:
            self.fault("after-delete")
        except PurgeError as error:
            return replace(landed, error=error)  # committed: counted all the same
        return landed

    def _attempt(self, batches: Batches, after: Cursor | None, limit: int, statutory: bool) -> Step:
        session = batches.session
        self.fault("before-select")
        try:
            if not (statutory and self.archive is not None):
                step = batches.delete(after, limit, self.fault)
                session.commit()
                if step.picked:
                    self.fault("after-delete")
                return step
            as_json = self.archive_by_copy()
            if as_json:
                ranged = self._attempt_range(batches, after, limit)
                if ranged is not None:
                    return ranged
            if (
                self.archive.dialect.engine == session.dialect.engine == "mysql"
                and not self.table.narrowed
            ):
                if self.table.server_side is not None and isinstance(batches, MySQLKeyBatches):
                    done = self._attempt_server_side(batches, after, limit)
                    if done is not None:
                        return done
                moved = self._attempt_literals(batches, after, limit)
                if moved is not None:
                    return moved
            taken = batches.take(after, limit, self.table.columns, as_json)
            self.fault("after-select")
            if not taken.picked:
                session.rollback()
                return Step(0)
            self._twin_left(session, taken, batches.statements)
            keys: list[Cursor] = []
            if as_json:
                archived = self.copy_json(taken.payload, taken.deleted)
            else:
                keys, archived = self.copy_rows(taken.rows)
            deleted = batches.drop(keys)
            session.commit()
        except LockTimeout:
            raise
        except PurgeError as error:
            session.rollback()
            raise self._needs(session, "DELETE", error) from None
        self.fault("after-delete")
        return Step(taken.picked, deleted, archived, last=taken.last)

    def _twin_left(self, session: Session, taken: Taken, statements: TableStatements) -> None:
        """A PostgreSQL live table without a unique key on the key columns: ArchiveKeyConflict
        when a row identical in (ts, keys) to the batch's last row is left after its DELETE
        (the batch ended between two rows sharing a key). The next batch's cursor passes
        over it and the next run would find the archived row under its key and take it as
        this row's copy: two live rows, one archived. Within one batch the copy check
        refuses them (`held_copies`); split, nothing after the first batch can tell. A
        range batch takes every row of its last instant and needs no check."""
        t = self.table
        if not t.live_twins or taken.last is None:
            return
        # By the lane's own statements: the children's lane orders by `collectedColumn`, and
        # its cursor (`taken.last`) holds that column's value, not the trigger's.
        ((left,),) = session.query(statements.twin_left(), list(taken.last))
        if left:
            raise PurgeError(
                "ArchiveKeyConflict",
                f"rows of {self.name} share their key with another row identical to it in the "
                f"trigger and key columns ({', '.join(t.records.key_columns)} has no unique key "
                "in the live table): the archive keeps one row per key, so the second would "
                "be deleted for the first one's copy; none of this batch was deleted from the "
                "live database. Give those rows distinct keys, or add a unique key on the key "
                "columns, then run again.",
            )

    def _attempt_range(self, batches: Batches, after: Cursor | None, limit: int) -> Step | None:
        """PostgreSQL to PostgreSQL: a timestamp-range batch deleted into a COPY stream, the
        stream COPied into the archive (a plain INSERT), committed there and verified by its
        row count, then the live DELETE committed. None (nothing done, nothing open) when
        `take` must do the batch: a crowded timestamp, a range that took more rows than the
        batch (rolled back), or keys the archive already holds (a crashed run's copy, which
        `take`'s path leaves in place)."""
        session = batches.session
        archive = self.archive
        t = self.table
        assert archive is not None and t.archive is not None
        taken = batches.take_range(after, limit, t.columns, t.binary_copy)
        if taken is None:
            return None
        self.fault("after-select")
        if not taken.picked:
            session.rollback()
            return Step(0)
        if taken.deleted:
            assert taken.copied is not None
            try:
                inserted = archive.copy_in(
                    t.archive.copy_in(t.columns, t.binary_copy), taken.copied
                )
                archive.commit()
            except DuplicateKey:
                archive.rollback()
                session.rollback()
                return None
            except PurgeError as error:
                archive.rollback()
                session.rollback()
                raise self._needs(archive, "INSERT", error) from None
            self.fault("after-archive-commit")
            # Verified by count: the committed COPY stored every row the DELETE returned.
            self._verified(taken.deleted, inserted)
        session.commit()
        self.fault("after-delete")
        return Step(taken.picked, taken.deleted, taken.deleted, last=taken.last)

    def _attempt_literals(self, batches: Batches, after: Cursor | None, limit: int) -> Step | None:
        """MySQL to MySQL: the live server locks the batch and writes its rows as SQL
        literals; then, side by side, live deletes exactly the rows locked, by their keys
        (uncommitted; a row that came into the batch's range after the lock stays for the
        next run), and the archive INSERTs those bytes (a plain INSERT) and counts the
        batch's keys; the archive commits only when every key is there and live deleted
        every row locked, then live commits. No value is decoded or re-encoded in Python.
        None (nothing done, nothing open) when `take` must do the batch: a column type
        without a literal form, a batch larger than a packet, or keys the archive already
        holds (a crashed run's copy, which `take`'s path leaves in place)."""
        session = batches.session
        archive = self.archive
        assert archive is not None
        if not isinstance(batches, MySQLBatches):
            return None
        taken = batches.take_literals(after, limit, self.table.columns)
        if taken is None:
            session.rollback()
            return None
        self.fault("after-select")
        if not taken.rows:
            session.rollback()
            return Step(taken.picked, last=taken.last)
        # Two servers, two connections: the archive's work overlaps the live DELETE.
        with ThreadPoolExecutor(1) as pool:
            copying = pool.submit(self._copy_literals, taken)
            try:
                deleted = batches.drop_literals(taken)
            except BaseException:
                wait([copying])
                archive.rollback()
                raise
            try:
                inserted, found = copying.result()
            except DuplicateKey:
                archive.rollback()
                session.rollback()
                return None
            except PurgeError:
                archive.rollback()
                session.rollback()
                raise
        if deleted != len(taken.rows):
            archive.rollback()
            session.rollback()
            return None
        wanted = len(taken.keys)
        if min(found, inserted) != wanted:
            archive.rollback()
            session.rollback()
            raise PurgeError(
                "ArchiveVerifyFailed",
                f"{wanted - min(found, inserted)} of {wanted} rows of {self.name} were not "
                "found in the archive after the copy; the copy was rolled back and none of "
                "them was deleted from the live database. Check the archive table's engine, "
                "unique keys and triggers.",
            )
        try:
            archive.commit()
        except PurgeError as error:
            archive.rollback()
            session.rollback()
            raise self._needs(archive, "INSERT", error) from None
        self.fault("after-archive-commit")
        session.commit()
        self.fault("after-delete")
        return Step(taken.picked, deleted, inserted, last=taken.last)

    def _attempt_server_side(
        self, batches: MySQLKeyBatches, after: Cursor | None, limit: int
    ) -> Step | None:
        """MariaDB, the archive a database of the live server that the live login may write
        (detected at the start, `plan.server_side_copy`): the batch's rows locked and copied
        by one `INSERT ... SELECT ... FOR UPDATE`, counted in the archive, deleted, and all of
        it committed at once (InnoDB commits both tables atomically: a crash leaves the batch
        in live alone). None (nothing done, nothing open) when today's path must do the
        batch: keys the archive already holds (its path compares them with the live rows,
        ArchiveKeyConflict), a row that came into the range (the DELETE took more than the
        copy, or the batch more than `limit`: maxRowsPerRun), or a privilege revoked since
        the start (no further batch tries this way)."""
        session = batches.session
        t = self.table
        assert t.server_side is not None
        try:
            moved: Moved = batches.move(after, limit, t.columns, t.server_side, self.fault)
        except LockTimeout:
            raise
        except DuplicateKey:
            session.rollback()
            return None
        except PurgeError as error:
            session.rollback()
            if error.category != "PermissionDenied":
                raise
            self.table = replace(t, server_side=None)
            return None
        if moved.deleted != moved.inserted or moved.inserted > limit:
            # A row came into the range since the boundary read or the lock (backdated, or
            # inserted expired): rolled back, the batch done today's way.
            session.rollback()
            return None
        if moved.found != moved.inserted:
            session.rollback()
            raise PurgeError(
                "ArchiveVerifyFailed",
                f"{moved.inserted - moved.found} of {moved.inserted} rows of {self.name} were "
                "not found in the archive after the copy; the copy was rolled back and none of "
                "them was deleted from the live database. Check the archive table's engine, "
                "unique keys and triggers.",
            )
        session.commit()
        if moved.inserted:
            self.server_side_batches += 1
            self.fault("after-delete")
        return Step(moved.picked, moved.deleted, moved.inserted, last=moved.last)

    def _copy_literals(self, taken: Literals) -> tuple[int, int]:
        """INSERT a literal batch into the archive and count its keys there, uncommitted:
        (rows inserted, keys found). Counted in the INSERT's own transaction, before its
        COMMIT, so a missing key rolls the copy back too."""
        archive = self.archive
        t = self.table
        assert archive is not None and t.archive is not None
        assert t.archive_unique_index is not None
        try:
            inserted = insert_literals(archive, t.archive, t.columns, taken.rows)
        except DuplicateKey:
            raise
        except PurgeError as error:
            raise self._needs(archive, "INSERT", error) from None
        try:
            found = count_literal_keys(archive, t.archive, t.archive_unique_index, taken.keys)
        except PurgeError as error:
            raise self._needs(archive, "SELECT", error) from None
        return inserted, found

    def copy_json(self, payload: str | None, rows: int) -> int:
        """PostgreSQL to PostgreSQL: INSERT the JSON array, commit, verify every key is there."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive is not None
        if payload is None or rows == 0:
            return 0
        counts: tuple[int, int] | None = None
        try:
            try:
                inserted = archive.execute(t.archive.insert_json(t.columns, False), [payload])
            except DuplicateKey:
                # A crashed run's copy is there already: keep it, add the rest, and check in
                # the same transaction that each row kept under a key is this row's copy.
                archive.rollback()
                inserted = archive.execute(t.archive.insert_json(t.columns, True), [payload])
                counts = self._copies_held(payload)
            archive.commit()
        except PurgeError as error:
            archive.rollback()
            self.live.rollback()
            raise self._needs(archive, "INSERT", error) from None
        self.fault("after-archive-commit")
        if counts is None:
            # Verified by count: a committed plain INSERT that wrote every row of the batch
            # (a trigger that drops rows shows here as a smaller count).
            self._verified(rows, inserted)
            return inserted
        self._verified(*counts)
        return inserted

    def _copies_held(self, payload: str) -> tuple[int, int]:
        """PostgreSQL archive, the copy kept existing rows (uncommitted): (rows of the batch,
        keys present), or ArchiveKeyConflict (archive and live rolled back) when a row kept
        under a key differs from the live row. One query for the batch."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive is not None
        try:
            ((wanted, found, differing),) = archive.query(
                t.archive.verify_json(t.columns, t.archive_json), [payload]
            )
        except PurgeError as error:
            raise self._needs(archive, "SELECT", error) from None
        if differing:
            archive.rollback()
            self.live.rollback()
            raise self._conflict(int(wanted), int(differing))
        return int(wanted), int(found)

    def _verified(self, wanted: int, found: int) -> None:
        """Abort the batch (live rolled back) unless every key was found in the archive."""
        if found != wanted:
            self.live.rollback()
            raise self._unverified(wanted, found)

    def _unverified(self, wanted: int, found: int) -> PurgeError:
        """The error of a batch whose archive copy lacks rows."""
        return PurgeError(
            "ArchiveVerifyFailed",
            f"{wanted - found} of {wanted} rows of {self.name} were not found in "
            "the archive after the copy committed; none of them was deleted from the live "
            "database. Check the archive table's unique keys and triggers.",
        )

    def _conflict(self, wanted: int, differing: int) -> PurgeError:
        """The error of a batch whose keys the archive holds for other rows (no values)."""
        return PurgeError(
            "ArchiveKeyConflict",
            f"{differing} of {wanted} rows of {self.name} have their key taken in the archive "
            "by a different row (a key reused, or a table restored from a backup), or share "
            "it with another live row of the batch (the archive keeps one row per key): no "
            "copy of their own; none of this batch was deleted from the live database. Move "
            "those archived rows aside or give the live rows other keys, then run again.",
        )

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """INSERT rows into the archive table, as many per statement as parameters allow."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive_table is not None
        inserted = 0
        if archive.dialect.engine == "postgresql":
            rows = [tuple(map(_exact_float, row)) for row in rows]
        for chunk in chunks(rows, max(1, archive.max_parameters // len(t.columns))):
            inserted += archive.execute(
                archive.dialect.insert_rows(
                    t.archive_table, t.columns, t.records.key_columns, len(chunk)
                ),
                flat(chunk),
            )
        return inserted

    def _held(
        self, rows: list[tuple[Any, ...]], keys: list[Cursor], positions: list[int]
    ) -> set[Cursor]:
        """The keys of `rows` the archive holds (in the open transaction), each that live
        row's copy; ArchiveKeyConflict (archive and live rolled back) when a row there
        differs from it. One query per chunk of keys the parameters allow."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive is not None
        held: list[tuple[Any, ...]] = []
        for chunk in chunks(keys, max(1, archive.max_parameters // len(positions))):
            held.extend(archive.query(t.archive.select_rows(t.columns, len(chunk)), flat(chunk)))
        kinds = [c.data_type.lower() for c in t.archive_columns]
        present, differing = held_copies(rows, held, positions, kinds)
        if differing:
            archive.rollback()
            self.live.rollback()
            raise self._conflict(len(rows), differing)
        return present

    def copy_rows(self, rows: list[tuple[Any, ...]]) -> tuple[list[Cursor], int]:
        """Copy taken rows to the archive, commit, verify every key is there."""
        t = self.table
        archive = self.archive
        assert archive is not None and t.archive is not None and t.archive_table is not None
        lowered = [c.lower() for c in t.columns]
        positions = [lowered.index(k.lower()) for k in t.records.key_columns]
        keys = [tuple(row[i] for i in positions) for row in rows]
        if not rows:
            return keys, 0
        nulls = sum(1 for key in keys if any(v is None for v in key))
        if nulls:
            # Written with NULL in a key after the start refused any (`_refuse_untakeable`):
            # refused before the copy, which the archive's unique key could not keep single.
            self.live.rollback()
            raise unkeyed(self.live.role, self.name, t.records.key_columns, nulls)
        unkept = unkept_columns(rows, t.columns, t.archive_columns)
        if unkept:
            self.live.rollback()
            raise PurgeError(
                "ArchiveVerifyFailed",
                f"column(s) {', '.join(unkept)} of {self.name} hold numbers with more digits "
                "than the archive's DECIMAL column keeps: the copy would be rounded, so none of "
                "this batch was copied or deleted from the live database. Give the archive "
                "column the live column's precision and scale.",
            )
        per_key = max(1, archive.max_parameters // len(positions))
        try:
            try:
                inserted = self._insert(rows)
            except DuplicateKey:
                # MySQL inserts plainly (no UPDATE privilege); the archive holds some of the
                # rows already (a run that crashed after its copy committed): leave them out,
                # once each is known to be that live row's copy, not another row's.
                archive.rollback()
                present = self._held(rows, keys, positions)
                inserted = self._insert(
                    [row for row, key in zip(rows, keys, strict=True) if key not in present]
                )
            else:
                if inserted < len(rows):
                    # A PostgreSQL archive left present keys out (ON CONFLICT DO NOTHING)
                    # without an error: the rows under them must be copies all the same.
                    self._held(rows, keys, positions)
            archive.commit()
        except PurgeError as error:
            archive.rollback()
            self.live.rollback()
            raise self._needs(archive, "INSERT", error) from None
        self.fault("after-archive-commit")
        try:
            found = 0
            unique = list(dict.fromkeys(keys))
            for chunk in chunks(unique, per_key):
                ((n,),) = archive.query(t.archive.count_keys(len(chunk)), flat(chunk))
                found += int(n)
            archive.commit()
        except PurgeError as error:
            self.live.rollback()
            raise self._needs(archive, "SELECT", error) from None
        self._verified(len(unique), found)
        return keys, inserted


_IP_TYPES = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface, IPv4Network, IPv6Network)


# Archive column types whose values differ from their text by trailing spaces alone: a
# CHAR(n) (MariaDB drops them when read, PostgreSQL pads to n, and both compare without them).
_PADDED = frozenset({"char", "character"})
# Float types that keep -0.0 apart from 0.0 (PostgreSQL's; MariaDB's DOUBLE stores 0).
_SIGNED_ZERO = frozenset({"double precision", "real"})


def _comparable(value: Any, kind: str = "") -> Any:
    """A value as both drivers' forms of it compare (hashable: keys are looked up by it), and
    as the archive column of type `kind` (its catalogue data type, lower case; "" unknown)
    stores it: bytes for any binary buffer, an aware instant as naive UTC (a MySQL session's
    zone is UTC), a uuid or an IP address as its text (what MariaDB's UUID, CHAR or VARCHAR
    hold of PostgreSQL's uuid and inet, and hand back), a time of day as the duration since
    midnight (MariaDB's TIME reads as one). By `kind`, text as that type stores it: without
    trailing spaces in a CHAR, a uuid's text in lower case (either engine's uuid), JSON in
    a jsonb as its structure (`_json_form`)."""
    if isinstance(value, str):
        if kind in _PADDED:
            return value.rstrip(" ")
        if kind == "uuid":
            parsed = plain_uuid(value)
            return value if parsed is None else str(parsed)
        if kind == "jsonb":
            return _json_form(value)
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    if isinstance(value, (UUID, *_IP_TYPES)):
        return str(value)
    if isinstance(value, dt_time) and value.tzinfo is None:
        return timedelta(
            hours=value.hour, minutes=value.minute, seconds=value.second,
            microseconds=value.microsecond,
        )  # fmt: skip
    return value


def _json_form(text: str) -> Any:
    """JSON text as a jsonb stores it (hashable): objects without key order, spacing or
    duplicate keys (the last one kept), strings unescaped, numbers as exact decimals; the
    text itself when it is no JSON (which no jsonb holds)."""
    try:
        parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_json)
    except ValueError:
        return text
    return _json_tagged(parsed)


def _no_json(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: no JSON, no jsonb


def _json_tagged(value: Any) -> Any:
    """Parsed JSON as tagged tuples: true is no 1, and "1" no 1."""
    if isinstance(value, dict):
        return ("object", tuple(sorted((k, _json_tagged(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("array", tuple(_json_tagged(v) for v in value))
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, Decimal):
        return ("number", _number_form(value))
    return ("string", value)


def _number_form(number: Decimal) -> tuple[int, tuple[int, ...], int]:
    """A finite decimal as (sign, digits, exponent) without trailing zeros: 1.0, 1.00 and 1
    alike (a numeric's scale is not its value), any number of digits kept exactly."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    figures = list(digits)
    while figures and figures[-1] == 0:
        figures.pop()
        exponent += 1
    if not figures:
        return (0, (), 0)  # zero, -0 too (neither engine's numeric keeps its sign)
    return (sign, tuple(figures), exponent)


def _exact_float(value: Any) -> Any:
    """A finite double bound for PostgreSQL as the numeric of its shortest digits: bound as
    float8, the server's cast to a numeric column keeps 15 digits (1.2345678901234567 ->
    1.23456789012346), while the numeric casts to double precision or real as the double
    itself would (its shortest digits read back as that very double)."""
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    return value


def same_value(live: Any, held: Any, kind: str = "") -> bool:
    """Whether the archive's value `held` is what copying the live value `live` stores in
    an archive column of type `kind` (its catalogue data type, lower case; "" unknown), the
    two engines' driver forms aside: the one comparison of the copy check (`held_copies`).
    Beyond `_comparable`: a Decimal and a float are the same when the Decimal as a double is
    the float (the copy of the Decimal into a double), a float and a Decimal when the
    Decimal is the float's shortest digits (the copy of the float into a decimal), a date
    and a datetime when the datetime is that day's midnight (a DATE copied into a
    timestamp). Two floats are the same when they are one double: NaN is NaN, and -0.0 is
    not 0.0 in a PostgreSQL float column (MariaDB's DOUBLE stores -0.0 as 0). Two decimals
    are the same number whatever their scale (1.0 and 1.00: no arithmetic tells them apart,
    and a DECIMAL(p,s) column writes every value with s decimals anyway).
    Nothing else is loosened: text is compared code point by code point, so a value that
    differs in case, or in spacing where its type keeps spacing, differs (at worst a false
    ArchiveKeyConflict, which deletes nothing; never a false copy). Values the drivers read
    alike though stored apart are read apart (`postgres.IntervalText`: '1 mon' and '30
    days'; json as its text)."""
    a, b = _comparable(live, kind), _comparable(held, kind)
    if type(a) is not type(b) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) and isinstance(b, Decimal):
            # The decimal a copy of the double stores is its shortest digits (1e16 ->
            # 10000000000000000); 10000000000000001 also rounds to 1e16 but is another row.
            return b.is_finite() and b == Decimal(repr(a))
        if isinstance(a, Decimal) and isinstance(b, float):
            return a.is_finite() and float(a) == b
        if isinstance(a, datetime) and isinstance(b, date):
            return a == datetime.combine(b, dt_time())
        if isinstance(b, datetime) and isinstance(a, date):
            return b == datetime.combine(a, dt_time())
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and (kind not in _SIGNED_ZERO or math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


def unkept_columns(
    rows: Sequence[tuple[Any, ...]], columns: Sequence[str], archive: Sequence[Column]
) -> list[str]:
    """The copied columns (names, in order) where a live number has more digits than the
    archive's DECIMAL(p,s) or numeric(p,s) column keeps (`decimal_fits`): its INSERT would
    round it (MariaDB with a note, PostgreSQL silently), and the live row go while the
    archive keeps another number. A float counts by its shortest digits (what the copy
    writes). Only such columns are looked at: none, no cost."""
    narrow = [
        (i, c.digits)
        for i, c in enumerate(archive)
        if c.digits is not None and c.data_type.lower() in ("decimal", "numeric")
    ]
    unkept: list[str] = []
    for i, digits in narrow:
        for row in rows:
            value = row[i]
            if isinstance(value, float) and math.isfinite(value):
                value = Decimal(repr(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                value = Decimal(value)
            if isinstance(value, Decimal) and value.is_finite() and not decimal_fits(value, digits):
                unkept.append(columns[i])
                break
    return unkept


def held_copies(
    rows: Sequence[tuple[Any, ...]],
    held: Sequence[tuple[Any, ...]],
    positions: Sequence[int],
    kinds: Sequence[str] = (),
) -> tuple[set[Cursor], int]:
    """Live rows against the archive's rows under their keys (both in the copied columns'
    order; `kinds`: the archive columns' data types, lower case, in that order): (the keys
    the archive holds, how many live rows have no copy of their own there).

    The rule of "this archive row is that live row's copy" (`TableStatements.verify_json`
    says it in SQL): the row under the live row's key is what copying it stores, in every
    copied column (`same_value` by the archive column's type), and no other live row of the
    batch has that key. A differing row is no crashed run's copy but another row under a
    reused key; a key two live rows share (a PostgreSQL table without a unique key) has one
    row in the archive for both, however equal they are: taking either as a copy would
    delete a live row uncopied.
    """
    width = max((len(row) for row in (*rows, *held)), default=0)
    kind = list(kinds) + [""] * (width - len(kinds))

    def key_of(row: tuple[Any, ...]) -> Cursor:
        return tuple(_comparable(row[i], kind[i]) for i in positions)

    by_key = {key_of(row): row for row in held}
    present: set[Cursor] = set()
    differing = 0
    seen: set[Cursor] = set()
    for row in rows:
        key = key_of(row)
        if key in seen and None not in key:
            differing += 1  # a second live row under the key: the archive keeps one row
            continue
        seen.add(key)
        there = by_key.get(key)
        if there is None:
            continue
        present.add(tuple(row[i] for i in positions))
        if len(there) != len(row) or not all(map(same_value, row, there, kind)):
            differing += 1
    # A row the archive found under a live key that its key alone tells apart from every
    # live key (a case-insensitive collation: 'Ann@x' under 'ann@x') is another row too.
    return present, differing + sum(1 for key in by_key if key not in seen)


# ------------------------------------------------------------------------------- the run


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
    at: datetime | None = None,
    policy_at: PolicyAt | None = None,
) -> PurgeResult:
    """Run one purge of `store` and return its record; never raises for database trouble.

    Phases: refusal gate; connect (archive before anything is read); clocks and plan; check
    the tables; count (large-cut gate, dry run); batches; the record.

    `at` (dry runs only, for `dataward preview --now`): plan at this instant instead of the
    servers' clocks (`policy` then the revision in force at `at`).
    `policy_at` (`StoreSource.policy_at`): the policy as the revision in force at an instant;
    the run deletes nothing unless it is `policy` at every clock read (`_plan`).
    """
    if at is not None and not store.purge.dry_run:
        raise ValueError("a purge at a chosen instant must be a dry run")
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
    sessions = _Sessions()
    done: list[TableResult] = []
    try:
        live, archive = sessions.open(store, policy, connect_live, connect_archive)
        planned = (
            make_plan(store, policy, at, at)
            if at is not None
            else _plan(store, policy, live, archive, options, job_clock, policy_at)
        )
        if isinstance(planned, _SkewGate):
            return _gated(replace(base, server_time=planned.live_now), planned.gate, job_clock())
        plan = planned
        base = replace(
            base, server_time=plan.now, cutoff=plan.cutoff, archive_cutoff=plan.archive_cutoff
        )
        runs = _table_runs(RunContext(live, archive, plan, options, fault, sessions.spare))
        counts = [run.count_start(options.large_cut) for run in runs]
        done = [_untouched(run, count) for run, count in zip(runs, counts, strict=True)]
        tables = [
            TableCount(r.name, c.removable, c.total) for r, c in zip(runs, counts, strict=True)
        ]
        gate = large_cut(store, plan, tables, options.large_cut)
        if gate is not None:
            held = _gated(replace(base, tables=tuple(done)), gate, job_clock())
            return replace(
                held, acknowledge_token=held_token(plan, tables, options.large_cut)
            )
        if plan.dry_run:
            return _dry_run(base, store, plan, counts, done, options, job_clock)
        done, stop, failure = _run_tables(
            runs, counts, plan, Pacer(check_continue), archive is not None
        )
        if failure is not None:
            raise _Failed(failure, tuple(done))
        return _finished(base, plan, tuple(done), stop, job_clock())
    except PurgeError as error:
        sessions.rollback()
        partial = error.tables if isinstance(error, _Failed) else tuple(done)
        cause = error.cause if isinstance(error, _Failed) else error
        return replace(
            base,
            result="Failed",
            reason=cause.category,
            message=cause.message,
            tables=partial,
            error=ErrorInfo(cause.category, cause.message),
            completion_time=job_clock(),
        )
    finally:
        sessions.close()


class _Sessions:
    """The run's connections: whatever was opened is rolled back on failure and closed."""

    def __init__(self) -> None:
        self.live: Session | None = None
        self.archive: Session | None = None
        self.second: Session | None = None  # a second live session (PostgreSQL), see spare
        self._connect_live: Callable[[], Session] | None = None

    def open(
        self,
        store: Store,
        policy: Policy,
        connect_live: Callable[[], Session],
        connect_archive: Callable[[], Session] | None,
    ) -> tuple[Session, Session | None]:
        """Connect to live, then (statutory) to the archive, before anything is read."""
        category = policy.category(store.category)
        assert category is not None
        self.live = connect_live()
        self._connect_live = connect_live
        if category.statutory is not None:
            if connect_archive is None:
                raise PurgeError("Configuration", "the category is statutory but no archive")
            # Before anything else: an unreachable archive must leave the live rows alone.
            self.archive = connect_archive()
        return self.live, self.archive

    def spare(self) -> Session | None:
        """The second live session of a PostgreSQL live database, opened at the first call
        (statutory batch k goes into a PostgreSQL archive while k+1 runs on it); None on MySQL."""
        connect, self._connect_live = self._connect_live, None  # one attempt per run
        if self.second is None and self.live is not None and connect is not None:
            if self.live.dialect.engine != "postgresql":
                return None
            try:
                self.second = connect()
            except PurgeError:
                return None  # no second connection (max_connections, say): one at a time
        return self.second

    def rollback(self) -> None:
        """Roll back whatever is open."""
        for session in (self.live, self.second, self.archive):
            if session is not None:
                session.rollback()

    def close(self) -> None:
        """Close every connection opened."""
        for session in (self.live, self.second, self.archive):
            if session is not None:
                session.close()


@dataclass(frozen=True)
class _SkewGate:
    """A clock-skew gate and the live clock it was measured against."""

    gate: Gate
    live_now: datetime


def preview(
    store: Store,
    policy: Policy | None,
    *,
    connect_live: Callable[[], Session],
    connect_archive: Callable[[], Session] | None,
    job_clock: Clock,
    options: EngineOptions | None = None,
    at: datetime | None = None,
    policy_at: PolicyAt | None = None,
) -> PurgeResult:
    """What a purge of `store` would do now (or `at`): the purge itself as a dry run, so the
    counts come from the same plan, statements and budget as a real run's."""
    dry = replace(store, purge=replace(store.purge, dry_run=True))
    return purge(
        dry,
        policy,
        connect_live=connect_live,
        connect_archive=connect_archive,
        job_clock=job_clock,
        options=options,
        at=at,
        policy_at=policy_at,
    )


def _plan(
    store: Store,
    policy: Policy,
    live: Session,
    archive: Session | None,
    options: EngineOptions,
    job_clock: Clock,
    policy_at: PolicyAt | None = None,
) -> PurgePlan | _SkewGate:
    """The plan at each server's clock or the job's, whichever is earlier (`planning_instant`),
    or the skew gate when a clock is too far off, or (with `policy_at`) the stop when the
    revision in force is not `policy` at every clock read (`revision_at_clocks`): the revision
    is decided at the instants the cutoffs are."""
    live_now = live.server_now()
    job_now = job_clock()
    clocks = [live_now, job_now]
    gate = clock_skew(live_now, job_now, options.max_clock_skew, "live database")
    archive_now = None
    if gate is None and archive is not None:
        archive_server, archive_job = archive.server_now(), job_clock()
        clocks += [archive_server, archive_job]
        gate = clock_skew(archive_server, archive_job, options.max_clock_skew, "archive")
        archive_now = planning_instant(archive_server, archive_job)
    if gate is None and policy_at is not None:
        gate = revision_at_clocks(policy, [policy_at(clock) for clock in clocks])
    if gate is not None:
        return _SkewGate(gate, live_now)
    return make_plan(store, policy, planning_instant(live_now, job_now), archive_now)


def _table_runs(run: RunContext) -> list[TableRun]:
    """Every records entry checked against the catalogues; a read-only archive refused."""
    archive = run.archive
    tables = [prepare_table(run.live, archive, records, run.plan) for records in run.plan.records]
    if archive is not None and archive.read_only():
        raise PurgeError(
            "ArchiveReadOnly",
            "the archive database is read-only for the archive login: nothing was "
            "deleted from the live database; make the archive writable.",
        )
    if archive is not None:
        _claim_archives(archive, tables, run.plan)
        tables = _server_side(run.live, archive, tables)
    return [TableRun(t, run) for t in tables]


def _claim_archives(archive: Session, tables: Sequence[PreparedTable], plan: PurgePlan) -> None:
    """Claim every archive table of the run for its store (`claims`), before anything is
    counted, copied or destroyed there; ArchiveClaimed, failing the whole run with nothing
    deleted, when another store owns one: its rows are not this store's to destroy, and this
    store's copies must not land among them. A dry run claims nothing, and refuses alike."""
    claimed = [(t.archive_table, t.records.table) for t in tables if t.archive_table is not None]
    assert len(claimed) == len(tables)
    claim_all(archive, claimed, plan.store, write=not plan.dry_run)


def _server_side(
    live: Session, archive: Session, tables: list[PreparedTable]
) -> list[PreparedTable]:
    """The tables whose statutory batches the live login copies into the archive itself
    (`plan.server_side_copy`), with the archive table as the live session names it; the
    facts read here once, at the start, nothing tried by writing."""
    if not (isinstance(live, MySQLSession) and live.mariadb and isinstance(archive, MySQLSession)):
        return tables
    same = same_server(live, archive)
    out = []
    for t in tables:
        if not same or t.archive_table is None:
            out.append(t)
            continue
        target = TableName(t.archive_table.schema or archive.database_name, t.archive_table.name)
        source = (t.live.table.schema or live.database_name, t.live.table.name)
        try:
            copy = t.live.copy_rows_to(target, t.columns, t.live.key_rows(None))
            count = t.live.copied_rows(target, None)
        except PurgeError:
            out.append(t)  # a database name no plain identifier: not named in SQL, today's way
            continue
        engines = (live.table_engine(t.live.table), archive.table_engine(t.archive_table))
        probe = [None, t.bound]  # one row by a NULL key: EXPLAIN checks, nothing matches
        chosen = server_side_copy(
            same,
            live.mariadb,
            source,
            (target.schema or "", target.name),
            engines,
            live.allowed(copy, probe),
            live.allowed(count, probe),
        )
        out.append(replace(t, server_side=target) if chosen else t)
    return out


def _finished(
    base: PurgeResult,
    plan: PurgePlan,
    results: tuple[TableResult, ...],
    stop: Stop | None,
    at: datetime,
) -> PurgeResult:
    """The record of a run whose batches ended (done, stopped, or at maxRowsPerRun)."""
    if (
        stop is None
        and any(t.expired_remaining or t.no_consent_remaining for t in results)
        and sum(t.rows_deleted for t in results) >= plan.max_rows
    ):
        stop = Stop(WORK_LIMIT_STOP, f"stopped at maxRowsPerRun ({plan.max_rows} rows).")
    outcome: Outcome = stop.outcome if stop is not None else "Succeeded"
    return replace(
        base,
        result=outcome,
        # No reason when nothing stopped the run: the operator's PurgeSucceeded reads a
        # reason on a Succeeded record as "stopped early" (API: why it stopped or failed).
        reason=stop.reason if stop else None,
        tables=results,
        stopped_early=stop.reason if stop else None,
        message=_summary(results, plan, stop),
        error=ErrorInfo(stop.reason, stop.message) if outcome == "Failed" and stop else None,
        completion_time=at,
    )


class _Failed(PurgeError):
    """A run that failed after batches committed: the cause and what the tables did."""

    def __init__(self, cause: PurgeError, tables: tuple[TableResult, ...]) -> None:
        super().__init__(cause.category, cause.message)
        self.cause = cause
        self.tables = tables


def _untouched(run: TableRun, count: StartCount) -> TableResult:
    """A table's result before any batch: everything expired still there."""
    return TableResult(
        table=run.name,
        expired_remaining=count.expired,
        oldest_expired_age_seconds=run.age(count.oldest),
        null_triggers=count.nulls,
        archive_expired_remaining=count.archive_expired,
        no_consent_remaining=count.children,
        unknown_age=count.unknown_age,
        **run.zone_bounds(),
    )


def _run_tables(
    runs: Sequence[TableRun],
    counts: Sequence[StartCount],
    plan: PurgePlan,
    pacer: Pacer,
    statutory: bool,
) -> tuple[list[TableResult], Stop | None, PurgeError | None]:
    """Live batches of every table, then (statutory) archive destructions; the final counts.

    Per table, a children's category first removes the rows of children without consent past
    the grace period (archiving them when statutory, like any row the law requires to keep),
    then the expired rows. Both passes share maxRowsPerRun, in that order (`_dry_run` counts
    the same way).

    A PurgeError ends the batches; it is returned with the counts of what was committed up
    to then (remaining rows estimated from the start counts: the database may be gone).
    """
    live: list[Drained] = [Drained() for _ in runs]
    young: list[Drained] = [Drained() for _ in runs]
    destroyed: list[Drained] = [Drained() for _ in runs]
    stop: Stop | None = None
    error: PurgeError | None = None
    used = 0
    for i, (run, count) in enumerate(zip(runs, counts, strict=True)):
        passes = ((young, run.children_batches),) if run.table.children is not None else ()
        for drained, make in (*passes, (live, run.live_batches)):
            batches = make()
            span = count.key_span
            budget = plan.max_rows - used
            if drained is live and span and key_sweep(count.expired, count.span_rows, budget):
                batches = run.key_batches(span)
            drained[i] = run.drain(
                batches, plan.max_rows - used, pacer, statutory, run.second_lane(make, statutory)
            )
            used += drained[i].deleted
            stop, error = drained[i].stop, drained[i].error
            if stop is not None or error is not None:
                break
        if stop is not None or error is not None:
            break
    if statutory and stop is None and error is None:
        used = 0
        for i, run in enumerate(runs):
            destroyed[i] = run.drain(run.archive_batches(), plan.max_rows - used, pacer, False)
            used += destroyed[i].deleted
            stop, error = destroyed[i].stop, destroyed[i].error
            if stop is not None or error is not None:
                break
    results = []
    for run, count, took, kid, gone in zip(runs, counts, live, young, destroyed, strict=True):
        remaining = max(0, count.expired - took.deleted - min(kid.deleted, count.overlap))
        oldest: datetime | date | None = None
        archive_left = max(0, count.archive_expired - gone.deleted)
        children_left = max(0, count.children - kid.deleted)
        if error is None:
            try:
                remaining, oldest, archive_left, children_left = run.count_end()
            except PurgeError as failure:
                error = failure
        results.append(
            TableResult(
                table=run.name,
                rows_deleted=took.deleted + kid.deleted,
                rows_archived=took.archived + kid.archived,
                archive_rows_destroyed=gone.deleted,
                expired_remaining=remaining,
                oldest_expired_age_seconds=run.age(oldest),
                null_triggers=count.nulls,
                archive_expired_remaining=archive_left,
                rows_skipped_locked=took.skipped + kid.skipped + gone.skipped,
                rows_no_consent=kid.deleted,
                no_consent_remaining=children_left,
                unknown_age=count.unknown_age,
                archive_copy=(
                    ("ServerSide" if run.server_side_batches else "TwoLogins")
                    if statutory
                    else None
                ),
                **run.zone_bounds(),
            )
        )
    if isinstance(error, NoInstant):
        error = error.after(sum(r.rows_deleted + r.archive_rows_destroyed for r in results))
    return results, stop, error


def _gated(result: PurgeResult, gate: Gate, at: datetime) -> PurgeResult:
    return replace(
        result,
        result=gate.result,
        reason=gate.reason,
        message=gate.message,
        error=ErrorInfo(gate.reason, gate.message) if gate.result == "Failed" else None,
        completion_time=at,
    )


def column_map(session: Session, table: TableName, role: str, spec: str) -> dict[str, Any]:
    """The table's columns by lower-cased name; TableNotFound when the login cannot see it."""
    columns = session.columns(table)
    if not columns:
        raise PurgeError(
            "TableNotFound",
            f"table {spec} does not exist in the {role} database, or the {role} login "
            "cannot see it: create it or fix spec.records.",
        )
    return {c.name.lower(): c for c in columns}


def prepare_table(
    live: Session, archive: Session | None, records: RecordSet, plan: PurgePlan
) -> PreparedTable:
    """Check a records entry against the catalogues; refuse anything unsafe."""
    table = parse_table(records.table)
    columns = column_map(live, table, "live", records.table)
    ts_kind, precision = _timestamp_column(live, columns, records, "live")
    for key in records.key_columns:
        if key.lower() not in columns:
            raise PurgeError(
                "ColumnRefused",
                f"key column {key!r} is not in table {records.table}: fix spec.records keyColumns.",
            )
    statements = TableStatements(
        live.dialect, table, records.timestamp_column, records.key_columns,
        singles=single_floats(live.dialect, columns.values(), records.key_columns),
        nullable_keys=nullable_keys(columns, records),
    )  # fmt: skip
    zone = records.zone
    live_bound = bind_cutoff(plan.now, plan.retention, ts_kind, precision, zone)
    names = tuple(c.name for c in columns.values())
    live_unique, live_ts = _mysql_indexes(live, table, records, "live")
    # The primary key is InnoDB's clustered index: a key-order sweep reads rows where they lie.
    # MariaDB only: the sweep's statements run without waiting by `SET STATEMENT ... FOR`.
    sweepable = isinstance(live, MySQLSession) and live.mariadb
    primary = (
        records.key_columns[0]
        if sweepable and live_unique == "PRIMARY" and len(records.key_columns) == 1
        else None
    )
    children = _children(live, table, columns, records, plan)
    if archive is None:
        return PreparedTable(
            records,
            statements,
            live_bound,
            names,
            live_zone=column_zone(ts_kind, zone),
            live_unique_index=live_unique,
            live_ts_index=live_ts,
            live_primary_key=primary,
            **children,
        )
    assert plan.statutory is not None
    archive_columns = column_map(archive, table, "archive", records.table)
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
    _check_archive_trigger(
        records,
        columns[records.timestamp_column.lower()],
        archive_columns[records.timestamp_column.lower()],
        (ts_kind, precision),
        (archive_kind, archive_precision),
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
    archive_unique, archive_ts = _mysql_indexes(archive, table, records, "archive")
    twins = False
    if live.dialect.engine == "postgresql":
        keyed = frozenset(live.dialect.name(k).lower() for k in records.key_columns)
        twins = not any(
            frozenset(c.lower() for c in u) <= keyed for u in live.unique_keys(table)
        )
        live.commit()
    binary = live.dialect.engine == archive.dialect.engine == "postgresql" and same_copy_types(
        tuple(columns.values()), tuple(archive_columns.values())
    )
    return PreparedTable(
        records,
        statements,
        live_bound,
        names,
        archive=TableStatements(
            archive.dialect,
            table,
            records.timestamp_column,
            records.key_columns,
            singles=single_floats(archive.dialect, archive_columns.values(), records.key_columns),
            nullable_keys=nullable_keys(archive_columns, records),
        ),
        archive_table=table,
        archive_bound=bind_cutoff(
            plan.archive_clock, plan.statutory, archive_kind, archive_precision, zone
        ),
        live_unique_index=live_unique,
        live_ts_index=live_ts,
        live_primary_key=primary,
        archive_unique_index=archive_unique,
        archive_ts_index=archive_ts,
        live_statute_bound=bind_cutoff(
            plan.archive_clock, plan.statutory, ts_kind, precision, zone
        ),
        live_zone=column_zone(ts_kind, zone),
        binary_copy=binary,
        archive_json=tuple(
            c.name
            for c in columns.values()
            if archive.dialect.engine == "postgresql"
            and archive_columns[c.name.lower()].data_type.lower() in ("json", "jsonb")
        ),
        archive_columns=tuple(archive_columns[c.name.lower()] for c in columns.values()),
        live_twins=twins,
        narrowed=narrowed_columns(
            [columns[n.lower()] for n in names], [archive_columns[n.lower()] for n in names]
        ),
        **children,
    )


def nullable_keys(columns: dict[str, Column], records: RecordSet) -> tuple[str, ...]:
    """The key columns the catalogue lets hold NULL (a UNIQUE key allows it; a PRIMARY KEY
    does not): only then does a run count the rows it would take with NULL there
    (`TableStatements.count_unkeyed`)."""
    return tuple(k for k in records.key_columns if columns[k.lower()].nullable)


def _check_archive_trigger(
    records: RecordSet,
    live_column: Column,
    archive_column: Column,
    live: tuple[TimestampKind, int | None],
    archive: tuple[TimestampKind, int | None],
) -> None:
    """The archive pass destroys a copy by reading the archive's trigger column, so that
    column must tell apart every instant the live one does: a date only the day (a copy of
    23:00 becomes its day, read as the day's midnight: destroyed up to a day early), a time
    with fewer fractional-second digits a rounded (PostgreSQL) or cut (MariaDB) value (up to
    a second early). Refused with or without records[].timeZone. Without it, instants and
    wall-clock times are both UTC in the purge's sessions, so one may be archived as the other
    (PostgreSQL timestamptz into MariaDB DATETIME(6)). With it the trigger is a wall clock
    (or a day) of that zone, which only a wall-clock or date column keeps, of the same kind
    on both sides: an instant column there would be written in the session's zone (UTC)."""
    (live_kind, live_precision), (archive_kind, archive_precision) = live, archive
    if records.time_zone is not None and not archive_kind == live_kind != "instant":
        raise PurgeError(
            "ArchiveTableInvalid",
            f"records[].timeZone of table {records.table} is {records.time_zone}, so its "
            f"trigger column holds wall-clock values of that zone, but the live column holds "
            f"{_KIND_WORDS[live_kind]} and the archive column {_KIND_WORDS[archive_kind]}: give "
            "both the same type without a time zone (timestamp without time zone or date; "
            "DATETIME or DATE), or drop timeZone if the trigger is an instant. Nothing was "
            "deleted.",
        )
    if _resolution(archive_kind, archive_precision) >= _resolution(live_kind, live_precision):
        return
    raise PurgeError(
        "ArchiveTableInvalid",
        f"the archive's trigger column {records.timestamp_column!r} of {records.table} "
        f"({archive_column.data_type}) keeps {_kept(archive_kind, archive_precision)}, the "
        f"live one ({live_column.data_type}) {_kept(live_kind, live_precision)}: the archive "
        "destroys a copy by that column, so copies cut down to it could go before their "
        "statute ends (up to a day early for a date, a second for fewer digits); give the "
        "archive column the live column's type. Nothing was deleted.",
    )


def _kept(kind: TimestampKind, precision: int | None) -> str:
    if kind == "date":
        return "only the day"
    return f"{fraction_digits(precision)} fractional-second digits"


def _resolution(kind: TimestampKind, precision: int | None) -> int:
    """How finely a trigger column tells instants apart: -1 for a day, else its digits."""
    return -1 if kind == "date" else fraction_digits(precision)


_KIND_WORDS: dict[TimestampKind, str] = {
    "instant": "instants (a type with a time zone, or MySQL TIMESTAMP)",
    "wallclock": "wall-clock times",
    "date": "dates",
}


def _children(
    live: Session, table: TableName, columns: dict[str, Any], records: RecordSet, plan: PurgePlan
) -> dict[str, Any]:
    """The children's pass of a records entry (PreparedTable fields), checked against the
    catalogue; nothing when the category holds no children's data."""
    rule = records.children
    if plan.children_cutoff is None or plan.consent_grace is None:
        return {}
    if rule is None:  # compliance refuses this before a run; a second lock
        raise PurgeError(
            "ColumnRefused",
            f"table {records.table} of a children's category has no records[].children.",
        )
    collected = rule.collected_column or records.timestamp_column
    kind, precision = _timestamp_column(live, columns, records, "live", collected)
    birth = age = None
    if rule.birth_date_column is not None:
        birth = _column(columns, records, rule.birth_date_column, "children.birthDateColumn")
        if live.dialect.timestamp_kind(birth) is None:
            raise _wrong_type(records, birth, "children.birthDateColumn", "a date or timestamp")
    else:
        assert rule.age_column is not None
        age = _column(columns, records, rule.age_column, "children.ageColumn")
        if not live.dialect.is_integer(age):
            raise _wrong_type(records, age, "children.ageColumn", "an integer")
    bound = bind_cutoff(plan.now, plan.consent_grace, kind, precision, records.zone)
    consent = _column(columns, records, rule.consent_column, "children.consentColumn")
    flag = live.dialect.is_flag(consent)
    if not flag and live.dialect.timestamp_kind(consent) is None:
        raise _wrong_type(records, consent, "children.consentColumn", "a timestamp or boolean")
    child = ChildRule(
        age=CHILD_AGE,
        consent=consent.name,
        consent_is_flag=flag,
        birth_date=birth.name if birth is not None else None,
        age_column=age.name if age is not None else None,
        **_birthday_zone(live, birth, kind, records.zone, bound),
    )
    _, ts_index = _mysql_indexes(live, table, records, "live", collected)
    return {
        "children": TableStatements(
            live.dialect,
            table,
            collected,
            records.key_columns,
            child,
            single_floats(live.dialect, columns.values(), records.key_columns),
            nullable_keys(columns, records),
        ),
        "children_bound": bound,
        "children_ts_index": ts_index,
    }


def _birthday_zone(
    live: Session,
    birth: Column | None,
    collected_kind: TimestampKind,
    zone: ZoneInfo | None,
    bound: datetime | date,
) -> dict[str, Any]:
    """ChildRule's fields that read a birthday as a day of records[].timeZone (the whole rule
    is ChildRule's): the columns' kinds, when days begin there, and the instant-to-date offset.
    Only rows collected at or before the children's bound (`bind_cutoff`: an instant, a wall
    clock of the zone or a date) are compared, so the zone's days are needed up to a few days
    past it."""
    if birth is None:
        return {}
    birth_kind = live.dialect.timestamp_kind(birth)
    assert birth_kind is not None
    fields: dict[str, Any] = {"collected_kind": collected_kind, "birth_kind": birth_kind}
    if zone is None:
        return fields
    if isinstance(bound, datetime):  # an instant (aware), or a wall clock of the zone
        day = (bound.astimezone(UTC) if bound.tzinfo is not None else bound).date()
    else:
        day = bound
    last = day + timedelta(days=3)
    if collected_kind != "date":
        fields["shifts"] = birthday_shifts(zone, last, collected_kind == "wallclock")
    if birth_kind == "instant":
        fields["birth_offsets"] = birth_offsets(zone, last)
    return fields


def _column(columns: dict[str, Any], records: RecordSet, name: str, field: str) -> Column:
    column: Column | None = columns.get(name.lower())
    if column is None:
        raise PurgeError(
            "ColumnRefused",
            f"{field} {name!r} is not in table {records.table}: fix spec.records.",
        )
    return column


def _wrong_type(records: RecordSet, column: Column, field: str, wanted: str) -> PurgeError:
    return PurgeError(
        "ColumnRefused",
        f"{field} {column.name!r} of {records.table} is of type {column.data_type}, not "
        f"{wanted}: Dataward will not guess what its values mean; nothing was deleted.",
    )


def _mysql_indexes(
    session: Session, table: TableName, records: RecordSet, role: str, timestamp: str | None = None
) -> tuple[str | None, str | None]:
    """MySQL: the unique index on exactly the key columns (required) and one led by the
    timestamp column (optional, used when present); (None, None) on PostgreSQL.

    InnoDB locks (and waits for) every index record a locking statement reads, even under
    READ COMMITTED and even the one just past a range's end, so a DELETE that scans could
    wait for a lock an application holds on an unexpired row. Point lookups on a unique
    index read only the rows named.
    """
    if session.dialect.engine == "postgresql":
        return None, None
    indexes = session.indexes(table)
    session.commit()
    wanted = frozenset(k.lower() for k in records.key_columns)
    unique = next(
        (i.name for i in indexes if i.unique and frozenset(c.lower() for c in i.columns) == wanted),
        None,
    )
    if unique is None:
        raise PurgeError(
            "IndexMissing",
            f"the {role} table {records.table} has no PRIMARY KEY or UNIQUE index on exactly "
            f"({', '.join(records.key_columns)}): on MySQL the purge deletes by that index so "
            "that it never waits for a lock on a row it does not delete; add one, or point "
            "keyColumns at the primary key. Nothing was deleted.",
        )
    ts = (timestamp or records.timestamp_column).lower()
    ts_index = next((i.name for i in indexes if i.columns[0].lower() == ts), None)
    return unique, ts_index


def _timestamp_column(
    session: Session,
    columns: dict[str, Any],
    records: RecordSet,
    role: str,
    name: str | None = None,
) -> tuple[TimestampKind, int | None]:
    """The kind and precision of the trigger column (or of `name`, children.collectedColumn)."""
    name = name or records.timestamp_column
    field = "timestampColumn" if name == records.timestamp_column else "children.collectedColumn"
    column = columns.get(name.lower())
    if column is None:
        raise PurgeError(
            "ColumnRefused",
            f"timestamp column {name!r} is not in the {role} table "
            f"{records.table}: fix spec.records {field}.",
        )
    kind = session.dialect.timestamp_kind(column)
    if kind is None:
        raise PurgeError(
            "ColumnRefused",
            f"column {name!r} of {records.table} ({role}) is of type "
            f"{column.data_type}, not a timestamp, datetime or date: Dataward will not guess "
            f"what its values mean; point {field} at a timestamp column.",
        )
    precision: int | None = column.precision
    return kind, precision


def _dry_run(
    base: PurgeResult,
    store: Store,
    plan: PurgePlan,
    counts: Sequence[StartCount],
    tables: Sequence[TableResult],
    options: EngineOptions,
    job_clock: Clock,
) -> PurgeResult:
    """What a real run would do, from the start counts: `_run_tables`' order and budget (per
    table the children's rows, then the rest of the expired rows), and whether the large-cut
    gate would hold it (the real run deletes nothing then)."""
    # Per table: (children's rows without consent, the other expired rows), in run order.
    wanted = [n for c in counts for n in (c.children, c.expired - c.overlap)]
    allocated = dry_run_allocation(wanted, plan.max_rows)
    young, rest = allocated[0::2], allocated[1::2]
    # The archive pass runs after the live one and also destroys the rows just archived that
    # are past the statute already (exact when the budget takes every such row; else at most).
    moved = [kid + other for kid, other in zip(young, rest, strict=True)]
    would_destroy = dry_run_allocation(
        [
            c.archive_expired + min(c.live_past_statute, n)
            for c, n in zip(counts, moved, strict=True)
        ],
        plan.max_rows,
    )
    real = [TableCount(t.table, c.removable, c.total) for t, c in zip(tables, counts, strict=True)]
    held = large_cut(store, replace(plan, dry_run=False), real, options.large_cut)
    results = tuple(
        replace(
            table,
            rows_deleted=kid + other,
            rows_archived=kid + other if plan.statutory is not None else 0,
            archive_rows_destroyed=destroy,
            rows_no_consent=kid,
            large_cut=options.large_cut.is_large(count.removable, count.total),
        )
        for table, count, kid, other, destroy in zip(
            tables, counts, young, rest, would_destroy, strict=True
        )
    )
    stopped = WORK_LIMIT_STOP if sum(allocated) < sum(wanted) else None
    total = sum(allocated)
    message = (
        f"dry run: would delete {total} rows"
        + (f" ({sum(young)} of children without consent)" if plan.children_cutoff else "")
        + (" (archiving them first)" if plan.statutory is not None else "")
        + (f" and destroy {sum(would_destroy)} archived rows" if plan.statutory else "")
        + f" at cutoff {plan.cutoff.isoformat()}{_zoned(results)}; nothing was changed."
        + (f" A real run would stop at maxRowsPerRun ({plan.max_rows})." if stopped else "")
        + (" A real run would be held: " + held.message if held is not None else "")
    )
    return replace(
        base,
        result="Succeeded",
        reason="DryRun",
        tables=results,
        stopped_early=stopped,
        message=message,
        completion_time=job_clock(),
        acknowledge_token=(
            held_token(plan, real, options.large_cut) if held is not None else None
        ),
    )


def _zoned(results: Sequence[TableResult]) -> str:
    """The messages' note on tables whose trigger is a wall clock or date of
    records[].timeZone: they were cut at their own bound, on the zone's calendar."""
    zoned = [f"{r.table} {r.zone_cutoff} {r.time_zone}" for r in results if r.zone_cutoff]
    if not zoned:
        return ""
    return (
        " (UTC's calendar; tables with records[].timeZone at their own cutoff, the zone's wall "
        f"clock or date on its calendar: {', '.join(zoned)})"
    )


def _zoned_children(results: Sequence[TableResult], plan: PurgePlan) -> str:
    """The messages' note on children's tables whose collection time is a wall clock or date
    of records[].timeZone: compared with their own bound, the grace on the zone's calendar."""
    zones = {r.table: r.time_zone for r in plan.records}
    zoned = [
        f"{r.table} {r.zone_children_cutoff} {zones.get(r.table)}"
        for r in results
        if r.zone_children_cutoff
    ]
    if not zoned:
        return ""
    return (
        "; UTC's calendar, tables whose collection time is a wall clock or date of "
        f"records[].timeZone at their own bound on the zone's calendar: {', '.join(zoned)}"
    )


def _summary(results: Sequence[TableResult], plan: PurgePlan, stop: Stop | None) -> str:
    deleted = sum(r.rows_deleted for r in results)
    remaining = sum(r.expired_remaining for r in results)
    nulls = sum(r.null_triggers for r in results)
    parts = [f"deleted {deleted} expired rows at cutoff {plan.cutoff.isoformat()}"]
    if plan.children_cutoff is not None:
        kids = sum(r.rows_no_consent for r in results)
        parts = [
            f"deleted {deleted} rows: {kids} of children under {CHILD_AGE} without the legal "
            f"representative's consent collected at or before "
            f"{plan.children_cutoff.isoformat()} ({plan.consent_grace} grace"
            f"{_zoned_children(results, plan)}), "
            f"{deleted - kids} expired at cutoff {plan.cutoff.isoformat()}"
        ]
    parts[0] += _zoned(results)
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
    unknown = sum(r.unknown_age for r in results)
    if unknown:
        parts.append(
            f"{unknown} rows of children's tables have no birth date or age and were not "
            "treated as children's"
        )
    skipped = sum(r.rows_skipped_locked for r in results)
    if skipped:
        parts.append(
            f"{skipped} expired rows were locked by another transaction and are left for the "
            "next run"
        )
    text = "; ".join(parts) + "."
    if stop is not None:
        text += " " + stop.message
    return text
