"""PostgreSQL through psycopg 3: connect with the store's TLS mode, introspect, classify errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Loader
from psycopg.pq import Format

from dataward.model.store import Database
from dataward.purge.credentials import Credentials, Timeouts
from dataward.purge.errors import DuplicateKey, LockTimeout, PurgeError
from dataward.purge.sql import (
    POSTGRES,
    Classifier,
    Column,
    Session,
    TableName,
    error_categories,
)

_SSLMODE = {"disable": "disable", "require": "require", "verify-full": "verify-full"}


class IntervalText(str):
    """An interval that no timedelta is the copy of, as PostgreSQL writes it ('1 mon',
    '24:00:00'): psycopg reads a month as 30 days and '24:00:00' as one day, so interval
    '1 mon', '30 days' and '720:00:00' all read as timedelta(30), three values that add to
    a date differently. Copied into MariaDB it is this text (a VARCHAR keeps it; a TIME
    refuses it); beside a timedelta it is never equal (`engine.same_value`)."""


# An interval as a copied timedelta stores it (psycopg writes days and a time of day under 24
# hours, no months), in the 'postgres' IntervalStyle: '-1 days +23:00:00', '1 day', '00:00:01'.
_DAYS_AND_TIME = re.compile(
    r"(?:(-?\d+) days?)?(?: ?\+?(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?", re.ASCII
)


class _IntervalLoader(Loader):
    """interval as timedelta when it is what copying a timedelta stores, else `IntervalText`."""

    def load(self, data: Buffer) -> timedelta | IntervalText:
        text = bytes(data).decode()
        match = _DAYS_AND_TIME.fullmatch(text)
        if not text or match is None or (match[2] is not None and int(match[2]) >= 24):
            return IntervalText(text)
        days, hours, minutes, seconds, fraction = match.groups()
        return timedelta(
            days=int(days or 0),
            hours=int(hours or 0),
            minutes=int(minutes or 0),
            seconds=int(seconds or 0),
            microseconds=int((fraction or "0").ljust(6, "0")),
        )


class _JsonText(Loader):
    """json and jsonb as their text: parsed, a number became a double (1.00000000000000001
    read as 1.0) and a dict no MariaDB archive can take; the text is what a copy writes."""

    def load(self, data: Buffer) -> str:
        return bytes(data).decode()


class PostgresSession(Session):
    """A psycopg connection whose session runs in UTC with statement and lock timeouts."""

    dialect = POSTGRES

    def server_now(self) -> datetime:
        """`now()` of the server in UTC."""
        ((value,),) = self.query("SELECT now() AT TIME ZONE 'UTC'")
        self.commit()
        if not isinstance(value, datetime):
            raise PurgeError("DatabaseError", "the server returned no timestamp for its clock")
        return value.replace(tzinfo=UTC)

    def columns(self, table: TableName) -> tuple[Column, ...]:
        """Columns from information_schema (names as the catalogue stores them)."""
        rows = self.query(
            # A user-defined type is named (for a cast to it) only when the login may use its
            # schema: reading the column needs no such right, naming its type does.
            "SELECT column_name, data_type, datetime_precision, udt_schema, udt_name, "
            "data_type = 'USER-DEFINED' AND has_schema_privilege(udt_schema, 'USAGE'), "
            "CASE WHEN data_type = 'numeric' THEN numeric_precision END, numeric_scale, "
            "is_nullable <> 'NO' FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%s::text, current_schema()) AND table_name = %s "
            "ORDER BY ordinal_position",
            (
                self.dialect.name(table.schema) if table.schema else None,
                self.dialect.name(table.name),
            ),
        )
        self.commit()
        return tuple(
            Column(
                str(n),
                str(t),
                None if p is None else int(p),
                udt_schema=str(us) if usable else None,
                udt_name=str(un) if usable else None,
                digits=None if d is None else (int(d), int(sc or 0)),
                nullable=nullable is not False,
            )
            for n, t, p, us, un, usable, d, sc, nullable in rows
        )

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        """Unique, non-partial, non-expression indexes (the primary key is one)."""
        rows = self.query(
            "SELECT ARRAY(SELECT a.attname::text FROM unnest(i.indkey) AS k(n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n) "
            "FROM pg_index i WHERE i.indrelid = to_regclass(%s) AND i.indisunique "
            "AND i.indpred IS NULL AND i.indexprs IS NULL",
            (self.dialect.table(table),),
        )
        self.commit()
        return tuple(frozenset(cols) for (cols,) in rows)

    def read_only(self) -> bool:
        """A read-only transaction default, or a standby."""
        ((value,),) = self.query(
            "SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery()"
        )
        self.commit()
        return bool(value)


class _InfiniteAsText(Loader):
    """A date or timestamp loader that returns PostgreSQL's `infinity` and `-infinity` as
    their text, which no Python date can hold (psycopg's own loaders raise DataError and
    the statement failed "SQLSTATE unknown"), as PyMySQL returns a MariaDB zero date; every
    other value goes to psycopg's loader for the type. A trigger read back as text names
    no instant (errors.instant_or_refused; subjects' `Located.trigger`); any other column
    is exported as the server shows it."""

    inner: type[Loader]

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._inner = self.inner(oid, context)

    def load(self, data: Buffer) -> Any:
        if data[-8:] == b"infinity":  # 'infinity' or '-infinity': no date ends so
            return bytes(data).decode()
        return self._inner.load(data)


def _read_infinities(connection: psycopg.Connection[Any]) -> None:
    """Register `_InfiniteAsText` for date, timestamp and timestamptz (text results)."""
    adapters = connection.adapters
    for name in ("date", "timestamp", "timestamptz"):
        info = adapters.types[name]
        inner = adapters.get_loader(info.oid, Format.TEXT)
        if inner is None or issubclass(inner, _InfiniteAsText):
            continue
        loader = type(f"InfiniteAsText_{name}", (_InfiniteAsText,), {"inner": inner})
        adapters.register_loader(info.oid, loader)


def classifier(role: str, database: Database) -> Classifier:
    """Map psycopg exceptions to PurgeError, keeping only the SQLSTATE."""
    where = f"the {role} database {database.host}:{database.port}/{database.name}"
    unavailable, read_only, _ = error_categories(role)

    def classify(exc: BaseException) -> PurgeError:
        if isinstance(exc, PurgeError):
            return exc
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == "57014":
            return PurgeError("Timeout", f"a statement on {where} hit the statement timeout")
        if sqlstate == "23505":
            return DuplicateKey(f"{where} reported a duplicate key (SQLSTATE 23505)")
        if sqlstate == "55P03":
            return LockTimeout(f"a batch on {where} waited past the lock timeout")
        if sqlstate == "25006":
            return PurgeError(read_only, f"{where} is read-only (SQLSTATE 25006)")
        if sqlstate == "42501":
            return PurgeError(
                "PermissionDenied", f"the login lacks a privilege on {where} (SQLSTATE 42501)"
            )
        if isinstance(exc, psycopg.OperationalError) and (
            sqlstate is None or sqlstate.startswith("08")
        ):
            return PurgeError(unavailable, f"lost or could not open the connection to {where}")
        return PurgeError("DatabaseError", f"{where} reported SQLSTATE {sqlstate or 'unknown'}")

    return classify


def connect(
    database: Database, credentials: Credentials, role: str, timeouts: Timeouts
) -> PostgresSession:
    """Open a session as `credentials` with the store's TLS mode, UTC and the timeouts."""
    classify = classifier(role, database)
    where = f"the {role} database {database.host}:{database.port}/{database.name}"
    unavailable, _, refused = error_categories(role)
    try:
        connection = psycopg.connect(
            host=database.host,
            port=database.port,
            dbname=database.name,
            user=credentials.username,
            password=credentials.password,
            sslmode=_SSLMODE[database.tls],
            connect_timeout=timeouts.connect,
            application_name="dataward-purge",
        )
    except psycopg.Error as exc:
        # The driver's text can name the user; only its gist is kept.
        if "authentication failed" in str(exc) or getattr(exc, "sqlstate", None) == "28P01":
            raise PurgeError(
                refused, f"{where} refused the login from the credentials Secret"
            ) from None
        raise PurgeError(unavailable, f"could not connect to {where}") from None
    _read_infinities(connection)
    connection.adapters.register_loader("interval", _IntervalLoader)
    connection.adapters.register_loader("json", _JsonText)
    connection.adapters.register_loader("jsonb", _JsonText)
    session = PostgresSession(connection, role, classify)
    session.database_name = database.name
    session.execute("SET TIME ZONE 'UTC'")
    session.query(
        "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)",
        (f"{int(timeouts.statement * 1000)}ms", f"{int(timeouts.lock * 1000)}ms"),
    )
    session.commit()
    return session
