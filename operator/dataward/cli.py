"""The `dataward` command: one subcommand per module in `dataward.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from collections.abc import Sequence

from dataward.version import version

# Each module defines `register(subparsers)`, which adds its parser and sets `func`.
COMMANDS = (
    "check", "explain_policy", "render", "purge", "run", "evidence", "audit_policy", "reference",
    "report", "subject_request", "preview",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand that is importable (`only`: with that one
    alone, whose module is then the only one imported)."""
    parser = argparse.ArgumentParser(
        prog="dataward",
        description="Turn a privacy policy into controls a Kubernetes cluster enforces.",
    )
    parser.add_argument("--version", action="version", version=f"dataward {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only else COMMANDS:
        try:
            module = importlib.import_module(f"dataward.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"dataward.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Only the command's own module is imported when the command is named first (as it is
    always but with options before it): importing every command's took about half a second
    of each `dataward run` start (the checks' schema and CEL libraries), issue 11's restart.
    """
    print_uncaught_errors_redacted()
    words = list(sys.argv[1:] if argv is None else argv)
    named = words[0].replace("-", "_") if words else ""
    parser = build_parser(named if named in COMMANDS else None)
    args = parser.parse_args(words)
    status: int = args.func(args)
    return status


def print_uncaught_errors_redacted() -> None:
    """Print an error nothing caught (in any thread, or an unraisable one) as the log does:
    its classes and frames, never its text (`redact.exception_text`). Python's own hooks
    print the message, and messages quote values: a key, a row of a purged table."""

    def write(what: str, error: BaseException | None) -> None:
        if error is None:
            sys.stderr.write(f"{what} (no error object)\n")
            return
        from dataward.redact import exception_text  # only when something failed

        sys.stderr.write(f"{what}:\n{exception_text(error)}\n")
        sys.stderr.flush()

    def in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is not SystemExit:  # as Python's own hook: a thread's exit is quiet
            name = args.thread.name if args.thread is not None else "a thread"
            write(f"uncaught error in thread {name}", args.exc_value)

    sys.excepthook = lambda kind, error, traceback: write("uncaught error", error)
    threading.excepthook = in_thread
    # Its `object` is left out too: a repr can quote the values it holds.
    sys.unraisablehook = lambda args: write("unraisable error", args.exc_value)


if __name__ == "__main__":
    sys.exit(main())
