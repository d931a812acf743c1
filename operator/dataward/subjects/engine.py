"""Run a data-subject request against one store: observe, decide (`plan`), act.

Matching (`match_predicate`, the one rule access and erasure share): a row is the subject's
when any of the table's subject columns of a kind the request supplies holds exactly that
identifier: the same code points (or its canonically equivalent NFC/NFD spelling, which
Unicode defines as the same text; never a compatibility form such as fullwidth), whatever
the column's collation or character set says; a typed column, the same value of its type.
Identifiers are always bound parameters (never SQL text) and compared by equality, never
LIKE, so `%`, `_`, quotes and backslashes are plain characters. Case and spaces are kept.
- Text columns: for each spelling, the column's own equality first, which its index serves
  (and which, under a case-, accent- or width-blind collation, also finds other people), AND
  an exact test: PostgreSQL `column::text COLLATE "C" = %s` (a nondeterministic ICU collation
  or a domain carrying one; citext, a type of its own, is looked up as citext), MySQL/MariaDB
  the column converted to utf8mb4 compared as binary strings (no PAD SPACE, no `_ci`, and a
  latin1 or utf16 column still finds the subject's row).
- Integer columns: only a plain decimal (`42`, `-7`; no sign `+`, leading zero, spaces,
  exponent, hex or non-ASCII digit) can match, as that number (index served); anything else
  matches nothing (`FALSE`), where MariaDB would compare `'42abc'` as 42, and is refused
  as below when no column of its kind reads it; a plain number wider than BIGINT matches
  nothing.
- uuid columns (PostgreSQL uuid or a domain over it, MariaDB UUID): as a uuid, in any case,
  with or without hyphens and braces; numeric/DECIMAL: as a plain decimal number (`5.0` is
  `5.00`; never rounded to the column's scale). A value the type cannot read matches nothing
  there, and refuses the request (Configuration, no value named, before anything is exported
  or deleted) when no column of its kind reads it (`refused_kinds`, one rule with integer
  columns). BINARY(16): a value written as a uuid is its 16 bytes.
- The archive is compared by the same rule as the live table: a subject column of another
  kind there (`match_kind`: a uuid live, text archived) refuses the request
  (`ArchiveTableInvalid`) before anything is read, since it could miss an archived row.
- Other types: their text equal to the identifier (PostgreSQL `column::text`, MySQL the
  value converted to utf8mb4; bytes columns as they are): a float's `1.50` is not `1.5`.

Access: the subject's rows of every searchable table, from the live store and (when the store
has one) the archive, each with its category, purposes, retention, statute and expiry.

Erasure, one table per transaction:
- no statute: `DELETE ... WHERE <match>`, committed.
- a statute: the rows with a trigger are taken (PostgreSQL: deleted RETURNING them,
  uncommitted; MySQL: SELECT ... FOR UPDATE, then deleted by key within the subject's match,
  `row_match`), those still within the statute are copied to the archive with the purge's
  own copy (INSERT, COMMIT, every key verified there; a row a crashed run left under a key
  is kept only as that live row's copy, `held_copies`), found there under its key by the
  subject's search (`_verify_copies`), and only then is the live transaction committed. A
  DELETE by key must remove exactly the rows read, or the table is rolled back and the
  request fails; a row to copy whose key holds NULL is refused
  before any copy (the archive's unique key cannot tell its copies apart).
  A crash between any two steps leaves each row in live, in both, or only in the archive; a
  re-run takes what is left and skips what the archive holds. Rows whose trigger has not
  happened stay in the live table (the statute's period has not started).
- Afterwards the subject's archived rows no statute keeps (past their period, or every one
  when the category has no statute) are destroyed (by key, within the subject's match, all
  of them or the request fails), and the archive is read for the subject's rows the statute
  still keeps: the result says how many, under which statute, until when.

Gates, in order: the store's category must exist; a legal hold (`spec.purge.suspend`) holds an
erasure before anything is read; the servers' clocks (each within the skew bound of the
job's; every decision is made at the earliest of them and the job's, `_clocks`); a match
larger than `max_rows` is held until acknowledged; a dry run only counts. A store that
cannot answer (`SubjectPlan.answers`: no table searched, or a table left out for want of an
identifier of its subject columns' kinds) is Failed (NotSearchable) instead of Succeeded:
nothing read when no table could be, else after the tables that could be answered (their
counts, an access's export). The purge's fault hook (`after-select`,
`after-archive-commit`, `after-delete`) serves the crash tests.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dataward.model.policy import Policy
from dataward.model.revisions import UnknownRevision
from dataward.model.store import Store
from dataward.purge.claims import claim_all
from dataward.purge.engine import (
    EngineOptions,
    Fault,
    PreparedTable,
    RunContext,
    TableRun,
    column_map,
    no_fault,
    prepare_table,
)
from dataward.purge.errors import PurgeError
from dataward.purge.plan import (
    DEFAULT_MAX_CLOCK_SKEW,
    Gate,
    clock_skew,
    make_plan,
    planning_instant,
    revision_at_clocks,
    store_ref,
)
from dataward.purge.result import ErrorInfo
from dataward.purge.sql import (
    Column,
    Dialect,
    Session,
    TableName,
    column_zone,
    decimal_fits,
    parse_table,
    plain_uuid,
)
from dataward.subjects.export import FoundRows, build_document
from dataward.subjects.identifiers import Identifiers
from dataward.subjects.plan import (
    DEFAULT_MAX_ROWS,
    Lifecycle,
    RequestType,
    SubjectPlan,
    TablePlan,
    Trigger,
    acknowledge_token,
    large_match,
    legal_hold,
    plan_request,
    row_fate,
)
from dataward.subjects.result import Outcome as ResultOutcome
from dataward.subjects.result import SubjectResult, TableOutcome

Clock = Callable[[], datetime]
Connect = Callable[[], Session]

_TEXT_TYPES = {
    "postgresql": frozenset({"text", "character varying", "character"}),
    "mysql": frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}),
}

# MySQL types holding bytes, not characters: compared as they are (a conversion to utf8mb4
# would turn invalid sequences into '?', so a crafted identifier could match them).
_MYSQL_BYTES = frozenset(
    {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"}
)


@dataclass(frozen=True)
class RequestOptions:
    """What the caller decides about one request."""

    dry_run: bool = False
    max_rows: int = DEFAULT_MAX_ROWS
    acknowledge: str | None = None
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW


@dataclass(frozen=True)
class Outcome:
    """The record of the request and, for an access request that ran, the rows document."""

    result: SubjectResult
    document: bytes | None = field(default=None, repr=False)  # personal data: never shown


# ------------------------------------------------------------------------ the statements


# An integer written plainly, as an integer column's value reads back (`type_reads`).
_PLAIN_INTEGER = re.compile(r"0|-?[1-9][0-9]*", re.ASCII)
# The widest integer column of each engine: PostgreSQL's bigint, MySQL's BIGINT (UNSIGNED).
_INTEGER_RANGE = {"postgresql": (-(2**63), 2**63 - 1), "mysql": (-(2**63), 2**64 - 1)}


def plain_integer(value: str, engine: str) -> int | None:
    """The identifier as a number if it is one written plainly (what the column's value reads
    back as) and fits the engine's integer columns; None when no integer row can hold it."""
    if len(value) > 21 or not _PLAIN_INTEGER.fullmatch(value):  # wider than any: no int()
        return None
    low, high = _INTEGER_RANGE[engine]
    number = int(value)
    return number if low <= number <= high else None


# MySQL character sets narrower than Unicode, by the Python codecs holding the same
# characters (MariaDB's latin1 is Windows-1252). A set not named here is left to the server.
_MYSQL_CODECS: dict[str, tuple[str, ...]] = {
    "ascii": ("ascii",),
    "latin1": ("cp1252",),
    "latin2": ("iso8859_2",),
    "latin5": ("iso8859_9",),
    "greek": ("iso8859_7",),
    "hebrew": ("iso8859_8",),
    "cp1250": ("cp1250",),
    "cp1251": ("cp1251",),
    "cp1256": ("cp1256",),
    "cp1257": ("cp1257",),
    "koi8r": ("koi8_r",),
    "koi8u": ("koi8_u",),
    "euckr": ("euc_kr",),
    "sjis": ("shift_jis",),
    "cp932": ("cp932",),
    "ujis": ("euc_jp",),
    "gbk": ("gbk",),
    "gb2312": ("gb2312",),
    # MariaDB's big5 has characters Python's big5 lacks (恒, 裏, 碁, ... in names): cp950's.
    "big5": ("big5", "cp950"),
}
# Characters MariaDB's tables map that its sets' codecs above do not: the five bytes
# Windows-1252 leaves undefined (MariaDB's latin1 reads them as C1 controls), the older
# ISO 8859-7/-8 and KOI8-U assignments, ujis's user-defined rows (private use U+E000-U+E757),
# the replacement character big5 maps. Saying a set cannot hold a character it holds would
# miss the subject's row silently (tests/subjects/test_subjects_charsets_db.py).
_MYSQL_ALSO: dict[str, frozenset[str]] = {
    "latin1": frozenset("\x81\x8d\x8f\x90\x9d"),
    "greek": frozenset("\u02bc\u02bd"),
    "hebrew": frozenset("\u203e"),
    "koi8u": frozenset("\u2022"),
    "ujis": frozenset(map(chr, range(0xE000, 0xE758))),
    "big5": frozenset("\ufffd"),
}


def charset_holds(charset: str | None, value: str) -> bool:
    """Whether a MySQL column of `charset` can hold `value` at all. When it cannot, the server
    refuses the comparison (error 1267, "Illegal mix of collations") and the request would
    fail on that table: such a column matches nothing instead."""
    name = (charset or "").lower()
    if name in ("utf8mb3", "utf8", "ucs2"):
        return all(ord(c) <= 0xFFFF for c in value)
    codecs = _MYSQL_CODECS.get(name)
    if codecs is None:
        return True
    also = _MYSQL_ALSO.get(name, frozenset())
    return all(c in also or any(_encodes(c, codec) for codec in codecs) for c in value)


def _encodes(character: str, codec: str) -> bool:
    try:
        character.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


_PLAIN_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)


def plain_decimal(value: str) -> Decimal | None:
    """The identifier as a number if it is written as a plain decimal (`5`, `5.0`, `-0.25`; no
    sign `+`, leading zero, spaces, exponent or non-ASCII digit); None otherwise. `5`, `5.0`
    and `5.00` are the same number, as a numeric/DECIMAL column compares them."""
    return Decimal(value) if _PLAIN_DECIMAL.fullmatch(value) else None


def text_forms(value: str) -> list[str]:
    """The spellings of `value` a text column is searched for: the identifier and its
    canonically equivalent forms (NFC and NFD), which Unicode defines as the same text, so a
    name stored decomposed is found when asked composed and the other way round.
    Compatibility forms (fullwidth letters, ligatures: NFKC) are other text and not included."""
    forms = [value]
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, value)
        if other not in forms:
            forms.append(other)
    return forms


def type_reads(dialect: Dialect, column: Column, value: str) -> bool:
    """Whether `column`'s type can read `value` as one of its values at all: a uuid column a
    uuid, a numeric one a plain decimal, an integer one a plain integer (`42`, `-7`). Text and
    other columns read anything. (A value read but out of the column's range, such as 5.001
    for DECIMAL(10,2) or 2**64 for any integer column, is read: it matches nothing.)"""
    data_type = column.data_type.lower()
    if dialect.is_integer(column):
        return _PLAIN_INTEGER.fullmatch(value) is not None
    if data_type == "uuid":
        return plain_uuid(value) is not None
    if data_type in ("numeric", "decimal"):
        return plain_decimal(value) is not None
    return True


def match_kind(dialect: Dialect, column: Column) -> str:
    """The rule `match_predicate` compares `column` by: integer, uuid, numeric, text,
    PostgreSQL's blank-padded character, MySQL's bytes (BINARY(16) apart: it reads a uuid),
    or, for any other type, the type itself (compared by its text)."""
    data_type = column.data_type.lower()
    if dialect.is_integer(column):
        return "integer"
    if data_type in ("uuid", "numeric", "decimal"):
        return "numeric" if data_type == "decimal" else data_type
    if dialect.engine == "postgresql":
        if data_type == "character":
            return "blank-padded character"  # copied padded to its length
        if data_type in _TEXT_TYPES["postgresql"] or (
            column.udt_name == "citext" and column.udt_schema
        ):
            return "text"
        return (column.udt_name or data_type) if data_type == "user-defined" else data_type
    if data_type in _TEXT_TYPES["mysql"]:
        return "text"
    if data_type in _MYSQL_BYTES:
        return "binary(16)" if data_type == "binary" and column.octets == 16 else "bytes"
    return data_type


def kind_mismatches(
    table: str, live: Sequence[tuple[str, str]], archive: Sequence[tuple[str, str]]
) -> list[str]:
    """`table.column (x live, y in the archive)` for each subject column (column, match kind)
    the archive compares by another rule than the live table. Such a column would find her
    live row and miss her archived one (a uuid asked `9F2C...` is the live uuid's value, but
    not the archive text's `9f2c...`): the request cannot be answered truthfully."""
    theirs = dict(archive)
    return [
        f"{table}.{column} ({kind} live, {theirs[column]} in the archive)"
        for column, kind in live
        if column in theirs and theirs[column] != kind
    ]


def mismatch_refusal(columns: Sequence[str]) -> PurgeError:
    """The error for `kind_mismatches`: tables, columns and types, never a value."""
    return PurgeError(
        "ArchiveTableInvalid",
        "subject columns compared by another type in the archive than in the live table "
        f"({'; '.join(columns)}): the live side would find a value its type reads in any "
        "spelling and the archive only the spelling it holds, so an archived row of the "
        "subject could be missed and the request still say Succeeded. Nothing was exported or "
        "deleted; give the archive column the live column's type.",
    )


def unreadable(
    dialect: Dialect, columns: dict[str, Column], table: TablePlan, identifiers: Identifiers
) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
    """The kinds some subject column of `table` reads, and (kind, `table.column`) for each
    column whose type cannot read that kind's identifier."""
    read: set[str] = set()
    unread: list[tuple[str, str]] = []
    for match in table.matches:
        column = columns.get(match.column.lower())
        if column is None:
            continue  # match_predicate refuses it
        if type_reads(dialect, column, identifiers[match.kind]):
            read.add(match.kind)
        else:
            unread.append((match.kind, f"{table.table}.{match.column}"))
    return frozenset(read), tuple(unread)


def refused_kinds(
    found: Sequence[tuple[frozenset[str], tuple[tuple[str, str], ...]]],
) -> dict[str, list[str]]:
    """The kinds whose identifier not one of their columns (over every table) can read, with
    the columns: such a request could never find the subject, so it is refused rather than
    answered "Succeeded, 0 rows". A kind another column reads (text, say) is answered there."""
    read = frozenset().union(*(r for r, _ in found)) if found else frozenset()
    out: dict[str, list[str]] = {}
    for _read, unread in found:
        for kind, where in unread:
            if kind not in read and where not in out.get(kind, []):
                out.setdefault(kind, []).append(where)
    return out


def refusal(kinds: dict[str, list[str]]) -> PurgeError:
    """The error for `refused_kinds`: kinds and columns, never a value."""
    named = "; ".join(f"the {kind} identifier by {', '.join(cols)}" for kind, cols in
                      sorted(kinds.items()))  # fmt: skip
    return PurgeError(
        "Configuration",
        f"an identifier is not a value its columns' types can read ({named}: a uuid, "
        "numeric or integer column): nothing was exported or deleted; write it as the "
        "column's type does (`9f2c0b5e-...`, `5.00`, `42`).",
    )


def match_predicate(
    dialect: Dialect,
    columns: dict[str, Column],
    table: TablePlan,
    identifiers: Identifiers,
) -> tuple[str, list[Any]]:
    """The WHERE clause matching the subject's rows of `table`, and its parameters. A column
    whose type cannot read the identifier (`type_reads`) matches nothing; `refused_kinds`
    refuses the request when no column of that kind reads it."""
    parts: list[str] = []
    params: list[Any] = []
    postgresql = dialect.engine == "postgresql"
    for match in table.matches:
        column = columns.get(match.column.lower())
        if column is None:
            raise PurgeError(
                "ColumnRefused",
                f"subject column {match.column!r} (kind {match.kind}) is not in table "
                f"{table.table}: fix spec.records subjectColumns.",
            )
        name = dialect.quote(match.column)
        value = identifiers[match.kind]
        data_type = column.data_type.lower()
        textual = data_type in _TEXT_TYPES[dialect.engine]
        if dialect.is_integer(column):
            number = plain_integer(value, dialect.engine)
            if number is None:
                parts.append("FALSE")
            else:
                parts.append(f"{name} = %s::bigint" if postgresql else f"{name} = %s")
                params.append(number)
            continue
        if data_type in ("uuid",):  # PostgreSQL uuid (or a domain over it), MariaDB 10.7+ UUID
            uuid = plain_uuid(value)
            if uuid is None:
                parts.append("FALSE")  # the request is refused unless another column reads it
                continue
            parts.append(f"{name} = %s::uuid" if postgresql else f"{name} = %s")
            params.append(str(uuid))
            continue
        if data_type in ("numeric", "decimal"):
            decimal = plain_decimal(value)
            if decimal is None:
                parts.append("FALSE")  # the request is refused unless another column reads it
                continue
            if postgresql:
                # numeric, not the column's numeric(p,s): a cast to that would round 5.001 to 5.00.
                parts.append(f"{name} = %s::numeric")
                params.append(value)
            elif column.digits is None:
                raise PurgeError(
                    "ColumnRefused",
                    f"the catalogue gave no precision for column {match.column!r} of table "
                    f"{table.table}: it cannot be searched exactly.",
                )
            elif decimal_fits(decimal, column.digits):
                parts.append(f"{name} = %s")  # bound as a DECIMAL literal: compared exactly
                params.append(decimal)
            else:
                parts.append("FALSE")
            continue
        if postgresql:
            if column.udt_name == "citext" and column.udt_schema:
                textual = True
            if not textual:
                parts.append(f'{name}::text COLLATE "C" = %s::text')
                params.append(value)
                continue
            exact = f'{name}::text COLLATE "C" = %s::text'
            # char(n) has its own operators (blind to trailing spaces): its index serves those;
            # so has citext (blind to case), compared as citext first for the same reason.
            cast = "bpchar" if data_type == "character" else "text"
            if column.udt_name == "citext" and column.udt_schema:
                cast = ".".join(
                    '"' + part.replace('"', '""') + '"' for part in (column.udt_schema, "citext")
                )
            index = f"{name} = %s::{cast}"
        else:
            if data_type in _MYSQL_BYTES:
                uuid = plain_uuid(value)
                if data_type == "binary" and column.octets == 16 and uuid is not None:
                    # BINARY(16): where uuids are kept as their 16 bytes (no spelling of a uuid,
                    # 32 characters or more, fits there as text): the uuid's bytes, in order.
                    parts.append(f"{name} = %s")
                    params.append(uuid.bytes)
                else:
                    parts.append(f"CAST({name} AS BINARY) = CAST(%s AS BINARY)")
                    params.append(value)
                continue
            exact = f"CAST(CONVERT({name} USING utf8mb4) AS BINARY) = CAST(%s AS BINARY)"
            index = f"{name} = %s"
        forms = text_forms(value) if textual else [value]
        if not postgresql:
            forms = [form for form in forms if charset_holds(column.charset, form)]
        if not forms:
            parts.append("FALSE")
        for form in forms:
            if textual:
                parts.append(f"({index} AND {exact})")
                params += [form, form]
            else:
                parts.append(exact)
                params.append(form)
    return "(" + " OR ".join(parts) + ")", params


def row_match(
    dialect: Dialect, keys: Sequence[str], ts: str, rows: Sequence[tuple[Any, ...]]
) -> tuple[str, list[Any]]:
    """`(k1 = %s AND k2 = %s) OR ...` naming `rows` (each its key values, then its trigger as
    read back), and its parameters. A NULL key value is `k IS NULL` (`k = NULL` matches
    nothing), and such a row is named by its trigger too: the key no longer tells it from
    the subject's other rows with a NULL there, which may have another fate. Whoever deletes
    by it must still add the subject's predicate (another person's row can share the key)
    and count what went."""
    clauses: list[str] = []
    params: list[Any] = []
    for *key, trigger in rows:
        terms = [f"{dialect.quote(k)} {'IS NULL' if v is None else '= %s'}"
                 for k, v in zip(keys, key, strict=True)]  # fmt: skip
        values = [v for v in key if v is not None]
        if len(values) < len(keys):
            terms.append(f"{dialect.quote(ts)} {'IS NULL' if trigger is None else '= %s'}")
            values += [] if trigger is None else [trigger]
        clauses.append("(" + " AND ".join(terms) + ")")
        params += values
    return " OR ".join(clauses), params


@dataclass(frozen=True)
class Located:
    """A searchable table checked against one database's catalogue."""

    plan: TablePlan
    table: TableName
    columns: tuple[str, ...]  # the live table's columns, as the catalogue names them
    predicate: str
    params: tuple[Any, ...] = field(repr=False)  # the identifiers: never shown
    ts_position: int
    key_positions: tuple[int, ...]
    # records[].timeZone when this database's trigger column is naive (wall clock or date).
    zone: ZoneInfo | None = None
    # The kinds a subject column reads, and the (kind, table.column) whose type cannot.
    reads: tuple[frozenset[str], tuple[tuple[str, str], ...]] = (frozenset(), ())
    # Each subject column of the plan and the rule it is compared by here (`match_kind`).
    kinds: tuple[tuple[str, str], ...] = ()

    role: str = "live"  # or "archive"
    # Whether a trigger's value decides the answer: an access (which says under which statute
    # her rows are kept) and an erasure under a statute; an erasure without one erases her
    # rows whatever their triggers hold (`_observe`).
    strict: bool = True

    def trigger(self, value: Any) -> Trigger | None:
        """A trigger value of this table read back, with the zone it is read in (`Trigger`:
        its instant and its periods as the purge reads and counts them); None when it has
        not happened: NULL, or PostgreSQL's `infinity`, an instant that
        never comes (the loader returns it as text, `postgres._InfiniteAsText`).
        A value that names no instant (PostgreSQL's `-infinity`; MariaDB's zero date
        `0000-00-00`, or one with a zero month or day, which PyMySQL returns as text) is
        refused where it decides (`strict`): nothing says when the row's retention or
        statute ends, and reading it as anything (NULL: not happened yet) would decide that."""
        if value is None or value == "infinity":
            return None
        if isinstance(value, datetime | date):
            return Trigger(value, self.zone)
        if not self.strict:
            return None
        raise PurgeError(
            "ColumnRefused",
            f"timestamp column {self.plan.records.timestamp_column!r} of the {self.role} "
            f"table {self.plan.table} holds, in a row of the subject, a value that names no "
            "instant (PostgreSQL's -infinity; a MariaDB zero date, or a zero month or day): "
            "nothing says when that row's retention ends, so the request stopped there. Give "
            "the row a real date, or NULL if its trigger has not happened.",
        )

    def quoted(self, dialect: Dialect) -> str:
        """The column list."""
        return ", ".join(dialect.quote(c) for c in self.columns)


def locate(
    session: Session,
    role: str,
    table: TablePlan,
    identifiers: Identifiers,
    columns: Sequence[str] | None = None,
) -> Located:
    """Check a table's subject, timestamp and key columns in `session`'s catalogue."""
    name = parse_table(table.table)
    found = column_map(session, name, role, table.table)
    wanted = tuple(columns) if columns is not None else tuple(c.name for c in found.values())
    missing = [c for c in wanted if c.lower() not in found]
    if missing:
        raise PurgeError(
            "ArchiveTableInvalid",
            f"the {role} table {table.table} lacks columns {', '.join(sorted(missing))} of the "
            "live table: nothing was read or deleted.",
        )
    records = table.records
    ts = found.get(records.timestamp_column.lower())
    kind = None if ts is None else session.dialect.timestamp_kind(ts)
    if kind is None:
        raise PurgeError(
            "ColumnRefused",
            f"timestamp column {records.timestamp_column!r} of the {role} table {table.table} "
            "is missing or not a timestamp, datetime or date: fix spec.records timestampColumn.",
        )
    lowered = [c.lower() for c in wanted]
    for key in records.key_columns:
        if key.lower() not in lowered:
            raise PurgeError(
                "ColumnRefused",
                f"key column {key!r} is not in table {table.table}: fix spec.records keyColumns.",
            )
    predicate, params = match_predicate(session.dialect, found, table, identifiers)
    return Located(
        plan=table,
        table=name,
        columns=wanted,
        predicate=predicate,
        params=tuple(params),
        ts_position=lowered.index(records.timestamp_column.lower()),
        key_positions=tuple(lowered.index(k.lower()) for k in records.key_columns),
        zone=column_zone(kind, records.zone),
        role=role,
        reads=unreadable(session.dialect, found, table, identifiers),
        kinds=tuple(
            (m.column, match_kind(session.dialect, found[m.column.lower()])) for m in table.matches
        ),
    )


def _triggers(session: Session, located: Located) -> list[Trigger | None]:
    """The trigger of each of the subject's rows (no lock)."""
    d = session.dialect
    rows = session.query(
        f"SELECT {d.quote(located.plan.records.timestamp_column)} FROM {d.table(located.table)} "
        f"WHERE {located.predicate}",
        located.params,
    )
    session.commit()
    return [located.trigger(ts) for (ts,) in rows]


def _keyed_triggers(
    session: Session, located: Located
) -> tuple[list[Trigger | None], list[Trigger | None]]:
    """The trigger of each of the subject's rows, and those of the rows whose key holds NULL
    (which an erasure under a statute refuses to archive, `_refuse_null_keys`); one query,
    no lock."""
    d = session.dialect
    keys = located.plan.records.key_columns
    nulls = " OR ".join(f"{d.quote(k)} IS NULL" for k in keys)
    rows = session.query(
        f"SELECT {d.quote(located.plan.records.timestamp_column)}, CASE WHEN {nulls} THEN 1 "
        f"ELSE 0 END FROM {d.table(located.table)} WHERE {located.predicate}",
        located.params,
    )
    session.commit()
    triggers = [located.trigger(ts) for ts, _ in rows]
    return triggers, [t for t, (_, unkeyed) in zip(triggers, rows, strict=True) if unkeyed]


def _rows(session: Session, located: Located) -> list[tuple[Any, ...]]:
    """The subject's rows, every column (no lock)."""
    d = session.dialect
    rows = session.query(
        f"SELECT {located.quoted(d)} FROM {d.table(located.table)} WHERE {located.predicate}",
        located.params,
    )
    session.commit()
    return rows


# ----------------------------------------------------------------------- counting, deciding


@dataclass(frozen=True)
class Observed:
    """One table before the request acts: the subject's rows by what erasure does to them."""

    table: TablePlan
    live: Located
    archive: Located | None
    live_triggers: tuple[Trigger | None, ...]
    archive_triggers: tuple[Trigger | None, ...] = ()
    # The triggers of the live rows whose key holds NULL (`_keyed_triggers`).
    unkeyed_triggers: tuple[Trigger | None, ...] = ()

    def unkeyed_to_archive(self, lifecycle: Lifecycle, now: datetime) -> int:
        """Live rows an erasure would archive whose key holds NULL: it refuses them
        (`_refuse_null_keys`, ColumnRefused), which a dry run says."""
        if lifecycle.statutory is None:
            return 0
        return sum(1 for t in self.unkeyed_triggers if row_fate(t, lifecycle, now) == "archive")

    def fates(self, lifecycle: Lifecycle, now: datetime) -> dict[str, int]:
        """Live rows by fate."""
        out = {"delete": 0, "archive": 0, "keep-live": 0}
        for trigger in self.live_triggers:
            out[row_fate(trigger, lifecycle, now)] += 1
        return out


def kept(
    triggers: Sequence[Trigger | None], lifecycle: Lifecycle, now: datetime
) -> tuple[int, datetime | None]:
    """Rows (of the archive) the statute still keeps at `now`, and the latest keptUntil: every
    row an erasure does not destroy (`_destroyed`), a row with no trigger too (its period
    has not started, as for such a row in the live store), which has no keptUntil."""
    within = [t for t in triggers if not _destroyed(t, lifecycle, now)]
    until = [u for u in map(lifecycle.kept_until, within) if u is not None]
    return len(within), max(until) if until else None


def _outcome_of(
    observed: Observed, lifecycle: Lifecycle, now: datetime, request: RequestType, dry: bool
) -> TableOutcome:
    """A table's counts before acting (what a dry run or a held request reports)."""
    outcome = TableOutcome(
        table=observed.table.table,
        rows_found=len(observed.live_triggers),
        archive_rows_found=len(observed.archive_triggers),
        statute=lifecycle.statute,
    )
    if request == "access":
        if dry:
            return replace(
                outcome, rows_exported=len(observed.live_triggers) + len(observed.archive_triggers)
            )
        return outcome
    in_archive, until = kept(observed.archive_triggers, lifecycle, now)
    if not dry:
        return replace(outcome, rows_kept=in_archive, kept_until=until)
    fates = observed.fates(lifecycle, now)
    past = [t for t in observed.archive_triggers if _destroyed(t, lifecycle, now)]
    new_until = [
        lifecycle.kept_until(t)
        for t in observed.live_triggers
        if row_fate(t, lifecycle, now) == "archive"
    ]
    latest = max([u for u in (until, *new_until) if u is not None], default=None)
    return replace(
        outcome,
        rows_deleted=fates["delete"] + fates["archive"],
        rows_archived=fates["archive"],
        rows_kept=in_archive + fates["archive"] + fates["keep-live"],
        rows_kept_live=fates["keep-live"],
        kept_until=latest,
        archive_rows_destroyed=len(past),
    )


def _destroyed(trigger: Trigger | None, lifecycle: Lifecycle, now: datetime) -> bool:
    """Whether an erasure destroys this archived row of the subject: when no statute keeps
    the category's rows (none in the policy, or no longer), every one; else one whose
    period, counted from its trigger, is over (the purge would destroy it too). A row with
    no trigger under a statute is kept: its period has not started."""
    if lifecycle.statutory is None:
        return True
    return trigger is not None and row_fate(trigger, lifecycle, now) == "delete"


def _destroy_archived(
    archive: Session, located: Located, lifecycle: Lifecycle, now: datetime
) -> int:
    """Destroy the subject's archived rows no statute keeps (`_destroyed`); committed. Needs
    the archive's DELETE privilege only when there is such a row. Every one of them goes, or
    none: a count that differs (keys that do not name the rows read) rolls back and fails
    the request."""
    d = archive.dialect
    records = located.plan.records
    keys = ", ".join(d.quote(k) for k in records.key_columns)
    rows = archive.query(
        f"SELECT {keys}, {d.quote(records.timestamp_column)} FROM {d.table(located.table)} "
        f"WHERE {located.predicate}",
        located.params,
    )
    archive.commit()
    gone = [r for r in rows if _destroyed(located.trigger(r[-1]), lifecycle, now)]
    destroyed = _delete_rows(archive, located, gone, located.predicate, located.params)
    if destroyed != len(gone):
        archive.rollback()
        raise _not_named(located, "archive", len(gone), destroyed)
    archive.commit()
    return destroyed


def _delete_rows(
    session: Session,
    located: Located,
    rows: Sequence[tuple[Any, ...]],
    where: str,
    params: Sequence[Any],
) -> int:
    """DELETE the rows `row_match` names (key values, then trigger) that also meet `where`
    (the subject's predicate, so another person's row sharing a key stays), uncommitted;
    how many rows went."""
    table = session.dialect.table(located.table)
    return sum(
        session.execute(f"DELETE FROM {table} WHERE ({clause}) AND {where}", [*named, *params])
        for clause, named in _matches(session, located, rows, len(params))
    )


def _count_rows(session: Session, located: Located, rows: Sequence[tuple[Any, ...]]) -> int:
    """How many of the subject's rows of `located` the rows `row_match` names are."""
    table = session.dialect.table(located.table)
    total = 0
    for clause, named in _matches(session, located, rows, len(located.params)):
        ((n,),) = session.query(
            f"SELECT count(*) FROM {table} WHERE ({clause}) AND {located.predicate}",
            [*named, *located.params],
        )
        total += int(n)
    return total


def _matches(
    session: Session, located: Located, rows: Sequence[tuple[Any, ...]], others: int
) -> Iterator[tuple[str, list[Any]]]:
    """`row_match` of `rows` in statements of at most the session's parameters (`others`
    of them taken by the rest of the statement)."""
    keys, ts = located.plan.records.key_columns, located.plan.records.timestamp_column
    per = max(1, (session.max_parameters - others) // (len(keys) + 1))
    for start in range(0, len(rows), per):
        yield row_match(session.dialect, keys, ts, rows[start : start + per])


def _not_named(located: Located, role: str, wanted: int, deleted: int) -> PurgeError:
    """The error of a DELETE by key that did not remove exactly the subject's rows read."""
    keys = ", ".join(located.plan.records.key_columns)
    return PurgeError(
        "ColumnRefused",
        f"{wanted} of the subject's rows of the {role} table {located.plan.table} were read "
        f"for erasure, but deleting them by keyColumns ({keys}) removed {deleted}: the key "
        "values read back do not name exactly those rows, so nothing was deleted from that "
        "table; point keyColumns at a PRIMARY KEY.",
    )


# -------------------------------------------------------------------------------- erasure


def _erase_plain(live: Session, located: Located, fault: Fault) -> int:
    """No statute: delete the subject's rows in one statement; committed."""
    d = live.dialect
    deleted = live.execute(
        f"DELETE FROM {d.table(located.table)} WHERE {located.predicate}", located.params
    )
    fault("after-select")
    live.commit()
    fault("after-delete")
    return deleted


def _erase_statutory(
    run: TableRun,
    live: Session,
    located: Located,
    archived_at: Located,
    lifecycle: Lifecycle,
    now: datetime,
    fault: Fault,
) -> tuple[int, int]:
    """A statute: copy the rows it keeps to the archive, then delete them from live.

    Returns (deleted from live, newly archived). Only rows whose trigger has happened are
    taken: not NULL, and naming a finite instant (`Dialect.an_instant`: PostgreSQL's
    `infinity` never comes, as NULL has not; a value naming no instant written since the
    request read her triggers stays too).
    """
    d = live.dialect
    records = located.plan.records
    ts = d.quote(records.timestamp_column)
    where = f"{located.predicate} AND {ts} IS NOT NULL AND {d.an_instant(ts, future=True)}"
    archive = run.archive
    assert archive is not None
    # PostgreSQL to PostgreSQL by JSON, as the purge copies (`TableRun.archive_by_copy`):
    # unless a column's numbers the archive may round, which go row by row, where the copy
    # sees each value (`engine.unkept_columns`; the JSON INSERT would round them unseen).
    if run.archive_by_copy():
        keys = ", ".join(d.quote(k) for k in records.key_columns)
        rows = live.query(
            f"WITH dw_gone AS (DELETE FROM {d.table(located.table)} WHERE {where} "
            f"RETURNING {located.quoted(d)}) SELECT {keys}, {ts}, row_to_json(dw_gone)::text "
            "FROM dw_gone",
            located.params,
        )
        fault("after-select")
        keep = [r for r in rows if _archived(located, r[-2], lifecycle, now)]
        named = [tuple(r[:-1]) for r in keep]
        _refuse_null_keys(live, located, lifecycle, named)
        payload = "[" + ",".join(r[-1] for r in keep) + "]"
        archived = run.copy_json(payload, len(keep)) if keep else 0
        _verify_copies(live, archive, archived_at, named)
        live.commit()
        fault("after-delete")
        return len(rows), archived
    # Read as the purge's copy reads them (a FLOAT as the double it is: `TableStatements.read`).
    read = run.table.live.read_list(located.columns)
    if d.engine == "postgresql":
        taken = live.query(
            f"DELETE FROM {d.table(located.table)} WHERE {where} RETURNING {read}",
            located.params,
        )
    else:
        taken = live.query(
            f"SELECT {read} FROM {d.table(located.table)} WHERE {where} FOR UPDATE",
            located.params,
        )
    fault("after-select")
    keep_rows = [r for r in taken if _archived(located, r[located.ts_position], lifecycle, now)]
    named = [_named(located, r) for r in keep_rows]
    _refuse_null_keys(live, located, lifecycle, named)
    archived = run.copy_rows(keep_rows)[1] if keep_rows else 0
    _verify_copies(live, archive, archived_at, named)
    deleted = len(taken)
    if d.engine == "mysql" and taken:
        # The rows taken (locked), named by key and bounded by the subject's predicate: a
        # NULL key is no identity, and a key another person's row shares is not theirs.
        deleted = _delete_rows(live, located, [_named(located, r) for r in taken], where,
                               located.params)  # fmt: skip
        if deleted != len(taken):
            live.rollback()
            raise _not_named(located, "live", len(taken), deleted)
    live.commit()
    fault("after-delete")
    return deleted, archived


def _named(located: Located, row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of `located` as `row_match` names it: its key values, then its trigger."""
    return (*(row[i] for i in located.key_positions), row[located.ts_position])


def _refuse_null_keys(
    live: Session, located: Located, lifecycle: Lifecycle, named: Sequence[tuple[Any, ...]]
) -> None:
    """Refuse, before any copy, the rows to archive whose key holds NULL: the archive's
    unique key cannot keep a re-run from copying them again, and MySQL's copy verifies by
    key, which `k = NULL` never finds (it committed the copy, then failed, every retry)."""
    unnamed = sum(1 for n in named if any(v is None for v in n[:-1]))
    if unnamed:
        live.rollback()
        raise PurgeError(
            "ColumnRefused",
            f"{unnamed} of the subject's rows of {located.plan.table} that the "
            f"{lifecycle.statute} keeps have NULL in a key column "
            f"({', '.join(located.plan.records.key_columns)}): their copy in the archive could "
            "not be told apart or verified, so nothing was copied or deleted from that table; "
            "give those rows keys, or point keyColumns at a PRIMARY KEY.",
        )


def _verify_copies(
    live: Session, archive: Session, archived_at: Located, named: Sequence[tuple[Any, ...]]
) -> None:
    """Every row copied must be found in the archive, under its key, by the subject's own
    search there. Whether the row there is this row's copy is the purge's copy's rule
    (`held_copies`: another person's row, her own older row, or one row for two live rows
    under a key are refused there, ArchiveKeyConflict, before anything commits). What this
    adds: an archive whose subject column compares another way finds the exact copy only by
    the spelling it holds (text both sides, case-blind collation live and binary archived,
    the identifier asked in another case; a column of another kind is refused before this,
    `kind_mismatches`), so the result's count of rows kept, a later access and the erasure
    after the statute would all miss it. Rolls the live transaction back when one is not
    found."""
    if not named:
        return
    found = _count_rows(archive, archived_at, named)
    archive.commit()
    if found != len(named):
        live.rollback()
        raise PurgeError(
            "ArchiveVerifyFailed",
            f"{len(named) - found} of the {len(named)} rows of the subject that the statute "
            f"keeps in {archived_at.plan.table} were copied but are not found in the archive "
            "by the subject's identifiers (a subject or key column of another type or "
            "collation there, which reads the copied value in another spelling): none was "
            "deleted from the live table; give the archive table the live table's column "
            "types and collations.",
        )


def _archived(located: Located, trigger: Any, lifecycle: Lifecycle, now: datetime) -> bool:
    return row_fate(located.trigger(trigger), lifecycle, now) == "archive"


# ------------------------------------------------------------------------------- the run


class _Sessions:
    """The request's connections, rolled back on failure and closed at the end."""

    def __init__(self) -> None:
        self.opened: list[Session] = []

    def open(self, connect: Connect) -> Session:
        session = connect()
        self.opened.append(session)
        return session

    def rollback(self) -> None:
        for session in self.opened:
            session.rollback()

    def close(self) -> None:
        for session in self.opened:
            session.close()


def run_request(
    store: Store,
    policy: Policy | None,
    identifiers: Identifiers,
    request: RequestType,
    *,
    connect_live: Connect,
    connect_archive: Connect | None,
    job_clock: Clock,
    options: RequestOptions | None = None,
    fault: Fault = no_fault,
    policy_at: Callable[[datetime], Policy | UnknownRevision | None] | None = None,
) -> Outcome:
    """Run one request against `store`; never raises for database trouble. `policy_at`
    (`StoreSource.policy_at`): the policy as the revision in force at an instant; the
    request changes nothing unless it is `policy` at every clock read."""
    options = options or RequestOptions()
    start = job_clock()
    base = SubjectResult(
        store=store_ref(store),
        type=request,
        outcome="Failed",
        dry_run=options.dry_run,
        start_time=start,
        completion_time=start,
        message="",
    )
    sessions = _Sessions()
    outcomes: list[TableOutcome] = []
    try:
        plan = plan_request(store, policy, identifiers.kinds)
        assert policy is not None
        base = replace(base, not_searchable=plan.not_searchable, kinds_needed=plan.kinds_needed)
        gate = legal_hold(store, request)
        if gate is not None:
            return Outcome(_gated(base, gate, job_clock()))
        lifecycle = plan.lifecycle
        statutory = lifecycle.statutory is not None
        if request == "erasure" and statutory and (store.archive is None or not connect_archive):
            raise PurgeError(
                "Configuration",
                f"category {lifecycle.category!r} is kept under the {lifecycle.statute}, but "
                "the store has no archive (or no archive login was given): nothing was deleted.",
            )
        if not plan.tables:
            return Outcome(_nothing_searchable(base, plan, identifiers, job_clock()))
        live = sessions.open(connect_live)
        archive = (
            sessions.open(connect_archive)
            if store.archive is not None and connect_archive is not None
            else None
        )
        clocks = _clocks(live, archive, job_clock, options.max_clock_skew)
        if isinstance(clocks, _Skewed):
            return Outcome(_gated(replace(base, server_time=clocks.live_now), clocks.gate,
                                  job_clock()))  # fmt: skip
        now, read = clocks
        changed = (
            None
            if policy_at is None
            else revision_at_clocks(policy, [policy_at(c) for c in read], REQUEST_RETRY)
        )
        if changed is not None:
            return Outcome(_gated(replace(base, server_time=now), changed, job_clock()))
        if archive is not None:
            _claimed_archives(archive, plan, store_ref(store), erasure=request == "erasure",
                              dry_run=options.dry_run)  # fmt: skip
        base = replace(base, server_time=now)
        strict = request == "access" or statutory
        observed = _observe(live, archive, plan, identifiers, strict)
        outcomes = [_outcome_of(o, lifecycle, now, request, options.dry_run) for o in observed]
        touched = sum(len(o.live_triggers) for o in observed)
        if request == "access":
            touched += sum(len(o.archive_triggers) for o in observed)
        else:  # and the archived rows it destroys
            touched += sum(_destroyed(t, lifecycle, now) for o in observed
                           for t in o.archive_triggers)  # fmt: skip
        token = acknowledge_token(store, policy, touched)
        held = large_match(touched, options.max_rows, token, options.acknowledge)
        if held is not None and not options.dry_run:
            return Outcome(
                replace(_gated(base, held, job_clock()), tables=tuple(outcomes),
                        acknowledge_token=token)
            )  # fmt: skip
        if options.dry_run:
            refused = (
                [(o.table.table, o.unkeyed_to_archive(lifecycle, now)) for o in observed]
                if request == "erasure"
                else []
            )
            return _searched_in_part(
                Outcome(_dry_run(base, outcomes, request, held, token, job_clock(),
                                 [(table, n) for table, n in refused if n])),
                plan, identifiers,
            )  # fmt: skip
        if request == "access":
            return _searched_in_part(
                _access(base, live, archive, plan, observed, job_clock), plan, identifiers
            )
        return _searched_in_part(
            _erasure(
                base, store, policy, live, archive, plan, observed, now, job_clock, fault, outcomes
            ),
            plan,
            identifiers,
        )
    except PurgeError as error:
        sessions.rollback()
        return Outcome(
            replace(
                base,
                outcome="Failed",
                reason=error.category,
                message=error.message,
                tables=tuple(outcomes),
                error=ErrorInfo(error.category, error.message),
                completion_time=job_clock(),
            )
        )
    finally:
        sessions.close()


@dataclass(frozen=True)
class _Skewed:
    """A server's clock too far from the job's: the gate, and the live server's time."""

    gate: Gate
    live_now: datetime


# What a request stopped by a revision taking effect between its clocks tells: it has no
# next scheduled run, the requester runs it again.
REQUEST_RETRY = "run the request again once the revision has taken effect."


def _clocks(
    live: Session, archive: Session | None, job_clock: Clock, bound: timedelta
) -> tuple[datetime, list[datetime]] | _Skewed:
    """The one instant every decision of the request is made at (which rows a statute keeps,
    which archived rows it no longer keeps, the keptUntil told to the person):
    `planning_instant` of the live server's clock, the archive's and the job's read beside
    each, so no statute ends before it has by any of them, and a row the request archives is
    not destroyed by it too; with every clock read (the revision in force is decided at each,
    `revision_at_clocks`). Or the skew gate when a server's clock is off by more than
    `bound`."""
    live_now, live_job = live.server_now(), job_clock()
    gate = clock_skew(live_now, live_job, bound, "live database")
    if gate is not None:
        return _Skewed(gate, live_now)
    if archive is None:
        return planning_instant(live_now, live_job), [live_now, live_job]
    archive_now, archive_job = archive.server_now(), job_clock()
    gate = clock_skew(archive_now, archive_job, bound, "archive")
    if gate is not None:
        return _Skewed(gate, live_now)
    read = [live_now, live_job, archive_now, archive_job]
    return planning_instant(*read), read


def _claimed_archives(
    archive: Session, plan: SubjectPlan, store: str, *, erasure: bool, dry_run: bool
) -> None:
    """Refuse, before anything is read, an archive table another store claimed
    (`purge.claims`): its archived rows are that store's, kept by its statute, and neither
    this store's erasure may destroy them nor its access export them. An erasure claims an
    unclaimed table, as the purge does (it may archive into it); an access or a dry run
    claims nothing."""
    claimed = [(parse_table(table.table), table.table) for table in plan.tables]
    claim_all(archive, claimed, store, write=erasure and not dry_run)


def _observe(
    live: Session,
    archive: Session | None,
    plan: SubjectPlan,
    identifiers: Identifiers,
    strict: bool = True,
) -> list[Observed]:
    """Locate every searchable table (live and archive), refuse an identifier none of its
    kind's columns can read, then read the subject's triggers (`strict`: see
    `Located.strict`)."""
    found: list[tuple[TablePlan, Located, Located | None]] = []
    for table in plan.tables:
        located = replace(locate(live, "live", table, identifiers), strict=strict)
        archived = (
            None
            if archive is None
            else replace(
                locate(archive, "archive", table, identifiers, located.columns), strict=strict
            )
        )
        found.append((table, located, archived))
    mismatched = [
        where
        for table, located, archived in found
        if archived is not None
        for where in kind_mismatches(table.table, located.kinds, archived.kinds)
    ]
    if mismatched:
        raise mismatch_refusal(mismatched)
    refused = refused_kinds(
        [one.reads for _t, located, archived in found for one in (located, archived) if one]
    )
    if refused:
        raise refusal(refused)
    out: list[Observed] = []
    for table, located, archived in found:
        archive_triggers = (
            [] if archive is None or archived is None else _triggers(archive, archived)
        )
        triggers, unkeyed = _keyed_triggers(live, located)
        out.append(
            Observed(
                table, located, archived, tuple(triggers), tuple(archive_triggers), tuple(unkeyed)
            )
        )
    return out


def _gated(base: SubjectResult, gate: Gate, at: datetime) -> SubjectResult:
    outcome: ResultOutcome = "Held" if gate.result == "Held" else "Failed"
    return replace(
        base,
        outcome=outcome,
        reason=gate.reason,
        message=gate.message,
        error=ErrorInfo(gate.reason, gate.message) if outcome == "Failed" else None,
        completion_time=at,
    )


def _not_searched(plan: SubjectPlan, identifiers: Identifiers) -> str:
    """Why a store has not answered (`SubjectPlan.answers`): the tables not searched and the
    identifier kinds their subject columns need, against the kinds given. Kinds, never a
    value: the requester adds one of them to the identifier Secret."""
    missed = ", ".join(plan.not_searchable)
    if not plan.kinds_needed:
        return (
            f"no table of the store has spec.records[].subjectColumns ({missed}), so it cannot "
            "be searched for a subject and has not answered: give its tables subjectColumns."
        )
    return (
        f"tables not searched for the subject: {missed}. Their subject columns are of the "
        f"kinds {', '.join(plan.kinds_needed)}; the identifiers given are of the kinds "
        f"{', '.join(sorted(identifiers.kinds))}. Nothing is known of the subject's rows "
        "there, so the store has not answered: give the subject's identifier of one of those "
        "kinds, and run the request again."
    )


def _nothing_searchable(
    base: SubjectResult, plan: SubjectPlan, identifiers: Identifiers, at: datetime
) -> SubjectResult:
    """No table could be searched: Failed (NotSearchable), never "no data"; no export."""
    message = f"{_not_searched(plan, identifiers)} Nothing was read or deleted."
    return replace(base, outcome="Failed", reason="NotSearchable", message=message,
                   error=ErrorInfo("NotSearchable", message), completion_time=at)  # fmt: skip


def _searched_in_part(outcome: Outcome, plan: SubjectPlan, identifiers: Identifiers) -> Outcome:
    """`outcome` of the tables searched, when the store answers; else, had they answered,
    Failed (NotSearchable): their counts (and an access's export, which names the tables not
    searched) stand, and the store has not answered for the rest."""
    result = outcome.result
    if plan.answers or result.outcome != "Succeeded":
        return outcome
    note = _not_searched(plan, identifiers)
    failed = replace(result, outcome="Failed", reason="NotSearchable",
                     message=f"{result.message} {note[0].upper()}{note[1:]}",
                     error=ErrorInfo("NotSearchable", note))  # fmt: skip
    return replace(outcome, result=failed)


def _dry_run(
    base: SubjectResult,
    outcomes: Sequence[TableOutcome],
    request: RequestType,
    held: Gate | None,
    token: str,
    at: datetime,
    unkeyed: Sequence[tuple[str, int]] = (),
) -> SubjectResult:
    found = sum(t.rows_found for t in outcomes)
    if request == "access":
        message = (
            f"dry run: would export {sum(t.rows_exported for t in outcomes)} rows "
            f"({found} in the live store); nothing was exported."
        )
    else:
        message = (
            f"dry run: would delete {sum(t.rows_deleted for t in outcomes)} of the subject's "
            f"{found} live rows, archiving {sum(t.rows_archived for t in outcomes)} a statute "
            f"keeps; {sum(t.rows_kept_live for t in outcomes)} rows whose trigger has not "
            "happened would stay; "
            f"{sum(t.archive_rows_destroyed for t in outcomes)} archived rows no statute keeps "
            "would be destroyed; nothing was changed."
        )
    if held is not None:
        message += f" A real run would be held: {held.message}"
    for table, n in unkeyed:
        message += (
            f" A real run would be refused (ColumnRefused): {n} of the subject's rows of "
            f"{table} that the statute keeps have NULL in a key column, so they cannot be "
            "archived; give those rows keys, or point keyColumns at a PRIMARY KEY."
        )
    return replace(
        base,
        outcome="Succeeded",
        reason="DryRun",
        message=message,
        tables=tuple(outcomes),
        acknowledge_token=token if held is not None else None,
        completion_time=at,
    )


def _read_triggers(
    located: Located, rows: Sequence[tuple[Any, ...]]
) -> list[Trigger | None]:
    """Each row's trigger (`Located.trigger`), for the access document."""
    return [located.trigger(row[located.ts_position]) for row in rows]


def _access(
    base: SubjectResult,
    live: Session,
    archive: Session | None,
    plan: SubjectPlan,
    observed: Sequence[Observed],
    clock: Clock,
) -> Outcome:
    found: list[FoundRows] = []
    outcomes: list[TableOutcome] = []
    for o in observed:
        live_rows = _rows(live, o.live)
        found.append(FoundRows(o.table.records, "live", o.live.columns, live_rows,
                               _read_triggers(o.live, live_rows)))  # fmt: skip
        archive_rows: list[tuple[Any, ...]] = []
        if archive is not None and o.archive is not None:
            archive_rows = _rows(archive, o.archive)
            found.append(
                FoundRows(
                    o.table.records, "archive", o.archive.columns, archive_rows,
                    _read_triggers(o.archive, archive_rows),
                )
            )
        outcomes.append(
            TableOutcome(
                table=o.table.table,
                rows_found=len(live_rows),
                archive_rows_found=len(archive_rows),
                rows_exported=len(live_rows) + len(archive_rows),
                statute=plan.lifecycle.statute,
            )
        )
    at = clock()
    document = build_document(plan, found, at)
    total = sum(t.rows_exported for t in outcomes)
    result = replace(
        base,
        outcome="Succeeded",
        message=f"exported {total} rows of the subject from {len(outcomes)} tables.",
        tables=tuple(outcomes),
        completion_time=at,
    )
    return Outcome(result, document)


def _erasure(
    base: SubjectResult,
    store: Store,
    policy: Policy,
    live: Session,
    archive: Session | None,
    plan: SubjectPlan,
    observed: Sequence[Observed],
    now: datetime,
    clock: Clock,
    fault: Fault,
    before: list[TableOutcome],
) -> Outcome:
    lifecycle = plan.lifecycle
    outcomes = list(before)
    prepared: list[TableRun | None] = []
    if archive is not None and lifecycle.statutory is not None:
        purge_plan = make_plan(store, policy, now, now)
        if archive.read_only():
            raise PurgeError(
                "ArchiveReadOnly",
                "the archive database is read-only for the archive login: nothing was "
                "deleted from the live database; make the archive writable.",
            )
        context = RunContext(live, archive, purge_plan, EngineOptions(), fault)
        for o in observed:
            table: PreparedTable = prepare_table(live, archive, o.table.records, purge_plan)
            prepared.append(TableRun(table, context))
    else:
        prepared = [None] * len(observed)
    for i, (o, run) in enumerate(zip(observed, prepared, strict=True)):
        try:
            if run is None:
                deleted, archived = _erase_plain(live, o.live, fault), 0
            else:
                assert o.archive is not None
                deleted, archived = _erase_statutory(
                    run, live, o.live, o.archive, lifecycle, now, fault
                )
        except PurgeError:
            live.rollback()
            raise
        # Recorded as it goes: a failure after this point (in the archive, or in a later
        # table) still reports what this table's committed erasure did.
        outcomes[i] = before[i] = replace(outcomes[i], rows_deleted=deleted, rows_archived=archived)
        # Statutory rows whose trigger has not happened stay in live (counted as kept).
        left = [t for t in _triggers(live, o.live) if t is None] if run is not None else []
        in_archive: tuple[int, datetime | None] = (0, None)
        destroyed = 0
        if archive is not None and o.archive is not None:
            destroyed = _destroy_archived(archive, o.archive, lifecycle, now)
            in_archive = kept(_triggers(archive, o.archive), lifecycle, now)
        outcomes[i] = before[i] = replace(
            outcomes[i],
            rows_kept=in_archive[0] + len(left),
            rows_kept_live=len(left),
            kept_until=in_archive[1],
            archive_rows_destroyed=destroyed,
        )
    deleted = sum(t.rows_deleted for t in outcomes)
    kept_live = sum(t.rows_kept_live for t in outcomes)
    message = f"deleted {deleted} of the subject's rows from {len(outcomes)} tables"
    destroyed = sum(t.archive_rows_destroyed for t in outcomes)
    if destroyed:
        message += f" and {destroyed} from the archive, which no statute keeps"
    if lifecycle.statute:
        # rowsKept counts both; the live ones are not kept by the statute (not started yet).
        message += (
            f"; {sum(t.rows_kept for t in outcomes) - kept_live} rows are kept in the archive "
            f"under the {lifecycle.statute} ({sum(t.rows_archived for t in outcomes)} newly "
            f"archived); {kept_live} rows whose trigger has not happened stay in the live store"
        )
    return Outcome(
        replace(
            base,
            outcome="Succeeded",
            message=message + ".",
            tables=tuple(outcomes),
            completion_time=clock(),
        )
    )
