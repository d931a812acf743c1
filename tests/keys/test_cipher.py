"""The application helper: encrypt with the primary, decrypt with any version."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dataward.keys import BLOB_VERSION, Cipher, DecryptionError
from dataward.keys.ring import generate_ring, rotate, serialise

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_round_trip_with_associated_data() -> None:
    cipher = Cipher(generate_ring(T0))
    blob = cipher.encrypt(b"jane@example.com", b"customers.email:42")
    assert cipher.decrypt(blob, b"customers.email:42") == b"jane@example.com"
    assert b"jane@example.com" not in blob


def test_blob_format_is_version_key_id_nonce_ciphertext() -> None:
    ring = rotate(rotate(generate_ring(T0), T0), T0)
    blob = Cipher(ring).encrypt(b"abc")
    assert blob[0] == BLOB_VERSION
    assert int.from_bytes(blob[1:5], "big") == 3
    assert len(blob) == 1 + 4 + 12 + 3 + 16


def test_nonces_are_fresh_for_each_encryption() -> None:
    cipher = Cipher(generate_ring(T0))
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")


def test_old_versions_decrypt_after_rotation_and_new_data_uses_the_new_primary() -> None:
    ring = generate_ring(T0)
    old_blob = Cipher(ring).encrypt(b"before rotation")
    rotated = rotate(ring, T0 + timedelta(days=90))
    cipher = Cipher(rotated)
    assert cipher.decrypt(old_blob) == b"before rotation"
    new_blob = cipher.encrypt(b"after")
    assert int.from_bytes(new_blob[1:5], "big") == 2
    with pytest.raises(DecryptionError, match="key 2 is not in this ring"):
        Cipher(ring).decrypt(new_blob)


@pytest.mark.parametrize("position", [0 + 17, 20, -1, -16])
def test_tampering_with_the_ciphertext_is_detected(position: int) -> None:
    cipher = Cipher(generate_ring(T0))
    blob = bytearray(cipher.encrypt(b"secret value"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError, match="altered"):
        cipher.decrypt(bytes(blob))


def test_tampering_with_the_nonce_is_detected() -> None:
    cipher = Cipher(generate_ring(T0))
    blob = bytearray(cipher.encrypt(b"secret value"))
    blob[6] ^= 0x80
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(blob))


def test_moving_a_blob_to_another_key_id_fails() -> None:
    ring = rotate(generate_ring(T0), T0)
    cipher = Cipher(ring)
    blob = bytearray(cipher.encrypt(b"x"))
    blob[1:5] = (1).to_bytes(4, "big")
    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(blob))


def test_wrong_associated_data_fails() -> None:
    cipher = Cipher(generate_ring(T0))
    blob = cipher.encrypt(b"x", b"row:1")
    with pytest.raises(DecryptionError):
        cipher.decrypt(blob, b"row:2")


def test_unknown_format_version_and_short_blobs_are_refused() -> None:
    cipher = Cipher(generate_ring(T0))
    blob = cipher.encrypt(b"x")
    with pytest.raises(DecryptionError, match="version 2"):
        cipher.decrypt(bytes([2]) + blob[1:])
    with pytest.raises(DecryptionError, match="too short"):
        cipher.decrypt(blob[:20])


def test_a_different_ring_cannot_decrypt() -> None:
    blob = Cipher(generate_ring(T0)).encrypt(b"x")
    with pytest.raises(DecryptionError):
        Cipher(generate_ring(T0)).decrypt(blob)


def test_from_secret_data_and_from_mounted_file(tmp_path: Path) -> None:
    ring = rotate(generate_ring(T0), T0)
    data = serialise(ring)
    path = tmp_path / "keyring.json"
    path.write_bytes(base64.b64decode(data["keyring.json"]))
    blob = Cipher.from_secret_data(data).encrypt(b"hello")
    assert Cipher.from_mounted_file(path).decrypt(blob) == b"hello"
    assert Cipher.from_mounted_file(path).primary_key_id == 2


def test_repr_shows_no_material() -> None:
    ring = generate_ring(T0)
    text = repr(Cipher(ring))
    assert ring.primary_key.material.hex() not in text
    assert text == "Cipher(primary=1, versions=[1])"
