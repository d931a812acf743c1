"""`dataward report`: the quarterly self-audit report from the evidence log.

    dataward report --quarter 2026Q4 --database URL --public-key FILE \\
        -f policy.yaml [-f stores/] [--expect-head SEQ:HASH] --json report.json --html report.html

It reads every record of the evidence log (the database and login as `dataward evidence
verify` takes them), verifies the chain first, and maps each clause of the policy to the
controls that enforce it and the evidence for the quarter: conditions over time, purges and
rows per category, overdue rows, key ages and rotations, foreign access, requests answered,
revisions, and the gaps (what could not be verified and why). Every figure names the records
it came from. The JSON follows docs/report-schema.json; the HTML page is self-contained.

Exit status: 0 written, chain intact; 1 written, but the chain is broken or was not verified
(no --public-key); 2 the log, a key or an input could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from dataward.commands.check import POLICY_KIND, STORE_KIND, read_paths
from dataward.commands.evidence import log_snapshot, verification_inputs
from dataward.controller.clock import clock_from_environ
from dataward.evidence.chain import Verdict, verify_chain
from dataward.evidence.errors import EvidenceError
from dataward.evidence.records import Record
from dataward.model.errors import ModelError
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import parse_store
from dataward.report.build import StoreInfo, build_report, parse_quarter, previous_quarter
from dataward.report.html import render_html


def register(subparsers: Any) -> None:
    """Add `report`."""
    parser = subparsers.add_parser(
        "report",
        help="the quarterly self-audit report (JSON and HTML) from the evidence log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quarter",
        required=True,
        metavar="YEARQN",
        help="e.g. 2026Q4 (UTC), or 'previous': the last quarter that has ended (a CronJob's)",
    )
    parser.add_argument("--database", required=True, metavar="URL")
    parser.add_argument("--credentials-dir", type=Path, metavar="DIR")
    parser.add_argument("--ca-file", type=Path, help="CA bundle for MySQL tls=verify-full")
    parser.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a PEM public key the records may be signed by; repeat after a key change",
    )
    parser.add_argument("--expect-head", action="append", default=[], metavar="SEQ:HASH")
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="DIR|FILE",
        help="the PrivacyPolicy and PersonalDataStore files (as `dataward check` reads them)",
    )
    parser.add_argument(
        "--policy", metavar="NAME", help="which policy, when the files hold several"
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the JSON here ('-': stdout)"
    )
    parser.add_argument("--html", type=Path, metavar="FILE", help="write the HTML page here")
    parser.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="write dataward-report-<QUARTER>.json and .html into DIR (instead of --json "
        "and --html)",
    )
    parser.set_defaults(func=run)


def read_inputs(
    paths: list[Path], policy_name: str | None
) -> tuple[Policy | None, dict[str, StoreInfo]]:
    """The policy and the stores (`namespace/name` -> StoreInfo) in the files."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise EvidenceError(f"{missing[0]}: no such file or directory")
    _, documents, problems = read_paths(paths)
    if problems:
        raise EvidenceError(problems[0])
    policies: list[Policy] = []
    stores: dict[str, StoreInfo] = {}
    try:
        for document in documents:
            if document.kind == POLICY_KIND:
                policies.append(parse_policy(document.obj))
            elif document.kind == STORE_KIND:
                store = parse_store(document.obj)
                if policy_name is None or store.policy == policy_name:
                    stores[f"{store.namespace}/{store.name}"] = StoreInfo(
                        store.category, store.key_rotation
                    )
    except ModelError as error:
        raise EvidenceError(f"{document.file}: {error}") from None
    if policy_name is not None:
        policies = [p for p in policies if p.name == policy_name]
        if not policies:
            raise EvidenceError(f"no PrivacyPolicy {policy_name!r} in the files")
    if len(policies) > 1:
        names = ", ".join(p.name for p in policies)
        raise EvidenceError(f"the files hold several policies ({names}): pick one with --policy")
    return (policies[0] if policies else None), stores


def read_log(args: argparse.Namespace) -> tuple[list[Record], Verdict | None]:
    """Every record, and the chain's verdict (None when no public key was given)."""
    keys, anchors = verification_inputs(args)
    with log_snapshot(args) as store:
        records = list(store.records())
        head = store.head()
    verdict = verify_chain(records, head, keys, anchors=anchors) if keys else None
    return records, verdict


def run(args: argparse.Namespace) -> int:
    """Build and write the report; 0 intact, 1 broken or unverified, 2 unreadable."""
    now = clock_from_environ(os.environ)()  # the operator's clock (a test may set it)
    try:
        quarter = (
            previous_quarter(now)
            if args.quarter.strip().lower() == "previous"
            else parse_quarter(args.quarter)
        )
    except ValueError as error:
        print(f"dataward report: {error}", file=sys.stderr)
        return 2
    try:
        policy, stores = read_inputs([Path(p) for p in args.filename], args.policy)
        records, verdict = read_log(args)
    except EvidenceError as error:
        print(f"dataward report: {error.message}", file=sys.stderr)
        return 2
    report = build_report(
        records,
        quarter,
        verdict=verdict,
        policy=policy,
        stores=stores,
        generated_at=now,
    )
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if args.out_dir is not None:
        args.json = args.out_dir / f"dataward-report-{quarter.label}.json"
        args.html = args.out_dir / f"dataward-report-{quarter.label}.html"
    try:
        if args.json is not None and str(args.json) == "-":
            sys.stdout.write(text)
        elif args.json is not None:
            args.json.write_text(text, encoding="utf-8")
        if args.html is not None:
            args.html.write_text(render_html(report), encoding="utf-8")
    except OSError as error:
        print(f"dataward report: {error}", file=sys.stderr)
        return 2
    if args.json is None and args.html is None:
        sys.stdout.write(text)
    chain = report["chain"]
    summary = (
        f"dataward report {quarter.label}: chain {chain['verdict']}, "
        f"{report['recordsInPeriod']} records in the period, {len(report['gaps'])} gaps"
    )
    print(summary, file=sys.stderr)
    return 0 if chain["verdict"] == "intact" else 1
