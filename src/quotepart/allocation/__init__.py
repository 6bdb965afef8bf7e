"""The pure, exact allocation engine: one revenue split upstream through the lineage.

It sits below `quotepart.store`, so the store can recompute an allocation when it is
appended and when verify replays the log. It reads signed entries only: no database.
"""

from quotepart.allocation.engine import (
    ADJUSTMENT_KINDS,
    Adjustment,
    Allocation,
    Hop,
    Line,
    SplitKey,
    allocate,
)
from quotepart.allocation.facts import INPUT_KINDS, Fact, SharingFacts
from quotepart.allocation.recompute import recompute

__all__ = [
    "ADJUSTMENT_KINDS",
    "INPUT_KINDS",
    "Adjustment",
    "Allocation",
    "Fact",
    "Hop",
    "Line",
    "SharingFacts",
    "SplitKey",
    "allocate",
    "recompute",
]
