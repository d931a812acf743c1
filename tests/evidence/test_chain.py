"""The chain's verification, on records in memory: each tampering is caught by its check.

Every tampering test also runs verification without the check that caught it and shows what
remains: either nothing notices (so that check is the one that matters), or a named later
check does (defence in depth). A test whose check could be deleted unnoticed would fail here.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from dataward.evidence.chain import CHECKS, CheckName, Head, Verdict, verify_chain
from dataward.evidence.records import Record
from dataward.evidence.signing import generate_key, key_id
from tests.evidence.support import build_chain, resign

KEY = generate_key()
OTHER = generate_key()
CHAIN = build_chain(KEY, 6)


def head_of(records: list[Record]) -> Head:
    return Head(records[-1].seq, records[-1].hash) if records else Head(0, "0" * 64)


def verify(
    records: list[Record],
    head: Head | None = None,
    *,
    without: CheckName | None = None,
    anchors: tuple[Head, ...] = (),
) -> Verdict:
    checks = [c for c in CHECKS if c != without]
    stored_head = head_of(records) if head is None else head
    return verify_chain(records, stored_head, [KEY.public_key()], anchors=anchors, checks=checks)


def broken(verdict: Verdict) -> tuple[int, str] | None:
    return None if verdict.broken is None else (verdict.broken.seq, verdict.broken.check)


def test_an_untouched_chain_is_intact() -> None:
    verdict = verify(CHAIN)
    assert verdict.intact and verdict.records == 6
    assert verdict.last == Head(6, CHAIN[-1].hash)
    assert [r.seq for r in CHAIN] == [1, 2, 3, 4, 5, 6]
    assert CHAIN[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(CHAIN))


def test_an_empty_log_is_intact() -> None:
    assert verify([], Head(0, "0" * 64)).intact


def test_an_edited_payload_is_caught_by_the_hash() -> None:
    edited = list(CHAIN)
    edited[2] = replace(CHAIN[2], payload={**CHAIN[2].payload, "keyId": 99})
    verdict = verify(edited)
    assert broken(verdict) == (3, "hash")
    assert "record 3's content does not match its hash" in verdict.broken.message  # type: ignore[union-attr]
    assert verdict.last.seq == 2
    # The signature covers the stored hash, which the edit left alone: only the hash sees it.
    assert verify(edited, without="hash").intact


@pytest.mark.parametrize("field", ["time", "kind", "subject", "key_id"])
def test_every_field_is_covered_by_the_hash(field: str) -> None:
    edited = list(CHAIN)
    value = {"time": "2020-01-01T00:00:00.000000Z", "kind": "key.created",
             "subject": "other/store", "key_id": key_id(OTHER.public_key())}[field]  # fmt: skip
    edited[3] = replace(CHAIN[3], **{field: value})
    assert broken(verify(edited)) == (4, "hash")
    # The signature is over the stored hash: it only notices a change of the signer's name.
    expected = (4, "signature") if field == "key_id" else None
    assert broken(verify(edited, without="hash")) == expected


def test_a_deleted_record_is_a_gap() -> None:
    gapped = CHAIN[:2] + CHAIN[3:]
    verdict = verify(gapped)
    assert broken(verdict) == (3, "sequence")
    assert "record 3 is missing" in verdict.broken.message  # type: ignore[union-attr]
    # Without the sequence check the link check still sees that record 4 does not follow 2.
    assert broken(verify(gapped, without="sequence")) == (4, "link")


def test_a_deleted_record_with_the_rest_renumbered_breaks_the_link() -> None:
    renumbered = CHAIN[:2] + [replace(r, seq=r.seq - 1) for r in CHAIN[3:]]
    assert broken(verify(renumbered, Head(5, CHAIN[-1].hash))) == (3, "link")
    assert broken(verify(renumbered, Head(5, CHAIN[-1].hash), without="link")) == (3, "hash")


def test_reordered_records_break_the_link() -> None:
    swapped = [*CHAIN[:2], replace(CHAIN[3], seq=3), replace(CHAIN[2], seq=4), *CHAIN[4:]]
    verdict = verify(swapped)
    assert broken(verdict) == (3, "link")
    assert "does not follow record 2" in verdict.broken.message  # type: ignore[union-attr]
    assert broken(verify(swapped, without="link")) == (3, "hash")


def test_a_wrong_previous_hash_is_caught_by_the_link() -> None:
    # A genuine record from another chain signed by the same key (say, a staging log): its
    # hash and signature are valid, only its place in this chain is not.
    other_chain = build_chain(KEY, 3, Head(2, "ab" * 32))
    spliced = [*CHAIN[:2], other_chain[0], *CHAIN[3:]]
    assert other_chain[0].seq == 3
    verdict = verify(spliced)
    assert broken(verdict) == (3, "link")
    # Record 4 then does not follow the spliced record 3 either: only the link sees this.
    assert verify(spliced, without="link").intact


def test_a_forged_signature_is_caught() -> None:
    forged = list(CHAIN)
    forged[4] = replace(CHAIN[4], signature=CHAIN[3].signature)
    verdict = verify(forged)
    assert broken(verdict) == (5, "signature")
    assert "does not verify" in verdict.broken.message  # type: ignore[union-attr]
    assert verify(forged, without="signature").intact


def test_a_record_resigned_with_another_key_is_caught() -> None:
    edited = replace(CHAIN[5], payload={**CHAIN[5].payload, "generation": 5})
    own_id = [*CHAIN[:5], resign(edited, OTHER)]
    claimed = [*CHAIN[:5], resign(edited, OTHER, claim_key=CHAIN[5].key_id)]
    for tampered, words in ((own_id, "not among the given public keys"),
                            (claimed, "does not verify")):  # fmt: skip
        verdict = verify(tampered)
        assert broken(verdict) == (6, "signature")
        assert words in verdict.broken.message  # type: ignore[union-attr]
        # Re-hashing needs no secret: without signatures the rewrite would pass.
        assert verify(tampered, without="signature").intact


def test_truncate_and_rewrite_is_caught_at_the_first_rewritten_record() -> None:
    rewritten = CHAIN[:2] + build_chain(OTHER, 5, Head(2, CHAIN[1].hash))
    verdict = verify(rewritten)
    assert broken(verdict) == (3, "signature")
    assert verify(rewritten, without="signature").intact


def test_records_cut_off_the_end_are_caught_by_the_head() -> None:
    cut = CHAIN[:4]
    verdict = verify(cut, Head(6, CHAIN[-1].hash))
    assert broken(verdict) == (5, "head")
    assert "records 5 to 6 were cut off" in verdict.broken.message  # type: ignore[union-attr]
    assert verify(cut, Head(6, CHAIN[-1].hash), without="head").intact


def test_a_head_that_does_not_match_the_last_record_is_caught() -> None:
    assert broken(verify(CHAIN, Head(6, "cd" * 32))) == (6, "head")
    assert broken(verify(CHAIN, Head(0, "0" * 64))) == (1, "head")


def test_a_missing_head_is_a_break() -> None:
    verdict = verify_chain(CHAIN[:4], None, [KEY.public_key()])
    assert broken(verdict) == (5, "head")
    assert "head row is gone" in verdict.broken.message  # type: ignore[union-attr]


def test_a_cut_that_also_moved_the_head_needs_an_anchor() -> None:
    # What the chain alone cannot prove: cut the end and move the head back, and the rest is
    # a valid chain. A head kept from an earlier verification (an anchor) catches it.
    cut = CHAIN[:4]
    assert verify(cut).intact
    anchor = (Head(6, CHAIN[-1].hash),)
    verdict = verify(cut, anchors=anchor)
    assert broken(verdict) == (5, "anchor")
    assert verify(cut, anchors=anchor, without="anchor").intact
    assert verify(CHAIN, anchors=anchor).intact


def test_an_anchor_on_a_rewritten_record_is_caught() -> None:
    rewritten = CHAIN[:2] + build_chain(KEY, 4, Head(2, CHAIN[1].hash))
    # Signed with the operator's own key (a stolen key): only an anchor can tell.
    assert verify(rewritten).intact
    # Where the rewrite began is unknown: nothing before the anchor is proven either.
    verdict = verify(rewritten, anchors=(Head(5, CHAIN[4].hash),))
    assert broken(verdict) == (1, "anchor") and verdict.last.seq == 0
    # An earlier anchor that still matches proves the records up to it.
    verdict = verify(rewritten, anchors=(Head(2, CHAIN[1].hash), Head(5, CHAIN[4].hash)))
    assert broken(verdict) == (3, "anchor") and verdict.last == Head(2, CHAIN[1].hash)
    message = verdict.broken.message  # type: ignore[union-attr]
    assert "rewritten after record 2, at or before record 5" in message


def test_a_repeated_sequence_number_is_caught() -> None:
    repeated = [*CHAIN[:3], CHAIN[2], *CHAIN[3:]]
    verdict = verify(repeated)
    assert broken(verdict) == (3, "sequence")
    assert "appears again" in verdict.broken.message  # type: ignore[union-attr]


def test_several_public_keys_verify_a_chain_signed_across_a_key_change() -> None:
    first = build_chain(KEY, 3)
    second = build_chain(OTHER, 3, head_of(first))
    chain = first + second
    both = [KEY.public_key(), OTHER.public_key()]
    assert verify_chain(chain, head_of(chain), both).intact
    assert broken(verify_chain(chain, head_of(chain), [KEY.public_key()])) == (4, "signature")
