"""Stand-in CRDs of other projects' policy kinds, and an operator started after them.

The control plane serves no AdminNetworkPolicies, nor Cilium's or Calico's policies: a module
that tests how the operator weighs them installs CRDs of their group, version and kinds (their
schema ours and open: nothing enforces them, the verdict is what is tested), starts an
operator of the chart's rights that asks discovery every CRD_CHECK_SECONDS, and deletes the
CRDs after. Import `operator_identity_fixture` into such a module (it provides
`operator_identity`, one per module).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from e2e.fixtures_api import install_crds
from e2e.fixtures_operator import OperatorProcess, apply, install_operator_identity, load_example
from e2e.harness import ControlPlane, wait_for

CRD_CHECK_SECONDS = 2  # the operator's discovery period in these modules (`--crd-check-seconds`)
# The schema of an open object: the API server stores what it is given.
OPEN = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def stand_in_crd(
    group: str,
    version: str,
    kind: str,
    plural: str,
    scope: str,
    properties: Mapping[str, Any] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """A CRD of `kind` whose objects' `spec` (or the given top-level `properties`) is open;
    `metadata` beside its name (a *.k8s.io group's API review annotation)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", **metadata},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List"},
            "versions": [{
                "name": version, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": dict(properties or {"spec": OPEN}),
                }},
            }],
        },
    }  # fmt: skip


def stand_in_object(
    api_version: str, kind: str, name: str, namespace: str | None, spec: Mapping[str, Any]
) -> dict[str, Any]:
    """An object of a stand-in kind: in `namespace`, or cluster-scoped where None."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, "spec": dict(spec)}


def served(plane: ControlPlane, names: Iterable[str]) -> bool:
    """Whether the API serves every resource of `names` (`plural.group`; discovery, as
    kubectl asks it)."""
    return all(
        plane.kubectl("get", name, "-A", check=False).returncode == 0 for name in names
    )


def install_stand_ins(plane: ControlPlane, *crds: Mapping[str, Any]) -> None:
    """`crds` applied, Established and served."""
    names = [crd["metadata"]["name"] for crd in crds]
    apply(plane, *crds)
    for name in names:
        plane.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    wait_for(lambda: served(plane, names), timeout=60, message=f"{', '.join(names)} served")


def delete_stand_ins(plane: ControlPlane, *names: str) -> None:
    """The CRDs of `names` deleted (and their objects with them), and discovery no longer
    serving any: as the control plane comes."""
    for name in names:
        plane.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=true", check=False)
    wait_for(lambda: not any(served(plane, [name]) for name in names), timeout=60,
             message=f"{', '.join(names)} not served")  # fmt: skip


@pytest.fixture(scope="module", name="operator_identity")
def operator_identity_fixture(
    control_plane: ControlPlane, session_operator_paused: None
) -> tuple[Path, str]:
    """The chart's RBAC and the example policy, the session operator paused. An importing
    module's name must sort after test_chart.py, which must run before any operator identity
    is installed (its stores would see that ClusterRoleBinding as a grant of their Secrets)."""
    install_crds(control_plane)
    kubeconfig, account = install_operator_identity(control_plane)
    apply(control_plane, load_example("examples/policy.yaml"))
    return kubeconfig, account


@contextlib.contextmanager
def operator_then_delete(
    plane: ControlPlane, identity: tuple[Path, str], log: Path, *crd_names: str
) -> Iterator[OperatorProcess]:
    """An operator of the chart's rights, asking discovery every CRD_CHECK_SECONDS; stopped,
    and the CRDs of `crd_names` deleted, after."""
    process = OperatorProcess(plane, *identity, log)
    process.args = [*process.session_args(), "--crd-check-seconds", str(CRD_CHECK_SECONDS)]
    process.start()
    try:
        yield process
    finally:
        process.stop()
        delete_stand_ins(plane, *crd_names)


@contextlib.contextmanager
def operator_after(
    plane: ControlPlane, identity: tuple[Path, str], log: Path, *crds: Mapping[str, Any]
) -> Iterator[OperatorProcess]:
    """`crds` installed, then an operator of the chart's rights started after them (asking
    discovery every CRD_CHECK_SECONDS); stopped, and the CRDs deleted, after."""
    install_stand_ins(plane, *crds)
    names = [crd["metadata"]["name"] for crd in crds]
    with operator_then_delete(plane, identity, log, *names) as process:
        yield process
