"""The report page: every text from records is escaped, nothing is fetched, the SVG is XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from dataward.report.build import StoreInfo, build_report, parse_quarter
from dataward.report.html import render_html
from tests.report.support import RECORDS, STORES, policy, rec

Q4 = parse_quarter("2026Q4")
NOW = datetime(2027, 1, 2, tzinfo=UTC)
HOSTILE_SUBJECT = "crm/<img src=x onerror=alert(1)>"

# Records are data: a broken or unverified chain may hold anything a database writer put there.
HOSTILE = [
    rec(1, "2026-10-02T00:00:00Z", "purge.run", HOSTILE_SUBJECT,
        {"result": "Failed", "dryRun": False, "rowsDeleted": 3, "expiredRemaining": 1}),
    rec(2, "2026-10-03T00:00:00Z", "condition.transition", "crm/ok",
        {"type": "AccessRestricted", "status": "False", "reason": "OtherBindingGrantsSecrets",
         "message": "</td></tr></table><script>alert(2)</script>"}),
    rec(3, "2026-10-04T00:00:00Z", "request.answered", "crm/ok",
        {"requestId": '"><svg onload=alert(3)>', "requestType": "access",
         "outcome": "fulfilled", "receivedAt": "2026-10-01T00:00:00Z"}),
]  # fmt: skip


def page() -> str:
    stores = {HOSTILE_SUBJECT: StoreInfo("<b>newsletter</b>")}
    report = build_report(HOSTILE, Q4, verdict=None, policy=policy(), stores=stores,
                          generated_at=NOW)  # fmt: skip
    return render_html(report)


def test_text_from_records_is_escaped() -> None:
    html = page()
    for markup in ("<img", "<script", "<b>", "<svg onload", "</table><script"):
        assert markup not in html.replace('<svg xmlns="http://www.w3.org/2000/svg"', "")
    assert "crm/&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert "&lt;b&gt;newsletter&lt;/b&gt;" in html  # the category, in the chart's legend too
    assert "&quot;&gt;&lt;svg onload=alert(3)&gt;" in html


def test_the_page_fetches_nothing_and_runs_nothing() -> None:
    html = page()
    for outside in ("src=", "href=", "<link", "<script", "@import", "url(", "<iframe"):
        assert outside not in html.replace("src=x", "")  # the escaped record text only
    assert "NOT VERIFIED" in html


def test_every_chart_is_well_formed_svg() -> None:
    report = build_report(RECORDS, Q4, verdict=None, policy=policy(), stores=STORES,
                          generated_at=NOW)  # fmt: skip
    charts = re.findall(r"<svg .*?</svg>", render_html(report), flags=re.S)
    assert len(charts) == 3
    for chart in charts:
        root = ET.fromstring(chart)  # noqa: S314 - our own output
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    weekly = ET.fromstring(charts[0])  # noqa: S314
    bars = [e for e in weekly.iter("{http://www.w3.org/2000/svg}rect") if e.find("*") is not None]
    # Two bars (one per category) in the week of 2026-10-05: 40 + 7 and 100 (see test_build).
    titles = sorted("".join(b.itertext()) for b in bars)
    assert titles == ["contract-records, week of 2026-10-05: 47",
                      "technical-support-inquiry, week of 2026-10-05: 100"]  # fmt: skip


def test_an_empty_quarter_renders() -> None:
    html = render_html(build_report([], Q4, verdict=None, generated_at=NOW))
    assert html.count("no records in this period") == 3
    assert "no purge runs recorded in this period" in html


def test_a_key_whose_rotation_limit_is_unknown_is_not_shown_ok() -> None:
    """No policy file and a store with no keyRotation: the key's due date is unknown, and
    the page said `ok` beside it, as for a key rotated in time."""
    records = [
        rec(1, "2026-01-05T00:00:00.000000Z", "key.created", "crm/support",
            {"secret": "dataward-support-keyring", "keyId": 1,
             "created": "2026-01-05T00:00:00.000000Z"}),
    ]  # fmt: skip
    report = build_report(records, Q4, verdict=None, stores={"crm/support": StoreInfo("x")},
                          generated_at=NOW)  # fmt: skip
    (row,) = [r for r in render_html(report).split("<tr>") if "end of period" in r]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    # Store, key, created, primary until, max age, limit, due, verdict, evidence.
    assert cells[5:8] == ["unknown", "unknown", "unknown"], cells
