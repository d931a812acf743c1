"""The startup line a restart is timed by: said once, when the last store served at start
is done."""

from dataward.controller.queue import FirstPass


def test_said_once_when_the_last_store_served_at_start_is_reconciled() -> None:
    first = FirstPass()
    first.begin([("a", "one"), ("a", "two"), ("b", "three")], now=100.0)
    assert first.done(("a", "one"), now=101.0) is None
    assert first.done(("c", "created-after-start"), now=101.5) is None
    assert first.done(("a", "one"), now=102.0) is None  # again: still two waiting
    assert first.done(("a", "two"), now=103.0) is None
    message = first.done(("b", "three"), now=112.5)
    assert message is not None and "12.50 s" in message
    assert first.done(("b", "three"), now=113.0) is None


def test_a_later_resync_does_not_start_the_count_again() -> None:
    first = FirstPass()
    first.begin([("a", "one")], now=0.0)
    first.begin([("a", "one"), ("a", "two")], now=60.0)
    message = first.done(("a", "one"), now=2.0)
    assert message is not None and "2.00 s" in message


def test_reconciles_before_the_caches_listed_do_not_count() -> None:
    first = FirstPass()
    assert first.done(("a", "one"), now=0.5) is None
    first.begin([("a", "one")], now=1.0)
    assert first.done(("a", "one"), now=3.0) is not None
