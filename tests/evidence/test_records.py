"""Canonical encoding, hashing, signing and the payload allow-lists: pure functions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from dataward.evidence import payloads
from dataward.evidence.errors import EvidenceError
from dataward.evidence.records import (
    canonical_json,
    content_hash,
    format_time,
    parse_payload,
    record_content,
)
from dataward.evidence.signing import (
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
    sign,
    signature_valid,
)
from tests.evidence.support import SAMPLES


def test_canonical_json_fixes_every_byte() -> None:
    value = {"b": [1, "é", None, True], "a": {"z": 0, "y": "x"}}
    assert canonical_json(value) == '{"a":{"y":"x","z":0},"b":[1,"\\u00e9",null,true]}'
    assert canonical_json(dict(reversed(list(value.items())))) == canonical_json(value)
    assert canonical_json(value).isascii()


@pytest.mark.parametrize(
    "value", [1.0, float("nan"), 2**53, {1: "a"}, {"a": object()}, b"bytes", {"a": [0.5]}]
)
def test_canonical_json_refuses_what_has_two_spellings(value: Any) -> None:
    with pytest.raises(EvidenceError):
        canonical_json(value)


def test_the_hash_is_sha256_over_the_canonical_content() -> None:
    content = record_content(1, "2026-12-01T03:17:00.000000Z", "key.created", "crm/s",
                             {"keyId": 1, "secret": "k"}, "0" * 64, "00112233aabbccdd")  # fmt: skip
    text = (
        '{"key":"00112233aabbccdd","kind":"key.created","payload":{"keyId":1,"secret":"k"},'
        '"prev":"' + "0" * 64 + '","seq":1,"subject":"crm/s",'
        '"time":"2026-12-01T03:17:00.000000Z","v":1}'
    )
    assert content_hash(content) == hashlib.sha256(text.encode()).hexdigest()


def test_times_are_utc_with_microseconds() -> None:
    seoul = timezone(timedelta(hours=9))
    assert format_time(datetime(2026, 12, 1, 12, 0, 0, 5, tzinfo=seoul)) == (
        "2026-12-01T03:00:00.000005Z"
    )
    with pytest.raises(EvidenceError):
        format_time(datetime(2026, 12, 1))


def test_a_stored_payload_must_be_a_json_object() -> None:
    assert parse_payload('{"a":1}') == {"a": 1}
    for text in ("[1]", "not json", ""):
        with pytest.raises(EvidenceError):
            parse_payload(text)


def test_signatures_verify_only_with_the_signing_key_and_hash() -> None:
    key, other = generate_key(), generate_key()
    digest = "ab" * 32
    signature = sign(key, digest)
    assert signature_valid(key.public_key(), digest, signature)
    assert not signature_valid(other.public_key(), digest, signature)
    assert not signature_valid(key.public_key(), "ac" + "ab" * 31, signature)
    assert not signature_valid(key.public_key(), digest, "not base64!")
    assert not signature_valid(key.public_key(), digest, "")
    assert key_id(key.public_key()) != key_id(other.public_key())
    assert len(key_id(key.public_key())) == 16


def test_keys_round_trip_through_pem_files(tmp_path: Path) -> None:
    key = generate_key()
    (tmp_path / "k").write_bytes(private_pem(key))
    (tmp_path / "p").write_bytes(public_pem(key.public_key()))
    loaded, public = load_private_key(tmp_path / "k"), load_public_key(tmp_path / "p")
    assert key_id(loaded.public_key()) == key_id(public) == key_id(key.public_key())
    with pytest.raises(EvidenceError, match="no PEM public key"):
        load_public_key(tmp_path / "k")
    with pytest.raises(EvidenceError, match="cannot read"):
        load_private_key(tmp_path / "absent")


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_kind_has_a_sample_that_passes(kind: str) -> None:
    subject, payload = SAMPLES[kind]
    clean = payloads.validate(kind, subject, payload)
    canonical_json(clean)  # normalised to what the encoding accepts (datetimes as text)
    assert set(payloads.KINDS) == set(SAMPLES)


@pytest.mark.parametrize(
    ("kind", "change", "words"),
    [
        # Secret data: fields the allow-list does not know are refused, at any depth.
        ("key.created", {"material": "c2VjcmV0"}, "'material' is not allowed"),
        ("key.rotated", {"password": "hunter2"}, "'password' is not allowed"),
        ("purge.run", {"tables": [{"table": "t", "rows": [{"email": "a@b.c"}]}]},
         "'rows' is not allowed"),
        # Personal data hiding in allowed fields: ids are opaque, names are names.
        ("request.answered", {"requestId": "jane.doe@example.com"}, "not an opaque id"),
        ("request.answered", {"requestId": "Jane Doe"}, "not an opaque id"),
        ("purge.run", {"tables": [{"table": "x; DROP TABLE y"}]}, "not a table name"),
        ("condition.transition", {"message": "line\nbreak"}, "control characters"),
        ("condition.transition", {"message": "x" * 1025}, "at most 1024"),
        # Shapes.
        ("purge.run", {"rowsDeleted": -1}, "not a count"),
        ("purge.run", {"rowsDeleted": True}, "not a count"),
        ("purge.run", {"rowsDeleted": 2**63}, "not a count"),  # beyond status' int64
        ("purge.run", {"result": "Great"}, "not one of"),
        ("purge.run", {"cutoff": "yesterday"}, "not an RFC 3339 time"),
        ("key.created", {"fingerprint": "not-hex"}, "not a hex digest"),
        ("policy.revision", {"categories": "newsletter"}, "must be a list"),
    ],
)  # fmt: skip
def test_payloads_outside_the_allow_list_are_refused(
    kind: str, change: dict[str, Any], words: str
) -> None:
    subject, payload = SAMPLES[kind]
    with pytest.raises(EvidenceError, match=words):
        payloads.validate(kind, subject, {**payload, **change})


def test_a_refusal_never_repeats_the_value() -> None:
    # The error may be logged: it must not carry the personal data it refused.
    with pytest.raises(EvidenceError) as caught:
        payloads.validate("request.answered", "crm/s", {"requestId": "jane.doe@example.com",
                                                         "requestType": "access",
                                                         "outcome": "fulfilled"})  # fmt: skip
    assert "jane" not in str(caught.value) and "requestId" in str(caught.value)
    with pytest.raises(EvidenceError) as caught:
        payloads.validate("key.shredded", "jane@example.com", {})
    assert "jane" not in str(caught.value)


def test_required_fields_unknown_kinds_and_bad_subjects_are_refused() -> None:
    with pytest.raises(EvidenceError, match="'dryRun' is required"):
        payloads.validate("purge.run", "crm/s", {"result": "Succeeded"})
    with pytest.raises(EvidenceError, match="'result' is required"):
        payloads.validate("purge.run", "crm/s", {"result": None, "dryRun": False})
    with pytest.raises(EvidenceError, match="unknown evidence kind"):
        payloads.validate("row.read", "crm/s", {})
    for subject in ("crm/s/x", "CRM/s", "jane@example.com", ""):
        with pytest.raises(EvidenceError, match="subject"):
            payloads.validate("key.shredded", subject, {"secret": "k", "keyId": 1,
                                                         "reason": "Erased"})  # fmt: skip


def test_datetimes_in_payloads_become_record_times() -> None:
    instant = datetime(2026, 12, 1, 3, 17, tzinfo=UTC)
    clean = payloads.validate("key.created", "crm/s", {"secret": "k", "keyId": 1,
                                                        "created": instant})  # fmt: skip
    assert clean["created"] == "2026-12-01T03:17:00.000000Z"


def test_a_purge_result_becomes_a_purge_run_payload() -> None:
    from dataward.purge.result import ErrorInfo, PurgeResult, TableResult

    start = datetime(2026, 12, 1, 3, 17, tzinfo=UTC)
    result = PurgeResult(
        store="crm/support-inquiries", result="Failed", dry_run=False, start_time=start,
        completion_time=start + timedelta(seconds=3.25), message="line one\nline two " * 100,
        reason="Timeout", cutoff=start - timedelta(days=365), acknowledge_token="tok-123",
        tables=(TableResult("support_inquiries", rows_deleted=5, archive_rows_destroyed=2,
                            oldest_expired_age_seconds=12.5),
                TableResult("crm.notes")),
        error=ErrorInfo("Timeout", "a statement hit the statement timeout"),
    )  # fmt: skip
    payload = payloads.purge_run_payload(result.to_dict())
    clean = payloads.validate("purge.run", "crm/support-inquiries", payload)
    assert clean["result"] == "Failed" and clean["reason"] == "Timeout"
    assert clean["rowsDeleted"] == 5 and clean["rowsDestroyed"] == 2
    expected = {
        "table": "support_inquiries", "rowsDeleted": 5, "rowsArchived": 0, "rowsDestroyed": 2,
        "expiredRemaining": 0, "nullTriggers": 0, "cutoff": "2025-12-01T03:17:00Z",
    }  # fmt: skip
    assert expected.items() <= clean["tables"][0].items()  # the purge may report more counts
    assert len(clean["message"]) == 1024 and "\n" not in clean["message"]
    text = canonical_json(clean)
    for left_out in ("store", "acknowledgeToken", "tok-123", "durationSeconds", "oldestExpired"):
        assert left_out not in text


def test_a_zoned_tables_evidence_is_not_stamped_with_the_runs_utc_cutoff() -> None:
    """A table whose trigger is a wall clock of records[].timeZone was cut at its own bound,
    on the zone's calendar (`zoneCutoff` in its result): the run's `cutoff` (UTC's calendar)
    is not that bound and is not recorded as the table's. Red on the old code: every table
    got the run's cutoff."""
    result = {
        "result": "Succeeded", "dryRun": False, "message": "m",
        "startTime": "2025-03-31T20:00:00Z", "completionTime": "2025-03-31T20:00:01Z",
        "cutoff": "2025-02-28T20:00:00Z",
        "tables": [
            {"table": "seoul_orders", "rowsDeleted": 1, "timeZone": "Asia/Seoul",
             "zoneCutoff": "2025-03-01T05:00:00"},
            {"table": "utc_orders", "rowsDeleted": 2},
        ],
    }  # fmt: skip
    clean = payloads.validate("purge.run", "crm/orders", payloads.purge_run_payload(result))
    zoned, plain = clean["tables"]
    assert zoned["table"] == "seoul_orders" and "cutoff" not in zoned
    assert plain["cutoff"] == clean["cutoff"] == "2025-02-28T20:00:00Z"
