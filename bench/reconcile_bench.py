"""Operator throughput, latency, restart and steady-state cost on the real control plane.

    PYTHONPATH=$PWD/operator:$PWD python3 -u -m bench.reconcile_bench \\
        --stores 10000 --namespaces 100 --steady-seconds 300 --samples 50

`--estimate-only` prints how long a run of these parameters is expected to take and exits.

Starts a local control plane (e2e/harness.py), installs the CRDs and the seed's policy, then,
side by side on that one control plane, in one run:

1. the baseline: N stores applied (one `kubectl apply`) into K namespaces `raw-*` (round
   robin, as the operator's), then the children the operator would write for them (the 7 it
   renders and a key ring Secret) server-side applied by a plain loop of `--threads` threads;
   the raw namespaces are then deleted (and waited for) so the operator's cluster-wide caches
   do not hold them;
2. `dataward run` as a separate process (its own admin-equivalent user, so the audit log tells
   its requests apart; an hour's resync), serving K namespaces `bench-*` (one: `--namespace
   bench`; more: `--namespace-selector dataward.io/shard=bench` on labelled namespaces, as a
   shard would; `--scope` picks); N stores applied at once: time until all are Ready (the
   event that made the last one Ready, from a watch of the stores: a LIST a poll cost the
   run CPU), its ratio to the baseline, the operator's requests while converging, and the
   CPU seconds of each process (this one's included: what observing costs);
3. once the operator is idle (no request but watches and the Lease for `--idle-seconds`), a
   quiet window: mutating requests (expected 0; the Lease apart), reads by verb and resource,
   and whether any per-store GET happens (the target: watches and relists only);
4. a restart with nothing changed: the operator stopped, a cold LIST of the same objects
   (stores, the children's kinds, key-ring Secrets with their data and every Secret as
   metadata only, as the operator's caches list them) timed with the operator down, the
   operator started again: mutating requests (expected 0), Secret GETs (expected 0 while the
   operator may list Secrets), and the time until every store is re-verified (the operator's
   log line "first pass done": each store the first resync queued reconciled once; with the
   Secrets watched such a reconcile sends no request the audit log could show), as a ratio to
   the cold LIST (target <= 2x);
5. `--samples` spec changes (purge schedule) one at a time, then as many deleted
   NetworkPolicies: latency until the CronJob carries the change / the policy is back, each
   sample and p50/p99, after waiting until the operator is idle;
6. the operators' peak resident set (VmHWM) after Ready and at the end.

Every figure is printed with the load average (the machine is shared); a markdown table of
the figures side by side with the baseline closes the run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from dataward.controller.access_log import LogFile
from dataward.controller.cache import CachedKind, Informer, Obj
from dataward.controller.kube import (
    METADATA_ONLY_LIST,
    RESOURCES,
    Kube,
    KubeError,
    load_api_client,
)
from dataward.controller.queue import RE_VERIFIED
from dataward.keys.ring import generate_ring, serialise
from dataward.model.policy import parse_policy
from dataward.model.store import parse_store
from dataward.render import RenderSettings, names_for, render_children
from dataward.render.key_ring import KEY_RING_COMPONENT, key_ring_secret
from dataward.render.labels import COMPONENT_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from e2e.harness import ControlPlane, die_with_parent, wait_for

REPO = Path(__file__).resolve().parent.parent
USER = "dataward-bench"  # the operator's user in the audit log
MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})
SHARD_LABEL, SHARD = "dataward.io/shard", "bench"
METADATA = "metadata-only"  # a COLD_LISTS entry listed as PartialObjectMetadata, no selector
OURS = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
# What a restarted operator must read again to re-verify every store, LISTed cold: the stores,
# the kinds of their 7 children, their key rings (with data) and every Secret as metadata only
# (the operator's two Secret caches, controller/operator.py SECRET_KINDS).
COLD_LISTS: tuple[tuple[str, str | None], ...] = (
    ("PersonalDataStore", None),
    ("NetworkPolicy", None),
    ("Role", None),
    ("RoleBinding", None),
    ("ServiceAccount", OURS),
    ("CronJob", OURS),
    ("Secret", f"{OURS},{COMPONENT_LABEL}={KEY_RING_COMPONENT}"),
    ("Secret", METADATA),
)


# --- what the run creates ------------------------------------------------------------------


def namespace_names(prefix: str, count: int) -> list[str]:
    """`prefix` alone for one namespace (as earlier runs), else prefix-000, prefix-001, ..."""
    if count == 1:
        return [prefix]
    width = max(3, len(str(count - 1)))
    return [f"{prefix}-{index:0{width}d}" for index in range(count)]


def stores(count: int, namespaces: list[str]) -> list[dict[str, Any]]:
    """`count` copies of the support-inquiries example, round robin over `namespaces`."""
    base = yaml.safe_load((REPO / "examples/stores/support-inquiries.yaml").read_text())
    width = max(3, len(str(count - 1)))
    out = []
    for index in range(count):
        tag = f"{index:0{width}d}"
        doc = json.loads(json.dumps(base))
        doc["metadata"] = {"name": f"store-{tag}", "namespace": namespaces[index % len(namespaces)]}
        # Distinct pods and credentials: stores sharing them would rightly not be Ready.
        doc["spec"]["workload"]["podSelector"] = {"matchLabels": {"app": f"db-{tag}"}}
        doc["spec"]["network"]["allowFrom"] = [
            {"podSelector": {"matchLabels": {"app": f"api-{tag}"}}}]
        doc["spec"]["database"]["credentialsSecret"] = f"creds-{tag}"
        doc["spec"]["access"]["readers"] = [{"kind": "ServiceAccount", "name": f"api-{tag}"}]
        out.append(doc)
    return out


def moved(docs: list[dict[str, Any]], namespaces: list[str]) -> list[dict[str, Any]]:
    """The same stores, the i-th in namespaces[i % K] (the baseline's copy)."""
    return [
        {**doc, "metadata": {**doc["metadata"], "namespace": namespaces[index % len(namespaces)]}}
        for index, doc in enumerate(docs)
    ]


def credentials(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The credentials Secret each store names (a store without its Secret is not Ready)."""
    return [
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": {"name": doc["spec"]["database"]["credentialsSecret"],
                      "namespace": doc["metadata"]["namespace"]},
         "type": "Opaque", "stringData": {"username": "purger", "password": "not-a-password"}}
        for doc in docs
    ]


def sample_indices(count: int, samples: int, seed: int = 11) -> list[int]:
    """`samples` distinct stores, drawn at random (fixed seed) so they span the namespaces."""
    return random.Random(seed).sample(  # noqa: S311 - a spread, not a secret
        range(count), min(samples, count))


# --- measuring -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def seconds(value: float) -> str:
    return "timeout" if math.isinf(value) else f"{value:.2f}"


def load() -> str:
    """The load averages, to print beside every figure (the machine is shared)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(peak, current) resident set of a process, MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    return (int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by named processes between `start` and `read`: where a phase's time
    went (the operator, the API server, etcd, or this process's raw loop)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.began: dict[str, float] = {}

    def start(self) -> None:
        self.began = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def used(self) -> dict[str, float]:
        """CPU seconds each process used since `start`."""
        return {name: cpu_seconds(pid) - self.began[name] for name, pid in self.pids.items()}

    def read(self) -> str:
        return "CPU s: " + ", ".join(f"{name} {s:.1f}" for name, s in self.used().items())


def plane_pids(plane: ControlPlane) -> dict[str, int]:
    """The control plane's API server and etcd (the processes that serve every write)."""
    return {name: pid for name, pid in plane.pids().items() if name in ("kube-apiserver", "etcd")}


def is_ready(obj: Obj | None) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in ((obj or {}).get("status") or {}).get("conditions") or []
    )


class ReadyWatch:
    """Which stores of `namespaces` are Ready, kept from a watch of the stores.

    The bench once polled a LIST of every store each second (each 10 s at 10,000): the API
    server encoded, and this process decoded, the whole set (a large status each) about 70
    times while the operator converged, CPU the 2 cores then lacked for the operator and
    the API server. A watch sends each change once. The instant all are Ready is that of the
    event that made the last one Ready, not the next poll.
    """

    def __init__(self, kube: Kube, namespaces: set[str]) -> None:
        self.namespaces = namespaces
        self.lock = threading.Lock()
        self.ready: set[tuple[str, str]] = set()
        self.last = 0.0  # time.monotonic() of the last change of the count
        self.stop = threading.Event()
        self.informer = Informer(
            kube, CachedKind("PersonalDataStore"), None, relist_seconds=24 * 3600,
            on_event=self._event, on_health=lambda kind, namespace: None,
        )  # fmt: skip
        self.thread = threading.Thread(target=self.informer.run, args=(self.stop,), daemon=True)

    def start(self) -> None:
        """Start watching; returns once the first LIST is done (events follow it)."""
        self.thread.start()
        wait_for(lambda: self.informer.synced, 60, "store watch synced", interval=0.1)
        with self.lock:
            self.ready = {
                (o["metadata"]["namespace"], o["metadata"]["name"])
                for o in self.informer.items(None)
                if o["metadata"]["namespace"] in self.namespaces and is_ready(o)
            }

    def _event(self, kind: str, before: Obj | None, obj: Obj | None) -> None:
        meta = (obj or before or {}).get("metadata") or {}
        if meta.get("namespace") not in self.namespaces:
            return
        key = (meta["namespace"], meta["name"])
        with self.lock:
            size = len(self.ready)
            if obj is not None and is_ready(obj):
                self.ready.add(key)
            else:
                self.ready.discard(key)
            if len(self.ready) != size:
                self.last = time.monotonic()

    def count(self) -> tuple[int, float]:
        """(stores Ready, when that count was reached)."""
        with self.lock:
            return len(self.ready), self.last

    def close(self) -> None:
        self.stop.set()


def stamp(event: dict[str, Any]) -> datetime:
    """When the API server finished the request."""
    text = event.get("stageTimestamp") or event["requestReceivedTimestamp"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def request_kind(event: dict[str, Any]) -> str:
    """`verb resource[/subresource]` of an audit event."""
    ref = event.get("objectRef") or {}
    resource = ref.get("resource") or event.get("requestURI", "?")
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    return f"{event['verb']} {resource}"


def is_lease(event: dict[str, Any]) -> bool:
    return (event.get("objectRef") or {}).get("resource") == "leases"


class AuditTail:
    """The API server's audit log, read on from where the last read stopped (never twice).

    Only the events of one user at ResponseComplete; a line still being written waits for the
    next read. At 10,000 stores the log grows to hundreds of MB: never read it whole. The API
    server rotates it (at 100 MB by default): the file is followed by inode, as the operator's
    access-log follower does, so the rest of a rotated file is read before the new one.
    """

    def __init__(self, path: Path, user: str) -> None:
        self.file = LogFile(path)
        self.user = user
        self.needle = json.dumps(user).encode()

    def _lines(self) -> list[bytes]:
        try:
            return self.file.read_lines()
        except FileNotFoundError:
            return []

    def skip(self) -> None:
        """Forget everything logged so far."""
        try:
            self.file.skip()
        except FileNotFoundError:
            self.file.close()

    def read(self) -> Iterator[dict[str, Any]]:
        for line in self._lines():
            if self.needle not in line:
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            if (event.get("user") or {}).get("username") != self.user:
                continue
            yield event


@dataclass
class Tally:
    """Requests by `verb resource`, the Lease's apart."""

    requests: Counter[str] = field(default_factory=Counter)
    lease: Counter[str] = field(default_factory=Counter)

    def add(self, event: dict[str, Any]) -> None:
        (self.lease if is_lease(event) else self.requests)[request_kind(event)] += 1

    def mutating(self) -> int:
        return sum(n for k, n in self.requests.items() if k.split(" ")[0] in MUTATING)

    def reads(self) -> int:
        return sum(n for k, n in self.requests.items() if k.split(" ")[0] not in MUTATING)

    def gets(self) -> Counter[str]:
        """GETs of one named object (per-store reads, unlike watches, relists, discovery)."""
        return Counter({k: n for k, n in self.requests.items() if k.startswith("get ")
                        and not k.startswith("get /")})

    def describe(self) -> str:
        by = ", ".join(f"{k}: {n}" for k, n in sorted(self.requests.items())) or "none"
        lease = sum(self.lease.values())
        return f"{self.mutating()} mutating, {self.reads()} reads ({by}); Lease requests {lease}"


def wait_idle(tail: AuditTail, quiet: float, timeout: float, tally: Tally) -> tuple[float, bool]:
    """Wait until the operator sent no request (watches, Lease, discovery apart) for `quiet` s.

    Tallies what it reads. Returns (seconds waited, idle reached before `timeout`).
    """
    start = time.monotonic()
    last = datetime.now(UTC)
    while True:
        for event in tail.read():
            tally.add(event)
            # Busy: any request for an object; not a watch, the Lease or discovery (the CRD
            # check, every 10 s).
            if event.get("objectRef") and not is_lease(event) and event["verb"] != "watch":
                last = max(last, stamp(event))
        if (datetime.now(UTC) - last).total_seconds() >= quiet:
            return time.monotonic() - start, True
        if time.monotonic() - start > timeout:
            return time.monotonic() - start, False
        time.sleep(0.5)


def latencies(names: list[tuple[str, str]], change: Callable[[str, str, int], None],
              done: Callable[[str, str, int], bool], timeout: float) -> list[float]:
    """For each store: make `change`, then time until `done` holds (polled every 20 ms).

    A sample not done within `timeout` is infinite (and the run goes on).
    """
    out = []
    for index, (namespace, name) in enumerate(names):
        start = time.monotonic()
        change(namespace, name, index)
        while not done(namespace, name, index):
            if time.monotonic() - start > timeout:
                out.append(math.inf)
                break
            time.sleep(0.02)
        else:
            out.append(time.monotonic() - start)
    return out


def describe_latencies(values: list[float]) -> str:
    late = sum(1 for v in values if math.isinf(v))
    return (f"p50 {seconds(percentile(values, 50))} s, p99 {seconds(percentile(values, 99))} s, "
            f"max {seconds(max(values))} s" + (f", {late} timed out" if late else "")
            + "\n    each (s): " + " ".join(seconds(v) for v in values))


def cold_list(kube: Kube, scopes: list[str | None], threads: int) -> tuple[float, Counter[str]]:
    """LIST every COLD_LISTS kind in every scope, `threads` at once: (seconds, objects/kind)."""
    tasks = [(kind, selector, scope) for kind, selector in COLD_LISTS for scope in scopes]

    def one(task: tuple[str, str | None, str | None]) -> tuple[str, int]:
        kind, selector, scope = task
        if selector == METADATA:
            items = kube._call("GET", RESOURCES[kind].path(scope), accept=METADATA_ONLY_LIST,
                               what=f"list {kind}").get("items") or []
            return f"{kind} (metadata)", len(items)
        return kind, len(kube.list(kind, scope, selector))

    counts: Counter[str] = Counter()
    start = time.monotonic()
    with ThreadPoolExecutor(max(1, min(threads, len(tasks)))) as pool:
        for kind, found in pool.map(one, tasks):
            counts[kind] += found
    return time.monotonic() - start, counts


def scrape(port: int, metric: str) -> float | None:
    """The sum of a metric's series on the operator's /metrics (None: no answer)."""
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
        if line.startswith(metric + "{") or line.startswith(metric + " ")
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- time budget ---------------------------------------------------------------------------


def estimate(stores_: int, namespaces: int, steady: float, samples: int,
             idle: float) -> list[tuple[str, float]]:
    """Expected seconds per phase, from the 1,000-store runs of 2026-12-01 (bench/RESULTS.md)
    and a 200-store run of that day, on this shared 2-core machine (load 4-8).

    Rough: the operator's time per store grows with the stores per namespace (every verdict
    reads its neighbours): 0.25 s/store at 1,000 in one namespace, 0.16 at 400.
    """
    per_namespace = stores_ / namespaces
    return [
        ("control plane, CRDs, namespaces, credentials", 20 + 0.01 * stores_),
        ("raw loop (stores + children)", 0.048 * stores_),
        ("raw namespaces deleted", 10 + 0.02 * stores_ + 2 * namespaces),
        ("operator: all Ready", 15 + stores_ * (0.1 + 0.00015 * per_namespace)),
        ("operator idle after Ready", 2 * idle + 0.03 * stores_),
        ("steady window", steady),
        ("restart: stop, cold LIST, re-verified, idle", 15 + 2 * idle + 0.04 * stores_),
        ("spec changes and deleted children", 2 * (idle + samples * 0.5)),
    ]


def print_estimate(phases: list[tuple[str, float]]) -> None:
    total = sum(s for _, s in phases)
    print(f"estimated duration: {total / 60:.0f} min ({total:.0f} s; rough, for a load average "
          f"about 5; at 10 expect up to twice as long; see estimate())")
    for name, secs in phases:
        print(f"  {name}: ~{secs:.0f} s")


# --- the run -------------------------------------------------------------------------------


def apply_timeout(docs: list[Any]) -> float:
    """How long one `kubectl apply` of `docs` may take: 10,000 stores took over a minute."""
    return max(60.0, len(docs) / 10)


def raw_apply_loop(plane: ControlPlane, docs: list[dict[str, Any]], threads: int
                   ) -> tuple[float, float, int]:
    """The baseline: apply the stores, then server-side apply their children, `threads` at once.

    The same children the operator writes (owned by the stores, so the garbage collector keeps
    them): the 7 it renders, then a key ring Secret of new keys each (`dataward.keys`, as the
    operator's first ring); no status or Event. Returns (seconds, seconds before the rings:
    the baseline of the passes before the twenty-fourth, children applied).
    """
    kube = Kube(load_api_client(str(plane.kubeconfig)))
    policy = parse_policy(yaml.safe_load((REPO / "examples/policy.yaml").read_text()))
    where = {doc["metadata"]["namespace"] for doc in docs}
    start = time.monotonic()
    plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs),
                  timeout=apply_timeout(docs))
    now = datetime.now(UTC)
    stores_ = [parse_store(raw) for raw in kube.list("PersonalDataStore")
               if raw["metadata"]["namespace"] in where]
    children = [child for store in stores_
                for child in render_children(store, policy, RenderSettings())]
    rings = [key_ring_secret(store, serialise(generate_ring(now))) for store in stores_]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(kube.apply, children))
        rendered = time.monotonic() - start
        list(pool.map(kube.apply, rings))
    return time.monotonic() - start, rendered, len(children) + len(rings)


def apiserver_profile(plane: ControlPlane, path: Path | None, seconds: int
                      ) -> threading.Thread | None:
    """A CPU profile of kube-apiserver over the next `seconds`, written to `path` (read it with
    `go tool pprof -top`); None without a path. The API server runs with `--profiling=true`."""
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)

    def take() -> None:
        with path.open("wb") as out:
            subprocess.run([str(plane.bin_dir / "kubectl"), "get", "--raw",
                            f"/debug/pprof/profile?seconds={seconds}"],
                           env=plane.env(), stdout=out, check=True, timeout=seconds + 60)

    thread = threading.Thread(target=take, name="apiserver-profile", daemon=True)
    thread.start()
    return thread


def create_all(kube: Kube, objects: list[dict[str, Any]], threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(kube.create, objects))


@dataclass
class Operator:
    """One `dataward run` process and its log."""

    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def leads(self, timeout: float = 120) -> None:
        wait_for(lambda: "acquired lease" in self.log.read_text(), timeout, "operator leads",
                 interval=0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def prepared_plane(plane: ControlPlane, labelled: Sequence[str], others: Sequence[str] = (),
                   threads: int = 1) -> tuple[Path, Kube]:  # fmt: skip
    """The control plane as every bench starts it: the CRDs established, the namespaces
    `labelled` (with the shard label), `others` and dataward-system, the seed's policy.
    Returns the kubeconfig of the operator's own admin-equivalent user (so the audit log
    tells it apart) and an admin client; `threads` create the namespaces."""
    kubeconfig = plane.kubeconfig_for_user(USER, ["system:masters"])
    plane.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    admin = Kube(load_api_client(str(plane.kubeconfig)))
    create_all(admin, [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": name, "labels": {SHARD_LABEL: SHARD} if name in labelled else {}}}
        for name in (*labelled, *others, "dataward-system")
    ], threads)  # fmt: skip
    plane.kubectl("apply", "--server-side", "-f", str(REPO / "examples/policy.yaml"))
    return kubeconfig, admin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=1,
                        help="spread the stores round robin over this many namespaces "
                             "(the raw loop's too; default: %(default)s)")
    parser.add_argument("--scope", choices=("auto", "namespaces", "selector"), default="auto",
                        help="how the operator is told its namespaces: one --namespace each, or "
                             "--namespace-selector on labelled namespaces (auto: --namespace "
                             "for one namespace, the selector for more)")
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--samples", type=int, default=50,
                        help="spec changes and deleted children timed (default: %(default)s)")
    parser.add_argument("--sample-timeout", type=float, default=120,
                        help="a sample not done after this long counts as timed out")
    parser.add_argument("--idle-seconds", type=float, default=5,
                        help="the operator is idle after this long without a request but "
                             "watches and the Lease (default: %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=900,
                        help="stop waiting for idle after this long (and say so)")
    parser.add_argument("--threads", type=int, default=8, help="threads of the raw apply loop")
    parser.add_argument("--workers", type=int, default=4, help="the operator's --workers")
    parser.add_argument("--ready-timeout", type=float, default=7200)
    parser.add_argument("--apiserver-profile", type=Path, default=None, metavar="DIR",
                        help="profile kube-apiserver's CPU over the first --profile-seconds of "
                             "the raw loop and of the operator's converge (raw.pprof, "
                             "operator.pprof in DIR)")
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--estimate-only", action="store_true",
                        help="print the estimated duration of this run and exit")
    args = parser.parse_args()
    k = max(1, args.namespaces)
    scope = args.scope if args.scope != "auto" else ("namespaces" if k == 1 else "selector")
    phases = estimate(args.stores, k, args.steady_seconds, args.samples, args.idle_seconds)
    print(f"command: cd {shlex.quote(str(Path.cwd()))} && PYTHONPATH="
          f"{shlex.quote(os.environ.get('PYTHONPATH', ''))} "
          + shlex.join([sys.executable, "-u", "-m", "bench.reconcile_bench", *sys.argv[1:]]))
    print(f"stores: {args.stores} over {k} namespace(s) ({args.stores / k:.0f} each), operator "
          f"scope: {scope}, samples: {args.samples}, steady window: {args.steady_seconds:.0f} s")
    print_estimate(phases)
    if args.estimate_only:
        return 0
    began = time.monotonic()
    took: list[float] = []
    mark = [began]

    def phase_done() -> None:
        now = time.monotonic()
        took.append(now - mark[0])
        mark[0] = now

    figures: dict[str, str] = {}
    bench_ns = namespace_names("bench", k)
    raw_ns = namespace_names("raw", k)
    profiles: Path | None = args.apiserver_profile
    extra = ["--profiling=true"] if profiles else []
    with ControlPlane(extra_apiserver_args=extra) as plane, tempfile.TemporaryDirectory() as tmp:
        kubeconfig, admin = prepared_plane(plane, bench_ns, raw_ns, args.threads)
        docs = stores(args.stores, bench_ns)
        create_all(admin, credentials(docs), args.threads)
        phase_done()
        print(f"load before: {load()}")

        meter = CpuMeter({**plane_pids(plane), "raw loop (this process)": os.getpid()})
        meter.start()
        profile = apiserver_profile(plane, profiles and profiles / "raw.pprof",
                                    args.profile_seconds)
        raw_seconds, rendered_seconds, raw_children = raw_apply_loop(
            plane, moved(docs, raw_ns), args.threads)
        raw_load = load()
        print(f"raw server-side apply loop ({args.threads} threads): {args.stores} stores + "
              f"{raw_children} children in {raw_seconds:.1f} s ({rendered_seconds:.1f} s "
              f"before the key rings)   load: {raw_load}   {meter.read()}")
        phase_done()
        start = time.monotonic()
        for name in raw_ns:
            admin.delete("Namespace", None, name)

        def raw_gone() -> bool:
            left = {n["metadata"]["name"] for n in admin.list("Namespace")} & set(raw_ns)
            return not left

        try:
            wait_for(raw_gone, 900, "raw namespaces deleted", interval=1.0)
            print(f"raw namespaces deleted in {time.monotonic() - start:.1f} s   load: {load()}")
        except TimeoutError:
            print("raw namespaces NOT all deleted after 900 s (going on; the operator's "
                  "cluster-wide caches may hold some raw objects)")
        phase_done()

        port = free_port()
        command = [sys.executable, "-m", "dataward", "run", "--kubeconfig", str(kubeconfig),
                   "--resync-seconds", "3600", "--metrics-port", str(port),
                   "--workers", str(args.workers)]
        if scope == "selector":
            command += ["--namespace-selector", f"{SHARD_LABEL}={SHARD}"]
        else:
            for name in bench_ns:
                command += ["--namespace", name]
        print("operator: " + shlex.join(command))
        operator = Operator(command, Path(tmp) / "operator.log")
        restarted = Operator(command, Path(tmp) / "operator-restarted.log")
        tail = AuditTail(plane.audit_log, USER)
        try:
            operator.start()
            operator.leads()
            tail.skip()
            watch = ReadyWatch(admin, set(bench_ns))
            watch.start()
            # This process too: what observing the run costs (the watch, the audit tail).
            meter = CpuMeter({**plane_pids(plane), "operator": operator.pid,
                              "bench": os.getpid()})
            meter.start()
            if profile is not None:
                profile.join()
            profile = apiserver_profile(plane, profiles and profiles / "operator.pprof",
                                        args.profile_seconds)
            start = time.monotonic()
            plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs),
                          timeout=apply_timeout(docs))
            applied = time.monotonic()
            interval = 1.0
            converge = Tally()

            def all_ready() -> bool:
                # Counted as it goes: the log of 10,000 stores converging is hundreds of MB.
                for event in tail.read():
                    converge.add(event)
                return watch.count()[0] == args.stores

            try:
                wait_for(all_ready, args.ready_timeout, f"{args.stores} stores Ready",
                         interval=interval)
            except TimeoutError:
                print(operator.tail())
                raise
            elapsed = watch.count()[1] - start
            watch.close()
            ready_load = load()
            for event in tail.read():
                converge.add(event)
            print(f"apply of all stores (kubectl): {applied - start:.2f} s")
            print(f"operator: all Ready after {elapsed:.1f} s ({args.stores / elapsed:.1f} "
                  f"stores/s; Ready from a watch)   ratio to the raw loop: "
                  f"{elapsed / raw_seconds:.2f}x ({elapsed / rendered_seconds:.2f}x to the "
                  f"loop before its key rings)   load: {ready_load}   {meter.read()}")
            print(f"operator requests to converge: {converge.mutating()} mutating "
                  f"({converge.mutating() / args.stores:.1f} per store)   {converge.describe()}")
            converged = scrape(port, "dataward_reconciles_total") or 0.0
            print(f"store reconciles to converge: {converged:.0f} "
                  f"({converged / args.stores:.1f} per store)")
            figures["ready"] = (f"| {args.stores} stores applied at once, all Ready | "
                                f"{elapsed:.1f} s (load {ready_load}) | {raw_seconds:.1f} s "
                                f"(load {raw_load}; {rendered_seconds:.1f} s before the "
                                f"key rings) | **{elapsed / raw_seconds:.2f}x** "
                                f"({elapsed / rendered_seconds:.2f}x) |")
            peak, now = peak_rss_mib(operator.pid)
            print(f"operator RSS after Ready: peak {peak:.0f} MiB, now {now:.0f} MiB   "
                  f"load: {load()}")
            figures["rss-ready"] = f"| operator peak RSS after Ready | {peak:.0f} MiB | — | — |"
            phase_done()

            tail_tally = Tally()
            waited, idle = wait_idle(tail, args.idle_seconds, args.idle_timeout, tail_tally)
            print(f"operator idle after {waited:.1f} s more ({'' if idle else 'NOT idle: '}"
                  f"no request but watches, the Lease and discovery for {args.idle_seconds:g} s); "
                  f"meanwhile: {tail_tally.describe()}   load: {load()}")
            phase_done()

            time.sleep(args.steady_seconds)
            steady = Tally()
            for event in tail.read():
                steady.add(event)
            minutes = args.steady_seconds / 60
            gets = steady.gets()
            steady_load = load()
            print(f"steady state over {args.steady_seconds:.0f} s: {steady.describe()}; "
                  f"{steady.reads() / minutes:.1f} reads/min   load: {steady_load}")
            print("per-store periodic GETs: " + (
                f"YES, {sum(gets.values())} ({dict(gets)})" if gets
                else "none (reads are watches, their relists and discovery only)"))
            figures["steady"] = (
                f"| steady state, {args.steady_seconds:.0f} s after idle | "
                f"{steady.mutating()} mutating, {steady.reads()} reads "
                f"({', '.join(f'{k} {n}' for k, n in sorted(steady.requests.items())) or 'none'}"
                f"), per-store GETs: {sum(gets.values())}, Lease requests "
                f"{sum(steady.lease.values())} (load {steady_load}) | — | — |")
            peak, now = peak_rss_mib(operator.pid)
            print(f"operator RSS before the restart: peak {peak:.0f} MiB, now {now:.0f} MiB")
            phase_done()

            # Restart with nothing changed.
            start = time.monotonic()
            operator.stop()
            print(f"operator stopped in {time.monotonic() - start:.1f} s")
            scopes: list[str | None] = [None] if scope == "selector" else list(bench_ns)
            listing, counts = cold_list(admin, scopes, threads=len(COLD_LISTS) * len(scopes))
            listing_load = load()
            sequential, _ = cold_list(admin, scopes, threads=1)
            print(f"cold LIST of the same objects, one thread per kind and scope as the "
                  f"operator's caches: {listing:.2f} s ({sequential:.2f} s one at a time; "
                  f"{dict(counts)})   load: {listing_load}")
            tail.skip()
            start = time.monotonic()
            restarted.start()
            # Every process of the machine's control plane, the operator and this one: who
            # else took the two cores while the operator re-verified.
            restart_meter = CpuMeter({**plane.pids(), "operator": restarted.pid,
                                      "bench": os.getpid()})
            restart_meter.start()
            restart = Tally()
            led: float | None = None
            done: float | None = None
            while done is None and time.monotonic() - start < args.ready_timeout:
                text = restarted.log.read_text(errors="replace")
                if led is None and "acquired lease" in text:
                    led = time.monotonic() - start
                if RE_VERIFIED in text:
                    done = time.monotonic() - start
                for event in tail.read():
                    restart.add(event)
                time.sleep(0.05)
            reverify_load = load()
            restart_cpu = restart_meter.read()
            if done is None:
                print(f"restart: the operator did not log {RE_VERIFIED!r} within "
                      f"{args.ready_timeout:.0f} s")
                reverified = math.inf
            else:
                reverified = done
                print("restart: " + next(line for line in restarted.log.read_text(
                    errors="replace").splitlines() if RE_VERIFIED in line).strip()[-160:])
            secret_gets = sum(n for k, n in restart.requests.items() if k.startswith("get ")
                              and "secrets" in k)
            reconciles = scrape(port, "dataward_reconciles_total")
            lead = seconds(led if led is not None else math.inf)
            after_lead = reverified - led if led is not None else math.inf
            print(f"restart: every store re-verified (the operator's first pass) "
                  f"{seconds(reverified)} s after the start (process start included; it led "
                  f"after {lead} s, then {seconds(after_lead)} s); store reconciles: "
                  f"{reconciles}; ratio to the cold LIST: {reverified / listing:.1f}x from the "
                  f"start, {after_lead / listing:.1f}x from the Lease (target <= 2x)   "
                  f"load: {reverify_load}   {restart_cpu}")
            peak, now = peak_rss_mib(restarted.pid)
            print(f"restarted operator RSS after re-verifying: peak {peak:.0f} MiB, "
                  f"now {now:.0f} MiB")
            waited, idle = wait_idle(tail, args.idle_seconds, args.idle_timeout, restart)
            print(f"restart: idle {waited:.1f} s after the last re-verification "
                  f"({'' if idle else 'NOT idle; '}{args.idle_seconds:g} s quiet); requests "
                  f"since the start: {restart.describe()}   load: {load()}")
            figures["restart"] = (
                f"| restart, nothing changed: every store re-verified | {seconds(reverified)} s "
                f"from the start ({seconds(after_lead)} s from the Lease), "
                f"{restart.mutating()} mutating requests, {secret_gets} Secret GETs, "
                f"{sum(restart.lease.values())} Lease "
                f"(load {reverify_load}) | cold LIST {listing:.2f} s (load {listing_load}) | "
                f"**{reverified / listing:.1f}x** ({after_lead / listing:.1f}x) |")
            phase_done()

            picks = [docs[i]["metadata"] for i in sample_indices(args.stores, args.samples)]
            sample = [(m["namespace"], m["name"]) for m in picks]
            waited, idle = wait_idle(tail, args.idle_seconds, args.idle_timeout, Tally())
            print(f"waited {waited:.1f} s for the operator to be idle before sampling"
                  f"{'' if idle else ' (NOT idle)'}")

            def reschedule(namespace: str, name: str, index: int) -> None:
                admin.merge_patch("PersonalDataStore", namespace, name,
                                  {"spec": {"purge": {"schedule": f"{index % 60} 4 * * *"}}})

            def rescheduled(namespace: str, name: str, index: int) -> bool:
                cronjob = admin.get("CronJob", namespace, names_for(name).purge_cronjob)
                return bool(cronjob and cronjob["spec"]["schedule"] == f"{index % 60} 4 * * *")

            spec = latencies(sample, reschedule, rescheduled, args.sample_timeout)
            spec_load = load()
            print(f"spec change -> CronJob updated, {len(spec)} samples one at a time: "
                  f"{describe_latencies(spec)}   load: {spec_load}")
            figures["spec"] = (
                f"| one spec change -> CronJob updated ({len(spec)} samples) | p50 "
                f"{seconds(percentile(spec, 50))} s, p99 {seconds(percentile(spec, 99))} s "
                f"(load {spec_load}) | — | — |")

            waited, idle = wait_idle(tail, args.idle_seconds, args.idle_timeout, Tally())
            print(f"waited {waited:.1f} s for the operator to be idle"
                  f"{'' if idle else ' (NOT idle)'}")

            def delete(namespace: str, name: str, index: int) -> None:
                admin.delete("NetworkPolicy", namespace, names_for(name).network_policy)

            def restored(namespace: str, name: str, index: int) -> bool:
                return admin.get("NetworkPolicy", namespace,
                                 names_for(name).network_policy) is not None

            back = latencies(sample, delete, restored, args.sample_timeout)
            back_load = load()
            print(f"deleted NetworkPolicy -> restored, {len(back)} samples: "
                  f"{describe_latencies(back)}   load: {back_load}")
            figures["back"] = (
                f"| deleted NetworkPolicy restored ({len(back)} samples) | p50 "
                f"{seconds(percentile(back, 50))} s, p99 {seconds(percentile(back, 99))} s "
                f"(load {back_load}) | — | — |")
            peak, now = peak_rss_mib(restarted.pid)
            print(f"restarted operator RSS at the end: peak {peak:.0f} MiB, now {now:.0f} MiB")
            figures["rss-end"] = (f"| restarted operator peak RSS at the end | {peak:.0f} MiB "
                                  f"| — | — |")
            phase_done()
        except (KubeError, TimeoutError):
            for who in (operator, restarted):
                if who.log.exists():
                    print(f"--- {who.log.name} (last lines)\n{who.tail()}")
            raise
        finally:
            operator.stop()
            restarted.stop()
    total = time.monotonic() - began
    print(f"\ntook {total / 60:.1f} min ({total:.0f} s) against ~"
          f"{sum(s for _, s in phases):.0f} s estimated; by phase (estimated -> took):")
    for (name, guess), actual in zip(phases, took, strict=False):
        print(f"  {name}: ~{guess:.0f} s -> {actual:.0f} s")
    print(f"\n| figure ({args.stores} stores, {k} namespace(s)) | operator | raw SSA loop, "
          f"{args.threads} threads, same children / cold LIST | ratio |\n|---|---|---|---|")
    for row in figures.values():
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
