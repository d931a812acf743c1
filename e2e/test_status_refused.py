"""A status write the real API server refuses, against a real control plane.

1. What the server does with a count of status.lastPurge beyond int64 (the CRD types it
   `integer, format: int64`): it refuses 2**63 with 422 and keeps 2**63-1 and -1. The unit
   tests' fake API (tests/controller/fake_kube.py) refuses as this server does, and the purge
   record's check (`dataward.purge.result.is_count`) keeps such a count out of status.
2. A ValidatingAdmissionPolicy on the status subresource that refuses the operator's pass (a
   new observedGeneration) with 422: each condition the store showed True becomes Unknown
   (StatusRefused) by the patch of its conditions alone, which the policy lets through; the
   server's message is not copied; once the policy is gone a pass writes its verdicts again.

The reconciler runs in this process (no operator), its Kube on the admin's kubeconfig.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any, cast

import pytest
import yaml

from dataward.controller.kube import Kube, KubeError, guarded_status_patch, load_api_client
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from e2e.fixtures_operator import apply, get, load_example
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import POLICY, STORE, credentials

pytestmark = pytest.mark.usefixtures("crds_installed", "session_operator_paused")
NAME = "support-inquiries"
FROZEN = "GARBLE-7f3c observedGeneration is frozen"  # the policy's message: never copied


def _store(control_plane: ControlPlane, namespace: str) -> dict[str, Any]:
    apply(control_plane, load_example(POLICY))
    apply(control_plane, credentials(namespace), copy.deepcopy(load_example(STORE, namespace)))
    store = get(control_plane, "personaldatastore", NAME, namespace)
    assert store is not None
    return store


def test_the_server_refuses_a_count_beyond_int64_and_keeps_the_largest_and_minus_one(
    control_plane: ControlPlane, namespace: str
) -> None:
    store = _store(control_plane, namespace)
    kube = Kube(load_api_client(str(control_plane.kubeconfig)))
    uid = store["metadata"]["uid"]

    def write(rows: int) -> Any:
        raw = cast(dict[str, Any], kube.get("PersonalDataStore", namespace, NAME))
        patch = {"lastPurge": {"result": "Succeeded", "rowsDeleted": rows}}
        operations = guarded_status_patch(uid, raw.get("status"), patch)
        answer = kube.json_patch("PersonalDataStore", namespace, NAME, operations, "status")
        return answer["status"]["lastPurge"]["rowsDeleted"]

    for rows in (2**63, 2**64):
        with pytest.raises(KubeError) as refused:
            write(rows)
        assert refused.value.status == 422, rows
    assert write(2**63 - 1) == 2**63 - 1
    assert write(-1) == -1  # no minimum on status.lastPurge: the operator's check keeps it out


def _freeze_generation(control_plane: ControlPlane, namespace: str) -> str:
    """A policy refusing (422) any status write of the namespace's stores that moves
    status.observedGeneration; its name."""
    name = f"e2e-frozen-{uuid.uuid4().hex[:6]}"
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "namespaceSelector": selector,
                "resourceRules": [{
                    "apiGroups": ["dataward.io"], "apiVersions": ["*"],
                    "operations": ["UPDATE"], "resources": ["personaldatastores/status"],
                }],
            },
            "validations": [{
                "expression": "!has(object.status) || !has(oldObject.status) || "
                "!has(object.status.observedGeneration) || "
                "!has(oldObject.status.observedGeneration) || "
                "object.status.observedGeneration == oldObject.status.observedGeneration",
                "message": FROZEN,
                "reason": "Invalid",
            }],
        },
    }  # fmt: skip
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": selector}},
    }  # fmt: skip
    control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([policy, binding]))
    return name


def test_a_refused_pass_leaves_no_condition_true_and_names_only_the_http_status(
    control_plane: ControlPlane, namespace: str
) -> None:
    _store(control_plane, namespace)
    kube = Kube(load_api_client(str(control_plane.kubeconfig)))
    Reconciler(kube, ReconcileSettings()).reconcile((namespace, NAME))
    judged = get(control_plane, "personaldatastore", NAME, namespace)
    assert judged is not None and judged["status"]["observedGeneration"] == 1
    was_true = {c["type"] for c in judged["status"]["conditions"] if c["status"] == "True"}
    assert was_true, "a True condition to watch"

    policy = _freeze_generation(control_plane, namespace)
    try:
        probe = json.dumps({"status": {"observedGeneration": 99}})

        def in_force() -> bool:
            done = control_plane.kubectl(
                "patch", "personaldatastore", NAME, "-n", namespace, "--subresource=status",
                "--type=merge", "-p", probe, "--dry-run=server", check=False,
            )  # fmt: skip
            return done.returncode != 0 and "frozen" in done.stderr

        wait_for(in_force, timeout=30, interval=0.5, message="the policy in force")
        edit = '{"spec":{"purge":{"batchSize":999}}}'  # a new generation to write
        control_plane.kubectl(
            "patch", "personaldatastore", NAME, "-n", namespace, "--type=merge", "-p", edit
        )
        with pytest.raises(KubeError) as refused:
            Reconciler(kube, ReconcileSettings()).reconcile((namespace, NAME))
        assert refused.value.status == 422
        marked = get(control_plane, "personaldatastore", NAME, namespace)
        assert marked is not None
        assert marked["status"]["observedGeneration"] == 1, "the refused pass's is not there"
        by_type = {c["type"]: c for c in marked["status"]["conditions"]}
        for type_ in was_true:
            condition = by_type[type_]
            assert (condition["status"], condition["reason"]) == ("Unknown", "StatusRefused")
            assert "HTTP 422" in condition["message"]
            assert "frozen" not in condition["message"] and "GARBLE" not in condition["message"]
        assert not any(c["status"] == "True" for c in by_type.values())
    finally:
        kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy"
        control_plane.kubectl("delete", kinds, policy, "--ignore-not-found")

    def judged_again() -> bool:
        try:
            Reconciler(kube, ReconcileSettings()).reconcile((namespace, NAME))
        except KubeError:
            return False  # the policy not out of force yet
        now = get(control_plane, "personaldatastore", NAME, namespace)
        return now is not None and now["status"]["observedGeneration"] == 2

    wait_for(judged_again, timeout=30, interval=1, message="a pass taken, the policy gone")
    final = get(control_plane, "personaldatastore", NAME, namespace)
    assert final is not None
    assert not any(c["reason"] == "StatusRefused" for c in final["status"]["conditions"])
