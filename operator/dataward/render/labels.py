"""Labels and owner references that every child of a store carries.

Children never copy the store's own labels or annotations: a GitOps tool that prunes by the
labels of the objects it applied must never select a child, least of all the key ring.
"""

from __future__ import annotations

from typing import Any

from dataward.model.store import Store
from dataward.render.names import label_value

API_GROUP = "dataward.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
STORE_KIND = "PersonalDataStore"
STORE_PLURAL = "personaldatastores"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
STORE_LABEL = f"{API_GROUP}/store"
PURGE_POD_LABEL = f"{API_GROUP}/purge"
MANAGED_BY = "dataward"


def common_labels(store: Store, component: str | None = None) -> dict[str, str]:
    """The labels every child of `store` carries; `component` says which control it is."""
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAME_LABEL: "dataward",
        STORE_LABEL: label_value(store.name),
    }
    if component is not None:
        labels[COMPONENT_LABEL] = component
    return labels


def store_selector(store: Store) -> dict[str, str]:
    """A label selector (matchLabels) for every child of `store`, for listing and pruning."""
    return {MANAGED_BY_LABEL: MANAGED_BY, STORE_LABEL: label_value(store.name)}


def purge_pod_labels(store: Store) -> dict[str, str]:
    """The label that marks the store's purge pods, which the NetworkPolicy lets in."""
    return {PURGE_POD_LABEL: label_value(store.name)}


def owner_reference(store: Store) -> dict[str, Any]:
    """An owner reference to `store`: garbage collection removes the child with the store."""
    return {
        "apiVersion": API_VERSION,
        "kind": STORE_KIND,
        "name": store.name,
        "uid": store.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(
    store: Store, name: str, component: str, *, owned: bool = True
) -> dict[str, Any]:
    """`metadata` of a child: name, namespace, the common labels and (usually) the owner."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": store.namespace,
        "labels": common_labels(store, component),
    }
    if owned:
        metadata["ownerReferences"] = [owner_reference(store)]
    return metadata
