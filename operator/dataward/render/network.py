"""The NetworkPolicy that isolates a store's workload pods."""

from __future__ import annotations

from typing import Any

from dataward.model.store import Port, Store
from dataward.render.labels import child_metadata, purge_pod_labels
from dataward.render.names import names_for


def workload_ports(store: Store) -> tuple[Port, ...]:
    """The ports the policy opens: `workload.ports`, else the live database's port.

    An ingress rule without ports opens every port, so an empty list must never reach it.
    """
    if store.workload.ports:
        return store.workload.ports
    return (Port(store.database.port, "TCP"),)


def render_network_policy(store: Store) -> dict[str, Any]:
    """Ingress to the workload only from `network.allowFrom` and the purge pods, on its ports.

    `policyTypes` is explicit so that the policy isolates ingress even when it lists no peers.
    The purge pods are matched in the store's own namespace (a peer with only a podSelector),
    which is where the CronJob runs them.
    """
    peers: list[dict[str, Any]] = [peer.to_dict() for peer in store.allow_from]
    peers.append({"podSelector": {"matchLabels": purge_pod_labels(store)}})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_metadata(store, names_for(store.name).network_policy, "network"),
        "spec": {
            "podSelector": store.workload.pod_selector.to_dict(),
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": peers,
                    "ports": [
                        {"protocol": port.protocol, "port": port.port}
                        for port in workload_ports(store)
                    ],
                }
            ],
        },
    }
