"""`dataward subject-request`: a data subject's access or erasure request against one store.

    dataward subject-request run --type access --store NS/NAME --identifier-dir DIR \\
        --recipient-public-key requester.pub --export-out export.sealed
    dataward subject-request run --type erasure -f store.yaml --policy policy.yaml \\
        --identifier-dir DIR [--dry-run] [--max-rows N] [--acknowledge TOKEN]
    dataward subject-request open --private-key requester.key --in export.sealed
    dataward subject-request keygen --private-key-out requester.key --public-key-out requester.pub

The identifiers are files in --identifier-dir (a mounted Secret: file name = kind, such as
email or customer-id; content = the value). They are never taken from the command line and
never printed. Database logins come from --credentials-dir/--archive-credentials-dir (files
username and password) or DATAWARD_DB_* / DATAWARD_ARCHIVE_* as for `dataward purge`.

`run` prints the result as JSON (no personal data: counts, tables, times) and writes it to the
termination-message path. An access request's rows are sealed to --recipient-public-key
(X25519) and written to --export-out and/or, with --store, to the existing Secret named by
--export-secret (data key export.sealed); they are never written in the clear.

Exit status of `run`: 0 for Succeeded and Held (a retry would not help), 1 for Failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dataward.commands.purge import (
    add_store_arguments,
    connector,
    fault_from_env,
    refuse_other_connection,
    store_source,
)
from dataward.purge.credentials import Timeouts, load_credentials
from dataward.purge.errors import PurgeError, unforeseen
from dataward.purge.result import ErrorInfo, termination_log_path, write_termination_message
from dataward.purge.source import ApiSource, StoreSource
from dataward.purge.sql import Session
from dataward.subjects.engine import RequestOptions, run_request
from dataward.subjects.export import (
    SealError,
    generate_keypair,
    load_public_key,
    open_sealed,
    seal,
)
from dataward.subjects.identifiers import load_identifiers
from dataward.subjects.plan import DEFAULT_MAX_ROWS, REQUEST_TYPES
from dataward.subjects.result import SubjectResult

EXPORT_KEY = "export.sealed"


def register(subparsers: Any) -> None:
    """Add the `subject-request` subcommand and its own subcommands."""
    parser = subparsers.add_parser(
        "subject-request",
        help="run a data subject's access or erasure request against one store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_parser = actions.add_parser(
        "run", help="find (access) or erase (erasure) the subject's rows in one store"
    )
    run_parser.add_argument("--type", required=True, choices=REQUEST_TYPES, dest="request_type",
                            help="access: export the rows; erasure: delete them (statutory "
                            "rows are archived first)")  # fmt: skip
    add_store_arguments(run_parser)
    run_parser.add_argument("--identifier-dir", type=Path, required=True, metavar="DIR",
                            help="a directory with one file per identifier kind (a mounted "
                            "Secret); the values are never printed")  # fmt: skip
    run_parser.add_argument(
        "--dry-run", action="store_true", help="only count what the request would export or delete"
    )
    run_parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS, metavar="N",
                            help="hold a request matching more than N rows until acknowledged "
                            f"(default {DEFAULT_MAX_ROWS})")  # fmt: skip
    run_parser.add_argument(
        "--acknowledge", metavar="TOKEN", help="the token a held request printed: run it anyway"
    )
    run_parser.add_argument("--recipient-public-key", type=Path, metavar="FILE",
                            help="access: the requester's X25519 public key (PEM, or 32 bytes "
                            "raw or base64) the export is sealed to")  # fmt: skip
    run_parser.add_argument(
        "--export-out", type=Path, metavar="FILE", help="access: write the sealed export here"
    )
    run_parser.add_argument("--export-secret", metavar="NAMESPACE/NAME",
                            help="access: put the sealed export in this existing Secret "
                            f"(data key {EXPORT_KEY})")  # fmt: skip
    run_parser.add_argument(
        "--lock-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how long to wait for a row an application holds locked "
        "(default 5); longer fails the request, which can be re-run",
    )
    run_parser.add_argument("--max-clock-skew", type=float, default=300.0, metavar="SECONDS",
                            help="fail when a database's clock and this one's differ by more "
                            "(it decides at the earliest of them; default 300)")  # fmt: skip
    run_parser.set_defaults(func=run)

    open_parser = actions.add_parser("open", help="decrypt a sealed export (prints the JSON)")
    open_parser.add_argument(
        "--private-key",
        type=Path,
        required=True,
        metavar="FILE",
        help="the requester's X25519 private key (PEM, raw or base64)",
    )
    open_parser.add_argument(
        "--in", type=Path, required=True, dest="input", metavar="FILE", help="the sealed export"
    )
    open_parser.set_defaults(func=open_export)

    keygen = actions.add_parser(
        "keygen", help="make a requester's X25519 key pair (PEM); never replaces a file"
    )
    keygen.add_argument("--private-key-out", type=Path, required=True, metavar="FILE")
    keygen.add_argument("--public-key-out", type=Path, required=True, metavar="FILE")
    keygen.set_defaults(func=make_keys)


def _export_targets(args: argparse.Namespace) -> None:
    """An access request must have somewhere to put its sealed export, before anything runs."""
    if args.export_secret and (args.filename or args.policy):
        raise PurgeError("Configuration", "--export-secret needs the API mode (--store only)")
    if args.export_secret and "/" not in args.export_secret:
        raise PurgeError("Configuration", "--export-secret must be NAMESPACE/NAME")
    if args.request_type != "access" or args.dry_run:
        return
    if args.recipient_public_key is None:
        raise PurgeError(
            "Configuration", "an access request needs --recipient-public-key to seal the export"
        )
    if not args.export_out and not args.export_secret:
        raise PurgeError(
            "Configuration", "an access request needs --export-out FILE or --export-secret NS/NAME"
        )


def _write_secret(target: str, blob: bytes) -> None:
    """Put the sealed export into an existing Secret (one PATCH of its data key)."""
    from kubernetes import client, config  # imported here: only the API mode needs it
    from kubernetes.client.exceptions import ApiException

    namespace, name = target.split("/", 1)
    try:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        client.CoreV1Api().patch_namespaced_secret(
            name, namespace, {"data": {EXPORT_KEY: base64.b64encode(blob).decode()}}
        )
    except ApiException as exc:
        raise PurgeError(
            "Configuration", f"cannot update Secret {target} with the export (HTTP {exc.status})"
        ) from None
    except Exception:
        raise PurgeError("Configuration", f"cannot update Secret {target} (no answer)") from None


def _write_private(path: Path, data: bytes, *, new: bool = False) -> None:
    """Write a file readable by its owner only (`new`: refuse to replace an existing one)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if new else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _failed(
    args: argparse.Namespace, ref: str, started: datetime, reason: str, message: str, detail: str
) -> SubjectResult:
    """The Failed result of a request run from `started`: `message` for status, `detail` for
    its error."""
    return SubjectResult(
        store=ref,
        type=args.request_type,
        outcome="Failed",
        dry_run=args.dry_run,
        start_time=started,
        completion_time=datetime.now(UTC),
        message=message,
        reason=reason,
        error=ErrorInfo(reason, detail),
    )


def execute(args: argparse.Namespace, environ: Mapping[str, str]) -> SubjectResult:
    """Load, connect, run the request, deliver the export; every failure is a Failed result."""
    started = datetime.now(UTC)
    source: StoreSource | None = None
    ref = args.store or ""
    try:
        _export_targets(args)
        recipient = None
        if args.request_type == "access" and not args.dry_run:
            try:
                recipient = load_public_key(args.recipient_public_key.read_bytes())
            except OSError:
                raise PurgeError(
                    "Configuration", f"cannot read {str(args.recipient_public_key)!r}"
                ) from None
            except (SealError, ValueError) as error:
                raise PurgeError("Configuration", f"--recipient-public-key: {error}") from None
        identifiers = load_identifiers(args.identifier_dir)
        source = store_source(args)
        store, policy = source.load()
        ref = f"{store.namespace}/{store.name}"
        refuse_other_connection(args, store)
        timeouts = Timeouts(statement=args.statement_timeout, lock=args.lock_timeout)
        connect_live = connector(
            store.database,
            load_credentials("DB", environ, args.credentials_dir),
            "live",
            timeouts,
            args.ca_file,
        )
        connect_archive: Callable[[], Session] | None = None
        if store.archive is not None:
            connect_archive = connector(
                store.archive,
                load_credentials("ARCHIVE", environ, args.archive_credentials_dir),
                "archive",
                timeouts,
                args.ca_file,
            )
        outcome = run_request(
            store,
            policy,
            identifiers,
            args.request_type,
            connect_live=connect_live,
            connect_archive=connect_archive,
            job_clock=lambda: datetime.now(UTC),
            options=RequestOptions(
                dry_run=args.dry_run,
                max_rows=args.max_rows,
                acknowledge=args.acknowledge,
                max_clock_skew=timedelta(seconds=args.max_clock_skew),
            ),
            fault=fault_from_env(environ),
            policy_at=source.policy_at,
        )
        result = outcome.result
        if outcome.document is None or recipient is None:
            return result
        blob = seal(outcome.document, recipient)
        try:
            if args.export_out:
                _write_private(args.export_out, blob)
        except OSError:
            raise PurgeError("Configuration", f"cannot write {str(args.export_out)!r}") from None
        if args.export_secret:
            _write_secret(args.export_secret, blob)
        return replace(result, export_sha256=hashlib.sha256(blob).hexdigest())
    except PurgeError as error:
        return _failed(args, ref, started, error.category, error.message, error.message)
    except Exception as error:  # anything else: its text could quote a value, so only its type
        failure = unforeseen(error, "request")
        return _failed(args, ref, started, failure.category, failure.message, failure.message)
    finally:
        if isinstance(source, ApiSource):
            source.close()


def run(args: argparse.Namespace) -> int:
    """Run the request, print and record the result; 1 only when it failed."""
    result = execute(args, os.environ)
    print(result.to_json(), flush=True)
    path = termination_log_path(args.termination_log, os.environ)
    if not write_termination_message(result, path) and args.termination_log:
        print(f"dataward subject-request: could not write {path}", file=sys.stderr)
    return 1 if result.outcome == "Failed" else 0


def open_export(args: argparse.Namespace) -> int:
    """Decrypt a sealed export with the requester's private key and print the JSON."""
    try:
        document = open_sealed(args.input.read_bytes(), args.private_key.read_bytes())
    except OSError as error:
        print(f"dataward subject-request open: cannot read {error.filename}", file=sys.stderr)
        return 1
    except (SealError, ValueError) as error:
        print(f"dataward subject-request open: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(document.decode())
    sys.stdout.write("\n")
    return 0


def make_keys(args: argparse.Namespace) -> int:
    """Write a new key pair: the private key readable by its owner only."""
    pair = generate_keypair()
    for path in (args.private_key_out, args.public_key_out):
        if path.exists():
            print(f"dataward subject-request keygen: {path} exists; not replacing a key",
                  file=sys.stderr)  # fmt: skip
            return 1
    try:
        _write_private(args.private_key_out, pair.private_pem, new=True)
        _write_private(args.public_key_out, pair.public_pem, new=True)
        args.public_key_out.chmod(0o644)
    except OSError as error:
        print(f"dataward subject-request keygen: cannot write {error.filename}", file=sys.stderr)
        return 1
    return 0
