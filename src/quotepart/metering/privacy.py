"""Differentially private statistics of a service's usage, released through OpenDP.

Per-consumer figures leave quotepart only as noisy aggregates: each release adds
OpenDP's noise to a table about one month of one meter, records the ε it spent (as
OpenDP's own privacy map computes it) in a signed `privacy.released` entry with the
released values, and the rights rule `privacy-budget` refuses the entry when the
month's releases would spend more than the service's budget (docs/privacy.md).

The privacy unit is one consumer (one pseudonym) over one month: every release bounds
what one consumer can change before noise is added.

* `daily-count`: events per day. A consumer counts at most `bound` events a day (10
  unless given) on at most `days` days (its earliest; all D days of the month unless
  given), so it adds at most `bound` x `days` events: the counts' L1 sensitivity is
  `d_in = bound x days`. OpenDP: `make_count_by_categories` over the (clipped) events'
  days, then the discrete Laplace mechanism.
* `daily-sum`: the meter's values summed per day (sum meters). Each consumer's total of
  a day is clipped to [0, `bound`] (a bound is required: only the operator knows its
  units), on at most `days` days as above, so `d_in = bound x days`. OpenDP: the
  Laplace mechanism on the vector of daily sums under the L1 distance.
* `consumer-histogram`: how many consumers fall in each bucket of usage (events for a
  count meter, summed values for a sum meter, events otherwise) over the month; the
  bucket edges are public (powers of ten unless given). A consumer is in one bucket, so
  `d_in = 1`. OpenDP: `make_count_by_categories`, then the discrete Laplace mechanism.

The noise scale is the smallest OpenDP's `binary_search_param` finds for the ε asked,
and the ε recorded is `measurement.map(d_in)`. The bound, days, `d_in` and scale
are recorded in the entry's `mechanism` (the kind has no field for them), e.g.
`opendp:discrete-laplace;bound=10;d_in=310;scale=310`.
The noise is OpenDP's own (a cryptographically secure generator): it cannot be seeded,
on purpose, so tests check its statistics, never its values.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from quotepart.errors import InputError, NotFoundError
from quotepart.ids import Digest, PartyId, Period
from quotepart.log.kinds import PrivacyBudget, PrivacyReleased
from quotepart.metering.ingest import load_meters
from quotepart.store.ledger import Ledger
from quotepart.store.usage_events import decimal_text, month_events

if TYPE_CHECKING:
    import numpy as np

QUERIES = ("daily-count", "daily-sum", "consumer-histogram")
DEFAULT_COUNT_BOUND = 10
"""Events one consumer counts for, at most, on one day of `daily-count`."""
DEFAULT_EDGES = (
    Decimal(10), Decimal(100), Decimal(1000), Decimal(10_000), Decimal(100_000),
    Decimal(1_000_000),
)  # fmt: skip
"""The public bucket edges of `consumer-histogram`: [0, 10), [10, 100), ..., [10⁶, ∞)."""
_EPSILON_DIGITS = 12
MOST_COUNT = 1_000_000
"""The largest per-day event bound: beyond it the noise alone is useless."""
MOST_SUM = 10**15
"""The largest per-day value bound or bucket edge (so noisy values fit an entry's decimals)."""
LEAST_EPSILON = Decimal("0.000001")
"""The smallest ε a release may spend: below it the noise drowns any count."""


@dataclass(frozen=True, slots=True)
class Release:
    """A private release as appended: its entry and the parameters its ε follows from."""

    leaf_index: int
    body: PrivacyReleased
    bound: str | None  # per consumer: events a day, or a day's summed value; None: histogram
    days: int | None  # per consumer: days counted (its earliest); None: histogram
    d_in: str  # how much one consumer can change the exact table (L1, or rows)
    scale: float  # the noise scale OpenDP calibrated (the mechanism shows it to 6 digits)


def parse_epsilon(epsilon: object) -> Decimal:
    """ε as a positive, finite decimal.

    Raises:
        InputError: not a number, not finite, or ≤ 0.
    """
    try:
        value = Decimal(str(epsilon).strip()) if not isinstance(epsilon, bool) else None
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value <= 0:
        raise InputError(
            f"ε must be a positive number, got {epsilon!r}",
            hint="a privacy loss such as 0.5 or 1 (smaller is more private, and noisier)",
        )
    return value


def set_budget(ledger: Ledger, service: Digest, epsilon: object, *, author: PartyId) -> int:
    """Append `service`'s `privacy.budget`: the ε all releases about one month of its
    usage may spend together, from now on; returns its leaf index.

    Raises:
        InputError: ε is not a positive number. RightsError: `author` holds no metering
            right over the service.
    """
    text = decimal_text(parse_epsilon(epsilon))
    return ledger.append(PrivacyBudget(service, text), author=author)


def _month(period: str | Period) -> Period:
    the_period = Period.parse(str(period))
    if the_period.first_month != the_period.last_month:
        raise InputError(
            f"a private release covers one month, not {the_period}",
            hint="name a month such as 2026-03; release each month on its own",
        )
    return the_period


def _positive(name: str, value: object, *, whole: bool, most: int) -> Decimal:
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if (
        number is None
        or not number.is_finite()
        or number <= 0
        or number > most
        or (whole and number != number.to_integral_value())
    ):
        kind = "a positive whole number" if whole else "a positive number"
        raise InputError(
            f"{name} must be {kind} of at most {most:,}, got {value!r}", hint=_BOUND_HINT
        )
    return number


_BOUND_HINT = (
    "the bound caps what one consumer adds per day before noise (docs/privacy.md): "
    "events a day for daily-count, the summed value of a day for daily-sum; days caps "
    "how many days of one consumer count"
)


def _edges(edges: Sequence[object] | None) -> tuple[Decimal, ...]:
    if edges is None:
        return DEFAULT_EDGES
    parsed = tuple(_positive("a bucket edge", edge, whole=False, most=MOST_SUM) for edge in edges)
    if not parsed or len(parsed) > 99 or list(parsed) != sorted(set(parsed)):
        raise InputError(
            f"bucket edges must be 1 to 99 increasing positive numbers, got {list(edges)!r}",
            hint="e.g. 10,100,1000: buckets [0, 10), [10, 100), [100, 1000), [1000, ∞)",
        )
    return parsed


def _bucket_labels(edges: tuple[Decimal, ...]) -> list[str]:
    lows = [Decimal(0), *edges]
    highs = [decimal_text(edge) for edge in edges] + ["∞"]
    return [f"[{decimal_text(low)}, {high})" for low, high in zip(lows, highs, strict=True)]


def _epsilon_text(epsilon: float) -> str:
    """OpenDP's ε as a decimal string, to 12 significant digits."""
    return decimal_text(Decimal(f"{epsilon:.{_EPSILON_DIGITS}g}"))


def _calibrate(make: Callable[[float], Any], d_in: Any, epsilon: Decimal) -> tuple[Any, float]:
    """The measurement with the smallest noise scale OpenDP finds for ε at `d_in`."""
    import opendp.prelude as dp

    scale = float(dp.binary_search_param(make, d_in=d_in, d_out=float(epsilon)))
    return make(scale), scale


def _short(text: str, most: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "…"


def _scale_text(scale: float) -> str:
    return f"{scale:.6g}"


@dataclass(frozen=True, slots=True)
class _Table:
    """A month's usage of one meter, per consumer and day, before any noise."""

    days: int  # days in the month
    per_day: dict[tuple[bytes, int], tuple[int, Decimal]]  # (consumer, day 0..) -> events, sum


def _read_table(ledger: Ledger, service: Digest, meter: str, month: Period) -> _Table:
    year, number = month.first_month // 12, month.first_month % 12 + 1
    start = datetime(year, number, 1, tzinfo=UTC).timestamp()
    days = calendar.monthrange(year, number)[1]
    per_day: dict[tuple[bytes, int], tuple[int, Decimal]] = defaultdict(lambda: (0, Decimal(0)))
    with ledger.read() as conn:
        for consumer, at, value in month_events(conn, str(service), meter, month.first_month):
            # a late event (moved forward from a billed month) counts on the first day
            day = min(max(int((at - start) // 86_400), 0), days - 1)
            events, total = per_day[(consumer, day)]
            per_day[(consumer, day)] = (
                events + 1,
                total + (Decimal(value) if value is not None else Decimal(0)),
            )
    return _Table(days, dict(per_day))


def _keep_days(table: _Table, limit: int) -> _Table:
    """Each consumer's `limit` earliest days of usage, the later ones dropped: a rule per
    consumer, so one consumer's data changes only its own rows."""
    by_consumer: dict[bytes, list[int]] = defaultdict(list)
    for consumer, day in table.per_day:
        by_consumer[consumer].append(day)
    kept = {(c, day) for c, days in by_consumer.items() for day in sorted(days)[:limit]}
    return _Table(table.days, {key: v for key, v in table.per_day.items() if key in kept})


def _daily_count(table: _Table, bound: int, days: int) -> tuple[Any, list[int], int]:
    """The clipped events' days, ready for `make_count_by_categories`, and `d_in`."""
    import numpy as np

    days_of_rows = np.fromiter((day for (_, day) in table.per_day), dtype=np.int64)
    counts = np.fromiter(
        (min(events, bound) for events, _ in table.per_day.values()), dtype=np.int64
    )
    return np.repeat(days_of_rows, counts), list(range(table.days)), bound * days


def _count_measurement(categories: list[int]) -> Callable[[float], Any]:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    counts = dp.t.make_count_by_categories(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.symmetric_distance(),
        categories=categories,
        null_category=False,
        MO=dp.L1Distance["i64"],
        TOA="i64",
    )
    return lambda scale: counts >> dp.m.then_laplace(scale)


def _sum_measurement(days: int) -> Callable[[float], Any]:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False), size=days)
    return lambda scale: dp.m.make_laplace(domain, dp.l1_distance(T=float), scale)


def _daily_sums(table: _Table, bound: Decimal) -> np.ndarray[Any, Any]:
    import numpy as np

    sums = [Decimal(0)] * table.days
    for (_, day), (_, total) in table.per_day.items():
        sums[day] += min(max(total, Decimal(0)), bound)
    return np.array([float(total) for total in sums], dtype=np.float64)


def _histogram_rows(table: _Table, edges: tuple[Decimal, ...], by_value: bool) -> Any:
    import bisect

    import numpy as np

    usage: dict[bytes, Decimal] = defaultdict(Decimal)
    for (consumer, _), (events, total) in table.per_day.items():
        usage[consumer] += total if by_value else events
    return np.fromiter(
        (bisect.bisect_right(edges, amount) for amount in usage.values()), dtype=np.int64
    )


def _day_labels(month: Period, days: int) -> list[str]:
    year, number = month.first_month // 12, month.first_month % 12 + 1
    return [date(year, number, day + 1).isoformat() for day in range(days)]


def release(
    ledger: Ledger,
    service: Digest,
    meter: str,
    period: str | Period,
    *,
    query: str,
    epsilon: object,
    author: PartyId,
    bound: object | None = None,
    days: object | None = None,
    edges: Sequence[object] | None = None,
) -> Release:
    """Release `query` about `meter`'s usage of `service` in the month `period`, with
    OpenDP noise calibrated to `epsilon`, as a signed `privacy.released` entry.

    Usage: `ws.release_usage_statistics(svc, "calls", "2026-03", query="daily-count",
    epsilon=0.5)`. A month without usage releases noisy zeros: its days (or buckets) are
    public, so releasing them is as private as any other month, and spends ε the same.

    Raises:
        InputError: ε or a bound that is not a positive number, an unknown query, a
            period that is not one month, `daily-sum` of a meter that does not sum.
        NotFoundError: the service has no such meter.
        RightsError: rule `privacy-budget` (no budget, or it would be overspent) or the
            author holds no metering right; nothing is written.
    """
    the_epsilon = parse_epsilon(epsilon)
    if the_epsilon < LEAST_EPSILON:
        raise InputError(
            f"ε = {epsilon} is below {LEAST_EPSILON}: the noise would drown everything",
            hint="release with ε of at least 0.000001 (typically 0.1 to 1)",
        )
    if query not in QUERIES:
        raise InputError(f"unknown private query {query!r}", hint=f"one of: {', '.join(QUERIES)}")
    month = _month(period)
    with ledger.read() as conn:
        known = {m.name: m for m in load_meters(conn, service)}
    if meter not in known:
        raise NotFoundError(
            f"{service} has no meter {meter!r}",
            hint=f"its meters: {', '.join(sorted(known)) or 'none yet (define_meter)'}",
        )
    aggregation = known[meter].aggregation
    if query == "daily-sum" and aggregation != "sum":
        raise InputError(
            f"daily-sum adds up values, and meter {meter!r} is a {aggregation} meter",
            hint="use daily-count for it, or daily-sum on a sum meter",
        )
    if query == "consumer-histogram" and (bound is not None or days is not None):
        raise InputError(
            "consumer-histogram takes no bound or days: one consumer is in one bucket",
            hint="give its bucket edges instead (edges=...)",
        )
    if query != "consumer-histogram" and edges is not None:
        raise InputError(f"{query} takes no bucket edges", hint="edges are for consumer-histogram")
    if query == "daily-sum" and bound is None:
        raise InputError(
            "daily-sum needs a bound: the most one consumer's values of a day may add",
            hint="e.g. bound=100000 for tokens; larger days are clipped to it "
            + "(docs/privacy.md)",
        )
    month_days = calendar.monthrange(month.first_month // 12, month.first_month % 12 + 1)[1]
    day_limit = month_days
    if days is not None:
        day_limit = int(_positive("days", days, whole=True, most=month_days))
    if query == "daily-count":
        the_bound = _positive(
            "bound", DEFAULT_COUNT_BOUND if bound is None else bound, whole=True, most=MOST_COUNT
        )
    elif query == "daily-sum":
        the_bound = _positive("bound", bound, whole=False, most=MOST_SUM)
    cuts = _edges(edges) if query == "consumer-histogram" else ()
    table = _read_table(ledger, service, meter, month)
    if days is not None:
        table = _keep_days(table, day_limit)
    from opendp.mod import OpenDPException

    labels: list[str]
    d_in: int | float
    try:
        if query == "daily-count":
            rows, categories, d_in = _daily_count(table, int(the_bound), day_limit)
            measurement, scale = _calibrate(_count_measurement(categories), d_in, the_epsilon)
            values = [str(int(v)) for v in measurement(rows)]
            labels = _day_labels(month, table.days)
            bound_text, kind = str(int(the_bound)), "discrete-laplace"
        elif query == "daily-sum":
            d_in = float(the_bound) * day_limit
            measurement, scale = _calibrate(_sum_measurement(table.days), d_in, the_epsilon)
            noisy = measurement(_daily_sums(table, the_bound))
            values = [decimal_text(Decimal(f"{v:.3f}")) for v in noisy]
            labels = _day_labels(month, table.days)
            bound_text, kind = decimal_text(the_bound), "laplace"
        else:
            rows = _histogram_rows(table, cuts, by_value=aggregation == "sum")
            d_in = 1
            measurement, scale = _calibrate(
                _count_measurement(list(range(len(cuts) + 1))), d_in, the_epsilon
            )
            values = [str(int(v)) for v in measurement(rows)]
            labels, bound_text, kind = _bucket_labels(cuts), None, "discrete-laplace"
        spent = measurement.map(d_in)
    except OpenDPException as exc:
        raise InputError(
            f"OpenDP cannot release {query} with ε = {epsilon}: {_short(str(exc))}",
            hint="use a moderate ε (0.01 to 10) and a bound suited to the meter's units",
        ) from exc
    d_in_text = decimal_text(Decimal(f"{d_in:.12g}"))
    mechanism = f"opendp:{kind}" + (f";bound={bound_text}" if bound_text else "")
    mechanism += f";days={day_limit}" if days is not None else ""
    mechanism += f";d_in={d_in_text};scale={_scale_text(scale)}"
    if len(mechanism) > 64:
        mechanism = f"opendp:{kind};d_in={d_in_text}"[:64]
    body = PrivacyReleased(
        service, meter, month, query, mechanism, _epsilon_text(spent),
        tuple(zip(labels, values, strict=True)),
    )  # fmt: skip
    body = PrivacyReleased.from_body(body.to_body())  # the entry's own checks, before signing
    index = ledger.append(body, author=author)
    return Release(
        index, body, bound_text, None if query == "consumer-histogram" else day_limit,
        d_in_text, scale,
    )  # fmt: skip


__all__ = [
    "DEFAULT_COUNT_BOUND",
    "DEFAULT_EDGES",
    "QUERIES",
    "Release",
    "parse_epsilon",
    "release",
    "set_budget",
]
