"""The sharing service: revenue, policies, valuations, consent, allocation, statements, payouts.

`Sharing` is built on a `Ledger` and on the `Provenance` service, whose parties' payout
references it pays; `quotepart.Workspace` composes it with the other services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from quotepart.errors import (
    InputError,
    MoneyError,
    PaymentDetailsError,
    QuotepartError,
    VerificationError,
)
from quotepart.ids import Digest, PartyId, PayoutId, Period, RevenueId
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    PAYMENT_RAILS,
    AllocationRecorded,
    ConsentRecorded,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    ValuationRecorded,
)
from quotepart.money import currency as find_currency
from quotepart.money import format_amount, parse_amount, parse_ratio
from quotepart.provenance.resolve import AssetOrName, PartyRef, resolve_asset, resolve_party
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.provenance.service import Provenance
from quotepart.sharing.allocation import Allocation, allocate
from quotepart.sharing.ledger import facts_of, largest_minimum
from quotepart.sharing.payments import (
    Payment,
    check_iban,
    mobile_money_csv,
    sepa_credit_transfer,
)
from quotepart.sharing.statements import Statement, recompute, statement_for, statement_proof
from quotepart.store.ledger import Ledger
from quotepart.store.queries import provenance as provenance_queries
from quotepart.store.queries import sharing as queries
from quotepart.store.queries.entries import entries_by_hash, read_body, read_entries
from quotepart.store.queries.sharing import allocation_leaf, owed_balances
from quotepart.store.queries.usage import units_used

_SUFFIX = {"sepa": ".xml", "mobile_money": ".csv"}


@dataclass(frozen=True, slots=True)
class PayoutFile:
    payout: PayoutId
    path: Path
    content: bytes
    paid: dict[PartyId, int]
    carried: dict[PartyId, int]
    new: bool  # False when this period had been exported before


@dataclass(frozen=True, slots=True)
class Shared:
    """The allocation of one revenue, and where it lies in the log."""

    allocation: Allocation
    leaf_index: int
    new: bool  # False when the revenue had been shared before


class Sharing:
    """Who is owed what: revenue in, allocations through the lineage, payouts out."""

    def __init__(self, ledger: Ledger, provenance: Provenance) -> None:
        self.ledger = ledger
        self.provenance = provenance

    # -------------------------------------------------------------- facts

    def record_revenue(
        self,
        asset: AssetOrName,
        amount: int | str,
        currency: str,
        *,
        period: str,
        source: str,
        by: PartyRef,
    ) -> RevenueId:
        """Money `asset` (a model or service) earned in `period`.

        `amount` is an integer of minor units (cents), or a decimal string of major units
        ("1234.56"), never a float.
        """
        code = find_currency(currency).code
        if isinstance(amount, str):
            amount_minor = parse_amount(amount, code, allow_negative=True)
        elif isinstance(amount, int) and not isinstance(amount, bool):
            amount_minor = amount
        else:
            raise MoneyError(
                f"revenue amount {amount!r} is neither minor units (int) nor a decimal string",
                hint="pass 123456 (cents) or '1234.56'; floats cannot hold money exactly",
            )
        with self.ledger.read() as conn:
            digest, author = resolve_asset(conn, asset), resolve_party(conn, by)
        revenue = RevenueId.new(self.ledger.clock)
        body = RevenueRecorded(revenue, digest, Period.parse(period), amount_minor, code, source)
        self.ledger.append(body, author=author)
        return revenue

    def set_policy(
        self,
        asset: AssetOrName,
        *,
        pool: Fraction | str | float,
        roles: Mapping[str, Fraction | str | float],
        weighting: Mapping[str, str] | str = "valuation",
        operator: PartyRef | None = None,
        negative_values: str = "clip",
        missing_valuation: str = "refuse",
        declared: Mapping[AssetRef, Fraction | str | int | float]
        | Mapping[Digest, Fraction | str | int | float]
        | Mapping[str, Fraction | str | int | float]
        | None = None,
        floor: Fraction | str | float = 0,
        cap: Fraction | str | float = 1,
        upstream: str = "dilute",
        upstream_share: Fraction | str | float = 0,
        minimum_payout: int = 0,
        by: PartyRef,
    ) -> int:
        """Set how the revenue of `asset` is shared; it replaces any earlier policy."""
        with self.ledger.read() as conn:
            digest, author = resolve_asset(conn, asset), resolve_party(conn, by)
            operator_id = author if operator is None else resolve_party(conn, operator)
            declared_weights = {resolve_asset(conn, a): w for a, w in (declared or {}).items()}
        role_ratios = {role: parse_ratio(r, what=f"the {role} ratio") for role, r in roles.items()}
        weights = (
            dict.fromkeys(role_ratios, weighting) if isinstance(weighting, str) else dict(weighting)
        )
        body = PolicySet(
            asset=digest,
            operator=operator_id,
            pool=parse_ratio(pool, what="the pool"),
            roles=role_ratios,
            weighting=weights,
            negative_values=negative_values,
            missing_valuation=missing_valuation,
            declared={
                a: parse_ratio(w, what="a declared weight") for a, w in declared_weights.items()
            },
            floor=parse_ratio(floor, what="the floor"),
            cap=parse_ratio(cap, what="the cap"),
            upstream_mode=upstream,
            upstream_share=parse_ratio(upstream_share, what="the upstream share"),
            minimum_payout=minimum_payout,
        )
        return self.ledger.append(body, author=author)

    def record_valuation(
        self,
        model: AssetOrName,
        values: Mapping[AssetRef, float | str | Fraction]
        | Mapping[str, float | str | Fraction]
        | Mapping[Digest, float | str | Fraction],
        *,
        method: str,
        evaluations: int,
        converged: bool = True,
        stderr: Mapping[AssetRef, float | str | Fraction]
        | Mapping[Digest, float | str | Fraction]
        | Mapping[str, float | str | Fraction]
        | None = None,
        parameters: Mapping[str, Any] | None = None,
        seed: int | None = None,
        utility: str | None = None,
        by: PartyRef,
    ) -> int:
        """Record contribution values of a model's inputs (e.g. a `quotepart.valuation` result).

        Floats are written with `repr`, which round-trips them exactly, as decimal strings.
        """
        with self.ledger.read() as conn:
            digest, author = resolve_asset(conn, model), resolve_party(conn, by)
            named = {resolve_asset(conn, a): v for a, v in values.items()}
            errors = {resolve_asset(conn, a): v for a, v in (stderr or {}).items()}
        body = ValuationRecorded(
            model=digest,
            values={a: _decimal(v) for a, v in named.items()},
            method=method,
            evaluations=evaluations,
            converged=converged,
            stderr={a: _decimal(v) for a, v in errors.items()},
            parameters={
                k: v if isinstance(v, str) else repr(v) for k, v in (parameters or {}).items()
            },
            seed=seed,
            utility=utility,
        )
        return self.ledger.append(body, author=author)

    def grant_consent(
        self, party: PartyRef, asset: AssetOrName, *, effective: datetime | None = None
    ) -> int:
        with self.ledger.read() as conn:
            author, digest = resolve_party(conn, party), resolve_asset(conn, asset)
        body = ConsentRecorded(author, digest, "grant", effective or self.ledger.clock())
        return self.ledger.append(body, author=author)

    def withdraw_consent(
        self, party: PartyRef, asset: AssetOrName, *, effective: datetime | None = None
    ) -> int:
        """From `effective` on, runs may not count `party`'s contribution to `asset`."""
        with self.ledger.read() as conn:
            author, digest = resolve_party(conn, party), resolve_asset(conn, asset)
        body = ConsentRecorded(author, digest, "withdraw", effective or self.ledger.clock())
        return self.ledger.append(body, author=author)

    # ------------------------------------------------------------- billing

    def bill_usage(
        self,
        service: AssetRef,
        period: str,
        *,
        unit_price: str,
        currency: str,
        by: PartyId,
    ) -> RevenueId:
        """Record the period's usage of `service` as revenue at `unit_price` (major units) per unit.

        Refused if revenue was already recorded for that service and period, so billing
        twice never makes money twice.
        """
        digest = asset_digest(service)
        the_period = Period.parse(period)
        code = find_currency(currency).code
        price_minor = parse_amount(unit_price, code)
        with self.ledger.read() as conn:
            billed = queries.revenue_billed(conn, digest, the_period)
            units = units_used(conn, digest, the_period)
        if billed is not None:
            raise InputError(
                f"{digest} already has revenue for {the_period} ({billed})",
                hint="a period is billed once; share the recorded revenue with `quotepart share`",
            )
        if units == 0:
            raise MoneyError(
                f"no usage of {digest} in {the_period} to bill", hint="record usage first"
            )
        source = f"usage {the_period}: {units} units x {format_amount(price_minor, code)} {code}"
        return self.record_revenue(
            digest, units * price_minor, code, period=str(the_period), source=source, by=by
        )

    # ------------------------------------------------------------- sharing

    def share(self, revenue: RevenueId | str, *, by: PartyId | None = None) -> Shared:
        """Compute and record the allocation of `revenue`; a second call returns the first.

        The allocation is signed by `by`, or by whoever recorded the revenue.
        """
        revenue_id = RevenueId.parse(str(revenue))
        with self.ledger.read() as conn:
            done = allocation_leaf(conn, revenue_id)
            if done is not None:
                [(_, entry)] = read_entries(conn, [done])
                body = entry.body_as(AllocationRecorded)
                return Shared(recompute(entry, entries_by_hash(conn, body.inputs)), done, False)
            facts = facts_of(conn, revenue_id)
        allocation = allocate(facts)
        body = AllocationRecorded(
            revenue_id,
            allocation.currency,
            allocation.total_minor,
            allocation.amounts,
            tuple(allocation.inputs),
            tuple(allocation.notes),
        )
        index = self.ledger.append(body, author=by or facts.revenue.author)
        return Shared(allocation, index, True)

    def statement(self, party: PartyRef, period: str | Period) -> Statement:
        """What `party` was allocated in `period`, each line traced to the entries behind it.

        `party` is a PartyId, or its id, a unique id prefix or its unique name. A known
        party with nothing allocated in the period gets an empty statement.

        Raises:
            NotFoundError: no such party in this log (never an empty statement for a typo).
            InputError: a malformed period, or a name or prefix several parties share.
        """
        the_period = _period(period)
        with self.ledger.read() as conn:
            return statement_for(conn, resolve_party(conn, party), the_period)

    def statement_proof(self, party: PartyRef, period: str | Period) -> dict[str, Any]:
        """A file `quotepart verify-statement` checks on any machine, with no workspace.

        Raises:
            NotFoundError: no such party in this log.
        """
        the_period = _period(period)
        with self.ledger.read() as conn:
            statement = statement_for(conn, resolve_party(conn, party), the_period)
            return statement_proof(self.ledger.store, conn, statement, self.ledger.verifier)

    # ------------------------------------------------------------- payouts

    def export_payout(
        self,
        period: str | Period,
        currency: str,
        rail: str,
        *,
        by: PartyId,
        debtor_name: str | None = None,
        debtor_iban: str | None = None,
        debtor_bic: str | None = None,
        execution_date: date | None = None,
        minimum_minor: int | None = None,
    ) -> PayoutFile:
        """Pay every balance owed in `currency` for revenue up to the end of `period`.

        Balances below the minimum payout (by default the largest `minimum_payout` of
        the policies in force) are carried to the next period. The payment file is
        built, and every IBAN or number checked, before anything is recorded; the
        file is kept in the workspace's `payouts/` folder. Exporting the same period,
        currency and rail again returns the file already made: nobody is paid twice.
        """
        the_period = Period.parse(str(period))
        code = find_currency(currency).code
        if rail not in PAYMENT_RAILS:
            raise InputError(
                f"unknown payment rail {rail!r}", hint=f"rails: {', '.join(sorted(PAYMENT_RAILS))}"
            )
        keys = self.ledger.keys
        with self.ledger.read() as conn:
            previous = queries.payout_leaf(conn, the_period, code, rail)
            if previous is not None:
                body = read_body(conn, previous, PayoutRecorded)
                path = keys.payment_file(f"{body.payout.ulid}{_SUFFIX[rail]}")
                content = path.read_bytes() if path.exists() else b""
                if body.file is not None and Digest.of_bytes(content) != body.file:
                    raise VerificationError(
                        f"{body.payout} was exported before, but its file {path} is missing or changed",
                        hint="restore the file from a backup; the payout is recorded and will not be paid again",
                    )
                return PayoutFile(body.payout, path, content, body.paid, body.carried, False)
            balances = owed_balances(conn, code, the_period.last_month)
            minimum = minimum_minor if minimum_minor is not None else largest_minimum(conn)
            names = provenance_queries.party_names(conn, balances)
        paid = {PartyId.parse(p): b for p, b in sorted(balances.items()) if b >= max(minimum, 1)}
        carried = {PartyId.parse(p): b for p, b in sorted(balances.items()) if 0 < b < minimum}
        payout = PayoutId.new(self.ledger.clock)
        payments = [
            Payment(
                payee=str(party),
                name=names[str(party)],
                amount_minor=amount,
                currency=code,
                reference=f"{payout.ulid}-{number}",
                account=self._payout_account(party),
            )
            for number, (party, amount) in enumerate(paid.items(), 1)
        ]
        if rail == "sepa":
            if not debtor_name or not debtor_iban:
                raise InputError(
                    "a SEPA credit transfer needs the paying account",
                    hint="pass debtor_name and debtor_iban (--debtor-name, --debtor-iban)",
                )
            # The debtor's own balance is settled by keeping it: no transfer to itself.
            own = check_iban(debtor_iban)
            payments = [p for p in payments if check_iban(p.account) != own]
            content = (
                sepa_credit_transfer(
                    payments,
                    debtor_name=debtor_name,
                    debtor_iban=debtor_iban,
                    debtor_bic=debtor_bic,
                    execution_date=execution_date or self.ledger.clock().date(),
                    message_id=payout.ulid,
                )
                if payments
                else b""
            )
        else:
            content = mobile_money_csv(payments, batch_id=payout.ulid).encode()
        path = keys.write_payment_file(f"{payout.ulid}{_SUFFIX[rail]}", content)
        body = PayoutRecorded(
            payout, the_period, code, rail, paid, carried, minimum, Digest.of_bytes(content)
        )
        try:
            self.ledger.append(body, author=by)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return PayoutFile(payout, path, content, paid, carried, True)

    def _payout_account(self, party: PartyId) -> str:
        try:
            return self.provenance.payout_reference(party)
        except QuotepartError as exc:
            raise PaymentDetailsError(
                f"{party} is owed money but {exc.message}",
                hint="register the party with its payout reference (IBAN or mobile number), "
                "or pay it another way",
            ) from exc

    def revenue_entries(self) -> list[tuple[int, SignedEntry]]:
        """Every recorded revenue entry with its leaf index, oldest first."""
        with self.ledger.read() as conn:
            return read_entries(conn, queries.revenue_leaves(conn))


def _period(period: str | Period) -> Period:
    if isinstance(period, Period):
        return period
    if not isinstance(period, str):
        raise TypeError(f"a period is a Period or a string like 2026-Q1, not {period!r}")
    return Period.parse(period)


def _decimal(value: float | str | Fraction | int) -> str:
    if isinstance(value, Fraction):
        raise InputError(
            "valuation values are decimals, not fractions", hint="pass float(value) or a string"
        )
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(f"valuation value {value} is not finite", hint="values are finite")
        return repr(value)
    return str(value)


__all__ = ["PayoutFile", "Shared", "Sharing"]
