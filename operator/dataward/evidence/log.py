"""`EvidenceLog`: the one call the operator makes to record evidence.

    from dataward.evidence import EvidenceLog, settings_from_environ

    settings = settings_from_environ(os.environ)     # None: no evidence database configured
    log = EvidenceLog.from_settings(settings)
    log.append("purge.run", "crm/support-inquiries", {"result": "Succeeded", "dryRun": False,
               "rowsDeleted": 12, "tables": [{"table": "support_inquiries", "rowsDeleted": 12}]})
    log.append("purge.run", "crm/support-inquiries", purge_run_payload(result_json))
    log.close()

`append` validates the payload against the kind's allow-list (EvidenceError, nothing written,
when it does not fit), then appends one signed record in one transaction and returns it. It is
safe to call from several threads (one lock per log) and from several processes or replicas
(they queue on the head row). It never retries on its own: after an error the record may or
may not have been committed (a lost connection after COMMIT), and the caller decides; the next
call reconnects.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dataward.evidence import payloads
from dataward.evidence.chain import next_record, signed_by
from dataward.evidence.config import EvidenceSettings
from dataward.evidence.records import Record
from dataward.evidence.signing import load_private_key
from dataward.evidence.store import EvidenceStore, connect
from dataward.model.store import Database
from dataward.purge.credentials import Credentials
from dataward.purge.sql import Session

_log = logging.getLogger("dataward.evidence")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EvidenceLog:
    """An append-only, hash-chained, signed log in the evidence database."""

    def __init__(
        self,
        connect_session: Callable[[], Session],
        key: Ed25519PrivateKey,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._connect = connect_session
        self._key = key
        self._clock = clock
        self._store: EvidenceStore | None = None
        self._lock = threading.Lock()
        # Appends that failed since the last that succeeded: (the first's time, how many).
        self._outage: tuple[datetime, int] | None = None
        self._failed_total = 0  # every append that failed since the start

    @classmethod
    def open(
        cls,
        database: Database,
        credentials: Credentials,
        key: Ed25519PrivateKey,
        *,
        clock: Callable[[], datetime] = _utc_now,
        create_schema: bool = False,
        ca_file: Path | None = None,
    ) -> EvidenceLog:
        """Connect to the evidence database; create its tables first when `create_schema`."""
        log = cls(lambda: connect(database, credentials, ca_file=ca_file), key, clock=clock)
        store = log._session_store()
        if create_schema:
            store.ensure_schema()
        return log

    @classmethod
    def from_settings(
        cls, settings: EvidenceSettings, *, clock: Callable[[], datetime] = _utc_now
    ) -> EvidenceLog:
        """Open the log the environment configures (`config.settings_from_environ`)."""
        key = load_private_key(settings.signing_key)
        return cls.open(settings.database, settings.credentials, key, clock=clock)

    def _session_store(self) -> EvidenceStore:
        if self._store is None:
            self._store = EvidenceStore(self._connect())
        return self._store

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> Record:
        """Validate, then append one signed record; return it as stored.

        A failed append (the database down, a payload refused) is counted, and the next
        append that goes through is preceded by an `evidence.outage` record of them: the
        callers go on without their records (nothing the controls do waits on evidence), so
        the log says itself where it may be incomplete. Kept in memory: an operator stopped
        during an outage does not record it."""
        with self._lock:
            try:
                clean = payloads.validate(kind, subject, payload)
                store = self._session_store()
            except BaseException:
                self._note_failure()
                raise
            try:
                if self._outage is not None:
                    since, failed = self._outage
                    gap = payloads.validate(payloads.OUTAGE_KIND, payloads.OUTAGE_SUBJECT, {
                        "from": since, "to": self._clock(), "failedAppends": failed})  # fmt: skip
                    store.append(lambda head: next_record(
                        head, self._clock(), payloads.OUTAGE_KIND, payloads.OUTAGE_SUBJECT, gap,
                        self._key))  # fmt: skip
                    self._outage = None
                # The time is read after the head is locked, so records are in time order
                # as far as the writers' clocks agree.
                return store.append(
                    lambda head: next_record(head, self._clock(), kind, subject, clean, self._key)
                )
            except BaseException:
                # The session may be broken; the next append opens a fresh one.
                store.session.close()
                self._store = None
                self._note_failure()
                raise

    def _note_failure(self) -> None:
        """Count a failed append (under the lock)."""
        since, failed = self._outage or (self._clock(), 0)
        self._outage = (since, failed + 1)
        self._failed_total += 1

    def failures(self) -> tuple[int, int]:
        """(appends that failed since the start, those no `evidence.outage` record holds
        yet): what /metrics shows, since the in-memory count is lost with the process.

        Without the lock: an append holds it while it waits on the database (seconds), and a
        scrape must not wait with it; each field is one atomic read."""
        outage = self._outage
        return self._failed_total, outage[1] if outage else 0

    def latest(self, kind: str, limit: int) -> list[Record]:
        """The last `limit` records of `kind` this log's key signed, newest first.

        The chain is not walked (a cursor, no proof of completeness), but each record's hash
        and signature are checked: the database login can insert rows, and a row it made up
        (an `access.read` dated years ahead) must not steer what the operator records next.
        A record signed by an earlier key is left out too (the caller then redoes work: safe).
        """
        with self._lock:
            store = self._session_store()
            try:
                records = store.latest(kind, limit)
            except BaseException:
                store.session.close()
                self._store = None
                raise
        public = self._key.public_key()
        kept = [record for record in records if signed_by(record, public)]
        if len(kept) != len(records):
            _log.warning(
                "evidence: %d %s record(s) not signed by this operator's key ignored "
                "(run `dataward evidence verify`)",
                len(records) - len(kept),
                kind,
            )
        return kept

    def close(self) -> None:
        """Close the connection (appends after this reconnect)."""
        with self._lock:
            if self._store is not None:
                self._store.session.close()
                self._store = None

    def __enter__(self) -> EvidenceLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
