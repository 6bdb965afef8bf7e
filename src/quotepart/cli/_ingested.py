"""What `usage ingest` and `usage consume` print about what they recorded."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from quotepart.cli._base import emit_json
from quotepart.metering import Ingested

SHOWN_PROBLEMS = 20


def report_ingested(
    result: Ingested,
    *,
    as_json: bool,
    reject_path: Path | None,
    summary: str,
    extra: Mapping[str, Any] | None = None,
    batches: Any = None,
    position: str = "",
) -> None:
    """The result as JSON, or its summary with the first rejected events on stderr; exits 1
    when any event was rejected."""
    if as_json:
        emit_json(
            {
                **(extra or {}),
                "recorded": result.recorded,
                "duplicates": result.duplicates,
                "late": result.late,
                "rejected": result.rejected,
                "batches": result.batches if batches is None else batches,
                "problems": [
                    {"position": problem.position, "reason": problem.reason}
                    for problem in result.problems
                ],
            }
        )
    else:
        click.echo(summary)
        for problem in result.problems[:SHOWN_PROBLEMS]:
            click.echo(f"  rejected {problem}{position}", err=True)
        if result.rejected > SHOWN_PROBLEMS:
            more = result.rejected - SHOWN_PROBLEMS
            where = f" (all in {reject_path})" if reject_path else " (--reject FILE keeps them)"
            click.echo(f"  … and {more:,} more{where}", err=True)
    if result.rejected:
        sys.exit(1)
