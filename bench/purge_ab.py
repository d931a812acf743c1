"""A/B of two source trees' purge engines, alternating in one window on one server.

    PYTHONPATH=$PWD/operator:$PWD python3 -m bench.purge_ab --old /tmp/old --new . \
        --engine postgresql --method plain --pairs 5

On a shared machine one run of each is noise; this alternates old and new `--pairs` times
(old first in odd pairs, new first in even ones) on one throwaway durable server, each run on
a freshly seeded table with purge_bench's application writers, and prints every run, the
ratio new/old of each pair and their geometric mean, and the load average. Each purge runs
in a child process whose PYTHONPATH is that tree (`<tree>/operator:<tree>`), so both trees
run their own code against the same server; the tree needs bench/purge_bench.py.

`--old` is typically `git archive <commit> | tar -x -C /tmp/old`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.purge_bench import (
    AppWriter,
    _create_and_seed,
    _create_app_login,
    _create_archive_table,
    _make_durable,
)
from tests.databases import (
    PURGER_USER,
    DatabaseServer,
    create_claims_table,
    start_mariadb,
    start_postgres,
)
from tests.purge.support import unique

_CHILD = """
import json, sys, time
from pathlib import Path
from bench.purge_bench import Case, _engine, _quantile
from tests.databases import DatabaseServer
a = json.loads(sys.argv[1])
live = DatabaseServer(a["engine"], "live", a["port"], Path(a["dir"]), a["tz"])
archive = None
if a["statutory"]:
    archive = DatabaseServer(a["engine"], "archive", a["port"], Path(a["dir"]), a["tz"])
case = Case(a["engine"], "dataward purge" + (", statutory" if a["statutory"] else ""), a["batch"])
started = time.perf_counter()
_engine(case, live, a["table"], a["rows"], archive)
seconds = time.perf_counter() - started
ordered = sorted(case.batches_ms)
print(json.dumps({"rows": case.rows, "seconds": seconds, "p95": _quantile(ordered, 0.95),
                  "max": ordered[-1], "batches": len(ordered)}))
"""


def _start(engine: str) -> DatabaseServer:
    server = start_postgres("live") if engine == "postgresql" else start_mariadb("live")
    _make_durable(server)
    _create_app_login(server)
    archive = replace(server, role="archive", process=None)
    if engine == "postgresql":
        server.execute(f"CREATE DATABASE archive OWNER {PURGER_USER}")
        archive.execute(f"ALTER SCHEMA public OWNER TO {PURGER_USER}")
    else:
        server.execute(
            "CREATE DATABASE archive", f"GRANT ALL PRIVILEGES ON archive.* TO '{PURGER_USER}'@'%'"
        )
    create_claims_table(archive)  # an older tree ignores it
    return server


def _one(server: DatabaseServer, tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """Seed a table, purge it with `tree`'s engine under the application's writes."""
    table = unique("ab")
    _create_and_seed(server, table, args.rows)
    archive = replace(server, role="archive", process=None)
    statutory = args.method == "statutory"
    if statutory:
        _create_archive_table(archive, table)
    writer = AppWriter(server, table, args.rows, args.write_rate)
    spec = {
        "engine": server.engine, "port": server.port, "dir": str(server.directory),
        "tz": server.time_zone, "table": table, "rows": args.rows, "batch": args.batch,
        "statutory": statutory,
    }  # fmt: skip
    env = dict(os.environ, PYTHONPATH=f"{tree}/operator:{tree}", PYTHONDONTWRITEBYTECODE="1")
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(spec)],
            env=env, cwd=tree, capture_output=True, text=True, check=False,
        )  # fmt: skip
    finally:
        writer.finish()
    if out.returncode != 0:
        raise RuntimeError(f"{tree}: {out.stderr[-3000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    server.execute(f"DROP TABLE {table}")
    if statutory:
        archive.execute(f"DROP TABLE {table}")
    return result


def main() -> None:
    """Alternate the two trees and print the pairs and their geometric mean."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--engine", choices=["postgresql", "mysql"], default="postgresql")
    parser.add_argument(
        "--method",
        choices=["plain", "statutory", "both"],
        default="plain",
        help="both: each pair runs plain and statutory on each tree (4 runs), and prints "
        "each tree's statutory/plain ratio of the pair too",
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--write-rate", type=float, default=200.0)
    args = parser.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    print(f"{args.engine} {args.method}, batch {args.batch}, {args.rows:,} rows; "
          f"load {_load()}", flush=True)  # fmt: skip
    server = _start(args.engine)
    methods = ["plain", "statutory"] if args.method == "both" else [args.method]
    ratios: dict[str, list[float]] = {m: [] for m in methods}
    try:
        for pair in range(args.pairs):
            order = [(n, m) for m in methods for n in ("old", "new")]
            if pair % 2:
                order.reverse()
            rate = {}
            for name, method in order:
                r = _one(server, trees[name], replace_method(args, method))
                rate[name, method] = r["rows"] / r["seconds"]
                print(f"pair {pair + 1} {name} {method}: {rate[name, method]:,.0f} rows/s, p95 "
                      f"batch {r['p95']:.0f} ms, max {r['max']:.0f} ms, {r['batches']:.0f} "
                      f"batches; load {_load()}", flush=True)  # fmt: skip
            for method in methods:
                ratios[method].append(rate["new", method] / rate["old", method])
                print(f"pair {pair + 1} {method}: new/old {ratios[method][-1]:.3f}", flush=True)
            if len(methods) == 2:
                old = rate["old", "statutory"] / rate["old", "plain"]
                new = rate["new", "statutory"] / rate["new", "plain"]
                print(f"pair {pair + 1} statutory/plain: old {old:.3f}, new {new:.3f}", flush=True)
    finally:
        server.stop()
    for method, values in ratios.items():
        mean = math.exp(sum(math.log(r) for r in values) / len(values))
        print(f"{method}: geometric mean new/old over {len(values)} pairs: {mean:.3f} "
              f"(min {min(values):.3f}, max {max(values):.3f}); load {_load()}")  # fmt: skip


def replace_method(args: argparse.Namespace, method: str) -> argparse.Namespace:
    """`args` with another --method."""
    return argparse.Namespace(**{**vars(args), "method": method})


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - started:.0f} s")
