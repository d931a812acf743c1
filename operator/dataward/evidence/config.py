"""Where the evidence log lives and how to log in: one database, configured once.

The database is a URL without credentials, `postgresql://HOST[:PORT]/NAME?tls=MODE` or
`mysql://HOST[:PORT]/NAME?tls=MODE` (MariaDB too; `tls` is disable, require or verify-full,
default require). The login comes from `DATAWARD_EVIDENCE_USERNAME` and
`DATAWARD_EVIDENCE_PASSWORD`, or from a directory holding `username` and `password` files (a
mounted Secret), never from the command line. The operator's signing key is a PEM file,
normally a mounted Secret (`DATAWARD_EVIDENCE_SIGNING_KEY`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import parse_qsl, urlsplit

from dataward.evidence.errors import EvidenceError
from dataward.model.store import Database, Engine, TLSMode
from dataward.purge.credentials import Credentials

DATABASE_ENV = "DATAWARD_EVIDENCE_DATABASE"
USERNAME_ENV = "DATAWARD_EVIDENCE_USERNAME"
PASSWORD_ENV = "DATAWARD_EVIDENCE_PASSWORD"  # noqa: S105 - the variable's name, not a password
CREDENTIALS_DIR_ENV = "DATAWARD_EVIDENCE_CREDENTIALS_DIR"
SIGNING_KEY_ENV = "DATAWARD_EVIDENCE_SIGNING_KEY"

_SCHEMES: dict[str, Engine] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
}
_DEFAULT_PORTS: dict[Engine, int] = {"postgresql": 5432, "mysql": 3306}
_TLS_MODES = ("disable", "require", "verify-full")


def parse_database_url(url: str) -> Database:
    """The evidence database named by `url`; EvidenceError saying what to write otherwise."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket; the URL may hold a login: not quoted
        raise EvidenceError(
            "the evidence database URL is not a URL: write postgresql://HOST[:PORT]/NAME or "
            "mysql://HOST[:PORT]/NAME"
        ) from None
    # First, before any message quotes the URL: one holding a login holds a password.
    if parts.username or parts.password or "@" in parts.netloc:
        raise EvidenceError(
            "the evidence database URL must not hold a login: use "
            f"{USERNAME_ENV}/{PASSWORD_ENV} or a credentials directory"
        )
    # Likewise the query and fragment (libpq's URIs take `?password=`): never quoted, and
    # nothing but `tls` is taken from them, so a login there is refused rather than ignored.
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.fragment or any(key != "tls" for key, _ in query):
        raise EvidenceError(
            "the evidence database URL takes no query parameter but tls=MODE and no fragment "
            f"(a login goes in {USERNAME_ENV}/{PASSWORD_ENV} or a credentials directory)"
        )
    shown = repr(f"{parts.scheme}://{parts.netloc}{parts.path}")
    engine = _SCHEMES.get(parts.scheme)
    if engine is None:
        raise EvidenceError(
            f"evidence database {shown}: write postgresql://HOST[:PORT]/NAME or "
            "mysql://HOST[:PORT]/NAME"
        )
    name = parts.path.lstrip("/")
    if not parts.hostname or not name or "/" in name:
        raise EvidenceError(f"evidence database {shown} needs a host and a database name")
    try:
        port = parts.port or _DEFAULT_PORTS[engine]
    except ValueError:
        raise EvidenceError(f"evidence database {shown} has an invalid port") from None
    tls = ([value for _, value in query] or ["require"])[-1]
    if tls not in _TLS_MODES:
        raise EvidenceError(f"tls={tls!r}: write one of {', '.join(_TLS_MODES)}")
    return Database(engine, parts.hostname, port, name, "evidence", cast(TLSMode, tls))


def load_credentials(environ: Mapping[str, str], directory: Path | None = None) -> Credentials:
    """The evidence login from `directory` if given, else from the environment."""
    if directory is not None:
        try:
            username = (directory / "username").read_text().strip()
            password = (directory / "password").read_text().rstrip("\n")
        except OSError:
            raise EvidenceError(
                f"the evidence credentials directory {str(directory)!r} must hold files "
                "'username' and 'password'"
            ) from None
        return Credentials(username, password)
    env_username, env_password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if not env_username or env_password is None:
        raise EvidenceError(
            f"no evidence database login: set {USERNAME_ENV} and {PASSWORD_ENV}, or give a "
            "credentials directory"
        )
    return Credentials(env_username, env_password)


@dataclass(frozen=True)
class EvidenceSettings:
    """Everything the operator needs to open its evidence log."""

    database: Database
    credentials: Credentials
    signing_key: Path


def settings_from_environ(environ: Mapping[str, str]) -> EvidenceSettings | None:
    """The evidence settings in the environment; None when no evidence database is set."""
    url = environ.get(DATABASE_ENV)
    if not url:
        return None
    key = environ.get(SIGNING_KEY_ENV)
    if not key:
        raise EvidenceError(f"{DATABASE_ENV} is set but {SIGNING_KEY_ENV} (the key file) is not")
    directory = environ.get(CREDENTIALS_DIR_ENV)
    return EvidenceSettings(
        parse_database_url(url),
        load_credentials(environ, Path(directory) if directory else None),
        Path(key),
    )
