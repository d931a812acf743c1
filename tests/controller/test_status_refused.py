"""A status write the API server refuses: the last verdicts do not stand as if vouched for.

The API server refuses a status write whose content it will not take (400, 403 from an
admission webhook or a ValidatingAdmissionPolicy on the status subresource, 413, 422 from the
CRD's schema): the pass fails and is retried with backoff, and before, every retry failed the
same way while the object's last status, Ready=True included, stood. Now each condition it
last showed True is made Unknown (`StatusRefused`), naming the HTTP status only (a 422's body
can quote the values sent), and the pass still fails. A conflict or a gone object (409, 404)
has its own meaning there, and an unknown outcome (no answer, 5xx) may have been written.

The fake API stands in for the admission: `AdmissionKube.refuse` refuses the status patches it
is given (a pass's own, which write more than the conditions), never the patch of the
conditions alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, cast

import pytest

from dataward.controller.kube import Kube, KubeError
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from tests.controller import test_subjects as dsr
from tests.controller.fake_kube import FakeKube
from tests.controller.test_evidence_records import Sink
from tests.controller.test_policy_revisions import POLICY, policy_object
from tests.controller.test_reconcile import KEY, T0, conditions, sample_cluster, status

GARBLE = "GARBLE-7f3c"  # what a server's answer could quote of the values sent
STORE = ("PersonalDataStore", *KEY)
CONDITION_FIELD = re.compile(r"/status/conditions/\d+/")


class AdmissionKube(FakeKube):
    """The fake API with a check on status patches: `refuse(kind, operations)` answers the
    HTTP status to refuse one with, or None."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: Callable[[str, Sequence[Mapping[str, Any]]], int | None] | None = None

    def json_patch(self, kind: str, namespace: str | None, name: str,
                   operations: Sequence[Mapping[str, Any]],
                   subresource: str | None = None) -> dict[str, Any]:  # fmt: skip
        refused = None
        if subresource == "status" and self.refuse is not None:
            refused = self.refuse(kind, operations)
        if refused is not None:
            self.calls.append(("patch/status", kind, name))
            raise KubeError(refused, f"Unprocessable Entity: {GARBLE}", f"patch {kind}")
        return super().json_patch(kind, namespace, name, operations, subresource)


def more_than_conditions(kind: str, status: int) -> Callable[[str, Sequence[Any]], int | None]:
    """Refuse with `status` every status patch of `kind` that sets more than conditions' fields
    (a pass's verdicts), as a webhook refusing a field of it would."""

    def refuse(of: str, operations: Sequence[Mapping[str, Any]]) -> int | None:
        judged = any(
            op["op"] != "test" and not CONDITION_FIELD.match(op["path"]) for op in operations
        )
        return status if of == kind and judged else None

    return refuse


def _bump(kube: FakeKube, key: tuple[str, str | None, str]) -> None:
    """A spec edit: the generation moves, so the next pass has a status to write."""
    obj = kube.objects[key]
    obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1
    kube._store(obj)


def _ready_store(sink: Sink | None = None) -> tuple[AdmissionKube, Reconciler]:
    kube = sample_cluster(AdmissionKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings(evidence=sink))
    reconciler.reconcile(KEY, now=T0)
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")
    return kube, reconciler


def test_a_refused_status_write_leaves_no_condition_true() -> None:
    """Red first: on 5be1455 the pass failed and Ready=True (every condition True) stood."""
    sink = Sink()
    kube, reconciler = _ready_store(sink)
    before = status(kube)
    kube.refuse = more_than_conditions("PersonalDataStore", 422)
    _bump(kube, STORE)
    with pytest.raises(KubeError) as raised:
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert raised.value.status == 422, "the pass still fails: the queue retries it"
    after = status(kube)
    assert {c["type"]: (c["status"], c["reason"]) for c in after["conditions"]} == {
        c["type"]: ("Unknown", "StatusRefused") for c in before["conditions"]
    }
    for condition in after["conditions"]:
        assert "HTTP 422" in condition["message"] and GARBLE not in condition["message"]
        assert condition["lastTransitionTime"] == "2026-01-10T08:01:00Z"
    # Nothing but the conditions: the generation is still the one the verdicts were judged on.
    assert {k: v for k, v in after.items() if k != "conditions"} == {
        k: v for k, v in before.items() if k != "conditions"
    }
    # Each transition is on record, as a pass's own are.
    recorded = {r["type"]: (r["previousStatus"], r["status"], r["reason"])
                for r in sink.of("condition.transition")[-len(before["conditions"]):]}  # fmt: skip
    assert recorded["Ready"] == ("True", "Unknown", "StatusRefused")
    assert GARBLE not in str(sink.of("condition.transition"))


def test_a_write_refused_again_changes_nothing_more_and_one_taken_judges_again() -> None:
    kube, reconciler = _ready_store()
    kube.refuse = more_than_conditions("PersonalDataStore", 403)
    _bump(kube, STORE)
    with pytest.raises(KubeError):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    marked = status(kube)
    assert conditions(kube)["Ready"] == ("Unknown", "StatusRefused")
    assert not reconciler.reconcile_logged(KEY).ok
    assert status(kube) == marked, "nothing was True any more: nothing written"
    kube.refuse = None
    reconciler.reconcile(KEY, now=T0 + timedelta(minutes=3))
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


@pytest.mark.parametrize("refused", [0, 404, 409, 429, 500, 503])
def test_a_write_not_refused_for_its_content_leaves_the_verdicts(refused: int) -> None:
    """No answer or a server error: the write may have landed. A conflict or a gone object:
    their own meaning (the pass stops, is retried). A throttle: retried."""
    kube, reconciler = _ready_store()
    kube.refuse = more_than_conditions("PersonalDataStore", refused)
    _bump(kube, STORE)
    with pytest.raises(KubeError):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")


@pytest.mark.parametrize("refused", [400, 403, 413, 422])
def test_each_refusal_of_the_content_is_said(refused: int) -> None:
    kube, reconciler = _ready_store()
    kube.refuse = more_than_conditions("PersonalDataStore", refused)
    _bump(kube, STORE)
    with pytest.raises(KubeError):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["Ready"] == ("Unknown", "StatusRefused")
    ready = next(c for c in status(kube)["conditions"] if c["type"] == "Ready")
    assert f"HTTP {refused}" in ready["message"]


def test_when_the_conditions_cannot_be_written_either_it_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube, reconciler = _ready_store()
    kube.refuse = lambda kind, ops: 403 if kind == "PersonalDataStore" else None
    _bump(kube, STORE)
    with caplog.at_level(logging.ERROR, logger="dataward"):
        with pytest.raises(KubeError):
            reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    assert conditions(kube)["Ready"] == ("True", "AllControlsInForce")  # nothing could be done
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("crm/support-inquiries" in m and "HTTP 403" in m for m in logged), logged
    assert GARBLE not in caplog.text


def test_a_policy_whose_status_write_is_refused_is_not_left_ready() -> None:
    """Red first: on 5be1455 the policy's Ready=True (Valid) stood."""
    kube = sample_cluster(AdmissionKube())
    reconciler = Reconciler(cast(Kube, kube), ReconcileSettings())
    reconciler.reconcile_policy(POLICY, now=T0)
    before = {c["type"]: c["status"] for c in policy_object(kube)["status"]["conditions"]}
    assert before["Ready"] == "True"
    kube.refuse = more_than_conditions("PrivacyPolicy", 422)
    _bump(kube, ("PrivacyPolicy", None, POLICY))
    with pytest.raises(KubeError):
        reconciler.reconcile_policy(POLICY, now=T0 + timedelta(minutes=1))
    after = {c["type"]: (c["status"], c["reason"])
             for c in policy_object(kube)["status"]["conditions"]}  # fmt: skip
    assert after["Ready"] == ("Unknown", "StatusRefused")
    assert all(after[t] == ("Unknown", "StatusRefused") for t, s in before.items() if s == "True")


def test_a_subject_request_whose_status_write_is_refused_is_not_left_complete() -> None:
    """Red first: on 5be1455 the answered request's Complete=True stood."""
    kube = dsr.sample_requests(AdmissionKube())
    dsr.controller(kube).reconcile(dsr.KEY)
    for (namespace, name), _ in dsr.jobs(kube).items():
        dsr.finish(kube, str(namespace), name, {"outcome": "Succeeded", "rowsFound": 0,
                                                "rowsExported": 0, "tables": []})  # fmt: skip
    dsr.controller(kube).reconcile(dsr.KEY)
    assert {c["type"]: c["status"] for c in dsr.status(kube)["conditions"]} == {
        "Complete": "True", "DeadlineMet": "True"}
    kube.refuse = more_than_conditions("DataSubjectRequest", 422)
    _bump(kube, ("DataSubjectRequest", *dsr.KEY))
    with pytest.raises(KubeError):
        dsr.controller(kube).reconcile(dsr.KEY)
    after = {c["type"]: (c["status"], c["reason"]) for c in dsr.status(kube)["conditions"]}
    assert after == {"Complete": ("Unknown", "StatusRefused"),
                     "DeadlineMet": ("Unknown", "StatusRefused")}  # fmt: skip
    assert dsr.status(kube)["phase"] == "Succeeded"  # the last phase, its conditions say so


def test_the_condition_metric_says_what_status_says_after_a_refused_write() -> None:
    """dataward_store_condition is what alerts read: after a refused write it gave this pass's
    verdicts (Ready True), which status does not hold, while status said Unknown."""
    from dataward.controller.metrics import STORES

    kube, reconciler = _ready_store()
    kube.refuse = more_than_conditions("PersonalDataStore", 422)
    _bump(kube, STORE)
    with pytest.raises(KubeError):
        reconciler.reconcile(KEY, now=T0 + timedelta(minutes=1))
    figures = STORES.figures(*KEY)
    assert figures is not None
    assert dict(figures.conditions)["Ready"] == "Unknown"
    assert conditions(kube)["Ready"] == ("Unknown", "StatusRefused")


def test_the_condition_metric_is_not_set_to_verdicts_a_refused_write_kept_from_status() -> None:
    """Refused again with nothing True left to mark: the metric stays at status' Unknown."""
    from dataward.controller.metrics import STORES

    kube, reconciler = _ready_store()
    kube.refuse = more_than_conditions("PersonalDataStore", 422)
    _bump(kube, STORE)
    for minutes in (1, 2):
        with pytest.raises(KubeError):
            reconciler.reconcile(KEY, now=T0 + timedelta(minutes=minutes))
    figures = STORES.figures(*KEY)
    assert figures is not None
    assert dict(figures.conditions)["Ready"] == "Unknown"
