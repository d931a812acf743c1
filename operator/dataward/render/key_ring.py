"""The key ring Secret's metadata. Its data is made by `dataward.keys`, never rendered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dataward.model.store import Store
from dataward.render.labels import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    child_metadata,
    owner_reference,
)
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


def key_ring_secret(store: Store, data: Mapping[str, str]) -> dict[str, Any]:
    """The key ring Secret as first created, holding `data` (`dataward.keys.serialise`)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": render_key_ring_metadata(store),
        "type": "Opaque",
        "immutable": False,
        "data": dict(data),
    }


def ring_owner_references(
    store: Store, current: Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """The ring Secret's ownerReferences as `store.deletionPolicy` asks now, from `current`
    (what it carries); None when it already does. The spec may change after the ring is
    made: under `Delete` the ring carries the store's controller reference (it goes with the
    store, after the grace period), under `Retain` none (it outlives it).

    A reference to any other object is dropped: the garbage collector deletes a ring whose
    owners are all gone, so one naming the store a restored ring was made for (another
    uid), or anything a tool added, would destroy the ring unrecorded and unscheduled
    (under `Delete`, a second controller reference also keeps the store's own from being
    written)."""
    refs = [dict(r) for r in current or [] if isinstance(r, Mapping)]
    wanted = [owner_reference(store)] if store.deletion_policy == "Delete" else []
    return None if refs == wanted else wanted
