"""The one rule for user and group names that may be personal data (dataward.accounts)."""

from __future__ import annotations

import hashlib

import pytest

from dataward.accounts import shown
from dataward.evidence.payloads import redact_addresses


def _documented(name: str) -> str:
    """README, "Records are metadata only": SHA-256 of `dataward/access-user\\0` + the name."""
    return "sha256:" + hashlib.sha256(b"dataward/access-user\x00" + name.encode()).hexdigest()


@pytest.mark.parametrize(
    "name", ["mallory", "system:evil", "system:serviceaccount:crm:api", "oidc:support", "A.b-c_d"]
)
def test_account_and_group_names_are_kept(name: str) -> None:
    assert shown(name) == name


@pytest.mark.parametrize(
    "name",
    ["jane.doe@example.com", "Jane Doe", "Jürgen", "https://issuer.example#1234", "-x", ""],
)
def test_other_names_are_kept_as_the_documented_digest(name: str) -> None:
    assert shown(name) == _documented(name)


def test_a_status_message_and_its_evidence_record_name_an_address_alike() -> None:
    """The evidence log digests words with `@` of messages it is given: an address the status
    already shows as its digest, and one an older message named, come out the same."""
    address = "jane.doe@example.com"
    old = f"lets User {address} read them."
    new = f"lets User {shown(address)} read them."
    assert redact_addresses(old) == new == redact_addresses(new)
