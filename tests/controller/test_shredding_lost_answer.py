"""A status write that lists a shredding whose answer never comes: it may have landed.

The pass treated every failure but a 409 as "not written": it withdrew the key.shredded
record (key.shred.cancelled), and the next pass found the shredding listed in status (the
write had landed) with the key still in the ring, and destroyed it. The evidence log's last
word on that key was "cancelled", the key gone: a destruction the log denies. Each test
fails that write as a timeout or a server error would, through the controller's public
`reconcile`, and holds the evidence to the ring after every pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from dataward.controller.kube import KubeError
from tests.controller.fake_kube import FakeKube
from tests.controller.test_reconcile import T0, status
from tests.controller.test_shredding import (
    DUE,
    Sink,
    assert_evidence_matches_the_ring,
    cluster,
    ring,
    run,
    standing_claims,
)

__all__: list[str] = []


@contextlib.contextmanager
def listing_unanswered(kube: FakeKube, status: int, landed: bool) -> Iterator[None]:
    """The write that lists the shredding in status fails with `status` (0: no answer),
    after it was committed (`landed`) or before."""
    real = kube.merge_patch

    def patch(kind: str, namespace: Any, name: str, body: Mapping[str, Any],
              subresource: Any = None) -> Any:  # fmt: skip
        encryption = (body.get("status") or {}).get("encryption") or {}
        if subresource == "status" and "shreddedBuckets" in encryption:
            if landed:
                real(kind, namespace, name, body, subresource)
            raise KubeError(status, "no answer" if status == 0 else "Server Error", "patch")
        return real(kind, namespace, name, body, subresource)

    kube.merge_patch = patch  # type: ignore[method-assign]
    try:
        yield
    finally:
        kube.merge_patch = real  # type: ignore[method-assign]


def _due_with(status_code: int, landed: bool) -> tuple[FakeKube, Sink, int]:
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    july = ring(kube).bucket_key("2025-07")
    assert july is not None
    with listing_unanswered(kube, status_code, landed):
        run(kube, sink, DUE)
    assert_evidence_matches_the_ring(kube, sink)
    return kube, sink, july.id


def test_a_listing_that_landed_without_an_answer_is_carried_out_not_withdrawn() -> None:
    kube, sink, july = _due_with(0, landed=True)
    for minute in (1, 2):
        run(kube, sink, DUE + timedelta(minutes=minute))
        assert_evidence_matches_the_ring(kube, sink)
    assert "2025-07" not in ring(kube).buckets
    assert standing_claims(sink) == {july}
    assert sink.of("key.shred.cancelled") == []


def test_a_server_error_after_the_commit_is_read_as_what_landed() -> None:
    kube, sink, july = _due_with(503, landed=True)
    run(kube, sink, DUE + timedelta(minutes=1))
    assert_evidence_matches_the_ring(kube, sink)
    assert standing_claims(sink) == {july} and "2025-07" not in ring(kube).buckets


def test_a_listing_that_did_not_land_is_withdrawn_and_the_key_kept_until_listed() -> None:
    kube, sink, july = _due_with(0, landed=False)
    assert "2025-07" in ring(kube).buckets
    assert [p["keyId"] for p in sink.of("key.shred.cancelled")] == [july]
    assert "shreddedBuckets" not in status(kube)["encryption"]
    # The next pass records it again and carries it out.
    run(kube, sink, DUE + timedelta(minutes=1))
    assert_evidence_matches_the_ring(kube, sink)
    assert "2025-07" not in ring(kube).buckets and standing_claims(sink) == {july}


def test_when_what_landed_cannot_be_read_nothing_is_withdrawn_or_destroyed() -> None:
    kube = cluster()
    run(kube, None, T0)
    sink = Sink(kube)
    run(kube, sink, T0 + timedelta(minutes=1))
    gets: list[int] = []
    real_plain = kube.get

    def get(kind: str, namespace: Any, name: str) -> Any:
        if kind == "PersonalDataStore" and status_listed(kube):
            gets.append(1)
            raise KubeError(0, "no answer", "get PersonalDataStore")
        return real_plain(kind, namespace, name)

    kube.get = get  # type: ignore[method-assign]
    with listing_unanswered(kube, 0, landed=True), contextlib.suppress(KubeError):
        run(kube, sink, DUE)
    kube.get = real_plain  # type: ignore[method-assign]
    assert gets, "the pass read the store again, and that read failed"
    assert "2025-07" in ring(kube).buckets
    assert sink.of("key.shred.cancelled") == [], "withdrawn though it may have landed"
    run(kube, sink, DUE + timedelta(minutes=1))
    assert_evidence_matches_the_ring(kube, sink)
    assert "2025-07" not in ring(kube).buckets


def status_listed(kube: FakeKube) -> bool:
    return bool(status(kube).get("encryption", {}).get("shreddedBuckets"))
