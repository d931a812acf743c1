"""Observed-state values built from what the controller read."""

from __future__ import annotations

from datetime import UTC, datetime

from dataward.checks.observed import (
    ObservedBinding,
    ObservedKeyRing,
    ObservedObject,
    PolicyRule,
)
from dataward.keys.ring import generate_ring, serialise


def test_a_malformed_ring_is_present_with_a_problem_not_absent() -> None:
    observed = ObservedKeyRing.from_secret_data({"keyring.json": "!!"})
    assert observed.presence == "present"
    assert observed.ring is None
    assert observed.problem


def test_a_good_ring_parses() -> None:
    ring = generate_ring(datetime(2025, 1, 1, tzinfo=UTC))
    assert ObservedKeyRing.from_secret_data(serialise(ring)).ring == ring


def test_observed_objects_compare_by_body() -> None:
    assert ObservedObject.present({"a": 1}) != ObservedObject.present({"a": 2})
    assert ObservedObject.absent() == ObservedObject.absent()


def test_rules_compare_regardless_of_order() -> None:
    a = PolicyRule.from_api({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list", "get"]})
    b = PolicyRule.from_api({"verbs": ["get", "list"], "resources": ["secrets"], "apiGroups": [""]})
    assert a == b


def test_service_account_subjects_default_to_the_binding_namespace() -> None:
    binding = ObservedBinding.from_api(
        {
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "crm"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "api"}, {"kind": "User", "name": "u"}],
        }
    )
    assert {s.describe() for s in binding.subjects} == {"ServiceAccount crm/api", "User u"}
    assert binding.describe() == "RoleBinding crm/b"
