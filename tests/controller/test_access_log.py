"""Following the audit log: rotation, restarts, a failing evidence log, and the canary."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dataward.checks.access_records import AccessCanary, access_recorded
from dataward.controller.access_log import AccessLogFollower, LogFile, rotated_files
from dataward.evidence.errors import EvidenceError
from dataward.evidence.payloads import validate
from tests.evidence.test_access import RING, the_store

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def line(audit_id: str, at: datetime, name: str = RING, verb: str = "get") -> str:
    return json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": audit_id, "stage": "ResponseComplete", "verb": verb,
        "user": {"username": "system:serviceaccount:dataward-system:dataward", "groups": []},
        "objectRef": {"resource": "secrets", "namespace": "crm", "name": name},
        "responseStatus": {"code": 200},
        "stageTimestamp": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }) + "\n"  # fmt: skip


@dataclass
class Stored:
    subject: str
    payload: Mapping[str, Any]


class Sink:
    """An evidence log in memory that validates like the real one and can be made to fail."""

    def __init__(self) -> None:
        self.records: list[Stored] = []
        self.failing = False
        self.appended = threading.Event()

    def append(self, kind: str, subject: str, payload: Mapping[str, Any]) -> Any:
        if self.failing:
            raise EvidenceError("could not append: connection refused")
        self.records.append(Stored(subject, validate(kind, subject, payload)))
        self.appended.set()
        return self.records[-1]

    def latest(self, kind: str, limit: int) -> list[Any]:
        if self.failing:
            raise EvidenceError("down")
        return list(reversed(self.records))[:limit]

    def ids(self) -> list[str]:
        return [str(r.payload["auditID"]) for r in self.records]


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def wait(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    while not condition():
        assert datetime.now(UTC) < deadline, "timed out"
        threading.Event().wait(0.02)


def follower(path: Path, sink: Sink, wall: Wall | None = None) -> AccessLogFollower:
    return AccessLogFollower(path, sink, GRACE, poll_seconds=0.02, wall=wall or Wall())


def test_a_log_file_yields_whole_lines_and_follows_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text('{"a":1}\n{"b":')
    followed = LogFile(path)
    assert followed.read_lines() == [b'{"a":1}']
    with path.open("a") as out:
        out.write("2}\n")
    assert followed.read_lines() == [b'{"b":2}']
    # Rotation: the old file gets one more line after our last read, then is renamed.
    with path.open("a") as out:
        out.write('{"c":3}\n')
    path.rename(tmp_path / "audit-2026-12-01T10-00-00.000.log")
    assert followed.read_lines() == [b'{"c":3}']  # the file is gone: the old one is drained
    path.write_text('{"d":4}\n')
    assert followed.read_lines() == [b'{"d":4}']
    # copytruncate (not what kube-apiserver does, it renames): same inode, shorter.
    with path.open("r+") as out:
        out.truncate(0)
    assert followed.read_lines() == []
    with path.open("a") as out:
        out.write('{"e":5}\n')
    assert followed.read_lines() == [b'{"e":5}']
    assert followed.read_lines() == []


def test_two_rotations_between_reads_lose_no_file(tmp_path: Path) -> None:
    # The follower was held up (an evidence log down: its appends retried) while the API
    # server rotated twice: the file in between was read by nobody.
    path = tmp_path / "audit.log"
    path.write_text('{"a":1}\n')
    followed = LogFile(path)
    assert followed.read_lines() == [b'{"a":1}']
    with path.open("a") as out:
        out.write('{"a":2}\n')
    path.rename(tmp_path / "audit-2026-12-01T10-00-00.000.log")
    path.write_text('{"b":1}\n')
    path.rename(tmp_path / "audit-2026-12-01T10-00-01.000.log")
    path.write_text('{"c":1}\n')
    assert followed.read_lines() == [b'{"a":2}', b'{"b":1}', b'{"c":1}']
    # And from there on as before.
    with path.open("a") as out:
        out.write('{"c":2}\n')
    assert followed.read_lines() == [b'{"c":2}']


class Listing:
    """A directory whose listing can be made to fail (an NFS hiccup, a lost permission)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        self.failing = False
        listing = Path.iterdir

        def iterdir(path: Path) -> Any:
            if self.failing and path == directory:
                raise PermissionError(13, "Permission denied")
            return listing(path)

        monkeypatch.setattr(Path, "iterdir", iterdir)


def test_a_rotation_whose_files_cannot_be_listed_is_read_again_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Red on the old code: the failed listing read as "no rotated files", so the file rotated
    # in between was skipped for good and the read returned as if complete.
    path, listing = tmp_path / "audit.log", Listing(monkeypatch, tmp_path)
    path.write_text('{"a":1}\n')
    followed = LogFile(path)
    assert followed.read_lines() == [b'{"a":1}']
    with path.open("a") as out:
        out.write('{"a":2}\n')
    path.rename(tmp_path / "audit-2026-12-01T10-00-00.000.log")
    path.write_text('{"b":1}\n')
    path.rename(tmp_path / "audit-2026-12-01T10-00-01.000.log")
    path.write_text('{"c":1}\n')
    listing.failing = True
    with pytest.raises(OSError):
        followed.read_lines()
    listing.failing = False
    assert followed.read_lines() == [b'{"a":2}', b'{"b":1}', b'{"c":1}']


def test_a_backlog_that_cannot_be_listed_at_start_is_unknown_then_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Red on the old code: the backlog listed as empty, its read never recorded, no error told.
    path, sink = tmp_path / "audit.log", Sink()
    (tmp_path / "audit-2026-12-01T10-00-00.000.log").write_text(line("r0", T0))
    path.write_text(line("r1", T0 + timedelta(seconds=1)))
    listing = Listing(monkeypatch, tmp_path)
    listing.failing = True
    f, crm = follower(path, sink), the_store()
    f.start(lambda: [crm], lambda key: None)
    try:
        wait(lambda: f.canary("crm", [RING]).log_error is not None)
        verdict = access_recorded(f.canary("crm", [RING]), RING, str(path), GRACE)
        assert (verdict.status, verdict.reason) == ("Unknown", "AuditLogUnreadable")
        assert sink.ids() == []
        listing.failing = False
        wait(lambda: len(sink.records) == 2)
        wait(lambda: f.canary("crm", [RING]).log_error is None)
    finally:
        f.stop()
    assert sink.ids() == ["r0", "r1"]


def test_a_rotation_seen_while_the_directory_cannot_be_listed_loses_no_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("r1", T0))
    listing = Listing(monkeypatch, tmp_path)
    f, crm = follower(path, sink), the_store()
    f.start(lambda: [crm], lambda key: None)
    try:
        wait(lambda: len(sink.records) == 1)
        listing.failing = True
        with path.open("a") as out:
            out.write(line("r2", T0 + timedelta(seconds=1)))
        path.rename(tmp_path / "audit-2026-12-01T10-00-01.000.log")
        path.write_text(line("r3", T0 + timedelta(seconds=2)))
        path.rename(tmp_path / "audit-2026-12-01T10-00-02.000.log")
        path.write_text(line("r4", T0 + timedelta(seconds=3)))
        wait(lambda: f.canary("crm", [RING]).log_error is not None)
        listing.failing = False
        wait(lambda: len(sink.records) == 4)
    finally:
        f.stop()
    assert sink.ids() == ["r1", "r2", "r3", "r4"]


def test_rotated_files_are_found_by_the_api_servers_naming(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    for name in ("audit-2026-12-01T10-00-00.000.log", "audit-2026-11-30T10-00-00.000.log",
                 "audit.log.bak", "other-2026-12-01T10-00-00.000.log"):  # fmt: skip
        (tmp_path / name).write_text("")
    assert [p.name for p in rotated_files(path, None)] == [
        "audit-2026-11-30T10-00-00.000.log", "audit-2026-12-01T10-00-00.000.log"]
    old = tmp_path / "audit-2026-11-30T10-00-00.000.log"
    os.utime(old, (T0.timestamp() - 86400, T0.timestamp() - 86400))
    assert [p.name for p in rotated_files(path, T0 - timedelta(hours=1))] == [
        "audit-2026-12-01T10-00-00.000.log"]


def run_until(f: AccessLogFollower, done: Callable[[], bool], queued: list[Any]) -> None:
    run_until_with(f, [the_store()], done, queued.append)


def test_reads_are_appended_once_across_restarts_and_rotations(tmp_path: Path) -> None:
    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("r1", T0) + line("x", T0, name="unrelated") + line("r2", T0))
    queued: list[Any] = []
    run_until(follower(path, sink), lambda: len(sink.records) == 2, queued)
    assert sink.ids() == ["r1", "r2"] and {r.subject for r in sink.records} == {
        "crm/support-inquiries"}
    # While the operator is down, the API server writes more and rotates.
    with path.open("a") as out:
        out.write(line("r3", T0 + timedelta(seconds=1)))
    path.rename(tmp_path / "audit-2026-12-01T10-00-02.000.log")
    path.write_text(line("r4", T0 + timedelta(seconds=2)))
    run_until(follower(path, sink), lambda: len(sink.records) >= 4, queued)
    assert sink.ids() == ["r1", "r2", "r3", "r4"]  # nothing twice, nothing missed


def test_an_event_the_allow_list_refuses_is_kept_as_its_audit_id_and_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataward.controller import access_log

    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("odd", T0) + line("next", T0))
    made = access_log.access_payload

    def careless(read: Any) -> dict[str, Any]:  # a payload builder with a bug
        payload = made(read)
        if read.audit_id == "odd":
            payload["user"] = "alice@example.com"
        return payload

    monkeypatch.setattr(access_log, "access_payload", careless)
    run_until(follower(path, sink), lambda: len(sink.records) == 2, [])
    assert sink.ids() == ["odd", "next"]  # the next read is not held up behind it
    assert sink.records[0].payload == {"auditID": "odd", "verb": "get",
                                       "stageTimestamp": "2026-12-01T10:00:00.000000Z"}
    assert "alice" not in json.dumps([r.payload for r in sink.records])


def test_an_evidence_log_that_is_down_loses_nothing_and_the_store_is_told(tmp_path: Path) -> None:
    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("r1", T0))
    f, queued = follower(path, sink), []
    run_until(f, lambda: len(sink.records) == 1, queued)
    sink.failing = True
    with path.open("a") as out:
        out.write(line("r2", T0 + timedelta(seconds=1)))
    crm = the_store()
    f.note_read("crm", RING, crm.name)
    f.start(lambda: [crm], queued.append)
    try:
        wait(lambda: f.canary("crm", [RING]).evidence_error is not None)
        verdict = access_recorded(f.canary("crm", [RING]), RING, str(path), GRACE)
        assert (verdict.status, verdict.reason) == ("Unknown", "AccessEvidenceUnwritable")
        assert ("crm", crm.name) in queued
        sink.failing = False
        wait(lambda: len(sink.records) == 2)
    finally:
        f.stop()
    assert sink.ids() == ["r1", "r2"]


def test_two_rotations_while_the_evidence_log_is_down_lose_no_read(tmp_path: Path) -> None:
    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("r1", T0))
    f, queued = follower(path, sink), []
    crm = the_store()
    f.start(lambda: [crm], queued.append)
    try:
        wait(lambda: len(sink.records) == 1)
        sink.failing = True
        with path.open("a") as out:
            out.write(line("r2", T0 + timedelta(seconds=1)))
        wait(lambda: f.canary("crm", [RING]).evidence_error is not None)
        # While the append of r2 is retried, the API server rotates twice.
        path.rename(tmp_path / "audit-2026-12-01T10-00-01.000.log")
        path.write_text(line("r3", T0 + timedelta(seconds=2)))
        path.rename(tmp_path / "audit-2026-12-01T10-00-02.000.log")
        path.write_text(line("r4", T0 + timedelta(seconds=3)))
        sink.failing = False
        wait(lambda: len(sink.records) == 4)
    finally:
        f.stop()
    assert sink.ids() == ["r1", "r2", "r3", "r4"]


def test_a_shard_resumes_from_its_own_records_not_another_shards(tmp_path: Path) -> None:
    # Two operators, each serving its namespaces, share one evidence log. Shard B (shop) is
    # down while a read of its ring happens and shard A (crm) records later reads of its own:
    # B, restarted, must not take A's newest record for how far it got.
    def event(audit_id: str, at: datetime, namespace: str, ring: str) -> str:
        doc = json.loads(line(audit_id, at, name=ring))
        doc["objectRef"]["namespace"] = namespace
        return json.dumps(doc) + "\n"

    crm, shop = the_store(), the_store("orders", "shop")
    shop_ring = "dataward-orders-keyring"
    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(event("b0", T0, "shop", shop_ring))
    run_until_with(follower(path, sink), [shop], lambda: len(sink.records) == 1)
    with path.open("a") as out:
        out.write(event("b1", T0 + timedelta(minutes=10), "shop", shop_ring))
        out.write(event("a1", T0 + timedelta(hours=1), "crm", RING))
    run_until_with(follower(path, sink), [crm], lambda: len(sink.records) == 2)
    run_until_with(follower(path, sink), [shop], lambda: len(sink.records) == 3)
    assert sink.ids() == ["b0", "a1", "b1"]


def run_until_with(f: AccessLogFollower, stores: list[Any], done: Callable[[], bool],
                   on_change: Callable[[Any], None] = lambda key: None) -> None:
    f.start(lambda: stores, on_change)
    try:
        wait(done)
    finally:
        f.stop()


def test_the_canary_turns_true_false_and_true_again(tmp_path: Path) -> None:
    path, sink, wall = tmp_path / "audit.log", Sink(), Wall()
    path.write_text("")
    f, queued = follower(path, sink, wall), []
    crm = the_store()
    key = ("crm", crm.name)

    def verdict() -> tuple[str, str]:
        condition = access_recorded(f.canary("crm", [RING]), RING, str(path), GRACE)
        return condition.status, condition.reason

    f.note_read("crm", RING, crm.name)
    assert verdict() == ("Unknown", "AccessRecordPending")
    f.start(lambda: [crm], queued.append)
    try:
        with path.open("a") as out:
            out.write(line("r1", T0 + timedelta(seconds=1)))
        wait(lambda: verdict()[0] == "True")
        assert verdict() == ("True", "AccessReadsRecorded") and queued.count(key) == 1
        # The next reconcile reads again; its answer does not queue the store once more.
        f.note_read("crm", RING, crm.name)
        with path.open("a") as out:
            out.write(line("r2", T0 + timedelta(seconds=2)))
        wait(lambda: len(sink.records) == 2)
        wait(lambda: f.canary("crm", [RING]).asked is None)
        assert queued.count(key) == 1
        # A read the API server never audits (its policy lost the store): False after grace.
        wall.now = T0 + timedelta(minutes=1)
        f.note_read("crm", RING, crm.name)
        wall.now += GRACE - timedelta(seconds=1)
        assert verdict()[0] == "True"  # not yet
        wall.now += timedelta(seconds=1)
        assert verdict() == ("False", "AccessReadNotAudited")
        wait(lambda: queued.count(key) == 2)  # queued so the status says so now
        # An older read arriving late does not answer it.
        with path.open("a") as out:
            out.write(line("r3", T0 + timedelta(seconds=3)))
        wait(lambda: len(sink.records) == 3)
        assert verdict()[0] == "False"
        with path.open("a") as out:
            out.write(line("r4", T0 + timedelta(minutes=1, seconds=1)))
        wait(lambda: verdict()[0] == "True")
        wait(lambda: queued.count(key) == 3)
    finally:
        f.stop()


def test_an_unreadable_log_is_unknown_never_true(tmp_path: Path) -> None:
    path, sink = tmp_path / "missing" / "audit.log", Sink()
    f, queued = follower(path, sink), []
    crm = the_store()
    f.note_read("crm", RING, crm.name)
    f.start(lambda: [crm], queued.append)
    try:
        wait(lambda: f.canary("crm", [RING]).log_error is not None)
    finally:
        f.stop()
    condition = access_recorded(f.canary("crm", [RING]), RING, str(path), GRACE)
    assert (condition.status, condition.reason) == ("Unknown", "AuditLogUnreadable")
    assert "No such file" in condition.message


@pytest.mark.parametrize(
    ("canary", "status"),
    [
        (AccessCanary(T0, None, None, None, None), "Unknown"),
        (AccessCanary(T0, None, None, T0 - GRACE, T0 - GRACE * 2), "False"),
        (AccessCanary(T0, "Permission denied", None, None, T0), "Unknown"),
        (AccessCanary(T0, None, "OperationalError", None, T0), "Unknown"),
        (AccessCanary(T0, None, None, T0 - timedelta(seconds=1), T0 - GRACE), "True"),
    ],
)
def test_the_verdict_is_true_only_on_a_recorded_read(canary: AccessCanary, status: str) -> None:
    assert access_recorded(canary, RING, "/var/log/audit.log", GRACE).status == status


def test_stores_not_listed_yet_at_start_hold_the_follower_never_end_it(tmp_path: Path) -> None:
    # Red on 22e91ca: the stores' list (a cache not synced yet raises) was read outside the
    # retry, and the thread died: no read was recorded until the operator restarted. The
    # same list failing at a poll (after its lines were read) ended the thread too.
    from dataward.controller.kube import KubeError

    path, sink = tmp_path / "audit.log", Sink()
    path.write_text(line("r1", T0))
    crm, calls = the_store(), []

    def stores() -> list[Any]:
        calls.append(1)
        if len(calls) in (1, 3):  # at the start, and at the first poll (a relist)
            raise KubeError(503, "Service Unavailable", "list personaldatastores")
        return [crm]

    f = follower(path, sink)
    f.start(stores, lambda key: None)
    try:
        wait(lambda: len(sink.records) == 1)
    finally:
        f.stop()
    assert sink.ids() == ["r1"] and f.canary("crm", [RING]).evidence_error is None


CREDENTIALS = "crm-postgres-purger"


def test_every_secret_of_the_store_is_a_canary_not_the_ring_alone(tmp_path: Path) -> None:
    # Red first (e2e/test_access_records.py, a credentials Secret renamed after the audit
    # policy was rendered): the ring's audited read made AccessRecorded True while nobody's
    # read of the database password was audited. Two stores share the credentials Secret:
    # its answer queues both.
    path, sink, wall = tmp_path / "audit.log", Sink(), Wall()
    path.write_text("")
    f, queued = follower(path, sink, wall), []
    crm, other = the_store(), the_store("support-archive")
    secrets = [RING, CREDENTIALS]

    def verdict() -> tuple[str, str, str]:
        condition = access_recorded(f.canary("crm", secrets), RING, str(path), GRACE)
        return condition.status, condition.reason, condition.message

    for secret in secrets:
        f.note_read("crm", secret, crm.name)
    f.note_read("crm", CREDENTIALS, other.name)
    f.start(lambda: [crm, other], queued.append)
    try:
        with path.open("a") as out:
            out.write(line("r1", T0 + timedelta(seconds=1)))
        wait(lambda: f.canary("crm", [RING]).answered is not None)
        status, reason, message = verdict()
        assert (status, reason) == ("Unknown", "AccessRecordPending")
        assert f"Secret {CREDENTIALS}" in message
        wall.now = T0 + GRACE
        status, reason, message = verdict()
        assert (status, reason) == ("False", "AccessReadNotAudited")
        assert f"read Secret {CREDENTIALS} at" in message
        with path.open("a") as out:
            out.write(line("r2", T0 + timedelta(seconds=2), name=CREDENTIALS))
        wait(lambda: verdict()[0] == "True")
        wait(lambda: ("crm", other.name) in queued)
        assert verdict()[1] == "AccessReadsRecorded"
    finally:
        f.stop()
