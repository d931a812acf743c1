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
    new = f"lets User {_documented(address)} read them."
    assert redact_addresses(old) == new == redact_addresses(new)


def test_a_name_that_looks_like_a_digest_is_not_shown_as_one() -> None:
    """`sha256:<hex>` is a valid account name. Shown as it is, a User named after the digest
    of jane.doe@example.com would read, in a message, as Jane: an auditor holding her address
    would check the digest and blame her for what that other account can read. In a message
    every `sha256:` word must be a digest Dataward made."""
    lookalike = _documented("jane.doe@example.com")
    assert shown(lookalike) == _documented(lookalike) != lookalike
    assert shown("sha256:x") == _documented("sha256:x")
    assert shown("sha256") == "sha256"  # only the prefix a digest is written with
