"""Every entry kind, walked from its declaration: a known-answer vector round-trips, it has
a projection or is marked log-only, and verify's replay goes through that projection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quotepart.errors import KindMismatchError
from quotepart.log.canonical import canonicalize
from quotepart.log.kinds import CURRENT, DECLARED, UPCASTERS, PartyRegistered, decode_body
from quotepart.log.kinds._base import KindBody, entry_kind
from quotepart.store.projections import PROJECTIONS

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "entry_kinds.json").read_text())[
    "vectors"
]


def _id(vector: dict[str, Any]) -> str:
    return f"{vector['kind']}-v{vector['version']}"


@pytest.mark.parametrize("vector", VECTORS, ids=_id)
def test_a_vector_decodes_and_encodes_to_its_known_canonical_body(vector: dict[str, Any]) -> None:
    body = decode_body(vector["kind"], vector["version"], vector["body"])
    assert type(body) is CURRENT[vector["kind"]]
    assert canonicalize(body.to_body()).decode() == vector["canonical_body"]
    again = decode_body(vector["kind"], body.VERSION, json.loads(vector["canonical_body"]))
    assert again == body


def test_every_declared_kind_and_every_old_version_has_a_vector() -> None:
    covered = {(v["kind"], v["version"]) for v in VECTORS}
    for kind, declared in DECLARED.items():
        for version in range(1, declared.version + 1):
            assert (kind, version) in covered, f"no vector for {kind} v{version}"


def test_every_kind_has_a_projection_or_is_log_only() -> None:
    for kind, declared in DECLARED.items():
        assert (kind in PROJECTIONS) != declared.log_only, kind
        if kind in PROJECTIONS:
            assert PROJECTIONS[kind].body is declared.body
    assert set(PROJECTIONS) <= set(DECLARED)


def test_registries_are_built_from_the_declarations() -> None:
    assert {kind: declared.body for kind, declared in DECLARED.items()} == CURRENT
    assert set(UPCASTERS) == {
        (kind, version) for kind, d in DECLARED.items() for version in range(1, d.version)
    }
    assert CURRENT["party.registered"] is PartyRegistered
    assert PartyRegistered.VERSION == 2


def test_a_kind_without_an_upcaster_for_each_older_version_is_refused() -> None:
    with pytest.raises(TypeError, match="upcaster"):

        @entry_kind("test.skipped", version=2)
        class Skipped(KindBody):
            pass

    assert "test.skipped" not in DECLARED


def test_verify_replays_every_projected_kind(tmp_path: Path) -> None:
    """A log holding every projected kind passes verify, whose replay rebuilds each table
    through the declared projections and compares it with the live one."""
    from datetime import UTC, datetime

    from quotepart.ids import Period
    from quotepart.workspace import init_workspace
    from tests.conftest import FakeClock
    from tests.sharing.test_workspace_sharing import GOOD_IBANS, Scene

    with init_workspace(tmp_path / "ws", clock=FakeClock()) as ws:
        scene = Scene(ws)
        ws.grant_consent(scene.hospital_a, scene.data_a)
        ws.grant_right(scene.hospital_b, "valuation", scene.model, by=scene.lab)
        ws.revoke_right(scene.hospital_b, "valuation", scene.model, by=scene.lab)
        ws.file_claim(scene.data_a, "our records, copied", by=scene.hospital_b)
        notes = ws.register_asset(b"notes", asset_kind="dataset", name="N", by=scene.lab)
        from quotepart.log.kinds import OverlapDetected

        copy = ws.register_asset(b"copy", asset_kind="dataset", name="C", by=scene.hospital_b)
        ws.ledger.append(
            OverlapDetected(copy, scene.data_a, 1, 1, "exact"), author=scene.hospital_b
        )
        [proposed] = ws.contribute(notes, {scene.annotator: "1/2"}, role="data", by=scene.annotator)
        ws.accept_contribution(proposed, by=scene.lab)
        ws.record_usage(
            scene.service, "consumer-1", 3, datetime(2026, 1, 5, tzinfo=UTC), by=scene.lab
        )
        ws.define_meter(scene.service, "calls", event_type="api.call", aggregation="count")
        ingested = ws.meter(scene.service).ingest(
            [{"specversion": "1.0", "id": "e1", "source": "//api", "type": "api.call",
              "time": "2026-01-06T10:00:00Z", "subject": "consumer-1"}]
        )  # fmt: skip
        assert ingested.recorded == 1
        from quotepart.log.kinds import TariffSet

        ws.ledger.append(
            TariffSet(scene.service, "calls", "EUR", "10.00", datetime(2026, 1, 1, tzinfo=UTC)),
            author=scene.lab,
        )
        from quotepart.log.kinds import PrivacyBudget, PrivacyReleased, UsageBilled

        ws.ledger.append(PrivacyBudget(scene.service, "1"), author=scene.lab)
        ws.ledger.append(
            PrivacyReleased(
                scene.service, "calls", Period.parse("2026-01"), "daily-count",
                "opendp:laplace", "0.5", (("2026-01-06", "1.5"),),
            ),
            author=scene.lab,
        )  # fmt: skip
        # a bill must be its recomputation (rule `billing`): billed through the workspace
        bill = ws.bill_usage(scene.service, "2026-01", currency="EUR", by=scene.lab)
        assert isinstance(bill.body, UsageBilled)
        revenue = bill.revenue
        ws.share(revenue)
        ws.change_payout_reference(scene.hospital_b, "+254700000002")
        ws.export_payout("2026-01", "EUR", by=scene.lab, debtor_name="Lab",
                         debtor_iban=GOOD_IBANS[2], minimum_minor=1)  # fmt: skip
        kinds = {ws.entry_at(i).kind for i in range(ws.store.tree_size())}
        assert set(PROJECTIONS) <= kinds
        report = ws.verify()
        assert report.tree_size == ws.store.tree_size()


def test_reading_an_entry_as_another_kind_names_both() -> None:
    from quotepart.log import sign_entry
    from quotepart.log.keys import SigningKey
    from quotepart.log.kinds import AssetRegistered
    from tests.conftest import FakeClock

    key = SigningKey.generate()
    from quotepart.ids import PartyId

    party = PartyId.new(FakeClock())
    body = PartyRegistered(party, "Ada", ("contributor",), key.public)
    entry = sign_entry(body, origin="test.local/log", author=party, key=key, clock=FakeClock())
    assert entry.body_as(PartyRegistered) == body
    with pytest.raises(KindMismatchError, match=r"party\.registered, not a asset\.registered"):
        entry.body_as(AssetRegistered)
