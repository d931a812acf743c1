"""Engine-neutral SQL: identifiers, cutoff binding, the statements a purge runs, and a session.

Identifiers come from the store's spec. They are checked to be plain SQL identifiers (the CRD
already rejects anything else; this is the second lock) and then quoted for the engine, so a
name can never become SQL. Values are always bound as parameters (`%s` in both psycopg and
PyMySQL).

Trigger columns:
- PostgreSQL `timestamp with time zone` is an absolute instant; the bound cutoff is one too.
- MySQL `TIMESTAMP` is an instant too, shown in the session's time zone, so every session is
  set to `+00:00` and the cutoff is bound as UTC wall clock.
- PostgreSQL `timestamp without time zone` and MySQL `DATETIME` hold a wall-clock time with no
  zone: the zone of `records[].timeZone` (`model.wallclock`: never early across clock
  changes), or UTC without it.
- `date`: with `records[].timeZone`, the whole day in that zone (a row goes once the day has
  ended there); without it, midnight UTC of that day (the behaviour before timeZone existed).
Instant columns: a purge that only deletes ignores `records[].timeZone` (`column_zone`); one
that archives refuses it, and archives a zoned trigger only from and into columns of the same
wall-clock or date kind. With or without timeZone, the archive's trigger column must tell
apart every instant the live one does (no date for a time, no fewer fractional-second
digits), as the archive pass destroys a copy by reading it (`ArchiveTableInvalid`,
`engine._check_archive_trigger`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from dataward.model.durations import Duration, cutoff_for
from dataward.model.store import Engine
from dataward.model.wallclock import (
    date_instant,
    safe_instant,
    zone_cutoff,
    zone_day_cutoff,
    zone_expiry,
)
from dataward.purge.errors import ErrorCategory, PurgeError

# MariaDB: run one statement without waiting for any row lock (the session's wait is kept).
NO_WAIT = "SET STATEMENT innodb_lock_wait_timeout = 0 FOR "

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

TimestampKind = Literal["instant", "wallclock", "date"]


def check_identifier(text: str, what: str) -> str:
    """Return `text` if it is a plain SQL identifier; raise PurgeError naming `what` otherwise."""
    if not _IDENTIFIER.match(text):
        raise PurgeError(
            "ColumnRefused",
            f"{what} {text!r} is not a plain SQL identifier (letters, digits and _, not "
            "starting with a digit, at most 63 characters)",
        )
    return text


@dataclass(frozen=True)
class TableName:
    """A table, optionally qualified by one schema (PostgreSQL) or database (MySQL)."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def parse_table(text: str) -> TableName:
    """Parse `[schema.]table`, both parts plain identifiers."""
    parts = text.split(".")
    if len(parts) > 2:
        raise PurgeError("ColumnRefused", f"table {text!r} has more than one dot")
    if len(parts) == 2:
        return TableName(check_identifier(parts[0], "schema"), check_identifier(parts[1], "table"))
    return TableName(None, check_identifier(parts[0], "table"))


@dataclass(frozen=True)
class Column:
    """A column as information_schema describes it."""

    name: str
    data_type: str
    precision: int | None
    # PostgreSQL, a USER-DEFINED column: its type's schema and name (citext, an enum).
    udt_schema: str | None = None
    udt_name: str | None = None
    # MySQL, a character column: its character set (latin1, utf8mb3, utf8mb4, ...).
    charset: str | None = None
    # A number column: its (NUMERIC_PRECISION, NUMERIC_SCALE), DECIMAL(10,2)'s (10, 2); on
    # PostgreSQL only a numeric(p,s) has them (an unconstrained numeric: None).
    digits: tuple[int, int] | None = None
    # MySQL, a character or bytes column: its length in bytes (BINARY(16)'s 16).
    octets: int | None = None
    # Whether the catalogue lets it hold NULL (not so for a PRIMARY KEY or NOT NULL column).
    nullable: bool = True


def single_floats(
    dialect: Dialect, columns: Iterable[Column], keys: Sequence[str]
) -> frozenset[str]:
    """The single-precision float columns (MySQL FLOAT, PostgreSQL real), lower case, but
    the key columns: the database compares a key by its own reading of it."""
    single = "float" if dialect.engine == "mysql" else "real"
    skip = {k.lower() for k in keys}
    return frozenset(
        c.name.lower()
        for c in columns
        if c.data_type.lower() == single and c.name.lower() not in skip
    )


def decimal_fits(number: Decimal, digits: tuple[int, int]) -> bool:
    """Whether a DECIMAL(precision, scale) column can hold `number` exactly. MariaDB looks a
    constant up in the column's index as stored in the column, so 5.001 would be rounded to
    5.00 and find another person's row (seen on 10.11): a number the column cannot hold
    (too many decimals, or too wide) matches nothing instead."""
    precision, scale = digits
    _sign, figures, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(figures):  # zero, however many zeros are written after its point
        return True
    while exponent < 0 and figures and figures[-1] == 0:  # 5.000 is 5: its zeros do not count
        figures, exponent = figures[:-1], exponent + 1
    decimals = max(0, -exponent)
    whole = len(figures) + exponent if any(figures) else 0
    return decimals <= scale and max(0, whole) <= precision - scale


_UUID_FORM = re.compile(r"\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?",
                        re.ASCII | re.IGNORECASE)  # fmt: skip


def plain_uuid(value: str) -> UUID | None:
    """The identifier as a UUID if it is written as one in any case, with or without its
    hyphens, braces around it or not (what PostgreSQL's and MariaDB's uuid types accept)."""
    if not _UUID_FORM.fullmatch(value) or value.startswith("{") != value.endswith("}"):
        return None
    return UUID(value.strip("{}"))


# Integer types: a value too wide for a DECIMAL fails the INSERT (strict mode, PostgreSQL);
# none has digits after the point to round.
_INTEGERS = frozenset(
    {"smallint", "integer", "bigint", "tinyint", "mediumint", "int"}
)


def narrowed_columns(live: Sequence[Column], archive: Sequence[Column]) -> tuple[str, ...]:
    """The live columns (names, in order; `archive` pairs with `live`) whose values the
    archive column may round: it is a DECIMAL(p,s)/numeric(p,s) and the live column is no
    integer nor a decimal of at most s decimals (a float, an unconstrained numeric, a
    decimal with more decimals, text). Too many whole digits fail the INSERT instead."""
    narrowed = []
    for mine, theirs in zip(live, archive, strict=True):
        if theirs.digits is None or theirs.data_type.lower() not in ("decimal", "numeric"):
            continue
        kind = mine.data_type.lower()
        if kind in _INTEGERS:
            continue
        if kind in ("decimal", "numeric") and mine.digits is not None:
            if mine.digits[1] <= theirs.digits[1]:
                continue
        narrowed.append(mine.name)
    return tuple(narrowed)


# Types whose binary COPY form names a type by OID, which differs between two databases.
_OID_BOUND_TYPES = frozenset({"array", "user-defined"})


def same_copy_types(live: Sequence[Column], archive: Sequence[Column]) -> bool:
    """PostgreSQL to PostgreSQL: whether every live column has a namesake of the same type
    in the archive, so COPY's binary form carries each value unchanged. Arrays and
    user-defined types (enums, composites) are left to the text form."""
    by_name = {c.name.lower(): c for c in archive}
    for column in live:
        other = by_name.get(column.name.lower())
        if (
            other is None
            or column.data_type.lower() in _OID_BOUND_TYPES
            or (other.data_type.lower(), other.precision)
            != (column.data_type.lower(), column.precision)
        ):
            return False
    return bool(live)


@dataclass(frozen=True)
class Index:
    """An index as the catalogue describes it (MySQL)."""

    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass(frozen=True)
class Dialect:
    """How one engine spells identifiers and the statements that differ between engines."""

    engine: Engine
    quote_char: str
    # PostgreSQL folds unquoted identifiers to lower case; quoting must keep that meaning.
    fold_lower: bool
    timestamp_types: tuple[tuple[str, TimestampKind], ...]

    def quote(self, identifier: str) -> str:
        """The identifier checked and quoted for this engine."""
        check_identifier(identifier, "identifier")
        if self.fold_lower:
            identifier = identifier.lower()
        return f"{self.quote_char}{identifier}{self.quote_char}"

    def name(self, identifier: str) -> str:
        """The identifier as the catalogue stores it (folded like an unquoted name)."""
        return identifier.lower() if self.fold_lower else identifier

    def table(self, table: TableName) -> str:
        """The quoted, possibly schema-qualified table."""
        if table.schema:
            return f"{self.quote(table.schema)}.{self.quote(table.name)}"
        return self.quote(table.name)

    def timestamp_kind(self, column: Column) -> TimestampKind | None:
        """How a trigger column's values map to instants; None for a type that is no timestamp."""
        return dict(self.timestamp_types).get(column.data_type.lower())

    def is_integer(self, column: Column) -> bool:
        """An integer column (an age in whole years)."""
        return column.data_type.lower() in _INTEGER_TYPES[self.engine]

    def is_flag(self, column: Column) -> bool:
        """A boolean column (PostgreSQL boolean; MySQL BOOLEAN, which is TINYINT)."""
        return column.data_type.lower() == ("boolean" if self.engine == "postgresql" else "tinyint")

    def add_years(self, value: str, years: int) -> str:
        """SQL for `value + years` calendar years, 29 February clamped to 28 February (the
        same arithmetic as durations.add_months; tests/purge/test_children.py compares)."""
        if self.engine == "postgresql":
            return f"({value} + interval '{int(years)} years')"
        return f"DATE_ADD({value}, INTERVAL {int(years)} YEAR)"

    def add_microseconds(self, value: str, micros: int | str) -> str:
        """SQL for `value` (a timestamp) plus `micros` microseconds (an SQL integer)."""
        if self.engine == "postgresql":
            return f"({value} + ({micros}) * interval '1 microsecond')"
        return f"DATE_ADD({value}, INTERVAL ({micros}) MICROSECOND)"

    def midnight(self, day: str) -> str:
        """SQL for the naive timestamp at the start of date `day`."""
        if self.engine == "postgresql":
            return f"CAST({day} AS timestamp)"
        return f"CAST({day} AS DATETIME(6))"

    def no_instant(self, ref: str, *, future: bool = False) -> str:
        """SQL true when the date or timestamp `ref` names no instant (errors.NoInstant):
        PostgreSQL's `-infinity`; MariaDB's zero date, or a date with a zero month or day.
        `future`: PostgreSQL's `infinity` too, for a value that must name a real day (a
        birth date); a trigger of `infinity` names one that never comes: never expired.
        NULL is neither this nor `an_instant` (it is no value at all)."""
        if self.engine == "mysql":
            return f"(MONTH({ref}) = 0 OR DAYOFMONTH({ref}) = 0)"
        return f"NOT isfinite({ref})" if future else f"{ref} = '-infinity'"

    def an_instant(self, ref: str, *, future: bool = False) -> str:
        """SQL true when `ref` names an instant: `no_instant`'s complement on every non-NULL
        value. PostgreSQL's form is a range start (`> '-infinity'`): an index condition,
        but a second lower bound beside another one slows a range DELETE (`_upto`)."""
        if self.engine == "mysql":
            return f"MONTH({ref}) <> 0 AND DAYOFMONTH({ref}) <> 0"
        return f"isfinite({ref})" if future else f"{ref} > '-infinity'"

    def utc_instant(self, naive: str) -> str:
        """SQL for a naive UTC timestamp as an instant (MySQL: the session's zone is UTC)."""
        if self.engine == "postgresql":
            return f"({naive} AT TIME ZONE 'UTC')"
        return naive

    def insert_rows(
        self, table: TableName, columns: Sequence[str], keys: Sequence[str], rows: int
    ) -> str:
        """INSERT of `rows` rows; the engine leaves out keys the archive already holds.

        Every form needs the INSERT privilege only. PostgreSQL adds `ON CONFLICT DO NOTHING`
        (no UPDATE privilege needed) as a second guard; on MySQL `ON DUPLICATE KEY UPDATE`
        would need UPDATE and `INSERT IGNORE` turns truncation and bad values into warnings
        (the live row would then be deleted after a damaged copy), so a plain INSERT fails
        the run on a duplicate instead.
        """
        cols = ", ".join(self.quote(c) for c in columns)
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        values = ", ".join([one] * rows)
        head = f"INSERT INTO {self.table(table)} ({cols}) VALUES {values}"
        if self.engine == "postgresql":
            return f"{head} ON CONFLICT ({', '.join(self.quote(k) for k in keys)}) DO NOTHING"
        return head


_INTEGER_TYPES: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"smallint", "integer", "bigint"}),
    "mysql": frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"}),
}

# MySQL/MariaDB: how the server writes a column's value as an SQL literal, by DATA_TYPE (see
# literal_sql). A table with a column of a type not listed copies its rows through PyMySQL.
_LITERAL_NUMBERS = frozenset(
    {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "year"}
)
_LITERAL_FLOATS = frozenset({"float", "double"})
_LITERAL_BYTES = frozenset(
    {
        "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
        "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
        "multipolygon", "geometrycollection",
    }
)  # fmt: skip
_LITERAL_TEXT = frozenset(
    {
        "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
        "json", "date", "datetime", "timestamp", "time", "inet4", "inet6", "uuid",
    }
)  # fmt: skip


def literal_sql(ref: str, data_type: str) -> str | None:
    """MySQL: an expression that makes the server write the value of column `ref` (of
    information_schema DATA_TYPE `data_type`) as an SQL literal that means the same value
    when inserted into a column of that type; None for a type without one.

    The forms are mysqldump's (with --hex-blob), so the server formats and later parses
    every value and no value is decoded in Python: integers and decimals as their digits;
    FLOAT and DOUBLE as a quoted double (a FLOAT's own text keeps 6 digits, its double is
    exact); BIT as its integer; bytes and geometries as X'hex'; everything else (text,
    temporal types in the session's +00:00 zone, ENUM, SET, JSON) through QUOTE() after a
    conversion to utf8mb4, the connection's character set. QUOTE escapes backslash, quote,
    NUL and Ctrl-Z with a backslash (mysql.connect turns NO_BACKSLASH_ESCAPES off), so no
    literal holds a NUL byte and a batch's literals can be separated by one. NULL: `NULL`.
    """
    kind = data_type.lower()
    if kind in _LITERAL_NUMBERS:
        return f"IFNULL(CONCAT({ref}), 'NULL')"
    if kind in _LITERAL_FLOATS:
        return f"QUOTE(CAST({ref} AS DOUBLE))"
    if kind == "bit":
        return f"IFNULL(CONCAT({ref} + 0), 'NULL')"
    if kind in _LITERAL_BYTES:
        return f"IFNULL(CONCAT('X''', HEX({ref}), ''''), 'NULL')"
    if kind in _LITERAL_TEXT:
        return f"QUOTE(CONVERT({ref} USING utf8mb4))"
    return None


POSTGRES = Dialect(
    "postgresql",
    '"',
    True,
    (
        ("timestamp with time zone", "instant"),
        ("timestamp without time zone", "wallclock"),
        ("date", "date"),
    ),
)
MYSQL = Dialect(
    "mysql",
    "`",
    False,
    (("datetime", "wallclock"), ("timestamp", "instant"), ("date", "date")),
)


def column_zone(kind: TimestampKind, zone: ZoneInfo | None) -> ZoneInfo | None:
    """The zone a column's values are read in: `records[].timeZone` for wall-clock and date
    columns, None (UTC) for instants, which carry their own."""
    return None if kind == "instant" else zone


def fraction_digits(precision: int | None) -> int:
    """The fractional-second digits a timestamp column keeps (its DATETIME_PRECISION; none
    reported: microseconds, the most both engines keep)."""
    return 6 if precision is None else max(0, min(6, precision))


def bind_cutoff(
    now: datetime,
    period: Duration,
    kind: TimestampKind,
    precision: int | None,
    zone: ZoneInfo | None = None,
) -> datetime | date:
    """The parameter to compare a trigger column with at `now`: `column <= value` iff every
    value up to it has expired after `period` (the safe cutoff).

    `zone`: records[].timeZone, for wall-clock and date columns (instants ignore it). Their
    period counts on the zone's calendar (`wallclock.zone_cutoff`: a month after a Seoul wall
    clock is the same wall clock a month later in Seoul); without a zone, and for instants, on
    UTC's (`cutoff_for`). The bound is floored to the column's fractional-second precision, so
    the engine never has to round it (MySQL would round `23:59:59.9999995` up into the next
    day); for a column holding values of that precision, `v <= floor(c)` is the same as
    `v <= c`.
    """
    zone = column_zone(kind, zone)
    if zone is not None:
        if kind == "date":
            return zone_day_cutoff(now, period, zone)  # day d goes once all of it has expired
        bound = zone_cutoff(now, period, zone).replace(tzinfo=UTC)
    else:
        bound = cutoff_for(now, period).astimezone(UTC)
        if kind == "date":
            return bound.date()  # day d is midnight UTC: d <= cutoff exactly when d <= its date
    step = 10 ** (6 - fraction_digits(precision))
    bound = bound.replace(microsecond=bound.microsecond - bound.microsecond % step)
    return bound if kind == "instant" else bound.replace(tzinfo=None)


def as_utc(value: datetime | date, zone: ZoneInfo | None = None) -> datetime:
    """A trigger value read back from the database, as an aware UTC instant.

    `zone`: the column's zone (`column_zone`), for naive values: a wall clock's latest
    instant there (`safe_instant`), a date's last, the reading `bind_cutoff` binds by.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        if zone is not None:
            return safe_instant(value, zone)
        return value.replace(tzinfo=UTC)
    if zone is not None:
        return date_instant(value, zone)
    return datetime.combine(value, time(0), tzinfo=UTC)


def expiry_of(value: datetime | date, period: Duration, zone: ZoneInfo | None = None) -> datetime:
    """When a row whose trigger column holds `value` expires (UTC, aware), as `bind_cutoff`
    counts: a naive value with its column's zone (`column_zone`) on the zone's calendar
    (`wallclock.zone_expiry`), any other `period` after its instant (`as_utc`). A value at or
    before `bind_cutoff(now, period, ...)` has `expiry_of(value, period, zone) <= now`."""
    if zone is not None and not (isinstance(value, datetime) and value.tzinfo is not None):
        return zone_expiry(value, period, zone)
    return period.add_to(as_utc(value))


@dataclass(frozen=True)
class ChildRule:
    """Rows whose subject was under `age` at the row's timestamp and that have no recorded
    consent: a condition on columns only, with no parameter (the grace period is the cutoff
    bound to the timestamp, like a retention).

    `consent_is_flag`: the consent column is a boolean (consent when true), else a timestamp
    (consent when not NULL). A NULL birth date or age is an unknown age: never a child here.

    A birthday is a day of the store's zone (records[].timeZone, UTC without it): the subject
    turns `age` when that day begins there, and a row is a child's only when it was collected
    before that on every reading of its column (deleting is the act that cannot be undone, so
    a doubt keeps the row). `collected_kind` is the collection column's kind; `birth_kind` the
    birth date column's (a timestamp stands for its day: its date in the zone); `shifts` the
    zone's `wallclock.birthday_shifts` for that kind (empty: every day begins at its midnight,
    UTC); `birth_offsets` the zone's `wallclock.birth_offsets`, which turn an instant of birth
    into its date (a doubt makes the birthday earlier, never later).
    """

    age: int
    consent: str
    consent_is_flag: bool
    birth_date: str | None = None
    age_column: str | None = None
    collected_kind: TimestampKind = "instant"
    birth_kind: TimestampKind = "date"
    shifts: tuple[tuple[date, timedelta], ...] = ()
    birth_offsets: tuple[tuple[date, timedelta], ...] = ()

    def sql(self, dialect: Dialect, timestamp: str, prefix: str = "") -> str:
        """The condition; `timestamp` is the quoted (and prefixed) timestamp column."""
        if self.birth_date is not None:
            # A birth date naming no day (`no_birth_sql`) makes no one a child (PostgreSQL's
            # `infinity` plus 14 years is after every row): the run refuses such a row.
            birth = prefix + dialect.quote(self.birth_date)
            child = (
                f"{timestamp} < {self.birthday_sql(dialect, prefix)} "
                f"AND {dialect.an_instant(birth, future=True)}"
            )
        else:
            assert self.age_column is not None
            child = f"{prefix}{dialect.quote(self.age_column)} < {int(self.age)}"
        return f"{child} AND {self.no_consent_sql(dialect, prefix)}"

    def no_consent_sql(self, dialect: Dialect, prefix: str = "") -> str:
        """Rows without consent: the flag not true, or no consent instant."""
        consent = prefix + dialect.quote(self.consent)
        return f"{consent} IS NOT TRUE" if self.consent_is_flag else f"{consent} IS NULL"

    def birthday_sql(self, dialect: Dialect, prefix: str = "") -> str:
        """When the subject turns `age`, as a value of the collection column's kind: the
        birthday itself for a date column, its first instant (UTC) for an instant column, and
        for a wall clock the earliest one whose every reading is at or after that instant."""
        assert self.birth_date is not None
        birth = prefix + dialect.quote(self.birth_date)
        if self.birth_kind == "instant" and any(offset for _, offset in self.birth_offsets):
            birth = dialect.add_microseconds(
                birth, _pieces_sql(dialect, f"CAST({birth} AS DATE)", self.birth_offsets, 1)
            )
        if self.birth_kind != "date":
            birth = f"CAST({birth} AS DATE)"
        day = f"CAST({dialect.add_years(birth, self.age)} AS DATE)"
        if self.collected_kind == "date":
            return day
        start = dialect.midnight(day)
        if any(shift for _, shift in self.shifts):
            start = dialect.add_microseconds(start, _pieces_sql(dialect, day, self.shifts, -1))
        return dialect.utc_instant(start) if self.collected_kind == "instant" else start

    def no_birth_sql(self, dialect: Dialect) -> str:
        """Rows without consent whose birth date names no day (`Dialect.no_instant`, infinity
        too): their age is unknown and unknown is not absent, so the run refuses them
        (errors.NoInstant) rather than read them as an adult's or a child's. FALSE for an
        age column."""
        if self.birth_date is None:
            return "FALSE"
        birth = dialect.no_instant(dialect.quote(self.birth_date), future=True)
        return f"{birth} AND {self.no_consent_sql(dialect)}"

    def unknown_sql(self, dialect: Dialect) -> str:
        """Rows whose age is unknown (NULL birth date or age): kept, and reported."""
        return f"{dialect.quote(self.birth_date or self.age_column or '')} IS NULL"


def _micros(delta: timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _pieces_sql(
    dialect: Dialect, day: str, pieces: Sequence[tuple[date, timedelta]], sign: int
) -> str:
    """SQL for the microseconds (times `sign`) of the piece that date `day` falls in;
    `pieces` as `(from, value)`, the first from date.min, in order. `day` is written once
    (a lookup by the number of piece starts at or before it, not a CASE naming it per
    piece): it may itself hold such a lookup, which a CASE would repeat in every branch.
    A NULL day gives NULL."""
    values = [sign * _micros(value) for _, value in pieces]
    if len(values) == 1:
        return str(values[0])
    starts = [start.isoformat() for start, _ in pieces[1:]]
    if dialect.engine == "postgresql":
        bounds = ", ".join(f"DATE '{s}'" for s in starts)
        numbers = ", ".join(str(v) for v in values)
        return f"(ARRAY[{numbers}]::bigint[])[width_bucket({day}, ARRAY[{bounds}]) + 1]"
    # MySQL: INTERVAL(n, n1, ...) counts the n_i <= n (-1 for NULL: ELT(0) is NULL).
    bounds = ", ".join(f"TO_DAYS(DATE '{s}')" for s in starts)
    numbers = ", ".join(f"'{v}'" for v in values)
    return f"CAST(ELT(INTERVAL(TO_DAYS({day}), {bounds}) + 1, {numbers}) AS SIGNED)"


@dataclass(frozen=True)
class TableStatements:
    """The statements of a purge for one table; each takes `%s` parameters.

    With `child`, "expired" means also matching the ChildRule: every statement that picks or
    re-checks rows checks it, so a consent recorded during the run keeps the row.
    """

    dialect: Dialect
    table: TableName
    timestamp: str
    keys: tuple[str, ...]
    child: ChildRule | None = None
    # Single-precision float columns (lower case), read as the doubles they are (`read`).
    singles: frozenset[str] = frozenset()
    # The key columns the catalogue lets hold NULL (`count_unkeyed`).
    nullable_keys: tuple[str, ...] = ()

    def read(self, column: str, prefix: str = "") -> str:
        """A column as the rows a driver reads (to copy, or to compare with a copy) carry it:
        a single-precision float as the double it is. MariaDB writes a FLOAT's text with 6
        digits (1.0000001 and 1.0000002 both read 1.0: one taken for the other's copy, and
        the row path archived 1); PostgreSQL's real, read at double width, compares with it."""
        ref = prefix + self.dialect.quote(column)
        if column.lower() not in self.singles:
            return ref
        if self.dialect.engine == "mysql":
            return f"CAST({ref} AS DOUBLE)"
        return f"{ref}::float8 AS {self.dialect.quote(column)}"

    def read_list(self, columns: Sequence[str], prefix: str = "") -> str:
        """`read` of each column, comma-separated."""
        return ", ".join(self.read(c, prefix) for c in columns)

    def _upto(self, prefix: str = "", *, after: bool = False) -> str:
        """`ts <= %s`, the cutoff (or a bound), and on PostgreSQL only a trigger that names an
        instant: psycopg cannot read `-infinity` back and it sorts before every row, so
        every PostgreSQL statement leaves it (the run's count refuses it, `count_no_instant`).
        `after`: the statement also has a cursor's `ts >= %s` (`_after`), whose trigger was
        read from a row and so names an instant: that bound leaves `-infinity` already, and
        a second lower bound made each range DELETE 1.6x slower (bench/RESULTS.md, the
        special dates' cost). MariaDB's statements that read their triggers back
        see a zero date and refuse it there; those that do not take only instants
        (`_an_instant`)."""
        ts = prefix + self._ts
        if self.dialect.engine == "postgresql" and not after:
            return f"{ts} <= %s AND {self.dialect.an_instant(ts)}"
        return f"{ts} <= %s"

    def _child(self, prefix: str = "") -> str:
        if self.child is None:
            return ""
        ts = prefix + self._ts
        return f" AND {self.child.sql(self.dialect, ts, prefix)}"

    @property
    def _t(self) -> str:
        return self.dialect.table(self.table)

    @property
    def _ts(self) -> str:
        return self.dialect.quote(self.timestamp)

    def _key_list(self) -> str:
        return ", ".join(self.dialect.quote(k) for k in self.keys)

    def _key_match(self, rows: int) -> str:
        if len(self.keys) == 1:
            return f"{self.dialect.quote(self.keys[0])} IN ({', '.join(['%s'] * rows)})"
        if self.dialect.engine == "mysql":
            # An OR of equalities is what MariaDB's range optimiser turns into point lookups.
            one = "(" + " AND ".join(f"{c} = %s" for c in self._quoted_keys()) + ")"
            return " OR ".join([one] * rows)
        one = "(" + ", ".join(["%s"] * len(self.keys)) + ")"
        return f"({self._key_list()}) IN ({', '.join([one] * rows)})"

    def count_expired(self) -> str:
        """Expired rows and the oldest trigger among them; params: cutoff."""
        return (
            f"SELECT count(*), min({self._ts}) FROM {self._t} WHERE {self._upto()}"
            + self._child()
        )

    def count_expired_by(self, timestamp: str) -> str:
        """Rows expired here that are also at or before a bound on another timestamp column
        (the rows both this and the retention would take); params: cutoff, other bound."""
        other = self.dialect.quote(timestamp)
        return (
            f"SELECT count(*) FROM {self._t} WHERE {self._upto()}{self._child()} "
            f"AND {other} <= %s"
        )

    def count_no_instant(self) -> str:
        """Rows at or before a bound whose trigger names no instant (`Dialect.no_instant`:
        PostgreSQL's -infinity sorts before every date, a MariaDB zero date or zero month or
        day before every real date of its year, so a cutoff's range holds them); params:
        bound. Not the child rule: every such row the bound reaches is counted, whoever's it
        is."""
        return (
            f"SELECT count(*) FROM {self._t} WHERE {self._ts} <= %s "
            f"AND {self.dialect.no_instant(self._ts)}"
        )

    def count_no_birth(self) -> str:
        """A children's table: rows at or before a bound without consent whose birth date
        names no day (`ChildRule.no_birth_sql`); params: bound."""
        assert self.child is not None
        return (
            f"SELECT count(*) FROM {self._t} WHERE {self._ts} <= %s "
            f"AND {self.child.no_birth_sql(self.dialect)}"
        )

    def count_unkeyed(self) -> str | None:
        """Rows a run would take (as `count_expired` counts them) with NULL in a key column;
        params: bound. None when no key column may hold NULL (`nullable_keys`): nothing to
        read. A PRIMARY KEY or NOT NULL key never needs this count."""
        if not self.nullable_keys:
            return None
        nulls = " OR ".join(f"{self.dialect.quote(k)} IS NULL" for k in self.nullable_keys)
        return f"SELECT count(*) FROM {self._t} WHERE {self._upto()}{self._child()} AND ({nulls})"

    def count_null(self) -> str:
        """Rows without a trigger timestamp: never deleted, only reported."""
        return f"SELECT count(*) FROM {self._t} WHERE {self._ts} IS NULL"

    def count_unknown_age(self) -> str:
        """Rows of a children's table whose subject's age is unknown: only reported."""
        assert self.child is not None
        return f"SELECT count(*) FROM {self._t} WHERE {self.child.unknown_sql(self.dialect)}"

    def count_all(self) -> str:
        """Every row (for the large-cut gate)."""
        return f"SELECT count(*) FROM {self._t}"

    # MySQL, a single-column primary key: batches that sweep the clustered index in key order
    # (see batches.MySQLKeyBatches). Only for a table whose key column is the primary key.

    def count_expired_span(self) -> str:
        """`count_expired` plus the smallest and largest key among the expired rows, from the
        same read (the timestamp index holds the primary key); params: cutoff."""
        key = self._quoted_keys()[0]
        return (
            f"SELECT count(*), min({self._ts}), min({key}), max({key}) FROM {self._t} "
            f"WHERE {self._ts} <= %s" + self._child()
        )

    def span_rows(self) -> str:
        """EXPLAIN of a read of every row between two keys: the optimiser's estimate of how
        many rows the span holds (index dives, nothing read); params: low, high."""
        key = self._quoted_keys()[0]
        return (
            f"EXPLAIN SELECT {key} FROM {self._t} FORCE INDEX (PRIMARY) "
            f"WHERE {key} BETWEEN %s AND %s"
        )

    def key_boundary(self, after: bool) -> str:
        """The key of the expired row `offset` places on in key order, after the cursor (or
        from the span's low key) up to the span's high key; a consistent read, no lock.
        Params: cursor or low key, high key, cutoff, offset."""
        key = self._quoted_keys()[0]
        return (
            f"SELECT {key} FROM {self._t} FORCE INDEX (PRIMARY) "
            f"WHERE {key} {'>' if after else '>='} %s AND {key} <= %s "
            f"AND {self._ts} <= %s{self._child()} ORDER BY {key} LIMIT 1 OFFSET %s"
        )

    def delete_key_range(self, after: bool, bounded: bool = False) -> str:
        """Delete the expired rows whose key lies after the cursor (or from the low key) up to
        a bound, scanning the clustered index in key order: what the naive single DELETE
        does, batch by batch. Params: cursor or low key, bound, cutoff; `bounded`: then the
        most rows to delete, in key order (a row that expired inside the range after the
        batch found its bound is not counted in the batch: without the LIMIT it went past
        maxRowsPerRun).

        It never waits for a lock (`innodb_lock_wait_timeout = 0` for this statement only):
        a single-table DELETE reads every row of its range with a lock, unexpired ones too
        (MariaDB's semi-consistent read is UPDATE's only), so a row an application holds in
        the range fails it at once instead, and the engine splits the batch. The cutoff is
        re-checked on every row as `(ts <= c) IS TRUE`, which the optimiser cannot turn into
        a read of the timestamp index.
        """
        limit = f" ORDER BY {self._quoted_keys()[0]} LIMIT %s" if bounded else ""
        return f"{NO_WAIT}DELETE FROM {self._t} {self._key_range('', after)}{limit}"

    def key_rows(self, after: bool | None, join: str = "") -> str:
        """MySQL: the FROM clause (alias `dw_t`) of the expired rows of a key range, as
        `delete_key_range` takes them (params: cursor or low key, bound, cutoff); with
        `after` None, of one expired row by its key (params: key, cutoff). `join`: a JOIN
        clause placed before the WHERE (`copied_rows`)."""
        t = f"{self._t} AS dw_t"
        if after is None:
            key = self._quoted_keys()[0]
            ts = f"dw_t.{self._ts}"
            return f"{t}{join} WHERE dw_t.{key} = %s AND {ts} <= %s{_an_instant(ts)}" + (
                self._child("dw_t.")
            )
        return f"{t} FORCE INDEX (PRIMARY){join} {self._key_range('dw_t.', after)}"

    def copy_rows_to(self, target: TableName, columns: Sequence[str], source: str) -> str:
        """MariaDB, the archive on this server: lock the rows of `source` (a `key_rows`
        clause, its params) and INSERT them into `target` in one statement, no row leaving
        the server. FOR UPDATE is what locks them: under READ COMMITTED an INSERT ... SELECT
        reads its source unlocked, so a row could change between the copy and the DELETE."""
        cols = ", ".join(self.dialect.quote(c) for c in columns)
        wanted = ", ".join(f"dw_t.{self.dialect.quote(c)}" for c in columns)
        return (
            f"INSERT INTO {self.dialect.table(target)} ({cols}) "
            f"SELECT {wanted} FROM {source} FOR UPDATE"
        )

    def copied_rows(self, target: TableName, after: bool | None) -> str:
        """MariaDB: how many rows of a `key_rows` range (same params) `target` holds under
        their keys, read in the copying transaction (its own INSERT visible): every row the
        INSERT reported must be there (an engine or trigger that drops rows shows here)."""
        on = " AND ".join(f"dw_a.{k} = dw_t.{k}" for k in self._quoted_keys())
        join = f" JOIN {self.dialect.table(target)} AS dw_a ON {on}"
        return f"SELECT count(*) FROM {self.key_rows(after, join)}"

    def _key_range(self, prefix: str, after: bool) -> str:
        key = prefix + self._quoted_keys()[0]
        ts = prefix + self._ts
        return (
            f"WHERE {key} {'>' if after else '>='} %s AND {key} <= %s "
            f"AND ({ts} <= %s{_an_instant(ts)}{self._child(prefix)}) IS TRUE"
        )

    def lock_rows(self, columns: Sequence[str], source: str) -> str:
        """MySQL: lock and read `columns` of the rows of `source` (a `key_rows` clause)."""
        wanted = self.read_list(columns, "dw_t.")
        return f"SELECT {wanted} FROM {source} FOR UPDATE"

    def delete_key(self) -> str:
        """Delete one row by its primary key, re-checking the cutoff (a unique search: only
        that row is read and locked; the session's lock timeout applies). Params: key,
        cutoff."""
        key = self._quoted_keys()[0]
        ts = self._ts
        return (
            f"DELETE FROM {self._t} WHERE {key} = %s AND {ts} <= %s{_an_instant(ts)}"
            + self._child()
        )

    def _after(self) -> str:
        """Rows after a (ts, keys) cursor; params: ts, ts, ts, then the keys.

        The leading `ts >= %s` gives the index scan a start, so a batch never walks the index
        entries of rows earlier batches deleted (dead until vacuum or InnoDB purge).
        """
        keys = self._key_list()
        marks = ", ".join(["%s"] * len(self.keys))
        key_after = f"({keys}) > ({marks})" if len(self.keys) > 1 else f"{keys} > %s"
        return f"{self._ts} >= %s AND ({self._ts} > %s OR ({self._ts} = %s AND {key_after}))"

    def _where_expired(self, after: bool) -> str:
        return self._upto(after=after) + self._child() + (f" AND {self._after()}" if after else "")

    def _order(self, descending: bool = False) -> str:
        way = " DESC" if descending else ""
        return ", ".join(f"{c}{way}" for c in (self._ts, *self._quoted_keys()))

    def _quoted_keys(self) -> list[str]:
        return [self.dialect.quote(k) for k in self.keys]

    def peek(self, after: bool) -> str:
        """The next expired row's (ts, keys), without locking; params: cutoff, [cursor]."""
        return (
            f"SELECT {self._ts}, {self._key_list()} FROM {self._t} "
            f"WHERE {self._where_expired(after)} ORDER BY {self._order()} LIMIT 1"
        )

    def delete_batch(
        self, after: bool, columns: Sequence[str] | None, as_json: bool = False
    ) -> str:
        """PostgreSQL: pick, lock and delete the next batch in one statement.

        Params: cutoff, [cursor], n, cutoff. Result: no row when nothing was left to pick;
        else `(picked, last ts, last keys...)` followed by the deleted row's `columns` (NULLs
        in the one row when none was deleted), or, with `columns` None, a single row
        `(picked, last ts, last keys..., deleted)`, or `as_json`, a single row
        `(picked, last ts, last keys..., deleted, JSON array of the deleted rows)`.

        The DELETE finds the picked rows by ctid (a TID scan). The cutoff is re-checked as
        `(ts <= c) IS TRUE`: a filter the planner cannot turn into an index scan of the
        whole expired range, and that READ COMMITTED re-evaluates on a row version an
        application updated meanwhile (a TID scan does not re-check the ctid itself).
        """
        keys = self._key_list()
        picked = (
            f"SELECT ctid AS dw_tid, {self._ts}, {keys} FROM {self._t} "
            f"WHERE {self._where_expired(after)} ORDER BY {self._order()} LIMIT %s"
        )
        returning = (
            "1"
            if columns is None
            else ", ".join(self.dialect.quote(c) if as_json else self.read(c) for c in columns)
        )
        gone = (
            f"DELETE FROM {self._t} WHERE ctid = ANY(ARRAY(SELECT dw_tid FROM dw_picked)) "
            f"AND ({self._upto()}{self._child()}) IS TRUE RETURNING {returning}"
        )
        last = f"SELECT {self._ts}, {keys} FROM dw_picked ORDER BY {self._order(True)} LIMIT 1"
        last_columns = ", ".join(f"dw_last.{c}" for c in (self._ts, *self._quoted_keys()))
        head = f"(SELECT count(*) FROM dw_picked), {last_columns}"
        ctes = (
            f"WITH dw_picked AS MATERIALIZED ({picked}), dw_gone AS ({gone}), dw_last AS ({last}) "
        )
        if columns is None:
            return f"{ctes}SELECT {head}, (SELECT count(*) FROM dw_gone) FROM dw_last"
        if as_json:
            # One text value for the whole batch: the driver decodes no row.
            return (
                f"{ctes}SELECT {head}, (SELECT count(*) FROM dw_gone), "
                "(SELECT json_agg(dw_gone)::text FROM dw_gone) FROM dw_last"
            )
        return f"{ctes}SELECT {head}, dw_gone.* FROM dw_last LEFT JOIN dw_gone ON true"

    def range_bound(self, after: bool) -> str:
        """PostgreSQL: the trigger of the row `offset` places after the cursor, and how many
        rows after the cursor share it (counted up to a cap). No lock, and only the timestamp
        index is read (an index-only scan where the visibility map allows).

        Params: [cursor], cap, cutoff, [cursor], offset. No row: fewer rows are left.
        """
        where = self._where_expired(after)
        shared = (
            f"{self._ts} = dw_b.{self._ts}"
            + self._child()
            + (f" AND {self._after()}" if after else "")
        )
        return (
            f"SELECT dw_b.{self._ts}, (SELECT count(*) FROM (SELECT 1 FROM {self._t} "
            f"WHERE {shared} LIMIT %s) AS dw_c) FROM (SELECT {self._ts} FROM {self._t} "
            f"WHERE {where} ORDER BY {self._ts} OFFSET %s LIMIT 1) AS dw_b"
        )

    def delete_range(self, after: bool) -> str:
        """PostgreSQL: delete every expired row after the cursor up to a trigger bound.

        Params: bound, [cursor], cutoff. A plain range DELETE on the timestamp index: no
        ordered pick, no RETURNING. READ COMMITTED re-evaluates the whole condition (the
        cutoff included) on a row version an application updated meanwhile.
        """
        return (
            f"DELETE FROM {self._t} WHERE {self._ts} <= %s"
            + (f" AND {self._after()}" if after else "")
            + f" AND {self._upto(after=after)}{self._child()}"
        )

    def copy_range_out(self, after: bool, columns: Sequence[str], binary: bool = False) -> str:
        """PostgreSQL: `delete_range` RETURNING `columns`, streamed as COPY text; same params.

        COPY's text format is what pg_dump restores from: every value comes back equal in
        the archive (a json `null` included), read by the archive's own input functions.
        `binary`: COPY's binary format, for an archive whose columns have the very same
        types (see `same_copy_types`); the archive's receive functions check each value.
        """
        returning = ", ".join(self.dialect.quote(c) for c in columns)
        return f"COPY ({self.delete_range(after)} RETURNING {returning}) TO STDOUT" + (
            " (FORMAT binary)" if binary else ""
        )

    def copy_in(self, columns: Sequence[str], binary: bool = False) -> str:
        """PostgreSQL: a plain INSERT of COPY rows (INSERT privilege only)."""
        cols = ", ".join(self.dialect.quote(c) for c in columns)
        return f"COPY {self._t} ({cols}) FROM STDIN" + (" (FORMAT binary)" if binary else "")

    def delete_keys(self, rows: int, index: str | None = None) -> str:
        """Delete rows by key, re-checking the cutoff; params: the keys flattened, then cutoff.

        With `index` (MySQL, the unique index on the key columns) the delete is forced onto
        point lookups, never a scan that waits for a lock on some other row.
        """
        if index:
            hint = f" FORCE INDEX ({self.dialect.quote(index)})"
            return (
                f"DELETE {self._t} FROM {self._t}{hint} "
                f"WHERE ({self._key_match(rows)}) AND {self._ts} <= %s{self._child()}"
            )
        return (
            f"DELETE FROM {self._t} WHERE ({self._key_match(rows)}) AND {self._upto()}"
            + self._child()
        )

    def boundary(self, after: bool, index: str | None) -> str:
        """MySQL: (ts, keys) of the row `offset` places after the cursor, the batch's last
        row; no lock and nothing else sent back. Params: cutoff, [cursor], offset."""
        hint = f" FORCE INDEX ({self.dialect.quote(index)})" if index else ""
        return (
            f"SELECT {self._ts}, {self._key_list()} FROM {self._t}{hint} "
            f"WHERE {self._where_expired(after)} ORDER BY {self._order()} LIMIT 1 OFFSET %s"
        )

    def count_after(self, after: bool, index: str | None) -> str:
        """MySQL: how many expired rows follow the cursor, counted up to a cap; a consistent
        read, no lock. Params: cutoff, [cursor], cap."""
        hint = f" FORCE INDEX ({self.dialect.quote(index)})" if index else ""
        return (
            f"SELECT count(*) FROM (SELECT 1 FROM {self._t}{hint} "
            f"WHERE {self._where_expired(after)} LIMIT %s) AS dw_n"
        )

    def delete_through(self, after: bool, unique_index: str, ts_index: str | None) -> str:
        """MySQL: delete the expired rows after the cursor up to the boundary, in one statement.

        Params: cutoff, [cursor], boundary ts, ts, ts, keys, rows, cutoff. The keys are read
        in a derived table and STRAIGHT_JOIN makes that the driving table, so the rows are
        found by point lookups on the unique index. The derived read locks what it reads
        (InnoDB reads the other tables of a multi-table DELETE with shared locks, even
        under READ COMMITTED), so it reads the timestamp index in order and stops at its
        `rows`-th row, the boundary: it never reads (and never waits for) the entry past
        it, which may be an unexpired row an application holds.
        """
        return f"DELETE dw_t FROM {self._through(after, unique_index, ts_index, unread=True)}"

    def lock_through(
        self, after: bool, columns: Sequence[str], unique_index: str, ts_index: str | None
    ) -> str:
        """MySQL: lock and read (every column) the rows `delete_through` would delete;
        same params."""
        wanted = self.read_list(columns, "dw_t.")
        through = self._through(after, unique_index, ts_index)
        return f"SELECT {wanted} FROM {through} FOR UPDATE"

    def delete_literal_keys(self, index: str, cutoff: str) -> tuple[bytes, bytes, bytes]:
        """MySQL: (head, separator, tail) of a DELETE of the rows whose keys are given as
        `lock_literals` key literals, by point lookups on the unique `index`, re-checking
        the cutoff (`cutoff`: an SQL literal). Nothing but those rows is read or locked."""
        hint = f"{self._t} FORCE INDEX ({self.dialect.quote(index)})"
        head = f"DELETE {self._t} FROM {hint} WHERE "
        tail = f") AND {self._ts} <= {cutoff}{_an_instant(self._ts)}{self._child()}".encode()
        if len(self.keys) == 1:
            return f"{head}{self._quoted_keys()[0]} IN (".encode(), b", ", tail
        return f"{head}(".encode(), b" OR ", tail

    def lock_literals(
        self,
        after: bool,
        columns: Sequence[Column],
        unique_index: str,
        ts_index: str | None,
        source: str | None = None,
    ) -> str | None:
        """MySQL: lock the rows `delete_through` would delete (same params), or those of
        `source` (a `key_rows` clause, its params), and have the server write them as SQL
        literals (`literal_sql`); None when a column's type has no literal form.

        One row back: how many rows, their `(v1, v2, ...)` tuples and their keys (a key
        column's literal, or `(k1 = v1 AND ...)` for several key columns), each list as
        NUL-separated bytes; the two lists come from one pass over the rows, in one order.
        """
        values = [literal_sql(f"dw_t.{self.dialect.quote(c.name)}", c.data_type) for c in columns]
        by_name = {c.name.lower(): v for c, v in zip(columns, values, strict=True)}
        keys = [by_name.get(k.lower()) for k in self.keys]
        if None in values or None in keys:
            return None
        row = "CONCAT('(', " + ", ',', ".join(str(v) for v in values) + ", ')')"
        if len(self.keys) == 1:
            key = str(keys[0])
        else:
            terms = ", ' AND ', ".join(
                f"'{q} = ', {v}" for q, v in zip(self._quoted_keys(), keys, strict=True)
            )
            key = f"CONCAT('(', {terms}, ')')"
        through = source or self._through(after, unique_index, ts_index, unread=True)
        return (
            f"SELECT COUNT(*), GROUP_CONCAT(CAST({row} AS BINARY) SEPARATOR '\\0'), "
            f"GROUP_CONCAT(CAST({key} AS BINARY) SEPARATOR '\\0') FROM {through} FOR UPDATE"
        )

    def insert_literals(self, columns: Sequence[str]) -> bytes:
        """MySQL: the head of a plain INSERT whose VALUES are `lock_literals` row tuples."""
        cols = ", ".join(self.dialect.quote(c) for c in columns)
        return f"INSERT INTO {self._t} ({cols}) VALUES ".encode()

    def count_literal_keys(self, index: str) -> tuple[bytes, bytes, bytes]:
        """MySQL: (head, separator, tail) of a count of keys given as `lock_literals` key
        literals, by point lookups on the unique `index`."""
        head = f"SELECT count(*) FROM {self._t} FORCE INDEX ({self.dialect.quote(index)}) WHERE "
        if len(self.keys) == 1:
            return f"{head}{self._quoted_keys()[0]} IN (".encode(), b", ", b")"
        return head.encode(), b" OR ", b""

    def _through(
        self, after: bool, unique_index: str, ts_index: str | None, unread: bool = False
    ) -> str:
        """`unread`: for a statement that never hands the triggers back (`delete_through`,
        `lock_literals`): only rows whose trigger names an instant (`_an_instant`)."""
        hint = f" FORCE INDEX ({self.dialect.quote(ts_index)})" if ts_index else ""
        keys = self._quoted_keys()
        marks = ", ".join(["%s"] * len(keys))
        key_upto = f"({', '.join(keys)}) <= ({marks})" if len(keys) > 1 else f"{keys[0]} <= %s"
        upto = f" AND {self._ts} <= %s AND ({self._ts} < %s OR ({self._ts} = %s AND {key_upto}))"
        # In timestamp order (every index led by the timestamp has it), up to `rows` rows:
        # the read ends at the boundary row instead of at the first entry past it.
        picked = (
            f"SELECT {', '.join(keys)} FROM {self._t} AS dw_src{hint} "
            f"WHERE {self._where_expired(after)}{upto} ORDER BY {self._ts} LIMIT %s"
        )
        join = " AND ".join(f"dw_t.{k} = dw_p.{k}" for k in keys)
        return (
            f"({picked}) AS dw_p STRAIGHT_JOIN {self._t} AS dw_t "
            f"FORCE INDEX ({self.dialect.quote(unique_index)}) ON {join} "
            f"WHERE dw_t.{self._ts} <= %s"
            f"{_an_instant('dw_t.' + self._ts) if unread else ''}{self._child('dw_t.')}"
        )

    def insert_json(self, columns: Sequence[str], keep_existing: bool) -> str:
        """PostgreSQL: INSERT the rows of a JSON array (as `json_agg` wrote them); params: the
        JSON text. `keep_existing` leaves a row already present under the key alone (ON
        CONFLICT DO NOTHING: a speculative insertion per row, so only after a plain INSERT
        met a duplicate).

        Every type survives the trip (tests/purge/test_purge_archive.py checks the row text),
        except that a json/jsonb value which is JSON `null` arrives as SQL NULL.
        """
        cols = ", ".join(self.dialect.quote(c) for c in columns)
        conflict = f" ON CONFLICT ({self._key_list()}) DO NOTHING" if keep_existing else ""
        return (
            f"INSERT INTO {self._t} ({cols}) SELECT {cols} FROM "
            f"json_populate_recordset(NULL::{self._t}, %s::json){conflict}"
        )

    def verify_json(self, columns: Sequence[str], json_columns: Sequence[str] = ()) -> str:
        """PostgreSQL: (rows in the JSON array, how many have a row under their key here,
        how many have no copy of their own here: the row under the key differs in a copied
        column, or another row of the array has the key), in one query; `held_copies`'s rule.

        A row under the key that differs is no copy of the live row (a key reused, a table
        restored from a backup): `keep_existing` left it in place. Columns compare as text,
        which every type has (json, xml and point have no equality), both sides of the
        archive's types; in `json_columns` (json/jsonb) SQL NULL equals JSON `null`, the one
        value the JSON path does not carry (see `insert_json`).
        """
        join = " AND ".join(f"dw_a.{k} = dw_s.{k}" for k in self._quoted_keys())
        first = self._quoted_keys()[0]
        # A key two rows of the batch share has one row here for both, however equal they
        # are (a NULL key is none: such a row is never found, which the count says).
        keyed = " AND ".join(f"dw_s.{k} IS NOT NULL" for k in self._quoted_keys())
        keys = ", ".join(f"dw_s.{k}" for k in self._quoted_keys())
        shared = (
            f"count(*) FILTER (WHERE {keyed}) - count(DISTINCT ({keys})) FILTER (WHERE {keyed})"
        )
        loose = {c.lower() for c in json_columns}
        same = []
        for column in columns:
            q = self.dialect.quote(column)
            if column.lower() in loose:
                same.append(f"coalesce(dw_a.{q}::text, 'null') = coalesce(dw_s.{q}::text, 'null')")
            else:
                # In "C": a text column's own (case- or accent-blind) collation would call
                # another row under the key equal, and the live row be deleted uncopied.
                same.append(f'dw_a.{q}::text COLLATE "C" IS NOT DISTINCT FROM dw_s.{q}::text')
        return (
            f"SELECT count(*), count(dw_a.{first}), "
            f"count(dw_a.{first}) FILTER (WHERE NOT ({' AND '.join(same)})) + {shared} "
            f"FROM json_populate_recordset(NULL::{self._t}, %s::json) AS dw_s "
            f"LEFT JOIN {self._t} AS dw_a ON {join}"
        )

    def twin_left(self) -> str:
        """PostgreSQL, in a batch's transaction after its DELETE: whether a row is left
        under the (ts, keys) of the batch's last row (params: that cursor). Such a row is
        its twin, which the next batch's `(ts, keys) >` cursor passes over and the next run
        takes as already archived (`TableRun._twin_left`)."""
        match = " AND ".join(f"{c} = %s" for c in (self._ts, *self._quoted_keys()))
        return f"SELECT EXISTS (SELECT 1 FROM {self._t} WHERE {match})"

    def select_rows(self, columns: Sequence[str], rows: int) -> str:
        """The rows under these keys, `columns` in order (`read`); params: the keys flattened."""
        return f"SELECT {self.read_list(columns)} FROM {self._t} WHERE {self._key_match(rows)}"

    def count_keys(self, rows: int) -> str:
        """How many of these keys are present; params: the keys flattened."""
        return f"SELECT count(*) FROM {self._t} WHERE {self._key_match(rows)}"


Classifier = Callable[[BaseException], PurgeError]


class Session:
    """A DB-API connection with driver errors turned into PurgeError.

    Engine modules subclass it for what differs: the server clock, the catalogue, read-only
    detection. Statements run inside a transaction until `commit()`.
    """

    dialect: Dialect = POSTGRES
    max_parameters = 30000  # per statement; PostgreSQL's protocol allows 65535
    database_name = ""  # spec's database name, for messages; set by the engine modules

    def __init__(self, connection: Any, role: str, classify: Classifier) -> None:
        self._connection = connection
        self.role = role
        self._classify = classify

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
        except PurgeError:
            raise
        except Exception as exc:
            raise self._classify(exc) from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the rows it affected."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._classify(exc) from None

    def copy_out(self, sql: str, params: Sequence[Any] = ()) -> tuple[bytes, int]:
        """PostgreSQL: the data of a `COPY ... TO STDOUT` and the rows it sent."""
        try:
            with self._connection.cursor() as cursor:
                with cursor.copy(sql, tuple(params)) as copy:
                    data = b"".join(bytes(block) for block in copy)
                return data, int(cursor.rowcount)
        except Exception as exc:
            raise self._classify(exc) from None

    def copy_in(self, sql: str, data: bytes) -> int:
        """PostgreSQL: run a `COPY ... FROM STDIN` with `data`; the rows it stored."""
        try:
            with self._connection.cursor() as cursor:
                with cursor.copy(sql) as copy:
                    copy.write(data)
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._classify(exc) from None

    def commit(self) -> None:
        """Commit the open transaction."""
        try:
            self._connection.commit()
        except Exception as exc:
            raise self._classify(exc) from None

    def rollback(self) -> None:
        """Roll back the open transaction; a broken connection is ignored here."""
        try:
            self._connection.rollback()
        except Exception:  # noqa: S110 - the error that brought us here is the one to report
            pass

    def close(self) -> None:
        """Close the connection (rolling back anything uncommitted)."""
        try:
            self._connection.close()
        except Exception:  # noqa: S110 - closing is best effort
            pass

    def server_now(self) -> datetime:
        """The database server's clock, as an aware UTC instant."""
        raise NotImplementedError

    def columns(self, table: TableName) -> tuple[Column, ...]:
        """The table's columns in order; empty when the table does not exist."""
        raise NotImplementedError

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        """The column sets of the table's unique indexes (primary key included)."""
        raise NotImplementedError

    def read_only(self) -> bool:
        """True when this session cannot write."""
        raise NotImplementedError

    def indexes(self, table: TableName) -> tuple[Index, ...]:
        """The table's indexes; only MySQL's batches choose an index, so the default is none."""
        return ()


def error_categories(role: str) -> tuple[ErrorCategory, ErrorCategory, ErrorCategory]:
    """(unavailable, read-only, authentication) categories for a database in `role`.

    Failures of the archive all mean one thing to the run: live rows stay where they are.
    """
    if role == "archive":
        return "ArchiveUnavailable", "ArchiveReadOnly", "ArchiveUnavailable"
    return "ConnectionFailed", "DatabaseError", "AuthenticationFailed"


def _an_instant(ts: str) -> str:
    """MySQL, the statements that delete or copy rows without reading their triggers back
    (the key sweep's, `delete_through`, the literal copies): only a trigger that names an
    instant (errors.NoInstant, `Dialect.an_instant`).
    The run's count refuses the zero dates there are at its start; one written during the
    run inside a range is left, never deleted, and the count at the run's end refuses it."""
    return f" AND {MYSQL.an_instant(ts)}"
