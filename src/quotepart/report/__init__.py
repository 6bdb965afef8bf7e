"""The fair value share report an institution publishes: who contributed, what it was
worth, where the money went, and how anyone can check it.

```python
files = ws.publish_report(service, "2026-Q1", "report/")   # report.json, .html, .pdf
files.leaf_index                                           # its report.published entry
```

`report.json` is the report; `report.html` (Plotly, works offline) and `report.pdf`
(static charts) are drawn from the same typed document (`ReportDocument`) alone. Its
making has three steps: `gather` reads the facts from the log (through the store's
read side), `build_report` turns them into the document (pure), and the renderers draw
it. Their SHA-256 digests are recorded in the log,
so a published report is provable: an inclusion proof of that entry plus the file.
"""

from quotepart.report.build import build_report
from quotepart.report.document import FORMAT, ReportData, ReportDocument
from quotepart.report.facts import ReportFacts
from quotepart.report.gather import build_report_data, gather
from quotepart.report.service import (
    RenderedReport,
    ReportFiles,
    Reports,
    default_report_dir,
    render_report,
)
from quotepart.report.words import policy_in_words

__all__ = [
    "FORMAT",
    "RenderedReport",
    "ReportData",
    "ReportDocument",
    "ReportFacts",
    "ReportFiles",
    "Reports",
    "build_report",
    "build_report_data",
    "default_report_dir",
    "gather",
    "policy_in_words",
    "render_report",
]
