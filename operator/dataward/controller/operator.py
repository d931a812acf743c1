"""The operator's loop: watch-fed caches queue the affected stores; workers reconcile them.

Stores, policies, every child kind and the RBAC and NetworkPolicies a verdict depends on are
listed once and then watched (controller/cache.py); a reconcile reads them from there, and
each change queues the stores it can affect. kopf keeps only its login and lifecycle: it runs
while the CRDs are served (its own watches are gone). The reconcile itself
(controller/reconcile.py) compares before it writes, so in steady state the operator sends no
mutating request.

The process outlives what goes wrong under it: losing the Lease (or failing to renew it
within the renew deadline, e.g. with a hung API server) stops the work at once and the
replica tries to take the Lease back; deleting the CRDs stops kopf, not the process, which
waits for them and starts kopf again when they are back. Every request has a timeout.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from dataward.checks.network import calico_escapes
from dataward.controller.access_log import AccessLogFollower
from dataward.controller.affinity import ONE, hold_one_cpu
from dataward.controller.cache import CachedKind, Caches
from dataward.controller.kube import (
    DEFAULT_TIMEOUT,
    RESOURCES,
    Connection,
    Kube,
    KubeError,
    load_api_client,
)
from dataward.controller.leader import LeaderElector, LeaseSettings
from dataward.controller.metrics import (
    CRDS_SERVED,
    LEADER,
    serve,
    unwatch_health,
    watch_health,
)
from dataward.controller.queue import FirstPass, StoreKey, WorkQueue
from dataward.controller.reconcile import (
    KEY_RING_CACHE,
    Outcome,
    Reconciler,
    ReconcileSettings,
    counted_changes,
)
from dataward.controller.staleness import STALE_GRACE_SECONDS, StaleVerdicts, check_period
from dataward.controller.subjects import SubjectRequests, SubjectSettings, request_keys_for_event
from dataward.render.key_ring import KEY_RING_SELECTOR
from dataward.render.labels import MANAGED_BY, MANAGED_BY_LABEL, STORE_KIND, STORE_LABEL

log = logging.getLogger("dataward.operator")

GROUP, VERSION = "dataward.io", "v1alpha1"
CRD_PLURALS = ("personaldatastores", "privacypolicies")
# How long a policy's store counts may lag a store becoming (or ceasing to be) Ready, created or
# deleted: 1,000 stores converging at once wrote the one policy's status 1,122 times.
POLICY_COUNT_DELAY = 1.0
EXECUTOR_SPARE = 4  # threads beside the store workers: the policy and request lanes, discovery
# A store worker takes up to BATCH_KEYS keys when many wait, and runs them in one trip to its
# thread until BATCH_SECONDS have passed (the rest go back to the queue): a restart's 10,000
# reconciles with nothing to do made 10,000 trips from the loop to a thread and back, while a
# reconcile that writes (tens of ms) still makes one trip alone.
BATCH_KEYS = 16
BATCH_SECONDS = 0.05
# Served when its CRD is installed: `helm upgrade` does not install a chart's new CRDs, so an
# operator upgraded without it still serves stores and policies (and says what is missing).
WATCH_SECONDS = 300  # the server ends each watch request after this long; kopf re-opens it
OURS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# While the API serves them (`_follow`: dropped before the caches start where it
# does not, added or dropped later as it comes to serve them or stops): NetworkIsolated weighs
# every one, whichever namespaces it selects. Not awaited: a refused or failing LIST makes
# NetworkIsolated Unknown, not every verdict stand still.
ADMIN_POLICY_CACHE = CachedKind("AdminNetworkPolicy", cluster_scoped=True, awaited=False)
# Cilium's own policies, followed and weighed as AdminNetworkPolicies are: a namespace's
# CiliumNetworkPolicies concern its stores, a CiliumClusterwideNetworkPolicy any store.
CILIUM_POLICY_CACHE = CachedKind("CiliumNetworkPolicy", awaited=False, per_shard=True)
CILIUM_CLUSTERWIDE_CACHE = CachedKind(
    "CiliumClusterwideNetworkPolicy", cluster_scoped=True, awaited=False
)
# Calico's, the same way: a namespace's Calico NetworkPolicies concern its stores (and any
# store, one whose selector escapes its namespace: `calico_escapes`), a GlobalNetworkPolicy
# any store. The namespaced kind is cached cluster-wide unless the operator watches given
# namespaces (then theirs only: the escapes from others are not seen, README).
CALICO_POLICY_CACHE = CachedKind("CalicoNetworkPolicy", awaited=False)
CALICO_GLOBAL_CACHE = CachedKind("CalicoGlobalNetworkPolicy", cluster_scoped=True, awaited=False)
# Where the API serves them (`_follow`, as AdminNetworkPolicies): a CRD applied after a helm
# upgrade (which does not install new CRDs) is answered from then on, not from a restart.
REQUEST_CACHE = CachedKind("DataSubjectRequest")
# What the reconcile reads, cached. NetworkPolicies, Roles and RoleBindings: all of them (the
# verdicts look for foreign ones); the other children, Jobs and purge pods: the operator's own.
# A shard keeps only its own namespaces' NetworkPolicies, Roles, RoleBindings, CronJobs,
# CiliumNetworkPolicies and Secrets (`per_shard`): only its stores' reconciles read them (a
# NetworkPolicy, a Cilium one, a RoleBinding and its Role act in their own namespace only).
# Every store (a policy counts them all), the ServiceAccounts, Jobs and pods (a subject
# request of one shard's namespace runs a Job in each store's), the Calico policies (one may
# select pods beyond its namespace) and the requests: every namespace's.
CACHED_KINDS: tuple[CachedKind, ...] = (
    CachedKind("PersonalDataStore", lean_lists=True),
    CachedKind("PrivacyPolicy", cluster_scoped=True),
    CachedKind("NetworkPolicy", per_shard=True),
    CachedKind("Role", per_shard=True),
    CachedKind("RoleBinding", per_shard=True),
    CachedKind("ClusterRole", cluster_scoped=True),
    CachedKind("ClusterRoleBinding", cluster_scoped=True),
    CachedKind("ServiceAccount", OURS),
    CachedKind("CronJob", OURS, per_shard=True, lean_lists=True),
    CachedKind("Job", OURS, lean_lists=True),
    CachedKind("Pod", OURS, lean_lists=True),
    REQUEST_CACHE,
    ADMIN_POLICY_CACHE,
    CILIUM_POLICY_CACHE,
    CILIUM_CLUSTERWIDE_CACHE,
    CALICO_POLICY_CACHE,
    CALICO_GLOBAL_CACHE,
)
# Secrets, when the operator may list and watch them (`watch_secrets`, the chart's
# `watchSecrets`): its key rings with their data (selected by their labels), and every Secret
# as metadata only, so no other Secret's data ever reaches the operator. A 403 on either list
# falls back to reads by name (a ring: GET; credentials: a metadata-only GET).
SECRET_KINDS: tuple[CachedKind, ...] = (
    CachedKind(KEY_RING_CACHE, KEY_RING_SELECTOR, resource="Secret", optional=True,
               per_shard=True),
    CachedKind("Secret", metadata_only=True, optional=True, per_shard=True),
)
# The caches a Secret's event is mapped to requests by (`SubjectRequests.keys_for_secret`):
# the requests' and, sharded, the Namespaces' (`owns`); when one reads again, the requests it
# serves are queued (an event meanwhile found none). The Roles' is not among them: a Secret
# event while it does not read queues the requests it may concern.
REQUEST_LOOKUPS = frozenset({"DataSubjectRequest", "Namespace"})
# Kinds of which every object in the namespace counts in every store's verdict.
NAMESPACE_WIDE = frozenset({"NetworkPolicy", "Role", "RoleBinding"})
# The cyclic garbage collector's first threshold (Python's default: 700 allocations). Every
# API answer and watch event decodes into thousands of dicts, nearly all freed by reference
# counting, and the caches hold hundreds of thousands more that never form cycles: at 700 the
# collector ran ~650 times while 300 stores converged, 14% of the operator's CPU (issue 11).
GC_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect cycles less often, and never scan what was loaded before the work began.

    The modules, classes and constants imported so far live as long as the process: frozen,
    no collection looks at them again. Reference counting still frees every acyclic object at
    once; only cyclic garbage waits longer (the young generation's threshold), which the
    operator's JSON-shaped data does not make.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


# glibc's malloc gives each thread that allocates its own arena, up to eight per core, and
# keeps each arena's freed memory for that arena. The operator's 14+ informer threads and its
# workers each decode API answers, so their arenas each hold a high-water mark of their own:
# 16 MiB more resident at 1,000 stores than with two arenas (bench/notes/restart-peak.md).
# Threads take the GIL to allocate nearly always, so two arenas are not contended.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; True if it took.

    Call before starting threads. An explicit MALLOC_ARENA_MAX in the environment stands (glibc
    read it at start); on a C library without `mallopt` (musl has one heap) nothing is done.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas) == 1)


@dataclass(frozen=True)
class OperatorSettings:
    """How `dataward run` behaves."""

    namespaces: tuple[str, ...] = ()  # empty: every namespace
    # Sharding: serve only the namespaces whose labels match this selector (each shard has
    # its own Lease); only one shard writes PrivacyPolicy status (it counts every shard's).
    namespace_selector: str | None = None
    policy_status: bool = True
    lease_namespace: str = "dataward-system"
    lease_name: str = "dataward-operator"
    lease_duration_seconds: int = 30
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    workers: int = 4
    # The safety resync: every cache re-lists, and every store is queued (behind events), on
    # this period.
    resync_seconds: float = 3600.0
    # How long the stores' (or, sharded, the Namespace) cache may fail before the verdicts it
    # keeps from being checked are made Unknown and readiness fails (controller/staleness.py).
    stale_grace_seconds: float = STALE_GRACE_SECONDS
    # Watch Secrets (SECRET_KINDS). Off, or forbidden by RBAC: key rings and credentials
    # Secrets are read by name, and a change to one out of band is seen on the store's next
    # reconcile.
    watch_secrets: bool = True
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    subjects: SubjectSettings = field(default_factory=SubjectSettings)
    kubeconfig: str | None = None
    metrics_port: int | None = 8080
    # (connect, read) seconds for every API request, the reconciler's and kopf's alike.
    request_timeout: tuple[float, float] = DEFAULT_TIMEOUT
    # How often to ask discovery whether the CRDs are (still) served.
    crd_check_seconds: float = 10.0
    # The API server's audit log follower (`dataward run --audit-log`), also the reconciler's
    # settings.reconcile.access_records.
    access_log: AccessLogFollower | None = field(default=None, compare=False)
    # ONE: the process's threads held to one CPU, moved to an idler one (controller/affinity.py);
    # ANY: the kernel spreads them.
    cpu_affinity: str = ONE


def cached_kinds(settings: OperatorSettings) -> tuple[CachedKind, ...]:
    """What the operator caches: CACHED_KINDS; its Secrets (`watch_secrets`); and, watching
    the whole cluster, the Namespaces it serves, those its `namespace_selector` matches (a
    shard's) or every one. The Namespace cache is what the `per_shard` caches keep and, at a
    restart, list namespace by namespace (a namespace's stores judged once it is listed,
    cache.ShardNamespaces), and the labels cluster-wide network policies select
    namespaces by (without it, Unknown). An operator of named namespaces (`namespaces`)
    may not list Namespaces: none."""
    kinds = (*CACHED_KINDS, *(SECRET_KINDS if settings.watch_secrets else ()))
    if settings.namespace_selector or not settings.namespaces:
        kinds = (*kinds, CachedKind("Namespace", settings.namespace_selector or None,
                                    cluster_scoped=True, paced=False))  # fmt: skip
    return kinds


def _rendered_for(
    kind: str, namespace: str, obj: Mapping[str, Any], reconciler: Reconciler
) -> tuple[str, ...]:
    """The stores that render `obj` (`Reconciler.rendered_for`), when it is labelled as
    Dataward's; none: it is foreign."""
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
        return ()
    return reconciler.rendered_for(kind, namespace, obj)


def _named_for(
    kind: str, namespace: str, obj: Mapping[str, Any], reconciler: Reconciler
) -> tuple[str, ...]:
    """The stores that render an object of `obj`'s name (whatever it holds now), when it is
    labelled as Dataward's; none: it is foreign."""
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
        return ()
    return reconciler.rendered_names(kind, namespace, str(meta.get("name")))


def _owner_store(body: Mapping[str, Any]) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == STORE_KIND and str(ref.get("apiVersion", "")).startswith(GROUP):
            return str(ref.get("name"))
    return None


def connection_info(connection: Connection) -> kopf.ConnectionInfo:
    """kopf's credentials from the same connection the reconciler's client uses.

    kopf's own login handlers read only $KUBECONFIG or the in-cluster account; with
    `--kubeconfig` the watches would otherwise run as nobody (or not at all). Called again
    on a 401 (or when an exec plugin's token expires), it hands kopf the token as it is now.
    """
    credentials = connection.credentials
    token = connection.token()
    basic = None if token else credentials.basic
    username, _, password = basic.partition(":") if basic else (None, "", None)
    return kopf.ConnectionInfo(
        server=credentials.server,
        ca_path=credentials.ca_file,
        ca_data=credentials.ca_data,
        insecure=credentials.insecure,
        scheme="Bearer" if token else None,
        token=token,
        username=username,
        password=password or None,
        certificate_path=credentials.cert_file,
        certificate_data=credentials.cert_data,
        private_key_path=credentials.key_file,
        private_key_data=credentials.key_data,
        expiration=connection.token_expiry(),  # an exec plugin's: kopf logs in again then
    )


def build_registry(
    queue: WorkQueue, policies: WorkQueue, reconciler: Reconciler
) -> kopf.OperatorRegistry:
    """kopf's handlers, on a registry of their own: only its login (the caches watch).

    Every handler is `async def`: kopf runs plain functions in its thread pool.
    """
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    async def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(reconciler.kube.api)

    return registry


def queue_policy_counts(policies: WorkQueue, name: str) -> None:
    """Queue the policy whose store counts changed, POLICY_COUNT_DELAY from the first change
    not yet written: a burst of stores becoming Ready writes its status once, not per store."""
    policies.add_after(("", name), POLICY_COUNT_DELAY)


def _generation(obj: Mapping[str, Any]) -> object:
    return (obj.get("metadata") or {}).get("generation")


def keys_for_event(
    kind: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, reconciler: Reconciler
) -> tuple[list[StoreKey], list[str]]:
    """The stores and the policies a cached change can affect (reads the caches only; a
    namespace that leaves or joins the shard is noted in `reconciler`)."""
    body = new if new is not None else old
    assert body is not None
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace")
    if kind == "PersonalDataStore":
        policies = {
            str(p)
            for p in ((o.get("spec") or {}).get("policy") for o in (old, new) if o is not None)
            if p
        }
        # A policy counts its stores and their Ready, and gathers their impact previews: a
        # new, deleted or re-pointed store changes that, and one whose Ready or preview
        # changed (another shard's store: this shard's own changes come from its reconciles,
        # `Reconciler.on_ready_change`, and their echoes are no events).
        moved = old is None or new is None or len(policies) > 1 or counted_changes(old, new)
        return [(str(namespace), str(meta["name"]))], sorted(policies) if moved else []
    if kind == "PrivacyPolicy":
        # Its status (the count of stores, which every new store changes) is no store's
        # business; a new, deleted or edited policy is every store's that uses it.
        edited = old is None or new is None or _generation(old) != _generation(new)
        stores = reconciler.stores_of_policy(str(meta["name"])) if edited else []
        return stores, [str(meta["name"])]
    if kind in (
        "ClusterRole",
        "ClusterRoleBinding",
        "AdminNetworkPolicy",
        CILIUM_CLUSTERWIDE_CACHE.kind,
        CALICO_GLOBAL_CACHE.kind,
    ):
        # An AdminNetworkPolicy, a CiliumClusterwideNetworkPolicy or a Calico
        # GlobalNetworkPolicy may select any namespace's pods, by labels the operator may not
        # know: every store of the shard (they are few and rarely change).
        return reconciler.all_stores(), []
    if kind == "Namespace":  # now (or no longer) this shard's
        if new is None:  # left the shard: its stores are told, once, that none is checked
            return reconciler.namespace_left(str(meta["name"])), []
        if old is None:
            reconciler.namespace_came(str(meta["name"]))
        return reconciler.stores_in(str(meta["name"])), []
    if not namespace:
        return [], []
    if kind == CALICO_POLICY_CACHE.kind and any(
        obj is not None and calico_escapes(obj) for obj in (old, new)
    ):
        # Its selector reaches beyond its namespace (or did): any namespace's pods.
        return reconciler.all_stores(), []
    if kind in (CILIUM_POLICY_CACHE.kind, CALICO_POLICY_CACHE.kind):
        # selects endpoints of its own namespace only
        return reconciler.stores_in(namespace), []
    if kind == "Secret":  # metadata only; a ring's own events come from the rings' cache
        return reconciler.stores_with_credentials(namespace, str(meta["name"])), []
    if kind in NAMESPACE_WIDE:
        # Labels and owner references are the word of whoever wrote the object (a binding
        # copied from a store's own keeps both): the stores it concerns alone are those
        # that render it, by the namespace's view; anything else is foreign, every verdict
        # there.
        owners: set[str] = set()
        for obj in (old, new):
            if obj is None:
                continue
            found = _rendered_for(kind, namespace, obj, reconciler)
            if not found:
                # Not as rendered: labelled as Dataward's under a store's child name (the
                # operator's previous render, or someone's edit), the stores its content may
                # reach and those that render the name; anything else, every store there.
                named = _named_for(kind, namespace, obj, reconciler)
                reached = None if not named else reconciler.stores_reached(kind, namespace, obj)
                if reached is None:
                    return reconciler.stores_in(namespace), []
                found = (*named, *reached)
            owners.update(found)
        return [(namespace, owner) for owner in sorted(owners)], []
    owner = _owner_store(body)
    if owner is not None:
        return [(namespace, owner)], []
    label = (meta.get("labels") or {}).get(STORE_LABEL)
    if label:  # Jobs and pods belong to the CronJob, not the store: find it by its label
        return reconciler.stores_with_label(namespace, label), []
    return [], []


# The longest the collector waits for the caches' first lists and the first pass
# (`collect_after_first_pass`): an outage that keeps them from ending must not keep it off for
# good.
FIRST_PASS_COLLECTOR_PAUSE_SECONDS = 120.0


async def collect_after_first_pass(
    passed: asyncio.Event, most: float = FIRST_PASS_COLLECTOR_PAUSE_SECONDS
) -> None:
    """Keep the cyclic garbage collector off until the first pass is done (`passed`: every
    store served when the caches first listed reconciled once), or for `most` seconds; then
    freeze what the lists and the pass made and turn it back on.

    The first lists decode and keep hundreds of thousands of objects and make no cycles: at
    10,000 stores the collector ran 74 times while they listed, 0.82 s of CPU on the
    restart's path, and collected nothing (bench/RESULTS.md, twenty-fourth pass). In the
    first pass after them it ran 19 times, 0.31-0.34 s, and collected nothing either
    (twenty-seventh pass). Reference counting still frees everything acyclic meanwhile.
    Frozen, what the caches hold (most of what the process will ever hold) is never scanned
    again (a full collection cost ~0.3 ms a store in the first pass).
    """
    gc.disable()
    try:
        await asyncio.wait_for(passed.wait(), most)
    except TimeoutError:
        log.info("first pass not done after %.0f s: collecting garbage meanwhile", most)
        gc.enable()
        await passed.wait()
    finally:
        gc.enable()
    gc.freeze()


async def _resync(
    queue: WorkQueue,
    policies: WorkQueue | None,
    reconciler: Reconciler,
    listed: asyncio.Event,
    began: asyncio.Event,
    every: float,
    serving: asyncio.Event,
    first_pass: FirstPass,
) -> None:
    """Once the caches have listed (`listed`), queue every store; then again every `every`
    seconds. Behind every event (the periodic lane), and from the caches: no LIST.

    The first time, the first pass begins before `began` lets any reconcile start: each store
    it waits for is reconciled after it, not once before (which would not count) and again.
    """
    await listed.wait()
    while True:
        await serving.wait()
        try:
            # Those of namespaces still being listed too (a shard lists its namespaces one by
            # one): each is judged once its namespace is (`on_health` queues it again then).
            keys = reconciler.shard_stores()
            names = reconciler.all_policies()
        except KubeError as error:
            log.info("resync: stores not cached (%s); trying again in %ss", error, every)
            keys, names = [], []
        else:
            first_pass.begin(keys, time.monotonic())
        began.set()
        for key in keys:
            queue.add_periodic(key)
        if policies is not None:
            for name in names:
                policies.add_periodic(("", name))
        await asyncio.sleep(every)


# Discovery's answers of one check, by group/version (`_discover`): the operator's own CRDs
# and the followed kinds of one group are asked for once.
Asked = dict[str, "set[str] | KubeError"]


async def _discover(kube: Kube, group_version: str, asked: Asked | None) -> set[str]:
    """The resources the API serves in `group_version`, asked once per `asked` (None: every
    time); a KubeError when discovery failed."""
    answer = None if asked is None else asked.get(group_version)
    if answer is None:
        try:
            answer = await asyncio.to_thread(kube.served, group_version)
        except KubeError as error:
            answer = error
        if asked is not None:
            asked[group_version] = answer
    if isinstance(answer, KubeError):
        raise answer
    return answer


async def _crds_served(kube: Kube, asked: Asked | None = None) -> bool | None:
    """True when the API serves both of Dataward's resources, False when not, None: no answer."""
    try:
        served = await _discover(kube, f"{GROUP}/{VERSION}", asked)
    except KubeError as error:
        log.info("could not ask the API which resources it serves: %s", error)
        return None
    return set(CRD_PLURALS) <= served


async def _wait_or_stop(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stopping` is set first; True when it is."""
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


@dataclass(frozen=True)
class Followed:
    """A cached kind the API may serve or not, and may come to serve or stop serving while the
    operator runs (its CRD installed or deleted): cached while it is (`_follow`). What the
    operator does with it, and without it, for the log."""

    cache: CachedKind
    served: str
    not_served: str


# A cluster without them is an ordinary one (another CNI): not served is no warning.
NETWORK_POLICY_KINDS = frozenset(
    {
        ADMIN_POLICY_CACHE.kind,
        CILIUM_POLICY_CACHE.kind,
        CILIUM_CLUSTERWIDE_CACHE.kind,
        CALICO_POLICY_CACHE.kind,
        CALICO_GLOBAL_CACHE.kind,
    }
)
FOLLOWED = (
    Followed(
        ADMIN_POLICY_CACHE,
        "NetworkIsolated weighs them",
        "NetworkIsolated reads NetworkPolicies only",
    ),
    Followed(
        CILIUM_POLICY_CACHE,
        "NetworkIsolated weighs them",
        "NetworkIsolated does not read them",
    ),
    Followed(
        CILIUM_CLUSTERWIDE_CACHE,
        "NetworkIsolated weighs them",
        "NetworkIsolated does not read them",
    ),
    Followed(
        CALICO_POLICY_CACHE,
        "NetworkIsolated weighs them",
        "NetworkIsolated does not read them",
    ),
    Followed(
        CALICO_GLOBAL_CACHE,
        "NetworkIsolated weighs them",
        "NetworkIsolated does not read them",
    ),
    Followed(
        REQUEST_CACHE,
        "data-subject requests are answered",
        "data-subject requests are not answered (helm upgrade does not install new CRDs: "
        "apply crds/dataward.io_datasubjectrequests.yaml; they are answered once it is served)",
    ),
)


async def _served(kube: Kube, kind: str, asked: Asked | None = None) -> bool | None:
    """Whether the API serves `kind` (discovery); None: no answer."""
    resource = RESOURCES[kind]
    try:
        served = await _discover(kube, resource.api_version, asked)
    except KubeError as error:
        log.info("could not ask whether %s are served: %s", resource.plural, error)
        return None
    return resource.plural in served


async def _follow(
    kube: Kube, caches: Caches, followed: Followed, asked: Asked | None = None
) -> bool:
    """Cache `followed`'s kind while the API serves it, asked as the caches start and at every
    check of the CRDs (`_run_kopf`); whether that changed (what reads it is then to be done
    again).

    A CRD installed after the start (AdminNetworkPolicies by a CNI upgrade or a network team;
    DataSubjectRequests applied after a helm upgrade) is cached from then on, and until its
    cache has listed it cannot be read: Unknown, never "none". Where the kind is not served,
    none can exist (a deleted CRD takes its objects with it), and nothing asks for them.
    Discovery that fails is no answer and changes nothing: at the start the kind is cached
    all the same, and the cache's own list says whether it can be read."""
    kind = followed.cache.kind
    served = await _served(kube, kind, asked)
    cached = caches.cached(kind)
    resource = RESOURCES[kind]
    name = f"{resource.plural}.{resource.api_version.split('/')[0]}"
    if served is None:
        if not caches.started:
            log.warning("could not ask whether %s are served: watching them all the same", name)
        return False
    if served == cached and caches.started:
        return False
    if served:
        caches.add(followed.cache)
        log.info("the API serves %s%s: %s", name, " now" if caches.started else "",
                 followed.served)  # fmt: skip
    else:
        caches.drop(kind)
        log.log(
            logging.INFO if kind in NETWORK_POLICY_KINDS else logging.WARNING,
            "the API %s %s: %s", "no longer serves" if caches.started else "does not serve",
            name, followed.not_served,
        )  # fmt: skip
    return served != cached


async def _wait_for_crds(kube: Kube, stopping: asyncio.Event, every: float) -> bool:
    """Wait until the CRDs are served (True), or until `stopping` (False)."""
    warned = False
    while not stopping.is_set():
        served = await _crds_served(kube)
        if served:
            CRDS_SERVED.set(1)
            if warned:
                log.warning("the %s CRDs are served again: resuming watches and reconciles", GROUP)
            return True
        if served is False:
            CRDS_SERVED.set(0)
            if not warned:
                log.warning(
                    "the API does not serve %s/%s %s (CRDs not installed, or deleted): "
                    "waiting for them, checking every %gs",
                    GROUP,
                    VERSION,
                    " and ".join(CRD_PLURALS),
                    every,
                )
                warned = True
        await _wait_or_stop(stopping, every)
    return False


def _kopf_not_found(error: object) -> bool:
    """A 404 from kopf's API client (its APIError is not public)."""
    return type(error).__module__.startswith("kopf.") and getattr(error, "status", None) == 404


class _KopfNotFoundFilter(logging.Filter):
    """Keep kopf's tracebacks of a watch's 404 out of the log (at DEBUG instead).

    A deleted CRD makes every watch of it fail with a 404, which kopf logs as errors with
    tracebacks; _run_kopf then says what happened, in one warning. A 404 for any other
    reason is not lost: _run_kopf logs the error that ended kopf, with its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and _kopf_not_found(record.exc_info[1]):
            log.debug("kopf: %s", record.getMessage())
            return False
        return True


def _quiet_kopf_not_found() -> None:
    for name in ("kopf._core.reactor.orchestration", "kopf._core.reactor.running"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _KopfNotFoundFilter) for f in logger.filters):
            logger.addFilter(_KopfNotFoundFilter())


def _kopf_settings(settings: OperatorSettings) -> kopf.OperatorSettings:
    """kopf's settings; made anew for every run of kopf (kopf.operator() changes them)."""
    connect, read = settings.request_timeout
    out = kopf.OperatorSettings()
    out.posting.enabled = False  # our Events are posted on transitions only
    # The resources are known; scanning CRDs would need list/watch on them cluster-wide.
    # So kopf does not notice a CRD that goes or comes: _run_kopf watches discovery for it.
    out.scanning.disabled = True
    # No request without a timeout: a hung API server must surface as an error, not a hang.
    out.networking.connect_timeout = connect
    out.networking.request_timeout = read
    out.watching.connect_timeout = connect
    out.watching.server_timeout = WATCH_SECONDS
    out.watching.client_timeout = WATCH_SECONDS + read  # the server ends a watch first
    # kopf SIGKILLs its own thread (here: the process) this long after it stops for any reason
    # but its stop flag; a kopf stopped by a vanished CRD is restarted here, not killed.
    out.process.ultimate_exiting_timeout = None
    return out


async def _run_kopf(
    settings: OperatorSettings,
    registry: kopf.OperatorRegistry,
    kube: Kube,
    stopping: asyncio.Event,
    also: Callable[[Asked], Awaitable[object]],
) -> str:
    """Run kopf once; why it ended: "stopped", "crds-gone", "failed" or "signal". `also`
    runs at every check of the CRDs while kopf runs (discovery of the other resources)."""
    kopf_stop = asyncio.Event()
    crds_gone = asyncio.Event()

    async def watch_crds() -> None:
        # kopf's own watch of the stores fails on the 404 of a deleted CRD, but only when it
        # next re-lists; discovery tells for sure, and also ends kopf when the stop comes.
        while not await _wait_or_stop(stopping, settings.crd_check_seconds):
            asked: Asked = {}  # one discovery request a group/version
            if await _crds_served(kube, asked) is False:
                crds_gone.set()
                break
            try:
                await also(asked)
            except Exception:  # a bug must not end the watch over the CRDs
                log.exception("checking which other resources the API serves failed")
        kopf_stop.set()

    # Made before kopf starts: kopf cancels every task made while it runs when it stops.
    watcher = asyncio.create_task(watch_crds())
    failure: Exception | None = None
    try:
        await kopf.operator(
            registry=registry,
            settings=_kopf_settings(settings),
            standalone=True,
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            stop_flag=kopf_stop,
        )
    except Exception as error:  # e.g. a watch's 404 once the CRD is gone
        failure = error
    finally:
        watcher.cancel()
    if stopping.is_set():
        return "stopped"
    if crds_gone.is_set() or (failure is not None and await _crds_served(kube) is False):
        CRDS_SERVED.set(0)
        log.warning(
            "the %s CRDs were deleted: stopped watching; the operator keeps running and "
            "resumes when they are back",
            GROUP,
        )
        return "crds-gone"
    if failure is not None:
        log.error(
            "kopf stopped with an error; restarting it in %gs",
            settings.crd_check_seconds,
            exc_info=failure,
        )
        return "failed"
    return "signal"  # kopf ends by itself only on SIGTERM/SIGINT (it takes them while it runs)


async def run_operator(
    settings: OperatorSettings,
    stop: threading.Event,
    shutdown: threading.Event | None = None,
    may_write: Callable[[], bool] | None = None,
) -> None:
    """Run until `stop` is set (the Lease was lost, or a signal: then `shutdown` is set too).

    kopf runs only while the API serves the CRDs: deleting them stops kopf and pauses the
    workers, not the process; once they are back, kopf starts again and lists everything.
    `may_write` fences the reconciler's writes (the Lease is held).
    """
    shutdown = shutdown if shutdown is not None else threading.Event()
    kube = Kube(
        load_api_client(settings.kubeconfig), timeout=settings.request_timeout, may_write=may_write
    )
    loop = asyncio.get_running_loop()
    # Reconciles run in the loop's default executor: sized for every worker at once, plus the
    # policy and request lanes and a few short calls (the default is cores + 4, which on 2
    # cores would cap 8 workers at 6).
    loop.set_default_executor(ThreadPoolExecutor(settings.workers + EXECUTOR_SPARE))
    queue = WorkQueue()
    first_pass = FirstPass()  # loop only
    # Every cache has listed once (set from `on_health`, on an informer's thread); then the
    # first pass has begun (`_resync`), and reconciles may start.
    listed = asyncio.Event()
    began = asyncio.Event()
    policies = WorkQueue()  # keys ("", policy name): cluster-scoped
    requests = WorkQueue()  # DataSubjectRequests (namespace, name)
    holder: list[Reconciler] = []
    answering: list[SubjectRequests] = []

    def on_event(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if not holder:
            return
        for key in request_keys_for_event(kind, old, new):
            requests.add(key)
        if kind == "Secret" and answering:
            body = new if new is not None else old
            meta = (body or {}).get("metadata") or {}
            try:
                for key in answering[0].keys_for_secret(str(meta.get("namespace")),
                                                        str(meta.get("name"))):  # fmt: skip
                    requests.add(key)
            except KubeError:
                pass  # requests not synced: queued when their cache reads again (on_health)
        if kind == "RoleBinding" and answering:  # one of a readers' Role: withdrawn now
            body = new if new is not None else old
            try:
                for key in answering[0].keys_for_binding(
                    str(((body or {}).get("metadata") or {}).get("namespace")), body or {}
                ):
                    requests.add(key)
            except KubeError:
                pass  # requests not synced: queued when their cache reads again (on_health)
        if kind == "Namespace" and answering:  # now (or no longer) this shard's: its requests
            name = str(((new or old or {}).get("metadata") or {}).get("name"))
            try:
                for key in answering[0].all_requests():  # those of the shard's namespaces
                    if key[0] == name:
                        requests.add(key)
            except KubeError:
                pass  # requests not synced: queued when their cache reads again (on_health)
        if kind == "DataSubjectRequest":
            return
        try:
            keys, names = keys_for_event(kind, old, new, holder[0])
        except KubeError:  # a cache it needs is not synced: its health event queues them
            return
        if not settings.policy_status:
            names = []
        if kind == "PersonalDataStore" and new is None:
            for key in keys:
                queue.forget(key)
                if not loop.is_closed():
                    loop.call_soon_threadsafe(settled, key)
        for key in keys:
            queue.add(key)
        for name in names:
            if kind == "PersonalDataStore":
                # A new or deleted store changes only the policy's counts: a burst of them
                # writes the policy's status at most once per POLICY_COUNT_DELAY, not per store.
                queue_policy_counts(policies, name)
            else:
                policies.add(("", name))

    def on_health(kind: str, namespace: str | None) -> None:
        # A cache became synced or failed: the verdicts that read it may change.
        if not holder:
            return
        if not began.is_set():
            # Nothing is reconciled before the first pass, which queues every store: queueing
            # them all again as each of the caches' first lists ends was 1,000 keys a cache
            # handed to the loop while the others were still listing.
            if caches.listed() and not loop.is_closed():
                loop.call_soon_threadsafe(listed.set)
            return
        if kind in REQUEST_LOOKUPS and answering:
            # A Secret's event the requests could not be found for while it did not read
            # queued none (`on_event`): each request it may have concerned is looked at now.
            try:
                for key in answering[0].all_requests():
                    if namespace is None or key[0] == namespace:
                        requests.add(key)
            except KubeError:
                pass  # failed, not recovered: this is called again when it reads
        try:
            keys = holder[0].stores_in(namespace) if namespace else holder[0].all_stores()
        except KubeError:
            return
        for key in keys:
            queue.add(key)

    if not settings.watch_secrets:
        log.info("not watching Secrets (watch_secrets off): key rings and credentials "
                 "Secrets are read by name")
    caches = Caches(kube, cached_kinds(settings), settings.namespaces, settings.resync_seconds,
                    on_event, on_health)  # fmt: skip
    reconciler = Reconciler(kube, settings.reconcile, settings.namespaces, caches)
    if settings.policy_status:
        reconciler.on_ready_change = lambda policy: queue_policy_counts(policies, policy)

    def on_revision_change(policy: str) -> None:
        # Another revision is in force: every store of the policy is judged by it now.
        for key in reconciler.stores_of_policy(policy):
            queue.add(key)

    reconciler.on_revision_change = on_revision_change
    holder.append(reconciler)
    subject_requests = SubjectRequests(kube, settings.subjects, caches)
    answering.append(subject_requests)
    serving = asyncio.Event()  # kopf runs; set and cleared on the loop only
    # The stores' verdicts while their cache (or the Namespace one) fails: Unknown after the
    # grace period, and this replica not ready. While the CRDs are not served there are no
    # stores to speak of.
    stale = StaleVerdicts(kube, caches, settings.stale_grace_seconds, reconciler,
                          wall=settings.reconcile.clock, requeue=queue.add)  # fmt: skip
    watch_health(lambda: stale.problems() if serving.is_set() else [], stale.health,
                 lambda: caches.counts())  # fmt: skip

    async def upkeep() -> None:
        while True:
            await asyncio.sleep(check_period(settings.stale_grace_seconds))
            if not (serving.is_set() and caches.started):
                continue
            try:
                await asyncio.to_thread(stale.check)
            except Exception:  # a bug must not end the watch over stale verdicts
                log.exception("checking for verdicts the operator cannot check failed")

    stopping = asyncio.Event()  # `stop`, seen from the loop

    async def follow_served(asked: Asked) -> None:
        # Cached from now on, or no longer: what reads the kind is done again (every store of
        # the shard judged, Unknown until the new cache has listed, or every request looked
        # at); its health event, once it has listed, queues them once more.
        for followed in FOLLOWED:
            if await _follow(kube, caches, followed, asked):
                on_health(followed.cache.kind, None)

    async def ready() -> None:
        await serving.wait()
        await began.wait()  # a reconcile before the first lists would read nothing

    def reconcile_some(keys: list[StoreKey]) -> list[tuple[StoreKey, Outcome]]:
        # In a thread: the keys in turn until BATCH_SECONDS have passed (at least one).
        began = time.monotonic()
        done: list[tuple[StoreKey, Outcome]] = []
        for key in keys:
            if done and time.monotonic() - began >= BATCH_SECONDS:
                break
            try:
                done.append((key, reconciler.reconcile_logged(key)))
            finally:
                kube.writes.flush()  # events of its writes whose answers no cache stored
        return done

    async def handle(keys: list[StoreKey]) -> dict[StoreKey, bool | None]:
        await ready()
        answers: dict[StoreKey, bool | None] = {}
        for key, outcome in await asyncio.to_thread(reconcile_some, keys):
            if outcome.due is not None:
                queue.add_after(key, outcome.due)
            if outcome.ok and outcome.judged:
                settled(key)
            answers[key] = outcome.ok
        return answers

    def settled(key: StoreKey) -> None:
        message = first_pass.done(key, time.monotonic())
        if message:
            log.info("%s", message)

    async def handle_request(key: StoreKey) -> bool:
        await ready()
        try:
            outcome = await asyncio.to_thread(subject_requests.reconcile_logged, key)
        finally:
            kube.writes.flush()
        if outcome.due is not None:
            requests.add_after(key, outcome.due)
        return outcome.ok

    async def resync_requests() -> None:
        await listed.wait()
        while True:
            await serving.wait()
            try:
                for key in subject_requests.all_requests():
                    requests.add_periodic(key)
            except KubeError as error:
                log.info("resync: requests not cached (%s)", error)
            await asyncio.sleep(settings.resync_seconds)

    async def handle_policy(key: StoreKey) -> bool:
        await ready()
        try:
            outcome = await asyncio.to_thread(reconciler.reconcile_policy_logged, key[1])
        finally:
            kube.writes.flush()
        if outcome.due is not None:  # a pending revision takes effect then
            policies.add_after(key, outcome.due)
        return outcome.ok

    def on_signal(signum: int) -> None:
        log.info("signal %s: stopping", signum)
        shutdown.set()
        stop.set()

    def take_signals() -> None:
        # kopf installs its own handlers while it runs; between its runs they are ours.
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, on_signal, signum)

    async def watch_stop() -> None:
        # Polled, not waited for in a thread: the default executor's few threads are the
        # reconcilers', and with a hung API server they may all be busy.
        while not stop.is_set():
            await asyncio.sleep(0.2)
        stopping.set()

    def quiet_vanished_crd(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A kopf run that ended on a deleted CRD leaves a task whose 404 nobody retrieved.
        if _kopf_not_found(context.get("exception")):
            log.debug("kopf task ended with a 404: %s", context.get("exception"))
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(quiet_vanished_crd)
    _quiet_kopf_not_found()
    registry = build_registry(queue, policies, reconciler)
    tasks = [
        asyncio.create_task(queue.batch_worker(handle, BATCH_KEYS, settings.workers))
        for _ in range(settings.workers)
    ]
    tasks.append(asyncio.create_task(policies.worker(handle_policy)))
    tasks.append(asyncio.create_task(requests.worker(handle_request)))
    tasks.append(asyncio.create_task(resync_requests()))
    tasks.append(asyncio.create_task(collect_after_first_pass(first_pass.finished)))
    tasks.append(
        asyncio.create_task(
            _resync(
                queue,
                policies if settings.policy_status else None,
                reconciler,
                listed,
                began,
                settings.resync_seconds,
                serving,
                first_pass,
            )
        )
    )
    tasks.append(asyncio.create_task(watch_stop()))
    tasks.append(asyncio.create_task(upkeep()))
    follower = settings.access_log
    if follower is not None:  # while this replica leads: one writer of access records
        follower.start(reconciler.served_stores, queue.add, caches.listed)
    try:
        while not stopping.is_set():
            take_signals()
            if not await _wait_for_crds(kube, stopping, settings.crd_check_seconds):
                break
            serving.set()
            if not caches.started:
                asked: Asked = {}
                for followed in FOLLOWED:
                    await _follow(kube, caches, followed, asked)
                caches.start()
            try:
                ended = await _run_kopf(settings, registry, kube, stopping, follow_served)
            finally:
                serving.clear()
            if ended == "signal":
                shutdown.set()
                break
            if ended == "failed":
                await _wait_or_stop(stopping, settings.crd_check_seconds)
    finally:
        stop.set()  # for the caller: this spell is over, whatever ended it
        if follower is not None:
            await asyncio.to_thread(follower.stop)
        caches.stop()
        unwatch_health()
        for task in tasks:
            task.cancel()


def run_with_leader_election(settings: OperatorSettings) -> int:
    """Act only while holding the Lease; on losing it, stop acting at once and try again.

    The Lease is given up (and the work stopped) when it was not renewed within the renew
    deadline, shorter than its duration, even if a renewal request hangs: no two replicas act
    at once. Lease requests have their own short timeouts and no retries.
    """
    limit_malloc_arenas()
    lease = LeaseSettings(
        namespace=settings.lease_namespace,
        name=settings.lease_name,
        duration_seconds=settings.lease_duration_seconds,
        renew_every_seconds=settings.lease_duration_seconds / 3,
        retry_every_seconds=max(1.0, settings.lease_duration_seconds / 6),
    )
    # One attempt may take the whole deadline; the renewal stops waiting for it at the deadline.
    attempt_timeout = max(1.0, lease.deadline)
    elector = LeaderElector(
        Kube(
            load_api_client(settings.kubeconfig, retries=0),
            timeout=(attempt_timeout, attempt_timeout),
        ),
        lease,
        settings.identity,
    )
    shutdown = threading.Event()
    term = threading.Event()  # one per spell of leadership
    if settings.cpu_affinity == ONE:
        hold_one_cpu(shutdown)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        shutdown.set()
        term.set()
        elector.cancel()

    if settings.metrics_port:
        serve(settings.metrics_port)
    tune_garbage_collector()
    try:
        while not shutdown.is_set():
            # asyncio.run() resets the handlers when its loop closes: take them (back).
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            if not elector.acquire():
                break
            term = threading.Event()
            LEADER.set(1)

            def renew(ends: threading.Event = term) -> None:
                elector.keep_renewing()  # returns when the Lease is lost, or on cancel()
                LEADER.set(0)
                ends.set()

            threading.Thread(target=renew, name="lease", daemon=True).start()
            try:
                asyncio.run(run_operator(settings, term, shutdown, may_write=elector.leading))
            finally:
                LEADER.set(0)
            if not elector.lost.is_set():
                break  # a signal, or a stop with the Lease still held
            log.warning(
                "stopped acting: lease %s/%s lost; trying to acquire it again",
                lease.namespace,
                lease.name,
            )
    finally:
        elector.stop()
    return 0
