"""AccessRestricted with a namespace's shared findings (issue 11) decides as the plain scan.

The stores of a namespace share one RBAC snapshot and one map of declared bindings; each
asks through a view without its own label (`DeclaredBesides`), and the untrusted bindings
are sorted out once per snapshot. A slip there would hide a foreign binding from one store
(a binding declared for its own label is foreign to it) or keep a stale answer after the
RBAC or the declarations changed. The oracle: the same check given a plain dict, which scans.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dataward.checks.access import DeclaredBesides, access_restricted
from dataward.checks.observed import RbacSnapshot
from dataward.render.names import label_value
from tests.checks.test_access import (
    ALICE,
    DESIRED,
    OWN_BINDINGS,
    OWN_ROLES,
    SECRET_READER,
    SECRETS,
    STORE,
    binding,
    role,
)

OWN = label_value(STORE.name)
NAMES = ["b0", "b1", "b2", "b3", OWN_BINDINGS[0]["metadata"]["name"]]
LABELS = [OWN, "other", "third"]
TRUSTED_GROUP = [{"kind": "Group", "name": "system:masters",
                  "apiGroup": "rbac.authorization.k8s.io"}]  # fmt: skip

binding_st = st.fixed_dictionaries(
    {
        "name": st.sampled_from(NAMES),
        "kind": st.sampled_from(["RoleBinding", "ClusterRoleBinding"]),
        "namespace": st.sampled_from(["crm", "elsewhere"]),
        "role": st.sampled_from(["secret-reader", "nothing", "missing"]),
        "trusted": st.booleans(),
    }
)


def _snapshot(raw: list[dict[str, Any]], drift_own: bool = False) -> RbacSnapshot:
    seen: set[tuple[str, str, str]] = set()
    bindings = [*OWN_BINDINGS]
    if drift_own:  # the cache still holds the store's own binding as it was before a write
        bindings[0] = {**bindings[0], "subjects": ALICE}
    for item in raw:
        key = (item["kind"], item["namespace"], item["name"])
        if key in seen or (item["kind"] == "RoleBinding" and item["namespace"] == "crm"
                           and item["name"] == NAMES[-1]):  # fmt: skip
            continue  # one object per name, as a cache holds; the own binding is there
        seen.add(key)
        bindings.append(
            binding(
                item["name"],
                item["role"],
                TRUSTED_GROUP if item["trusted"] else ALICE,
                kind=item["kind"],
                namespace=item["namespace"],
            )
        )
    pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    roles = [*OWN_ROLES, role("secret-reader", SECRET_READER), role("nothing", pods)]
    return RbacSnapshot.from_api(bindings, roles)


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.lists(binding_st, max_size=8),
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from(LABELS), max_size=5),
    st.dictionaries(st.sampled_from(NAMES), st.sampled_from(LABELS), max_size=5),
    st.booleans(),
)
def test_the_shared_path_decides_as_the_scan(
    raw: list[dict[str, Any]],
    declared: dict[str, str],
    later: dict[str, str],
    drift_own: bool,
) -> None:
    base = _snapshot(raw, drift_own)
    rbac = base.with_objects(DESIRED)  # the store's own objects as the act left them
    assert (rbac is base) == (not drift_own)
    for names in (declared, later, declared):  # the memo must follow the declarations
        plain = {n: label for n, label in names.items() if label != OWN}
        expected = access_restricted("crm", SECRETS, DESIRED, rbac, declared=plain)
        view = DeclaredBesides(names, OWN)
        shared = access_restricted("crm", SECRETS, DESIRED, rbac, declared=view)
        assert shared == expected


def test_a_binding_declared_for_the_asking_stores_label_is_foreign_to_it() -> None:
    rbac = _snapshot([{"name": "b0", "kind": "RoleBinding", "namespace": "crm",
                       "role": "secret-reader", "trusted": False}])  # fmt: skip
    names = {"b0": OWN}
    # Another store sees it as declared (by this label); this one must not.
    other = access_restricted("crm", SECRETS, DESIRED, rbac, declared=DeclaredBesides(names, "x"))
    assert other.status == "True"
    mine = access_restricted("crm", SECRETS, DESIRED, rbac, declared=DeclaredBesides(names, OWN))
    assert (mine.status, mine.reason) == ("False", "OtherBindingGrantsSecrets")
    assert "RoleBinding crm/b0" in mine.message


def test_a_snapshot_that_replaced_another_binding_is_scanned_not_shared() -> None:
    base = _snapshot([{"name": "b0", "kind": "RoleBinding", "namespace": "crm",
                       "role": "nothing", "trusted": False}])  # fmt: skip
    # Judged as written: b0 now reads Secrets; the namespace's shared findings predate that.
    before = access_restricted("crm", SECRETS, DESIRED, base, declared=DeclaredBesides({}, OWN))
    assert before.status == "True"
    rbac = base.with_objects([binding("b0", "secret-reader", ALICE)])
    condition = access_restricted("crm", SECRETS, DESIRED, rbac, declared=DeclaredBesides({}, OWN))
    assert (condition.status, condition.reason) == ("False", "OtherBindingGrantsSecrets")


def test_a_cluster_binding_named_as_a_declared_rolebinding_is_not_declared() -> None:
    # Declared means a RoleBinding of the namespace that a store renders, in place as rendered:
    # a ClusterRoleBinding (or a RoleBinding elsewhere) taking a declared binding's name is not.
    rbac = _snapshot([
        {"name": "b0", "kind": "RoleBinding", "namespace": "crm", "role": "nothing",
         "trusted": False},
        {"name": "b0", "kind": "ClusterRoleBinding", "namespace": "crm", "role": "secret-reader",
         "trusted": False},
    ])  # fmt: skip
    names = {"b0": "other"}
    for declared in (names, DeclaredBesides(names, OWN)):
        condition = access_restricted("crm", SECRETS, DESIRED, rbac, declared=declared)
        assert (condition.status, condition.reason) == ("False", "OtherBindingGrantsSecrets")
        assert "ClusterRoleBinding b0" in condition.message
