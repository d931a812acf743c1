"""Compare-before-apply: what counts as drift."""

from __future__ import annotations

import copy
from typing import Any

from dataward.checks.drift import matches, needs_apply

DESIRED: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "dataward-s-isolate", "namespace": "crm",
                 "labels": {"app.kubernetes.io/managed-by": "dataward"}},
    "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
             "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                          "ports": [{"port": 5432, "protocol": "TCP"}]}]},
}


def observed() -> dict[str, Any]:
    """What the server returns: our fields plus defaults and server metadata."""
    obj = copy.deepcopy(DESIRED)
    obj["metadata"].update(resourceVersion="7", uid="x", managedFields=[{}],
                           labels={**DESIRED["metadata"]["labels"], "extra": "by-someone"})
    obj["spec"]["ingress"][0]["ports"][0]["endPort"] = None
    obj["status"] = {}
    return obj


def test_absent_child_needs_apply() -> None:
    assert needs_apply(DESIRED, None)


def test_server_defaults_and_extra_labels_are_not_drift() -> None:
    assert not needs_apply(DESIRED, observed())


def test_changed_value_is_drift() -> None:
    obj = observed()
    obj["spec"]["ingress"][0]["ports"][0]["port"] = 5433
    assert needs_apply(DESIRED, obj)


def test_added_list_item_is_drift() -> None:
    obj = observed()
    obj["spec"]["ingress"].append({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})
    assert needs_apply(DESIRED, obj)


def test_removed_label_is_drift() -> None:
    obj = observed()
    del obj["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert needs_apply(DESIRED, obj)


def test_type_changes_are_drift() -> None:
    assert not matches({"a": [1]}, {"a": "1"})
    assert not matches({"a": {"b": 1}}, {"a": [1]})
    assert not matches("x", ["x"])
    assert matches({"a": "x"}, {"a": "x", "b": 2})
