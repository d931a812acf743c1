"""The operator keeps going when the API misbehaves under it (issue 10, items 7 and 8).

These tests break the control plane on purpose (they delete the CRDs, they freeze the API
server), so they get a control plane and an operator of their own: the session's are left
as they were for every other test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from e2e import fixtures_api
from e2e.fixtures_api import CRD_NAMES, install_crds
from e2e.fixtures_operator import (
    LEASE_SECONDS,
    OperatorProcess,
    apply,
    get,
    install_operator_identity,
    load_example,
    sleep_for,
    wait_condition,
)
from e2e.harness import ControlPlane, wait_for

POLICY = "examples/policy.yaml"
STORE = "examples/stores/support-inquiries.yaml"
CRONJOB = "dataward-support-inquiries-purge"


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A control plane for this module alone."""
    with ControlPlane() as control_plane:
        install_crds(control_plane)
        yield control_plane


@pytest.fixture(scope="module")
def operator(
    plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator on `plane`, with the chart's RBAC and the session operator's arguments.

    Named like the session's fixture, which it hides in this module, so that a failed test
    gets this operator's log attached (conftest.py).
    """
    kubeconfig, account = install_operator_identity(plane)
    log = tmp_path_factory.mktemp("resilience") / "operator.log"
    process = OperatorProcess(plane, kubeconfig, account, log)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def new_namespace(plane: ControlPlane, prefix: str) -> str:
    name = f"e2e-{prefix}-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", name)
    wait_for(
        lambda: plane.kubectl("get", "serviceaccount", "default", "-n", name, check=False)
        .returncode
        == 0,
        timeout=30,
        message=f"ServiceAccount default in {name}",
    )
    return name


def make_ready_store(plane: ControlPlane, namespace: str, **spec: Any) -> dict[str, Any]:
    """Apply the seed's policy, the example store and its credentials; wait for Ready."""
    store = load_example(STORE, namespace, **spec)
    credentials = store["spec"]["database"]["credentialsSecret"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": credentials, "namespace": namespace},
        "type": "Opaque",
        "stringData": {"username": "purger", "password": "not-a-real-password"},
    }
    apply(plane, load_example(POLICY), secret, store)
    return wait_condition(plane, namespace, store["metadata"]["name"], "Ready", "True", timeout=90)


def logs_since(operator: OperatorProcess, mark: int) -> str:
    return operator.logs()[mark:]


def test_the_operator_survives_deleting_its_crds_and_resumes_when_they_are_back(
    plane: ControlPlane, operator: OperatorProcess
) -> None:
    namespace = new_namespace(plane, "crd-before")
    before = make_ready_store(plane, namespace)
    pid = operator.process.pid if operator.process else None
    mark = len(operator.logs())

    # Deleting a CRD deletes its objects first: every store goes with it.
    plane.kubectl("delete", "crd", *CRD_NAMES, "--wait=true", timeout=120)
    try:
        assert get(plane, "pds", before["metadata"]["name"], namespace) is None
        sleep_for(15)  # several resyncs and CRD checks: ample time to crash, were it to crash
        assert operator.alive(), "the operator died with its CRDs"
        wait_for(
            lambda: "CRDs were deleted" in logs_since(operator, mark),
            timeout=30,
            message="the operator says that its CRDs are gone",
        )
    finally:
        fixtures_api._INSTALLED.discard(plane.dir)  # install_crds remembers: apply again
        install_crds(plane)
    after = make_ready_store(plane, new_namespace(plane, "crd-after"))
    assert after["status"]["observedGeneration"] == after["metadata"]["generation"]
    assert operator.alive() and operator.starts == 1
    assert operator.process is not None and operator.process.pid == pid, "it was restarted"
    assert "resuming" in logs_since(operator, mark)


def test_a_hung_api_server_makes_the_leader_stop_acting_then_lead_and_reconcile_again(
    plane: ControlPlane, operator: OperatorProcess
) -> None:
    namespace = new_namespace(plane, "hung")
    make_ready_store(plane, namespace)
    pid = operator.process.pid if operator.process else None
    mark = len(operator.logs())

    with plane.paused("kube-apiserver"):
        # The Lease lasts LEASE_SECONDS; another replica could take over after that. The
        # leader must have stopped acting on its own before, while the server still hangs.
        wait_for(
            lambda: "lost leadership" in logs_since(operator, mark),
            timeout=LEASE_SECONDS * 3,
            message="the leader gives up the Lease it cannot renew",
        )
        sleep_for(LEASE_SECONDS)  # the Lease has now expired as well
        assert operator.alive()

    wait_for(
        lambda: "acquired lease" in logs_since(operator, mark),
        timeout=90,
        message="the operator acquires the Lease again after the API server resumes",
    )
    # It reconciles again: an edit after the resume reaches the store's children.
    edited = load_example(STORE, namespace)
    edited["spec"]["purge"]["schedule"] = "29 4 * * *"
    apply(plane, edited)
    wait_for(
        lambda: (get(plane, "cronjob", CRONJOB, namespace) or {}).get("spec", {}).get("schedule")
        == "29 4 * * *",
        timeout=60,
        message="the CronJob follows the store edited after the resume",
    )
    assert operator.alive() and operator.starts == 1
    assert operator.process is not None and operator.process.pid == pid, "it was restarted"
