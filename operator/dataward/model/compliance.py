"""Cross-object rules: does a store fit its policy? Shared by `dataward check`, the operator's
PolicyCompliant condition and the purge job's gate."""

from __future__ import annotations

from dataclasses import dataclass

from dataward.model.durations import Duration
from dataward.model.fields import closest_name
from dataward.model.policy import CHILD_AGE, Category, Policy
from dataward.model.store import Store


@dataclass(frozen=True)
class Finding:
    """Why a store does not comply: a CamelCase reason and a sentence saying what to change."""

    reason: str
    message: str
    field: str = "spec"


def unknown_category(name: str, policy: Policy) -> Finding:
    """CategoryNotFound for `name`, with the likely intended category first when there is one."""
    names = [c.name for c in policy.categories]
    hint = closest_name(name, names)
    what = (
        f"did you mean {hint!r}? The policy's categories are: "
        if hint
        else "set spec.category to one of: "
    )
    return Finding(
        "CategoryNotFound",
        f"category {name!r} is not in PrivacyPolicy {policy.name!r}; {what}{', '.join(names)}.",
        "spec.category",
    )


def compliance_findings(store: Store, policy: Policy | None) -> list[Finding]:
    """Every way `store` breaks `policy`; an empty list means the store is compliant."""
    if policy is None or policy.name != store.policy:
        return [
            Finding(
                "PolicyNotFound",
                f"PrivacyPolicy {store.policy!r} does not exist: create it, or set spec.policy "
                "to an existing policy (kubectl get privacypolicies).",
                "spec.policy",
            )
        ]
    category = policy.category(store.category)
    if category is None:
        return [unknown_category(store.category, policy)]
    findings: list[Finding] = []
    limit = category.retention.period
    if store.retention is not None and not store.retention.is_at_most(limit):
        findings.append(
            Finding(
                "RetentionTooLong",
                f"spec.retention {store.retention} is longer than the {limit} that category "
                f"{category.name!r} of PrivacyPolicy {policy.name!r} allows: set it to {limit} "
                "or less, or remove it to use the category's.",
                "spec.retention",
            )
        )
    if category.statutory is not None and store.archive is None:
        findings.append(
            Finding(
                "ArchiveRequired",
                f"category {category.name!r} must be kept {category.statutory.period} under the "
                f"{category.statutory.statute}: add spec.archive.database naming a separate "
                "archive database.",
                "spec.archive",
            )
        )
    if category.statutory is None and store.archive is not None:
        findings.append(
            Finding(
                "ArchiveNotAllowed",
                f"category {category.name!r} has no statutory retention, so archived copies "
                "would outlive the policy: remove spec.archive.",
                "spec.archive",
            )
        )
    if store.archive is not None and store.archive.address == store.database.address:
        findings.append(
            Finding(
                "ArchiveNotSeparate",
                "spec.archive.database is the live database: point it at a separate database.",
                "spec.archive.database",
            )
        )
    if category.children is not None:
        lacking = [r.table for r in store.records if r.children is None]
        if lacking:
            findings.append(
                Finding(
                    "ChildColumnsRequired",
                    f"category {category.name!r} may hold data of children under {CHILD_AGE}: "
                    f"add spec.records[].children (consentColumn, and birthDateColumn or "
                    f"ageColumn) for {', '.join(lacking)}, so rows without the legal "
                    f"representative's consent are removed after "
                    f"{category.children.consent_grace}.",
                    "spec.records",
                )
            )
    if store.key_rotation is not None and not store.key_rotation.is_at_most(policy.key_rotation):
        findings.append(
            Finding(
                "KeyRotationTooLong",
                f"spec.encryption.keyRotation {store.key_rotation} is longer than the policy's "
                f"{policy.key_rotation}: set it to {policy.key_rotation} or less, or remove it.",
                "spec.encryption.keyRotation",
            )
        )
    return findings


def effective_retention(store: Store, category: Category) -> Duration:
    """How long the store keeps records: its own retention if set, else the category's."""
    return store.retention if store.retention is not None else category.retention.period


def effective_key_rotation(store: Store, policy: Policy) -> Duration:
    """The maximum age of the store's primary key."""
    return store.key_rotation if store.key_rotation is not None else policy.key_rotation
