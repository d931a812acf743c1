"""The operator among the other actors of a real cluster: each converges to silence, or to a
bounded, reported state, never to a write per pass or per watch event.

Another controller (Argo CD or Flux style) that puts its own value of a field the operator
owns back whenever it sees the operator's; a controller that keeps a condition of its own in
a store's status. Each runs in a thread of the test against the real API server while the
session operator (a resync every 5 s) reconciles; the operator's mutating requests are
counted from the audit log over a window.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from e2e.fixtures_operator import OperatorProcess, condition, get, sleep_for, wait_condition
from e2e.test_operator import make_store, operator_writes, ready_store

pytestmark = pytest.mark.usefixtures("seed_policy_applied")

NAME = "support-inquiries"
PURGE = "dataward-support-inquiries-purge"
WINDOW = 30.0


@contextmanager
def actor(step: Callable[[], None], period: float = 0.2) -> Iterator[list[int]]:
    """Run `step` every `period` seconds in a thread (a controller of someone else's) until
    the block ends; yields a list holding how many steps raised (a 409 is a race it lost)."""
    stop = threading.Event()
    failures = [0]

    def loop() -> None:
        while not stop.is_set():
            try:
                step()
            except Exception:
                failures[0] += 1
            stop.wait(period)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield failures
    finally:
        stop.set()
        thread.join(timeout=10)


def _ours(writes: list[str], resource: str, namespace: str) -> list[str]:
    return [w for w in writes if f" {resource} {namespace}/" in w]


def test_a_controller_holding_another_value_of_a_cronjob_field_is_not_fought_per_event(
    control_plane: Any, kube: ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    """A GitOps controller keeps `successfulJobsHistoryLimit: 7` on the purge CronJob (the
    operator renders another value) and puts it back at once whenever it sees another. The
    operator may repair it a few times, then must hold off: at most a handful of writes to
    the CronJob in the window, not one per watch event (hundreds)."""
    ready_store(control_plane, namespace)
    batch = client.BatchV1Api(kube)
    rendered = batch.read_namespaced_cron_job(PURGE, namespace).spec.successful_jobs_history_limit
    assert rendered != 7

    def hold() -> None:
        found = batch.read_namespaced_cron_job(PURGE, namespace)
        if found.spec.successful_jobs_history_limit != 7:
            batch.patch_namespaced_cron_job(
                PURGE, namespace, {"spec": {"successfulJobsHistoryLimit": 7}}
            )

    since = datetime.now(UTC)
    with actor(hold):
        sleep_for(WINDOW)
        # Said so: the purge is not as the store declares, and who holds it is not the operator.
        held = condition(get(control_plane, "personaldatastore", NAME, namespace),
                         "PurgeScheduled")  # fmt: skip
        assert (held["status"], held["reason"]) == ("False", "ChildHeldDifferent"), held
        assert PURGE in held["message"]
    assert operator.alive()
    everything = operator_writes(control_plane, operator.account, since)
    writes = _ours(everything, "cronjobs", namespace)
    assert len(writes) <= 8, f"{len(writes)} writes to the CronJob in {WINDOW} s: {writes[:5]}"
    # The verdict changed once (and Ready with it), not at each repair.
    for resource in ("personaldatastores", "events"):
        found = _ours(everything, resource, namespace)
        assert len(found) <= 4, f"{len(found)} writes of {resource}: {found}"
    # The other controller gone, the next repair holds and the store is Ready again.
    wait_condition(control_plane, namespace, NAME, "PurgeScheduled", "True", timeout=90)
    found = batch.read_namespaced_cron_job(PURGE, namespace)
    assert found.spec.successful_jobs_history_limit == rendered


def test_a_condition_another_controller_keeps_in_a_stores_status_is_not_fought(
    control_plane: Any, kube: ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    """Another controller keeps a condition of its own type (`example.com/Synced`) in the
    store's status, as Kubernetes' conventions let several controllers do (conditions are a
    map keyed by type). The operator must leave it there: no status write in the window."""
    ready_store(control_plane, namespace)
    custom = client.CustomObjectsApi(kube)
    theirs = {
        "type": "ExampleSynced",
        "status": "True",
        "reason": "Synced",
        "message": "in sync with the repository",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }

    def keep() -> None:
        store: dict[str, Any] = custom.get_namespaced_custom_object(
            "dataward.io", "v1alpha1", namespace, "personaldatastores", NAME
        )
        conditions = (store.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "ExampleSynced" for c in conditions):
            control_plane.kubectl(
                "patch", "personaldatastore", NAME, "-n", namespace, "--subresource=status",
                "--type=json", "-p",
                json.dumps([{"op": "add", "path": "/status/conditions/-", "value": theirs}]),
            )

    with actor(keep) as failures:
        sleep_for(8)  # the first add, and the operator's answer to it
        since = datetime.now(UTC)
        sleep_for(WINDOW)
    assert operator.alive()
    assert failures == [0]
    writes = _ours(
        operator_writes(control_plane, operator.account, since), "personaldatastores", namespace
    )
    assert writes == [], f"{len(writes)} status writes in {WINDOW} s: {writes[:5]}"
    store = get(control_plane, "personaldatastore", NAME, namespace)
    assert store is not None
    types = [c["type"] for c in store["status"]["conditions"]]
    assert "ExampleSynced" in types and "Ready" in types


def test_labels_and_annotations_added_to_every_child_and_the_store_cost_no_write(
    control_plane: Any, namespace: str, operator: OperatorProcess
) -> None:
    """kubectl label and annotate (a cost-centre label, a policy engine's annotation) on each
    child, the key ring and the store itself: fields the operator does not own. After the
    echo of those edits, nothing is written: not the children, not status, no Event."""
    ready_store(control_plane, namespace)
    since = datetime.now(UTC)
    kinds = "networkpolicies,roles,rolebindings,serviceaccounts,cronjobs,secrets"
    selector = "app.kubernetes.io/managed-by=dataward"
    for verb, pair in (("label", "cost-centre=crm"),
                       ("annotate", "policies.kyverno.io/last-applied-patches=added")):
        control_plane.kubectl(verb, kinds, "-n", namespace, "-l", selector, pair)
        control_plane.kubectl(verb, "personaldatastore", NAME, "-n", namespace, pair)
    sleep_for(20)  # resync every 5 s: several full reconciles after the edits' watch events
    assert operator.alive()
    ours = [w for w in operator_writes(control_plane, operator.account, since)
            if f" {namespace}/" in w]  # fmt: skip
    assert ours == [], f"{len(ours)} writes after edits of fields the operator does not own: {ours}"
    store = get(control_plane, "personaldatastore", NAME, namespace)
    assert condition(store, "Ready")["status"] == "True"


def _admission_version(plane: Any) -> str | None:
    """The served version of MutatingAdmissionPolicy (v1, else v1beta1), or None."""
    versions = plane.kubectl("api-versions").stdout.split()
    for version in ("v1", "v1beta1", "v1alpha1"):
        if f"admissionregistration.k8s.io/{version}" in versions:
            found = plane.kubectl("api-resources", "--api-group=admissionregistration.k8s.io",
                                  "-o", "name").stdout  # fmt: skip
            if "mutatingadmissionpolicies" in found:
                return version
    return None


def _mutating_policy(name: str, version: str, namespace: str, rules: list[dict[str, Any]],
                     expression: str, patch: str = "ApplyConfiguration",
                     ) -> list[dict[str, Any]]:  # fmt: skip
    """A MutatingAdmissionPolicy (`patch`: ApplyConfiguration or JSONPatch, by `expression`)
    and its binding to `namespace`."""
    api = f"admissionregistration.k8s.io/{version}"
    field = "applyConfiguration" if patch == "ApplyConfiguration" else "jsonPatch"
    return [
        {"apiVersion": api, "kind": "MutatingAdmissionPolicy", "metadata": {"name": name},
         "spec": {"matchConstraints": {"resourceRules": rules}, "failurePolicy": "Fail",
                  "reinvocationPolicy": "IfNeeded",
                  "mutations": [{"patchType": patch, field: {"expression": expression}}]}},
        {"apiVersion": api, "kind": "MutatingAdmissionPolicyBinding", "metadata": {"name": name},
         "spec": {"policyName": name, "matchResources": {"namespaceSelector": {
             "matchLabels": {"kubernetes.io/metadata.name": namespace}}}}},
    ]  # fmt: skip


def _rule(group: str, resource: str) -> dict[str, Any]:
    return {"apiGroups": [group], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": [resource]}  # fmt: skip


def test_a_mutating_admission_policy_on_every_child_converges_to_silence(
    control_plane: Any, namespace: str, operator: OperatorProcess
) -> None:
    """A policy engine's mutating admission (a MutatingAdmissionPolicy in the API server) adds
    a label to every child and the key ring, a default to the purge CronJob's pod template
    (an annotation) and Egress to the NetworkPolicy's policyTypes (a 'deny egress by
    default' rule: in a field the operator sets). The operator may try to undo the last
    once; then it writes nothing: not the children, not status, no Event."""
    version = _admission_version(control_plane)
    if version is None:
        pytest.skip("the API server serves no MutatingAdmissionPolicy")
    label = 'Object{metadata: Object.metadata{labels: {"policy.example/injected": "yes"}}}'
    objects = [
        *_mutating_policy(f"{namespace}-labels", version, namespace, [
            _rule("networking.k8s.io", "networkpolicies"),
            _rule("rbac.authorization.k8s.io", "roles"),
            _rule("rbac.authorization.k8s.io", "rolebindings"),
            _rule("batch", "cronjobs"), _rule("", "serviceaccounts"), _rule("", "secrets"),
        ], label),
        *_mutating_policy(f"{namespace}-pod", version, namespace, [_rule("batch", "cronjobs")],
                          "Object{spec: Object.spec{jobTemplate: Object.spec.jobTemplate{"
                          "spec: Object.spec.jobTemplate.spec{template: "
                          "Object.spec.jobTemplate.spec.template{metadata: "
                          "Object.spec.jobTemplate.spec.template.metadata{annotations: "
                          '{"policy.example/sidecar": "off"}}}}}}}'),
        *_mutating_policy(f"{namespace}-egress", version, namespace,
                          [_rule("networking.k8s.io", "networkpolicies")],
                          '[JSONPatch{op: "replace", path: "/spec/policyTypes", '
                          'value: ["Ingress", "Egress"]}]', "JSONPatch"),
    ]  # fmt: skip
    for obj in objects:
        control_plane.kubectl("apply", "-f", "-", input=json.dumps(obj))
    try:
        sleep_for(3)  # the policies take effect (the API server loads them asynchronously)
        make_store(control_plane, namespace)
        wait_condition(control_plane, namespace, NAME, "PurgeScheduled", "True", timeout=60)
        netpol = get(control_plane, "networkpolicy", "dataward-support-inquiries-isolation",
                     namespace)  # fmt: skip
        assert netpol is not None
        assert netpol["metadata"]["labels"].get("policy.example/injected") == "yes", "took"
        assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"], "took"
        sleep_for(10)  # the first passes, and the tries to undo what the policies do
        since = datetime.now(UTC)
        sleep_for(WINDOW)  # resync every 5 s
        assert operator.alive()
        ours = [w for w in operator_writes(control_plane, operator.account, since)
                if f" {namespace}/" in w]  # fmt: skip
        assert ours == [], f"{len(ours)} writes under mutating admission: {ours[:8]}"
    finally:
        for obj in reversed(objects):
            control_plane.kubectl("delete", obj["kind"], obj["metadata"]["name"],
                                  "--ignore-not-found")  # fmt: skip


def test_a_flapping_condition_posts_a_bounded_number_of_events(
    control_plane: Any, kube: ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    """Someone's script creates and deletes a NetworkPolicy letting everything in to every pod
    of the namespace, every second: NetworkIsolated flaps. Status follows each change (it is
    the verdict), but the Events about the store are bounded: not three per flap."""
    ready_store(control_plane, namespace)
    net = client.NetworkingV1Api(kube)
    body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all", "namespace": namespace},
            "spec": {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}}  # fmt: skip
    present = [False]

    def flap() -> None:
        if present[0]:
            net.delete_namespaced_network_policy("allow-all", namespace)
        else:
            net.create_namespaced_network_policy(namespace, body)
        present[0] = not present[0]

    since = datetime.now(UTC)
    with actor(flap, period=1.0):
        sleep_for(WINDOW)
    assert operator.alive()
    everything = operator_writes(control_plane, operator.account, since)
    verdicts = _ours(everything, "personaldatastores", namespace)
    assert len(verdicts) >= 6, f"the flapping was not seen: {verdicts}"
    posted = _ours(everything, "events", namespace)
    assert len(posted) <= 8, f"{len(posted)} Events for {len(verdicts)} status writes"
