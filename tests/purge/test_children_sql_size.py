"""The children's rule in a zone with many clock changes stays a statement of linear size.

A birth instant's day (`birth_offsets`) feeds the day the subject turns 14, and that day is
looked up in `birthday_shifts`: written as nested CASEs, the first CASE was repeated in every
branch of the second, so America/New_York's rule was 2.8 MB of SQL per use (several uses per
statement), near MariaDB's max_allowed_packet on its own and tens of thousands of comparisons
per row. Each lookup now names its day once.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from dataward.model.wallclock import birth_offsets, birthday_shifts
from dataward.purge.sql import MYSQL, POSTGRES, ChildRule, Dialect


@pytest.mark.parametrize("dialect", [POSTGRES, MYSQL], ids=["postgresql", "mysql"])
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "America/St_Johns"])
def test_the_rule_is_linear_in_the_zones_changes(dialect: Dialect, zone: str) -> None:
    last = date(2026, 12, 6)
    shifts = birthday_shifts(ZoneInfo(zone), last, False)
    offsets = birth_offsets(ZoneInfo(zone), last)
    assert len(shifts) > 200 and len(offsets) > 200  # a zone with many changes
    rule = ChildRule(
        age=14,
        consent="consent",
        consent_is_flag=True,
        birth_date="born",
        collected_kind="instant",
        birth_kind="instant",
        shifts=shifts,
        birth_offsets=offsets,
    )
    sql = rule.sql(dialect, "collected")
    # Each piece costs a date and a number (some 40 bytes): well under 64 KB for ~440 pieces.
    assert len(sql) < 64_000, len(sql)
    # The birth column is named a fixed number of times, not once per piece (4, and the
    # guard that it names a day: `Dialect.an_instant`, once or twice).
    assert sql.count(dialect.quote("born")) <= 6
