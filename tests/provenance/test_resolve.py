"""Parties and assets named by id, printed prefix or unique name; unknown ids are errors."""

from __future__ import annotations

import pytest

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId
from quotepart.workspace import Workspace


def _scene(ws: Workspace) -> tuple[PartyId, PartyId, Digest]:
    grower = ws.register_party("Hillside Growers")
    lab = ws.register_party("Vineyard Lab", roles=("operator",))
    data = ws.register_data(b"cultivar rows", name="cultivar data", by=grower)
    return grower, lab, data


def test_names_and_prefixes_resolve(ws: Workspace) -> None:
    grower, lab, data = _scene(ws)
    assert ws.resolve_party("Hillside Growers") == grower
    assert ws.resolve_party(str(lab)) == lab
    assert ws.resolve_party(str(lab)) == lab
    assert ws.resolve_asset("cultivar data") == data
    assert ws.resolve_asset(str(data)[:15]) == data
    assert ws.resolve_asset(data) == data
    ws.contribute("cultivar data", {"Hillside Growers": 1}, role="data", by="Hillside Growers")
    assert ws.declared_share_total("cultivar data") == 1


def test_ambiguous_and_unknown_are_refused(ws: Workspace) -> None:
    _scene(ws)
    twin = ws.register_party("Hillside Growers")
    with pytest.raises(InputError, match=f"more than one party.*{twin}"):
        ws.resolve_party("Hillside Growers")
    with pytest.raises(NotFoundError, match="no party 'Nobody'") as party:
        ws.resolve_party("Nobody")
    assert "quotepart party list" in (party.value.hint or "")
    with pytest.raises(NotFoundError, match="no asset 'sha256:ffff0000'") as asset:
        ws.resolve_asset("sha256:ffff0000")
    assert "quotepart asset list" in (asset.value.hint or "")
    with pytest.raises(TypeError, match="PartyId or a name"):
        ws.statement(42, "2026")  # type: ignore[arg-type]


def test_unknown_ids_are_errors_not_empty_results(ws: Workspace) -> None:
    _scene(ws)
    stranger = PartyId.parse("party:01KDVDNA06E8DP3AR9Z4NPV1PC")
    nothing = Digest.of_bytes(b"never registered")
    with pytest.raises(NotFoundError, match=f"unknown party {stranger}"):
        ws.statement(stranger, "2026-Q1")
    with pytest.raises(NotFoundError, match=f"unknown party {stranger}"):
        ws.statement_proof(stranger, "2026-Q1")
    with pytest.raises(NotFoundError, match="unknown asset"):
        ws.declared_share_total(nothing)
    with pytest.raises(NotFoundError, match="unknown asset"):
        ws.usage_units(nothing, "2026")
    with pytest.raises(NotFoundError):
        ws.lineage(nothing)
    with pytest.raises(NotFoundError):
        ws.contributions_feeding(nothing)
    with pytest.raises(NotFoundError):
        ws.models_using(nothing)


def test_a_known_party_with_nothing_gets_an_empty_statement(ws: Workspace) -> None:
    grower, _, _ = _scene(ws)
    statement = ws.statement("Hillside Growers", "2026-Q1")
    assert statement.party == grower
    assert statement.items == []


def test_every_sdk_by_takes_a_name_and_a_wrong_type_is_told_what_is_expected(
    ws: Workspace,
) -> None:
    """`by=` of any fact (here register_data, register_asset, record_usage) signs for the
    party named, through the ledger: not `AttributeError: 'str' object has no attribute 'ulid'`."""
    lab = ws.register_party("Vineyard Lab", roles=("operator",))
    data = ws.register_data(b"rows", name="cultivar rows", by="Vineyard Lab")
    assert ws.asset(data) is not None
    assert ws.asset(data).registered_by == lab  # type: ignore[union-attr]
    size = ws.store.tree_size()
    with pytest.raises(NotFoundError, match="no party 'Nobody'"):
        ws.register_asset(b"other", asset_kind="dataset", name="o", by="Nobody")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a party is a PartyId or a name"):
        ws.register_asset(b"other", asset_kind="dataset", name="o", by=42)  # type: ignore[arg-type]
    assert ws.store.tree_size() == size
