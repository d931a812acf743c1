"""`dataward report` on a real chain in PostgreSQL, written with `EvidenceLog.append`, and the
page it renders opened in headless Chromium.

The expected figures are worked out by hand from the records appended below (2026Q4 is
2026-10-01T00:00Z to 2027-01-01T00:00Z); the stores are examples/stores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dataward.cli import main
from dataward.evidence import EvidenceLog
from dataward.evidence.chain import Head, next_record
from dataward.evidence.records import Record, canonical_json
from dataward.evidence.signing import generate_key, public_pem
from dataward.evidence.store import EvidenceStore, connect
from tests.evidence.conftest import EvidenceDatabase
from tests.report.browser import png_summary, screenshot
from tests.report.support import ROOT, SCHEMA

pytestmark = pytest.mark.db

KEY = generate_key()
DAY = 86400
CRM, BILLING = "crm/support-inquiries", "billing/payment-records"
HOSTILE = 'RoleBinding crm/<script>alert("x")</script> grants get on the "keyring" Secret'

EVENTS: list[tuple[datetime, str, str, dict[str, Any]]] = [
    (datetime(2026, 9, 15, tzinfo=UTC), "key.created", CRM,
     {"secret": "dataward-support-inquiries-keyring", "keyId": 1}),
    (datetime(2026, 10, 5, 3, tzinfo=UTC), "purge.run", CRM,
     {"result": "Succeeded", "dryRun": False, "rowsDeleted": 120, "expiredRemaining": 0,
      "tables": [{"table": "support_inquiries", "rowsDeleted": 120}]}),
    (datetime(2026, 10, 12, 3, tzinfo=UTC), "purge.run", CRM,
     {"result": "Succeeded", "dryRun": False, "rowsDeleted": 80, "expiredRemaining": 0}),
    (datetime(2026, 10, 13, 3, tzinfo=UTC), "purge.run", BILLING,
     {"result": "Succeeded", "dryRun": False, "rowsDeleted": 30, "rowsArchived": 30,
      "rowsDestroyed": 4, "expiredRemaining": 2}),
    (datetime(2026, 11, 1, tzinfo=UTC), "condition.transition", CRM,
     {"type": "AccessRestricted", "status": "False", "previousStatus": "True",
      "reason": "OtherBindingGrantsSecrets", "message": HOSTILE}),
    (datetime(2026, 11, 3, tzinfo=UTC), "condition.transition", CRM,
     {"type": "AccessRestricted", "status": "True", "previousStatus": "False",
      "reason": "Restricted"}),
    (datetime(2026, 11, 10, tzinfo=UTC), "key.rotated", CRM,
     {"secret": "dataward-support-inquiries-keyring", "keyId": 2, "previousKeyId": 1}),
    (datetime(2026, 11, 20, tzinfo=UTC), "request.answered", CRM,
     {"requestId": "dsr-7", "requestType": "erasure", "outcome": "fulfilled",
      "receivedAt": "2026-11-18T00:00:00Z", "answeredAt": "2026-11-20T12:00:00Z"}),
    (datetime(2026, 12, 1, tzinfo=UTC), "policy.revision", "clunix",
     {"policy": "clunix", "generation": 2, "effectiveDate": "2021-04-26"}),
]  # fmt: skip


@pytest.fixture(autouse=True)
def login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAWARD_EVIDENCE_USERNAME", "purger")
    monkeypatch.setenv("DATAWARD_EVIDENCE_PASSWORD", "purger-secret")
    # Written once 2026Q4 is over: a report in the quarter measures only to its own time.
    clock = tmp_path / "clock"
    clock.write_text("2027-01-02T12:00:00Z")
    monkeypatch.setenv("DATAWARD_TEST_CLOCK_FILE", str(clock))


@pytest.fixture
def chain(evidence_pg: EvidenceDatabase) -> Iterator[EvidenceDatabase]:
    """The events above, appended by the evidence API at their own times."""
    times = iter(event[0] for event in EVENTS)
    with EvidenceLog.open(
        evidence_pg.database, evidence_pg.credentials, KEY, clock=lambda: next(times),
        create_schema=True,
    ) as log:  # fmt: skip
        for _, kind, subject, payload in EVENTS:
            log.append(kind, subject, payload)
    yield evidence_pg


def run_report(db: EvidenceDatabase, out: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    public = out / "evidence.pub"
    public.write_bytes(public_pem(KEY.public_key()))
    status = main([
        "report", "--quarter", "2026Q4", "--database", db.url, "--public-key", str(public),
        "-f", str(ROOT / "examples" / "policy.yaml"), "-f", str(ROOT / "examples" / "stores"),
        "--json", str(out / "report.json"), "--html", str(out / "report.html"), *extra,
    ])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    validator = jsonschema.Draft202012Validator(
        json.loads(SCHEMA.read_text()),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    assert [e.message for e in validator.iter_errors(report)] == []
    return status, report, (out / "report.html").read_text()


def test_report_from_a_real_chain_and_its_page_in_a_browser(
    chain: EvidenceDatabase, tmp_path: Path
) -> None:
    status, report, page = run_report(chain, tmp_path)
    assert status == 0
    assert report["chain"]["verdict"] == "intact"
    assert (report["chain"]["records"], report["chain"]["head"]["seq"]) == (9, 9)
    assert report["recordsInPeriod"] == 8  # all but the key created in September

    by_category = {c["category"]: c for c in report["purges"]["byCategory"]}
    assert (
        by_category["technical-support-inquiry"]["rowsDeleted"],
        by_category["technical-support-inquiry"]["evidence"],
    ) == (120 + 80, [2, 3])
    payment = by_category["payment-records"]
    assert (payment["rowsDeleted"], payment["rowsArchived"], payment["rowsDestroyed"],
            payment["evidence"]) == (30, 30, 4, [4])  # fmt: skip
    # 2026-10-05 is a Monday; 10-12 and 10-13 are in the week of 10-12.
    assert [(w["week"], w["category"], w["rowsDeleted"]) for w in report["purges"]["weekly"]] == [
        ("2026-10-05", "technical-support-inquiry", 120),
        ("2026-10-12", "payment-records", 30),
        ("2026-10-12", "technical-support-inquiry", 80),
    ]
    overdue = {o["subject"]: o for o in report["overdue"]}
    assert (overdue[BILLING]["expiredRemainingAtLastRun"], overdue[BILLING]["evidence"]) == (2, [4])

    (keys,) = report["keys"]
    assert keys["rotationLimit"] == "30d"  # the store's, stricter than the policy's 90d
    first, second = keys["keys"]
    # Key 1: 2026-09-15 to 2026-11-10 = 15 + 31 + 10 = 56 days, due 2026-10-15.
    assert (first["maxAgeSeconds"], first["rotationDue"][:10], first["overdue"]) == (
        56 * DAY,
        "2026-10-15",
        True,
    )
    # Key 2: 2026-11-10 to 2027-01-01 = 20 + 31 + 1 = 52 days, due 2026-12-10.
    assert (second["maxAgeSeconds"], second["rotationDue"][:10], second["overdue"]) == (
        52 * DAY,
        "2026-12-10",
        True,
    )
    assert second["evidence"] == [7]

    (finding,) = report["foreignAccess"]
    assert (finding["openSeconds"], finding["evidence"]) == (2 * DAY, [5, 6])
    (request,) = report["requests"]
    assert (request["secondsToAnswer"], request["evidence"]) == (2 * DAY + 12 * 3600, [8])
    assert [r["evidence"] for r in report["revisions"]] == [[9]]
    codes = {(g["code"], g["message"].split(" ")[0]) for g in report["gaps"]}
    assert ("store-without-records", "marketing/newsletter") in codes

    # Records are data: the hostile message is shown, never run.
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    for outside in ("src=", "href=", "<link", "@import", "url("):
        assert outside not in page

    png = tmp_path / "report.png"
    console = screenshot(tmp_path / "report.html", png)
    assert console == []
    assert png.stat().st_size > 10_000
    width, height, rows, values = png_summary(png)
    assert (width, height) == (1280, 2000)
    assert rows > 200 and values > 50  # text, tables and charts: far from one colour


def test_a_tampered_chain_is_reported_and_left_out(chain: EvidenceDatabase, tmp_path: Path) -> None:
    # Someone with write access halves record 3's count.
    changed = chain.sql(
        "UPDATE dataward_evidence SET payload = replace(payload, '80', '8') WHERE seq = 3"
    )
    assert changed == 1
    status, report, page = run_report(chain, tmp_path)
    assert status == 1
    broken = report["chain"]["broken"]
    assert (report["chain"]["verdict"], broken["seq"], broken["check"]) == ("broken", 3, "hash")
    # Only records 1 and 2 are used: the edited count is nowhere.
    (tech,) = report["purges"]["byCategory"]
    assert (tech["rowsDeleted"], tech["evidence"]) == (120, [2])
    assert report["gaps"][0]["code"] == "chain-broken"
    assert "BROKEN at record 3" in page


def stored_records(db: EvidenceDatabase) -> list[Record]:
    store = EvidenceStore(connect(db.database, db.credentials))
    try:
        return list(store.records())
    finally:
        store.session.close()


def test_records_an_anchor_disproves_are_left_out(chain: EvidenceDatabase, tmp_path: Path) -> None:
    # The auditor kept two heads from earlier verifications: record 2's and record 9's. Then
    # the holder of the signing key halves record 3's count and re-signs the chain from there:
    # every hash and signature checks, and only record 9's anchor shows the rewrite. Records
    # 3 to 8 are as suspect as 9 ("rewritten from here or earlier"); records 1 and 2 are
    # proven by the anchor that still matches.
    original = stored_records(chain)
    head = Head(original[1].seq, original[1].hash)
    for record in original[2:]:
        payload = dict(record.payload)
        if record.seq == 3:
            payload["rowsDeleted"] = 8
        when = datetime.fromisoformat(record.time.replace("Z", "+00:00"))
        new = next_record(head, when, record.kind, record.subject, payload, KEY)
        chain.sql(
            "UPDATE dataward_evidence SET payload = %s, prev_hash = %s, hash = %s, "
            "signature = %s WHERE seq = %s",
            (canonical_json(new.payload), new.prev_hash, new.hash, new.signature, new.seq),
        )
        head = Head(new.seq, new.hash)
    chain.sql("UPDATE dataward_evidence_head SET hash = %s WHERE id = 1", (head.hash,))
    anchors = [f"{r.seq}:{r.hash}" for r in (original[1], original[-1])]
    status, report, _ = run_report(
        chain, tmp_path, "--expect-head", anchors[0], "--expect-head", anchors[1]
    )
    assert status == 1
    broken = report["chain"]["broken"]
    assert (broken["seq"], broken["check"]) == (3, "anchor")
    # Only records 1 and 2 count: the re-signed count of record 3 is nowhere.
    (tech,) = report["purges"]["byCategory"]
    assert (tech["rowsDeleted"], tech["evidence"]) == (120, [2])
    assert report["recordsInPeriod"] == 1
    assert "records 3 and later are left out" in report["gaps"][0]["message"]


def test_writers_whose_clocks_disagree_never_make_a_negative_duration(
    evidence_pg: EvidenceDatabase, tmp_path: Path
) -> None:
    # Two replicas append to one log; replica A's clock runs 2 minutes fast. A sees access
    # widened (False, by its clock 10:02 for a real 10:00); B, on time, sees it fixed at
    # 10:01, one record later. Appends are in chain order, the times are each writer's claim.
    fast = EvidenceLog.open(evidence_pg.database, evidence_pg.credentials, KEY,
                            clock=lambda: datetime(2026, 11, 2, 10, 2, tzinfo=UTC),
                            create_schema=True)  # fmt: skip
    on_time = EvidenceLog.open(evidence_pg.database, evidence_pg.credentials, KEY,
                               clock=lambda: datetime(2026, 11, 2, 10, 1, tzinfo=UTC))  # fmt: skip
    # A third writer's clock is years ahead; after its record, B finds foreign access again.
    ahead = EvidenceLog.open(evidence_pg.database, evidence_pg.credentials, KEY,
                             clock=lambda: datetime(2099, 1, 1, tzinfo=UTC))  # fmt: skip
    widened = {"type": "AccessRestricted", "status": "False", "previousStatus": "True",
               "reason": "OtherBindingGrantsSecrets"}  # fmt: skip
    restored = {"type": "AccessRestricted", "status": "True", "previousStatus": "False",
                "reason": "Restricted"}  # fmt: skip
    with fast, on_time, ahead:
        fast.append("condition.transition", CRM, widened)
        on_time.append("condition.transition", CRM, restored)
        ahead.append("condition.transition", "marketing/newsletter", restored)
        on_time.append("condition.transition", BILLING, widened)
    _, report, _ = run_report(evidence_pg, tmp_path)  # the schema's minimum 0 included
    (store,) = [s for s in report["stores"] if s["subject"] == CRM]
    (condition,) = store["conditions"]
    assert condition["secondsNotTrue"] >= 0
    # Both findings, also the one appended after the record dated 2099.
    found = [(f["subject"], f["foundSeq"]) for f in report["foreignAccess"]]
    assert found == [(CRM, 1), (BILLING, 4)]
    (gap,) = [g for g in report["gaps"] if g["code"] == "time-order"]
    assert gap["evidence"] == [1, 2, 3, 4] and "clocks" in gap["message"]
