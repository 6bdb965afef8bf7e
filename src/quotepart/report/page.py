"""The report as one HTML page: the same page holds Plotly charts (report.html) or
static SVG charts (the page WeasyPrint turns into report.pdf)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction
from html import escape

from quotepart.report.document import ReportDocument
from quotepart.report.words import named_notes, percent, rounded_value

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #222; line-height: 1.45;
       max-width: 1120px; margin: 0 auto; padding: 24px; font-size: 14px; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 19px; margin-top: 34px; border-bottom: 2px solid #0072B2; padding-bottom: 3px; }
h3 { font-size: 15px; margin-bottom: 4px; }
p.lead { font-size: 16px; }
p.meta, .meta { color: #666; font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #ddd; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; border-top: 2px solid #999; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
code { word-break: break-all; }
pre { background: #f6f6f6; padding: 8px; white-space: pre-wrap; word-break: break-all; }
.figure { margin: 12px 0 18px; page-break-inside: avoid; break-inside: avoid; }
img.chart { display: block; max-width: 100%; max-height: 250mm; margin: 0 auto; }
.keep { break-inside: avoid; page-break-inside: avoid; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; }
dt { font-weight: bold; }
dd { margin: 0; word-break: break-all; }
@page { size: A4; margin: 14mm 12mm; }
@media screen {
  .figure { overflow-x: auto; }  /* a chart wider than a phone scrolls, its labels intact */
}
@media print {
  body { max-width: none; padding: 0; font-size: 10px; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  td, th { overflow-wrap: anywhere; padding: 3px 5px; }
}
"""


def _e(value: object) -> str:
    return escape(str(value))


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], *, numeric: set[int]) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(fragments: list[str], *, lead: str = "") -> str:
    """The charts of a section; `lead` (its heading and opening words) is kept on one page
    with the first, so that a heading never ends a page with its chart on the next."""
    figures = [f'<div class="figure">{fragment}</div>' for fragment in fragments]
    if not figures:
        return lead
    return f'<div class="keep">{lead}{figures[0]}</div>' + "".join(figures[1:])


def _names(document: ReportDocument) -> dict[str, str]:
    names = {n.id: n.name for n in document.lineage.nodes}
    names.update({e.digest: e.name for e in document.earned_by})
    for flow in document.money_flow.values():
        names.update({e.to: e.to_name for e in flow.assets})
    return names


def _summary(document: ReportDocument) -> str:
    asset = document.asset
    sentences = []
    for code, totals in document.totals.items():
        count = sum(1 for r in document.revenues if r.currency == code)
        earned = totals.earned
        given = totals.to_contributors
        share = percent(Fraction(given.amount_minor, earned.amount_minor))
        sentences.append(
            f"{_e(asset.name)} earned <b>{_e(earned.amount)} {_e(code)}</b> in "
            f"{_e(document.period)} ({count} revenue{'s' if count != 1 else ''}). "
            f"<b>{_e(given.amount)} {_e(code)}</b> ({share}) went to the people and "
            f"organisations whose data, work and models it was built from; the operators kept "
            f"{_e(totals.kept_by_operators.amount)} {_e(code)}."
        )
    contributors = {p.party for p in document.parties if p.as_ != ("operator's part",)}
    sentences.append(
        f"{len(contributors)} contributor{'s' if len(contributors) != 1 else ''} received a "
        "share. Every figure in this report is recomputed from the entries of a signed, "
        "append-only log that anyone can check (see the last section)."
    )
    return " ".join(sentences)


def _parties(document: ReportDocument) -> str:
    out = []
    for code in document.totals:
        rows = [
            [
                _e(p.name),
                _e(", ".join(p.as_)),
                _e("; ".join(f"{a.name}: {a.amount} {code}" for a in p.at)),
                f"{_e(p.amount)} {_e(code)}",
            ]
            for p in document.parties
            if p.currency == code
        ]
        total = document.totals[code].earned.amount
        table = _table(["who", "as", "paid at", f"amount ({code})"], rows, numeric={3})
        out.append(
            table.replace(
                "</tbody>",
                f'<tr class="total"><td>total</td><td></td><td></td>'
                f'<td class="num">{_e(total)} {_e(code)}</td></tr></tbody>',
            )
        )
    return "".join(out)


def _valuations(document: ReportDocument) -> str:
    if not document.valuations:
        return "<p>No valuation was recorded for the models of this value chain.</p>"
    rows = []
    for v in document.valuations:
        parameters = ", ".join(f"{k}={val}" for k, val in v.parameters.items()) or "none"
        rows.append(
            [
                _e(v.model_name),
                _e(v.method),
                _e(parameters),
                _e(v.seed if v.seed is not None else "none"),
                _e(v.evaluations),
                "yes" if v.converged else "no",
                _e(v.utility or "not recorded"),
                _e(v.used_by_allocations),
            ]
        )
    methods = _table(
        ["model", "method", "parameters", "seed", "evaluations", "converged", "scored on",
         "allocations using it"],
        rows,
        numeric={4, 7},
    )  # fmt: skip
    values = "".join(
        f"<h3>Inputs of {_e(v.model_name)}</h3>"
        + _table(
            ["input", "value", "± standard error"],
            [[_e(p.name), *_value_cells(p.value, p.stderr)] for p in v.players],
            numeric={1, 2},
        )
        for v in document.valuations
    )
    return methods + values


def _value_cells(value: str, stderr: str | None) -> list[str]:
    """A value rounded to what its error supports; report.json keeps the exact strings."""
    shown, error = rounded_value(value, stderr)
    if error is not None:
        return [_e(shown), _e(error)]
    return [_e(shown), "none (exact)" if stderr is not None else "not recorded"]


def _policies(document: ReportDocument) -> str:
    if not document.policies:
        return "<p>No sharing policy applies in this value chain.</p>"
    return "".join(
        f"<h3>{_e(p.name)}</h3><p>{_e(p.words)}</p>"
        f'<p class="meta">policy entry <code>{_e(p.entry)}</code>; used by '
        f"{_e(p.used_by_allocations)} of the period's allocations</p>"
        for p in document.policies
    )


_RIGHT_WORDS = {
    "valuation": "records valuations of",
    "metering": "meters the usage of",
    "billing": "records the revenue of",
    "sharing": "records the allocations of",
    "policy": "sets the sharing policy of",
    "run": "records the runs producing",
    "contribution": "records the contributions to",
}


def _rights(document: ReportDocument) -> str:
    rights = document.rights
    out = [
        f"<p>{_e(rights.operator_name)} operates {_e(document.asset.name)}: it registered it "
        "and holds every right over it (setting its policy, metering, billing, valuing and "
        "sharing it), except those it delegated below.</p>"
    ]
    if rights.delegates:
        rows = [
            [
                _e(d.name),
                f"{_e(_RIGHT_WORDS.get(d.right, d.right))} {_e(d.asset_name)}",
                _e(d.granted_by_name),
                _e(d.since[:10]) + (f" to {_e(d.until[:10])}" if d.until else ""),
                f"#{_e(d.entry)}"
                + ("" if d.revoked_at is None else f", revoked at #{_e(d.revoked_at)}"),
            ]
            for d in rights.delegates
        ]
        out.append(
            _table(["delegate", "right", "delegated by", "from", "entry"], rows, numeric=set())
        )
    else:
        out.append("<p>No right over these assets was delegated.</p>")
    if rights.claims:
        rows = [
            [
                _e(c.asset_name),
                _e(c.registrant_name),
                _e(c.claimant_name),
                _e(c.reason),
                f"#{_e(c.entry)}",
            ]
            for c in rights.claims
        ]
        out.append(
            "<h3>Claims filed</h3><p>Parties disputing who registered an asset of this value "
            "chain. A claim is recorded and shown; it changes no amount.</p>"
            + _table(
                ["asset", "registered by", "claimed by", "reason", "entry"], rows, numeric=set()
            )
        )
    else:
        out.append("<p>No claim was filed against the registration of any asset shown.</p>")
    if rights.overlaps:
        rows = [
            [
                _e(o.asset_name),
                _e(o.registrant_name),
                f"{o.records:,} of {o.of:,}" + (" (near-duplicates)" if o.match == "near" else ""),
                _e(o.earlier_name),
                _e(o.earlier_registrant_name),
                f"#{_e(o.entry)}",
            ]
            for o in rights.overlaps
        ]
        out.append(
            "<h3>Copied records</h3><p>Records of one asset found in an asset registered "
            "before it. Copied records are credited to the earliest registrant: the later "
            "copy is worth nothing for them.</p>"
            + _table(
                [
                    "asset",
                    "registered by",
                    "records copied",
                    "from",
                    "registered first by",
                    "entry",
                ],
                rows,
                numeric=set(),
            )
        )
    return "".join(out)


def _revenues(document: ReportDocument) -> str:
    names = _names(document)
    rows = [
        [
            _e(names.get(r.asset, r.asset)),
            _e(r.period),
            _e(r.source),
            f"{_e(r.amount)} {_e(r.currency)}",
            f"#{_e(r.allocation.leaf_index)} <code>{_e(r.allocation.entry[:16])}…</code>",
            "<br>".join(_e(n) for n in named_notes(r.notes, names)) or "—",
        ]
        for r in document.revenues
    ]
    return _table(
        ["earned by", "period", "source", "amount", "allocation entry", "notes"], rows, numeric={3}
    )


def _verification(document: ReportDocument) -> str:
    v = document.verification
    checkpoint = v.checkpoint
    allocations = "".join(f"<li><code>{_e(h)}</code></li>" for h in v.allocations)
    commands = "\n".join(_e(c) for c in v.commands)
    return (
        "<p>Each amount above comes from an <code>allocation.recorded</code> entry of the log, "
        "recomputed from the entries it names. Any contributor can check their own share "
        "on their own machine, without trusting the operator:</p>"
        f"<pre>{commands}</pre>"
        "<p>The first command checks the whole log (every signature, every tree node and "
        "checkpoint). The second writes a file proving your statement: the entries, their "
        "inclusion proofs and a signed checkpoint; the third checks that file anywhere, "
        "against the log's key below.</p>"
        "<dl>"
        f"<dt>log checkpoint</dt><dd>tree size {_e(checkpoint.tree_size)}, root hash "
        f"<code>{_e(checkpoint.root_hash)}</code></dd>"
        f"<dt>verifier key</dt><dd><code>{_e(v.verifier_key)}</code></dd>"
        "</dl>"
        "<p>The checkpoint is the first one signed after every entry this report reads, so "
        "the same facts always give the same report. Its signed note:</p>"
        f"<pre>{_e(checkpoint.note)}</pre>"
        "<p>This report itself is recorded in the log as a <code>report.published</code> "
        "entry holding the SHA-256 digests of report.json, report.html and report.pdf and "
        "the allocations it covers; compare <code>sha256sum report.*</code> with it "
        "(<code>quotepart log entry INDEX</code>, and <code>quotepart log prove-inclusion "
        "INDEX</code> for its inclusion proof).</p>"
        f"<h3>Allocations covered</h3><ul>{allocations}</ul>"
    )


_QUERY_WORDS = {
    "daily-count": ("Events per day", "Day"),
    "daily-sum": ("Summed value per day", "Day"),
    "consumer-histogram": ("Consumers by their usage over the month", "Usage"),
}


def _usage_statistics(document: ReportDocument) -> str:
    """The meters' exact totals (over all consumers) and the period's private releases,
    with their ε, as their entries hold them: nothing about one consumer in the clear."""
    usage = document.usage
    parts: list[str] = []
    if usage.metered:
        rows = [
            [_e(m.service_name), _e(m.meter), _e(m.aggregation), _e(m.events), _e(m.total or "—")]
            for m in usage.metered
        ]
        parts.append(
            "<h3>Metered usage</h3><p>Exact totals over all consumers, as the signed usage "
            "batches count them: what bills count.</p>"
            + _table(["Service", "Meter", "Aggregation", "Events", "Total"], rows, numeric={3, 4})
        )
    if usage.private:
        parts.append(
            "<h3>Private statistics</h3><p>Figures about consumers are shown only as "
            "differentially private aggregates, released through OpenDP: each value carries "
            "noise calibrated to the privacy loss ε its release spent, and each consumer's "
            "contribution was bounded first, so no one consumer's usage can be read from "
            "them. Noisy values can be negative.</p>"
        )
        for release in usage.private:
            title, label = _QUERY_WORDS.get(release.query, (release.query, "Cell"))
            parts.append(
                f"<h4>{_e(title)}: {_e(release.meter)} of {_e(release.service_name)}, "
                f"{_e(release.period)}, ε = {_e(release.epsilon)}</h4>"
                f'<p class="meta">{_e(release.mechanism)}; privacy.released entry '
                f"{_e(release.entry)}</p>"
                + _table(
                    [label, "Noisy value"],
                    ([_e(cell), _e(value)] for cell, value in release.values),
                    numeric={1},
                )
            )
    return "".join(parts)


def render_page(
    document: ReportDocument, charts: Mapping[str, list[str]], *, head: str = ""
) -> str:
    """The whole page; `charts` holds each section's chart fragments, `head` any scripts."""
    asset = document.asset
    usage = document.usage
    title = f"Fair value share report: {asset.name}, {document.period}"
    usage_text = (
        f"<p>{_e(asset.name)} was used for {_e(usage.total_units)} {_e(usage.unit)}s by "
        f"{_e(usage.distinct_consumers)} distinct consumers in {_e(document.period)}. "
        "Consumers are counted by pseudonym only: no consumer is named in the log.</p>"
        if usage.total_units
        else "<p>No usage was metered in this period.</p>"
    )
    earned_by = ", ".join(e.name for e in document.earned_by)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style>{head}</head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(asset.kind)} <code>{_e(asset.digest)}</code>; '
        f"revenue booked on {_e(earned_by)}</p>"
        f'<p class="lead">{_summary(document)}</p>'
        + _figures(
            charts.get("lineage", []),
            lead="<h2>1. The value chain</h2>"
            "<p>The datasets, labelling work, compute and models this "
            f"{_e(asset.kind)} was built from, as recorded in the log.</p>",
        )
        + _figures(
            charts.get("money", []),
            lead="<h2>2. Where the money went</h2>"
            "<p>From the revenue, through the service and the models, to each input and to "
            "the people and organisations who contributed it.</p>",
        )
        + "<h2>3. Who received what</h2>"
        + _parties(document)
        + _figures(
            charts.get("valuations", []),
            lead="<h2>4. What each input was worth</h2>"
            "<p>Where a policy weighs inputs by their value, the value is the input's measured "
            "contribution to the model's score; the error bars show the estimate's standard "
            "error. Negative values mean the input made the model worse.</p>",
        )
        + _valuations(document)
        + _figures(charts.get("usage", []), lead="<h2>5. Usage</h2>" + usage_text)
        + _usage_statistics(document)
        + "<h2>6. The sharing rules</h2>"
        "<p>Within each input, its contributors share its part by their declared shares.</p>"
        + _policies(document)
        + "<h2>7. Rights</h2>"
        + _rights(document)
        + "<h2>8. Revenues covered</h2>"
        + _revenues(document)
        + "<h2>9. How to verify</h2>"
        + _verification(document)
        + "</body></html>\n"
    )


__all__ = ["render_page"]
