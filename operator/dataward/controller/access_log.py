"""Follow the API server's audit log and append each read of a store's Secrets to evidence.

`dataward run --audit-log PATH` (the file kube-apiserver writes with `--audit-log-path`,
mounted into the operator's pod read-only). One thread, started while this replica leads:

1. resume: read the last `access.read` records of the evidence chain (`access.Cursor`), so a
   restart neither duplicates nor misses a read;
2. read the rotated files (`audit-<time>.log` next to PATH) changed since then, then follow
   PATH itself by inode and offset: when the API server rotates it, the rest of the old file
   is read before the new one, and a truncated file is read again from its start;
3. for each line, `access.parse_audit_line` and `AccessTargets.stores_read` decide which
   stores it concerns; one `access.read` record per store is appended. An append that fails
   is retried (from that very event) until it succeeds.

It also answers the reconciler's canary (`checks.access_records`): each reconcile notes its
read of the key ring; when the audit event of that read is appended the store is queued again,
and when it has not arrived within the grace period, too (it becomes AccessRecorded=False).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

from dataward.checks.access_records import CLOCK_SKEW, AccessCanary
from dataward.evidence.access import (
    ACCESS_KIND,
    AccessTargets,
    AuditRead,
    Cursor,
    access_payload,
    advance,
    already_ingested,
    parse_audit_line,
    resume_cursor,
)
from dataward.evidence.errors import EvidenceError
from dataward.evidence.payloads import validate
from dataward.model.store import Store

log = logging.getLogger("dataward.access_log")

StoreKey = tuple[str, str]
# How many of the newest access.read records the cursor is built from on start.
RESUME_RECORDS = 5000


class AccessSink(Protocol):
    """What the follower needs of the evidence log."""

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> Any:
        """Append one record."""
        ...

    def latest(self, kind: str, limit: int) -> list[Any]:
        """The newest records of `kind` (objects with `subject` and `payload`)."""
        ...


def _wall() -> datetime:
    return datetime.now(UTC)


class LogFile:
    """One file followed by inode and offset; yields complete lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._inode: int | None = None
        self._opened: datetime | None = None
        self._partial = b""

    def _drain(self) -> list[bytes]:
        assert self._handle is not None
        data = self._partial + self._handle.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line for line in lines if line.strip()]

    def read_lines(self) -> list[bytes]:
        """The lines written since the last call.

        OSError when the file, or the directory of its rotated files, cannot be read: then
        nothing is taken as read, and the next call reads the same lines again."""
        self.open()
        assert self._handle is not None
        mark = (self._handle.tell(), self._partial)
        try:
            return self._read_on()
        except OSError:
            if self._handle is not None:
                self._handle.seek(mark[0])
                self._partial = mark[1]
            raise

    def _read_on(self) -> list[bytes]:
        assert self._handle is not None
        lines = self._drain()
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return lines  # between the rename and the new file: keep the old one
        if current.st_ino != self._inode:
            lines += self._drain()  # what was written before the rename
            lines += self._rotated_after(self._inode)
            self.close()
            with contextlib.suppress(OSError):  # else the next call opens it from its start
                lines += self.read_lines()
            return lines
        if current.st_size < self._handle.tell():
            self._handle.seek(0)  # truncated (copytruncate): read it again from the start
            self._partial = b""
        return lines

    def open(self) -> None:
        """Open the path (from its start) if not open yet (OSError when it cannot be)."""
        if self._handle is None:
            self._handle = self.path.open("rb")
            self._inode = os.fstat(self._handle.fileno()).st_ino
            self._opened = _wall()
            self._partial = b""

    def _rotated_after(self, inode: int | None) -> list[bytes]:
        """Every line of the files rotated after the one of `inode` (the file this one
        followed, renamed): more than one rotation between two reads (the reader held up by
        an evidence log that is down) leaves whole files that the path never shows again.
        When that file is gone too (the API server's retention), nothing tells where it was:
        the rotated files changed since it was opened are read (repeats are skipped by the
        cursor, `already_ingested`)."""
        files = rotated_files(self.path, None)
        inodes: list[int | None] = []
        for candidate in files:
            try:
                inodes.append(os.stat(candidate).st_ino)
            except OSError:
                inodes.append(None)
        if inode in inodes:
            after = files[inodes.index(inode) + 1 :]
        else:
            log.warning("audit log %s: the file followed was rotated away before it was "
                        "read to its end", self.path)  # fmt: skip
            after = rotated_files(self.path, self._opened)
        lines: list[bytes] = []
        for between in after:  # read as the backlog's files are (`AccessLogFollower._run`)
            rotated = LogFile(between)
            try:
                lines += rotated.read_lines()
            finally:
                rotated.close()
        return lines

    def skip(self) -> None:
        """Forget what is written so far: the next read starts at the file's end now."""
        self.close()
        self._handle = self.path.open("rb")
        self._inode = os.fstat(self._handle.fileno()).st_ino
        self._handle.seek(0, os.SEEK_END)
        self._partial = b""

    def close(self) -> None:
        """Close the file (the next read opens the path again)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def rotated_files(path: Path, since: datetime | None) -> list[Path]:
    """The API server's rotated files of `path` (`<stem>-<time><suffix>`) changed since `since`.

    In name order, which is their rotation order. OSError when the directory cannot be listed
    (never "no files": a file skipped so is a read never recorded).
    """
    stem, suffix = re.escape(path.stem), re.escape(path.suffix)
    pattern = re.compile(stem + r"-\d{4}-\d\d-\d\dT[\d.-]+" + suffix)
    candidates = sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))
    if since is None:
        return candidates
    recent = []
    for candidate in candidates:
        with contextlib.suppress(OSError):
            if datetime.fromtimestamp(candidate.stat().st_mtime, UTC) >= since:
                recent.append(candidate)
    return recent


@dataclass
class _Canary:
    """The canary of one Secret of one or more stores (a credentials Secret may be shared)."""

    stores: set[StoreKey]
    asked: datetime | None = None
    answered: datetime | None = None
    overdue_told: bool = False


class AccessLogFollower:
    """Reads the audit log into the evidence log; answers the AccessRecorded canary."""

    def __init__(
        self,
        path: Path,
        evidence: AccessSink,
        grace: timedelta = timedelta(minutes=10),
        poll_seconds: float = 1.0,
        wall: Callable[[], datetime] = _wall,
    ) -> None:
        self.path = path
        self.evidence = evidence
        self.grace = grace
        self.poll_seconds = poll_seconds
        self.wall = wall
        self._lock = threading.Lock()
        self._canaries: dict[tuple[str, str], _Canary] = {}
        self._log_error: str | None = None
        self._evidence_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stores: Callable[[], Iterable[Store]] = list
        self._on_change: Callable[[StoreKey], None] = lambda key: None
        self._cursor: Cursor | None = None

    # The reconciler's side.

    def note_read(self, namespace: str, secret: str, store: str) -> None:
        """The operator is about to read Secret `secret` of store `store` by name (the
        canary's question): its key ring, and each of its credentials Secrets."""
        with self._lock:
            state = self._canaries.setdefault((namespace, secret), _Canary(set()))
            state.stores.add((namespace, store))
            if state.asked is None:
                state.asked = self.wall()
                state.overdue_told = False

    def canary(self, namespace: str, secrets: list[str]) -> AccessCanary:
        """What is known of the reads of a store's `secrets` now: the oldest read of one of
        them not yet in the log (and which), and the newest answer of the Secret answered
        least recently, None while one of them has had none (and which): every Secret's
        reads must be audited, not only the ring's (an audit policy rendered before a
        credentials Secret was renamed, or an archive added, names the ring alone)."""
        with self._lock:
            states = [(name, self._canaries.get((namespace, name))) for name in secrets]
            asked = [(s.asked, name) for name, s in states if s is not None and s.asked]
            unanswered = [name for name, s in states if s is None or s.answered is None]
            answers = [s.answered for _, s in states if s is not None and s.answered]
            oldest = min(asked) if asked else None
            return AccessCanary(
                now=self.wall(),
                log_error=self._log_error,
                evidence_error=self._evidence_error,
                asked=oldest[0] if oldest else None,
                answered=None if unanswered else min(answers, default=None),
                secret=oldest[1] if oldest else (unanswered[0] if unanswered else None),
            )

    # The thread.

    def start(
        self,
        stores: Callable[[], Iterable[Store]],
        on_change: Callable[[StoreKey], None],
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        """Follow the log in a thread until `stop` (`stores`: the stores this replica serves)."""
        self._stores, self._on_change = stores, on_change
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="audit-log", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following (returns once the thread has ended)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self, ready: Callable[[], bool]) -> None:
        while not ready():
            if self._stop.wait(self.poll_seconds):
                return
        if not self._resume():
            return
        # The live file is opened first: a rotation while the backlog is read is then seen
        # by its inode, and the files rotated meanwhile are read (`LogFile.read_lines`); a
        # file read twice so has its records skipped by the cursor.
        live = LogFile(self.path)
        with contextlib.suppress(OSError):  # not there yet: read when it is
            live.open()
        backlog: list[LogFile] | None = None
        try:
            while not self._stop.is_set():
                if backlog is None:
                    backlog = self._backlog()
                if backlog is not None:
                    self._poll(backlog, live)
                self._tell_overdue()
                self._stop.wait(self.poll_seconds)
        finally:
            live.close()
            for old in backlog or []:
                old.close()

    def _backlog(self) -> list[LogFile] | None:
        """The rotated files to read before the live one (None, and the log's error told,
        while their directory cannot be listed)."""
        try:
            files = rotated_files(self.path, self._since())
        except OSError as error:
            self._set_log_error(error.strerror or type(error).__name__)
            return None
        return [LogFile(p) for p in files]

    def _since(self) -> datetime | None:
        return None if self._cursor is None else self._cursor.floor

    def _resume(self) -> bool:
        """Build the cursor from the chain; retry until it can be read or the thread stops.

        From the records of the namespaces this replica serves only: operators that shard
        the namespaces may share one evidence log, and another shard's newest record says
        nothing of how far this one got (taken for its own, the reads made here while this
        one was down were skipped). A shard whose records are not among the newest then has
        no cursor and records its backlog again: repeats, never a loss."""
        while True:
            try:
                served = {store.namespace for store in self._stores()}
            except Exception as error:  # the stores' cache not synced yet: not the evidence's
                log.info("access records: stores not listed yet (%s)", type(error).__name__)
                if self._stop.wait(self.poll_seconds * 5):
                    return False
                continue
            try:
                records = self.evidence.latest(ACCESS_KIND, RESUME_RECORDS)
                self._cursor = resume_cursor(
                    (r.subject, r.payload)
                    for r in reversed(records)
                    if r.subject.partition("/")[0] in served
                )
                self._set_evidence_error(None)
                return True
            except Exception as error:  # the evidence database down
                self._set_evidence_error(type(error).__name__)
                log.warning("access records: evidence log unreadable (%s)", type(error).__name__)
            if self._stop.wait(self.poll_seconds * 5):
                return False

    def _poll(self, backlog: list[LogFile], live: LogFile) -> None:
        try:
            # Before any line is read: the stores not listed (a cache relisting), the lines
            # wait in their files for the next poll.
            stores = list(self._stores())
        except Exception as error:
            log.info("access records: stores not listed (%s)", type(error).__name__)
            return
        try:
            while backlog:
                lines = backlog[0].read_lines()
                self._ingest(lines, stores)
                backlog.pop(0).close()
            lines = live.read_lines()
        except OSError as error:  # kept where it was: the next poll reads the same lines
            self._set_log_error(error.strerror or type(error).__name__)
            return
        self._set_log_error(None)
        self._ingest(lines, stores)

    def _ingest(self, lines: list[bytes], stores: list[Store]) -> None:
        if not lines:
            return
        targets = AccessTargets.of(stores)
        for line in lines:
            read = parse_audit_line(line)
            if read is None:
                continue
            read_stores = targets.stores_read(read)
            for namespace, name in read_stores:
                if not self._append(read, f"{namespace}/{name}"):
                    return
            if read.secret is not None and read_stores:
                self._answer(read)

    def _append(self, read: AuditRead, subject: str) -> bool:
        """Append the record of `read` for `subject` unless it is in; retry until it is."""
        if already_ingested(self._cursor, read, subject):
            return True
        payload = access_payload(read)
        try:
            validate(ACCESS_KIND, subject, payload)
        except EvidenceError:
            # Never block on one odd event: keep what always fits (the audit log has the rest).
            log.warning("access record for %s reduced to its audit ID (a field was refused)",
                        subject)
            payload = {k: payload[k] for k in ("auditID", "stageTimestamp", "verb")}
        while not self._stop.is_set():
            try:
                self.evidence.append(ACCESS_KIND, subject, payload)
            except Exception as error:  # the evidence database down, a payload refused
                log.warning(
                    "access record for %s not written (%s); retrying",
                    subject,
                    type(error).__name__,
                )
                self._set_evidence_error(type(error).__name__)
                self._tell_overdue()
                self._stop.wait(self.poll_seconds * 5)
                continue
            self._cursor = advance(self._cursor, read.audit_id, read.at, subject)
            self._set_evidence_error(None)
            return True
        return False

    def _answer(self, read: AuditRead) -> None:
        """A read of a store's Secret is in the log and the evidence log: the canary's
        answer."""
        at = read.at
        with self._lock:
            state = self._canaries.get((read.namespace, str(read.secret)))
            if state is None:
                return
            first = state.answered is None
            state.answered = at if first else max(at, state.answered or at)
            resolved = state.asked is not None and at >= state.asked - CLOCK_SKEW
            # Queue the stores only when their verdict may change (Unknown or False to True):
            # their reconcile reads the Secret again, and that read must not queue them once
            # more.
            changed = first or (resolved and state.overdue_told)
            if resolved:
                state.asked = None
            stores = sorted(state.stores)
        if changed:
            for store in stores:
                self._on_change(store)

    def _tell_overdue(self) -> None:
        """Queue each store whose canary just became overdue (it turns False)."""
        now = self.wall()
        due: list[StoreKey] = []
        with self._lock:
            for state in self._canaries.values():
                if state.asked is not None and not state.overdue_told and (
                    now - state.asked >= self.grace
                ):
                    state.overdue_told = True
                    due.extend(state.stores)
        for store in sorted(set(due)):
            self._on_change(store)

    def _set_log_error(self, error: str | None) -> None:
        with self._lock:
            changed = self._log_error != error
            self._log_error = error
        if changed:
            self._requeue_all()

    def _set_evidence_error(self, error: str | None) -> None:
        with self._lock:
            changed = self._evidence_error != error
            self._evidence_error = error
        if changed:
            self._requeue_all()

    def _requeue_all(self) -> None:
        with self._lock:
            stores = {store for state in self._canaries.values() for store in state.stores}
        for store in sorted(stores):
            self._on_change(store)
