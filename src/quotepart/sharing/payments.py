"""Payment-rail exports of fair-sharing payouts: SEPA credit-transfer files and mobile-money CSV.

Why these two rails. Contributors are paid where they are. In the euro area, a SEPA credit
transfer reaches any account in the SEPA countries at domestic cost, and a paying
organisation uploads one ISO 20022 `pain.001` file to its bank for a whole payout. We write
`pain.001.001.09`, the 2019 message version that the EPC implementation guidelines use since
November 2023. Many annotators and data contributors elsewhere have no bank account but a
mobile-money wallet (M-Pesa, MTN MoMo, Airtel Money). Those operators' bulk-payment portals
take a CSV upload.

    xml = sepa_credit_transfer(
        payments, debtor_name="Data Coop eG", debtor_iban="DE89 3704 0044 0532 0130 00",
        debtor_bic=None, execution_date=date(2026, 2, 2), message_id="QP-2026-02-001",
    )
    text = mobile_money_csv(payments, batch_id="QP-2026-02-001")

What is checked before anything is written (the first bad payment raises; nothing is partial):

* IBANs (debtor and every creditor) with `schwifty`: country known, length for that country,
  BBAN format and the ISO 13616 mod-97 check digits. sepaxml itself accepts a bad checksum.
  For SEPA the IBAN's country must also be in the SEPA zone. National check digits inside the
  BBAN are not checked: schwifty knows that algorithm for only some countries (for Germany it
  depends on the bank), and the mod-97 digits already catch every single-character typo and
  every swap of two neighbours.
  BICs are optional. When one is given it must be well formed: ISO 9362, 8 or 11 characters,
  with a known country. Whether the bank exists is not checked, because schwifty's bank
  registry is incomplete. schwifty reads its registries from package data; it never goes to
  the network.
* MSISDNs as E.164: an optional `+`, then 8 to 15 digits not starting with 0. Spaces and
  hyphens between digits are dropped. A national number (0712…) or one with an international
  prefix (00254…) is refused rather than guessed at. Nothing heavier is needed for this: the
  operator checks that the wallet exists when it pays.
* Amounts are integers of minor units (`bool` and `float` are refused), greater than zero.
  For SEPA they must be in euro and at most 999 999 999.99 EUR: the EPC's limit on
  `InstdAmt`, which the ISO schema alone does not enforce. No float ever touches an amount.
  sepaxml writes cents as decimal strings.
* A reference is the payment's identifier. It is the SEPA end-to-end id, which the bank
  reports back for reconciliation, and also its unstructured remittance information. It is
  refused, never changed, unless it has 1 to 35 characters of the SEPA Latin set
  (`a-z A-Z 0-9 / - ? : ( ) . , ' +` and space), with no space at either end, no `/` at either
  end, no `//` (the EPC rule for identifiers), and no `+` or `-` first (a spreadsheet would
  read a formula). Truncating or rewriting it could merge two references, or break the
  match with our allocation. The same rule holds for the message id and the batch id. 35 is
  the end-to-end id's limit, so the 140 of the remittance field can never be exceeded.
* Names are transliterated, not refused. A payee's name comes from a person and may be in any
  script. It is transliterated to Latin with `text-unidecode` (the library sepaxml uses: ü→u,
  ß→ss, Ł→L, Cyrillic and Greek romanised), as EPC guidance allows. `&` becomes `+`, the
  German banks' conversion. Any other character outside the SEPA set becomes `.`, the EPC
  conversion table's fallback. Runs of white space become one space. The result is then cut
  to 70 characters, the EPC limit for names. Banks cut longer names the same way, and it is
  the IBAN that routes the money. A name with nothing left after this is refused.
* The same (account, reference) twice in one file is refused: never pay twice.
* The SEPA file is validated against the pain.001.001.09 XSD shipped inside sepaxml, when
  `validate=True` (the default). sepaxml runs `xmlschema`, which is its own dependency. The
  written file is then parsed back. Its message id, transaction count, control sum, and every
  (IBAN, amount, end-to-end id) must equal what was asked, or VerificationError is raised.
  sepaxml's `address_type` is never set: on .09 it produces an invalid file.

Mobile-money bulk CSV (UTF-8, `\\n` line endings, RFC 4180 quoting where needed):

    msisdn,amount_minor,currency,reference,batch_id
    +254712345678,150000,KES,payout:01JC9Z6Y4S8M0V2W3X5Y7Z9A1B,QP-2026-02-001

* `msisdn`: E.164 with a leading `+`.
* `amount_minor`: a base-10 integer in the currency's minor units. For KES that is cents; UGX
  has no minor unit, so there minor equals major. (M-Pesa pays whole shillings: round the
  allocation to whole units before paying through it.)
* `currency`: an ISO 4217 alphabetic code (three upper-case letters). The code list itself
  is not checked here.
* `reference` and `batch_id`: as above.

Operators' bulk templates differ (M-Pesa B2C bulk payments, MTN MoMo disbursements); each
takes this file after a column mapping in the portal or upload script. Such a mapping can
drop the `+`, turn minor units into major ones where the template asks for major, and map
`reference` to the template's remarks or narration column.
"""

from __future__ import annotations

import csv
import datetime
import functools
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from quotepart.errors import InputError, PaymentDetailsError, VerificationError
from quotepart.provenance.parties import check_iban, check_msisdn, mask_account, parse_iban

# schwifty, sepaxml and text-unidecode are imported by the functions that use them:
# opening a workspace or starting the CLI does not pay for their registries and schemas.

__all__ = [
    "MOBILE_MONEY_HEADER",
    "SEPA_AMOUNT_MINOR_MAX",
    "SEPA_SCHEMA",
    "Payment",
    "check_bic",
    "check_iban",
    "check_msisdn",
    "mobile_money_csv",
    "sepa_credit_transfer",
]

SEPA_SCHEMA = "pain.001.001.09"
SEPA_AMOUNT_MINOR_MAX = 99_999_999_999  # EPC: InstdAmt from 0.01 to 999999999.99 EUR
SEPA_NAME_LENGTH_MAX = 70  # EPC limit for names (the ISO schema allows 140)
REFERENCE_LENGTH_MAX = 35  # Max35Text: EndToEndId, MsgId
MOBILE_MONEY_HEADER = ("msisdn", "amount_minor", "currency", "reference", "batch_id")

_NOT_SEPA_CHAR = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")
_CURRENCY = re.compile(r"[A-Z]{3}")
_T = TypeVar("_T")
_PAIN = f"{{urn:iso:std:iso:20022:tech:xsd:{SEPA_SCHEMA}}}"


@dataclass(frozen=True, slots=True)
class Payment:
    """One payout to one payee, in integer minor units.

    `account` is an IBAN for SEPA and an MSISDN for mobile money; each rail checks it.
    The fields that mean the same on every rail are checked here. These are the amount,
    currency and reference, so an invalid payment is never made.

    Raises:
        InputError: an amount that is not a positive integer, a malformed currency code or
            reference, or a blank name.
    """

    payee: str  # party id, e.g. 'party:01J...': names the payment in errors
    name: str  # account holder's name
    amount_minor: int
    currency: str
    reference: str  # end-to-end id and remittance information, e.g. the payout reference
    account: str  # IBAN (SEPA) or MSISDN (mobile money)
    bic: str | None = None

    def __post_init__(self) -> None:
        for field in ("payee", "name", "currency", "reference", "account"):
            if not isinstance(getattr(self, field), str):
                raise InputError(
                    f"payment to {self.payee!r}: {field} must be a string, "
                    f"got {type(getattr(self, field)).__name__}"
                )
        if self.bic is not None and not isinstance(self.bic, str):
            raise InputError(f"payment to {self.payee}: bic must be a string or None")
        amount = self.amount_minor
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise InputError(
                f"payment to {self.payee}: amount_minor must be an integer of minor units, "
                f"got {type(amount).__name__} {amount!r}",
                hint="convert to minor units (cents) exactly before paying; never pass floats",
            )
        if amount <= 0:
            raise InputError(
                f"payment to {self.payee}: amount_minor is {amount}, it must be greater than zero",
                hint="leave payees with nothing to receive out of the payout",
            )
        if not _CURRENCY.fullmatch(self.currency):
            raise InputError(
                f"payment to {self.payee}: currency {self.currency!r} is not an ISO 4217 alphabetic code",
                hint="use three upper-case letters, e.g. EUR, KES, UGX",
            )
        if not self.name.strip():
            raise InputError(
                f"payment to {self.payee}: the account holder's name is blank",
                hint="give the name the account is held in",
            )
        _check_reference(self.reference, what=f"payment to {self.payee}: reference")


def check_bic(text: str) -> str:
    """Return the BIC (ISO 9362, 8 or 11 characters) upper-cased and without spaces.

    Raises:
        PaymentDetailsError: wrong length, bad characters or an unknown country code.
    """
    from schwifty import BIC
    from schwifty import exceptions as schwifty_errors

    if not isinstance(text, str):
        raise InputError(f"a BIC must be a string, got {type(text).__name__}")
    try:
        return str(BIC(text))
    except schwifty_errors.SchwiftyException as exc:
        raise PaymentDetailsError(
            f"BIC {text!r} is invalid: {exc}",
            hint="a BIC has 8 or 11 letters and digits, e.g. COBADEFFXXX; or leave it out, SEPA does not need it",
        ) from exc


def sepa_credit_transfer(
    payments: Sequence[Payment],
    *,
    debtor_name: str,
    debtor_iban: str,
    debtor_bic: str | None,
    execution_date: datetime.date,
    message_id: str,
    created: datetime.datetime | None = None,
    batch: bool = True,
    validate: bool = True,
) -> bytes:
    """An ISO 20022 pain.001.001.09 SEPA credit-transfer file paying `payments`, as UTF-8 bytes.

    `message_id` is the file's MsgId: banks refuse a second file with the same one, so it
    is the payout's idempotency key. `batch=True` asks the bank for one booking on the
    debtor's statement (BtchBookg); `False` writes one payment-information block per payment.

    The file is a pure function of its arguments: the same payments, ids and dates give the
    same bytes. `created` is the CreDtTm (midnight of `execution_date` if None); each
    payment-information block is numbered `<message_id>-P<n>`.

        xml = sepa_credit_transfer(payments, debtor_name="Data Coop eG", debtor_iban=iban,
                                   debtor_bic=None, execution_date=date(2026, 2, 2),
                                   message_id="QP-2026-02-001")

    Raises:
        PaymentDetailsError: an invalid or non-SEPA IBAN, or an invalid BIC, naming the payee.
        InputError: no payments, a payment not in EUR or above the SEPA maximum, a duplicate
            (account, reference), a bad message id, name or date; or, with `validate`, a file
            the XSD refuses.
        VerificationError: the written file does not say what was asked (a bug).
    """
    if not payments:
        raise InputError("no payments to export", hint="a SEPA file needs at least one payment")
    if isinstance(execution_date, datetime.datetime) or not isinstance(
        execution_date, datetime.date
    ):
        raise InputError(
            f"execution_date must be a date, got {type(execution_date).__name__}",
            hint="pass datetime.date(...), the day the bank should execute the transfers",
        )
    msg_id = _check_reference(message_id, what="message_id")
    debtor = _sepa_name(debtor_name, what="debtor_name")
    config: dict[str, Any] = {
        "name": debtor,
        "IBAN": _sepa_iban(debtor_iban, who="the debtor (debtor_iban)"),
        "batch": batch,
        "currency": "EUR",
    }
    if debtor_bic is not None:
        config["BIC"] = _with_context(check_bic, debtor_bic, who="the debtor (debtor_bic)")

    rows: list[dict[str, Any]] = []
    for payment in payments:
        if not isinstance(payment, Payment):
            raise InputError(f"expected Payment objects, got {type(payment).__name__}")
        rows.append(_sepa_row(payment, execution_date))
    _refuse_duplicates(
        (payment.payee, row["IBAN"], payment.reference)
        for payment, row in zip(payments, rows, strict=True)
    )

    from sepaxml.validation import (  # type: ignore[import-untyped]
        ValidationError as SepaValidationError,
    )

    moment = created or datetime.datetime.combine(execution_date, datetime.time())
    transfer = _transfer_class()(config, message_id=msg_id, created=moment)
    for row in rows:
        transfer.add_payment(dict(row))  # sepaxml rewrites the dict it is given
    try:
        xml: bytes = transfer.export(validate=validate)
    except SepaValidationError as exc:
        cause = exc.__cause__
        reason = getattr(cause, "reason", None) or str(cause or exc)
        path = getattr(cause, "path", None)
        raise InputError(
            f"the SEPA file does not validate against {SEPA_SCHEMA}: {reason}"
            + (f" at {path}" if path else ""),
            hint="quotepart checks every field before writing; please report this with the payment that failed",
        ) from exc
    _verify_written(xml, msg_id, rows)
    return xml


def mobile_money_csv(payments: Sequence[Payment], *, batch_id: str) -> str:
    """The mobile-money bulk-payout CSV for `payments` (format in the module docstring).

        text = mobile_money_csv(payments, batch_id="QP-2026-02-001")

    Raises:
        PaymentDetailsError: an invalid MSISDN, naming the payee.
        InputError: no payments, a bad batch id, or a duplicate (MSISDN, reference).
    """
    if not payments:
        raise InputError("no payments to export", hint="a bulk payout needs at least one payment")
    batch = _check_reference(batch_id, what="batch_id")
    rows: list[tuple[str, str, str, str, str]] = []
    for payment in payments:
        if not isinstance(payment, Payment):
            raise InputError(f"expected Payment objects, got {type(payment).__name__}")
        msisdn = _with_context(check_msisdn, payment.account, who=f"payment to {payment.payee}")
        rows.append((msisdn, str(payment.amount_minor), payment.currency, payment.reference, batch))
    _refuse_duplicates(
        (payment.payee, row[0], payment.reference)
        for payment, row in zip(payments, rows, strict=True)
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(MOBILE_MONEY_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


@functools.cache
def _transfer_class() -> Any:
    """sepaxml's SepaTransfer with the caller's ids and time: sepaxml 2.7 draws random ones.

    The message id is set where sepaxml writes the group header, with the creation time
    in place of sepaxml's clock, and the payment-information ids are renumbered from the
    message id once the blocks are made: the same payments give the same bytes, so a
    payout re-rendered from its log entry matches the digest recorded there.
    `_verify_written` checks that the id arrived, so a sepaxml that works differently
    fails loudly rather than silently. The class is made on first use, so that sepaxml
    is imported only when a SEPA file is.
    """
    from sepaxml import SepaTransfer  # type: ignore[import-untyped]

    class _Transfer(SepaTransfer):  # type: ignore[misc]  # sepaxml has no type hints
        def __init__(
            self, config: dict[str, Any], *, message_id: str, created: datetime.datetime
        ) -> None:
            self._quotepart_message_id = message_id
            self._quotepart_created = created.strftime("%Y-%m-%dT%H:%M:%S")
            # clean=False: names and references are made SEPA-safe here, so what is checked
            # for duplicates is exactly what is written.
            super().__init__(config, schema=SEPA_SCHEMA, clean=False)

        def _create_header(self) -> None:
            self.msg_id = self._quotepart_message_id
            super()._create_header()
            for node in self._xml.iter("CreDtTm"):
                node.text = self._quotepart_created

        def _finalize_batch(self) -> None:
            super()._finalize_batch()
            for n, node in enumerate(self._xml.iter("PmtInfId"), 1):
                node.text = f"{self._quotepart_message_id}-P{n}"

    return _Transfer


def _sepa_iban(text: str, *, who: str) -> str:
    iban = _with_context(parse_iban, text, who=who)
    if not iban.in_sepa_zone:
        raise PaymentDetailsError(
            f"{who}: IBAN {mask_account(iban.compact)} is in {iban.country_code}, outside the SEPA zone",
            hint="pay this account through another rail; SEPA reaches the EU, EEA and a few more countries",
        )
    return str(iban)


def _sepa_row(payment: Payment, execution_date: datetime.date) -> dict[str, Any]:
    who = f"payment to {payment.payee}"
    if payment.currency != "EUR":
        raise InputError(
            f"{who}: currency is {payment.currency}; SEPA credit transfers are in EUR only",
            hint="convert the payout to EUR, or pay this payee through another rail",
        )
    if payment.amount_minor > SEPA_AMOUNT_MINOR_MAX:
        raise InputError(
            f"{who}: amount_minor {payment.amount_minor} is above the SEPA maximum of 999999999.99 EUR",
            hint="split it into several payments with distinct references",
        )
    row: dict[str, Any] = {
        "name": _sepa_name(payment.name, what=f"{who}: name"),
        "IBAN": _sepa_iban(payment.account, who=f"{who}: account"),
        "amount": payment.amount_minor,
        "execution_date": execution_date,
        "description": payment.reference,
        "endtoend_id": payment.reference,
    }
    if payment.bic is not None:
        row["BIC"] = _with_context(check_bic, payment.bic, who=f"{who}: bic")
    return row


def _sepa_name(text: str, *, what: str) -> str:
    """Transliterate to the SEPA Latin set and cut to 70 characters (see the module docstring)."""
    from text_unidecode import unidecode  # type: ignore[import-untyped]

    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}")
    latin = " ".join(unidecode(text).split()).replace("&", "+")
    latin = _NOT_SEPA_CHAR.sub(".", latin)[:SEPA_NAME_LENGTH_MAX].strip()
    if not latin:
        raise InputError(
            f"{what} {text!r} has no characters that can be written in a SEPA file",
            hint="give the account holder's name in letters (any script is transliterated)",
        )
    return latin


def _check_reference(text: str, *, what: str) -> str:
    """Return `text` if it is a valid identifier (see the module docstring); never change it."""
    hint = (
        f"use 1 to {REFERENCE_LENGTH_MAX} characters from a-z A-Z 0-9 / - ? : ( ) . , ' + "
        "and space, e.g. a payout reference such as payout:01JC9Z6Y4S8M0V2W3X5Y7Z9A1B"
    )
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, got {type(text).__name__}", hint=hint)
    if not text:
        raise InputError(f"{what} is empty", hint=hint)
    if len(text) > REFERENCE_LENGTH_MAX:
        raise InputError(
            f"{what} {text!r} has {len(text)} characters; at most {REFERENCE_LENGTH_MAX} are allowed",
            hint="shorten it yourself: quotepart does not cut references, so that two never merge",
        )
    if bad := sorted(set(_NOT_SEPA_CHAR.findall(text))):
        raise InputError(
            f"{what} {text!r} contains {''.join(bad)!r}, outside the SEPA character set", hint=hint
        )
    if text != text.strip():
        raise InputError(f"{what} {text!r} starts or ends with a space", hint=hint)
    if text.startswith("/") or text.endswith("/") or "//" in text:
        raise InputError(
            f"{what} {text!r} starts or ends with '/' or contains '//', which SEPA forbids in identifiers",
            hint=hint,
        )
    if text[0] in "+-":
        raise InputError(
            f"{what} {text!r} starts with {text[0]!r}, which spreadsheets read as a formula",
            hint=hint,
        )
    return text


def _refuse_duplicates(keys: Iterable[tuple[str, str, str]]) -> None:
    """Refuse the same (account, reference) twice: that would pay the same thing twice."""
    seen: dict[tuple[str, str], str] = {}
    for payee, account, reference in keys:
        if (first := seen.get((account, reference))) is not None:
            raise InputError(
                f"payments to {first} and {payee} both pay {mask_account(account)} with reference {reference!r}: "
                "that would pay the same thing twice",
                hint="merge them into one payment, or give each its own reference",
            )
        seen[(account, reference)] = payee


def _with_context(check: Callable[[str], _T], text: str, *, who: str) -> _T:
    """Run `check(text)`, prefixing a PaymentDetailsError's message with whose detail it was."""
    try:
        return check(text)
    except PaymentDetailsError as exc:
        raise PaymentDetailsError(f"{who}: {exc.message}", hint=exc.hint) from exc


def _major_units(amount_minor: int) -> str:
    """Cents as the decimal string pain.001 writes ("12.34"), without floats."""
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


def _verify_written(xml: bytes, message_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Parse the file back: it must say exactly what was asked (STYLE rule 12: check twice)."""
    root = ET.fromstring(xml)
    header = root.find(f"{_PAIN}CstmrCdtTrfInitn/{_PAIN}GrpHdr")
    written = [
        (
            tx.findtext(f"{_PAIN}CdtrAcct/{_PAIN}Id/{_PAIN}IBAN"),
            tx.findtext(f"{_PAIN}Amt/{_PAIN}InstdAmt"),
            tx.findtext(f"{_PAIN}PmtId/{_PAIN}EndToEndId"),
        )
        for tx in root.iter(f"{_PAIN}CdtTrfTxInf")
    ]
    asked = [(row["IBAN"], _major_units(row["amount"]), row["endtoend_id"]) for row in rows]
    total = _major_units(sum(row["amount"] for row in rows))
    found = (
        None if header is None else header.findtext(f"{_PAIN}MsgId"),
        None if header is None else header.findtext(f"{_PAIN}NbOfTxs"),
        None if header is None else header.findtext(f"{_PAIN}CtrlSum"),
    )
    if found != (message_id, str(len(rows)), total) or written != asked:
        raise VerificationError(
            f"the SEPA file written by sepaxml does not match the payments: header {found}, "
            f"expected {(message_id, str(len(rows)), total)}; transactions match: {written == asked}",
            hint="this is a bug in quotepart or sepaxml: do not upload the file; please report it",
        )
