"""`dataward evidence`: the signing key, the evidence tables, and verification.

    dataward evidence keygen --out DIR        # DIR/evidence-signing.key (0600) and .pub
    dataward evidence init --database URL     # create the tables (an administrator, once)
    dataward evidence verify --database URL --public-key FILE [--expect-head SEQ:HASH]

URL is `postgresql://HOST[:PORT]/NAME?tls=MODE` or `mysql://HOST[:PORT]/NAME?tls=MODE`. The login
comes from DATAWARD_EVIDENCE_USERNAME/DATAWARD_EVIDENCE_PASSWORD or --credentials-dir, never
the command line.

`verify` checks every record's sequence number, link to the previous record, hash and
signature, and the head; it prints the first broken record and exits 1 when there is one,
0 when the chain is intact (printing the head to keep as an anchor for the next
verification), 2 when it could not read the log or a key.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataward.evidence import config, signing
from dataward.evidence.chain import Head, verify_chain
from dataward.evidence.errors import EvidenceError
from dataward.evidence.store import EvidenceStore, connect

PRIVATE_FILE = "evidence-signing.key"
PUBLIC_FILE = "evidence-signing.pub"


def register(subparsers: Any) -> None:
    """Add `evidence` and its subcommands."""
    parser = subparsers.add_parser(
        "evidence",
        help="the tamper-evident evidence log: keygen, init, verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    keygen = actions.add_parser("keygen", help="write a new Ed25519 signing key pair")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR")
    keygen.set_defaults(func=run_keygen)

    for name, func, text in (
        ("init", run_init, "create the evidence tables if they do not exist"),
        ("verify", run_verify, "check the chain and every signature; name the first break"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--database", required=True, metavar="URL")
        action.add_argument("--credentials-dir", type=Path, metavar="DIR")
        action.add_argument("--ca-file", type=Path, help="CA bundle for MySQL tls=verify-full")
        action.set_defaults(func=func)
        if name == "verify":
            action.add_argument(
                "--public-key", type=Path, action="append", required=True, metavar="FILE",
                help="a PEM public key the records may be signed by; repeat after a key change",
            )  # fmt: skip
            action.add_argument(
                "--expect-head", action="append", default=[], metavar="SEQ:HASH",
                help="a head printed by an earlier verification: that record must still be there",
            )  # fmt: skip


def run_keygen(args: argparse.Namespace) -> int:
    """Write the key pair; never overwrite an existing key."""
    out: Path = args.out
    private, public = out / PRIVATE_FILE, out / PUBLIC_FILE
    key = signing.generate_key()
    try:
        out.mkdir(parents=True, exist_ok=True)
        # O_EXCL: an existing key is never replaced (records signed by it would be orphaned).
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(signing.private_pem(key))
        public.write_bytes(signing.public_pem(key.public_key()))
    except FileExistsError:
        print(f"dataward evidence keygen: {private} exists; not replaced", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"dataward evidence keygen: {error}", file=sys.stderr)
        return 2
    print(f"key {signing.key_id(key.public_key())}: wrote {private} (private) and {public}")
    print(
        "mount it into the operator from a Secret, e.g.: kubectl -n dataward create secret "
        f"generic dataward-evidence-signing-key --from-file={private}"
    )
    return 0


def _store(args: argparse.Namespace) -> EvidenceStore:
    database = config.parse_database_url(args.database)
    credentials = config.load_credentials(os.environ, args.credentials_dir)
    return EvidenceStore(connect(database, credentials, ca_file=args.ca_file))


def run_init(args: argparse.Namespace) -> int:
    """Create the evidence tables and the head row."""
    try:
        store = _store(args)
        try:
            store.ensure_schema()
        finally:
            store.session.close()
    except EvidenceError as error:
        print(f"dataward evidence init: {error.message}", file=sys.stderr)
        return 2
    print("dataward evidence init: the evidence tables are in place")
    return 0


def _anchor(text: str) -> Head:
    seq, _, value = text.partition(":")
    if not seq.isdigit() or len(value) != 64:
        raise EvidenceError(f"--expect-head {text!r}: write SEQ:HASH (64 hex digits)")
    return Head(int(seq), value.lower())


def verification_inputs(args: argparse.Namespace) -> tuple[list[Any], list[Head]]:
    """The public keys and the expected heads the command line names."""
    keys = [signing.load_public_key(path) for path in args.public_key]
    return keys, [_anchor(text) for text in args.expect_head]


@contextlib.contextmanager
def log_snapshot(args: argparse.Namespace) -> Iterator[EvidenceStore]:
    """The evidence store the command line names, read in one snapshot, then closed.

    One snapshot: the operator may be appending meanwhile, and a log read across two states
    would look cut short.
    """
    store = _store(args)
    try:
        if not store.has_schema():
            raise EvidenceError(
                "the database holds no evidence log (tables dataward_evidence and "
                "dataward_evidence_head)"
            )
        with store.snapshot():
            yield store
    finally:
        store.session.close()


def run_verify(args: argparse.Namespace) -> int:
    """Verify the chain; 0 intact, 1 broken, 2 unreadable."""
    try:
        keys, anchors = verification_inputs(args)
        with log_snapshot(args) as store:
            verdict = verify_chain(store.records(), store.head(), keys, anchors=anchors)
    except EvidenceError as error:
        print(f"dataward evidence verify: {error.message}", file=sys.stderr)
        return 2
    if verdict.broken is not None:
        broken = verdict.broken
        print(
            f"dataward evidence verify: BROKEN at record {broken.seq} ({broken.check}): "
            f"{broken.message}"
        )
        proven = (
            f"records 1 to {verdict.last.seq}" if verdict.last.seq else "no record"
        )
        print(f"{proven} verified before the break", file=sys.stderr)
        return 1
    print(
        f"dataward evidence verify: intact: {verdict.records} "
        f"record{'s' if verdict.records != 1 else ''}, every hash and "
        f"signature checked; head {verdict.last.seq}:{verdict.last.hash}"
    )
    return 0
