"""kopf wiring: watch stores, policies and children; queue the affected store; reconcile.

Only `@kopf.on.event` handlers are used: they keep no progress annotations, add no
finalizers and post no events, so in steady state the operator sends no mutating request.
The reconcile itself (controller/reconcile.py) compares before it writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf

from dataward.controller.kube import Kube, load_api_client
from dataward.controller.leader import LeaderElector, LeaseSettings
from dataward.controller.metrics import LEADER, serve
from dataward.controller.queue import StoreKey, WorkQueue
from dataward.controller.reconcile import Reconciler, ReconcileSettings
from dataward.render.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_KIND, STORE_LABEL

log = logging.getLogger("dataward.operator")

GROUP, VERSION = "dataward.io", "v1alpha1"
CHILD_KINDS: tuple[tuple[str, str, str], ...] = (
    ("networking.k8s.io", "v1", "networkpolicies"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("", "v1", "serviceaccounts"),
    ("batch", "v1", "cronjobs"),
    ("batch", "v1", "jobs"),
)


@dataclass(frozen=True)
class OperatorSettings:
    """How `dataward run` behaves."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    lease_namespace: str = "dataward-system"
    lease_duration_seconds: int = 30
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    workers: int = 4
    # Key rings are not watched (the operator may not list Secrets) and keys age, so every
    # store is also re-read on this period; reads only, writes happen on a difference.
    resync_seconds: float = 60.0
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    kubeconfig: str | None = None
    metrics_port: int | None = 8080


def _owner_store(body: Mapping[str, Any]) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == STORE_KIND and str(ref.get("apiVersion", "")).startswith(GROUP):
            return str(ref.get("name"))
    return None


def connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from the same configuration the reconciler's client uses.

    kopf's own `login_via_client` reads only $KUBECONFIG or the in-cluster account; with
    `--kubeconfig` the watches would otherwise run as nobody (or not at all).
    """
    header = configuration.get_api_key_with_prefix("BearerToken") or ""
    scheme, _, token = header.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme if token else None,
        token=token or (scheme or None),
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        expiration=None,
    )


def build_registry(
    queue: WorkQueue, policies: WorkQueue, reconciler: Reconciler
) -> kopf.OperatorRegistry:
    """The handlers, on a registry of their own (no global state, testable, embeddable).

    Every handler is `async def`: kopf runs plain functions in its thread pool, and the queues
    belong to the event loop. What blocks (a list through the synchronous client) runs in a
    thread of its own, and the handler awaits it.
    """
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(reconciler.kube.api.configuration)

    @kopf.on.event(GROUP, VERSION, "personaldatastores", registry=registry)
    async def store_event(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> None:
        if namespace:
            queue.add((namespace, name))
        if spec.get("policy"):
            policies.add(("", str(spec["policy"])))  # its count of stores may have changed

    @kopf.on.event(GROUP, VERSION, "privacypolicies", registry=registry)
    async def policy_event(name: str, **_: Any) -> None:
        policies.add(("", name))
        for key in await asyncio.to_thread(reconciler.stores_of_policy, name):
            queue.add(key)

    for group, version, plural in CHILD_KINDS:

        @kopf.on.event(
            group, version, plural, labels={MANAGED_BY_LABEL: MANAGED_BY}, registry=registry
        )
        async def child_event(body: kopf.Body, namespace: str | None, **_: Any) -> None:
            if not namespace:
                return
            owner = _owner_store(body)
            if owner is not None:
                queue.add((namespace, owner))
                return
            # Jobs belong to the CronJob, not the store: find the store by its label.
            label = (body.get("metadata", {}).get("labels") or {}).get(STORE_LABEL)
            if label:
                for key in await asyncio.to_thread(
                    reconciler.stores_with_label, namespace, label
                ):
                    queue.add(key)

    return registry


async def _resync(queue: WorkQueue, reconciler: Reconciler, every: float) -> None:
    """Queue every store periodically: key ages, Secrets and RBAC are not watched."""
    while True:
        await asyncio.sleep(every)
        try:
            keys = await asyncio.to_thread(reconciler.all_stores)
        except Exception as error:  # a failed list must not end the resync for good
            log.warning("resync: listing stores failed (%s); trying again in %ss", error, every)
            continue
        for key in keys:
            queue.add(key)


async def run_operator(settings: OperatorSettings, stop: threading.Event) -> None:
    """Run until `stop` is set (a signal, or the Lease was lost)."""
    kube = Kube(load_api_client(settings.kubeconfig))
    reconciler = Reconciler(kube, settings.reconcile, settings.namespaces)
    queue = WorkQueue()
    policies = WorkQueue()  # keys ("", policy name): cluster-scoped

    async def handle(key: StoreKey) -> None:
        await asyncio.to_thread(reconciler.reconcile_logged, key)

    async def handle_policy(key: StoreKey) -> None:
        await asyncio.to_thread(reconciler.reconcile_policy_logged, key[1])

    registry = build_registry(queue, policies, reconciler)
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.posting.enabled = False  # our Events are posted on transitions only
    # The resources are known; scanning CRDs would need list/watch on them cluster-wide.
    kopf_settings.scanning.disabled = True
    kopf_settings.watching.server_timeout = 300
    kopf_stop: asyncio.Event = asyncio.Event()
    tasks = [asyncio.create_task(queue.worker(handle)) for _ in range(settings.workers)]
    tasks.append(asyncio.create_task(policies.worker(handle_policy)))
    tasks.append(asyncio.create_task(_resync(queue, reconciler, settings.resync_seconds)))

    async def watch_stop() -> None:
        await asyncio.to_thread(stop.wait)
        kopf_stop.set()

    tasks.append(asyncio.create_task(watch_stop()))
    try:
        await kopf.operator(
            registry=registry,
            settings=kopf_settings,
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            stop_flag=kopf_stop,
        )
    finally:
        # kopf takes SIGTERM/SIGINT itself when it runs in the main thread; release the thread
        # that waits on `stop`, or asyncio.run() would wait for it forever on the way out.
        stop.set()
        for task in tasks:
            task.cancel()


def run_with_leader_election(settings: OperatorSettings) -> int:
    """Hold the Lease, run the operator while it is held, stop at once when it is lost."""
    kube = Kube(load_api_client(settings.kubeconfig))
    elector = LeaderElector(
        kube,
        LeaseSettings(
            namespace=settings.lease_namespace,
            duration_seconds=settings.lease_duration_seconds,
            renew_every_seconds=settings.lease_duration_seconds / 3,
            retry_every_seconds=max(1.0, settings.lease_duration_seconds / 6),
        ),
        settings.identity,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        stop.set()
        elector.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.metrics_port:
        serve(settings.metrics_port)
    if not elector.acquire():
        return 0
    LEADER.set(1)
    renewer = threading.Thread(target=elector.keep_renewing, name="lease", daemon=True)
    renewer.start()

    def stop_when_lost() -> None:
        elector.lost.wait()
        stop.set()

    lost_watcher = threading.Thread(target=stop_when_lost, name="lease-lost", daemon=True)
    lost_watcher.start()
    try:
        asyncio.run(run_operator(settings, stop))
    finally:
        elector.stop()
    return 1 if elector.lost.is_set() else 0


def settings_from_env() -> dict[str, Any]:
    """Settings the chart passes through the environment."""
    out: dict[str, Any] = {}
    if os.environ.get("DATAWARD_NAMESPACE"):
        out["lease_namespace"] = os.environ["DATAWARD_NAMESPACE"]
    if os.environ.get("POD_NAME"):
        out["identity"] = os.environ["POD_NAME"]
    return out
