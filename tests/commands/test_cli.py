"""`dataward COMMAND ...` builds the parser of that command alone (issue 11: importing every
command's module took half a second of each operator start); it must parse as before."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dataward.cli import COMMANDS, build_parser, main


def _help(parser: object, command: str) -> str:
    subparsers = next(a for a in parser._actions if a.dest == "command")  # type: ignore[attr-defined]
    return str(subparsers.choices[command].format_help())


@pytest.mark.parametrize("name", COMMANDS)
def test_a_command_alone_parses_as_with_every_command_loaded(name: str) -> None:
    command = name.replace("_", "-")
    assert _help(build_parser(name), command) == _help(build_parser(), command)


def test_options_before_the_command_and_unknown_commands_still_get_the_whole_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0
    with pytest.raises(SystemExit) as unknown:
        main(["no-such-command"])
    assert unknown.value.code == 2
    assert "render" in capsys.readouterr().err  # the choices it lists: every command


# A command whose work fails with an error nothing catches, in its own thread or another.
# Python's own hooks print the error's message, and messages quote values (a key, a row).
_UNCAUGHT = """
import argparse, sys, threading
import dataward.cli as cli

CARD = "-".join(["4111"] * 4)  # built, so no source line a traceback shows holds it


def parse_card(args):
    raise ValueError(f"card {CARD}")


def parse_card_in_a_thread(args):
    worker = threading.Thread(target=parse_card, args=(args,))
    worker.start()
    worker.join()
    return 0


class Parser:
    def parse_args(self, words):
        func = parse_card if words == ["main"] else parse_card_in_a_thread
        return argparse.Namespace(func=func)


cli.build_parser = lambda only=None: Parser()
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize(("where", "status"), [("main", 1), ("thread", 0)])
def test_an_error_nothing_caught_is_printed_without_its_text(where: str, status: int) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    ran = subprocess.run(
        [sys.executable, "-c", _UNCAUGHT, where], capture_output=True, text=True, env=env,
        timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == status, ran.stderr
    assert "4111" not in ran.stdout + ran.stderr, ran.stderr
    assert "ValueError (message withheld)" in ran.stderr and "parse_card" in ran.stderr


BASE_ARGS = {"purge": [], "preview": ["--database-url", "postgresql://h/d"]}


@pytest.mark.parametrize("command", ["purge", "preview"])
@pytest.mark.parametrize(
    "option",
    [
        ("--large-purge-fraction", "nan"),  # every comparison false: no cut is ever held
        ("--large-purge-fraction", "inf"),
        ("--large-purge-fraction", "-0.5"),  # every cut of more than N rows is held
        ("--large-purge-fraction", "1.5"),
        ("--large-purge-rows", "-5"),
        ("--statement-timeout", "nan"),
        ("--statement-timeout", "-1"),
        ("--statement-timeout", "inf"),
    ],
)
def test_a_number_outside_its_range_is_refused_by_the_parser(
    command: str, option: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The large-cut gate read a NaN fraction as "never large" and said nothing: a gate the
    purge (and its preview) must not lose to a typo."""
    base = [command, "-f", "store.yaml"]
    assert build_parser(command).parse_args(base + BASE_ARGS[command]).command == command
    with pytest.raises(SystemExit) as raised:
        build_parser(command).parse_args(base + BASE_ARGS[command] + list(option))
    assert raised.value.code == 2
    assert option[0] in capsys.readouterr().err
