"""The key ring Secret's metadata. Its data is made by `dataward.keys`, never rendered."""

from __future__ import annotations

from typing import Any

from dataward.model.store import Store
from dataward.render.labels import COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL, child_metadata
from dataward.render.names import names_for

KEY_RING_COMPONENT = "encryption"
# Selects the key rings (and only Secrets labelled as one): the operator's watch of rings.
KEY_RING_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={KEY_RING_COMPONENT}"


def render_key_ring_metadata(store: Store) -> dict[str, Any]:
    """Name, namespace and labels of the key ring Secret; an owner only under `Delete`.

    Under `deletionPolicy: Retain` the ring must outlive the store, so it has no owner
    reference for the garbage collector to follow.
    """
    return child_metadata(
        store,
        names_for(store.name).key_ring,
        KEY_RING_COMPONENT,
        owned=store.deletion_policy == "Delete",
    )
