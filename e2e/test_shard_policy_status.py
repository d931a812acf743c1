"""A shard chosen by namespace selector still records its policies' revisions at once.

The revision in force lives in the policy's status (status.revisions). A policy whose status
is never written has no recorded revision, and its next edit would be in force at once: the
notice period silently gone. The shard that writes policy status may be one chosen by
`--namespace-selector`; its first policy events arrive before its Namespace cache is listed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from e2e.fixtures_api import seed_policy
from e2e.fixtures_operator import OPERATOR_NAMESPACE, OperatorProcess, install_operator_identity
from e2e.harness import ControlPlane, wait_for

GROUP, VERSION, PLURAL = "dataward.io", "v1alpha1", "privacypolicies"


@pytest.fixture
def policy(kube: ApiClient, crds_installed: tuple[str, ...]) -> Iterator[str]:
    """The seed policy under a name of its own, made before the operator starts."""
    with seed_policy(kube, "shard") as name:
        yield name


def test_a_selector_shard_records_the_revision_in_force_without_waiting_for_a_resync(
    control_plane: ControlPlane, kube: ApiClient, policy: str, tmp_path: Path
) -> None:
    kubeconfig, account = install_operator_identity(control_plane)
    shard = f"shard-{uuid.uuid4().hex[:6]}"
    args = ["--lease-namespace", OPERATOR_NAMESPACE, "--lease-name", f"dataward-{shard}",
            "--lease-duration-seconds", "6",
            "--operator-service-account", f"{OPERATOR_NAMESPACE}/{account}",
            "--resync-seconds", "3600", "--metrics-port", "0", "--image", "dataward:e2e",
            "--namespace-selector", f"dataward.io/shard={shard}"]  # fmt: skip
    process = OperatorProcess(control_plane, kubeconfig, account, tmp_path / "operator.log", args)
    process.start()
    try:
        revisions = wait_for(
            lambda: (
                client.CustomObjectsApi(kube)
                .get_cluster_custom_object(GROUP, VERSION, PLURAL, policy)
                .get("status", {})
                .get("revisions")
            ),
            timeout=60,
            interval=1,
            message=f"status.revisions of {policy} from the selector shard",
        )
    except TimeoutError as error:
        raise AssertionError(f"{error}\noperator log (tail):\n{process.logs()[-4000:]}") from None
    finally:
        process.stop()
    assert revisions["inForce"]["generation"] == 1
