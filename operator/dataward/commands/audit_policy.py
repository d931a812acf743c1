"""`dataward audit-policy`: the API audit policy and kube-apiserver flags for the stores.

    dataward audit-policy -f examples/ > dataward-audit-policy.yaml
    dataward audit-policy -f examples/ --flags      # only the kube-apiserver flags

Reads the same inputs as `dataward check` (and refuses inputs it would refuse). Prints an
`audit.k8s.io/v1` Policy that records every get, list, watch, patch, delete and
deletecollection (each can answer with the Secret's data) of each store's key ring and
credentials Secrets at Metadata level (never the Secrets' data), headed by the kube-apiserver
flags that keep those records at least the longest `accessLogRetention` of the policies.
In an existing audit policy, put these rules first: the first matching rule wins, and a
rule that logs Secrets at Request level must never be reached for them.

Exit status: 0 rendered, 1 problems in the inputs (or no PrivacyPolicy among them), 2 an
input does not exist.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataward.commands.check import POLICY_KIND, STORE_KIND, check_documents, read_paths
from dataward.model.policy import Policy, parse_policy
from dataward.model.store import Store, parse_store
from dataward.render.audit_policy import (
    DEFAULT_LOG_PATH,
    DEFAULT_POLICY_FILE,
    audit_flags,
    audit_retention,
    render_audit_policy,
)
from dataward.validation import apply_defaults


def register(subparsers: Any) -> None:
    """Add `audit-policy` to the command line."""
    parser = subparsers.add_parser(
        "audit-policy",
        help="render the API audit policy and flags that record reads of the stores' Secrets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--filename", action="append", required=True, metavar="DIR|FILE",
        help="policies and stores: a YAML file, or a directory searched recursively; repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--policy-file", default=DEFAULT_POLICY_FILE, metavar="PATH",
        help="where the API server will read the policy (for the flag)",
    )  # fmt: skip
    parser.add_argument(
        "--log-path", default=DEFAULT_LOG_PATH, metavar="PATH",
        help="where the API server writes the audit log (for the flag)",
    )  # fmt: skip
    parser.add_argument(
        "--secret", action="append", default=[], metavar="NAMESPACE/NAME",
        help="another Secret whose reads to record, e.g. the evidence signing key; repeatable",
    )  # fmt: skip
    parser.add_argument("--flags", action="store_true", help="print only the flags")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render from the inputs; see the module docstring for the exit status."""
    return render(args, sys.stdout, sys.stderr)


def render(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write the policy (or the flags) to `out`, problems to `err`; return the exit status."""
    missing = [name for name in args.filename if not Path(name).exists()]
    for name in missing:
        print(f"dataward audit-policy: {name}: no such file or directory", file=err)
    if missing:
        return 2
    extra: list[tuple[str, str]] = []
    for text in args.secret:
        namespace, _, name = text.partition("/")
        if not namespace or not name or "/" in name:
            print(f"dataward audit-policy: --secret {text!r}: write NAMESPACE/NAME", file=err)
            return 1
        extra.append((namespace, name))
    _, documents, problems = read_paths([Path(name) for name in args.filename])
    found, _ = check_documents(documents)
    if problems or found:
        for problem in problems + found:
            print(problem, file=err)
        print("dataward audit-policy: fix these first (see `dataward check`)", file=err)
        return 1
    policies: list[Policy] = []
    stores: list[Store] = []
    for document in documents:
        if document.kind == POLICY_KIND:
            policies.append(parse_policy(apply_defaults(document.obj, POLICY_KIND)))
        elif document.kind == STORE_KIND:
            stores.append(parse_store(apply_defaults(document.obj, STORE_KIND)))
    retention = audit_retention(policies)
    if retention is None:
        print(
            "dataward audit-policy: no PrivacyPolicy among the inputs: its accessLogRetention "
            "decides how long the audit log is kept; add its file with -f",
            file=err,
        )
        return 1
    flags = audit_flags(retention, policy_file=args.policy_file, log_path=args.log_path)
    if args.flags:
        print("\n".join(flags), file=out)
        return 0
    if not stores:
        print("dataward audit-policy: note: no PersonalDataStore among the inputs", file=err)
    header = [
        "# Rendered by `dataward audit-policy`: records every read of the stores' key rings",
        "# and credentials Secrets at Metadata level. In an existing policy, put these rules",
        "# first. kube-apiserver flags that keep the records at least "
        f"{retention.duration} ({retention.days} days),",
        f"# the accessLogRetention of PrivacyPolicy {retention.policy}:",
        *(f"#   {flag}" for flag in flags),
    ]
    print("\n".join(header), file=out)
    out.write(yaml.safe_dump(render_audit_policy(stores, extra), sort_keys=False))
    return 0
