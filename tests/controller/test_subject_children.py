"""A request's other children that someone else made: the key Secret, the export Secrets,
the Jobs' and the readers' Roles and RoleBindings, and the Jobs the finalizer deletes.

Their names are predictable (the request's name) and their labels anyone may write. Whoever
may create Secrets in the request's namespace could plant the key Secret, with the request's
labels and a public key of their own, before the operator made it: judged by labels, the
operator took it as its own and every store's Job sealed the subject's rows to the planter's
key. A child is the request's only when it carries the request's controller owner
reference, as every child the operator renders in the request's namespace does (the store
controller's rule, checks/purge_runs.py `owned_by`). Each test acts as that
planter through the controller's public `reconcile` on an in-memory API.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any, cast

from dataward.controller.kube import Kube, KubeError
from dataward.controller.subjects import FINALIZER, SubjectRequests, SubjectSettings
from dataward.render.settings import RenderSettings
from dataward.render.subject_jobs import (
    export_secret_name,
    job_access_name,
    key_secret_name,
    readers_name,
    render_export_secret,
    render_job_role,
    render_key_secret,
    render_readers_binding,
)
from dataward.subjects.export import public_key_fingerprint
from dataward.subjects.request import parse_request
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subject_forgery import _erasure, _first_pass, _forge, _ownerless_copy
from tests.controller.test_subjects import (
    KEY,
    KEYPAIR,
    PUBLIC,
    T0,
    controller,
    finish,
    jobs,
    kube,
    pem_pair,
    sealed_to,
    status,
)

__all__ = ["kube"]  # the fixture

MALLORY_PRIVATE, MALLORY = pem_pair(66)  # the planter's key pair


def _request(kube: FakeKube) -> Any:
    return parse_request(kube.objects[("DataSubjectRequest", *KEY)])


def _planted(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the planter makes it: the request's labels, no owner reference to it."""
    planted = copy.deepcopy(obj)
    planted["metadata"].pop("ownerReferences", None)
    return planted


def _plant(kube: FakeKube, obj: dict[str, Any]) -> dict[str, Any]:
    kube._store(_planted(obj))
    meta = obj["metadata"]
    return copy.deepcopy(kube.objects[(obj["kind"], meta["namespace"], meta["name"])])


def _store_by_name(kube: FakeKube) -> dict[str, Any]:
    from dataward.model.store import parse_store

    return {
        ns: parse_store(o) for (k, ns, _), o in kube.objects.items() if k == "PersonalDataStore"
    }


def _written(kube: FakeKube, kind: str, name: str) -> list[tuple[str, str, str]]:
    return [w for w in kube.writes() if w[1:] == (kind, name)]




def test_a_key_secret_planted_with_the_requests_labels_is_not_used(kube: FakeKube) -> None:
    request = _request(kube)
    planted = _plant(kube, render_key_secret(request, MALLORY_PRIVATE, MALLORY))
    controller(kube).reconcile(KEY)
    sealed = set(sealed_to(kube).values())
    assert MALLORY not in sealed, "a Job seals the subject's rows to the planter"
    assert not jobs(kube)
    entries = status(kube)["stores"]
    assert {(s["phase"], s["reason"]) for s in entries} == {("Failed", "ChildNotOurs")}, entries
    assert all(key_secret_name(request) in s["message"] for s in entries)
    assert status(kube)["phase"] != "Succeeded"
    assert kube.objects[("Secret", "privacy", key_secret_name(request))] == planted
    assert not _written(kube, "Secret", key_secret_name(request))
    assert MALLORY_PRIVATE.splitlines()[1] not in json.dumps(status(kube))


class PlantedOnCreate(FakeKube):
    """The planter wins the race: `name` is created by them between the operator's read and
    its create (a 409 answers the operator's create)."""

    def __init__(self, base: FakeKube, planted: dict[str, Any]) -> None:
        super().__init__()
        self.objects = base.objects
        self.version = base.version
        self.planted = planted

    def create(self, obj: Any) -> dict[str, Any]:
        meta = obj["metadata"]
        if (obj["kind"], meta["name"]) == (self.planted["kind"], self.planted["metadata"]["name"]):
            self._store(copy.deepcopy(self.planted))
        return super().create(obj)


def test_a_key_secret_planted_between_the_read_and_the_create_is_not_used(
    kube: FakeKube,
) -> None:
    request = _request(kube)
    racing = PlantedOnCreate(kube, _planted(render_key_secret(request, MALLORY_PRIVATE, MALLORY)))
    controller(racing).reconcile(KEY)
    # Neither the planter's key nor the operator's fresh one, whose private half is lost.
    assert not jobs(racing), sealed_to(racing)
    entries = status(racing)["stores"]
    assert {(s["phase"], s["reason"]) for s in entries} == {("Failed", "ChildNotOurs")}, entries


def test_the_operators_own_key_secret_found_on_409_is_used(kube: FakeKube) -> None:
    # An earlier pass of ours recorded its key's fingerprint, created the Secret, and its
    # answer was lost: this pass's read does not show it yet, its create meets it (409).
    request = _request(kube)
    earlier_private, earlier_public = pem_pair(2)  # made by an earlier pass of ours
    recorded = public_key_fingerprint(earlier_public)
    kube.objects[("DataSubjectRequest", *KEY)]["status"] = {"keyFingerprint": recorded}
    mine = render_key_secret(request, earlier_private, earlier_public)
    controller(PlantedOnCreate(kube, mine)).reconcile(KEY)
    assert set(sealed_to(kube).values()) == {earlier_public}
    assert {s["reason"] for s in status(kube)["stores"]} == {"JobCreated"}
    assert status(kube)["keyFingerprint"] == recorded


def test_a_key_secret_found_on_409_with_no_key_of_ours_recorded_is_not_used(
    kube: FakeKube,
) -> None:
    # The same Secret, the request's owner reference and all, with no fingerprint of its key
    # recorded: anyone who may create Secrets could have made it.
    request = _request(kube)
    planted = render_key_secret(request, *pem_pair(2))
    controller(PlantedOnCreate(kube, planted)).reconcile(KEY)
    assert set(sealed_to(kube).values()) == set()
    assert {s["reason"] for s in status(kube)["stores"]} == {"ChildNotOurs"}


def test_an_export_secret_planted_with_the_requests_labels_is_not_written_to(
    kube: FakeKube,
) -> None:
    request = _request(kube)
    crm = _store_by_name(kube)["crm"]
    planted = _plant(kube, render_export_secret(request, crm))
    controller(kube).reconcile(KEY)
    entry = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert (entry["phase"], entry["reason"]) == ("Failed", "ChildNotOurs"), entry
    assert export_secret_name(request, crm) in entry["message"]
    assert not [ns for ns, _ in jobs(kube) if ns == "crm"], "no Job patches the planted Secret"
    assert kube.objects[("Secret", "privacy", export_secret_name(request, crm))] == planted
    other = next(s for s in status(kube)["stores"] if s["namespace"] == "privacy")
    assert other["reason"] == "JobCreated", "the other store is answered as ever"


def test_a_role_planted_with_the_requests_labels_is_not_taken_over(kube: FakeKube) -> None:
    request = _request(kube)
    crm = _store_by_name(kube)["crm"]
    role = render_job_role(request, crm)
    assert role is not None
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
    planted = _plant(kube, role)
    controller(kube).reconcile(KEY)
    name = job_access_name(request, crm)
    assert kube.objects[("Role", "privacy", name)] == planted
    assert not _written(kube, "Role", name)
    assert not _written(kube, "RoleBinding", name), "nothing is bound to the planted Role"
    entry = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert (entry["phase"], entry["reason"]) == ("Failed", "ChildNotOurs"), entry


def test_a_readers_binding_planted_with_the_requests_labels_is_not_overwritten(
    kube: FakeKube,
) -> None:
    request = _request(kube)
    binding = render_readers_binding(request)
    assert binding is not None
    binding["subjects"] = [
        {"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    planted = _plant(kube, binding)
    controller(kube).reconcile(KEY)
    assert kube.objects[("RoleBinding", "privacy", readers_name(request.name))] == planted
    assert not _written(kube, "RoleBinding", readers_name(request.name))
    # The stores answer; the readers cannot open the answer, and the request says so.
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, {"outcome": "Succeeded", "rowsExported": 1})
    controller(kube).reconcile(KEY)
    complete = {c["type"]: c for c in status(kube)["conditions"]}["Complete"]
    assert (complete["status"], complete["reason"]) == ("False", "ChildNotOurs"), complete
    assert readers_name(request.name) in complete["message"]
    # Once the planted binding is gone, the operator makes its own and the request completes.
    del kube.objects[("RoleBinding", "privacy", readers_name(request.name))]
    controller(kube).reconcile(KEY)
    complete = {c["type"]: c for c in status(kube)["conditions"]}["Complete"]
    assert (complete["status"], complete["reason"]) == ("True", "AllStoresAnswered"), complete
    made = kube.objects[("RoleBinding", "privacy", readers_name(request.name))]
    assert made["subjects"] == [r.to_rbac("privacy") for r in request.readers]


def test_the_operators_children_are_created_not_applied_and_then_left_alone(
    kube: FakeKube,
) -> None:
    controller(kube).reconcile(KEY)
    made = [w for w in kube.writes() if w[1] in ("Secret", "Role", "RoleBinding")]
    assert made and {verb for verb, _, _ in made} == {"create"}, made
    controller(kube).reconcile(KEY)  # JobCreated becomes JobRunning
    before = len(kube.writes())
    controller(kube).reconcile(KEY)
    assert [w for w in kube.writes()[before:] if w[1] != "Event"] == []


def test_a_planted_child_created_by_an_earlier_pass_of_ours_is_judged_ours_on_409(
    kube: FakeKube,
) -> None:
    # The cache lags the operator's own create: a 409, a read, ours by owner reference.
    request = _request(kube)
    crm = _store_by_name(kube)["crm"]
    role = render_job_role(request, crm)
    assert role is not None
    controller(PlantedOnCreate(kube, role)).reconcile(KEY)
    entry = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert entry["reason"] == "JobCreated", entry


def _delete(kube: FakeKube) -> None:
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    controller(kube).reconcile(KEY)


def test_the_finalizer_leaves_a_forged_job_with_the_requests_uid_label(kube: FakeKube) -> None:
    real = _first_pass(kube)
    like = kube.objects[("Job", "crm", real)]
    _forge(kube, "crm", "mallorys-job", like)  # the request's labels, her own pod
    own, copied = _ownerless_copy(kube)
    _forge(kube, "privacy", "copy-no-owner", copied, copy.deepcopy(copied["spec"]))
    _delete(kube)
    left = set(jobs(kube))
    assert ("crm", real) not in left and ("privacy", own) not in left
    assert {("crm", "mallorys-job"), ("privacy", "copy-no-owner")} <= left
    deleted = {name for verb, kind, name in kube.writes() if (verb, kind) == ("delete", "Job")}
    assert deleted == {real, own}


def test_the_finalizer_deletes_the_runs_of_an_earlier_acknowledge_token(kube: FakeKube) -> None:
    _erasure(kube)
    controller(kube).reconcile(KEY)
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, {"outcome": "Held", "reason": "LargeMatch",
                                            "acknowledgeToken": "tok-7"})  # fmt: skip
    controller(kube).reconcile(KEY)
    kube.objects[("DataSubjectRequest", *KEY)]["spec"]["acknowledgeToken"] = "tok-7"
    controller(kube).reconcile(KEY)
    assert len([1 for ns, _ in jobs(kube) if ns == "crm"]) == 2
    _delete(kube)
    assert not [k for k in jobs(kube) if k[0] == "crm"]


def test_the_finalizer_deletes_the_access_runs_sealed_to_the_requests_key(
    kube: FakeKube,
) -> None:
    controller(kube).reconcile(KEY)
    assert set(sealed_to(kube).values()) == {PUBLIC}
    _delete(kube)
    assert not [k for k in jobs(kube) if k[0] == "crm"]


# The finalizer and the operator's own runs that no render made now would match: the run
# erasing rows for a withdrawn request must not outlive the request (bench: an erasure in
# flight, then an operator upgrade or a store change, then the user withdraws it).


def _delete_with(kube: FakeKube, **render: Any) -> None:
    """Delete the request and let an operator with these render settings finalize it."""
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: KEYPAIR,
                               render=RenderSettings(**render))  # fmt: skip
    SubjectRequests(cast(Kube, kube), settings).reconcile(KEY)


def _in_flight_with_a_forgery(kube: FakeKube, *, erasure: bool = True) -> str:
    """The operator's first pass (its crm Job recorded in status), and Mallory's Job with
    the request's labels and annotations, never recorded: the crm Job's name."""
    if erasure:
        _erasure(kube)
    controller(kube).reconcile(KEY)
    (real,) = [n for ns, n in jobs(kube) if ns == "crm"]
    assert any(s.get("jobName") == real for s in status(kube)["stores"])
    _forge(kube, "crm", "mallorys-job", kube.objects[("Job", "crm", real)])
    return real


def _finalized(kube: FakeKube, real: str) -> None:
    left = set(jobs(kube))
    assert ("crm", real) not in left, "the operator's run outlived the withdrawn request"
    assert ("crm", "mallorys-job") in left, "a Job the operator never made was deleted"
    assert FINALIZER not in kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["finalizers"]


def test_the_finalizer_deletes_the_erasure_run_after_an_operator_upgrade(kube: FakeKube) -> None:
    real = _in_flight_with_a_forgery(kube)
    _delete_with(kube, image="ghcr.io/dataward/dataward:9.9.9")
    _finalized(kube, real)


def test_the_finalizer_deletes_the_erasure_run_after_the_store_changed(kube: FakeKube) -> None:
    real = _in_flight_with_a_forgery(kube)
    store = kube.objects[("PersonalDataStore", "crm", "orders")]
    store["spec"]["database"]["credentialsSecret"] = "crm-postgres-purger-2"
    _delete_with(kube)
    _finalized(kube, real)


def test_the_finalizer_deletes_the_erasure_run_of_a_store_since_deleted(kube: FakeKube) -> None:
    real = _in_flight_with_a_forgery(kube)
    del kube.objects[("PersonalDataStore", "crm", "orders")]
    _delete_with(kube)
    _finalized(kube, real)


def test_the_finalizer_deletes_the_access_run_when_the_key_secret_went_first(
    kube: FakeKube,
) -> None:
    # kubectl delete --cascade=foreground: the GC deletes the owned key Secret first.
    real = _in_flight_with_a_forgery(kube, erasure=False)
    del kube.objects[("Secret", "privacy", key_secret_name(_request(kube)))]
    _delete_with(kube)
    _finalized(kube, real)


def test_the_finalizer_deletes_a_run_created_before_its_status_record(kube: FakeKube) -> None:
    # The operator created the Job and stopped (an upgrade) before it wrote status.
    real = _in_flight_with_a_forgery(kube)
    kube.objects[("DataSubjectRequest", *KEY)]["status"].pop("stores")
    _delete_with(kube, image="ghcr.io/dataward/dataward:9.9.9")
    _finalized(kube, real)


def test_the_finalizer_leaves_a_labelled_job_status_does_not_name_in_the_requests_namespace(
    kube: FakeKube,
) -> None:
    # There only the controller owner reference makes a Job the request's, recorded or not.
    _first_pass(kube)
    own, copied = _ownerless_copy(kube)
    del kube.objects[("Job", "privacy", own)]
    _forge(kube, "privacy", own, copied)  # under the recorded name, without the owner
    _delete_with(kube, image="ghcr.io/dataward/dataward:9.9.9")
    assert ("privacy", own) in set(jobs(kube))


def test_the_finalizer_deletes_a_recorded_run_under_another_name_after_an_upgrade(
    kube: FakeKube,
) -> None:
    # A faithful copy under its own name answered first: the operator counted and recorded
    # it. After an upgrade only the record still says it is the request's run.
    real = _in_flight_with_a_forgery(kube)
    like = kube.objects[("Job", "crm", real)]
    _forge(kube, "crm", "faithful-copy", like, copy.deepcopy(like["spec"]))
    finish(kube, "crm", "faithful-copy", {"outcome": "Succeeded", "rowsDeleted": 1})
    controller(kube).reconcile(KEY)
    assert any(s.get("jobName") == "faithful-copy" for s in status(kube)["stores"])
    _delete_with(kube, image="ghcr.io/dataward/dataward:9.9.9")
    _finalized(kube, real)
    assert ("crm", "faithful-copy") not in set(jobs(kube))


def test_the_finalizer_deletes_the_runs_of_a_request_whose_spec_no_longer_parses(
    kube: FakeKube,
) -> None:
    real = _in_flight_with_a_forgery(kube)
    kube.objects[("DataSubjectRequest", *KEY)]["spec"]["scope"] = {"stores": "everything"}
    _delete_with(kube)
    _finalized(kube, real)


# The finalizer's reads: a live Job LIST in every namespace that may hold a run, at every
# attempt, was thousands of requests for a policy-wide request; the Job cache holds every Job
# those LISTs select (it selects the operator's label, which the uid selector includes).


def _listing(kube: FakeKube, namespaces: int = 0) -> Any:
    """The fixture's objects in an API that also answers the informers' LISTs, with
    `namespaces` more stores under the policy (the request is policy-wide)."""
    from tests.controller.test_cache import ListingKube
    from tests.controller.test_subjects import _store

    listing = ListingKube()
    for obj in kube.objects.values():
        listing._store(copy.deepcopy(obj))
    for i in range(namespaces):
        listing._store(_store(f"team-{i}", "orders"))
    return listing


def _job_lists(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [c for c in kube.calls if c[:2] == ("list", "Job")]


def _synced(kube: FakeKube) -> Any:
    from dataward.controller.cache import Caches
    from dataward.controller.operator import CACHED_KINDS

    caches = Caches(cast(Kube, kube), CACHED_KINDS, (), 3600, lambda *_: None,
                    lambda *_: None)  # fmt: skip
    for informer in caches.informers.values():
        informer._relist()
    return caches


def _withdraw(kube: FakeKube, caches: Any, kinds: tuple[str, ...] | None = None) -> None:
    """`kubectl delete` of the request; the watches of `kinds` (None: all) deliver it and
    what else changed, the others have not yet."""
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    for (kind, _), informer in caches.informers.items():
        if kinds is None or kind in kinds:
            informer._relist()


def _cached_controller(kube: FakeKube, caches: Any) -> SubjectRequests:
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: KEYPAIR)
    return SubjectRequests(cast(Kube, kube), settings, caches=caches)


def test_the_finalizer_reads_the_runs_from_a_synced_job_cache(kube: FakeKube) -> None:
    listing = _listing(kube, namespaces=30)
    _erasure(listing)
    caches = _synced(listing)
    _cached_controller(listing, caches).reconcile(KEY)
    made = set(jobs(listing))
    assert {ns for ns, _ in made} >= {"crm", "privacy"}
    _forge(listing, "crm", "mallorys-job", listing.objects[("Job", *sorted(made)[0])])
    _withdraw(listing, caches)
    listing.calls.clear()
    _cached_controller(listing, caches).reconcile(KEY)
    assert _job_lists(listing) == [], "no live LIST of Jobs while the cache is synced"
    left = set(jobs(listing))
    assert not made & left and ("crm", "mallorys-job") in left
    assert FINALIZER not in listing.objects[("DataSubjectRequest", *KEY)]["metadata"]["finalizers"]


def test_a_run_just_created_is_deleted_before_its_watch_event_arrives(kube: FakeKube) -> None:
    """The request is withdrawn right after a pass created its runs: the cache has not had
    their watch events yet, but holds the operator's own creates."""
    listing = _listing(kube)
    _erasure(listing)
    caches = _synced(listing)
    _cached_controller(listing, caches).reconcile(KEY)
    made = set(jobs(listing))
    assert made
    _withdraw(listing, caches, kinds=("DataSubjectRequest", "PersonalDataStore"))
    _cached_controller(listing, caches).reconcile(KEY)
    assert not made & set(jobs(listing)), "a run outlived the withdrawn request"


def test_a_job_made_again_under_a_runs_name_before_the_watch_is_not_deleted(
    kube: FakeKube,
) -> None:
    """Someone deletes a run (its name is in status.stores[].jobName) and makes their own Job
    under the name, without the operator's labels, before the Job watch delivers either; the
    request is withdrawn meanwhile. The finalizer judged the cached run: its delete goes at
    that version, and their Job stays."""
    listing = _listing(kube)
    _erasure(listing)
    caches = _synced(listing)
    _cached_controller(listing, caches).reconcile(KEY)
    namespace, name = next((ns, j) for ns, j in sorted(jobs(listing)) if ns != "privacy")
    del listing.objects[("Job", namespace, name)]
    theirs = listing._store({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "theirs"}},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "busybox"}]}}},
    })  # fmt: skip
    _withdraw(listing, caches, kinds=("DataSubjectRequest", "PersonalDataStore"))
    with contextlib.suppress(KubeError):
        _cached_controller(listing, caches).reconcile(KEY)
    assert listing.objects.get(("Job", namespace, name)) == theirs
    # Once the watch brings their Job, it is not a run of the request: left, and withdrawn.
    _withdraw(listing, caches)
    _cached_controller(listing, caches).reconcile(KEY)
    assert listing.objects.get(("Job", namespace, name)) == theirs
    assert FINALIZER not in listing.objects[("DataSubjectRequest", *KEY)]["metadata"]["finalizers"]


def test_without_a_synced_cache_each_namespace_is_listed_once(kube: FakeKube) -> None:
    listing = _listing(kube, namespaces=5)
    _erasure(listing)
    controller(listing).reconcile(KEY)
    made = set(jobs(listing))
    listing.calls.clear()
    _delete(listing)
    namespaces = [ns for _, _, ns in _job_lists(listing)]
    assert sorted(namespaces) == sorted(set(namespaces)), "a namespace listed twice"
    assert not made & set(jobs(listing))


def test_a_request_whose_spec_no_longer_parses_reads_no_store(kube: FakeKube) -> None:
    """Without a spec no store is in scope: the recorded runs' namespaces are all there is,
    and parsing every store in the cluster was for nothing."""
    real = _in_flight_with_a_forgery(kube)
    kube.objects[("DataSubjectRequest", *KEY)]["spec"]["scope"] = {"stores": "everything"}
    kube.calls.clear()
    _delete_with(kube)
    _finalized(kube, real)
    assert ("list", "PersonalDataStore", "") not in kube.calls


def _edited_role_behind_a_stale_read(kube: FakeKube) -> tuple[Any, dict[str, Any], str]:
    """The request's job Role for the crm store made by the operator and then edited (it
    needs a repair); a controller reading a copy of the API taken now (a cache the next
    change has not reached yet), the Role as rendered, and its name."""
    request = _request(kube)
    crm = _store_by_name(kube)["crm"]
    role = render_job_role(request, crm)
    assert role is not None
    edited = copy.deepcopy(role)
    edited["rules"] = []
    kube._store(edited)
    stale = FakeKube()
    stale.objects = copy.deepcopy(kube.objects)
    requests = controller(kube)
    requests.read = stale
    return requests, role, job_access_name(request, crm)


def test_a_role_planted_over_the_operators_own_after_the_read_is_not_applied_over(
    kube: FakeKube,
) -> None:
    # Someone deletes the operator's Role and plants their own of the name, with the
    # request's labels; the read lags.
    requests, role, name = _edited_role_behind_a_stale_read(kube)
    del kube.objects[("Role", "privacy", name)]
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
    planted = _plant(kube, role)
    requests.reconcile(KEY)
    assert kube.objects[("Role", "privacy", name)] == planted
    assert not _written(kube, "RoleBinding", name), "nothing is bound to the planted Role"
    entry = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert (entry["phase"], entry["reason"]) == ("Failed", "ChildNotOurs"), entry


def test_the_operators_role_changed_again_after_the_read_is_still_repaired(
    kube: FakeKube,
) -> None:
    requests, role, name = _edited_role_behind_a_stale_read(kube)
    kube.objects[("Role", "privacy", name)]["metadata"]["labels"]["extra"] = "x"
    kube._store(kube.objects[("Role", "privacy", name)])
    requests.reconcile(KEY)
    assert _written(kube, "Role", name) == [("apply", "Role", name)] * 2  # 409, then applied
    assert kube.objects[("Role", "privacy", name)]["rules"] == role["rules"]
    entry = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert entry["reason"] == "JobCreated", entry
