"""The quarterly self-audit report: policy clauses, their controls, and the evidence for them.

Pure parts: `build` turns evidence records (and the policy and stores) into the report as a
JSON-ready dict whose shape `docs/report-schema.json` documents; `html` and `svg` render that
dict as one self-contained page. `dataward report` (commands/report.py) reads the records.
"""

from dataward.report.build import Quarter, StoreInfo, build_report, parse_quarter
from dataward.report.html import render_html

__all__ = ["Quarter", "StoreInfo", "build_report", "parse_quarter", "render_html"]
