"""Subcommands of `dataward`: each module has `register(subparsers)` and a `run(args) -> int`."""
