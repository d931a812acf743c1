"""Crypto-shredding from the application's side: a record's trigger picks its bucket's key,
and once that key is shredded the record cannot be decrypted, by this ring or any copy of it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dataward.keys import (
    Cipher,
    DecryptionError,
    KeyRingError,
    KeyShreddedError,
    NoBucketKeyError,
)
from dataward.keys.ring import (
    add_bucket_keys,
    append_only_violations,
    generate_ring,
    parse_ring_json,
    rotate,
    shred_buckets,
    to_json,
)

T0 = datetime(2026, 11, 3, tzinfo=UTC)
NOV, DEC = datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
PRIMARY, NOV_KEY, DEC_KEY = bytes([0x11]) * 32, bytes([0x22]) * 32, bytes([0x33]) * 32


def ring_text(shredded: bool = False) -> str:
    """A ring written by hand in the documented format (API.md), not by the code under test."""
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    keys = [
        {"id": 1, "algorithm": "AES-256-GCM", "created": "2026-11-01T00:00:00Z",
         "material": b64(PRIMARY)},
        {"id": 3, "algorithm": "AES-256-GCM", "created": "2026-11-01T00:00:00Z",
         "material": b64(DEC_KEY), "bucket": "2026-12"},
    ]  # fmt: skip
    document: dict[str, object] = {"primary": 1, "keys": keys}
    nov = {"id": 2, "algorithm": "AES-256-GCM", "created": "2026-11-01T00:00:00Z",
           "material": b64(NOV_KEY), "bucket": "2026-11"}  # fmt: skip
    if shredded:
        document["shredded"] = [{"id": 2, "bucket": "2026-11", "shredded": "2027-01-01T00:00:00Z"}]
    else:
        keys.insert(1, nov)
    return json.dumps(document)


def test_the_trigger_picks_its_months_key_and_the_blob_names_it() -> None:
    cipher = Cipher(parse_ring_json(ring_text()))
    blob = cipher.encrypt(b"jane@example.com", b"orders.email:7", trigger=NOV)
    assert blob[0] == 1 and int.from_bytes(blob[1:5], "big") == 2
    # Known answer: plain AES-256-GCM with November's key, header authenticated with the AAD.
    clear = AESGCM(NOV_KEY).decrypt(blob[5:17], blob[17:], blob[:17] + b"orders.email:7")
    assert clear == b"jane@example.com"
    assert int.from_bytes(cipher.encrypt(b"x", trigger=DEC)[1:5], "big") == 3
    assert int.from_bytes(cipher.encrypt(b"x")[1:5], "big") == 1  # no trigger: the primary


def test_a_blob_made_elsewhere_with_the_bucket_key_decrypts() -> None:
    header = bytes([1]) + (3).to_bytes(4, "big") + bytes(range(12))
    blob = header + AESGCM(DEC_KEY).encrypt(header[5:], b"order 7", header + b"ctx")
    assert Cipher(parse_ring_json(ring_text())).decrypt(blob, b"ctx") == b"order 7"


def test_a_shredded_bucket_cannot_be_decrypted_and_the_others_still_can() -> None:
    before = Cipher(parse_ring_json(ring_text()))
    nov_blob = before.encrypt(b"november record", trigger=NOV)
    dec_blob = before.encrypt(b"december record", trigger=DEC)
    after = Cipher(parse_ring_json(ring_text(shredded=True)))
    with pytest.raises(KeyShreddedError, match="bucket 2026-11 was shredded") as caught:
        after.decrypt(nov_blob)
    assert isinstance(caught.value, DecryptionError)
    assert base64.b64encode(NOV_KEY).decode() not in str(caught.value)
    assert after.decrypt(dec_blob) == b"december record"
    # Writing a new record of the shredded month is refused, not sent to another key.
    with pytest.raises(NoBucketKeyError, match="2026-11 was shredded"):
        after.encrypt(b"late", trigger=NOV)


def test_no_key_for_the_trigger_is_an_error_never_the_primary() -> None:
    cipher = Cipher(parse_ring_json(ring_text()))
    with pytest.raises(NoBucketKeyError, match="no key for bucket 2027-03"):
        cipher.encrypt(b"x", trigger=datetime(2027, 3, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="time zone"):  # a naive time has no UTC month
        cipher.encrypt(b"x", trigger=datetime(2026, 11, 20))
    # A local time late on Nov 30 is December in UTC.
    late = datetime(2026, 11, 30, 22, tzinfo=timezone(timedelta(hours=-5)))
    assert int.from_bytes(cipher.encrypt(b"x", trigger=late)[1:5], "big") == 3


def test_a_ring_without_buckets_reads_as_before_and_round_trips() -> None:
    old = '{"primary":1,"keys":[{"id":1,"algorithm":"AES-256-GCM",' \
          '"created":"2025-01-01T00:00:00Z","material":"' + base64.b64encode(PRIMARY).decode() \
          + '"}]}'  # fmt: skip
    ring = parse_ring_json(old)
    assert ring.shredded == () and ring.buckets == () and to_json(ring) == old
    assert parse_ring_json(ring_text(shredded=True)).shredded[0].bucket == "2026-11"
    again = parse_ring_json(to_json(parse_ring_json(ring_text(shredded=True))))
    assert again == parse_ring_json(ring_text(shredded=True))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["keys"][1].update(bucket="2026-13"),
        lambda d: d["keys"][1].update(bucket=202611),
        lambda d: d["keys"][0].update(bucket="2026-10"),  # the primary as a bucket key
        lambda d: d["keys"][2].update(bucket="2026-11"),  # two keys for one month
        lambda d: d.update(shredded=[{"id": 2, "bucket": "2026-09", "shredded": "2027-01-01Z"}]),
        lambda d: d.update(shredded=[{"id": 2, "bucket": "2026-09",
                                      "shredded": "2027-01-01T00:00:00Z"}]),  # id still a key
        lambda d: d.update(shredded={"id": 9}),
    ],
)
def test_malformed_bucket_parts_are_refused(change: object) -> None:
    document = json.loads(ring_text())
    change(document)  # type: ignore[operator]
    with pytest.raises(KeyRingError) as caught:
        parse_ring_json(json.dumps(document))
    assert base64.b64encode(NOV_KEY).decode() not in str(caught.value)


def test_shredding_is_the_one_removal_and_ids_are_never_reused() -> None:
    ring = add_bucket_keys(generate_ring(T0), ("2026-11", "2026-12"), T0)
    assert [(k.id, k.bucket) for k in ring.keys] == [(1, None), (2, "2026-11"), (3, "2026-12")]
    shredded = shred_buckets(ring, ("2026-11",), T0 + timedelta(days=60))
    assert [k.id for k in shredded.keys] == [1, 3]
    assert append_only_violations(ring, shredded, shredding=("2026-11",)) == []
    assert append_only_violations(ring, shredded) == ["key 2 was removed"]
    # Removing a key that is not due, even with a shredded record, is refused.
    assert append_only_violations(ring, shred_buckets(ring, ("2026-12",), T0),
                                  shredding=("2026-11",)) == ["key 3 was removed"]  # fmt: skip
    # Rotating after shredding the newest key gives a new id, not the shredded one's.
    newest = shred_buckets(ring, ("2026-12",), T0)
    assert rotate(newest, T0).primary == 4
    assert add_bucket_keys(newest, ("2027-01",), T0).bucket_key("2027-01").id == 4  # type: ignore[union-attr]
    # A shredded record may not be dropped later (that would free its id and hide it).
    dropped = parse_ring_json(to_json(shredded).replace(',"shredded":[', ',"x":['))
    assert "the record of shredded key 2 was changed" in append_only_violations(shredded, dropped)
