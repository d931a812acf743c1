"""A cache whose watch fails (bench/notes/cache-watch.md): backed off, failed, not synced by a
LIST alone.

Each test runs an informer's real loop (`Informer.run`: its LIST pages, `_stream`'s WATCH
requests) against a stubbed API on a simulated clock: every request takes `LATENCY`
simulated seconds, a watch that stays open takes its whole `timeoutSeconds`, and waiting
(`stop.wait`) moves the clock instead of sleeping. The run ends when the clock passes the
simulated span.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

import pytest

from dataward.controller import cache as cache_module
from dataward.controller.cache import (
    CachedKind,
    Caches,
    Informer,
    WatchResult,
    WatchStep,
    closed_fast,
    judge_watch,
)
from dataward.controller.kube import Kube
from dataward.controller.staleness import STALE_GRACE_SECONDS, overdue

LATENCY = 0.02  # simulated seconds a request takes
TEN_MINUTES = 600.0
# What the API answers a WATCH with: a status, the events it sends, whether it then stays
# open until its timeout (a healthy, quiet watch) or closes at once.
Answer = tuple[int, list[dict[str, Any]], bool]
FORBIDDEN: Answer = (403, [], False)
SERVER_ERROR: Answer = (500, [], False)
EMPTY_AND_CLOSED: Answer = (200, [], False)  # the fast-closing empty watch
QUIET: Answer = (200, [], True)
BOOKMARK: Answer = (200, [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}],
                    True)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class SimStop:
    """The informer's stop event on the simulated clock: set once the span has passed."""

    def __init__(self, clock: Clock, span: float) -> None:
        self.clock = clock
        self.end = clock.now + span

    def is_set(self) -> bool:
        return self.clock.now >= self.end

    def wait(self, seconds: float | None = None) -> bool:
        self.clock.now += seconds or 0.0
        return self.is_set()


class _Response:
    def __init__(self, clock: Clock, answer: Answer, timeout: float) -> None:
        self.clock = clock
        self.status, self.events, self.stays_open = answer
        self.reason = {200: "OK", 403: "Forbidden", 500: "Internal Server Error"}[self.status]
        self.timeout = timeout

    def stream(self, amount: int, decode_content: bool = True) -> Iterator[bytes]:
        for event in self.events:
            yield json.dumps(event).encode() + b"\n"
        if self.stays_open:
            self.clock.now += self.timeout

    def close(self) -> None:
        pass


@dataclass
class SimApi:
    """The requests of one informer: LISTs answered with one store, WATCHes by `answers`."""

    clock: Clock
    answers: Callable[[int], Answer]  # by the WATCH's index
    list_status: Callable[[int], int] = lambda _: 200
    lists: list[float] = field(default_factory=list)
    watches: list[tuple[float, int]] = field(default_factory=list)  # (when, timeoutSeconds)
    timeout: tuple[float, float] = (5.0, 30.0)

    def _call(self, method: str, path: str, *, query: Any = None, what: str, **_: Any) -> Any:
        from dataward.controller.kube import KubeError

        self.clock.now += LATENCY
        self.lists.append(self.clock.now)
        status = self.list_status(len(self.lists) - 1)
        if status != 200:
            raise KubeError(status, "Forbidden" if status == 403 else "Error", what)
        store = {"kind": "PersonalDataStore",
                 "metadata": {"name": "a", "namespace": "n", "resourceVersion": "5"}}
        return {"metadata": {"resourceVersion": "5"}, "items": [store]}

    def open(self, method: str, path: str, query: Any, headers: Any, **_: Any) -> _Response:
        self.clock.now += LATENCY
        timeout = float(dict(query)["timeoutSeconds"])
        self.watches.append((self.clock.now, int(timeout)))
        return _Response(self.clock, self.answers(len(self.watches) - 1), timeout)


@dataclass
class Run:
    informer: Informer
    api: SimApi
    health: list[tuple[float, bool]]  # (when, synced) at each on_health


def simulate(
    monkeypatch: pytest.MonkeyPatch,
    answers: Callable[[int], Answer],
    span: float = TEN_MINUTES,
    optional: bool = False,
    list_status: Callable[[int], int] = lambda _: 200,
    informer: Informer | None = None,
) -> Run:
    """Run one stores' informer (resync 300 s, the chart's default) for `span` simulated
    seconds; a given `informer` (stubbed API and clock already set) goes on from its state."""
    clock = Clock()
    monkeypatch.setattr(cache_module, "time", clock)
    api = SimApi(clock, answers, list_status)
    health: list[tuple[float, bool]] = []
    if informer is None:
        informer = Informer(
            cast(Kube, api), CachedKind("PersonalDataStore", optional=optional), None, 300,
            lambda *_: None, lambda *_: health.append((clock.now, informer_ref[0].synced)),
        )  # fmt: skip
    else:
        informer.kube = cast(Kube, api)
    informer_ref = [informer]
    informer.run(cast(threading.Event, SimStop(clock, span)))
    return Run(informer, api, health)


def _caches_of(run: Run) -> Caches:
    """`Caches` over the one simulated informer."""
    caches = Caches(cast(Kube, run.api), (), (), 300, lambda *_: None, lambda *_: None)
    caches.informers[("PersonalDataStore", None)] = run.informer
    caches.specs["PersonalDataStore"] = run.informer.spec
    return caches


def _gaps(run: Run) -> list[float]:
    """Simulated seconds between one WATCH request and the next."""
    return [b[0] - a[0] for a, b in pairwise(run.api.watches)]


def test_a_refused_watch_is_backed_off_to_a_watch_every_15_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only `watch` revoked: the LIST still answers. Was: LIST and WATCH about every second
    (577 of each in ten simulated minutes), the cache synced again by each LIST."""
    run = simulate(monkeypatch, lambda _: FORBIDDEN)
    gaps = [round(gap) for gap in _gaps(run)]
    assert gaps[:6] == [1, 2, 4, 8, 15, 15]  # doubling from 1 s to the 15 s cap
    assert set(gaps[4:]) == {15}
    assert len(run.api.watches) <= 45 and len(run.api.lists) <= 45


def test_a_refused_watch_fails_the_cache_at_once_and_no_list_makes_it_synced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every verdict read from the cache is Unknown from the first 403 on, and the outage is
    one (its start never moves), so the staleness grace period runs out. Was: each LIST made
    the cache synced again, and the outage began anew every second."""
    run = simulate(monkeypatch, lambda _: FORBIDDEN)
    first_watch = run.api.watches[0][0]
    assert [synced for _, synced in run.health] == [True, False]  # the first list, the 403
    assert run.health[1][0] == pytest.approx(first_watch)
    assert not run.informer.synced
    assert run.informer.unsynced_since == pytest.approx(first_watch)
    assert run.informer.error == "HTTP 403 Forbidden on its watch"
    caches = _caches_of(run)
    (late,) = overdue(caches.outages(), run.api.clock.now, STALE_GRACE_SECONDS)
    assert late.kind == "PersonalDataStore"  # the existing staleness path takes it from here


def test_other_watch_failures_fail_the_cache_at_the_third_in_a_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = simulate(monkeypatch, lambda _: SERVER_ERROR, span=20)
    third = run.api.watches[2][0]
    assert [synced for _, synced in run.health] == [True, False]
    assert run.health[1][0] == pytest.approx(third)
    assert "500" in (run.informer.error or "")


def test_a_watch_that_closes_at_once_with_nothing_is_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer 200 with no event, closed at once: was a new WATCH at once, for the whole
    resync period (30,000 in ten simulated minutes), the cache synced throughout."""
    run = simulate(monkeypatch, lambda _: EMPTY_AND_CLOSED)
    assert len(run.api.watches) <= 45
    assert not run.informer.synced
    assert run.health[1][0] == pytest.approx(run.api.watches[2][0])  # the third in a row


def test_a_healthy_watch_resets_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three refused, then one that stays open its whole timeout, then refused again.
    answers = lambda i: QUIET if i == 3 else FORBIDDEN  # noqa: E731
    run = simulate(monkeypatch, answers, span=80)
    # 1, 2, 4 s; the quiet watch's 10 s; then from 1 s again.
    assert [round(gap) for gap in _gaps(run)[:6]] == [1, 2, 4, 10, 1, 2]


def test_while_failed_a_watch_asks_for_at_most_ten_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = lambda i: FORBIDDEN if i < 2 else QUIET  # noqa: E731
    run = simulate(monkeypatch, answers, span=120)
    timeouts = [timeout for _, timeout in run.api.watches]
    assert timeouts[0] > 10  # synced: a long watch
    assert timeouts[1:3] == [10, 10]  # failed: recovery noticed within 10 s
    assert timeouts[3] > 10  # recovered by the watch before it


def test_a_list_alone_does_not_recover_a_cache_but_a_watch_that_opens_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Refused twice; then a LIST and a watch that closes at once (not recovered); then a
    # LIST and a watch that stays open: synced once it has lasted (its 10 s timeout).
    answers = lambda i: FORBIDDEN if i < 2 else EMPTY_AND_CLOSED if i == 2 else QUIET  # noqa: E731
    run = simulate(monkeypatch, answers, span=60)
    assert [synced for _, synced in run.health] == [True, False, True]
    opened = run.api.watches[3]
    assert run.api.lists[3] < opened[0]  # listed before, and not synced by it
    assert run.health[2][0] == pytest.approx(opened[0] + opened[1])
    assert run.informer.synced


def test_a_bookmark_recovers_a_failed_cache_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = lambda i: FORBIDDEN if i == 0 else BOOKMARK  # noqa: E731
    run = simulate(monkeypatch, answers, span=30)
    assert [synced for _, synced in run.health] == [True, False, True]
    assert run.health[2][0] == pytest.approx(run.api.watches[1][0])


def test_an_optional_kind_whose_watch_is_refused_is_read_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = simulate(monkeypatch, lambda _: FORBIDDEN, optional=True)
    assert run.informer.forbidden
    assert (len(run.api.lists), len(run.api.watches)) == (1, 1)  # stopped for good
    caches = _caches_of(run)
    assert caches.outages() == []
    assert not caches.watching("PersonalDataStore", "n")


def test_a_list_that_fails_and_then_answers_still_syncs_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed LIST is not a failed watch: the LIST that answers after it decides."""
    run = simulate(monkeypatch, lambda _: QUIET, span=30,
                   list_status=lambda i: 403 if i == 0 else 200)  # fmt: skip
    assert run.informer.synced
    assert run.health and run.health[-1] == (pytest.approx(run.api.lists[1]), True)


def test_failed_lists_back_off_as_failed_watches_do_and_a_list_that_answers_resets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One backoff for a cache's failures (`watch_backoff`): LISTs refused six times in a row
    are retried 1, 2, 4, 8, 15 and 15 s apart; after one answers, its watch refused waits
    1 s before the next LIST, not 15 (the LISTs' count does not carry over)."""
    run = simulate(monkeypatch, lambda _: FORBIDDEN, span=120,
                   list_status=lambda i: 500 if i < 6 else 200)  # fmt: skip
    lists = [round(b - a) for a, b in pairwise(run.api.lists[:8])]
    assert lists == [1, 2, 4, 8, 15, 15, 1], lists


@pytest.mark.parametrize(
    ("result", "failures", "expected"),
    [
        # Refused: failed at once, whatever came before.
        (WatchResult(status=403, error="x"), 0, WatchStep(1, False, True, True, 1.0)),
        # Other failures: at the third in a row; the backoff doubles to its cap.
        (WatchResult(status=500), 1, WatchStep(2, False, False, True, 2.0)),
        (WatchResult(status=0), 2, WatchStep(3, False, True, True, 4.0)),
        (WatchResult(fast=True), 6, WatchStep(7, False, True, True, 15.0)),
        # Events before the break: it worked, the count starts over.
        (WatchResult(events=3, status=0), 5, WatchStep(1, True, False, True, 1.0)),
        # Open until its timeout, or a bookmark: healthy, watched on.
        (WatchResult(), 4, WatchStep(0, True, False, False, 0.0)),
        (WatchResult(events=1), 4, WatchStep(0, True, False, False, 0.0)),  # one bookmark
        # 410 Gone: list again at once, no failure, proves nothing.
        (WatchResult(gone=True), 2, WatchStep(2, False, False, True, 0.0)),
    ],
)
def test_judge_watch(result: WatchResult, failures: int, expected: WatchStep) -> None:
    assert judge_watch(result, failures) == expected


def test_a_watch_asked_for_one_second_that_lasts_it_did_not_close_fast() -> None:
    assert closed_fast(0.02, 300) and closed_fast(0.4, 1)
    assert not closed_fast(0.6, 1) and not closed_fast(1.5, 300)


def test_a_cache_due_for_its_periodic_relist_keeps_watching_while_another_relists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety resync's re-lists, one cache at a time: a re-list stops its cache's watch
    while it lists, and the caches, started together, fall due together. Red before: a
    cache re-listed the moment it was due, whatever else did. Now
    one due while another re-lists keeps watching (a change is still seen at once), in
    watches of at most RELIST_TURN_SECONDS, and re-lists when its turn comes."""
    informer = Informer(cast(Kube, None), CachedKind("PersonalDataStore"), None, 300,
                        lambda *_: None, lambda *_: None)  # fmt: skip
    turn = informer.relist_turn = threading.Lock()  # its Caches' turn, shared
    assert turn.acquire(blocking=False)  # another cache is re-listing
    ours = [True]  # the turn taken above is still held here
    start = Clock().now
    other_done = start + 300 + 9  # that re-list ends 9 s after this cache is due

    def answers(index: int) -> Answer:
        if ours[0] and cache_module.time.monotonic() >= other_done:
            ours[0] = False
            turn.release()
        return QUIET

    try:
        run = simulate(monkeypatch, answers, span=400, informer=informer)
    finally:
        if ours[0]:
            turn.release()
    assert len(run.api.lists) == 2
    assert run.api.lists[1] >= other_done  # not at 300: it waited for its turn
    waiting = [(at, t) for at, t in run.api.watches if start + 300 <= at < other_done]
    assert waiting and all(t <= cache_module.RELIST_TURN_SECONDS for _, t in waiting)
    assert not turn.locked()  # given back once its re-list ended


def test_the_caches_of_one_operator_take_turns_to_relist() -> None:
    """Every cache of one `Caches`, and one added later, shares one turn; another `Caches`
    (another operator in the same process, as in tests) has its own."""
    made = [Caches(cast(Kube, None), (CachedKind("PersonalDataStore"), CachedKind("Role")), (),
                   300, lambda *_: None, lambda *_: None) for _ in range(2)]  # fmt: skip
    made[0].add(CachedKind("RoleBinding"))
    turns = [{id(i.relist_turn) for i in caches.informers.values()} for caches in made]
    assert [len(t) for t in turns] == [1, 1] and turns[0] != turns[1]
