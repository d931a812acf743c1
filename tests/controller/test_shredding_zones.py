"""Crypto-shredding of a store whose tables keep Seoul wall clocks (`records[].timeZone`).

The purge counts such a store's retention on Seoul's calendar: a row written at 05:00 on
March 1 in Seoul (2026-02-28T20:00Z, so in the UTC month bucket 2026-02) expires a month later
at 05:00 on April 1 in Seoul (2026-03-31T20:00Z), and a row dated March 1 there once all of
April 1 has passed in Seoul (2026-04-01T14:59:59.999999Z). Counting the bucket on UTC's
calendar (its last instant, Feb 28 23:59:59.999999Z, plus a month: Mar 28) destroyed the key
of those rows three days before the purge would delete them. Dates worked out by hand.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from dataward.keys import Cipher
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import T0, conditions, sample_cluster
from tests.controller.test_shredding import Sink, ring, run
from tests.model import samples

ROW = datetime(2026, 2, 28, 20, 0, tzinfo=UTC)  # 2026-03-01 05:00 in Seoul
ROW_EXPIRES = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)  # 2026-04-01 05:00 in Seoul
LAST_DAY_EXPIRES = datetime(2026, 4, 1, 14, 59, 59, 999999, tzinfo=UTC)  # Apr 1 ends in Seoul


def seoul_cluster() -> FakeKube:
    policy = copy.deepcopy(samples.POLICY)
    for category in policy["spec"]["categories"]:
        if category["name"] == "technical-support-inquiry":
            category["keyBuckets"] = "month"
    store = copy.deepcopy(samples.STORE)
    store["spec"]["retention"] = "1mo"
    store["spec"]["records"][0]["timeZone"] = "Asia/Seoul"
    return sample_cluster(FakeKube(), policy, store)


def test_a_seoul_stores_bucket_key_outlives_its_last_rows_on_seouls_calendar() -> None:
    kube = seoul_cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    blob = Cipher(ring(kube)).encrypt(b"inquiry", b"support:1", trigger=ROW)
    # One month at a time, as a running operator sees them (several at once wait for an
    # acknowledgement): December and January go in their turn.
    run(kube, sink, datetime(2026, 2, 2, tzinfo=UTC))
    run(kube, sink, datetime(2026, 3, 2, tzinfo=UTC))
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-12", "2026-01"]

    # UTC's calendar would have February's key go at the end of March 28: the row of
    # 05:00 on March 1 in Seoul is live until 2026-03-31T20:00Z.
    for now in (datetime(2026, 3, 29, tzinfo=UTC), ROW_EXPIRES - timedelta(seconds=1)):
        run(kube, sink, now)
        assert "2026-02" in ring(kube).buckets, now
        assert Cipher(ring(kube)).decrypt(blob, b"support:1") == b"inquiry"
    # A date column of that store holds March 1 for it: live until April 1 ends in Seoul.
    run(kube, sink, LAST_DAY_EXPIRES - timedelta(seconds=1))
    assert "2026-02" in ring(kube).buckets
    assert [p["bucket"] for p in sink.of("key.shredded")] == ["2025-12", "2026-01"]

    run(kube, sink, LAST_DAY_EXPIRES + timedelta(microseconds=1))
    shredded = sink.of("key.shredded")[-1]
    assert (shredded["bucket"], shredded["expired"]) == ("2026-02", "2026-04-01T14:59:59.999999Z")
    assert "2026-02" not in ring(kube).buckets
    assert conditions(kube)["EncryptionKeyReady"] == ("True", "KeyReady")
