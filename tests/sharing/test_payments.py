"""Payment-rail exports: SEPA pain.001.001.09 files (real sepaxml, real XSD) and mobile-money CSV."""

from __future__ import annotations

import csv
import datetime
import io
import xml.etree.ElementTree as ET
from importlib.resources import files

import pytest
import sepaxml.shared
import xmlschema
from hypothesis import given
from hypothesis import strategies as st
from sepaxml.validation import ValidationError as SepaValidationError
from sepaxml.validation import try_valid_xml

from quotepart.errors import InputError, PaymentDetailsError
from quotepart.sharing.payments import (
    MOBILE_MONEY_HEADER,
    SEPA_AMOUNT_MINOR_MAX,
    SEPA_SCHEMA,
    Payment,
    check_bic,
    check_iban,
    check_msisdn,
    mobile_money_csv,
    sepa_credit_transfer,
)

NS = {"p": f"urn:iso:std:iso:20022:tech:xsd:{SEPA_SCHEMA}"}
XSD = files("sepaxml") / "schemas" / f"{SEPA_SCHEMA}.xsd"

DEBTOR_IBAN = "DE02 1203 0000 0000 2020 51"
VALID_IBAN = "DE89370400440532013000"
BAD_CHECKSUM_IBAN = "DE89370400440532013001"  # the last digit of VALID_IBAN changed
DATE = datetime.date(2026, 2, 2)


def payment(
    payee: str = "party:01JAAAAAAAAAAAAAAAAAAAAAAA",
    *,
    name: str = "Ada Lovelace",
    amount_minor: int = 1234,
    currency: str = "EUR",
    reference: str = "payout:01JC9Z6Y4S8M0V2W3X5Y7Z9A1B",
    account: str = VALID_IBAN,
    bic: str | None = None,
) -> Payment:
    return Payment(payee, name, amount_minor, currency, reference, account, bic)


def export(payments: list[Payment], **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "debtor_name": "Data Coop eG",
        "debtor_iban": DEBTOR_IBAN,
        "debtor_bic": "COBADEFFXXX",
        "execution_date": DATE,
        "message_id": "QP-2026-02-001",
    }
    arguments.update(overrides)
    return sepa_credit_transfer(payments, **arguments)  # type: ignore[arg-type]


THREE = [
    payment("party:A", name="Zoë Müller & Söhne", amount_minor=1234, account=VALID_IBAN),
    payment(
        "party:B",
        name="李小龙",
        amount_minor=5,
        account="gb82 west 1234 5698 7654 32",
        bic="westgb2l",
    ),
    payment("party:C", amount_minor=100_000, account="FR14 2004 1010 0505 0001 3M02 606"),
]


# --- SEPA: the file ----------------------------------------------------------------------


def test_three_payments_make_a_schema_valid_file_that_says_what_was_asked() -> None:
    xml = export(THREE)
    root = ET.fromstring(xml)
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header is not None
    assert header.findtext("p:MsgId", namespaces=NS) == "QP-2026-02-001"
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "3"
    assert header.findtext("p:CtrlSum", namespaces=NS) == "1012.39"  # 12.34 + 0.05 + 1000.00
    (block,) = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert block.findtext("p:CtrlSum", namespaces=NS) == "1012.39"
    assert block.findtext("p:ReqdExctnDt/p:Dt", namespaces=NS) == "2026-02-02"
    assert block.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS) == "DE02120300000000202051"
    assert block.findtext("p:DbtrAgt/p:FinInstnId/p:BICFI", namespaces=NS) == "COBADEFFXXX"
    assert block.findtext("p:Dbtr/p:PstlAdr/p:AdrTp", namespaces=NS) is None  # never on .09
    transactions = [
        (
            tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS),
            tx.findtext("p:Amt/p:InstdAmt", namespaces=NS),
            tx.find("p:Amt/p:InstdAmt", NS).get("Ccy"),  # type: ignore[union-attr]
            tx.findtext("p:Cdtr/p:Nm", namespaces=NS),
            tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
            tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
            tx.findtext("p:CdtrAgt/p:FinInstnId/p:BICFI", namespaces=NS),
        )
        for tx in block.findall("p:CdtTrfTxInf", NS)
    ]
    reference = "payout:01JC9Z6Y4S8M0V2W3X5Y7Z9A1B"
    assert transactions == [
        (
            "DE89370400440532013000",
            "12.34",
            "EUR",
            "Zoe Muller + Sohne",
            reference,
            reference,
            None,
        ),
        ("GB82WEST12345698765432", "0.05", "EUR", "Li Xiao Long", reference, reference, "WESTGB2L"),
        (
            "FR1420041010050500013M02606",
            "1000.00",
            "EUR",
            "Ada Lovelace",
            reference,
            reference,
            None,
        ),
    ]
    try_valid_xml(xml, SEPA_SCHEMA)  # sepaxml's own validation: raises if invalid
    xmlschema.XMLSchema(str(XSD)).validate(xml.decode())  # and the XSD, explicitly


def test_validation_runs_by_default_and_its_failure_is_an_input_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def refuse(xml: bytes, schema: str) -> None:
        calls.append(schema)
        raise SepaValidationError("invalid")

    monkeypatch.setattr(sepaxml.shared, "try_valid_xml", refuse)
    with pytest.raises(InputError, match=f"does not validate against {SEPA_SCHEMA}"):
        export(THREE)
    assert calls == [SEPA_SCHEMA]
    export(THREE, validate=False)  # the caller may skip it (our own checks still run)
    assert calls == [SEPA_SCHEMA]


def test_one_block_per_payment_without_batch_booking() -> None:
    xml = export(THREE, batch=False, debtor_bic=None)
    root = ET.fromstring(xml)
    blocks = root.findall("p:CstmrCdtTrfInitn/p:PmtInf", NS)
    assert [b.findtext("p:BtchBookg", namespaces=NS) for b in blocks] == ["false"] * 3
    assert [b.findtext("p:CtrlSum", namespaces=NS) for b in blocks] == ["12.34", "0.05", "1000.00"]
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "1012.39"
    assert root.find(".//p:DbtrAgt/p:FinInstnId/p:BICFI", NS) is None
    xmlschema.XMLSchema(str(XSD)).validate(xml.decode())


def test_the_largest_sepa_amount_is_written_exactly_and_one_cent_more_is_refused() -> None:
    xml = export([payment(amount_minor=SEPA_AMOUNT_MINOR_MAX)])
    assert b'<InstdAmt Ccy="EUR">999999999.99</InstdAmt>' in xml
    with pytest.raises(InputError, match=r"party:big: .*above the SEPA maximum"):
        export([payment("party:big", amount_minor=SEPA_AMOUNT_MINOR_MAX + 1)], validate=False)


def test_names_are_transliterated_and_cut_to_70_characters() -> None:
    long_name = "Ørsted-Łukasiewicz " * 6  # 114 characters
    xml = export([payment(name=long_name), payment("party:D", name="Дмитрий_😀", reference="r2")])
    names = [n.text for n in ET.fromstring(xml).iterfind(".//p:Cdtr/p:Nm", NS)]
    assert names[0] == ("Orsted-Lukasiewicz " * 6)[:70].strip()
    assert len(names[0] or "") <= 70
    assert names[1] == "Dmitrii."  # '_' is outside the SEPA set; the emoji has no Latin form
    with pytest.raises(InputError, match=r"party:E: name .* no characters"):
        export([payment("party:E", name="😀😀")], validate=False)


# --- SEPA: refusals ----------------------------------------------------------------------


def test_a_bad_iban_checksum_names_the_payee() -> None:
    with pytest.raises(PaymentDetailsError, match=r"payment to party:bad: account: .*check digits"):
        export([payment(), payment("party:bad", account=BAD_CHECKSUM_IBAN, reference="r2")])


def test_a_bad_debtor_iban_or_bic_is_refused() -> None:
    with pytest.raises(PaymentDetailsError, match="debtor_iban"):
        export(THREE, debtor_iban=BAD_CHECKSUM_IBAN)
    with pytest.raises(PaymentDetailsError, match="debtor_bic"):
        export(THREE, debtor_bic="COBADE")


def test_a_wrong_length_iban_is_refused() -> None:
    with pytest.raises(PaymentDetailsError, match=r"party:short: .*21 characters.* DE have 22"):
        export([payment("party:short", account=VALID_IBAN[:-1])])


def test_an_iban_outside_the_sepa_zone_is_refused() -> None:
    with pytest.raises(PaymentDetailsError, match=r"party:sa: .*outside the SEPA zone"):
        export([payment("party:sa", account="SA03 8000 0000 6080 1016 7519")])


def test_an_invalid_creditor_bic_names_the_payee() -> None:
    with pytest.raises(PaymentDetailsError, match=r"party:bic: bic: BIC 'COBAXXFF'"):
        export([payment("party:bic", bic="COBAXXFF")])


def test_a_payment_not_in_euro_is_refused() -> None:
    with pytest.raises(InputError, match=r"party:usd: currency is USD; .*EUR only") as caught:
        export([payment(), payment("party:usd", currency="USD", reference="r2")])
    assert not isinstance(caught.value, PaymentDetailsError)


@pytest.mark.parametrize("amount", [0, -1, -1234])
def test_zero_or_negative_amounts_are_refused(amount: int) -> None:
    with pytest.raises(InputError, match=rf"party:zero: amount_minor is {amount}"):
        payment("party:zero", amount_minor=amount)


@pytest.mark.parametrize("amount", [12.34, 1234.0, True, "1234"])
def test_amounts_that_are_no_integers_are_refused(amount: object) -> None:
    with pytest.raises(InputError, match="party:f: amount_minor must be an integer"):
        payment("party:f", amount_minor=amount)  # type: ignore[arg-type]


def test_the_same_account_and_reference_twice_is_refused() -> None:
    twice = [
        payment("party:A", amount_minor=100),
        payment("party:B", account="de89 3704 0044 0532 0130 00", amount_minor=200),
    ]
    with pytest.raises(
        InputError, match=r"party:A and party:B both pay DE89 \*\*\*\* \*\*\*\* \*\*\*\* 3000"
    ):
        export(twice)
    export([twice[0], payment("party:B", amount_minor=200, reference="payout:other")])


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("x" * 36, "36 characters"),
        ("", "is empty"),
        ("payout_01", "outside the SEPA character set"),
        ("payout:€1", "outside the SEPA character set"),
        ("/payout", "'/'"),
        ("pay//out", "'//'"),
        (" payout", "space"),
        ("-1", "formula"),
        ("+1", "formula"),
    ],
)
def test_bad_references_are_refused_never_rewritten(reference: str, problem: str) -> None:
    with pytest.raises(InputError, match=rf"party:ref: reference .*{problem}"):
        payment("party:ref", reference=reference)


def test_bad_file_level_input_is_refused() -> None:
    with pytest.raises(InputError, match="no payments"):
        export([])
    with pytest.raises(InputError, match=r"message_id .*36 characters"):
        export(THREE, message_id="M" * 36)
    with pytest.raises(InputError, match="execution_date must be a date"):
        export(THREE, execution_date=datetime.datetime(2026, 2, 2, tzinfo=datetime.UTC))
    with pytest.raises(InputError, match="currency 'eur' is not an ISO 4217"):
        payment(currency="eur")
    with pytest.raises(InputError, match="name is blank"):
        payment(name="  ")


# --- checks on their own -----------------------------------------------------------------


def test_check_iban_returns_the_electronic_format() -> None:
    assert check_iban(" de89 3704 0044 0532 0130 00 ") == VALID_IBAN
    with pytest.raises(PaymentDetailsError, match="check digits"):
        check_iban(BAD_CHECKSUM_IBAN)
    with pytest.raises(PaymentDetailsError, match="no IBAN country"):
        check_iban("XX89370400440532013000")
    for not_alphanumeric in ("DE89-3704-0044-0532-0130-00", "", "DE89３７０400440532013000"):
        with pytest.raises(PaymentDetailsError, match="other than letters, digits and spaces"):
            check_iban(not_alphanumeric)


def _with_check_digits(bban: str) -> str:
    """ISO 13616: the check digits make int(BBAN + 'DE00' as digits) % 97 == 1."""
    number = int(bban + "1314" + "00")  # D=13, E=14
    return f"DE{98 - number % 97:02d}{bban}"


@given(bban=st.text("0123456789", min_size=18, max_size=18), data=st.data())
def test_every_single_digit_typo_in_an_iban_is_caught(bban: str, data: st.DataObject) -> None:
    iban = _with_check_digits(bban)
    assert check_iban(iban) == iban
    position = data.draw(st.integers(2, len(iban) - 1))
    digit = data.draw(st.sampled_from([d for d in "0123456789" if d != iban[position]]))
    with pytest.raises(PaymentDetailsError):
        check_iban(iban[:position] + digit + iban[position + 1 :])


def test_check_bic() -> None:
    assert check_bic("coba de ff xxx") == "COBADEFFXXX"
    for bad in ("COBADEF", "COBAXXFF", "COBA-DEFF"):
        with pytest.raises(PaymentDetailsError):
            check_bic(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+254712345678", "+254712345678"),
        ("254712345678", "+254712345678"),
        (" +254 712-345 678 ", "+254712345678"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_check_msisdn_accepts_e164(text: str, expected: str) -> None:
    assert check_msisdn(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0712345678", "starts with 0"),
        ("00254712345678", "starts with 0"),
        ("+1234567", "not an E.164"),
        ("+1234567890123456", "not an E.164"),
        ("+254 7I2 345 678", "not an E.164"),
        ("+254(712)345678", "not an E.164"),
        ("++254712345678", "not an E.164"),
        ("+２５４712345678", "not an E.164"),  # full-width digits are not ASCII digits
        ("", "not an E.164"),
    ],
)
def test_check_msisdn_refuses_anything_else(text: str, problem: str) -> None:
    with pytest.raises(PaymentDetailsError, match=problem):
        check_msisdn(text)


# --- mobile money ------------------------------------------------------------------------

MOBILE = [
    payment("party:A", amount_minor=150_000, currency="KES", account="+254 712 345 678"),
    payment("party:B", amount_minor=7, currency="UGX", account="256772123456", reference="r, 2"),
    payment("party:C", amount_minor=99, currency="GHS", account="+233241234567", reference="r'3"),
]


def test_mobile_money_csv_round_trips_with_the_documented_header() -> None:
    text = mobile_money_csv(MOBILE, batch_id="QP-2026-02-001")
    assert text.split("\n")[0] == "msisdn,amount_minor,currency,reference,batch_id"
    assert text.endswith("\n")
    assert "\r" not in text
    assert '"r, 2"' in text  # quoted: it holds the delimiter
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == MOBILE_MONEY_HEADER
    assert rows == [
        {
            "msisdn": msisdn,
            "amount_minor": str(p.amount_minor),
            "currency": p.currency,
            "reference": p.reference,
            "batch_id": "QP-2026-02-001",
        }
        for p, msisdn in zip(
            MOBILE, ["+254712345678", "+256772123456", "+233241234567"], strict=True
        )
    ]
    assert all(row["amount_minor"].isdigit() for row in rows)
    assert [int(row["amount_minor"]) for row in rows] == [150_000, 7, 99]


def test_mobile_money_refusals_name_the_payee() -> None:
    with pytest.raises(
        PaymentDetailsError, match=r"payment to party:nat: MSISDN 0712 \*\*\*\* 5678 "
    ):
        mobile_money_csv([*MOBILE, payment("party:nat", account="0712345678")], batch_id="b1")
    with pytest.raises(InputError, match=r"party:A and party:D both pay \+254 \*\*\*\* 5678"):
        mobile_money_csv([*MOBILE, payment("party:D", account="+254712345678")], batch_id="b1")
    with pytest.raises(InputError, match=r"batch_id .*outside the SEPA character set"):
        mobile_money_csv(MOBILE, batch_id="batch#1")
    with pytest.raises(InputError, match="no payments"):
        mobile_money_csv([], batch_id="b1")
