"""Pure rendering: a Store and its Policy in, the children the operator maintains out.

Nothing here talks to the API. The key ring Secret is not among the children: its data is
key material, created once by the controller (see `dataward.keys` and
`render_key_ring_metadata`).
"""

from __future__ import annotations

from typing import Any

from dataward.model.compliance import compliance_findings
from dataward.model.policy import Policy
from dataward.model.store import Store
from dataward.render.key_ring import render_key_ring_metadata
from dataward.render.names import ChildNames, child_name, label_value, names_for
from dataward.render.network import render_network_policy
from dataward.render.purge_job import render_purge_cronjob
from dataward.render.rbac import (
    render_purge_binding,
    render_purge_role,
    render_purge_service_account,
    render_reader_binding,
    render_reader_role,
)
from dataward.render.settings import RenderSettings

__all__ = [
    "ChildNames",
    "RenderSettings",
    "child_name",
    "label_value",
    "names_for",
    "render_children",
    "render_key_ring_metadata",
]


def render_children(
    store: Store, policy: Policy | None, settings: RenderSettings
) -> list[dict[str, Any]]:
    """Every child of `store` in a stable order; the CronJob is suspended unless compliant."""
    compliant = not compliance_findings(store, policy)
    children: list[dict[str, Any] | None] = [
        render_network_policy(store),
        render_reader_role(store),
        render_reader_binding(store),
        render_purge_service_account(store),
        render_purge_role(store),
        render_purge_binding(store),
        render_purge_cronjob(store, settings, compliant=compliant),
    ]
    return [child for child in children if child is not None]
