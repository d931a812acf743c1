"""A child the operator made, deleted and made again by someone else between the reconcile's
read and its repair, against the real API server: the repair is refused, never a takeover.

The reconciler runs in this process (no operator), its Kube on the admin's kubeconfig, so its
reads are live GETs: the window between the read that judged the NetworkPolicy the operator's
(edited, so it needs a repair) and the forced apply is the test's to fill. A forced apply
without a precondition would take over the planted object: the operator's labels, owner
reference and rules written into someone else's. The apply carries the resourceVersion it
judged, which the real server takes as a precondition (409); the child is then judged again
on a fresh read: someone else's, and said so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest

from dataward.controller.kube import Kube, KubeError, load_api_client
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.names import names_for
from e2e.fixtures_operator import apply, get, load_example
from e2e.harness import ControlPlane
from e2e.test_operator import POLICY, STORE, credentials

# No session operator meanwhile: it would repair the child itself.
pytestmark = pytest.mark.usefixtures("crds_installed", "session_operator_paused")
NAME = "support-inquiries"


def _conditions(plane: ControlPlane, namespace: str) -> dict[str, tuple[str, str]]:
    store = get(plane, "personaldatastore", NAME, namespace)
    assert store is not None
    return {c["type"]: (c["status"], c["reason"]) for c in store["status"]["conditions"]}


def test_a_child_made_again_by_someone_else_before_its_repair_is_not_taken_over(
    control_plane: ControlPlane, namespace: str
) -> None:
    apply(control_plane, load_example(POLICY))
    apply(control_plane, credentials(namespace), load_example(STORE, namespace))
    kube = Kube(load_api_client(str(control_plane.kubeconfig)))
    reconciler = Reconciler(kube, ReconcileSettings())
    reconciler.reconcile((namespace, NAME))
    policy = names_for(NAME).network_policy
    # A careless edit: the operator's NetworkPolicy now lets everything in.
    control_plane.kubectl("patch", "networkpolicy", policy, "-n", namespace, "--type=merge",
                          "-p", json.dumps({"spec": {"ingress": [{}]}}))  # fmt: skip
    planted: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": policy, "namespace": namespace, "labels": {"team": "careless"}},
        "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]},
    }
    real = kube.apply
    refused: list[int] = []

    def plant_then_apply(obj: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
        if obj["kind"] == "NetworkPolicy" and not refused:
            control_plane.kubectl("delete", "networkpolicy", policy, "-n", namespace)
            apply(control_plane, copy.deepcopy(planted))
        try:
            return real(obj, version)
        except KubeError as error:
            refused.append(error.status)
            raise

    kube.apply = plant_then_apply  # type: ignore[method-assign]
    reconciler.reconcile((namespace, NAME))
    assert refused == [409], "the real server refuses the apply on the judged resourceVersion"
    theirs = get(control_plane, "networkpolicy", policy, namespace)
    assert theirs is not None
    assert "ownerReferences" not in theirs["metadata"]
    assert theirs["metadata"]["labels"] == {"team": "careless"}
    assert theirs["spec"]["ingress"] == [{}]
    assert _conditions(control_plane, namespace)["NetworkIsolated"] == (
        "False", "ChildNotCreatedByOperator")  # fmt: skip
    assert _conditions(control_plane, namespace)["Ready"][0] == "False"
