"""What a valuation returns: values with honest error bars and the budget it took."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ValuationResult:
    """Values of players to a utility, and everything needed to trust or recompute them.

    `stderr` is the standard error of each value (0.0 for exact methods); `evaluations`
    counts distinct coalitions on which the utility was evaluated; `converged` says
    whether the stopping rule was met before the budget ran out.
    """

    values: dict[Hashable, float]
    stderr: dict[Hashable, float]
    evaluations: int
    converged: bool
    method: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def ranking(self) -> list[Hashable]:
        """Players from most to least valuable."""
        return sorted(self.values, key=lambda player: self.values[player], reverse=True)

    def total(self) -> float:
        return float(sum(self.values.values()))
