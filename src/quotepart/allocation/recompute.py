"""Recompute a recorded allocation from the entries it names, and check it gives the recorded amounts.

Below the store: the store can call it when an allocation is appended and when verify replays
the log; statements, reports and the sharing service call it before they show an amount.
"""

from __future__ import annotations

from quotepart.allocation.engine import Allocation, allocate
from quotepart.allocation.facts import SharingFacts
from quotepart.errors import VerificationError
from quotepart.log import SignedEntry
from quotepart.log.kinds import AllocationRecorded

__all__ = ["recompute"]


def recompute(allocation_entry: SignedEntry, inputs: list[tuple[int, SignedEntry]]) -> Allocation:
    """Run an allocation again on the entries it names; raise unless it gives the recorded amounts."""
    body = allocation_entry.body()
    if not isinstance(body, AllocationRecorded):
        raise VerificationError(f"entry of kind {allocation_entry.kind} is not an allocation")
    held = {entry.leaf_hash.hex() for _, entry in inputs}
    named = set(body.inputs)
    if held != named:
        missing, extra = sorted(named - held), sorted(held - named)
        raise VerificationError(
            f"the allocation of {body.revenue} names {len(named)} inputs; "
            f"{len(missing)} are missing and {len(extra)} are not named"
            + (f" (first missing: {missing[0]})" if missing else ""),
            hint="the statement file is incomplete or was altered",
        )
    allocation = allocate(SharingFacts.from_entries(inputs, body.revenue))
    if allocation.amounts != body.amounts or allocation.currency != body.currency:
        differing = sorted(
            str(p)
            for p in set(allocation.amounts) | set(body.amounts)
            if allocation.amounts.get(p) != body.amounts.get(p)
        )
        raise VerificationError(
            f"recomputing the allocation of {body.revenue} gives different amounts "
            f"(first differing party: {differing[0] if differing else 'currency'})",
            hint="the recorded allocation does not follow from its inputs",
        )
    return allocation
