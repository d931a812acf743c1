"""Every child: labelled, owned, named, never carrying the store's own metadata."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.render import (
    RenderSettings,
    render_access,
    render_children,
    render_key_ring_metadata,
)
from dataward.render.labels import owner_reference
from tests.model import samples

POLICY = parse_policy(samples.POLICY)
SETTINGS = RenderSettings(image="registry.example/dataward:test")


def decorated_store(**changes: Any) -> dict[str, Any]:
    obj = samples.store(**changes)
    obj["metadata"]["labels"] = {"team": "crm", "argocd.argoproj.io/instance": "crm-app"}
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "argocd.argoproj.io/tracking-id": "crm-app:dataward.io/PersonalDataStore:crm/x",
    }
    return obj


def children(obj: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return render_children(parse_store(obj or decorated_store()), POLICY, SETTINGS)


def test_children_come_in_a_stable_order() -> None:
    assert [(c["kind"], c["metadata"]["name"]) for c in children()] == [
        ("NetworkPolicy", "dataward-support-inquiries-isolation"),
        ("Role", "dataward-support-inquiries-readers"),
        ("RoleBinding", "dataward-support-inquiries-readers"),
        ("ServiceAccount", "dataward-support-inquiries-purge"),
        ("Role", "dataward-support-inquiries-purge"),
        ("RoleBinding", "dataward-support-inquiries-purge"),
        ("CronJob", "dataward-support-inquiries-purge"),
    ]


def test_rendering_twice_gives_identical_children() -> None:
    assert children() == children()


def test_every_child_is_labelled_owned_and_in_the_store_namespace() -> None:
    store = parse_store(decorated_store())
    for child in children():
        metadata = child["metadata"]
        assert metadata["namespace"] == "crm"
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "dataward"
        assert metadata["labels"]["app.kubernetes.io/name"] == "dataward"
        assert metadata["labels"]["dataward.io/store"] == "support-inquiries"
        assert metadata["ownerReferences"] == [owner_reference(store)]


def test_owner_reference_points_at_the_store_as_controller() -> None:
    ref = owner_reference(parse_store(samples.STORE))
    assert ref == {
        "apiVersion": "dataward.io/v1alpha1",
        "kind": "PersonalDataStore",
        "name": "support-inquiries",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _all_label_and_annotation_keys(obj: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in ("labels", "annotations") and isinstance(value, dict):
                keys |= set(value)
            keys |= _all_label_and_annotation_keys(value)
    elif isinstance(obj, list):
        for item in obj:
            keys |= _all_label_and_annotation_keys(item)
    return keys


def test_no_child_copies_the_store_labels_or_annotations() -> None:
    keys = set().union(*(_all_label_and_annotation_keys(c) for c in children()))
    for foreign in (
        "team",
        "argocd.argoproj.io/instance",
        "argocd.argoproj.io/tracking-id",
        "kubectl.kubernetes.io/last-applied-configuration",
    ):
        assert foreign not in keys
    ring = render_key_ring_metadata(parse_store(decorated_store()))
    assert "annotations" not in ring
    assert "team" not in ring["labels"]


def test_key_ring_is_not_among_the_children() -> None:
    assert all(child["kind"] != "Secret" for child in children())


@pytest.mark.parametrize(("policy", "owned"), [("Retain", False), ("Delete", True)])
def test_key_ring_has_an_owner_only_under_delete(policy: str, owned: bool) -> None:
    ring = render_key_ring_metadata(parse_store(samples.store(deletionPolicy=policy)))
    assert ring["name"] == "dataward-support-inquiries-keyring"
    assert ring["labels"]["dataward.io/store"] == "support-inquiries"
    assert ("ownerReferences" in ring) is owned


def test_no_reader_binding_without_readers() -> None:
    kinds = [(c["kind"], c["metadata"]["name"]) for c in children(samples.store(access={}))]
    assert ("RoleBinding", "dataward-support-inquiries-readers") not in kinds
    assert ("Role", "dataward-support-inquiries-readers") in kinds



@pytest.mark.parametrize("readers", [True, False])
def test_children_rendered_before_are_taken_as_they_are_in_their_places(readers: bool) -> None:
    # The controller's namespace views render a store's NetworkPolicy, Roles and RoleBindings
    # for its neighbours; its reconcile acts on those very objects. Each must land in its
    # own place of the stable order, with the reader RoleBinding present only with readers.
    store = parse_store(decorated_store() if readers else samples.store(access={}))
    access = render_access(store)
    out = render_children(store, POLICY, SETTINGS, access)
    expected = [
        ("NetworkPolicy", "dataward-support-inquiries-isolation"),
        ("Role", "dataward-support-inquiries-readers"),
        *([("RoleBinding", "dataward-support-inquiries-readers")] if readers else []),
        ("ServiceAccount", "dataward-support-inquiries-purge"),
        ("Role", "dataward-support-inquiries-purge"),
        ("RoleBinding", "dataward-support-inquiries-purge"),
        ("CronJob", "dataward-support-inquiries-purge"),
    ]
    assert [(c["kind"], c["metadata"]["name"]) for c in out] == expected
    given = [access[0], *access[1]]
    taken = [c for c in out if c["kind"] in ("NetworkPolicy", "Role", "RoleBinding")]
    assert len(taken) == len(given)
    assert all(a is b for a, b in zip(taken, given, strict=True))


@pytest.mark.parametrize(
    "changes",
    [
        {"category": "no-such-category"},
        {"retention": "2y"},
        {"policy": "other-policy"},
    ],
)
def test_the_cronjob_is_suspended_when_the_store_does_not_comply(
    changes: dict[str, Any],
) -> None:
    cronjob = children(samples.store(**changes))[-1]
    assert cronjob["kind"] == "CronJob"
    assert cronjob["spec"]["suspend"] is True


def test_the_cronjob_is_suspended_without_a_policy() -> None:
    cronjob = render_children(parse_store(samples.STORE), None, SETTINGS)[-1]
    assert cronjob["spec"]["suspend"] is True


def test_the_cronjob_runs_when_the_store_complies() -> None:
    assert children(samples.store())[-1]["spec"]["suspend"] is False


def test_a_long_store_name_gives_children_within_their_limits() -> None:
    obj = copy.deepcopy(samples.STORE)
    obj["metadata"]["name"] = "a-really-long-store-name-" + "x" * 60
    for child in children(obj):
        limit = 52 if child["kind"] == "CronJob" else 63
        assert len(child["metadata"]["name"]) <= limit
        assert len(child["metadata"]["labels"]["dataward.io/store"]) <= 63
