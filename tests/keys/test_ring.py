"""The key ring: generation, rotation, the Secret format, append-only, fingerprints."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dataward.keys.ring import (
    KeyRing,
    KeyRingError,
    KeyVersion,
    add_bucket_keys,
    append_only_violations,
    fingerprint,
    format_time,
    generate_ring,
    is_append_only,
    parse_ring,
    parse_ring_json,
    rotate,
    rotation_decision,
    rotation_due,
    serialise,
)
from dataward.model.durations import Duration

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def secret_json(ring: KeyRing) -> dict[str, object]:
    document: dict[str, object] = json.loads(base64.b64decode(serialise(ring)["keyring.json"]))
    return document


def test_a_new_ring_has_one_aes_256_primary_key() -> None:
    ring = generate_ring(T0)
    assert ring.primary == 1
    assert len(ring.keys) == 1
    key = ring.primary_key
    assert (key.id, key.algorithm, key.created) == (1, "AES-256-GCM", T0)
    assert len(key.material) == 32


def test_two_rings_never_share_material() -> None:
    assert generate_ring(T0).primary_key.material != generate_ring(T0).primary_key.material


def test_rotation_adds_the_next_id_as_primary_and_keeps_the_old_keys() -> None:
    ring = generate_ring(T0)
    rotated = rotate(ring, T0 + timedelta(days=30))
    assert rotated.primary == 2
    assert [k.id for k in rotated.keys] == [1, 2]
    assert rotated.key(1) == ring.key(1)
    assert rotated.key(2).material != ring.key(1).material
    assert rotate(rotated, T0).primary == 3


def test_serialise_writes_the_api_format() -> None:
    ring = rotate(generate_ring(T0), T0 + timedelta(days=1))
    document = secret_json(ring)
    assert document["primary"] == 2
    assert document["keys"] == [
        {
            "id": key.id,
            "algorithm": "AES-256-GCM",
            "created": key.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "material": base64.b64encode(key.material).decode(),
        }
        for key in ring.keys
    ]
    assert list(serialise(ring)) == ["keyring.json"]


def test_round_trip() -> None:
    ring = rotate(rotate(generate_ring(T0), T0 + timedelta(days=30)), T0 + timedelta(days=60))
    assert parse_ring(serialise(ring)) == ring


def test_creation_times_lose_only_sub_second_precision() -> None:
    ring = generate_ring(T0 + timedelta(microseconds=123456))
    assert parse_ring(serialise(ring)) == ring
    assert ring.primary_key.created == T0


def _data(document: object) -> dict[str, str]:
    return {"keyring.json": base64.b64encode(json.dumps(document).encode()).decode()}


def _good() -> dict[str, object]:
    return secret_json(generate_ring(T0))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, "no 'keyring.json'"),
        ({}, "no 'keyring.json'"),
        ({"keyring.json": "not base64!"}, "not base64"),
        ({"keyring.json": base64.b64encode(b"{not json").decode()}, "not JSON"),
        ({"keyring.json": base64.b64encode(b"[" * 100000).decode()}, "not JSON"),
        (_data([1, 2]), "JSON object"),
        (_data({**_good(), "primary": "1"}), "'primary'"),
        (_data({**_good(), "primary": True}), "'primary'"),
        (_data({**_good(), "keys": []}), "'keys'"),
        (_data({**_good(), "primary": 7}), "primary key 7 is not in the ring"),
    ],
)
def test_malformed_rings_are_rejected_with_a_clear_error(
    data: dict[str, str] | None, expected: str
) -> None:
    with pytest.raises(KeyRingError, match=expected):
        parse_ring(data)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": 0}, r"keys\[0\]\.id"),
        ({"id": "1"}, r"keys\[0\]\.id"),
        ({"algorithm": "AES-128-GCM"}, r"keys\[0\]\.algorithm"),
        ({"created": "yesterday"}, r"keys\[0\]\.created"),
        ({"created": "2025-01-01T00:00:00"}, "time zone"),
        # Valid RFC 3339, but no UTC instant: before year 1 or after 9999 once in UTC.
        ({"created": "0001-01-01T00:00:00+05:00"}, r"keys\[0\]\.created"),
        ({"created": "9999-12-31T23:59:59-05:00"}, r"keys\[0\]\.created"),
        ({"material": "%%%"}, r"keys\[0\]\.material is not base64"),
        ({"material": base64.b64encode(b"short").decode()}, "32 bytes"),
    ],
)
def test_malformed_keys_are_rejected_naming_the_field(
    change: dict[str, object], expected: str
) -> None:
    document = _good()
    keys = document["keys"]
    assert isinstance(keys, list)
    keys[0] = {**keys[0], **change}
    with pytest.raises(KeyRingError, match=expected):
        parse_ring(_data(document))


def test_duplicate_ids_are_rejected() -> None:
    document = _good()
    keys = document["keys"]
    assert isinstance(keys, list)
    document["keys"] = [keys[0], keys[0]]
    with pytest.raises(KeyRingError, match="unique"):
        parse_ring(_data(document))


def test_errors_never_echo_material() -> None:
    document = _good()
    keys = document["keys"]
    assert isinstance(keys, list)
    material = keys[0]["material"]
    keys[0] = {**keys[0], "material": material[:-4] + "AAA"}  # broken padding
    with pytest.raises(KeyRingError) as caught:
        parse_ring(_data(document))
    assert material[:20] not in str(caught.value)
    bad_length = base64.b64encode(b"x" * 31).decode()
    keys[0] = {**keys[0], "material": bad_length}
    with pytest.raises(KeyRingError) as caught:
        parse_ring(_data(document))
    assert bad_length not in str(caught.value)


def test_a_mounted_json_file_parses_the_same() -> None:
    ring = generate_ring(T0)
    text = base64.b64decode(serialise(ring)["keyring.json"]).decode()
    assert parse_ring_json(text) == ring


def test_repr_never_shows_material() -> None:
    ring = rotate(generate_ring(T0), T0)
    text = repr(ring) + str(ring) + repr(ring.keys[0]) + str(ring.keys)
    for key in ring.keys:
        assert key.material.hex() not in text
        assert base64.b64encode(key.material).decode() not in text
        assert repr(key.material) not in text
        assert fingerprint(key) in text


def test_fingerprints_differ_per_key_and_do_not_contain_material() -> None:
    ring = rotate(rotate(generate_ring(T0), T0), T0)
    prints = ring.fingerprints()
    assert len(set(prints.values())) == 3
    for key in ring.keys:
        value = prints[key.id]
        assert len(value) == 16
        int(value, 16)
        assert value not in key.material.hex()
        assert value == fingerprint(key)  # stable


def test_fingerprint_is_domain_separated_from_a_plain_hash() -> None:
    import hashlib

    key = generate_ring(T0).primary_key
    assert fingerprint(key) != hashlib.sha256(key.material).hexdigest()[:16]


# Append-only


def test_rotation_is_append_only() -> None:
    ring = generate_ring(T0)
    assert is_append_only(ring, rotate(ring, T0))
    assert append_only_violations(ring, ring) == []


def test_removing_a_key_is_a_violation() -> None:
    old = rotate(generate_ring(T0), T0)
    new = KeyRing(primary=2, keys=(old.key(2),))
    assert append_only_violations(old, new) == ["key 1 was removed"]
    assert not is_append_only(old, new)


def test_changing_material_is_a_violation() -> None:
    old = generate_ring(T0)
    replaced = generate_ring(T0)
    assert append_only_violations(old, replaced) == ["key 1 has different material"]


def test_changing_algorithm_or_creation_time_is_a_violation() -> None:
    old = generate_ring(T0)
    key = old.primary_key
    other = KeyRing(1, (dataclasses.replace(key, algorithm="X", created=T0 + timedelta(1)),))
    assert append_only_violations(old, other) == [
        "key 1 has a different algorithm",
        "key 1 has a different creation time",
    ]


def test_moving_the_primary_back_is_a_violation() -> None:
    old = rotate(generate_ring(T0), T0)
    new = KeyRing(primary=1, keys=old.keys)
    assert append_only_violations(old, new) == ["primary moved back from key 2 to key 1"]


def test_adding_a_key_below_the_newest_id_is_a_violation() -> None:
    first = generate_ring(T0).primary_key
    third = dataclasses.replace(rotate(rotate(generate_ring(T0), T0), T0).key(3))
    old = KeyRing(3, (first, third))
    inserted = KeyVersion(2, "AES-256-GCM", T0, b"\x01" * 32)
    new = KeyRing(3, (first, inserted, third))
    assert append_only_violations(old, new) == ["key 2 was added below the newest existing id"]


def test_every_violation_is_reported() -> None:
    old = rotate(generate_ring(T0), T0)
    new = generate_ring(T0)  # key 2 gone, key 1 replaced, primary moved back
    assert len(append_only_violations(old, new)) == 3


# Rotation timing

THIRTY_DAYS = Duration(30, "d")


def test_no_rotation_while_the_primary_is_young() -> None:
    ring = generate_ring(T0)
    decision = rotation_decision(ring, T0 + timedelta(days=29, hours=23), THIRTY_DAYS)
    assert not decision.due
    assert decision.next_rotation == T0 + timedelta(days=30)


def test_rotation_once_the_primary_reaches_its_maximum_age() -> None:
    ring = generate_ring(T0)
    assert rotation_due(ring, T0 + timedelta(days=30), THIRTY_DAYS)
    assert rotation_due(ring, T0 + timedelta(days=400), THIRTY_DAYS)


def test_never_faster_than_half_the_period_after_the_last_rotation() -> None:
    ring = generate_ring(T0)
    last = T0 + timedelta(days=31)  # status says a rotation happened then
    now = T0 + timedelta(days=40)
    decision = rotation_decision(ring, now, THIRTY_DAYS, last_rotation=last)
    assert not decision.due
    assert decision.next_rotation == last + timedelta(days=15)
    assert rotation_due(ring, last + timedelta(days=15), THIRTY_DAYS, last_rotation=last)


def test_a_newer_non_primary_key_also_counts_as_the_last_rotation() -> None:
    old_primary = generate_ring(T0).primary_key
    newer = KeyVersion(2, "AES-256-GCM", T0 + timedelta(days=60), b"\x02" * 32)
    ring = KeyRing(primary=1, keys=(old_primary, newer))
    assert not rotation_due(ring, T0 + timedelta(days=70), THIRTY_DAYS)
    assert rotation_due(ring, T0 + timedelta(days=75), THIRTY_DAYS)


def test_a_bucket_key_made_since_is_no_rotation() -> None:
    """Month keys are made ahead at every turn of a month: were each a rotation, a primary of
    90 days (never within 45 days of the last) would never rotate while months go by."""
    ring = generate_ring(T0)
    for month in range(2, 5):  # February's, March's and April's keys, each made on the 1st
        made = datetime(2025, month, 1, tzinfo=UTC)
        ring = add_bucket_keys(ring, (f"2025-{month + 1:02d}",), made)
    ninety = Duration(90, "d")
    assert not rotation_due(ring, T0 + timedelta(days=89), ninety)
    assert rotation_due(ring, T0 + timedelta(days=90), ninety)  # Apr 1, 12:00
    assert rotation_decision(ring, T0, ninety).next_rotation == T0 + timedelta(days=90)


def test_a_zero_period_still_waits_at_least_an_hour() -> None:
    ring = generate_ring(T0)
    assert not rotation_due(ring, T0 + timedelta(minutes=59), Duration(0, "d"))
    assert rotation_due(ring, T0 + timedelta(hours=1), Duration(0, "d"))


def test_calendar_periods_use_calendar_arithmetic() -> None:
    ring = generate_ring(datetime(2025, 1, 31, tzinfo=UTC))
    one_month = Duration(1, "mo")
    assert not rotation_due(ring, datetime(2025, 2, 27, tzinfo=UTC), one_month)
    assert rotation_due(ring, datetime(2025, 2, 28, tzinfo=UTC), one_month)


def test_times_are_written_in_utc_to_the_second_with_four_digit_years() -> None:
    seoul = timezone(timedelta(hours=9))
    assert format_time(datetime(2026, 12, 1, 8, 30, 5, 999999, tzinfo=seoul)) == (
        "2026-11-30T23:30:05Z"
    )
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"


def test_remembered_times_are_formatted_as_the_instant_they_are() -> None:
    # format_time remembers the last UTC times formatted (issue 11). Two equal times of one
    # zone may be an hour apart (at a fold, `fold` is ignored by ==): each is its own instant.
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=berlin)
    second = first.replace(fold=1)
    assert first == second
    assert format_time(first) == "2026-10-25T00:30:00Z"
    assert format_time(second) == "2026-10-25T01:30:00Z"
    assert format_time(datetime(2026, 1, 1, 8, tzinfo=UTC)) == "2026-01-01T08:00:00Z"
    assert format_time(datetime(2026, 1, 1, 8, 0, 1, tzinfo=UTC)) == "2026-01-01T08:00:01Z"
    assert format_time(datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-01-01T08:00:00Z"
    )
