"""AdminNetworkPolicies on a real control plane, under the chart's RBAC.

An AdminNetworkPolicy (policy.networking.k8s.io/v1alpha1) is evaluated before every
NetworkPolicy: an ingress rule of action Allow lets its peers in whatever the namespace's
NetworkPolicies say. The control plane serves none by default (they come as a CRD); this
module installs a CRD of that group, version and kind (its schema ours and open: the API
server stores what it is given), and acts as a cluster admin who opens a store's namespace
with one. Each test runs an operator of its own: one started after the CRD is installed, one
before (discovery is asked at start and at every check of the CRDs). Neither leaves the CRD
behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_crds import (
    CRD_CHECK_SECONDS,
    delete_stand_ins,
    install_stand_ins,
    operator_after,
    operator_identity_fixture,  # noqa: F401 - a fixture
    operator_then_delete,
    stand_in_crd,
)
from e2e.fixtures_operator import OperatorProcess, apply, condition, wait_condition
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import ready_store

CRD_NAME = "adminnetworkpolicies.policy.networking.k8s.io"
# A *.k8s.io group is protected: a CRD of it names its API review, or says it has none.
CRD = stand_in_crd(
    "policy.networking.k8s.io", "v1alpha1", "AdminNetworkPolicy", "adminnetworkpolicies",
    "Cluster",
    annotations={"api-approved.kubernetes.io": "unapproved, a stand-in for Dataward's e2e tests"},
)  # fmt: skip
CRD["spec"]["names"]["shortNames"] = ["anp"]  # as the real CRD's


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


@pytest.fixture
def admin_policies_served(
    control_plane: ControlPlane,
    operator_identity: tuple[Path, str],
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """The CRD installed, then an operator started after it."""
    log = tmp_path / "operator.log"
    with operator_after(control_plane, operator_identity, log, CRD) as process:
        yield process


@pytest.fixture
def admin_policies_not_yet_served(
    control_plane: ControlPlane,
    operator_identity: tuple[Path, str],
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """An operator started while the API serves no AdminNetworkPolicies (the CRD comes in
    the test)."""
    delete_stand_ins(control_plane, CRD_NAME)
    log = tmp_path / "operator.log"
    with operator_then_delete(control_plane, operator_identity, log, CRD_NAME) as process:
        wait_for(lambda: "does not serve adminnetworkpolicies" in process.logs(), timeout=60,
                 message="the operator asked discovery")  # fmt: skip
        yield process


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


def test_an_admin_policy_crd_installed_after_the_operator_started_is_weighed(
    control_plane: ControlPlane, namespace: str, admin_policies_not_yet_served: OperatorProcess
) -> None:
    # A CNI upgrade (or a network team) installs the CRD while the operator runs, and a
    # cluster admin opens the store's namespace with an Allow: the store is not isolated from
    # the next check of the CRDs on, not from the operator's next restart.
    allow = f"{namespace}-allow"
    operator = admin_policies_not_yet_served
    try:
        store = ready_store(control_plane, namespace)
        assert condition(store, "NetworkIsolated")["status"] == "True"

        install_stand_ins(control_plane, CRD)
        apply(control_plane, admin_policy(allow, namespace, "Allow"))
        # A few discovery periods: the check, the cache's first list, the reconcile.
        store = wait_condition(control_plane, namespace, "support-inquiries", "NetworkIsolated",
                               "False", "AdminNetworkPolicyAllows",
                               timeout=5 * CRD_CHECK_SECONDS + 10)  # fmt: skip
        assert allow in condition(store, "NetworkIsolated")["message"]
        assert condition(store, "Ready")["status"] == "False"
        assert "the API serves adminnetworkpolicies.policy.networking.k8s.io now" in (
            operator.logs())

        # The CRD deleted, and its objects with it: judged without them again once discovery
        # says so, not held Unknown by a cache whose list fails for ever.
        delete_stand_ins(control_plane, CRD_NAME)
        wait_for(lambda: "no longer serves adminnetworkpolicies" in operator.logs(),
                 timeout=5 * CRD_CHECK_SECONDS + 10, message="the CRD's deletion seen")
        wait_condition(control_plane, namespace, "support-inquiries", "NetworkIsolated", "True",
                       "Isolated", timeout=5 * CRD_CHECK_SECONDS + 10)  # fmt: skip
    finally:
        control_plane.kubectl("delete", "adminnetworkpolicy", allow, "--ignore-not-found",
                              check=False)  # fmt: skip
