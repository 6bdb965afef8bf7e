"""The fair value share report: its numbers are the log's, its files are pinned in the log."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import quotepart.report.static
from quotepart.cli import cli
from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, Period
from quotepart.log import Checkpoint, leaf_hash, verify_inclusion
from quotepart.log.kinds import AllocationRecorded, PolicySet, ReportPublished
from quotepart.money import format_amount
from quotepart.report import build_report_data, policy_in_words
from quotepart.report.layout import layered
from quotepart.workspace import init_workspace
from tests.conftest import ON_CI, FakeClock
from tests.report.conftest import Published
from tests.report.scene import ReportScene
from tests.sharing.test_workspace_sharing import Scene


def _document(published: Published) -> dict:
    return json.loads(published.files.json_path.read_text())


def test_the_reports_amounts_are_the_logs_allocations(published: Published) -> None:
    ws, scene = published.ws, published.scene
    document = _document(published)
    revenues = {r["revenue"]: r for r in document["revenues"]}
    assert set(revenues) == set(published.revenues)
    earned = sum(r["amount_minor"] for r in revenues.values())
    assert document["totals"]["EUR"]["earned"]["amount_minor"] == earned
    totals = document["totals"]["EUR"]
    assert (
        totals["to_contributors"]["amount_minor"] + totals["kept_by_operators"]["amount_minor"]
        == earned
    )
    by_party = {p["party"]: p for p in document["parties"]}
    assert sum(p["amount_minor"] for p in by_party.values()) == earned
    for party in ws.parties():
        statement = ws.statement(party.party, "2026-Q1")
        row = by_party.get(str(party.party))
        assert statement.totals == ({"EUR": row["amount_minor"]} if row else {})
        if row:
            assert row["name"] == party.name
            assert row["amount"] == format_amount(row["amount_minor"], "EUR")
            assert sum(a["amount_minor"] for a in row["at"]) == row["amount_minor"]
    # each allocation as recorded in the log
    for revenue in revenues.values():
        body = ws.entry_at(revenue["allocation"]["leaf_index"]).body()
        assert isinstance(body, AllocationRecorded)
        assert body.total_minor == revenue["amount_minor"]
    # the money flow: what leaves the revenue is the revenue; what reaches parties too
    flow = document["money_flow"]["EUR"]
    assert sum(e["amount_minor"] for e in flow["assets"] if e["from"] is None) == earned
    assert sum(p["amount_minor"] for p in flow["parties"]) == earned
    assert by_party[str(scene.hospital_a)]["as"] == ["data"]
    assert by_party[str(scene.lab)]["as"] == ["operator's part"]


def test_the_report_names_things_and_shows_the_valuation_and_policies(
    published: Published,
) -> None:
    document = _document(published)
    names = {n["name"] for n in document["lineage"]["nodes"]}
    assert {"Triage API", "Triage model v2", "Base model v1", "Public health corpus",
            "Triage labels, batch 3", "GPU grant 2026", "fine-tune triage model"} <= names  # fmt: skip
    [valuation] = document["valuations"]
    assert valuation["model_name"] == "Triage model v2"
    assert valuation["method"] == "PermutationShapley"
    assert valuation["seed"] == 20260107
    assert valuation["evaluations"] == 1200
    assert valuation["parameters"] == {"n_permutations": "200", "truncation": "0.01"}
    assert valuation["used_by_allocations"] == 2
    players = {p["name"]: (p["value"], p["stderr"]) for p in valuation["players"]}
    assert players["Admissions 2025"] == ("0.31", "0.03")
    assert players["Scraped forum posts"] == ("-0.04", "0.02")
    words = {p["name"]: p["words"] for p in document["policies"]}
    assert words["Triage model v2"].startswith(
        "20 % of what reaches Triage model v2 goes to its contributors; "
        "Northside Diagnostics Lab, the operator, keeps the rest."
    )
    assert "1/2 to data, weighted by the recorded valuation" in words["Triage model v2"]
    assert "A party whose values sum below zero counts as zero." in words["Triage model v2"]
    assert (
        "Upstream models share their part under their own policies (dilute)."
        in (words["Triage model v2"])
    )
    assert "all to data, equally" in words["Base model v1"]


def test_usage_is_counted_by_pseudonym_only(published: Published) -> None:
    ws, scene = published.ws, published.scene
    document = _document(published)
    usage = document["usage"]
    assert usage["per"] == "day"
    assert usage["unit"] == "request"
    assert len(usage["series"]) == 90  # every day of 2026-Q1, the idle ones at zero
    assert sum(s["units"] for s in usage["series"]) == usage["total_units"]
    assert usage["total_units"] == ws.usage_units(scene.service, "2026-Q1")
    assert usage["distinct_consumers"] == 4
    text = published.files.json_path.read_text() + published.files.html_path.read_text()
    assert "hmac-sha256" not in text
    assert "clinic-0" not in text


def test_the_published_entry_pins_the_files_and_proves_them(published: Published) -> None:
    ws, files = published.ws, published.files
    entry = ws.entry_at(files.leaf_index)
    body = entry.body()
    assert isinstance(body, ReportPublished)
    assert body.asset == published.scene.service
    assert body.period == Period.parse("2026-Q1")
    assert body.json_digest == Digest.of_bytes(files.json_path.read_bytes())
    assert body.html_digest == Digest.of_bytes(files.html_path.read_bytes())
    if files.pdf_path is None:  # WeasyPrint cannot load here (test_the_pdf_is_a_pdf says why)
        assert files.pdf_skipped
        assert body.pdf_digest is None
    else:
        assert body.pdf_digest == Digest.of_bytes(files.pdf_path.read_bytes())
    document = _document(published)
    assert list(body.allocations) == document["verification"]["allocations"]
    assert sorted(r["allocation"]["entry"] for r in document["revenues"]) == list(body.allocations)
    # provable: an inclusion proof of the entry against the latest signed checkpoint
    note = ws.store.latest_checkpoint()
    assert note is not None
    checkpoint = Checkpoint.open(note, ws.verifier)
    proof = ws.store.inclusion_proof(files.leaf_index, checkpoint.tree_size)
    verify_inclusion(
        leaf_hash(entry.canonical), files.leaf_index, checkpoint.tree_size, proof.proof,
        checkpoint.root_hash,
    )  # fmt: skip
    # the report's own checkpoint is signed and covers every allocation it shows
    pinned = document["verification"]["checkpoint"]
    assert Checkpoint.open(pinned["note"], ws.verifier).tree_size == pinned["tree_size"]
    assert max(r["allocation"]["leaf_index"] for r in document["revenues"]) < pinned["tree_size"]
    assert document["verification"]["verifier_key"] == str(ws.verifier)
    ws.verify()  # the projection replay ignores the new kind, and everything checks out


def test_publishing_the_same_report_again_appends_nothing(
    published: Published, tmp_path: Path
) -> None:
    ws = published.ws
    size = ws.store.tree_size()
    again = ws.publish_report(published.scene.service, "2026-Q1", tmp_path / "again")
    assert not again.new
    assert again.leaf_index == published.files.leaf_index
    assert ws.store.tree_size() == size
    assert again.json_path.read_bytes() == published.files.json_path.read_bytes()
    assert again.html_path.read_bytes() == published.files.html_path.read_bytes()


def test_the_pdf_is_a_pdf(published: Published) -> None:
    if published.files.pdf_path is None:
        if ON_CI:
            pytest.fail(f"CI=true but no PDF: {published.files.pdf_skipped}")
        pytest.skip(f"WeasyPrint cannot load here: {published.files.pdf_skipped}")
    data = published.files.pdf_path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 10_000


def test_a_model_report_covers_the_revenue_of_its_services(published: Published) -> None:
    scene = published.scene
    with scene.ws.store.engine.connect() as conn:
        data = build_report_data(conn, "Triage model v2", "2026", verifier=scene.ws.verifier)
    document = data.document
    assert document.asset.kind == "model"
    assert [e.name for e in document.earned_by] == ["Triage model v2", "Triage API"]
    assert {r.revenue for r in document.revenues} == set(published.revenues)
    assert document.usage.per == "month"
    assert len(document.usage.series) == 12
    edges = {(e.from_, e.to) for e in document.lineage.edges}
    assert (str(scene.model), str(scene.service)) in edges


def test_without_weasyprint_the_report_is_published_without_a_pdf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise OSError("cannot load library 'libpango-1.0-0': error 0x7e")

    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.share(
            ws.record_revenue(
                scene.service, "1000.00", "EUR", period="2026-01", source="x", by=scene.lab
            )
        )
        out = tmp_path / "out"
        out.mkdir()
        (out / "report.pdf").write_bytes(b"%PDF- an older report")
        monkeypatch.setattr(quotepart.report.static, "_weasyprint", missing)
        files = ws.publish_report(scene.service, "2026-Q1", out)
        assert files.pdf_path is None
        assert not (out / "report.pdf").exists()
        assert files.pdf_skipped is not None
        assert "\n" not in files.pdf_skipped
        assert "libpango" in files.pdf_skipped
        body = ws.entry_at(files.leaf_index).body()
        assert isinstance(body, ReportPublished)
        assert body.pdf_digest is None
        ws.verify()


def _shared_scene(tmp_path: Path) -> tuple[Scene, str]:
    ws = init_workspace(tmp_path / "ws", clock=FakeClock())
    scene = Scene(ws)
    revenue = ws.record_revenue(
        scene.service, "10.00", "EUR", period="2026-02", source="x", by=scene.lab
    )
    ws.share(revenue)
    return scene, str(revenue)


@pytest.mark.parametrize(
    ("asset", "period", "error", "message"),
    [
        ("triage", "2026-Q5", InputError, "not a period"),
        ("nothing by that name", "2026-Q1", NotFoundError, "no asset or run"),
        ("A", "2026-Q1", InputError, "is a dataset"),
        ("triage", "2025", NotFoundError, "earned no recorded revenue in 2025"),
        ("triage", "2026-03", NotFoundError, "earned no recorded revenue in 2026-03"),
    ],
)
def test_bad_input_writes_nothing(
    tmp_path: Path, asset: str, period: str, error: type[Exception], message: str
) -> None:
    scene, _ = _shared_scene(tmp_path)
    size = scene.ws.store.tree_size()
    out = tmp_path / "out"
    with pytest.raises(error, match=message):
        scene.ws.publish_report(asset, period, out)
    assert not out.exists()
    assert scene.ws.store.tree_size() == size
    scene.ws.close()


def test_a_revenue_not_yet_shared_is_refused(tmp_path: Path) -> None:
    scene, _ = _shared_scene(tmp_path)
    unshared = scene.ws.record_revenue(
        scene.service, "5.00", "EUR", period="2026-03", source="y", by=scene.lab
    )
    with pytest.raises(InputError, match="has not been shared yet") as caught:
        scene.ws.publish_report(scene.service, "2026-Q1", tmp_path / "out")
    assert f"quotepart share {unshared}" in str(caught.value.hint)
    assert not (tmp_path / "out").exists()
    scene.ws.close()


def test_the_cli_prints_the_paths_and_a_summary(tmp_path: Path) -> None:
    scene, _ = _shared_scene(tmp_path)
    scene.ws.close()
    runner = CliRunner(env={"QUOTEPART_HOME": str(tmp_path / "ws")})
    out = tmp_path / "published"
    result = runner.invoke(cli, ["report", "triage", "--period", "2026-Q1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pdf_made = quotepart.report.static.pdf_bytes("<p>probe</p>")[0] is not None
    assert result.stdout.splitlines() == [
        str(out / "report.json"), str(out / "report.html"),
        *([str(out / "report.pdf")] if pdf_made else []),
    ]  # fmt: skip
    assert "triage, 2026-Q1: 1 revenue(s), 10.00 EUR earned" in result.stderr
    assert "recorded as report.published" in result.stderr
    again = runner.invoke(cli, ["report", "triage", "--period", "2026-Q1", "--json",
                                "--out", str(out), "--no-pdf"])  # fmt: skip
    assert again.exit_code == 0, again.output
    document = json.loads(again.stdout)
    assert document["pdf"] is None
    # without the PDF it is another report, unless there was no PDF to begin with
    assert document["new"] is pdf_made
    bad = runner.invoke(cli, ["report", "triage", "--period", "Q1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "Error: not a period" in bad.stderr
    assert not (tmp_path / "x").exists()
    missing = runner.invoke(cli, ["report", "zzz", "--period", "2026-Q1"])
    assert missing.exit_code == 4
    assert "Traceback" not in missing.output


def test_the_report_reads_the_same_on_postgresql(database_url: str | None, tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", database_url=database_url, clock=FakeClock()) as ws:
        scene = ReportScene(ws)
        revenues = scene.earn()
        with ws.store.engine.connect() as conn:
            data = build_report_data(conn, scene.service, "2026-Q1", verifier=ws.verifier)
    document = data.document
    assert {r.revenue for r in document.revenues} == set(revenues)
    assert document.usage.distinct_consumers == 4
    assert document.totals["EUR"].earned.amount_minor == sum(
        r.amount_minor for r in document.revenues
    )


def test_policies_read_as_sentences() -> None:
    policy = PolicySet(
        asset=Digest.of_bytes(b"m"),
        operator=PartyId.parse("party:01KBW0C0000000000000000000"),
        pool=Fraction(1, 5),
        roles={"data": Fraction(3, 4), "annotation": Fraction(1, 4)},
        weighting={"data": "valuation", "annotation": "equal"},
        cap=Fraction(1, 2),
        upstream_mode="fixed",
        upstream_share=Fraction(1, 20),
        minimum_payout=1000,
    )
    words = policy_in_words(policy, asset_name="M", operator_name="Lab", currency="EUR")
    assert words == (
        "20 % of what reaches M goes to its contributors; Lab, the operator, keeps the rest. "
        "Of the contributors' part: 3/4 to data, weighted by the recorded valuation; "
        "1/4 to annotation (labelling), equally. Negative values count as zero. "
        "An input without a recorded value stops the sharing. "
        "No input gets more than 50 % of its role's part. "
        "Every ancestor model receives 5 % of what reaches M, shared under its own policy (fixed). "
        "Balances below 10.00 EUR are carried to the next payout."
    )


def test_the_layout_puts_inputs_left_of_what_they_made() -> None:
    positions = layered(["service", "model", "run", "data", "grant"],
                        [("model", "service"), ("run", "model"), ("data", "run"), ("grant", "run")])  # fmt: skip
    assert positions["data"][0] < positions["run"][0] < positions["model"][0]
    assert positions["model"][0] < positions["service"][0] == 1.0
    assert positions["data"][0] == positions["grant"][0]
    assert positions["data"][1] != positions["grant"][1]
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in positions.values())


def test_the_page_rounds_values_to_their_standard_error(published: Published) -> None:
    html = published.files.html_path.read_text()
    # 0.31 ± 0.03: two significant digits of the error, the value to the same place
    assert "<td>0.310</td><td>0.030</td>" in html.replace('<td class="num">', "<td>")
    assert "<td>-0.040</td><td>0.020</td>" in html.replace('<td class="num">', "<td>")
    assert _document(published)["valuations"][0]["players"][0]["value"] == "0.31"  # exact record


def test_an_exact_valuation_shows_no_error_bar_and_no_float_noise(tmp_path: Path) -> None:
    from quotepart.report.page import render_page

    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.record_valuation(
            scene.model,
            {scene.data_a: 0.07137254901960785, scene.data_b: 0.1},
            stderr={scene.data_a: 0.0, scene.data_b: 0.0},
            method="exact",
            evaluations=4,
            by=scene.lab,
        )
        ws.share(
            ws.record_revenue(
                scene.service, "10.00", "EUR", period="2026-02", source="x", by=scene.lab
            )
        )
        with ws.store.engine.connect() as conn:
            data = build_report_data(conn, scene.service, "2026-Q1", verifier=ws.verifier)
    players = {p.name: p for p in data.document.valuations[0].players}
    assert players["A"].value == "0.07137254901960785"  # report.json keeps the record's value
    html = render_page(data.document, {}).replace('<td class="num">', "<td>")
    assert "0.07137254901960785" not in html
    assert "<td>0.07137</td><td>none (exact)</td>" in html
    assert "<td>0.1</td><td>none (exact)</td>" in html
    assert "<td>0.0</td>" not in html


@pytest.mark.parametrize(
    ("value", "stderr", "shown"),
    [
        ("0.07137254901960785", "0.0123", "0.071 ± 0.012"),
        ("0.31", "0.03", "0.310 ± 0.030"),
        ("1234.5678", "123", "1230 ± 120"),
        ("-0.0001", "0.02", "0.000 ± 0.020"),
        ("0.07137254901960785", "0.0", "0.07137"),
        ("0.07137254901960785", None, "0.07137"),
        ("12345.6", None, "12346"),
        ("1e-05", "0", "0.00001"),
        ("0.3", "0", "0.3"),
        ("0", None, "0"),
    ],
)
def test_values_read_as_scientists_round_them(value: str, stderr: str | None, shown: str) -> None:
    from quotepart.report.words import value_in_words

    assert value_in_words(value, stderr) == shown


_HARFBUZZ_SUBSET = (
    "HarfBuzz-Subset will be required by future versions of WeasyPrint. "
    "Please install this library with your package manager."
)


def _weasyprint_warning(message: str, module: str) -> Callable[[], Any]:
    """`_weasyprint` as on a machine that makes it warn: the warning, from `module`, then
    the real import (so the PDF is real where Pango is, and skipped with its reason where not)."""
    real = quotepart.report.static._weasyprint

    def warn_then_import() -> Any:
        warnings.warn_explicit(message, DeprecationWarning, f"{module}.py", 1, module=module)
        return real()

    return warn_then_import


def test_weasyprints_harfbuzz_subset_warning_does_not_stop_the_pdf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a machine with Pango but without libharfbuzz-subset0 says on the first import.
    monkeypatch.setattr(
        quotepart.report.static,
        "_weasyprint",
        _weasyprint_warning(_HARFBUZZ_SUBSET, "weasyprint.text.ffi"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, skipped = quotepart.report.static.pdf_bytes("<h1>Fair value share report</h1>")
    if data is None:
        if ON_CI:
            pytest.fail(f"CI=true but no PDF: {skipped}")
        pytest.skip(f"WeasyPrint cannot load here: {skipped}")
    assert data.startswith(b"%PDF-")
    assert skipped is None


@pytest.mark.parametrize(
    ("message", "module"),
    [
        ("this API is deprecated", "weasyprint.text.ffi"),  # WeasyPrint's other warnings
        (_HARFBUZZ_SUBSET, "quotepart.report.static"),  # the same words from anyone else
        (_HARFBUZZ_SUBSET, "weasyprint.text.ffi_extra"),
    ],
)
def test_every_other_deprecation_warning_still_fails(
    monkeypatch: pytest.MonkeyPatch, message: str, module: str
) -> None:
    monkeypatch.setattr(
        quotepart.report.static, "_weasyprint", _weasyprint_warning(message, module)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning, match=re.escape(message)):
            quotepart.report.static.pdf_bytes("<p>x</p>")


def test_without_harfbuzz_subset_the_same_page_makes_the_same_pdf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """fontTools, WeasyPrint's fallback subsetter, stamps fonts with the time of writing
    (seen on a fresh machine: publishing the same report again appended a new entry)."""
    if quotepart.report.static.pdf_bytes("<p>probe</p>")[0] is None:
        if ON_CI:
            pytest.fail("CI=true but WeasyPrint cannot load")
        pytest.skip("WeasyPrint cannot load here")
    from fontTools.ttLib.tables import _h_e_a_d
    from weasyprint.pdf import fonts
    from weasyprint.text import ffi

    ticks = iter(range(10**9, 10**9 + 100))
    monkeypatch.setattr(_h_e_a_d, "timestampNow", lambda: next(ticks))
    monkeypatch.setattr(ffi, "harfbuzz_subset", None)  # as on a machine without the library
    monkeypatch.setattr(fonts, "harfbuzz_subset", None)
    page = "<h1>Report</h1><p>Hillside Growers earned 75.00 EUR.</p>"
    first, _ = quotepart.report.static.pdf_bytes(page)
    second, _ = quotepart.report.static.pdf_bytes(page)
    assert first is not None
    assert first == second


def test_a_weasyprint_that_cannot_load_prints_nothing_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout is for data: WeasyPrint prints installation advice there when Pango is
    missing (seen on a fresh machine, in `quotepart report`'s list of paths)."""

    def fails_to_load() -> Any:
        print("-----\nWeasyPrint could not import some external libraries.\n-----")
        raise OSError("cannot load library 'libgobject-2.0-0'")

    monkeypatch.setattr(quotepart.report.static, "_weasyprint", fails_to_load)
    data, reason = quotepart.report.static.pdf_bytes("<p>x</p>")
    assert data is None
    assert reason is not None
    assert "libgobject" in reason
    assert capsys.readouterr().out == ""
