"""The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Everything that comes from the report (and so from records, the policy or the stores files)
is escaped: records are data, and a store message must never become markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

from dataward.checks.access import BEYOND_READERS
from dataward.report.build import DAY, days_text, parse_time, week_start
from dataward.report.svg import Bar, horizontal_bars, weekly_bars

_EVIDENCE_SHOWN = 25

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 24px; margin-bottom: 4px; } h3 { font-size: 14px; margin: 14px 0 4px; }
.verdict, .ev { overflow-wrap: anywhere; } td.status { white-space: nowrap; }
h2 { font-size: 18px; margin-top: 28px;
  border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ev { color: #555; font-family: monospace; font-size: 11px; }
.verdict { padding: 10px 14px; border-radius: 4px; font-weight: bold; margin: 12px 0; }
.intact { background: #e3f4e6; border: 1px solid #5aa469; }
.broken { background: #fbe3e4; border: 1px solid #c44e52; }
.unverified { background: #fff4d6; border: 1px solid #e0b339; }
.s-evidenced { color: #2c7a3f; } .s-findings { color: #b22; font-weight: bold; }
.s-no-evidence, .s-not-verifiable { color: #a66b00; }
.muted { color: #666; }
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _evidence(seqs: Sequence[int]) -> str:
    if not seqs:
        return '<span class="ev">none</span>'
    shown = ", ".join(f"#{int(s)}" for s in seqs[:_EVIDENCE_SHOWN])
    more = len(seqs) - _EVIDENCE_SHOWN
    return f'<span class="ev">{shown}{f" and {more} more" if more > 0 else ""}</span>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _td(value: object, numeric: bool = False) -> str:
    return f'<td class="n">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


def _raw(markup: str) -> str:
    return f"<td>{markup}</td>"


def _chain(chain: Mapping[str, Any]) -> str:
    verdict = chain["verdict"]
    if verdict == "intact":
        head = chain["head"]
        text = (
            f"Evidence chain intact: {chain['records']} records, every hash and signature "
            "checked" + (f"; head {head['seq']}:{head['hash']}" if head else "")
        )
    elif verdict == "broken":
        broken = chain["broken"]
        text = (
            f"Evidence chain BROKEN at record {broken['seq']} ({broken['check']}): "
            f"{broken['message']}. Only records before it are used below."
        )
    else:
        text = "Evidence chain NOT VERIFIED: no public key was given."
    return f'<div class="verdict {_e(verdict)}">{_e(text)}</div>'


def _weekly_chart(report: Mapping[str, Any]) -> str:
    start = parse_time(report["period"]["start"])
    end = parse_time(report["period"]["end"])
    weeks: list[str] = []
    if start and end:
        day = week_start(start)
        while day < end.date():
            weeks.append(day.isoformat())
            day = date.fromordinal(day.toordinal() + 7)
    categories = sorted({cell["category"] for cell in report["purges"]["weekly"]})
    series = []
    for category in categories:
        values = [0] * len(weeks)
        for cell in report["purges"]["weekly"]:
            if cell["category"] == category and cell["week"] in weeks:
                values[weeks.index(cell["week"])] += cell["rowsDeleted"] + cell["rowsDestroyed"]
        series.append((category, values))
    return weekly_bars(weeks, series, "Rows destroyed per category per week")


def render_html(report: Mapping[str, Any]) -> str:
    """The page for `report` (as `build_report` returns it)."""
    key_bars, key_rows = [], []
    for store in report["keys"]:
        for key in store["keys"]:
            created, due = parse_time(key["created"]), parse_time(key["rotationDue"])
            limit = (due - created).total_seconds() / DAY if created and due else None
            key_bars.append(
                Bar(
                    f"{store['subject']} key {key['keyId']}",
                    key["maxAgeSeconds"] / DAY,
                    limit,
                    key["overdue"],
                )
            )
            key_rows.append(
                [
                    _td(store["subject"]),
                    _td(key["keyId"], True),
                    _td(key["created"]),
                    _td(key["primaryUntil"] or "end of period"),
                    _td(days_text(key["maxAgeSeconds"])),
                    _td(store["rotationLimit"] or "unknown"),
                    _td(key["rotationDue"] or "unknown"),
                    _td(
                        "OVERDUE"
                        if key["overdue"]
                        else ("ok" if key["rotationDue"] else "unknown")
                    ),
                    _raw(_evidence(key["evidence"])),
                ]
            )
    request_bars = [
        Bar(f"{r['requestType']} {r['requestId']}", r["secondsToAnswer"] / DAY)
        for r in report["requests"]
        if isinstance(r["secondsToAnswer"], int)
    ]
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Dataward self-audit {_e(report['quarter'])}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Quarterly self-audit report {_e(report['quarter'])}</h1>",
        f'<p class="muted">Period {_e(report["period"]["start"])} to '
        f"{_e(report['period']['end'])} (end excluded); generated {_e(report['generatedAt'])}; "
        f"{_e(report['recordsInPeriod'])} evidence records in the period"
        + (f"; policy {_e(report['policy']['name'])}" if report["policy"] else "; no policy file")
        + ". Numbers like #12 are evidence record sequence numbers.</p>",
        _chain(report["chain"]),
        "<h2>At a glance</h2>",
        "<h3>Rows destroyed per category per week</h3>",
        _weekly_chart(report),
        '<p class="muted">Rows deleted from live stores plus archived copies destroyed, per '
        "week (Monday, UTC). Dry runs are not counted.</p>",
        "<h3>Key age against rotation limit</h3>",
        horizontal_bars(key_bars, "Key age against rotation limit", "days"),
        '<p class="muted">Bar: the most days the key was primary in the period (red: past its '
        "rotation limit); black mark: the limit.</p>",
        "<h3>Time to answer requests</h3>",
        horizontal_bars(request_bars, "Time to answer requests", "days"),
        "<h2>Clauses, controls and evidence</h2>",
        _table(
            ["Clause", "Source", "Controls", "Status", "Findings", "Evidence"],
            [
                [
                    _td(c["text"]),
                    _td(c["source"]),
                    _td("; ".join(c["controls"])),
                    f'<td class="status s-{_e(c["status"])}">{_e(c["status"])}</td>',
                    _td("; ".join(c["findings"])),
                    _raw(_evidence(c["evidence"])),
                ]
                for c in report["clauses"]
            ],
            "no clauses: no policy file was given",
        ),
        "<h2>Gaps: what could not be verified</h2>",
        _table(
            ["Gap", "Why", "Evidence"],
            [
                [_td(g["code"]), _td(g["message"]), _raw(_evidence(g["evidence"]))]
                for g in report["gaps"]
            ],
            "none",
        ),
        "<h2>Purges</h2>",
        _table(
            [
                "Category",
                "Runs",
                "Failed",
                "Rows deleted",
                "Rows archived",
                "Archive rows destroyed",
                "Stores",
                "Evidence",
            ],
            [
                [
                    _td(c["category"]),
                    _td(c["runs"], True),
                    _td(c["failedRuns"], True),
                    _td(c["rowsDeleted"], True),
                    _td(c["rowsArchived"], True),
                    _td(c["rowsDestroyed"], True),
                    _td(", ".join(c["stores"])),
                    _raw(_evidence(c["evidence"])),
                ]
                for c in report["purges"]["byCategory"]
            ],
            "no purge runs recorded in this period",
        ),
        "<h2>Overdue rows</h2>",
        _table(
            [
                "Store",
                "Expired rows left at last run",
                "Most expired rows left",
                "Oldest expired",
                "Evidence",
            ],
            [
                [
                    _td(o["subject"]),
                    _td(o["expiredRemainingAtLastRun"], True),
                    _td(o["maxExpiredRemaining"], True),
                    _td(o["oldestExpired"] or "not recorded"),
                    _raw(_evidence(o["evidence"])),
                ]
                for o in report["overdue"]
            ],
            "no purge runs recorded in this period",
        ),
    ]
    out += [
        "<h2>Encryption keys</h2>",
        _table(
            ["Store", "Key", "Created", "Primary until", "Max age", "Limit", "Due", "", "Evidence"],
            key_rows,
            "no key records",
        ),
        "<h2>Stores and their conditions</h2>",
    ]
    rows = []
    for store in report["stores"]:
        for c in store["conditions"]:
            changes = "; ".join(
                f"{t['time']} {t['status']} {t['reason'] or ''} (#{t['seq']})"
                for t in c["transitions"]
            )
            rows.append(
                [
                    _td(store["subject"]),
                    _td(c["type"]),
                    _td(c["statusAtStart"] or "unknown"),
                    _td(changes or "no change"),
                    _td(c["statusAtEnd"] or "unknown"),
                    _td(days_text(c["secondsNotTrue"])),
                    _raw(_evidence(c["evidence"])),
                ]
            )
    out.append(
        _table(
            ["Store", "Condition", "At start", "Changes", "At end", "Not True for", "Evidence"],
            rows,
            "no condition transitions recorded",
        )
    )
    out += [
        "<h2>Foreign access found and resolved</h2>",
        _table(
            ["Store", "Found", "Resolved", "Open for", "Message", "Evidence"],
            [
                [
                    _td(f["subject"]),
                    _td(f["found"]),
                    _td(f["resolved"] or "not resolved"),
                    _td(days_text(f["openSeconds"])),
                    _td(f["message"]),
                    _raw(_evidence(f["evidence"])),
                ]
                for f in report["foreignAccess"]
            ],
            f"none recorded (AccessRestricted with reason {' or '.join(BEYOND_READERS)})",
        ),
        "<h2>Access and erasure requests answered</h2>",
        _table(
            ["Request", "Type", "Outcome", "Received", "Answered", "Time to answer", "Evidence"],
            [
                [
                    _td(r["requestId"]),
                    _td(r["requestType"]),
                    _td(r["outcome"]),
                    _td(r["received"]),
                    _td(r["answered"]),
                    _td(days_text(r["secondsToAnswer"])),
                    _raw(_evidence(r["evidence"])),
                ]
                for r in report["requests"]
            ],
            "no request.answered records in this period",
        ),
        "<h2>Policy revisions</h2>",
        _table(
            ["Time", "Policy", "Generation", "Effective date", "Digest", "Evidence"],
            [
                [
                    _td(r["time"]),
                    _td(r["policy"]),
                    _td(r["generation"], True),
                    _td(r["effectiveDate"]),
                    _td(r["digest"]),
                    _raw(_evidence(r["evidence"])),
                ]
                for r in report["revisions"]
            ],
            "no policy.revision records in this period",
        ),
        '<h2>What this report cannot prove</h2><ul class="muted">'
        "<li>That the log is complete: an event never appended leaves no trace.</li>"
        "<li>Anything against the holder of the signing key, unless the head is anchored.</li>"
        "<li>When things happened: times are the operator's clock.</li>"
        "<li>That a payload is true: it is what the operator observed.</li></ul>",
        "</body></html>",
    ]
    return "\n".join(out)
