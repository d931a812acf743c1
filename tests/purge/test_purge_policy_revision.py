"""The purge deletes by the revision of the policy in force, never by one still in its notice.

The purge Job reads the policy from the API itself; a careless version reads `spec`, which
already holds a revision announced today and effective in a month: it would delete by a
retention nobody was told about yet. Here the API client is a stub returning the objects the
operator leaves in the API (the policy with its `status.revisions`).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dataward.model.durations import Duration
from dataward.model.revisions import decide
from dataward.purge.errors import PurgeError
from dataward.purge.plan import make_plan
from dataward.purge.source import ApiSource
from tests.model.samples import POLICY, STORE

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
EFFECTIVE = datetime(2026, 12, 31, tzinfo=UTC)


class PolicyApi:
    """The one call ApiSource makes for the policy (the store comes from its watched copy)."""

    def __init__(self, policy: dict[str, Any]) -> None:
        self.policy = policy

    def get_cluster_custom_object(self, group: str, version: str, plural: str,
                                  name: str, **kw: Any) -> dict[str, Any]:
        assert (plural, name) == ("privacypolicies", self.policy["metadata"]["name"])
        return copy.deepcopy(self.policy)


def revised_policy(status: bool = True) -> dict[str, Any]:
    """The sample policy after a revision shortening support inquiries from 1y to 3mo."""
    old_spec = copy.deepcopy(POLICY["spec"])
    new_spec = copy.deepcopy(POLICY["spec"])
    new_spec["announced"], new_spec["effectiveDate"] = "2026-12-01", "2026-12-31"
    for category in new_spec["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["retention"]["period"] = "3mo"
    recorded = {"inForce": {"generation": 3, "since": "2021-04-26T00:00:00Z", "spec": old_spec}}
    revisions = decide(new_spec, 4, recorded, NOW)
    assert revisions.pending is not None
    policy = {**copy.deepcopy(POLICY), "spec": new_spec}
    policy["metadata"] = {"name": "clunix", "generation": 4}
    if status:
        # The operator recorded the impact preview's counts as small (the gate lets it go).
        pending = {**revisions.pending.to_status(), "impactVerdict": "Small"}
        policy["status"] = {"revisions": {**recorded, "pending": pending}}
    return policy


def source_at(
    policy: dict[str, Any], now: datetime, pending_generation: int | None = None
) -> ApiSource:
    source = ApiSource("crm", "support-inquiries", clock=lambda: now,
                       pending_generation=pending_generation)
    source._api = PolicyApi(policy)
    store = copy.deepcopy(STORE)
    del store["spec"]["retention"]  # the category's retention decides
    source._watched = store  # as if the store's watch were live: no thread
    source._seen_at = float("inf")  # and had just shown it is
    return source


def test_the_purge_deletes_by_the_revision_in_force_during_the_notice() -> None:
    store, policy = source_at(revised_policy(), NOW + timedelta(days=29)).load()
    assert policy is not None
    category = policy.category("technical-support-inquiry")
    assert category is not None and category.retention.period == Duration(1, "y")
    assert make_plan(store, policy, NOW).retention == Duration(1, "y")


def test_the_purge_deletes_by_the_new_revision_once_it_takes_effect() -> None:
    store, policy = source_at(revised_policy(), EFFECTIVE).load()
    assert policy is not None
    assert make_plan(store, policy, EFFECTIVE).retention == Duration(3, "mo")


def test_past_its_date_the_purge_keeps_the_old_revision_while_the_impact_is_unknown() -> None:
    policy = revised_policy()
    del policy["status"]["revisions"]["pending"]["impactVerdict"]
    store, in_force = source_at(policy, EFFECTIVE + timedelta(days=3)).load()
    assert in_force is not None
    assert make_plan(store, in_force, EFFECTIVE).retention == Duration(1, "y")


def test_the_impact_preview_reads_the_pending_revision_of_its_own_generation_only() -> None:
    store, pending = source_at(revised_policy(), NOW, pending_generation=4).load()
    assert pending is not None
    assert make_plan(store, pending, NOW).retention == Duration(3, "mo")  # during the notice
    with pytest.raises(PurgeError) as raised:  # edited again since the Job was made
        source_at(revised_policy(), NOW, pending_generation=3).load()
    assert raised.value.category == "Configuration"


def test_a_policy_the_operator_has_not_recorded_is_its_first_revision() -> None:
    _, policy = source_at(revised_policy(status=False), NOW).load()
    assert policy is not None
    category = policy.category("technical-support-inquiry")
    assert category is not None and category.retention.period == Duration(3, "mo")


def test_an_unreadable_record_stops_the_purge() -> None:
    policy = revised_policy()
    policy["status"]["revisions"]["inForce"]["since"] = "not a time"
    with pytest.raises(PurgeError) as raised:
        source_at(policy, NOW).load()
    assert raised.value.category == "Configuration"
    # The message reaches status.lastPurge and PurgeSucceeded: the field, never the value
    # (whoever may patch the policy's status could write anything there).
    assert "status.revisions.inForce.since" in str(raised.value)
    assert "not a time" not in str(raised.value)


def test_a_garbled_spec_in_force_stops_the_purge_naming_the_record() -> None:
    """Red on the old code: the error named the policy's own spec and quoted the value."""
    policy = revised_policy()
    for category in policy["status"]["revisions"]["inForce"]["spec"]["categories"]:
        category["retention"]["period"] = "GARBLE-7f3c"
    with pytest.raises(PurgeError) as raised:
        source_at(policy, NOW).load()
    assert raised.value.category == "Configuration"
    assert "status.revisions.inForce.spec.categories[" in str(raised.value)
    assert "GARBLE" not in str(raised.value)


class SilentApi(PolicyApi):
    """An API server that does not answer the policy's GET (or whose connection drops):
    the client raises what urllib3 raises, not an ApiException."""

    def __init__(self, policy: dict[str, Any], error: Exception) -> None:
        super().__init__(policy)
        self.error = error
        self.timeouts: list[Any] = []

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str,
                                  **kw: Any) -> dict[str, Any]:
        self.timeouts.append(kw.get("_request_timeout"))
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(TimeoutError("read timed out"), id="timeout"),
        pytest.param(ConnectionResetError("reset by peer"), id="reset"),
    ],
)
def test_a_policy_read_that_gets_no_answer_is_unavailable_and_bounded(error: Exception) -> None:
    """Unknown is not absent: the policy's GET that times out or drops is StoreUnavailable
    (a Failed result at the start, a stop between batches), never an unhandled exception
    that ends the Job without a result; and the GET is bounded in time like the store's."""
    source = source_at(revised_policy(), NOW)
    api = SilentApi(revised_policy(), error)
    source._api = api
    with pytest.raises(PurgeError) as raised:
        source.load()
    assert raised.value.category == "StoreUnavailable"
    assert api.timeouts == [ApiSource.REQUEST_TIMEOUT]
