"""Watch-fed caches: one list-then-watch per kind (and namespace), read instead of the API.

A reconcile reads its store, policy, children, the namespace's NetworkPolicies, Roles and
RoleBindings, the cluster's ClusterRoles and ClusterRoleBindings, and its purge Jobs and pods
from here. Secrets: the operator's key rings (by their labels, with their data) and every
other Secret as metadata only (PartialObjectMetadata: the server never sends their data);
when the operator may not list them (a 403), both are read by name instead.

Honesty: a cache answers only while it is *synced*: its initial LIST succeeded and neither its
last re-LIST nor its watch has failed it since. Until then, every read of it raises
KubeError(0, "... not synced ..."): the caller's existing failed-read path makes the dependent
conditions Unknown, never "absent" (and controller/staleness.py says so of the stores once
it lasts). Each cache re-LISTs every `relist_seconds` (the operator's safety resync) so a
revoked permission, or a watch that silently missed events, is noticed: page by page merged
into what it holds (`_merge_list`), so that what the watch missed, and only that, is stored
and sent as events.

A watch that fails (refused, an error, no answer, or closed at once with nothing: `judge_watch`)
is followed by a re-LIST after a backoff (1 s doubling to 15 s, per cache; reset by a healthy
watch). A 403 fails the cache at once, other failures at the third in a row; from then on a
LIST alone does not make it synced again (only `watch` may be revoked, and the LIST would
answer every time): a watch must work first (an event, a bookmark, or open until its timeout,
capped at `FAILED_WATCH_SECONDS` meanwhile so that recovery is seen soon). 410 Gone is
followed by a re-LIST at once.

Bounded memory: cached objects lose `managedFields` (a CronJob keeps each manager's name and
time, which the missed-run check reads), the last-applied annotation, and a pod keeps only its
metadata, its containers' termination messages and what it runs (`pod_runs`, a digest), a
Job its metadata, status and what its pod template runs (`job_runs`), a CronJob its pod
template as a digest only (`comparable_cronjob`, the form drift compares); RBAC
objects, NetworkPolicies and ServiceAccounts lose the metadata nothing reads
(`UNREAD_METADATA`); labels, owner references and compared bodies (`SHARED_BODY`) are held
once per distinct value, shared with the namespace views' renders (`held_parts`).

Kinds come and go (`Caches.add`, `Caches.drop`): one the API comes to serve after the start
(an AdminNetworkPolicy CRD installed since) is cached from then on, its reads raising until its
informer has listed; one it no longer serves stops, and a read through its informer raises.

Events: after each change is stored, `on_event(kind, old, new)` runs on the informer's thread
(so a reconcile queued by it reads the change); `on_health(kind, namespace)` runs when a cache
becomes synced or fails. The callbacks must be cheap (they queue keys).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3

from dataward.checks.conditions import comparable_status
from dataward.checks.network import calico_policy_admits, cilium_rule_admits
from dataward.checks.purge_runs import RUNS_DIGEST, job_runs, pod_runs
from dataward.controller.index import LabelIndex
from dataward.controller.kube import (
    LAST_APPLIED,
    METADATA_ONLY,
    METADATA_ONLY_LIST,
    RESOURCES,
    Kube,
    KubeError,
    WriteTracker,
    loads,
    loads_list,
)
from dataward.render.purge_job import comparable_cronjob
from dataward.render.subject_jobs import EXPORT_TOKEN_ANNOTATION, PUBLIC_KEY_ANNOTATION

log = logging.getLogger("dataward.cache")

Obj = dict[str, Any]
Objs = list[Obj]
EventCallback = Callable[[str, Obj | None, Obj | None], None]
HealthCallback = Callable[[str, str | None], None]
WATCH_SECONDS = 300
# What a slimmed Cilium rule's ingress holds in place of rules that admit something.
ADMITS = "admits"
# What NetworkIsolated reads of a Calico policy's spec besides whether it allows ingress.
CALICO_SELECTORS = ("selector", "namespaceSelector", "serviceAccountSelector")
LIST_PAGE = 500  # objects per LIST request (the API server's default chunk size)
# Objects per LIST request of a cache that holds its kind already (the safety resync's, or
# after a broken watch): a page as sent, managedFields and all, is held beside the whole
# cache while it is merged, and 500 CronJobs or stores so are about 15 MiB. Its peak is the
# running operator's (bench/RESULTS.md, thirtieth pass); one re-list an hour makes five
# times the requests for the same objects, which costs the API server little more.
RELIST_PAGE = 100
# LIST pages held at once by all the caches together (`Informer._list`): every informer lists
# on its own thread at start, and a page of 500 objects as delivered (managedFields and all)
# is about 15 MiB once decoded, so fourteen at once set a restart's peak RSS above the
# converged operator's by about 100 MiB (issue 11). Decoding and slimming hold the GIL, so
# two at a time (one asked for while the other is decoded) lose little of the overlap.
LIST_PAGES_AT_ONCE = 2


class FairPages:
    """At most `at_once` holders, let in in the order they asked (a semaphore is not fair:
    the thread that just gave a place back, holding the interpreter lock, takes it again
    before a waiter wakes). Unfair, a shard's fill LISTs, one after another on four
    threads, kept the first (empty) LISTs of Jobs, Pods and subject requests waiting 6 s,
    and with them the start of a restart's first pass (bench/RESULTS.md, twenty-eighth
    pass)."""

    def __init__(self, at_once: int) -> None:
        self._free = at_once
        self._waiting: deque[object] = deque()
        self._turn = threading.Condition()

    def __enter__(self) -> None:
        me = object()
        with self._turn:
            self._waiting.append(me)
            try:
                while self._waiting[0] is not me or not self._free:
                    self._turn.wait()
            except BaseException:  # interrupted while waiting: not left at the head for good
                self._waiting.remove(me)
                self._turn.notify_all()
                raise
            self._waiting.popleft()
            self._free -= 1
            self._turn.notify_all()  # the next may go in too, if a place is free

    def __exit__(self, *_: object) -> None:
        with self._turn:
            self._free += 1
            self._turn.notify_all()


_LIST_PAGES = FairPages(LIST_PAGES_AT_ONCE)
# A cache due for its periodic re-list while another of its `Caches` re-lists (their
# `relist_turn`) keeps watching, and asks for its turn again after this long.
RELIST_TURN_SECONDS = 2
SHARED_LENGTH = 100  # strings up to this long are interned in cached objects
LIST_ATTEMPTS = 3  # paged lists started over after an expired continue token
JOURNAL_BOUND = 20000  # changes remembered per informer (at least; see Informer._note)
# What a metadata-only cache keeps of each object (`metadata_only`): the Secrets' cache of
# presence is read by name (`Caches.exists`, a credentials Secret's events by name); its
# resourceVersion orders its changes (`_newer`, a re-list's events); its owner references say
# whose it is (`Caches.get_metadata`: a data subject request's readers are granted only the
# Secrets that are the request's own), held once per distinct list (`share_metadata`). An
# export Secret's token and uid are what prove it the request's (status records them:
# checks/subjects.py `export_verdict`; an owner reference anyone may write): the uid is kept
# only on a Secret that carries the token (`metadata_only`), not on every Secret of the
# cluster (a ring's, a credentials Secret's: 20,000 of them at 10,000 stores).
METADATA_KEPT = ("name", "namespace", "resourceVersion", "deletionTimestamp", "ownerReferences")
# The annotations it keeps (every other one is dropped): the public key of a data subject
# request's key Secret (`SubjectRequests._public_key`) and the token on its export Secrets
# (`SubjectRequests._make_exports`), on those Secrets alone.
ANNOTATIONS_KEPT = (PUBLIC_KEY_ANNOTATION, EXPORT_TOKEN_ANNOTATION)
# The kinds read by label selector (`Caches.list` with one): a store's purge Jobs (and a
# subject request's) by their labels, a Job's pods by its name label. Only these keep a label
# index; a label read of another kind scans its namespace (same answer, same order). The
# index of every kind cost about 3 KiB a store (issue 11), for lookups nothing made.
LABEL_INDEXED = frozenset({"Job", "Pod"})
# A failed watch (`judge_watch`), LIST, or LIST of a namespace new to the shard: the next
# try waits WATCH_BACKOFF seconds, doubled at each failure in a row up to WATCH_BACKOFF_CAP
# (`watch_backoff`). Was none for a watch: with only `watch` revoked, a LIST and a WATCH
# every second; a watch answered 200 and closed at once, a WATCH every request's round trip
# (bench/notes/cache-watch.md).
WATCH_BACKOFF = 1.0
WATCH_BACKOFF_CAP = 15.0
WATCH_FAILURES_TO_FAIL = 3  # failures in a row that fail the cache (a 403: the first)
FAILED_WATCH_SECONDS = 10  # a failed cache's watch timeout: its recovery is seen this soon
FAST_CLOSE_SECONDS = 1.0  # a watch closed sooner with no event closed at once (a failure)
SHARD_WAIT_SECONDS = 0.02  # a `per_shard` cache waits for the Namespace cache's LIST so often
# A shard's caches of `per_shard` kinds list its namespaces one by one at start, not the whole
# cluster, when it has at most this many (`Informer._relist`): a shard then decodes only its
# own namespaces' objects, and the stores of a namespace listed are judged while the others
# are still listed (a restart's pass overlaps its lists). More namespaces than this: one LIST
# of the whole cluster each (six kinds a namespace would be too many requests).
FILL_NAMESPACES_MAX = 256
FILL_THREADS = 4  # the LISTs of namespaces made at once (`Caches._fill_loop`)


@dataclass(frozen=True)
class WatchResult:
    """How one WATCH request ended (`Informer._watch`)."""

    events: int = 0  # events received, bookmarks among them (not ERROR events)
    # Closed normally with no event sooner than `closed_fast` allows: an answer that is no watch.
    fast: bool = False
    # Why it failed: an HTTP status (an ERROR event's code; 0: no answer, or a garbled
    # one); None: it ended normally (its timeout, or 410 Gone).
    status: int | None = None
    gone: bool = False  # 410 Gone: its resourceVersion is compacted, list again
    error: str | None = None  # for the cache's outage (no object's content)


@dataclass(frozen=True)
class WatchStep:
    """What follows a watch (`judge_watch`)."""

    failures: int  # failed watches in a row, this one counted
    healthy: bool  # the watch works: the backoff starts over, a failed cache may be read
    fail: bool  # the cache fails now: its reads are Unknown
    relist: bool  # list again before the next watch
    wait: float  # seconds to wait before that


def closed_fast(seconds: float, timeout: float) -> bool:
    """Whether a watch asked for `timeout` seconds that ended normally after `seconds` with
    no event closed at once (an answer 200 that is no watch)."""
    return seconds < min(FAST_CLOSE_SECONDS, timeout / 2)


def watch_backoff(failures: int) -> float:
    """Seconds to wait after the `failures`-th failed watch or LIST in a row (1, 2, 4, 8, 15,
    15...)."""
    return min(WATCH_BACKOFF_CAP, WATCH_BACKOFF * 2.0 ** max(0, failures - 1))


def judge_watch(result: WatchResult, failures: int) -> WatchStep:
    """What follows a watch that ended with `result`, after `failures` failed in a row.

    Healthy: it delivered something, or stayed open until it ended normally. A failure: it
    broke (refused, an error, no answer) or closed at once with nothing; a 403 fails the
    cache at once (the permission is gone, not a blip), any other at the third in a row.
    Either way the cache lists again after the backoff; after 410 Gone at once."""
    healthy = result.events > 0 or (
        result.status is None and not result.gone and not result.fast
    )
    count = 0 if healthy else failures
    if result.status is not None or result.fast:
        count += 1
        fail = result.status == 403 or count >= WATCH_FAILURES_TO_FAIL
        return WatchStep(count, healthy, fail, True, watch_backoff(count))
    return WatchStep(count, healthy, False, result.gone, 0.0)


@dataclass(frozen=True)
class CacheOutage:
    """A cache that may not be read (`Caches.outages`): since when (time.monotonic), why."""

    kind: str
    namespace: str | None
    since: float
    error: str

    @property
    def where(self) -> str:
        """For messages: `kind in namespace` or `kind cluster-wide`."""
        return f"{self.kind} in {self.namespace}" if self.namespace else self.kind


@dataclass(frozen=True)
class CachedKind:
    """One kind the operator caches: where, which objects (label selector), how slimmed."""

    kind: str
    label_selector: str | None = None
    cluster_scoped: bool = False
    # The API kind when `kind` is a cache's own name (KeyRing: Secrets labelled as rings).
    resource: str | None = None
    # LIST and WATCH as PartialObjectMetadata: the server sends no data, and what it sends is
    # cut to `METADATA_KEPT` besides (a Secret's data never reaches the operator).
    metadata_only: bool = False
    # A 403 on its LIST is not a failure but a setting (the chart may not grant list/watch):
    # the cache stops for good, and reads of the kind go to the API by name (`Caches.watching`).
    optional: bool = False
    # The first pass (`Caches.listed`) waits for its first LIST to succeed; False: only for
    # its first attempt, for a kind whose failure makes only some verdicts Unknown (its
    # reads raise while it is not synced) and that the operator's RBAC may lack (a cluster's
    # AdminNetworkPolicies): else a refused LIST would hold every store's last verdict.
    awaited: bool = True
    # A sharded operator (`Caches.sharded`, cluster-wide caches) keeps only its own
    # namespaces' objects of this kind, those its Namespace cache holds (`ShardNamespaces`):
    # a kind only the reconciles of the shard's own stores read. Another shard's are dropped
    # as they arrive, before they are slimmed (issue 11: each shard held every namespace's).
    per_shard: bool = False
    # Its LISTs' pages are decoded without their managedFields' `fieldsV1` (kube.loads_list):
    # each manager's entry names every field it set (of a pod template; of a store's spec
    # and status), 42-46% of the answer. Not for small objects: building dicts from
    # msgspec's Structs cost more than the fields skipped saved. Not with `metadata_only`.
    lean_lists: bool = False
    # Its LIST pages wait their turn among every cache's (`_LIST_PAGES`). False: a shard's
    # Namespaces, a page of small objects that every `per_shard` cache waits for before it
    # lists; paced, it waited for the pages of the big lists (the semaphore is not fair),
    # and at 10,000 stores those caches began 0.8-0.9 s late.
    paced: bool = True

    @property
    def api_kind(self) -> str:
        """The kind in the REST API (RESOURCES)."""
        return self.resource or self.kind


def slim(kind: str, obj: Mapping[str, Any]) -> Obj:
    """What the operator keeps of an object: no managedFields, no last-applied copy, no
    metadata nothing reads (`UNREAD_METADATA`); its keys and short strings shared with every
    other cached object's (`_shared`), its labels, owner references, compared body
    (`SHARED_BODY`) and the vocabulary of its body (`held_parts`) with every other cached
    object's and neighbour render's that has equal ones (`_one_copy`)."""
    built: Obj = _built(_slimmed(kind, obj), held_parts(kind))
    return built


# What is held once per distinct value (`_one_copy`), by kind: the body a drift comparison
# reads, equal between a converged child and its render (the namespace views hold a render of
# every store's NetworkPolicy, Roles and RoleBindings; issue 11), and often between stores.
SHARED_BODY: dict[str, tuple[str, ...]] = {
    "NetworkPolicy": ("spec",),
    "Role": ("rules",),
    "ClusterRole": ("rules",),
    "RoleBinding": ("roleRef", "subjects"),
    "ClusterRoleBinding": ("roleRef", "subjects"),
}
# The lists of a Role's rule that a cluster has few distinct values of (its resourceNames are
# each store's own): held once (`held_parts`), each about 70 bytes, six a store's Roles.
RULE_VOCABULARY = ("apiGroups", "resources", "verbs", "nonResourceURLs")
# Metadata nothing reads of these kinds, dropped from their cached copies: drift ignores it
# (checks/drift.py), the RBAC and neighbour findings read names, labels and bodies, and an
# update (`drift.replacement`) needs only the resourceVersion as its precondition. The
# stores, CronJobs, Jobs and pods keep theirs (uids for ownership, creation times for runs).
UNREAD_METADATA: dict[str, frozenset[str]] = {
    kind: frozenset({"uid", "creationTimestamp", "generation"})
    for kind in (*SHARED_BODY, "ServiceAccount")
}


@dataclass(frozen=True)
class Held:
    """Which parts of a value are held once (`_one_copy`): the value itself when it is a
    non-empty value of one of the types `one`; of a dict, the parts of `keys` by theirs and of
    every other key by `values`' (when set); of a list, each item by `items`' (when set)."""

    one: tuple[type[dict[str, Any]] | type[list[Any]], ...] = ()
    keys: Mapping[str, Held] = field(default_factory=dict)
    values: Held | None = None
    items: Held | None = None


_ANY = Held(one=(dict, list))
_A_LIST = Held(one=(list,))
# Of every object: its labels (a store's children of one control carry the same) and its owner
# references (a store's children carry the same one): about 8 cached objects a store.
_METADATA = Held(keys={"labels": _ANY, "ownerReferences": _ANY})
# A NetworkPolicy's ingress and egress rules: each its ports (most the same few).
_NETWORK_RULES = Held(items=Held(keys={"ports": _A_LIST}))
# The vocabulary of a body (the parts a cluster has few distinct values of: a Role's rules'
# verbs; a NetworkPolicy's policyTypes and ports; a store's conditions (messages as digests)
# and spec parts (the same verdict, the same category's records, purge, encryption), held
# inside the compared body (`SHARED_BODY`) when it is held too.
_VOCABULARY: dict[str, dict[str, Held]] = {
    "NetworkPolicy": {"spec": Held(keys={
        "policyTypes": _A_LIST, "ingress": _NETWORK_RULES, "egress": _NETWORK_RULES})},
    "Role": {"rules": Held(items=Held(keys=dict.fromkeys(RULE_VOCABULARY, _A_LIST)))},
    "PersonalDataStore": {
        "status": Held(keys={"conditions": Held(items=Held(one=(dict,)))}),
        "spec": Held(values=_ANY),
    },
}  # fmt: skip
_VOCABULARY["ClusterRole"] = _VOCABULARY["Role"]
_HELD_PARTS: dict[str, Held] = {}


def held_parts(kind: str) -> Held:
    """The parts of an object of `kind` held once: its labels and owner references
    (`_METADATA`), its compared body (`SHARED_BODY`) and its body's vocabulary."""
    plan = _HELD_PARTS.get(kind)
    if plan is None:
        keys: dict[str, Held] = {"metadata": _METADATA, **_VOCABULARY.get(kind, {})}
        for key in SHARED_BODY.get(kind, ()):
            part = keys.get(key, Held())
            keys[key] = Held(one=_ANY.one, keys=part.keys, values=part.values, items=part.items)
        plan = _HELD_PARTS[kind] = Held(keys=keys)
    return plan


def share_render(obj: dict[str, Any], like: Mapping[str, Any] | None = None) -> None:
    """Hold `obj`'s parts once as a cached object's are (`slim`: the vocabulary of its body,
    then its labels, owner references and compared body), for a fresh render that nothing
    changes afterwards (the namespace views' renders): a converged child's cached copy and
    its render then hold one copy of each, and equal parts of renders one between them.
    Changed in place (its keys as they are: a Role and its RoleBinding share one metadata).

    `like`: the cached object of `obj`'s kind and name, whose parts `slim` held already. A
    part equal to `like`'s at the same place is taken from it: one comparison (C code)
    where holding the part costs its JSON text and that text's hash, for every part of
    every converged store's renders at a restart's first pass (issue 11). A part that
    differs, or that `like` lacks, is held as without it."""
    _held_in_place(obj, held_parts(str(obj.get("kind") or "")), like)


def share_metadata(meta: dict[str, Any]) -> None:
    """Replace `meta`'s labels and owner references by the one held copy of each (for
    metadata that is never changed afterwards: cached objects, the namespace views' renders)."""
    _held_in_place(meta, _METADATA)


def _held_in_place(value: Any, plan: Held, like: Any = None) -> Any:
    """`value` with the parts `plan` names replaced in place by their held copies (inner parts
    first), or its held copy when `plan` holds it too. A part `plan` holds that equals
    `like`'s at the same place is `like`'s (held already, and equal: either stands for the
    other), found without its text or hash."""
    if plan.one and value and type(like) is type(value) and isinstance(value, plan.one):
        if value == like:
            return like
    if isinstance(value, dict):
        within = like if isinstance(like, Mapping) else None
        for key in [k for k in value if k in plan.keys] if plan.values is None else list(value):
            sub = plan.keys.get(key, plan.values)
            if sub is not None:
                part = _held_in_place(value[key], sub, None if within is None else within.get(key))
                if part is not value[key]:
                    value[key] = part
    elif isinstance(value, list) and plan.items is not None:
        for i, item in enumerate(value):
            part = _held_in_place(item, plan.items)
            if part is not item:
                value[i] = part
    if plan.one and value and isinstance(value, plan.one):
        return _one_copy(value)
    return value


def _built(value: Any, plan: Held) -> Any:
    """`_shared(value)`, with the parts `plan` names held once: each looked up before it is
    built (`_held_copy`), so an equal part already held costs its text and no copy."""
    if plan.one and value and isinstance(value, plan.one):
        return _held_copy(value, plan)
    return _parts_built(value, plan)


def _parts_built(value: Any, plan: Held) -> Any:
    """`_shared(value)` with the parts `plan` names inside it built by `_built`."""
    if isinstance(value, dict):
        keys, values = plan.keys, plan.values
        if not keys and values is None:
            return _shared(value)
        out = {}
        for key, item in value.items():
            part = keys.get(key, values)
            key = sys.intern(key) if type(key) is str else _shared_key(key)
            if part is None:
                out[key] = _shared(item)
            elif part.one and item and isinstance(item, part.one):
                out[key] = _held_copy(item, part)
            else:
                out[key] = _parts_built(item, part)
        return out
    if isinstance(value, list) and plan.items is not None:
        items = plan.items
        return [_built(v, items) for v in value].copy()
    return _shared(value)


# The held copies by the hash of their JSON text (a number, not the text: the key is held as
# long as the copy, and the text is often as large as the copy). Held strongly, and swept of
# the copies nothing else holds when the table has doubled since its last sweep (a weak table
# cost about 90 bytes more per entry: its KeyedRef, and a weakref slot in each copy).
_COPIES: dict[int, Any] = {}
_COPIES_LOCK = threading.Lock()
SWEEP_FLOOR = 4096  # entries: no sweep below this many
_SWEEP_AT = SWEEP_FLOOR  # entries: the next sweep
# sys.getrefcount of a copy only the table holds, as `_sweep` iterates (the table's
# reference, the items list's tuple, the loop variable, getrefcount's argument).
_UNHELD = 4


def _one_copy(value: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    """The one held copy equal to `value` (a dict or list of a cached object or a render).

    A store's children carry the same owner reference, and those of one control the same
    labels: ~8 cached objects a store, each with its own copy (about 3 KiB a store, issue
    11). A copy nothing else holds goes at the next sweep. Cached objects are never changed
    (every reader shares them), so neither is a copy. Keyed by the hash of the value's JSON
    text and compared (==) on a hit: two unequal values whose texts' hashes collide are not
    shared (the second is kept as it is).
    """
    key = hash(_canonical(value))
    with _COPIES_LOCK:
        held: dict[str, Any] | list[Any] | None = _COPIES.get(key)
        if held is None:
            _hold(key, value)
            return value
        return held if held == value else value


def _held_copy(value: dict[str, Any] | list[Any], plan: Held) -> Any:
    """`_one_copy(_parts_built(value, plan))`, but looked up first: a value already held is
    not built (interned, its parts held) only to be dropped for the held copy (a restart's
    LIST of 10,000 stores built every store's spec parts and conditions so: issue 11). The
    key is the same: interning changes no text. The lookup takes no lock (one read of a
    dict; holding and sweeping take it)."""
    key = hash(_canonical(value))
    held = _COPIES.get(key)
    if held is not None:
        # Else an unequal value whose text's hash collides: kept as it is.
        return held if held == value else _parts_built(value, plan)
    built = _parts_built(value, plan)
    with _COPIES_LOCK:
        held = _COPIES.get(key)  # held meanwhile (by another informer's thread)?
        if held is None:
            _hold(key, built)
            return built
    return held if held == built else built


def _hold(key: int, value: Any) -> None:
    """Hold `value` as the copy of `key`'s (under the lock), swept first when due."""
    global _SWEEP_AT
    if len(_COPIES) >= _SWEEP_AT:
        _sweep()
        _SWEEP_AT = max(SWEEP_FLOOR, 2 * len(_COPIES))
    _COPIES[key] = value


def _canonical(value: Any) -> bytes | str:
    """`value` as JSON text with sorted keys: equal values, equal texts (orjson: about a tenth
    of `json.dumps`' CPU, and `_one_copy` runs several times for every object cached; issue
    11); what orjson refuses (an integer past 64 bits, a key that is not a string) by
    `json.dumps`."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _sweep() -> None:
    """Forget the copies only the table holds (under the lock), until none is left: a held
    copy may hold others (a Role's rules hold its vocabulary's lists)."""
    while True:
        dead = [key for key, held in list(_COPIES.items()) if sys.getrefcount(held) <= _UNHELD]
        if not dead:
            return
        for key in dead:
            del _COPIES[key]


def sweep_copies() -> int:
    """Forget the held copies no cached object or render holds any more; how many are left."""
    with _COPIES_LOCK:
        _sweep()
        return len(_COPIES)


def _slimmed(kind: str, obj: Mapping[str, Any]) -> Obj:
    unread = UNREAD_METADATA.get(kind, frozenset())
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in unread}
    managed = meta.pop("managedFields", None)
    if kind == "CronJob" and managed:
        # missed_run asks when the operator last changed the CronJob.
        meta["managedFields"] = [
            {"manager": m.get("manager"), "time": m.get("time")} for m in managed if m.get("time")
        ]
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    if kind == "Pod":
        statuses = [
            {
                "name": status.get("name"),
                "state": {"terminated": {"message": terminated["message"]}},
            }
            for status in (obj.get("status") or {}).get("containerStatuses") or []
            for terminated in [(status.get("state") or {}).get("terminated") or {}]
            if terminated.get("message")
        ]
        # Of its spec, only what it runs is read (whether it is the purge's): as a digest.
        return {
            "kind": kind, "metadata": meta, "status": {"containerStatuses": statuses},
            RUNS_DIGEST: pod_runs(obj),
        }  # fmt: skip
    if kind == "Job":
        # A run is judged by its metadata and status, and by what its pod template runs (a
        # digest: the template is the largest part, times the runs each CronJob keeps).
        return {
            "kind": kind, "metadata": meta, "status": obj.get("status") or {},
            RUNS_DIGEST: job_runs(obj),
        }  # fmt: skip
    if kind == "PersonalDataStore" and isinstance(obj.get("status"), Mapping):
        # Its conditions' messages are compared (whether to write), never read: digests.
        return {**obj, "kind": kind, "metadata": meta, "status": comparable_status(obj["status"])}
    if kind == "AdminNetworkPolicy":
        # NetworkIsolated reads its name, its subject and its ingress rules' actions only.
        raw = obj.get("spec")
        spec: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        rules = spec.get("ingress")
        rules = rules if isinstance(rules, list) else []
        kept = {"subject": spec.get("subject") or {},
                "ingress": [{k: rule[k] for k in ("name", "action") if k in rule}
                            for rule in rules if isinstance(rule, Mapping)]}  # fmt: skip
        meta = {k: meta[k] for k in ("name", "resourceVersion") if k in meta}
        return {"kind": kind, "metadata": meta, "spec": kept}
    if kind in ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"):
        # NetworkIsolated reads its name and namespace, and of each rule its selectors and
        # whether it has an ingress rule that admits something (`cilium_rule_admits`).
        meta = {k: meta[k] for k in ("name", "namespace", "resourceVersion") if k in meta}
        policy: Obj = {"kind": kind, "metadata": meta}
        for part in ("spec", "specs"):
            rules = _cilium_rules_kept(obj.get(part))
            if rules is not None:
                policy[part] = rules
        return policy
    if kind in ("CalicoNetworkPolicy", "CalicoGlobalNetworkPolicy"):
        # NetworkIsolated reads its name and namespace, its selectors, and whether it has an
        # ingress rule of action Allow that it enforces (`calico_policy_admits`): one such
        # rule stands for all. Its selectors are parsed once (memoised), not per store.
        meta = {k: meta[k] for k in ("name", "namespace", "resourceVersion") if k in meta}
        raw_spec = obj.get("spec")
        given: Mapping[str, Any] = raw_spec if isinstance(raw_spec, Mapping) else {}
        body = {k: given[k] for k in CALICO_SELECTORS if k in given}
        body["ingress"] = [{"action": "Allow"}] if calico_policy_admits(obj) else []
        return {"kind": kind, "metadata": meta, "spec": body}
    if kind == "CronJob":
        # Drift compares its pod template (most of it) by a digest, and nothing else reads it.
        return comparable_cronjob({**obj, "kind": kind, "metadata": meta})
    return {**obj, "kind": kind, "metadata": meta}


def _cilium_rules_kept(part: Any) -> Any:
    """Of a Cilium policy's `spec` (one rule) or `specs` (a list of them), what
    NetworkIsolated reads: each rule's endpointSelector and nodeSelector, and its ingress as
    one rule standing for all when one admits something (`cilium_rule_admits`), else none."""

    def kept(rule: Mapping[str, Any]) -> Obj:
        out = {k: rule[k] for k in ("endpointSelector", "nodeSelector") if k in rule}
        if cilium_rule_admits(rule):
            out["ingress"] = [{ADMITS: True}]
        return out

    if isinstance(part, Mapping):
        return kept(part)
    if isinstance(part, list):
        return [kept(rule) for rule in part if isinstance(rule, Mapping)]
    return None


def metadata_only(obj: Mapping[str, Any]) -> Obj:
    """Only the metadata a cache of presence and owners needs (`METADATA_KEPT`), and of the
    annotations those in `ANNOTATIONS_KEPT`: never data, other annotations or managedFields."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in METADATA_KEPT if k in meta}
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping):
        wanted = {k: annotations[k] for k in ANNOTATIONS_KEPT if k in annotations}
        if wanted:
            kept["annotations"] = wanted
        if EXPORT_TOKEN_ANNOTATION in wanted and "uid" in meta:
            kept["uid"] = meta["uid"]
    return {"metadata": kept}


def _shared(value: Any) -> Any:
    """`value` with its keys and short strings interned.

    Decoded JSON has a string object per occurrence: every cached object repeats the same
    keys, label keys and values, kinds, apiVersions, condition types and reasons. Interned,
    10,000 stores' objects share one copy of each (unique long strings are left alone).
    A dict's strings and numbers are taken in its loop, without a call each (a fifth of the
    walk's CPU for a store: issue 11); what is not JSON's own types goes by `_shared_other`.
    """
    kind = type(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            key = sys.intern(key) if type(key) is str else _shared_key(key)
            of = type(item)
            if of is str:
                out[key] = sys.intern(item) if len(item) <= SHARED_LENGTH else item
            elif of in _SCALARS:
                out[key] = item
            else:
                out[key] = _shared(item)
        return out
    if kind is list:
        # Copied to its exact length: a list grown by appends keeps room for more (24 bytes
        # more for a list of one item), and a cached list never grows.
        return [_shared(v) for v in value].copy()
    if kind is str:
        return sys.intern(value) if len(value) <= SHARED_LENGTH else value
    return _shared_other(value)


_SCALARS = frozenset({int, float, bool, type(None)})


def _shared_key(key: Any) -> Any:
    return sys.intern(key) if isinstance(key, str) else key


def _shared_other(value: Any) -> Any:
    """`_shared` of what is not exactly a str, dict or list (a subclass, a number, None)."""
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= SHARED_LENGTH else value
    if isinstance(value, dict):
        return {_shared_key(k): _shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shared(v) for v in value].copy()
    return value


def parse_selector(selector: str | None) -> dict[str, str]:
    """`a=b,c=d` as a dict (equality selectors only: all the operator uses)."""
    out: dict[str, str] = {}
    for part in (selector or "").split(","):
        if part.strip():
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip()
    return out


def _selected(obj: Mapping[str, Any], wanted: Mapping[str, str]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in wanted.items())


def _newer(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether `new` may replace `old`: not an older resourceVersion (when both are numbers).

    The API calls resourceVersions opaque; etcd's are increasing integers. The comparison only
    keeps a late watch event from undoing a newer copy the operator stored after its own write.
    """
    return old is None or not _later(_version(old), _version(new))


def _version(obj: Mapping[str, Any]) -> str | None:
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _number(version: str | None) -> int | None:
    """A resourceVersion as the etcd integer it is; None when unknown or not a number (then
    nothing is decided by it)."""
    try:
        return None if version is None else int(version)
    except ValueError:
        return None


def _later(version: str | None, than: str | None) -> bool:
    """Whether resourceVersion `version` is known to be strictly later than `than`."""
    a, b = _number(version), _number(than)
    return a is not None and b is not None and a > b


def _passed(version: str | None, position: str | None) -> bool:
    """Whether a watch at resourceVersion `position` is known to have gone past `version`
    (delivered it and what came after)."""
    a, b = _number(version), _number(position)
    return a is not None and b is not None and a <= b


class ChangeJournal:
    """The changes of one cache, in order: the namespace and name of each, for "what changed
    since generation g" (`since`). Changes at or before `floor` are forgotten (a cache's first
    LIST, or the bound: the oldest half goes past 2 * JOURNAL_BOUND).

    A cache bumps its generation by one for each change it journals, so the change at index
    i was made at generation floor + 1 + i: no generation (nor a tuple) is kept per change,
    only two list slots (the strings are the cached objects'). A (generation, namespace,
    name) tuple and its integer a change were about 80 bytes: 0.9 MiB held once 1,000
    stores had converged (12 changes a store), which a restarted operator, its caches
    filled by LIST, does not hold (issue 11).
    """

    __slots__ = ("floor", "names", "namespaces")

    def __init__(self) -> None:
        self.floor = 0
        self.namespaces: list[str] = []
        self.names: list[str] = []

    def note(self, generation: int, namespace: str, name: str) -> None:
        """The change made at `generation`: the one after the last journalled (or `floor`).
        Any other (a generation bumped without a change journalled) makes every earlier
        generation unknown, never a change missed."""
        if generation != self.floor + 1 + len(self.names):
            self.forget(generation - 1)
        self.namespaces.append(namespace)
        self.names.append(name)
        if len(self.names) > 2 * JOURNAL_BOUND:
            del self.namespaces[:JOURNAL_BOUND]
            del self.names[:JOURNAL_BOUND]
            self.floor += JOURNAL_BOUND

    def forget(self, generation: int) -> None:
        """Nothing known of the changes up to `generation`."""
        self.floor = generation
        self.namespaces = []
        self.names = []

    def since(self, generation: int, namespace: str) -> set[str] | None:
        """The names in `namespace` changed after `generation`; None when that is no longer
        known (forgotten): rebuild."""
        if generation < self.floor:
            return None
        start = generation - self.floor
        return {
            name
            for where, name in zip(self.namespaces[start:], self.names[start:], strict=True)
            if where == namespace
        }

    def __len__(self) -> int:
        return len(self.names)


class ShardNamespaces:
    """The namespaces this shard serves, as its Namespace cache (listed and watched by the
    shard's label selector) holds them: what the caches of `per_shard` kinds keep."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer

    def known(self) -> bool:
        """Whether the Namespace cache has listed (before, no namespace is known to be ours)."""
        return self.informer.lists > 0

    def names(self) -> frozenset[str]:
        with self.informer.lock:
            return frozenset(self.informer.by_namespace.get("", {}))

    def holds(self, namespace: str) -> bool:
        with self.informer.lock:
            return namespace in self.informer.by_namespace.get("", {})


class Informer:
    """One kind in one namespace (or cluster-wide): LIST, then WATCH, re-LIST periodically.

    Of a `per_shard` kind in a sharded operator (`shard` set): only the shard's namespaces'
    objects are kept, and a namespace's are read only once a LIST has covered it
    (`listed_for`): one that became the shard's since its last LIST is listed alone
    (`list_namespace`, asked for by `on_missing`), and until then its reads raise
    (Unknown, never "none there").
    """

    def __init__(
        self,
        kube: Kube,
        spec: CachedKind,
        namespace: str | None,
        relist_seconds: float,
        on_event: EventCallback,
        on_health: HealthCallback,
    ) -> None:
        self.kube = kube
        self.spec = spec
        self.namespace = namespace
        self.relist_seconds = max(1.0, relist_seconds)
        self.on_event = on_event
        self.on_health = on_health
        # The operator's writes in flight: their watch events wait for their answers (a stub
        # Kube without one: every event is emitted at once).
        writes = getattr(kube, "writes", None)
        self.writes = writes if isinstance(writes, WriteTracker) else None
        self.lock = threading.Lock()
        self.by_namespace: dict[str, dict[str, Obj]] = {}
        # Kept with by_namespace under the lock: label lookups without a scan (issue 11).
        self.index = LabelIndex(
            selectors=spec.kind == "NetworkPolicy", labels=spec.kind in LABEL_INDEXED
        )
        self.synced = False
        self.error: str | None = "initial list not done yet"
        self.generation = 0  # bumped on every change: memo keys for derived values
        # What changed since a generation, so derived structures update only those entries
        # (issue 11); under the lock, its generations this cache's.
        self.journal = ChangeJournal()
        self.resource_version: str | None = None
        self.lists = 0
        self.attempted = False  # its first LIST has been tried (succeeded or failed)
        # Since when (time.monotonic) this cache has not been synced: its thread's start
        # (`run`), or the failed re-list that ended its last synced spell; None while synced,
        # and before it starts (`Caches.outages`).
        self.unsynced_since: float | None = None
        # An optional kind whose LIST or WATCH was refused (403): stopped; its reads go to the API.
        self.forbidden = False
        self.watch_failures = 0  # failed watches in a row (`judge_watch`)
        # Failed by its watch: a LIST alone does not make it synced again, a working watch does.
        self.watch_broken = False
        self.retired = False  # no longer cached (`retire`)
        # Sharded (`per_shard` kinds): the shard's namespaces; those a LIST covered, whose
        # reads are answered (replaced whole, under the lock); the deletions seen in a
        # namespace not yet covered (name -> resourceVersion), so that its LIST, older, does
        # not bring them back; who fills in a namespace the last LIST did not cover.
        self.shard: ShardNamespaces | None = None
        self.listed_for: frozenset[str] = frozenset()
        self._deleted: dict[str, dict[str, str | None]] = {}
        self.on_missing: Callable[[str], None] | None = None
        # Periodic re-lists one cache at a time (`_watch_until_relist`; `Caches` gives its
        # caches one turn): caches started together fall due together (each
        # `relist_seconds`, the safety resync), and a cache does not watch while it lists.
        # One due while another re-lists keeps watching: a change (a deleted child) is seen
        # at once, not after every kind's pages. A re-list after a failed watch does not
        # wait: the cache is not synced until it lists.
        self.relist_turn = threading.Lock()
        self._turn = False  # holds `relist_turn` for its periodic re-list

    @property
    def where(self) -> str:
        """For messages: `kind in namespace` or `kind cluster-wide`."""
        return f"{self.spec.kind} in {self.namespace}" if self.namespace else self.spec.kind

    def retire(self) -> None:
        """No longer cached (`Caches.drop`): a read through this informer raises from now on
        (Unknown), whatever its loop does before it sees its stop."""
        self.retired = True

    # Reads (any thread).

    def check(self) -> None:
        """Raise KubeError when this cache may not be read (not synced, failing, or no
        longer cached)."""
        if self.retired:
            raise KubeError(0, "no longer cached", f"list {self.where}")
        if not self.synced:
            raise KubeError(0, f"cache not synced ({self.error})", f"list {self.where}")

    def _check_namespace(self, namespace: str | None) -> None:
        """Raise KubeError for a namespace whose objects this cache does not hold whole: of
        a `per_shard` kind, one no LIST has covered (another shard's, or one that became
        this shard's since and is still being listed)."""
        if self.shard is not None and namespace is not None and namespace not in self.listed_for:
            raise KubeError(
                0, f"namespace {namespace} not listed by this shard", f"list {self.where}"
            )

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """The cached object, or None (known absent); KubeError when not synced."""
        self.check()
        self._check_namespace(namespace)
        with self.lock:
            return self.by_namespace.get(namespace or "", {}).get(name)

    def items(self, namespace: str | None) -> list[Obj]:
        """The cached objects of `namespace` (None: all); KubeError when not synced."""
        self.check()
        self._check_namespace(namespace)
        with self.lock:
            if namespace is None:
                return [o for objs in self.by_namespace.values() for o in objs.values()]
            return list(self.by_namespace.get(namespace, {}).values())

    def labelled(self, namespace: str, wanted: Mapping[str, str]) -> list[Obj]:
        """The cached objects of `namespace` carrying every `wanted` label, in cache order,
        from the index (O(matches)) of a `LABEL_INDEXED` kind, else by a scan; KubeError
        when not synced."""
        self.check()
        self._check_namespace(namespace)
        with self.lock:
            objs = self.by_namespace.get(namespace, {})
            if not self.index.labels:
                return [o for o in objs.values() if _selected(o, wanted)]
            found = (objs[name] for name in self.index.labelled(namespace, wanted))
            return [o for o in found if _selected(o, wanted)]

    def selecting(self, namespace: str, pods: Sequence[Mapping[str, str]]) -> list[Obj]:
        """The cached NetworkPolicies of `namespace` that may select a pod with any of these
        label sets (the others cannot), in cache order; KubeError when not synced."""
        if not self.index.selectors:
            return self.items(namespace)
        self.check()
        self._check_namespace(namespace)
        with self.lock:
            objs = self.by_namespace.get(namespace, {})
            return [objs[name] for name in self.index.selecting(namespace, pods)]

    def changed_since(self, namespace: str | None, generation: int) -> set[str] | None:
        """The names in `namespace` changed (put or removed) after `generation`; None when
        that is no longer known (forgotten): rebuild from `items`."""
        with self.lock:
            return self.journal.since(generation, namespace or "")

    def _note(self, ns: str, name: str) -> None:
        """One change of the cache (under the lock): the generation moved on by one and the
        name journalled at it. The only place the generation moves: a bump without its
        note, or two notes at one bump, reads to the journal as a gap (it forgets)."""
        self.generation += 1
        self.journal.note(self.generation, ns, name)

    def _slim(self, obj: Mapping[str, Any]) -> Obj:
        """What this cache keeps of `obj` (of a metadata-only kind: its metadata, whatever the
        server sent), under its API kind."""
        return slim(self.spec.api_kind, metadata_only(obj) if self.spec.metadata_only else obj)

    def store_written(self, obj: Mapping[str, Any]) -> None:
        """Keep the answer to the operator's own write, so its next read is not older; the
        watch event of that write, if it came first and was held, is dropped (`WriteTracker`)."""
        # Its watch event often came first: then the cache holds this version already.
        if (
            _selected(obj, parse_selector(self.spec.label_selector))
            and self._keeps(obj)
            and not self._held(obj)
        ):
            self._put(self._slim(obj), notify=False, answer=True)
        if self.writes is not None:
            meta = obj.get("metadata") or {}
            key = (self.spec.api_kind, str(meta.get("namespace") or ""), str(meta.get("name")))
            self.writes.settle(key, self, _version(obj))

    def _keeps(self, obj: Mapping[str, Any]) -> bool:
        """Whether this cache keeps `obj`: not another shard's (`per_shard` kinds)."""
        if self.shard is None:
            return True
        return self.shard.holds(str((obj.get("metadata") or {}).get("namespace") or ""))

    def store_deleted(self, namespace: str | None, name: str, version: str | None) -> None:
        """Drop an object the operator has just deleted (at resourceVersion `version`), as
        the watch's DELETED event will: its next read (and every verdict that reads the
        namespace) is not older. Not a later object of the name, which the watch delivered
        before this: one made since the delete (a RoleBinding someone re-created)."""
        with self.lock:
            held = self.by_namespace.get(namespace or "", {}).get(name)
        if held is not None and not _later(_version(held), version):
            self._remove(held, version)

    # The loop (its own thread).

    def run(self, stop: threading.Event) -> None:
        """List and watch until `stop`; failures are kept as this cache's error, then retried."""
        if not self.synced:
            self.unsynced_since = time.monotonic()
        # Which namespaces are the shard's is known once its Namespace cache has listed: a
        # LIST before would keep nothing (its reads raise until then, as before any LIST).
        while self.shard is not None and not self.shard.known() and not stop.is_set():
            stop.wait(SHARD_WAIT_SECONDS)
        try:
            self._run(stop)
        finally:
            self._give_turn()  # stopped between its turn and its re-list

    def _run(self, stop: threading.Event) -> None:
        failures = 0  # failed LISTs in a row
        while not stop.is_set():
            try:
                try:
                    self._relist()
                finally:
                    self._give_turn()
            except KubeError as error:
                if error.status == 403 and self.spec.optional:
                    self._forbid()
                    return
                self._fail(f"HTTP {error.status} {error.reason}")
                self._attempted()
                failures += 1
                stop.wait(watch_backoff(failures))
                continue
            except Exception as error:  # a bug or a garbled answer must not end the cache
                log.exception("cache of %s failed", self.where)
                self._fail(type(error).__name__)
                self._attempted()
                failures += 1
                stop.wait(watch_backoff(failures))
                continue
            failures = 0
            if not self._watch_until_relist(stop):
                return

    def _watch_until_relist(self, stop: threading.Event) -> bool:
        """Watch until the next periodic re-list is due and this cache has the re-lists' turn
        (`relist_turn`, then held), or until the watch fails or is gone (`judge_watch` says
        what follows: the backoff is waited here). False: this cache stops for good (an
        optional kind's watch refused)."""
        deadline = time.monotonic() + self.relist_seconds
        while not stop.is_set():
            if time.monotonic() >= deadline:
                if self.relist_turn.acquire(blocking=False):
                    self._turn = True  # given back once the re-list ends (`_give_turn`)
                    return True
                deadline = time.monotonic() + RELIST_TURN_SECONDS  # another re-lists
            cap = WATCH_SECONDS if self.synced else FAILED_WATCH_SECONDS
            timeout = int(min(cap, max(1.0, deadline - time.monotonic())))
            result = self._watch(timeout, stop)
            if stop.is_set():
                return True
            step = judge_watch(result, self.watch_failures)
            self.watch_failures = step.failures
            if step.healthy:
                self._watch_works()
            if result.status == 403 and self.spec.optional:
                self._forbid()
                return False
            if step.fail:
                self.watch_broken = True
                self._fail(result.error or "its watch closed at once with nothing")
            if step.relist:
                if step.wait:
                    log.info("watch of %s failed (%s, %d in a row); listing again in %gs",
                             self.where, result.error or "closed at once", step.failures,
                             step.wait)  # fmt: skip
                    stop.wait(step.wait)
                return True
        return True

    def _give_turn(self) -> None:
        """Give back the periodic re-lists' turn, if this cache holds it."""
        if self._turn:
            self._turn = False
            self.relist_turn.release()

    def _watch_works(self) -> None:
        """A watch delivered or stayed open: the backoff starts over, and a cache its watch
        failed is synced again (it listed just before this watch)."""
        self.watch_failures = 0
        if self.watch_broken:
            self.watch_broken = False
            self.synced, self.error = True, None
            self.unsynced_since = None
            log.info("cache of %s: its watch works again", self.where)
            self.on_health(self.spec.kind, self.namespace)

    def _forbid(self) -> None:
        """An optional kind may not be listed or watched: say so once, and leave its reads
        to the API."""
        self.synced = False
        self.error = "list/watch forbidden"
        self.forbidden = True
        log.warning(
            "list/watch of %s is forbidden: reading %s by name instead (no watch; a change is "
            "seen on the next reconcile)", self.where, self.spec.api_kind,
        )
        self.on_health(self.spec.kind, self.namespace)

    def _attempted(self) -> None:
        """Its first LIST failed: a kind the first pass does not wait for says so (once)."""
        if not self.attempted:
            self.attempted = True
            if not self.spec.awaited:
                self.on_health(self.spec.kind, self.namespace)

    def _fail(self, error: str) -> None:
        was = self.synced
        self.synced = False
        self.error = error
        if was or self.unsynced_since is None:
            self.unsynced_since = time.monotonic()
        if was:
            until = "its watch works again" if self.watch_broken else "a re-list"
            log.warning("cache of %s failed: %s (reads of it are Unknown until %s)",
                        self.where, error, until)  # fmt: skip
            self.on_health(self.spec.kind, self.namespace)

    def _list_request(self, namespace: str | None) -> tuple[str, list[tuple[str, str]], str]:
        """A LIST's path (of `namespace`, else this cache's scope), label selector query and
        Accept header: one definition for `_list` and `_version_now`."""
        selector = [("labelSelector", self.spec.label_selector)] if self.spec.label_selector else []
        accept = METADATA_ONLY_LIST if self.spec.metadata_only else "application/json"
        return RESOURCES[self.spec.api_kind].path(namespace or self.namespace), selector, accept

    def _list_pages(
        self,
        namespace: str | None,
        take: Callable[[list[Obj]], None],
        restart: Callable[[], None],
        limit: int = LIST_PAGE,
    ) -> str:
        """LIST (of `namespace`; else of this cache's scope) in pages of `limit` objects, each
        page's items given to `take` while the page is held (`_LIST_PAGES`), and the list's
        resourceVersion. A continue token that expired (410) starts the list again (`restart`
        first): the pages before were of an older snapshot.

        One LIST of 10,000 objects is one JSON body and every object as sent (managedFields
        and all) held at once, which set the process's peak memory; a page is taken in before
        the next is asked for.
        """
        path, selector, accept = self._list_request(namespace)
        decode = loads_list if self.spec.lean_lists and not self.spec.metadata_only else loads
        for attempt in range(LIST_ATTEMPTS):
            token = ""
            while True:
                query = [*selector, ("limit", str(limit))]
                if token:
                    query.append(("continue", token))
                pace = _LIST_PAGES if self.spec.paced else nullcontext()
                with pace:  # the page is held only inside
                    try:
                        result = self.kube._call(
                            "GET", path, query=query, what=f"list {self.spec.kind}",
                            accept=accept, decode=decode,
                        )  # fmt: skip
                    except KubeError as error:
                        if error.status == 410 and token and attempt + 1 < LIST_ATTEMPTS:
                            restart()  # the snapshot the token named is compacted
                            break
                        raise
                    take(result.pop("items", None) or [])  # not held while the next is read
                meta = result.get("metadata") or {}
                token = str(meta.get("continue") or "")
                if not token:
                    return str(meta.get("resourceVersion") or "")
        raise AssertionError("unreachable: the last attempt raises or returns")

    def _list(self, namespace: str) -> tuple[dict[str, Obj], str]:
        """Every object of `namespace`, slimmed, by name, and the list's resourceVersion."""
        fresh: dict[str, Obj] = {}

        def take(items: list[Obj]) -> None:
            for item in items:
                obj = self._slim(item)
                fresh[obj["metadata"]["name"]] = obj

        version = self._list_pages(namespace, take, fresh.clear)
        return fresh, version

    def _merge_list(self, kept: frozenset[str] | None) -> tuple[str, set[tuple[str, str]]]:
        """LIST this cache's scope (`kept`: only the objects of these namespaces, the others
        dropped unslimmed) into what it holds, page by page: an object held at the version
        listed is left as it is (not even slimmed), one changed or new since is stored and
        its event sent (not on the first LIST: nothing was known before it). The list's
        resourceVersion, and every object it returned (by namespace and name): what it did
        not return is `_relist`'s to remove.

        The safety resync re-lists every cache; holding a kind's new objects beside those
        they replace until the last page (20,007 RoleBindings at 10,000 stores) raised a
        running operator's peak RSS by 50-74 MiB each hour (bench/RESULTS.md, twenty-ninth
        and thirtieth passes); now one page at a time is held beside the cache.
        """
        notify = self.lists > 0
        seen: set[tuple[str, str]] = set()

        def take(items: list[Obj]) -> None:
            slimmed = []
            for item in items:
                meta = item.get("metadata") or {}
                ns = meta.get("namespace") or ""
                if kept is not None and ns not in kept:
                    continue
                seen.add((ns, str(meta.get("name"))))
                if not self._held(item):  # held at this version (or a later one): unchanged
                    slimmed.append(self._slim(item))
            changes = []
            with self.lock:
                for obj in slimmed:
                    meta = obj["metadata"]
                    ns, name = meta.get("namespace") or "", meta["name"]
                    old = self.by_namespace.get(ns, {}).get(name)
                    if not _newer(obj, old):
                        continue  # the answer to a write of the operator's since, later
                    self._hold_locked(ns, name, old, obj)
                    changes.append((old, obj))
            if notify:
                for old, obj in changes:
                    self.on_event(self.spec.kind, old, obj)

        limit = RELIST_PAGE if self.lists else LIST_PAGE
        return self._list_pages(None, take, seen.clear, limit), seen

    def _relist(self) -> None:
        # The shard's namespaces as the LIST starts: one that becomes the shard's meanwhile
        # is not covered (some of its objects may have come before) and is listed alone after.
        if self.shard is not None and not self.shard.known():
            raise KubeError(0, "the shard's namespaces are not listed yet", f"list {self.where}")
        kept = None if self.shard is None else self.shard.names()
        seen: set[tuple[str, str]]
        if kept is not None and self.lists == 0 and len(kept) <= FILL_NAMESPACES_MAX:
            # The first LIST of a shard's cache: no namespace listed here; each is listed
            # alone (`on_missing`, below: `list_namespace`), its watch events kept meanwhile
            # from this version on, which every such LIST is at or after.
            resource_version, kept, seen = self._version_now(), frozenset(), set()
        else:
            resource_version, seen = self._merge_list(kept)
        gone: list[Obj] = []
        with self.lock:
            if kept is not None and self.shard is not None:
                # Not one that left the shard while it listed (`drop_namespace` took it out
                # before, or comes after and will): under the lock, the order is the event's.
                kept = kept & self.shard.names()
            # Gone: what the LIST did not return and was not made after its snapshot (the
            # answer to a write of the operator's since), and whatever is held of a
            # namespace it did not cover for the shard (listed alone after, if the shard's).
            for ns, objs in self.by_namespace.items():
                covered = kept is None or ns in kept
                for name, obj in objs.items():
                    if not covered or (
                        (ns, name) not in seen and not _later(_version(obj), resource_version)
                    ):
                        gone.append(obj)
            for obj in gone:
                meta = obj["metadata"]
                self._unhold_locked(meta.get("namespace") or "", meta["name"])
            if self.lists == 0:  # nothing was derived before: its changes are not kept
                self.journal.forget(self.generation)
            # Under the lock with the objects: an answer stored after them is judged against
            # the list's version (`_put`), never against the watch's older one.
            self.resource_version = resource_version
            if kept is not None:
                self.listed_for = kept
                self._deleted = {ns: d for ns, d in self._deleted.items() if ns not in kept}
        if kept is not None and self.shard is not None and self.on_missing is not None:
            # Asked for before this cache is synced: a namespace it has not listed is never
            # the shard's (`Caches.owns`) in between, to be judged on it (Unknown).
            for namespace in sorted(self.shard.names() - kept):
                self.on_missing(namespace)
        was = self.synced
        if not self.watch_broken:  # else a watch must work first (`_watch_works`)
            self.synced, self.error = True, None
            self.unsynced_since = None
        self.lists += 1
        if self.lists > 1:
            for obj in gone:
                self.on_event(self.spec.kind, obj, None)
        if self.synced and not was:
            self.on_health(self.spec.kind, self.namespace)

    def _version_now(self) -> str:
        """The resourceVersion of a LIST made now (one object asked for, then dropped): where
        a watch starts that misses nothing a later LIST of any namespace has not seen."""
        path, selector, accept = self._list_request(None)
        result = self.kube._call(
            "GET", path, query=[*selector, ("limit", "1")], what=f"list {self.spec.kind}",
            accept=accept,
        )  # fmt: skip
        version = str((result.get("metadata") or {}).get("resourceVersion") or "")
        if not version:
            raise KubeError(0, "a LIST without a resourceVersion", f"list {self.where}")
        return version

    def list_namespace(self, namespace: str) -> None:
        """Fill in `namespace`, which became the shard's since this cache's last LIST: LIST it
        alone; its objects are then the LIST's, but for what the watch has brought since:
        a later version, an object made after the LIST's snapshot, a deletion (a LIST that
        began before it still returns the object). Whatever else was held of the namespace
        (from a time it was the shard's before) goes. Then its reads are answered. KubeError
        when the LIST fails (its reads keep raising)."""
        fresh, listed_at = self._list(namespace)
        with self.lock:
            if self.shard is None or not self.shard.holds(namespace):
                return  # no longer the shard's (`drop_namespace`)
            deleted = self._deleted.pop(namespace, {})
            held = self.by_namespace.get(namespace, {})
            objs = {
                name: obj for name, obj in fresh.items()
                if not _later(deleted.get(name), _version(obj))
            }  # fmt: skip
            for name, obj in held.items():
                listed = objs.get(name)
                if _later(_version(obj), _version(listed) if listed else listed_at):
                    objs[name] = obj  # the watch's, later than the LIST's
            for name, obj in held.items():  # the index anew, in the namespace's new order
                self.index.remove(namespace, name, obj)
            for name, obj in objs.items():
                self.index.put(namespace, name, None, obj)
            self.by_namespace[namespace] = objs
            for name in held.keys() | objs.keys():  # each a change of its own
                self._note(namespace, name)
            self.listed_for = self.listed_for | {namespace}

    def drop_namespace(self, namespace: str) -> None:
        """Forget `namespace`, no longer the shard's: its objects go, and its reads raise."""
        with self.lock:
            self.listed_for = self.listed_for - {namespace}
            self._deleted.pop(namespace, None)
            objs = self.by_namespace.pop(namespace, {})
            for name, obj in objs.items():
                self.index.remove(namespace, name, obj)
                self._note(namespace, name)

    def _watch(self, timeout: int, stop: threading.Event) -> WatchResult:
        """One WATCH request, its events applied; how it ended (`judge_watch` decides)."""
        started = time.monotonic()
        events = 0
        try:
            for event in self._stream(timeout):
                if stop.is_set():
                    break
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    code = obj.get("code")
                    log.info("watch of %s: error event %s; listing again", self.where, code)
                    if code == 410:
                        return WatchResult(events, gone=True)
                    status = code if isinstance(code, int) and not isinstance(code, bool) else 0
                    return WatchResult(events, status=status,
                                       error=f"error event {status} on its watch")  # fmt: skip
                events += 1
                if events == 1:
                    self._watch_works()  # recovered as soon as something arrives
                if kind == "BOOKMARK":
                    self.resource_version = obj.get("metadata", {}).get("resourceVersion")
                    continue
                self._apply(str(kind), obj)
        except KubeError as error:
            why = f"HTTP {error.status} {error.reason} on its watch"
            return WatchResult(events, status=error.status, error=why)
        except Exception as error:  # a garbled event: the re-list decides
            log.info("watch of %s broke (%s); listing again", self.where, type(error).__name__)
            return WatchResult(events, status=0,
                               error=f"{type(error).__name__} on its watch")  # fmt: skip
        fast = events == 0 and closed_fast(time.monotonic() - started, timeout)
        return WatchResult(events, fast=fast)

    def _apply(self, kind: str, obj: Obj) -> None:
        """One ADDED, MODIFIED or DELETED event into the cache."""
        self.resource_version = obj.get("metadata", {}).get("resourceVersion")
        if not self._keeps(obj):
            return  # another shard's: not even slimmed
        if kind != "DELETED" and self._held(obj):
            return  # the echo of the operator's own write, or older than what is held
        slimmed = self._slim(obj)
        if kind == "DELETED":
            self._remove(slimmed, _version(obj))
        else:
            self._put(slimmed, notify=True)

    def _held(self, obj: Mapping[str, Any]) -> bool:
        """Whether the cache already holds `obj`'s resourceVersion of it, or a newer one:
        then `_put` would change nothing (no event either), and slimming it is wasted. While
        stores converge, most watch events are the echoes of the operator's own writes whose
        answers were stored already (`store_written`), and nearly every other write's answer
        comes after its watch event."""
        meta = obj.get("metadata") or {}
        with self.lock:
            old = self.by_namespace.get(meta.get("namespace") or "", {}).get(
                str(meta.get("name")))
        if old is None:
            return False
        return _version(old) == _version(obj) is not None or not _newer(obj, old)

    def _stream(self, timeout: int) -> Iterator[Obj]:
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout)),
            ("resourceVersion", self.resource_version or ""),
        ]
        if self.spec.label_selector:
            query.append(("labelSelector", self.spec.label_selector))
        accept = METADATA_ONLY if self.spec.metadata_only else "application/json"
        connect, read = self.kube.timeout
        try:
            response = self.kube.open(
                "GET",
                RESOURCES[self.spec.api_kind].path(self.namespace),
                query,
                {"Accept": accept},
                timeout=urllib3.Timeout(connect=connect, read=timeout + read),
                preload=False,
            )
            if not 200 <= response.status < 300:
                response.close()
                raise KubeError(response.status, str(response.reason), f"watch {self.where}")
            buffer = b""
            try:
                for chunk in response.stream(65536, decode_content=True):
                    # One event a line; the last piece is the start of the next (or empty).
                    *lines, buffer = (buffer + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield loads(line)
            finally:
                # Closed, not released: a watch left early must not go back to the pool with
                # the rest of its stream unread.
                response.close()
        except (urllib3.exceptions.HTTPError, OSError) as error:
            reason = f"no answer ({type(error).__name__})"
            raise KubeError(0, reason, f"watch {self.where}") from None

    def _put(self, obj: Obj, notify: bool, answer: bool = False) -> None:
        """Hold `obj` unless what is held is newer. `answer`: the answer to the operator's
        own write, not held when the watch (or list) has gone past its version and holds
        nothing of the name: the object was deleted since (its DELETED event came first)."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        with self.lock:
            objs = self.by_namespace.setdefault(ns, {})
            old = objs.get(name)
            if not _newer(obj, old):
                return
            if answer and old is None and _passed(_version(obj), self.resource_version):
                return
            # The echo of the operator's own write (stored from the write's answer) is no
            # change: queueing the store again for it would only re-read what it just wrote.
            echo = old is not None and _version(old) == _version(obj) is not None
            self._hold_locked(ns, name, old, obj, changed=not echo)
        if notify and not echo:
            key = (self.spec.api_kind, ns, name)
            emit = lambda: self.on_event(self.spec.kind, old, obj)  # noqa: E731
            if self.writes is None or not self.writes.defer(key, self, _version(obj), emit):
                emit()

    def _remove(self, obj: Obj, version: str | None) -> None:
        """Drop the object of `obj`'s name, deleted at resourceVersion `version`: not when
        what is held is later (made again since: an old DELETED event that came late)."""
        meta = obj["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        with self.lock:
            objs = self.by_namespace.get(ns, {})
            if _later(_version(objs.get(name) or {}), version):
                return
            if self.shard is not None and ns not in self.listed_for:
                self._deleted.setdefault(ns, {})[name] = version  # for `list_namespace`
            old = self._unhold_locked(ns, name)
        self.on_event(self.spec.kind, old or obj, None)

    def _hold_locked(self, ns: str, name: str, old: Obj | None, obj: Obj,
                     changed: bool = True) -> None:  # fmt: skip
        """Hold `obj` in place of `old` (under the lock): indexed, and `changed` journalled
        (the echo of the operator's own write is no change)."""
        self.by_namespace.setdefault(ns, {})[name] = obj
        self.index.put(ns, name, old, obj)
        if changed:
            self._note(ns, name)

    def _unhold_locked(self, ns: str, name: str) -> Obj | None:
        """Drop what is held of the name (under the lock), journalled; what was held."""
        old = self.by_namespace.get(ns, {}).pop(name, None)
        if old is not None:
            self.index.remove(ns, name, old)
        self._note(ns, name)
        return old


class Caches:
    """Every cached kind, for the watched namespaces (or cluster-wide); `get`/`list` like Kube.

    Reads of a kind that is not cached go to the API; so do reads of an optional kind whose
    list is forbidden (Secrets, when the chart does not grant list/watch: by name only).
    """

    def __init__(
        self,
        kube: Kube,
        kinds: tuple[CachedKind, ...],
        namespaces: tuple[str, ...],
        relist_seconds: float,
        on_event: EventCallback,
        on_health: HealthCallback,
    ) -> None:
        self.kube = kube
        self.namespaces = namespaces
        self._made = (relist_seconds, on_event, on_health)  # for the informers of `add`
        # Replaced whole (`add`, `drop`), never changed in place: a reader on another thread
        # iterates the one it took.
        self.informers: dict[tuple[str, str | None], Informer] = {}
        self.specs: dict[str, CachedKind] = {}
        # Each running informer's stop (`_run`): set by `stop`, or by `drop` for its kind's.
        self._stops: dict[tuple[str, str | None], threading.Event] = {}
        self._changing = threading.Lock()  # `add`, `drop`, `start` and `stop`, one at a time
        self.started = False
        self.stopped = False
        # Sharded with cluster-wide caches: the shard's namespaces, which its `per_shard`
        # caches keep; the namespaces that became the shard's and that some of those caches
        # have still to list (informers left), those whose LIST failed (their reads raise:
        # Unknown), and the LISTs to make (`_fill_loop`: informer, namespace, not before,
        # failures in a row).
        self.shard: ShardNamespaces | None = None
        # Each namespace being filled: its informers left, each with the number of the LIST
        # asked of it last (one asked before, still running, does not count: it may have
        # begun before the namespace left the shard and came back).
        self._filling: dict[str, dict[Informer, int]] = {}
        self._fill_failed: set[str] = set()
        # A heap: (not before, the namespace's place, the LIST's number, informer, namespace,
        # failures in a row). A namespace's LISTs are made before the next namespace's, the
        # first namespace asked for first, so that whole namespaces are done (`owns`) early.
        self._fills: list[tuple[float, int, int, Informer, str, int]] = []
        self._fill_places: dict[str, int] = {}
        self._fill_count = itertools.count()
        self._fill_wake = threading.Condition()
        self._fill_stop = threading.Event()
        self._relist_turn = threading.Lock()  # its caches' periodic re-lists, one at a time
        for spec in kinds:
            self.add(spec)
        # A shard serves the namespaces whose labels match its selector (the Namespace cache
        # holds exactly those); without one, every cached namespace is its own.
        self.sharded = "Namespace" in self.specs
        if self.sharded and not self.namespaces:
            holder = self.informers[("Namespace", None)]
            self.shard = ShardNamespaces(holder)
            callback = holder.on_event
            holder.on_event = lambda kind, old, new: self._namespace_event(
                callback, kind, old, new
            )
            for informer in self.informers.values():
                self._shard_informer(informer)

    def add(self, spec: CachedKind) -> None:
        """Cache `spec`'s kind from now on. Once the caches have started, its informers start
        at once, and until each has listed its reads raise (Unknown, never "none"): a kind
        the API came to serve after the start (AdminNetworkPolicies whose CRD was installed
        since). Nothing when it is cached already."""
        with self._changing:
            if spec.kind in self.specs:
                return
            scopes: tuple[str | None, ...] = (
                (None,) if spec.cluster_scoped or not self.namespaces else self.namespaces
            )
            relist_seconds, on_event, on_health = self._made
            added = {
                (spec.kind, namespace): Informer(
                    self.kube, spec, namespace, relist_seconds, on_event, on_health
                )
                for namespace in scopes
            }
            for informer in added.values():
                self._shard_informer(informer)
                informer.relist_turn = self._relist_turn
            self.informers = {**self.informers, **added}
            self.specs = {**self.specs, spec.kind: spec}
            if self.started and not self.stopped:
                for key, informer in added.items():
                    self._run(key, informer)

    def _shard_informer(self, informer: Informer) -> None:
        """Make a cache of a `per_shard` kind keep only the shard's namespaces (sharded)."""
        if self.shard is None or not informer.spec.per_shard or informer.namespace is not None:
            return
        informer.shard = self.shard
        informer.on_missing = lambda namespace: self._fill(namespace, [informer])

    def _namespace_event(
        self, callback: EventCallback, kind: str, old: Obj | None, new: Obj | None
    ) -> None:
        """A namespace became the shard's (the Namespace cache, by the shard's selector,
        holds only those) or stopped being: its `per_shard` caches list it, or forget it,
        before the operator hears of it (`callback`)."""
        name = str(((new or old or {}).get("metadata") or {}).get("name") or "")
        if name and old is None and new is not None:
            self._fill(name, [i for i in self.informers.values() if i.shard is not None])
        elif name and new is None:
            with self._fill_wake:
                self._filling.pop(name, None)
                self._fill_places.pop(name, None)
                self._fill_failed.discard(name)
            for informer in self.informers.values():
                if informer.shard is not None:
                    informer.drop_namespace(name)
        callback(kind, old, new)

    def _fill(self, namespace: str, informers: list[Informer]) -> None:
        """Have `informers` list `namespace`, one their last LIST did not cover; until each
        has, the namespace is not `owns`' (its stores are not judged on part of it)."""
        if not informers:
            return
        with self._fill_wake:
            wanted = self._filling.setdefault(namespace, {})
            for informer in informers:
                wanted[informer] = self._push_fill(0.0, informer, namespace, 0)
            self._fill_wake.notify_all()

    def _push_fill(self, due: float, informer: Informer, namespace: str, failures: int) -> int:
        """Queue one LIST of `namespace` (under `_fill_wake`); its number."""
        place = self._fill_places.setdefault(namespace, next(self._fill_count))
        number = next(self._fill_count)
        heapq.heappush(self._fills, (due, place, number, informer, namespace, failures))
        return number

    def _fill_loop(self) -> None:
        """Make the LISTs `_fill` asks for until the caches stop (FILL_THREADS of these).
        With none due, a thread sleeps until one is asked for (`_push_fill` wakes it), the
        first falls due, or the caches stop: an operator with nothing to fill wakes none."""
        while not self._fill_stop.is_set():
            if self.fill_once():
                continue
            with self._fill_wake:  # the heap read under the lock a push takes to wake us
                if self._fill_stop.is_set():
                    return
                due = self._fills[0][0] - time.monotonic() if self._fills else None
                self._fill_wake.wait(None if due is None else max(0.01, due))

    def fill_once(self) -> bool:
        """Make one LIST `_fill` asked for whose time has come; False when none is due. A
        failed one is tried again after a backoff (`watch_backoff`),
        and meanwhile its namespace is the shard's (`owns`), its reads of that cache raising:
        its stores are judged Unknown, not left unjudged."""
        with self._fill_wake:
            if not self._fills or self._fills[0][0] > time.monotonic():
                return False
            _, _, number, informer, namespace, failures = heapq.heappop(self._fills)
        if informer.retired or informer.forbidden or not self.shard_holds(namespace):
            self._filled(informer, namespace, number)
            return True
        try:
            informer.list_namespace(namespace)
        except KubeError as error:
            log.warning("list of %s in %s, now this shard's, failed: %s (its reads "
                        "are Unknown until it lists)", informer.spec.kind, namespace,
                        error)  # fmt: skip
            failures += 1
            due = time.monotonic() + watch_backoff(failures)
            with self._fill_wake:
                first = namespace not in self._fill_failed
                self._fill_failed.add(namespace)
                again = self._push_fill(due, informer, namespace, failures)
                wanted = self._filling.get(namespace)
                if wanted is not None and wanted.get(informer) == number:
                    wanted[informer] = again
                self._fill_wake.notify_all()
            if first:  # the namespace is the shard's from now: its stores judged (Unknown)
                self._made[2]("Namespace", namespace)
            return True
        self._filled(informer, namespace, number)
        return True

    def _filled(self, informer: Informer, namespace: str, number: int) -> None:
        """`informer` holds `namespace` (or no longer needs to) by its LIST `number`: once
        every cache does by the last LIST asked of it, the namespace is the shard's, and its
        stores and requests are looked at (`on_health`)."""
        with self._fill_wake:
            left = self._filling.get(namespace)
            if left is None or left.get(informer) != number:
                return
            del left[informer]
            if left:
                return
            del self._filling[namespace]
            self._fill_places.pop(namespace, None)
            self._fill_failed.discard(namespace)
        self._made[2]("Namespace", namespace)

    def shard_holds(self, namespace: str) -> bool:
        """Whether the Namespace cache holds `namespace` as the shard's (sharded only)."""
        return self.shard is not None and self.shard.holds(namespace)

    def drop(self, kind: str) -> None:
        """Stop caching `kind`: its reads go to the API. Before the caches start, or after
        (a kind the API no longer serves): its informers stop, and a read through one taken
        before raises (Unknown) rather than answer from what it held."""
        with self._changing:
            gone = {key: i for key, i in self.informers.items() if key[0] == kind}
            self.specs = {k: spec for k, spec in self.specs.items() if k != kind}
            self.informers = {key: i for key, i in self.informers.items() if key not in gone}
            for key, informer in gone.items():
                informer.retire()
                stop = self._stops.pop(key, None)
                if stop is not None:
                    stop.set()

    def start(self) -> None:
        """Start every informer on a daemon thread of its own."""
        with self._changing:
            self.started = True
            for key, informer in self.informers.items():
                self._run(key, informer)
            if self.shard is not None:
                for n in range(FILL_THREADS):
                    threading.Thread(target=self._fill_loop, name=f"cache-shard-fill-{n}",
                                     daemon=True).start()  # fmt: skip

    def _run(self, key: tuple[str, str | None], informer: Informer) -> None:
        """Run `informer` on a daemon thread of its own until `stop`, or its kind's `drop`."""
        stop = self._stops[key] = threading.Event()
        kind, namespace = key
        thread = threading.Thread(
            target=informer.run, args=(stop,), name=f"cache-{kind}-{namespace or 'all'}",
            daemon=True,
        )  # fmt: skip
        thread.start()

    def stop(self) -> None:
        """Stop the informers (their threads end with their current request)."""
        with self._changing:
            self.stopped = True
            for stop in self._stops.values():
                stop.set()
            self._fill_stop.set()
        with self._fill_wake:  # the fill threads asleep with nothing to do end too
            self._fill_wake.notify_all()

    def synced(self) -> bool:
        """True when every cache has listed (and not failed since), or may not list."""
        return all(i.synced or i.forbidden for i in self.informers.values())

    def owns(self, namespace: str | None) -> bool:
        """Whether this operator (shard) serves `namespace`; False while that is unknown."""
        if not self.sharded or namespace is None:
            return True
        informer = self.informers[("Namespace", None)]
        if not informer.synced or not ShardNamespaces(informer).holds(namespace):
            return False
        # One that became the shard's is its own once its `per_shard` caches have listed it,
        # or one of them failed to (then its reads of that cache raise: Unknown).
        with self._fill_wake:
            return namespace not in self._filling or namespace in self._fill_failed

    def outages(self) -> list[CacheOutage]:
        """Every cache that is not synced now (never listed, or its last re-list failed),
        with since when and why; an optional kind whose list is forbidden is read by name
        instead, which is no outage."""
        out: list[CacheOutage] = []
        for (kind, namespace), informer in self.informers.items():
            since = informer.unsynced_since
            if not informer.synced and not informer.forbidden and since is not None:
                out.append(CacheOutage(kind, namespace, since, informer.error or "not synced"))
        return out

    def last_known(self, kind: str) -> list[Obj]:
        """Every object of `kind` its caches hold, synced or not: the last copies, for what
        must be said of them while they cannot be read (controller/staleness.py)."""
        out: list[Obj] = []
        for (cached, _), informer in self.informers.items():
            if cached == kind:
                with informer.lock:
                    out += [o for objs in informer.by_namespace.values() for o in objs.values()]
        return out

    def last_owned(self, namespace: str) -> bool:
        """Whether `namespace` was this shard's when the Namespace cache last held it (synced
        or not; `owns` answers False while it is not synced); always, unsharded."""
        if not self.sharded:
            return True
        return ShardNamespaces(self.informers[("Namespace", None)]).holds(namespace)

    def listed(self) -> bool:
        """True once every cache has listed at least once (it may have failed since), or
        found it may not list (an optional kind: read from the API instead), or tried to
        (a kind not `awaited`: its reads are Unknown until it lists)."""
        return all(
            i.lists > 0 or i.forbidden or (i.attempted and not i.spec.awaited)
            for i in self.informers.values()
        )

    def cached(self, kind: str) -> bool:
        """Whether reads of `kind` are served from a cache."""
        return kind in self.specs

    def watching(self, kind: str, namespace: str | None) -> bool:
        """Whether reads of `kind` in `namespace` come from its cache: cached here, and its
        list not forbidden (an optional kind whose list is refused is read by name)."""
        if kind not in self.specs:
            return False
        try:
            return not self._informer(kind, namespace).forbidden
        except KubeError:
            return False  # a namespace not watched: not ours to read from a cache

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether the object exists: from the cache of `kind` while watching it (KubeError
        while it is not synced: Unknown, never absent), else a metadata-only GET by name."""
        if not self.watching(kind, namespace):
            return self.kube.exists(self.specs[kind].api_kind if kind in self.specs else kind,
                                    namespace, name)  # fmt: skip
        return self._informer(kind, namespace).get(namespace, name) is not None

    def get_metadata(self, kind: str, namespace: str, name: str) -> Obj | None:
        """The object's metadata, `{"metadata": ...}`: from the metadata-only cache of `kind`
        while it is watched (what it keeps, `METADATA_KEPT`; KubeError while it is not
        synced: Unknown, never absent), else a metadata-only GET by name (`Kube.get_metadata`).
        A synced cache's miss is absent: one made a moment ago may not be in it yet."""
        if not self.watching(kind, namespace) or not self.specs[kind].metadata_only:
            api_kind = self.specs[kind].api_kind if kind in self.specs else kind
            return self.kube.get_metadata(api_kind, namespace, name)
        found = self._informer(kind, namespace).get(namespace, name)
        return None if found is None else {"metadata": found["metadata"]}

    def _informer(self, kind: str, namespace: str | None) -> Informer:
        spec = self.specs.get(kind)
        if spec is None:  # dropped since the caller asked whether it is cached
            raise KubeError(0, f"{kind} is no longer cached", f"list {kind}")
        if spec.cluster_scoped or not self.namespaces:
            namespace = None
        informer = self.informers.get((kind, namespace))
        if informer is None:
            if namespace is None:
                raise KubeError(0, f"{kind} is no longer cached", f"list {kind}")
            raise KubeError(0, f"namespace {namespace} is not watched", f"list {kind}")
        return informer

    def generation(self, kind: str, namespace: str | None) -> tuple[int, bool]:
        """A number that changes whenever the cache of `kind` (for `namespace`) changes."""
        informer = self._informer(kind, namespace)
        return informer.generation, informer.synced

    def changed_since(
        self, kind: str, namespace: str | None, generation: int
    ) -> set[str] | None:
        """The names of `kind` in `namespace` (None: cluster-scoped) changed after the cache
        `generation`; None when not known (rebuild from `list`)."""
        return self._informer(kind, namespace).changed_since(namespace, generation)

    def held(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The cached object of a cached kind; None when absent, not cached or not readable
        from the cache (never a request: for sharing a render's parts, `share_render`,
        not for any verdict)."""
        if kind not in self.specs:
            return None
        try:
            return self._informer(kind, namespace).get(namespace, name)
        except KubeError:
            return None

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object from its cache (None: known absent), or from the API when not cached."""
        if kind not in self.specs:
            return self.kube.get(kind, namespace, name)
        return self._informer(kind, namespace).get(namespace, name)

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        """Objects of a kind (in a namespace; by equality label selector) from its cache."""
        spec = self.specs.get(kind)
        if spec is None:
            return self.kube.list(kind, namespace, label_selector)
        wanted = parse_selector(label_selector)
        if namespace is not None and wanted:
            return self._informer(kind, namespace).labelled(namespace, wanted)
        if namespace is None and self.namespaces and not spec.cluster_scoped:
            items = [o for ns in self.namespaces for o in self._informer(kind, ns).items(ns)]
        else:
            items = self._informer(kind, namespace).items(namespace)
        return [o for o in items if _selected(o, wanted)] if wanted else items

    def selecting(
        self, kind: str, namespace: str, pods: Sequence[Mapping[str, str]]
    ) -> Objs:
        """The objects of a kind with a podSelector (NetworkPolicies) in `namespace` that may
        select a pod with any of `pods`' label sets: a superset of those that do, which the
        caller filters; the rest of the namespace's cannot select them. KubeError as `list`."""
        if kind not in self.specs:
            return self.kube.list(kind, namespace)
        return self._informer(kind, namespace).selecting(namespace, pods)

    def store_written(self, obj: Mapping[str, Any]) -> None:
        """Keep the answer to one of the operator's writes in its cache, when cached."""
        kind = str(obj.get("kind") or "")
        namespace = (obj.get("metadata") or {}).get("namespace")
        # Every cache of its API kind (a key ring: the rings' cache and the metadata one).
        for spec in [s for s in self.specs.values() if s.api_kind == kind]:
            try:
                self._informer(spec.kind, namespace).store_written(obj)
            except KubeError:
                pass

    def store_deleted(
        self, kind: str, namespace: str | None, name: str, answer: Any, read: Mapping[str, Any]
    ) -> None:
        """Drop an object the operator has just deleted from every cache of its API kind:
        the copy `read` that it decided on, or a later one the DELETE's `answer` names (the
        object as it was deleted); never one made since (`Informer.store_deleted`).

        Not one whose DELETE answered with finalizers still to run: it exists, with a
        deletionTimestamp, until they are done, and a RoleBinding grants what it granted
        meanwhile; that answer is kept instead."""
        deleted = read
        if isinstance(answer, Mapping) and answer.get("kind") == kind:
            if (answer.get("metadata") or {}).get("finalizers"):
                self.store_written(answer)
                return
            deleted = answer
        for spec in [s for s in self.specs.values() if s.api_kind == kind]:
            try:
                self._informer(spec.kind, namespace).store_deleted(
                    namespace, name, _version(deleted)
                )
            except KubeError:
                pass

    def counts(self) -> dict[str, int]:
        """Objects cached per kind (for metrics and the benchmark)."""
        out: dict[str, int] = {}
        for (kind, _), informer in self.informers.items():
            with informer.lock:
                out[kind] = out.get(kind, 0) + sum(len(o) for o in informer.by_namespace.values())
        return out


def delete_as_read(
    kube: Kube,
    caches: Caches | None,
    kind: str,
    namespace: str,
    read: Mapping[str, Any],
    propagation: str | None = None,
) -> None:
    """Delete `read`, an object the operator read and judged its own, only at the version it
    read (a precondition: 409, KubeError, when it changed or was made again since, so never
    someone else's object of the name), and drop it from the caches (`Caches.store_deleted`)
    so that the next read is not older. `propagation`: as `Kube.delete`'s."""
    name = str(read["metadata"]["name"])
    answer = kube.delete(kind, namespace, name, propagation, version=_version(read))
    if caches is not None:
        caches.store_deleted(kind, namespace, name, answer, read)
