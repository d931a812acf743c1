"""Condition values, Ready, and merging into status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dataward.checks.conditions import (
    Condition,
    child_held_different,
    merge_conditions,
    named,
    ready,
    transitions,
)

T1 = datetime(2025, 1, 1, tzinfo=UTC)
T2 = datetime(2025, 1, 2, tzinfo=UTC)


def ok(kind: str) -> Condition:
    return Condition(kind, "True", "Fine", "It is fine.")


def test_reasons_must_be_camel_case() -> None:
    with pytest.raises(ValueError, match="CamelCase"):
        Condition("Ready", "True", "not camel", "x")


def test_ready_is_true_when_every_condition_is_true() -> None:
    result = ready([ok("PolicyCompliant"), ok("NetworkIsolated")])
    assert (result.type, result.status, result.reason) == ("Ready", "True", "AllControlsInForce")


def test_ready_is_false_and_names_every_failing_condition() -> None:
    result = ready(
        [
            ok("PolicyCompliant"),
            Condition("NetworkIsolated", "False", "NetworkPolicyMissing", "Gone."),
            Condition("AccessRestricted", "Unknown", "RBACUnreadable", "Unreadable."),
        ]
    )
    assert result.status == "False"
    assert result.reason == "ControlsNotInForce"
    assert "NetworkIsolated is False (NetworkPolicyMissing)" in result.message
    assert "AccessRestricted is Unknown (RBACUnreadable)" in result.message
    assert "PolicyCompliant" not in result.message


def test_ready_is_unknown_when_nothing_is_false_but_something_is_unknown() -> None:
    result = ready([ok("A"), Condition("B", "Unknown", "ReadFailed", "x")])
    assert (result.status, result.reason) == ("Unknown", "ControlsUnknown")


def test_ready_ignores_an_old_ready_condition_in_its_input() -> None:
    result = ready([Condition("Ready", "False", "Old", "x"), ok("A")])
    assert result.status == "True"


def test_ready_without_conditions_is_unknown() -> None:
    assert ready([]).status == "Unknown"


def test_merge_sets_transition_time_and_generation_for_new_conditions() -> None:
    merged = merge_conditions([], [ok("NetworkIsolated")], T1, 4)
    assert merged == [
        {
            "type": "NetworkIsolated",
            "status": "True",
            "reason": "Fine",
            "message": "It is fine.",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
            "observedGeneration": 4,
        }
    ]


def test_merge_keeps_transition_time_while_status_is_unchanged() -> None:
    first = merge_conditions([], [ok("NetworkIsolated")], T1, 4)
    changed_message = Condition("NetworkIsolated", "True", "StillFine", "New words.")
    second = merge_conditions(first, [changed_message], T2, 5)
    assert second[0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert second[0]["observedGeneration"] == 5
    assert second[0]["reason"] == "StillFine"


def test_merge_moves_transition_time_when_status_changes() -> None:
    first = merge_conditions([], [ok("NetworkIsolated")], T1, 4)
    broken = Condition("NetworkIsolated", "False", "NetworkPolicyMissing", "Gone.")
    second = merge_conditions(first, [broken], T2, 4)
    assert second[0]["lastTransitionTime"] == "2025-01-02T00:00:00Z"


def test_merge_with_nothing_changed_gives_an_identical_list() -> None:
    conditions = [ok("PurgeSucceeded"), ok("Ready"), ok("PolicyCompliant")]
    first = merge_conditions([], conditions, T1, 4)
    assert merge_conditions(first, conditions, T2, 4) == first


def test_merge_orders_conditions_ready_first_then_the_api_order() -> None:
    merged = merge_conditions(
        [], [ok("PurgeSucceeded"), ok("Custom"), ok("PolicyCompliant"), ok("Ready")], T1, 1
    )
    assert [c["type"] for c in merged] == ["Ready", "PolicyCompliant", "PurgeSucceeded", "Custom"]


def test_merge_drops_the_operators_conditions_no_longer_reported() -> None:
    # AccessRecorded is written only while the operator follows the audit log.
    first = merge_conditions([], [ok("Ready"), ok("AccessRecorded")], T1, 1)
    assert [c["type"] for c in merge_conditions(first, [ok("Ready")], T2, 1)] == ["Ready"]


def test_a_policys_revision_condition_no_longer_reported_is_dropped_not_kept_as_foreign() -> None:
    first = merge_conditions([], [ok("Ready"), ok("RevisionInForce")], T1, 1)
    assert [c["type"] for c in merge_conditions(first, [ok("Ready")], T2, 1)] == ["Ready"]


def test_merge_keeps_another_controllers_conditions_as_they_are() -> None:
    # Another controller keeps a condition of its own type in the store's status: removing
    # it is a write it answers by adding it back (a status write per watch event, red first).
    theirs = {"type": "ExampleSynced", "status": "False", "reason": "OutOfSync",
              "message": "behind the repository", "lastTransitionTime": "2020-01-01T00:00:00Z"}
    also = {**theirs, "type": "Argo"}
    first = merge_conditions([], [ok("Ready"), ok("NetworkIsolated")], T1, 1)
    old = [first[0], theirs, first[1], also]
    merged = merge_conditions(old, [ok("Ready"), ok("NetworkIsolated")], T2, 1)
    assert merged == [*first, theirs, also]
    # A type the operator writes is its own, whoever wrote it: put back to its verdict.
    forged = {**theirs, "type": "Ready", "status": "True"}
    assert merge_conditions([forged], [Condition("Ready", "False", "No", "x")], T2, 1)[0][
        "status"] == "False"  # fmt: skip


def test_merge_keeps_only_as_many_foreign_conditions_as_the_crds_allow() -> None:
    theirs = [{"type": f"Other{i}", "status": "True", "reason": "R", "message": "m",
               "lastTransitionTime": "2020-01-01T00:00:00Z"} for i in range(20)]  # fmt: skip
    ours = [ok(t) for t in ("Ready", "PolicyCompliant", "NetworkIsolated")]
    merged = merge_conditions(theirs, ours, T1, 1)
    assert len(merged) == 16
    assert [c["type"] for c in merged[:3]] == ["Ready", "PolicyCompliant", "NetworkIsolated"]
    assert [c["type"] for c in merged[3:]] == [f"Other{i}" for i in range(13)]


def test_transitions_lists_only_changed_statuses() -> None:
    old = merge_conditions([], [ok("A"), ok("B")], T1, 1)
    new = [ok("A"), Condition("B", "False", "Broken", "x"), ok("C")]
    assert [(c.type, before) for c, before in transitions(old, new)] == [
        ("B", "True"),
        ("C", None),
    ]


@pytest.mark.parametrize(
    ("items", "at_most", "sep", "expected"),
    [
        ([], 3, ", ", ""),
        (["a"], 3, ", ", "a"),
        (["a", "b", "c"], 3, ", ", "a, b, c"),
        (["c", "a", "b", "d", "e"], 3, ", ", "c, a, b and 2 more"),  # the order given
        (["x, 1", "y, 2", "z, 3"], 2, "; ", "x, 1; y, 2; and 1 more"),
    ],
)
def test_a_message_names_at_most_so_many_and_counts_the_rest(
    items: list[str], at_most: int, sep: str, expected: str
) -> None:
    assert named(items, at_most, sep) == expected


@pytest.mark.parametrize(
    ("kind", "control"),
    [("NetworkPolicy", "NetworkIsolated"), ("Role", "AccessRestricted"),
     ("RoleBinding", "AccessRestricted"), ("ServiceAccount", "AccessRestricted"),
     ("CronJob", "PurgeScheduled")],
)  # fmt: skip
def test_a_child_held_different_turns_its_control_false_naming_it(kind: str, control: str) -> None:
    verdict = child_held_different(kind, "crm", "dataward-x")
    assert (verdict.type, verdict.status, verdict.reason) == (
        control, "False", "ChildHeldDifferent")  # fmt: skip
    assert f"{kind} crm/dataward-x" in verdict.message
    assert ready([verdict]).status == "False"
