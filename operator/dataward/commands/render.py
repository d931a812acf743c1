"""`dataward render`: print every child the operator would create for a store, offline.

A pull request can show what a change to a store or policy will do to the cluster. Key
material is never printed: the key ring Secret appears only as a comment naming it.

The inputs are read and checked exactly as `dataward check` reads and checks them (files, or
directories searched recursively; the CRD rules, then each store against its PrivacyPolicy,
which may be among the -f inputs or given with --policy). Every problem goes to stderr, and
the exit status is 1 when there is any: a store the API server would refuse is shown as a
comment only, and a store that breaks its policy is rendered as the operator would make it
(its purge CronJob suspended) under a comment saying why. Exit status 2: an input does not
exist, or holds no PersonalDataStore.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataward.commands.check import (
    POLICY_KIND,
    STORE_KIND,
    Document,
    check_documents,
    read_paths,
)
from dataward.model.compliance import compliance_findings
from dataward.model.errors import ModelError
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import Store, parse_store
from dataward.render import RenderSettings, render_children, render_key_ring_metadata
from dataward.render.settings import DEFAULT_IMAGE
from dataward.validation import apply_defaults, validate_object


@dataclass(frozen=True)
class StoreInput:
    """One store document, and what reading it gave: the store, or the reasons it is refused."""

    document: Document
    store: Store | None
    refusals: tuple[str, ...]  # why the API server would not admit it


def register(subparsers: Any) -> None:
    """Add `render` to the command line."""
    parser = subparsers.add_parser(
        "render",
        help="print the objects the operator would create for a store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="DIR|FILE",
        help="PersonalDataStore(s), and possibly their PrivacyPolicy: a YAML file, or a "
        "directory searched recursively; repeat for more",
    )
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="DIR|FILE",
        help="where the stores' PrivacyPolicy is, when it is not among the -f inputs",
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="purge job image")
    parser.add_argument(
        "--time-zone", default="Etc/UTC", help="time zone of purge schedules (default Etc/UTC)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render every store of the inputs; 0 valid, 1 problems (on stderr), 2 unusable input."""
    names = [*args.filename, *args.policy]
    missing = [name for name in names if not Path(name).exists()]
    for name in missing:
        print(f"dataward render: {name}: no such file or directory", file=sys.stderr)
    if missing:
        return 2
    _, documents, unreadable = read_paths([Path(name) for name in names])
    if unreadable:
        for problem in unreadable:
            print(f"dataward render: {problem}", file=sys.stderr)
        return 2
    stores = [read_store(d) for d in documents if d.kind == STORE_KIND]
    if not stores:
        print(f"dataward render: {', '.join(args.filename)}: no PersonalDataStore",
              file=sys.stderr)
        return 2
    # The store must be checked against its policy to know what the operator would do.
    problems, notes = check_documents(documents, require_policies=True)
    for line in [*notes, *problems]:
        print(line, file=sys.stderr)
    settings = RenderSettings(image=args.image, time_zone=args.time_zone)
    try:
        write_rendering(stores, read_policies(documents), settings, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) has had enough. Python would print a traceback when it
        # flushes stdout at exit; point stdout at /dev/null so that it has nothing to flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if problems:
        count = len(problems)
        print(
            f"dataward render: {count} problem{'s' if count != 1 else ''} (above); the "
            "rendering marks each store that would be refused or is not compliant",
            file=sys.stderr,
        )
        return 1
    return 0


def read_store(document: Document) -> StoreInput:
    """Parse one store document as the API server would store it (defaults filled in)."""
    refusals = tuple(document.line(e.path, e.message) for e in validate_object(document.obj))
    try:
        store = parse_store(apply_defaults(document.obj, STORE_KIND))
    except ModelError as error:
        return StoreInput(document, None, refusals or (document.line(error.path, error.message),))
    return StoreInput(document, store, refusals)


def read_policies(documents: Iterable[Document]) -> list[Policy]:
    """The PrivacyPolicies among `documents` that the API server would admit."""
    policies = []
    for document in documents:
        if document.kind != POLICY_KIND or validate_object(document.obj):
            continue
        try:
            policies.append(parse_policy(apply_defaults(document.obj, POLICY_KIND)))
        except ModelError:
            continue  # check_documents reports it
    return policies


def write_rendering(
    stores: Sequence[StoreInput], policies: Iterable[Policy], settings: RenderSettings,
    out: TextIO,
) -> None:
    """Write every store's children as YAML documents, with comments on what is not shown."""
    by_name: dict[str, Policy] = {}
    for each in policies:
        by_name.setdefault(each.name, each)
    for index, found in enumerate(stores):
        if index:
            out.write("---\n")
        if found.store is None or found.refusals:
            out.writelines(f"# {line}\n" for line in _refused(found))
            continue
        store, policy = found.store, by_name.get(found.store.policy)
        out.writelines(f"# {line}\n" for line in _header(store, policy))
        documents = [
            yaml.safe_dump(_offline(child, store), sort_keys=False, default_flow_style=False)
            for child in render_children(store, policy, settings)
        ]
        out.write("---\n".join(documents))


def _refused(found: StoreInput) -> list[str]:
    return [
        f"{STORE_KIND} {found.document.name} ({found.document.file})",
        "INVALID: the API server would refuse this store, so the operator would create "
        "nothing for it:",
        *(f"  {line}" for line in found.refusals),
    ]


def _header(store: Store, policy: Policy | None) -> list[str]:
    ring = render_key_ring_metadata(store)
    owner = "owned by the store" if "ownerReferences" in ring else "no owner (Retain)"
    lines = [
        f"{STORE_KIND} {store.namespace}/{store.name}",
        f"Secret {store.namespace}/{ring['name']}: the key ring, created once by the operator "
        f"({owner}); its key material is never rendered.",
    ]
    findings = compliance_findings(store, policy)
    if findings:
        lines.append(
            "NOT COMPLIANT: the operator would make the objects below, but keep the purge "
            "CronJob suspended until this is fixed:"
        )
    for finding in findings:
        lines.append(f"PolicyCompliant=False ({finding.reason}): {finding.message}")
    if not store.uid:
        lines.append(
            "ownerReferences name the store without its uid, which the API server assigns."
        )
    return lines


def _offline(child: dict[str, Any], store: Store) -> dict[str, Any]:
    """The child without the empty uid a store read from a file has (not a valid reference)."""
    if store.uid:
        return child
    metadata = child.get("metadata") or {}
    for reference in metadata.get("ownerReferences") or []:
        if reference.get("uid") == "":
            del reference["uid"]
    return child
