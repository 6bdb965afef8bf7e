"""Rights: who may sign each kind of entry, given the log so far.

The log proves who signed an entry; this module decides who *may*. Every entry kind has
exactly one rule here (`RULES`; a test checks none is missing), and the rule is judged
from the projections as they stand at the entry's position in the log. Append and
verify's replay both call `admit` through `apply_projections`, so an entry refused at
append is also named by `verify` when it reaches the log some other way (written behind
quotepart's back, or appended by an older version), and `rebuild` refuses to replay it.

The rights over an asset belong to its *registrant*, the party that registered it first.
It may delegate a right (`right.granted`, see `quotepart.log.kinds.rights.RIGHTS`) and
revoke it (`right.revoked`); a delegation covers entries timestamped within its window
and appended before its revocation. docs/rights.md states every rule in words.

Lookups are cached for one batch on the writer: a batch of 10,000 usage entries of one
service asks the database once who may meter it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from quotepart.errors import InputError, NotFoundError, RightsError
from quotepart.ids import Digest, PartyId, Period, format_timestamp, parse_timestamp
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    DECLARED,
    AllocationRecorded,
    AssetRegistered,
    ClaimFiled,
    ConsentRecorded,
    ContributionAccepted,
    ContributionRecorded,
    MeterDefined,
    OverlapDetected,
    PartyPayoutChanged,
    PartyRegistered,
    PayoutRecorded,
    PolicySet,
    PrivacyBudget,
    PrivacyReleased,
    ReportPublished,
    RevenueRecorded,
    RightGranted,
    RightRevoked,
    RunRecorded,
    TariffSet,
    UsageBatch,
    UsageBilled,
    UsageRecorded,
    ValuationRecorded,
)
from quotepart.money import currency
from quotepart.store import usage_events
from quotepart.store.queries import rights as rights_queries
from quotepart.store.schema import (
    allocations,
    assets,
    consents,
    contribution_proposals,
    parties,
    privacy_budgets,
    privacy_releases,
    revenues,
    rights,
)

if TYPE_CHECKING:
    from quotepart.store.projections._writer import ProjectionWriter

TARIFF_CLOCK_SKEW = timedelta(minutes=5)
"""How far before its own signing time a tariff may take effect (clocks differ)."""

Check = Callable[["ProjectionWriter", Any, SignedEntry], None]


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may sign one entry kind: `name` appears in every refusal, `says` in docs/rights.md."""

    kind: str
    name: str
    says: str
    check: Check


RULES: dict[str, Rule] = {}
"""kind -> its rule. Every declared kind has one."""


def rule(kind: type[Any], name: str, says: str) -> Callable[[Check], Check]:
    """Declare `check` as the rule of `kind` (a function decorator)."""

    def declare(check: Check) -> Check:
        if kind.KIND in RULES:
            raise TypeError(f"{kind.KIND} has two rules")
        RULES[kind.KIND] = Rule(kind.KIND, name, says, check)
        return check

    return declare


def admit(writer: ProjectionWriter, body: Any, entry: SignedEntry) -> None:
    """Raise RightsError (or the InputError of a fact that cannot hold) unless `entry`'s
    author may sign it here."""
    found = RULES.get(entry.kind)
    if found is None:  # a kind without a rule is a bug of ours, never a licence
        raise RightsError(
            f"`{entry.kind}` has no rule, so nobody may sign it", rule="none",
            hint="this build of quotepart cannot judge this entry kind",
        )  # fmt: skip
    found.check(writer, body, entry)


# ------------------------------------------------------------------ lookups


def _cache(writer: ProjectionWriter, name: str) -> dict[Any, Any]:
    found: dict[Any, Any] = writer.cache.setdefault(name, {})
    return found


def registrant(writer: ProjectionWriter, asset: Digest | str) -> PartyId | None:
    """The party that registered `asset` (this batch included), or None if unknown."""
    known = _cache(writer, "registrant")
    key = str(asset)
    if key not in known:
        leaf = writer.leaf_of(assets, key)
        if leaf is None:
            return None
        writer.flush()
        row = writer.conn.execute(
            select(assets.c.registered_by).where(assets.c.leaf_index == leaf)
        ).scalar_one()
        known[key] = PartyId.parse(str(row))
    found: PartyId = known[key]
    return found


def registered(writer: ProjectionWriter, asset: str, party: PartyId) -> None:
    """`party` registers `asset` in this batch: later lookups need no flush nor query."""
    _cache(writer, "registrant")[asset] = party


def holds(
    writer: ProjectionWriter, party: PartyId, right: str, asset: Digest | str, at: datetime
) -> bool:
    """Whether `party` holds `right` over `asset` for an entry timestamped `at`: it is the
    registrant, or holds an unrevoked delegation whose window covers `at`."""
    owner = registrant(writer, asset)
    if owner is None:
        return False
    if owner == party:
        return True
    when = format_timestamp(at)
    return any(
        since <= when and (until is None or when < until)
        for since, until in _grants(writer, party, right, str(asset))
    )


def _grants(
    writer: ProjectionWriter, party: PartyId, right: str, asset: str
) -> list[tuple[str, str | None]]:
    known = _cache(writer, "grants")
    key = (str(party), right, asset)
    if key not in known:
        writer.flush()
        known[key] = [
            (str(since), None if until is None else str(until))
            for since, until in writer.conn.execute(
                select(rights.c.since, rights.c.until).where(
                    rights.c.grantee == str(party),
                    rights.c.asset == asset,
                    rights.c.right_name == right,
                    rights.c.revoked_by.is_(None),
                )
            )
        ]
    found: list[tuple[str, str | None]] = known[key]
    return found


def forget_grants(writer: ProjectionWriter) -> None:
    """A grant or revocation in this batch: ask the database again."""
    writer.cache.pop("grants", None)


def who(writer: ProjectionWriter, party: PartyId | str) -> str:
    """A party as a refusal names it: `Name (party:…)`, or the bare id if unknown."""
    writer.flush()  # a party registered in this batch is named too
    name = writer.conn.execute(
        select(parties.c.name).where(parties.c.party_id == str(party))
    ).scalar()
    return str(party) if name is None else f"{name} ({party})"


def _registrant_of(
    writer: ProjectionWriter, asset: Digest | str, what: str, hint: str = "register it first"
) -> PartyId:
    """The registrant of `asset`, which `what` names.

    Raises:
        NotFoundError: nobody registered it.
    """
    owner = registrant(writer, asset)
    if owner is None:
        raise NotFoundError(f"{what} names unknown asset {asset}", hint=hint)
    return owner


def _require(
    writer: ProjectionWriter,
    entry: SignedEntry,
    right: str,
    asset: Digest | str,
    what: str,
) -> None:
    """Refuse unless the author holds `right` over `asset` (which must exist)."""
    owner = _registrant_of(writer, asset, what)
    if not holds(writer, entry.author, right, asset, entry.time):
        raise RightsError(
            f"`{entry.kind}` on {asset} signed by {who(writer, entry.author)}, who holds no "
            f"{right} right on it",
            rule=right,
            hint=f"only its registrant {who(writer, owner)}, or a party it delegated the "
            f"{right} right to (`right.granted`), may sign it",
        )


def _only_itself(
    writer: ProjectionWriter, entry: SignedEntry, party: PartyId, what: str, rule_name: str
) -> None:
    if entry.author != party:
        raise RightsError(
            f"`{entry.kind}`: {what} {who(writer, party)} signed by {who(writer, entry.author)}",
            rule=rule_name,
            hint="a party states this about itself, signing with its own key",
        )


def _registered(writer: ProjectionWriter, party: PartyId, what: str) -> None:
    if not writer.exists(parties, str(party)):
        raise NotFoundError(f"{what} names unknown {party}", hint="register the party first")


# -------------------------------------------------------------------- rules


@rule(PartyRegistered, "self", "the party itself, with the key it registers")
def _party(writer: ProjectionWriter, body: PartyRegistered, entry: SignedEntry) -> None:
    _only_itself(writer, entry, body.party, "the registration of", "self")


@rule(PartyPayoutChanged, "self", "the party itself")
def _payout_change(writer: ProjectionWriter, body: PartyPayoutChanged, entry: SignedEntry) -> None:
    _only_itself(writer, entry, body.party, "the change of the payout reference of", "self")


@rule(ConsentRecorded, "self", "the contributor whose consent it is")
def _consent(writer: ProjectionWriter, body: ConsentRecorded, entry: SignedEntry) -> None:
    _only_itself(writer, entry, body.party, "a consent of", "self")


@rule(
    AssetRegistered,
    "registration",
    "any registered party, which becomes the asset's registrant; content already "
    "registered cannot be registered again (file a `claim.filed` instead)",
)
def _asset(writer: ProjectionWriter, body: AssetRegistered, entry: SignedEntry) -> None:
    owner = registrant(writer, body.asset)
    if owner is not None:
        raise InputError(
            f"asset {body.asset} is already registered by {who(writer, owner)}",
            hint="registration is first come; to dispute it, file a claim "
            "(Workspace.file_claim, `quotepart asset claim`)",
        )


@rule(
    ClaimFiled,
    "claim",
    "any registered party but the registrant, on a registered asset; a claim decides "
    "no money and blocks nothing, it is shown wherever the registrant is",
)
def _claim(writer: ProjectionWriter, body: ClaimFiled, entry: SignedEntry) -> None:
    owner = _registrant_of(
        writer,
        body.asset,
        "a claim",
        hint="a claim disputes a registration: name an asset that is registered "
        "(`quotepart asset list`)",
    )
    if owner == entry.author:
        raise InputError(
            f"{entry.author} registered {body.asset} itself: there is nothing to claim",
            hint="a claim disputes another party's registration",
        )


@rule(
    OverlapDetected,
    "overlap",
    "the registrant of the later asset (the SDK signs it at registration); the earlier "
    "asset must have been registered before it",
)
def _overlap(writer: ProjectionWriter, body: OverlapDetected, entry: SignedEntry) -> None:
    owner = _registrant_of(writer, body.asset, "an overlap")
    _registrant_of(writer, body.earlier, "an overlap")
    if owner != entry.author:
        raise RightsError(
            f"an overlap of {body.asset} signed by {who(writer, entry.author)}, who did not "
            "register it",
            rule="overlap",
            hint=f"only its registrant {who(writer, owner)} may flag its records as copies; "
            "to dispute another party's asset, file a claim (`quotepart asset claim`)",
        )
    later, first = (
        writer.leaf_of(assets, str(body.asset)),
        writer.leaf_of(assets, str(body.earlier)),
    )
    if later is not None and first is not None and first > later:
        raise InputError(
            f"{body.earlier} was registered after {body.asset}: it cannot be the earlier one",
            hint="an overlap credits the records to the asset registered first",
        )


@rule(
    ContributionRecorded,
    "contribution",
    "the asset's registrant (for any party it names), or the contributor it names, "
    "whose share then counts only once the registrant accepts it (`contribution.accepted`)",
)
def _contribution(writer: ProjectionWriter, body: ContributionRecorded, entry: SignedEntry) -> None:
    owner = _registrant_of(writer, body.asset, "contribution", hint="register the asset first")
    if entry.author not in (owner, body.party):
        raise RightsError(
            f"`contribution.recorded` naming {body.party} on {body.asset} signed by "
            f"{who(writer, entry.author)}, who is neither its registrant ({who(writer, owner)}) nor "
            "the contributor named",
            rule="contribution",
            hint="the registrant records contributions; a contributor may propose its own, "
            "which counts once the registrant accepts it",
        )


@rule(
    ContributionAccepted,
    "contribution",
    "the registrant of the asset, naming a contribution its contributor proposed",
)
def _acceptance(writer: ProjectionWriter, body: ContributionAccepted, entry: SignedEntry) -> None:
    owner = _registrant_of(writer, body.asset, "an acceptance")
    if entry.author != owner:
        raise RightsError(
            f"`contribution.accepted` on {body.asset} signed by {who(writer, entry.author)}, who is not "
            f"its registrant ({who(writer, owner)})",
            rule="contribution",
            hint="only the registrant accepts a contribution to its asset",
        )
    writer.flush()
    row = writer.conn.execute(
        select(
            contribution_proposals.c.party_id,
            contribution_proposals.c.asset,
            contribution_proposals.c.accepted_by,
        ).where(contribution_proposals.c.leaf_hash == body.contribution)
    ).first()
    if row is None:
        raise NotFoundError(
            f"the acceptance names no proposed contribution ({body.contribution[:16]}…)",
            hint="accept a contribution.recorded its contributor signed; list them with "
            "Workspace.proposed_contributions",
        )
    if (row.party_id, row.asset) != (str(body.party), str(body.asset)):
        raise InputError(
            f"the acceptance says {body.party} on {body.asset}, but the proposal names "
            f"{row.party_id} on {row.asset}",
            hint="name the party and asset of the proposal accepted",
        )
    if row.accepted_by is not None:
        raise InputError(
            f"that contribution was already accepted (entry {row.accepted_by})",
            hint="a proposal is accepted once",
        )


@rule(
    RunRecorded,
    "run",
    "the run's operator; each output must be registered by the operator (or the operator "
    "holds the `run` right over it); no input may be one its registrant withdrew",
)
def _run(writer: ProjectionWriter, body: RunRecorded, entry: SignedEntry) -> None:
    _only_itself(writer, entry, body.operator, "a run operated by", "run")
    for output in body.outputs:
        if registrant(writer, output) is None:
            continue  # the projection names the unknown asset
        if not holds(writer, entry.author, "run", output, entry.time):
            raise RightsError(
                f"`run.recorded` {body.run} produces {output}, registered by "
                f"{who(writer, registrant(writer, output) or '')}, and its operator "
                f"{who(writer, entry.author)} holds no run "
                "right on it",
                rule="run",
                hint="a run's outputs are assets its operator registered, or whose "
                "registrant delegated the run right to it",
            )
    started = format_timestamp(body.started)
    for used in (*body.inputs, *body.uses):
        owner = registrant(writer, used)
        if owner is None:
            continue
        withdrawn = _withdrawn_by_registrant(writer, owner, str(used), started)
        if withdrawn is not None:
            raise RightsError(
                f"`run.recorded` {body.run} uses {used}, which its registrant {who(writer, owner)} "
                f"withdrew from use from {withdrawn}",
                rule="consent",
                hint="a registrant that withdraws its asset forbids runs that start after the "
                "withdrawal; use other data, or ask it to grant consent again",
            )


def _withdrawn_by_registrant(
    writer: ProjectionWriter, owner: PartyId, asset: str, started: str
) -> str | None:
    """When the registrant's withdrawal in force at `started` took effect, or None."""
    writer.flush()
    rows = writer.conn.execute(
        select(consents.c.action, consents.c.effective)
        .where(
            consents.c.asset == asset,
            consents.c.party_id == str(owner),
            consents.c.effective <= started,
        )
        .order_by(consents.c.effective, consents.c.leaf_index)
    ).all()
    if rows and rows[-1].action == "withdraw":
        return str(rows[-1].effective)
    return None


@rule(
    PolicySet,
    "policy",
    "the registrant of the model or service (its operator), or a party it delegated the "
    "`policy` right to",
)
def _policy(writer: ProjectionWriter, body: PolicySet, entry: SignedEntry) -> None:
    _require(writer, entry, "policy", body.asset, "a sharing policy")


@rule(
    ValuationRecorded,
    "valuation",
    "the registrant of the model (its operator), or a valuer it delegated the `valuation` right to",
)
def _valuation(writer: ProjectionWriter, body: ValuationRecorded, entry: SignedEntry) -> None:
    _require(writer, entry, "valuation", body.model, "the valuation")


@rule(
    UsageRecorded,
    "metering",
    "the registrant of the service, or a party it delegated the `metering` right to; "
    "never into a month already billed (a revenue of the service covers it)",
)
def _usage(writer: ProjectionWriter, body: UsageRecorded, entry: SignedEntry) -> None:
    _require(writer, entry, "metering", body.service, "usage")
    billed = billed_months(writer, str(body.service))
    if body.month in billed:
        raise RightsError(
            f"`usage.recorded` of {body.service} counts in a month already billed "
            f"({Period.of_month(body.month)})",
            rule="closed-period",
            hint="late usage counts in the next open month: record it with the SDK "
            "(it moves it and says so in the entry's note) or set counted_in",
        )


@rule(
    MeterDefined,
    "metering",
    "the registrant of the service, or a party it delegated the `metering` right to",
)
def _meter(writer: ProjectionWriter, body: MeterDefined, entry: SignedEntry) -> None:
    _require(writer, entry, "metering", body.service, "the meter")


@rule(
    UsageBatch,
    "metering",
    "the registrant of the service, or a party it delegated the `metering` right to; "
    "never into a month already billed (a revenue of the service covers it)",
)
def _usage_batch(writer: ProjectionWriter, body: UsageBatch, entry: SignedEntry) -> None:
    _require(writer, entry, "metering", body.service, "usage")
    if body.month in billed_months(writer, str(body.service)):
        raise RightsError(
            f"`usage.batch` of {body.service} counts in a month already billed ({body.period})",
            rule="closed-period",
            hint="late usage counts in the next open month: ingest it again and quotepart "
            "moves it there and says so in the batch's note",
        )


@rule(
    TariffSet,
    "billing",
    "the registrant of the service, or a party it delegated the `billing` right to; a "
    "change of a meter's price in a currency takes effect no earlier than it is signed",
)
def _tariff(writer: ProjectionWriter, body: TariffSet, entry: SignedEntry) -> None:
    _require(writer, entry, "billing", body.service, "the tariff")
    # A price change is announced before it applies: a backdated change could reprice
    # usage already consumed (a bill prices a period at the tariff in force at its
    # start). The first price of a meter in a currency changes no logged price, so it
    # may be backdated (metering that started before its price was logged).
    writer.flush()
    earlier = [
        t
        for t in usage_events.tariff_rows(writer.conn, str(body.service), body.meter)
        if t.currency == body.currency
    ]
    signed = entry.time
    if earlier and body.effective < signed - TARIFF_CLOCK_SKEW:
        raise RightsError(
            f"`tariff.set` of {body.meter} takes effect {format_timestamp(body.effective)}, "
            f"before it was signed ({entry.timestamp})",
            rule="billing",
            hint="a price change applies from now or a later date, never retroactively",
        )


@rule(
    UsageBilled,
    "billing",
    "the registrant of the service, or a party it delegated the `billing` right to; once "
    "per period, counting every batch of the period, each meter priced at the tariff in "
    "force at the period's start (amounts rounded half to even)",
)
def _usage_billed(writer: ProjectionWriter, body: UsageBilled, entry: SignedEntry) -> None:
    _require(writer, entry, "billing", body.service, "the bill")
    writer.flush()
    conn = writer.conn
    service = str(body.service)
    first, last = body.period.first_month, body.period.last_month
    closed = billed_months(writer, service) & set(range(first, last + 1))
    if closed or usage_events.bill_rows(conn, service, first, last):
        raise RightsError(
            f"`usage.billed` {body.revenue}: {body.service} is already billed in {body.period}",
            rule="closed-period",
            hint="a period is billed once; later usage counts in the next open period",
        )
    # What the projections allow recomputing is recomputed here (at append and on
    # replay); the per-consumer root, the batches' digest and unique counts need the
    # events and the log's leaf hashes: `quotepart.metering.audit` recomputes those.
    batches = usage_events.period_batches(conn, service, first, last)
    if len(batches) != body.batches:
        raise RightsError(
            f"`usage.billed` {body.revenue} counts {body.batches} batch(es) of {body.period}, "
            f"the log holds {len(batches)}",
            rule="recompute",
            hint="bill again: a batch was recorded meanwhile",
        )
    aggregation = {row.name: row.aggregation for row in usage_events.meter_rows(conn, service)}
    used = {batch.meter for batch in batches}
    lines = {line.meter: line for line in body.lines}
    if set(lines) != used:
        raise RightsError(
            f"`usage.billed` {body.revenue} bills meters {sorted(lines)}, the period's usage "
            f"is of {sorted(used)}",
            rule="recompute",
            hint="a bill has one line per meter with usage in the period",
        )
    start = format_timestamp(datetime(first // 12, first % 12 + 1, 1, tzinfo=UTC))
    minor_units = currency(body.currency).minor_units
    tariffs_of = usage_events.tariff_rows(conn, service)
    for name, line in lines.items():
        kind = aggregation[name]
        if kind != "unique_count":
            figures = [Decimal(b.aggregate) for b in batches if b.meter == name]
            expected = max(figures) if kind == "max" else sum(figures, Decimal(0))
            if usage_events.decimal_text(expected) != line.quantity:
                raise RightsError(
                    f"`usage.billed` {body.revenue} bills {line.quantity} of {name}, its "
                    f"batches give {usage_events.decimal_text(expected)}",
                    rule="recompute",
                    hint="a bill's quantities are its batches' aggregates",
                )
        in_force = [
            t
            for t in tariffs_of
            if t.meter == name
            and t.currency == body.currency
            and parse_timestamp(t.effective) <= parse_timestamp(start)
        ]
        tariff = max(
            in_force, key=lambda t: (parse_timestamp(t.effective), t.leaf_index), default=None
        )
        if tariff is None or tariff.leaf_index != line.tariff:
            raise RightsError(
                f"`usage.billed` {body.revenue} prices {name} with the tariff at leaf "
                f"{line.tariff}; the one in force on {start[:10]} in {body.currency} is "
                f"{'none' if tariff is None else f'at leaf {tariff.leaf_index}'}",
                rule="recompute",
                hint="a bill prices each meter at the tariff in force at the period's start",
            )
        amount = usage_events.line_amount_minor(line.quantity, tariff.unit_price, minor_units)
        if tariff.unit_price != line.unit_price or amount != line.amount_minor:
            raise RightsError(
                f"`usage.billed` {body.revenue}: {line.quantity} {name} at {tariff.unit_price} "
                f"is {amount} minor units, the line says {line.unit_price} and "
                f"{line.amount_minor}",
                rule="recompute",
                hint="amounts are quantity x unit price, rounded half to even",
            )


@rule(
    PrivacyBudget,
    "metering",
    "the registrant of the service, or a party it delegated the `metering` right to",
)
def _privacy_budget(writer: ProjectionWriter, body: PrivacyBudget, entry: SignedEntry) -> None:
    _require(writer, entry, "metering", body.service, "the privacy budget")


@rule(
    PrivacyReleased,
    "metering",
    "the registrant of the service, or a party it delegated the `metering` right to; "
    "all releases about one month of the service's usage spend at most the privacy "
    "budget in force (rule `privacy-budget`)",
)
def _privacy_release(writer: ProjectionWriter, body: PrivacyReleased, entry: SignedEntry) -> None:
    _require(writer, entry, "metering", body.service, "the private release")
    writer.flush()
    service = str(body.service)
    budget = writer.conn.execute(
        select(privacy_budgets.c.epsilon)
        .where(privacy_budgets.c.service == service)
        .order_by(privacy_budgets.c.leaf_index.desc())
        .limit(1)
    ).scalar()
    if budget is None:
        raise RightsError(
            f"{service} has no privacy budget, so nothing about its consumers may be released",
            rule="privacy-budget",
            hint="set one first (Workspace.set_privacy_budget / `quotepart usage budget`)",
        )
    spent = sum(
        (
            Fraction(epsilon)
            for (epsilon,) in writer.conn.execute(
                select(privacy_releases.c.epsilon).where(
                    privacy_releases.c.service == service,
                    privacy_releases.c.month == body.month,
                )
            )
        ),
        Fraction(0),
    )
    if spent + Fraction(body.epsilon) > Fraction(budget):
        raise RightsError(
            f"releasing ε = {body.epsilon} about {body.period} of {service} would spend "
            f"{format_fraction_decimal(spent + Fraction(body.epsilon))} of its budget of {budget}",
            rule="privacy-budget",
            hint=f"{format_fraction_decimal(Fraction(budget) - spent)} is left for "
            f"{body.period}: release with a smaller ε, or not at all",
        )


def format_fraction_decimal(value: Fraction) -> str:
    """A ratio of decimal strings shown as a decimal (ε values are decimals)."""
    return f"{float(value):g}"


def billed_months(writer: ProjectionWriter, service: str) -> set[int]:
    """The months covered by a revenue of `service` (this batch included), cached per batch."""
    known = _cache(writer, "billed")
    if service not in known:
        writer.flush()
        known[service] = rights_queries.billed_months(writer.conn, Digest.parse(service))
    found: set[int] = known[service]
    return found


@rule(
    RevenueRecorded,
    "billing",
    "the registrant of the model or service, or a party it delegated the `billing` "
    "right to; never into a period of that asset already shared",
)
def _revenue(writer: ProjectionWriter, body: RevenueRecorded, entry: SignedEntry) -> None:
    _require(writer, entry, "billing", body.asset, str(body.revenue))
    writer.flush()
    shared = writer.conn.execute(
        select(revenues.c.period)
        .select_from(revenues.join(allocations, allocations.c.revenue_id == revenues.c.revenue_id))
        .where(
            and_(
                revenues.c.asset == str(body.asset),
                revenues.c.first_month <= body.period.last_month,
                revenues.c.last_month >= body.period.first_month,
            )
        )
        .limit(1)
    ).first()
    if shared is not None:
        raise RightsError(
            f"`revenue.recorded` {body.revenue} falls in {body.period}, but revenue of "
            f"{body.asset} for {shared.period} is already shared",
            rule="closed-period",
            hint="a shared period is closed: record the revenue in the next open period",
        )
    # the months it covers are billed from now on: usage may no longer land there
    _cache(writer, "billed").pop(str(body.asset), None)


@rule(
    AllocationRecorded,
    "sharing",
    "the registrant of the revenue's model or service, or a party it delegated the "
    "`sharing` right to; and its amounts, inputs and notes must equal the allocation "
    "recomputed from the log at its position",
)
def _allocation(writer: ProjectionWriter, body: AllocationRecorded, entry: SignedEntry) -> None:
    writer.flush()
    asset = writer.conn.execute(
        select(revenues.c.asset).where(revenues.c.revenue_id == str(body.revenue))
    ).scalar()
    if asset is None:
        raise NotFoundError(
            f"an allocation names unknown {body.revenue}", hint="record the revenue first"
        )
    _require(writer, entry, "sharing", asset, f"the allocation of {body.revenue}")
    from quotepart.store.recompute import check_allocation  # the engine loads on first use

    check_allocation(writer, body)


@rule(
    PayoutRecorded,
    "payout",
    "the payer: it pays only balances owed under allocations it signed itself",
)
def _payout(writer: ProjectionWriter, body: PayoutRecorded, entry: SignedEntry) -> None:
    # imported here: store.queries.sharing reads the projections package, which imports this
    from quotepart.store.queries.sharing import owed_balances

    writer.flush()
    # a held balance (a payee the export could not pay) is carried too, with its reason
    carried = {**body.carried, **{p: h.amount_minor for p, h in body.held.items()}}
    owed = owed_balances(
        writer.conn,
        body.currency,
        payer=entry.author,
        parties=[str(p) for p in (*body.paid, *carried)],
    )
    for party, amount in (*body.paid.items(), *carried.items()):
        if amount > owed.get(str(party), 0):
            raise RightsError(
                f"`payout.recorded` {body.payout} pays or carries {amount} {body.currency} "
                f"for {party}, who is owed {owed.get(str(party), 0)} by its payer "
                f"{who(writer, entry.author)}",
                rule="payout",
                hint="a payout pays only what its payer allocated and has not yet paid: "
                "nobody pays another's debts, and nobody is paid twice",
            )


@rule(
    ReportPublished,
    "sharing",
    "the registrant of the model or service the report is about, or a party it "
    "delegated the `sharing` right to",
)
def _report(writer: ProjectionWriter, body: ReportPublished, entry: SignedEntry) -> None:
    _require(writer, entry, "sharing", body.asset, "a report")


@rule(
    RightGranted,
    "delegation",
    "a party that holds the right over the asset (its registrant, or a delegate), "
    "to a registered party",
)
def _grant(writer: ProjectionWriter, body: RightGranted, entry: SignedEntry) -> None:
    _registered(writer, body.grantee, "a delegation")
    owner = _registrant_of(writer, body.asset, "a delegation")
    if body.grantee == owner:
        raise InputError(
            f"{body.grantee} registered {body.asset}: it holds every right over it already",
            hint="delegate to another party",
        )
    if not holds(writer, entry.author, body.right, body.asset, entry.time):
        raise RightsError(
            f"`right.granted` of the {body.right} right on {body.asset} signed by "
            f"{who(writer, entry.author)}, who does not hold it",
            rule="delegation",
            hint=f"only a holder of the {body.right} right (the registrant {who(writer, owner)}, or its "
            "delegates) can delegate it",
        )
    forget_grants(writer)


@rule(
    RightRevoked,
    "delegation",
    "the party that granted the delegation, or the asset's registrant; there must be "
    "an unrevoked delegation of that right to that party",
)
def _revoke(writer: ProjectionWriter, body: RightRevoked, entry: SignedEntry) -> None:
    owner = _registrant_of(writer, body.asset, "a revocation")
    writer.flush()
    grantors = {
        str(grantor)
        for (grantor,) in writer.conn.execute(
            select(rights.c.grantor).where(
                rights.c.grantee == str(body.grantee),
                rights.c.asset == str(body.asset),
                rights.c.right_name == body.right,
                rights.c.revoked_by.is_(None),
            )
        )
    }
    if not grantors:
        raise NotFoundError(
            f"{body.grantee} holds no delegated {body.right} right on {body.asset} to revoke",
            hint="list the delegations with Workspace.delegations (`quotepart right list`)",
        )
    if entry.author != owner and str(entry.author) not in grantors:
        raise RightsError(
            f"`right.revoked` of {body.grantee}'s {body.right} right on {body.asset} signed "
            f"by {who(writer, entry.author)}, who neither granted it nor registered the asset",
            rule="delegation",
            hint=f"the grantor or the registrant {who(writer, owner)} revokes a delegation",
        )
    forget_grants(writer)


def missing_rules() -> list[str]:
    """Declared kinds without a rule (a test keeps this empty)."""
    return sorted(set(DECLARED) - set(RULES))
