"""Statements: what one party earned in a period, line by line, and the file that proves it.

A statement is never read from a table of amounts: each allocation is computed again
from the entries it names, and must give the amount the log recorded, before a line
is shown. `statement_proof` packs everything needed to repeat that on another
machine — the entries, their RFC 9162 inclusion proofs, a signed checkpoint and the
log's verifier key — and `verify_statement` repeats it with nothing but that file.

What the file proves: every entry it holds is in the log the checkpoint signs; each
allocation it holds names exactly those inputs; running the allocation on them gives
the recorded amounts, and the party's sum. What it cannot prove alone: that the log
holds no other allocation paying the party in that period (a full audit of the log,
`quotepart verify`, shows that).

Names: a statement speaks of parties and assets by name as well as by id. The names
come from the `party.registered` and `asset.registered` entries the file holds (each
with its inclusion proof and signature), and the file's `names` part, written for the
reader, must say exactly what those entries say: a name `verify_statement` returns was
verified, never taken from the file on trust.

Rights: each line says who signed the policy and the valuation its amount follows from
(the authors of those input entries), and "delegated by" whom when the signer is not the
asset's registrant (the delegation is read from the log: `right.granted`). A statement of
a party that registered assets also lists the claims filed against those registrations.
Neither changes an amount, and the statement file proves the signers' entries as inputs.

Adjustments: where a robust policy (one that names `per`) clipped, capped, floored, did not
floor or discounted an input the party registered, the statement says so, with the value
and its error bar and the entries the rule follows from (policy, valuation, overlap), even
where the party was paid nothing by that allocation: its item then shows 0. They are
recomputed from the allocation's inputs like every amount, so `verify_statement` returns
them checked, from the file alone.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection

from quotepart.allocation.engine import Adjustment, Line
from quotepart.allocation.recompute import recompute
from quotepart.errors import InputError, MalformedEntryError, VerificationError
from quotepart.ids import Digest, PartyId, Period
from quotepart.log import (
    Checkpoint,
    NoteVerifier,
    SignedEntry,
    VerifyKey,
    leaf_hash,
    parse_entry,
    verify_inclusion,
)
from quotepart.log.kinds import (
    AllocationRecorded,
    AssetRegistered,
    PartyRegistered,
    PolicySet,
    RevenueRecorded,
    ValuationRecorded,
    format_fraction,
)
from quotepart.money import format_amount
from quotepart.store import LogStore
from quotepart.store.queries.entries import entries_by_hash, read_entries
from quotepart.store.queries.provenance import asset_record, party_leaf, party_leaves
from quotepart.store.queries.rights import claims_on, delegations
from quotepart.store.queries.sharing import (
    allocations_within,
    party_allocations,
    registered_leaves,
)
from quotepart.text import csv_cell

FORMAT = "quotepart-statement/2"
"""/2 adds the `names` part and the statement party's own registration."""
FORMAT_V1 = "quotepart-statement/1"
"""Still verified: a /1 file carries no `names` part, so only the names its entries give."""


@dataclass(frozen=True, slots=True)
class Names:
    """Party id -> name and asset digest -> name, as registration entries say."""

    parties: dict[str, str] = field(default_factory=dict)
    assets: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, entries: Iterable[SignedEntry]) -> Names:
        """The names the `party.registered` and `asset.registered` entries among `entries` give."""
        parties: dict[str, str] = {}
        assets: dict[str, str] = {}
        for entry in entries:
            body = entry.body()
            if isinstance(body, PartyRegistered):
                parties[str(body.party)] = body.name
            elif isinstance(body, AssetRegistered):
                assets[str(body.asset)] = body.name
        return cls(dict(sorted(parties.items())), dict(sorted(assets.items())))

    def name(self, ref: str) -> str | None:
        """The name of a party id or asset digest, None for anything else."""
        return self.parties.get(ref) or self.assets.get(ref)

    def label(self, ref: str, *, width: int | None = None) -> str:
        """'Hospital A (party:01K…)': the name beside the id, or the id alone if unnamed."""
        shown = ref if width is None else ref[:width]
        name = self.name(ref)
        return shown if name is None else f"{name} ({shown})"

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"parties": dict(self.parties), "assets": dict(self.assets)}


SIGNED_STEPS = ("policy", "valuation")
"""The steps of a line whose signer a statement names: each is also the right to sign it."""


@dataclass(frozen=True, slots=True)
class Signed:
    """Who signed the policy or valuation a line follows from, and under whose right."""

    what: str  # "policy" or "valuation"
    asset: str  # the asset it is about (a policy's asset, a valuation's model)
    entry: str  # its leaf hash
    signer: str  # party id of its author
    registrant: str | None  # party id of the asset's registrant, if among the inputs
    delegated_by: str | None = None  # the grantor, when the signer is not the registrant

    def to_json(self, names: Names) -> dict[str, Any]:
        return {
            "what": self.what,
            "asset": self.asset,
            "asset_name": names.assets.get(self.asset),
            "entry": self.entry,
            "signer": self.signer,
            "signer_name": names.parties.get(self.signer),
            "delegated_by": self.delegated_by,
            "delegated_by_name": None
            if self.delegated_by is None
            else names.parties.get(self.delegated_by),
        }

    def describe(self, names: Names) -> str:
        """'valuation signed by Valuer Co (delegated by Lab)'."""
        said = f"{self.what} signed by {names.parties.get(self.signer) or self.signer}"
        if self.delegated_by is not None:
            said += f" (delegated by {names.parties.get(self.delegated_by) or self.delegated_by})"
        return said


@dataclass(frozen=True, slots=True)
class ClaimAgainst:
    """A claim filed against one of the statement party's registrations."""

    asset: str
    claimant: str
    reason: str
    leaf_index: int

    def to_json(self, names: Names) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "asset_name": names.assets.get(self.asset),
            "claimant": self.claimant,
            "claimant_name": names.parties.get(self.claimant),
            "reason": self.reason,
            "leaf_index": self.leaf_index,
        }


@dataclass(frozen=True, slots=True)
class StatementItem:
    revenue: str
    period: str
    currency: str
    amount_minor: int
    allocation_entry: str  # leaf hash of the allocation.recorded entry
    allocation_index: int
    lines: list[Line]
    signed: dict[str, Signed] = field(default_factory=dict)  # entry leaf hash -> its signer
    adjustments: list[Adjustment] = field(default_factory=list)  # of inputs it registered

    def signed_for(self, line: Line) -> list[Signed]:
        """The policies and valuations `line` follows from, with who signed each."""
        return [
            self.signed[hop.entry]
            for hop in line.trace
            if hop.what in SIGNED_STEPS and hop.entry is not None and hop.entry in self.signed
        ]


@dataclass(slots=True)
class Statement:
    party: PartyId
    period: Period
    items: list[StatementItem] = field(default_factory=list)
    names: Names = field(default_factory=Names)
    claims: list[ClaimAgainst] = field(default_factory=list)  # against its registrations

    @property
    def party_name(self) -> str | None:
        return self.names.parties.get(str(self.party))

    @property
    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for item in self.items:
            if item.amount_minor:  # an item shown only for its adjustments adds nothing
                totals[item.currency] = totals.get(item.currency, 0) + item.amount_minor
        return dict(sorted(totals.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "party": str(self.party),
            "party_name": self.party_name,
            "period": str(self.period),
            "totals": {
                c: {"amount_minor": a, "amount": format_amount(a, c)}
                for c, a in self.totals.items()
            },
            "items": [
                {
                    "revenue": item.revenue,
                    "period": item.period,
                    "currency": item.currency,
                    "amount_minor": item.amount_minor,
                    "allocation": {
                        "leaf_index": item.allocation_index,
                        "entry": item.allocation_entry,
                    },
                    "lines": [
                        {
                            "amount_minor": line.amount_minor,
                            "reason": line.reason,
                            "asset": None if line.at is None else str(line.at),
                            "asset_name": None
                            if line.at is None
                            else self.names.assets.get(str(line.at)),
                            "trace": [
                                {
                                    "what": hop.what,
                                    "ref": hop.ref,
                                    "name": self.names.name(hop.ref),
                                    "entry": hop.entry,
                                }
                                for hop in line.trace
                            ],
                            "signed": [s.to_json(self.names) for s in item.signed_for(line)],
                        }
                        for line in item.lines
                    ],
                    "adjustments": [_adjustment_json(a, self.names) for a in item.adjustments],
                }
                for item in self.items
            ],
            "claims_against_registrations": [c.to_json(self.names) for c in self.claims],
        }

    def to_csv(self) -> str:
        """One row per line: the party and the asset paying it, each with its name, revenue,
        currency, amount, reason, the trace as `what ref (name) @entry` steps, and who
        signed its policy and valuation (`; `-separated). A text cell that a spreadsheet would
        read as a formula (= + - @ first) starts with `'` (`quotepart.text.csv_cell`)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            ["party", "party_name", "period", "revenue", "currency", "amount_minor", "amount",
             "reason", "asset", "asset_name", "trace", "signed"]
        )  # fmt: skip
        for item in self.items:
            for line in item.lines:
                asset = "" if line.at is None else str(line.at)
                writer.writerow(
                    [
                        str(self.party),
                        csv_cell(self.party_name or ""),
                        item.period,
                        item.revenue,
                        item.currency,
                        line.amount_minor,
                        format_amount(line.amount_minor, item.currency),
                        csv_cell(line.reason),
                        asset,
                        csv_cell(self.names.assets.get(asset, "")),
                        csv_cell(
                            " > ".join(
                                f"{hop.what} {self.names.label(hop.ref)}"
                                + (f" @{hop.entry[:16]}" if hop.entry else "")
                                for hop in line.trace
                            )
                        ),
                        csv_cell("; ".join(s.describe(self.names) for s in item.signed_for(line))),
                    ]
                )
            for adjustment in item.adjustments:  # a line of 0 that says why
                asset = str(adjustment.asset)
                writer.writerow(
                    [
                        str(self.party),
                        csv_cell(self.party_name or ""),
                        item.period,
                        item.revenue,
                        item.currency,
                        0,
                        format_amount(0, item.currency),
                        csv_cell(f"adjusted ({adjustment.kind})"),
                        asset,
                        csv_cell(self.names.assets.get(asset, "")),
                        csv_cell(
                            f"{adjustment.role} of {self.names.label(str(adjustment.model))}: "
                            f"{adjustment.describe()}"
                            + "".join(f" @{e[:16]}" for e in adjustment.entries)
                        ),
                        "",
                    ]
                )
        return out.getvalue()


def _decimal_text(number: Fraction) -> str:
    """An exact decimal string where there is one (values are sums of decimal strings),
    else the ratio, e.g. '1/3'."""
    for places in range(40):
        scaled = number * 10**places
        if scaled.denominator == 1:
            return format(Decimal(scaled.numerator).scaleb(-places), "f")
    return format_fraction(number)


def _adjustment_json(adjustment: Adjustment, names: Names) -> dict[str, Any]:
    return {
        "kind": adjustment.kind,
        "asset": str(adjustment.asset),
        "asset_name": names.assets.get(str(adjustment.asset)),
        "model": str(adjustment.model),
        "model_name": names.assets.get(str(adjustment.model)),
        "role": adjustment.role,
        "value": _decimal_text(adjustment.value),
        "stderr": None if adjustment.stderr is None else _decimal_text(adjustment.stderr),
        "amount_minor": adjustment.amount_minor,
        "before_minor": adjustment.before_minor,
        "why": adjustment.why,
        "said": adjustment.describe(),
        "entries": list(adjustment.entries),
    }


def _revenue_of(
    allocation_entry: SignedEntry, inputs: list[tuple[int, SignedEntry]]
) -> RevenueRecorded:
    body = allocation_entry.body_as(AllocationRecorded)
    for _, entry in inputs:
        revenue = entry.body()
        if isinstance(revenue, RevenueRecorded) and revenue.revenue == body.revenue:
            return revenue
    raise VerificationError(f"the inputs of the allocation of {body.revenue} lack the revenue")


def statement_for(conn: Connection, party: PartyId, period: Period) -> Statement:
    """The party's statement, every allocation recomputed from the entries it names, and
    the names of the party and the assets from their registration entries."""
    statement = Statement(party, period)
    registrations = _own_registration(conn, party)
    named: set[str] = set()
    paying = party_allocations(conn, party, period.first_month, period.last_month)
    for index in sorted({*paying, *_adjusting(conn, party, period, set(paying))}):
        [(_, entry)] = read_entries(conn, [index])
        body = entry.body_as(AllocationRecorded)
        inputs = entries_by_hash(conn, body.inputs)
        allocation = recompute(entry, inputs)
        adjustments = allocation.adjustments_of(party)
        if index not in paying and not adjustments:
            continue
        registrations.extend(inputs)
        revenue = _revenue_of(entry, inputs)
        lines = allocation.lines_of(party)
        signed = _signers(conn, lines, inputs)
        statement.items.append(
            StatementItem(
                str(body.revenue),
                str(revenue.period),
                body.currency,
                allocation.amount_of(party),
                entry.leaf_hash.hex(),
                index,
                lines,
                signed,
                adjustments,
            )
        )
        named.update(s.signer for s in signed.values())
        named.update(s.delegated_by for s in signed.values() if s.delegated_by is not None)
    statement.claims = _claims_against(conn, party)
    named.update(c.claimant for c in statement.claims)
    assets_named = {c.asset for c in statement.claims}
    leaves = set(party_leaves(conn, named))
    leaves.update(
        record.leaf_index
        for record in (asset_record(conn, Digest.parse(a)) for a in sorted(assets_named))
        if record is not None
    )
    leaves.difference_update(i for i, _ in registrations)
    registrations.extend(read_entries(conn, sorted(leaves)))
    statement.names = Names.of(entry for _, entry in registrations)
    return statement


def _adjusting(conn: Connection, party: PartyId, period: Period, paying: set[int]) -> list[int]:
    """Allocations within `period` that pay `party` nothing but read an asset it registered:
    a robust policy may have clipped it, and the statement must say why. (One read of each
    such allocation entry: the cost of a statement grows with the period's allocations.)"""
    mine = {
        entry.leaf_hash.hex() for _, entry in read_entries(conn, registered_leaves(conn, party))
    }
    if not mine:
        return []
    found = []
    for index in allocations_within(conn, period.first_month, period.last_month):
        if index in paying:
            continue
        [(_, entry)] = read_entries(conn, [index])
        if mine.intersection(entry.body_as(AllocationRecorded).inputs):
            found.append(index)
    return found


def _signers(
    conn: Connection, lines: list[Line], inputs: list[tuple[int, SignedEntry]]
) -> dict[str, Signed]:
    """Who signed each policy and valuation `lines` follow from (by entry leaf hash), and,
    for a signer other than the asset's registrant, who delegated the right to it."""
    by_hash = {entry.leaf_hash.hex(): (index, entry) for index, entry in inputs}
    registrants: dict[str, str] = {}
    for _, entry in inputs:
        body = entry.body()
        if isinstance(body, AssetRegistered):
            registrants[str(body.asset)] = str(entry.author)
    signed: dict[str, Signed] = {}
    for line in lines:
        for hop in line.trace:
            if hop.what not in SIGNED_STEPS or hop.entry is None or hop.entry in signed:
                continue
            if hop.entry not in by_hash:
                continue
            index, entry = by_hash[hop.entry]
            body = entry.body()
            if isinstance(body, PolicySet):
                asset = body.asset
            elif isinstance(body, ValuationRecorded):
                asset = body.model
            else:
                continue
            registrant = registrants.get(str(asset))
            delegated_by = None
            if registrant is not None and str(entry.author) != registrant:
                delegated_by = _grantor(conn, entry, index, hop.what, asset) or registrant
            signed[hop.entry] = Signed(
                hop.what, str(asset), hop.entry, str(entry.author), registrant, delegated_by
            )
    return signed


def _grantor(
    conn: Connection, entry: SignedEntry, index: int, right: str, asset: Digest
) -> str | None:
    """Who granted `entry`'s author the `right` over `asset` it signed `entry` under: the
    latest grant before the entry, unrevoked then, whose window covers its timestamp."""
    found = [
        d
        for d in delegations(conn, asset, grantee=entry.author)
        if d.right == right
        and d.leaf_index < index
        and (d.revoked_by is None or d.revoked_by > index)
        and d.since <= entry.time
        and (d.until is None or entry.time < d.until)
    ]
    return str(found[-1].grantor) if found else None


def _claims_against(conn: Connection, party: PartyId) -> list[ClaimAgainst]:
    """The claims filed against assets `party` registered, oldest first."""
    found: list[ClaimAgainst] = []
    owners: dict[Digest, PartyId | None] = {}
    for claim in claims_on(conn):
        if claim.asset not in owners:
            record = asset_record(conn, claim.asset)
            owners[claim.asset] = None if record is None else record.registered_by
        if owners[claim.asset] == party:
            found.append(
                ClaimAgainst(str(claim.asset), str(claim.claimant), claim.reason, claim.leaf_index)
            )
    return found


def _own_registration(conn: Connection, party: PartyId) -> list[tuple[int, SignedEntry]]:
    index = party_leaf(conn, party)
    return [] if index is None else read_entries(conn, [index])


# ------------------------------------------------------------------ the file


def statement_proof(
    store: LogStore, conn: Connection, statement: Statement, verifier: NoteVerifier
) -> dict[str, Any]:
    """A self-contained file proving `statement` against the log's latest signed checkpoint."""
    note = store.latest_checkpoint()
    if note is None:
        raise InputError("the log has no checkpoint yet", hint="append an entry first")
    size = Checkpoint.open(note, verifier).tree_size
    allocations = []
    wanted: dict[int, SignedEntry] = {}
    for item in statement.items:
        [(index, entry)] = read_entries(conn, [item.allocation_index])
        body = entry.body_as(AllocationRecorded)
        inputs = entries_by_hash(conn, body.inputs)
        wanted[index] = entry
        wanted.update(inputs)
        allocations.append({"allocation": index, "inputs": [i for i, _ in inputs]})
    authors = {entry.author for entry in wanted.values()} | {statement.party}
    for index, entry in _party_entries(conn, authors):
        wanted[index] = entry
    proofs = {
        str(index): [h.hex() for h in store.inclusion_proof(index, size).proof]
        for index in sorted(wanted)
    }
    return {
        "format": FORMAT,
        "party": str(statement.party),
        "period": str(statement.period),
        "claimed": statement.totals,
        "names": Names.of(wanted[index] for index in sorted(wanted)).to_json(),
        "log": {"verifier_key": str(verifier), "checkpoint": note},
        "allocations": allocations,
        "entries": {
            str(index): base64.b64encode(wanted[index].canonical).decode()
            for index in sorted(wanted)
        },
        "proofs": proofs,
    }


def _party_entries(conn: Connection, parties_wanted: set[PartyId]) -> list[tuple[int, SignedEntry]]:
    return read_entries(conn, party_leaves(conn, {str(p) for p in parties_wanted}))


@dataclass(frozen=True, slots=True)
class VerifiedStatement:
    party: PartyId
    period: Period
    totals: dict[str, int]
    allocations: int
    entries: int
    tree_size: int
    origin: str
    verifier_key: str
    party_name: str | None = None  # from the party's registration entry in the file, if there
    paid_at: dict[str, str | None] = field(default_factory=dict)  # asset digest -> its name
    adjustments: tuple[Adjustment, ...] = ()  # of the party's inputs, recomputed from the file


def verify_statement(
    document: Mapping[str, Any], *, trusted_key: str | None = None
) -> VerifiedStatement:
    """Check a statement file with nothing else: proofs, checkpoint, signatures, recomputation.

    Raises:
        VerificationError: a proof, signature or recomputed amount does not check out,
            or a part is missing; the message names which.
        InputError: the file is not a statement file.
    """
    if not isinstance(document, Mapping):
        raise InputError(
            f"not a quotepart statement file (a JSON {type(document).__name__}, not an object)",
            hint="write one with `quotepart statement PARTY --period P --proof`",
        )
    try:
        if document.get("format") not in (FORMAT, FORMAT_V1):
            raise InputError(
                f"not a quotepart statement file (format {document.get('format')!r})",
                hint="write one with `quotepart statement PARTY --period P --proof`",
            )
        party = PartyId.parse(document["party"])
        period = Period.parse(document["period"])
        key_text = document["log"]["verifier_key"]
        note = document["log"]["checkpoint"]
        raw_entries = document["entries"]
        proofs = document["proofs"]
        allocation_refs = document["allocations"]
        claimed = {str(c): int(a) for c, a in document["claimed"].items()}
        stated_names = document["names"] if document["format"] == FORMAT else None
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise VerificationError(
            f"the statement file lacks a part or has one of the wrong shape: {exc!r}",
            hint="the file is incomplete or was altered; ask for a new one",
        ) from exc
    for part, value, shape in (
        ("log.verifier_key", key_text, str),
        ("log.checkpoint", note, str),
        ("entries", raw_entries, dict),
        ("proofs", proofs, dict),
        ("allocations", allocation_refs, list),
    ):
        if not isinstance(value, shape):
            raise VerificationError(
                f"the statement file's {part} is a {type(value).__name__}, not a "
                f"{'JSON object' if shape is dict else shape.__name__}",
                hint="the file is incomplete or was altered; ask for a new one",
            )
    if not all(isinstance(i, str) and i.isdigit() and len(i) <= 19 for i in raw_entries):
        raise VerificationError(
            "the statement file's entries are not keyed by leaf index",
            hint="the file is incomplete or was altered; ask for a new one",
        )
    if trusted_key is not None and trusted_key.strip() != key_text.strip():
        raise VerificationError(
            "the statement is signed for another log key than the one you trust",
            hint="compare the verifier key with the one the log operator publishes",
        )
    verifier = NoteVerifier.parse(key_text)
    checkpoint = Checkpoint.open(note, verifier)
    entries: dict[int, SignedEntry] = {}
    for index_text, blob in raw_entries.items():
        index = int(index_text)
        try:
            data = base64.b64decode(blob, validate=True)
        except (ValueError, binascii.Error, TypeError) as exc:
            raise VerificationError(f"entry {index} is not base64") from exc
        proof = proofs.get(index_text)
        if proof is None:
            raise VerificationError(f"entry {index} comes without an inclusion proof")
        try:
            path = [bytes.fromhex(h) for h in proof]
        except (TypeError, ValueError) as exc:
            raise VerificationError(f"the inclusion proof of entry {index} is not hex") from exc
        verify_inclusion(leaf_hash(data), index, checkpoint.tree_size, path, checkpoint.root_hash)
        try:
            entries[index] = parse_entry(data)
        except MalformedEntryError as exc:
            raise VerificationError(f"entry {index} does not parse: {exc.message}") from exc
        if entries[index].origin not in (None, checkpoint.origin):
            raise VerificationError(
                f"entry {index}: meant for log {entries[index].origin!r}, "
                f"not {checkpoint.origin!r}",
                hint="the file was altered; ask for a new one",
            )
    keys: dict[PartyId, VerifyKey] = {}
    for entry in entries.values():
        body = entry.body()
        if isinstance(body, PartyRegistered):
            keys[body.party] = body.public_key
    for index, entry in entries.items():
        key = keys.get(entry.author)
        if key is None:
            raise VerificationError(
                f"entry {index} is signed by {entry.author}, whose registration is not in the file"
            )
        entry.verify(key)
    names = Names.of(entries[index] for index in sorted(entries))
    if stated_names is not None:
        _check_names(stated_names, names)
    totals: dict[str, int] = {}
    paid_at: dict[str, str | None] = {}
    adjustments: list[Adjustment] = []
    for ref in allocation_refs:
        try:
            allocation_entry = entries[int(ref["allocation"])]
            inputs = [(int(i), entries[int(i)]) for i in ref["inputs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(
                f"the statement file lacks an entry an allocation needs: {exc!r}",
                hint="the file is incomplete or was altered",
            ) from exc
        allocation = recompute(allocation_entry, inputs)
        revenue = next(
            (body for body in (e.body() for _, e in inputs) if isinstance(body, RevenueRecorded)),
            None,
        )
        if revenue is None:
            raise VerificationError(
                f"the allocation of {allocation.revenue} names no revenue entry",
                hint="the statement file was altered; ask for a new one",
            )
        if not period.contains(revenue.period):
            raise VerificationError(
                f"{allocation.revenue} was earned in {revenue.period}, outside {period}"
            )
        amount = allocation.amount_of(party)
        if amount:
            totals[allocation.currency] = totals.get(allocation.currency, 0) + amount
        adjustments.extend(allocation.adjustments_of(party))
        for line in allocation.lines_of(party):
            if line.at is not None and line.amount_minor:
                paid_at[str(line.at)] = names.assets.get(str(line.at))
    totals = dict(sorted(totals.items()))
    if totals != claimed:
        raise VerificationError(
            f"the statement claims {claimed} for {party} in {period}, "
            f"but its allocations give {totals}",
            hint="the file was altered",
        )
    return VerifiedStatement(
        party, period, totals, len(allocation_refs), len(entries), checkpoint.tree_size,
        checkpoint.origin, key_text, names.parties.get(str(party)), dict(sorted(paid_at.items())),
        tuple(adjustments),
    )  # fmt: skip


def _check_names(stated: Any, names: Names) -> None:
    """Raise unless the file's `names` part says exactly what its registration entries say."""
    expected = names.to_json()
    if not isinstance(stated, dict) or set(stated) != set(expected):
        raise VerificationError(
            "the statement file's names part is not {parties, assets}",
            hint="the file was altered; ask for a new one",
        )
    for part, given in expected.items():
        said = stated[part]
        if not isinstance(said, dict):
            raise VerificationError(f"the statement file's {part} names are not a map")
        for ref in sorted(set(said) | set(given)):
            if said.get(ref) != given.get(ref):
                raise VerificationError(
                    f"the statement file names {ref} {said.get(ref)!r}, "
                    f"but its registration entry says {given.get(ref)!r}",
                    hint="the file was altered; names come from the entries it proves",
                )
