"""The fair value share report an institution publishes: who contributed, what it was
worth, where the money went, and how anyone can check it.

```python
files = ws.publish_report(service, "2026-Q1", "report/")   # report.json, .html, .pdf
files.leaf_index                                           # its report.published entry
```

`report.json` is the report; `report.html` (Plotly, works offline) and `report.pdf`
(static charts) are drawn from it alone. Their SHA-256 digests are recorded in the log,
so a published report is provable: an inclusion proof of that entry plus the file.
"""

from quotepart.report.data import FORMAT, ReportData, build_report_data, policy_in_words
from quotepart.report.service import (
    RenderedReport,
    ReportFiles,
    Reports,
    default_report_dir,
    render_report,
)

__all__ = [
    "FORMAT",
    "RenderedReport",
    "ReportData",
    "ReportFiles",
    "Reports",
    "build_report_data",
    "default_report_dir",
    "policy_in_words",
    "render_report",
]
