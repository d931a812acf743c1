"""Leader election with a coordination.k8s.io Lease, as kube-controller-manager does it.

kopf's peering pauses lower-priority operators but lets two of the same priority both work,
so only the holder of this Lease runs the reconcilers. Renewals are liveness, not writes to
stores or their children.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dataward.controller.kube import Kube, KubeError

log = logging.getLogger("dataward.leader")


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease lives and how long a holder keeps it without renewing."""

    namespace: str
    name: str = "dataward-operator"
    duration_seconds: int = 30
    renew_every_seconds: float = 10.0
    retry_every_seconds: float = 5.0


def _micro_time(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def lease_is_free(lease: dict[str, Any], identity: str, now: datetime) -> bool:
    """True when nobody else holds the lease: ours already, empty, or expired."""
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity")
    if not holder or holder == identity:
        return True
    renewed = _parse_micro_time(spec.get("renewTime")) or _parse_micro_time(spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or 0)
    return renewed is None or renewed + timedelta(seconds=duration) < now


class LeaderElector:
    """Acquire, renew and release one Lease; `lost` is set the moment leadership ends."""

    def __init__(self, kube: Kube, settings: LeaseSettings, identity: str) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = identity
        self.lost = threading.Event()
        self._stop = threading.Event()

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

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards."""
        now = datetime.now(UTC)
        try:
            lease = self.kube.get("Lease", self.settings.namespace, self.settings.name)
            if lease is None:
                self.kube.create(self._body(None, now))
                return True
            if not lease_is_free(lease, self.identity, now):
                return False
            self.kube.replace(self._body(lease, now))
            return True
        except KubeError as error:
            # A 409 means someone else wrote first; anything else is "unknown": not ours.
            log.info("lease %s/%s not held: %s", self.settings.namespace, self.settings.name, error)
            return False

    def acquire(self) -> bool:
        """Block until the lease is ours (True) or stop() was called (False)."""
        while not self._stop.is_set():
            if self.try_acquire_or_renew():
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
        """Renew until stop() or until the lease cannot be renewed within its duration."""
        last_renewed = datetime.now(UTC)
        while not self._stop.wait(self.settings.renew_every_seconds):
            if self.try_acquire_or_renew():
                last_renewed = datetime.now(UTC)
                continue
            if datetime.now(UTC) - last_renewed > timedelta(
                seconds=self.settings.duration_seconds * 2 / 3
            ):
                log.error("lost lease %s/%s; stopping", self.settings.namespace, self.settings.name)
                self.lost.set()
                return

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
