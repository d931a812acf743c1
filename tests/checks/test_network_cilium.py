"""NetworkIsolated and Cilium's own policy kinds (cilium.io/v2).

On a Cilium cluster the allow rules of Kubernetes NetworkPolicies, CiliumNetworkPolicies
(namespaced) and CiliumClusterwideNetworkPolicies add up: one whose endpointSelector selects
the workload pods and that has an ingress allow rule admits its peers whatever the store's
NetworkPolicy says. The tests act as a careless (or hostile) network team would.
"""

from __future__ import annotations

from typing import Any

import pytest

from dataward.checks.network import network_isolated
from dataward.checks.observed import ObservedObject
from tests.checks.test_network import DESIRED, live

# The sample store: namespace crm, workload pods `app: crm-postgres`.
CNP, CCNP = "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"
WORLD = [{"fromEntities": ["world"]}]


def cnp(
    name: str,
    selector: dict[str, Any],
    ingress: list[Any] | None = None,
    namespace: str = "crm",
    **rule: Any,
) -> dict[str, Any]:
    """A CiliumNetworkPolicy of one rule (`spec`) in `namespace`."""
    spec = {"endpointSelector": selector, **rule}
    if ingress is not None:
        spec["ingress"] = ingress
    return {"kind": CNP, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def ccnp(name: str, selector: dict[str, Any], ingress: list[Any] | None = None) -> dict[str, Any]:
    """A CiliumClusterwideNetworkPolicy of one rule (`spec`)."""
    found = cnp(name, selector, ingress)
    found["metadata"].pop("namespace")
    return {**found, "kind": CCNP}


def judged(
    *policies: dict[str, Any],
    namespace_labels: dict[str, str] | None = None,
    observed: ObservedObject | None = None,
    pods: list[dict[str, str]] | None = None,
) -> tuple[str, str, str]:
    condition = network_isolated(
        DESIRED,
        observed or live(),
        cilium_policies=list(policies),
        namespace_labels=namespace_labels,
        workload_pod_labels=pods or (),
    )
    return condition.status, condition.reason, condition.message


def test_a_policy_of_the_namespace_admitting_the_world_to_every_pod_is_false() -> None:
    status, reason, message = judged(cnp("open-up", {}, WORLD))
    assert (status, reason) == ("False", "CiliumPolicyAllows")
    assert "CiliumNetworkPolicy crm/open-up" in message


def test_no_cilium_policies_change_nothing() -> None:
    assert judged()[:2] == ("True", "Isolated")


def test_the_default_deny_idiom_admits_nothing() -> None:
    # `ingress: [{}]`: the documented way to put the pods in default deny, allowing nothing.
    assert judged(cnp("lockdown", {}, [{}]))[:2] == ("True", "Isolated")


def test_deny_rules_and_egress_rules_only_change_nothing() -> None:
    policy = cnp("narrow", {}, None, ingressDeny=WORLD, egress=[{"toEntities": ["world"]}])
    assert judged(policy)[:2] == ("True", "Isolated")


def test_a_policy_of_another_namespace_selects_none_of_its_pods() -> None:
    assert judged(cnp("open-up", {}, WORLD, namespace="billing"))[:2] == ("True", "Isolated")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"app": "crm-postgres"}}, ("False", "CiliumPolicyAllows")),
        # A source prefix: the pods' labels come from Kubernetes.
        ({"matchLabels": {"k8s:app": "crm-postgres"}}, ("False", "CiliumPolicyAllows")),
        ({"matchLabels": {"any:app": "crm-postgres"}}, ("False", "CiliumPolicyAllows")),
        # A value the workload selector fixes to another: other pods.
        ({"matchLabels": {"app": "crm-api"}}, ("True", "Isolated")),
        ({"matchLabels": {"k8s:app": "crm-api"}}, ("True", "Isolated")),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["crm-postgres"]}]},
         ("True", "Isolated")),
        # A label the workload selector does not fix: the pods may carry it.
        ({"matchLabels": {"tier": "db"}}, ("Unknown", "CiliumPolicyMaySelect")),
        # Reserved identities (the host, the world) are no pod.
        ({"matchLabels": {"reserved:host": ""}}, ("True", "Isolated")),
        # What Cilium derives from the pod's service account: not known to the operator.
        ({"matchLabels": {"io.cilium.k8s.policy.serviceaccount": "db"}},
         ("Unknown", "CiliumPolicyMaySelect")),
    ],
)  # fmt: skip
def test_the_endpoint_selector_is_judged_against_the_workload_selector(
    selector: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert judged(cnp("by-label", selector, WORLD))[:2] == expected


def test_a_host_policy_is_no_pod_policy() -> None:
    policy = cnp("hosts", {}, WORLD)
    policy["spec"] = {"nodeSelector": {}, "ingress": WORLD}
    assert judged(policy)[:2] == ("True", "Isolated")


def test_every_rule_of_specs_counts() -> None:
    policy = {
        "kind": CNP,
        "metadata": {"name": "two", "namespace": "crm"},
        "specs": [
            {"endpointSelector": {"matchLabels": {"app": "crm-api"}}, "ingress": WORLD},
            {"endpointSelector": {"matchLabels": {"app": "crm-postgres"}}, "ingress": WORLD},
        ],
    }
    assert judged(policy)[:2] == ("False", "CiliumPolicyAllows")


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, ("False", "CiliumPolicyAllows")),  # every pod of the cluster
        ({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "crm"}},
         ("False", "CiliumPolicyAllows")),
        ({"matchLabels": {"io.kubernetes.pod.namespace": "billing"}}, ("True", "Isolated")),
        ({"matchExpressions": [{"key": "io.kubernetes.pod.namespace", "operator": "NotIn",
                                "values": ["kube-system"]}]},
         ("False", "CiliumPolicyAllows")),
        # Namespace labels: only the name label is known without them.
        ({"matchLabels": {"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name":
                          "crm"}},
         ("False", "CiliumPolicyAllows")),
        ({"matchLabels": {"io.cilium.k8s.namespace.labels.env": "prod"}},
         ("Unknown", "CiliumPolicyMaySelect")),
    ],
)  # fmt: skip
def test_a_clusterwide_policy_selects_by_namespace_and_pod_labels(
    selector: dict[str, Any], expected: tuple[str, str]
) -> None:
    status, reason, message = judged(ccnp("cluster", selector, WORLD))
    assert (status, reason) == expected
    if status != "True":
        assert "CiliumClusterwideNetworkPolicy cluster" in message


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"env": "prod"}, ("False", "CiliumPolicyAllows")),
        ({"env": "dev"}, ("True", "Isolated")),
    ],
)
def test_known_namespace_labels_decide(labels: dict[str, str], expected: tuple[str, str]) -> None:
    policy = ccnp("prod", {"matchLabels": {"io.cilium.k8s.namespace.labels.env": "prod"}}, WORLD)
    assert judged(policy, namespace_labels=labels)[:2] == expected


def test_read_pod_labels_decide() -> None:
    policy = cnp("tier", {"matchLabels": {"tier": "db"}}, WORLD)
    pods = [{"app": "crm-postgres", "tier": "db"}]
    assert judged(policy, pods=pods)[:2] == ("False", "CiliumPolicyAllows")
    pods = [{"app": "crm-postgres", "tier": "cache"}]
    assert judged(policy, pods=pods)[:2] == ("True", "Isolated")


def test_a_sure_policy_outweighs_one_that_may() -> None:
    may = cnp("may", {"matchLabels": {"tier": "db"}}, WORLD)
    sure = cnp("sure", {}, WORLD)
    status, reason, message = judged(may, sure)
    assert (status, reason) == ("False", "CiliumPolicyAllows")
    assert "crm/sure" in message and "crm/may" not in message


def test_unreadable_cilium_policies_make_a_true_verdict_unknown() -> None:
    condition = network_isolated(
        DESIRED, live(), cilium_policies=None, cilium_policies_error="HTTP 403"
    )
    assert (condition.status, condition.reason) == ("Unknown", "CiliumPoliciesUnreadable")
    assert "HTTP 403" in condition.message


def test_unreadable_cilium_policies_leave_a_false_verdict_false() -> None:
    condition = network_isolated(
        DESIRED, ObservedObject.absent(), cilium_policies=None, cilium_policies_error="HTTP 403"
    )
    assert (condition.status, condition.reason) == ("False", "NetworkPolicyMissing")


def test_a_sure_policy_makes_an_unknown_verdict_false() -> None:
    # Whatever the NetworkPolicies say, the CiliumNetworkPolicy admits the traffic.
    condition = network_isolated(
        DESIRED, ObservedObject.unknown("timeout"), cilium_policies=[cnp("open-up", {}, WORLD)]
    )
    assert (condition.status, condition.reason) == ("False", "CiliumPolicyAllows")


def test_a_rule_of_no_selector_may_select() -> None:
    policy = {"kind": CNP, "metadata": {"name": "garbled", "namespace": "crm"},
              "spec": {"ingress": WORLD}}  # fmt: skip
    assert judged(policy)[:2] == ("Unknown", "CiliumPolicyMaySelect")


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": "app=crm-postgres"},
        {"matchExpressions": {"key": "app", "operator": "Exists"}},
        {"matchExpressions": ["app"]},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": "crm-postgres"}]},
    ],
)
def test_a_garbled_endpoint_selector_may_select_and_does_not_crash(
    selector: dict[str, Any],
) -> None:
    assert judged(cnp("garbled", selector, WORLD))[:2] == ("Unknown", "CiliumPolicyMaySelect")
