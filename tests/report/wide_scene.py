"""A wide value chain for the charts' layout tests: 24 parties behind 12 datasets, two
labelling batches and two compute grants, three models (a base, a fine-tune of it, a
distillation), one service; long names, so that labels must be wrapped to fit."""

from __future__ import annotations

from quotepart.ids import PartyId
from quotepart.workspace import Workspace

_REGIONS = (
    "North", "South", "East", "West", "Central", "Coastal",
    "Highland", "Lowland", "Valley", "Metropolitan", "Rural", "Island",
)  # fmt: skip


class WideScene:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.operator = ws.register_party(
            "Wide Area Health Analytics Consortium", roles=("operator",)
        )
        self.parties: list[PartyId] = [self.operator]
        datasets = []
        for i, region in enumerate(_REGIONS):
            owner = ws.register_party(f"{region} Regional Hospital Trust")
            helper = ws.register_party(
                f"{region} Community Records Volunteers", agent_type="community"
            )
            self.parties += [owner, helper]
            asset = ws.register_asset(
                f"records {i}".encode(), asset_kind="dataset",
                name=f"{region} region admissions and discharge records 2020-2025", by=owner,
            )  # fmt: skip
            ws.contribute(asset, {owner: "3/4", helper: "1/4"}, role="data", by=owner)
            datasets.append(asset)
        labellers = [
            ws.register_party(f"Labelling Collective {n}", agent_type="community") for n in "AB"
        ]
        self.parties += labellers
        batches = []
        for n, labeller in zip("AB", labellers, strict=True):
            batch = ws.register_asset(
                f"labels {n}".encode(), asset_kind="labelling_batch",
                name=f"Expert triage labels, batch {n}", by=labeller,
            )  # fmt: skip
            ws.contribute(batch, {labeller: 1}, role="annotation", by=labeller)
            batches.append(batch)
        donors = [ws.register_party(f"{n} Compute Philanthropy Fund") for n in ("Open", "Civic")]
        self.parties += donors
        grants = [
            ws.register_compute_grant(
                name=f"GPU grant {n}", grantor=donor, resources={"gpu_hours": 100 * (n + 1)}
            )
            for n, donor in enumerate(donors)
        ]
        with ws.run("pretrain the base model", operator=self.operator) as run:
            for asset in datasets[:8]:
                run.use(asset)
            run.use(grants[0])
            self.base = ws.register_asset(
                b"wide base", asset_kind="model", name="Regional clinical base model v3",
                by=self.operator,
            )  # fmt: skip
            run.produce(self.base)
        ws.set_policy(
            self.base, pool="1/2", roles={"data": "1"}, weighting="equal", by=self.operator
        )
        with ws.run("fine-tune for triage", operator=self.operator) as run:
            run.use(self.base)
            for asset in (*datasets[8:], *batches, grants[1]):
                run.use(asset)
            self.model = ws.register_asset(
                b"wide triage", asset_kind="model", name="Emergency triage model, fine-tuned",
                by=self.operator,
            )  # fmt: skip
            run.produce(self.model)
        ws.set_policy(
            self.model, pool="1/4",
            roles={"data": "1/2", "annotation": "1/4", "compute": "1/10", "upstream_model": "3/20"},
            weighting="equal", by=self.operator,
        )  # fmt: skip
        self.service = ws.register_service(
            name="Emergency Triage API", endpoint="https://api.example.org/wide-triage",
            model=self.model, by=self.operator,
        )  # fmt: skip

    def earn(self) -> list[str]:
        revenue = self.ws.record_revenue(
            self.service, "24000.00", "EUR", period="2026-02", source="regional licence",
            by=self.operator,
        )  # fmt: skip
        self.ws.share(revenue)
        return [str(revenue)]
