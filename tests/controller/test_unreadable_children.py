"""A child the operator could not read never leaves its control True (Unknown is not absent).

Adversarial: a ServiceAccount someone else made under the purge ServiceAccount's name makes
AccessRestricted False (not the store's). When the next read of it fails (its cache's watch
broke, or a narrowed Role answers 403), the old code judged access from RBAC alone and said
True, with Ready True, while that ServiceAccount was still there. An unreadable CronJob left
PurgeSucceeded True from the recorded run, though a newer run had failed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.checks.purge_runs import SCHEDULED_ANNOTATION
from dataward.render import names_for
from tests.controller.fake_kube import FakeKube
from tests.controller.test_cache import ListingKube, _caches, _reconciler, _relist
from tests.controller.test_purge_forgery import (
    CRONJOB,
    _as_pod,
    _cluster,
    _job,
    _pod,
    _reconcile,
    _record,
    _template,
)
from tests.controller.test_reconcile import KEY, T0, conditions, reconciler, sample_cluster


def _planted(kube: FakeKube) -> str:
    name = names_for(KEY[1]).purge
    kube._store({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": name, "namespace": KEY[0]}})  # fmt: skip
    return name


def test_a_foreign_service_account_unreadable_from_its_cache_is_not_restricted() -> None:
    kube = sample_cluster(ListingKube())
    _planted(kube)
    caches = _caches(kube)
    _relist(caches)
    served = _reconciler(kube, caches)
    served.reconcile(KEY, now=T0)
    _relist(caches)
    assert conditions(kube)["AccessRestricted"] == ("False", "ChildNotCreatedByOperator")
    caches.informers[("ServiceAccount", None)]._fail("HTTP 500 (watch failed)")
    served.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["AccessRestricted"] == ("Unknown", "ChildUnreadable")
    assert conditions(kube)["Ready"][0] == "Unknown"


def test_a_service_account_the_operator_may_not_read_is_not_restricted() -> None:
    kube = sample_cluster(FakeKube())
    _planted(kube)
    reconciler(kube).reconcile(KEY, now=T0)
    kube.fail_gets["ServiceAccount"] = 403
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["AccessRestricted"] == ("Unknown", "ChildUnreadable")
    assert conditions(kube)["Ready"][0] != "True"


def test_an_unreadable_role_of_its_own_is_not_restricted_either() -> None:
    kube = sample_cluster(FakeKube())
    reconciler(kube).reconcile(KEY, now=T0)
    assert conditions(kube)["AccessRestricted"][0] == "True"
    kube.fail_gets["Role"] = 500
    reconciler(kube).reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["AccessRestricted"] == ("Unknown", "ChildUnreadable")


def test_a_false_verdict_stays_false_when_another_child_is_unreadable() -> None:
    kube = sample_cluster(FakeKube())
    _planted(kube)  # foreign: False
    kube.fail_gets["Role"] = 500  # and a Role unreadable: still False, not Unknown
    reconciler(kube).reconcile(KEY, now=T0)
    assert conditions(kube)["AccessRestricted"] == ("False", "ChildNotCreatedByOperator")


def test_an_unreadable_cronjob_does_not_keep_the_recorded_run_succeeded() -> None:
    kube, uid = _cluster()
    template = _template(kube)
    done = _job(kube, "run-1", uid, template, "Complete", minute=0)
    _pod(kube, "run-1-x", done, _as_pod(template), {"purge": _record("Succeeded", 7)}, 0)
    _reconcile(kube, minutes=1)
    assert conditions(kube)["PurgeSucceeded"][0] == "True"
    failed = _job(kube, "run-2", uid, template, "Failed", minute=30)
    _pod(kube, "run-2-x", failed, _as_pod(template),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 30)  # fmt: skip
    kube.fail_gets["CronJob"] = 403  # only the CronJob: its Jobs could be listed
    _reconcile(kube, minutes=2)
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")
    del kube.fail_gets["CronJob"]
    _reconcile(kube, minutes=3)
    assert conditions(kube)["PurgeSucceeded"] == ("False", "DatabaseUnreachable")


def _scheduled_run(kube: FakeKube, uid: str, template: dict[str, Any], outcome: str,
                   minute: int) -> dict[str, Any]:  # fmt: skip
    """A run as the CronJob controller makes it: named `<cronjob>-<minutes since the epoch>`
    and annotated with its scheduled time, which the CronJob records as lastScheduleTime."""
    at = datetime(2026, 1, 10, 7, minute, tzinfo=UTC)
    name = f"{CRONJOB}-{int(at.timestamp()) // 60}"
    job = _job(kube, name, uid, template, outcome, minute=minute)
    job["metadata"]["annotations"] = {SCHEDULED_ANNOTATION: at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    kube._store(job)
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    cronjob.setdefault("status", {})["lastScheduleTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return job


def _one_run_succeeded() -> tuple[FakeKube, str, dict[str, Any], str]:
    """The sample store whose CronJob ran once (07:00), successfully, counted at 08:05: the
    cluster, the CronJob's uid, the Jobs' template and that run's Job name."""
    kube, uid = _cluster()
    template = _template(kube)
    done = _scheduled_run(kube, uid, template, "Complete", minute=0)
    name = done["metadata"]["name"]
    _pod(kube, f"{name}-x", done, _as_pod(template), {"purge": _record("Succeeded", 7)}, 0)
    _reconcile(kube, minutes=5)
    return kube, uid, template, name


def test_a_failed_run_hidden_by_removing_its_label_is_not_a_success() -> None:
    kube, uid, template, _ = _one_run_succeeded()
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    failed = _scheduled_run(kube, uid, template, "Failed", minute=30)
    _pod(kube, f"{failed['metadata']['name']}-x", failed, _as_pod(template),
         {"purge": _record("Failed", 0, reason="DatabaseUnreachable")}, 30)  # fmt: skip
    # Someone who may patch Jobs hides the failed run from the operator's labelled reads.
    del failed["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    _reconcile(kube, minutes=45)
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")
    assert conditions(kube)["Ready"][0] != "True"


def test_the_last_run_recorded_and_gone_since_is_still_accounted_for() -> None:
    kube, _, _, name = _one_run_succeeded()
    del kube.objects[("Job", "crm", name)]  # its Job deleted (a TTL, a person): recorded
    _reconcile(kube, minutes=45)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")


def test_a_run_just_scheduled_is_not_called_unseen_before_its_grace() -> None:
    kube, _, _, _ = _one_run_succeeded()
    # The CronJob says it started a run at T0 + 30 minutes, whose Job is not in the
    # operator's reads yet (its watch event still to come).
    cronjob = kube.objects[("CronJob", "crm", CRONJOB)]
    cronjob["status"]["lastScheduleTime"] = (T0 + timedelta(minutes=30)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    _reconcile(kube, minutes=31)
    assert conditions(kube)["PurgeSucceeded"] == ("True", "Succeeded")
    _reconcile(kube, minutes=60)  # past the starting deadline and its grace: not seen
    assert conditions(kube)["PurgeSucceeded"] == ("Unknown", "PurgeRunsUnreadable")
