"""The request controller against an in-memory API: Jobs, keys, status, never the identifier."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from dataward.controller.kube import Kube
from dataward.controller.subjects import FINALIZER, SubjectRequests, SubjectSettings
from tests.controller.fake_kube import FakeKube
from tests.model import samples as store_samples
from tests.subjects.samples import request

EMAIL = "kim.minji@example.kr"
T0 = datetime(2026, 1, 11, 8, tzinfo=UTC)
KEY = ("privacy", "case-4711")
KEY_SECRET = "dataward-case-4711-dsr-key"  # the access request's key Secret, as README names it
ANNOTATION = "dataward.io/recipient-public-key"  # its public key, as README names it


def pem_pair(seed: int) -> tuple[str, str]:
    """A fixed X25519 key pair (private, public) in PEM, the kind `pem_keypair` makes: the
    operator refuses a public key that is not one (an export is sealed to it)."""
    private = X25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return (
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode("ascii"),
        private.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo
                                          ).decode("ascii"),
    )  # fmt: skip


# The key pair the tests' operator makes for a request.
KEYPAIR = pem_pair(1)
PRIVATE, PUBLIC = KEYPAIR


class Evidence:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def append(self, kind: str, subject: str, payload: Any) -> None:
        from dataward.evidence.payloads import validate

        self.records.append((kind, subject, validate(kind, subject, payload)))


def _store(namespace: str, name: str) -> dict[str, Any]:
    raw = copy.deepcopy(store_samples.STORE)
    raw["metadata"].update(namespace=namespace, name=name, uid=f"uid-{name}")
    return raw


def _account(namespace: str, store: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": f"dataward-{store}-purge", "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "dataward"}}}


@pytest.fixture
def kube() -> FakeKube:
    return sample_requests(FakeKube())


def sample_requests(fake: FakeKube) -> FakeKube:
    """`fake` (a FakeKube or a subclass) holding the policy, the stores tickets and orders,
    the request case-4711 and its identifier Secret."""
    fake._store(copy.deepcopy(store_samples.POLICY))
    for namespace, name in (("privacy", "tickets"), ("crm", "orders")):
        fake._store(_store(namespace, name))
        fake._store(_account(namespace, name))
    fake._store({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "case-4711-identifier", "namespace": "privacy"},
                 "data": {"email": base64.b64encode(EMAIL.encode()).decode()}})
    fake._store(request())
    return fake


def controller(kube: FakeKube, now: datetime = T0, evidence: Evidence | None = None) -> Any:
    settings = SubjectSettings(clock=lambda: now, keypair=lambda: KEYPAIR,
                               evidence=evidence)
    return SubjectRequests(cast(Kube, kube), settings)


def status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.objects[("DataSubjectRequest", *KEY)].get("status") or {})


def finish(kube: FakeKube, namespace: str, job: str, record: dict[str, Any] | None,
           state: str = "Complete") -> None:
    """The Job finished, and the pod its controller made from its template left `record`."""
    obj = kube.objects[("Job", namespace, job)]
    obj["status"] = {"conditions": [{"type": state, "status": "True"}],
                     "startTime": "2026-01-11T08:00:00Z",
                     "completionTime": "2026-01-11T08:01:00Z"}
    kube._store(obj)  # a new resourceVersion, as the API gives every change
    template = obj["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{job}-x", "namespace": namespace,
                        "creationTimestamp": "2026-01-11T08:00:00Z",
                        "labels": {**(template.get("metadata") or {}).get("labels", {}),
                                   "batch.kubernetes.io/job-name": job},
                        "annotations": dict((template.get("metadata") or {})
                                            .get("annotations") or {}),
                        "ownerReferences": [{"kind": "Job", "uid": obj["metadata"]["uid"],
                                             "controller": True}]},
           "spec": copy.deepcopy(template["spec"]),
           "status": {"containerStatuses": [{"name": "purge", "state": {"terminated": {
               "message": json.dumps(record) if record is not None else ""}}}]}}
    kube._store(pod)


def jobs(kube: FakeKube) -> dict[tuple[str | None, str], dict[str, Any]]:
    return {(ns, name): obj for (k, ns, name), obj in kube.objects.items() if k == "Job"}


def sealed_to(kube: FakeKube) -> dict[str | None, str]:
    """Per namespace, the public key the request's Job there seals to."""
    return {
        ns: job["spec"]["template"]["metadata"]["annotations"].get(ANNOTATION, "")
        for (ns, _), job in jobs(kube).items()
    }


def outcomes(kube: FakeKube) -> dict[str, tuple[str, str]]:
    """Per namespace, the phase and reason status gives the request's store there."""
    return {s["namespace"]: (s["phase"], s["reason"]) for s in status(kube)["stores"]}


def test_an_access_request_fans_out_one_job_per_store_and_answers(kube: FakeKube) -> None:
    evidence = Evidence()
    controller(kube, evidence=evidence).reconcile(KEY)
    made = jobs(kube)
    assert {ns for ns, _ in made} == {"privacy", "crm"}
    assert status(kube)["phase"] == "Running"
    assert status(kube)["deadline"] == "2026-01-20T08:00:00Z"
    key = kube.objects[("Secret", "privacy", "dataward-case-4711-dsr-key")]
    assert base64.b64decode(key["data"]["private.key"]).decode() == PRIVATE
    assert FINALIZER in kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["finalizers"]
    for (namespace, name), _job in made.items():
        finish(kube, str(namespace), name,
               {"outcome": "Succeeded", "rowsFound": 2, "rowsExported": 2,
                "tables": [{"table": "support_inquiries", "rowsFound": 2, "rowsExported": 2}]})
    controller(kube, evidence=evidence).reconcile(KEY)
    done = status(kube)
    assert done["phase"] == "Succeeded" and done["result"]["rowsExported"] == 4
    assert {c["type"]: c["reason"] for c in done["conditions"]} == {
        "Complete": "AllStoresAnswered", "DeadlineMet": "AnsweredInTime"}
    assert [r[0] for r in evidence.records] == ["request.answered"]
    assert evidence.records[0][2]["outcome"] == "fulfilled"
    assert evidence.records[0][2]["deadline"] == "2026-01-20T08:00:00.000000Z"  # late: after it
    # The request by its uid: a name is chosen by whoever asked, and may name the person
    # (erasure-jane-doe-1990-03-14), in a log kept for years and never edited.
    request = kube.objects[("DataSubjectRequest", *KEY)]
    assert evidence.records[0][1] == f"{KEY[0]}/{request['metadata']['uid']}"
    assert KEY[1] not in json.dumps(evidence.records)
    # A store that answered loses its Job's access to the identifier in the request namespace.
    assert not [k for k in kube.objects if k[0] == "RoleBinding" and "dsr-job" in k[2]]
    controller(kube, evidence=evidence).reconcile(KEY)  # nothing new: no second record
    assert len(evidence.records) == 1
    writes = [w for w in kube.writes() if w[1] != "Event"]
    before = len(writes)
    controller(kube, evidence=evidence).reconcile(KEY)
    assert len([w for w in kube.writes() if w[1] != "Event"]) == before  # steady state


def test_the_operator_never_reads_the_identifier_and_never_writes_it(kube: FakeKube) -> None:
    ctl = controller(kube)
    ctl.reconcile(KEY)
    for (namespace, name) in list(jobs(kube)):
        finish(kube, str(namespace), name, {"outcome": "Held", "reason": "LargeMatch",
                                            "acknowledgeToken": "tok-7", "message": EMAIL})
    ctl.reconcile(KEY)
    # Everything but the Secret itself and the pods (whose messages the engine writes).
    written = json.dumps([obj for (kind, _, name), obj in kube.objects.items()
                          if kind != "Pod"
                          and not (kind == "Secret" and name == "case-4711-identifier")])
    assert EMAIL not in written
    assert base64.b64encode(EMAIL.encode()).decode() not in written
    assert status(kube)["phase"] == "PartiallyHeld"
    held = status(kube)["stores"][0]
    assert (held["phase"], held["reason"], held["acknowledgeToken"]) == (
        "Held", "LargeMatch", "tok-7")


def test_the_identifier_secret_is_only_checked_for_existence(kube: FakeKube) -> None:
    gets: list[str] = []
    real_get = kube.get

    def get(kind: str, namespace: str | None, name: str) -> Any:
        if kind == "Secret":
            gets.append(name)
        return real_get(kind, namespace, name)

    kube.get = get  # type: ignore[method-assign]
    controller(kube).reconcile(KEY)
    assert "case-4711-identifier" not in gets


def test_an_acknowledge_token_runs_the_held_stores_again_not_the_answered(kube: FakeKube) -> None:
    controller(kube).reconcile(KEY)
    first = dict(jobs(kube))
    (crm_job,) = [n for ns, n in first if ns == "crm"]
    (own_job,) = [n for ns, n in first if ns == "privacy"]
    finish(kube, "crm", crm_job, {"outcome": "Held", "reason": "LargeMatch",
                                  "acknowledgeToken": "tok-7"})
    finish(kube, "privacy", own_job, {"outcome": "Succeeded", "rowsExported": 1})
    controller(kube).reconcile(KEY)
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["acknowledgeToken"] = "tok-7"
    raw["metadata"]["generation"] = 2
    controller(kube).reconcile(KEY)
    new = set(jobs(kube)) - set(first)
    assert [ns for ns, _ in new] == ["crm"]
    (job,) = [jobs(kube)[k] for k in new]
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--acknowledge") + 1] == "tok-7"


def test_a_job_someone_else_made_under_the_name_is_not_adopted(kube: FakeKube) -> None:
    controller(kube).reconcile(KEY)
    (name,) = [n for ns, n in jobs(kube) if ns == "crm"]
    planted = copy.deepcopy(kube.objects[("Job", "crm", name)])
    planted["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "dataward"}
    planted["metadata"]["annotations"] = {}
    kube.objects[("Job", "crm", name)] = planted
    controller(kube).reconcile(KEY)
    crm = next(s for s in status(kube)["stores"] if s["namespace"] == "crm")
    assert (crm["phase"], crm["reason"]) == ("Failed", "ChildNotOurs")
    assert kube.objects[("Job", "crm", name)] == planted


def test_no_identifier_secret_no_job_and_overdue_after_the_deadline(kube: FakeKube) -> None:
    del kube.objects[("Secret", "privacy", "case-4711-identifier")]
    controller(kube, now=T0 + timedelta(days=10)).reconcile(KEY)
    assert not jobs(kube)
    reasons = {c["type"]: c["reason"] for c in status(kube)["conditions"]}
    assert reasons == {"Complete": "IdentifierSecretMissing", "DeadlineMet": "Overdue"}
    events = [o for (k, _, _), o in kube.objects.items() if k == "Event"]
    assert any(e["reason"] == "Overdue" and e["type"] == "Warning" for e in events)


def test_deleting_the_request_deletes_its_jobs_in_other_namespaces(kube: FakeKube) -> None:
    controller(kube).reconcile(KEY)
    assert any(ns == "crm" for ns, _ in jobs(kube))
    kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["deletionTimestamp"] = "2026-01-12T0Z"
    controller(kube).reconcile(KEY)
    assert not [k for k in jobs(kube) if k[0] == "crm"]
    assert FINALIZER not in kube.objects[("DataSubjectRequest", *KEY)]["metadata"]["finalizers"]


def test_status_names_the_secrets_a_reader_opens_which_exist_and_readers_may_get(
    kube: FakeKube,
) -> None:
    # Readers may get the key and the exports but not list Secrets: without their names in
    # status they could not find them.
    controller(kube).reconcile(KEY)
    written = status(kube)
    named = {written["keySecret"]} | {s["exportSecret"] for s in written["stores"]}
    assert len(named) == 3
    for name in named:
        assert ("Secret", "privacy", name) in kube.objects
    roles = [o for (k, ns, _), o in kube.objects.items() if k == "Role" and ns == "privacy"
             and "dsr-readers" in o["metadata"]["name"]]
    allowed = {n for role in roles for rule in role["rules"] for n in rule.get("resourceNames", [])}
    assert named <= allowed


def test_a_request_being_answered_posts_no_warning(kube: FakeKube) -> None:
    controller(kube).reconcile(KEY)
    events = [o for (k, _, _), o in kube.objects.items() if k == "Event"]
    assert events, "a new request's conditions are announced"
    assert {e["reason"]: e["type"] for e in events}.get("InProgress") == "Normal"
    assert all(e["type"] == "Normal" for e in events), [(e["reason"], e["type"]) for e in events]


def test_a_run_answered_before_the_store_moved_still_counts(kube: FakeKube) -> None:
    """A store's Job that ran (logging in where the store named when it was made) and then
    the store's spec.database edited: its answer is the request's answer for that store,
    not a Job "not made by the operator for this request" (ChildNotOurs, the request stuck
    until someone deletes it)."""
    controller(kube).reconcile(KEY)
    for (namespace, name), _job in jobs(kube).items():
        finish(kube, str(namespace), name,
               {"outcome": "Succeeded", "rowsFound": 2, "rowsExported": 2,
                "tables": [{"table": "support_inquiries", "rowsFound": 2, "rowsExported": 2}]})
    store = kube.objects[("PersonalDataStore", "privacy", "tickets")]
    store["spec"]["database"]["host"] = "moved.example.internal"
    controller(kube).reconcile(KEY)
    done = status(kube)
    unanswered = [(s["name"], s.get("reason")) for s in done["stores"] if s["phase"] != "Succeeded"]
    assert unanswered == []
    assert done["phase"] == "Succeeded", done


class FlakyEvidence(Evidence):
    """An evidence log whose first `failures` appends fail (the database down)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def append(self, kind: str, subject: str, payload: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("evidence database down")
        super().append(kind, subject, payload)


def test_an_answer_whose_record_failed_is_recorded_on_a_later_pass(kube: FakeKube) -> None:
    # Red on the old code: the terminal phase was written before the append, and a failed
    # append was only logged; the next pass saw the phase unchanged and never appended again.
    evidence = FlakyEvidence(failures=1)
    controller(kube, evidence=evidence).reconcile(KEY)
    for (namespace, name), _job in jobs(kube).items():
        finish(kube, str(namespace), name,
               {"outcome": "Succeeded", "rowsFound": 1, "rowsExported": 1,
                "tables": [{"table": "support_inquiries", "rowsFound": 1, "rowsExported": 1}]})
    first = controller(kube, evidence=evidence).reconcile_logged(KEY)
    assert not first.ok and evidence.records == []
    assert status(kube)["phase"] == "Running"  # not answered until the answer is on record
    controller(kube, T0 + timedelta(minutes=1), evidence=evidence).reconcile(KEY)
    assert [r[0] for r in evidence.records] == ["request.answered"]
    assert status(kube)["phase"] == "Succeeded"
    assert status(kube)["completionTime"] == "2026-01-11T08:01:00Z"
    controller(kube, T0 + timedelta(minutes=2), evidence=evidence).reconcile(KEY)
    assert len(evidence.records) == 1
