"""A valid DataSubjectRequest; tests change one thing."""

from __future__ import annotations

from typing import Any

from tests.model.samples import with_spec

REQUEST: dict[str, Any] = {
    "apiVersion": "dataward.io/v1alpha1",
    "kind": "DataSubjectRequest",
    "metadata": {"name": "case-4711", "namespace": "privacy", "uid": "req-uid-1", "generation": 1},
    "spec": {
        "type": "access",
        "policy": "clunix",
        "subject": {"identifierSecretRef": {"name": "case-4711-identifier"}},
        "requestedBy": "privacy-office case 4711",
        "receivedAt": "2026-01-10T08:00:00Z",
        "readers": [{"kind": "Group", "name": "privacy-officers"}],
    },
}


def request(**spec_changes: Any) -> dict[str, Any]:
    """A copy of REQUEST with top-level spec fields replaced (None removes one)."""
    return with_spec(REQUEST, **spec_changes)
