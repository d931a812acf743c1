"""MySQL and MariaDB through PyMySQL: connect with TLS, a UTC session, timeouts; introspect."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql

from dataward.model.store import Database
from dataward.purge.credentials import Credentials, Timeouts
from dataward.purge.errors import DuplicateKey, LockTimeout, PurgeError
from dataward.purge.sql import (
    MYSQL,
    Classifier,
    Column,
    Index,
    Session,
    TableName,
    TableStatements,
    error_categories,
)

_AUTH = {1045, 1698}
_CONNECTION = {2002, 2003, 2005, 2006, 2013, 2055}
_READ_ONLY = {1290, 1836, 1792, 1207}
_TIMEOUT = {3024, 1969, 1317}
_DENIED = {1044, 1142, 1143, 1227}


class MySQLSession(Session):
    """A PyMySQL connection whose session runs at `+00:00`, READ COMMITTED, with timeouts."""

    dialect = MYSQL
    max_parameters = 20000
    max_packet = 1 << 20  # the server's max_allowed_packet, read by `connect`
    # MariaDB, not MySQL: `SET STATEMENT ... FOR` (sql.NO_WAIT) exists; read by `connect`.
    mariadb = False

    def execute_bytes(self, sql: bytes) -> int:
        """Run one statement given as bytes, with no parameters (so a `%` in a literal is
        data, not a placeholder); return the rows it affected."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, None)
                return int(cursor.rowcount)
        except Exception as exc:
            raise self._classify(exc) from None

    def count_bytes(self, sql: bytes) -> int:
        """The one integer a statement given as bytes returns (no parameters)."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, None)
                ((value,),) = cursor.fetchall()
                return int(value)
        except Exception as exc:
            raise self._classify(exc) from None

    def estimated_rows(self, sql: str, params: Sequence[Any]) -> int:
        """The `rows` column of an EXPLAIN (the optimiser's estimate; 0 when it gives none)."""
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                names = [d[0].lower() for d in cursor.description or ()]
                rows = cursor.fetchall()
        except Exception as exc:
            raise self._classify(exc) from None
        if "rows" not in names or not rows:
            return 0
        value = rows[0][names.index("rows")]
        return int(value) if value is not None else 0

    def server_now(self) -> datetime:
        """`UTC_TIMESTAMP(6)` of the server."""
        ((value,),) = self.query("SELECT UTC_TIMESTAMP(6)")
        self.commit()
        if not isinstance(value, datetime):
            raise PurgeError("DatabaseError", "the server returned no timestamp for its clock")
        return value.replace(tzinfo=UTC)

    def _schema(self, table: TableName) -> tuple[str | None, str]:
        return table.schema, table.name

    def columns(self, table: TableName) -> tuple[Column, ...]:
        """Columns from information_schema."""
        rows = self.query(
            "SELECT COLUMN_NAME, DATA_TYPE, DATETIME_PRECISION, CHARACTER_SET_NAME, "
            "NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_OCTET_LENGTH, IS_NULLABLE "
            "FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
            "ORDER BY ORDINAL_POSITION",
            self._schema(table),
        )
        self.commit()
        return tuple(
            Column(
                str(n),
                str(t),
                None if p is None else int(p),
                charset=None if c is None else str(c),
                digits=None if d is None else (int(d), int(s or 0)),
                octets=None if o is None else int(o),
                nullable=str(nullable) != "NO",
            )
            for n, t, p, c, d, s, o, nullable in rows
        )

    def unique_keys(self, table: TableName) -> tuple[frozenset[str], ...]:
        """Unique indexes over whole columns (a prefix index does not make a column unique)."""
        rows = self.query(
            "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
            "AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            self._schema(table),
        )
        self.commit()
        indexes: dict[str, set[str]] = {}
        partial: set[str] = set()
        for index, column, sub_part in rows:
            indexes.setdefault(str(index), set()).add(str(column))
            if sub_part is not None:
                partial.add(str(index))
        return tuple(frozenset(c) for name, c in indexes.items() if name not in partial)

    def indexes(self, table: TableName) -> tuple[Index, ...]:
        """Every index of the table: name, columns in order, unique or not."""
        rows = self.query(
            "SELECT INDEX_NAME, COLUMN_NAME, NON_UNIQUE, SUB_PART "
            "FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
            "ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            self._schema(table),
        )
        self.commit()
        columns: dict[str, list[str]] = {}
        unique: dict[str, bool] = {}
        for index, column, non_unique, sub_part in rows:
            columns.setdefault(str(index), []).append(str(column))
            # A prefix index does not make a column unique.
            whole = not int(non_unique) and sub_part is None
            unique[str(index)] = unique.get(str(index), True) and whole
        return tuple(Index(name, tuple(cols), unique[name]) for name, cols in columns.items())

    def table_engine(self, table: TableName) -> str | None:
        """The storage engine of a table (information_schema.TABLES; None when this login
        cannot see it, or for a view)."""
        rows = self.query(
            "SELECT ENGINE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s",
            self._schema(table),
        )
        self.commit()
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def allowed(self, sql: str, params: Sequence[Any]) -> bool:
        """Whether this login may run a statement: the server's own privilege check of it by
        EXPLAIN, which runs nothing (no row is read, locked or written). False when the
        server refuses it, for a privilege or anything else (unknown is not allowed: the
        caller then keeps today's way, which meets real trouble itself)."""
        try:
            self.query("EXPLAIN " + sql, params)
        except PurgeError:
            self.rollback()
            return False
        self.commit()
        return True

    def read_only(self) -> bool:
        """The server's `read_only` or `innodb_read_only`."""
        ((read_only, innodb),) = self.query("SELECT @@global.read_only, @@global.innodb_read_only")
        self.commit()
        return bool(int(read_only)) or bool(int(innodb))


def same_server(live: Session, archive: Session) -> bool:
    """Whether two MySQL sessions are connections to one server process: the archive session
    takes a user-level lock of a random name and the live session sees it held by that very
    connection (user-level locks are server-wide and need no privilege; nothing is written).
    Host names, ports and DSNs are not compared: two servers can share them (a pod name in two
    namespaces, a proxy). False when either cannot tell (an error, a cluster without
    GET_LOCK)."""
    if not (isinstance(live, MySQLSession) and isinstance(archive, MySQLSession)):
        return False
    name = f"dataward-same-server-{secrets.token_hex(16)}"
    try:
        ((got, connection),) = archive.query("SELECT GET_LOCK(%s, 0), CONNECTION_ID()", (name,))
        try:
            ((holder,),) = live.query("SELECT IS_USED_LOCK(%s)", (name,))
        finally:
            archive.query("SELECT RELEASE_LOCK(%s)", (name,))
        live.commit()
        archive.commit()
    except PurgeError:
        live.rollback()
        archive.rollback()
        return False
    return got == 1 and holder is not None and int(holder) == int(connection)


def classifier(role: str, database: Database) -> Classifier:
    """Map PyMySQL exceptions to PurgeError, keeping only the error number."""
    where = f"the {role} database {database.host}:{database.port}/{database.name}"
    unavailable, read_only, _ = error_categories(role)

    def classify(exc: BaseException) -> PurgeError:
        if isinstance(exc, PurgeError):
            return exc
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _TIMEOUT:
            return PurgeError("Timeout", f"a statement on {where} hit the statement timeout")
        if code == 1062:
            return DuplicateKey(f"{where} reported a duplicate key (error 1062)")
        if code == 1205:
            return LockTimeout(f"a batch on {where} waited past the lock timeout")
        if code in _READ_ONLY:
            return PurgeError(read_only, f"{where} is read-only (error {code})")
        if code in _DENIED:
            return PurgeError(
                "PermissionDenied", f"the login lacks a privilege on {where} (error {code})"
            )
        if code in _CONNECTION or isinstance(exc, pymysql.err.InterfaceError | OSError):
            return PurgeError(unavailable, f"lost or could not open the connection to {where}")
        return PurgeError("DatabaseError", f"{where} reported error {code or 'unknown'}")

    return classify


def _tls(database: Database, ca_file: Path | None) -> dict[str, Any]:
    if database.tls == "disable":
        return {"ssl_disabled": True}
    if database.tls == "require":
        # Encrypted but unverified, like libpq's sslmode=require.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return {"ssl": context}
    return {"ssl": ssl.create_default_context(cafile=str(ca_file) if ca_file else None)}


def connect(
    database: Database,
    credentials: Credentials,
    role: str,
    timeouts: Timeouts,
    ca_file: Path | None = None,
) -> MySQLSession:
    """Open a session as `credentials` with the store's TLS mode, UTC and the timeouts."""
    classify = classifier(role, database)
    where = f"the {role} database {database.host}:{database.port}/{database.name}"
    unavailable, _, refused = error_categories(role)
    try:
        connection = pymysql.connect(
            host=database.host,
            port=database.port,
            database=database.name,
            user=credentials.username,
            password=credentials.password,
            connect_timeout=timeouts.connect,
            read_timeout=int(timeouts.statement) + 30,
            write_timeout=int(timeouts.statement) + 30,
            autocommit=False,
            charset="utf8mb4",
            **_tls(database, ca_file),
        )
    except Exception as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _AUTH:
            raise PurgeError(
                refused, f"{where} refused the login from the credentials Secret"
            ) from None
        raise PurgeError(unavailable, f"could not connect to {where}") from None
    session = MySQLSession(connection, role, classify)
    session.database_name = database.name
    ((version, packet),) = session.query("SELECT VERSION(), @@max_allowed_packet")
    session.max_packet = int(packet)
    # TIMESTAMP columns are shown in the session's zone: pin it so comparisons are in UTC.
    session.execute("SET SESSION time_zone = '+00:00'")
    # READ COMMITTED: FOR UPDATE locks the selected rows only, no gap locks that block inserts.
    session.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    # Whole seconds only: a lock timeout under one second becomes 0, InnoDB's "do not wait".
    session.execute("SET SESSION innodb_lock_wait_timeout = %s", (max(0, int(timeouts.lock)),))
    session.execute(
        "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES')"
    )
    # Literals with backslash escapes (sql.literal_sql, PyMySQL's own) must mean what they say.
    session.execute(
        "SET SESSION sql_mode = TRIM(BOTH ',' FROM "
        "REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))"
    )
    # A statutory batch's literals come back as two GROUP_CONCATs in one row, one packet.
    session.execute("SET SESSION group_concat_max_len = %s", (session.max_packet // 2,))
    session.mariadb = "mariadb" in str(version).lower()
    if session.mariadb:
        session.execute("SET SESSION max_statement_time = %s", (float(timeouts.statement),))
    else:
        session.execute("SET SESSION max_execution_time = %s", (int(timeouts.statement * 1000),))
    session.commit()
    return session


# ------------------------------------------------------------ statutory copy as literals


def packets(
    head: bytes, items: Sequence[bytes], separator: bytes, tail: bytes, limit: int
) -> Iterator[bytes]:
    """`items` joined into statements `head + items + tail` of at most `limit` bytes each
    (one item alone may be longer: the server then refuses it)."""
    room = limit - len(head) - len(tail) - 1024
    start, size = 0, 0
    for i, item in enumerate(items):
        grown = size + len(item) + len(separator)
        if i > start and grown > room:
            yield head + separator.join(items[start:i]) + tail
            start, size = i, len(item)
        else:
            size = grown
    if start < len(items):
        yield head + separator.join(items[start:]) + tail


def insert_literals(
    archive: Session, statements: TableStatements, columns: Sequence[str], rows: Sequence[bytes]
) -> int:
    """INSERT row tuples written by `TableStatements.lock_literals` (plain INSERTs, each
    within the server's packet limit); the rows inserted."""
    assert isinstance(archive, MySQLSession)
    head = statements.insert_literals(columns)
    return sum(
        archive.execute_bytes(sql) for sql in packets(head, rows, b",", b"", archive.max_packet)
    )


def count_literal_keys(
    archive: Session, statements: TableStatements, index: str, keys: Sequence[bytes]
) -> int:
    """How many of the keys written by `TableStatements.lock_literals` the table holds."""
    assert isinstance(archive, MySQLSession)
    head, separator, tail = statements.count_literal_keys(index)
    return sum(
        archive.count_bytes(sql) for sql in packets(head, keys, separator, tail, archive.max_packet)
    )
