"""Two replicas on one Lease: a takeover never leaves two of them acting at once.

The Lease's renewTime is written with the holder's wall clock; another replica's clock may be
minutes away from it. Like client-go, a replica judges a Lease expired only after it has seen
the same holder's record unchanged for the Lease's duration on its own (monotonic) clock.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from dataward.controller.leader import LeaderElector, LeaseSettings
from tests.controller.test_timeouts import LeaseKube

SETTINGS = LeaseSettings(
    namespace="ns", duration_seconds=30, renew_every_seconds=0.2, retry_every_seconds=0.1
)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _held_by(kube: LeaseKube, holder: str, renewed: datetime) -> None:
    """`holder` renews the Lease, stamping it with its own clock's `renewed`."""
    spec = {"holderIdentity": holder, "leaseDurationSeconds": 30,
            "acquireTime": _stamp(renewed), "renewTime": _stamp(renewed)}
    metadata = {"name": "dataward-operator", "namespace": "ns"}
    if kube.lease is not None:
        metadata["resourceVersion"] = kube.lease["metadata"]["resourceVersion"]
    if kube.lease is None:
        kube.create({"metadata": metadata, "spec": spec})
    else:
        kube.replace({"metadata": metadata, "spec": spec})


def test_a_replica_whose_clock_is_ahead_does_not_take_a_lease_just_renewed() -> None:
    """The holder's clock is a minute behind ours: the renewTime it just wrote looks a minute
    old. Taking the Lease on that reading made two leaders; it is taken only once the record
    has stayed the same for the Lease's duration as we measure it."""
    kube = LeaseKube()
    behind = datetime.now(UTC) - timedelta(seconds=60)
    _held_by(kube, "other", behind)
    clock = Clock()
    elector = LeaderElector(kube, SETTINGS, "me", clock=clock)  # type: ignore[arg-type]
    assert not elector.try_acquire_or_renew(), "took a Lease its holder had just renewed"
    clock.now += 20
    _held_by(kube, "other", behind + timedelta(seconds=20))  # the holder renews again
    clock.now += 20
    assert not elector.try_acquire_or_renew(), "took a Lease renewed 20 s ago"
    assert kube.lease is not None and kube.lease["spec"]["holderIdentity"] == "other"
    clock.now += SETTINGS.duration_seconds + 1  # no renewal since: it has expired
    assert elector.try_acquire_or_renew()
    assert kube.lease["spec"]["holderIdentity"] == "me"


def test_a_replica_whose_clock_is_behind_still_takes_a_lease_left_to_expire() -> None:
    """A holder stamping renewTime a minute in our future, then gone: taken after a duration of
    our own time, not a duration plus its skew."""
    kube = LeaseKube()
    _held_by(kube, "other", datetime.now(UTC) + timedelta(seconds=60))
    clock = Clock()
    elector = LeaderElector(kube, SETTINGS, "me", clock=clock)  # type: ignore[arg-type]
    assert not elector.try_acquire_or_renew()
    clock.now += SETTINGS.duration_seconds + 1
    assert elector.try_acquire_or_renew()


def test_a_leader_that_sees_another_holder_stops_acting_at_once() -> None:
    """Someone deleted the Lease and another replica made it anew (or edited the holder): the
    leader's next renewal sees it held by another, and it stops then, not at its renew
    deadline 20 s later while the other already acts."""
    kube = LeaseKube()
    elector = LeaderElector(kube, SETTINGS, "me")  # type: ignore[arg-type]
    assert elector.acquire()
    renewer = threading.Thread(target=elector.keep_renewing, daemon=True)
    renewer.start()
    try:
        time.sleep(0.3)
        assert elector.leading() and not elector.lost.is_set()
        kube.lease = None  # deleted
        _held_by(kube, "other", datetime.now(UTC))
        assert elector.lost.wait(timeout=3), "kept acting while another replica held the Lease"
        assert not elector.leading(), "writes must be fenced once another holds the Lease"
    finally:
        elector.cancel()
        renewer.join(timeout=5)
    assert kube.lease is not None and kube.lease["spec"]["holderIdentity"] == "other"


def test_a_lease_edited_to_a_short_duration_is_not_taken_before_our_own_duration() -> None:
    """Someone edits the live holder's Lease down to 1 s: the holder rewrites its duration
    only at its next renewal (10 s later by default). A standby must not take over after 1 s
    of silence while the holder still acts: it waits at least the duration it would hold the
    Lease for itself (every replica of a release runs with the same)."""
    kube = LeaseKube()
    _held_by(kube, "other", datetime.now(UTC))
    assert kube.lease is not None
    kube.replace({**kube.lease, "spec": {**kube.lease["spec"], "leaseDurationSeconds": 1}})
    clock = Clock()
    elector = LeaderElector(kube, SETTINGS, "me", clock=clock)  # type: ignore[arg-type]
    assert not elector.try_acquire_or_renew()
    clock.now += 5
    assert not elector.try_acquire_or_renew(), "took a Lease edited to 1 s while its holder acts"
    clock.now += SETTINGS.duration_seconds
    assert elector.try_acquire_or_renew()
