"""The sharing service: revenue, policies, valuations, consent, allocation, statements, payouts.

`Sharing` is built on a `Ledger` and on the `Provenance` service, whose parties' payout
references it pays; `quotepart.Workspace` composes it with the other services.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from quotepart.allocation.engine import Allocation, allocate
from quotepart.allocation.recompute import recompute
from quotepart.errors import (
    InputError,
    MoneyError,
    NotFoundError,
    PaymentDetailsError,
    QuotepartError,
    RightsError,
    VerificationError,
)
from quotepart.ids import Digest, PartyId, PayoutId, Period, RevenueId
from quotepart.log import SignedEntry
from quotepart.log.kinds import (
    PAYMENT_RAILS,
    AllocationRecorded,
    ConsentRecorded,
    Held,
    PayoutRecorded,
    PolicySet,
    RevenueRecorded,
    ValuationRecorded,
)
from quotepart.money import currency as find_currency
from quotepart.money import format_amount, parse_amount, parse_ratio
from quotepart.provenance.parties import (
    RAIL_NAMES,
    check_payout_reference,
    mask_reference,
    rail_of,
)
from quotepart.provenance.resolve import AssetOrName, PartyRef, resolve_asset, resolve_party
from quotepart.provenance.runs import AssetRef, asset_digest
from quotepart.provenance.service import Provenance
from quotepart.sharing.ledger import facts_of, largest_minimum
from quotepart.sharing.payments import (
    Payment,
    check_iban,
    mobile_money_csv,
    sepa_credit_transfer,
)
from quotepart.sharing.statements import Statement, statement_for, statement_proof
from quotepart.store.ledger import Ledger
from quotepart.store.queries import provenance as provenance_queries
from quotepart.store.queries import sharing as queries
from quotepart.store.queries.entries import entries_by_hash, read_body, read_entries
from quotepart.store.queries.sharing import allocation_leaf, owed_balances
from quotepart.store.queries.usage import units_used

_SUFFIX = {"sepa": ".xml", "mobile_money": ".csv"}

EXPORT_FAULT_POINTS = ("rendered", "recorded", "partial", "published")
"""Where `Sharing.faults` is called in `export_payout`, in order: after the files are
rendered in memory (nothing recorded), after the payout entries commit, after the files
are written under their temporary names, and after they are renamed (published)."""


_ACCOUNT = {"sepa": "IBAN", "mobile_money": "mobile number in E.164 form"}


@dataclass(frozen=True, slots=True)
class PayoutFile:
    """One payment file of one rail, and the `payout.recorded` entry that made it."""

    payout: PayoutId
    rail: str
    path: Path
    content: bytes
    paid: dict[PartyId, int]
    carried: dict[PartyId, int]
    new: bool  # False when it had been exported before and nothing more was owed


@dataclass(frozen=True, slots=True)
class HeldPayee:
    """A payee owed at least the minimum whom this export could not pay, and why."""

    party: PartyId
    name: str
    amount_minor: int
    rail: str | None  # the rail its reference asks for; None without a usable reference
    reference: str | None  # masked, e.g. 'DE89…3000'; the clear one never leaves the keys folder
    reason: str


@dataclass(frozen=True, slots=True)
class Payout:
    """What one export did: a file per rail that paid someone, and who was carried or held.

    With a single file (one rail, or one rail in use), `payout`, `path` and `content`
    are that file's.
    """

    period: Period
    currency: str
    files: tuple[PayoutFile, ...]
    held: tuple[HeldPayee, ...]
    carried: dict[PartyId, int]  # balances below the minimum, carried to the next period

    @property
    def new(self) -> bool:
        return any(f.new for f in self.files)

    @property
    def paid(self) -> dict[PartyId, int]:
        return {party: a for f in self.files for party, a in f.paid.items()}

    def _only(self) -> PayoutFile:
        if len(self.files) != 1:
            raise InputError(
                f"this export made {len(self.files)} payment files, not one",
                hint="read them from `files`, one per rail",
            )
        return self.files[0]

    @property
    def payout(self) -> PayoutId:
        return self._only().payout

    @property
    def path(self) -> Path:
        return self._only().path

    @property
    def content(self) -> bytes:
        return self._only().content


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
        # Fault injection for crash tests: called with a name from EXPORT_FAULT_POINTS as
        # `export_payout` goes; a test makes it end the process there.
        self.faults: Callable[[str], None] | None = None

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
        per: str | None = None,
        by: PartyRef,
    ) -> int:
        """Set how the revenue of `asset` is shared; it replaces any earlier policy.

        `per` is `party` (a role's inputs grouped by their registrant: clipping, floors and
        caps hold per party, so splitting a contribution into several assets gains nothing)
        or `input`; left out, it is `party` when any role is weighed by valuation and
        `input` otherwise. Every policy set here follows the robust rules (docs/sharing.md,
        "Gaming-resistant sharing"): floors only for values above twice their error,
        `negative_values="shift"` refused, overlaps credited to the earlier asset.

        Raises:
            PolicyError: an unknown `per`, a cap below the floor, `shift`, or any other
                invalid policy; nothing is written.
        """
        with self.ledger.read() as conn:
            digest, author = resolve_asset(conn, asset), resolve_party(conn, by)
            operator_id = author if operator is None else resolve_party(conn, operator)
            declared_weights = {resolve_asset(conn, a): w for a, w in (declared or {}).items()}
        role_ratios = {role: parse_ratio(r, what=f"the {role} ratio") for role, r in roles.items()}
        weights = (
            dict.fromkeys(role_ratios, weighting) if isinstance(weighting, str) else dict(weighting)
        )
        if per is None:
            per = "party" if "valuation" in weights.values() else "input"
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
            per=per,
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
        """From `effective` on, runs may count `party`'s contribution to `asset` again."""
        return self._consent("grant", party, asset, effective)

    def withdraw_consent(
        self, party: PartyRef, asset: AssetOrName, *, effective: datetime | None = None
    ) -> int:
        """From `effective` on, runs may not count `party`'s contribution to `asset`."""
        return self._consent("withdraw", party, asset, effective)

    def _consent(
        self, action: str, party: PartyRef, asset: AssetOrName, effective: datetime | None
    ) -> int:
        """A consent entry signed by the contributor it speaks for (the only one who may)."""
        with self.ledger.read() as conn:
            author, digest = resolve_party(conn, party), resolve_asset(conn, asset)
        body = ConsentRecorded(author, digest, action, effective or self.ledger.clock())
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

    def share(self, revenue: RevenueId | str, *, by: PartyRef | None = None) -> Shared:
        """Compute and record the allocation of `revenue`; a second call returns the first.

        The allocation is signed by `by`, or by the operator (registrant) of the model or
        service that earned the revenue: the party that owes the money (docs/rights.md,
        rule `sharing`). The log recomputes it on append; should a fact change between
        this computation and the append (another writer), it is computed once more.
        """
        revenue_id = RevenueId.parse(str(revenue))
        for attempt in (1, 2):
            with self.ledger.read() as conn:
                done = allocation_leaf(conn, revenue_id)
                if done is not None:
                    return self._shared(conn, done)
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
            operator = facts.assets[facts.revenue.body.asset].author
            try:
                index = self.ledger.append(body, author=by or operator)
            except RightsError as exc:
                if exc.rule != "recompute" or attempt == 2:
                    raise
                continue  # the log moved on between reading and appending: again
            except InputError:
                # another writer shared it between reading and appending: its result
                with self.ledger.read() as conn:
                    done = allocation_leaf(conn, revenue_id)
                    if done is None:
                        raise
                    return self._shared(conn, done)
            return Shared(allocation, index, True)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _shared(conn: Connection, leaf: int) -> Shared:
        [(_, entry)] = read_entries(conn, [leaf])
        body = entry.body_as(AllocationRecorded)
        return Shared(recompute(entry, entries_by_hash(conn, body.inputs)), leaf, False)

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
        rail: str | None = None,
        *,
        by: PartyId,
        debtor_name: str | None = None,
        debtor_iban: str | None = None,
        debtor_bic: str | None = None,
        execution_date: date | None = None,
        minimum_minor: int | None = None,
        _retried: bool = False,
    ) -> Payout:
        """Pay every balance `by` owes in `currency` for revenue up to the end of `period`.

        `by` is the payer: it pays what the allocations it signed give (the revenue of
        the models and services it operates), never another payer's debts.

        Each payee is paid on the rail its payout reference says (an IBAN by SEPA credit
        transfer, an E.164 number by mobile money): one file and one `payout.recorded`
        per rail that pays someone, kept in the workspace's `payouts/` folder. `rail`
        limits the export to one rail; None exports every rail in use.

        Balances below the minimum payout (by default the largest `minimum_payout` of
        the policies in force) are carried to the next period. A payee who cannot be
        paid (no reference here, an invalid one, a rail not in this export) is held,
        with the reason, in the payout entry; everyone else is paid. An export that
        would pay nobody records nothing. Exporting again pays only what is owed since:
        with nothing new, it returns the files already made; nobody is paid twice.

        The payout entry is recorded before its file is published (written under a
        temporary name, then renamed): the file is a pure function of the entry (message
        id, payment ids and execution date all come from it), so an export interrupted by
        a crash is finished by the next one with the same bytes, never a second file. Of
        two simultaneous exports, the one that loses the race returns the winner's files.

        Raises:
            InputError: revenue up to `period` is not shared yet, or a SEPA export has
                no paying account.
            VerificationError: an earlier payout's file is missing or changed and cannot
                be rendered again from the log.
        """
        retried = _retried
        the_period = Period.parse(str(period))
        code = find_currency(currency).code
        if rail is not None and rail not in PAYMENT_RAILS:
            raise InputError(
                f"unknown payment rail {rail!r}", hint=f"rails: {', '.join(sorted(PAYMENT_RAILS))}"
            )
        rails = sorted(PAYMENT_RAILS) if rail is None else [rail]
        payer = self.provenance.resolve_party(by)
        with self.ledger.read() as conn:
            unshared = queries.unshared_revenues(conn, code, the_period.last_month, payer=payer)
            if unshared:
                raise InputError(
                    f"revenue {unshared[0]} up to {the_period} is not shared yet"
                    + (f" (and {len(unshared) - 1} more)" if len(unshared) > 1 else ""),
                    hint=f"run `quotepart share {unshared[0]}` first, then export the payout",
                )
            balances = owed_balances(conn, code, the_period.last_month, payer=payer)
            minimum = minimum_minor if minimum_minor is not None else largest_minimum(conn)
            names = provenance_queries.party_names(conn, balances)
            previous = {r: queries.payout_leaf(conn, the_period, code, r) for r in rails}
        due = {PartyId.parse(p): b for p, b in sorted(balances.items()) if b >= max(minimum, 1)}
        carried = {PartyId.parse(p): b for p, b in sorted(balances.items()) if 0 < b < minimum}
        own = check_iban(debtor_iban) if debtor_iban and debtor_name else None
        by_rail: dict[str, list[Payment]] = {r: [] for r in rails}
        kept: dict[PartyId, int] = {}  # the debtor's own balance, settled by keeping it
        held: list[HeldPayee] = []
        for party, amount in due.items():
            name = names[str(party)]
            try:
                reference = self.provenance.payout_reference(party)
            except QuotepartError as exc:
                held.append(HeldPayee(party, name, amount, None, None, _why(exc)))
                continue
            payee_rail = rail_of(reference)
            masked = mask_reference(reference)
            reason: str | None = None
            try:
                _, account = check_payout_reference(reference)
            except PaymentDetailsError:
                reason = f"its payout reference is not a valid {_ACCOUNT[payee_rail]}"
            else:
                if payee_rail not in by_rail:
                    reason = f"paid by {RAIL_NAMES[payee_rail]}, which this export leaves out"
                elif payee_rail == "sepa" and code != "EUR":
                    reason = f"SEPA credit transfers pay EUR only, not {code}"
                elif payee_rail == "sepa" and own is None:
                    if rail == "sepa":
                        raise InputError(
                            "a SEPA credit transfer needs the paying account",
                            hint="pass debtor_name and debtor_iban (--debtor-name, --debtor-iban)",
                        )
                    reason = "no paying account was given for SEPA (--debtor-name, --debtor-iban)"
            if reason is not None:
                held.append(HeldPayee(party, name, amount, payee_rail, masked, reason))
            elif payee_rail == "sepa" and account == own:
                kept[party] = amount  # paid, with no transfer to itself
            else:
                by_rail[payee_rail].append(
                    Payment(str(party), name, amount, code, "pending", account)
                )
        paying = [r for r in rails if by_rail[r] or (r == "sepa" and kept)]
        debtor = _Debtor(debtor_name or "", debtor_iban or "", debtor_bic, own)
        # an interrupted export is finished before anything else is paid
        files = [
            self._exported(leaf, r, debtor) for r, leaf in previous.items() if leaf is not None
        ]
        if not paying:
            return Payout(the_period, code, tuple(files), tuple(held), carried)
        held_body = {h.party: Held(h.amount_minor, h.reason) for h in held}
        made: list[tuple[PayoutFile, PayoutRecorded]] = []
        for number, payee_rail in enumerate(paying):
            payout = PayoutId.new(self.ledger.clock)
            executed = (
                (execution_date or self.ledger.clock().date()) if payee_rail == "sepa" else None
            )
            content = _render(payout, payee_rail, by_rail[payee_rail], executed, debtor)
            paid = {PartyId.parse(p.payee): p.amount_minor for p in by_rail[payee_rail]}
            if payee_rail == "sepa":
                paid = dict(sorted({**paid, **kept}.items()))
            # the first file of an export also names the small balances and the held payees
            body = PayoutRecorded(
                payout,
                the_period,
                code,
                payee_rail,
                paid,
                carried if number == 0 else {},
                minimum,
                Digest.of_bytes(content),
                held_body if number == 0 else {},
                executed,
            )
            path = self.ledger.keys.payment_file(_file_name(payout, payee_rail))
            made.append(
                (PayoutFile(payout, payee_rail, path, content, paid, body.carried, True), body)
            )
        # the entry first, then the file: a crash leaves a recorded payout whose file the
        # next export renders again from the entry, byte for byte, never a file nothing records
        self._fault("rendered")
        try:
            self.ledger.append_many([(body, by) for _, body in made])
        except RightsError as exc:
            if exc.rule != "payout" or retried:
                raise
            # another export recorded these balances between reading and appending: its result
            return self.export_payout(
                the_period, code, rail, by=by, debtor_name=debtor_name, debtor_iban=debtor_iban,
                debtor_bic=debtor_bic, execution_date=execution_date, minimum_minor=minimum_minor,
                _retried=True,
            )  # fmt: skip
        self._fault("recorded")
        for file, _ in made:
            self.ledger.keys.write_partial_payment_file(file.path.name, file.content)
        self._fault("partial")
        for file, _ in made:
            self._publish(file.path.name, Digest.of_bytes(file.content))
        self._fault("published")
        return Payout(the_period, code, tuple(f for f, _ in made), tuple(held), carried)

    def _fault(self, point: str) -> None:
        if self.faults is not None:
            self.faults(point)

    def _publish(self, name: str, digest: Digest) -> None:
        """Rename the temporary file to `name`; another process may have done it first."""
        try:
            self.ledger.keys.publish_payment_file(name)
        except FileNotFoundError:
            path = self.ledger.keys.payment_file(name)
            if not path.exists() or Digest.of_bytes(path.read_bytes()) != digest:
                raise

    def _exported(self, leaf: int, rail: str, debtor: _Debtor) -> PayoutFile:
        """The payout recorded at `leaf`, with its file, checked against the log.

        An export interrupted after its entry was recorded is finished here: its file is
        published from the temporary one or rendered again from the entry (the payees'
        references and `debtor` as they were), and must have the recorded digest.
        """
        with self.ledger.read() as conn:
            body = read_body(conn, leaf, PayoutRecorded)
            names = provenance_queries.party_names(conn, {str(p): 0 for p in body.paid})
        keys = self.ledger.keys
        name = _file_name(body.payout, rail)
        path = keys.payment_file(name)
        content = path.read_bytes() if path.exists() else None
        if content is None and body.file is not None:
            partial = keys.partial_payment_file(name)
            if partial.exists() and Digest.of_bytes(partial.read_bytes()) == body.file:
                self._publish(name, body.file)
            else:
                rendered = self._render_again(body, names, debtor)
                if rendered is not None and Digest.of_bytes(rendered) == body.file:
                    keys.write_partial_payment_file(name, rendered)
                    self._publish(name, body.file)
            content = path.read_bytes() if path.exists() else None
        if body.file is not None and (content is None or Digest.of_bytes(content) != body.file):
            raise VerificationError(
                f"{body.payout} was exported before, but its file {path} is missing or changed",
                hint="export again with the same paying account (--debtor-name, --debtor-iban, "
                "--debtor-bic) to render it from the log, or restore it from a backup; "
                "the payout is recorded and will not be paid again",
            )
        return PayoutFile(body.payout, rail, path, content or b"", body.paid, body.carried, False)

    def _render_again(
        self, body: PayoutRecorded, names: Mapping[str, str], debtor: _Debtor
    ) -> bytes | None:
        """The file of a recorded payout from its entry and the payees' references; None if
        a reference is gone or the SEPA file has no paying account to name."""
        payments: list[Payment] = []
        for party, amount in sorted(body.paid.items(), key=lambda item: str(item[0])):
            try:
                _, account = check_payout_reference(self.provenance.payout_reference(party))
            except QuotepartError:
                return None
            if body.rail == "sepa" and account == debtor.account:
                continue  # the debtor's own balance, kept, not in the file
            name = names.get(str(party), str(party))
            payments.append(Payment(str(party), name, amount, body.currency, "pending", account))
        if body.rail == "sepa" and payments and (debtor.account is None or not debtor.name):
            return None
        try:
            return _render(body.payout, body.rail, payments, body.execution_date, debtor)
        except QuotepartError:
            return None

    def revenue_entries(self) -> list[tuple[int, SignedEntry]]:
        """Every recorded revenue entry with its leaf index, oldest first."""
        with self.ledger.read() as conn:
            return read_entries(conn, queries.revenue_leaves(conn))


@dataclass(frozen=True, slots=True)
class _Debtor:
    """The paying account a SEPA file names; `account` is the checked IBAN, None if none."""

    name: str
    iban: str
    bic: str | None
    account: str | None


def _file_name(payout: PayoutId, rail: str) -> str:
    return f"{payout.ulid}{_SUFFIX[rail]}"


def _render(
    payout: PayoutId,
    rail: str,
    payments: Sequence[Payment],
    execution_date: date | None,
    debtor: _Debtor,
) -> bytes:
    """The payment file of `payout`: a pure function of the payout entry and the payees.

    The message id is the payout's ULID, the payments are numbered `<ULID>-<n>` in the
    given (party) order, and the SEPA creation time is the ULID's own timestamp.
    """
    numbered = [
        dataclasses.replace(p, reference=f"{payout.ulid}-{n}") for n, p in enumerate(payments, 1)
    ]
    if rail != "sepa":
        return mobile_money_csv(numbered, batch_id=payout.ulid).encode()
    if not numbered:
        return b""  # only the debtor itself was owed
    from ulid import ULID  # python-ulid reads its own version at import: ~50 ms

    return sepa_credit_transfer(
        numbered,
        debtor_name=debtor.name,
        debtor_iban=debtor.iban,
        debtor_bic=debtor.bic,
        execution_date=execution_date or ULID.from_str(payout.ulid).datetime.date(),
        message_id=payout.ulid,
        created=ULID.from_str(payout.ulid).datetime.replace(microsecond=0, tzinfo=None),
    )


def _period(period: str | Period) -> Period:
    if isinstance(period, Period):
        return period
    if not isinstance(period, str):
        raise TypeError(f"a period is a Period or a string like 2026-Q1, not {period!r}")
    return Period.parse(period)


def _why(exc: QuotepartError) -> str:
    """Why a payee has no usable reference, in words fit for the log (no account in it)."""
    if isinstance(exc, NotFoundError):
        return "no payout reference in this workspace: give one with `quotepart party payout`"
    return "its payout reference does not open the commitment it signed: restore its keys file"


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


__all__ = ["HeldPayee", "Payout", "PayoutFile", "Shared", "Sharing"]
