"""Purge runs of a render the operator applied before the one it applies now.

A Job counts as the store's purge run only when it runs what the operator rendered for the
CronJob's Jobs (a forged Job with the CronJob's owner reference runs something else). When
the render changes (an operator upgrade: a new image; a settings change; `backoffLimit` 1 to
0), a Job of the earlier render still running, or finished and not yet recorded, is one of
the store's runs all the same: its rows are deleted. So the store's status records the
renders the operator applied to the CronJob (`status.purgeRenders`, the newest first, before
it applies a changed one), and a Job of any of them counts. Each test acts through the
reconciler's public `reconcile` on an in-memory API (the fakes of
tests/controller/test_purge_forgery.py).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from dataward.checks.purge_runs import expected_runs
from dataward.controller.kube import KubeError
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.settings import RenderSettings
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube, _caches, _relist
from tests.controller.test_evidence_records import Sink
from tests.controller.test_purge_forgery import (
    CRONJOB,
    _as_pod,
    _busybox,
    _busybox_pod,
    _cluster,
    _job,
    _message,
    _pod,
    _record,
    _template,
)
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster, status

NEXT = "ghcr.io/dataward/dataward:next"
STORE = ("PersonalDataStore", "crm", "support-inquiries")


def _reconcile(
    kube: FakeKube, minutes: int = 0, image: str | None = None, sink: Sink | None = None
) -> None:
    render = RenderSettings(image=image) if image else RenderSettings()
    settings = ReconcileSettings(render=render, evidence=sink)
    Reconciler(kube, settings).reconcile(KEY, now=T0 + timedelta(minutes=minutes))  # type: ignore[arg-type]


def _render(kube: FakeKube) -> dict[str, str]:
    """The render of the CronJob's Jobs in place, as status records it."""
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    job, pod = expected_runs(cronjob["spec"]["jobTemplate"]["spec"])
    return {"job": job, "pod": pod}


def _finished_run(kube: FakeKube, uid: str, name: str, rows: int, minute: int = 0) -> None:
    """A Job of the CronJob's template as it is now, Complete, whose pod deleted `rows`."""
    template = _template(kube)
    job = _job(kube, name, uid, template, "Complete", minute=minute)
    kube.objects[("Job", "crm", name)]["status"]["succeeded"] = 1
    _pod(kube, f"{name}-x1", job, _as_pod(template), {"purge": _record("Succeeded", rows)}, minute)


def test_a_run_of_the_render_before_an_upgrade_is_recorded_with_its_rows() -> None:
    """The CronJob started a run with the old image; it finished, and the operator was
    upgraded before it read it. Red first: on f2d3a34 the run was not counted (only named in
    PurgeSucceeded), and its 42 deleted rows reached neither status.lastPurge nor the
    evidence log."""
    kube, uid = _cluster()
    _finished_run(kube, uid, "before-upgrade", 42)
    sink = Sink()
    _reconcile(kube, minutes=1, image=NEXT, sink=sink)
    last = status(kube)["lastPurge"]
    assert (last["jobName"], last["result"]) == ("before-upgrade", "Succeeded")
    assert last["rowsDeleted"] == 42
    (run,) = sink.of("purge.run")
    assert (run["jobName"], run["rowsDeleted"]) == ("before-upgrade", 42)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    assert "Not counted" not in _message(kube, "PurgeSucceeded")


def test_a_run_still_going_at_the_upgrade_is_recorded_when_it_finishes() -> None:
    """Red first: on f2d3a34 the run that ended after the upgrade was never recorded."""
    kube, uid = _cluster()
    template = _template(kube)
    running = _job(kube, "running", uid, template, "Complete", minute=0)
    kube.objects[("Job", "crm", "running")]["status"] = {"startTime": "2026-01-10T07:59:00Z",
                                                         "active": 1}  # fmt: skip
    _reconcile(kube, minutes=1, image=NEXT)
    assert "lastPurge" not in status(kube)
    kube.objects[("Job", "crm", "running")]["status"] = copy.deepcopy(running["status"])
    _pod(kube, "running-x1", running, _as_pod(template), {"purge": _record("Succeeded", 5)}, 0)
    sink = Sink()
    _reconcile(kube, minutes=2, image=NEXT, sink=sink)
    (run,) = sink.of("purge.run")
    assert (run["jobName"], run["rowsDeleted"]) == ("running", 5)
    assert status(kube)["lastPurge"]["rowsDeleted"] == 5


def test_the_new_render_is_recorded_before_the_changed_cronjob_is_applied() -> None:
    """Intent before act: a run of the new render may start as soon as the CronJob has it.
    Red first: on f2d3a34 status recorded no render."""
    kube, _ = _cluster()
    first = _render(kube)
    assert status(kube)["purgeRenders"] == [first]
    kube.calls.clear()
    _reconcile(kube, minutes=1, image=NEXT)
    writes = kube.writes()
    recorded = writes.index(("patch/status", *STORE[::2]))
    assert recorded < writes.index(("apply", "CronJob", CRONJOB)), writes
    assert status(kube)["purgeRenders"] == [_render(kube), first]
    # One status write: the pass's own status had nothing else to say.
    assert [w for w in writes if w[0] == "patch/status"] == [("patch/status", *STORE[::2])]


def _refuse_first_patch(kube: FakeKube, code: int, text: str) -> list[str]:
    """Make the next JSON patch (the render's record, written before the CronJob's apply)
    fail with `code`, the later ones go through; the list it fills says it was refused."""
    json_patch = kube.json_patch
    refused: list[str] = []

    def refuse_once(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if not refused:
            refused.append("status")
            raise KubeError(code, text, "patch")
        return json_patch(*args, **kwargs)

    kube.json_patch = refuse_once  # type: ignore[method-assign]
    return refused


def test_a_changed_cronjob_is_not_applied_when_its_render_cannot_be_recorded() -> None:
    """The status write before the apply fails: the CronJob stays as it is, the pass fails
    (the queue retries it), and the next pass records, then applies. Red first: on f2d3a34
    the CronJob was applied with no record of its render."""
    kube, _ = _cluster()
    before = copy.deepcopy(kube.objects[("CronJob", "crm", CRONJOB)]["spec"])
    _refuse_first_patch(kube, 500, "Internal Server Error")
    with pytest.raises(KubeError):
        _reconcile(kube, minutes=1, image=NEXT)
    assert not [w for w in kube.writes() if w[:2] == ("apply", "CronJob")]
    assert kube.objects[("CronJob", "crm", CRONJOB)]["spec"] == before
    _reconcile(kube, minutes=2, image=NEXT)
    assert status(kube)["purgeRenders"][0] == _render(kube)
    assert len(status(kube)["purgeRenders"]) == 2
    assert kube.objects[("CronJob", "crm", CRONJOB)]["spec"] != before


def test_a_cronjob_left_at_its_render_because_the_record_failed_says_so() -> None:
    """The write before the apply fails and the pass's own status write goes through: the
    CronJob was not changed because the operator chose not to, and nothing drifted. Red
    first: on 92ac47a PurgeScheduled said CronJobDrifted ("was edited ... restores it")."""
    kube, _ = _cluster()
    refused = _refuse_first_patch(kube, 503, "Service Unavailable")
    with pytest.raises(KubeError):
        _reconcile(kube, minutes=1, image=NEXT)
    assert refused and not [w for w in kube.writes() if w[:2] == ("apply", "CronJob")]
    assert conditions(kube)["PurgeScheduled"] == ("False", "CronJobRenderNotRecorded")
    message = _message(kube, "PurgeScheduled")
    assert CRONJOB in message and "HTTP 503" in message
    assert "could not be recorded" in message and "last render" in message
    assert "retries" in message and "edited" not in message
    _reconcile(kube, minutes=2, image=NEXT)
    assert conditions(kube)["PurgeScheduled"] == ("True", "Scheduled")


def test_steady_state_writes_nothing_before_and_after_an_upgrade() -> None:
    kube, _ = _cluster()
    kube.calls.clear()
    _reconcile(kube, minutes=5)
    assert kube.writes() == []
    _reconcile(kube, minutes=6, image=NEXT)
    kube.calls.clear()
    _reconcile(kube, minutes=7, image=NEXT)
    assert kube.writes() == []


def test_a_fresh_store_records_its_render_in_the_status_write_it_makes_anyway() -> None:
    """No write is added per new store. Red first: on f2d3a34 no render was recorded."""
    kube = sample_cluster(FakeKube())
    _reconcile(kube)
    assert status(kube)["purgeRenders"] == [_render(kube)]
    statuses = [w for w in kube.writes() if w[0] == "patch/status"]
    assert len(statuses) == 2, statuses  # the ring's record before the ring, and the status
    assert len(kube.writes()) == 11  # as on f2d3a34 (bench/RESULTS.md: 11 writes a store)


def test_a_forged_job_of_a_render_never_recorded_is_still_not_counted() -> None:
    """After an upgrade, a Job with the CronJob's owner reference that runs neither render
    (busybox; or the purge image with other arguments) is named, never read."""
    kube, uid = _cluster()
    _reconcile(kube, minutes=1, image=NEXT)
    forged = _job(kube, "forged", uid, _busybox(), "Complete", minute=10)
    _pod(kube, "forged-x1", forged, _busybox_pod(), {"purge": _record("Succeeded", 500)}, 10)
    other = _template(kube)
    other["template"]["spec"]["containers"][0]["args"] = ["purge", "--everything"]
    tampered = _job(kube, "tampered", uid, other, "Complete", minute=20)
    _pod(kube, "tampered-x1", tampered, _as_pod(other), {"purge": _record("Succeeded", 9)}, 20)
    _reconcile(kube, minutes=30, image=NEXT)
    assert "lastPurge" not in status(kube)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "NoRunYet")
    message = _message(kube, "PurgeSucceeded")
    assert "forged" in message and "tampered" in message


def test_a_cronjob_someone_edited_does_not_get_its_template_recorded() -> None:
    """Someone with CronJob rights changes its image; the CronJob starts a run of it before
    the operator repairs the CronJob. That run is not the operator's render: not counted,
    and the repair records nothing new (the operator's own render has not changed)."""
    kube, uid = _cluster()
    recorded = status(kube)["purgeRenders"]
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil"
    _finished_run(kube, uid, "edited", 11)
    _reconcile(kube, minutes=1)
    assert status(kube)["purgeRenders"] == recorded
    assert "lastPurge" not in status(kube)
    assert "edited" in _message(kube, "PurgeSucceeded")


def test_a_garbled_entry_beside_a_recorded_render_widens_nothing() -> None:
    """Red first: on f2d3a34 the recorded earlier render did not count either."""
    kube, uid = _cluster()
    first = _render(kube)
    _finished_run(kube, uid, "before-upgrade", 4, minute=0)
    forged = _job(kube, "forged", uid, _busybox(), "Complete", minute=30)
    _pod(kube, "forged-x1", forged, _busybox_pod(), {"purge": _record("Succeeded", 500)}, 30)
    forged_job, forged_pod = expected_runs(_busybox())
    kube.objects[STORE]["status"]["purgeRenders"] = [
        first,
        {"job": forged_job},  # no pod: garbled
        {"job": forged_job, "pod": 7},
        forged_job,
    ]
    _reconcile(kube, minutes=1, image=NEXT)
    assert status(kube)["lastPurge"]["jobName"] == "before-upgrade"
    assert status(kube)["lastPurge"]["rowsDeleted"] == 4
    assert "forged" in _message(kube, "PurgeSucceeded")
    assert {"job": forged_job, "pod": forged_pod} not in status(kube)["purgeRenders"]


def test_only_the_last_three_renders_count() -> None:
    """The record is bounded: a Job of a render three changes old is no longer counted."""
    kube, uid = _cluster()
    template = _template(kube)
    for minute, image in enumerate(["ghcr.io/x:2", "ghcr.io/x:3", "ghcr.io/x:4"], start=1):
        _reconcile(kube, minutes=minute, image=image)
    assert len(status(kube)["purgeRenders"]) == 3
    old = _job(kube, "oldest", uid, template, "Complete", minute=0)
    _pod(kube, "oldest-x1", old, _as_pod(template), {"purge": _record("Succeeded", 1)}, 0)
    _reconcile(kube, minutes=10, image="ghcr.io/x:4")
    assert "lastPurge" not in status(kube)
    assert "oldest" in _message(kube, "PurgeSucceeded")


def test_a_run_before_an_upgrade_counts_through_the_caches() -> None:
    """The caches keep a Job's and pod's spec as the digest of what it runs."""
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    Reconciler(kube, ReconcileSettings(), (), caches).reconcile(KEY, now=T0)  # type: ignore[arg-type]
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    _finished_run(kube, uid, "before-upgrade", 42)
    _relist(caches)
    settings = ReconcileSettings(render=RenderSettings(image=NEXT))
    reconciler = Reconciler(kube, settings, (), caches)  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert status(kube)["lastPurge"]["rowsDeleted"] == 42
    _relist(caches)
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []


# --- the upgrade to the version that records renders -------------------------------------
# A store an earlier version reconciled has no status.purgeRenders: the render of its
# CronJob, which the earlier version applied, is on record nowhere but in the CronJob.


def _as_an_earlier_version_left_it(kube: FakeKube) -> dict[str, str]:
    """No render on record, as before status.purgeRenders; the CronJob's render (the old)."""
    del kube.objects[STORE]["status"]["purgeRenders"]
    return _render(kube)


def test_a_run_of_the_cronjob_an_earlier_version_rendered_counts_after_the_upgrade() -> None:
    """The old CronJob started a run before the upgrade; it finished and nobody read it. The
    new operator changes the CronJob: its render is recorded first, with the old one beside
    it, so the run is the store's and its rows reach lastPurge and the evidence log. Red
    first: on fb11cd4 the run was never counted (status recorded only the new render)."""
    kube, uid = _cluster()
    old = _as_an_earlier_version_left_it(kube)
    _finished_run(kube, uid, "before-upgrade", 42)
    kube.calls.clear()
    sink = Sink()
    _reconcile(kube, minutes=1, image=NEXT, sink=sink)
    new = _render(kube)
    assert new != old
    writes = kube.writes()
    assert writes.index(("patch/status", *STORE[::2])) < writes.index(("apply", "CronJob", CRONJOB))
    assert status(kube)["purgeRenders"] == [new, old]
    last = status(kube)["lastPurge"]
    assert (last["jobName"], last["rowsDeleted"]) == ("before-upgrade", 42)
    (run,) = sink.of("purge.run")
    assert (run["jobName"], run["rowsDeleted"]) == ("before-upgrade", 42)


def test_a_run_still_going_at_the_upgrade_to_recorded_renders_counts_when_it_ends() -> None:
    """Red first: on fb11cd4 the run that ended after the upgrade was never recorded."""
    kube, uid = _cluster()
    _as_an_earlier_version_left_it(kube)
    template = _template(kube)
    running = _job(kube, "running", uid, template, "Complete", minute=0)
    kube.objects[("Job", "crm", "running")]["status"] = {"startTime": "2026-01-10T07:59:00Z",
                                                         "active": 1}  # fmt: skip
    _reconcile(kube, minutes=1, image=NEXT)
    kube.objects[("Job", "crm", "running")]["status"] = copy.deepcopy(running["status"])
    _pod(kube, "running-x1", running, _as_pod(template), {"purge": _record("Succeeded", 5)}, 0)
    _reconcile(kube, minutes=2, image=NEXT)
    assert status(kube)["lastPurge"]["rowsDeleted"] == 5


def test_the_upgrade_to_recorded_renders_through_the_caches() -> None:
    """The caches keep a CronJob's job template as a digest only: the operator reads the
    CronJob itself to learn its render, once, before it changes it. Red first: on fb11cd4
    the run was never counted."""
    kube = sample_cluster(ListingKube())
    caches = _caches(kube)
    _relist(caches)
    Reconciler(kube, ReconcileSettings(), (), caches).reconcile(KEY, now=T0)  # type: ignore[arg-type]
    old = _as_an_earlier_version_left_it(kube)
    uid = kube.objects[("CronJob", "crm", CRONJOB)]["metadata"]["uid"]
    _finished_run(kube, uid, "before-upgrade", 42)
    _relist(caches)
    settings = ReconcileSettings(render=RenderSettings(image=NEXT))
    reconciler = Reconciler(kube, settings, (), caches)  # type: ignore[arg-type]
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert status(kube)["purgeRenders"] == [_render(kube), old]
    assert status(kube)["lastPurge"]["rowsDeleted"] == 42
    _relist(caches)
    kube.calls.clear()
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=2))
    assert kube.writes() == []
    assert ("get", "CronJob", CRONJOB) not in kube.calls  # read once, at the upgrade


def test_an_upgrade_that_finds_the_policy_unreadable_still_records_the_old_render() -> None:
    """The first pass after the upgrade cannot read the policy, so it leaves the CronJob as
    it is; the pass that changes it records the old render with the new. Red first: on
    fb11cd4 the first pass recorded the new render alone, and the run was never counted."""
    kube, uid = _cluster()
    old = _as_an_earlier_version_left_it(kube)
    _finished_run(kube, uid, "before-upgrade", 42)
    kube.fail_gets["PrivacyPolicy"] = 500
    _reconcile(kube, minutes=1, image=NEXT)
    assert conditions(kube)["PurgeScheduled"] == ("Unknown", "PolicyUnreadable")
    assert _render(kube) == old  # left as it is
    del kube.fail_gets["PrivacyPolicy"]
    _reconcile(kube, minutes=2, image=NEXT)
    assert status(kube)["purgeRenders"] == [_render(kube), old]
    assert status(kube)["lastPurge"]["rowsDeleted"] == 42


def test_a_cronjob_the_operator_cannot_prove_it_made_gets_no_render_recorded() -> None:
    """No render on record, and the CronJob of the store's name lacks the store's controller
    owner reference (deleted and made again by someone else): it is foreign, left alone, and
    what it runs is never recorded nor counted, whatever its Jobs say."""
    kube, uid = _cluster()
    _as_an_earlier_version_left_it(kube)
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    cronjob["metadata"]["ownerReferences"][0]["controller"] = False
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil"
    _finished_run(kube, uid, "theirs", 500)
    _reconcile(kube, minutes=1, image=NEXT)
    evil = _render(kube)
    assert evil not in status(kube).get("purgeRenders", [])
    assert "lastPurge" not in status(kube)
    assert conditions(kube)["PurgeScheduled"][1] == "ChildNotCreatedByOperator"
