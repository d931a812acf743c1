"""`dataward evidence` without a database: keygen, and verify's refusals (exit status 2)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dataward.cli import main
from dataward.evidence.signing import key_id, load_private_key, load_public_key


def test_keygen_writes_a_private_key_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evidence", "keygen", "--out", str(tmp_path / "k")]) == 0
    private, public = (
        tmp_path / "k" / "evidence-signing.key",
        tmp_path / "k" / "evidence-signing.pub",
    )
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key, pub = load_private_key(private), load_public_key(public)
    assert key_id(key.public_key()) == key_id(pub)
    assert key_id(pub) in capsys.readouterr().out


def test_keygen_never_replaces_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evidence", "keygen", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "evidence-signing.key").read_bytes()
    assert main(["evidence", "keygen", "--out", str(tmp_path)]) == 1
    assert (tmp_path / "evidence-signing.key").read_bytes() == before
    assert "not replaced" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--database", "postgresql://u:p@h/db"], "must not hold a login"),
        (["--expect-head", "7:abc"], "write SEQ:HASH"),
        (["--public-key", "/no/such.pub"], "cannot read the public key"),
    ],
)
def test_verify_refuses_what_it_cannot_use(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    words: str,
) -> None:
    monkeypatch.setenv("DATAWARD_EVIDENCE_USERNAME", "u")
    monkeypatch.setenv("DATAWARD_EVIDENCE_PASSWORD", "p")
    assert main(["evidence", "keygen", "--out", str(tmp_path)]) == 0
    args = ["--database", "postgresql://127.0.0.1:1/db?tls=disable",
            "--public-key", str(tmp_path / "evidence-signing.pub")]  # fmt: skip
    for index in range(0, len(extra), 2):
        flag = extra[index]
        if flag in args and flag != "--expect-head":
            args[args.index(flag) + 1] = extra[index + 1]
        else:
            args += extra[index : index + 2]
    capsys.readouterr()
    assert main(["evidence", "verify", *args]) == 2
    assert words in capsys.readouterr().err
