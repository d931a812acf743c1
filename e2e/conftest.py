"""Fixtures for end-to-end tests: one real control plane per session, a namespace per test."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

E2E_DIR = Path(__file__).resolve().parent
# So `import e2e.harness` works however pytest was started (rootdir, import mode).
if str(E2E_DIR.parent) not in sys.path:
    sys.path.insert(0, str(E2E_DIR.parent))

# Session fixtures shared by several modules are registered here, once: imported into each
# test module instead, pytest would make one instance per module (two operators at once).
from e2e.fixtures_api import crds_installed  # noqa: E402, F401
from e2e.fixtures_databases import mariadb_fixture, postgres_fixture  # noqa: E402, F401
from e2e.fixtures_operator import (  # noqa: E402, F401
    operator,
    seed_policy_applied,
    session_operator_paused,
)
from e2e.harness import ControlPlane, wait_for  # noqa: E402 - needs the sys.path line above

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under e2e/ as `e2e` (so `-m "not e2e"` skips the control plane)."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """The session's control plane; stopped at the end, also when tests fail or are interrupted."""
    with ControlPlane() as plane:
        yield plane


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """An admin (system:masters) API client."""
    with control_plane.api_client() as api:
        yield api


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards; yields its name.

    Waits for its `default` ServiceAccount: until the controller has made it, the
    ServiceAccount admission plugin rejects every pod in the namespace.
    """
    from kubernetes import client

    core = client.CoreV1Api(kube)
    # Namespace names are DNS labels: keep a readable prefix of the test name, then a suffix.
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    name = f"e2e-{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        wait_for(
            lambda: (
                core.list_namespaced_service_account(
                    name, field_selector="metadata.name=default"
                ).items
            ),
            timeout=30,
            message=f"ServiceAccount default in namespace {name}",
        )
        yield name
    finally:
        # Not waited for: the namespace controller finishes the deletion in the background.
        core.delete_namespace(name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    """Attach the operator's recent log to a failed test that used it."""
    report: pytest.TestReport = yield
    for fixture in ("operator", "revision_operator"):
        if report.failed and fixture in getattr(item, "fixturenames", ()):
            process = item.funcargs.get(fixture) if hasattr(item, "funcargs") else None
            if process is not None:
                report.sections.append((f"{fixture} log (tail)", process.logs()[-6000:]))
    return report
