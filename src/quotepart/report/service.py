"""The reports service: write a report's files, then record their digests in the log.

`Reports` is built on a `Ledger` (it reads the facts, signs the `report.published`
entry and names the log's verifier key); `quotepart.Workspace` delegates to it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quotepart.ids import Digest, PartyId, Period
from quotepart.log.kinds import ReportPublished
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.store.ledger import Ledger
from quotepart.store.queries.entries import entries_of_kind

if TYPE_CHECKING:
    from quotepart.report.document import ReportData

# Gathering, the document and its renderers are imported by the methods that use them:
# opening a workspace (every CLI command) must not pay for the report's modules.

JSON_FILE, HTML_FILE, PDF_FILE = "report.json", "report.html", "report.pdf"


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """The files of a published report, and its `report.published` entry."""

    json_path: Path
    html_path: Path
    pdf_path: Path | None  # None when no PDF was made (see `pdf_skipped`)
    leaf_index: int  # of the report.published entry
    new: bool = True  # False when the very same report had been published before
    pdf_skipped: str | None = None  # one line saying why there is no PDF
    summary: str = ""  # one line for people


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A report's files as bytes, before anything is written or recorded."""

    data: ReportData
    json: bytes
    html: bytes
    pdf: bytes | None
    pdf_skipped: str | None

    def entry(self) -> ReportPublished:
        return ReportPublished(
            self.data.asset,
            self.data.period,
            Digest.of_bytes(self.json),
            Digest.of_bytes(self.html),
            None if self.pdf is None else Digest.of_bytes(self.pdf),
            self.data.allocations,
        )


def render_report(data: ReportData, *, pdf: bool = True) -> RenderedReport:
    """report.json, report.html (Plotly inlined: it works offline) and, if WeasyPrint
    can load, report.pdf (static charts), all drawn from the one document."""
    from quotepart.report.interactive import charts as interactive_charts
    from quotepart.report.interactive import plotly_script
    from quotepart.report.page import render_page
    from quotepart.report.static import charts as static_charts
    from quotepart.report.static import pdf_bytes

    document = data.document
    html = render_page(
        document, interactive_charts(document), head=f"<script>{plotly_script()}</script>"
    )
    pdf_data, skipped = (
        pdf_bytes(render_page(document, static_charts(document))) if pdf else (None, None)
    )
    return RenderedReport(data, data.to_json_bytes(), html.encode(), pdf_data, skipped)


def default_report_dir(name: str, digest: Digest, period: Period) -> Path:
    """`report-<asset name, as a file name>-<period>`, or the digest's first 12 hex digits
    where the name has no letters or digits to keep."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return Path(f"report-{slug or digest.hex[:12]}-{period}")


def _write(path: Path, content: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)


class Reports:
    """The fair value share report of a service or model, published into the log."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def report_data(self, asset: AssetRef | str, period: str | Period) -> ReportData:
        """The report document of `asset` (a service or model, by digest or unique name)."""
        from quotepart.report.gather import build_report_data

        reference = asset if isinstance(asset, str) else str(asset_digest(asset))
        with self.ledger.read() as conn:
            return build_report_data(conn, reference, period, verifier=self.ledger.verifier)

    def publish_report(
        self,
        asset: AssetRef | str,
        period: str | Period,
        out_dir: str | os.PathLike[str] | None = None,
        *,
        by: PartyId | None = None,
        pdf: bool = True,
    ) -> ReportFiles:
        """Write report.json, report.html and report.pdf into `out_dir`, and record their
        digests in the log as a `report.published` entry.

        `out_dir` defaults to `./report-<asset name>-<period>/`. The entry is signed by
        `by`, or by whoever signed the first allocation the report covers. A report whose
        files are byte for byte those of one already published (same facts, same
        digests) is written again but not recorded twice: the earlier entry is returned,
        with `new=False`. If WeasyPrint cannot load its system libraries, the report is
        published without a PDF and `pdf_skipped` says why.

            files = ws.publish_report(service, "2026-Q1", "out/")

        Raises:
            InputError: a bad period, an asset that is not a service or model, or a
                revenue of the period not yet shared. Nothing is written.
            NotFoundError: no such asset, or no revenue of it in the period.
        """
        data = self.report_data(asset, period)
        rendered = render_report(data, pdf=pdf)
        body = rendered.entry()
        folder = (
            Path(out_dir)
            if out_dir is not None
            else default_report_dir(data.name, data.asset, data.period)
        )
        folder.mkdir(parents=True, exist_ok=True)
        written = [folder / JSON_FILE, folder / HTML_FILE]
        _write(written[0], rendered.json)
        _write(written[1], rendered.html)
        pdf_path = folder / PDF_FILE
        if rendered.pdf is not None:
            _write(pdf_path, rendered.pdf)
            written.append(pdf_path)
        else:
            pdf_path.unlink(missing_ok=True)  # an older PDF would not be this report
        summary = _summary(data)
        earlier = self._published(body, after=data.document.verification.checkpoint.tree_size)
        if earlier is not None:
            return ReportFiles(
                written[0], written[1], pdf_path if rendered.pdf is not None else None,
                earlier, False, rendered.pdf_skipped, summary,
            )  # fmt: skip
        try:
            index = self.ledger.append(body, author=by or data.signer)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return ReportFiles(
            written[0], written[1], pdf_path if rendered.pdf is not None else None,
            index, True, rendered.pdf_skipped, summary,
        )  # fmt: skip

    def _published(self, body: ReportPublished, *, after: int) -> int | None:
        """The leaf index of an identical report.published entry, if one is in the log.

        Report entries have no projection table. None is needed: the same report names
        the same checkpoint (the first after every fact it reads), so an identical entry
        can only lie at or after that checkpoint's tree size, a short range of the log.
        """
        with self.ledger.read() as conn:
            for index, entry in entries_of_kind(conn, ReportPublished.KIND, start=after):
                if entry.body() == body:
                    return index
        return None


def _summary(data: ReportData) -> str:
    document = data.document
    totals = ", ".join(
        f"{t.earned.amount} {code} earned, {t.to_contributors.amount} {code} to contributors"
        for code, t in document.totals.items()
    )
    return (
        f"{data.name}, {data.period}: {len(document.revenues)} revenue(s), {totals}; "
        f"{len(document.parties)} parties paid"
    )


__all__ = [
    "HTML_FILE",
    "JSON_FILE",
    "PDF_FILE",
    "RenderedReport",
    "ReportFiles",
    "Reports",
    "default_report_dir",
    "render_report",
]
