"""Database logins for the purge job, read from the environment or a mounted Secret directory.

The CronJob passes them as env vars from `secretKeyRef` (`DATAWARD_DB_USERNAME`,
`DATAWARD_DB_PASSWORD`, `DATAWARD_ARCHIVE_USERNAME`, `DATAWARD_ARCHIVE_PASSWORD`); a directory
holding `username` and `password` files (a mounted Secret) works too. Never on the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dataward.purge.errors import PurgeError

Which = Literal["DB", "ARCHIVE"]


@dataclass(frozen=True)
class Credentials:
    """A user name and password; the password never appears in repr or output."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Timeouts:
    """Per-session limits that keep a batch from blocking the application for long (seconds)."""

    statement: float = 30.0
    # How long a batch waits for a row lock an application holds before those rows are left
    # for the next run. MySQL counts whole seconds: under 1 s it does not wait at all.
    lock: float = 0.1
    connect: int = 10


def load_credentials(
    which: Which, environ: Mapping[str, str], directory: Path | None = None
) -> Credentials:
    """Credentials from `directory` if given, else from `DATAWARD_<which>_USERNAME/PASSWORD`."""
    label = "archive" if which == "ARCHIVE" else "database"
    if directory is not None:
        try:
            username = (directory / "username").read_text().strip()
            password = (directory / "password").read_text().rstrip("\n")
        except OSError:
            raise PurgeError(
                "Configuration",
                f"the {label} credentials directory {str(directory)!r} must hold files "
                "'username' and 'password'",
            ) from None
        return Credentials(username, password)
    env_username = environ.get(f"DATAWARD_{which}_USERNAME")
    env_password = environ.get(f"DATAWARD_{which}_PASSWORD")
    if not env_username or env_password is None:
        raise PurgeError(
            "Configuration",
            f"no {label} credentials: set DATAWARD_{which}_USERNAME and "
            f"DATAWARD_{which}_PASSWORD (the CronJob takes them from the credentials Secret)",
        )
    return Credentials(env_username, env_password)
