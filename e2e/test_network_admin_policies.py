"""AdminNetworkPolicies on a real control plane, under the chart's RBAC.

An AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) is evaluated before every
NetworkPolicy: an ingress rule of action Allow lets its peers in whatever the namespace's
NetworkPolicies say. The control plane serves none by default (they come as a CRD); this
module installs a CRD of that group, version and kind (its schema ours and open: the API
server stores what it is given), starts its own operator after it (discovery is asked once
at start), and acts as a cluster admin who opens a store's namespace with one.
"""

from __future__ import annotations

from collections.abc import Iterator
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

CRD_NAME = "adminnetworkpolicies.policy.networking.k8s.io"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    # A *.k8s.io group is protected: a CRD of it names its API review, or says it has none.
    "metadata": {"name": CRD_NAME, "annotations": {
        "api-approved.kubernetes.io": "unapproved, a stand-in for Dataward's e2e tests"}},
    "spec": {
        "group": "policy.networking.k8s.io",
        "scope": "Cluster",
        "names": {"plural": "adminnetworkpolicies", "singular": "adminnetworkpolicy",
                  "kind": "AdminNetworkPolicy", "listKind": "AdminNetworkPolicyList",
                  "shortNames": ["anp"]},
        "versions": [{
            "name": "v1alpha1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True}},
            }},
        }],
    },
}  # fmt: skip


def admin_policy(name: str, namespace: str, action: str) -> dict[str, Any]:
    """An AdminNetworkPolicy on `namespace`'s pods with one ingress rule of `action` from
    every namespace."""
    return {
        "apiVersion": "policy.networking.k8s.io/v1alpha1",
        "kind": "AdminNetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "priority": 10,
            "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}},
            "ingress": [{"name": f"{action.lower()}-all", "action": action,
                         "from": [{"namespaces": {}}]}],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def admin_policies_served(
    control_plane: ControlPlane,
    session_operator_paused: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The CRD installed, then an operator of the chart's rights started after it. This
    module's name sorts after test_chart.py, which must run before any operator identity
    is installed (its stores would see that ClusterRoleBinding as a grant of their Secrets)."""
    install_crds(control_plane)
    kubeconfig, account = install_operator_identity(control_plane)
    apply(control_plane, CRD)
    control_plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}",
                          "--timeout=60s")  # fmt: skip
    wait_for(
        lambda: control_plane.kubectl("get", "adminnetworkpolicies", check=False).returncode
        == 0,
        timeout=60,
        message="adminnetworkpolicies served",
    )
    apply(control_plane, load_example("examples/policy.yaml"))
    log = tmp_path_factory.mktemp("admin-policies") / "operator.log"
    process = OperatorProcess(control_plane, kubeconfig, account, log)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        control_plane.kubectl("delete", "crd", CRD_NAME, "--wait=true", check=False)


def test_an_admin_policy_allowing_ingress_makes_the_store_not_isolated(
    control_plane: ControlPlane, namespace: str, admin_policies_served: OperatorProcess
) -> None:
    deny, allow = f"{namespace}-deny", f"{namespace}-allow"
    try:
        # Deny only narrows: the store is isolated with it in place.
        apply(control_plane, admin_policy(deny, namespace, "Deny"))
        store = ready_store(control_plane, namespace)
        assert condition(store, "NetworkIsolated")["status"] == "True"
        assert "the API serves adminnetworkpolicies" in admin_policies_served.logs()

        apply(control_plane, admin_policy(allow, namespace, "Allow"))
        store = wait_condition(control_plane, namespace, "support-inquiries", "NetworkIsolated",
                               "False", "AdminNetworkPolicyAllows")  # fmt: skip
        assert allow in condition(store, "NetworkIsolated")["message"]
        assert condition(store, "Ready")["status"] == "False"

        control_plane.kubectl("delete", "adminnetworkpolicy", allow)
        wait_condition(control_plane, namespace, "support-inquiries", "NetworkIsolated", "True")
    finally:
        control_plane.kubectl("delete", "adminnetworkpolicy", deny, allow,
                              "--ignore-not-found", check=False)  # fmt: skip
