"""The evidence log on real PostgreSQL and MariaDB: append, verify, tamper with SQL, catch it.

Each tampering is done the way someone with write access to the evidence database would do
it: plain SQL on the tables. `dataward evidence verify` must exit 1 and name the first broken
record and the check that broke; each test also verifies without that check, to show that
check is the one doing the work (or which one stands behind it).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dataward.cli import main
from dataward.evidence import EvidenceError, EvidenceLog
from dataward.evidence.access import resume_cursor
from dataward.evidence.chain import CHECKS, CheckName, Head, Verdict, next_record, verify_chain
from dataward.evidence.payloads import validate
from dataward.evidence.records import Record, canonical_json
from dataward.evidence.signing import generate_key, public_pem
from dataward.evidence.store import EvidenceStore, connect
from dataward.purge.credentials import Credentials
from tests.evidence.conftest import EvidenceDatabase
from tests.evidence.support import START, build_chain, resign, sample

pytestmark = pytest.mark.db

KEY = generate_key()
OTHER = generate_key()
COLUMNS = "seq, recorded_at, kind, subject, payload, prev_hash, hash, key_id, signature"


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    path = tmp_path / "evidence.pub"
    path.write_bytes(public_pem(KEY.public_key()))
    return path


@pytest.fixture(autouse=True)
def login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAWARD_EVIDENCE_USERNAME", "purger")
    monkeypatch.setenv("DATAWARD_EVIDENCE_PASSWORD", "purger-secret")


def append_samples(db: EvidenceDatabase, count: int) -> list[Record]:
    with EvidenceLog.open(db.database, db.credentials, KEY, create_schema=True) as log:
        return [log.append(*sample(index)) for index in range(count)]


def cli_verify(
    db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    status = main(["evidence", "verify", "--database", db.url,
                   "--public-key", str(public_key), *extra])  # fmt: skip
    out, err = capsys.readouterr()
    return status, out + err


def verify_without(db: EvidenceDatabase, check: CheckName) -> Verdict:
    store = EvidenceStore(connect(db.database, db.credentials))
    try:
        checks = [c for c in CHECKS if c != check]
        return verify_chain(store.records(), store.head(), [KEY.public_key()], checks=checks)
    finally:
        store.session.close()


def insert(db: EvidenceDatabase, record: Record) -> None:
    db.sql(f"INSERT INTO dataward_evidence ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
           (record.seq, record.time, record.kind, record.subject, canonical_json(record.payload),
            record.prev_hash, record.hash, record.key_id, record.signature))  # fmt: skip


def stored(db: EvidenceDatabase, seq: int) -> Record:
    store = EvidenceStore(connect(db.database, db.credentials))
    try:
        return next(r for r in store.records() if r.seq == seq)
    finally:
        store.session.close()


def test_appended_records_read_back_and_verify(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    appended = append_samples(evidence_db, 7)
    assert [r.seq for r in appended] == list(range(1, 8))
    store = EvidenceStore(connect(evidence_db.database, evidence_db.credentials))
    try:
        assert list(store.records(page=3)) == appended  # paging keeps every record, in order
        assert store.head() == Head(7, appended[-1].hash)
    finally:
        store.session.close()
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 0, output
    assert "intact: 7 records" in output and f"head 7:{appended[-1].hash}" in output
    # Kinds and payloads land as canonical JSON text, exactly what was hashed.
    ((text,),) = evidence_db.rows("SELECT payload FROM dataward_evidence WHERE seq = 1")
    assert text == canonical_json(appended[0].payload)


def test_a_refused_payload_writes_nothing(evidence_db: EvidenceDatabase) -> None:
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY,
                          create_schema=True) as log:  # fmt: skip
        with pytest.raises(EvidenceError, match="'material' is not allowed"):
            log.append("key.created", "crm/s", {"secret": "k", "keyId": 1, "material": "eA=="})
        log.append(*sample(0))
    # The refused record is missing: the log says so first (evidence.outage), then goes on.
    assert evidence_db.rows("SELECT seq, kind FROM dataward_evidence ORDER BY seq") == [
        (1, "evidence.outage"), (2, sample(0)[0])]


def test_appends_that_failed_are_recorded_once_the_database_answers(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_samples(evidence_db, 1)  # creates the tables
    down = [True]

    def connect_unless_down() -> Any:
        if down[0]:
            raise ConnectionRefusedError("the evidence database is down")
        return connect(evidence_db.database, evidence_db.credentials)

    log = EvidenceLog(connect_unless_down, KEY)
    try:
        for index in range(1, 4):  # three records the operator goes on without
            with pytest.raises(ConnectionRefusedError):
                log.append(*sample(index))
        down[0] = False
        log.append(*sample(4))
    finally:
        log.close()
    rows = evidence_db.rows("SELECT seq, kind, payload FROM dataward_evidence ORDER BY seq")
    assert [(seq, kind) for seq, kind, _ in rows] == [
        (1, sample(0)[0]), (2, "evidence.outage"), (3, sample(4)[0])]
    outage = json.loads(rows[1][2])
    assert outage["failedAppends"] == 3 and outage["from"] <= outage["to"]
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 0 and "intact: 3 records" in output, output


@pytest.mark.parametrize("how", ["row inserted ahead", "head moved back"])
def test_a_taken_sequence_number_fails_every_append_and_says_so(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    """With the operator's own login (INSERT on the records, UPDATE on the head), one row
    at the head's next number, or the head moved back, stops every later append: the README
    says so, /metrics counts it (`EvidenceLog.failures`), and verify names the break."""
    appended = append_samples(evidence_db, 3)
    if how == "row inserted ahead":
        (forged,) = build_chain(OTHER, 1, Head(3, appended[-1].hash))
        insert(evidence_db, forged)
    else:
        assert evidence_db.sql("UPDATE dataward_evidence_head SET seq = 2, hash = %s",
                               (appended[1].hash,)) == 1  # fmt: skip
    log = EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY)
    try:
        for index in range(3, 5):
            with pytest.raises(EvidenceError, match="could not append"):
                log.append(*sample(index))
        assert log.failures() == (2, 2)
    finally:
        log.close()
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 1 and ("(signature)" if how == "row inserted ahead" else "(head)") in output


def edit_payload(db: EvidenceDatabase) -> None:
    record = stored(db, 3)
    # A careful forger keeps the text canonical; the hash still tells.
    payload = json.loads(canonical_json(record.payload))
    payload["recordsAffected" if "recordsAffected" in payload else "keyId"] = 99
    assert db.sql("UPDATE dataward_evidence SET payload = %s WHERE seq = 3",
                  (canonical_json(payload),)) == 1  # fmt: skip


def respace_payload(db: EvidenceDatabase) -> None:
    # Same JSON value, other bytes: still an edit of what was signed.
    sql = "UPDATE dataward_evidence SET payload = REPLACE(payload, ',', ', ') WHERE seq = 2"
    assert db.sql(sql) == 1


def delete_record(db: EvidenceDatabase) -> None:
    assert db.sql("DELETE FROM dataward_evidence WHERE seq = 3") == 1


def reorder(db: EvidenceDatabase) -> None:
    assert db.sql("UPDATE dataward_evidence SET seq = 1000 WHERE seq = 3") == 1
    assert db.sql("UPDATE dataward_evidence SET seq = 3 WHERE seq = 4") == 1
    assert db.sql("UPDATE dataward_evidence SET seq = 4 WHERE seq = 1000") == 1


def wrong_previous_hash(db: EvidenceDatabase) -> None:
    first = stored(db, 1)
    assert db.sql("UPDATE dataward_evidence SET prev_hash = %s WHERE seq = 3",
                  (first.hash,)) == 1  # fmt: skip


def forge_signature(db: EvidenceDatabase) -> None:
    other = stored(db, 2)
    assert db.sql("UPDATE dataward_evidence SET signature = %s WHERE seq = 5",
                  (other.signature,)) == 1  # fmt: skip


def respell_signature(db: EvidenceDatabase) -> None:
    # The same 64 bytes in other base64 text: the last digit before "==" carries 2 bits of
    # the signature and 4 padding bits a lax decoder ignores. The row is altered all the same.
    text = stored(db, 4).signature
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(text[-3])
    respelled = text[:-3] + alphabet[last | 1] + "=="
    assert respelled != text
    assert db.sql("UPDATE dataward_evidence SET signature = %s WHERE seq = 4",
                  (respelled,)) == 1  # fmt: skip


def resign_with_another_key(db: EvidenceDatabase) -> None:
    record = stored(db, 3)
    forged = resign(replace(record, subject="crm/another-store"), OTHER)
    assert db.sql(
        "UPDATE dataward_evidence SET subject = %s, hash = %s, key_id = %s, signature = %s "
        "WHERE seq = 3", (forged.subject, forged.hash, forged.key_id, forged.signature),
    ) == 1  # fmt: skip


def truncate_and_rewrite(db: EvidenceDatabase) -> None:
    second = stored(db, 2)
    assert db.sql("DELETE FROM dataward_evidence WHERE seq >= 3") == 4
    head = Head(2, second.hash)
    for index in range(4):
        kind, subject, payload = sample(index)
        made = next_record(head, START, kind, subject, validate(kind, subject, payload), OTHER)
        record = resign(made, OTHER, claim_key=KEY_ID)  # claims to be the operator's
        insert(db, record)
        db.sql("UPDATE dataward_evidence_head SET seq = %s, hash = %s WHERE id = 1",
               (record.seq, record.hash))  # fmt: skip
        head = Head(record.seq, record.hash)


def truncate_table_and_rewrite_all(db: EvidenceDatabase) -> None:
    db.sql("DELETE FROM dataward_evidence")
    for record in build_chain(OTHER, 6):
        insert(db, record)
        db.sql("UPDATE dataward_evidence_head SET seq = %s, hash = %s WHERE id = 1",
               (record.seq, record.hash))  # fmt: skip


def cut_the_end(db: EvidenceDatabase) -> None:
    assert db.sql("DELETE FROM dataward_evidence WHERE seq >= 5") == 2


def cut_the_end_and_delete_the_head(db: EvidenceDatabase) -> None:
    assert db.sql("DELETE FROM dataward_evidence WHERE seq >= 5") == 2
    assert db.sql("DELETE FROM dataward_evidence_head") == 1


KEY_ID = build_chain(KEY, 1)[0].key_id

# (tampering, first broken record, check, words in the output, what verification without
#  that check finds: None = nothing at all, else (record, check) of the check behind it)
TAMPERINGS: list[tuple[Callable[[EvidenceDatabase], None], int, CheckName, str,
                       tuple[int, str] | None]] = [
    (edit_payload, 3, "hash", "content does not match its hash", None),
    (respace_payload, 2, "hash", "content does not match its hash", None),
    (delete_record, 3, "sequence", "record 3 is missing", (4, "link")),
    (reorder, 3, "link", "does not follow record 2", (3, "hash")),
    (wrong_previous_hash, 3, "link", "does not follow record 2", (3, "hash")),
    (forge_signature, 5, "signature", "does not verify", None),
    (respell_signature, 4, "signature", "does not verify", None),
    (resign_with_another_key, 3, "signature", "not among the given public keys", (4, "link")),
    (truncate_and_rewrite, 3, "signature", "does not verify", None),
    (truncate_table_and_rewrite_all, 1, "signature", "not among the given public keys", None),
    (cut_the_end, 5, "head", "records 5 to 6 were cut off", None),
    (cut_the_end_and_delete_the_head, 5, "head", "head row is gone", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tamper", "seq", "check", "words", "behind"),
    TAMPERINGS,
    ids=[t[0].__name__ for t in TAMPERINGS],
)
def test_tampering_with_sql_is_caught_and_the_record_named(
    evidence_db: EvidenceDatabase,
    public_key: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[EvidenceDatabase], None],
    seq: int,
    check: CheckName,
    words: str,
    behind: tuple[int, str] | None,
) -> None:
    append_samples(evidence_db, 6)
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 0, output  # intact before: the break below is the tampering's
    tamper(evidence_db)
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 1, output
    assert f"BROKEN at record {seq} ({check})" in output
    assert words in output
    without = verify_without(evidence_db, check)
    found = None if without.broken is None else (without.broken.seq, without.broken.check)
    assert found == behind


def test_a_cut_that_also_moved_the_head_is_caught_by_an_anchor(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = append_samples(evidence_db, 6)
    status, output = cli_verify(evidence_db, public_key, capsys)
    anchor = f"6:{records[-1].hash}"
    assert status == 0 and f"head {anchor}" in output
    assert evidence_db.sql("DELETE FROM dataward_evidence WHERE seq >= 5") == 2
    evidence_db.sql("UPDATE dataward_evidence_head SET seq = 4, hash = %s WHERE id = 1",
                    (records[3].hash,))  # fmt: skip
    # The chain alone cannot tell (README: what it cannot prove) ...
    assert cli_verify(evidence_db, public_key, capsys)[0] == 0
    # ... the head an auditor kept from the last verification can.
    status, output = cli_verify(evidence_db, public_key, capsys, "--expect-head", anchor)
    assert status == 1 and "BROKEN at record 5 (anchor)" in output
    # The operator goes on appending past the anchored number: record 6 is there again, with
    # another hash. No anchor before it matches, so no record is shown to be the original.
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY) as log:
        assert [log.append(*sample(i)).seq for i in range(3)] == [5, 6, 7]
    status, output = cli_verify(evidence_db, public_key, capsys, "--expect-head", anchor)
    assert status == 1 and "BROKEN at record 1 (anchor)" in output, output
    assert "cut off and appended to again" in output and "no record verified" in output


def test_concurrent_writers_never_fork_the_chain(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_samples(evidence_db, 1)  # creates the tables
    writers, each = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(number: int) -> None:
        try:
            with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY) as log:
                start.wait()
                for index in range(each):
                    log.append("request.answered", f"ns{number}/store",
                               {"requestId": f"w{number}-{index}", "requestType": "access",
                                "outcome": "fulfilled"})  # fmt: skip
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    rows = evidence_db.rows("SELECT seq, payload FROM dataward_evidence ORDER BY seq")
    assert [seq for seq, _ in rows] == list(range(1, 2 + writers * each))
    ids = sorted(json.loads(p)["requestId"] for _, p in rows[1:])
    assert ids == sorted(f"w{n}-{i}" for n in range(writers) for i in range(each))
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 0 and f"intact: {1 + writers * each} records" in output


def test_one_log_shared_by_threads_keeps_one_chain(evidence_db: EvidenceDatabase) -> None:
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY,
                          create_schema=True) as log:  # fmt: skip
        threads = [threading.Thread(target=lambda: [log.append(*sample(i)) for i in range(10)])
                   for _ in range(3)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    store = EvidenceStore(connect(evidence_db.database, evidence_db.credentials))
    try:
        verdict = verify_chain(store.records(), store.head(), [KEY.public_key()])
    finally:
        store.session.close()
    assert verdict.intact and verdict.records == 30


def append_only_login(evidence_db: EvidenceDatabase) -> tuple[str, str]:
    """A login with the grants the README gives the operator, and nothing more."""
    user, password = "evidence_writer", "writer-secret"
    if evidence_db.engine == "postgresql":
        evidence_db.server.execute(
            f"DROP ROLE IF EXISTS {user}", f"CREATE ROLE {user} LOGIN PASSWORD '{password}'"
        )
        evidence_db.sql(f"GRANT INSERT, SELECT ON dataward_evidence TO {user}")
        evidence_db.sql(f"GRANT SELECT, UPDATE ON dataward_evidence_head TO {user}")
    else:
        evidence_db.server.execute(
            f"DROP USER IF EXISTS '{user}'@'%'",
            f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT INSERT, SELECT ON {evidence_db.name}.dataward_evidence TO '{user}'@'%'",
            f"GRANT SELECT, UPDATE ON {evidence_db.name}.dataward_evidence_head TO '{user}'@'%'",
        )
    return user, password


def test_a_login_that_may_only_append_cannot_rewrite(evidence_db: EvidenceDatabase) -> None:
    append_samples(evidence_db, 2)
    user, password = append_only_login(evidence_db)
    with EvidenceLog.open(evidence_db.database, Credentials(user, password), KEY) as log:
        assert log.append(*sample(2)).seq == 3
    conn = evidence_db.connect(user, password)
    try:
        for statement in ("UPDATE dataward_evidence SET kind = 'x' WHERE seq = 1",
                          "DELETE FROM dataward_evidence WHERE seq = 1"):  # fmt: skip
            with pytest.raises(Exception, match="denied"), conn.cursor() as cur:
                cur.execute(statement)
    finally:
        conn.close()


def test_verify_reports_a_database_without_a_log(
    evidence_db: EvidenceDatabase, public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 2 and "holds no evidence log" in output


def test_a_missing_head_row_stops_appends(evidence_db: EvidenceDatabase) -> None:
    append_samples(evidence_db, 1)
    evidence_db.sql("DELETE FROM dataward_evidence_head")
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY) as log:
        with pytest.raises(EvidenceError, match="head row is missing"):
            log.append(*sample(1))
    assert evidence_db.rows("SELECT count(*) FROM dataward_evidence") == [(1,)]


def test_keygen_init_then_the_operator_appends_from_its_environment(
    evidence_db: EvidenceDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataward.evidence import settings_from_environ

    assert main(["evidence", "keygen", "--out", str(tmp_path / "keys")]) == 0
    assert main(["evidence", "init", "--database", evidence_db.url]) == 0
    environ = {
        "DATAWARD_EVIDENCE_DATABASE": evidence_db.url,
        "DATAWARD_EVIDENCE_SIGNING_KEY": str(tmp_path / "keys" / "evidence-signing.key"),
        "DATAWARD_EVIDENCE_USERNAME": "purger",
        "DATAWARD_EVIDENCE_PASSWORD": "purger-secret",
    }
    settings = settings_from_environ(environ)
    assert settings is not None
    with EvidenceLog.from_settings(settings) as log:
        log.append(*sample(0))
    capsys.readouterr()
    status, output = cli_verify(evidence_db, tmp_path / "keys" / "evidence-signing.pub", capsys)
    assert status == 0 and "intact: 1 record," in output, output


def test_verifying_a_log_being_appended_to_reads_one_instant(evidence_db: EvidenceDatabase) -> None:
    append_samples(evidence_db, 3)
    store = EvidenceStore(connect(evidence_db.database, evidence_db.credentials))
    try:
        with store.snapshot():
            head = store.head()
            append_samples(evidence_db, 1)  # the operator appends meanwhile
            records = list(store.records())
        # Outside a snapshot the new record would be read with the old head: "cut off".
        assert head == Head(3, records[-1].hash) and len(records) == 3
        assert verify_chain(records, head, [KEY.public_key()]).intact
        assert [r.seq for r in store.records()] == [1, 2, 3, 4]
    finally:
        store.session.close()


def test_the_latest_records_of_a_kind_are_read_newest_first(evidence_db: EvidenceDatabase) -> None:
    # What the audit log follower resumes from: only access.read records, newest first.
    appended = append_samples(evidence_db, 20)
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY) as log:
        latest = log.latest("access.read", 2)
        assert log.latest("no.such.kind", 5) == []
    expected = [r for r in reversed(appended) if r.kind == "access.read"][:2]
    assert [r.seq for r in latest] == [r.seq for r in expected] and len(latest) == 2
    assert [r.payload for r in latest] == [r.payload for r in expected]


def test_the_audit_log_follower_resumes_only_from_records_the_operator_signed(
    evidence_db: EvidenceDatabase,
) -> None:
    # Anyone with the operator's database login (INSERT on the records, no signing key) adds
    # an access.read row far ahead, dated 2099: had the follower resumed from it, every real
    # read before 2099 would count as "already recorded" and never be written.
    appended = append_samples(evidence_db, 20)
    genuine = [r for r in appended if r.kind == "access.read"]
    user, password = append_only_login(evidence_db)
    forged_payload = dict(
        genuine[-1].payload, auditID="forged", stageTimestamp="2099-01-01T00:00:00.000000Z"
    )
    forged = resign(replace(genuine[-1], seq=10**12, payload=forged_payload), OTHER,
                    claim_key=genuine[-1].key_id)  # fmt: skip
    conn = evidence_db.connect(user, password)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO dataward_evidence ({COLUMNS}) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (forged.seq, forged.time, forged.kind, forged.subject,
                 canonical_json(forged.payload), forged.prev_hash, forged.hash, forged.key_id,
                 forged.signature),
            )  # fmt: skip
    finally:
        conn.close()
    with EvidenceLog.open(evidence_db.database, Credentials(user, password), KEY) as log:
        latest = log.latest("access.read", 5000)
    assert [r.seq for r in latest] == [r.seq for r in reversed(genuine)]
    cursor = resume_cursor((r.subject, r.payload) for r in reversed(latest))
    assert cursor is not None and cursor.newest.year == 2026


@pytest.mark.parametrize("column", ["head", "prev_hash"])
def test_stored_text_cannot_rewrite_the_verdict_on_the_auditors_terminal(
    evidence_db: EvidenceDatabase,
    public_key: Path,
    capsys: pytest.CaptureFixture[str],
    column: str,
) -> None:
    # The operator's login may UPDATE the head and INSERT records. Text quoted into a break's
    # message is printed as is: erase the line, write "intact", hide the rest (SGR 8), and
    # the auditor's terminal shows a broken log as intact.
    append_samples(evidence_db, 3)
    user, password = append_only_login(evidence_db)
    # And a right-to-left override where the character set takes it (MariaDB's latin1 not).
    rlo = "\u202e" if evidence_db.engine == "postgresql" else "0"
    trick = "\x1b[2K\rintact\x1b[8m" + rlo + "0" * 48
    conn = evidence_db.connect(user, password)
    try:
        with conn.cursor() as cur:
            if column == "head":
                cur.execute("UPDATE dataward_evidence_head SET hash = %s WHERE id = 1", (trick,))
            else:
                record = replace(stored(evidence_db, 3), seq=4, prev_hash=trick)
                cur.execute(
                    f"INSERT INTO dataward_evidence ({COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (record.seq, record.time, record.kind, record.subject,
                     canonical_json(record.payload), record.prev_hash, record.hash,
                     record.key_id, record.signature),
                )  # fmt: skip
                cur.execute("UPDATE dataward_evidence_head SET seq = 4 WHERE id = 1")
    finally:
        conn.close()
    status, output = cli_verify(evidence_db, public_key, capsys)
    assert status == 1 and "BROKEN at record" in output, output
    assert all(c.isprintable() and c.isascii() for c in output.replace("\n", "")), output


def test_an_address_in_a_condition_message_is_kept_as_a_digest(
    evidence_db: EvidenceDatabase,
) -> None:
    # AccessRestricted=False names the subjects a binding lets read the Secrets; with OIDC a
    # User is an e-mail address. The access records keep such names as a digest; the message
    # of the condition's record must not keep the address for years either.
    message = ("RoleBinding crm/helpdesk (role ClusterRole view) lets Group oidc:support, "
               "User jane.doe@example.com read them. Remove those bindings")  # fmt: skip
    with EvidenceLog.open(evidence_db.database, evidence_db.credentials, KEY,
                          create_schema=True) as log:  # fmt: skip
        log.append("condition.transition", "crm/support-inquiries",
                   {"type": "AccessRestricted", "status": "False",
                    "reason": "OtherBindingGrantsSecrets", "message": message})  # fmt: skip
    ((text,),) = evidence_db.rows("SELECT payload FROM dataward_evidence WHERE seq = 1")
    assert "@" not in text and "jane" not in text, text
    # An auditor holding the name can still find it: SHA-256 of the documented prefix + name.
    digest = hashlib.sha256(b"dataward/access-user\x00jane.doe@example.com").hexdigest()
    assert f"User sha256:{digest} read them" in json.loads(text)["message"]
    assert "Group oidc:support," in json.loads(text)["message"]
