"""`dataward render`: print every child the operator would create for a store, offline.

A pull request can show what a change to a store or policy will do to the cluster. Key
material is never printed: the key ring Secret appears only as a comment naming it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataward.model.compliance import compliance_findings
from dataward.model.errors import ModelError
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import Store, parse_store
from dataward.render import RenderSettings, render_children, render_key_ring_metadata
from dataward.render.settings import DEFAULT_IMAGE


def register(subparsers: Any) -> None:
    """Add `render` to the command line."""
    parser = subparsers.add_parser(
        "render",
        help="print the objects the operator would create for a store",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--filename", required=True, help="YAML file with PersonalDataStore(s)"
    )
    parser.add_argument("--policy", required=True, help="YAML file with PrivacyPolicy(ies)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="purge job image")
    parser.add_argument(
        "--time-zone", default="Etc/UTC", help="time zone of purge schedules (default Etc/UTC)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render every store of `--filename`; exit 2 when an input cannot be read."""
    try:
        stores = [parse_store(doc) for doc in _documents(args.filename, "PersonalDataStore")]
        policies = [parse_policy(doc) for doc in _documents(args.policy, "PrivacyPolicy")]
    except (OSError, yaml.YAMLError, ModelError) as error:
        print(f"dataward render: {error}", file=sys.stderr)
        return 2
    if not stores:
        print(f"dataward render: {args.filename} has no PersonalDataStore", file=sys.stderr)
        return 2
    settings = RenderSettings(image=args.image, time_zone=args.time_zone)
    write_rendering(stores, policies, settings, sys.stdout)
    return 0


def write_rendering(
    stores: Iterable[Store], policies: Iterable[Policy], settings: RenderSettings, out: TextIO
) -> None:
    """Write every store's children as YAML documents, with comments on what is not shown."""
    by_name = {policy.name: policy for policy in policies}
    for index, store in enumerate(stores):
        policy = by_name.get(store.policy)
        if index:
            out.write("---\n")
        out.writelines(f"# {line}\n" for line in _header(store, policy))
        documents = [
            yaml.safe_dump(child, sort_keys=False, default_flow_style=False)
            for child in render_children(store, policy, settings)
        ]
        out.write("---\n".join(documents))


def _header(store: Store, policy: Policy | None) -> list[str]:
    ring = render_key_ring_metadata(store)
    owner = "owned by the store" if "ownerReferences" in ring else "no owner (Retain)"
    lines = [
        f"PersonalDataStore {store.namespace}/{store.name}",
        f"Secret {store.namespace}/{ring['name']}: the key ring, created once by the operator "
        f"({owner}); its key material is never rendered.",
    ]
    for finding in compliance_findings(store, policy):
        lines.append(f"PolicyCompliant=False ({finding.reason}): {finding.message}")
    return lines


def _documents(path: str, kind: str) -> list[Mapping[str, Any]]:
    text = Path(path).read_text(encoding="utf-8")
    return [
        doc
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, Mapping) and doc.get("kind") == kind
    ]
