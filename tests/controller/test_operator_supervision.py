"""`run_operator` outlives its CRDs (issue 10, item 7), with kopf and the API stubbed out.

kopf's watch of the stores fails with a 404 once their CRD is deleted, and that ended
`run_operator`, hence the process (a crash loop in a Deployment). The e2e twin of this test
(e2e/test_resilience.py) deletes the real CRDs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

import pytest

from dataward.controller import operator as operator_module
from dataward.controller.affinity import ANY
from dataward.controller.kube import Kube
from dataward.controller.operator import OperatorSettings, run_operator


class _Reconciler:
    def __init__(self, kube: Kube, *_: Any) -> None:
        self.kube = kube

    def all_stores(self) -> list[tuple[str, str]]:
        return []

    def shard_stores(self) -> list[tuple[str, str]]:
        return []


def _until(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _stubbed(
    monkeypatch: pytest.MonkeyPatch,
    crds: dict[str, bool],
    kopf_operator: Callable[..., Coroutine[Any, Any, None]],
) -> OperatorSettings:
    """`run_operator` with `kopf_operator` in kopf's place, no API client, a stand-in
    reconciler, and discovery serving the CRDs while `crds["served"]`; the settings to run
    it with (CRDs checked every 50 ms)."""

    def served(self: Kube, group_version: str) -> set[str]:
        return set(operator_module.CRD_PLURALS) if crds["served"] else set()

    monkeypatch.setattr(operator_module.kopf, "operator", kopf_operator)
    monkeypatch.setattr(operator_module, "load_api_client", lambda *_, **__: object())
    monkeypatch.setattr(operator_module, "Reconciler", _Reconciler)
    monkeypatch.setattr(Kube, "served", served, raising=False)
    return OperatorSettings(resync_seconds=3600, metrics_port=None, crd_check_seconds=0.05)


def test_kopf_failing_on_a_deleted_crd_does_not_end_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crds = {"served": True}
    runs: list[int] = []

    async def kopf_operator(*, stop_flag: asyncio.Event, **_: Any) -> None:
        runs.append(len(runs) + 1)
        if len(runs) == 1:
            crds["served"] = False  # someone deletes the CRDs; the watch gets a 404
            raise RuntimeError("APINotFoundError: 404 watching personaldatastores")
        await stop_flag.wait()

    settings = _stubbed(monkeypatch, crds, kopf_operator)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(run_operator(settings, stop))
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert _until(lambda: len(runs) == 1)
        time.sleep(0.3)  # several CRD checks
        assert thread.is_alive(), f"run_operator ended with its CRDs: {errors}"
        assert len(runs) == 1, "kopf was restarted while its CRDs were missing"
        crds["served"] = True  # the CRDs are installed again
        assert _until(lambda: len(runs) == 2), "kopf was not started again"
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert errors == []


def test_the_operator_stops_kopf_when_discovery_no_longer_serves_its_crds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # kopf notices a deleted CRD only when its watch re-lists; discovery tells at once.
    crds = {"served": True}
    runs: list[str] = []

    async def kopf_operator(*, stop_flag: asyncio.Event, **_: Any) -> None:
        runs.append("started")
        await stop_flag.wait()
        runs.append("stopped")

    settings = _stubbed(monkeypatch, crds, kopf_operator)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(run_operator(settings, stop)), daemon=True)
    thread.start()
    try:
        assert _until(lambda: runs == ["started"])
        crds["served"] = False
        assert _until(lambda: runs == ["started", "stopped"]), runs
        time.sleep(0.2)
        assert runs == ["started", "stopped"], "kopf ran without its CRDs"
        crds["served"] = True
        assert _until(lambda: runs == ["started", "stopped", "started"]), runs
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


class _Elector:
    """A LeaderElector whose first spell of leadership ends in a lost Lease."""

    made: ClassVar[list[_Elector]] = []

    def __init__(self, *_: Any) -> None:
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self.acquired = 0
        self.released = False
        _Elector.made.append(self)

    def acquire(self) -> bool:
        self.acquired += 1
        self.lost.clear()
        return not self.cancelled.is_set()

    def keep_renewing(self) -> None:
        if self.acquired == 1:
            time.sleep(0.05)
            self.lost.set()  # the renew deadline passed
            return
        self.cancelled.wait()

    def leading(self) -> bool:
        return not self.lost.is_set()

    def cancel(self) -> None:
        self.cancelled.set()

    def stop(self) -> None:
        self.cancelled.set()
        self.released = True


def test_a_replica_that_lost_its_lease_stops_working_and_takes_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spells: list[str] = []

    async def fake_run_operator(
        settings: OperatorSettings,
        stop: threading.Event,
        shutdown: threading.Event | None = None,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        if not spells:
            spells.append("first")
            await asyncio.to_thread(stop.wait, 5)  # until the Lease is lost
            assert stop.is_set(), "work went on after the Lease was lost"
            assert may_write is not None and not may_write()
            return
        spells.append("second")
        assert may_write is not None and may_write()
        if shutdown is not None:
            shutdown.set()  # as a SIGTERM would
        stop.set()

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    monkeypatch.setattr(operator_module, "LeaderElector", _Elector)
    monkeypatch.setattr(operator_module, "load_api_client", lambda *_, **__: object())
    monkeypatch.setattr(operator_module, "run_operator", fake_run_operator)
    try:
        # ANY: holding the test process to one CPU would hold every test after it there.
        code = operator_module.run_with_leader_election(
            OperatorSettings(metrics_port=None, cpu_affinity=ANY)
        )
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert spells == ["first", "second"], "the replica did not take the Lease back"
    elector = _Elector.made[-1]
    assert elector.acquired == 2 and elector.released
    assert code == 0


def test_kopfs_tracebacks_of_a_vanished_crd_are_left_to_one_warning() -> None:
    class APINotFoundError(Exception):
        status = 404

    APINotFoundError.__module__ = "kopf._cogs.clients.errors"

    def record(error: Exception) -> logging.LogRecord:
        return logging.LogRecord(
            "kopf._core.reactor.running", logging.ERROR, __file__, 1,
            "Multidimensional multitasker has failed: %s", (error,),
            (type(error), error, None),
        )

    quiet = operator_module._KopfNotFoundFilter()
    assert not quiet.filter(record(APINotFoundError("404 page not found")))
    assert quiet.filter(record(RuntimeError("anything else")))
