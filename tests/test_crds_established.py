"""The e2e harness's wait for the CRDs reads their conditions: an empty list is not yet, never an
error (`kubectl wait --for=condition=Established` failed at once on it in a local e2e run)."""

from __future__ import annotations

import json
from typing import Any

from e2e.harness import crds_established


def _listing(*conditions: list[dict[str, Any]] | None) -> str:
    return json.dumps({"kind": "List", "items": [
        {"kind": "CustomResourceDefinition", "status": {} if c is None else {"conditions": c}}
        for c in conditions
    ]})  # fmt: skip


ESTABLISHED = [{"type": "NamesAccepted", "status": "True"},
               {"type": "Established", "status": "True"}]  # fmt: skip


def test_every_crd_established_is_ready() -> None:
    assert crds_established(_listing(ESTABLISHED, ESTABLISHED), 2)


def test_a_crd_whose_conditions_are_not_written_yet_is_waited_for() -> None:
    assert not crds_established(_listing(ESTABLISHED, None), 2)
    assert not crds_established(_listing(ESTABLISHED, []), 2)


def test_a_crd_not_established_or_missing_is_waited_for() -> None:
    assert not crds_established(
        _listing(ESTABLISHED, [{"type": "Established", "status": "False"}]), 2
    )
    assert not crds_established(_listing(ESTABLISHED), 2)
