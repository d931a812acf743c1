"""The cross-object rules: a store against its policy."""

from __future__ import annotations

from dataward.model.compliance import (
    compliance_findings,
    effective_key_rotation,
    effective_retention,
)
from dataward.model.durations import Duration
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from tests.model import samples

POLICY = parse_policy(samples.POLICY)


def reasons(store_obj: dict[str, object]) -> list[str]:
    return [f.reason for f in compliance_findings(parse_store(store_obj), POLICY)]


def test_the_sample_store_complies() -> None:
    assert compliance_findings(parse_store(samples.STORE), POLICY) == []


def test_missing_policy() -> None:
    findings = compliance_findings(parse_store(samples.STORE), None)
    assert [f.reason for f in findings] == ["PolicyNotFound"]
    assert "clunix" in findings[0].message and findings[0].field == "spec.policy"


def test_policy_with_another_name_is_missing() -> None:
    other = parse_policy({**samples.POLICY, "metadata": {"name": "other"}})
    assert [f.reason for f in compliance_findings(parse_store(samples.STORE), other)] == [
        "PolicyNotFound"]


def test_missing_category_lists_the_known_ones() -> None:
    findings = compliance_findings(parse_store(samples.store(category="nope")), POLICY)
    assert [f.reason for f in findings] == ["CategoryNotFound"]
    assert "newsletter" in findings[0].message and "contract-records" in findings[0].message


def test_retention_longer_than_the_category() -> None:
    assert reasons(samples.store(retention="2y")) == ["RetentionTooLong"]
    assert reasons(samples.store(retention="366d")) == ["RetentionTooLong"]
    assert reasons(samples.store(retention="365d")) == []
    assert reasons(samples.store(retention="12mo")) == []


def test_retention_message_names_the_limit() -> None:
    finding = compliance_findings(parse_store(samples.store(retention="2y")), POLICY)[0]
    assert "1y" in finding.message and "technical-support-inquiry" in finding.message


def test_statutory_category_needs_an_archive() -> None:
    obj = samples.store(category="contract-records", retention=None)
    assert reasons(obj) == ["ArchiveRequired"]
    obj["spec"]["archive"] = samples.ARCHIVE
    assert reasons(obj) == []


def test_archive_on_a_non_statutory_category_is_refused() -> None:
    assert reasons(samples.store(archive=samples.ARCHIVE)) == ["ArchiveNotAllowed"]


def test_archive_must_be_a_separate_database() -> None:
    obj = samples.store(category="contract-records", retention=None)
    obj["spec"]["archive"] = {"database": dict(obj["spec"]["database"])}
    assert reasons(obj) == ["ArchiveNotSeparate"]


def test_key_rotation_must_be_stricter() -> None:
    assert reasons(samples.store(encryption={"keyRotation": "120d"})) == ["KeyRotationTooLong"]
    assert reasons(samples.store(encryption={"keyRotation": "90d"})) == []


def test_effective_values() -> None:
    category = POLICY.category("technical-support-inquiry")
    assert category is not None
    assert effective_retention(parse_store(samples.STORE), category) == Duration(180, "d")
    assert effective_retention(parse_store(samples.store(retention=None)), category) == Duration(
        1, "y")
    assert effective_key_rotation(parse_store(samples.STORE), POLICY) == Duration(30, "d")
    assert effective_key_rotation(parse_store(samples.store(encryption=None)), POLICY) == Duration(
        90, "d")
