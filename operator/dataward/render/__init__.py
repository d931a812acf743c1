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
    "render_access",
    "render_children",
    "render_key_ring_metadata",
]


def render_access(store: Store) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """The children that isolate `store` and say who may read its Secrets, as
    `render_children` orders them: its NetworkPolicy, and its Roles and RoleBindings (the
    reader Role, its RoleBinding where the store names readers, the purge Role and its
    RoleBinding, these two always last). Its neighbours' verdicts read them too: the
    controller's namespace views hold them for every store."""
    rbac = (
        render_reader_role(store),
        render_reader_binding(store),
        render_purge_role(store),
        render_purge_binding(store),
    )
    return render_network_policy(store), tuple(item for item in rbac if item is not None)


def render_children(
    store: Store,
    policy: Policy | None,
    settings: RenderSettings,
    access: tuple[dict[str, Any], tuple[dict[str, Any], ...]] | None = None,
) -> list[dict[str, Any]]:
    """Every child of `store` in a stable order; the CronJob is suspended unless compliant.

    `access`: `render_access(store)` as rendered before and not changed since (the namespace
    view's, issue 11: a restart rendered each store's NetworkPolicy, Roles and RoleBindings
    twice), taken as it is."""
    network_policy, rbac = render_access(store) if access is None else access
    compliant = not compliance_findings(store, policy)
    return [
        network_policy,
        *rbac[:-2],  # the reader Role, and its RoleBinding where there is one
        render_purge_service_account(store),
        *rbac[-2:],  # the purge Role and its RoleBinding
        render_purge_cronjob(store, settings, compliant=compliant),
    ]
