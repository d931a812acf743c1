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


def test_a_child_exactly_as_rendered_matches_and_any_one_edit_of_it_is_drift() -> None:
    # Equal values are matched without a walk (issue 11); every single edit of an exact
    # copy must still be drift, wherever it is, however deep.
    exact = copy.deepcopy(DESIRED)
    assert not needs_apply(DESIRED, exact)
    edits = [
        lambda o: o["metadata"].update(name="other"),
        lambda o: o["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "helm"}),
        lambda o: o["spec"]["podSelector"]["matchLabels"].update(app="anything"),
        lambda o: o["spec"]["policyTypes"].append("Egress"),
        lambda o: o["spec"]["policyTypes"].clear(),
        lambda o: o["spec"]["ingress"][0]["from"].pop(),
        lambda o: o["spec"]["ingress"][0]["ports"][0].update(port="5432"),
        lambda o: o["spec"]["ingress"][0]["ports"][0].pop("protocol"),
        lambda o: o["spec"].pop("ingress"),
    ]
    for edit in edits:
        edited = copy.deepcopy(DESIRED)
        edit(edited)
        assert needs_apply(DESIRED, edited), edited


def test_lists_and_mappings_of_other_types_compare_as_before() -> None:
    # Matching is by shape, not by Python type: a tuple is a list, a read-only mapping a
    # dict (the caches hold list and dict subclasses); a str is never a list of characters.
    from types import MappingProxyType

    from dataward.controller.cache import share_metadata

    meta: dict[str, Any] = {"labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]}
    share_metadata(meta)  # the caches' own subclasses of dict and list
    assert matches({"labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]}, meta)
    assert not matches({"labels": {"a": "c"}}, meta)
    assert not matches({"ownerReferences": [{"uid": "u"}, {"uid": "v"}]}, meta)
    assert matches(MappingProxyType({"a": (1, 2)}), {"a": [1, 2], "b": 3})
    assert matches({"a": [1, 2]}, MappingProxyType({"a": (1, 2)}))
    assert not matches({"a": (1, 2)}, {"a": [1, 3]})
    assert not matches(["a", "b"], "ab") and not matches("ab", ["a", "b"])
    assert not matches({"a": None}, {}) and not matches({"a": 0}, {"a": None})
    assert not matches(float("nan"), float("nan"))  # never equal, so never in place


def test_digest_tells_apart_what_matches_tells_apart_and_ignores_key_order() -> None:
    from datetime import UTC, datetime

    from dataward.checks.drift import digest

    assert digest({"a": 1, "b": [True, None]}) == digest({"b": [True, None], "a": 1})
    assert len({digest(1), digest(True), digest(1.0), digest("1"), digest([1])}) == 5
    assert digest({"a": "é"}) != digest({"a": "e"})
    # What orjson refuses is still digested (an integer past 64 bits, a key not a string).
    assert digest({"n": 2**70}) != digest({"n": 2**70 + 1})
    assert digest({1: "x"}) == digest({1: "x"}) != digest({2: "x"})
    # Anything else by its text, as the API server's values never are.
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert digest({"at": when}) == digest({"at": str(when)})
