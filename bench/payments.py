"""Payout exports: 10,000 SEPA payments to a schema-valid pain.001.001.09 file, and the
same number of rows of mobile-money CSV, against bare sepaxml and bare csv in the same run.

Issue "Fair sharing", target: 10,000 SEPA payments to a schema-valid pain.001 file in
under 15 s.

Measured from the same list of `Payment`s, each `--repeats` times (median reported):

* quotepart: `sepa_credit_transfer(..., validate=True)`. This is the target row. It checks
  every IBAN, BIC, name and reference, refuses duplicates, builds the file with sepaxml,
  validates it against the XSD, and then parses it back and compares it with the payments.
* quotepart, `validate=False`: the same without the XSD validation.
* competitor: bare sepaxml, with the payments turned into its dicts inline. First with
  `export(validate=False)`, which is the ceiling: no checks at all, and sepaxml accepts
  IBANs with a bad checksum. Then with `export(validate=True)`, sepaxml's own XSD
  validation. The ratios show what quotepart's checks cost on top.
* `mobile_money_csv` on the same number of rows, against `csv.writer` on rows that were
  prepared beforehand: the ceiling.

Payees are seeded: German IBANs whose mod-97 check digits are computed here (DE, 2 check
digits, 18 random digits), names that are partly non-Latin (so transliteration runs),
amounts from 1 cent to 10,000 EUR, and distinct ULID-shaped references.

    python bench/payments.py            # 10,000 payments, 3 repeats
    python bench/payments.py --quick    # 1,000 payments, 1 repeat: a smoke test
"""

from __future__ import annotations

import csv
import datetime
import io
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_rate,
    fmt_ratio,
    log,
    machine_info,
    median,
    new_table,
    rate,
    results_path,
    stdout,
    stopwatch,
    write_results,
)
from sepaxml import SepaTransfer

from quotepart.sharing.payments import SEPA_SCHEMA, Payment, mobile_money_csv, sepa_credit_transfer

TARGET_S = 15.0
EXECUTION_DATE = datetime.date(2026, 2, 2)
DEBTOR = {"name": "Data Coop eG", "IBAN": "DE02120300000000202051", "BIC": "COBADEFFXXX"}
MESSAGE_ID = "QP-BENCH-0001"
PAYMENT_PACKAGES = ("sepaxml", "schwifty", "xmlschema", "elementpath", "text-unidecode")
NAMES = ("Ada Lovelace", "Zoë Müller & Söhne", "Łukasz Żółć", "Дмитрий Иванов", "Ελένη Π.")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NS = {"p": f"urn:iso:std:iso:20022:tech:xsd:{SEPA_SCHEMA}"}


def german_iban(rng: random.Random) -> str:
    """DE + ISO 13616 check digits + an 18-digit BBAN (bank code + account number)."""
    bban = "".join(rng.choice("0123456789") for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, then check digits 00
    return f"DE{check:02d}{bban}"


def make_payments(count: int, seed: int, *, currency: str, mobile: bool) -> list[Payment]:
    rng = random.Random(seed)
    return [
        Payment(
            payee=f"party:{''.join(rng.choice(CROCKFORD) for _ in range(26))}",
            name=f"{rng.choice(NAMES)} {index}",
            amount_minor=rng.randint(1, 1_000_000),
            currency=currency,
            reference=f"payout:{''.join(rng.choice(CROCKFORD) for _ in range(26))}",
            account=f"+2547{rng.randrange(10**8):08d}" if mobile else german_iban(rng),
        )
        for index in range(count)
    ]


def quotepart_sepa(payments: Sequence[Payment], *, validate: bool) -> bytes:
    return sepa_credit_transfer(
        payments,
        debtor_name=DEBTOR["name"],
        debtor_iban=DEBTOR["IBAN"],
        debtor_bic=DEBTOR["BIC"],
        execution_date=EXECUTION_DATE,
        message_id=MESSAGE_ID,
        validate=validate,
    )


def bare_sepaxml(payments: Sequence[Payment], *, validate: bool) -> bytes:
    """What a caller gets from sepaxml alone: no IBAN checks, no duplicate checks."""
    transfer = SepaTransfer(
        {**DEBTOR, "batch": True, "currency": "EUR"}, schema=SEPA_SCHEMA, clean=True
    )
    for payment in payments:
        transfer.add_payment(
            {
                "name": payment.name,
                "IBAN": payment.account,
                "amount": payment.amount_minor,
                "execution_date": EXECUTION_DATE,
                "description": payment.reference,
                "endtoend_id": payment.reference,
            }
        )
    xml: bytes = transfer.export(validate=validate)
    return xml


def bare_csv(rows: Sequence[tuple[str, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("msisdn", "amount_minor", "currency", "reference", "batch_id"))
    writer.writerows(rows)
    return buffer.getvalue()


def transactions(xml: bytes) -> list[tuple[str | None, str | None]]:
    root = ET.fromstring(xml)
    return [
        (
            tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
            tx.findtext("p:Amt/p:InstdAmt", namespaces=NS),
        )
        for tx in root.iterfind(".//p:CdtTrfTxInf", NS)
    ]


def timed(name: str, repeats: int, run: Callable[[], Any]) -> tuple[list[float], Any]:
    seconds: list[float] = []
    output: Any = None
    for repeat in range(repeats):
        with stopwatch() as elapsed:
            output = run()
        seconds.append(elapsed[0])
        log(f"{name}, repeat {repeat + 1}: {elapsed[0]:.3f} s")
    return seconds, output


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--payments", type=int, default=10_000, help="payments per file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated payees")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    count = 1_000 if args.quick else args.payments
    repeats = 1 if args.quick else args.repeats

    log(f"generating {count:,} SEPA and {count:,} mobile-money payments (seed {args.seed})")
    sepa = make_payments(count, args.seed, currency="EUR", mobile=False)
    mobile = make_payments(count, args.seed + 1, currency="KES", mobile=True)

    log("warm-up: one untimed run of each on 10 payments (imports, registries, XSD parsing)")
    quotepart_sepa(sepa[:10], validate=True)
    bare_sepaxml(sepa[:10], validate=True)
    mobile_money_csv(mobile[:10], batch_id=MESSAGE_ID)

    seconds: dict[str, list[float]] = {}
    seconds["quotepart"], ours = timed(
        "quotepart, XSD on", repeats, lambda: quotepart_sepa(sepa, validate=True)
    )
    seconds["quotepart_no_xsd"], _ = timed(
        "quotepart, XSD off", repeats, lambda: quotepart_sepa(sepa, validate=False)
    )
    seconds["sepaxml_xsd"], theirs = timed(
        "sepaxml, XSD on", repeats, lambda: bare_sepaxml(sepa, validate=True)
    )
    seconds["sepaxml"], _ = timed(
        "sepaxml, XSD off", repeats, lambda: bare_sepaxml(sepa, validate=False)
    )
    if transactions(ours) != transactions(theirs) or len(transactions(ours)) != count:
        raise SystemExit("quotepart and bare sepaxml wrote different transactions")

    seconds["mobile_money_csv"], text = timed(
        "mobile_money_csv", repeats, lambda: mobile_money_csv(mobile, batch_id=MESSAGE_ID)
    )
    prepared = [
        (p.account, str(p.amount_minor), p.currency, p.reference, MESSAGE_ID) for p in mobile
    ]
    seconds["csv"], bare_text = timed("csv.writer", repeats, lambda: bare_csv(prepared))
    if text != bare_text:
        raise SystemExit("mobile_money_csv and csv.writer wrote different files")

    medians = {name: median(values) for name, values in seconds.items()}
    met = medians["quotepart"] < TARGET_S
    table = new_table(
        f"{count:,} SEPA payments to one pain.001.001.09 file, median of {repeats}",
        ["export", "median s", "payments/s", "time vs sepaxml + XSD", "time vs sepaxml bare"],
        caption=f"target: a schema-valid file in < {TARGET_S:.0f} s (the first row)",
    )
    for label, name in (
        ("quotepart sepa_credit_transfer, validate=True", "quotepart"),
        ("quotepart sepa_credit_transfer, validate=False", "quotepart_no_xsd"),
        ("sepaxml alone, export(validate=True)", "sepaxml_xsd"),
        ("sepaxml alone, export(validate=False)", "sepaxml"),
    ):
        table.add_row(
            label,
            f"{medians[name]:.3f}",
            fmt_rate(rate(count, medians[name])),
            fmt_ratio(medians[name] / medians["sepaxml_xsd"]),
            fmt_ratio(medians[name] / medians["sepaxml"]),
        )
    stdout.print(table)
    table = new_table(
        f"{count:,} mobile-money rows to CSV, median of {repeats}",
        ["export", "median s", "rows/s", "time vs csv.writer"],
    )
    for label, name in (
        ("quotepart mobile_money_csv", "mobile_money_csv"),
        ("csv.writer on rows prepared beforehand", "csv"),
    ):
        table.add_row(
            label,
            f"{medians[name]:.4f}",
            fmt_rate(rate(count, medians[name])),
            fmt_ratio(medians[name] / medians["csv"]),
        )
    stdout.print(table)
    verdict = "meets" if met else "misses"
    stdout.print(
        f"{count:,} SEPA payments to a schema-valid pain.001.001.09 file in "
        f"{medians['quotepart']:.2f} s (median): {verdict} the target (< {TARGET_S:.0f} s); "
        f"{medians['quotepart'] / medians['sepaxml_xsd']:.2f}× sepaxml with its own validation."
    )

    versions: dict[str, str | None] = {}
    for package in PAYMENT_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    write_results(
        results_path("payments", quick=args.quick, override=args.output),
        {
            "benchmark": "payments",
            "parameters": {
                "payments": count,
                "repeats": repeats,
                "quick": args.quick,
                "seed": args.seed,
                "schema": SEPA_SCHEMA,
                "file_bytes": len(ours),
                "csv_bytes": len(text),
            },
            "target": {"seconds_max": TARGET_S, "median_s": medians["quotepart"], "met": met},
            "results": {
                name: {
                    "seconds": values,
                    "median_s": medians[name],
                    "payments_per_s": rate(count, medians[name]),
                }
                for name, values in seconds.items()
            },
            "ratios": {
                "quotepart_vs_sepaxml_xsd": medians["quotepart"] / medians["sepaxml_xsd"],
                "quotepart_vs_sepaxml_bare": medians["quotepart"] / medians["sepaxml"],
                "quotepart_no_xsd_vs_sepaxml_bare": medians["quotepart_no_xsd"]
                / medians["sepaxml"],
                "mobile_money_csv_vs_csv_writer": medians["mobile_money_csv"] / medians["csv"],
            },
            "payment_packages": versions,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
