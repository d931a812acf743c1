"""One batch of one table on one session, per engine: the statements and their I/O.

The engine (`engine.py`) decides how many rows, after which cursor, and what to do on a lock
timeout; these classes only run a batch's statements and report what they did. Nothing here
commits: the engine commits or rolls back, so a statutory batch can stay open while the
archive takes its copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from pymysql.converters import escape_item

from dataward.purge.errors import LockTimeout, PurgeError, instant_or_refused
from dataward.purge.mysql import MySQLSession, packets
from dataward.purge.sql import NO_WAIT, Column, Session, TableName, TableStatements

Fault = Callable[[str], None]
Cursor = tuple[Any, ...]  # (ts, keys...) of the last row a batch picked; (ts, None...): all of ts
T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """What one batch (or part of one) did."""

    picked: int
    deleted: int = 0
    archived: int = 0
    skipped: int = 0
    last: Cursor | None = None


@dataclass(frozen=True)
class Taken:
    """A statutory batch whose rows are deleted (PostgreSQL) or locked (MySQL), uncommitted."""

    picked: int
    last: Cursor | None
    rows: list[tuple[Any, ...]]
    # PostgreSQL to PostgreSQL: the deleted rows as one JSON array, never decoded here.
    payload: str | None = None
    deleted: int = 0
    # PostgreSQL to PostgreSQL by timestamp range: the deleted rows as COPY text.
    copied: bytes | None = None


@dataclass(frozen=True)
class Moved:
    """MariaDB, the archive on the live server: a batch copied there and deleted in the live
    transaction, uncommitted (`MySQLKeyBatches.move`)."""

    picked: int
    last: Cursor | None
    inserted: int  # rows the INSERT ... SELECT reported
    found: int  # rows of the batch's range the archive holds under their keys
    deleted: int


@dataclass(frozen=True)
class Literals:
    """MySQL: a statutory batch's rows locked (uncommitted) and written by the server as SQL
    literals (see TableStatements.lock_literals): row tuples and key terms, in one order."""

    picked: int
    last: Cursor | None
    rows: list[bytes]
    keys: list[bytes]


class Batches(Protocol):
    """The statements of one table's batches on one session."""

    session: Session
    statements: TableStatements
    bound: datetime | date

    def delete(self, after: Cursor | None, limit: int, fault: Fault) -> Step:
        """Delete the next `limit` expired rows; uncommitted."""
        ...

    def peek(self, after: Cursor | None) -> Cursor | None:
        """The cursor of the next expired row after `after`, read without a lock (a batch
        split down to that one row hit the lock timeout: it is skipped); None: none left."""
        ...

    def take(
        self, after: Cursor | None, limit: int, columns: Sequence[str], as_json: bool
    ) -> Taken:
        """Statutory: the next rows with every column, deleted or locked; uncommitted.

        `as_json` (PostgreSQL only) returns them as one JSON text instead of rows."""
        ...

    def drop(self, keys: Sequence[Cursor]) -> int:
        """Statutory: delete the taken rows (already done on PostgreSQL)."""
        ...

    def take_range(
        self, after: Cursor | None, limit: int, columns: Sequence[str], binary: bool = False
    ) -> Taken | None:
        """Statutory, PostgreSQL to PostgreSQL: a timestamp-range batch deleted and returned
        as COPY text (`binary`: COPY binary), uncommitted; None when `take` must do it (a
        crowded timestamp, a range that took more rows than the batch, MySQL)."""
        ...


def peek_in_order(batches: Batches, after: Cursor | None) -> Cursor | None:
    """`Batches.peek` in `(ts, keys)` order."""
    rows = batches.session.query(
        batches.statements.peek(after is not None), [batches.bound, *cursor_params(after)]
    )
    return _checked(batches, tuple(rows[0])) if rows else None


def _checked(batches: Batches, cursor: Cursor) -> Cursor:
    """A `(ts, keys)` cursor read back, refused (NoInstant) when its trigger names no
    instant (one written after the run's count refused any there was), before the batch
    deletes or copies anything up to it."""
    statements = batches.statements
    instant_or_refused(cursor[0], batches.session.role, str(statements.table), statements.timestamp)
    return cursor


def _checked_rows(
    batches: Batches, rows: list[tuple[Any, ...]], columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Rows a statutory batch locked and read, refused (NoInstant) when one's trigger names
    no instant, before any of them is copied or deleted."""
    statements = batches.statements
    names = [c.lower() for c in columns]
    if statements.timestamp.lower() not in names:
        return rows
    at = names.index(statements.timestamp.lower())
    for row in rows:
        instant_or_refused(
            row[at], batches.session.role, str(statements.table), statements.timestamp
        )
    return rows


def cursor_params(after: Cursor | None) -> list[Any]:
    """The parameters of TableStatements' keyset predicate for a cursor (none for None)."""
    if after is None:
        return []
    return [after[0], after[0], after[0], *after[1:]]


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Rows as one flat parameter list."""
    return [value for row in rows for value in row]


# How far a predicted range may reach: at most this many times the last range's span, aimed
# at this share of the batch (PostgresBatches._predicted).
_MAX_REACH = 4.0
_AIM = 0.9


@dataclass(frozen=True)
class _Pace:
    """The last range batch: every expired row after trigger `start` up to `upper`, `rows`
    rows deleted."""

    start: datetime
    upper: datetime
    rows: int


@dataclass
class PostgresBatches:
    """One statement per batch: pick, delete by ctid, report (see TableStatements.delete_batch)."""

    session: Session
    statements: TableStatements
    bound: datetime | date
    taken: int = 0
    # The lock-hold target: a predicted range's DELETE is cancelled after twice this.
    hold: float = 0.1
    _pace: _Pace | None = None

    def delete(self, after: Cursor | None, limit: int, fault: Fault) -> Step:
        """Delete the next `limit` (or so) expired rows; uncommitted.

        A predicted timestamp range when the last range batch ended where this one starts
        (see `_predicted`), else a range bounded from the index (see `_delete_range`) when
        the timestamps are spread out, else the `(ts, keys)` keyset statement, which takes
        exactly `limit` rows.
        """
        step = self._predicted(after, limit)
        if step is None:
            step = self._delete_range(after, limit)
        if step is not None:
            fault("after-select")
            return step
        params = [self.bound, *cursor_params(after), limit, self.bound]
        rows = self.session.query(self.statements.delete_batch(after is not None, None), params)
        fault("after-select")
        if not rows:
            return Step(0)
        picked, *last, deleted = rows[0]
        return Step(int(picked), int(deleted), last=tuple(last))

    def peek(self, after: Cursor | None) -> Cursor | None:
        """The next expired row in `(ts, keys)` order."""
        return peek_in_order(self, after)

    def _delete_range(self, after: Cursor | None, limit: int) -> Step | None:
        """Delete by timestamp range: every expired row after the cursor up to a trigger `u`
        chosen from the index (`_upper`) so that the batch holds `limit` rows when the
        timestamps are distinct and never more than `limit` (nor goes past maxRowsPerRun);
        None when too many rows share a timestamp (a crowded timestamp: the keyset statement
        takes exactly `limit` rows instead).

        About twice as fast per row as the keyset statement: the bound comes from the
        timestamp index alone and the DELETE is a plain range scan, with no ordered pick by
        `(ts, keys)`, no ctid array and no RETURNING. Oldest first still holds (by
        timestamp), and the cursor `(u, NULL...)` continues after every row of `u`: the
        keyset predicate's `key > NULL` is never true.
        """
        upper = self._upper(after, limit)
        if upper is False:
            return None
        cursor = cursor_params(after)
        delete = self.statements.delete_range(after is not None)
        if upper is None:
            # Fewer than `limit` expired rows are left after the cursor: take them all.
            deleted = self.session.execute(delete, [self.bound, *cursor, self.bound])
            if self._overran(deleted, limit, upper):
                return None
            return Step(min(deleted, limit - 1), deleted)
        deleted = self.session.execute(delete, [upper, *cursor, self.bound])
        if self._overran(deleted, limit, upper):
            return None
        start = after[0] if after is not None else None
        if isinstance(start, datetime) and isinstance(upper, datetime) and deleted:
            self._pace = _Pace(start, upper, deleted)
        return Step(limit, deleted, last=self._past(upper))

    def _overran(self, deleted: int, limit: int, upper: Any) -> bool:
        """Whether a range bounded by `upper` (from `_upper`) deleted more rows than its
        batch: rows expired inside it after its bound was chosen (a backdated or late insert,
        a bulk load of old rows). A bound holds at most `limit` rows; none (None) was needed
        because fewer than `limit` were left. Then rolled back: the caller takes the batch by
        the keyset statement, exactly `limit` rows, so a run never passes maxRowsPerRun."""
        most = limit - 1 if upper is None else limit
        if deleted <= most:
            return False
        self.session.rollback()
        return True

    def _predicted(self, after: Cursor | None, limit: int) -> Step | None:
        """Delete a range whose upper trigger is predicted from the last range batch, with
        no bound query: the last batch took `rows` rows over a span of triggers ending at
        this batch's cursor, so about `_AIM * limit` rows lie within `_AIM * limit / rows`
        times that span after it (at most `_MAX_REACH` times). Saves the index walk of
        `limit` entries that `_upper` does (measured: 11-26% less time a row, bench/purge_pace.py).

        The same range DELETE as `_delete_range`, so the cutoff is re-checked on every row.
        Rolled back, and None returned (the caller bounds the batch from the index instead),
        when the range held more than `limit` rows or none (the end, or a gap), or when the
        DELETE ran past twice the lock-hold target (a transaction-local statement timeout):
        a wrong guess never makes a batch larger than `limit` nor commits, and holds its
        locks at most that long. A lock timeout is raised as for any batch.
        """
        pace, self._pace = self._pace, None
        if after is None or pace is None or pace.upper != after[0] or pace.upper <= pace.start:
            return None
        reach = min(_MAX_REACH, _AIM * limit / pace.rows)
        upper = pace.upper + (pace.upper - pace.start) * reach
        if (
            not isinstance(self.bound, datetime)
            or (self.bound.tzinfo is None) != (upper.tzinfo is None)
            or upper >= self.bound
        ):
            return None  # the cutoff is near: `_delete_range` sees whether this is the end
        try:
            self.session.query(
                "SELECT set_config('statement_timeout', %s, true)",
                [f"{max(1, int(2000 * self.hold))}ms"],
            )
            deleted = self.session.execute(
                self.statements.delete_range(True), [upper, *cursor_params(after), self.bound]
            )
        except LockTimeout:
            raise
        except PurgeError as error:
            if error.category != "Timeout":
                raise
            self.session.rollback()
            return None
        if deleted == 0 or deleted > limit:
            self.session.rollback()
            return None
        # The statement timeout was transaction-local: COMMIT restores the session's.
        self._pace = _Pace(pace.upper, upper, deleted)
        return Step(limit, deleted, last=self._past(upper))

    def _upper(self, after: Cursor | None, limit: int) -> Any:
        """The range's upper trigger; None: no bound needed (fewer than `limit` rows are
        left); False: crowded.

        First the trigger of the `limit`-th row: when no later row shares it, the range holds
        exactly `limit` rows. Else that of the row `limit // 4` places earlier, when at most
        `limit // 4` rows share it (the range then holds at most `limit` rows).
        """
        slack = limit // 4
        cursor = cursor_params(after)
        statement = self.statements.range_bound(after is not None)
        rows = self.session.query(statement, [*cursor, 2, self.bound, *cursor, limit - 1])
        if not rows:
            return None
        upper, shared = rows[0]
        if int(shared) == 1:
            return upper
        if slack == 0:
            return False
        rows = self.session.query(
            statement, [*cursor, slack + 1, self.bound, *cursor, limit - slack - 1]
        )
        if not rows:
            return None  # rows went meanwhile: fewer than `limit` are left
        upper, shared = rows[0]
        return False if int(shared) > slack else upper

    def _past(self, upper: Any) -> Cursor:
        """The cursor after every row of trigger `upper`."""
        return (upper, *[None] * len(self.statements.keys))

    def take_range(
        self, after: Cursor | None, limit: int, columns: Sequence[str], binary: bool = False
    ) -> Taken | None:
        """A timestamp-range batch deleted RETURNING its rows as COPY data; uncommitted.
        None, the range rolled back, when it took more rows than the batch (`_overran`)."""
        upper = self._upper(after, limit)
        if upper is False:
            return None
        cursor = cursor_params(after)
        statement = self.statements.copy_range_out(after is not None, columns, binary)
        data, deleted = self.session.copy_out(
            statement, [self.bound if upper is None else upper, *cursor, self.bound]
        )
        if self._overran(deleted, limit, upper):
            return None
        self.taken = deleted
        if upper is None:
            return Taken(min(deleted, limit - 1), None, [], deleted=deleted, copied=data)
        return Taken(limit, self._past(upper), [], deleted=deleted, copied=data)

    def take(
        self, after: Cursor | None, limit: int, columns: Sequence[str], as_json: bool
    ) -> Taken:
        """Delete the next rows RETURNING them; the transaction stays open."""
        params = [self.bound, *cursor_params(after), limit, self.bound]
        statement = self.statements.delete_batch(after is not None, columns, as_json)
        rows = self.session.query(statement, params)
        if not rows:
            return Taken(0, None, [])
        if as_json:
            count, *cursor, deleted, payload = rows[0]
            self.taken = int(deleted)
            return Taken(int(count), tuple(cursor), [], payload, int(deleted))
        width = 1 + len(self.statements.keys) + 1
        picked, last = int(rows[0][0]), tuple(rows[0][1:width])
        ts = [c.lower() for c in columns].index(self.statements.timestamp.lower())
        # A LEFT JOIN row of NULLs: picked rows, none deleted (changed meanwhile).
        taken = [row[width:] for row in rows if row[width + ts] is not None]
        self.taken = len(taken)
        return Taken(picked, last, taken)

    def drop(self, keys: Sequence[Cursor]) -> int:
        """Already deleted by `take`."""
        return self.taken


@dataclass
class MySQLBatches:
    """Pick through the timestamp index (no lock), then lock/delete by the unique key index."""

    session: Session
    statements: TableStatements
    bound: datetime | date
    unique_index: str | None
    ts_index: str | None
    _types: tuple[Column, ...] | None = None

    def _delete_keys(self, keys: Sequence[Cursor]) -> int:
        per = max(1, (self.session.max_parameters - 1) // len(self.statements.keys))
        deleted = 0
        for chunk in chunks(keys, per):
            deleted += self.session.execute(
                self.statements.delete_keys(len(chunk), self.unique_index),
                [*flat(chunk), self.bound],
            )
        return deleted

    def delete(self, after: Cursor | None, limit: int, fault: Fault) -> Step:
        """Find the batch's last row, then delete up to it in one statement; uncommitted.

        No key travels to the client: the boundary query returns one row, and the DELETE
        picks its rows server-side (see TableStatements.delete_through).
        """
        assert self.unique_index is not None
        found = self._bounds(after, limit)
        if found is None:
            return Step(0)
        bound, rows = found
        fault("after-select")
        deleted = self.session.execute(
            self.statements.delete_through(after is not None, self.unique_index, self.ts_index),
            self._through_params(after, bound, rows),
        )
        # `rows` < `limit`: these were the last rows (the loop ends).
        return Step(rows, deleted, last=bound)

    def peek(self, after: Cursor | None) -> Cursor | None:
        """The next expired row in `(ts, keys)` order."""
        return peek_in_order(self, after)

    def take(
        self, after: Cursor | None, limit: int, columns: Sequence[str], as_json: bool
    ) -> Taken:
        """Find the batch's last row, then lock and read the rows up to it (SELECT privilege
        is enough for FOR UPDATE on MariaDB)."""
        assert self.unique_index is not None
        found = self._bounds(after, limit)
        if found is None:
            return Taken(0, None, [])
        bound, count = found
        rows = self.session.query(
            self.statements.lock_through(
                after is not None, columns, self.unique_index, self.ts_index
            ),
            self._through_params(after, bound, count),
        )
        return Taken(count, bound, _checked_rows(self, rows, columns))

    def take_literals(
        self, after: Cursor | None, limit: int, columns: Sequence[str]
    ) -> Literals | None:
        """Statutory to a MySQL archive: find the batch's last row, then lock the rows up to
        it and have the server write them (`columns`, in order) as SQL literals; uncommitted.

        None when the batch cannot travel as literals (`take` must do it; the caller rolls
        back): a column type without a literal form, or more bytes than one packet holds.
        """
        assert self.unique_index is not None
        if self._types is None:
            by_name = {c.name.lower(): c for c in self.session.columns(self.statements.table)}
            self._types = tuple(by_name[c.lower()] for c in columns)
        statement = self.statements.lock_literals(
            after is not None, self._types, self.unique_index, self.ts_index
        )
        if statement is None:
            return None
        found = self._bounds(after, limit)
        if found is None:
            return Literals(0, None, [], [])
        bound, picked = found
        ((count, values, keys),) = self.session.query(
            statement, self._through_params(after, bound, picked)
        )
        whole = _whole_literals(self.session, count, values, keys)
        if whole is None:
            return None
        return Literals(picked, bound, *whole)

    def drop_literals(self, taken: Literals) -> int:
        """Delete exactly the rows `take_literals` locked, by their keys (point lookups on
        the unique index, the cutoff re-checked): a row that came into the batch's range
        after the lock is neither copied nor deleted (the next run takes it)."""
        assert self.unique_index is not None
        assert isinstance(self.session, MySQLSession)
        head, separator, tail = self.statements.delete_literal_keys(
            self.unique_index, escape_item(self.bound, "utf8mb4")
        )
        return sum(
            self.session.execute_bytes(sql)
            for sql in packets(head, taken.keys, separator, tail, self.session.max_packet)
        )

    def _bounds(self, after: Cursor | None, limit: int) -> tuple[Cursor, int] | None:
        """The batch's last row and its number of rows: the `limit`-th expired row after the
        cursor, or, with fewer left, the last of them (counted, so the batch's read stops
        there too); None when none is left. Consistent reads: no lock."""
        bound = self._boundary(after, limit)
        if bound is not None:
            return bound, limit
        ((left,),) = self.session.query(
            self.statements.count_after(after is not None, self.ts_index),
            [self.bound, *cursor_params(after), limit],
        )
        if not left:
            return None
        bound = self._boundary(after, int(left))
        return None if bound is None else (bound, int(left))

    def _boundary(self, after: Cursor | None, limit: int) -> Cursor | None:
        rows = self.session.query(
            self.statements.boundary(after is not None, self.ts_index),
            [self.bound, *cursor_params(after), limit - 1],
        )
        return _checked(self, tuple(rows[0])) if rows else None

    def _through_params(self, after: Cursor | None, bound: Cursor, rows: int) -> list[Any]:
        return [self.bound, *cursor_params(after), *cursor_params(bound), rows, self.bound]

    def drop(self, keys: Sequence[Cursor]) -> int:
        """Delete the locked rows by key."""
        return self._delete_keys(keys)

    def take_range(
        self, after: Cursor | None, limit: int, columns: Sequence[str], binary: bool = False
    ) -> Taken | None:
        """Not on MySQL: `take` does every batch."""
        return None


@dataclass
class MySQLKeyBatches(MySQLBatches):
    """Batches that sweep the clustered index in primary-key order over the span of keys the
    expired rows had at the start of the run (`low` to `high`), as the naive single DELETE
    does in one go: each batch finds the key of its last expired row (a consistent read in
    key order, no lock), then deletes (statutory: first locks and reads) the expired rows of
    its key range in one single-table statement that reads the rows where they are stored:
    no timestamp-index walk, no derived table, no point lookup per row.

    Those statements never wait for a lock (`sql.NO_WAIT`): they read every row of their
    range with a lock, unexpired ones included (MariaDB's semi-consistent read is UPDATE's
    only), so a row an application holds anywhere in the range fails them at once and the
    engine splits the batch in halves; a batch of one row goes by its key alone (a unique
    search, with the session's lock timeout), so only a lock on that expired row itself
    makes it skipped.

    Not oldest first: the engine uses these only when the run may take every expired row
    (the budget covers them) and the span is dense with expired rows (`plan.key_sweep`).
    The cursor is `(key,)`.
    """

    low: Any = None
    high: Any = None
    # The key range of the statutory batch taken last: (cursor given, start, end).
    _range: tuple[bool, Any, Any] | None = None

    def _start(self, after: Cursor | None) -> Any:
        return self.low if after is None else after[0]

    def _boundary_key(self, after: Cursor | None, offset: int) -> Any:
        rows = self.session.query(
            self.statements.key_boundary(after is not None),
            [self._start(after), self.high, self.bound, offset],
        )
        return rows[0][0] if rows else None

    def delete(self, after: Cursor | None, limit: int, fault: Fault) -> Step:
        """Delete the next `limit` expired rows in key order; uncommitted."""
        last = self._boundary_key(after, limit - 1)
        fault("after-select")
        if limit == 1:
            if last is None:
                return Step(0)
            deleted = self.session.execute(self.statements.delete_key(), [last, self.bound])
            return Step(1, deleted, last=(last,))
        upto = self.high if last is None else last
        params = [self._start(after), upto, self.bound]
        deleted = self.session.execute(self.statements.delete_key_range(after is not None), params)
        if deleted > limit or (last is None and deleted >= limit):
            # Rows expired inside the range after its bound was found (a backdated or late
            # insert): rolled back and deleted again bounded by the batch, so a run never
            # passes maxRowsPerRun (bounded always, the sweep was 18% slower: bench/RESULTS.md).
            self.session.rollback()
            deleted = self.session.execute(
                self.statements.delete_key_range(after is not None, bounded=True),
                [*params, limit],
            )
        if last is None:
            # Fewer than `limit` were left up to the span's end: these were the last.
            return Step(min(deleted, limit - 1), deleted)
        return Step(limit, deleted, last=(last,))

    def peek(self, after: Cursor | None) -> Cursor | None:
        """The next expired row in key order."""
        last = self._boundary_key(after, 0)
        return None if last is None else (last,)

    def _locking(self, after: Cursor | None, limit: int) -> tuple[str, list[Any], Any, int]:
        """(the FROM clause of the batch's rows, its params, the last key, rows wanted):
        a key range read without waiting, or one row by its key (`limit` 1)."""
        last = self._boundary_key(after, limit - 1)
        if limit == 1:
            self._range = None
            return self.statements.key_rows(None), [last, self.bound], last, 1
        upto = self.high if last is None else last
        self._range = (after is not None, self._start(after), upto)
        return self.statements.key_rows(after is not None), [*self._range[1:], self.bound], last, 0

    def take(
        self, after: Cursor | None, limit: int, columns: Sequence[str], as_json: bool
    ) -> Taken:
        """Lock and read the next batch's rows (every column) in key order."""
        source, params, last, one = self._locking(after, limit)
        if one and last is None:
            return Taken(0, None, [])
        prefix = "" if one else NO_WAIT
        rows = self.session.query(prefix + self.statements.lock_rows(columns, source), params)
        _checked_rows(self, rows, columns)
        if last is None:
            return Taken(min(len(rows), limit - 1), None, rows)
        return Taken(limit, (last,), rows)

    def take_literals(
        self, after: Cursor | None, limit: int, columns: Sequence[str]
    ) -> Literals | None:
        """`MySQLBatches.take_literals` over the next batch's key range."""
        if self._types is None:
            by_name = {c.name.lower(): c for c in self.session.columns(self.statements.table)}
            self._types = tuple(by_name[c.lower()] for c in columns)
        source, params, last, one = self._locking(after, limit)
        if one and last is None:
            return Literals(0, None, [], [])
        statement = self.statements.lock_literals(
            False, self._types, "PRIMARY", None, source=source
        )
        if statement is None:
            return None
        ((count, values, keys),) = self.session.query(("" if one else NO_WAIT) + statement, params)
        whole = _whole_literals(self.session, count, values, keys)
        if whole is None:
            return None
        if last is None:
            return Literals(min(int(count), limit - 1), None, *whole)
        return Literals(limit, (last,), *whole)

    def move(
        self,
        after: Cursor | None,
        limit: int,
        columns: Sequence[str],
        target: TableName,
        fault: Fault,
    ) -> Moved:
        """Statutory, the archive table `target` on this server and writable by this login:
        lock the next batch's rows and INSERT them into `target` in one statement (no row
        leaves the server), count them there, then delete the batch's key range (or its one
        row) again; all uncommitted, one transaction for both tables. The caller commits only
        when the counts agree: rows deleted == rows inserted == rows found in the archive
        (a row that came into the range after the lock makes the DELETE take one more)."""
        source, params, last, one = self._locking(after, limit)
        if one and last is None:
            return Moved(0, None, 0, 0, 0)
        ranged: bool | None = None if one else after is not None
        inserted = self.session.execute(
            ("" if one else NO_WAIT) + self.statements.copy_rows_to(target, columns, source),
            params,
        )
        fault("after-select")
        ((found,),) = self.session.query(self.statements.copied_rows(target, ranged), params)
        if one:
            deleted = self.session.execute(self.statements.delete_key(), [last, self.bound])
        else:
            deleted = self.session.execute(self.statements.delete_key_range(bool(ranged)), params)
        if last is None:
            return Moved(min(inserted, limit - 1), None, inserted, int(found), deleted)
        return Moved(limit, (last,), inserted, int(found), deleted)

    def drop_literals(self, taken: Literals) -> int:
        """Delete the rows `take_literals` locked: its key range again, without waiting
        (exactly those rows unless others came into the range since, which the caller sees
        in the count and rolls back), or the one row by its key."""
        if self._range is None:
            return super().drop_literals(taken)
        after, start, upto = self._range
        return self.session.execute(
            self.statements.delete_key_range(after), [start, upto, self.bound]
        )


def _whole_literals(
    session: Session, count: Any, values: Any, keys: Any
) -> tuple[list[bytes], list[bytes]] | None:
    """The rows and keys a locking read wrote as literals, or None when the lists are not
    whole: group_concat_max_len (mysql.connect) cuts a longer list, and a row longer than a
    packet is a NULL that GROUP_CONCAT leaves out."""
    rows, names = _split(values), _split(keys)
    if len(rows) != int(count) or len(names) != int(count):
        return None
    if max(len(values or b""), len(keys or b"")) >= getattr(session, "max_packet", 0) // 2:
        return None
    return rows, names


def _split(joined: Any) -> list[bytes]:
    """A NUL-separated GROUP_CONCAT as its items (none for NULL)."""
    if joined is None:
        return []
    data = joined.encode() if isinstance(joined, str) else bytes(joined)
    return data.split(b"\0")


def batches_for(
    session: Session,
    statements: TableStatements,
    bound: datetime | date,
    unique_index: str | None = None,
    ts_index: str | None = None,
    hold: float = 0.1,
) -> Batches:
    """The batch statements of the session's engine; `hold`: the lock-hold target."""
    if session.dialect.engine == "postgresql":
        return PostgresBatches(session, statements, bound, hold=hold)
    return MySQLBatches(session, statements, bound, unique_index, ts_index)
