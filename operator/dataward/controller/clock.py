"""The operator's clock: what "now" is for every decision the reconciler makes.

Production uses the system clock. Tests move time without sleeping: unit tests pass a
function, and e2e tests start the operator with DATAWARD_TEST_CLOCK_FILE naming a file that
holds an RFC 3339 instant; each reading of the clock reads the file again, so a test moves
the operator's "now" by rewriting it. The hook is for tests only and is not in `--help`: a
clock that jumps is a clock that lies, and whoever can set the operator's environment could
already do worse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], datetime]

TEST_CLOCK_ENV = "DATAWARD_TEST_CLOCK_FILE"


def system_clock() -> datetime:
    """The real time, in UTC."""
    return datetime.now(UTC)


def file_clock(path: Path) -> Clock:
    """A clock whose time is the instant written in `path` (re-read on every call)."""

    def now() -> datetime:
        text = path.read_text().strip()
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError(f"{TEST_CLOCK_ENV}: the instant needs a time zone")
        return instant.astimezone(UTC)

    return now


def clock_from_environ(environ: Mapping[str, str]) -> Clock:
    """The system clock, or the test clock DATAWARD_TEST_CLOCK_FILE names."""
    path = environ.get(TEST_CLOCK_ENV, "")
    return file_clock(Path(path)) if path else system_clock
