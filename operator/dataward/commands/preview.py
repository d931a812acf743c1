"""`dataward preview`: what a purge would delete, archive and remove, per table, offline.

    dataward preview -f store.yaml --policy policy.yaml \\
        --database-url postgresql://db.example:5432/crm [--archive-database-url mysql://...] \\
        [--now 2026-03-01T00:00:00Z] [-o table|json]

For CI: run it against a copy of the database with a pending revision of the store or the
policy. It is the purge itself as a dry run (the same plan, statements, maxRowsPerRun budget
and large-cut rule), so its counts are what `dataward purge` then deletes at the same instant.
Nothing is written. The URLs replace spec.database and spec.archive.database; the category's
statute needs --archive-database-url.

Logins: from the URL (`scheme://user:password@host:port/database`) or, better (a command
line is visible to other users), from DATAWARD_DB_USERNAME/DATAWARD_DB_PASSWORD and
DATAWARD_ARCHIVE_USERNAME/DATAWARD_ARCHIVE_PASSWORD. They are never printed. TLS: the URL's
`?tls=disable|require|verify-full` (or `sslmode=`), else the store's spec.

Columns: DELETE rows the run removes from the live table (all reasons); ARCHIVE of those,
copied to the archive first (statutory); NO-CONSENT of those, rows of children under 14
without the legal representative's consent past the grace period; LARGE-CUT yes when the
table alone would hold a real run until the acknowledgement annotation is set.

Exit status: 0 when the preview ran, 1 when it failed (refused store, database error).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit

from dataward.commands.purge import add_large_cut_arguments, connector, seconds
from dataward.controller.clock import system_clock
from dataward.model.store import DEFAULT_PORTS, Database, Engine, Store, TLSMode
from dataward.purge.credentials import Credentials, Timeouts, Which, load_credentials
from dataward.purge.engine import EngineOptions, preview
from dataward.purge.errors import PurgeError
from dataward.purge.plan import LargeCutThreshold
from dataward.purge.result import ErrorInfo, PurgeResult
from dataward.purge.source import FileSource
from dataward.purge.sql import Session

_SCHEMES: dict[str, Engine] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_TLS = ("disable", "require", "verify-full")


def register(subparsers: Any) -> None:
    """Add the `preview` subcommand."""
    parser = subparsers.add_parser(
        "preview",
        help="count what a purge would delete, archive and remove, per table (offline, for CI)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--filename", action="append", type=Path, default=[], metavar="FILE",
        required=True, help="the store (and policy) YAML files; repeatable",
    )  # fmt: skip
    parser.add_argument("--policy", type=Path, metavar="FILE", help="the PrivacyPolicy file")
    parser.add_argument("--store", metavar="NAMESPACE/NAME",
                        help="which store, when the files hold several")
    parser.add_argument("--database-url", required=True, metavar="URL",
                        help="the live database: postgresql://host:port/name or mysql://...")
    parser.add_argument("--archive-database-url", metavar="URL",
                        help="the archive database (statutory categories)")
    parser.add_argument("--now", metavar="RFC3339",
                        help="preview at this instant instead of the database's clock, for "
                        "example the effective date of a pending revision")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table",
                        help="a table for people (default) or the purge's JSON record")
    parser.add_argument("--ca-file", type=Path, help="CA bundle for MySQL tls: verify-full")
    parser.add_argument("--statement-timeout", type=seconds, default=30.0, metavar="SECONDS",
                        help="the longest any one count may run (default 30)")
    add_large_cut_arguments(parser, "the large-cut rule, as dataward purge's:")
    parser.set_defaults(func=run)


def database_from_url(
    url: str, base: Database, which: Which
) -> tuple[Database, Credentials | None]:
    """The database a URL names (TLS from the URL, else `base`'s), and its login if it has one.

    Messages name the part that is wrong, never the URL (it may hold a password).
    """
    label = "--archive-database-url" if which == "ARCHIVE" else "--database-url"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PurgeError("Configuration", f"{label} is not a URL") from None
    engine = _SCHEMES.get(parts.scheme.lower())
    if engine is None:
        raise PurgeError(
            "Configuration", f"{label} must start with postgresql://, mysql:// or mariadb://"
        )
    name = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not name or "/" in name:
        raise PurgeError("Configuration", f"{label} must name a host and one database")
    query = parse_qs(parts.query)
    tls_values = query.get("tls") or query.get("sslmode") or [base.tls]
    tls = tls_values[-1]
    if tls not in _TLS:
        raise PurgeError("Configuration", f"{label}: tls must be one of {', '.join(_TLS)}")
    database = Database(
        engine=engine,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[engine],
        name=name,
        credentials_secret=base.credentials_secret,
        tls=cast(TLSMode, tls),
    )
    login = (
        Credentials(unquote(parts.username), unquote(parts.password or ""))
        if parts.username
        else None
    )
    return database, login


def _target(
    args: argparse.Namespace, store: Store, environ: Mapping[str, str]
) -> tuple[Store, Callable[[], Session], Callable[[], Session] | None]:
    """The store pointed at the URLs' databases, and connectors to them."""
    timeouts = Timeouts(statement=args.statement_timeout)
    live, login = database_from_url(args.database_url, store.database, "DB")
    connect_live = connector(
        live, login or load_credentials("DB", environ), "live", timeouts, args.ca_file
    )
    archive = None
    connect_archive = None
    if args.archive_database_url:
        base = store.archive or live
        archive, archive_login = database_from_url(args.archive_database_url, base, "ARCHIVE")
        connect_archive = connector(
            archive,
            archive_login or load_credentials("ARCHIVE", environ),
            "archive",
            timeouts,
            args.ca_file,
        )
    elif store.archive is not None:
        raise PurgeError(
            "Configuration",
            "the store has spec.archive (a statutory category): give --archive-database-url",
        )
    return replace(store, database=live, archive=archive), connect_live, connect_archive


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PurgeError(
            "Configuration", "--now must be RFC 3339, for example 2026-03-01T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise PurgeError("Configuration", "--now needs a time zone (Z or +09:00)")
    return value.astimezone(UTC)


def execute(args: argparse.Namespace, environ: Mapping[str, str]) -> PurgeResult:
    """Load, point at the URLs, run the purge as a dry run; every failure is a Failed result."""
    started = datetime.now(UTC)
    try:
        files = [*args.filename, *([args.policy] if args.policy else [])]
        at = _instant(args.now)
        # The revision in force is decided at the instant the cutoffs are: --now, else each
        # clock the run reads (`policy_at`), never the machine's clock for a plan at another.
        source = FileSource(files, args.store, clock=system_clock if at is None else lambda: at)
        store, policy = source.load()
        target, connect_live, connect_archive = _target(args, store, environ)
        return preview(
            target,
            policy,
            connect_live=connect_live,
            connect_archive=connect_archive,
            job_clock=lambda: datetime.now(UTC),
            options=EngineOptions(
                large_cut=LargeCutThreshold(args.large_purge_fraction, args.large_purge_rows)
            ),
            at=at,
            policy_at=source.policy_at,
        )
    except PurgeError as error:
        return PurgeResult(
            store=args.store or "",
            result="Failed",
            dry_run=True,
            start_time=started,
            completion_time=datetime.now(UTC),
            message=error.message,
            reason=error.category,
            error=ErrorInfo(error.category, error.message),
        )


def render_table(result: PurgeResult) -> str:
    """The per-table counts for people, then the run's message."""
    header = ("TABLE", "DELETE", "ARCHIVE", "NO-CONSENT", "LARGE-CUT")
    rows = [
        (
            t.table,
            str(t.rows_deleted),
            str(t.rows_archived),
            str(t.rows_no_consent),
            "yes" if t.large_cut else "no",
        )
        for t in result.tables
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in (header, *rows)
    ]
    at = result.server_time.isoformat() if result.server_time else "-"
    lines.append(f"store {result.store} at {at}: {result.result}. {result.message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the preview; 1 only when it failed."""
    result = execute(args, os.environ)
    output: Literal["table", "json"] = args.output
    print(result.to_json() if output == "json" else render_table(result), flush=True)
    if result.result == "Failed":
        print(f"dataward preview: {result.message}", file=sys.stderr)
        return 1
    return 0
