"""An export Secret is the request's only when the operator can prove it made it.

An owner reference is no proof: anyone who may read the request (its uid) and create
Secrets in its namespace can write one, `controller: true` and all. Mallory planted a
kubernetes.io/service-account-token Secret under an export's name with the request's owner
reference, annotated with a privileged ServiceAccount: the operator granted spec.readers
`get` on it, the store's purge ServiceAccount `get` and `patch`, and named it in status as
the person's export -- a ServiceAccount token handed out through the operator's own RBAC.
The operator now records each export Secret it makes in status.exports (the hash of a token
it puts on the Secret, before the create; the Secret's uid once made), and counts only a
Secret that matches. Each test acts as Mallory through `reconcile` on an in-memory API.
"""

from __future__ import annotations

import copy
from typing import Any

from dataward.render.subject_jobs import (
    export_secret_name,
    job_access_name,
    readers_name,
    render_export_secret,
)
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subject_children import _request, _store_by_name
from tests.controller.test_subjects import KEY, controller, finish, jobs, kube, status

__all__ = ["kube"]  # the fixture


def _names(kube: FakeKube, kind: str, name: str) -> set[str]:
    role = kube.objects.get((kind, "privacy", name))
    return {n for r in (role or {}).get("rules") or () for n in r.get("resourceNames") or ()}


def _entry(kube: FakeKube, namespace: str) -> dict[str, Any]:
    return next(s for s in status(kube)["stores"] if s["namespace"] == namespace)


def _forged(kube: FakeKube, name_of: Any) -> dict[str, Any]:
    """Mallory's token Secret under an export's name, the request's owner reference copied."""
    request = _request(kube)
    planted: dict[str, Any] = copy.deepcopy(render_export_secret(request, name_of))
    assert planted["metadata"]["ownerReferences"][0]["uid"] == request.uid  # copied
    planted["type"] = "kubernetes.io/service-account-token"
    planted["metadata"]["annotations"] = {
        "kubernetes.io/service-account.name": "privacy-deployer"}
    planted["data"] = {"token": "UFJJVklMRUdFRC1UT0tFTg=="}  # the token controller's
    kube._store(planted)
    return copy.deepcopy(planted)


def _assert_not_used(kube: FakeKube, name: str, planted: dict[str, Any], store: Any) -> None:
    request = _request(kube)
    assert name not in _names(kube, "Role", readers_name(request.name))
    assert name not in _names(kube, "Role", job_access_name(request, store))
    entry = _entry(kube, store.namespace)
    assert entry.get("exportSecret") != name, entry
    assert (entry["phase"], entry["reason"]) == ("Failed", "ChildNotOurs"), entry
    assert name in entry["message"]
    # Left alone: never written over, never deleted.
    stored = kube.objects[("Secret", "privacy", name)]
    assert {k: stored[k] for k in ("type", "data")} == {k: planted[k] for k in ("type", "data")}
    assert not [ns for ns, _ in jobs(kube) if ns == store.namespace], "no Job writes into it"


def test_an_export_planted_with_a_forged_owner_reference_is_never_granted(
    kube: FakeKube,
) -> None:
    crm = _store_by_name(kube)["crm"]
    name = export_secret_name(_request(kube), crm)
    planted = _forged(kube, crm)
    controller(kube).reconcile(KEY)
    _assert_not_used(kube, name, planted, crm)
    # The other store is answered as ever, its own export granted.
    tickets = _store_by_name(kube)["privacy"]
    own = export_secret_name(_request(kube), tickets)
    assert own in _names(kube, "Role", readers_name(KEY[1]))
    assert _entry(kube, "privacy")["reason"] == "JobCreated"


def test_an_export_replaced_with_a_forged_one_after_it_was_made_is_no_longer_granted(
    kube: FakeKube,
) -> None:
    crm = _store_by_name(kube)["crm"]
    name = export_secret_name(_request(kube), crm)
    controller(kube).reconcile(KEY)
    assert name in _names(kube, "Role", readers_name(KEY[1]))
    # Mallory deletes it (before the Job wrote it) and plants hers, owner reference, the
    # operator's annotations and all, under the name.
    ours = kube.objects.pop(("Secret", "privacy", name))
    planted = _forged(kube, crm)
    planted["metadata"]["annotations"].update(ours["metadata"].get("annotations") or {})
    kube._store(planted)
    controller(kube).reconcile(KEY)
    request = _request(kube)
    assert name not in _names(kube, "Role", readers_name(request.name))
    assert name not in {s.get("exportSecret") for s in status(kube)["stores"]}
    assert kube.objects[("Secret", "privacy", name)]["type"] == planted["type"]


def test_the_operators_own_exports_are_recognised_after_a_restart(kube: FakeKube) -> None:
    # A new controller (a restart: nothing in memory) reads the record in status.
    request = _request(kube)
    controller(kube).reconcile(KEY)
    for namespace, job in list(jobs(kube)):
        finish(kube, str(namespace), job, {"outcome": "Succeeded", "rowsExported": 1})
    controller(kube).reconcile(KEY)
    exports = {export_secret_name(request, s) for s in _store_by_name(kube).values()}
    assert exports <= _names(kube, "Role", readers_name(request.name))
    assert exports == {s.get("exportSecret") for s in status(kube)["stores"]}
    complete = next(c for c in status(kube)["conditions"] if c["type"] == "Complete")
    assert complete["reason"] == "AllStoresAnswered"
    # Status holds no token, only what proves one: no secret material there.
    text = str(status(kube).get("exports"))
    for secret in exports:
        token = kube.objects[("Secret", "privacy", secret)]["metadata"]["annotations"]
        assert all(v not in text for k, v in token.items() if k.endswith("export-token"))


class FailsUidRecord(FakeKube):
    """The API refuses the status write that records a made export's uid (once)."""

    failed = False

    def json_patch(self, kind: str, namespace: str | None, name: str,
                   operations: Any, subresource: str | None = None) -> dict[str, Any]:
        text = str(operations)
        if not self.failed and subresource == "status" and "exports" in text and "'uid'" in text:
            self.failed = True
            from dataward.controller.kube import KubeError

            raise KubeError(500, "Internal Server Error", "patch status")
        return super().json_patch(kind, namespace, name, operations, subresource)


def test_an_export_made_whose_uid_record_failed_is_still_the_requests(kube: FakeKube) -> None:
    flaky = FailsUidRecord()
    flaky.objects = kube.objects
    import contextlib

    with contextlib.suppress(Exception):
        controller(flaky).reconcile(KEY)
    assert flaky.failed, "the test's failure was injected"
    controller(kube).reconcile(KEY)
    request = _request(kube)
    for store in _store_by_name(kube).values():
        entry = _entry(kube, store.namespace)
        assert entry["reason"] in ("JobCreated", "JobRunning"), entry
        assert export_secret_name(request, store) in _names(kube, "Role", readers_name(KEY[1]))
    uids = {e["name"]: e.get("uid") for e in status(kube)["exports"]}
    for store in _store_by_name(kube).values():
        name = export_secret_name(request, store)
        assert uids[name] == kube.objects[("Secret", "privacy", name)]["metadata"]["uid"]
