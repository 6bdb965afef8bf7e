"""One revenue split over 1,000,000 contributors; one statement verified on a 1,000,000-entry log.

Issue "Fair sharing", two speed targets, each measured against competitors or a ceiling in
the same run:

1. "One revenue over a 3-level lineage to 1,000,000 contributors: under 2 s, exact."
   Lineage: a service -> its model (policy: pool 1/5, roles data 4/5 weighted by the
   model's valuation and annotation 1/5 weighted by volume) -> 1,000 input assets (3/4
   datasets, 1/4 labelling batches) that one training run used -> 1,000 contributors each,
   distinct parties whose declared shares are seeded random integers over their sum (so
   they add up to exactly 1 per asset). The `SharingFacts` are built directly from `Fact`
   objects with made-up 64-hex entry names: signing 1,000,000 entries is not what is
   timed. Timed (median of --repeats): `allocate(facts)`, with the garbage collector on
   (as in use) and, as a diagnostic, disabled. Checked: the amounts add up to the
   revenue exactly; on a seeded sample every contributor got the floor or the ceiling of
   its exact rational share of what reached its asset (recomputed here with
   `fractions.Fraction`), with the distance to its end-to-end exact share reported; every
   contributor paid nothing had an exact share below one minor unit.
   Competitors on the same weights:
   (a) the float approach of many tools (numpy: amount * value / sum per asset, then
       * share per contributor, `np.round`): its speed and the minor units it makes or
       loses against the revenue;
   (b) a straightforward exact reference in pure Python: a `Fraction` quota for every
       contributor, then one largest-remainder pass (on a subset of whole assets and
       extrapolated linearly when the size is above --reference-limit).
   Context: `SharingFacts.from_entries` (and `parse_entry`) on really signed entries of the
   same lineage at a smaller size (--signed-contributors), i.e. what recomputing an
   allocation from wire bytes adds per contribution.

2. "`verify-statement` of one statement on a 1,000,000-entry log: under 100 ms."
   A real workspace log: 8 parties, then signed `asset.registered` filler entries appended
   with `Workspace.append_many` in batches (one checkpoint each), then a sharing scenario
   at the end through the workspace facade (a model trained on 20 datasets and 2 labelling
   batches with 10 contributors each, a service, a policy, a valuation, one revenue,
   `share`). `ws.statement_proof(party, period)` for one contributor is serialised to
   JSON text, and `verify_statement` is timed on it (median of --verify-repeats), with and
   without `json.loads`. Ceiling in the same run: the cryptographic floor of the same
   checks (Ed25519 verification of every entry and of the checkpoint note, RFC 9162 leaf
   hashes and inclusion proofs, with `quotepart.log` and cryptography directly; no
   parsing, no recomputation). Context: `ws.verify()`, the full audit of the same log,
   which is what checking one's cut would take without a statement file.

    python bench/sharing.py            # 1,000,000 contributors; a 1,000,000-entry log
    python bench/sharing.py --quick    # 20,000 contributors over 100 assets; 20,000 entries
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import ceil, floor
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    bench_parser,
    exit_cleanly_on_sigterm,
    fmt_ms,
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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import quotepart
from quotepart.allocation.engine import Allocation, allocate
from quotepart.allocation.facts import Fact, SharingFacts
from quotepart.ids import Digest, PartyId, Period, RevenueId, RunId
from quotepart.log import (
    Checkpoint,
    NoteVerifier,
    SignedEntry,
    SigningKey,
    leaf_hash,
    parse_entry,
    sign_entry,
    verify_inclusion,
)
from quotepart.log.kinds import (
    AssetRegistered,
    ContributionRecorded,
    EntryBody,
    PartyRegistered,
    PolicySet,
    RevenueRecorded,
    RunRecorded,
    ValuationRecorded,
)
from quotepart.sharing import verify_statement
from quotepart.workspace import Workspace

TARGET_ALLOCATE_S = 2.0
TARGET_VERIFY_MS = 100.0

BASE_TIME = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
PERIOD = "2026-Q1"
CURRENCY = "EUR"
POOL = Fraction(1, 5)
ROLES = {"data": Fraction(4, 5), "annotation": Fraction(1, 5)}
WEIGHTING = {"data": "valuation", "annotation": "volume"}
ROLE_OF_KIND = {"dataset": "data", "labelling_batch": "annotation"}
LABELLING_EVERY = 4  # one input asset in 4 is a labelling batch

FILLER_PARTIES = 8

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits each


def ulid_text(space: int, n: int) -> str:
    """A valid 26-character ULID, distinct for each (space < 2^20, n < 2^40)."""
    head = "01KGZ" + "".join(_PAIRS[(space >> shift) & 1023] for shift in (10, 0)) + "0" * 9
    return head + "".join(_PAIRS[(n >> shift) & 1023] for shift in (30, 20, 10, 0))


def entry_name(n: int) -> str:
    """A made-up leaf hash (64 hex) for a fact that was never signed."""
    return hashlib.sha256(b"bench/sharing/entry/%d" % n).hexdigest()


# ================================================================ part 1: allocate


@dataclass(slots=True)
class Lineage:
    """The bodies of the 3-level lineage, in log order, and what the checks need."""

    items: list[tuple[EntryBody, PartyId]]
    revenue: RevenueId
    revenue_minor: int
    operator: PartyId
    service: Digest
    model: Digest
    inputs: list[Digest]  # input assets, in registration order
    roles: list[str]  # the role of each input asset
    weights: list[Fraction]  # valuation value (data) or size (annotation) of each input
    share_weights: list[list[int]]  # each input's contributors' integer weights
    contributions: int


def build_lineage(assets: int, per_asset: int, revenue_minor: int, seed: int) -> Lineage:
    """Entry bodies for service -> model -> `assets` inputs -> `per_asset` contributors each."""
    rng = random.Random(seed)
    operator = PartyId(ulid_text(1, 0))
    owners = [PartyId(ulid_text(2, a)) for a in range(assets)]
    items: list[tuple[EntryBody, PartyId]] = []
    inputs: list[Digest] = []
    roles: list[str] = []
    weights: list[Fraction] = []
    share_weights: list[list[int]] = []
    values: dict[Digest, str] = {}
    for a in range(assets):
        kind = "labelling_batch" if a % LABELLING_EVERY == LABELLING_EVERY - 1 else "dataset"
        digest = Digest.of_bytes(b"bench/sharing/input/%d" % a)
        size = rng.randint(1_000, 1_000_000)
        items.append((AssetRegistered(digest, kind, f"{kind} {a}", size=size), owners[a]))
        inputs.append(digest)
        roles.append(ROLE_OF_KIND[kind])
        if kind == "dataset":
            value = f"{rng.randint(1, 200_000) / 1_000_000:.6f}"
            values[digest] = value
            weights.append(Fraction(value))
        else:
            weights.append(Fraction(size))
    contributor = 0
    for a, digest in enumerate(inputs):
        drawn = [rng.randint(1, 1_000) for _ in range(per_asset)]
        total = sum(drawn)
        share_weights.append(drawn)
        for w in drawn:
            party = PartyId(ulid_text(3, contributor))
            contributor += 1
            body = ContributionRecorded(party, digest, roles[a], Fraction(w, total))
            items.append((body, owners[a]))
    model = Digest.of_bytes(b"bench/sharing/model")
    service = Digest.of_bytes(b"bench/sharing/service")
    started = BASE_TIME + timedelta(days=1)
    run = RunRecorded(
        RunId(ulid_text(4, 0)),
        "train",
        operator,
        "succeeded",
        started,
        started + timedelta(hours=5),
        inputs=tuple(inputs),
        outputs=(model,),
    )
    revenue = RevenueId(ulid_text(5, 0))
    items += [
        (AssetRegistered(model, "model", "the model"), operator),
        (run, operator),
        (
            AssetRegistered(
                service,
                "service",
                "the API",
                "canonical-json",
                derived_from=(model,),
                metadata={"endpoint": "https://api.example.org/predict", "unit": "request"},
            ),
            operator,
        ),
        (PolicySet(model, operator, POOL, dict(ROLES), dict(WEIGHTING)), operator),
        (ValuationRecorded(model, values, "tmc-shapley", 10_000, True, seed=seed), operator),
        (
            RevenueRecorded(
                revenue, service, Period.parse(PERIOD), revenue_minor, CURRENCY, "invoice 1"
            ),
            operator,
        ),
    ]
    for body, _ in items[-6:] + items[:1] + items[assets : assets + 1]:  # valid bodies, spot
        type(body).from_body(body.to_body())
    return Lineage(
        items,
        revenue,
        revenue_minor,
        operator,
        service,
        model,
        inputs,
        roles,
        weights,
        share_weights,
        contributor,
    )


def facts_direct(lineage: Lineage) -> SharingFacts:
    """`SharingFacts` straight from `Fact` objects, with made-up entry names (nothing signed)."""
    return SharingFacts.of(
        (
            Fact(body, entry_name(index), index, author, BASE_TIME + timedelta(microseconds=index))
            for index, (body, author) in enumerate(lineage.items)
        ),
        lineage.revenue,
    )


def exact_asset_quotas(lineage: Lineage) -> list[Fraction]:
    """What each input asset should receive in exact rational money, end to end."""
    sums: dict[str, Fraction] = {}
    for role, weight in zip(lineage.roles, lineage.weights, strict=True):
        sums[role] = sums.get(role, Fraction(0)) + weight
    total = lineage.revenue_minor * POOL
    return [
        total * ROLES[role] * weight / sums[role]
        for role, weight in zip(lineage.roles, lineage.weights, strict=True)
    ]


def contributor_amounts(lineage: Lineage, allocation: Allocation) -> list[int]:
    """What each contributor got, in the order of the lineage's contributions (0: no line)."""
    first = len(lineage.inputs)  # contributions follow the input assets in the log
    index_of = {entry_name(first + c): c for c in range(lineage.contributions)}
    amounts = [0] * lineage.contributions
    for line in allocation.lines:
        if line.reason == "contribution":
            amounts[index_of[line.trace[-1].entry or ""]] += line.amount_minor
    return amounts


def check_allocation(
    lineage: Lineage, allocation: Allocation, ours: Sequence[int], sample: int, seed: int
) -> dict[str, Any]:
    """Exactness: the sum; floor/ceil of exact shares on a seeded sample of contributors;
    every unpaid contributor's exact share below one minor unit."""
    total = sum(allocation.amounts.values())
    lines_total = sum(line.amount_minor for line in allocation.lines)
    quotas = exact_asset_quotas(lineage)
    received = [allocation.flows[digest].received for digest in lineage.inputs]
    sums = [sum(drawn) for drawn in lineage.share_weights]
    asset_of = [a for a, drawn in enumerate(lineage.share_weights) for _ in drawn]
    offsets = [0]
    for drawn in lineage.share_weights:
        offsets.append(offsets[-1] + len(drawn))

    def share_of(c: int) -> Fraction:
        asset = asset_of[c]
        return Fraction(lineage.share_weights[asset][c - offsets[asset]], sums[asset])

    rng = random.Random(seed + 1)
    picked = sorted(rng.sample(range(lineage.contributions), min(sample, lineage.contributions)))
    level_ok = end_ok = 0
    worst_level = worst_end = Fraction(0)
    for c in picked:
        asset, amount, share = asset_of[c], ours[c], share_of(c)
        level = received[asset] * share  # its exact share of what reached its asset
        end = quotas[asset] * share  # its exact share of the revenue, end to end
        level_ok += amount in (floor(level), ceil(level))
        end_ok += amount in (floor(end), ceil(end))
        worst_level = max(worst_level, abs(amount - level))
        worst_end = max(worst_end, abs(amount - end))
    unpaid = [c for c, amount in enumerate(ours) if amount == 0]
    unpaid_below_one = sum(received[asset_of[c]] * share_of(c) < 1 for c in unpaid)
    assets_ok = sum(
        r in (floor(quota), ceil(quota)) for r, quota in zip(received, quotas, strict=True)
    )
    return {
        "sum_minor": total,
        "lines_sum_minor": lines_total,
        "revenue_minor": lineage.revenue_minor,
        "sum_exact": total == lineage.revenue_minor == lines_total,
        "contributors_paid": lineage.contributions - len(unpaid),
        "contributors": lineage.contributions,
        "unpaid_with_exact_share_below_one_minor_unit": unpaid_below_one,
        "parties_paid": len(allocation.amounts),
        "lines": len(allocation.lines),
        "sample": len(picked),
        "sample_floor_or_ceil_of_asset_share": level_ok,
        "sample_max_abs_error_vs_asset_share": float(worst_level),
        "sample_floor_or_ceil_of_end_to_end_share": end_ok,
        "sample_max_abs_error_vs_end_to_end_share": float(worst_end),
        "assets_floor_or_ceil_of_end_to_end_quota": assets_ok,
        "assets": len(lineage.inputs),
        "notes": allocation.notes,
    }


# ------------------------------------------------------------------ competitors


@dataclass(slots=True)
class FloatInputs:
    """What a float tool would hold: weights and shares as float64 arrays."""

    revenue: float
    pool: float
    role_ratio: np.ndarray  # per asset
    weight: np.ndarray  # per asset
    role_sum: np.ndarray  # per asset: the sum of its role's weights
    asset_of: np.ndarray  # per contributor
    share: np.ndarray  # per contributor


def float_inputs(lineage: Lineage) -> FloatInputs:
    sums: dict[str, float] = {}
    for role, weight in zip(lineage.roles, lineage.weights, strict=True):
        sums[role] = sums.get(role, 0.0) + float(weight)
    shares = np.concatenate(
        [np.asarray(drawn, dtype=np.float64) / sum(drawn) for drawn in lineage.share_weights]
    )
    return FloatInputs(
        float(lineage.revenue_minor),
        float(POOL),
        np.array([float(ROLES[r]) for r in lineage.roles]),
        np.array([float(w) for w in lineage.weights]),
        np.array([sums[r] for r in lineage.roles]),
        np.repeat(np.arange(len(lineage.inputs)), [len(drawn) for drawn in lineage.share_weights]),
        shares,
    )


def naive_float(data: FloatInputs) -> tuple[float, np.ndarray]:
    """Amount * value / sum per asset, * share per contributor, rounded: the usual way."""
    retained = np.round(data.revenue * (1 - data.pool))
    per_asset = data.revenue * data.pool * data.role_ratio * data.weight / data.role_sum
    return float(retained), np.round(per_asset[data.asset_of] * data.share)


def fraction_reference(
    revenue_minor: int, quotas: Sequence[Fraction], shares: Sequence[Sequence[Fraction]]
) -> list[int]:
    """Exact and flat: a Fraction quota per contributor, floors, then largest remainders.

    `quotas` are the exact amounts of the assets (computed by the caller, once per asset);
    the last amount returned is the operator's."""
    exact = [quota * share for quota, row in zip(quotas, shares, strict=True) for share in row]
    exact.append(revenue_minor * (1 - POOL))
    floors = [q.numerator // q.denominator for q in exact]
    remainders = [q - f for q, f in zip(exact, floors, strict=True)]
    left = round(sum(exact)) - sum(floors)
    order = sorted(range(len(exact)), key=remainders.__getitem__, reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return floors


def time_allocate(
    facts: SharingFacts, repeats: int, *, collector: bool = True
) -> tuple[list[float], Allocation]:
    """Median material for `allocate(facts)`; `collector=False` runs it with gc disabled."""
    seconds: list[float] = []
    allocation: Allocation | None = None
    for repeat in range(repeats):
        allocation = None
        gc.collect()
        if not collector:
            gc.disable()
        try:
            with stopwatch() as elapsed:
                allocation = allocate(facts)
        finally:
            gc.enable()
        seconds.append(elapsed[0])
        what = "allocate" if collector else "allocate, gc disabled"
        log(f"  {what}, repeat {repeat + 1}/{repeats}: {elapsed[0]:.3f} s")
    assert allocation is not None
    return seconds, allocation


def sign_lineage(lineage: Lineage) -> list[bytes]:
    """Wire bytes of every entry of the lineage, really signed (one key per author)."""
    keys: dict[PartyId, SigningKey] = {}
    wire: list[bytes] = []
    for body, author in lineage.items:
        key = keys.get(author)
        if key is None:
            key = keys[author] = SigningKey.generate()
        wire.append(
            sign_entry(
                body, origin="bench.local/sharing", author=author, key=key, clock=lambda: BASE_TIME
            ).canonical
        )
    return wire


def run_allocation(args: Any) -> dict[str, Any]:
    per_asset = args.contributors // args.assets
    contributors = per_asset * args.assets
    log(f"part 1: building the facts of {contributors:,} contributions over {args.assets:,} assets")
    with stopwatch() as elapsed:
        lineage = build_lineage(args.assets, per_asset, args.revenue_minor, args.seed)
        facts = facts_direct(lineage)
    build_s = elapsed[0]
    log(f"  built in {build_s:.1f} s (not timed: no signing, made-up entry names)")

    seconds, allocation = time_allocate(facts, args.repeats)
    del allocation
    no_gc_seconds, allocation = time_allocate(facts, args.repeats, collector=False)
    ours = contributor_amounts(lineage, allocation)
    checks = check_allocation(lineage, allocation, ours, args.sample, args.seed)
    log(
        f"  sum {checks['sum_minor']:,} vs revenue {checks['revenue_minor']:,}; sample "
        f"{checks['sample_floor_or_ceil_of_asset_share']:,}/{checks['sample']:,} floor/ceil"
    )
    retained_ours = allocation.amount_of(lineage.operator)
    del allocation
    gc.collect()

    log("  competitor (a): naive float with numpy")
    data = float_inputs(lineage)
    float_seconds: list[float] = []
    for _ in range(args.repeats):
        with stopwatch() as elapsed:
            retained, amounts = naive_float(data)
        float_seconds.append(elapsed[0])
    made = int(retained) + int(amounts.astype(np.int64).sum()) - lineage.revenue_minor
    ours_array = np.asarray(ours, dtype=np.int64)
    float_differ = int(np.count_nonzero(amounts.astype(np.int64) != ours_array))
    float_max_diff = int(np.abs(amounts.astype(np.int64) - ours_array).max())

    quotas = exact_asset_quotas(lineage)
    shares = [
        [Fraction(w, sum(drawn)) for w in drawn] for drawn in lineage.share_weights
    ]  # the same Fractions the bodies hold
    limit_assets = max(1, min(args.assets, args.reference_limit // per_asset))
    subset = limit_assets < args.assets
    covered = limit_assets * per_asset
    log(
        f"  competitor (b): Fraction reference on {covered:,} contributors"
        + (" (a subset, extrapolated)" if subset else "")
    )
    reference_seconds: list[float] = []
    reference: list[int] = []
    for _ in range(args.reference_repeats):
        gc.collect()
        with stopwatch() as elapsed:
            reference = fraction_reference(
                lineage.revenue_minor, quotas[:limit_assets], shares[:limit_assets]
            )
        reference_seconds.append(elapsed[0])
        log(f"    {elapsed[0]:.2f} s")
    reference_measured = median(reference_seconds)
    reference_s = reference_measured * contributors / covered
    comparison: dict[str, Any] = {"compared": not subset}
    if not subset:
        assert sum(reference) == lineage.revenue_minor
        differ = [abs(a - b) for a, b in zip(reference[:-1], ours, strict=True) if a != b]
        comparison.update(
            contributors_differing=len(differ),
            max_abs_difference_minor=max(differ, default=0),
            operator_difference_minor=reference[-1] - retained_ours,
        )
    del reference, shares

    signed: dict[str, Any] = {}
    if args.signed_contributors > 0:
        signed = run_signed(args, per_asset)

    ours_s = median(seconds)
    return {
        "contributors": contributors,
        "assets": args.assets,
        "per_asset": per_asset,
        "facts_build_seconds": build_s,
        "entries": len(lineage.items),
        "allocate": {
            "seconds": seconds,
            "median_s": ours_s,
            "contributors_per_s": rate(contributors, ours_s),
        },
        "allocate_gc_disabled": {
            "seconds": no_gc_seconds,
            "median_s": median(no_gc_seconds),
            "contributors_per_s": rate(contributors, median(no_gc_seconds)),
        },
        "checks": checks,
        "naive_float": {
            "seconds": float_seconds,
            "median_s": median(float_seconds),
            "minor_units_made_or_lost": made,
            "contributors_differing_from_quotepart": float_differ,
            "max_abs_difference_from_quotepart": float_max_diff,
        },
        "fraction_reference": {
            "seconds": reference_seconds,
            "measured_on_contributors": covered,
            "extrapolated": subset,
            "median_s": reference_s,
            "comparison_with_quotepart": comparison,
        },
        "ratios": {
            "allocate_vs_naive_float": ours_s / median(float_seconds),
            "fraction_reference_vs_allocate": reference_s / ours_s,
        },
        "signed": signed,
        "target": {"seconds_max": TARGET_ALLOCATE_S, "met": ours_s < TARGET_ALLOCATE_S},
    }


def run_signed(args: Any, per_asset_full: int) -> dict[str, Any]:
    """from_entries on really signed entries at a smaller size: recomputing from wire bytes."""
    per_asset = min(per_asset_full, max(1, args.signed_contributors // args.signed_assets))
    lineage = build_lineage(args.signed_assets, per_asset, args.revenue_minor, args.seed)
    log(f"  signing {len(lineage.items):,} entries for from_entries")
    wire = sign_lineage(lineage)
    parse_s, facts_s, allocate_s = [], [], []
    for _ in range(args.repeats):
        gc.collect()
        with stopwatch() as elapsed:
            parsed = [(i, parse_entry(data)) for i, data in enumerate(wire)]
        parse_s.append(elapsed[0])
        with stopwatch() as elapsed:
            facts = SharingFacts.from_entries(parsed, lineage.revenue)
        facts_s.append(elapsed[0])
        with stopwatch() as elapsed:
            allocation = allocate(facts)
        allocate_s.append(elapsed[0])
        assert sum(allocation.amounts.values()) == lineage.revenue_minor
    count = lineage.contributions
    return {
        "contributors": count,
        "assets": args.signed_assets,
        "entries": len(wire),
        "parse_entry_s": median(parse_s),
        "from_entries_s": median(facts_s),
        "allocate_s": median(allocate_s),
        "parse_entry_us_per_entry": median(parse_s) / len(wire) * 1e6,
        "from_entries_us_per_entry": median(facts_s) / len(wire) * 1e6,
        "allocate_us_per_contributor": median(allocate_s) / count * 1e6,
    }


def render_allocation(result: dict[str, Any]) -> None:
    n = result["contributors"]
    ours = result["allocate"]["median_s"]
    naive, ref, checks = result["naive_float"], result["fraction_reference"], result["checks"]
    table = new_table(
        f"One revenue over service -> model -> {result['assets']:,} assets -> {n:,} contributors "
        f"({result['per_asset']:,} per asset), median of {len(result['allocate']['seconds'])}",
        ["method", "ms", "contributors/s", "vs allocate", "sum − revenue (minor)", "exact"],
    )

    def row(label: str, seconds: float, made: str, exact: str) -> None:
        ratio = seconds / ours
        table.add_row(
            label,
            f"{seconds * 1e3:,.1f}" if seconds >= 0.01 else f"{seconds * 1e3:.3f}",
            fmt_rate(rate(n, seconds)),
            f"{ratio:.3g}×",
            made,
            exact,
        )

    sum_error = str(checks["sum_minor"] - checks["revenue_minor"])
    row(
        "quotepart allocate(facts)  ← target",
        ours,
        sum_error,
        "yes" if checks["sum_exact"] else "NO",
    )
    row(
        "  the same with the garbage collector disabled (diagnostic)",
        result["allocate_gc_disabled"]["median_s"],
        sum_error,
        "yes" if checks["sum_exact"] else "NO",
    )
    row(
        "(a) naive float, numpy (np.round)",
        naive["median_s"],
        f"{naive['minor_units_made_or_lost']:+,}",
        "no",
    )
    label = "(b) Fraction quotas + largest remainder, pure Python"
    if len(ref["seconds"]) == 1:
        label += ", 1 run"
    if ref["extrapolated"]:
        label += f" (on {ref['measured_on_contributors']:,}, extrapolated)"
    row(label, ref["median_s"], "0", "yes")
    signed = result["signed"]
    if signed:
        per = signed["from_entries_us_per_entry"] + signed["parse_entry_us_per_entry"]
        table.add_row(
            f"  context: parse_entry + from_entries of {signed['entries']:,} signed entries",
            f"{(signed['parse_entry_s'] + signed['from_entries_s']) * 1e3:,.1f}",
            fmt_rate(1e6 / per),
            "—",
            "—",
            "—",
        )
    stdout.print(table)
    comparison = ref["comparison_with_quotepart"]
    compared = (
        f"The reference and quotepart differ for {comparison['contributors_differing']:,} "
        f"contributors, by at most {comparison['max_abs_difference_minor']} minor unit(s) "
        "(one largest-remainder pass over everyone vs one per split level)."
        if comparison["compared"]
        else "The reference ran on a subset, so its amounts are not compared."
    )
    stdout.print(
        f"Facts built from Fact objects with made-up entry names in {result['facts_build_seconds']:.1f} s "
        "(no signing; not timed).\n"
        f"Exact: amounts sum to the revenue ({checks['revenue_minor']:,} minor units): "
        f"{checks['sum_exact']}; {checks['contributors_paid']:,} of {checks['contributors']:,} "
        f"contributors paid (the other {checks['contributors'] - checks['contributors_paid']:,}: "
        f"exact share below 1 minor unit for {checks['unpaid_with_exact_share_below_one_minor_unit']:,}). "
        f"Sample of {checks['sample']:,}: "
        f"{checks['sample_floor_or_ceil_of_asset_share']:,} got floor/ceil of their exact share of "
        f"what reached their asset (max |error| {checks['sample_max_abs_error_vs_asset_share']:.3f}); "
        f"{checks['sample_floor_or_ceil_of_end_to_end_share']:,} floor/ceil of their end-to-end "
        f"exact share of the revenue (max |error| {checks['sample_max_abs_error_vs_end_to_end_share']:.3f}); "
        f"assets at floor/ceil of their exact quota: {checks['assets_floor_or_ceil_of_end_to_end_quota']:,}"
        f"/{checks['assets']:,}.\n"
        f"Naive float: {naive['minor_units_made_or_lost']:+,} minor units against the revenue; "
        f"{naive['contributors_differing_from_quotepart']:,} contributors differ from quotepart "
        f"(max {naive['max_abs_difference_from_quotepart']}). {compared}"
    )
    if signed:
        stdout.print(
            f"From signed entries ({signed['contributors']:,} contributors): parse_entry "
            f"{signed['parse_entry_us_per_entry']:.1f} µs/entry, from_entries "
            f"{signed['from_entries_us_per_entry']:.1f} µs/entry, allocate "
            f"{signed['allocate_us_per_contributor']:.2f} µs/contributor."
        )
    verdict = "meets" if result["target"]["met"] else "misses"
    stdout.print(
        f"Target: {n:,} contributors in {ours:.2f} s: {verdict} the target (< {TARGET_ALLOCATE_S:.0f} s)."
    )


# ======================================================== part 2: verify-statement


def build_filler(ws: Workspace, entries: int, batch: int) -> float:
    """Signed `asset.registered` entries (after the parties); return the seconds taken."""
    parties = [ws.register_party(f"filler party {k}") for k in range(FILLER_PARTIES)]
    timed = 0.0
    for start in range(0, entries, batch):
        items: list[tuple[EntryBody, PartyId]] = [
            (
                AssetRegistered(
                    Digest.of_bytes(b"bench/sharing/filler/%d" % i), "dataset", f"dataset {i}"
                ),
                parties[i % FILLER_PARTIES],
            )
            for i in range(start, min(start + batch, entries))
        ]
        with stopwatch() as elapsed:
            ws.append_many(items)
        timed += elapsed[0]
        done = start + len(items)
        if done % (batch * 100) == 0 or done == entries:
            eta = (entries - done) * timed / done
            log(
                f"  filled {done:>10,}/{entries:,}  {rate(done, timed):>7,.0f} entries/s  eta {eta:,.0f} s"
            )
    return timed


@dataclass(slots=True)
class Scenario:
    revenue: RevenueId
    party: PartyId  # the contributor whose statement is proven
    entries: int  # appended by the scenario


def build_scenario(
    ws: Workspace, datasets: int, batches: int, per_asset: int, seed: int
) -> Scenario:
    """A model trained on `datasets` datasets and `batches` labelling batches, `per_asset`
    contributors each, served by a service, with a policy, a valuation, one revenue, shared."""
    rng = random.Random(seed)
    before = ws.store.tree_size()
    operator = ws.register_party("Lab", roles=("operator",))
    inputs: list[Digest] = []
    first: PartyId | None = None
    for a in range(datasets + batches):
        kind = "dataset" if a < datasets else "labelling_batch"
        owner = ws.register_party(f"{kind} owner {a}")
        people = [
            ws.register_party(f"contributor {a}.{k}", agent_type="person") for k in range(per_asset)
        ]
        first = first or people[0]
        content = b"bench/sharing/scenario/%d/" % a + bytes(rng.randrange(1_000, 50_000))
        digest = ws.register_asset(content, asset_kind=kind, name=f"{kind} {a}", by=owner)
        drawn = [rng.randint(1, 1_000) for _ in people]
        shares = {p: Fraction(w, sum(drawn)) for p, w in zip(people, drawn, strict=True)}
        ws.contribute(digest, shares, role=ROLE_OF_KIND[kind], by=owner)
        inputs.append(digest)
    with ws.run("train", operator=operator) as run:
        run.use(*inputs)
        model = ws.register_asset(
            b"bench/sharing/model weights", asset_kind="model", name="model", by=operator
        )
        run.produce(model)
    service = ws.register_service(
        name="predict", endpoint="https://api.example.org/predict", model=model, by=operator
    )
    ws.set_policy(
        model,
        pool=POOL,
        roles={role: ratio for role, ratio in ROLES.items()},
        weighting=dict(WEIGHTING),
        by=operator,
    )
    values = {digest: f"{rng.randint(1, 200_000) / 1_000_000:.6f}" for digest in inputs[:datasets]}
    ws.record_valuation(
        model, values, method="tmc-shapley", evaluations=4_000, seed=seed, by=operator
    )
    revenue = ws.record_revenue(
        service, "123456.78", CURRENCY, period=PERIOD, source="invoice 2026-Q1", by=operator
    )
    ws.share(revenue)
    assert first is not None
    return Scenario(revenue, first, ws.store.tree_size() - before)


@dataclass(slots=True)
class Prepared:
    """The statement file's checks, decoded beforehand, for the crypto floor."""

    note: str
    verifier: NoteVerifier
    leaves: list[tuple[bytes, int, list[bytes]]]  # entry bytes, index, proof path
    signatures: list[tuple[bytes, bytes, bytes]]  # public key, signature, signed message


def prepare_floor(document: dict[str, Any]) -> Prepared:
    leaves = []
    entries: list[SignedEntry] = []
    for index_text, blob in document["entries"].items():
        data = base64.b64decode(blob)
        path = [bytes.fromhex(h) for h in document["proofs"][index_text]]
        leaves.append((data, int(index_text), path))
        entries.append(parse_entry(data))
    keys = {}
    for entry in entries:
        body = entry.body()
        if isinstance(body, PartyRegistered):
            keys[body.party] = body.public_key.raw
    signatures = [(keys[e.author], e.signature, e.signed_message) for e in entries]
    verifier = NoteVerifier.parse(document["log"]["verifier_key"])
    return Prepared(document["log"]["checkpoint"], verifier, leaves, signatures)


def crypto_floor(prepared: Prepared, *, inclusion: bool = True, signatures: bool = True) -> None:
    """The same cryptographic checks as verify_statement, and nothing else."""
    checkpoint = Checkpoint.open(prepared.note, prepared.verifier)
    if inclusion:
        size, root = checkpoint.tree_size, checkpoint.root_hash
        for data, index, path in prepared.leaves:
            verify_inclusion(leaf_hash(data), index, size, path, root)
    if signatures:
        cache: dict[bytes, Ed25519PublicKey] = {}
        for public, signature, message in prepared.signatures:
            key = cache.get(public)
            if key is None:
                key = cache[public] = Ed25519PublicKey.from_public_bytes(public)
            key.verify(signature, message)


def time_many(function: Callable[[], object], repeats: int) -> list[float]:
    function()  # warm
    seconds = []
    for _ in range(repeats):
        with stopwatch() as elapsed:
            function()
        seconds.append(elapsed[0])
    return seconds


STATEMENT_STEPS: dict[str, str] = {
    "verify_with_json": "verify_statement(json.loads(text))  ← target",
    "verify": "verify_statement(document), parsed beforehand",
    "json_loads": "  json.loads(text) alone",
    "parse_entries": "  base64 + parse_entry of every entry alone",
    "floor": "crypto floor: Ed25519 (entries + checkpoint) + leaf hashes + inclusion proofs",
    "floor_signatures": "  Ed25519 of every entry + checkpoint alone",
    "floor_inclusion": "  leaf hashes + inclusion proofs + checkpoint alone",
}


def run_statement(args: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="quotepart-bench-sharing-", dir=args.workdir) as tmp:
        log(
            f"part 2: filling a log with {args.entries:,} signed entries in batches of {args.batch:,}"
        )
        with quotepart.init_workspace(Path(tmp) / "ws") as ws:
            build_s = build_filler(ws, args.entries, args.batch)
            log("  appending the sharing scenario")
            with stopwatch() as elapsed:
                scenario = build_scenario(
                    ws,
                    args.statement_datasets,
                    args.statement_batches,
                    args.statement_contributors,
                    args.seed,
                )
            scenario_s = elapsed[0]
            size = ws.store.tree_size()
            log(f"  log: {size:,} entries (scenario: {scenario.entries:,} in {scenario_s:.1f} s)")
            proof_seconds = time_many(lambda: ws.statement_proof(scenario.party, PERIOD), 2)
            document = ws.statement_proof(scenario.party, PERIOD)
            text = json.dumps(document)
            verified = verify_statement(json.loads(text))
            assert verified.tree_size == size, verified
            assert verified.totals, verified
            indexes = sorted(int(i) for i in document["entries"])
            log(
                f"  statement file: {len(text.encode()):,} bytes, {len(indexes):,} entries "
                f"(indexes {indexes[0]:,} to {indexes[-1]:,}), {verified.totals}"
            )
            prepared = prepare_floor(json.loads(text))
            repeats = args.verify_repeats
            gc.collect()
            seconds = {
                "verify_with_json": time_many(lambda: verify_statement(json.loads(text)), repeats),
                "verify": time_many(lambda: verify_statement(document), repeats),
                "json_loads": time_many(lambda: json.loads(text), repeats),
                "parse_entries": time_many(
                    lambda: [
                        parse_entry(base64.b64decode(b)) for b in document["entries"].values()
                    ],
                    repeats,
                ),
                "floor": time_many(lambda: crypto_floor(prepared), repeats),
                "floor_signatures": time_many(
                    lambda: crypto_floor(prepared, inclusion=False), repeats
                ),
                "floor_inclusion": time_many(
                    lambda: crypto_floor(prepared, signatures=False), repeats
                ),
            }
            medians = {name: median(values) for name, values in seconds.items()}
            for name, value in medians.items():
                log(f"  {name:<18} {value * 1e3:8.2f} ms")
            audit_s = None
            if not args.skip_audit:
                log(f"  ws.verify(): the full audit of {size:,} entries")
                with stopwatch() as elapsed:
                    report = ws.verify()
                audit_s = elapsed[0]
                assert report.tree_size == size
                log(f"  ws.verify() {audit_s:.1f} s")
            result = {
                "tree_size": size,
                "filler_entries": args.entries,
                "filler_build_seconds": build_s,
                "filler_entries_per_s": rate(args.entries, build_s),
                "scenario_entries": scenario.entries,
                "scenario_seconds": scenario_s,
                "statement": {
                    "bytes": len(text.encode()),
                    "entries": len(indexes),
                    "lowest_index": indexes[0],
                    "highest_index": indexes[-1],
                    "allocations": verified.allocations,
                    "totals": verified.totals,
                    "proof_hashes": sum(len(p) for p in document["proofs"].values()),
                },
                "statement_proof_s": median(proof_seconds),
                "seconds": seconds,
                "median_ms": {name: value * 1e3 for name, value in medians.items()},
                "ratios": {
                    "verify_vs_floor": medians["verify"] / medians["floor"],
                    "verify_with_json_vs_floor": medians["verify_with_json"] / medians["floor"],
                    "audit_vs_verify_with_json": None
                    if audit_s is None
                    else audit_s / medians["verify_with_json"],
                },
                "derived_recompute_ms": (
                    medians["verify"] - medians["floor"] - medians["parse_entries"]
                )
                * 1e3,
                "full_audit_seconds": audit_s,
                "target": {
                    "ms_max": TARGET_VERIFY_MS,
                    "met": medians["verify_with_json"] * 1e3 < TARGET_VERIFY_MS,
                },
            }
    return result


def render_statement(result: dict[str, Any]) -> None:
    ms = result["median_ms"]
    statement = result["statement"]
    table = new_table(
        f"verify-statement: one statement ({statement['entries']:,} entries, "
        f"{statement['bytes']:,} bytes) on a log of {result['tree_size']:,} entries, "
        f"median of {len(result['seconds']['verify'])}",
        ["step", "ms", "vs crypto floor", "of verify (with json)"],
    )
    for name, label in STATEMENT_STEPS.items():
        table.add_row(
            label,
            fmt_ms(ms[name]),
            fmt_ratio(ms[name] / ms["floor"]),
            f"{ms[name] / ms['verify_with_json']:.0%}",
        )
    table.add_row(
        "context: ws.statement_proof (writing the file)",
        fmt_ms(result["statement_proof_s"] * 1e3),
        "—",
        "—",
    )
    audit = result["full_audit_seconds"]
    if audit is not None:
        table.add_row(
            f"context: ws.verify(), the full audit of {result['tree_size']:,} entries",
            f"{audit * 1e3:,.0f}",
            fmt_ratio(audit * 1e3 / ms["floor"]),
            f"{audit * 1e3 / ms['verify_with_json']:,.0f}×",
        )
    stdout.print(table)
    verdict = "meets" if result["target"]["met"] else "misses"
    rest = ms["verify"] - ms["floor"] - ms["parse_entries"]
    stdout.print(
        f"verify − floor − parsing = {rest:.1f} ms ({rest / ms['verify']:.0%} of verify, derived): "
        "recomputing the allocation (bodies, from_entries, allocate) and the file's checks.\n"
        f"The statement's entries lie at indexes {statement['lowest_index']:,} to "
        f"{statement['highest_index']:,}; {statement['proof_hashes']:,} proof hashes. Log filled with "
        f"{result['filler_entries']:,} signed asset.registered entries at "
        f"{result['filler_entries_per_s']:,.0f} entries/s ({result['filler_build_seconds']:.0f} s).\n"
        f"Target: verify_statement(json.loads(text)) in {ms['verify_with_json']:.1f} ms: {verdict} "
        f"the target (< {TARGET_VERIFY_MS:.0f} ms)."
    )


# ========================================================================== main


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--part", choices=("allocate", "statement", "both"), default="both")
    parser.add_argument("--contributors", type=int, help="default 1,000,000 (--quick: 20,000)")
    parser.add_argument("--assets", type=int, help="input assets (default 1,000; --quick: 100)")
    parser.add_argument("--revenue-minor", type=int, default=987_654_321, help="minor units")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of allocate (median)")
    parser.add_argument("--sample", type=int, default=10_000, help="contributors checked exactly")
    parser.add_argument(
        "--reference-limit",
        type=int,
        default=1_000_000,
        help="largest size the Fraction reference runs at; above it, a subset, extrapolated",
    )
    parser.add_argument(
        "--reference-repeats", type=int, default=1, help="of the Fraction reference"
    )
    parser.add_argument(
        "--signed-contributors", type=int, help="size of the signed from_entries case (0: skip)"
    )
    parser.add_argument("--signed-assets", type=int, default=20)
    parser.add_argument(
        "--entries", type=int, help="filler entries (default 1,000,000; --quick 20,000)"
    )
    parser.add_argument("--batch", type=int, default=1_000, help="filler entries per append_many")
    parser.add_argument("--statement-datasets", type=int, default=20)
    parser.add_argument("--statement-batches", type=int, default=2, help="labelling batches")
    parser.add_argument("--statement-contributors", type=int, default=10, help="per input asset")
    parser.add_argument("--verify-repeats", type=int, default=20)
    parser.add_argument("--skip-audit", action="store_true", help="do not time ws.verify()")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where the temporary workspace goes")
    args = parser.parse_args(argv)
    exit_cleanly_on_sigterm()
    args.contributors = args.contributors or (20_000 if args.quick else 1_000_000)
    args.assets = args.assets or (100 if args.quick else 1_000)
    args.entries = (
        args.entries if args.entries is not None else (20_000 if args.quick else 1_000_000)
    )
    if args.signed_contributors is None:
        args.signed_contributors = 2_000 if args.quick else 20_000

    results: dict[str, Any] = {}
    if args.part in ("allocate", "both"):
        results["allocate"] = run_allocation(args)
        render_allocation(results["allocate"])
    if args.part in ("statement", "both"):
        results["statement"] = run_statement(args)
        render_statement(results["statement"])
    write_results(
        results_path("sharing", quick=args.quick, override=args.output),
        {
            "benchmark": "sharing",
            "issue": "Fair sharing",
            "machine": machine_info(),
            "parameters": {
                **{
                    k: (str(v) if isinstance(v, Path) else v)
                    for k, v in vars(args).items()
                    if k != "output"
                },
                "pool": str(POOL),
                "roles": {r: str(v) for r, v in ROLES.items()},
                "weighting": WEIGHTING,
                "labelling_every": LABELLING_EVERY,
                "database": "SQLite (WAL), temporary workspace",
            },
            "targets": {
                "allocate_seconds_max": TARGET_ALLOCATE_S,
                "verify_statement_ms_max": TARGET_VERIFY_MS,
            },
            "results": results,
            "notes": [
                "part 1: SharingFacts built directly from Fact objects with made-up 64-hex entry "
                "names; nothing signed, building them is not timed",
                "part 1: allocate timed with the garbage collector on (as in use), after gc.collect()",
                "naive float: numpy on float64 arrays prepared beforehand (not timed)",
                "Fraction reference: exact quotas of the assets computed beforehand; per "
                "contributor one Fraction product, floor, remainder; one sort of remainders",
                "part 2: crypto floor on entries, proofs and signed messages decoded beforehand; "
                "Ed25519 key objects cached per author",
            ],
        },
    )


if __name__ == "__main__":
    main()
