"""The evidence database URL, login and settings: one place, never a password in argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataward.evidence.config import load_credentials, parse_database_url, settings_from_environ
from dataward.evidence.errors import EvidenceError


def test_urls_name_engine_host_port_database_and_tls() -> None:
    pg = parse_database_url("postgresql://ev.compliance.svc/evidence")
    assert (pg.engine, pg.host, pg.port, pg.name, pg.tls) == (
        "postgresql", "ev.compliance.svc", 5432, "evidence", "require",
    )  # fmt: skip
    my = parse_database_url("mariadb://10.0.0.7:3307/ev?tls=verify-full")
    assert (my.engine, my.port, my.tls) == ("mysql", 3307, "verify-full")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://user:pw@host/db", "must not hold a login"),
        ("sqlite:///x.db", "write postgresql://"),
        ("postgresql://host/", "needs a host and a database name"),
        ("postgresql://host/db?tls=maybe", "tls='maybe'"),
        ("mysql://host:notaport/db", "invalid port"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, words: str) -> None:
    with pytest.raises(EvidenceError, match=words):
        parse_database_url(url)


def test_the_login_comes_from_a_directory_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "username").write_text("writer\n")
    (tmp_path / "password").write_text("s3cret\n")
    from_dir = load_credentials({}, tmp_path)
    assert (from_dir.username, from_dir.password) == ("writer", "s3cret")
    assert "s3cret" not in repr(from_dir)
    env = {"DATAWARD_EVIDENCE_USERNAME": "w", "DATAWARD_EVIDENCE_PASSWORD": "p"}
    assert load_credentials(env).username == "w"
    with pytest.raises(EvidenceError, match="DATAWARD_EVIDENCE_USERNAME"):
        load_credentials({})
    with pytest.raises(EvidenceError, match="must hold files"):
        load_credentials({}, tmp_path / "absent")


def test_settings_from_the_environment() -> None:
    assert settings_from_environ({}) is None
    env = {"DATAWARD_EVIDENCE_DATABASE": "mysql://db/ev", "DATAWARD_EVIDENCE_USERNAME": "w",
           "DATAWARD_EVIDENCE_PASSWORD": "p"}  # fmt: skip
    with pytest.raises(EvidenceError, match="DATAWARD_EVIDENCE_SIGNING_KEY"):
        settings_from_environ(env)
    settings = settings_from_environ({**env, "DATAWARD_EVIDENCE_SIGNING_KEY": "/k/key"})
    assert settings is not None and settings.signing_key == Path("/k/key")
    assert settings.database.engine == "mysql"


def test_a_url_with_a_login_never_reaches_a_message_whatever_else_is_wrong() -> None:
    for url in ("mysqlx://admin:s3cret-pw@db/evidence", "postgresql://admin:s3cret-pw@/x/y"):
        with pytest.raises(EvidenceError) as raised:
            parse_database_url(url)
        assert "s3cret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresq://db/evidence?password=s3cret-pw",  # a typo in the scheme
        "postgresql://db?password=s3cret-pw",  # no database name
        "postgresql://db:99999/evidence?password=s3cret-pw",  # a bad port
        "postgresql://db/evidence?tls=disable&password=s3cret-pw",  # otherwise valid
        "mysql://db/evidence?tls=disable&sslpassword=s3cret-pw",
        "postgresql://db/evidence#s3cret-pw",
    ],
)
def test_a_password_in_the_query_is_refused_and_never_quoted(url: str) -> None:
    # libpq's URIs take `?password=`: a login written that way is refused like one before `@`
    # (never ignored: the operator would then connect with another login), and never echoed.
    with pytest.raises(EvidenceError) as raised:
        parse_database_url(url)
    assert "s3cret-pw" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["postgresql://[::1/evidence", "postgresql://admin:s3cret-pw@[db/evidence"]
)
def test_a_url_python_cannot_split_is_an_evidence_error_not_a_traceback(url: str) -> None:
    # An unclosed IPv6 bracket: urlsplit raises ValueError, which `dataward evidence verify`
    # and `dataward report` let out as a traceback (exit 1, not 2) before the login check.
    with pytest.raises(EvidenceError, match="not a URL") as raised:
        parse_database_url(url)
    assert "s3cret-pw" not in str(raised.value)
