"""The pure parts of data-subject requests: the store field and its admission, identifiers,
the plan and its gates, the sealed export, the result."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dataward.model.errors import ModelError
from dataward.model.policy import parse_policy
from dataward.model.store import SubjectColumn, parse_store
from dataward.purge.errors import PurgeError
from dataward.subjects import export
from dataward.subjects.identifiers import Identifiers, load_identifiers, parse_identifiers
from dataward.subjects.plan import (
    Trigger,
    acknowledge_token,
    large_match,
    legal_hold,
    lifecycle_of,
    plan_request,
    row_fate,
)
from dataward.subjects.result import SubjectResult, TableOutcome
from dataward.validation import validate_object
from tests.admission_cases import STORE, patched, put
from tests.purge.support import POLICY

RECORD = "/spec/records/0"
COLUMNS = f"{RECORD}/subjectColumns"
SECRET = "kim.minji+dw@example.com"


# --------------------------------------------------------------------- CRD and the model


def _store(columns: Any) -> dict[str, Any]:
    return patched(STORE, put(COLUMNS, columns))


def test_subject_columns_are_accepted_and_parsed() -> None:
    doc = _store(
        [{"kind": "email", "column": "email"}, {"kind": "customer-id", "column": "cust_no"}]
    )
    assert validate_object(doc) == []
    records = parse_store(doc).records[0]
    assert records.subject_columns == (
        SubjectColumn("email", "email"),
        SubjectColumn("customer-id", "cust_no"),
    )
    assert parse_store(patched(STORE, ())).records[0].subject_columns == ()


@pytest.mark.parametrize(
    ("columns", "where"),
    [
        ([{"kind": "Email", "column": "email"}], "subjectColumns[0].kind"),
        ([{"kind": "e_mail", "column": "email"}], "subjectColumns[0].kind"),
        ([{"kind": "-email", "column": "email"}], "subjectColumns[0].kind"),
        ([{"kind": "email", "column": "email; DROP TABLE t"}], "subjectColumns[0].column"),
        ([{"kind": "email", "column": "lower(email)"}], "subjectColumns[0].column"),
        ([{"kind": "email", "column": "`email`"}], "subjectColumns[0].column"),
        ([{"kind": "email"}], "subjectColumns[0].column"),
        ([{"column": "email"}], "subjectColumns[0].kind"),
        ([{"kind": "email", "column": "email", "like": True}], "subjectColumns[0].like"),
        (
            [{"kind": "email", "column": "email"}, {"kind": "email", "column": "email2"}],
            "subjectColumns[1]",
        ),
        ([{"kind": f"k{i}", "column": "c"} for i in range(17)], "subjectColumns"),
    ],
)
def test_bad_subject_columns_are_refused_at_the_field(columns: Any, where: str) -> None:
    errors = validate_object(_store(columns))
    assert errors, "admitted"
    assert any(e.path == f"spec.records[0].{where}" for e in errors), errors


def test_the_model_refuses_a_repeated_kind_too() -> None:
    doc = _store([{"kind": "email", "column": "a"}, {"kind": "email", "column": "b"}])
    with pytest.raises(ModelError, match="listed twice"):
        parse_store(doc)


# ------------------------------------------------------------------------------ identifiers


def _secret(tmp_path: Path, files: dict[str, bytes]) -> Path:
    target = tmp_path / "..2026_12_01"
    target.mkdir()
    for name, data in files.items():
        (target / name).write_bytes(data)
        (tmp_path / name).symlink_to(f"..2026_12_01/{name}")
    (tmp_path / "..data").symlink_to("..2026_12_01")
    return tmp_path


def test_identifiers_come_from_a_mounted_secret(tmp_path: Path) -> None:
    found = load_identifiers(
        _secret(tmp_path, {"email": (SECRET + "\n").encode(), "phone": b" 010 \n\n"})
    )
    assert dict(found) == {"email": SECRET, "phone": " 010 \n"}  # one line break only
    assert found.kinds == {"email", "phone"}
    assert SECRET not in repr(found) and SECRET not in str(found) and "email" in repr(found)


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"email": b"\n"}, "email identifier is empty"),
        ({"email": b" \t \n"}, "email identifier is blank"),
        ({"email": b"\n\n"}, "email identifier is blank"),
        ({"email": SECRET.encode() + b"\x00x"}, "NUL"),
        ({"email": SECRET.encode() + b"\xff"}, "not UTF-8"),
        ({"Email": SECRET.encode()}, "not a lowercase word"),
        ({"email": SECRET.encode() * 200}, "longer than"),
        ({}, "no identifier"),
    ],
)
def test_unusable_identifiers_are_refused_without_quoting_them(
    tmp_path: Path, files: dict[str, bytes], says: str
) -> None:
    with pytest.raises(PurgeError) as caught:
        load_identifiers(_secret(tmp_path, files))
    assert says in caught.value.message
    assert SECRET not in str(caught.value) and "kim.minji" not in str(caught.value)


def test_a_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(PurgeError, match="cannot read the identifier directory"):
        load_identifiers(tmp_path / "absent")


# ------------------------------------------------------------------------------------ plan


def _contract_store(**purge: Any) -> Any:
    doc = patched(STORE, ())
    doc["spec"]["policy"] = "clunix"
    doc["spec"]["category"] = "contracts"
    doc["spec"].pop("retention", None)
    doc["spec"]["records"] = [
        {"table": "people", "timestampColumn": "ts", "keyColumns": ["id"],
         "subjectColumns": [{"kind": "email", "column": "email"},
                            {"kind": "phone", "column": "phone"}]},
        {"table": "orders", "timestampColumn": "ts", "keyColumns": ["id"],
         "subjectColumns": [{"kind": "customer-id", "column": "customer"}]},
        {"table": "audit", "timestampColumn": "ts", "keyColumns": ["id"]},
    ]  # fmt: skip
    doc["spec"]["purge"] = purge
    return parse_store(doc)


POLICY_MODEL = parse_policy(POLICY)


def test_the_plan_matches_only_the_kinds_supplied() -> None:
    plan = plan_request(_contract_store(), POLICY_MODEL, {"email", "fax"})
    assert [(t.table, [c.column for c in t.matches]) for t in plan.tables] == [
        ("people", ["email"])
    ]
    assert plan.not_searchable == ("orders", "audit")
    life = plan.lifecycle
    assert (life.category, life.statute, str(life.statutory), str(life.retention)) == (
        "contracts",
        "E-Commerce Act",
        "5y",
        "1mo",
    )
    both = plan_request(_contract_store(), POLICY_MODEL, {"email", "phone", "customer-id"})
    assert [len(t.matches) for t in both.tables] == [2, 1] and both.not_searchable == ("audit",)


def test_a_store_whose_category_is_gone_is_refused() -> None:
    store = _contract_store()
    gone = parse_policy({**POLICY, "spec": {"categories": POLICY["spec"]["categories"][:1]}})
    with pytest.raises(PurgeError) as caught:
        lifecycle_of(store, gone)
    assert caught.value.category == "NotCompliant"
    with pytest.raises(PurgeError):
        lifecycle_of(store, None)


def test_row_fate_keeps_what_the_statute_still_covers() -> None:
    life = lifecycle_of(_contract_store(), POLICY_MODEL)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    five_years_ago = datetime(2021, 12, 1, 12, tzinfo=UTC)
    assert row_fate(Trigger(five_years_ago), life, now) == "delete"  # kept until exactly now: over
    assert row_fate(Trigger(five_years_ago + timedelta(microseconds=1)), life, now) == "archive"
    assert row_fate(Trigger(now - timedelta(days=3)), life, now) == "archive"
    assert row_fate(None, life, now) == "keep-live"
    assert life.kept_until(Trigger(now)) == datetime(2031, 12, 1, 12, tzinfo=UTC)
    plain = lifecycle_of(
        parse_store({**patched(STORE, ()), "spec": {**patched(STORE, ())["spec"],
                     "policy": "clunix", "category": "support", "retention": "1y"}}),
        POLICY_MODEL,
    )  # fmt: skip
    assert row_fate(None, plain, now) == row_fate(Trigger(now), plain, now) == "delete"
    assert plain.kept_until(Trigger(now)) is None


def test_legal_hold_holds_erasure_only() -> None:
    held = _contract_store(suspend=True)
    gate = legal_hold(held, "erasure")
    assert gate is not None and (gate.result, gate.reason) == ("Held", "LegalHold")
    assert legal_hold(held, "access") is None
    assert legal_hold(_contract_store(), "erasure") is None


def test_large_match_needs_the_token_of_this_count() -> None:
    store = _contract_store()
    token = acknowledge_token(store, POLICY_MODEL, 101)
    assert large_match(100, 100, token, None) is None
    gate = large_match(101, 100, token, None)
    assert gate is not None and gate.reason == "LargeMatch" and token in gate.message
    assert large_match(101, 100, token, token) is None
    assert large_match(101, 100, token, acknowledge_token(store, POLICY_MODEL, 100)) is not None


# ---------------------------------------------------------------------------------- export

# RFC 7748 section 6.1: Alice's and Bob's keys and their shared secret.
ALICE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_known_answer_from_the_rfc_7748_keys() -> None:
    """The blob is exactly: header | AES-256-GCM(HKDF-SHA256(shared, info), header as AAD)."""
    nonce = bytes(range(12))
    document = b'{"rows":[]}'
    blob = export.seal_with(
        document,
        X25519PublicKey.from_public_bytes(BOB_PUBLIC),
        X25519PrivateKey.from_private_bytes(ALICE),
        nonce,
    )
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"dataward subject export v1" + ALICE_PUBLIC + BOB_PUBLIC,
    ).derive(SHARED)
    header = b"DWSEAL01" + ALICE_PUBLIC + nonce
    assert blob == header + AESGCM(key).encrypt(nonce, document, header)
    assert export.open_sealed(blob, BOB) == document


def test_roundtrip_with_every_key_form() -> None:
    pair = export.generate_keypair()
    document = json.dumps({"email": SECRET}).encode()
    for public in (pair.public_pem, pair.public_raw, base64.b64encode(pair.public_raw)):
        blob = export.seal(document, public)
        assert SECRET.encode() not in blob
        for private in (pair.private_pem, pair.private_raw, base64.b64encode(pair.private_raw)):
            assert export.open_sealed(blob, private) == document
    assert export.seal(document, pair.public_pem) != export.seal(document, pair.public_pem)
    assert pair.private_pem.hex() not in repr(pair) and pair.private_raw.hex() not in repr(pair)


@pytest.mark.parametrize("position", [0, 7, 8, 39, 40, 51, 52, -17, -1])
def test_a_changed_byte_anywhere_is_refused(position: int) -> None:
    pair = export.generate_keypair()
    blob = bytearray(export.seal(SECRET.encode(), pair.public_pem))
    blob[position] ^= 0x01
    with pytest.raises(export.SealError) as caught:
        export.open_sealed(bytes(blob), pair.private_pem)
    assert SECRET not in str(caught.value)


def test_a_wrong_or_cut_key_or_blob_is_refused() -> None:
    pair, other = export.generate_keypair(), export.generate_keypair()
    blob = export.seal(SECRET.encode(), pair.public_pem)
    with pytest.raises(export.SealError, match="wrong private key"):
        export.open_sealed(blob, other.private_pem)
    with pytest.raises(export.SealError, match="cut short"):
        export.open_sealed(blob[:60], pair.private_pem)
    ed = Ed25519PrivateKey.generate()
    ed_public = ed.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(export.SealError, match="not an X25519 key"):
        export.seal(b"x", ed_public)
    with pytest.raises(export.SealError):
        export.seal(b"x", b"not a key")


def _pem_of_unknown_algorithm(label: bytes) -> bytes:
    """A well-formed key in PEM whose algorithm is OID 1.2.3.4, which no library knows."""
    algorithm = b"\x30\x05\x06\x03\x2a\x03\x04"  # SEQUENCE { OID 1.2.3.4 }
    if label == b"PUBLIC KEY":  # SubjectPublicKeyInfo: the algorithm, a BIT STRING
        body = algorithm + b"\x03\x21\x00" + bytes(32)
    else:  # PKCS#8: version 0, the algorithm, an OCTET STRING
        body = b"\x02\x01\x00" + algorithm + b"\x04\x20" + bytes(32)
    der = b"\x30" + bytes([len(body)]) + body
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, base64.b64encode(der), label)


def test_a_pem_key_of_an_unknown_algorithm_is_a_seal_error_not_a_crash() -> None:
    """The library raises UnsupportedAlgorithm for it, which is no ValueError: it went past
    the callers that catch SealError (the request Job's --recipient-public-key, `open`)."""
    with pytest.raises(export.SealError):
        export.load_public_key(_pem_of_unknown_algorithm(b"PUBLIC KEY"))
    with pytest.raises(export.SealError):
        export.load_private_key(_pem_of_unknown_algorithm(b"PRIVATE KEY"))


def test_database_values_become_json() -> None:
    assert export.json_value(Decimal("10.50")) == "10.50"
    assert export.json_value(b"\x00\xff") == {"base64": "AP8="}
    assert export.json_value(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"
    assert export.json_value({"a": [Decimal(1)]}) == {"a": ["1"]}


# ---------------------------------------------------------------------------------- result


def test_the_result_fits_the_termination_message() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    tables = tuple(
        TableOutcome(f"schema_{i:02}.table_with_a_long_name_{i:02}", rows_found=i, rows_kept=1,
                     kept_until=at + timedelta(days=i), statute="E-Commerce Act")
        for i in range(64)
    )  # fmt: skip
    result = SubjectResult("crm/st", "erasure", "Succeeded", False, at, at, "x" * 3000,
                           tables=tables)  # fmt: skip
    full = json.loads(result.to_json())
    assert full["rowsFound"] == sum(range(64)) and full["keptUntil"] == "2027-02-02T00:00:00Z"
    assert full["tables"][3]["rowsKept"] == 1 and full["type"] == "erasure"
    short = result.termination_message()
    assert len(short.encode()) <= 4096
    parsed = json.loads(short)
    assert parsed["tablesOmitted"] == 64 and parsed["rowsFound"] == full["rowsFound"]


def test_identifiers_mapping_is_read_only_and_sorted() -> None:
    found = parse_identifiers({"phone": "1", "email": "2"})
    assert isinstance(found, Identifiers) and list(found) == ["email", "phone"]


def test_an_unexpected_error_is_reported_by_its_type_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from dataward.commands import subject_request

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"invalid input syntax: {SECRET}")

    monkeypatch.setattr(subject_request, "run_request", explode)
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids" / "email").write_text(SECRET)
    store = tmp_path / "store.yaml"
    policy = tmp_path / "policy.yaml"
    doc = patched(STORE, ())
    doc["spec"].update({"policy": "clunix", "category": "support", "retention": "1y"})
    store.write_text(json.dumps(doc))
    policy.write_text(json.dumps(POLICY))
    args = subject_request_args(
        argparse, ["run", "--type", "erasure", "-f", str(store), "--policy", str(policy),
                   "--identifier-dir", str(tmp_path / "ids")],
    )  # fmt: skip
    environ = {
        f"DATAWARD_{w}_{k}": "x" for w in ("DB", "ARCHIVE") for k in ("USERNAME", "PASSWORD")
    }
    result = subject_request.execute(args, environ)
    assert (result.outcome, result.reason) == ("Failed", "Internal")
    assert "ValueError" in result.message and SECRET not in result.to_json()


def subject_request_args(argparse: Any, argv: list[str]) -> Any:
    from dataward.cli import build_parser

    parsed = build_parser().parse_args(["subject-request", *argv])
    assert isinstance(parsed, argparse.Namespace)
    return parsed


def test_keygen_never_replaces_a_key(tmp_path: Path) -> None:
    from dataward.cli import main

    key, pub = tmp_path / "k", tmp_path / "p"
    assert main(["subject-request", "keygen", "--private-key-out", str(key),
                 "--public-key-out", str(pub)]) == 0  # fmt: skip
    first = key.read_bytes()
    assert key.stat().st_mode & 0o077 == 0 and b"PRIVATE KEY" in first
    assert main(["subject-request", "keygen", "--private-key-out", str(key),
                 "--public-key-out", str(tmp_path / "p2")]) == 1  # fmt: skip
    assert key.read_bytes() == first and not (tmp_path / "p2").exists()
    sealed = export.seal(b"doc", pub.read_bytes())
    assert export.open_sealed(sealed, first) == b"doc"


def _never() -> Any:
    raise AssertionError("connected although nothing needed the database")


def test_held_or_unsearchable_requests_never_connect() -> None:
    from dataward.subjects.engine import RequestOptions, run_request

    clock = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # noqa: E731
    held = run_request(
        _contract_store(suspend=True), POLICY_MODEL, parse_identifiers({"email": SECRET}),
        "erasure", connect_live=_never, connect_archive=_never, job_clock=clock,
        options=RequestOptions(dry_run=True),
    )  # fmt: skip
    assert (held.result.outcome, held.result.reason) == ("Held", "LegalHold")
    assert held.result.dry_run and held.document is None

    nothing = run_request(
        _contract_store(), POLICY_MODEL, parse_identifiers({"fax": SECRET}), "access",
        connect_live=_never, connect_archive=_never, job_clock=clock,
    )  # fmt: skip
    # Nothing searched is no answer (tests/subjects/test_subjects_not_searchable.py).
    assert (nothing.result.outcome, nothing.result.reason) == ("Failed", "NotSearchable")
    assert nothing.result.not_searchable == ("people", "orders", "audit")
    assert nothing.document is None
    assert SECRET not in nothing.result.to_json() and SECRET not in repr(nothing)

    no_archive = run_request(
        _contract_store(), POLICY_MODEL, parse_identifiers({"email": SECRET}), "erasure",
        connect_live=_never, connect_archive=None, job_clock=clock,
    )  # fmt: skip
    assert (no_archive.result.outcome, no_archive.result.reason) == ("Failed", "Configuration")
