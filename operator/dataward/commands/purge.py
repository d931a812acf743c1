"""`dataward purge`: the program a store's CronJob runs.

    dataward purge --store NAMESPACE/NAME                 # store and policy from the API
    dataward purge -f store.yaml --policy policy.yaml     # offline, from files
    dataward purge --store NAMESPACE/NAME --dry-run --pending-generation N
        # the impact preview the operator runs: count, under the policy's pending revision
        # (generation N), what the purge would delete; nothing is written

Credentials come from `DATAWARD_DB_USERNAME`/`DATAWARD_DB_PASSWORD` and
`DATAWARD_ARCHIVE_USERNAME`/`DATAWARD_ARCHIVE_PASSWORD` (or `--credentials-dir`,
`--archive-credentials-dir` holding `username` and `password` files). The result is printed
as JSON and written to the termination-message path (`--termination-log`, else
`DATAWARD_TERMINATION_LOG`, else /dev/termination-log when it exists).

Exit status: 0 for Succeeded, Skipped and Held (a retry would not help), 1 for Failed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dataward.model.policy import Policy
from dataward.model.store import Database, Store
from dataward.purge import mysql, postgres
from dataward.purge.credentials import Credentials, Timeouts, load_credentials
from dataward.purge.engine import (
    FAULT_POINTS,
    EngineOptions,
    Fault,
    no_fault,
    preview,
    purge,
)
from dataward.purge.errors import PurgeError, unforeseen
from dataward.purge.plan import (
    DEFAULT_MAX_CLOCK_SKEW,
    LargeCutThreshold,
    Stop,
    interruption,
    make_plan,
    refusal,
)
from dataward.purge.result import (
    ErrorInfo,
    PurgeResult,
    termination_log_path,
    write_termination_message,
)
from dataward.purge.source import ApiSource, FileSource, StoreSource
from dataward.purge.sql import Session

# A test hook, kept out of the command's help: DATAWARD_PURGE_FAULT=<point>[:<n>] (points:
# before-select, after-select, after-archive-commit, after-delete) kills the process with
# status 137 at the n-th time (default first) the run reaches that point, for the crash tests.
FAULT_ENV = "DATAWARD_PURGE_FAULT"


def register(subparsers: Any) -> None:
    """Add the `purge` subcommand."""
    parser = subparsers.add_parser(
        "purge",
        help="delete a store's expired records (archiving statutory ones first)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_arguments(parser)
    parser.add_argument("--max-clock-skew", type=float, default=300.0, metavar="SECONDS",
                        help="abort when a database's clock and this one's differ by more "
                        "(the cutoff comes from the earlier of the two; default 300)")
    parser.add_argument(
        "--lock-timeout", type=float, default=0.1, metavar="SECONDS",
        help="how long a batch waits for a row lock an application holds; longer and those "
        "rows are left for the next run (MySQL: whole seconds, under 1 means no wait)",
    )  # fmt: skip
    add_large_cut_arguments(parser, "a cut is large when it deletes")
    parser.add_argument(
        "--recheck-interval", type=float, default=5.0, metavar="SECONDS",
        help="re-read the policy between batches at most this often (default 5); the store "
        "(legal hold) is re-read before every batch",
    )  # fmt: skip
    parser.add_argument(
        "--lock-hold-target", type=float, default=0.1, metavar="SECONDS",
        help="size batches so each holds its row locks about this long (default 0.1)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="count what the run would delete and archive, write nothing (as spec.purge.dryRun)",
    )  # fmt: skip
    parser.add_argument(
        "--pending-generation", type=int, metavar="N",
        help="with --store: judge by the policy as written (its pending revision), which must "
        "be at generation N, not by the revision in force; needs --dry-run",
    )  # fmt: skip
    parser.set_defaults(func=run)


def add_large_cut_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """The large-cut rule's two bounds (`purge`, and `preview` as the purge's)."""
    parser.add_argument(
        "--large-purge-rows", type=_count, default=1000, metavar="N",
        help=f"{what} more than N rows of a table ...",
    )  # fmt: skip
    parser.add_argument(
        "--large-purge-fraction", type=_fraction, default=0.10, metavar="F",
        help="... and more than this fraction of it, 0 to 1 (default 0.10)",
    )  # fmt: skip


def seconds(text: str) -> float:
    """A time limit: a finite number of seconds above 0 (`nan` and `inf` are not)."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _fraction(text: str) -> float:
    """The large-cut fraction: 0 to 1 (a NaN compared false to every cut: nothing was held)."""
    value = float(text)
    if not 0 <= value <= 1:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction from 0 to 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count of rows (0 or more)")
    return value


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """What a run against one store's databases takes (`purge`, `subject-request run`):
    where the store comes from, the database logins and TLS, the statement timeout, and
    where the result goes."""
    parser.add_argument("--store", metavar="NAMESPACE/NAME", help="the PersonalDataStore")
    parser.add_argument(
        "-f", "--filename", action="append", type=Path, default=[], metavar="FILE",
        help="read the store (and policy) from YAML files instead of the API; repeatable",
    )  # fmt: skip
    parser.add_argument("--policy", type=Path, metavar="FILE", help="the PrivacyPolicy file")
    parser.add_argument("--credentials-dir", type=Path, metavar="DIR",
                        help="a directory with files username and password for the live "
                        "database (else DATAWARD_DB_USERNAME and DATAWARD_DB_PASSWORD)")
    parser.add_argument("--archive-credentials-dir", type=Path, metavar="DIR",
                        help="the same for the archive database (else DATAWARD_ARCHIVE_*)")
    parser.add_argument("--ca-file", type=Path, help="CA bundle for MySQL tls: verify-full")
    parser.add_argument("--termination-log", metavar="PATH",
                        help="where to write the JSON result for the operator (default: "
                        "DATAWARD_TERMINATION_LOG, else /dev/termination-log when it exists)")
    parser.add_argument("--statement-timeout", type=seconds, default=30.0, metavar="SECONDS",
                        help="the longest any one statement may run (default 30)")
    parser.add_argument("--connection-pin", metavar="DIGEST",
                        help="refuse to log in unless the store names this connection "
                        "(the operator renders it: the Job's Secrets are the ones the store "
                        "named when the Job was made)")


def refuse_other_connection(args: argparse.Namespace, store: Store) -> None:
    """Before any login: a Job made for one connection (its Secrets mounted from the store as
    it was then) never logs in where the store, edited since, points now."""
    if args.connection_pin is not None and args.connection_pin != store.connection_pin:
        raise PurgeError(
            "JobOutdated",
            "this Job was made for the databases the store named then (spec.database and "
            "spec.archive.database: host, port, name, credentialsSecret, tls) and the store "
            "names others now, so nothing was connected to; the operator makes the next Job "
            "for the store as it is now.",
        )


def store_source(args: argparse.Namespace, pending_generation: int | None = None) -> StoreSource:
    """Where the store and its policy come from: the files of -f/--policy, else the API."""
    if args.filename or args.policy:
        return FileSource([*args.filename, *([args.policy] if args.policy else [])], args.store)
    if not args.store or "/" not in args.store:
        raise PurgeError("Configuration", "give --store NAMESPACE/NAME, or -f FILE --policy FILE")
    namespace, name = args.store.split("/", 1)
    return ApiSource(namespace, name, pending_generation=pending_generation)


def fault_from_env(environ: Mapping[str, str]) -> Fault:
    """The fault hook named by DATAWARD_PURGE_FAULT (tests only), or one that does nothing."""
    value = environ.get(FAULT_ENV, "")
    if not value:
        return no_fault
    point, _, nth = value.partition(":")
    if point not in FAULT_POINTS:
        raise PurgeError("Configuration", f"{FAULT_ENV} must be one of {', '.join(FAULT_POINTS)}")
    remaining = [int(nth) if nth else 1]

    def fault(reached: str) -> None:
        if reached != point:
            return
        remaining[0] -= 1
        if remaining[0] <= 0:
            sys.stdout.flush()
            os._exit(137)

    return fault


def connector(
    database: Database, credentials: Credentials, role: str, timeouts: Timeouts, ca: Path | None
) -> Callable[[], Session]:
    """Open a session to `database` as `credentials` when called (purge and preview)."""

    def connect() -> Session:
        if database.engine == "postgresql":
            return postgres.connect(database, credentials, role, timeouts)
        return mysql.connect(database, credentials, role, timeouts, ca)

    return connect


def _rechecker(
    source: StoreSource,
    store: Store,
    policy: Policy,
    interval: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> Callable[[], Stop | None]:
    """Before every batch: re-read the store (one GET: a legal hold stops the next batch);
    the policy, which changes rarely, at most every `interval` seconds. Its revision in force
    is decided at every check, at the job's clock and `skew` later: a database's clock may be
    ahead by that much, and a revision in force by it stops the run as one by the job's."""
    last = [time.monotonic()]
    plan = make_plan(store, policy, clock())

    def check() -> Stop | None:
        try:
            if time.monotonic() - last[0] >= interval:
                last[0] = time.monotonic()
                current, _ = source.load()
            else:
                current = source.load_store()
            now = clock()
            policies = [source.policy_at(now), source.policy_at(now + skew)]
        except PurgeError as error:
            return Stop(
                "StoreUnavailable",
                f"could not re-read the store ({error.message}), so whether it may still be "
                "purged (a legal hold, its compliance) is unknown; stopped.",
            )
        for in_force in policies:
            stop = interruption(plan, current, in_force)
            if stop is not None:
                return stop
        return None

    return check


def execute(args: argparse.Namespace, environ: Mapping[str, str]) -> PurgeResult:
    """Load, connect and purge; every failure becomes a Failed result."""
    started = datetime.now(UTC)
    try:
        if args.pending_generation is not None and (
            args.filename or args.policy or not args.dry_run
        ):  # the pending revision never deletes, and only the API records which one it is
            raise PurgeError("Configuration", "--pending-generation needs --store and --dry-run")
        source = store_source(args, args.pending_generation)
        store, policy = source.load()
        refuse_other_connection(args, store)
        timeouts = Timeouts(statement=args.statement_timeout, lock=args.lock_timeout)
        connect_live: Callable[[], Session] | None = None
        connect_archive: Callable[[], Session] | None = None
        if refusal(store, policy) is None:  # a refused store never needs its credentials
            connect_live = connector(
                store.database,
                load_credentials("DB", environ, args.credentials_dir),
                "live",
                timeouts,
                args.ca_file,
            )
            if store.archive is not None:
                connect_archive = connector(
                    store.archive,
                    load_credentials("ARCHIVE", environ, args.archive_credentials_dir),
                    "archive",
                    timeouts,
                    args.ca_file,
                )
        check = (
            _rechecker(
                source,
                store,
                policy,
                args.recheck_interval,
                skew=timedelta(seconds=args.max_clock_skew),
            )
            if policy is not None and policy.category(store.category) is not None
            else (lambda: None)
        )

        def refuse() -> Session:
            raise PurgeError("Internal", "no connection is opened for a refused store")

        options = EngineOptions(
            max_clock_skew=timedelta(seconds=args.max_clock_skew),
            large_cut=LargeCutThreshold(args.large_purge_fraction, args.large_purge_rows),
            lock_hold_target=args.lock_hold_target,
        )
        if args.dry_run:  # the same engine, plan and budget as a real run; nothing written
            return preview(
                store,
                policy,
                connect_live=connect_live or refuse,
                connect_archive=connect_archive,
                job_clock=lambda: datetime.now(UTC),
                options=options,
                policy_at=source.policy_at,
            )
        return purge(
            store,
            policy,
            connect_live=connect_live or refuse,
            connect_archive=connect_archive,
            job_clock=lambda: datetime.now(UTC),
            check_continue=check,
            fault=fault_from_env(environ),
            options=options,
            policy_at=source.policy_at,
        )
    except Exception as caught:  # anything but a PurgeError: its text could quote a value
        error = caught if isinstance(caught, PurgeError) else unforeseen(caught, "purge")
        return PurgeResult(
            store=args.store or "",
            result="Failed",
            dry_run=bool(args.dry_run),
            start_time=started,
            completion_time=datetime.now(UTC),
            message=error.message,
            reason=error.category,
            error=ErrorInfo(error.category, error.message),
        )


def run(args: argparse.Namespace) -> int:
    """Run the purge, print and record the result; 1 only when it failed."""
    result = execute(args, os.environ)
    print(result.to_json(), flush=True)
    path = termination_log_path(args.termination_log, os.environ)
    if not write_termination_message(result, path) and args.termination_log:
        print(f"dataward purge: could not write {path}", file=sys.stderr)
    return 1 if result.result == "Failed" else 0
