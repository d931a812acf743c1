"""`dataward COMMAND ...` builds the parser of that command alone (issue 11: importing every
command's module took half a second of each operator start); it must parse as before."""

from __future__ import annotations

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
