"""The rotating primary key keeps its period while month keys are made ahead.

The store's category asks for month keys (test_shredding's cluster) and the store rotates its
primary every 90 days. The operator makes the next month's key at every turn of a month, so
there is always a key younger than a month in the ring: counted as a rotation, a primary
that may rotate no sooner than 45 days after the last would never rotate.
"""

from __future__ import annotations

from datetime import timedelta

from tests.controller.test_reconcile import KEY, T0, conditions
from tests.controller.test_shredding import Sink, cluster, ring, run


def test_the_primary_rotates_on_time_while_month_keys_are_made() -> None:
    kube = cluster()
    kube.objects[("PersonalDataStore", *KEY)]["spec"]["encryption"] = {"keyRotation": "90d"}
    sink = Sink(kube)
    run(kube, None, T0)  # the ring, its primary made at T0 (2026-01-10T08:00Z)
    for day in range(1, 90):  # a pass a day, months turning on Feb 1, Mar 1 and Apr 1
        run(kube, sink, T0 + timedelta(days=day, minutes=1))
        assert ring(kube).primary == 1
    assert "2026-05" in ring(kube).buckets  # made ahead on Apr 1
    run(kube, sink, T0 + timedelta(days=90))  # the primary is 90 days old
    assert ring(kube).primary != 1
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
