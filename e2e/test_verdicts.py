"""Honest verdicts on a real control plane, under the chart's RBAC: as attackers and careless
users would act. Each story failed on the operator before the verdicts were made honest.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import pytest
import yaml

from dataward.render.names import names_for
from e2e.fixtures_operator import (
    OPERATOR_NAMESPACE,
    apply,
    chart_rbac,
    condition,
    get,
    load_example,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import credentials, make_store, ready_store

RING = "dataward-support-inquiries-keyring"
CRONJOB = "dataward-support-inquiries-purge"


pytestmark = pytest.mark.usefixtures("seed_policy_applied")


def _planted_ring(namespace: str) -> dict[str, Any]:
    ring = {
        "primary": 1,
        "keys": [{"id": 1, "algorithm": "AES-256-GCM", "created": "2026-11-30T00:00:00Z",
                  "material": base64.b64encode(b"k" * 32).decode()}],
    }  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": RING, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "dataward"}},
        "stringData": {"keyring.json": json.dumps(ring)},
    }  # fmt: skip


def test_a_ring_planted_before_the_store_is_refused_and_left_alone(
    control_plane: ControlPlane, namespace: str
) -> None:
    apply(control_plane, _planted_ring(namespace))
    before = get(control_plane, "secret", RING, namespace)
    assert before is not None
    make_store(control_plane, namespace)
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "EncryptionKeyReady", "False",
        "KeyRingNotCreatedByOperator",
    )  # fmt: skip
    assert condition(store, "Ready")["status"] == "False"
    assert "adoptExistingKeyRing" in condition(store, "EncryptionKeyReady")["message"]
    after = get(control_plane, "secret", RING, namespace)
    assert after is not None and after["data"] == before["data"], "the planted ring was changed"
    # Deleting the planted Secret lets the operator make its own.
    control_plane.kubectl("delete", "secret", RING, "-n", namespace)
    store = wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True")
    fresh = get(control_plane, "secret", RING, namespace)
    assert fresh is not None and fresh["data"] != before["data"]
    assert "pending" not in store["status"]["encryption"]


def test_a_system_user_granted_the_ring_is_foreign(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    apply(
        control_plane,
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "ring-reader", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                    "resourceNames": [RING]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "system-evil", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "ring-reader"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                       "name": "system:evil"}]},
    )  # fmt: skip
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "AccessRestricted", "False",
        "OtherBindingGrantsSecrets",
    )  # fmt: skip
    assert "User system:evil" in condition(store, "AccessRestricted")["message"]
    # The verdict agrees with the API server's own authorizer.
    review = control_plane.kubectl(
        "auth", "can-i", "get", f"secret/{RING}", "-n", namespace, "--as", "system:evil",
        check=False,
    )  # fmt: skip
    assert review.stdout.strip() == "yes"


def test_two_stores_of_two_categories_on_one_database_are_both_ready(
    control_plane: ControlPlane, namespace: str
) -> None:
    first = make_store(control_plane, namespace)
    second = copy.deepcopy(first)
    second["metadata"]["name"] = "newsletter-subscribers"
    second["spec"]["category"] = "newsletter"
    second["spec"].pop("retention", None)
    second["spec"]["records"] = [
        {"table": "newsletter", "timestampColumn": "unsubscribed_at", "keyColumns": ["id"]}
    ]
    second["spec"]["access"] = {"readers": [{"kind": "ServiceAccount", "name": "mailer"}]}
    second["spec"]["network"] = {
        "allowFrom": [{"podSelector": {"matchLabels": {"app": "mailer"}}}]
    }
    apply(control_plane, second)
    for name in ("support-inquiries", "newsletter-subscribers"):
        wait_condition(control_plane, namespace, name, "Ready", "True", timeout=90)

        def names_the_other(name: str = name) -> bool:
            # The first store may be judged before the second's policy exists; the next
            # pass names it.
            store = get(control_plane, "pds", name, namespace)
            return "shared with stores" in condition(store, "NetworkIsolated").get("message", "")

        wait_for(names_the_other, timeout=60, message=f"{name} to name the store it shares with")
        assert condition(get(control_plane, "pds", name, namespace), "Ready")["status"] == "True"


def test_a_store_without_its_credentials_secret_is_not_ready_and_never_purges(
    control_plane: ControlPlane, namespace: str
) -> None:
    store = load_example("examples/stores/support-inquiries.yaml", namespace)
    apply(control_plane, store)  # the Secret it names was never created
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "PurgeScheduled", "False",
        "CredentialsSecretMissing",
    )  # fmt: skip
    assert condition(store, "Ready")["status"] == "False"
    assert "crm-postgres-purger" in condition(store, "PurgeScheduled")["message"]
    cronjob = get(control_plane, "cronjob", CRONJOB, namespace)
    assert cronjob is not None and cronjob["spec"]["suspend"] is True
    # Creating the Secret puts the purge back on schedule.
    apply(control_plane, credentials(namespace))
    wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True")


def _revoke(rbac: list[dict[str, Any]], verbs: dict[str, str]) -> list[dict[str, Any]]:
    """The chart's ClusterRoles without `verb` on each resource in `verbs` (resource -> verb)."""
    out = []
    for doc in rbac:
        if doc["kind"] != "ClusterRole":
            continue
        doc = copy.deepcopy(doc)
        rules = []
        for rule in doc.get("rules") or []:
            hit = [r for r in rule.get("resources", []) if r in verbs]
            rest = [r for r in rule.get("resources", []) if r not in verbs]
            if rest:
                rules.append({**rule, "resources": rest})
            for resource in hit:
                kept = [v for v in rule["verbs"] if v != verbs[resource]]
                rules.append({**rule, "resources": [resource], "verbs": kept})
        doc["rules"] = rules
        out.append(doc)
    return out


def test_reads_the_operator_may_not_make_are_unknown_not_fine(
    control_plane: ControlPlane, namespace: str
) -> None:
    ready_store(control_plane, namespace)
    rbac = chart_rbac(OPERATOR_NAMESPACE)
    revoked = _revoke(rbac, {"networkpolicies": "list", "jobs": "list"})
    control_plane.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-",
        input=yaml.safe_dump_all(revoked),
    )  # fmt: skip
    try:
        store = wait_condition(
            control_plane, namespace, "support-inquiries", "NetworkIsolated", "Unknown",
            "NetworkPoliciesUnreadable",
        )  # fmt: skip
        store = wait_condition(
            control_plane, namespace, "support-inquiries", "PurgeSucceeded", "Unknown",
            "PurgeRunsUnreadable",
        )  # fmt: skip
        assert condition(store, "Ready")["status"] == "Unknown"
    finally:
        control_plane.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all([d for d in rbac if d["kind"] == "ClusterRole"]),
        )  # fmt: skip
    wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True", timeout=90)


def test_a_readers_binding_kept_by_a_finalizer_still_counts_after_its_delete(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Someone's tool keeps the readers' binding (a finalizer) when the store drops its
    readers: the operator's DELETE only marks it, and the former readers can still read the
    ring. The verdict must say so for as long as the binding is there, not only on the pass
    that sent the DELETE (the real API's answer is what tells them apart)."""
    readers = names_for("support-inquiries").readers
    ready_store(control_plane, namespace)
    control_plane.kubectl(
        "patch", "rolebinding", readers, "-n", namespace, "--type", "merge",
        "-p", '{"metadata": {"finalizers": ["example.com/keep"]}}',
    )  # fmt: skip
    control_plane.kubectl(
        "patch", "pds", "support-inquiries", "-n", namespace, "--type", "merge",
        "-p", '{"spec": {"access": {"readers": []}}}',
    )  # fmt: skip
    try:
        wait_for(lambda: (get(control_plane, "rolebinding", readers, namespace) or {})
                 .get("metadata", {}).get("deletionTimestamp"), 60,
                 "the readers' binding marked for deletion")  # fmt: skip
        time.sleep(20)  # several resyncs (5 s) after the DELETE
        store = get(control_plane, "pds", "support-inquiries", namespace)
        assert get(control_plane, "rolebinding", readers, namespace) is not None
        assert condition(store, "AccessRestricted")["status"] == "False", store
        assert condition(store, "Ready")["status"] == "False"
    finally:
        control_plane.kubectl(
            "patch", "rolebinding", readers, "-n", namespace, "--type", "merge",
            "-p", '{"metadata": {"finalizers": null}}', check=False,
        )  # fmt: skip
    wait_condition(control_plane, namespace, "support-inquiries", "AccessRestricted", "True")


def test_a_garbled_ring_record_in_status_is_unknown_and_nothing_is_done_on_it(
    control_plane: ControlPlane, namespace: str
) -> None:
    """Anyone who may patch a store's status subresource can garble the operator's record of
    its ring (here: a key's fingerprint removed, which the CRD's schema lets through). Before:
    the entry was skipped and Ready=True stood. Now EncryptionKeyReady is Unknown
    (StatusUnreadable) naming the field, Ready is Unknown, the ring and the garbled record are
    left as they are, and a person restoring the field brings the store back."""
    ready_store(control_plane, namespace)
    ring = get(control_plane, "secret", RING, namespace)
    store = get(control_plane, "pds", "support-inquiries", namespace)
    assert ring is not None and store is not None
    fingerprint = store["status"]["encryption"]["keys"][0]["fingerprint"]
    control_plane.kubectl(
        "patch", "pds", "support-inquiries", "-n", namespace, "--subresource", "status",
        "--type", "json",
        "-p", json.dumps([{"op": "remove", "path": "/status/encryption/keys/0/fingerprint"}]),
    )  # fmt: skip
    store = wait_condition(
        control_plane, namespace, "support-inquiries", "EncryptionKeyReady", "Unknown",
        "StatusUnreadable",
    )  # fmt: skip
    assert "status.encryption.keys[0].fingerprint" in condition(store, "EncryptionKeyReady")[
        "message"
    ]
    assert condition(store, "Ready")["status"] == "Unknown"
    assert condition(store, "NetworkIsolated")["status"] == "True"  # still judged
    assert "fingerprint" not in store["status"]["encryption"]["keys"][0]  # not rewritten
    after = get(control_plane, "secret", RING, namespace)
    assert after is not None and after["data"] == ring["data"], "the ring was changed"
    # A person restores the field: the operator reads it again.
    control_plane.kubectl(
        "patch", "pds", "support-inquiries", "-n", namespace, "--subresource", "status",
        "--type", "json",
        "-p", json.dumps([{"op": "add", "path": "/status/encryption/keys/0/fingerprint",
                           "value": fingerprint}]),
    )  # fmt: skip
    wait_condition(control_plane, namespace, "support-inquiries", "Ready", "True")
