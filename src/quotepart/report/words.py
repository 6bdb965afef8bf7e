"""The report's wording: roles, weightings and policies as a contributor reads them.

Kept apart from the numbers, so that a change of words is a change of this file only
(and, since the words are in report.json, of the published report's digest).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction

from quotepart.log.kinds import PolicySet, format_fraction
from quotepart.money import format_amount

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")

ROLE_WORDS = {
    "data": "data",
    "annotation": "annotation (labelling)",
    "compute": "compute",
    "code": "code",
    "upstream_model": "upstream models",
}
WEIGHTING_WORDS = {
    "valuation": "weighted by the recorded valuation",
    "declared": "by the declared weights",
    "equal": "equally",
    "volume": "by registered size (volume)",
}
REASON_WORDS = {
    "retained": "operator's part",
    "registrant": "registrant's remainder",
    "unallocated": "no one to pass it to",
}


def percent(ratio: Fraction) -> str:
    """'20 %' for 1/5; one decimal where it is not whole ('33.3 %')."""
    value = ratio * 100
    return f"{value.numerator} %" if value.denominator == 1 else f"{float(value):.1f} %"


EXACT_SIGNIFICANT_DIGITS = 4
"""Digits shown of a value that has no error bar (an exact method): enough to tell
contributors apart, no float noise such as 0.07137254901960785."""


def _quantize(value: Decimal, exponent: int) -> str:
    """`value` rounded half-to-even to a multiple of 10**exponent, in plain notation, no '-0'."""
    rounded = value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_EVEN)
    if rounded.is_zero():
        rounded = rounded.copy_abs()
    return f"{rounded:f}"


def _decimal(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # the entry's reader admits decimal strings only
        raise ValueError(f"not a decimal: {text!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    return number


def rounded_value(value: str, stderr: str | None) -> tuple[str, str | None]:
    """A value and its standard error as a reader should see them: (value, error or None).

    The usual scientific rounding: the error to two significant digits, the value to the
    same decimal place ('0.0714', '0.0123' gives ('0.071', '0.012')). With no error bar,
    or a zero one (an exact method), the value keeps EXACT_SIGNIFICANT_DIGITS significant
    digits and the error is None, so no one reads '± 0.0'. report.json keeps the exact
    strings; this is for the human-facing pages only.
    """
    number = _decimal(value)
    error = None if stderr is None else _decimal(stderr)
    if error is None or error.is_zero():
        if number.is_zero():
            return "0", None
        exponent = number.adjusted() - (EXACT_SIGNIFICANT_DIGITS - 1)
        text = _quantize(number, min(exponent, 0))
        return (text.rstrip("0").rstrip(".") if "." in text else text), None
    exponent = error.adjusted() - 1  # two significant digits of the error
    return _quantize(number, exponent), _quantize(error.copy_abs(), exponent)


def value_in_words(value: str, stderr: str | None) -> str:
    """'0.310 ± 0.030', or just '0.3' for an exact value (stderr 0 or not recorded)."""
    shown, error = rounded_value(value, stderr)
    return shown if error is None else f"{shown} ± {error}"


def policy_in_words(
    policy: PolicySet, *, asset_name: str, operator_name: str, currency: str | None = None
) -> str:
    """A sharing policy as a sentence a contributor can check against their statement."""
    sentences = [
        f"{percent(policy.pool)} of what reaches {asset_name} goes to its contributors; "
        f"{operator_name}, the operator, keeps the rest."
    ]
    parts = []
    for role, ratio in sorted(policy.roles.items(), key=lambda kv: (-kv[1], kv[0])):
        share = "all" if ratio == 1 else format_fraction(ratio)
        parts.append(
            f"{share} to {ROLE_WORDS.get(role, role)}, {WEIGHTING_WORDS[policy.weighting[role]]}"
        )
    sentences.append("Of the contributors' part: " + "; ".join(parts) + ".")
    valued = "valuation" in policy.weighting.values()
    whom = "party" if policy.per == "party" else "input"
    if policy.per == "party":
        sentences.append(
            "Inputs are weighed per party: the inputs one party registered are valued, "
            "floored and capped together, so splitting them gains nothing."
        )
    if valued:
        if policy.per == "party":
            sentences.append("A party whose values sum below zero counts as zero.")
        else:
            sentences.append(
                "Negative values count as zero."
                if policy.negative_values == "clip"
                else "Values are shifted so that the lowest counts as zero."
            )
        sentences.append(
            "An input without a recorded value stops the sharing."
            if policy.missing_valuation == "refuse"
            else "An input without a recorded value falls back to its declared weight."
        )
    if policy.floor > 0:
        sentences.append(
            f"Each {whom} valued above twice its standard error gets at least "
            f"{percent(policy.floor)} of its role's part."
            if policy.robust and valued
            else f"Each {whom} gets at least {percent(policy.floor)} of its role's part."
        )
    if policy.cap < 1:
        sentences.append(f"No {whom} gets more than {percent(policy.cap)} of its role's part.")
    if policy.robust and any(
        policy.weighting.get(role) not in (None, "declared") for role in ("data", "evaluation")
    ):
        sentences.append(
            "Records that copy an earlier registered dataset earn for that dataset, not the copy."
        )
    if policy.upstream_mode == "fixed":
        sentences.append(
            f"Every ancestor model receives {percent(policy.upstream_share)} of what reaches "
            f"{asset_name}, shared under its own policy (fixed)."
        )
    elif "upstream_model" in policy.roles:
        sentences.append("Upstream models share their part under their own policies (dilute).")
    if policy.minimum_payout:
        amount = (
            f"{format_amount(policy.minimum_payout, currency)} {currency}"
            if currency
            else f"{policy.minimum_payout} minor units"
        )
        sentences.append(f"Balances below {amount} are carried to the next payout.")
    return " ".join(sentences)


def named_notes(notes: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """Allocation notes with asset digests replaced by the assets' names."""
    return [_DIGEST_RE.sub(lambda m: names.get(m.group(0), m.group(0)), note) for note in notes]


__all__ = [
    "REASON_WORDS",
    "ROLE_WORDS",
    "WEIGHTING_WORDS",
    "named_notes",
    "percent",
    "policy_in_words",
    "rounded_value",
    "value_in_words",
]
