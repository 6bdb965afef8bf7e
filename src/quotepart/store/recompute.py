"""The log refuses an allocation that does not follow from the log.

An `allocation.recorded` is appended only if running the allocation again, on the facts
the log holds at that position, gives exactly its amounts, its inputs and its notes. The
same check runs in verify's replay, so a forged allocation written behind quotepart's
back is named there too. The facts are found by the same query `share` uses
(`fact_leaves`) and decoded from the signed entries themselves; amounts are never read
from a projection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quotepart.allocation import SharingFacts, allocate
from quotepart.errors import RightsError
from quotepart.log.kinds import AllocationRecorded
from quotepart.store.queries.sharing import fact_leaves

if TYPE_CHECKING:
    from quotepart.store.projections._writer import ProjectionWriter


def check_allocation(writer: ProjectionWriter, body: AllocationRecorded) -> None:
    """Raise RightsError (rule: recompute) unless `body` is the allocation the log gives."""
    writer.flush()
    leaves = fact_leaves(writer.conn, body.revenue)
    entries = writer.entries_at(leaves)
    allocation = allocate(SharingFacts.from_entries(entries, body.revenue))
    differences: list[str] = []
    if (allocation.currency, allocation.total_minor) != (body.currency, body.total_minor):
        differences.append(
            f"it shares {body.total_minor} {body.currency}, the revenue "
            f"{allocation.total_minor} {allocation.currency}"
        )
    if allocation.amounts != body.amounts:
        given = {str(p): a for p, a in body.amounts.items()}
        computed = {str(p): a for p, a in allocation.amounts.items()}
        differing = sorted(p for p in {*given, *computed} if given.get(p) != computed.get(p))
        first = differing[0]
        differences.append(
            f"{len(differing)} parties' amounts differ (first: {first} is given "
            f"{given.get(first, 0)} where the log gives {computed.get(first, 0)})"
        )
    if sorted(set(allocation.inputs)) != sorted(set(body.inputs)):
        differences.append("it names other input entries than the log gives")
    if sorted(set(allocation.notes)) != sorted(set(body.notes)):
        differences.append("its notes differ")
    if differences:
        raise RightsError(
            f"`allocation.recorded` of {body.revenue} does not follow from the log: "
            + "; ".join(differences),
            rule="recompute",
            hint="an allocation is computed, not stated: record it with Workspace.share "
            "(`quotepart share`), which recomputes it from the log",
        )
