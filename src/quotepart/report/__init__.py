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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "build_report": "build",
    "FORMAT": "document",
    "ReportData": "document",
    "ReportDocument": "document",
    "ReportFacts": "facts",
    "build_report_data": "gather",
    "gather": "gather",
    "RenderedReport": "service",
    "ReportFiles": "service",
    "Reports": "service",
    "default_report_dir": "service",
    "render_report": "service",
    "policy_in_words": "words",
}
"""Public name -> the module that defines it, imported on first use (PEP 562): the
workspace imports `report.service` on every open, and must not pay for the rest."""


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


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
