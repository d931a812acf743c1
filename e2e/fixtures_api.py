"""Fixtures for e2e tests of Dataward's API: the CRDs of `crds/`, installed in the control plane.

Import the fixture into a test module (`from e2e.fixtures_api import crds_installed`) and
request it, e.g. with `pytestmark = pytest.mark.usefixtures("crds_installed")`. Pytest makes
one fixture definition per importing module, so the installation itself is remembered per
control plane: the first request installs and waits, later ones return at once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from e2e.harness import ControlPlane, crds_established, wait_for

REPO = Path(__file__).resolve().parent.parent
CRD_DIR = REPO / "crds"
CRD_NAMES: tuple[str, ...] = (
    "privacypolicies.dataward.io",
    "personaldatastores.dataward.io",
)
FIELD_MANAGER = "dataward-e2e"

# Control planes (by their directory) whose CRDs are installed and Established.
_INSTALLED: set[Path] = set()


def install_crds(control_plane: ControlPlane, timeout: float = 60.0) -> None:
    """Server-side apply every CRD in `crds/` and wait until each is Established.

    Idempotent: applying the same files again changes nothing, and a control plane already
    handled by this process is not asked again.
    """
    if control_plane.dir in _INSTALLED:
        return
    control_plane.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "--force-conflicts",
        "-f",
        str(CRD_DIR),
    )

    def established() -> bool:
        got = control_plane.kubectl(
            "get", *(f"crd/{name}" for name in CRD_NAMES), "-o", "json", check=False
        )
        return got.returncode == 0 and crds_established(got.stdout, len(CRD_NAMES))

    wait_for(established, timeout, "the Dataward CRDs Established", interval=0.2)
    _INSTALLED.add(control_plane.dir)


@pytest.fixture(scope="session")
def crds_installed(control_plane: ControlPlane) -> tuple[str, ...]:
    """The Dataward CRDs, installed and Established in the session's control plane."""
    install_crds(control_plane)
    return CRD_NAMES


def wait_admission_policies_gone(kube: ApiClient, timeout: float = 30.0) -> None:
    """Wait until an uninstalled release's admission policies are out of force.

    They act cluster-wide, and the API server drops a deleted policy moments after the
    delete returns: until then the next module's Retain store, in a namespace without the
    protection label, would be refused. A dry-run create of such a store is the probe.
    """
    probe: dict[str, Any] = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "examples/stores/support-inquiries.yaml")
        .read_text()
    )
    probe["metadata"] = {"name": f"probe-{uuid.uuid4().hex[:6]}"}  # Retain, by default
    custom = client.CustomObjectsApi(kube)

    def admitted() -> bool:
        try:
            custom.create_namespaced_custom_object(
                "dataward.io", "v1alpha1", "default", "personaldatastores", probe, dry_run="All"
            )
        except ApiException:
            return False
        return True

    wait_for(admitted, timeout=timeout, interval=0.5,
             message="the uninstalled release's admission policies out of force")


@contextlib.contextmanager
def seed_policy(kube: ApiClient, prefix: str) -> Iterator[str]:
    """The seed's PrivacyPolicy under a name of its own (`prefix-<random>`); deleted after."""
    body = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "examples" / "policy.yaml").read_text()
    )
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    body["metadata"] = {"name": name}
    api = client.CustomObjectsApi(kube)
    api.create_cluster_custom_object("dataward.io", "v1alpha1", "privacypolicies", body)
    try:
        yield name
    finally:
        api.delete_cluster_custom_object("dataward.io", "v1alpha1", "privacypolicies", name)
