"""The demo story: a health-data cooperative's model earns money, and everyone who made it gets paid.

Built only from the public SDK, on scikit-learn's bundled breast-cancer data (569 real
patient records), so it runs offline:

1. six hospitals contribute cohorts of unequal size and quality (one with noisy
   labels, one a near-duplicate of another), an annotators' collective corrects labels,
   a university grants compute;
2. a lab trains a diagnosis model (`ws.track`), a startup builds a second model on top
   of it with data of its own, and serves it as an API;
3. clinics call the API (pseudonymised before anything is stored) and the quarter's
   usage is billed as revenue;
4. every cohort is valued (KNN-Shapley per record, summed per cohort after dropping
   the records that copy an earlier cohort's: `ws.value_inputs`), policies are set, the revenue is shared through the whole lineage, and the
   SEPA payment file and statements are written;
5. the report is published, the log is audited, and one hospital checks its cut from
   its statement file alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from schwifty import IBAN
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from quotepart.ids import Digest, PartyId
from quotepart.metering import UsageEvent
from quotepart.money import format_amount
from quotepart.sharing import verify_statement
from quotepart.valuation import knn_shapley
from quotepart.workspace import Workspace

PERIOD = "2026-Q1"
QUARTER_START = datetime(2026, 1, 1, tzinfo=UTC)
HOSPITALS = (
    ("St Mary's Hospital", 100, "clean"),
    ("Northgate General", 80, "clean"),
    ("Riverside Clinic", 70, "clean"),
    ("Hillcrest Medical Centre", 60, "clean"),
    ("Eastport Hospital", 55, "noisy labels: 40 % flipped"),
    ("Westfield Infirmary", 40, "near-duplicate of Northgate General"),
)


@dataclass
class DemoResult:
    """What the demo made, for the CLI's closing lines, tests and bench/demo.py."""

    folder: Path
    out: Path
    revenue: str = ""
    total_minor: int = 0
    amounts: dict[str, int] = field(default_factory=dict)  # party name -> minor units
    statements: dict[str, int] = field(default_factory=dict)  # party name -> minor units
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> seconds
    cohort_values: dict[str, float] = field(default_factory=dict)
    copied_records: int = 0  # records dropped from a cohort as copies of an earlier one
    report: Path | None = None
    noisy_auroc: float = 0.0


def _model() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def _iban(number: int) -> str:
    return str(IBAN.generate("DE", bank_code="37040044", account_code=f"{5320130 + number:010d}"))


class Story:
    def __init__(
        self, ws: Workspace, out: Path, say: Callable[[str], None], progress: bool
    ) -> None:
        self.ws = ws
        self.out = out
        self.say = say
        self.progress = progress
        self.result = DemoResult(ws.path, out)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.result.seconds[name] = time.perf_counter() - started

    # ---------------------------------------------------------------- 1

    def contributors(self) -> None:
        ws = self.ws
        features, y = load_breast_cancer(return_X_y=True)
        rng = np.random.default_rng(7)
        order = rng.permutation(len(y))
        self.x_test, self.y_test = features[order[:170]], y[order[:170]]
        rest = order[170:]
        self.coop = ws.register_party(
            "Riverside Health Data Cooperative",
            roles=("coop", "operator"),
            payout_reference=_iban(0),
        )
        self.hospitals: list[PartyId] = []
        self.cohorts: list[Digest] = []
        self.cohort_rows: list[tuple[np.ndarray, np.ndarray]] = []
        start = 0
        for number, (name, size, quality) in enumerate(HOSPITALS, 1):
            hospital = ws.register_party(name, payout_reference=_iban(number))
            if quality.startswith("near-duplicate"):
                source_x, source_y = self.cohort_rows[1]
                rows_x = source_x[:size] * (
                    1 + rng.normal(0, 0.002, size=(size, features.shape[1]))
                )
                rows_y = source_y[:size].copy()
            else:
                rows = rest[start : start + size]
                start += size
                rows_x, rows_y = features[rows], y[rows].copy()
                if quality.startswith("noisy"):
                    self.flipped = rng.random(size) < 0.4
                    self.noisy_index = number - 1
                    rows_y[self.flipped] = 1 - rows_y[self.flipped]
            cohort = ws.register_data(
                (rows_x, rows_y), name=f"{name} cohort", by=hospital, asset_kind="cohort"
            )
            ws.contribute(cohort, {hospital: 1}, role="data", by=hospital)
            self.hospitals.append(hospital)
            self.cohorts.append(cohort)
            self.cohort_rows.append((rows_x, rows_y))
        self.registered = list(self.cohort_rows)  # as registered, before label corrections
        self.startup_rows = rest[start:]
        self.say(
            f"1. {len(HOSPITALS)} hospitals contributed cohorts of 40 to 100 patient records "
            "(scikit-learn's breast-cancer data); Eastport's labels are 40 % wrong, "
            "Westfield's cohort nearly copies Northgate's."
        )
        # The annotators' collective re-labels half of Eastport's wrong labels.
        noisy_x, noisy_y = self.cohort_rows[self.noisy_index]
        wrong = np.flatnonzero(self.flipped)
        fixed = wrong[: len(wrong) // 2]
        names = ("Amara Okafor", "Jonas Weber", "Li Na")
        self.annotators = {
            n: ws.register_party(n, agent_type="person", payout_reference=_iban(20 + i))
            for i, n in enumerate(names)
        }
        annotations = np.array(
            [(int(r), int(1 - noisy_y[r]), names[i % 3]) for i, r in enumerate(fixed)],
            dtype=[("record", "i8"), ("label", "i8"), ("annotator", "U20")],
        )
        self.collective = ws.register_party(
            "Open Label Collective",
            roles=("contributor",),
            agent_type="community",
            payout_reference=_iban(30),
        )
        self.labels = ws.register_labelling_batch(
            annotations, name="Eastport label corrections", by=self.collective,
            annotator_column="annotator", annotators=self.annotators, of=[self.cohorts[self.noisy_index]],
            label_set=["benign", "malignant"],
        )  # fmt: skip
        noisy_y = noisy_y.copy()
        noisy_y[fixed] = 1 - noisy_y[fixed]
        self.flipped[fixed] = False
        self.cohort_rows[self.noisy_index] = (noisy_x, noisy_y)
        self.university = ws.register_party("University of Lakeside", payout_reference=_iban(40))
        self.grant = ws.register_compute_grant(
            name="Lakeside HPC allocation", grantor=self.university,
            resources={"cpu_hours": "1200"}, provider="Lakeside HPC",
        )  # fmt: skip
        self.say(
            f"   3 annotators corrected {len(fixed)} labels; Lakeside University granted 1,200 CPU hours."
        )

    # ---------------------------------------------------------------- 2

    def models(self) -> None:
        ws = self.ws
        self.lab = ws.register_party(
            "Civic AI Lab", roles=("operator",), payout_reference=_iban(50)
        )
        x_train = np.vstack([rows for rows, _ in self.cohort_rows])
        y_train = np.concatenate([labels for _, labels in self.cohort_rows])
        tracked = ws.track(
            _model(), operator=self.lab, name="Diagnosis model v1",
            uses=[*self.cohorts, self.labels, self.grant],
            intended_use="decision support for breast-cancer screening",
        ).fit(x_train, y_train)  # fmt: skip
        assert tracked.model is not None
        self.base: Digest = tracked.model
        self.base_model = tracked.estimator
        self.startup = ws.register_party(
            "Nimbus Diagnostics", roles=("operator",), payout_reference=_iban(60)
        )
        x_all, y_all = load_breast_cancer(return_X_y=True)
        own_x, own_y = x_all[self.startup_rows], y_all[self.startup_rows]
        self.own_data = ws.register_data(
            (own_x, own_y), name="Nimbus screening records", by=self.startup
        )
        ws.contribute(self.own_data, {self.startup: 1}, role="data", by=self.startup)
        stacked_x = np.column_stack([own_x, self.base_model.predict_proba(own_x)[:, 1]])
        second = ws.track(
            _model(), operator=self.startup, name="Diagnosis model v2 (fine-tuned)",
            uses=[self.base, self.own_data],
        ).fit(stacked_x, own_y)  # fmt: skip
        assert second.model is not None
        self.model: Digest = second.model
        self.service = ws.register_service(
            name="Nimbus triage API", endpoint="https://api.nimbus.example/v2/triage",
            model=self.model, by=self.startup, unit="prediction",
        )  # fmt: skip
        accuracy = self.base_model.score(self.x_test, self.y_test)
        self.say(
            f"2. Civic AI Lab trained model v1 (held-out accuracy {accuracy:.1%}); Nimbus built v2 on "
            "top of it with its own records and serves it as an API. Provenance was recorded by fit()."
        )

    # ---------------------------------------------------------------- 3

    def usage(self) -> None:
        ws = self.ws
        rng = np.random.default_rng(11)
        events = []
        for clinic in range(12):
            calls = int(rng.integers(40, 260))
            for _ in range(calls):
                at = QUARTER_START + timedelta(minutes=int(rng.integers(0, 90 * 24 * 60)))
                events.append(UsageEvent(f"clinic-{clinic:02d}@health.example", 1, at))
        events.sort(key=lambda e: e.at)
        ws.record_usage_many(self.service, events, by=self.startup)
        self.revenue = ws.bill_usage(
            self.service, PERIOD, unit_price="4.50", currency="EUR", by=self.startup
        )
        self.say(
            f"3. 12 clinics called the API {len(events):,} times in {PERIOD} (pseudonymised before "
            f"storage); billed at 4.50 EUR a prediction."
        )

    # ---------------------------------------------------------------- 4

    def value_and_share(self) -> None:
        ws = self.ws
        # Each cohort as registered (Eastport's with its wrong labels: the collective is
        # paid for the corrections); copies of an earlier cohort's records are dropped
        # before valuing, so Westfield's near-copy takes nothing from Northgate.
        valued = ws.value_inputs(
            self.base, {c: rows for c, rows in zip(self.cohorts, self.registered, strict=True)},
            (self.x_test, self.y_test), by=self.lab,
        )  # fmt: skip
        names = [name for name, _, _ in HOSPITALS]
        self.result.cohort_values = {
            n: valued.values[c] for n, c in zip(names, self.cohorts, strict=True)
        }
        self.result.copied_records = sum(c.records for c in valued.copies)
        noisy_x, noisy_y = self.cohort_rows[self.noisy_index]
        record_values = knn_shapley(noisy_x, noisy_y, self.x_test, self.y_test, k=5)
        self.result.noisy_auroc = float(roc_auc_score(self.flipped, -record_values))
        np.savetxt(
            self.out / "eastport-record-values.csv",
            record_values,
            delimiter=",",
            header="knn_shapley",
            comments="",
        )
        self.say(
            f"4. KNN-Shapley per record, summed per cohort after dropping "
            f"{self.result.copied_records} copied records: "
            + ", ".join(f"{n} {v:+.3f}" for n, v in self.result.cohort_values.items())
            + f". It finds Eastport's remaining wrong labels (AUROC {self.result.noisy_auroc:.2f})."
        )
        ws.set_policy(
            self.base, pool="2/5", roles={"data": "7/10", "annotation": "1/5", "compute": "1/10"},
            weighting={"data": "valuation", "annotation": "equal", "compute": "equal"},
            minimum_payout=1000, by=self.lab,
        )  # fmt: skip
        ws.set_policy(
            self.model, pool="3/10", roles={"data": "2/5", "upstream_model": "3/5"},
            weighting="equal", minimum_payout=1000, by=self.startup,
        )  # fmt: skip
        shared = ws.share(self.revenue)
        names_of = {p.party: p.name for p in ws.parties()}
        self.result.revenue = str(self.revenue)
        self.result.total_minor = shared.allocation.total_minor
        self.result.amounts = {names_of[p]: a for p, a in shared.allocation.amounts.items()}
        self.say(
            f"   Policies: Nimbus shares 30 % of revenue (3/5 of it upstream to model v1), the lab 40 % "
            f"of what reaches v1. {format_amount(shared.allocation.total_minor, 'EUR')} EUR shared "
            f"exactly among {len(shared.allocation.amounts)} parties."
        )

    def pay_and_state(self) -> None:
        ws = self.ws
        payout = ws.export_payout(
            PERIOD, "EUR", "sepa", by=self.startup, debtor_name="Nimbus Diagnostics",
            debtor_iban=_iban(60),
        )  # fmt: skip
        sepa = self.out / "payout-2026-Q1.xml"
        sepa.write_bytes(payout.content)
        statements = self.out / "statements"
        statements.mkdir(exist_ok=True)
        names_of = {p.party: p.name for p in ws.parties()}
        for party in [
            *self.hospitals,
            *self.annotators.values(),
            self.university,
            self.lab,
            self.startup,
        ]:
            statement = ws.statement(party, PERIOD)
            slug = names_of[party].lower().replace(" ", "-").replace("'", "")
            (statements / f"{slug}.csv").write_text(statement.to_csv())
            self.result.statements[names_of[party]] = sum(statement.totals.values())
        self.proof_file = self.out / "st-marys-statement-proof.json"
        self.proof_file.write_text(
            json.dumps(ws.statement_proof(self.hospitals[0], PERIOD), indent=1)
        )
        self.result.files += [
            sepa,
            statements,
            self.proof_file,
            self.out / "eastport-record-values.csv",
        ]
        carried = len(payout.carried)
        transfers = payout.content.count(b"<CdtTrfTxInf>")
        self.say(
            f"   SEPA file: {transfers} credit transfers (Nimbus keeps its own share), "
            f"{len(payout.paid)} balances settled, {format_amount(sum(payout.paid.values()), 'EUR')} EUR"
            + (
                f"; {carried} balance(s) under 10.00 EUR carried to next quarter."
                if carried
                else "."
            )
        )

    # ---------------------------------------------------------------- 5

    def report_and_verify(self) -> None:
        ws = self.ws
        files = ws.publish_report(self.service, PERIOD, self.out / "report", by=self.startup)
        made = [files.json_path, files.html_path] + ([files.pdf_path] if files.pdf_path else [])
        self.result.files += made
        self.result.report = files.json_path
        self.say(
            f"5. Published the fair-value report ({', '.join(p.suffix[1:] for p in made)}), "
            f"recorded in the log as entry {files.leaf_index}."
            + (f" No PDF: {files.pdf_skipped}" if files.pdf_skipped else "")
        )
        audit = ws.verify()
        checked = verify_statement(
            json.loads(self.proof_file.read_text()), trusted_key=str(ws.verifier)
        )
        self.say(
            f"   quotepart verify: {audit.tree_size:,} entries, every signature and checkpoint, "
            "projections equal a replay."
        )
        self.say(
            f"   St Mary's checked its cut from its statement file alone: "
            f"{format_amount(checked.totals.get('EUR', 0), 'EUR')} EUR, recomputed from "
            f"{checked.entries} entries proven in the signed checkpoint."
        )


STEPS = (
    ("contributors", "registering hospitals, cohorts, labels and compute"),
    ("models", "training the two models"),
    ("usage and billing", "recording API usage and billing it"),
    ("valuation and sharing", "valuing the cohorts and sharing the revenue"),
    ("payout and statements", "writing the SEPA file and statements"),
    ("report and verification", "publishing the report and verifying everything"),
)


def run_story(
    ws: Workspace,
    out: Path,
    say: Callable[[str], None],
    *,
    progress: bool = False,
    on_step: Callable[[int, str], None] | None = None,
) -> DemoResult:
    """The whole story on an empty workspace; returns what it made and how long each step took.

    `on_step(number, description)` is called before each step (the CLI's progress bar).
    """
    story = Story(ws, out, say, progress)
    steps = {
        "contributors": story.contributors,
        "models": story.models,
        "usage and billing": story.usage,
        "valuation and sharing": story.value_and_share,
        "payout and statements": story.pay_and_state,
        "report and verification": story.report_and_verify,
    }
    for number, (name, description) in enumerate(STEPS):
        if on_step is not None:
            on_step(number, description)
        with story.step(name):
            steps[name]()
    return story.result
