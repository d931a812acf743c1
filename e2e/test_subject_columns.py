"""`kubectl explain` tells a store's author how data-subject requests find a person's rows."""

from __future__ import annotations

import pytest

from e2e.harness import ControlPlane, wait_for

pytestmark = pytest.mark.usefixtures("crds_installed")


def _explain(control_plane: ControlPlane, field: str) -> str:
    result = control_plane.kubectl("explain", field, check=False)
    return result.stdout if result.returncode == 0 else ""


def test_kubectl_explain_describes_subject_columns(control_plane: ControlPlane) -> None:
    explain = wait_for(
        lambda: _explain(control_plane, "pds.spec.records.subjectColumns"),
        timeout=30,
        message="kubectl explain pds.spec.records.subjectColumns",
    )
    text = " ".join(explain.split())
    assert "DataSubjectRequests" in text and "equals the identifier exactly" in text
    assert "kind" in text and "column" in text
    kind = " ".join(_explain(control_plane, "pds.spec.records.subjectColumns.kind").split())
    assert "customer-id" in kind and "each kind appears once per table" in kind
