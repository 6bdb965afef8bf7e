"""quotepart.money: the exact split (known answers, properties, bad input), ISO 4217 amounts, ratios."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotepart.errors import ConservationError, InputError, MoneyError
from quotepart.log.kinds import format_fraction
from quotepart.money import (
    Currency,
    Weight,
    _kth_largest,
    currency,
    format_amount,
    parse_amount,
    parse_ratio,
    split_exact,
    split_exact_sequence,
)


def reference_split(total: int, weights: dict[str, Weight]) -> dict[str, int]:
    """The obvious version (STYLE.md rule 6, over integers): full sort, no selection, an oracle."""
    exact = {k: Fraction(w) for k, w in weights.items()}
    common = math.lcm(*(w.denominator for w in exact.values()))
    integers = {k: int(w * common) for k, w in exact.items()}
    weight_sum = sum(integers.values())
    floor_and_rest = {k: divmod(total * w, weight_sum) for k, w in integers.items()}
    parts = {k: floor for k, (floor, _) in floor_and_rest.items()}
    leftover = total - sum(parts.values())
    for k in sorted(parts, key=lambda k: (-floor_and_rest[k][1], k))[:leftover]:
        parts[k] += 1
    return parts


# --- known answers --------------------------------------------------------------------------


def test_three_equal_shares_give_the_extra_unit_to_the_key_that_sorts_first() -> None:
    assert split_exact(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    result = split_exact(100, {"c": 1, "b": 1, "a": 1})
    assert result == {"a": 34, "b": 33, "c": 33}
    assert list(result) == ["c", "b", "a"]  # the input's order, not the sort order


def test_hamilton_example_with_known_seats() -> None:
    """Wikipedia, "Largest remainder method": 100,000 votes, 10 seats, Hare quota."""
    votes = {
        "Yellows": 47_000,
        "Whites": 16_000,
        "Reds": 15_800,
        "Greens": 12_000,
        "Blues": 6_100,
        "Pinks": 3_100,
    }
    seats = {"Yellows": 5, "Whites": 2, "Reds": 1, "Greens": 1, "Blues": 1, "Pinks": 0}
    assert split_exact(10, votes) == seats


def test_alabama_paradox_is_reproduced() -> None:
    """Largest remainder is not house-monotone: with 25 seats C gets fewer than with 24."""
    populations = {"A": 6, "B": 6, "C": 2}
    assert split_exact(24, populations) == {"A": 10, "B": 10, "C": 4}
    assert split_exact(25, populations) == {"A": 11, "B": 11, "C": 3}


def test_fraction_weights() -> None:
    assert split_exact(100, {"a": Fraction(1, 3), "b": Fraction(2, 3)}) == {"a": 33, "b": 67}
    assert split_exact(7, {"a": Fraction(1, 2), "b": Fraction(1, 3), "c": Fraction(1, 6)}) == {
        "a": 4,
        "b": 2,
        "c": 1,
    }


def test_float_weights_are_taken_exactly_and_still_split_right() -> None:
    assert split_exact(10, {"a": 0.1, "b": 0.2, "c": 0.7}) == {"a": 1, "b": 2, "c": 7}


def test_mixed_weight_types() -> None:
    assert split_exact(8, {"a": 1, "b": Fraction(1, 2), "c": 0.5}) == {"a": 4, "b": 2, "c": 2}


def test_zero_weight_gets_zero_and_stays_in_the_result() -> None:
    assert split_exact(5, {"a": 0, "b": 1, "c": 0}) == {"a": 0, "b": 5, "c": 0}


def test_a_total_of_zero_splits_to_zeros_even_without_weights() -> None:
    assert split_exact(0, {"a": 0, "b": 0}) == {"a": 0, "b": 0}
    assert split_exact(0, {"a": 3, "b": 1}) == {"a": 0, "b": 0}
    assert split_exact(0, {}) == {}
    assert split_exact_sequence(0, []) == []


def test_sequence_version_breaks_ties_by_position() -> None:
    assert split_exact_sequence(100, [1, 1, 1]) == [34, 33, 33]
    assert split_exact_sequence(2, [1, 1, 1]) == [1, 1, 0]
    assert split_exact_sequence(1, [0, 1, 1]) == [0, 1, 0]
    assert split_exact(2, {"c": 1, "b": 1, "a": 1}) == {"c": 0, "b": 1, "a": 1}


def test_keys_that_do_not_compare_are_ordered_by_repr() -> None:
    # repr("a") == "'a'" sorts before "(2,)" and "1"
    assert split_exact(7, {1: 1, "a": 1, (2,): 1}) == {1: 2, "a": 3, (2,): 2}
    assert split_exact(7, {(2,): 1, 1: 1, "a": 1}) == {(2,): 2, 1: 2, "a": 3}


def test_keys_with_only_a_partial_order_are_ordered_by_repr() -> None:
    """frozensets compare by inclusion: {1} < {2} and {2} < {1} are both False."""
    one, two = frozenset({1}), frozenset({2})
    assert split_exact(1, {two: 1, one: 1}) == {two: 0, one: 1}
    assert split_exact(1, {one: 1, two: 1}) == {one: 1, two: 0}


class _Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


def test_tied_keys_that_cannot_be_ordered_at_all_are_refused() -> None:
    with pytest.raises(MoneyError, match="cannot be ordered") as info:
        split_exact(1, {_Opaque(): 1, _Opaque(): 1})
    assert info.value.hint is not None
    assert "keys that sort" in info.value.hint


def test_unorderable_keys_are_fine_when_no_tie_needs_breaking() -> None:
    a, b = _Opaque(), _Opaque()
    assert split_exact(3, {a: 2, b: 1}) == {a: 2, b: 1}


def test_large_splits_match_the_reference() -> None:
    """Big enough for the quickselect and for the partial sort of many tied keys."""
    rng = random.Random(20260101)
    for n, high in [(5_000, 10**6), (6_000, 3), (4_000, 1)]:
        weights: dict[str, Weight] = {
            f"p{rng.randrange(10**9):09d}": rng.randint(0, high) for _ in range(n)
        }
        for total in [1, 7, n // 3, n - 1, n + 1, 10**9 + 7, 10**15 + 3]:
            assert split_exact(total, weights) == reference_split(total, weights)
        ordered = sorted(weights)
        mapped = split_exact(10**6 + 1, weights)
        positional = split_exact_sequence(10**6 + 1, [weights[k] for k in ordered])
        assert positional == [mapped[k] for k in ordered]


def test_kth_largest_selection_at_every_boundary_between_equal_values() -> None:
    """The quickselect behind the split, where off-by-one errors hide: around runs of equal values."""
    rng = random.Random(5)
    for distinct in [1, 2, 5, 50]:
        values = [rng.randrange(distinct) for _ in range(3_000)]
        descending = sorted(values, reverse=True)
        boundaries = {i for i in range(1, len(values)) if descending[i] != descending[i - 1]}
        for k in sorted({1, len(values)} | {b + d for b in boundaries for d in (-1, 0, 1, 2)}):
            if 1 <= k <= len(values):
                assert _kth_largest(values, k) == descending[k - 1]


def test_many_equal_weights_give_the_leftover_to_the_first_keys_in_sort_order() -> None:
    keys = [f"k{i:05d}" for i in range(3_000)]
    shuffled = keys[:]
    random.Random(7).shuffle(shuffled)
    result = split_exact(3 * 3_000 + 5, dict.fromkeys(shuffled, 1))
    assert [result[k] for k in keys] == [4] * 5 + [3] * (3_000 - 5)


# --- properties -----------------------------------------------------------------------------

weight_values = st.one_of(
    st.integers(0, 10**6),
    st.fractions(min_value=0, max_value=1000, max_denominator=1000),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
small_weights = st.integers(0, 5)  # many ties
weight_maps = st.dictionaries(
    st.text(max_size=3), st.one_of(weight_values, small_weights), min_size=1, max_size=30
)
totals = st.integers(0, 10**15)


def _positive(weights: dict[str, Weight]) -> bool:
    return any(w > 0 for w in weights.values())


@given(totals, weight_maps.filter(_positive))
def test_split_conserves_every_minor_unit(total: int, weights: dict[str, Weight]) -> None:
    parts = split_exact(total, weights)
    assert sum(parts.values()) == total
    assert set(parts) == set(weights)
    assert all(isinstance(part, int) and part >= 0 for part in parts.values())


@given(totals, weight_maps.filter(_positive))
def test_each_part_is_within_one_unit_of_its_exact_quota(
    total: int, weights: dict[str, Weight]
) -> None:
    parts = split_exact(total, weights)
    weight_sum = sum((Fraction(w) for w in weights.values()), Fraction(0))
    for key, weight in weights.items():
        quota = total * Fraction(weight) / weight_sum
        assert math.floor(quota) <= parts[key] <= math.ceil(quota)
        assert abs(parts[key] - quota) < 1


@given(totals, weight_maps.filter(_positive))
def test_zero_weight_gets_zero(total: int, weights: dict[str, Weight]) -> None:
    parts = split_exact(total, weights)
    assert all(parts[k] == 0 for k, w in weights.items() if w == 0)


@given(totals, weight_maps.filter(_positive), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_insertion_order(
    total: int, weights: dict[str, Weight], rng: random.Random
) -> None:
    items = list(weights.items())
    rng.shuffle(items)
    shuffled = dict(items)
    assert split_exact(total, shuffled) == split_exact(total, weights)
    assert list(split_exact(total, shuffled)) == list(shuffled)


@given(totals, weight_maps.filter(_positive))
def test_a_larger_weight_never_gets_a_smaller_part(total: int, weights: dict[str, Weight]) -> None:
    parts = split_exact(total, weights)
    exact = {k: Fraction(w) for k, w in weights.items()}
    for a in weights:
        for b in weights:
            if exact[a] > exact[b]:
                assert parts[a] >= parts[b]


@given(totals, weight_maps.filter(_positive))
def test_split_is_deterministic_and_matches_the_reference(
    total: int, weights: dict[str, Weight]
) -> None:
    first = split_exact(total, weights)
    assert split_exact(total, dict(weights)) == first
    assert first == reference_split(total, weights)


@given(
    totals,
    st.dictionaries(st.text(max_size=3), st.integers(1, 1000), min_size=1, max_size=30),
    st.integers(1, 10**6),
    st.fractions(min_value=Fraction(1, 1000), max_value=1000),
)
def test_scaling_every_weight_changes_nothing(
    total: int, weights: dict[str, int], factor: int, fraction: Fraction
) -> None:
    expected = split_exact(total, weights)
    assert split_exact(total, {k: w * factor for k, w in weights.items()}) == expected
    assert split_exact(total, {k: w * fraction for k, w in weights.items()}) == expected


@given(totals, st.lists(st.one_of(weight_values, small_weights), min_size=1, max_size=30))
def test_sequence_version_agrees_with_the_mapping_over_position_keys(
    total: int, weights: list[Weight]
) -> None:
    if not any(w > 0 for w in weights):
        weights = [*weights, 1]
    by_position = split_exact(total, dict(enumerate(weights)))
    assert split_exact_sequence(total, weights) == [by_position[i] for i in range(len(weights))]


# --- bad input to the split -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "fragments"),
    [
        (10, {"bob": -1, "ann": 2}, ["'bob'", "-1", "negative"]),
        (10, {"bob": Fraction(-1, 2), "ann": 2}, ["'bob'", "negative"]),
        (10, {"bob": -0.5, "ann": 2}, ["'bob'", "-0.5", "negative"]),
        (10, {"bob": 0, "ann": 0}, ["10 minor units", "all 2 weights are zero"]),
        (10, {}, ["10 minor units", "no weights"]),
        (10, {"bob": math.nan, "ann": 1}, ["'bob'", "nan", "not a finite number"]),
        (10, {"bob": math.inf}, ["'bob'", "inf", "not a finite number"]),
        (10, {"bob": True, "ann": 1}, ["'bob'", "bool", "True"]),
        (10, {"bob": "0.5"}, ["'bob'", "str", "int, Fraction or float"]),
        (10, {"bob": Decimal("0.5")}, ["'bob'", "Decimal", "int, Fraction or float"]),
        (-10, {"bob": 1}, ["negative total", "-10"]),
        (10.5, {"bob": 1}, ["float", "10.5", "not an int"]),
        (True, {"bob": 1}, ["bool", "not an int"]),
        (0, {"bob": -1}, ["'bob'", "negative"]),
    ],
)
def test_bad_split_input_is_refused_with_a_reason_and_a_hint(
    total: object, weights: dict[str, object], fragments: list[str]
) -> None:
    with pytest.raises(MoneyError) as info:
        split_exact(total, weights)  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.hint


def test_sequence_errors_name_the_position() -> None:
    with pytest.raises(MoneyError, match="position 2 is -3"):
        split_exact_sequence(10, [1, 2, -3])


def test_money_errors_are_input_errors() -> None:
    assert issubclass(MoneyError, InputError)


def test_a_conservation_error_is_our_bug_not_bad_input() -> None:
    """No `except InputError` may swallow it, and the CLI must not say "fix your input"."""
    assert not issubclass(ConservationError, InputError)
    assert ConservationError("lost a unit").exit_code == 1


# --- currencies and amounts -----------------------------------------------------------------

DECIMALS = {
    "JPY": 0,
    "KRW": 0,
    "XOF": 0,
    "EUR": 2,
    "USD": 2,
    "KES": 2,
    "BHD": 3,
    "KWD": 3,
    "TND": 3,
}


@pytest.mark.parametrize(("code", "minor_units"), DECIMALS.items())
def test_currency_minor_units_come_from_iso_4217(code: str, minor_units: int) -> None:
    found = currency(code)
    assert found.code == code
    assert found.minor_units == minor_units


def test_currency_is_a_frozen_value_with_a_name() -> None:
    euro = currency("EUR")
    assert euro == Currency("EUR", 2, "Euro")
    assert currency("KES").name == "Kenyan Shilling"
    with pytest.raises(AttributeError):
        euro.minor_units = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "fragments"),
    [
        ("ABC", ["unknown currency code 'ABC'", "ISO 4217"]),
        ("XAU", ["XAU", "Gold", "no minor unit"]),
        ("XXX", ["XXX", "no minor unit"]),
        ("XTS", ["XTS", "no minor unit"]),
        ("eur", ["'eur'", "not an ISO 4217 currency code"]),
        ("EURO", ["'EURO'", "not an ISO 4217 currency code"]),
        ("", ["''", "not an ISO 4217"]),
    ],
)
def test_unknown_or_unpayable_currencies_are_refused(code: str, fragments: list[str]) -> None:
    with pytest.raises(MoneyError) as info:
        currency(code)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.hint


def test_metal_codes_hint_that_they_cannot_be_paid() -> None:
    with pytest.raises(MoneyError) as info:
        currency("XAU")
    assert info.value.hint is not None
    assert "not money quotepart can pay" in info.value.hint


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("12.34", "EUR", 1234),
        ("12", "EUR", 1200),
        ("12.3", "EUR", 1230),
        ("0.01", "USD", 1),
        ("12.340", "EUR", 1234),
        ("1500", "JPY", 1500),
        ("1500.00", "JPY", 1500),
        ("1.234", "BHD", 1234),
        ("0.001", "KWD", 1),
        ("007", "KRW", 7),
        (" 5.5 ", "KES", 550),
        ("123456789012345678901234567890.12", "EUR", 12345678901234567890123456789012),
    ],
)
def test_parse_amount(text: str, code: str, expected: int) -> None:
    assert parse_amount(text, code) == expected


def test_parse_amount_takes_a_minus_only_when_allowed() -> None:
    assert parse_amount("-12.34", "EUR", allow_negative=True) == -1234
    assert parse_amount("-0", "JPY", allow_negative=True) == 0
    with pytest.raises(MoneyError, match="negative"):
        parse_amount("-12.34", "EUR")


@pytest.mark.parametrize(
    ("text", "code", "fragments"),
    [
        ("12.345", "EUR", ["fraction of a minor unit", "EUR", "2 decimal places"]),
        ("0.5", "JPY", ["fraction of a minor unit", "JPY", "0 decimal places"]),
        ("1.2345", "BHD", ["BHD", "3 decimal places"]),
        ("1e3", "EUR", ["not an amount of EUR"]),
        ("NaN", "EUR", ["not an amount"]),
        ("inf", "EUR", ["not an amount"]),
        ("1,000.00", "EUR", ["not an amount"]),
        ("+5", "EUR", ["not an amount"]),
        (".5", "EUR", ["not an amount"]),
        ("5.", "EUR", ["not an amount"]),
        ("", "EUR", ["not an amount"]),
        ("- 5", "EUR", ["not an amount"]),
        ("١٢", "EUR", ["not an amount"]),  # Arabic-Indic digits: int() takes them, we do not
        ("12.34", "ABC", ["unknown currency code 'ABC'"]),
        ("12.34", "XAU", ["no minor unit"]),
    ],
)
def test_parse_amount_refuses(text: str, code: str, fragments: list[str]) -> None:
    with pytest.raises(MoneyError) as info:
        parse_amount(text, code)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize(
    ("amount", "code", "expected"),
    [
        (1234, "EUR", "12.34"),
        (5, "EUR", "0.05"),
        (-1234, "EUR", "-12.34"),
        (-5, "USD", "-0.05"),
        (0, "KES", "0.00"),
        (1500, "JPY", "1500"),
        (-1500, "XOF", "-1500"),
        (1234, "BHD", "1.234"),
        (1, "TND", "0.001"),
    ],
)
def test_format_amount(amount: int, code: str, expected: str) -> None:
    assert format_amount(amount, code) == expected


@pytest.mark.parametrize("amount", [12.34, True, "1234"])
def test_format_amount_refuses_what_is_not_an_int(amount: object) -> None:
    with pytest.raises(MoneyError, match="not an int number of minor units"):
        format_amount(amount, "EUR")  # type: ignore[arg-type]


@given(st.sampled_from(sorted(DECIMALS)), st.integers(-(10**18), 10**18))
def test_format_then_parse_round_trips(code: str, amount: int) -> None:
    text = format_amount(amount, code)
    assert parse_amount(text, code, allow_negative=True) == amount
    assert text.count(".") == (1 if DECIMALS[code] else 0)


# --- ratios ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1/3", Fraction(1, 3)),
        ("2/6", Fraction(1, 3)),
        (" 1/4 ", Fraction(1, 4)),
        ("0.25", Fraction(1, 4)),
        ("1", Fraction(1)),
        ("0", Fraction(0)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("5e-2", Fraction(1, 20)),
        ("1.5E2", Fraction(150)),
        (1, Fraction(1)),
        (0, Fraction(0)),
        (Fraction(2, 6), Fraction(1, 3)),
        (0.25, Fraction(1, 4)),
        (0.1, Fraction(1, 10)),  # the decimal the float prints as, not its binary value
        (1e-05, Fraction(1, 100_000)),
        (Decimal("0.3"), Fraction(3, 10)),
    ],
)
def test_parse_ratio(value: Fraction | int | float | Decimal | str, expected: Fraction) -> None:
    assert parse_ratio(value) == expected
    assert type(parse_ratio(value)) is Fraction


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ("half", ["the share of bob is not a number", "'half'"]),
        ("", ["not a number", "''"]),
        ("1 / 3", ["not a number"]),
        ("1/3e2", ["not a number"]),
        ("0x10", ["not a number"]),
        ("1_000", ["not a number"]),
        ("٣", ["not a number"]),  # an Arabic-Indic three: digits are ASCII
        ("1e1000", ["not a number"]),  # an exponent of at most 3 digits: nothing huge to build
        ("1/0", ["the share of bob divides by zero", "'1/0'"]),
        ("-1/4", ["the share of bob is negative", "'-1/4'"]),
        (-1, ["negative"]),
        (-0.5, ["negative"]),
        (Fraction(-1, 3), ["negative"]),
        (math.nan, ["nan", "not a finite number"]),
        (math.inf, ["inf", "not a finite number"]),
        (Decimal("NaN"), ["not a finite number"]),
        (True, ["the bool True", "not a number"]),
        (None, ["NoneType", "not a number"]),
        ([1, 3], ["list", "not a number"]),
        ("1" * 5000, ["too long"]),
    ],
)
def test_parse_ratio_refuses_with_the_name_and_a_hint(value: object, fragments: list[str]) -> None:
    with pytest.raises(InputError) as info:
        parse_ratio(value, what="the share of bob")  # type: ignore[arg-type]
    for fragment in fragments:
        assert fragment in info.value.message
    assert info.value.hint


@given(st.fractions(min_value=0, max_denominator=10**12).filter(lambda f: f < 10**15))
def test_format_fraction_then_parse_ratio_round_trips(ratio: Fraction) -> None:
    text = format_fraction(ratio)
    assert parse_ratio(text) == ratio
    assert parse_ratio(str(ratio)) == ratio
    assert format_fraction(parse_ratio(text)) == text  # one spelling per ratio


@given(st.integers(0, 10**12), st.integers(1, 10**12))
def test_parse_ratio_reduces_what_it_reads(numerator: int, denominator: int) -> None:
    assert format_fraction(parse_ratio(f"{numerator}/{denominator}")) == format_fraction(
        Fraction(numerator, denominator)
    )


@given(st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False))
def test_a_float_ratio_is_the_decimal_it_prints_as(value: float) -> None:
    ratio = parse_ratio(value)
    assert float(ratio) == value
    assert ratio == Fraction(repr(value))
