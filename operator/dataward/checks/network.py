"""NetworkIsolated: the store's NetworkPolicy is in place, and no other one lets more in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataward.checks.conditions import NETWORK_ISOLATED, Condition
from dataward.checks.observed import ObservedObject


def network_isolated(
    desired: Mapping[str, Any],
    observed: ObservedObject,
    other_policies: Sequence[Mapping[str, Any]] = (),
    workload_pod_labels: Sequence[Mapping[str, str]] = (),
) -> Condition:
    """Compare the live NetworkPolicy with the rendered one and look for wider policies.

    NetworkPolicies add up: another policy that selects the workload pods and admits peers
    or ports the store does not declare widens its ingress, so it makes this False.
    `other_policies` are the other NetworkPolicies of the store's namespace;
    `workload_pod_labels` the labels of the workload pods, when the controller read them
    (else the workload selector's own labels stand in for them).
    """
    name = desired["metadata"]["name"]
    namespace = desired["metadata"]["namespace"]
    if observed.presence == "unknown":
        return Condition(
            NETWORK_ISOLATED,
            "Unknown",
            "NetworkPolicyUnreadable",
            f"NetworkPolicy {namespace}/{name} could not be read ({observed.error}); the "
            "operator retries. Check that it may get networkpolicies in this namespace.",
        )
    if observed.presence == "absent" or observed.body is None:
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "NetworkPolicyMissing",
            f"NetworkPolicy {namespace}/{name} does not exist; the operator recreates it. If "
            "this persists, check the operator's logs for errors applying it.",
        )
    if observed.body.get("spec") != desired["spec"]:
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "NetworkPolicyDrifted",
            f"NetworkPolicy {namespace}/{name} differs from what the store declares; the "
            "operator restores it. Change spec.network or spec.workload of the store instead "
            "of editing the NetworkPolicy.",
        )
    selectors = _workload_labels(desired["spec"]["podSelector"], workload_pod_labels)
    wider = [
        policy
        for policy in other_policies
        if (policy.get("metadata") or {}).get("name") != name
        and _selects_any(policy, selectors)
        and _admits_more(policy, desired["spec"])
    ]
    if wider:
        names = ", ".join(f"{namespace}/{(p.get('metadata') or {}).get('name')}" for p in wider[:5])
        more = f" and {len(wider) - 5} more" if len(wider) > 5 else ""
        return Condition(
            NETWORK_ISOLATED,
            "False",
            "OtherPolicyAllowsIngress",
            f"NetworkPolicy {names}{more} also selects the workload pods and admits peers or "
            "ports the store does not declare: narrow its podSelector, or add those peers to "
            "spec.network.allowFrom if they should reach the data.",
        )
    return Condition(
        NETWORK_ISOLATED,
        "True",
        "Isolated",
        f"NetworkPolicy {namespace}/{name} admits only spec.network.allowFrom and the purge "
        "pods, on the workload's ports.",
    )


def _workload_labels(
    selector: Mapping[str, Any], observed: Sequence[Mapping[str, str]]
) -> list[Mapping[str, str]]:
    if observed:
        return list(observed)
    labels = dict(selector.get("matchLabels") or {})
    for requirement in selector.get("matchExpressions") or ():
        if requirement.get("operator") == "In" and requirement.get("values"):
            labels[requirement["key"]] = requirement["values"][0]
        elif requirement.get("operator") == "Exists":
            labels.setdefault(requirement["key"], "")
    return [labels]


def _selects_any(policy: Mapping[str, Any], pods: Sequence[Mapping[str, str]]) -> bool:
    selector = (policy.get("spec") or {}).get("podSelector") or {}
    return any(selector_matches(selector, labels) for labels in pods)


def _admits_more(policy: Mapping[str, Any], ours: Mapping[str, Any]) -> bool:
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes") or ["Ingress"]
    if "Ingress" not in types:
        return False
    our_peers = [peer for rule in ours["ingress"] for peer in rule.get("from") or ()]
    our_ports = [port for rule in ours["ingress"] for port in rule.get("ports") or ()]
    for rule in spec.get("ingress") or ():
        peers = rule.get("from") or []
        ports = rule.get("ports") or []
        # An empty `from` admits every source, an empty `ports` every port.
        if not peers or any(peer not in our_peers for peer in peers):
            return True
        if not ports or any(port not in our_ports for port in ports):
            return True
    return False


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """True when a label selector (API form) selects an object with `labels`."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or ():
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
