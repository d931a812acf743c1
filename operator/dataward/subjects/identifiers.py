"""A data subject's identifiers: kind -> value, read from a directory (a mounted Secret).

Each file's name is the identifier's kind (`email`, `phone`, `customer-id`: a DNS label, the
same word as a store's `records[].subjectColumns[].kind`) and its content the value. The
values are personal data: they never appear in a repr, a log line, an exception message or a
result. Errors name the kind or the file, never the value.

A mounted Secret also holds Kubernetes' own entries (`..data`, `..2026_12_01...`): names that
start with a dot are not identifiers and are skipped. One trailing line break is removed (what
`echo` adds); anything else is part of the identifier (spaces, a second line break, a BOM:
matching is exact, so such a value finds nothing). An empty or blank value, or one with a NUL
character, is refused: it would either match every row with an empty or blank column (a
placeholder many people share) or no database could compare it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from dataward.purge.errors import PurgeError

KIND = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_VALUE_BYTES = 4096


class Identifiers(Mapping[str, str]):
    """The subject's identifiers by kind; shows its kinds but never its values."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, kind: str) -> str:
        return self._values[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Identifiers(kinds={sorted(self._values)})"

    __str__ = __repr__

    @property
    def kinds(self) -> frozenset[str]:
        """The kinds supplied."""
        return frozenset(self._values)


def check_value(kind: str, value: str) -> str:
    """`value` if it can be an identifier; the error names the kind only."""
    if not value:
        raise PurgeError("Configuration", f"the {kind} identifier is empty")
    if not value.strip():
        raise PurgeError("Configuration", f"the {kind} identifier is blank (only white space)")
    if "\x00" in value:
        raise PurgeError("Configuration", f"the {kind} identifier contains a NUL character")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise PurgeError(
            "Configuration", f"the {kind} identifier is longer than {MAX_VALUE_BYTES} bytes"
        )
    return value


def parse_identifiers(values: Mapping[str, str]) -> Identifiers:
    """Check kinds and values given as a mapping (the files' contents)."""
    checked: dict[str, str] = {}
    for kind, value in values.items():
        if not KIND.match(kind):
            raise PurgeError(
                "Configuration",
                f"identifier kind {kind!r} is not a lowercase word of letters, digits and '-'",
            )
        checked[kind] = check_value(kind, value)
    if not checked:
        raise PurgeError("Configuration", "no identifier was given for the data subject")
    return Identifiers(checked)


def load_identifiers(directory: Path) -> Identifiers:
    """Read every identifier file of `directory` (file name = kind)."""
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        raise PurgeError(
            "Configuration", f"cannot read the identifier directory {str(directory)!r}"
        ) from None
    values: dict[str, str] = {}
    for entry in entries:
        if entry.name.startswith("."):
            continue  # a Secret volume's own bookkeeping (..data and its timestamped target)
        try:
            if not entry.is_file():
                continue
            raw = entry.read_bytes()
        except OSError:
            raise PurgeError(
                "Configuration", f"cannot read identifier file {entry.name!r}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PurgeError(
                "Configuration", f"identifier file {entry.name!r} is not UTF-8 text"
            ) from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        values[entry.name] = text
    return parse_identifiers(values)
