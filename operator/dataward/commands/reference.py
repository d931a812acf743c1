"""`dataward reference conditions`: the reference of every condition type and reason.

Printed from the catalogue in `dataward.checks.reasons`, the text of docs/conditions.md:
`dataward reference conditions > docs/conditions.md` regenerates it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dataward.checks.reasons import render_markdown

TOPICS = {"conditions": render_markdown}


def register(subparsers: Any) -> None:
    """Add `reference` to the command line."""
    parser = subparsers.add_parser(
        "reference",
        help="print a reference generated from the code (conditions: every reason)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("topic", choices=sorted(TOPICS), help="what to print")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the reference as Markdown."""
    sys.stdout.write(TOPICS[args.topic]())
    return 0
