"""The test clock: an e2e test moves the operator's time by rewriting one file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dataward.controller.clock import (
    clock_from_environ,
    offset_reference,
    skew_reference_from_environ,
    system_clock,
)


def test_without_the_hook_the_clock_is_the_system_clock() -> None:
    assert clock_from_environ({}) is system_clock
    assert abs((system_clock() - datetime.now(UTC)).total_seconds()) < 5


def test_the_file_is_read_again_at_every_reading(tmp_path: Path) -> None:
    path = tmp_path / "now"
    path.write_text("2026-03-31T12:00:00Z\n")
    clock = clock_from_environ({"DATAWARD_TEST_CLOCK_FILE": str(path)})
    assert clock() == datetime(2026, 3, 31, 12, tzinfo=UTC)
    path.write_text("2026-05-01T09:30:00+09:00")
    assert clock() == datetime(2026, 5, 1, 0, 30, tzinfo=UTC)


def test_an_instant_without_a_zone_is_refused_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "now"
    path.write_text("2026-03-31T12:00:00")
    with pytest.raises(ValueError, match="time zone"):
        clock_from_environ({"DATAWARD_TEST_CLOCK_FILE": str(path)})()


def test_the_skew_reference_of_a_test_clock_applies_its_offset(tmp_path: Path) -> None:
    """The test clock is months off the real one; the API server's time, moved by that
    offset, is compared and decided on the test clock's scale."""
    path = tmp_path / "now"
    path.write_text("2026-01-31T00:00:05Z")
    reference = skew_reference_from_environ({"DATAWARD_TEST_CLOCK_FILE": str(path)})
    server = datetime.now(UTC)  # an API server in step with the real clock
    moved = reference(server)
    assert abs((moved - datetime(2026, 1, 31, 0, 0, 5, tzinfo=UTC)).total_seconds()) < 5


def test_the_skew_reference_of_the_real_clock_is_the_servers_time() -> None:
    at = datetime(2026, 1, 31, tzinfo=UTC)
    assert skew_reference_from_environ({})(at) == at
    assert offset_reference(lambda: at, lambda: at)(at) == at
