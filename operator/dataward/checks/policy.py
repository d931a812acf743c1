"""PolicyCompliant: the store fits its PrivacyPolicy."""

from __future__ import annotations

from collections.abc import Sequence

from dataward.checks.conditions import POLICY_COMPLIANT, Condition, as_reason
from dataward.model.compliance import Finding


def policy_compliant(findings: Sequence[Finding]) -> Condition:
    """True with no findings; else False with the first finding's reason and every message."""
    if not findings:
        return Condition(
            POLICY_COMPLIANT,
            "True",
            "Compliant",
            "The store's category exists in its policy and its retention is within bounds.",
        )
    message = " ".join(_sentence(finding.message) for finding in findings)
    if len(findings) > 1:
        message += " No purge runs until every finding is fixed."
    else:
        message += " No purge runs until this is fixed."
    return Condition(
        POLICY_COMPLIANT, "False", as_reason(findings[0].reason, "NotCompliant"), message
    )


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
