"""A request's Job is judged by what the operator rendered for it, as status records it.

The operator records, per store, a digest of the Job it renders (and of that Job's pods) in
the request's status before it creates the Job. A Job counts when it runs the render of this
pass or the render recorded for its store, and (in the request's namespace) has the request
as its controller: an edit of the store or an operator upgrade while the Job exists leaves
it the request's run, and a Job someone else made with another render, whatever its
annotations say, is never counted.
"""

from __future__ import annotations

import copy
import json
from typing import Any, cast

from jsonschema import Draft202012Validator

from dataward.controller.kube import Kube, KubeError
from dataward.controller.subjects import SubjectRequests, SubjectSettings
from dataward.render.settings import RenderSettings
from dataward.validation import crd_schema, to_json_schema
from tests.controller.fake_kube import FakeKube
from tests.controller.test_subjects import (
    KEY,
    PUBLIC,
    T0,
    controller,
    finish,
    jobs,
    kube,
    status,
)

__all__ = ["kube"]  # the fixture

SUCCEEDED = {"outcome": "Succeeded", "rowsFound": 3, "rowsDeleted": 3}


def _erasure(kube: FakeKube) -> None:
    raw = kube.objects[("DataSubjectRequest", *KEY)]
    raw["spec"]["type"] = "erasure"
    raw["spec"].pop("readers", None)


def _entry(kube: FakeKube, namespace: str) -> dict[str, Any]:
    return next(s for s in status(kube)["stores"] if s["namespace"] == namespace)


def _job(kube: FakeKube, namespace: str) -> str:
    (name,) = [n for ns, n in jobs(kube) if ns == namespace]
    return name


def _rename_credentials(kube: FakeKube) -> None:
    """Both stores' owners point spec.database at another credentials Secret."""
    for namespace, name in (("privacy", "tickets"), ("crm", "orders")):
        store = kube.objects[("PersonalDataStore", namespace, name)]
        store["spec"]["database"]["credentialsSecret"] = "crm-postgres-purger-2"


def _args(job: dict[str, Any]) -> list[str]:
    return list(job["spec"]["template"]["spec"]["containers"][0]["args"])


def test_a_store_edit_while_its_job_runs_leaves_the_job_the_requests_run(kube: FakeKube) -> None:
    # Red on the annotation's pin swap: the Job mounts the Secret named when it was made, the
    # render now another, so the operator called its own Job "not ours" (ChildNotOurs).
    _erasure(kube)
    controller(kube).reconcile(KEY)
    made = dict(jobs(kube))
    _rename_credentials(kube)
    controller(kube).reconcile(KEY)
    for namespace in ("privacy", "crm"):
        entry = _entry(kube, namespace)
        assert (entry["phase"], entry["reason"]) == ("Running", "JobRunning"), entry
        assert "Not counted" not in entry.get("message", ""), entry
    for namespace, name in made:
        finish(kube, str(namespace), name, SUCCEEDED)
    controller(kube).reconcile(KEY)
    done = status(kube)
    assert done["phase"] == "Succeeded", done
    assert done["result"]["rowsDeleted"] == 6
    assert set(jobs(kube)) == set(made), "no second run"
    mounted = {v["secret"]["secretName"] for job in jobs(kube).values()
               for v in job["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert "crm-postgres-purger-2" not in mounted, "the runs are the ones made before the edit"


def test_an_operator_upgrade_while_the_job_runs_leaves_the_job_the_requests_run(
    kube: FakeKube,
) -> None:
    _erasure(kube)
    controller(kube).reconcile(KEY)
    made = dict(jobs(kube))
    for namespace, name in made:
        finish(kube, str(namespace), name, SUCCEEDED)
    settings = SubjectSettings(clock=lambda: T0, render=RenderSettings(image="dataward:next"))
    SubjectRequests(cast(Kube, kube), settings).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded", status(kube)
    assert set(jobs(kube)) == set(made)


def test_a_forged_job_pinned_to_another_connection_is_not_counted(kube: FakeKube) -> None:
    # Red on the annotation's pin swap: whoever creates the Job writes the annotation, so a
    # Job rendered for any other pin, with that pin annotated, was counted as the run.
    _erasure(kube)
    controller(kube).reconcile(KEY)
    real = _job(kube, "crm")
    forged = copy.deepcopy(kube.objects[("Job", "crm", real)])
    forged["metadata"] = {k: v for k, v in forged["metadata"].items() if k != "uid"}
    forged["metadata"]["name"] = "forged-pin"
    forged["metadata"]["annotations"]["dataward.io/connection-pin"] = "forged"
    args = forged["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index("--connection-pin") + 1] = "forged"
    forged.pop("status", None)
    kube._store(forged)
    finish(kube, "crm", "forged-pin", SUCCEEDED)
    controller(kube).reconcile(KEY)
    crm = _entry(kube, "crm")
    assert (crm["phase"], crm["jobName"]) == ("Running", real), crm
    assert "Not counted as this request's runs: forged-pin" in crm["message"], crm
    assert status(kube)["phase"] != "Succeeded"


def test_a_job_running_the_recorded_render_without_the_requests_controller_is_not_a_run(
    kube: FakeKube,
) -> None:
    # The ownership rule is unchanged: in the request's namespace a Job is the request's only
    # with its controller reference, whatever render it runs (the recorded one here).
    _erasure(kube)
    controller(kube).reconcile(KEY)
    own = _job(kube, "privacy")
    copied = copy.deepcopy(kube.objects[("Job", "privacy", own)])
    copied["metadata"] = {k: v for k, v in copied["metadata"].items()
                          if k not in ("uid", "ownerReferences")}
    copied["metadata"]["name"] = "copy-no-owner"
    copied.pop("status", None)
    kube._store(copied)
    finish(kube, "privacy", "copy-no-owner", SUCCEEDED)
    _rename_credentials(kube)  # the copy now runs the recorded render only
    controller(kube).reconcile(KEY)
    entry = _entry(kube, "privacy")
    assert (entry["phase"], entry["reason"], entry["jobName"]) == (
        "Running", "JobRunning", own), entry
    assert "copy-no-owner" in entry["message"]
    assert status(kube)["phase"] != "Succeeded"


def test_the_render_is_recorded_before_the_job_is_created(kube: FakeKube) -> None:
    # Intent first: the operator stopping between the two leaves a record and no Job. The
    # next pass records the render it will create before creating it (the store changed).
    _erasure(kube)
    real_create = kube.create

    def create(obj: dict[str, Any]) -> Any:
        if obj["kind"] == "Job":
            raise KubeError(503, "Service Unavailable", "create Job")
        return real_create(obj)

    kube.create = create  # type: ignore[method-assign]
    assert not controller(kube).reconcile_logged(KEY).ok
    assert not jobs(kube)
    first = copy.deepcopy(status(kube)["runs"])
    assert {(r["namespace"], r["store"]) for r in first} == {
        ("privacy", "tickets"), ("crm", "orders")}
    kube.create = real_create  # type: ignore[method-assign]
    _rename_credentials(kube)
    kube.calls.clear()
    controller(kube).reconcile(KEY)
    writes = [(verb, kind) for verb, kind, _ in kube.writes()]
    first_job = writes.index(("create", "Job"))
    assert ("patch/status", "DataSubjectRequest") in writes[:first_job], writes
    second = status(kube)["runs"]
    assert second != first, "the render changed, and was recorded again"
    assert all(set(r) == {"namespace", "store", "job", "pod"} for r in second), second
    for namespace in ("privacy", "crm"):
        name = _job(kube, namespace)
        finish(kube, namespace, name, SUCCEEDED)
    controller(kube).reconcile(KEY)
    assert status(kube)["phase"] == "Succeeded", status(kube)


def test_the_record_is_digests_the_crd_admits_and_the_steady_state_writes_nothing(
    kube: FakeKube,
) -> None:
    controller(kube).reconcile(KEY)
    written = status(kube)
    schema = crd_schema("DataSubjectRequest")["properties"]["status"]
    errors = list(Draft202012Validator(to_json_schema(schema)).iter_errors(written))
    assert errors == [], errors
    # A structural schema prunes what it does not declare: every recorded field is declared.
    assert set(written) <= set(schema["properties"])
    item = schema["properties"]["runs"]["items"]
    assert "description" in schema["properties"]["runs"] and "description" in item
    assert all(set(r) <= set(item["properties"]) for r in written["runs"])
    text = json.dumps(written["runs"])
    # The public key by its base64 line: JSON text escapes the PEM's line breaks.
    for secret in ("crm-postgres-purger", "case-4711-identifier", PUBLIC.splitlines()[1],
                   "archive-writer"):  # fmt: skip
        assert secret not in text
    for job in jobs(kube).values():
        assert "--connection-pin" in _args(job), "the Job still refuses another connection"
    controller(kube).reconcile(KEY)
    before = len([w for w in kube.writes() if w[1] != "Event"])
    controller(kube).reconcile(KEY)
    assert len([w for w in kube.writes() if w[1] != "Event"]) == before


def test_a_garbled_record_records_nothing_and_a_job_of_neither_render_is_not_a_run() -> None:
    from dataward.checks.subjects import recorded_renders, renders_status, run_render

    status_ = {"runs": [
        {"namespace": "crm", "store": "orders", "job": "sha256:j1", "pod": "sha256:p1"},
        {"namespace": "crm", "store": "other", "job": "sha256:j2"},  # no pod digest
        {"namespace": "crm", "store": "third", "job": 7, "pod": "sha256:p3"},
        "not an entry",
    ]}  # fmt: skip
    renders = recorded_renders(status_)
    assert renders == {("crm", "orders"): ("sha256:j1", "sha256:p1")}
    assert renders_status(renders) == [status_["runs"][0]]
    assert recorded_renders(None) == {} and recorded_renders({"runs": None}) == {}
    current, recorded = ("sha256:j0", "sha256:p0"), ("sha256:j1", "sha256:p1")
    assert run_render("sha256:j0", current, recorded) == ("sha256:j0", "sha256:p0")
    assert run_render("sha256:j1", current, recorded) == ("sha256:j1", "sha256:p1")
    assert run_render("sha256:j9", current, recorded) is None
    assert run_render("sha256:j1", current, None) is None
    assert run_render(None, current, current) is None, "unknown is not ours"


def test_a_store_edit_is_judged_the_same_through_the_caches(kube: FakeKube) -> None:
    # The caches keep a digest of what a Job and a pod run; status.runs holds the same digests.
    from tests.controller.test_subject_forgery import _crm_entry_through_caches, _listed

    _erasure(kube)
    controller(kube).reconcile(KEY)
    real = _job(kube, "crm")
    finish(kube, "crm", real, SUCCEEDED)
    store = kube.objects[("PersonalDataStore", "crm", "orders")]
    store["spec"]["database"]["credentialsSecret"] = "crm-postgres-purger-2"
    crm = _crm_entry_through_caches(*_listed(kube))
    assert (crm["phase"], crm["jobName"], crm["rowsDeleted"]) == ("Succeeded", real, 3), crm
