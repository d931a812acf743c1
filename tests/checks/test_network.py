"""NetworkIsolated."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataward.checks.network import (
    network_isolated,
    selector_matches,
    unnamed_keys,
    workload_labels,
)
from dataward.checks.observed import ObservedObject
from dataward.model.store import parse_store
from dataward.render.network import render_network_policy
from tests.model import samples

DESIRED = render_network_policy(parse_store(samples.STORE))


def live(**spec_changes: Any) -> ObservedObject:
    body = copy.deepcopy(DESIRED)
    body["metadata"]["resourceVersion"] = "12"
    body["spec"].update(spec_changes)
    return ObservedObject.present(body)


def other(name: str, selector: dict[str, Any], ingress: list[Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "crm"},
        "spec": {"podSelector": selector, "ingress": ingress, **spec},
    }


def test_true_when_the_live_policy_matches() -> None:
    condition = network_isolated(DESIRED, live())
    assert (condition.status, condition.reason) == ("True", "Isolated")


def test_unknown_on_a_read_error() -> None:
    condition = network_isolated(DESIRED, ObservedObject.unknown("timeout"))
    assert (condition.status, condition.reason) == ("Unknown", "NetworkPolicyUnreadable")


def test_false_when_missing() -> None:
    condition = network_isolated(DESIRED, ObservedObject.absent())
    assert (condition.status, condition.reason) == ("False", "NetworkPolicyMissing")


def test_what_the_api_server_fills_in_is_not_drift() -> None:
    # The same rule as the operator's compare-before-apply (checks/drift.py): a value the
    # server defaults (a port's protocol TCP, policyTypes [Ingress]) is the rendered one, or
    # the store would be NetworkPolicyDrifted for ever with nothing left to apply.
    rule = copy.deepcopy(DESIRED["spec"]["ingress"][0])
    for port in rule["ports"]:
        assert port.pop("protocol") == "TCP"
    body = copy.deepcopy(DESIRED)
    body["spec"]["ingress"] = [rule]
    del body["spec"]["policyTypes"]
    condition = network_isolated(DESIRED, ObservedObject.present(body))
    assert (condition.status, condition.reason) == ("True", "Isolated")


@pytest.mark.parametrize(
    "changes",
    [
        {"ingress": [{}]},
        {"policyTypes": ["Ingress", "Egress"]},
        {"podSelector": {"matchLabels": {"app": "other"}}},
        {
            "ingress": [
                {
                    "from": [*DESIRED["spec"]["ingress"][0]["from"], {"namespaceSelector": {}}],
                    "ports": DESIRED["spec"]["ingress"][0]["ports"],
                }
            ]
        },
    ],
)
def test_false_when_edited(changes: dict[str, Any]) -> None:
    condition = network_isolated(DESIRED, live(**changes))
    assert (condition.status, condition.reason) == ("False", "NetworkPolicyDrifted")


def test_another_policy_admitting_everyone_to_the_workload_is_named() -> None:
    allow_all = other("allow-all", {}, [{}])
    condition = network_isolated(DESIRED, live(), [allow_all])
    assert (condition.status, condition.reason) == ("False", "OtherPolicyAllowsIngress")
    assert "crm/allow-all" in condition.message


def test_another_policy_for_other_pods_does_not_matter() -> None:
    web = other("web", {"matchLabels": {"app": "web"}}, [{}])
    assert network_isolated(DESIRED, live(), [web]).status == "True"


def test_another_policy_admitting_only_our_peers_on_our_ports_does_not_matter() -> None:
    rule = DESIRED["spec"]["ingress"][0]
    same = other("same", {"matchLabels": {"app": "crm-postgres"}}, [copy.deepcopy(rule)])
    assert network_isolated(DESIRED, live(), [same]).status == "True"


def test_another_policy_opening_an_extra_port_is_named() -> None:
    rule = copy.deepcopy(DESIRED["spec"]["ingress"][0])
    rule["ports"] = [{"protocol": "TCP", "port": 22}]
    extra = other("ssh", {"matchLabels": {"app": "crm-postgres"}}, [rule])
    assert network_isolated(DESIRED, live(), [extra]).reason == "OtherPolicyAllowsIngress"


def test_an_egress_only_policy_does_not_matter() -> None:
    egress = other("egress", {}, [{}], policyTypes=["Egress"])
    assert network_isolated(DESIRED, live(), [egress]).status == "True"


def test_our_own_policy_in_the_list_is_not_counted_twice() -> None:
    assert network_isolated(DESIRED, live(), [DESIRED]).status == "True"


def test_observed_pod_labels_decide_which_policies_select_the_workload() -> None:
    tiered = other("tier", {"matchLabels": {"tier": "db"}}, [{}])
    # Unread, the pods may carry tier=db: never True (red on the old code, which took them
    # to carry no label their selector does not name).
    unread = network_isolated(DESIRED, live(), [tiered])
    assert (unread.status, unread.reason) == ("Unknown", "PolicyMaySelectWorkload")
    assert "tier" in unread.message and "crm/tier" in unread.message
    pods = [{"app": "crm-postgres", "tier": "db"}]
    assert network_isolated(DESIRED, live(), [tiered], pods).status == "False"
    assert network_isolated(DESIRED, live(), [tiered], [{"app": "crm-postgres"}]).status == "True"
    # A policy by such a label that admits nothing more than the store declares is harmless.
    narrow = other("tier", {"matchLabels": {"tier": "db"}}, DESIRED["spec"]["ingress"])
    assert network_isolated(DESIRED, live(), [narrow]).status == "True"


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {"a": "1"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_selector_matching(
    selector: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected


def test_a_policy_for_any_pod_the_workload_selector_admits_by_in_is_counted() -> None:
    """`app In (primary, replica)`: the replica pods are the workload as much as the primary's,
    so a policy opening them to everyone breaks isolation (not only one for the first value)."""
    store = copy.deepcopy(samples.STORE)
    store["spec"]["workload"]["podSelector"] = {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["crm-postgres", "crm-postgres-replica"]}]}
    desired = render_network_policy(parse_store(store))
    body = copy.deepcopy(desired)
    body["metadata"]["resourceVersion"] = "12"
    replica = other("replica", {"matchLabels": {"app": "crm-postgres-replica"}}, [{}])
    condition = network_isolated(desired, ObservedObject.present(body), [replica])
    assert (condition.status, condition.reason) == ("False", "OtherPolicyAllowsIngress")
    primary = other("primary", {"matchLabels": {"app": "crm-postgres"}}, [{}])
    assert network_isolated(desired, ObservedObject.present(body), [primary]).status == "False"
    web = other("web", {"matchLabels": {"app": "web"}}, [{}])
    assert network_isolated(desired, ObservedObject.present(body), [web]).status == "True"


def _wide_store(keys: int, values: int) -> dict[str, Any]:
    """A store whose workload selector has `keys` In requirements of `values` values each."""
    store = copy.deepcopy(samples.STORE)
    store["spec"]["workload"]["podSelector"] = {"matchExpressions": [
        {"key": f"k{k}", "operator": "In", "values": [f"v{v}" for v in range(values)]}
        for k in range(keys)]}
    return store


def test_a_wide_workload_selector_costs_label_sets_by_its_values_not_their_combinations() -> None:
    """32 In requirements of 64 values each are valid (the CRD's bounds): one label set per
    combination would be 64^32 of them, and a careless store spec would stall the operator.
    The sets for the policy index still carry every (key, value) pair."""
    selector = _wide_store(4, 64)["spec"]["workload"]["podSelector"]
    sets = workload_labels(selector)
    assert len(sets) <= 64
    assert {(k, v) for labels in sets for k, v in labels.items()} == {
        (f"k{k}", f"v{v}") for k in range(4) for v in range(64)}


def test_a_policy_for_a_combination_of_later_in_values_is_counted_and_a_impossible_one_not(
) -> None:
    """A pod may carry any value of each In, independently: a policy for the last values of
    two keys selects workload pods; one for a value no In allows, or for a label no pod of
    the workload may carry, does not."""
    desired = render_network_policy(parse_store(_wide_store(32, 64)))
    body = copy.deepcopy(desired)
    body["metadata"]["resourceVersion"] = "12"
    present = ObservedObject.present(body)
    later = other("later", {"matchLabels": {"k7": "v63", "k31": "v40"}, "matchExpressions": [
        {"key": "k3", "operator": "NotIn", "values": ["v0", "v1"]}]}, [{}])
    assert network_isolated(desired, present, [later]).reason == "OtherPolicyAllowsIngress"
    tiered = other("x", {"matchLabels": {"tier": "db"}}, [{}])  # the pods may carry a tier
    assert network_isolated(desired, present, [tiered]).reason == "PolicyMaySelectWorkload"
    for selector in (
        {"matchLabels": {"k7": "v64"}},
        {"matchExpressions": [{"key": "k2", "operator": "DoesNotExist"}]},
        {"matchExpressions": [{"key": "k2", "operator": "NotIn",
                               "values": [f"v{v}" for v in range(64)]}]},
    ):
        assert network_isolated(desired, present, [other("x", selector, [{}])]).status == "True"


def _reporting_neighbour() -> dict[str, Any]:
    """Another store's policy for the same pods: peer app=reports, on port 9000 only."""
    store = copy.deepcopy(samples.STORE)
    store["metadata"]["name"] = "reports"
    store["spec"]["network"]["allowFrom"] = [{"podSelector": {"matchLabels": {"app": "reports"}}}]
    store["spec"]["workload"]["ports"] = [{"port": 9000, "protocol": "TCP"}]
    return render_network_policy(parse_store(store))


def test_a_peer_of_one_declared_rule_on_a_port_of_another_is_not_declared() -> None:
    """Our store admits app=crm-api on 5432, the neighbour app=reports on 9000: a policy
    admitting app=crm-api on 9000 combines a peer of one rule with a port of the other,
    a pair nobody declared."""
    neighbour = _reporting_neighbour()
    ours = DESIRED["spec"]["ingress"][0]
    theirs = neighbour["spec"]["ingress"][0]
    assert theirs["ports"] == [{"protocol": "TCP", "port": 9000}]
    crm_api = ours["from"][0]
    assert crm_api == {"podSelector": {"matchLabels": {"app": "crm-api"}}}
    selector = {"matchLabels": {"app": "crm-postgres"}}

    def verdict(rule: dict[str, Any]) -> str:
        policies = [copy.deepcopy(neighbour), other("extra", selector, [rule])]
        return network_isolated(DESIRED, live(), policies, neighbours=[neighbour]).reason

    assert verdict({"from": [crm_api], "ports": theirs["ports"]}) == "OtherPolicyAllowsIngress"
    both = {"from": [crm_api, theirs["from"][0]], "ports": ours["ports"]}
    assert verdict(both) == "OtherPolicyAllowsIngress"
    # Each pair within one declared rule: declared.
    assert verdict({"from": [crm_api], "ports": ours["ports"]}) == "Isolated"
    assert verdict({"from": theirs["from"][:1], "ports": theirs["ports"]}) == "Isolated"


def test_a_neighbours_own_policy_by_other_label_keys_leaves_the_store_isolated() -> None:
    """Two stores of one namespace whose workload selectors use different label keys (app,
    app.kubernetes.io/name): each one's policy, as rendered, may select the other's pods. Red
    on 31a5b3d: that made both Unknown in a healthy namespace."""
    store = copy.deepcopy(samples.STORE)
    store["metadata"]["name"] = "mysql-orders"
    store["spec"]["workload"]["podSelector"] = {
        "matchLabels": {"app.kubernetes.io/name": "mysql"}}
    store["spec"]["network"]["allowFrom"] = [{"podSelector": {"matchLabels": {"app": "shop"}}}]
    neighbour = render_network_policy(parse_store(store))
    condition = network_isolated(DESIRED, live(), [neighbour], neighbours=[neighbour])
    assert (condition.status, condition.reason) == ("True", "Isolated")
    assert "shared with" not in condition.message  # it may share them, nobody knows it does
    # The same policy edited wider is no neighbour's render: not known to be isolated.
    wider = copy.deepcopy(neighbour)
    wider["spec"]["ingress"] = [{}]
    condition = network_isolated(DESIRED, live(), [wider], neighbours=[neighbour])
    assert (condition.status, condition.reason) == ("Unknown", "PolicyMaySelectWorkload")


def _workload(selector: dict[str, Any]) -> tuple[dict[str, Any], ObservedObject]:
    """The rendered policy of a store with this workload selector, and it in place."""
    store = copy.deepcopy(samples.STORE)
    store["spec"]["workload"]["podSelector"] = selector
    desired = render_network_policy(parse_store(store))
    body = copy.deepcopy(desired)
    body["metadata"]["resourceVersion"] = "12"
    return desired, ObservedObject.present(body)


def _opened(selector: dict[str, Any], workload: dict[str, Any]) -> str:
    """The verdict when another policy with `selector` admits everyone."""
    desired, present = _workload(workload)
    return network_isolated(desired, present, [other("open", selector, [{}])]).reason


@pytest.mark.parametrize(
    ("workload", "selector", "selects"),
    [
        # `Exists`: the pods carry the key with values nobody named, so a policy for any value
        # of it may select them.
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]},
         {"matchLabels": {"app": "crm-postgres"}}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]},
         {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]},
         {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        # `NotIn`: any other value, or no label at all.
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
         {"matchLabels": {"app": "crm-postgres"}}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
         {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
         {"matchLabels": {"app": "web"}}, False),
        # In and NotIn together: only the values left.
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]},
                               {"key": "app", "operator": "NotIn", "values": ["a"]}]},
         {"matchLabels": {"app": "a"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]},
                               {"key": "app", "operator": "NotIn", "values": ["a"]}]},
         {"matchLabels": {"app": "b"}}, True),
        # `DoesNotExist`: the pods lack the key.
        ({"matchLabels": {"app": "db"},
          "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
         {"matchLabels": {"app": "db", "tier": "x"}}, False),
        ({"matchLabels": {"app": "db"},
          "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
         {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}, True),
    ],
)  # fmt: skip
def test_a_workload_selector_by_unnamed_values_is_judged_by_what_it_admits(
    workload: dict[str, Any], selector: dict[str, Any], selects: bool
) -> None:
    assert _opened(selector, workload) == ("OtherPolicyAllowsIngress" if selects else "Isolated")


def test_a_peer_by_exists_or_notin_admits_peers_nobody_named() -> None:
    """Another policy's peer `app Exists` (or `app NotIn`) admits pods whatever their app, on
    our very port: not what the store declares (app=crm-api), so not isolated."""
    rule = DESIRED["spec"]["ingress"][0]
    selector = {"matchLabels": {"app": "crm-postgres"}}
    for requirement in ({"key": "app", "operator": "Exists"},
                        {"key": "app", "operator": "NotIn", "values": ["web"]}):  # fmt: skip
        peer = {"podSelector": {"matchExpressions": [requirement]}}
        wide = other("wide", selector, [{"from": [peer], "ports": rule["ports"]}])
        assert network_isolated(DESIRED, live(), [wide]).reason == "OtherPolicyAllowsIngress"


def test_the_keys_whose_values_no_one_named() -> None:
    """The policy index finds policies by (key, value): for these keys it cannot."""
    assert unnamed_keys({"matchLabels": {"app": "db"}}) == set()
    assert unnamed_keys({"matchExpressions": [
        {"key": "app", "operator": "Exists"},
        {"key": "tier", "operator": "NotIn", "values": ["web"]},
        {"key": "gone", "operator": "DoesNotExist"},
        {"key": "k", "operator": "In", "values": ["1"]},
        {"key": "k", "operator": "Exists"},
        {"key": "m", "operator": "NotIn", "values": ["1"]},
    ], "matchLabels": {"m": "2"}}) == {"app", "tier"}
