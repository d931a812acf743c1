"""A store deleted and recreated under its name while a reconcile of the old one is under way,
against the real API server: the pass's final status write must not land on the new store.

The reconciler runs in this process (no operator), its Kube on the admin's kubeconfig; the
store is deleted and applied again (a GitOps replace) right before the pass writes its verdicts.
On the status subresource a `metadata.uid` in a merge patch is no precondition (the server keeps
the old object's metadata), so the write is a JSON patch that tests the uid first: the server
refuses it (422) and the new store keeps no status of the old one's.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytest

from dataward.controller.kube import Kube, KubeError, guarded_status_patch, load_api_client
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from e2e.fixtures_operator import apply, get, load_example
from e2e.harness import ControlPlane, wait_for
from e2e.test_operator import POLICY, STORE, credentials

# No session operator meanwhile: it would reconcile this store too (its writes are not this
# test's pass's, and an operator with other settings writes other verdicts, every pass).
pytestmark = pytest.mark.usefixtures("crds_installed", "session_operator_paused")
NAME = "support-inquiries"


def _replace(plane: ControlPlane, namespace: str, store: dict[str, Any]) -> str:
    """`kubectl delete` then `kubectl apply` of the same manifest; the new store's uid."""
    plane.kubectl("delete", "personaldatastore", NAME, "-n", namespace, "--wait=false")
    plane.kubectl("patch", "personaldatastore", NAME, "-n", namespace, "--type=merge",
                  "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
    wait_for(lambda: get(plane, "personaldatastore", NAME, namespace) is None, timeout=30,
             message="the old store gone")  # fmt: skip
    apply(plane, copy.deepcopy(store))
    new = get(plane, "personaldatastore", NAME, namespace)
    assert new is not None
    return str(new["metadata"]["uid"])


def test_a_store_replaced_before_its_status_write_gets_none_of_the_old_ones(
    control_plane: ControlPlane, namespace: str
) -> None:
    apply(control_plane, load_example(POLICY))
    store = load_example(STORE, namespace)
    apply(control_plane, credentials(namespace), copy.deepcopy(store))
    old = get(control_plane, "personaldatastore", NAME, namespace)
    assert old is not None
    kube = Kube(load_api_client(str(control_plane.kubeconfig)))
    reconciler = Reconciler(kube, ReconcileSettings())
    real = kube.json_patch
    replaced: list[str] = []
    refused: list[int] = []

    def json_patch(kind: str, ns: str | None, name: str,
                   operations: Sequence[Mapping[str, Any]],
                   subresource: str | None = None) -> dict[str, Any]:
        final = kind == "PersonalDataStore" and subresource == "status" and any(
            op.get("path") in ("/status", "/status/conditions") for op in operations
        )
        if final and not replaced:
            replaced.append(_replace(control_plane, namespace, store))
        try:
            return real(kind, ns, name, operations, subresource)
        except KubeError as error:
            refused.append(error.status)
            raise

    kube.json_patch = json_patch  # type: ignore[method-assign]
    assert reconciler.reconcile((namespace, NAME)) is None
    assert replaced, "the pass came to its status write"
    assert refused == [422], "the real server refuses a failed uid test with 422"
    new = get(control_plane, "personaldatastore", NAME, namespace)
    assert new is not None and new["metadata"]["uid"] == replaced[0]
    assert "status" not in new, "no verdict, generation or ring record of the old store"

    # The new store's own pass writes its status (it has none): its own verdicts. The old
    # store's ring (Retain) is not its own: it is not adopted.
    kube.json_patch = real  # type: ignore[method-assign]
    reconciler = Reconciler(kube, ReconcileSettings())
    # The old store's children go by garbage collection, on the controller-manager's time:
    # until then the new store's passes see objects of its children's names that are not its
    # own, and each pass after the collection makes some of them. So: passes until one writes
    # nothing to the store (steady state: a pass with nothing changed writes nothing), each
    # checked for the old store's record.
    versions: list[str] = []
    for _ in range(12):
        reconciler.reconcile((namespace, NAME))
        written = get(control_plane, "personaldatastore", NAME, namespace)
        assert written is not None and written["metadata"]["uid"] == replaced[0]
        status = written["status"]
        assert status["observedGeneration"] == written["metadata"]["generation"]
        assert {c["type"] for c in status["conditions"]} >= {"Ready", "EncryptionKeyReady"}
        assert "encryption" not in status, "the old store's ring is never recorded as the new's"
        versions.append(written["metadata"]["resourceVersion"])
        if len(versions) >= 3 and versions[-1] == versions[-2]:
            break
        time.sleep(1)
    assert len(versions) >= 3 and versions[-1] == versions[-2], (
        f"a pass with nothing changed still wrote the store: {versions}"
    )

    # A null in the patch removes the key whether or not the store has it (a JSON patch
    # `remove` of a missing member alone would be refused).
    raw = cast(dict[str, Any], kube.get("PersonalDataStore", namespace, NAME))
    uid = raw["metadata"]["uid"]
    kube.json_patch("PersonalDataStore", namespace, NAME, guarded_status_patch(
        uid, raw["status"], {"impactPreview": None, "lastPurge": None}), "status")  # fmt: skip
    after = cast(dict[str, Any], kube.get("PersonalDataStore", namespace, NAME))
    assert after["status"] == {k: v for k, v in raw["status"].items()
                               if k not in ("impactPreview", "lastPurge")}  # fmt: skip
