"""The impact gate of a pending revision: which stores need a dry-run count, and when a
revision past its date may take effect.

Written against careless versions: a revision that goes in force at its date whatever its
counts; unknown counts taken as "small"; an acknowledgement for another revision (or a
stale verdict recorded for an earlier amendment) accepted; a store that only changes its
children's grace period, or that the revision suspends, mis-sorted.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.model.policy import parse_policy
from dataward.model.revisions import (
    LARGE_CUT,
    NOT_RUN,
    SMALL,
    UNKNOWN,
    WAITING,
    decide,
    gate,
    policy_revisions,
    preview_state,
    revision_token,
    verdict,
)
from dataward.model.store import parse_store
from tests.model.samples import POLICY, STORE

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 31, tzinfo=UTC)


def spec(period: str = "1y", **change: Any) -> dict[str, Any]:
    s = copy.deepcopy(POLICY["spec"])
    cat = next(c for c in s["categories"] if c["name"] == "technical-support-inquiry")
    cat["retention"]["period"] = period
    s.update(change)
    return s


def in_force() -> dict[str, Any]:
    return {"inForce": {"generation": 1, "since": "2025-01-01T00:00:00Z", "spec": spec()}}


NEW = spec("90d", announced="2026-12-01", effectiveDate="2026-12-31")


def recorded_pending(extra: dict[str, Any]) -> dict[str, Any]:
    pending = decide(NEW, 2, in_force(), NOW).pending
    assert pending is not None
    return {**in_force(), "pending": {**pending.to_status(), **extra}}


def test_past_its_date_a_revision_with_no_recorded_counts_waits() -> None:
    revisions = decide(NEW, 2, recorded_pending({}), DUE)
    assert not revisions.promoted and revisions.in_force.generation == 1
    assert revisions.pending is not None and revisions.pending.held == UNKNOWN
    assert revisions.pending.to_status()["held"] == UNKNOWN


def test_before_its_date_nothing_is_held() -> None:
    revisions = decide(NEW, 2, recorded_pending({"impactVerdict": LARGE_CUT}), DUE - timedelta(1))
    assert revisions.pending is not None and revisions.pending.held is None


def test_small_counts_let_it_take_effect_at_its_date() -> None:
    revisions = decide(NEW, 2, recorded_pending({"impactVerdict": SMALL}), DUE)
    assert revisions.promoted and revisions.in_force.generation == 2


def test_a_large_cut_waits_for_the_acknowledgement_of_this_revision() -> None:
    record = recorded_pending({"impactVerdict": LARGE_CUT})
    held = decide(NEW, 2, record, DUE)
    assert held.pending is not None and held.pending.held == LARGE_CUT
    token = held.pending.acknowledge_token
    # Someone else's token (another generation, or the purge's store token) does not release it.
    assert decide(NEW, 2, record, DUE, "1y-g1-p1").pending is not None
    assert decide(NEW, 2, record, DUE, revision_token(1, held.pending.digest)).pending is not None
    released = decide(NEW, 2, record, DUE, token)
    assert released.promoted and released.in_force.generation == 2


def test_a_verdict_recorded_for_other_substance_does_not_count() -> None:
    record = recorded_pending({"impactVerdict": SMALL})
    record["pending"]["digest"] = "0" * 64  # counted for another revision
    revisions = decide(NEW, 2, record, DUE + timedelta(days=30))
    assert not revisions.promoted


def test_an_emergency_revision_skips_the_gate() -> None:
    urgent = spec("90d", announced="2026-12-01", effectiveDate="2026-12-01",
                  emergency={"reason": "court order"})
    assert decide(urgent, 2, in_force(), NOW).promoted


def test_the_acknowledgement_is_read_from_the_policy_annotation() -> None:
    record = recorded_pending({"impactVerdict": LARGE_CUT})
    token = revision_token(2, record["pending"]["digest"])
    raw = {"metadata": {"name": "clunix", "generation": 2,
                        "annotations": {"dataward.io/acknowledge-large-purge": token}},
           "spec": NEW, "status": {"revisions": record}}
    assert policy_revisions(raw, DUE).promoted
    raw["metadata"]["annotations"] = {}
    assert not policy_revisions(raw, DUE).promoted


def test_gate_and_verdict() -> None:
    assert gate(SMALL, "t", None) is None
    assert gate(UNKNOWN, "t", None) == UNKNOWN and gate(UNKNOWN, "t", "t") is None
    assert gate(LARGE_CUT, "t", "other") == LARGE_CUT and gate(LARGE_CUT, "t", "t") is None
    assert gate("garbage", "t", None) == UNKNOWN
    assert verdict([]) == SMALL
    assert verdict([{"state": "Counted", "largeCut": False}, {"state": NOT_RUN}]) == SMALL
    assert verdict([{"state": "Counted"}, {"state": WAITING}]) == UNKNOWN
    assert verdict([{"state": "Failed"}]) == UNKNOWN
    assert verdict([{"state": WAITING}, {"state": "Counted", "largeCut": True}]) == LARGE_CUT
    assert verdict([{"state": "Counted", "largeCut": "yes"}]) == SMALL  # only a real True


def store(**change: Any) -> Any:
    raw = copy.deepcopy(STORE)
    raw["spec"].update(change)
    return parse_store(raw)


def test_which_stores_need_a_preview_job() -> None:
    old = parse_policy({**POLICY, "spec": spec()})
    new = parse_policy({**POLICY, "spec": spec("90d")})
    # The sample store keeps 180d of its own: under 90d it would not comply, so its purge is
    # suspended and the revision deletes nothing there.
    assert preview_state(store(), old, new) == NOT_RUN
    follows = copy.deepcopy(STORE)
    del follows["spec"]["retention"]
    assert preview_state(parse_store(follows), old, new) == WAITING  # 1y -> 90d: count it
    assert preview_state(parse_store(follows), old, old) is None  # nothing changes
    assert preview_state(store(retention="30d"), old, new) is None  # 30d either way
    held = copy.deepcopy(follows)
    held["spec"]["purge"] = {**held["spec"].get("purge", {}), "suspend": True}
    assert preview_state(parse_store(held), old, new) == NOT_RUN


def test_a_change_of_the_childrens_grace_alone_needs_a_preview() -> None:
    base = spec()
    cat = next(c for c in base["categories"] if c["name"] == "technical-support-inquiry")
    cat["children"] = {"consentGrace": "5d"}
    shorter = copy.deepcopy(base)
    next(c for c in shorter["categories"]
         if c["name"] == "technical-support-inquiry")["children"] = {"consentGrace": "1d"}
    old, new = parse_policy({**POLICY, "spec": base}), parse_policy({**POLICY, "spec": shorter})
    s = copy.deepcopy(STORE)
    s["spec"]["retention"] = "30d"
    s["spec"]["records"][0]["children"] = {"birthDateColumn": "born", "consentColumn": "ok"}
    parsed = parse_store(s)
    assert preview_state(parsed, old, new) in (WAITING, NOT_RUN)
