"""Payout references kept off the log: only a salted commitment to them is signed.

An IBAN or a mobile-money number identifies a person; publishing it in an append-only
log would be forever. The log holds `sha256("quotepart/payout/v1\\n" ‖ salt ‖ reference)`
with a 32-byte random salt, so nobody can confirm a guessed reference, while the party
(or whoever pays it) can later open the commitment by revealing salt and reference.

A reference says its own rail: one that starts with two letters is an IBAN, paid by SEPA
credit transfer, and is checked with `schwifty` (country, length, BBAN format, mod-97
digits); anything else is a mobile-money number in E.164 form. Both are checked when a
party gives one, so a typo is refused at registration rather than found at payout time.
The checks live here, below `sharing`, because registration needs them too;
`quotepart.sharing.payments` re-exports them.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quotepart.errors import InputError, PaymentDetailsError, VerificationError
from quotepart.ids import Digest

if TYPE_CHECKING:
    from schwifty import IBAN

_DOMAIN = b"quotepart/payout/v1\n"
_SALT_SIZE = 32
_IBAN_CHARS = re.compile(r"[A-Za-z0-9]+")
_MSISDN_DIGITS = re.compile(r"[0-9]{8,15}")
_MSISDN_SEPARATORS = re.compile(r"(?<=[0-9])[ \-](?=[0-9])")

RAIL_NAMES = {"sepa": "SEPA credit transfer", "mobile_money": "mobile money"}
"""Each payment rail as a person reads it."""


def rail_of(reference: str) -> str:
    """The rail that pays `reference`: 'sepa' for an IBAN (two letters first), else 'mobile_money'."""
    compact = "".join(reference.split())
    return "sepa" if compact[:2].isalpha() else "mobile_money"


def check_payout_reference(reference: str) -> tuple[str, str]:
    """The rail of `reference` and the account in its canonical form (IBAN or E.164).

        check_payout_reference("de89 3704 0044 0532 0130 00")  # ('sepa', 'DE89370400440532013000')
        check_payout_reference("+254 712 345 678")             # ('mobile_money', '+254712345678')

    Raises:
        PaymentDetailsError: an invalid IBAN, or a number that is not E.164.
    """
    rail = rail_of(reference)
    return rail, check_iban(reference) if rail == "sepa" else check_msisdn(reference)


def mask_reference(reference: str) -> str:
    """Enough of an account to recognise it, not to use it: 'DE89…3000', '+254…5678'."""
    compact = "".join(reference.split())
    return compact if len(compact) <= 8 else f"{compact[:4]}…{compact[-4:]}"


def mask_account(text: str) -> str:
    """An account as error messages show it: 'DE89 **** **** **** 3000', '+254 **** 5678'.

    Enough to tell which input was meant, never the account itself: an error message ends
    up in terminals, logs and bug reports.
    """
    compact = "".join(str(text).split())
    if len(compact) <= 8:
        return compact[:2] + "*" * max(len(compact) - 2, 0)
    middle = "**** **** ****" if compact[:2].isalpha() else "****"
    return f"{compact[:4]} {middle} {compact[-4:]}"


def check_iban(text: str) -> str:
    """Return the IBAN in electronic format (no spaces, upper case) if it is valid.

    Checks the country, the length for that country, the BBAN format and the ISO 13616
    mod-97 check digits (with `schwifty`).

        check_iban("de89 3704 0044 0532 0130 00")  # 'DE89370400440532013000'

    Raises:
        PaymentDetailsError: unknown country, wrong length, bad characters or check digits.
    """
    return str(parse_iban(text))


def check_msisdn(text: str) -> str:
    """Return an E.164 mobile number as `+` and digits, e.g. '+254712345678'.

    Accepts an optional `+`, then 8 to 15 digits that do not start with 0. Spaces or hyphens
    between digits are dropped. A number in national form or with an `00` prefix is refused,
    because guessing its country could pay the wrong person.

    Raises:
        PaymentDetailsError: anything else.
    """
    if not isinstance(text, str):
        raise InputError(f"an MSISDN must be a string, got {type(text).__name__}")
    compact = _MSISDN_SEPARATORS.sub("", text.strip())
    digits = compact.removeprefix("+")
    if not _MSISDN_DIGITS.fullmatch(digits):
        raise PaymentDetailsError(
            f"MSISDN {mask_account(text)} is not an E.164 number: expected an optional '+' and 8 to 15 digits",
            hint="write the number in international form with its country code, e.g. +254712345678",
        )
    if digits.startswith("0"):
        raise PaymentDetailsError(
            f"MSISDN {mask_account(text)} starts with 0: that is a national number or an international prefix",
            hint="replace the leading 0 or 00 by '+' and the country code, e.g. 0712345678 in Kenya is +254712345678",
        )
    return "+" + digits


def parse_iban(text: str) -> IBAN:
    """The schwifty `IBAN` of `text`, every failure a PaymentDetailsError naming it."""
    from schwifty import IBAN
    from schwifty import exceptions as schwifty_errors

    if not isinstance(text, str):
        raise InputError(f"an IBAN must be a string, got {type(text).__name__}")
    compact = "".join(text.split())
    if not _IBAN_CHARS.fullmatch(compact):  # checked here so every schwifty version says the same
        raise PaymentDetailsError(
            f"IBAN {mask_account(text)} is empty or holds characters other than letters, digits and spaces",
            hint="copy the IBAN again from the account holder, e.g. DE89 3704 0044 0532 0130 00",
        )
    try:
        return IBAN(compact)
    except schwifty_errors.InvalidChecksumDigits as exc:
        raise PaymentDetailsError(
            f"IBAN {mask_account(text)} has wrong check digits",
            hint="a character is mistyped or two are swapped: copy the IBAN again from the account holder",
        ) from exc
    except schwifty_errors.InvalidLength as exc:
        expected = _iban_length(compact)
        raise PaymentDetailsError(
            f"IBAN {mask_account(text)} has {len(compact)} characters; IBANs of {compact[:2].upper()} have "
            + ("another length" if expected is None else str(expected)),
            hint="a character is missing or extra: copy the IBAN again from the account holder",
        ) from exc
    except schwifty_errors.InvalidCountryCode as exc:
        raise PaymentDetailsError(
            f"IBAN {mask_account(text)} starts with {compact[:2]!r}, which is no IBAN country",
            hint="an IBAN starts with its two-letter country code, e.g. DE89 3704 0044 0532 0130 00",
        ) from exc
    except schwifty_errors.SchwiftyException as exc:
        raise PaymentDetailsError(
            f"IBAN {mask_account(text)} is invalid: {exc}",
            hint="an IBAN is a country code, two check digits and the national account number",
        ) from exc


def _iban_length(compact: str) -> int | None:
    """The IBAN length of the country `compact` starts with, from schwifty's registry.

    `IBAN.spec` is a dict before schwifty 2026.10 and an `IBANSpec` from then on.
    """
    from schwifty import IBAN

    spec: object = IBAN(compact, allow_invalid=True).spec
    length = (
        spec.get("iban_length") if isinstance(spec, dict) else getattr(spec, "iban_length", None)
    )
    return length if isinstance(length, int) else None


def normalise_reference(reference: str) -> str:
    """One spelling per account: no spaces, upper case ('de89 3704…' is 'DE893704…')."""
    normalised = re.sub(r"\s+", "", reference).upper()
    if not normalised or len(normalised) > 200:
        raise InputError(
            "a payout reference must be 1 to 200 characters (an IBAN, a phone number, …)",
            hint="pass the account the party is paid to",
        )
    return normalised


@dataclass(frozen=True, slots=True)
class PayoutSecret:
    reference: str
    salt: bytes

    @classmethod
    def new(cls, reference: str) -> PayoutSecret:
        return cls(normalise_reference(reference), secrets.token_bytes(_SALT_SIZE))

    def commitment(self) -> Digest:
        return Digest.of_bytes(_DOMAIN + self.salt + self.reference.encode())

    def open(self, commitment: Digest) -> None:
        """Raise unless this reference and salt are what `commitment` was made from."""
        if self.commitment() != commitment:
            raise VerificationError(
                "the payout reference does not match the commitment in the log",
                hint="the party's payout file was changed or belongs to another party",
            )

    def to_bytes(self) -> bytes:
        """The file that keeps this secret for the payer (see `KeyFolder.save_payout_secret`)."""
        return json.dumps({"reference": self.reference, "salt": self.salt.hex()}).encode()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "payout file") -> PayoutSecret:
        try:
            document = json.loads(data)
            return cls(str(document["reference"]), bytes.fromhex(document["salt"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"the payout file {source} is unreadable: {exc}", hint="restore it from a backup"
            ) from exc
