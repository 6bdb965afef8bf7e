"""Consumers' receipts: each of a consumer's billed events, proved, and checked offline.

`build_receipt` packs, for one consumer (its pseudonyms under every key epoch) and one
bill, a self-contained file (docs/receipts.md):

* each of the consumer's events in the bill's batches: its stored bytes and its RFC 9162
  inclusion proof in its batch's root;
* the consumer's leaf in the bill's consumers tree (`quotepart.metering.billing`) and its
  inclusion proof in `consumers_root`;
* the entries it rests on — the bill, the batches holding those events, the meters and
  tariffs the bill names, the registrations of their signers — each with its inclusion
  proof in the log's latest signed checkpoint, and the log's verifier key;
* the leaf hashes of every batch the bill counted, whose digest the bill signs.

`verify_receipt` checks all of it with nothing but the file, and recomputes the
consumer's quantity of each meter from its events: it must equal what the bill commits
to. What the file cannot prove alone: that the log holds no other event of the consumer
that the operator left out of both the receipt and the bill (in the consumer's favour),
nor that an event in it is one the consumer really sent: the consumer recognises its own
events by their ids, sources and times.

The consumer's own identifier never enters the file: only its pseudonyms do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

from quotepart.errors import (
    InputError,
    MalformedEntryError,
    NotFoundError,
    QuotepartError,
    VerificationError,
)
from quotepart.ids import Digest, PartyId, Period
from quotepart.log import (
    Checkpoint,
    NodeId,
    NoteVerifier,
    SignedEntry,
    VerifyKey,
    leaf_hash,
    parse_entry,
    verify_inclusion,
)
from quotepart.log.canonical import canonicalize
from quotepart.log.kinds import MeterDefined, PartyRegistered, TariffSet, UsageBatch, UsageBilled
from quotepart.log.merkle import assemble, inclusion_path, inclusion_plan, plan_nodes, tree_levels
from quotepart.metering.billing import (
    ConsumerTree,
    batches_digest,
    consumer_leaf,
    consumer_lines,
    fold,
    period_start,
    tree_bytes,
    tree_path,
    write_tree,
)
from quotepart.metering.cloudevents import EventError
from quotepart.metering.ingest import PSEUDONYM_PREFIX, Meter, _value, load_meters
from quotepart.store.ledger import Ledger
from quotepart.store.queries.entries import read_entries
from quotepart.store.queries.provenance import party_leaves
from quotepart.store.usage_events import (
    BatchRow,
    BillRow,
    batch_leaf_hashes,
    bill_rows,
    consumer_events,
    consumer_totals,
    decimal_text,
    entry_leaf_hashes,
    period_batches,
)

FORMAT = "quotepart-receipt/1"
_ALTERED = "the receipt file is incomplete or was altered; ask the operator for a new one"


def _the_bill(conn: Connection, service: Digest, period: Period) -> BillRow:
    found = [
        row
        for row in bill_rows(conn, str(service), period.first_month, period.last_month)
        if (row.first_month, row.last_month) == (period.first_month, period.last_month)
    ]
    if not found:
        raise NotFoundError(
            f"{service} has no bill for {period}",
            hint="a receipt proves a bill: bill the period first (quotepart usage bill), "
            "or ask for the period the bill covers",
        )
    return found[0]


def billed_services(conn: Connection, period: Period) -> list[Digest]:
    """The services with a bill for exactly `period`."""
    return [
        Digest.parse(row.service)
        for row in bill_rows(conn, None, period.first_month, period.last_month)
        if (row.first_month, row.last_month) == (period.first_month, period.last_month)
    ]


def consumer_has_usage(
    conn: Connection, service: Digest, period: Period, pseudonyms: Sequence[bytes]
) -> bool:
    bill = _the_bill(conn, service, period)
    batches = [
        b.leaf_index
        for b in period_batches(
            conn, str(service), period.first_month, period.last_month, before=bill.leaf_index
        )
    ]
    return any(consumer_events(conn, p, batches) for p in pseudonyms)


def build_receipt(
    ledger: Ledger, service: Digest, period: Period, pseudonyms: Sequence[bytes]
) -> dict[str, Any]:
    """The receipt of the consumer with these pseudonyms (one per key epoch) for the bill
    of `service` in `period`, proved against the log's latest checkpoint.

    Raises:
        NotFoundError: no such bill, or the consumer has no usage in it.
        VerificationError: the stored usage no longer gives the bill's consumers root
            (run `quotepart verify`).
    """
    store = ledger.store
    note = store.latest_checkpoint()
    if note is None:  # pragma: no cover - a bill implies a checkpoint
        raise InputError("the log has no checkpoint yet", hint="append an entry first")
    size = Checkpoint.open(note, ledger.verifier).tree_size
    with ledger.read() as conn:
        bill_row = _the_bill(conn, service, period)
        [(_, bill_entry)] = read_entries(conn, [bill_row.leaf_index])
        bill = bill_entry.body_as(UsageBilled)
        batches = period_batches(
            conn, str(service), period.first_month, period.last_month, before=bill_row.leaf_index
        )
        batch_leaf_set = [b.leaf_index for b in batches]
        events_of = {p: consumer_events(conn, p, batch_leaf_set) for p in pseudonyms}
        events = sorted(e for found in events_of.values() for e in found)
        meters = {meter.name: meter for meter in load_meters(conn, service)}
        tree = _consumers_tree(ledger, conn, bill_row.leaf_index, bill, meters, batches)
        meter_of = {b.leaf_index: b.meter for b in batches}
        mine: list[tuple[int, bytes, dict[str, str]]] = []
        for pseudonym in pseudonyms:
            index = tree.index_of(pseudonym)
            if index is None:
                continue
            usage = _own_usage(
                conn, service, period, meters, pseudonym, events_of[pseudonym], meter_of
            )
            leaf = consumer_leaf(pseudonym, usage)
            if hashlib.sha256(b"\x00" + leaf).digest() != tree.node(0, index):
                raise VerificationError(
                    f"the stored usage of a consumer of {service} in {period} no longer "
                    "gives its billed line",
                    hint="the database was changed after billing: run `quotepart verify`",
                )
            mine.append((index, leaf, usage))
        mine.sort()
        if not mine and not events:
            raise NotFoundError(
                f"the consumer you named has no usage of {service} billed in {period}",
                hint="check the identifier (it is pseudonymised with this workspace's "
                "usage keys, every epoch) and the period",
            )
        touched = sorted({batch for batch, _, _, _, _ in events})
        roots = {b.leaf_index: (b.root, b.events) for b in batches}
        event_parts = []
        for batch in touched:
            batch_root, batch_size = roots[batch]
            positions = [(e[1], e[2], e[3]) for e in events if e[0] == batch]
            batch_proofs = _event_proofs(ledger, conn, batch, batch_root, batch_size, positions)
            for (position, _, data), proof in zip(positions, batch_proofs, strict=True):
                event_parts.append(
                    {
                        "batch": batch,
                        "position": position,
                        "event": base64.b64encode(data).decode(),
                        "proof": [h.hex() for h in proof],
                    }
                )
        wanted = {bill_row.leaf_index, *touched}
        wanted.update(meters[line.meter].leaf_index for line in bill.lines)
        wanted.update(line.tariff for line in bill.lines)
        found = dict(read_entries(conn, sorted(wanted)))
        authors = {str(entry.author) for entry in found.values()}
        found.update(read_entries(conn, party_leaves(conn, authors)))
        hashes = entry_leaf_hashes(conn, [b.leaf_index for b in batches])
        proofs = _inclusion_proofs(ledger, conn, sorted(found), size)
    claimed: dict[str, str] = {}
    for _, _, usage in mine:
        for meter, quantity in usage.items():
            claimed[meter] = _combine(meters[meter].aggregation, claimed.get(meter), quantity)
    return {
        "format": FORMAT,
        "service": str(service),
        "period": str(period),
        "log": {"verifier_key": str(ledger.verifier), "checkpoint": note},
        "bill": bill_row.leaf_index,
        "claimed": dict(sorted(claimed.items())),
        "batches": [[b.leaf_index, hashes[b.leaf_index].hex()] for b in batches],
        "consumer": [
            {"index": index, "line": leaf.decode(), "proof": [h.hex() for h in tree.path(index)]}
            for index, leaf, _ in mine
        ],
        "events": event_parts,
        "entries": {
            str(index): base64.b64encode(found[index].canonical).decode() for index in sorted(found)
        },
        "proofs": {str(index): proof for index, proof in proofs.items()},
    }


def _consumers_tree(
    ledger: Ledger,
    conn: Connection,
    bill_leaf: int,
    bill: UsageBilled,
    meters: Mapping[str, Meter],
    batches: Sequence[BatchRow],
) -> ConsumerTree:
    """The bill's consumers' tree: from its cache file when that gives the bill's root,
    else recomputed from the stored usage (and kept for the next receipt).

    Raises:
        VerificationError: the stored usage no longer gives the bill's root.
    """
    path = tree_path(ledger.keys.root, bill_leaf, bill.consumers_root)
    tree = ConsumerTree.read(path)
    if tree is not None and tree.size == bill.consumers and tree.root.hex() == bill.consumers_root:
        return tree
    lines = consumer_lines(conn, bill.service, bill.period, meters, batches)
    if lines.root.hex() != bill.consumers_root or len(lines.leaves) != bill.consumers:
        raise VerificationError(
            f"the stored usage of {bill.service} in {bill.period} no longer gives the bill's "
            "consumers root",
            hint="the database was changed after billing: run `quotepart verify`",
        )
    data = tree_bytes(lines)
    write_tree(path, data)
    return ConsumerTree(data)


def _own_usage(
    conn: Connection,
    service: Digest,
    period: Period,
    meters: Mapping[str, Meter],
    pseudonym: bytes,
    events: Sequence[tuple[int, int, bytes, bytes, str | None]],
    meter_of: Mapping[int, str],
) -> dict[str, str]:
    """One consumer's bill line, from its own totals (sum, count, max) and events (unique)."""
    additive = sorted(name for name, m in meters.items() if m.aggregation != "unique_count")
    months = list(range(period.first_month, period.last_month + 1))
    figures: dict[str, list[Decimal]] = {}
    for meter, total in consumer_totals(conn, str(service), additive, months, pseudonym):
        figures.setdefault(meter, []).append(Decimal(total))
    usage = {
        meter: decimal_text(fold(meters[meter].aggregation, values))
        for meter, values in figures.items()
    }
    distinct: dict[str, set[str | None]] = {}
    for batch, _, _, _, value in events:
        meter = meter_of[batch]
        if meters[meter].aggregation == "unique_count":
            distinct.setdefault(meter, set()).add(value)
    usage.update({meter: str(len(values)) for meter, values in distinct.items()})
    return usage


CHUNK_LEVEL = 4
"""A batch's tree is kept from this level up (nodes over 16 events); a proof reads its
event's 16 neighbours' leaf hashes from the database and the rest from the kept levels."""


def _batch_tree_path(folder: Path, batch_leaf: int, root: bytes) -> Path:
    return folder / "cache" / "batch-trees" / f"{batch_leaf}-{root.hex()[:16]}.bin"


def _widths(size: int) -> list[int]:
    widths = [size]
    while widths[-1] > 1:
        widths.append((widths[-1] + 1) // 2)
    return widths


def _event_proofs(
    ledger: Ledger,
    conn: Connection,
    batch: int,
    root: bytes,
    size: int,
    positions: Sequence[tuple[int, bytes, bytes]],
) -> list[list[bytes]]:
    """The inclusion proof of each (position, leaf hash, bytes) in the batch's root.

    The batch's upper levels come from a cache file (written by the first receipt that
    needs them: reading a batch's 10,000 leaves costs more than the rest of a receipt);
    every proof is checked against the signed root before it is handed out, and a cache
    that gives a wrong one is rebuilt from the events.

    Raises:
        VerificationError: the stored events no longer give the batch's root.
    """
    widths = _widths(size)
    if len(widths) <= CHUNK_LEVEL + 1:  # a small batch: its whole tree, from the events
        return _checked(tree_levels(batch_leaf_hashes(conn, batch)), positions, root, size)
    path = _batch_tree_path(ledger.keys.root, batch, root)
    upper = _read_upper(path, widths, root)
    if upper is not None:
        proofs = []
        for position, _, _ in positions:
            start = position >> CHUNK_LEVEL << CHUNK_LEVEL
            chunk = batch_leaf_hashes(conn, batch, start, start + (1 << CHUNK_LEVEL))
            proof = inclusion_path(tree_levels(chunk), position - start)
            index = position >> CHUNK_LEVEL
            for level in upper[:-1]:
                sibling = index ^ 1
                if sibling < len(level):
                    proof.append(level[sibling])
                index >>= 1
            proofs.append(proof)
        try:
            for (position, leaf, _), proof in zip(positions, proofs, strict=True):
                verify_inclusion(leaf, position, size, proof, root)
            return proofs
        except VerificationError:
            pass  # a damaged cache: rebuilt below
    levels = tree_levels(batch_leaf_hashes(conn, batch))
    proofs = _checked(levels, positions, root, size)
    data = b"".join(node for level in levels[CHUNK_LEVEL:] for node in level)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError:
        temporary.unlink(missing_ok=True)
    return proofs


def _read_upper(path: Path, widths: list[int], root: bytes) -> list[list[bytes]] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    upper, offset = [], 0
    for width in widths[CHUNK_LEVEL:]:
        upper.append([data[offset + 32 * i : offset + 32 * i + 32] for i in range(width)])
        offset += 32 * width
    if offset != len(data) or upper[-1] != [root]:
        return None
    return upper


def _checked(
    levels: list[list[bytes]], positions: Sequence[tuple[int, bytes, bytes]], root: bytes, size: int
) -> list[list[bytes]]:
    if len(levels[0]) != size or levels[-1][0] != root:
        raise VerificationError(
            f"the stored events of a batch of {size:,} no longer give its signed root",
            hint="the database was changed: run `quotepart verify`",
        )
    proofs = []
    for position, leaf, _ in positions:
        if levels[0][position] != leaf:  # pragma: no cover - the root check guards it
            raise VerificationError(f"event {position} of a batch moved")
        proofs.append(inclusion_path(levels, position))
    return proofs


def prepare_receipts(ledger: Ledger, service: Digest, period: Period) -> int:
    """Keep the trees every receipt of the bill of `service` in `period` reads (the
    consumers' tree and each batch's upper levels), so that no receipt pays for reading
    a whole batch; returns the number of batches prepared. Optional: receipts build what
    they miss themselves.

    Raises:
        NotFoundError: no such bill. VerificationError: stored usage that no longer gives
            the signed roots.
    """
    with ledger.read() as conn:
        bill_row = _the_bill(conn, service, period)
        [(_, bill_entry)] = read_entries(conn, [bill_row.leaf_index])
        bill = bill_entry.body_as(UsageBilled)
        batches = period_batches(
            conn, str(service), period.first_month, period.last_month, before=bill_row.leaf_index
        )
        meters = {meter.name: meter for meter in load_meters(conn, service)}
        _consumers_tree(ledger, conn, bill_row.leaf_index, bill, meters, batches)
        for batch in batches:
            _event_proofs(ledger, conn, batch.leaf_index, batch.root, batch.events, [])
    return len(batches)


def _combine(aggregation: str, before: str | None, quantity: str) -> str:
    """A consumer's quantities under several pseudonyms, folded (unique_count: added, an
    upper bound; the verifier recomputes it from the events)."""
    if before is None:
        return quantity
    if aggregation == "max":
        return decimal_text(max(Decimal(before), Decimal(quantity)))
    return decimal_text(Decimal(before) + Decimal(quantity))


def _inclusion_proofs(
    ledger: Ledger, conn: Connection, indexes: Sequence[int], size: int
) -> dict[int, list[str]]:
    """Inclusion proofs of many entries in the tree of `size`, with two reads in all."""
    plans = {index: inclusion_plan(index, size) for index in indexes}
    wanted: set[NodeId] = set()
    for plan in plans.values():
        wanted |= plan_nodes(plan)
    leaves = entry_leaf_hashes(conn, sorted(node.index for node in wanted if node.level == 0))
    nodes: dict[NodeId, bytes] = {NodeId(0, index): h for index, h in leaves.items()}
    nodes.update(ledger.store.interior_nodes(node for node in wanted if node.level > 0))
    return {index: [h.hex() for h in assemble(plan, nodes)] for index, plan in plans.items()}


# ------------------------------------------------------------------ checking


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a receipt proved: the consumer's recomputed quantity of each meter, and where."""

    service: Digest
    period: Period
    revenue: str
    quantities: dict[str, str]  # meter -> the consumer's quantity, recomputed from its events
    unit_prices: dict[str, str]  # meter -> the bill's unit price (currency below)
    currency: str
    events: int
    pseudonyms: int
    bill_index: int
    tree_size: int
    origin: str
    verifier_key: str


def _fail(message: str) -> VerificationError:
    return VerificationError(message, hint=_ALTERED)


def _blob(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)  # type: ignore[arg-type]
    except (ValueError, binascii.Error, TypeError) as exc:
        raise _fail(f"{what} is not base64") from exc


def _hashes(proof: object, what: str) -> list[bytes]:
    if not isinstance(proof, list) or len(proof) > 64:
        raise _fail(f"the proof of {what} is not a list of hashes")
    try:
        return [bytes.fromhex(h) for h in proof]
    except (TypeError, ValueError) as exc:
        raise _fail(f"the proof of {what} is not hex") from exc


def _included(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes, what: str
) -> None:
    try:
        verify_inclusion(leaf, index, size, proof, root)
    except VerificationError as exc:
        raise _fail(f"{what} is not proved: {exc}") from exc


def verify_receipt(
    document: Mapping[str, Any], *, trusted_key: str | None = None
) -> VerifiedReceipt:
    """Check a receipt file with nothing else: checkpoint, entries, signatures, proofs, and
    the consumer's quantities recomputed from its events.

    Raises:
        InputError: not a receipt file.
        VerificationError: a proof, signature, digest or quantity does not check out; the
            message says which.
    """
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise InputError(
            "not a quotepart receipt file"
            + (f" (format {document.get('format')!r})" if isinstance(document, Mapping) else ""),
            hint="write one with `quotepart usage receipt --consumer ID --period P`",
        )
    try:
        service = Digest.parse(document["service"])
        period = Period.parse(document["period"])
        key_text = document["log"]["verifier_key"]
        note = document["log"]["checkpoint"]
        bill_index = int(document["bill"])
        claimed = {str(m): str(q) for m, q in document["claimed"].items()}
        batch_list = [(int(i), bytes.fromhex(h)) for i, h in document["batches"]]
        consumer_parts = list(document["consumer"])
        event_parts = list(document["events"])
        raw_entries = dict(document["entries"])
        proofs = dict(document["proofs"])
    except (KeyError, TypeError, AttributeError, ValueError, InputError) as exc:
        raise _fail(f"the receipt lacks a part or has one of the wrong shape: {exc!r}") from exc
    if not isinstance(key_text, str) or not isinstance(note, str):
        raise _fail("the receipt's log part is not a key and a checkpoint")
    if trusted_key is not None and trusted_key.strip() != key_text.strip():
        raise VerificationError(
            "the receipt is signed for another log key than the one you trust",
            hint="compare the verifier key with the one the log operator publishes",
        )
    try:
        checkpoint = Checkpoint.open(note, NoteVerifier.parse(key_text))
    except (VerificationError, InputError) as exc:
        raise _fail(f"the receipt's checkpoint does not open with its key: {exc}") from exc
    entries: dict[int, SignedEntry] = {}
    for index_text, blob in raw_entries.items():
        if not (isinstance(index_text, str) and index_text.isdigit() and len(index_text) <= 19):
            raise _fail("the receipt's entries are not keyed by leaf index")
        index = int(index_text)
        data = _blob(blob, f"entry {index}")
        path = _hashes(proofs.get(index_text), f"entry {index}")
        _included(
            leaf_hash(data), index, checkpoint.tree_size, path, checkpoint.root_hash,
            f"entry {index} in the signed checkpoint",
        )  # fmt: skip
        try:
            entry = parse_entry(data)
        except MalformedEntryError as exc:
            raise _fail(f"entry {index} does not parse: {exc}") from exc
        if entry.origin not in (None, checkpoint.origin):
            raise _fail(f"entry {index} is meant for log {entry.origin!r}")
        entries[index] = entry
    keys: dict[PartyId, VerifyKey] = {}
    for entry in entries.values():
        body = entry.body()
        if isinstance(body, PartyRegistered):
            keys[body.party] = body.public_key
    for index, entry in entries.items():
        key = keys.get(entry.author)
        if key is None:
            raise _fail(f"entry {index} is signed by {entry.author}, not registered in the file")
        try:
            entry.verify(key)
        except QuotepartError as exc:
            raise _fail(f"entry {index}'s signature does not check: {exc}") from exc
    bill_entry = entries.get(bill_index)
    if bill_entry is None or bill_entry.kind != "usage.billed":
        raise _fail(f"entry {bill_index} is not the bill")
    bill = bill_entry.body_as(UsageBilled)
    if bill.service != service or str(bill.period) != str(period):
        raise _fail(f"the bill is of {bill.service} in {bill.period}, not {service} in {period}")
    # the batches the bill counted: their leaf hashes give the digest it signs
    indexes = [i for i, _ in batch_list]
    if (
        len(batch_list) != bill.batches
        or indexes != sorted(set(indexes))
        or (indexes and indexes[-1] >= bill_index)
        or batches_digest(h for _, h in batch_list) != bill.batches_digest
    ):
        raise _fail("the receipt's list of batches is not the one the bill signs")
    counted = dict(batch_list)
    meters: dict[str, Meter] = {}
    for index, entry in entries.items():
        if entry.kind == "meter.defined":
            body = entry.body_as(MeterDefined)
            if body.service == service:
                meters[body.name] = Meter(
                    body.service, body.name, body.event_type, body.aggregation,
                    body.value_path, body.group_by, body.consumer_path, index,
                )  # fmt: skip
    for line in bill.lines:
        tariff = entries.get(line.tariff)
        if tariff is None or tariff.kind != "tariff.set":
            raise _fail(f"the tariff of {line.meter} (entry {line.tariff}) is not in the file")
        body_t = tariff.body_as(TariffSet)
        if (body_t.service, body_t.meter, body_t.unit_price, body_t.currency) != (
            service, line.meter, line.unit_price, bill.currency,
        ):  # fmt: skip
            raise _fail(f"entry {line.tariff} is not the tariff the bill's {line.meter} names")
        if body_t.effective > period_start(period):
            raise _fail(
                f"the tariff of {line.meter} takes effect after {period} starts: it cannot "
                "be the one in force"
            )
    # the consumer's leaves in the bill's consumers tree
    if not consumer_parts:
        raise _fail("the receipt holds no consumer line: it proves nothing")
    root = bytes.fromhex(bill.consumers_root)
    stated: dict[tuple[str, str], str] = {}
    seen_leaves: set[int] = set()
    for part in consumer_parts:
        try:
            position, text, proof = int(part["index"]), str(part["line"]), part["proof"]
            line_doc = orjson.loads(text)
            pseudonym, usage = line_doc["consumer"], dict(line_doc["usage"])
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
            raise _fail(f"a consumer line does not read: {exc!r}") from exc
        data = text.encode()
        if canonicalize(line_doc) != data or not str(pseudonym).startswith(PSEUDONYM_PREFIX):
            raise _fail("a consumer line is not in its canonical form")
        if position in seen_leaves:
            raise _fail(f"consumer line {position} is given twice")
        seen_leaves.add(position)
        _included(
            leaf_hash(data), position, bill.consumers, _hashes(proof, "a line"), root,
            f"consumer line {position} in the bill's consumers root",
        )  # fmt: skip
        for meter, quantity in usage.items():
            stated[(pseudonym, meter)] = str(quantity)
    # the events, each in its batch, each batch in the bill and the log
    computed: dict[tuple[str, str], list[Any]] = {}
    values_by_meter: dict[str, set[str | None]] = {}
    numbers_by_meter: dict[str, list[Decimal]] = {}
    seen_events: set[tuple[int, int]] = set()
    for part in event_parts:
        try:
            batch_index, position = int(part["batch"]), int(part["position"])
            data = _blob(part["event"], f"event {part['position']} of batch {part['batch']}")
            proof = _hashes(part["proof"], "an event")
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(f"an event part does not read: {exc!r}") from exc
        where = f"event {position} of batch {batch_index}"
        if (batch_index, position) in seen_events:
            raise _fail(f"{where} is given twice")
        seen_events.add((batch_index, position))
        batch_entry = entries.get(batch_index)
        if batch_entry is None or batch_entry.kind != "usage.batch":
            raise _fail(f"{where}: its batch entry is not in the file")
        if counted.get(batch_index) != leaf_hash(batch_entry.canonical):
            raise _fail(f"{where}: its batch is not one the bill counted")
        batch = batch_entry.body_as(UsageBatch)
        if batch.service != service or not period.contains(batch.period):
            raise _fail(f"{where}: its batch is of {batch.service} in {batch.period}")
        _included(
            hashlib.sha256(b"\x00" + data).digest(), position, batch.events, proof,
            bytes.fromhex(batch.root), f"{where} in its batch's root",
        )  # fmt: skip
        meter = meters.get(batch.meter)
        if meter is None:
            raise _fail(f"{where}: the definition of meter {batch.meter} is not in the file")
        try:
            event = orjson.loads(data)
            value_text, number = _value(event, meter)
        except (orjson.JSONDecodeError, EventError) as exc:
            raise _fail(f"{where} does not read as a {meter.name} event: {exc}") from exc
        if not isinstance(event, dict) or event.get("type") != meter.event_type:
            raise _fail(f"{where} is not of the type meter {meter.name} counts")
        found: Any = event
        for member in meter.consumer_keys:
            found = found.get(member) if isinstance(found, dict) else None
        if not isinstance(found, str) or not any(p == found for p, m in stated if m == meter.name):
            raise _fail(f"{where} is not billed to the consumer lines in the receipt")
        bucket = computed.setdefault((found, meter.name), [0, Decimal(0), set()])
        bucket[0] += 1
        bucket[1] = (
            max(bucket[1], Decimal(number)) if meter.aggregation == "max" else bucket[1] + number
        )
        bucket[2].add(value_text)
        values_by_meter.setdefault(meter.name, set()).add(value_text)
        numbers_by_meter.setdefault(meter.name, []).append(Decimal(number))
    for (pseudonym, meter_name), quantity in sorted(stated.items()):
        meter = meters.get(meter_name)
        if meter is None:
            raise _fail(f"the definition of meter {meter_name} is not in the file")
        bucket = computed.get((pseudonym, meter_name), [0, Decimal(0), set()])
        if meter.aggregation == "count":
            mine = Decimal(bucket[0])
        elif meter.aggregation == "unique_count":
            mine = Decimal(len(bucket[2]))
        else:
            mine = bucket[1]
        if decimal_text(mine) != quantity:
            raise VerificationError(
                f"the bill commits to {quantity} {meter_name} for this consumer; its "
                f"{bucket[0]} receipted event(s) give {decimal_text(mine)}",
                hint="an event is missing from the receipt or the billed quantity is wrong: "
                "ask the operator for a new receipt, and dispute the bill if it persists",
            )
    quantities: dict[str, str] = {}
    for meter_name in sorted({m for _, m in stated}):
        aggregation = meters[meter_name].aggregation
        if aggregation == "count":
            total = Decimal(sum(b[0] for (_, m), b in computed.items() if m == meter_name))
        elif aggregation == "unique_count":
            total = Decimal(len(values_by_meter.get(meter_name, set())))
        elif aggregation == "max":
            total = max(numbers_by_meter.get(meter_name, [Decimal(0)]))
        else:
            total = sum(numbers_by_meter.get(meter_name, []), Decimal(0))
        quantities[meter_name] = decimal_text(total)
    expected_claim = {
        meter_name: quantities[meter_name]
        if meters[meter_name].aggregation != "unique_count"
        else claimed.get(meter_name, "")
        for meter_name in quantities
    }
    if claimed != expected_claim:
        raise _fail(f"the receipt claims {claimed}, its events give {quantities}")
    return VerifiedReceipt(
        service, period, str(bill.revenue), quantities,
        {line.meter: line.unit_price for line in bill.lines}, bill.currency,
        len(seen_events), len(seen_leaves), bill_index, checkpoint.tree_size,
        checkpoint.origin, key_text,
    )  # fmt: skip


__all__ = [
    "FORMAT",
    "VerifiedReceipt",
    "billed_services",
    "build_receipt",
    "consumer_has_usage",
    "prepare_receipts",
    "verify_receipt",
]
