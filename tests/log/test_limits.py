"""Entries have documented limits, checked before the body is read: hostile sizes,
numbers and nesting get one clear error, never a traceback or a huge allocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from quotepart.cli import cli
from quotepart.errors import InputError, MalformedEntryError, VerificationError
from quotepart.ids import PartyId, RevenueId
from quotepart.log import sign_entry
from quotepart.log.canonical import (
    ENTRY_BYTES_CEILING,
    MAX_DEPTH,
    MAX_ENTRY_BYTES,
    MAX_STRING,
    parse_canonical,
)
from quotepart.log.keys import SigningKey
from quotepart.log.kinds import AllocationRecorded, decode_body
from quotepart.sharing import verify_statement
from quotepart.workspace import Workspace, init_workspace, open_workspace
from tests.conftest import FakeClock


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'{"a":' + b"9" * 5000 + b"}", "5000 digits"),
        (b'{"a":-' + b"1" * 17 + b"}", "beyond"),
        (b"[" * 5000 + b"]" * 5000, "nests deeper"),
        (b'{"a":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}", "nests deeper"),
        (b'{"a":"' + b"x" * (ENTRY_BYTES_CEILING + 1) + b'"}', "more than the limit"),
        (b'{"a":"' + b"x" * (MAX_STRING + 1) + b'"}', "characters, more than"),
    ],
)
def test_hostile_shapes_are_refused_before_they_cost_anything(data: bytes, says: str) -> None:
    with pytest.raises(MalformedEntryError, match=says):
        parse_canonical(data)


def test_ratios_and_decimals_with_huge_digits_are_malformed_not_valueerrors() -> None:
    party, asset = "party:" + "0" * 26, "sha256:" + "ab" * 32
    share = {"party": party, "asset": asset, "role": "data", "share": "1/" + "7" * 5000}
    with pytest.raises(MalformedEntryError, match="share"):
        decode_body("contribution.recorded", 1, share)
    valuation_value = "1e999999999"
    with pytest.raises(MalformedEntryError):
        decode_body(
            "valuation.recorded",
            1,
            {"model": asset, "values": {asset: valuation_value}, "method": "exact"},
        )


def test_an_entry_over_the_size_limit_is_refused_and_nothing_is_written(ws: Workspace) -> None:
    key = SigningKey.generate()
    amounts = {PartyId.parse(f"party:01J{n:023d}"): 1 for n in range(30_000)}
    body = AllocationRecorded(
        RevenueId.parse("revenue:01J" + "0" * 23), "EUR", len(amounts), amounts, ()
    )
    entry = sign_entry(
        body, author=PartyId.parse("party:01J" + "9" * 23), key=key, origin=ws.store.origin
    )
    assert len(entry.canonical) > MAX_ENTRY_BYTES
    size = ws.store.tree_size()
    with pytest.raises(InputError, match=r"more than this workspace.s limit"):
        ws.store.append([entry])
    assert ws.store.tree_size() == size


@pytest.mark.parametrize(
    ("part", "value"),
    [("entries", []), ("proofs", None), ("allocations", {}), ("entries", {"x": "AA=="})],
)
def test_a_statement_file_of_the_wrong_shape_is_one_clear_error(part: str, value: object) -> None:
    document = {
        "format": "quotepart-statement/2",
        "party": "party:" + "0" * 26,
        "period": "2026-Q1",
        "log": {"verifier_key": "k", "checkpoint": "c"},
        "entries": {},
        "proofs": {},
        "allocations": [],
        "claimed": {},
        "names": {},
    }
    document[part] = value
    with pytest.raises(VerificationError, match="statement file"):
        verify_statement(document)


def test_verify_statement_on_a_json_list_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "not-a-statement.json"
    path.write_text(json.dumps([1, 2, 3]))
    result = CliRunner().invoke(cli, ["verify-statement", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_a_workspace_sets_its_own_entry_limit_and_keeps_it(tmp_path: Path) -> None:
    with init_workspace(tmp_path / "ws", clock=FakeClock(), max_entry_bytes=4096) as ws:
        lab = ws.register_party("Lab")
        size = ws.store.tree_size()
        parameters = {f"parameter_{n}": "x" * 20 for n in range(200)}  # about 8 KB of entry
        with (
            pytest.raises(InputError, match="limit of 4,096"),
            ws.run("train", operator=lab, parameters=parameters) as run,
        ):
            run.produce(ws.register_asset(b"weights", asset_kind="model", name="M", by=lab))
        size += 1  # the model's registration, before the run
        assert ws.store.tree_size() == size
    with open_workspace(tmp_path / "ws", clock=FakeClock()) as again:
        assert again.store.max_entry_bytes == 4096
    with pytest.raises(InputError, match="max_entry_bytes"):
        init_workspace(tmp_path / "other", max_entry_bytes=10)
