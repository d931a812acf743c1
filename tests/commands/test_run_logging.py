"""The operator's log lines: a logged exception shows its class and frames, never its text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest

from dataward.commands.run import JsonFormatter, log_formatter

MATERIAL = "q0lXkT1r0f6k3y-M4t3r14l"


def _parse_material(text: str) -> int:
    return int(text)  # ValueError: invalid literal for int() with base 10: '<text>'


def _reconcile() -> None:
    try:
        _parse_material(MATERIAL)
    except ValueError as error:
        raise RuntimeError(f"ring field holds {MATERIAL!r}") from error


def _logged(
    formatter: logging.Formatter,
    fails: Callable[[], None] = lambda: _reconcile(),
    caught: type[Exception] = RuntimeError,
) -> str:
    """What the operator's log says of the error `fails` raises (of type `caught`)."""
    # Named without digits: an object's id could hold the digits the tests look for.
    log = logging.getLogger(f"dataward.test.{caught.__name__}")
    log.propagate = False
    return _logged_to(log, formatter, fails, caught)


def _logged_to(
    log: logging.Logger,
    formatter: logging.Formatter,
    fails: Callable[[], None] = lambda: _reconcile(),
    caught: type[Exception] = RuntimeError,
) -> str:
    """What `formatter` writes of the error `fails` raises, logged through `log`."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log.addHandler(handler)
    try:
        fails()
    except caught:
        log.exception("reconcile crm/st failed (will retry)")
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize(
    "formatter", [JsonFormatter(), log_formatter("json"), log_formatter("text")]
)
def test_a_logged_exception_keeps_classes_and_frames_but_not_its_text(
    formatter: logging.Formatter,
) -> None:
    text = _logged(formatter)
    assert MATERIAL not in text and "M4t3r14l" not in text, text
    assert "reconcile crm/st failed (will retry)" in text
    # Enough to find the fault: both errors of the chain, the functions they went through.
    assert "ValueError" in text and "RuntimeError" in text
    assert "_parse_material" in text and "_reconcile" in text
    if isinstance(formatter, JsonFormatter):
        assert "RuntimeError" in json.loads(text)["exception"]


def test_an_api_error_keeps_its_status_and_reason() -> None:
    """KubeError's text is built from the request, status and reason alone: a person reading
    the log needs "HTTP 403 Forbidden", and withholding it would hide why a reconcile failed."""
    from dataward.controller.kube import KubeError
    from dataward.redact import exception_text

    try:
        try:
            _parse_material(MATERIAL)
        except ValueError:
            raise KubeError(403, "Forbidden", "GET secrets crm/ring") from None
    except KubeError as error:
        text = exception_text(error)
    assert "GET secrets crm/ring: HTTP 403 Forbidden" in text
    assert MATERIAL not in text


CARD = "-".join(["4111"] * 4)  # built, so no source line a traceback shows holds it


def _parse_payload() -> None:
    raise ValueError(f"card {CARD}")


def test_an_exception_group_keeps_each_error_class_and_frames_but_no_text() -> None:
    # asyncio.TaskGroup and kopf raise groups: the log kept the group's class alone, so the
    # error that failed the task (and where) was lost, and nothing said why.
    from dataward.redact import exception_text

    try:
        try:
            _parse_payload()
        except ValueError as inner:
            raise ExceptionGroup(f"rows of {CARD}", [inner, KeyError(CARD[::-1])]) from None
    except ExceptionGroup as group:
        text = exception_text(group)
    assert "4111" not in text and "1114" not in text
    assert "ExceptionGroup (message withheld)" in text
    assert "ValueError (message withheld)" in text and "KeyError (message withheld)" in text
    assert "_parse_payload" in text


def _unwrapped() -> None:
    # A group of one, unwrapped: the error raised again while its group is handled has the
    # group as its context, and the group holds it (a loop through the group's errors).
    try:
        raise ExceptionGroup("one", [ValueError(f"card {CARD}")])
    except ExceptionGroup as group:
        raise group.exceptions[0]  # noqa: B904


@pytest.mark.parametrize("formatter", [log_formatter("json"), log_formatter("text")])
def test_an_error_unwrapped_from_its_group_is_logged_once_without_its_text(
    formatter: logging.Formatter, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _logged(formatter, _unwrapped, ValueError)
    stderr = capsys.readouterr().err
    # Logging's own error report (a formatter that failed) prints the error being handled.
    assert "4111" not in text + stderr, stderr[-400:]
    assert "reconcile crm/st failed (will retry)" in text
    assert "ValueError (message withheld)" in text and "_unwrapped" in text


@pytest.mark.parametrize("formatter", [log_formatter("json"), log_formatter("text")])
def test_a_record_another_handler_formatted_first_still_loses_its_text(
    formatter: logging.Formatter,
) -> None:
    # logging.Formatter caches the traceback on the record (record.exc_text). A handler with
    # a plain formatter that ran first (a library's, a root handler's) left the message
    # there, and the text formatter printed that cache instead of redacting.
    plain = logging.StreamHandler(io.StringIO())
    plain.setFormatter(logging.Formatter())
    log = logging.getLogger("dataward.test.plain-first")
    log.propagate = False
    log.addHandler(plain)
    try:
        text = _logged_to(log, formatter)
    finally:
        log.removeHandler(plain)
    assert MATERIAL not in text and "M4t3r14l" not in text, text
    assert "RuntimeError (message withheld)" in text and "_reconcile" in text
