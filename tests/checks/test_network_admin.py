"""NetworkIsolated and AdminNetworkPolicies (policy.networking.k8s.io/v1alpha1).

An AdminNetworkPolicy is evaluated before every NetworkPolicy: an ingress rule of action
Allow admits traffic the namespace's NetworkPolicies deny, so the store is not isolated when
one may select its workload pods. Deny only narrows, Pass defers to the NetworkPolicies.
"""

from __future__ import annotations

from typing import Any

import pytest

from dataward.checks.network import network_isolated
from dataward.checks.observed import ObservedObject
from tests.checks.test_network import DESIRED, live

# The sample store: namespace crm, workload pods `app: crm-postgres`.
NAME_LABEL = "kubernetes.io/metadata.name"


def anp(name: str, subject: dict[str, Any], *actions: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "priority": 10,
            "subject": subject,
            "ingress": [
                {"name": f"rule-{i}", "action": action, "from": [{"namespaces": {}}]}
                for i, action in enumerate(actions)
            ],
        },
    }


def judged(
    *policies: dict[str, Any],
    namespace_labels: dict[str, str] | None = None,
    observed: ObservedObject | None = None,
) -> tuple[str, str, str]:
    condition = network_isolated(
        DESIRED,
        observed or live(),
        admin_policies=list(policies),
        namespace_labels=namespace_labels,
    )
    return condition.status, condition.reason, condition.message


def test_an_allow_for_every_namespace_is_false_and_named() -> None:
    status, reason, message = judged(anp("monitoring", {"namespaces": {}}, "Allow"))
    assert (status, reason) == ("False", "AdminNetworkPolicyAllows")
    assert "AdminNetworkPolicy monitoring" in message


def test_deny_and_pass_only_change_nothing() -> None:
    found = judged(anp("lockdown", {"namespaces": {}}, "Deny", "Pass"))
    assert found[:2] == ("True", "Isolated")


def test_no_admin_policies_change_nothing() -> None:
    assert judged()[:2] == ("True", "Isolated")


def test_an_allow_for_another_namespace_by_its_name_changes_nothing() -> None:
    subject = {"namespaces": {"matchLabels": {NAME_LABEL: "billing"}}}
    assert judged(anp("billing", subject, "Allow"))[:2] == ("True", "Isolated")


def test_an_allow_for_this_namespace_by_its_name_is_false_without_its_labels() -> None:
    subject = {"namespaces": {"matchLabels": {NAME_LABEL: "crm"}}}
    assert judged(anp("crm", subject, "Allow"))[:2] == ("False", "AdminNetworkPolicyAllows")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (None, ("Unknown", "AdminNetworkPolicyMaySelect")),  # labels not known
        ({NAME_LABEL: "crm", "env": "prod"}, ("False", "AdminNetworkPolicyAllows")),
        ({NAME_LABEL: "crm", "env": "dev"}, ("True", "Isolated")),
    ],
)
def test_a_namespace_selector_by_label_is_judged_by_the_namespace_labels(
    labels: dict[str, str] | None, expected: tuple[str, str]
) -> None:
    subject = {"namespaces": {"matchLabels": {"env": "prod"}}}
    assert judged(anp("prod", subject, "Allow"), namespace_labels=labels)[:2] == expected


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        ({"matchLabels": {"app": "crm-postgres"}}, ("False", "AdminNetworkPolicyAllows")),
        ({}, ("False", "AdminNetworkPolicyAllows")),  # every pod
        ({"matchLabels": {"app": "crm-api"}}, ("True", "Isolated")),  # other pods
        # A label the workload selector does not fix: the pods may carry it.
        ({"matchLabels": {"tier": "db"}}, ("Unknown", "AdminNetworkPolicyMaySelect")),
    ],
)
def test_a_pod_subject_is_judged_as_a_networkpolicy_selector_is(
    pods: dict[str, Any], expected: tuple[str, str]
) -> None:
    subject = {"pods": {"namespaceSelector": {}, "podSelector": pods}}
    assert judged(anp("pods", subject, "Deny", "Allow"))[:2] == expected


def test_a_pod_subject_in_another_namespace_changes_nothing() -> None:
    subject = {
        "pods": {
            "namespaceSelector": {"matchLabels": {NAME_LABEL: "billing"}},
            "podSelector": {},
        }
    }
    assert judged(anp("billing-pods", subject, "Allow"))[:2] == ("True", "Isolated")


def test_a_sure_allow_outweighs_one_that_may() -> None:
    may = anp("may", {"namespaces": {"matchLabels": {"env": "prod"}}}, "Allow")
    sure = anp("sure", {"namespaces": {}}, "Allow")
    status, reason, message = judged(may, sure)
    assert (status, reason) == ("False", "AdminNetworkPolicyAllows")
    assert "sure" in message


def test_unreadable_admin_policies_make_a_true_verdict_unknown() -> None:
    condition = network_isolated(
        DESIRED, live(), admin_policies=None, admin_policies_error="HTTP 403"
    )
    assert (condition.status, condition.reason) == ("Unknown", "AdminNetworkPoliciesUnreadable")
    assert "HTTP 403" in condition.message


def test_unreadable_admin_policies_leave_a_false_verdict_false() -> None:
    condition = network_isolated(
        DESIRED, ObservedObject.absent(), admin_policies=None, admin_policies_error="HTTP 403"
    )
    assert (condition.status, condition.reason) == ("False", "NetworkPolicyMissing")


def test_a_sure_allow_makes_an_unknown_verdict_false() -> None:
    # Whatever the NetworkPolicies say, the AdminNetworkPolicy admits the traffic.
    condition = network_isolated(
        DESIRED,
        ObservedObject.unknown("timeout"),
        admin_policies=[anp("monitoring", {"namespaces": {}}, "Allow")],
    )
    assert (condition.status, condition.reason) == ("False", "AdminNetworkPolicyAllows")


def test_a_garbled_subject_may_select() -> None:
    # Neither namespaces nor pods (the API requires one): nothing to rule the pods out by.
    assert judged(anp("odd", {}, "Allow"))[:2] == ("Unknown", "AdminNetworkPolicyMaySelect")
