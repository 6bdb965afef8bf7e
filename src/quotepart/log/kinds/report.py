"""`report.published`: a fair value share report, pinned to the log by the digests of its files.

```json
{"asset": "sha256:…", "period": "2026-Q1",
 "json": "sha256:…", "html": "sha256:…", "pdf": "sha256:…",
 "allocations": ["<leaf hash>", …]}
```

* `asset`: the service or model the report is about; `period`: the period it covers.
* `json`, `html`, `pdf`: SHA-256 of the exact bytes of `report.json`, `report.html` and
  (when one was made) `report.pdf`. Anyone holding a file and an inclusion proof of
  this entry can show that the log published exactly that file.
* `allocations`: the sorted leaf hashes of the `allocation.recorded` entries whose
  amounts the report shows, so a reader can fetch and recompute each one.

The report's own data (names, amounts, charts) stays in the files: the entry is a
commitment to them, small whatever the size of the report.
"""

from __future__ import annotations

import re
from typing import Self

from quotepart.errors import MalformedEntryError
from quotepart.ids import Digest, Period
from quotepart.log.kinds._base import BodyReader, KindBody, RawBody, entry_kind

_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


@entry_kind("report.published", log_only=True)
class ReportPublished(KindBody):
    asset: Digest
    period: Period
    json_digest: Digest  # of report.json's bytes
    html_digest: Digest  # of report.html's bytes
    pdf_digest: Digest | None  # of report.pdf's bytes, when one was made
    allocations: tuple[str, ...]  # leaf hashes (hex) of the allocations covered, sorted

    def to_body(self) -> RawBody:
        body: RawBody = {
            "asset": str(self.asset),
            "period": str(self.period),
            "json": str(self.json_digest),
            "html": str(self.html_digest),
            "allocations": sorted(set(self.allocations)),
        }
        if self.pdf_digest is not None:
            body["pdf"] = str(self.pdf_digest)
        return body

    @classmethod
    def from_body(cls, body: RawBody) -> Self:
        read = BodyReader(cls.KIND, body)
        read.only("asset", "period", "json", "html", "pdf", "allocations")
        allocations = read.text_list("allocations", pattern=_HASH_RE)
        if not allocations:
            raise MalformedEntryError(
                f"{cls.KIND}: a report covers at least one allocation",
                hint="a period without shared revenue has no report",
            )
        pdf = read.text("pdf", optional=True)
        return cls(
            asset=Digest.parse(read.text("asset")),
            period=Period.parse(read.text("period")),
            json_digest=Digest.parse(read.text("json")),
            html_digest=Digest.parse(read.text("html")),
            pdf_digest=None if pdf is None else Digest.parse(pdf),
            allocations=allocations,
        )
