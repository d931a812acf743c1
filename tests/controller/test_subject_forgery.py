"""Data subject request runs that someone else made (bench/notes/dsr-forgery.md).

A request's Jobs were found by their labels and an annotation, and any finished one whose
pod reported `Succeeded` was the store's answer for good. Whoever may create Jobs (or pods)
in a store's namespace could write those labels, so a Job running `true` could answer an
erasure request "Succeeded" with nothing erased. Each test acts as that author through the
controller's public `reconcile` on an in-memory API, and checks what the request then says.
"""

from __future__ import annotations

import copy
import json
from typing import Any, cast

from dataward.controller.cache import Caches
from dataward.controller.kube import Kube
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from dataward.render.settings import RenderSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube, _caches, _relist
from tests.controller.test_subjects import (
    KEY,
    KEYPAIR,
    T0,
    controller,
    finish,
    jobs,
    kube,
    status,
)

__all__ = ["kube"]  # the fixture

EMAIL = "kim.minji@example.kr"
SUCCEEDED = {"outcome": "Succeeded", "rowsFound": 3, "rowsDeleted": 3}


def _erasure(kube: FakeKube) -> None:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["type"] = "erasure"
    raw["spec"].pop("readers", None)


def _store_entry(kube: FakeKube, namespace: str) -> dict[str, Any]:
    return next(s for s in status(kube)["stores"] if s["namespace"] == namespace)


def _forge(
    kube: FakeKube,
    namespace: str,
    name: str,
    like: dict[str, Any],
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Job with the metadata of `like` (labels, annotations, owner references), its own
    name, and the forger's spec: a pod that runs `true` and says it erased."""
    job = copy.deepcopy(like)
    job["metadata"] = {k: v for k, v in job["metadata"].items() if k not in ("uid",)}
    job["metadata"]["name"] = name
    job.pop("status", None)
    if spec is None:
        spec = copy.deepcopy(job["spec"])
        spec["template"]["spec"] = {
            "restartPolicy": "Never",
            "containers": [{"name": "purge", "image": "busybox", "command": ["true"]}],
        }
    job["spec"] = spec
    return kube._store(job)


def _crm_job(kube: FakeKube) -> str:
    (name,) = [n for ns, n in jobs(kube) if ns == "crm"]
    return name


def _first_pass(kube: FakeKube, *, erasure: bool = True) -> str:
    """The request (an erasure unless told) after the operator's first pass: the name of
    the Job it made in the crm store's namespace."""
    if erasure:
        _erasure(kube)
    controller(kube).reconcile(KEY)
    return _crm_job(kube)


def _ownerless_copy(kube: FakeKube) -> tuple[str, dict[str, Any]]:
    """After the operator's first pass, the name of its Job in the request's own namespace
    and a copy of that Job without owner references: labels, annotations and spec as
    anyone who may create Jobs there can write them."""
    own = next(n for ns, n in jobs(kube) if ns == "privacy")
    copied = copy.deepcopy(kube.objects[("Job", "privacy", own)])
    copied["metadata"].pop("ownerReferences")
    return own, copied


def _all_answered(kube: FakeKube) -> None:
    """An erasure whose every real run answered `SUCCEEDED`, after the pass that read them."""
    _erasure(kube)
    controller(kube).reconcile(KEY)
    for namespace, name in list(jobs(kube)):
        finish(kube, str(namespace), name, SUCCEEDED)
    controller(kube).reconcile(KEY)


def _forge_sealed_to_mallory(kube: FakeKube, real: str) -> None:
    """A finished copy of the access Job `real` whose pod annotation carries the forger's
    public key, so that its export would be sealed to the forger."""
    spec = copy.deepcopy(kube.objects[("Job", "crm", real)]["spec"])
    spec["template"]["metadata"]["annotations"]["dataward.io/recipient-public-key"] = "MALLORY"
    _forge(kube, "crm", "forged-key", kube.objects[("Job", "crm", real)], spec)
    finish(kube, "crm", "forged-key", {"outcome": "Succeeded", "rowsExported": 2})


def test_a_forged_job_with_the_requests_labels_cannot_answer_an_erasure(
    kube: FakeKube,
) -> None:
    real = _first_pass(kube)
    _forge(kube, "crm", "forged", kube.objects[("Job", "crm", real)])
    finish(kube, "crm", "forged", SUCCEEDED)
    forged = copy.deepcopy(kube.objects[("Job", "crm", "forged")])
    own = next(n for ns, n in jobs(kube) if ns == "privacy")
    finish(kube, "privacy", own, SUCCEEDED)
    controller(kube).reconcile(KEY)
    crm = _store_entry(kube, "crm")
    assert crm["phase"] == "Running", crm
    assert crm.get("jobName") == real
    assert status(kube)["phase"] == "Running"
    assert "forged" in crm.get("message", ""), "the forged Job is named"
    left = kube.objects[("Job", "crm", "forged")]  # left alone
    assert (left["metadata"], left["spec"]) == (forged["metadata"], forged["spec"])
    assert EMAIL not in json.dumps(status(kube))


def test_a_forged_job_made_under_the_predictable_name_first_is_surfaced_not_adopted(
    kube: FakeKube,
) -> None:
    real = _first_pass(kube)
    template = copy.deepcopy(kube.objects[("Job", "crm", real)])
    # The forger was first: the Job of the operator's name, the request's labels, its own pod.
    del kube.objects[("Job", "crm", real)]
    _forge(kube, "crm", real, template)
    finish(kube, "crm", real, SUCCEEDED)
    controller(kube).reconcile(KEY)
    crm = _store_entry(kube, "crm")
    assert (crm["phase"], crm["reason"]) == ("Failed", "ChildNotOurs"), crm
    assert real in crm["message"]
    assert "does not run the Job the operator renders" in crm["message"]
    assert status(kube)["phase"] != "Succeeded"


def test_a_forged_pod_in_the_real_run_cannot_answer_for_it(kube: FakeKube) -> None:
    real = _first_pass(kube)
    finish(kube, "crm", real, {"outcome": "Failed", "reason": "DatabaseUnreachable"}, "Failed")
    job = kube.objects[("Job", "crm", real)]
    kube._store({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{real}-forged", "namespace": "crm",
                     "creationTimestamp": "2026-01-11T09:00:00Z",
                     "labels": {"batch.kubernetes.io/job-name": real},
                     "ownerReferences": [{"kind": "Job", "uid": job["metadata"]["uid"],
                                          "controller": True}]},
        "spec": {"restartPolicy": "Never",
                 "containers": [{"name": "purge", "image": "busybox", "command": ["true"]}]},
        "status": {"containerStatuses": [{"name": "purge", "state": {"terminated": {
            "message": json.dumps(SUCCEEDED)}}}]},
    })  # fmt: skip
    controller(kube).reconcile(KEY)
    crm = _store_entry(kube, "crm")
    assert (crm["phase"], crm["reason"]) == ("Failed", "DatabaseUnreachable"), crm


def test_a_sidecar_cannot_speak_for_the_request_container(kube: FakeKube) -> None:
    real = _first_pass(kube)
    finish(kube, "crm", real, None, "Failed")
    (pod,) = [o for (k, ns, _), o in kube.objects.items() if k == "Pod" and ns == "crm"]
    pod["status"]["containerStatuses"].insert(
        0, {"name": "identifier", "state": {"terminated": {"message": json.dumps(SUCCEEDED)}}}
    )
    controller(kube).reconcile(KEY)
    assert _store_entry(kube, "crm")["phase"] == "Failed"


def test_a_copy_sealing_to_another_key_is_not_the_access_run(kube: FakeKube) -> None:
    # The access Job reads its recipient's public key from its pod's annotation: a copy of
    # the template with the forger's key in that annotation seals the export to the forger.
    real = _first_pass(kube, erasure=False)
    _forge_sealed_to_mallory(kube, real)
    controller(kube).reconcile(KEY)
    crm = _store_entry(kube, "crm")
    assert crm["phase"] == "Running" and crm["jobName"] == real, crm
    assert "forged-key" in crm.get("message", "")


def test_the_real_runs_still_answer(kube: FakeKube) -> None:
    _all_answered(kube)
    assert status(kube)["phase"] == "Succeeded"
    assert status(kube)["result"]["rowsDeleted"] == 6


def _listed(kube: FakeKube) -> tuple[ListingKube, Caches]:
    """A copy of `kube` that answers LIST, and caches that have listed it once."""
    listing = ListingKube()
    for obj in kube.objects.values():
        listing._store(copy.deepcopy(obj))
    caches = _caches(listing)
    _relist(caches)
    return listing, caches


def _crm_entry_through_caches(listing: ListingKube, caches: Caches) -> dict[str, Any]:
    """The crm store's entry after a pass of the controller that reads through `caches`."""
    settings = SubjectSettings(clock=lambda: T0, keypair=lambda: KEYPAIR)
    SubjectRequests(cast(Kube, listing), settings, caches).reconcile(KEY)
    raw = listing.objects[("DataSubjectRequest", *KEY)]
    return next(s for s in raw["status"]["stores"] if s["namespace"] == "crm")


def _made_before_the_first_pass(
    kube: FakeKube, forge: bool, *, labels: bool = True
) -> dict[str, Any]:
    """The crm store's entry after the first pass through the caches, when a Job of the name
    the operator renders (predictable: the request's uid) was created after the caches
    listed: the forger's (`forge`; without the request's labels unless `labels`) or a
    faithful copy of the render. The operator may not get Jobs (the chart's ClusterRole
    grants jobs list, watch, create and delete only): a get is 403."""
    _erasure(kube)
    rehearsal = copy.deepcopy(kube)
    controller(rehearsal).reconcile(KEY)
    real = _crm_job(rehearsal)
    listing, caches = _listed(kube)
    listing.fail_gets["Job"] = 403
    if not labels:
        rehearsal.objects[("Job", "crm", real)]["metadata"].pop("labels")
    like = rehearsal.objects[("Job", "crm", real)]
    if forge:
        _forge(listing, "crm", real, like)
    else:
        listing._store(copy.deepcopy(like))
    return _crm_entry_through_caches(listing, caches)


def test_a_job_forged_under_the_name_after_the_caches_listed_is_surfaced_on_409(
    kube: FakeKube,
) -> None:
    crm = _made_before_the_first_pass(kube, forge=True)
    assert (crm["phase"], crm["reason"]) == ("Failed", "ChildNotOurs"), crm


def test_a_job_forged_under_the_name_without_the_labels_is_surfaced_on_409(
    kube: FakeKube,
) -> None:
    # Not in the caches (they hold the operator's labelled Jobs), nor in a LIST by them.
    crm = _made_before_the_first_pass(kube, forge=True, labels=False)
    assert (crm["phase"], crm["reason"]) == ("Failed", "ChildNotOurs"), crm


def test_a_409_on_the_job_the_operator_renders_is_not_an_error(kube: FakeKube) -> None:
    crm = _made_before_the_first_pass(kube, forge=False)
    assert (crm["phase"], crm["reason"]) == ("Running", "JobCreated"), crm


def test_an_answer_recorded_stands_after_an_operator_upgrade(kube: FakeKube) -> None:
    _all_answered(kube)
    before = status(kube)
    assert before["phase"] == "Succeeded"
    made = set(jobs(kube))
    settings = SubjectSettings(clock=lambda: T0, render=RenderSettings(image="dataward:next"))
    SubjectRequests(cast(Kube, kube), settings).reconcile(KEY)
    assert set(jobs(kube)) == made, "no new run"
    assert status(kube)["stores"] == before["stores"]
    assert status(kube)["phase"] == "Succeeded"


def test_a_job_in_the_requests_namespace_without_its_controller_reference_is_not_a_run(
    kube: FakeKube,
) -> None:
    _first_pass(kube)
    own, copied = _ownerless_copy(kube)
    _forge(kube, "privacy", "copy-no-owner", copied, copy.deepcopy(copied["spec"]))
    finish(kube, "privacy", "copy-no-owner", SUCCEEDED)
    controller(kube).reconcile(KEY)
    entry = _store_entry(kube, "privacy")
    assert entry["phase"] == "Running" and entry["jobName"] == own, entry
    assert "copy-no-owner" in entry["message"]


def test_the_request_runs_are_judged_the_same_through_the_caches(kube: FakeKube) -> None:
    # The caches keep a digest of what a Job and a pod run, the projected key included.
    real = _first_pass(kube, erasure=False)
    _forge_sealed_to_mallory(kube, real)
    finish(kube, "crm", real, {"outcome": "Succeeded", "rowsExported": 1})
    crm = _crm_entry_through_caches(*_listed(kube))
    assert (crm["phase"], crm["jobName"], crm["rowsExported"]) == ("Succeeded", real, 1), crm


def test_a_succeeded_entry_written_into_status_alone_answers_nothing(kube: FakeKube) -> None:
    """Whoever may patch the request's status subresource writes the store's entry as
    answered before any run: it must not close the erasure (red on the recorded-answer rule
    as first written, which trusted the entry alone)."""
    own = _first_pass(kube)
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    for entry in raw["status"]["stores"]:
        entry.update(phase="Succeeded", reason="Answered", message="forged")
    controller(kube).reconcile(KEY)
    assert _store_entry(kube, "crm")["phase"] != "Succeeded"
    assert status(kube)["phase"] != "Succeeded"
    # Nor with the Job the operator renders named, while that Job has not completed.
    for entry in kube.objects[("DataSubjectRequest", *KEY)]["status"]["stores"]:
        entry.update(phase="Succeeded", jobName=own if entry["namespace"] == "crm" else "x")
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] != "Succeeded"
