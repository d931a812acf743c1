"""The operator's clock: what "now" is for every decision the reconciler makes.

Production uses the system clock. Tests move time without sleeping: unit tests pass a
function, and e2e tests start the operator with DATAWARD_TEST_CLOCK_FILE naming a file that
holds an RFC 3339 instant; each reading of the clock reads the file again, so a test moves
the operator's "now" by rewriting it. The hook is for tests only and is not in `--help`: a
clock that jumps is a clock that lies, and whoever can set the operator's environment could
already do worse.

A destructive decision (crypto-shredding) is timed by the API server's clock, read from the
`Date` header of the request that re-reads the store, and refused when the operator's clock
and the server's differ by more than the purge's bound: `SkewReference` maps the server's
time onto the operator's clock. Production: the server's time as it is. An operator on the
test clock: the server's time moved by the test clock's offset from the system clock, so the
test's "now" is compared (and decided) against the server as consistently as a real clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], datetime]
# The API server's time, as the operator's clock would read it at that instant.
SkewReference = Callable[[datetime], datetime]

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


def server_reference(server: datetime) -> datetime:
    """Production: the API server's time is the reference as it is."""
    return server


def offset_reference(clock: Clock, real: Clock = system_clock) -> SkewReference:
    """For a test clock: the server's time plus the test clock's offset from the real one."""

    def reference(server: datetime) -> datetime:
        return server + (clock() - real())

    return reference


def skew_reference_from_environ(environ: Mapping[str, str]) -> SkewReference:
    """`server_reference`, or the test clock's `offset_reference` (DATAWARD_TEST_CLOCK_FILE)."""
    path = environ.get(TEST_CLOCK_ENV, "")
    return offset_reference(file_clock(Path(path))) if path else server_reference
