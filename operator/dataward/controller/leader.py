"""Leader election with a coordination.k8s.io Lease, as kube-controller-manager does it.

kopf's peering pauses lower-priority operators but lets two of the same priority both work,
so only the holder of this Lease runs the reconcilers. Renewals are liveness, not writes to
stores or their children.

Like client-go's leader election, a holder that has not renewed within `renew_deadline_seconds`
(shorter than the Lease's duration) stops acting before anyone else may take over, even when a
renewal request hangs: the deadline is kept by the renewing thread, and every attempt runs in a
thread of its own that it does not wait for past the deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dataward.controller.kube import Kube, KubeError

log = logging.getLogger("dataward.leader")


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease lives and how long a holder keeps it without renewing.

    A holder renews every `renew_every_seconds`, retries a failed renewal every
    `retry_every_seconds`, and gives up `renew_deadline_seconds` after its last successful
    renewal (default: two thirds of the duration), so it has stopped before the Lease expires.
    """

    namespace: str
    name: str = "dataward-operator"
    duration_seconds: int = 30
    renew_every_seconds: float = 10.0
    retry_every_seconds: float = 5.0
    renew_deadline_seconds: float | None = None

    @property
    def deadline(self) -> float:
        """Seconds without a successful renewal after which the holder stops acting."""
        if self.renew_deadline_seconds is not None:
            return min(self.renew_deadline_seconds, float(self.duration_seconds))
        return self.duration_seconds * 2 / 3


def _micro_time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The fields a holder rewrites each time it takes or renews the Lease.
_RECORD = ("holderIdentity", "renewTime", "acquireTime", "leaseDurationSeconds",
           "leaseTransitions")


def lease_record(lease: dict[str, Any]) -> tuple[Any, ...]:
    """What a holder changes whenever it writes the Lease: a new record means a live holder."""
    spec = lease.get("spec") or {}
    return tuple(spec.get(field) for field in _RECORD)


def lease_is_free(
    lease: dict[str, Any], identity: str, unchanged_for: float, duration: float
) -> bool:
    """True when nobody else holds the lease: ours already, empty, or expired.

    Expired means its record has stayed the same for longer than its duration, measured on our
    own clock (`unchanged_for` seconds since we first saw it so), as client-go does: its
    renewTime is the holder's clock, which may be minutes away from ours. Never sooner than
    `duration`, ours (every replica of a release has the same): a Lease edited to a shorter
    one keeps its holder acting until its next renewal rewrites it.
    """
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if not holder or holder == identity:
        return True
    return unchanged_for > max(int(spec.get("leaseDurationSeconds") or 0), duration)


class LeaderElector:
    """Acquire, renew and release one Lease; `lost` is set the moment leadership ends.

    After a loss, `acquire()` may be called again: it clears `lost` once the Lease is held.
    """

    def __init__(
        self,
        kube: Kube,
        settings: LeaseSettings,
        identity: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = identity
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._clock = clock
        self._lock = threading.Lock()
        self._renewed_at: float | None = None  # clock() when the last successful attempt began
        # The Lease's record as last seen, and clock() when it was first seen so.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        # Attempts begun before this clock() saw another holder: their late success is void.
        self._ousted_at: float | None = None

    def leading(self) -> bool:
        """True while the last successful renewal is younger than the renew deadline.

        Time-based, so it turns False on time even while a renewal request hangs, and at once
        when an attempt sees another holder: writes are fenced with it (see Kube.may_write).
        """
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.settings.deadline

    def _remaining(self) -> float:
        with self._lock:
            renewed = self._renewed_at
        if renewed is None:
            return 0.0
        return renewed + self.settings.deadline - self._clock()

    def _body(self, lease: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
        spec = dict((lease or {}).get("spec") or {})
        taking_over = spec.get("holderIdentity") != self.identity
        if taking_over:
            spec["acquireTime"] = _micro_time(now)
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (
                1 if spec.get("holderIdentity") else 0
            )
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.settings.duration_seconds,
            renewTime=_micro_time(now),
        )
        metadata: dict[str, Any] = {
            "name": self.settings.name,
            "namespace": self.settings.namespace,
        }
        if lease is not None:
            metadata["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _unchanged_for(self, lease: dict[str, Any]) -> float:
        """Seconds, on our clock, since we first saw the Lease's present record."""
        record = lease_record(lease)
        now = self._clock()
        with self._lock:
            if record != self._observed:
                self._observed, self._observed_at = record, now
            return now - self._observed_at

    def _ousted(self, began: float) -> None:
        """Another holder has the Lease: stop acting now, not at the renew deadline."""
        with self._lock:
            self._renewed_at = None
            self._ousted_at = began if self._ousted_at is None else max(self._ousted_at, began)

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        began = self._clock()
        now = datetime.now(UTC)
        try:
            lease = self.kube.get("Lease", self.settings.namespace, self.settings.name)
            if lease is None:
                self.kube.create(self._body(None, now))
            elif not lease_is_free(lease, self.identity, self._unchanged_for(lease),
                                   self.settings.duration_seconds):
                self._ousted(began)
                return False
            else:
                self.kube.replace(self._body(lease, now))
        except KubeError as error:
            # A 409 means someone else wrote first; anything else is "unknown": not ours.
            log.info("lease %s/%s not held: %s", self.settings.namespace, self.settings.name, error)
            return False
        with self._lock:
            if self._ousted_at is not None and began <= self._ousted_at:
                return False  # a late answer from before another holder was seen
            # From when the attempt began: the Lease's renewTime is no later than that.
            if self._renewed_at is None or began > self._renewed_at:
                self._renewed_at = began
        return True

    def _attempt_within(self, seconds: float) -> bool:
        """try_acquire_or_renew(), waiting for its answer at most `seconds`.

        A request to a hung API server returns only when its own timeout fires; the attempt
        then ends on its own thread, and a late success still counts from when it began.
        """
        outcome: list[bool] = []
        done = threading.Event()

        def attempt() -> None:
            try:
                outcome.append(self.try_acquire_or_renew())
            except Exception:  # a bug must not end renewals silently
                log.exception("lease renewal failed")
            finally:
                done.set()

        threading.Thread(target=attempt, name="lease-attempt", daemon=True).start()
        return done.wait(max(seconds, 0.0)) and bool(outcome and outcome[0])

    def acquire(self) -> bool:
        """Block until the lease is ours (True) or stop() was called (False)."""
        while not self._stop.is_set():
            if self.try_acquire_or_renew():
                self.lost.clear()
                log.info(
                    "acquired lease %s/%s as %s",
                    self.settings.namespace,
                    self.settings.name,
                    self.identity,
                )
                return True
            self._stop.wait(self.settings.retry_every_seconds)
        return False

    def keep_renewing(self) -> None:
        """Renew until stop(), or set `lost` once the renew deadline passes without a renewal,
        or at once when a renewal finds the Lease held by another (deleted and taken, edited).

        Returns at the deadline even when a renewal request hangs.
        """
        wait = self.settings.renew_every_seconds
        while not self._stop.wait(min(wait, max(self._remaining(), 0.0))):
            remaining = self._remaining()
            if remaining > 0 and self._attempt_within(remaining):
                wait = self.settings.renew_every_seconds
                continue
            if self._stop.is_set():
                return
            if not self.leading():
                log.error(
                    "could not renew lease %s/%s within %gs: lost leadership, stopping work",
                    self.settings.namespace,
                    self.settings.name,
                    self.settings.deadline,
                )
                self.lost.set()
                return
            wait = self.settings.retry_every_seconds

    def cancel(self) -> None:
        """Stop acquiring and renewing (safe in a signal handler: sends no request)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop renewing and release the lease so a successor need not wait for it to expire."""
        self._stop.set()
        if self.lost.is_set():
            return
        try:
            lease = self.kube.get("Lease", self.settings.namespace, self.settings.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                body = self._body(lease, datetime.now(UTC))
                body["spec"]["holderIdentity"] = None
                self.kube.replace(body)
        except KubeError as error:
            log.info("could not release lease: %s", error)
