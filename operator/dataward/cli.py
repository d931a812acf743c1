"""The `dataward` command: one subcommand per module in `dataward.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dataward.version import version

# Each module defines `register(subparsers)`, which adds its parser and sets `func`.
COMMANDS = (
    "check", "explain_policy", "render", "purge", "run", "evidence", "audit_policy", "reference",
    "report", "subject_request",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is importable."""
    parser = argparse.ArgumentParser(
        prog="dataward",
        description="Turn a privacy policy into controls a Kubernetes cluster enforces.",
    )
    parser.add_argument("--version", action="version", version=f"dataward {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"dataward.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"dataward.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
