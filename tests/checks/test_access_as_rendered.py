"""`rbac_as_rendered` knows a Role or RoleBinding read from the very list a render holds
without parsing it (issue 11: a restart's first pass parsed every store's rendered rules twice),
and still tells every edit: an object parsed from another list is parsed and compared."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataward.checks import observed
from dataward.checks.access import rbac_as_rendered
from dataward.checks.observed import ObservedBinding, ObservedRole
from tests.checks.test_access import OWN_BINDINGS, OWN_ROLES

ROLE = OWN_ROLES[0]
BINDING = next(b for b in OWN_BINDINGS if any(s["kind"] == "ServiceAccount" for s in b["subjects"]))


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The rules parsed from now on."""
    seen: list[object] = []
    original = observed.PolicyRule.from_api.__func__  # type: ignore[attr-defined]

    def counting(cls: type, raw: Any) -> Any:
        seen.append(raw)
        return original(cls, raw)

    monkeypatch.setattr(observed.PolicyRule, "from_api", classmethod(counting))
    return seen


def test_a_role_read_from_the_renders_own_rules_list_is_as_rendered_without_a_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = ObservedRole.from_api(ROLE)  # the cache and the view hold one copy of the list
    parses = _parses(monkeypatch)
    assert rbac_as_rendered(ROLE, found, "crm")
    assert parses == []


@pytest.mark.parametrize(
    "edit",
    [
        lambda rules: rules[0]["verbs"].append("list"),
        lambda rules: rules[0]["resourceNames"].append("other-secret"),
        lambda rules: rules.append({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}),
        lambda rules: rules[0].update(resourceNames=[]),
    ],
)
def test_a_role_edited_out_of_band_is_parsed_and_not_as_rendered(edit: Any) -> None:
    edited = copy.deepcopy(ROLE)
    edit(edited["rules"])
    assert not rbac_as_rendered(ROLE, ObservedRole.from_api(edited), "crm")


def test_an_equal_role_read_from_another_list_is_as_rendered() -> None:
    assert rbac_as_rendered(ROLE, ObservedRole.from_api(copy.deepcopy(ROLE)), "crm")


def test_a_binding_read_from_the_renders_own_subjects_is_as_rendered() -> None:
    assert rbac_as_rendered(BINDING, ObservedBinding.from_api(BINDING), "crm")


def test_a_binding_with_the_renders_subjects_list_but_another_role_is_not_as_rendered() -> None:
    # The very subjects list, and the roleRef edited: the role is still compared.
    edited = {**BINDING, "roleRef": {**BINDING["roleRef"], "name": "cluster-admin"}}
    assert edited["subjects"] is BINDING["subjects"]
    assert not rbac_as_rendered(BINDING, ObservedBinding.from_api(edited), "crm")
    kind = {**BINDING, "roleRef": {**BINDING["roleRef"], "kind": "ClusterRole"}}
    assert not rbac_as_rendered(BINDING, ObservedBinding.from_api(kind), "crm")


def test_a_binding_edited_out_of_band_is_parsed_and_not_as_rendered() -> None:
    edited = copy.deepcopy(BINDING)
    edited["subjects"].append({"kind": "User", "name": "mallory"})
    assert not rbac_as_rendered(BINDING, ObservedBinding.from_api(edited), "crm")


def test_the_renders_subjects_list_read_in_another_namespace_is_parsed_as_of_it() -> None:
    # A ServiceAccount subject without a namespace is the binding's namespace's: read from
    # the same list in another namespace, it names other accounts.
    subjects = [{"kind": "ServiceAccount", "name": "crm-api"}]
    item = {**BINDING, "subjects": subjects}
    elsewhere = {**item, "metadata": {**item["metadata"], "namespace": "sales"}}
    found = ObservedBinding.from_api(elsewhere)
    assert found.source is subjects
    assert not rbac_as_rendered(item, found, "crm")
    assert rbac_as_rendered(item, ObservedBinding.from_api(item), "crm")
