"""`dataward explain-policy`: a PrivacyPolicy as a table a privacy officer can read.

One row per category: its name, the purposes it serves, how long records may stay in the live
database after their trigger event, and what the law requires to be kept longer (period and
statute) in a separate archive.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from dataward.model.durations import Duration
from dataward.model.errors import ModelError
from dataward.model.policy import CHILD_AGE, Category, Policy, parse_policy
from dataward.redact import load_all, unreadable, yaml_problem
from dataward.validation import apply_defaults, validate_object

HEADERS = ("CATEGORY", "PURPOSES", "RETENTION (LIVE DATA)", "STATUTORY RETENTION (ARCHIVE)")


def register(subparsers: Any) -> None:
    """Add `explain-policy` to the command line."""
    parser = subparsers.add_parser(
        "explain-policy",
        help="print a PrivacyPolicy's categories as a readable table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-f", "--filename", required=True, help="YAML file with PrivacyPolicy(ies)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print every PrivacyPolicy in the file; exit 2 if none can be read, 1 if one is invalid."""
    try:
        text = Path(args.filename).read_text(encoding="utf-8")
        docs = [d for d in load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        print(f"dataward explain-policy: {yaml_problem(args.filename, error)}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as error:
        print(
            f"dataward explain-policy: {args.filename}: cannot be read: {unreadable(error)}",
            file=sys.stderr,
        )
        return 2
    raw = [d for d in docs if d.get("kind") == "PrivacyPolicy"]
    if not raw:
        print(f"dataward explain-policy: {args.filename} has no PrivacyPolicy", file=sys.stderr)
        return 2
    policies: list[Policy] = []
    for obj in raw:
        errors = validate_object(obj)
        if errors:
            for field_error in errors:
                print(f"dataward explain-policy: {args.filename}: {field_error}", file=sys.stderr)
            print("run `dataward check -f` on the file for details", file=sys.stderr)
            return 1
        try:
            policies.append(parse_policy(apply_defaults(obj, "PrivacyPolicy")))
        except ModelError as error:
            print(f"dataward explain-policy: {args.filename}: {error}", file=sys.stderr)
            return 1
    for index, policy in enumerate(policies):
        if index:
            sys.stdout.write("\n")
        write_policy(policy, sys.stdout)
    return 0


def write_policy(policy: Policy, out: TextIO) -> None:
    """Write a heading for the policy and its categories as an aligned table."""
    effective = f", effective {policy.effective_date.isoformat()}" if policy.effective_date else ""
    out.write(f"PrivacyPolicy {policy.name}{effective}\n")
    out.write(
        f"Encryption keys rotate at least every {policy.key_rotation.describe()}; "
        f"access logs are kept {policy.access_log_retention.describe()}.\n\n"
    )
    out.write(table([category_row(c) for c in policy.categories], HEADERS))
    statutory = sum(1 for c in policy.categories if c.statutory is not None)
    out.write(
        f"\n{len(policy.categories)} categories; {statutory} with a statutory period "
        "(their records move to a separate archive database when the live retention ends, "
        "and are destroyed there when the statutory period ends).\n"
    )
    for category in policy.categories:
        if category.children is not None:
            out.write(
                f"{category.name} may hold data of children under {CHILD_AGE}: a child's "
                "record without the legal representative's consent is kept only for the "
                f"consent process, {category.children.consent_grace.describe()} after "
                "collection, then removed.\n"
            )


def category_row(category: Category) -> tuple[str, str, str, str]:
    """One category as the four cells of the table."""
    statutory = (
        f"{category.statutory.period.describe()} under the {category.statutory.statute}"
        if category.statutory is not None
        else "-"
    )
    return (
        category.name,
        ", ".join(category.purposes),
        describe_retention(category.retention.period, category.retention.trigger),
        statutory,
    )


def describe_retention(period: Duration, trigger: str) -> str:
    """`1 year after inquired`, or `until unsubscribed` for a period of zero."""
    event = trigger.replace("-", " ")
    if period.amount == 0:
        return f"until {event}"
    return f"{period.describe()} after {event}"


def table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> str:
    """Rows as left-aligned columns separated by two spaces (the last column is not padded)."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.append("  ".join([*cells, line[-1]]).rstrip() + "\n")
    return "".join(out)
