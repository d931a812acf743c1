"""The operator keeps going when the API misbehaves under it (issue 10, items 7 and 8).

These tests break the control plane on purpose (they delete the CRDs, they freeze the API
server), so they get a control plane and an operator of their own: the session's are left
as they were for every other test.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from e2e import fixtures_api
from e2e.fixtures_api import CRD_NAMES, install_crds
from e2e.fixtures_operator import (
    LEASE_SECONDS,
    OPERATOR_NAMESPACE,
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


MUTATING = {"create", "update", "patch", "delete", "deletecollection"}


def _credential(event: dict[str, Any]) -> str | None:
    """The token a request came with (the API server's JTI of a ServiceAccount token)."""
    ids = ((event.get("user") or {}).get("extra") or {}).get(
        "authentication.kubernetes.io/credential-id") or []
    return ids[0] if ids else None


def _writes_by(plane: ControlPlane, credential: str, since: str = "") -> list[str]:
    """The mutating requests made with `credential` received at or after `since` (RFC 3339)."""
    return [
        f"{e['verb']} {(e.get('objectRef') or {}).get('resource')}"
        f"/{(e.get('objectRef') or {}).get('name')} {e.get('requestReceivedTimestamp')} "
        f"-> {(e.get('responseStatus') or {}).get('code')}"
        for e in plane.audit_events()
        if e.get("verb") in MUTATING and _credential(e) == credential
        and str(e.get("requestReceivedTimestamp") or "") >= since
        and (e.get("responseStatus") or {}).get("code", 0) < 300
    ]


def _credential_of(plane: ControlPlane, kubeconfig: Path) -> str:
    """The credential id the API server records for `kubeconfig`'s token (one request made)."""
    mark = len(plane.audit_events())
    plane.kubectl("get", "--raw", "/version", kubeconfig=kubeconfig, check=False)
    seen = {_credential(e) for e in plane.audit_events()[mark:]
            if e.get("requestURI") == "/version"
            and "kubectl" in str(e.get("userAgent"))} - {None}  # fmt: skip
    assert len(seen) == 1, f"cannot tell the replicas apart by credential id: {seen}"
    return str(seen.pop())


def _second_token(
    plane: ControlPlane, operator: OperatorProcess, tmp_path: Path
) -> tuple[Path, str]:
    """A kubeconfig with a token of its own for the operator's ServiceAccount (the same
    RBAC), and the credential id the audit log records for it."""
    original = operator.kubeconfig.read_text()
    minted = plane.kubeconfig_for_service_account(OPERATOR_NAMESPACE, operator.account, 3600)
    second = tmp_path / "second.kubeconfig"
    second.write_text(minted.read_text())
    operator.kubeconfig.write_text(original)  # the same file name: the leader keeps its token
    return second, _credential_of(plane, second)


def test_a_frozen_leader_resumed_after_a_takeover_writes_nothing(
    plane: ControlPlane, operator: OperatorProcess, tmp_path: Path
) -> None:
    """Two replicas: the leader is frozen (SIGSTOP: a long GC, a node freeze) past its Lease,
    the standby takes over and acts, then the old leader resumes in the middle of whatever it
    was doing. The audit log, by each replica's own token, shows the standby made no write
    while the leader was healthy and the old leader none after it resumed."""
    namespace = new_namespace(plane, "frozen")
    make_ready_store(plane, namespace)
    assert operator.process is not None
    # The standby: the same RBAC, a token of its own so that the audit log tells them apart.
    leader_token = _credential_of(plane, operator.kubeconfig)
    second_kubeconfig, standby_token = _second_token(plane, operator, tmp_path)
    assert leader_token != standby_token
    standby = OperatorProcess(plane, second_kubeconfig, operator.account, tmp_path / "standby.log")
    standby.start()
    try:
        sleep_for(LEASE_SECONDS * 2)
        assert "acquired lease" not in standby.logs()
        assert _writes_by(plane, standby_token) == [], "a standby wrote while the leader was well"

        mark = len(operator.logs())
        os.kill(operator.process.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: "acquired lease" in standby.logs(), timeout=LEASE_SECONDS * 5,
                     message="the standby takes the Lease of the frozen leader")
            edited = load_example(STORE, namespace)
            edited["spec"]["purge"]["schedule"] = "31 4 * * *"
            apply(plane, edited)
            wait_for(
                lambda: (get(plane, "cronjob", CRONJOB, namespace) or {}).get("spec", {})
                .get("schedule") == "31 4 * * *",
                timeout=60, message="the new leader acts",
            )
            assert _writes_by(plane, standby_token), "the audit log does not show its writes"
            edited["spec"]["purge"]["schedule"] = "32 4 * * *"
            apply(plane, edited)  # work the frozen leader's watch will deliver on resume
        finally:
            resumed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            os.kill(operator.process.pid, signal.SIGCONT)
        sleep_for(LEASE_SECONDS * 3)
        assert operator.alive()
        stale = _writes_by(plane, leader_token, since=resumed)
        assert stale == [], f"the old leader wrote after it lost the Lease: {stale}"
        assert "lost leadership" in logs_since(operator, mark)
        assert "acquired lease" not in logs_since(operator, mark), "both replicas lead"
    finally:
        standby.stop()


def _lease(holder: str, renewed: datetime, name: str) -> dict[str, Any]:
    stamp = renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": LEASE_SECONDS,
                 "acquireTime": stamp, "renewTime": stamp},
    }


def test_a_replica_whose_clock_is_ahead_does_not_take_a_lease_renewed_by_a_lagging_holder(
    plane: ControlPlane, operator: OperatorProcess, tmp_path: Path
) -> None:
    """A live holder whose clock is a minute behind renews a Lease every second: each renewTime
    it writes looks a minute old to a replica with a true clock. That replica must not take
    the Lease (it took it at once: two leaders), nor write anything."""
    name = f"skewed-{uuid.uuid4().hex[:6]}"
    kubeconfig, token = _second_token(plane, operator, tmp_path)
    lag = timedelta(seconds=60)
    apply(plane, _lease("lagging-replica", datetime.now(UTC) - lag, name))
    replica = OperatorProcess(
        plane, kubeconfig, operator.account, tmp_path / "replica.log",
        args=[*operator.session_args(), "--lease-name", name],
    )
    replica.start()
    try:
        until = time.monotonic() + LEASE_SECONDS * 3
        while time.monotonic() < until:  # the lagging holder renews
            apply(plane, _lease("lagging-replica", datetime.now(UTC) - lag, name))
            assert "acquired lease" not in replica.logs(), "took a Lease renewed a second ago"
            sleep_for(1)
        lease = get(plane, "lease", name, OPERATOR_NAMESPACE) or {}
        assert lease.get("spec", {}).get("holderIdentity") == "lagging-replica"
        assert _writes_by(plane, token) == [], "a standby wrote"
    finally:
        replica.stop()
