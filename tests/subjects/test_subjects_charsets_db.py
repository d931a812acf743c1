"""A MySQL character set that holds the subject's identifier must be searched, on MariaDB 10.11.

`charset_holds` decides, in Python, that a column cannot hold an identifier and then matches
nothing there (the server would refuse the comparison). Where it says "cannot" of a character
the server's character set does hold, the subject's row is silently missed: left out of the
export, and an erasure "Succeeded" leaving it in place. So every character the server holds
must be held by `charset_holds` too (saying "can" of one the server cannot hold only fails the
request, loudly, as before).
"""

from __future__ import annotations

import pytest

from dataward.subjects.engine import charset_holds
from tests.databases import DatabaseServers
from tests.subjects.support import ids
from tests.subjects.test_subjects_matching_db import _answers_row_1_alone, _seed

pytestmark = pytest.mark.db

_CHARSETS = [
    *("ascii", "latin1", "latin2", "latin5", "greek", "hebrew", "cp1250", "cp1251", "cp1256"),
    *("cp1257", "koi8r", "koi8u", "euckr", "sjis", "cp932", "ujis", "gbk", "gb2312", "big5"),
    *("utf8mb3", "ucs2"),
]


@pytest.mark.parametrize("charset", _CHARSETS)
def test_every_character_the_server_holds_is_held(servers: DatabaseServers, charset: str) -> None:
    db = servers.mysql_live
    chars = [c for c in map(chr, range(0x20, 0x10000)) if not 0xD800 <= ord(c) < 0xE000]
    chars.remove("?")  # what the server writes for a character it cannot hold
    missed = []
    for i in range(0, len(chars), 4000):
        chunk = "".join(chars[i : i + 4000])
        ((back,),) = db.query(
            f"SELECT CONVERT(CONVERT(CONVERT(%s USING utf8mb4) USING {charset}) USING utf8mb4)",
            (chunk,),
        )
        assert len(back) == len(chunk)
        missed += [a for a, b in zip(chunk, back, strict=True) if a == b]
    missed = [c for c in missed if not charset_holds(charset, c)]
    assert not missed, f"{len(missed)}: {''.join(missed[:40])}"


def test_a_big5_name_is_found_and_erased(servers: DatabaseServers) -> None:
    """恒 (a common given name in Chinese) is in MariaDB's big5, not in Python's big5 codec."""
    live = servers.mysql_live
    doc, people, _notes = _seed(live, "varchar(200)", [])
    name = "陳恒@example.com"
    live.execute(
        f"DELETE FROM {people}",
        f"ALTER TABLE {people} MODIFY email varchar(200) CHARACTER SET big5",
        f"INSERT INTO {people} (id, email) VALUES (1, '{name}'), (2, '陳@example.com')",
    )
    _answers_row_1_alone(doc, live, name)
    assert ids(live, people) == {2}
