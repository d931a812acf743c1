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

from e2e.fixtures_api import install_crds
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    condition,
    install_operator_identity,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import ready_store

KINDS = {  # kind -> (plural, scope)
    "CiliumNetworkPolicy": ("ciliumnetworkpolicies", "Namespaced"),
    "CiliumClusterwideNetworkPolicy": ("ciliumclusterwidenetworkpolicies", "Cluster"),
}
STORE = "support-inquiries"


def crd(kind: str) -> dict[str, Any]:
    """A stand-in CRD of one of Cilium's policy kinds (open schema)."""
    plural, scope = KINDS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cilium.io"},
        "spec": {
            "group": "cilium.io",
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": "v2", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        "specs": {"type": "array", "items": {
                            "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    },
                }},
            }],
        },
    }  # fmt: skip


def cilium_policy(
    kind: str, name: str, selector: dict[str, Any], ingress: list[Any], namespace: str | None
) -> dict[str, Any]:
    """A Cilium policy of one rule: `selector`'s endpoints, `ingress` allowed."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "cilium.io/v2",
        "kind": kind,
        "metadata": meta,
        "spec": {"endpointSelector": selector, "ingress": ingress},
    }


WORLD = [{"fromEntities": ["world"]}]
CRD_CHECK_SECONDS = 2  # the operator's discovery period in this module (`--crd-check-seconds`)


def _served(plane: ControlPlane) -> bool:
    """Whether the API serves both kinds (discovery, as kubectl asks it)."""
    return all(
        plane.kubectl("get", f"{plural}.cilium.io", "-A", check=False).returncode == 0
        for plural, _ in KINDS.values()
    )


def _delete_crds(plane: ControlPlane) -> None:
    for plural, _ in KINDS.values():
        plane.kubectl("delete", "crd", f"{plural}.cilium.io", "--ignore-not-found",
                      "--wait=true", check=False)  # fmt: skip


@pytest.fixture(scope="module")
def operator_identity(
    control_plane: ControlPlane, session_operator_paused: None
) -> tuple[Path, str]:
    """The chart's RBAC and the example policy, the session operator paused. This module's
    name sorts after test_chart.py, which must run before any operator identity is
    installed (its stores would see that ClusterRoleBinding as a grant of their Secrets)."""
    install_crds(control_plane)
    kubeconfig, account = install_operator_identity(control_plane)
    apply(control_plane, load_example("examples/policy.yaml"))
    return kubeconfig, account


@pytest.fixture
def cilium_served(
    control_plane: ControlPlane, operator_identity: tuple[Path, str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """Both CRDs installed, then an operator of the chart's rights started after them;
    stopped, and the CRDs deleted, after."""
    apply(control_plane, *(crd(kind) for kind in KINDS))
    for plural, _ in KINDS.values():
        control_plane.kubectl("wait", "--for=condition=Established",
                              f"crd/{plural}.cilium.io", "--timeout=60s")  # fmt: skip
    wait_for(lambda: _served(control_plane), timeout=60, message="cilium.io policies served")
    process = OperatorProcess(control_plane, *operator_identity, tmp_path / "operator.log")
    process.args = [*process.session_args(), "--crd-check-seconds", str(CRD_CHECK_SECONDS)]
    process.start()
    try:
        yield process
    finally:
        process.stop()
        _delete_crds(control_plane)


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
