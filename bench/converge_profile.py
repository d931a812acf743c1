"""Where the operator's CPU goes while N stores converge, and A/B of operator trees.

    PYTHONPATH=$PWD/operator:$PWD python3 -u -m bench.converge_profile --stores 300 \\
        --tree /work/main --tree $PWD --rounds 2 [--profile /tmp/conv]

One control plane; for each round and each `--tree` (a checkout: its operator/ is put first
on the operator's PYTHONPATH), a fresh namespace, `dataward run` serving only it (its own
Lease), N stores applied at once (one `kubectl apply`, as bench/reconcile_bench.py), then the
time until all are Ready and the CPU seconds the operator, the API server and etcd used
meanwhile (Ready from a watch of the stores, as reconcile_bench takes it; what one LIST of
the namespace's stores, the poll it replaced, costs the API server is printed after the
first run), and the operator's requests per store by `verb resource` from the audit log
(until it has sent nothing for a few seconds after the last store is Ready; the Lease,
watches and discovery apart). Each run's namespace is deleted, and
waited for, before the next. `--profile DIR`: the
operator runs under bench/profiled.py (every thread under cProfile, CPU time) and its stats
are written to DIR/<round>-<tree>.prof (profiling slows it down: its times are not figures;
`--gc-only`: no profiler, only the time spent in garbage collections, DIR/...prof.gc).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.reconcile_bench import (
    REPO,
    USER,
    AuditTail,
    CpuMeter,
    Operator,
    ReadyWatch,
    Tally,
    apply_timeout,
    cpu_seconds,
    create_all,
    credentials,
    is_ready,
    load,
    plane_pids,
    prepared_plane,
    stores,
    wait_idle,
)
from dataward.controller.kube import Kube
from e2e.harness import ControlPlane, wait_for

LIST_SAMPLES = 10
IDLE_SECONDS = 3.0  # no request from the operator this long after all are Ready: converged
PER_STORE = ("get", "create", "patch", "update", "delete")  # verbs counted per store


def per_store(tally: Tally, count: int) -> str:
    """The operator's requests for objects by `verb resource`, per store (the per-store
    verbs only: its LISTs and watches do not grow with the stores)."""
    rows = sorted((k, n) for k, n in tally.requests.items()
                  if k.split(" ")[0] in PER_STORE and not k.startswith("get /"))
    total = sum(n for _, n in rows)
    by = ", ".join(f"{k} {n / count:.2f}" for k, n in rows)
    return f"{total / count:.2f} requests/store ({by})"


def ready_count(kube: Kube, namespace: str) -> int:
    """Ready stores by a LIST: only to measure what such a poll costs (Ready is watched)."""
    return sum(1 for item in kube.list("PersonalDataStore", namespace) if is_ready(item))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--tree", action="append", required=True,
                        help="a checkout whose operator to run (repeat: A/B, in turn)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--gc-only", action="store_true",
                        help="with --profile: no profiler, only the time the operator spends "
                             "in garbage collections (DIR/<round>-<tree>.prof.gc)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float, float, float]]] = {t: [] for t in args.tree}
    requests: dict[str, list[str]] = {t: [] for t in args.tree}
    with ControlPlane() as plane, tempfile.TemporaryDirectory() as tmp:
        kubeconfig, admin = prepared_plane(plane, ())
        run = 0
        for round_ in range(args.rounds):
            for index, tree in enumerate(args.tree):
                run += 1
                namespace = f"conv-{run}"
                create_all(admin, [{"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": namespace}}], 1)
                docs = stores(args.stores, [namespace])
                create_all(admin, credentials(docs), 8)
                prefix = [sys.executable, "-m", "dataward"]
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    out = args.profile / f"{round_}-{index}.prof"
                    prefix = [sys.executable, "-m", "bench.profiled", str(out)]
                command = [*prefix, "run", "--kubeconfig", str(kubeconfig),
                           "--resync-seconds", "3600", "--metrics-port", "0",
                           "--workers", str(args.workers), "--namespace", namespace,
                           "--lease-name", f"conv-{run}"]
                os.environ["PYTHONPATH"] = f"{tree}/operator:{REPO}"
                if args.gc_only:
                    os.environ["PROFILE_GC_ONLY"] = "1"
                operator = Operator(command, Path(tmp) / f"operator-{run}.log")
                watch = ReadyWatch(admin, {namespace})
                tail = AuditTail(plane.audit_log, USER)
                tally = Tally()
                operator.start()
                try:
                    operator.leads()
                    time.sleep(2)  # its first lists (an empty namespace) done
                    tail.skip()
                    watch.start()
                    meter = CpuMeter({**plane_pids(plane), "operator": operator.pid})
                    meter.start()
                    start = time.monotonic()
                    plane.kubectl("apply", "--server-side", "-f", "-",
                                  input=yaml.safe_dump_all(docs), timeout=apply_timeout(docs))
                    wait_for(lambda w=watch: w.count()[0] == args.stores,
                             args.timeout, "all Ready", interval=0.5)
                    elapsed = watch.count()[1] - start
                    used = meter.used()
                    cpu = meter.read()
                    wait_idle(tail, IDLE_SECONDS, 120, tally)
                finally:
                    watch.close()
                    operator.stop()
                op = used["operator"]
                results[tree].append((elapsed, op, used.get("kube-apiserver", 0.0),
                                      used.get("etcd", 0.0)))
                print(f"round {round_} {tree}: all {args.stores} Ready after {elapsed:.1f} s; "
                      f"operator {op:.1f} CPU s ({1000 * op / args.stores:.1f} ms/store), "
                      f"{cpu}   load: {load()}", flush=True)
                requests[tree].append(per_store(tally, args.stores))
                print(f"round {round_} {tree}: {requests[tree][-1]}", flush=True)
                if run == 1:  # what a LIST poll costs (reconcile_bench polled so once)
                    api_pid = plane_pids(plane)["kube-apiserver"]
                    began, mine = cpu_seconds(api_pid), time.process_time()
                    for _ in range(LIST_SAMPLES):
                        ready_count(admin, namespace)
                    print(f"observer: one LIST of {args.stores} stores (and counting Ready) "
                          f"costs the API server "
                          f"{(cpu_seconds(api_pid) - began) / LIST_SAMPLES:.3f} CPU s and "
                          f"this process {(time.process_time() - mine) / LIST_SAMPLES:.3f}",
                          flush=True)
                admin.delete("Namespace", None, namespace)
                # The namespace's deletion (every store and child) must not load the next run.
                wait_for(lambda where=namespace: admin.get("Namespace", None, where) is None,
                         900, f"namespace {namespace} deleted", interval=1.0)
    for tree, rows in results.items():
        ops = sorted(r[1] for r in rows)
        times = sorted(r[0] for r in rows)
        apis = sorted(r[2] for r in rows)
        print(f"{tree}: operator CPU s {ops} (ms/store median "
              f"{1000 * ops[len(ops) // 2] / args.stores:.1f}); API server CPU s {apis} "
              f"(ms/store median {1000 * apis[len(apis) // 2] / args.stores:.1f}); "
              f"Ready s {times}")
        for line in requests[tree]:
            print(f"{tree}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
