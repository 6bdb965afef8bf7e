"""Integer money and the exact split.

Amounts are Python `int`s counting a currency's *minor units* (cents for EUR, yen for
JPY, fils for BHD), never floats: a float cannot hold 0.10 exactly, and a log that
records payouts must add up to the cent for every auditor who recomputes it. The
number of minor units in a major unit (the ISO 4217 exponent) comes from the
`iso4217` package, which tracks the standard's published table.

Revenue is shared with `split_exact`, the largest-remainder (Hamilton) method: every
share first gets the floor of its exact quota `total * w / W`; the few units left over
(fewer than the number of positive weights) go one each to the largest remainders.
So the parts always sum to the total, each part is within one unit of its exact quota,
a zero weight gets nothing, and a larger weight never gets less. All arithmetic is on
integers: weights are brought over their least common denominator first.

Equal remainders are broken by the sort order of the keys, never by the order of the
mapping, so the same weights give the same split however they were collected: a
verifier rebuilding the weights from the log in another order gets the same cents.

    >>> split_exact(100, {"a": 1, "b": 1, "c": 1})
    {'a': 34, 'b': 33, 'c': 33}
    >>> parse_amount("12.34", "EUR"), format_amount(1500, "JPY")
    (1234, '1500')

Shares, pools and weights that people write ('1/3', '0.25', 1) are read with
`parse_ratio`, exactly, into a `Fraction`.
"""

from __future__ import annotations

import functools
import heapq
import math
import operator
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, TypeVar, cast

from quotepart.errors import ConservationError, InputError, MoneyError

__all__ = [
    "Currency",
    "Weight",
    "currency",
    "format_amount",
    "parse_amount",
    "parse_ratio",
    "split_exact",
    "split_exact_sequence",
]

K = TypeVar("K", bound=Hashable)
Weight = int | Fraction | float
"""A split weight: exact as given. A float counts as the binary fraction it holds."""

_WEIGHT_TYPES = (int, Fraction, float)
_SORT_BELOW = 2048  # quickselect sorts what is left once it is this small
_MAX_PARTITIONS = 64  # then it sorts, whatever is left: a guard against unlucky pivots
_SAMPLE_SIZE = 63


# --- the exact split ------------------------------------------------------------------------


def split_exact(total_minor: int, weights: Mapping[K, Weight]) -> dict[K, int]:
    """Split `total_minor` units in proportion to `weights`, exactly (largest remainder).

    Each key gets `floor(total * w / W)` and the leftover units go one each to the
    largest remainders. Equal remainders go to the key that sorts first (`sorted()` of
    the tied keys); when the tied keys cannot be ordered with `<` (mixed types, or a
    partial order such as sets) they are ordered by `repr(key)` instead. The result has
    every key, in the mapping's order; it does not depend on that order.

    A total of 0 splits to zeros, even over zero or no weights; a positive total needs
    at least one positive weight.

        split_exact(1000, {"alice": 3, "bob": Fraction(1, 2), "carol": 0.25})

    Raises:
        MoneyError: `total_minor` is not an int or is negative; a weight is negative,
            not finite, a bool or not an int, Fraction or float; every weight is zero
            while the total is positive; or tied keys cannot be ordered even by repr.
        ConservationError: the parts do not add up to the total (a bug; checked always).
    """
    _check_total(total_minor)
    keys = list(weights)
    integer_weights = _integer_weights(
        list(weights.values()), lambda i: f"the weight of {keys[i]!r}"
    )
    parts, threshold, remainders = _floors_and_threshold(total_minor, integer_weights)
    if remainders is not None:
        tied = [i for i, remainder in enumerate(remainders) if remainder == threshold]
        for i in _first_by_key(tied, total_minor - sum(parts), keys):
            parts[i] += 1
    _check_conserved(parts, total_minor, "split_exact")
    return dict(zip(keys, parts, strict=True))


def split_exact_sequence(total_minor: int, weights: Sequence[Weight]) -> list[int]:
    """Split `total_minor` units over a list of weights; equal remainders go to the earlier.

    The positional core of `split_exact`, for callers that have already put their
    shares in a canonical order: the tie-break is by position (the earlier weight wins),
    so the result depends on the order given. Otherwise as `split_exact`.

        split_exact_sequence(100, [1, 1, 1])  # [34, 33, 33]

    Raises:
        MoneyError, ConservationError: as `split_exact`.
    """
    _check_total(total_minor)
    integer_weights = _integer_weights(list(weights), lambda i: f"the weight at position {i}")
    parts, threshold, remainders = _floors_and_threshold(total_minor, integer_weights)
    if remainders is not None:
        missing = total_minor - sum(parts)
        tied = (i for i, remainder in enumerate(remainders) if remainder == threshold)
        for i in tied:
            if missing == 0:
                break
            parts[i] += 1
            missing -= 1
    _check_conserved(parts, total_minor, "split_exact_sequence")
    return parts


def _check_conserved(parts: list[int], total_minor: int, where: str) -> None:
    """Raise ConservationError unless the parts add up to the total (a raise, so -O keeps it)."""
    parts_sum = sum(parts)
    if parts_sum != total_minor:
        raise ConservationError(
            f"{where} of {total_minor} minor units over {len(parts)} weights gave parts "
            f"adding up to {parts_sum} ({parts_sum - total_minor:+d})",
            hint="this is a bug in quotepart, not in your input; please report it with the weights",
        )


def _integer_weights(values: list[Weight], describe: Callable[[int], str]) -> list[int]:
    """Non-negative integers proportional to `values`, over their least common denominator."""
    kinds = set(map(type, values))
    if kinds <= {int}:
        integers = cast(list[int], values)  # every value is exactly an int: no bools, no copies
    else:
        for kind in kinds:
            if issubclass(kind, bool) or not issubclass(kind, _WEIGHT_TYPES):
                i = next(i for i, value in enumerate(values) if type(value) is kind)
                _raise_bad_type(describe(i), values[i])
        for i, value in enumerate(values):
            if isinstance(value, float) and not math.isfinite(value):
                raise MoneyError(
                    f"{describe(i)} is {value!r}, not a finite number",
                    hint="replace NaN or infinite weights before splitting; use 0 to leave a share out",
                )
        ratios = [value.as_integer_ratio() for value in values]
        denominators = {denominator for _, denominator in ratios}
        if denominators == {1}:
            integers = [numerator for numerator, _ in ratios]
        else:
            common = math.lcm(*denominators)
            integers = [numerator * (common // denominator) for numerator, denominator in ratios]
    if integers and min(integers) < 0:
        i = next(i for i, weight in enumerate(integers) if weight < 0)
        raise MoneyError(
            f"{describe(i)} is {values[i]!r}; weights cannot be negative",
            hint="give every share a weight of 0 or more (0 leaves it out); refunds are not split",
        )
    return integers


def _raise_bad_type(what: str, value: object) -> None:
    if isinstance(value, bool):
        raise MoneyError(
            f"{what} is the bool {value!r}, not a number",
            hint="write the weight as an int (1 or 0) if that is what you mean",
        )
    raise MoneyError(
        f"{what} is a {type(value).__name__} ({value!r}); weights must be int, Fraction or float",
        hint="convert it first, e.g. int(x) or Fraction(x); decimal strings go through Fraction('0.25')",
    )


def _floors_and_threshold(
    total_minor: int, weights: list[int]
) -> tuple[list[int], int, list[int] | None]:
    """Parts that have each remainder above the threshold rounded up, the threshold, remainders.

    The threshold is the k-th largest remainder, k being the units the floors leave over.
    Remainders above it take one unit each; the rest of the leftover goes to remainders
    equal to it, which the caller orders. `None` for remainders means nothing is left over.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total_minor == 0:
            return [0] * len(weights), 0, None
        raise MoneyError(
            f"cannot split {total_minor} minor units: "
            + (f"all {len(weights)} weights are zero" if weights else "there are no weights"),
            hint="give at least one share a positive weight, or split a total of 0",
        )
    remainders = [total_minor * weight % weight_sum for weight in weights]
    leftover = sum(remainders) // weight_sum  # the remainders add up to a multiple of W
    if leftover == 0:
        return [total_minor * weight // weight_sum for weight in weights], 0, None
    # (k * w + W - 1 - t) // W is the floor plus one exactly when the remainder exceeds t.
    threshold = _kth_largest(remainders, leftover)
    rounding = weight_sum - 1 - threshold
    parts = [(total_minor * weight + rounding) // weight_sum for weight in weights]
    return parts, threshold, remainders


def _check_total(total_minor: object) -> None:
    if not isinstance(total_minor, int) or isinstance(total_minor, bool):
        raise MoneyError(
            f"the total to split is a {type(total_minor).__name__} ({total_minor!r}), "
            "not an int number of minor units",
            hint="convert amounts with parse_amount(text, currency) first; never pass a float",
        )
    if total_minor < 0:
        raise MoneyError(
            f"cannot split a negative total ({total_minor} minor units)",
            hint="only amounts of 0 or more are split; book a refund against the split it reverses",
        )


def _kth_largest(values: list[int], k: int) -> int:
    """The k-th largest (1-based) of `values`, by quickselect over list comprehensions.

    The pivots come from a fixed, evenly spread sample; they decide only the speed,
    never the answer. Expected linear time, against `sorted`'s n log n.
    """
    candidates = values
    for _ in range(_MAX_PARTITIONS):
        if len(candidates) <= _SORT_BELOW:
            break
        sample = sorted(candidates[:: max(1, len(candidates) // _SAMPLE_SIZE)])
        pivot = sample[len(sample) // 2]
        above = [value for value in candidates if value > pivot]
        if k <= len(above):
            candidates = above
            continue
        k -= len(above)
        equal = candidates.count(pivot)
        if k <= equal:
            return pivot
        k -= equal
        candidates = [value for value in candidates if value < pivot]
    return sorted(candidates, reverse=True)[k - 1]


def _first_by_key(indices: list[int], count: int, keys: Sequence[Any]) -> list[int]:
    """The `count` indices whose keys sort first, by `<`, else by `repr`.

    The order must be strict and total on these keys, or the choice could depend on the
    order they came in; that is checked on the sorted keys (adjacent pairs strictly
    increasing is enough for any transitive `<`).
    """
    if count == len(indices):
        return indices
    try:
        return _first_strictly(indices, count, keys.__getitem__)
    except TypeError:
        pass
    reprs = {i: repr(keys[i]) for i in indices}
    try:
        return _first_strictly(indices, count, reprs.__getitem__)
    except TypeError:
        raise MoneyError(
            f"{len(indices)} shares tie for {count} leftover units and their keys cannot be "
            "ordered, not even by repr (two keys have the same repr)",
            hint="use keys that sort, such as strings or party ids",
        ) from None


def _first_strictly(indices: list[int], count: int, key: Callable[[int], Any]) -> list[int]:
    """The `count` indices first by `key`; TypeError unless `<` orders them strictly."""
    if count * 16 < len(indices):
        chosen = heapq.nsmallest(count, indices, key=key)
        chosen_set = set(chosen)
        last = key(chosen[-1])
        rest = (key(i) for i in indices if i not in chosen_set)
        ordered = all(map(operator.lt, map(key, chosen), map(key, chosen[1:]))) and all(
            operator.lt(last, other) for other in rest
        )
    else:
        ranked = sorted(indices, key=key)
        sorted_keys = list(map(key, ranked))
        ordered = all(map(operator.lt, sorted_keys, sorted_keys[1:]))
        chosen = ranked[:count]
    if not ordered:
        raise TypeError("keys are not strictly ordered by <")
    return chosen


# --- currencies and amounts -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: `minor_units` is the exponent (2 for EUR: 100 cents to the euro)."""

    code: str
    minor_units: int
    name: str


_CODE_RE = re.compile(r"[A-Z]{3}")


def currency(code: str) -> Currency:
    """The ISO 4217 currency with this three-letter code, e.g. `currency("KES")`.

    Raises:
        MoneyError: the code is not three uppercase letters, is not in ISO 4217, or
            names something with no minor unit (gold, SDRs, the testing code XTS...).
    """
    if not isinstance(code, str) or _CODE_RE.fullmatch(code) is None:
        raise MoneyError(
            f"{code!r} is not an ISO 4217 currency code",
            hint="write the code as three uppercase letters, e.g. 'EUR', 'USD', 'KES' or 'JPY'",
        )
    return _lookup_currency(code)


@functools.cache
def _lookup_currency(code: str) -> Currency:
    import iso4217  # imported here: it parses the ISO table, which a plain import should not pay for

    try:
        entry = iso4217.Currency(code)
    except ValueError:
        raise MoneyError(
            f"unknown currency code {code!r}: it is not in the ISO 4217 table "
            f"(published {iso4217.__published__.isoformat()})",
            hint="use a current ISO 4217 code, e.g. 'EUR', 'USD', 'KES' or 'JPY'",
        ) from None
    if entry.exponent is None:
        raise MoneyError(
            f"{code} ({entry.currency_name}) has no minor unit in ISO 4217",
            hint="it is not money quotepart can pay out; use a national currency such as 'EUR' or 'USD'",
        )
    return Currency(code=code, minor_units=entry.exponent, name=entry.currency_name)


_AMOUNT_RE = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def parse_amount(text: str, currency_code: str, *, allow_negative: bool = False) -> int:
    """Minor units in a decimal amount of major units: `parse_amount("12.34", "EUR") == 1234`.

    Exact, with no float: digits, an optional point and decimals, and a leading `-` only
    with `allow_negative`. Trailing zeros beyond the minor units are fine ("1500.00" JPY).

    Raises:
        MoneyError: the text is not such a number (exponents, NaN, separators, a '+'),
            is negative without `allow_negative`, holds a fraction of a minor unit, or
            the currency is unknown.
    """
    money = currency(currency_code)
    match = _AMOUNT_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise MoneyError(
            f"{text!r} is not an amount of {money.code}",
            hint=f"write digits with an optional '.' and up to {money.minor_units} decimals, "
            "e.g. '12.34', without signs, spaces, thousands separators or exponents",
        )
    sign, whole, decimals = match.groups()
    decimals = decimals or ""
    if sign and not allow_negative:
        raise MoneyError(
            f"{text!r} is negative; a negative amount is not accepted here",
            hint="give the amount without '-'",
        )
    significant = decimals.rstrip("0")
    if len(significant) > money.minor_units:
        raise MoneyError(
            f"{text!r} has a fraction of a minor unit: {money.code} has "
            f"{money.minor_units} decimal place{'' if money.minor_units == 1 else 's'}",
            hint=f"round it to {money.minor_units} decimals first, deciding who gets the rounding",
        )
    try:
        amount_minor = int(whole + significant.ljust(money.minor_units, "0"))
    except ValueError:  # beyond int()'s digit limit
        raise MoneyError(
            f"the amount {text[:40]!r}... is too long", hint="give a realistic amount"
        ) from None
    return -amount_minor if sign else amount_minor


def format_amount(amount_minor: int, currency_code: str) -> str:
    """The decimal text of `amount_minor` in major units: `format_amount(1234, "EUR") == "12.34"`.

    Always every decimal place of the currency, a '-' for negatives, no grouping, so that
    `parse_amount` reads it back exactly.

    Raises:
        MoneyError: the amount is not an int or the currency is unknown.
    """
    money = currency(currency_code)
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise MoneyError(
            f"the amount is a {type(amount_minor).__name__} ({amount_minor!r}), "
            "not an int number of minor units",
            hint="amounts are ints of minor units, e.g. 1234 for 12.34 EUR",
        )
    sign = "-" if amount_minor < 0 else ""
    if money.minor_units == 0:
        return f"{sign}{abs(amount_minor)}"
    whole, fraction = divmod(abs(amount_minor), 10**money.minor_units)
    return f"{sign}{whole}.{fraction:0{money.minor_units}d}"


# --- ratios -----------------------------------------------------------------------------------

_RATIO_RE = re.compile(
    r"(?P<fraction>-?[0-9]+/[0-9]+)"  # '1/3'
    r"|(?P<decimal>-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?)"  # '1', '0.25', '5e-2'
)
_RATIO_HINT = "write a ratio as '1/3', '0.25' or 1: digits with one '/' or '.', no spaces inside"


def parse_ratio(
    value: Fraction | int | float | Decimal | str, *, what: str = "the ratio"
) -> Fraction:
    """The exact ratio a person wrote: `parse_ratio("2/6") == Fraction(1, 3)`, 0 or more.

    Text is a fraction ('1/3') or a decimal ('0.25', '1', '5e-2'; an exponent has at
    most three digits, so no text can ask for a number too long to build). A float is
    read as the decimal it prints as (0.1 is 1/10, not the binary fraction it holds),
    as that is what its writer meant; ints, Fractions and Decimals are taken as they
    are. `what` names the value in errors, e.g. "the pool" or "the share of party:01H…".

        parse_ratio("0.25"), parse_ratio(1), parse_ratio(0.1, what="the pool")

    Raises:
        InputError: the value is not such a number (a bool, NaN, infinity, other text or
            types), divides by zero, or is negative.
    """
    ratio = _exact_ratio(value, what)
    if ratio < 0:
        raise InputError(
            f"{what} is negative ({value!r})",
            hint="ratios are 0 or more; a share is between 0 and 1",
        )
    return ratio


def _exact_ratio(value: object, what: str) -> Fraction:
    if isinstance(value, bool):
        raise InputError(
            f"{what} is the bool {value!r}, not a number",
            hint="write the ratio as a number, e.g. 1 or 0",
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{what} is {value!r}, not a finite number", hint=_RATIO_HINT)
        return Fraction(repr(value))  # the shortest decimal that reads back as this float
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InputError(f"{what} is {value!r}, not a finite number", hint=_RATIO_HINT)
        return Fraction(value)
    if not isinstance(value, str):
        raise InputError(
            f"{what} is a {type(value).__name__} ({value!r}), not a number",
            hint="pass a Fraction, an int, a float or text such as '1/3'",
        )
    text = value.strip()
    match = _RATIO_RE.fullmatch(text)
    if match is None:
        raise InputError(f"{what} is not a number: {value!r}", hint=_RATIO_HINT)
    if match["fraction"] is not None and int(text.partition("/")[2]) == 0:
        raise InputError(
            f"{what} divides by zero: {value!r}", hint="a ratio's denominator is 1 or more"
        )
    try:
        return Fraction(text)
    except ValueError:  # beyond int()'s digit limit
        raise InputError(
            f"{what} is too long to be a ratio: {text[:40]!r}...", hint=_RATIO_HINT
        ) from None
