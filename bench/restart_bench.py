"""A restart with nothing changed, alone and again: where its wall time goes, and A/B of trees.

    PYTHONPATH=$PWD/operator:$PWD python3 -u -m bench.restart_bench --stores 1000 \\
        --tree /work/main --tree $PWD --rounds 3 [--trace DIR]
    (--tree $PWD,MALLOC_ARENA_MAX=2: that tree's operator with that environment)

One control plane (e2e/harness.py); N stores in one namespace `bench` (or round robin over
`--namespaces` K: bench-00, ...; bench/reconcile_bench.py's stores and credentials),
converged by the first tree's operator, which is then stopped once idle. Then, for each round
and each `--tree` in turn (a checkout: its operator/ first on the operator's PYTHONPATH): the
cold LIST of the same objects (reconcile_bench.cold_list; `--cold-lists` of them, their median), the
operator started again with nothing changed, and timed until it logs "first pass done" (from
process start, from the Lease), its requests until it is idle (expected: 0 mutating, no GET
of a Secret or of any named object but the Lease), its CPU seconds and resident set when the
pass is done; then it is stopped. `--trace DIR`: the operator runs under
bench/restart_trace.py and each restart's timeline is summarised (imports, Lease, each cache's
LIST, the first pass: reconciles, their thread CPU, garbage collections) and kept as
DIR/<round>-<tree>.json. Every line carries the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.reconcile_bench import (
    REPO,
    SHARD,
    SHARD_LABEL,
    USER,
    AuditTail,
    Operator,
    ReadyWatch,
    Tally,
    apply_timeout,
    cold_list,
    cpu_seconds,
    create_all,
    credentials,
    free_port,
    load,
    peak_rss_mib,
    prepared_plane,
    stores,
    wait_idle,
)
from dataward.controller.queue import RE_VERIFIED
from e2e.harness import ControlPlane, wait_for

NAMESPACE = "bench"


def summarise(trace: dict[str, Any], spawned: float) -> list[str]:
    """The restart's timeline, phase by phase, from a restart_trace JSON."""
    marks, cpu = trace["marks"], trace["cpu"]

    def at(name: str) -> float:
        return float(marks.get(name, float("nan")))

    lines = [
        f"  interpreter start -> tracer: {at('main') - spawned:.2f} s; imports "
        f"{at('imported') - at('main'):.2f} s (CPU {cpu.get('imported', 0):.2f}); then "
        f"{at('acquire') - at('imported'):.2f} s to the Lease request, "
        f"{at('lease') - at('acquire'):.2f} s for it",
        f"  Lease -> caches started: {at('caches_start') - at('lease'):.2f} s",
    ]
    lists = trace["lists"]
    if lists:
        first = min(e["began"] for e in lists)
        last = max(e.get("stored", e["listed"]) for e in lists)
        lines.append(f"  caches: first LIST at +{first - at('caches_start'):.2f} s, all stored "
                     f"{last - at('caches_start'):.2f} s after the start; thread CPU "
                     f"{sum(e.get('cpu_all', e['cpu']) for e in lists):.2f} s in all; process "
                     f"CPU from the Lease to the pass's start "
                     f"{cpu.get('first_pass_begin', 0) - cpu.get('lease', 0):.2f} s")
        # A shard's caches list their namespaces one by one: one line a kind, its LISTs
        # together.
        kinds: dict[str, list[dict[str, Any]]] = {}
        for entry in lists:
            kinds.setdefault(entry["where"], []).append(entry)
        spans = {
            where: (min(e["began"] for e in group),
                    max(e.get("stored", e["listed"]) for e in group))
            for where, group in kinds.items()
        }  # fmt: skip
        for where, group in sorted(kinds.items(), key=lambda i: spans[i[0]][0] - spans[i[0]][1]):
            objects = sum(e["objects"] for e in group)
            if objects < 50:
                continue
            began_, ended = spans[where]
            how = f" in {len(group)} LISTs" if len(group) > 1 else ""
            lines.append(f"    {where}: {objects} objects{how}, {ended - began_:.2f} s wall "
                         f"(+{began_ - at('caches_start'):.2f} s .. "
                         f"+{ended - at('caches_start'):.2f}), thread CPU "
                         f"{sum(e.get('cpu_all', e['cpu']) for e in group):.2f} s")
        listing = [g for g in trace["gc"] if at("caches_start") <= g[1] <= at("first_pass_begin")]
        lines.append(f"  garbage collections while the caches listed: {len(listing)}, "
                     f"{sum(g[2] for g in listing):.2f} s, {sum(g[3] for g in listing)} objects "
                     f"collected")
        lines.append(f"  last cache stored -> the pass begins: "
                     f"{at('first_pass_begin') - last:.2f} s")
    began, done = at("first_pass_begin"), at("first_pass_done")
    recs = trace["reconciles"]
    window = [r for r in recs if r[3] <= done + 1e-6]
    before = [r for r in window if r[2] < began]
    keys = [r[1] for r in window]
    if window:
        busy = sum(r[3] - r[2] for r in window)
        thread_cpu = sum(r[4] for r in window)
        starts = sorted(r[2] for r in window)
        lines.append(
            f"  first pass: {done - began:.2f} s wall; {len(window)} reconciles of "
            f"{len(set(keys))} stores ({len(window) - len(set(keys))} repeated, {len(before)} "
            f"started before the pass began); first at +{starts[0] - began:.2f} s; "
            f"reconcile wall {busy:.2f} s in all ({1000 * busy / len(window):.1f} ms each, "
            f"median {1000 * statistics.median(r[3] - r[2] for r in window):.1f}), thread CPU "
            f"{thread_cpu:.2f} s ({1000 * thread_cpu / len(window):.2f} ms each); process CPU "
            f"{cpu.get('first_pass_done', 0) - cpu.get('first_pass_begin', 0):.2f} s")
        gcs = [g for g in trace["gc"] if began <= g[1] <= done]
        lines.append(f"  garbage collections in the pass: {len(gcs)}, "
                     f"{sum(g[2] for g in gcs):.2f} s (by generation: "
                     f"{[sum(1 for g in gcs if g[0] == n) for n in range(3)]}), "
                     f"{sum(g[3] for g in gcs)} objects collected")
        slowest = sorted(window, key=lambda r: r[2] - r[3])[:3]
        lines.append("  slowest: " + ", ".join(
            f"{r[1]} {1000 * (r[3] - r[2]):.0f} ms (CPU {1000 * r[4]:.0f}) at "
            f"+{r[2] - began:.2f}" for r in slowest))
        # Wall time by tenth of the pass: how many reconciles ended in each.
        tenth = (done - began) / 10 or 1.0
        spread = [sum(1 for r in window if began + i * tenth <= r[3] < began + (i + 1) * tenth)
                  for i in range(10)]
        lines.append(f"  reconciles ended per tenth of the pass: {spread}")
    rss = trace.get("rss") or {}
    lines.append("  RSS MiB (peak, now) at: " + ", ".join(
        f"{name} {int(rss[name][0])}/{int(rss[name][1])}"
        for name in ("imported", "lease", "caches_start", "first_pass_begin", "trimmed",
                     "first_pass_done")
        if name in rss))
    caches_rss = [e["rss"] for e in sorted(lists, key=lambda e: e.get("stored", 0)) if "rss" in e]
    if caches_rss:
        lines.append(f"  RSS MiB as each cache stored its list, in turn: peak "
                     f"{int(max(r[0] for r in caches_rss))}, now "
                     f"{[int(r[1]) for r in caches_rss]}")
    samples = [s for s in trace.get("rss_samples") or [] if began <= s[0] <= done + 1e-6]
    if samples:
        lines.append("  RSS MiB (peak/now) through the pass: " + ", ".join(
            f"+{s[0] - began:.1f}s {int(s[1])}/{int(s[2])}" for s in samples))
    threads = trace.get("threads_cpu_at_done") or {}
    if threads:
        top = sorted(threads.items(), key=lambda kv: -kv[1])[:8]
        lines.append("  thread CPU since start at the pass's end: "
                     + ", ".join(f"{name} {s:.2f}" for name, s in top))
    return lines


def tree_path(tree: str) -> str:
    """The checkout a `--tree` names (PATH of PATH,ENV=VALUE,...)."""
    return tree.split(",")[0]


def compiled(package: Path) -> None:
    """Write the bytecode of every module under `package`, as the image's `pip install` does
    (the operator in a pod imports it, never compiles): this machine's environment sets
    PYTHONDONTWRITEBYTECODE, so an operator run from a tree compiled all of its modules at
    every start, about 0.25 s of CPU at each restart that no deployment spends."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True,
                   stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=1000)
    parser.add_argument("--tree", action="append", required=True,
                        help="a checkout whose operator to restart (repeat: A/B, in turn); "
                             "PATH,NAME=VALUE,...: with these environment variables")
    parser.add_argument("--namespaces", type=int, default=1,
                        help="the stores round robin over this many namespaces (bench-NN; "
                             "one: `bench`)")
    scope = parser.add_mutually_exclusive_group()  # default: one --namespace each
    scope.add_argument("--selector", action="store_true",
                       help="the operator serves the namespaces by label "
                            "(--namespace-selector, cluster-wide caches, as the 10,000 run)")
    scope.add_argument("--cluster", action="store_true",
                       help="the operator serves every namespace (neither flag: the chart's "
                            "default), cluster-wide caches")
    parser.add_argument(
        "--other-namespaces", type=int, default=0,
        help="with --selector: the last K of the namespaces belong to another shard (labelled "
             "for it; their stores converged by an operator of every namespace, then not "
             "served by the restarted one, whose caches still see their objects)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cold-lists", type=int, default=3,
        help="cold LISTs taken before each restart; the ratio is to their median (one took "
             "6.9-9.5 s from round to round of one run, more than the trees differed)",
    )
    parser.add_argument("--workers", type=int, default=4)
    watch = parser.add_mutually_exclusive_group()  # one wrapper of the operator at a time
    watch.add_argument("--trace", type=Path, default=None)
    watch.add_argument("--profile", type=Path, default=None,
                        help="run each restarted operator under bench/profiled.py, its stats "
                             "in DIR/<round>-<tree>.prof (its times are not figures)")
    parser.add_argument("--resync-seconds", type=float, default=3600,
                        help="the restarted operator's --resync-seconds: every cache re-lists "
                             "and every store is queued on this period")
    parser.add_argument("--hold", type=float, default=0,
                        help="keep each restarted operator running this long once idle, then "
                             "print its peak RSS and requests again (with a short "
                             "--resync-seconds: what its periodic re-lists cost)")
    parser.add_argument("--idle-seconds", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    for tree in args.tree:
        compiled(Path(tree_path(tree)) / "operator")
    results: dict[str, list[tuple[float, float, float, float]]] = {t: [] for t in args.tree}
    spaces = ([NAMESPACE] if args.namespaces == 1
              else [f"{NAMESPACE}-{i:02d}" for i in range(args.namespaces)])  # fmt: skip
    if args.other_namespaces and (not args.selector or args.other_namespaces >= len(spaces)):
        parser.error("--other-namespaces needs --selector and fewer than --namespaces")
    others = spaces[len(spaces) - args.other_namespaces:] if args.other_namespaces else []
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as tmp:
        kubeconfig, admin = prepared_plane(plane, spaces[:len(spaces) - len(others)], others,
                                           threads=2)  # fmt: skip
        for name in others:
            plane.kubectl("label", "namespace", name, f"{SHARD_LABEL}=other")
        docs = stores(args.stores, list(spaces))
        create_all(admin, credentials(docs), 8)
        tail = AuditTail(plane.audit_log, USER)
        port = free_port()
        base_env = dict(os.environ)

        def command(tree: str, out: Path | None, every: bool = False,
                    resync: float = 3600) -> list[str]:
            path, settings = tree_path(tree), tree.split(",")[1:]
            os.environ.clear()  # the operator inherits it: this tree's settings only
            os.environ.update(base_env)
            os.environ.update(dict(s.split("=", 1) for s in settings))
            os.environ["PYTHONPATH"] = f"{path}/operator:{REPO}"
            prefix = [sys.executable, "-m", "dataward"]
            if out is not None and out.suffix == ".prof":
                prefix = [sys.executable, "-m", "bench.profiled", str(out)]
            elif out is not None:
                prefix = [sys.executable, "-m", "bench.restart_trace", str(out)]
            return [*prefix, "run", "--kubeconfig", str(kubeconfig),
                    "--resync-seconds", f"{resync:g}",
                    "--metrics-port", str(port), "--workers", str(args.workers),
                    *([] if every or args.cluster else
                      ["--namespace-selector", f"{SHARD_LABEL}={SHARD}"] if args.selector
                      else [arg for name in spaces for arg in ("--namespace", name)])]

        # With another shard's namespaces: converged by an operator of every namespace.
        first = Operator(command(args.tree[0], None, every=bool(others)),
                         Path(tmp) / "converge.log")  # fmt: skip
        watch = ReadyWatch(admin, set(spaces))
        first.start()
        try:
            first.leads()
            watch.start()
            start = time.monotonic()
            plane.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs),
                          timeout=max(apply_timeout(docs), 600.0))  # a loaded machine
            wait_for(lambda: watch.count()[0] == args.stores, args.timeout, "all Ready",
                     interval=0.5)
            print(f"converged: {args.stores} Ready after {watch.count()[1] - start:.1f} s "
                  f"({args.tree[0]})   load: {load()}", flush=True)
            tail.skip()
            waited, idle = wait_idle(tail, args.idle_seconds, args.timeout, Tally())
            print(f"idle after {waited:.1f} s more{'' if idle else ' (NOT idle)'}", flush=True)
        finally:
            watch.close()
            first.stop()
        run = 0
        for round_ in range(args.rounds):
            for index, tree in enumerate(args.tree):
                run += 1
                scopes: list[str | None] = (
                    [None] if args.selector or args.cluster else list(spaces))
                lists = [cold_list(admin, scopes, threads=8) for _ in range(args.cold_lists)]
                listing, counts = statistics.median(t for t, _ in lists), lists[-1][1]
                listed = " / ".join(f"{t:.2f}" for t, _ in lists)
                listing_load = load()
                out = None
                if args.trace is not None:
                    args.trace.mkdir(parents=True, exist_ok=True)
                    out = args.trace / f"{round_}-{index}.json"
                elif args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    out = args.profile / f"{round_}-{index}.prof"
                operator = Operator(command(tree, out, resync=args.resync_seconds),
                                    Path(tmp) / f"restart-{run}.log")  # fmt: skip
                tail.skip()
                requests = Tally()
                spawned = time.monotonic()
                operator.start()
                led = done = None
                try:
                    while done is None and time.monotonic() - spawned < args.timeout:
                        text = operator.log.read_text(errors="replace")
                        if led is None and "acquired lease" in text:
                            led = time.monotonic() - spawned
                        if RE_VERIFIED in text:
                            done = time.monotonic() - spawned
                        time.sleep(0.02)
                    if done is None or led is None:
                        print(operator.tail())
                        raise TimeoutError(f"no {RE_VERIFIED!r} within {args.timeout} s")
                    cpu = cpu_seconds(operator.pid)
                    peak, rss = peak_rss_mib(operator.pid)
                    pass_load = load()
                    line = next(x for x in operator.log.read_text(errors="replace")
                                .splitlines() if RE_VERIFIED in x)
                    own = float(line.rsplit(" s after", 1)[0].rsplit(" ", 1)[1])
                    _, idle = wait_idle(tail, args.idle_seconds, args.timeout, requests)
                    if args.hold:
                        held = Tally()
                        until = time.monotonic() + args.hold
                        while time.monotonic() < until:
                            time.sleep(1)
                            for event in tail.read():
                                held.add(event)
                        later, now_rss = peak_rss_mib(operator.pid)
                        print(f"  held {args.hold:.0f} s more (--resync-seconds "
                              f"{args.resync_seconds:g}): RSS peak {later:.0f} MiB, now "
                              f"{now_rss:.0f}; operator CPU {cpu_seconds(operator.pid) - cpu:.2f} "
                              f"s; {held.mutating()} mutating requests, {held.reads()} reads   "
                              f"load: {load()}", flush=True)  # fmt: skip
                finally:
                    operator.stop()
                results[tree].append((done, done - led, own, cpu))
                gets = [k for k in requests.gets() if "leases" not in k]
                print(f"round {round_} {tree}: re-verified {done:.2f} s from the start "
                      f"(Lease at {led:.2f}; {done - led:.2f} s after it; its own line: "
                      f"{own:.2f} s after the caches listed); cold LIST {listing:.2f} s "
                      f"(the median of {listed} s; load {listing_load}; {dict(counts)}): "
                      f"{done / listing:.1f}x "
                      f"({(done - led) / listing:.1f}x from the Lease); operator CPU {cpu:.2f} s, "
                      f"RSS peak {peak:.0f} MiB, now {rss:.0f}; requests until idle: "
                      f"{requests.mutating()} mutating, GETs {gets or 'none'}"
                      f"{'' if idle else ' (NOT idle)'}   load: {pass_load}", flush=True)
                if out is not None and out.suffix == ".json":
                    for _ in range(100):
                        if out.exists():
                            break
                        time.sleep(0.1)
                    if out.exists():
                        print("\n".join(summarise(json.loads(out.read_text()), spawned)),
                              flush=True)
                time.sleep(2)
    for tree, rows in results.items():
        print(f"{tree}: from the start {sorted(round(r[0], 2) for r in rows)}, from the Lease "
              f"{sorted(round(r[1], 2) for r in rows)}, its line {sorted(r[2] for r in rows)}, "
              f"CPU {sorted(round(r[3], 2) for r in rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
