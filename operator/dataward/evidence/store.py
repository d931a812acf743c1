"""The evidence log's tables, through the purge's database sessions (psycopg, PyMySQL).

Two tables in the evidence database:
- `dataward_evidence`: one row per record, primary key `seq`;
- `dataward_evidence_head`: one row (id 1) holding the last appended sequence number and hash.

An append is one transaction: lock the head row (`SELECT ... FOR UPDATE`), build the next
record from it, insert the record, move the head, commit. Writers queue on the head row, so
two of them can never both extend the same record; the primary key on `seq` is a second lock
should anything bypass the head. The head also lets verification notice records cut off the
end of the chain.

Least privilege for the operator's login: INSERT and SELECT on `dataward_evidence`, SELECT and
UPDATE on `dataward_evidence_head` (after an administrator created both with `ensure_schema`,
e.g. by `dataward evidence init`). With no UPDATE or DELETE on the records, the operator cannot
rewrite history even when compromised; it still can append.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from dataward.evidence.chain import Head
from dataward.evidence.errors import EvidenceError
from dataward.evidence.records import GENESIS_HASH, Record, canonical_json, parse_payload
from dataward.model.store import Database
from dataward.purge.credentials import Credentials, Timeouts
from dataward.purge.errors import PurgeError
from dataward.purge.sql import Session, TableName

RECORDS_TABLE = "dataward_evidence"
HEAD_TABLE = "dataward_evidence_head"
ROLE = "evidence"
# Appends wait for each other on the head row; a few seconds is plenty for one insert.
TIMEOUTS = Timeouts(statement=30.0, lock=10.0, connect=10)
# MariaDB's TEXT holds 65535 bytes; payloads are small by design.
MAX_PAYLOAD = 60000
_COLUMNS = "seq, recorded_at, kind, subject, payload, prev_hash, hash, key_id, signature"


def connect(
    database: Database,
    credentials: Credentials,
    *,
    timeouts: Timeouts = TIMEOUTS,
    ca_file: Path | None = None,
) -> Session:
    """A session on the evidence database (the purge's drivers, role `evidence`).

    The drivers are imported here, on the first connection: `dataward run` imports this
    module, and psycopg alone took about 0.2 s of every operator start (issue 11's restart).
    """
    from dataward.purge import mysql, postgres

    try:
        if database.engine == "postgresql":
            return postgres.connect(database, credentials, ROLE, timeouts)
        return mysql.connect(database, credentials, ROLE, timeouts, ca_file)
    except PurgeError as error:
        raise EvidenceError(error.message) from None


def _schema(engine: str) -> tuple[str, ...]:
    suffix = " ENGINE=InnoDB" if engine == "mysql" else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {RECORDS_TABLE} ("
        "seq BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0), "
        "recorded_at VARCHAR(32) NOT NULL, kind VARCHAR(64) NOT NULL, "
        "subject VARCHAR(320) NOT NULL, payload TEXT NOT NULL, "
        "prev_hash CHAR(64) NOT NULL, hash CHAR(64) NOT NULL, key_id CHAR(16) NOT NULL, "
        f"signature VARCHAR(128) NOT NULL){suffix}",
        f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} ("
        "id SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, "
        f"hash CHAR(64) NOT NULL){suffix}",
        f"INSERT INTO {HEAD_TABLE} (id, seq, hash) VALUES (1, 0, %s) "
        + (
            "ON CONFLICT (id) DO NOTHING"
            if engine == "postgresql"
            else "ON DUPLICATE KEY UPDATE id = id"
        ),
    )


def _record(row: tuple[object, ...]) -> Record:
    seq, time, kind, subject, payload, prev_hash, record_hash, signer, signature = row
    text = str(payload)
    try:
        parsed = parse_payload(text)
        canonical = canonical_json(parsed) == text
    except EvidenceError:
        canonical = False
    if not canonical:
        # Dataward stores payloads only in canonical form: any other text was edited. This
        # stand-in can never hash like the original, so the hash check names the record.
        parsed = {"__stored_payload_not_canonical__": text}
    return Record(
        seq=int(str(seq)),
        time=str(time),
        kind=str(kind),
        subject=str(subject),
        payload=parsed,
        prev_hash=str(prev_hash),
        key_id=str(signer),
        hash=str(record_hash),
        signature=str(signature),
    )


class EvidenceStore:
    """The evidence tables behind one session; every method commits or rolls back."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._snapshot = False

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read the head and the records as of one instant (one REPEATABLE READ transaction).

        Without it, a record appended between reading the records and reading the head would
        look like records cut off the end of a live log.
        """
        try:
            self.session.commit()  # the isolation level is set before the transaction starts
            self.session.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        except PurgeError as error:
            raise EvidenceError(f"could not start a consistent read: {error.message}") from None
        self._snapshot = True
        try:
            yield
        finally:
            self._snapshot = False
            self.session.rollback()  # read only: nothing to keep

    def _end_read(self) -> None:
        if not self._snapshot:
            self.session.commit()

    def ensure_schema(self) -> None:
        """Create the tables and the head row when missing; a no-op when they exist."""
        statements = _schema(self.session.dialect.engine)
        try:
            for statement in statements[:-1]:
                self.session.execute(statement)
            self.session.execute(statements[-1], (GENESIS_HASH,))
            self.session.commit()
        except PurgeError as error:
            self.session.rollback()
            raise EvidenceError(f"could not create the evidence tables: {error.message}") from None

    def has_schema(self) -> bool:
        """True when both evidence tables exist."""
        try:
            return all(
                self.session.columns(TableName(None, table))
                for table in (RECORDS_TABLE, HEAD_TABLE)
            )
        except PurgeError as error:
            raise EvidenceError(f"could not read the catalogue: {error.message}") from None

    def append(self, build: Callable[[Head], Record]) -> Record:
        """Lock the head, insert `build(head)`, move the head, commit; return the record."""
        session = self.session
        try:
            rows = session.query(f"SELECT seq, hash FROM {HEAD_TABLE} WHERE id = 1 FOR UPDATE")
            if not rows:
                raise EvidenceError(
                    f"the evidence head row is missing: the table {HEAD_TABLE} was emptied "
                    "(run `dataward evidence verify`)"
                )
            ((seq, head_hash),) = rows
            head = Head(int(seq), str(head_hash))
            record = build(head)
            if record.seq != head.seq + 1 or record.prev_hash != head.hash:
                raise EvidenceError("internal: the record does not extend the locked head")
            payload = canonical_json(record.payload)
            if len(payload) > MAX_PAYLOAD:
                raise EvidenceError(f"the payload is over {MAX_PAYLOAD} characters")
            session.execute(
                f"INSERT INTO {RECORDS_TABLE} ({_COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.seq, record.time, record.kind, record.subject, payload,
                    record.prev_hash, record.hash, record.key_id, record.signature,
                ),
            )  # fmt: skip
            moved = session.execute(
                f"UPDATE {HEAD_TABLE} SET seq = %s, hash = %s WHERE id = 1 AND seq = %s",
                (record.seq, record.hash, head.seq),
            )
            if moved != 1:
                raise EvidenceError("the evidence head moved while it was locked")
            session.commit()
            return record
        except PurgeError as error:
            session.rollback()
            raise EvidenceError(f"could not append to the evidence log: {error.message}") from None
        except BaseException:
            session.rollback()
            raise

    def head(self) -> Head | None:
        """The stored head; None when the head row is gone."""
        try:
            rows = self.session.query(f"SELECT seq, hash FROM {HEAD_TABLE} WHERE id = 1")
            self._end_read()
        except PurgeError as error:
            raise EvidenceError(f"could not read the evidence head: {error.message}") from None
        if not rows:
            return None
        ((seq, head_hash),) = rows
        return Head(int(seq), str(head_hash))

    def latest(self, kind: str, limit: int) -> list[Record]:
        """The last `limit` records of `kind`, newest first (not verified: a cursor, no proof)."""
        try:
            rows = self.session.query(
                f"SELECT {_COLUMNS} FROM {RECORDS_TABLE} WHERE kind = %s "
                "ORDER BY seq DESC LIMIT %s",
                (kind, limit),
            )
            self._end_read()
        except PurgeError as error:
            raise EvidenceError(f"could not read the evidence records: {error.message}") from None
        return [_record(row) for row in rows]

    def records(self, page: int = 1000) -> Iterator[Record]:
        """Every record in sequence order (a repeated `seq`, if any, is read too)."""
        last = (0, "")
        while True:
            try:
                rows = self.session.query(
                    f"SELECT {_COLUMNS} FROM {RECORDS_TABLE} "
                    "WHERE seq > %s OR (seq = %s AND hash > %s) ORDER BY seq, hash LIMIT %s",
                    (last[0], last[0], last[1], page),
                )
                self._end_read()
            except PurgeError as error:
                raise EvidenceError(
                    f"could not read the evidence records: {error.message}"
                ) from None
            for row in rows:
                yield _record(row)
            if len(rows) < page:
                return
            last = (int(str(rows[-1][0])), str(rows[-1][6]))
