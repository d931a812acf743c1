"""The NetworkPolicy: only declared peers and the purge pods, only on the workload's ports."""

from __future__ import annotations

from typing import Any

from dataward.model.store import parse_store
from dataward.render.labels import purge_pod_labels
from dataward.render.network import render_network_policy
from tests.model import samples


def policy(**changes: Any) -> dict[str, Any]:
    return render_network_policy(parse_store(samples.store(**changes)))


def test_selects_exactly_the_workload_pods() -> None:
    assert policy()["spec"]["podSelector"] == {"matchLabels": {"app": "crm-postgres"}}


def test_policy_types_are_explicit_ingress() -> None:
    assert policy()["spec"]["policyTypes"] == ["Ingress"]


def test_ingress_comes_from_declared_peers_and_the_purge_pods_only() -> None:
    spec = policy()["spec"]
    assert len(spec["ingress"]) == 1
    assert spec["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app": "crm-api"}}},
        {"podSelector": {"matchLabels": {"dataward.io/purge": "support-inquiries"}}},
    ]


def test_the_purge_peer_matches_the_purge_pod_label() -> None:
    store = parse_store(samples.STORE)
    purge_peer = render_network_policy(store)["spec"]["ingress"][0]["from"][-1]
    assert purge_peer == {"podSelector": {"matchLabels": purge_pod_labels(store)}}
    # Same namespace only: no namespaceSelector on the purge peer.
    assert "namespaceSelector" not in purge_peer


def test_ingress_is_only_on_the_workload_ports() -> None:
    spec = policy(
        workload={
            "podSelector": {"matchLabels": {"app": "crm-postgres"}},
            "ports": [{"port": 5432, "protocol": "TCP"}, {"port": 9187}],
        }
    )["spec"]
    assert spec["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 5432},
        {"protocol": "TCP", "port": 9187},
    ]


def test_without_declared_ports_only_the_database_port_opens() -> None:
    spec = policy(workload={"podSelector": {"matchLabels": {"app": "crm-postgres"}}})["spec"]
    assert spec["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 5432}]


def test_without_allow_from_only_the_purge_pods_get_in() -> None:
    peers = policy(network={})["spec"]["ingress"][0]["from"]
    assert peers == [{"podSelector": {"matchLabels": {"dataward.io/purge": "support-inquiries"}}}]


def test_namespace_and_ip_block_peers_are_passed_through() -> None:
    peers = policy(
        network={
            "allowFrom": [
                {
                    "namespaceSelector": {"matchLabels": {"team": "ops"}},
                    "podSelector": {"matchLabels": {"app": "backup"}},
                },
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
            ]
        }
    )["spec"]["ingress"][0]["from"]
    assert peers[0] == {
        "podSelector": {"matchLabels": {"app": "backup"}},
        "namespaceSelector": {"matchLabels": {"team": "ops"}},
    }
    assert peers[1] == {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}


def test_match_expressions_in_the_workload_selector_are_kept() -> None:
    selector = {
        "matchLabels": {"app": "db"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["data"]}],
    }
    spec = policy(workload={"podSelector": selector, "ports": [{"port": 5432}]})["spec"]
    assert spec["podSelector"] == selector
