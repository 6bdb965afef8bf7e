"""A realistic value chain for report tests: a triage service over a model fine-tuned from
a base model, trained on two hospitals' data, a labelling batch and a compute grant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quotepart.metering import UsageEvent
from quotepart.workspace import Workspace


class ReportScene:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.lab = ws.register_party("Northside Diagnostics Lab", roles=("operator",))
        self.hospital_a = ws.register_party("St Mary's Hospital")
        self.hospital_b = ws.register_party("Riverside Clinic")
        self.nurse_coop = ws.register_party("Nurses' Labelling Co-op", agent_type="community")
        self.annotator = ws.register_party("Amina Odhiambo", agent_type="person")
        self.gpu_donor = ws.register_party("Open Compute Fund")
        self.base_lab = ws.register_party(
            "Base Models Institute", roles=("contributor", "operator")
        )
        self.corpus_owner = ws.register_party("Public Health Archive")

        self.corpus = ws.register_asset(
            b"public corpus",
            asset_kind="dataset",
            name="Public health corpus",
            by=self.corpus_owner,
        )
        ws.contribute(self.corpus, {self.corpus_owner: 1}, role="data", by=self.corpus_owner)
        with ws.run("pretrain base model", operator=self.base_lab) as run:
            run.use(self.corpus)
            self.base = ws.register_asset(
                b"base weights", asset_kind="model", name="Base model v1", by=self.base_lab
            )
            run.produce(self.base)
        ws.set_policy(
            self.base, pool="1/2", roles={"data": "1"}, weighting="equal", by=self.base_lab
        )

        self.admissions = ws.register_asset(
            b"admissions", asset_kind="dataset", name="Admissions 2025", by=self.hospital_a
        )
        self.imaging = ws.register_asset(
            b"imaging", asset_kind="dataset", name="Chest X-ray notes", by=self.hospital_b
        )
        self.noisy = ws.register_asset(
            b"noisy", asset_kind="dataset", name="Scraped forum posts", by=self.lab
        )
        self.labels = ws.register_asset(
            b"labels",
            asset_kind="labelling_batch",
            name="Triage labels, batch 3",
            by=self.nurse_coop,
        )
        ws.contribute(self.admissions, {self.hospital_a: 1}, role="data", by=self.hospital_a)
        ws.contribute(self.imaging, {self.hospital_b: 1}, role="data", by=self.hospital_b)
        ws.contribute(self.noisy, {self.lab: 1}, role="data", by=self.lab)
        ws.contribute(
            self.labels, {self.nurse_coop: "2/3", self.annotator: "1/3"}, role="annotation",
            by=self.nurse_coop,
        )  # fmt: skip
        self.grant = ws.register_compute_grant(
            name="GPU grant 2026", grantor=self.gpu_donor, resources={"gpu_hours": 120}
        )
        with ws.run("fine-tune triage model", operator=self.lab) as run:
            for asset in (
                self.base,
                self.admissions,
                self.imaging,
                self.noisy,
                self.labels,
                self.grant,
            ):
                run.use(asset)
            self.model = ws.register_asset(
                b"triage weights", asset_kind="model", name="Triage model v2", by=self.lab
            )
            run.produce(self.model)
        self.service = ws.register_service(
            name="Triage API", endpoint="https://api.example.org/triage", model=self.model,
            by=self.lab,
        )  # fmt: skip
        ws.set_policy(
            self.model, pool="1/5",
            roles={"data": "1/2", "annotation": "1/4", "compute": "1/10", "upstream_model": "3/20"},
            weighting={"data": "valuation", "annotation": "equal", "compute": "equal",
                       "upstream_model": "equal"},
            by=self.lab,
        )  # fmt: skip
        ws.record_valuation(
            self.model,
            {self.admissions: 0.31, self.imaging: 0.12, self.noisy: -0.04},
            stderr={self.admissions: 0.03, self.imaging: 0.025, self.noisy: 0.02},
            method="PermutationShapley",
            parameters={"n_permutations": 200, "truncation": "0.01"},
            seed=20260107,
            evaluations=1200,
            utility="accuracy on the held-out 20 %",
            by=self.lab,
        )

    def add_usage(self, days: int = 40, start: datetime | None = None) -> None:
        moment = start or datetime(2026, 1, 5, 9, tzinfo=UTC)
        events = []
        for day in range(days):
            for consumer in range(1 + day % 4):
                events.append(
                    UsageEvent(f"clinic-{consumer}", 3 + (day * 7 + consumer) % 11,
                               moment + timedelta(days=day, hours=consumer))
                )  # fmt: skip
        self.ws.record_usage_many(self.service, events, by=self.lab)

    def earn(self) -> list[str]:
        """Usage billed for Q1, plus a licence fee in February, both shared."""
        self.add_usage()
        billed = self.ws.bill_usage(
            self.service, "2026-Q1", unit_price="0.25", currency="EUR", by=self.lab
        )
        licence = self.ws.record_revenue(
            self.service, "1500.00", "EUR", period="2026-02", source="licence, Clinic group",
            by=self.lab,
        )  # fmt: skip
        for revenue in (billed, licence):
            self.ws.share(revenue)
        return [str(billed), str(licence)]
