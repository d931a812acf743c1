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

from e2e.fixtures_crds import (
    operator_after,
    operator_identity_fixture,  # noqa: F401 - a fixture
    stand_in_crd,
    stand_in_object,
)
from e2e.fixtures_operator import (
    OperatorProcess,
    apply,
    condition,
    own_namespace,
    wait_condition,
)
from e2e.harness import ControlPlane
from e2e.test_operator import ready_store

GROUP = "crd.projectcalico.org"
KINDS = {  # kind -> (plural, scope)
    "NetworkPolicy": ("networkpolicies", "Namespaced"),
    "GlobalNetworkPolicy": ("globalnetworkpolicies", "Cluster"),
}
STORE = "support-inquiries"


def calico_policy(
    kind: str, name: str, selector: str, ingress: list[Any], namespace: str | None, **spec: Any
) -> dict[str, Any]:
    """A Calico policy: `selector`'s endpoints, `ingress` rules."""
    body = {"selector": selector, "types": ["Ingress"], "ingress": ingress, **spec}
    return stand_in_object(f"{GROUP}/v1", kind, name, namespace, body)


@pytest.fixture
def calico_served(
    control_plane: ControlPlane, operator_identity: tuple[Path, str], tmp_path: Path
) -> Iterator[OperatorProcess]:
    """Both CRDs installed, then an operator of the chart's rights started after them;
    stopped, and the CRDs deleted, after."""
    crds = (stand_in_crd(GROUP, "v1", kind, *KINDS[kind]) for kind in KINDS)
    log = tmp_path / "operator.log"
    with operator_after(control_plane, operator_identity, log, *crds) as process:
        yield process


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


def test_a_calico_policy_of_another_namespace_escaping_it_makes_the_store_not_isolated(
    control_plane: ControlPlane, namespace: str, calico_served: OperatorProcess
) -> None:
    # A tenant of another namespace writes a Calico NetworkPolicy there whose selector
    # closes the parenthesis Calico joins it in (`(<selector>) && projectcalico.org/
    # namespace == '<its namespace>'`): its Allow applies to every pod of the cluster.
    cnp = "NetworkPolicy"
    qualified = f"{KINDS[cnp][0]}.{GROUP}"
    allow = [{"action": "Allow"}]
    with own_namespace(control_plane, "e2e-calico-tenant") as other:
        try:
            # An ordinary one there changes nothing.
            apply(control_plane, calico_policy(cnp, "ordinary", "all()", allow, other))
            store = ready_store(control_plane, namespace)
            assert condition(store, "NetworkIsolated")["status"] == "True"
            apply(control_plane, calico_policy(cnp, "escape", "all()) || (all()", allow, other))
            store = wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "False",
                                   "CalicoPolicyAllows")  # fmt: skip
            assert f"{other}/escape" in condition(store, "NetworkIsolated")["message"]
            control_plane.kubectl("delete", qualified, "escape", "-n", other)
            wait_condition(control_plane, namespace, STORE, "NetworkIsolated", "True", "Isolated")
        finally:
            control_plane.kubectl("delete", qualified, "-n", other, "escape", "ordinary",
                                  "--ignore-not-found", check=False)  # fmt: skip
