"""Calico's policy kinds on a real control plane, under the chart's RBAC.

On a Calico cluster its NetworkPolicies (crd.projectcalico.org/v1, namespaced) and
GlobalNetworkPolicies are evaluated with the Kubernetes NetworkPolicies, in order, and an
Allow ends the evaluation: one whose selector selects a store's workload pods and that has an
ingress rule of action Allow admits its sources whatever the store's NetworkPolicy says. The
control plane runs no Calico; this module installs CRDs of that group, version and kinds
(their schema ours and open: nothing enforces them, the verdict is what is tested), and acts
as a platform team that copies `allow-all-ingress` from a tutorial. The operator is started
after the CRDs are installed; neither is left behind.
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

GROUP = "crd.projectcalico.org"
KINDS = {  # kind -> (plural, scope)
    "NetworkPolicy": ("networkpolicies", "Namespaced"),
    "GlobalNetworkPolicy": ("globalnetworkpolicies", "Cluster"),
}
STORE = "support-inquiries"
CRD_CHECK_SECONDS = 2  # the operator's discovery period in this module (`--crd-check-seconds`)


def crd(kind: str) -> dict[str, Any]:
    """A stand-in CRD of one of Calico's policy kinds (open schema)."""
    plural, scope = KINDS[kind]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    },
                }},
            }],
        },
    }  # fmt: skip


def calico_policy(
    kind: str, name: str, selector: str, ingress: list[Any], namespace: str | None, **spec: Any
) -> dict[str, Any]:
    """A Calico policy: `selector`'s endpoints, `ingress` rules."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind,
        "metadata": meta,
        "spec": {"selector": selector, "types": ["Ingress"], "ingress": ingress, **spec},
    }


def _served(plane: ControlPlane) -> bool:
    """Whether the API serves both kinds (discovery, as kubectl asks it)."""
    return all(
        plane.kubectl("get", f"{plural}.{GROUP}", "-A", check=False).returncode == 0
        for plural, _ in KINDS.values()
    )


def _delete_crds(plane: ControlPlane) -> None:
    for plural, _ in KINDS.values():
        plane.kubectl("delete", "crd", f"{plural}.{GROUP}", "--ignore-not-found",
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
def calico_served(
    control_plane: ControlPlane, operator_identity: tuple[Path, str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """Both CRDs installed, then an operator of the chart's rights started after them;
    stopped, and the CRDs deleted, after."""
    apply(control_plane, *(crd(kind) for kind in KINDS))
    for plural, _ in KINDS.values():
        control_plane.kubectl("wait", "--for=condition=Established",
                              f"crd/{plural}.{GROUP}", "--timeout=60s")  # fmt: skip
    wait_for(lambda: _served(control_plane), timeout=60, message="calico policies served")
    process = OperatorProcess(control_plane, *operator_identity, tmp_path / "operator.log")
    process.args = [*process.session_args(), "--crd-check-seconds", str(CRD_CHECK_SECONDS)]
    process.start()
    try:
        yield process
    finally:
        process.stop()
        _delete_crds(control_plane)


def test_a_calico_policy_allowing_all_ingress_makes_the_store_not_isolated(
    control_plane: ControlPlane, namespace: str, calico_served: OperatorProcess
) -> None:
    cnp, gnp = "NetworkPolicy", "GlobalNetworkPolicy"
    deny, allow_all = f"{namespace}-deny", f"{namespace}-allow-all-ingress"
    local = f"{namespace}-lb"
    qualified = {kind: f"{plural}.{GROUP}" for kind, (plural, _) in KINDS.items()}
    try:
        # A Deny changes nothing: isolated with it in place.
        apply(control_plane, calico_policy(cnp, deny, "all()", [{"action": "Deny"}], namespace))
        store = ready_store(control_plane, namespace)
        assert condition(store, "NetworkIsolated")["status"] == "True"
        logs = calico_served.logs()
        assert f"the API serves networkpolicies.{GROUP}" in logs
        assert f"the API serves globalnetworkpolicies.{GROUP}" in logs

        # A platform team copies `allow-all-ingress` from a tutorial.
        apply(control_plane, calico_policy(gnp, allow_all, "all()", [{"action": "Allow"}], None))
        store = wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "False",
                               "CalicoPolicyAllows")  # fmt: skip
        assert allow_all in condition(store, "NetworkIsolated")["message"]
        assert condition(store, "Ready")["status"] == "False"
        control_plane.kubectl("delete", qualified[gnp], allow_all)
        wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "True", "Isolated")

        # The same in the store's namespace, by the namespace Calico labels its endpoints with.
        by_namespace = f"projectcalico.org/namespace == '{namespace}'"
        apply(control_plane, calico_policy(cnp, local, by_namespace, [{"action": "Allow"}],
                                           namespace))  # fmt: skip
        store = wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "False",
                               "CalicoPolicyAllows")  # fmt: skip
        assert f"{namespace}/{local}" in condition(store, "NetworkIsolated")["message"]
        control_plane.kubectl("delete", qualified[cnp], local, "-n", namespace)
        wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "True", "Isolated")
    finally:
        control_plane.kubectl("delete", qualified[cnp], "-n", namespace, deny, local,
                              "--ignore-not-found", check=False)  # fmt: skip
        control_plane.kubectl("delete", qualified[gnp], allow_all, "--ignore-not-found",
                              check=False)  # fmt: skip
