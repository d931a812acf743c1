"""Cilium's policy kinds on a real control plane, under the chart's RBAC.

On a Cilium cluster the allow rules of NetworkPolicies, CiliumNetworkPolicies (cilium.io/v2,
namespaced) and CiliumClusterwideNetworkPolicies add up: one whose endpointSelector selects a
store's workload pods and that has an ingress rule admits its peers whatever the store's
NetworkPolicy says. The control plane runs no Cilium; this module installs CRDs of that
group, version and kinds (their schema ours and open: the API server stores what it is
given, and nothing enforces them: the verdict is what is tested), and acts as a network team
that opens a store's namespace to the world. The operator is started after the CRDs are
installed; neither is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_crds import (
    OPEN,
    operator_after,
    operator_identity_fixture,  # noqa: F401 - a fixture
    stand_in_crd,
    stand_in_object,
)
from e2e.fixtures_operator import OperatorProcess, apply, condition, wait_condition
from e2e.harness import ControlPlane
from e2e.test_operator import ready_store

GROUP = "cilium.io"
KINDS = {  # kind -> (plural, scope)
    "CiliumNetworkPolicy": ("ciliumnetworkpolicies", "Namespaced"),
    "CiliumClusterwideNetworkPolicy": ("ciliumclusterwidenetworkpolicies", "Cluster"),
}
STORE = "support-inquiries"


def crd(kind: str) -> dict[str, Any]:
    """A stand-in CRD of one of Cilium's policy kinds: open `spec`, and `specs` of open rules."""
    plural, scope = KINDS[kind]
    properties = {"spec": OPEN, "specs": {"type": "array", "items": OPEN}}
    return stand_in_crd(GROUP, "v2", kind, plural, scope, properties)


def cilium_policy(
    kind: str, name: str, selector: dict[str, Any], ingress: list[Any], namespace: str | None
) -> dict[str, Any]:
    """A Cilium policy of one rule: `selector`'s endpoints, `ingress` allowed."""
    body = {"endpointSelector": selector, "ingress": ingress}
    return stand_in_object(f"{GROUP}/v2", kind, name, namespace, body)


WORLD = [{"fromEntities": ["world"]}]


@pytest.fixture
def cilium_served(
    control_plane: ControlPlane, operator_identity: tuple[Path, str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """Both CRDs installed, then an operator of the chart's rights started after them;
    stopped, and the CRDs deleted, after."""
    crds = (crd(kind) for kind in KINDS)
    log = tmp_path / "operator.log"
    with operator_after(control_plane, operator_identity, log, *crds) as process:
        yield process


def test_a_cilium_policy_admitting_the_world_makes_the_store_not_isolated(
    control_plane: ControlPlane, namespace: str, cilium_served: OperatorProcess
) -> None:
    cnp, ccnp = "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"
    lockdown, open_up, cluster = f"{namespace}-lockdown", f"{namespace}-open", f"{namespace}-lb"
    try:
        # The default-deny idiom (`ingress: [{}]`) allows nothing: isolated with it in place.
        apply(control_plane, cilium_policy(cnp, lockdown, {}, [{}], namespace))
        store = ready_store(control_plane, namespace)
        assert condition(store, "NetworkIsolated")["status"] == "True"
        logs = cilium_served.logs()
        assert "the API serves ciliumnetworkpolicies.cilium.io" in logs
        assert "the API serves ciliumclusterwidenetworkpolicies.cilium.io" in logs

        # A network team lets the world in to every pod of the namespace.
        apply(control_plane, cilium_policy(cnp, open_up, {}, WORLD, namespace))
        store = wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "False",
                               "CiliumPolicyAllows")  # fmt: skip
        assert f"{namespace}/{open_up}" in condition(store, "NetworkIsolated")["message"]
        assert condition(store, "Ready")["status"] == "False"
        control_plane.kubectl("delete", "ciliumnetworkpolicy", open_up, "-n", namespace)
        wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "True", "Isolated")

        # The same, cluster-wide, by the pod's namespace as Cilium labels its endpoints.
        by_namespace = {"matchLabels": {"k8s:io.kubernetes.pod.namespace": namespace}}
        apply(control_plane, cilium_policy(ccnp, cluster, by_namespace, WORLD, None))
        store = wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "False",
                               "CiliumPolicyAllows")  # fmt: skip
        assert cluster in condition(store, "NetworkIsolated")["message"]
        control_plane.kubectl("delete", "ciliumclusterwidenetworkpolicy", cluster)
        wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "True", "Isolated")
    finally:
        control_plane.kubectl("delete", "ciliumnetworkpolicy", "-n", namespace, lockdown,
                              open_up, "--ignore-not-found", check=False)  # fmt: skip
        control_plane.kubectl("delete", "ciliumclusterwidenetworkpolicy", cluster,
                              "--ignore-not-found", check=False)  # fmt: skip
