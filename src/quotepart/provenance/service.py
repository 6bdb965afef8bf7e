"""The provenance service: parties, assets, contributions, runs, tracking and lineage.

`Provenance` is built on a `Ledger` (append signed facts, read projections, the clock)
and the workspace's `KeyFolder` (party keys and payout references); `quotepart.Workspace`
composes it with the other services and delegates to it.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from quotepart.errors import (
    AlreadyRegisteredError,
    InputError,
    NotFoundError,
    QuotepartError,
    RightsError,
    SharedPayoutReferenceWarning,
    UnknownAuthorError,
)
from quotepart.ids import Digest, PartyId
from quotepart.log import SignedEntry, SigningKey, sign_entry
from quotepart.log.kinds import (
    RIGHTS,
    AssetRegistered,
    ClaimFiled,
    ContributionAccepted,
    ContributionRecorded,
    EntryBody,
    OverlapDetected,
    PartyPayoutChanged,
    PartyRegistered,
    RightGranted,
    RightRevoked,
    RunRecorded,
    format_fraction,
)
from quotepart.money import parse_ratio
from quotepart.provenance import lineage as lineage_queries
from quotepart.provenance.assets import (
    Described,
    decimal_text,
    describe_compute_grant,
    describe_data,
    describe_labelling_batch,
    describe_model,
    describe_service,
)
from quotepart.provenance.digest import MemberProof, prove_record_packed
from quotepart.provenance.overlap import (
    DEFAULT_TOLERANCE,
    IndexedSet,
    OverlapWarning,
    find_overlaps,
)
from quotepart.provenance.parties import PayoutSecret, check_payout_reference
from quotepart.provenance.resolve import AssetOrName, PartyRef
from quotepart.provenance.resolve import resolve_asset as _resolve_asset
from quotepart.provenance.resolve import resolve_party as _resolve_party
from quotepart.provenance.runs import AssetRef, Run, asset_digest, digests
from quotepart.provenance.tables import columns_of
from quotepart.store.ledger import Ledger
from quotepart.store.lineage import Direction, LineageIndex
from quotepart.store.queries import entries as entry_queries
from quotepart.store.queries import provenance as queries
from quotepart.store.queries import rights as rights_queries
from quotepart.store.queries.provenance import (
    AssetRecord,
    ContributionRecord,
    OverlapRecord,
    PartyRecord,
)
from quotepart.store.record_index import (
    RECORD_KEYS_PART,
    RecordSetRow,
    indexed_sets,
    record_set,
    write_record_set,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from quotepart.provenance.sklearn import TrackedEstimator

P = ParamSpec("P")
R = TypeVar("R")


class Provenance:
    """Who contributed what, and what was made from it: the facts the money follows."""

    _index_records = True
    """Private switch (benchmarks): False registers tables without record keys, index or
    overlap detection, as before the record index existed."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.lineage_index = LineageIndex()  # the lineage graph in memory, caught up per query

    # ------------------------------------------------------------- parties

    def register_party(
        self,
        name: str,
        *,
        roles: Sequence[str] = ("contributor",),
        agent_type: str = "organisation",
        payout_reference: str | None = None,
        key: SigningKey | None = None,
    ) -> PartyId:
        """Create a party with its own key (kept in this workspace) and register it in the log.

        `agent_type` is person, organisation, community or software. A payout reference
        (an IBAN, paid by SEPA credit transfer, or a mobile-money number in E.164 form)
        is checked, then kept in this workspace's keys folder; the log holds only a
        salted commitment to it. A reference another party here already gives is
        accepted with a `SharedPayoutReferenceWarning` naming both.

        Raises:
            PaymentDetailsError: an invalid IBAN, or a number that is not E.164.
        """
        party = PartyId.new(self.ledger.clock)
        key = key or SigningKey.generate()
        payout = _payout_secret(payout_reference) if payout_reference is not None else None
        body = PartyRegistered(
            party,
            name,
            tuple(sorted(set(roles))),
            key.public,
            agent_type,
            payout.commitment() if payout else None,
        )
        entry = sign_entry(
            body, author=party, key=key, origin=self.ledger.store.origin, clock=self.ledger.clock
        )
        folder = self.ledger.keys
        folder.save_party_key(party, key)  # after sign_entry validated the body
        try:
            if payout is not None:
                folder.save_payout_secret(folder.payout_secret_path(party), payout.to_bytes())
            self.ledger.append_signed([entry])
        except BaseException:
            folder.forget_party(party)
            raise
        if payout is not None:
            self._warn_if_shared(party, name, payout.reference)
        return party

    def change_payout_reference(self, party: PartyId, payout_reference: str) -> int:
        """Pay `party` to `payout_reference` from now on, signed by the party's own key.

        Records a `party.payout_changed` entry with a new salted commitment; payouts
        recorded before it keep the reference they paid. Returns its leaf index.

        Raises:
            PaymentDetailsError: an invalid IBAN, or a number that is not E.164.
            NotFoundError: this workspace does not hold the party's key (it signs elsewhere).
        """
        payout = _payout_secret(payout_reference)
        folder = self.ledger.keys
        key = folder.party_key(party)
        commitment = payout.commitment()
        entry = sign_entry(
            PartyPayoutChanged(party, commitment),
            author=party,
            key=key,
            origin=self.ledger.store.origin,
            clock=self.ledger.clock,
        )
        path = folder.payout_change_path(party, commitment.hex)
        folder.save_payout_secret(path, payout.to_bytes())
        try:
            [leaf] = self.ledger.append_signed([entry])
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        self._warn_if_shared(party, self.party_entry(party).name, payout.reference)
        return leaf

    def payout_reference(self, party: PartyId) -> str:
        """The clear payout reference of `party` in force now, checked against its commitment.

        That is the reference of the party's latest `party.payout_changed`, or the one it
        registered with.

        Raises:
            NotFoundError: no reference is held here for that party.
            VerificationError: the file does not open the commitment the party signed.
        """
        folder = self.ledger.keys
        with self.ledger.read() as conn:
            leaf = queries.party_leaf(conn, party)
            if leaf is None:
                raise UnknownAuthorError(
                    f"{party} is not registered in this log", hint="register it first"
                )
            changed = queries.payout_change(conn, party)
            commitment = (
                entry_queries.read_body(conn, leaf, PartyRegistered).payout_commitment
                if changed is None
                else changed[1]
            )
        if commitment is None:
            raise NotFoundError(
                f"{party} registered without a payout reference",
                hint="the party can give one with `change_payout_reference`",
            )
        path = (
            folder.payout_secret_path(party)
            if changed is None
            else folder.payout_change_path(party, commitment.hex)
        )
        if not path.exists():
            raise NotFoundError(
                f"this workspace holds no payout reference for {party}",
                hint="the party gave it in another workspace",
            )
        secret = PayoutSecret.from_bytes(folder.payout_secret(path), source=str(path))
        secret.open(commitment)
        return secret.reference

    def resolve_party(self, party: PartyRef) -> PartyId:
        """The registered party `party` names: its id, a unique id prefix or its unique name.

        `ws.resolve_party("Hillside Growers")`, `ws.resolve_party("party:01J9")`.

        Raises:
            TypeError: neither a PartyId nor a string.
            NotFoundError: no such party (a PartyId included).
            InputError: several parties have that name or prefix; the message lists them.
        """
        with self.ledger.read() as conn:
            return _resolve_party(conn, party)

    def resolve_asset(self, asset: AssetOrName) -> Digest:
        """The registered asset `asset` names: its digest, a unique digest prefix
        (`sha256:2e0df31b`) or its unique name.

        Raises:
            InputError: not an asset reference, or several assets match (listed).
            NotFoundError: no such asset (a Digest included).
        """
        with self.ledger.read() as conn:
            return _resolve_asset(conn, asset)

    def _warn_if_shared(self, party: PartyId, name: str, reference: str) -> None:
        """Warn when another party of this workspace is paid to the same account."""
        for other in self.parties():
            if other.party == party:
                continue
            try:
                theirs = self.payout_reference(other.party)
            except QuotepartError:
                continue  # none here, or unreadable: nothing to compare
            if theirs == reference:
                warnings.warn(
                    f"{name} ({party}) gives the same payout reference as "
                    f"{other.name} ({other.party}): both are paid to that account",
                    SharedPayoutReferenceWarning,
                    stacklevel=3,
                )

    def parties(self) -> list[PartyRecord]:
        """Every registered party, oldest first."""
        with self.ledger.read() as conn:
            return queries.party_records(conn)

    def party_entry(self, party: PartyId) -> PartyRegistered:
        """The full registration of a party (agent type, payout commitment, key)."""
        with self.ledger.read() as conn:
            leaf = queries.party_leaf(conn, party)
            if leaf is None:
                raise NotFoundError(f"unknown party {party}", hint="register the party first")
            return entry_queries.read_body(conn, leaf, PartyRegistered)

    # -------------------------------------------------------------- assets

    def register_asset(
        self, content: bytes | Digest, *, asset_kind: str, name: str, by: PartyId
    ) -> Digest:
        """Register content (bytes, or a digest computed elsewhere); the same content twice
        returns the same asset without a new entry."""
        digest = content if isinstance(content, Digest) else Digest.of_bytes(content)
        if self._registered_by_caller(digest, by):
            return digest
        size = None if isinstance(content, Digest) else len(content)
        self.ledger.append(AssetRegistered(digest, asset_kind, name, size=size), author=by)
        return digest

    def _registered_by_caller(self, digest: Digest, by: PartyRef) -> bool:
        """True when `by` registered `digest` already; False when nobody did.

        Raises:
            AlreadyRegisteredError: another party registered it first (who, and when).
        """
        found = self.asset(digest)
        if found is None:
            return False
        caller = self.resolve_party(by)
        if found.registered_by == caller:
            return True
        at = self.entry_at(found.leaf_index).time
        raise AlreadyRegisteredError(
            f"{found.name!r} ({digest}) was registered first by {found.registered_by} at "
            f"{at:%Y-%m-%d %H:%M} UTC (entry {found.leaf_index}); nothing was recorded in the "
            f"name of {caller}",
            asset=str(digest),
            registrant=str(found.registered_by),
            registered_at=at.isoformat(),
            leaf_index=found.leaf_index,
            hint="use the asset by its digest; to dispute the registration, file a claim "
            "(Workspace.file_claim, `quotepart asset claim`)",
        )

    def file_claim(self, asset: AssetOrName, reason: str, *, by: PartyRef) -> int:
        """Dispute who registered `asset`: a `claim.filed` in the log, shown wherever the
        registrant is (statements, the report, `asset show`). It decides no money."""
        with self.ledger.read() as conn:
            digest = _resolve_asset(conn, asset)
        if not isinstance(reason, str) or not reason.strip():
            raise InputError("a claim needs a reason", hint="say why the registration is wrong")
        return self.ledger.append(ClaimFiled(digest, reason), author=by)

    def claims(self, asset: AssetOrName | None = None) -> list[rights_queries.Claim]:
        """Every claim filed (on `asset`, when given), oldest first."""
        with self.ledger.read() as conn:
            wanted = None if asset is None else [_resolve_asset(conn, asset)]
            return rights_queries.claims_on(conn, wanted)

    def asset(self, digest: Digest) -> AssetRecord | None:
        """The registration row of an asset, or None."""
        with self.ledger.read() as conn:
            return queries.asset_record(conn, digest)

    def assets(self) -> list[AssetRecord]:
        """Every registered asset, oldest first."""
        with self.ledger.read() as conn:
            return queries.asset_records(conn)

    def register_described(self, described: Described, *, by: PartyId) -> Digest:
        """Append an asset body unless the same content is already registered."""
        return self.register_many([described], by=by)[0]

    def register_many(self, items: Sequence[Described], *, by: PartyId) -> list[Digest]:
        """Register several assets in one transaction (skipping those already known).

        Record sets are indexed and matched against every earlier indexed one (see
        `overlaps`): each overlap found is appended as an `overlap.detected` signed by
        `by`, in the same transaction, and announced with an `OverlapWarning`.
        """
        fresh: dict[Digest, Described] = {}
        for item in items:
            if item.digest not in fresh and not self._registered_by_caller(item.digest, by):
                fresh[item.digest] = item
        if fresh:
            self._append_indexed(list(fresh.values()), {}, by=by)
        return [item.digest for item in items]

    def _register_contributed(
        self, described: Described, shares: Mapping[PartyId, Fraction], *, role: str, by: PartyId
    ) -> Digest:
        """An asset and who contributed it, in one transaction; nothing when already known."""
        digest = described.digest
        if not self._registered_by_caller(digest, by):
            contributed: list[tuple[EntryBody, PartyRef]] = [
                (ContributionRecorded(party, digest, role, share), by)
                for party, share in sorted(shares.items())
            ]
            self._append_indexed([described], {digest: contributed}, by=by)
        return digest

    def _append_indexed(
        self,
        fresh: Sequence[Described],
        after: Mapping[Digest, Sequence[tuple[EntryBody, PartyRef]]],
        *,
        by: PartyId,
    ) -> None:
        """Append each asset (then the entries `after` names for it, then its overlaps),
        with the record index rows of those that have keys, in one transaction.

        The index is read before that transaction: two processes registering copies of
        each other at the same moment do not flag each other (each is flagged against
        whatever was committed before it started matching).
        """
        keyed = [item for item in fresh if item.keys is not None and self._index_records]
        found: dict[Digest, list[OverlapDetected]] = {}
        index_rows: list[RecordSetRow] = []
        if keyed:
            with self.ledger.read() as conn:
                earlier = [_indexed(row) for row in indexed_sets(conn)]
            for item in keyed:
                assert item.keys is not None
                declared = self._ancestors(item.body.derived_from)
                candidates = [other for other in earlier if other.asset not in declared]
                found[item.digest] = [
                    OverlapDetected(
                        item.digest,
                        Digest.parse(overlap.earlier),
                        overlap.records,
                        overlap.of,
                        overlap.match,
                        decimal_text(overlap.tolerance, what="the tolerance"),
                    )
                    for overlap in find_overlaps(item.keys, candidates)
                ]
                indexed = IndexedSet.of(str(item.digest), item.keys)
                earlier.append(indexed)  # a batch's later sets are matched against its earlier
                index_rows.append(
                    RecordSetRow(
                        indexed.asset,
                        indexed.set_root,
                        indexed.records,
                        indexed.fields,
                        decimal_text(indexed.tolerance, what="the tolerance"),
                        tuple(indexed.parts(RECORD_KEYS_PART)),
                    )
                )
        batch: list[tuple[EntryBody, PartyRef]] = []
        for item in fresh:
            batch.append((item.body, by))
            batch.extend(after.get(item.digest, ()))
            batch.extend((overlap, by) for overlap in found.get(item.digest, ()))

        def write_index(conn: Connection, _indexes: Sequence[int]) -> None:
            for row in index_rows:
                write_record_set(conn, row)

        self.ledger.append_many(batch, alongside=write_index if index_rows else None)
        for item in fresh:  # after the append: an earlier asset may be in this very batch
            for overlap in found.get(item.digest, ()):
                warnings.warn(self._overlap_warning(item.body.name, overlap), stacklevel=4)

    def _ancestors(self, parents: Sequence[Digest]) -> set[str]:
        """The assets a new one declares it derives from, and everything upstream of them:
        sharing records with those is what a derived asset (a cohort of a dataset) does,
        and lineage already credits them, so it is not flagged as a copy."""
        found = {str(parent) for parent in parents}
        for parent in parents:
            if self.asset(parent) is not None:
                found.update(node.id for node in self.lineage(parent, "upstream").nodes)
        return found

    def _overlap_warning(self, name: str, overlap: OverlapDetected) -> OverlapWarning:
        with self.ledger.read() as conn:
            first = queries.asset_record(conn, overlap.earlier)
            assert first is not None, "matched against an asset that is not registered"
            registrant = queries.party_names(conn, [str(first.registered_by)]).get(
                str(first.registered_by), str(first.registered_by)
            )
        how = "near-duplicates of records" if overlap.match == "near" else "copies of records"
        return OverlapWarning(
            f"{overlap.records:,} of {overlap.of:,} records ({float(overlap.shared):.1%}) of "
            f"{name!r} ({overlap.asset}) are {how} in {first.name!r} ({overlap.earlier}), "
            f"registered first by {registrant} ({first.registered_by}): they are credited to "
            "it, and `overlap.detected` records so",
            asset=str(overlap.asset),
            earlier=str(overlap.earlier),
            registrant=str(first.registered_by),
            records=overlap.records,
            of=overlap.of,
        )

    def overlaps(self, asset: AssetOrName | None = None) -> list[OverlapRecord]:
        """Every `overlap.detected` (those where `asset` is the copy or the original, when
        given), oldest first."""
        with self.ledger.read() as conn:
            wanted = None if asset is None else [str(_resolve_asset(conn, asset))]
            return queries.overlap_records(conn, wanted)

    def record_set(self, asset: AssetOrName) -> RecordSetRow | None:
        """The record index's row of `asset` (its order-independent `set_root`, record
        count, numeric fields and tolerance), or None when it is not indexed."""
        with self.ledger.read() as conn:
            return record_set(conn, str(_resolve_asset(conn, asset)))

    def register_data(
        self,
        data: Any,
        *,
        name: str,
        by: PartyId,
        description: str | None = None,
        license: str | None = None,
        creators: Iterable[str | PartyId] = (),
        derived_from: Sequence[AssetRef] = (),
        url: str | None = None,
        asset_kind: str = "dataset",
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> Digest:
        """A dataset or corpus from a file, a folder, bytes, or a table (pandas, polars,
        Arrow, numpy, (X, y)), with Croissant metadata: licence (SPDX id), creators, fields.

        A table's records are indexed, and records an earlier registered table already
        holds (exactly, in any order, or as near-duplicates within `tolerance`: see
        `quotepart.provenance.overlap`) are flagged: an `OverlapWarning`, and an
        `overlap.detected` entry naming the earlier asset, in the same transaction.

        Raises:
            InputError: the data cannot be read, or the tolerance is outside its range
                (nothing is written).
            AlreadyRegisteredError: another party registered the very same content.
        """
        return self.register_described(
            describe_data(
                data,
                name=name,
                asset_kind=asset_kind,
                description=description,
                license=license,
                creators=creators,
                derived_from=digests(derived_from),
                url=url,
                tolerance=tolerance if self._index_records else None,
            ),
            by=by,
        )

    def register_cohort(
        self,
        data: Any,
        *,
        of: AssetRef,
        name: str,
        by: PartyId,
        selection: str | None = None,
        description: str | None = None,
        license: str | None = None,
    ) -> Digest:
        """A named subset of a dataset's records (one hospital's patients), derived from it."""
        extra = {"selection": selection} if selection else None
        return self.register_described(
            describe_data(
                data,
                name=name,
                asset_kind="cohort",
                description=description,
                license=license,
                derived_from=[asset_digest(of)],
                extra=extra,
            ),
            by=by,
        )

    def register_labelling_batch(
        self,
        annotations: Any,
        *,
        name: str,
        by: PartyId,
        annotator_column: str,
        annotators: Mapping[str, PartyId] | None = None,
        of: Sequence[AssetRef] = (),
        label_set: Iterable[str] = (),
        description: str | None = None,
        record_contributions: bool = True,
    ) -> Digest:
        """Annotations with their annotators; by default each annotator is recorded as a
        contributor (role `annotation`) with a share in proportion to their annotations."""
        batch = describe_labelling_batch(
            annotations,
            name=name,
            annotator_column=annotator_column,
            annotators=annotators,
            of=digests(of),
            label_set=label_set,
            description=description,
        )
        shares = batch.shares() if record_contributions else {}
        return self._register_contributed(batch.described, shares, role="annotation", by=by)

    def register_model(
        self,
        model: Any,
        *,
        name: str,
        by: PartyId,
        description: str | None = None,
        intended_use: str | None = None,
        limitations: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        training_data: Sequence[AssetRef] = (),
        license: str | None = None,
        derived_from: Sequence[AssetRef] = (),
    ) -> Digest:
        """A trained estimator (or a file/folder of weights) with model-card fields."""
        return self.register_described(
            describe_model(
                model,
                name=name,
                description=description,
                intended_use=intended_use,
                limitations=limitations,
                metrics=metrics,
                training_data=digests(training_data),
                license=license,
                derived_from=digests(derived_from),
            ),
            by=by,
        )

    def register_service(
        self,
        *,
        name: str,
        endpoint: str,
        model: AssetRef,
        by: PartyId,
        unit: str = "request",
        description: str | None = None,
    ) -> Digest:
        """An API endpoint backed by a model, so that its usage can be tied to the model."""
        model_digest = asset_digest(model)
        entry = self.asset_entry(model_digest)
        if entry is None or entry.asset_kind != "model":
            raise NotFoundError(
                f"service {name!r} names {model_digest}, which is not a registered model",
                hint="register the model first (register_model or track)",
            )
        return self.register_described(
            describe_service(
                name=name, endpoint=endpoint, model=model_digest, unit=unit, description=description
            ),
            by=by,
        )

    def register_compute_grant(
        self,
        *,
        name: str,
        grantor: PartyId,
        resources: Mapping[str, Any],
        provider: str | None = None,
        description: str | None = None,
        by: PartyId | None = None,
    ) -> Digest:
        """Resources a party gives to runs; `run.use(grant)` ties it to a run. The grantor
        is recorded as its contributor (role `compute`)."""
        described = describe_compute_grant(
            name=name,
            grantor=grantor,
            resources=resources,
            provider=provider,
            description=description,
        )
        return self._register_contributed(
            described, {grantor: Fraction(1)}, role="compute", by=by or grantor
        )

    # ------------------------------------------------------- contributions

    def contribute(
        self,
        asset: AssetOrName,
        shares: Mapping[PartyId, Fraction | str | int | float]
        | Mapping[str, Fraction | str | int | float],
        *,
        role: str,
        by: PartyRef,
        normalise: bool = False,
        partial: bool = False,
    ) -> list[int]:
        """Record who contributed `asset` and their declared shares, all in one entry batch.

        This is the one way contributions are recorded. The shares, with any recorded
        before, must add up to the whole (1); with `normalise=True` they are scaled to
        fill what remains; with `partial=True` they may leave part of the whole for
        contributors declared later. Zero shares are dropped.

        Parties and the asset may be given by name (see `resolve_party`, `resolve_asset`).

        Raises:
            InputError: a negative or non-numeric share, or shares that do not add up.
            NotFoundError: an unknown asset or party.
        """
        with self.ledger.read() as conn:
            digest = _resolve_asset(conn, asset)
            author = _resolve_party(conn, by)
            named = {_resolve_party(conn, p): v for p, v in shares.items()}
            record = queries.asset_record(conn, digest)
        parsed = {p: parse_ratio(v, what=f"the share of {p}") for p, v in named.items()}
        parsed = {party: share for party, share in parsed.items() if share > 0}
        if not parsed:
            raise InputError(
                f"no positive share for asset {digest}", hint="give at least one share above 0"
            )
        if record is not None and record.registered_by != author:
            # not the registrant: a contributor may only propose its own share
            if set(parsed) != {author}:
                raise RightsError(
                    f"{author} did not register {digest} (its registrant is "
                    f"{record.registered_by}), so it may only propose its own share, not name "
                    f"{', '.join(sorted(str(p) for p in set(parsed) - {author}))}",
                    rule="contribution",
                    hint="the registrant records the contributions to its asset",
                )
            partial = True
        remaining = 1 - self.declared_share_total(digest)
        total = sum(parsed.values(), Fraction(0))
        if normalise:
            parsed = {party: share * remaining / total for party, share in parsed.items()}
        elif partial and total > remaining:
            raise InputError(
                f"the declared shares of asset {digest} would add up to "
                f"{format_fraction(1 - remaining + total)}, more than the whole",
                hint="shares of one asset sum to at most 1",
            )
        elif not partial and total != remaining:
            raise InputError(
                f"the shares of asset {digest} add up to {format_fraction(total)}"
                + (
                    f" but {format_fraction(remaining)} remains to declare"
                    if remaining != 1
                    else ", not 1"
                ),
                hint="make them add up to the whole, or pass normalise=True to scale them",
            )
        if remaining <= 0:
            raise InputError(
                f"asset {digest} already has contributors declaring the whole of it",
                hint="shares of one asset add up to 1",
            )
        return self.ledger.append_many(
            [
                (ContributionRecorded(party, digest, role, share), author)
                for party, share in parsed.items()
            ]
        )

    def accept_contribution(self, proposal: int | str, *, by: PartyRef) -> int:
        """Accept a contribution its contributor proposed (by its leaf index or leaf hash):
        from then on its share counts. Only the asset's registrant may accept."""
        with self.ledger.read() as conn:
            found = rights_queries.proposals(conn)
        wanted = [
            p for p in found if proposal in (p.leaf_index, p.leaf_hash) and p.accepted_by is None
        ]
        if not wanted:
            raise NotFoundError(
                f"no contribution waiting for acceptance is {proposal!r}",
                hint="list them with Workspace.proposed_contributions() "
                "(`quotepart contribution proposals`)",
            )
        chosen = wanted[0]
        return self.ledger.append(
            ContributionAccepted(chosen.leaf_hash, chosen.party, chosen.asset), author=by
        )

    def proposed_contributions(
        self, asset: AssetOrName | None = None, *, waiting: bool = True
    ) -> list[rights_queries.Proposal]:
        """Contributions their contributors proposed (only those not yet accepted, unless
        `waiting=False`), oldest first."""
        with self.ledger.read() as conn:
            digest = None if asset is None else _resolve_asset(conn, asset)
            found = rights_queries.proposals(conn, digest)
        return [p for p in found if not waiting or p.accepted_by is None]

    # ------------------------------------------------------------- rights

    def grant_right(
        self,
        grantee: PartyRef,
        right: str,
        asset: AssetOrName,
        *,
        by: PartyRef,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Delegate `right` over `asset` (see `quotepart.log.kinds.RIGHTS`) to `grantee`,
        from `since` (now) until `until` (no end). `by` must hold the right."""
        party, digest = self._delegation(grantee, right, asset)
        start = since if since is not None else self.ledger.clock()
        return self.ledger.append(RightGranted(party, right, digest, start, until), author=by)

    def revoke_right(
        self, grantee: PartyRef, right: str, asset: AssetOrName, *, by: PartyRef
    ) -> int:
        """End `grantee`'s delegated `right` over `asset`; what it signed before stays valid."""
        party, digest = self._delegation(grantee, right, asset)
        return self.ledger.append(RightRevoked(party, right, digest), author=by)

    def _delegation(
        self, grantee: PartyRef, right: str, asset: AssetOrName
    ) -> tuple[PartyId, Digest]:
        """The grantee and asset of a delegation, resolved; an unknown right refused."""
        if right not in RIGHTS:
            raise InputError(
                f"unknown right {right!r}", hint=f"rights: {', '.join(sorted(RIGHTS))}"
            )
        with self.ledger.read() as conn:
            return _resolve_party(conn, grantee), _resolve_asset(conn, asset)

    def delegations(
        self, asset: AssetOrName | None = None, *, active: bool = False
    ) -> list[rights_queries.Delegation]:
        """Every delegation (of `asset`, when given; only unrevoked ones if `active`)."""
        with self.ledger.read() as conn:
            digest = None if asset is None else _resolve_asset(conn, asset)
            found = rights_queries.delegations(conn, digest)
        return [d for d in found if d.active or not active]

    def declared_share_total(self, asset: AssetOrName) -> Fraction:
        """The shares declared so far for `asset` (1 once its contributors are complete).

        Raises:
            NotFoundError: `asset` is not registered (an unknown asset has no shares to sum).
        """
        with self.ledger.read() as conn:
            return queries.declared_share_total(conn, _resolve_asset(conn, asset))

    def contributions(self) -> list[ContributionRecord]:
        """Every recorded contribution, oldest first."""
        with self.ledger.read() as conn:
            return queries.contribution_records(conn)

    # -------------------------------------------------------------- reading

    def entry_at(self, leaf_index: int) -> SignedEntry:
        return self.ledger.entry_at(leaf_index)

    def asset_entry(self, asset: AssetRef) -> AssetRegistered | None:
        """The full registration of an asset (metadata included), or None."""
        with self.ledger.read() as conn:
            leaf = queries.asset_leaf(conn, asset_digest(asset))
            return None if leaf is None else entry_queries.read_body(conn, leaf, AssetRegistered)

    def runs(self) -> list[RunRecorded]:
        """Every recorded run, oldest first."""
        with self.ledger.read() as conn:
            return entry_queries.read_bodies(conn, queries.run_leaves(conn), RunRecorded)

    def run_entry(self, run_id: str) -> RunRecorded:
        with self.ledger.read() as conn:
            return entry_queries.read_body(conn, queries.run_leaf(conn, run_id), RunRecorded)

    def lineage(
        self,
        node: AssetRef | str,
        direction: Direction = "upstream",
        *,
        max_depth: int | None = None,
    ) -> lineage_queries.Lineage:
        reference = node if isinstance(node, str) else str(asset_digest(node))
        with self.ledger.read() as conn:
            return lineage_queries.lineage(
                conn, reference, direction, max_depth=max_depth, index=self.lineage_index
            )

    def contributions_feeding(
        self, node: AssetRef | str
    ) -> list[lineage_queries.FeedingContribution]:
        reference = node if isinstance(node, str) else str(asset_digest(node))
        with self.ledger.read() as conn:
            return lineage_queries.contributions_feeding(conn, reference, index=self.lineage_index)

    def models_using(self, asset: AssetRef | str) -> list[lineage_queries.LineageNode]:
        reference = asset if isinstance(asset, str) else str(asset_digest(asset))
        with self.ledger.read() as conn:
            return lineage_queries.models_using(conn, reference, index=self.lineage_index)

    def prove_record(self, asset: AssetRef, data: Any, index: int) -> MemberProof:
        """Prove that record `index` of `data` is in `asset` (a record set or folder).

        Raises:
            NotFoundError: the asset is not registered.
            InputError: `data` is not the content the asset was registered from.
        """
        digest = asset_digest(asset)
        entry = self.asset_entry(digest)
        if entry is None:
            raise NotFoundError(f"unknown asset {digest}", hint="register the asset first")
        if entry.scheme not in ("merkle-records", "merkle-files"):
            raise InputError(
                f"asset {digest} is a single blob ({entry.scheme}), not a set of records",
                hint="record proofs exist for tables, record sets and folders",
            )
        described = describe_data(
            data, name=entry.name, asset_kind=entry.asset_kind, tolerance=None
        )
        if described.digest != digest or described.members is None:
            raise InputError(
                f"the data given is not the content of asset {digest} (its digest is {described.digest})",
                hint="pass exactly the table, file or folder that was registered",
            )
        proof = prove_record_packed(described.members, index)
        proof.verify(digest)
        return proof

    # ---------------------------------------------------------------- runs

    def _record_run(self, body: RunRecorded) -> int:
        return self.ledger.append(body, author=body.operator)

    def run(
        self,
        name: str,
        *,
        operator: PartyId,
        parameters: Mapping[str, Any] | None = None,
        code_folder: str | Path | None = None,
    ) -> Run:
        """`with ws.run("train", operator=lab) as run: run.use(...); run.produce(...)`."""
        return Run(
            name,
            operator=operator,
            record=self._record_run,
            clock=self.ledger.clock,
            parameters=parameters,
            code_folder=code_folder,
        )

    def track(
        self,
        estimator: Any,
        *,
        operator: PartyId,
        name: str | None = None,
        uses: Sequence[AssetRef] = (),
        intended_use: str | None = None,
        limitations: str | None = None,
        evaluate_on: tuple[Any, Any] | None = None,
        license: str | None = None,
    ) -> TrackedEstimator:
        """Wrap a scikit-learn estimator or Pipeline so that `fit` records itself (see
        `TrackedEstimator`)."""
        from quotepart.provenance.sklearn import TrackedEstimator

        return TrackedEstimator(
            self,
            estimator,
            operator=operator,
            name=name,
            uses=uses,
            intended_use=intended_use,
            limitations=limitations,
            evaluate_on=evaluate_on,
            license=license,
        )

    def step(
        self, *, operator: PartyId, name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a pipeline function so each call is a recorded run.

        Arguments that are assets (digests) or registered tables become inputs; the
        return value becomes the output: an asset digest as is, a table, file or folder
        registered as a dataset named after the function.
        """

        def decorate(function: Callable[P, R]) -> Callable[P, R]:
            run_name = name or function.__name__
            signature = inspect.signature(function)

            @functools.wraps(function)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                bound = signature.bind(*args, **kwargs)
                with self.run(run_name, operator=operator) as run:
                    for argument, value in bound.arguments.items():
                        input_digest = self._as_input(value, f"{argument} of {run_name}", operator)
                        if input_digest is not None:
                            run.use(input_digest)
                        elif isinstance(value, int | float | str | bool) and not isinstance(
                            value, os.PathLike
                        ):
                            run.log_parameters(**{argument: value})
                    result = function(*args, **kwargs)
                    run.produce(self._as_output(result, f"output of {run_name}", operator))
                wrapper.last_run = run  # type: ignore[attr-defined]
                return result

            return wrapper

        return decorate

    def _as_input(self, value: Any, name: str, operator: PartyId) -> Digest | None:
        if isinstance(value, Digest):
            return value
        if _is_table(value):
            try:
                return self.register_data(value, name=name, by=operator)
            except AlreadyRegisteredError as taken:  # another party's data: used, as it may be
                return Digest.parse(taken.asset)
        return None

    def _as_output(self, value: Any, name: str, operator: PartyId) -> Digest:
        if isinstance(value, Digest):
            return value
        if _is_table(value) or isinstance(value, Path):
            return self.register_data(value, name=name, by=operator)
        if hasattr(value, "get_params"):
            return self.register_model(value, name=name, by=operator)
        raise InputError(
            f"{name} is a {type(value).__name__}, which quotepart cannot register as an asset",
            hint="return a digest, a table, a Path, or a fitted estimator",
        )


def _indexed(row: RecordSetRow) -> IndexedSet:
    return IndexedSet.from_parts(
        row.asset, row.set_root, row.records, row.fields, float(row.tolerance), row.parts
    )


def _payout_secret(reference: str) -> PayoutSecret:
    """A new secret for a checked reference, kept in its canonical form (IBAN or E.164)."""
    if not isinstance(reference, str):
        raise InputError(f"a payout reference must be a string, got {type(reference).__name__}")
    _, account = check_payout_reference(reference)
    return PayoutSecret.new(account)


def _is_table(value: Any) -> bool:
    if type(value).__module__.split(".")[0] not in {"pandas", "polars", "pyarrow", "numpy"}:
        return False
    try:
        columns_of(value)
    except InputError:
        return False
    return True
