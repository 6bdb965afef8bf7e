"""Names are text (issue 15, item 7): never markup, escapes or formulas.

Names holding a control character or a bidirectional override are refused when they are
signed and when an entry is parsed; names that only look like markup, HTML, a Mermaid
directive or a spreadsheet formula are legal and come out of every command and export as
the same literal text.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from quotepart.cli import cli
from quotepart.errors import InputError, MalformedEntryError
from quotepart.ids import Digest, PartyId
from quotepart.log import parse_entry, sign_entry
from quotepart.log.canonical import canonicalize
from quotepart.log.keys import SigningKey
from quotepart.log.kinds import PartyRegistered
from quotepart.report.service import render_report
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock

REFUSED = [
    "\x1b]0;pwned\x07",  # OSC: retitles the terminal
    "\x1b[2J Clinic",  # CSI: clears the screen
    "\u202eevil",  # right-to-left override
    "Clinic\u2066x",  # left-to-right isolate
    "Clinic\nParty B",  # a second line in every listing
    "Clinic\x85",  # NEL (C1)
]
LEGAL = [
    "[/bold] Clinic",
    "[link=https://evil]x[/link]",
    "<script>alert(1)</script>",
    "%%{init: {}}%%",
    '=HYPERLINK("x")',
    '"quoted"',
]


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


# ------------------------------------------------------------------ refused


@pytest.mark.parametrize("name", REFUSED, ids=ascii)
def test_control_characters_in_names_are_refused_and_nothing_is_written(
    tmp_path: Path, name: str
) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        lab = ws.register_party("Lab", roles=("operator",))
        size = ws.store.tree_size()
        keys = sorted(p.name for p in (tmp_path / "ws").rglob("*") if p.is_file())
        with pytest.raises(InputError, match=r"U\+[0-9A-F]{4}, a control or bidirectional") as err:
            ws.register_party(name)
        assert err.value.hint
        assert "control" in err.value.hint
        with pytest.raises(InputError, match="control or bidirectional"):
            ws.register_asset(b"x", asset_kind="dataset", name=name, by=lab)
        with pytest.raises(InputError, match="control or bidirectional"):
            ws.run(name, operator=lab)
        assert ws.store.tree_size() == size
        assert sorted(p.name for p in (tmp_path / "ws").rglob("*") if p.is_file()) == keys


def test_the_cli_refuses_a_control_character_in_one_line_with_a_hint(tmp_path: Path) -> None:
    folder = str(tmp_path / "ws")
    assert invoke("init", "--workspace", folder).exit_code == 0
    result = invoke("party", "add", "\x1b]0;pwned\x07", "--workspace", folder)
    assert result.exit_code == 2
    error, hint = result.stderr.splitlines()
    assert error.startswith("Error: party.registered: the name '\\x1b]0;pwned\\x07' holds U+001B")
    assert hint.startswith("Hint: remove it")
    assert "\x1b" not in result.stderr
    assert "\x07" not in result.stderr
    assert result.stdout == ""
    assert invoke("party", "list", "--workspace", folder).stdout == ""


@pytest.mark.parametrize("name", REFUSED, ids=ascii)
def test_an_entry_holding_a_control_character_does_not_parse(name: str) -> None:
    key = SigningKey.generate()
    party = PartyId.new(FakeClock())
    entry = sign_entry(
        PartyRegistered(party, "Clinic", ("contributor",), key.public),
        author=party,
        key=key,
        origin="example.org/log",
    )
    document = json.loads(entry.canonical)
    document["body"]["name"] = name
    with pytest.raises(MalformedEntryError, match="control or bidirectional"):
        parse_entry(canonicalize(document))


# -------------------------------------------------------------------- legal


class Scene:
    """A model trained on one dataset per hostile-looking party, sold as a service."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        lab = ws.register_party("Lab", roles=("operator",))
        self.parties = {name: ws.register_party(name) for name in LEGAL}
        self.data: dict[str, Digest] = {}
        for number, (name, party) in enumerate(self.parties.items()):
            self.data[name] = ws.register_asset(
                f"records {number}".encode(), asset_kind="dataset", name=name, by=party
            )
            ws.contribute(self.data[name], {party: 1}, role="data", by=party)
        with ws.run(LEGAL[0], operator=lab) as run:
            for digest in self.data.values():
                run.use(digest)
            self.model = ws.register_asset(b"weights", asset_kind="model", name=LEGAL[2], by=lab)
            run.produce(self.model)
        self.service = ws.register_service(
            name=LEGAL[1], endpoint="https://api.example.org/v1", model=self.model, by=lab
        )
        ws.set_policy(
            self.model, pool="1/2", roles={"data": "1"}, weighting={"data": "equal"}, by=lab
        )
        self.revenue = ws.record_revenue(
            self.service, "600.00", "EUR", period="2026-Q1", source="invoice 1", by=lab
        )


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[tuple[Scene, str]]:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=FakeClock()) as ws:
        yield Scene(ws), str(folder)


def test_party_list_prints_names_as_they_were_typed(scene: tuple[Scene, str]) -> None:
    _, folder = scene
    result = invoke("party", "list", "--workspace", folder)
    assert result.exit_code == 0, result.stderr
    for name in LEGAL:
        assert f"  {name}  (contributor)" in result.stdout


def test_share_prints_the_table_with_names_as_text_every_time(scene: tuple[Scene, str]) -> None:
    scene_, folder = scene
    for _ in range(2):  # the second share reads the recorded allocation back
        result = invoke("share", str(scene_.revenue), "--workspace", folder)
        assert result.exit_code == 0, result.output
        assert result.exception is None
        for name, party in scene_.parties.items():
            row = next(line for line in result.stdout.splitlines() if str(party) in line)
            assert name in row
        assert "\x1b]8;" not in result.stdout  # no hyperlink escape


def test_statement_text_and_csv_keep_names_and_defuse_formulas(scene: tuple[Scene, str]) -> None:
    scene_, folder = scene
    assert invoke("share", str(scene_.revenue), "--workspace", folder).exit_code == 0
    for name, party in scene_.parties.items():
        text = invoke("statement", str(party), "--period", "2026-Q1", "--workspace", folder)
        assert text.exit_code == 0, text.stderr
        assert text.stdout.startswith(f"{name} ({party})"), text.stdout
        table = invoke(
            "statement", str(party), "--period", "2026-Q1", "--csv", "--workspace", folder
        )
        assert table.exit_code == 0, table.stderr
        rows = list(csv.DictReader(io.StringIO(table.stdout)))
        assert rows
        for row in rows:
            assert row["party_name"] == ("'" + name if name.startswith("=") else name)
            assert row["asset_name"] == ("'" + name if name.startswith("=") else name)
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values())


def test_mermaid_labels_are_entity_codes_that_read_back_as_the_names(
    scene: tuple[Scene, str],
) -> None:
    scene_, folder = scene
    result = invoke("lineage", str(scene_.model), "--mermaid", "--workspace", folder)
    assert result.exit_code == 0, result.stderr
    found = re.findall(r'^  n\d+\(?\["([^"]*)"\]\)?$', result.stdout, flags=re.MULTILINE)
    assert len(found) == len(result.stdout.splitlines()) - 1 - result.stdout.count("-->")
    for label in found:
        assert not any(char in label for char in '<>%{}"`\n'), label
    labels = [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), label) for label in found]
    for name in LEGAL:
        assert f"{name} (dataset)" in labels
    assert f"{LEGAL[2]} (model)" in labels
    assert any(label.startswith(LEGAL[0] + " (") for label in labels)  # the run


def test_dot_labels_are_quoted_strings_that_read_back_as_the_names(
    scene: tuple[Scene, str],
) -> None:
    scene_, folder = scene
    result = invoke("lineage", str(scene_.model), "--dot", "--workspace", folder)
    assert result.exit_code == 0, result.stderr
    raw_labels = re.findall(r'label="((?:[^"\\]|\\.)*)"', result.stdout)
    labels = [
        re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), raw)
        for raw in raw_labels
    ]
    for name in LEGAL:
        assert f"{name}\ndataset" in labels
    assert f"{LEGAL[2]}\nmodel" in labels


def test_the_html_report_escapes_names(scene: tuple[Scene, str]) -> None:
    scene_, _folder = scene
    scene_.ws.share(scene_.revenue)
    page = render_report(scene_.ws.report_data(scene_.model, "2026-Q1"), pdf=False).html.decode()
    assert "<script>alert(1)</script>" not in page
    assert "[link=https://evil]" in page or "[link=https:\\/\\/evil]" in page
    for name in LEGAL:
        assert html.escape(name) in page, name
