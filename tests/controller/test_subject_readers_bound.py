"""The readers' Role of an access request is never bound by someone else into what it grants.

Kubernetes admits a RoleBinding to a Role only from whoever holds every rule of the Role at
that moment (its escalation check); a Role with no rules grants nothing, so anyone who may
create RoleBindings may bind it. The operator applied the readers' Role with no rules while
the request's key was not usable, and later filled that same Role with `get` on the private
key and every export Secret, never looking at who else it was bound to. Mallory, who may
create Secrets and RoleBindings in the request's namespace and get no Secret there, planted
a Secret under the key's name (every store ChildNotOurs, the empty Role applied), bound the
empty Role to herself, deleted her Secret, and read the person's key and exports once the
operator made them. Each test acts as Mallory through `reconcile` on an in-memory API.
"""

from __future__ import annotations

from typing import Any

from dataward.render.subject_jobs import (
    export_secret_name,
    key_secret_name,
    readers_name,
    render_key_secret,
    render_readers_role,
)
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subject_children import (
    MALLORY,
    MALLORY_PRIVATE,
    _planted,
    _request,
    _store_by_name,
)
from tests.controller.test_subjects import KEY, controller, finish, jobs, kube, status

__all__ = ["kube"]  # the fixture

ROLE = ("Role", "privacy", readers_name(KEY[1]))
MALLORYS = "mallory-reads"


def _mallory_binds(kube: FakeKube) -> None:
    """Mallory's own RoleBinding of the readers' Role (any name but the request's)."""
    kube._store({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": MALLORYS, "namespace": "privacy"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                    "name": readers_name(KEY[1])},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    })  # fmt: skip


def _granted(kube: FakeKube) -> set[str]:
    role = kube.objects.get(ROLE)
    return {n for r in (role or {}).get("rules") or () for n in r.get("resourceNames") or ()}


def _complete(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in status(kube)["conditions"] if c["type"] == "Complete")


def _answer_every_store(kube: FakeKube) -> None:
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, {"outcome": "Succeeded", "rowsExported": 1})


def test_no_readers_role_that_grants_nothing_is_made_for_anyone_to_bind(kube: FakeKube) -> None:
    request = _request(kube)
    kube._store(_planted(render_key_secret(request, MALLORY_PRIVATE, MALLORY)))
    controller(kube).reconcile(KEY)
    assert {s["reason"] for s in status(kube)["stores"]} == {"ChildNotOurs"}
    # An API server refuses a RoleBinding to a Role that does not exist; one with no rules
    # it admits from anyone who may create RoleBindings.
    assert ROLE not in kube.objects, kube.objects.get(ROLE)


def test_a_role_that_grants_nothing_is_never_rendered() -> None:
    from dataward.subjects.request import parse_request
    from tests.subjects.samples import request

    assert render_readers_role(parse_request(request()), []) is None


def test_an_empty_readers_role_bound_by_mallory_is_never_filled_with_the_key(
    kube: FakeKube,
) -> None:
    request = _request(kube)
    crm = _store_by_name(kube)["crm"]
    # 1. She plants the key's name; the key is not usable, every store ChildNotOurs.
    kube._store(_planted(render_key_secret(request, MALLORY_PRIVATE, MALLORY)))
    controller(kube).reconcile(KEY)
    # 2. She binds the readers' Role to herself: a Role left empty by an earlier operator
    #    version (or any time the Role existed granting nothing) is all she needs.
    if ROLE not in kube.objects:
        kube._store({**render_readers_role(request, [key_secret_name(request)]), "rules": []})
    _mallory_binds(kube)
    # 3. She deletes her Secret; the operator makes its key, runs the stores, grants.
    del kube.objects[("Secret", "privacy", key_secret_name(request))]
    controller(kube).reconcile(KEY)
    controller(kube).reconcile(KEY)
    granted = _granted(kube)
    assert key_secret_name(request) not in granted, granted
    assert export_secret_name(request, crm) not in granted, granted
    assert not granted, "nothing is granted while another binding refers to the Role"
    # The request says so, naming her binding (no key material, no Secret contents).
    _answer_every_store(kube)
    controller(kube).reconcile(KEY)
    complete = _complete(kube)
    assert (complete["status"], complete["reason"]) == ("False", "ReadersRoleBoundElsewhere")
    assert MALLORYS in complete["message"]
    assert "PRIVATE" not in complete["message"] and "BEGIN" not in complete["message"]
    # Her binding is left alone: the operator deletes nothing it did not make.
    assert ("RoleBinding", "privacy", MALLORYS) in kube.objects
    # Once it is gone, spec.readers are granted through the request's own binding.
    del kube.objects[("RoleBinding", "privacy", MALLORYS)]
    controller(kube).reconcile(KEY)
    assert key_secret_name(request) in _granted(kube)
    assert export_secret_name(request, crm) in _granted(kube)
    own = kube.objects[("RoleBinding", "privacy", readers_name(KEY[1]))]
    assert own["subjects"] == [r.to_rbac("privacy") for r in request.readers]
    complete = _complete(kube)
    assert (complete["status"], complete["reason"]) == ("True", "AllStoresAnswered"), complete


def test_a_binding_that_appears_on_a_granting_role_takes_the_grant_away(kube: FakeKube) -> None:
    # Only someone who could get every named Secret could have made it (Kubernetes' rule),
    # but the Role would be widened under it when a store comes into scope or a Secret is
    # made again: the operator grants nothing through a Role another binding refers to.
    request = _request(kube)
    controller(kube).reconcile(KEY)
    assert key_secret_name(request) in _granted(kube)
    _mallory_binds(kube)
    controller(kube).reconcile(KEY)
    assert not _granted(kube)
    assert ("RoleBinding", "privacy", MALLORYS) in kube.objects


def test_the_requests_own_binding_alone_grants_as_ever(kube: FakeKube) -> None:
    request = _request(kube)
    controller(kube).reconcile(KEY)
    _answer_every_store(kube)
    controller(kube).reconcile(KEY)
    assert _granted(kube) == {
        key_secret_name(request),
        *(export_secret_name(request, s) for s in _store_by_name(kube).values()),
    }
    complete = _complete(kube)
    assert (complete["status"], complete["reason"]) == ("True", "AllStoresAnswered"), complete
