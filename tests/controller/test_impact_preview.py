"""The impact preview through the reconciler, on an in-memory API: one dry-run Job per store
and pending generation, its result in the store's and the policy's status, and the gate.

Against careless versions: a Job per pass (or per resync), a Job someone else created taken
as ours, a failed or missing preview counted as "nothing to purge", a revision that takes
effect at its date whatever the counts.
"""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.settings import RenderSettings
from dataward.validation import crd_schema, to_json_schema
from tests.controller.fake_kube import FakeKube
from tests.controller.test_policy_revisions import POLICY, cluster, policy_condition, policy_object
from tests.controller.test_reconcile import KEY, T0

JOB = "dataward-support-inquiries-preview-g4"
TAKES_EFFECT = T0.replace(year=2026, month=2, day=10)


def following_the_category() -> FakeKube:
    """The sample store without a retention of its own (1y, the category's), so a cut of the
    category to 3 months changes what its purge deletes."""
    kube = cluster()
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    del store["spec"]["retention"]
    return kube


def revise(kube: FakeKube) -> None:
    policy = copy.deepcopy(policy_object(kube))
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = "3mo"
    policy["spec"].update(announced="2026-01-10", effectiveDate="2026-02-10")
    policy["metadata"]["generation"] += 1
    kube._store(policy)


def jobs(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (k, _, _), o in kube.objects.items() if k == "Job"]


def finish(kube: FakeKube, record: dict[str, Any] | None, outcome: str = "Complete") -> None:
    """What the Job controller and a kubelet leave: the Job finished, its pod (made from the
    Job's template) and the pod's message."""
    job = kube.objects[("Job", "crm", JOB)]
    job["status"] = {"conditions": [{"type": outcome, "status": "True"}]}
    kube._store(job)  # a new resourceVersion, as the API gives every change
    terminated = {"exitCode": 0}
    if record is not None:
        terminated["message"] = json.dumps(record)
    kube._store({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{JOB}-x", "namespace": "crm",
                     "labels": {"batch.kubernetes.io/job-name": JOB},
                     "ownerReferences": [{"kind": "Job", "uid": job["metadata"]["uid"]}],
                     "creationTimestamp": "2026-01-10T00:00:00Z"},
        "spec": copy.deepcopy((job.get("spec") or {}).get("template", {}).get("spec", {})),
        "status": {"containerStatuses": [{"name": "purge",
                                          "state": {"terminated": terminated}}]},
    })


def counted(rows: int, large: bool = False) -> dict[str, Any]:
    return {"result": "Succeeded", "dryRun": True, "serverTime": "2026-01-10T00:00:00Z",
            "message": "dry run", "tables": [
                {"table": "public.support_inquiries", "rowsDeleted": rows, "rowsArchived": 0,
                 "archiveRowsDestroyed": 0, "rowsNoConsent": 0, "largeCut": large}]}


def setup() -> tuple[FakeKube, Reconciler]:
    kube = following_the_category()
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    reconciler.reconcile_policy(POLICY, now=T0)
    reconciler.reconcile(KEY, now=T0)
    assert jobs(kube) == []  # nothing pending: nothing to count
    revise(kube)
    reconciler.reconcile_policy(POLICY, now=T0)
    return kube, reconciler


def test_one_preview_job_per_store_and_pending_generation() -> None:
    kube, reconciler = setup()
    for minutes in range(3):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    (job,) = jobs(kube)
    assert job["metadata"]["name"] == JOB
    assert job["metadata"]["ownerReferences"][0]["kind"] == "PersonalDataStore"
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["purge", "--store", "crm/support-inquiries"]
    assert args[3] == "--connection-pin"
    assert args[5:] == ["--dry-run", "--pending-generation", "4"]
    assert job["spec"]["backoffLimit"] == 0
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    assert store["status"]["impactPreview"]["state"] == "Waiting"


def test_counts_reach_the_policy_and_a_small_cut_takes_effect_at_its_date() -> None:
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, counted(42))
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile_policy(POLICY, now=T0)
    pending = policy_object(kube)["status"]["revisions"]["pending"]
    preview = pending["impact"][0]["preview"]
    assert preview["state"] == "Counted" and preview["rowsDeleted"] == 42
    assert preview["tables"][0]["rowsDeleted"] == 42 and preview["largeCut"] is False
    # The Waiting state's message does not survive into the counted one (a merge patch would
    # keep it).
    assert "message" not in preview and "reason" not in preview
    assert pending["impactVerdict"] == "Small"
    reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
    assert policy_condition(kube) == ("True", "Current")


def test_a_large_cut_is_held_until_the_policy_carries_the_token() -> None:
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, counted(5000, large=True))
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile_policy(POLICY, now=T0)
    assert reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT) is None  # waits for an event
    assert policy_condition(kube) == ("False", "ImpactNotAcknowledged")
    pending = policy_object(kube)["status"]["revisions"]["pending"]
    assert pending["held"] == "LargeCut" and pending["impactVerdict"] == "LargeCut"
    # The store is still judged by the revision in force.
    reconciler.reconcile(KEY, now=TAKES_EFFECT)
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    assert store["status"]["impactPreview"]["largeCut"] is True
    policy = policy_object(kube)
    policy["metadata"]["annotations"] = {
        "dataward.io/acknowledge-large-purge": pending["acknowledgeToken"]}
    reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
    assert policy_condition(kube) == ("True", "Current")


def test_a_failed_or_silent_preview_is_unknown_not_small() -> None:
    for record, outcome in ((None, "Failed"),
                            ({"result": "Failed", "dryRun": True, "message": "no login"},
                             "Failed"),
                            ({**counted(1), "dryRun": False}, "Complete")):
        kube, reconciler = setup()
        reconciler.reconcile(KEY, now=T0)
        finish(kube, record, outcome)
        reconciler.reconcile(KEY, now=T0)
        reconciler.reconcile_policy(POLICY, now=T0)
        pending = policy_object(kube)["status"]["revisions"]["pending"]
        assert pending["impact"][0]["preview"]["state"] == "Failed"
        assert pending["impactVerdict"] == "Unknown"
        reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
        assert policy_condition(kube) == ("False", "ImpactUnknown")


def test_a_job_of_that_name_not_created_for_the_store_is_not_adopted() -> None:
    kube, reconciler = setup()
    kube._store({"apiVersion": "batch/v1", "kind": "Job",
                 "metadata": {"name": JOB, "namespace": "crm",
                              "labels": {"app.kubernetes.io/managed-by": "dataward",
                                         "dataward.io/store": "support-inquiries"}}})
    finish(kube, counted(0))
    reconciler.reconcile(KEY, now=T0)
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    assert store["status"]["impactPreview"]["state"] == "Failed"
    assert store["status"]["impactPreview"]["reason"] == "NotOwned"


def test_a_garbled_count_is_a_failed_preview_never_a_crash_nor_small() -> None:
    """The preview's record is its pod's termination message. Red on the old code: a count
    that is not an integer raised in every reconcile of the store (its status stood); a
    largeCut of another form ("true"), or a table that is not an object, was read as no
    large cut or no table, so the revision could go at its date as Small."""
    garbles: list[tuple[str, Any]] = [
        ("rowsDeleted", "GARBLE-7f3c"), ("rowsDeleted", -5), ("largeCut", "true"),
        ("largeCut", None), ("table", 7),
    ]  # fmt: skip
    for field, value in garbles:
        kube, reconciler = setup()
        reconciler.reconcile(KEY, now=T0)
        record = counted(5000, large=True)
        if value is None:
            del record["tables"][0][field]
        else:
            record["tables"][0][field] = value
        if field == "table":
            record["tables"].append("GARBLE-7f3c")  # and an entry that is not an object
        finish(kube, record)
        reconciler.reconcile(KEY, now=T0)  # does not raise
        store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
        preview = store["status"]["impactPreview"]
        assert (preview["state"], preview["reason"]) == ("Failed", "NoResultRecord"), field
        assert f"tables[0].{field}" in preview["message"] and "GARBLE" not in str(preview)
        reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
        assert policy_condition(kube) == ("False", "ImpactUnknown"), field


def test_a_failed_preview_with_a_reason_the_crd_would_refuse_keeps_the_fallback() -> None:
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, {"result": "Failed", "dryRun": True, "reason": "Garble" * 30}, "Failed")
    reconciler.reconcile(KEY, now=T0)
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    assert store["status"]["impactPreview"]["reason"] == "PreviewFailed"


def test_a_preview_job_forged_before_the_operator_makes_it_cannot_let_a_large_cut_pass() -> None:
    """Whoever may create Jobs writes the preview's name first, with the store's owner
    reference (its uid is readable) and a container that reports a small cut."""
    kube, reconciler = setup()
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    kube._store({"apiVersion": "batch/v1", "kind": "Job",
                 "metadata": {"name": JOB, "namespace": "crm",
                              "labels": {"app.kubernetes.io/managed-by": "dataward",
                                         "dataward.io/store": "support-inquiries"},
                              "ownerReferences": [{"apiVersion": "dataward.io/v1alpha1",
                                                   "kind": "PersonalDataStore",
                                                   "name": "support-inquiries",
                                                   "uid": store["metadata"]["uid"],
                                                   "controller": True}]},
                 "spec": {"backoffLimit": 0, "template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "purge", "image": "busybox",
                                     "command": ["true"]}]}}}})  # fmt: skip
    finish(kube, counted(3))
    reconciler.reconcile(KEY, now=T0)
    reconciler.reconcile_policy(POLICY, now=T0)
    preview = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]["status"][
        "impactPreview"
    ]
    assert (preview["state"], preview["reason"]) == ("Failed", "NotOwned")
    pending = policy_object(kube)["status"]["revisions"]["pending"]
    assert pending["impactVerdict"] == "Unknown"
    reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
    assert policy_condition(kube)[0] == "False", "the revision took effect on a forged count"


def test_an_unreadable_policy_leaves_the_stores_preview_as_it_was() -> None:
    """The policy unreadable (a 500, its read forbidden): whether a revision is pending, and
    what it counts, is unknown, not "none". Was: the store's counted preview was removed,
    and the policy's gate then saw Waiting for a store that had been counted."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, counted(42))
    reconciler.reconcile(KEY, now=T0)
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    counted_preview = copy.deepcopy(store["status"]["impactPreview"])
    assert counted_preview["state"] == "Counted"
    kube.fail_gets["PrivacyPolicy"] = 500
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    assert {c["type"]: c["status"] for c in store["status"]["conditions"]}["Ready"] != "True"
    assert store["status"].get("impactPreview") == counted_preview


def test_a_count_beyond_int64_is_a_failed_preview_never_a_refused_write() -> None:
    """The CRD types status.impactPreview's counts int64, and the API server refuses a larger
    one (422, on the e2e control plane's kube-apiserver), as the fake API does. Red first: on
    fb11cd4 a table's count of 2**63, or two tables' counts that add up beyond 2**63-1, were
    copied to status, whose write was refused on every pass (the store's old status stood)."""
    for counts in ([2**63], [2**62, 2**62]):
        kube, reconciler = setup()
        reconciler.reconcile(KEY, now=T0)
        record = counted(0, large=True)
        table = record["tables"][0]
        record["tables"] = [{**table, "table": f"public.t{i}", "rowsDeleted": n}
                            for i, n in enumerate(counts)]  # fmt: skip
        finish(kube, record)
        reconciler.reconcile(KEY, now=T0)  # does not raise
        store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
        preview = store["status"]["impactPreview"]
        assert (preview["state"], preview["reason"]) == ("Failed", "NoResultRecord"), counts
        assert "rowsDeleted" in preview["message"] and str(2**63) not in str(preview)
        reconciler.reconcile_policy(POLICY, now=TAKES_EFFECT)
        assert policy_condition(kube) == ("False", "ImpactUnknown"), counts
# --- a preview Job of an earlier render ---------------------------------------------------
# The operator made the preview Job; then it was upgraded (a new image) or a setting changed,
# so what it renders for the preview now is another Job. The Job it made is still the store's
# preview: recorded in status.impactPreview.runs when it made it.

NEXT = "ghcr.io/dataward/dataward:next"


def _upgraded(kube: FakeKube) -> Reconciler:
    return Reconciler(kube, ReconcileSettings(render=RenderSettings(image=NEXT)))  # type: ignore[arg-type]


def _preview(kube: FakeKube) -> dict[str, Any]:
    store = kube.objects[("PersonalDataStore", "crm", "support-inquiries")]
    return dict(store["status"]["impactPreview"])


def test_a_preview_job_running_at_an_upgrade_is_still_the_stores_preview() -> None:
    """Red first: on 0435349 the operator called its own Job "not this store's preview;
    delete it" (Failed, NotOwned) after the upgrade, and the revision's gate saw Unknown."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)  # makes the Job
    upgraded = _upgraded(kube)
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _preview(kube)["state"] == "Waiting"
    finish(kube, counted(42))
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=2))
    preview = _preview(kube)
    assert (preview["state"], preview["rowsDeleted"]) == ("Counted", 42)
    assert len(jobs(kube)) == 1
    # The CRD declares the record (a structural schema prunes what it does not declare).
    schema = crd_schema("PersonalDataStore")["properties"]["status"]["properties"]
    node = schema["impactPreview"]
    errors = list(Draft202012Validator(to_json_schema(node)).iter_errors(preview))
    assert errors == [] and set(preview) <= set(node["properties"]), errors
    assert set(preview["runs"]) == set(node["properties"]["runs"]["properties"]) == {"job", "pod"}
    upgraded.reconcile_policy(POLICY, now=T0 + timedelta(minutes=2))
    pending = policy_object(kube)["status"]["revisions"]["pending"]
    assert pending["impactVerdict"] == "Small"
    assert "runs" not in pending["impact"][0]["preview"]  # the store's record, not the policy's


def test_a_counted_preview_stays_counted_after_an_upgrade() -> None:
    """Red first: on 0435349 the counted preview became Failed, NotOwned at the upgrade."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, counted(42))
    reconciler.reconcile(KEY, now=T0)
    before = _preview(kube)
    _upgraded(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _preview(kube) == before


def test_a_preview_counted_by_a_version_that_recorded_no_render_stands_after_the_upgrade() -> None:
    """An earlier version counted the preview and recorded no render of its Job: the count it
    read from the Job it made stands. Red first: on 0435349 it became Failed, NotOwned."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    finish(kube, counted(42))
    reconciler.reconcile(KEY, now=T0)
    kube.objects[("PersonalDataStore", "crm", "support-inquiries")]["status"][
        "impactPreview"
    ].pop("runs", None)
    before = _preview(kube)
    assert before["state"] == "Counted"
    _upgraded(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _preview(kube) == before


def test_a_job_of_a_render_never_recorded_is_still_not_the_stores_preview() -> None:
    """An earlier version's Waiting preview records no render: a Job of another render that
    finishes after the upgrade cannot be told from a forged one, and is not counted (the
    message says to delete it; the operator then makes its own)."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    kube.objects[("PersonalDataStore", "crm", "support-inquiries")]["status"][
        "impactPreview"
    ].pop("runs", None)
    finish(kube, counted(3))
    _upgraded(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    preview = _preview(kube)
    assert (preview["state"], preview["reason"]) == ("Failed", "NotOwned")


def test_a_failed_read_of_the_jobs_keeps_the_record_of_the_preview_jobs_render() -> None:
    """The pass after the upgrade cannot list Jobs: its Waiting status must still carry the
    render on record, or the next pass calls the operator's own Job a stranger. Red first:
    on 2488df0 the record was dropped, and the counted Job became Failed, NotOwned."""
    kube, reconciler = setup()
    reconciler.reconcile(KEY, now=T0)
    upgraded = _upgraded(kube)
    kube.fail_lists["Job"] = 500
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _preview(kube)["state"] == "Waiting"
    del kube.fail_lists["Job"]
    finish(kube, counted(42))
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert (_preview(kube)["state"], _preview(kube).get("rowsDeleted")) == ("Counted", 42)


class _Stopped(BaseException):
    """The operator's process stopped (killed, its node gone) at this point."""


def test_a_preview_job_made_just_before_the_operator_stopped_is_still_its_own() -> None:
    """The operator stops right after it created the preview Job, before its status write;
    an upgrade comes up. The render must have been on record before the Job was created
    (intent first, as for the purge CronJob's renders and the requests' Jobs), or the new
    version calls the operator's own Job a stranger. Red first: on ab6fc26 the render was
    written after the create, never landed, and the upgraded operator said Failed, NotOwned
    ("delete it")."""
    kube, _ = setup()
    create = kube.create

    def create_then_stop(obj: Any) -> Any:
        made = create(obj)
        if obj["kind"] == "Job":
            raise _Stopped
        return made

    kube.create = create_then_stop  # type: ignore[method-assign]
    with pytest.raises(_Stopped):
        Reconciler(kube, ReconcileSettings()).reconcile(KEY, now=T0)  # type: ignore[arg-type]
    kube.create = create  # type: ignore[method-assign]
    (job,) = jobs(kube)
    upgraded = _upgraded(kube)
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert _preview(kube)["state"] == "Waiting", _preview(kube)
    finish(kube, counted(42))
    upgraded.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert (_preview(kube)["state"], _preview(kube).get("rowsDeleted")) == ("Counted", 42)
    assert [j["metadata"]["uid"] for j in jobs(kube)] == [job["metadata"]["uid"]]


def test_a_render_that_cannot_be_recorded_makes_no_preview_job() -> None:
    """Intent first: a status write that fails leaves no Job made, and the next pass makes
    it once the write goes through."""
    kube, _ = setup()
    reconciler = Reconciler(kube, ReconcileSettings())  # type: ignore[arg-type]
    kube.fail_patches = 500
    with contextlib.suppress(Exception):
        reconciler.reconcile(KEY, now=T0)
    assert jobs(kube) == []
    kube.fail_patches = None
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert len(jobs(kube)) == 1
    assert _preview(kube)["state"] == "Waiting" and "runs" in _preview(kube)
