"""Notice periods for policy revisions: the widening rule and the in-force/pending decision.

Each test is written against a careless version of the rule: comparing durations as text,
forgetting purposes, counting notice from a backdated announcement, a leftover emergency
override excusing the next revision, a reordered list counted as a revision.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.model.errors import ModelError
from dataward.model.revisions import (
    decide,
    digest,
    in_force_policy_object,
    parse_in_force,
    required_notice,
    widens,
)
from tests.model.samples import POLICY

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def spec() -> dict[str, Any]:
    return copy.deepcopy(POLICY["spec"])


def category(s: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in s["categories"] if c["name"] == name)


def with_retention(period: str, name: str = "technical-support-inquiry") -> dict[str, Any]:
    s = spec()
    category(s, name)["retention"]["period"] = period
    return s


# --- widens -----------------------------------------------------------------------------


def test_an_unchanged_policy_does_not_widen() -> None:
    assert widens(spec(), spec()) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("180d", "6mo"),  # 6 months are 181 to 184 days: longer, though "6mo" < "180d" as text
        ("1y", "2y"),
        ("6mo", "26w"),  # 182 days: longer than the shortest 6 months (181)
        ("9d", "10d"),  # "10d" < "9d" as text
        ("11mo", "1y"),
        ("0d", "1d"),
    ],
)
def test_a_longer_retention_widens_compared_over_the_calendar(old: str, new: str) -> None:
    reasons = widens(with_retention(old), with_retention(new))
    assert len(reasons) == 1
    assert "technical-support-inquiry" in reasons[0] and "retention" in reasons[0]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("6mo", "180d"),  # 180 days never outlast 6 months
        ("1y", "12mo"),  # the same span, written otherwise
        ("12mo", "1y"),
        ("10d", "9d"),
        ("2y", "1y"),
        ("1y", "0d"),
    ],
)
def test_a_shorter_or_equal_retention_does_not_widen(old: str, new: str) -> None:
    assert widens(with_retention(old), with_retention(new)) == []


def test_a_new_purpose_in_an_existing_category_widens() -> None:
    new = spec()
    category(new, "newsletter")["purposes"] = ["marketing", "profiling"]
    reasons = widens(spec(), new)
    assert reasons == ["category newsletter: new purpose profiling"]


def test_a_removed_purpose_or_category_narrows() -> None:
    new = spec()
    new["categories"] = [c for c in new["categories"] if c["name"] != "newsletter"]
    category(new, "technical-support-inquiry")["purposes"] = ["service"]
    assert widens(spec(), new) == []


def test_a_new_category_widens() -> None:
    new = spec()
    new["categories"].append(
        {"name": "location", "purposes": ["ads"], "retention": {"period": "1d", "trigger": "seen"}}
    )
    assert widens(spec(), new) == ["new category location"]


def test_a_new_or_longer_statutory_duty_or_another_statute_widens() -> None:
    longer = spec()
    category(longer, "contract-records")["statutory"]["period"] = "61mo"
    assert any("statutory period 61mo" in r for r in widens(spec(), longer))
    added = spec()
    category(added, "newsletter")["statutory"] = {"period": "1y", "statute": "Some Act"}
    assert widens(spec(), added) == ["category newsletter: records are now archived under Some Act"]
    other = spec()
    category(other, "contract-records")["statutory"]["statute"] = "Another Act"
    assert len(widens(spec(), other)) == 1
    same_span = spec()
    category(same_span, "contract-records")["statutory"]["period"] = "60mo"  # = 5y
    assert widens(spec(), same_span) == []


def test_another_retention_trigger_widens() -> None:
    new = spec()
    category(new, "technical-support-inquiry")["retention"]["trigger"] = "last-contacted"
    assert len(widens(spec(), new)) == 1


def test_wording_schedule_and_operator_duties_do_not_widen() -> None:
    new = spec()
    category(new, "newsletter")["description"] = "Newsletter, reworded"
    new["defaults"] = {"keyRotation": "1y", "accessLogRetention": "2y"}
    new["effectiveDate"] = "2030-01-01"
    assert widens(spec(), new) == []


def test_a_field_the_rule_does_not_know_counts_as_widening() -> None:
    new = spec()
    category(new, "newsletter")["mayHoldChildrensData"] = True
    assert widens(spec(), new) == [
        "category newsletter: field mayHoldChildrensData changed (counted as widening)"
    ]


def test_required_notice_is_7_days_or_30_when_widening() -> None:
    assert required_notice([]) == 7
    assert required_notice(["new category x"]) == 30


def test_an_invalid_spec_is_refused_not_judged() -> None:
    with pytest.raises(ModelError):
        widens(spec(), with_retention("six months"))


# --- decide -----------------------------------------------------------------------------


def recorded(in_force_spec: dict[str, Any], generation: int = 1,
             since: datetime = NOW - timedelta(days=400)) -> dict[str, Any]:
    return {"inForce": {"generation": generation, "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "spec": in_force_spec}}


def revise(change: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    new = copy.deepcopy(base or spec())
    new.update(change)
    return new


def test_the_first_revision_is_in_force_at_once() -> None:
    revisions = decide(spec(), 1, None, NOW)
    assert revisions.pending is None
    assert revisions.in_force.spec == spec() and revisions.in_force.generation == 1


def test_a_narrowing_revision_waits_for_its_effective_date() -> None:
    new = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-31"},
                 with_retention("6mo"))
    revisions = decide(new, 2, recorded(spec()), NOW)
    assert revisions.in_force.spec == spec()  # the old one is still enforced
    assert revisions.pending is not None
    assert revisions.pending.takes_effect == datetime(2026, 12, 31, tzinfo=UTC)
    assert revisions.pending.notice_days == 7 and revisions.pending.widens == ()
    later = decide(new, 2, {**recorded(spec()), "pending": revisions.pending.to_status()},
                   datetime(2026, 12, 30, 23, 59, tzinfo=UTC))
    assert later.in_force.spec == spec() and not later.promoted
    # Its dry-run counts recorded as small (test_revision_impact covers the other verdicts).
    counted = {**revisions.pending.to_status(), "impactVerdict": "Small"}
    due = decide(new, 2, {**recorded(spec()), "pending": counted},
                 datetime(2026, 12, 31, tzinfo=UTC))
    assert due.promoted and due.pending is None and due.in_force.spec == new
    assert due.in_force.generation == 2


def test_a_widening_revision_with_7_days_notice_takes_effect_only_after_30() -> None:
    new = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-08"},
                 with_retention("2y"))
    revisions = decide(new, 2, recorded(spec()), NOW)
    assert revisions.pending is not None and revisions.pending.notice_days == 30
    assert revisions.pending.takes_effect == NOW + timedelta(days=30)


def test_a_backdated_announcement_does_not_shorten_the_notice() -> None:
    # Announced "a month ago", effective tomorrow: the operator saw it only now.
    new = revise({"announced": "2026-11-01", "effectiveDate": "2026-12-02"},
                 with_retention("6mo"))
    revisions = decide(new, 2, recorded(spec()), NOW)
    assert revisions.pending is not None
    assert revisions.pending.takes_effect == NOW + timedelta(days=7)
    # ... and a later reconcile keeps counting from the first observation, not from its own now.
    again = decide(new, 2, {**recorded(spec()), "pending": revisions.pending.to_status()},
                   NOW + timedelta(days=3))
    assert again.pending is not None and again.pending.takes_effect == NOW + timedelta(days=7)


def test_an_amended_pending_revision_restarts_its_notice() -> None:
    first = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-08"},
                   with_retention("6mo"))
    pending = decide(first, 2, recorded(spec()), NOW).pending
    assert pending is not None
    amended = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-08"},
                     with_retention("3mo"))
    later = NOW + timedelta(days=5)
    revisions = decide(amended, 3, {**recorded(spec()), "pending": pending.to_status()}, later)
    assert revisions.pending is not None and revisions.pending.takes_effect == later + timedelta(7)


def test_rescheduling_keeps_the_first_observation() -> None:
    first = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-08"},
                   with_retention("6mo"))
    pending = decide(first, 2, recorded(spec()), NOW).pending
    assert pending is not None
    moved = revise({"effectiveDate": "2026-12-20"}, first)
    revisions = decide(moved, 3, {**recorded(spec()), "pending": pending.to_status()},
                       NOW + timedelta(days=2))
    assert revisions.pending is not None and revisions.pending.observed == NOW
    assert revisions.pending.takes_effect == datetime(2026, 12, 20, tzinfo=UTC)


def test_reverting_withdraws_the_pending_revision_and_reordering_is_no_revision() -> None:
    reordered = spec()
    reordered["categories"].reverse()
    category(reordered, "newsletter")["purposes"] = ["marketing"]
    revisions = decide(revise({"effectiveDate": "2030-01-01"}, reordered), 5, recorded(spec()), NOW)
    assert revisions.pending is None and revisions.in_force.spec == spec()
    assert digest(reordered) == digest(spec())


def test_an_emergency_skips_the_notice_and_is_reported() -> None:
    new = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-01",
                  "emergency": {"reason": "court order 2026-77"}}, with_retention("6mo"))
    revisions = decide(new, 2, recorded(spec()), NOW)
    assert revisions.promoted and revisions.in_force.spec == new
    future = revise({"effectiveDate": "2026-12-03"}, new)
    pending = decide(future, 2, recorded(spec()), NOW).pending
    assert pending is not None and pending.emergency == "court order 2026-77"
    assert pending.takes_effect == datetime(2026, 12, 3, tzinfo=UTC)


def test_a_leftover_emergency_does_not_excuse_the_next_revision() -> None:
    in_force = revise({"emergency": {"reason": "court order 2026-77"}})
    new = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-01"},
                 with_retention("6mo"))
    new["emergency"] = {"reason": "court order 2026-77"}
    revisions = decide(new, 3, recorded(in_force), NOW)
    assert not revisions.promoted and revisions.pending is not None
    assert revisions.pending.emergency is None
    assert revisions.pending.takes_effect == NOW + timedelta(days=7)


def test_an_unreadable_record_is_refused_not_replaced_by_the_spec() -> None:
    broken = {"inForce": {"generation": 1, "since": "yesterday", "spec": spec()}}
    with pytest.raises(ModelError):
        decide(with_retention("6mo"), 2, broken, NOW)


GARBLE = "GARBLE-7f3c"  # written into the policy's status by someone else


def test_a_garbled_record_is_named_by_field_never_quoted() -> None:
    """status.revisions can be written by whoever may patch the policy's status: the error
    (which the policy's and every store's condition carry) names the field, never the value.
    The spec in force's own errors are named under status.revisions.inForce, not as the
    policy's spec (which is fine)."""
    since = {"inForce": {"generation": 1, "since": GARBLE, "spec": spec()}}
    with pytest.raises(ModelError) as error:
        decide(spec(), 2, since, NOW)
    assert error.value.path == "status.revisions.inForce.since"
    assert GARBLE not in str(error.value)
    garbled = with_retention(GARBLE)
    with pytest.raises(ModelError) as error:
        decide(spec(), 2, recorded(garbled), NOW)
    assert error.value.path.startswith("status.revisions.inForce.spec.categories[")
    assert GARBLE not in str(error.value)
    raw = {**POLICY, "spec": spec(), "status": {"revisions": recorded(garbled)}}
    with pytest.raises(ModelError) as error:
        parse_in_force(raw, garbled)
    assert error.value.path.startswith("status.revisions.inForce.spec.categories[")
    assert GARBLE not in str(error.value)
    # The policy's own spec, in force: its own error, as the user wrote it.
    own = {**POLICY, "spec": garbled}
    with pytest.raises(ModelError) as error:
        parse_in_force(own, garbled)
    assert error.value.path.startswith("spec.categories[")


def test_the_policy_object_in_force_is_the_old_revision_until_it_takes_effect() -> None:
    new = revise({"announced": "2026-12-01", "effectiveDate": "2026-12-31"},
                 with_retention("6mo"))
    pending = decide(new, 2, recorded(spec()), NOW).pending
    assert pending is not None
    raw = {**POLICY, "metadata": {"name": "clunix", "generation": 2}, "spec": new,
           "status": {"revisions": {**recorded(spec()),
                                    "pending": {**pending.to_status(), "impactVerdict": "Small"}}}}
    before = in_force_policy_object(raw, NOW + timedelta(days=29))
    assert category(before["spec"], "technical-support-inquiry")["retention"]["period"] == "1y"
    after = in_force_policy_object(raw, datetime(2026, 12, 31, tzinfo=UTC))
    assert category(after["spec"], "technical-support-inquiry")["retention"]["period"] == "6mo"


# --- impact -----------------------------------------------------------------------------


def test_impact_names_the_stores_a_revision_puts_out_of_compliance() -> None:
    from dataward.model.policy import parse_policy
    from dataward.model.revisions import impact
    from dataward.model.store import parse_store
    from tests.model.samples import STORE

    in_force = parse_policy(POLICY)
    pending = parse_policy({**POLICY, "spec": with_retention("90d")})
    kept = parse_store(STORE)  # 180d of its own, in a category allowing 1y
    other = copy.deepcopy(STORE)
    other["metadata"]["name"] = "newsletter-store"
    other["spec"]["category"] = "newsletter"
    other["spec"]["retention"] = "0d"
    listed, affected = impact([parse_store(other), kept], in_force, pending)
    assert affected == 1  # the newsletter store is not touched by the revision
    assert listed == [{
        "store": "crm/support-inquiries",
        "before": {"outcome": "Compliant", "retention": "180d"},
        "after": {"outcome": "RetentionTooLong", "retention": "180d"},
    }]
    # Without a retention of its own the store follows the category: 1y becomes 90d.
    follows = copy.deepcopy(STORE)
    del follows["spec"]["retention"]
    listed, _ = impact([parse_store(follows)], in_force, pending)
    assert listed[0]["before"]["retention"] == "1y" and listed[0]["after"]["retention"] == "90d"
    assert listed[0]["after"]["outcome"] == "Compliant"
