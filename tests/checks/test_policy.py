"""PolicyCompliant."""

from __future__ import annotations

from dataward.checks.policy import policy_compliant
from dataward.model.compliance import Finding, compliance_findings
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from tests.model import samples


def test_no_findings_is_true() -> None:
    condition = policy_compliant([])
    assert (condition.type, condition.status, condition.reason) == (
        "PolicyCompliant",
        "True",
        "Compliant",
    )


def test_a_finding_gives_its_reason_and_what_to_do() -> None:
    findings = compliance_findings(
        parse_store(samples.store(retention="2y")), parse_policy(samples.POLICY)
    )
    condition = policy_compliant(findings)
    assert (condition.status, condition.reason) == ("False", "RetentionTooLong")
    assert "set it to 1y or less" in condition.message
    assert "No purge runs" in condition.message


def test_several_findings_all_appear_in_the_message() -> None:
    condition = policy_compliant(
        [Finding("ArchiveRequired", "add an archive"), Finding("KeyRotationTooLong", "shorten")]
    )
    assert condition.reason == "ArchiveRequired"
    assert "Add an archive." in condition.message and "Shorten." in condition.message


def test_policy_not_found() -> None:
    condition = policy_compliant(compliance_findings(parse_store(samples.STORE), None))
    assert (condition.status, condition.reason) == ("False", "PolicyNotFound")
