"""`quotepart usage budget|release`: differentially private usage statistics.

`budget` sets the ε one month of a service's usage may spend; `release` publishes one
OpenDP aggregate of a month of a meter (daily-count, daily-sum, consumer-histogram)
and records the ε it spent. The released values go to stdout; see docs/privacy.md.
"""

from __future__ import annotations

from pathlib import Path

import click

from quotepart.cli._base import emit_json, json_option, load_workspace, workspace_options

QUERY_CHOICES = ("daily-count", "daily-sum", "consumer-histogram")  # metering.privacy.QUERIES


@click.command("budget")
@click.argument("service")
@click.argument("epsilon")
@click.option("--by", default=None, help="Signing party (default: the service's operator).")
@workspace_options
@json_option
def usage_budget(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    service: str,
    epsilon: str,
    by: str | None,
) -> None:
    """Set SERVICE's privacy budget: the EPSILON all releases about one month may spend."""
    with load_workspace(workspace_dir, database_url) as ws:
        index = ws.set_privacy_budget(service, epsilon, by=by)
    if as_json:
        emit_json({"service": service, "epsilon": epsilon, "entry": index})
    else:
        click.echo(f"privacy budget of {service}: ε = {epsilon} per month (entry {index})")


@click.command("release")
@click.argument("service")
@click.argument("meter")
@click.option("--period", required=True, help="The month released, e.g. 2026-03.")
@click.option("--query", required=True, type=click.Choice(QUERY_CHOICES), help="What to release.")
@click.option("--epsilon", required=True, help="The ε this release spends, e.g. 0.5.")
@click.option(
    "--bound",
    default=None,
    help="Per consumer and day: events counted (daily-count, default 10) or the summed "
    "value kept (daily-sum, required).",
)
@click.option(
    "--days",
    default=None,
    help="daily-count, daily-sum: the most days of one consumer counted (its earliest; "
    "default: every day of the month). Fewer days, less noise.",
)
@click.option("--edges", default=None, help="consumer-histogram bucket edges, e.g. 10,100,1000.")
@click.option("--by", default=None, help="Signing party (default: the service's operator).")
@workspace_options
@json_option
def usage_release(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    service: str,
    meter: str,
    period: str,
    query: str,
    epsilon: str,
    bound: str | None,
    days: str | None,
    edges: str | None,
    by: str | None,
) -> None:
    """Release a differentially private aggregate of METER's usage of SERVICE in a month."""
    cuts = None if edges is None else [edge.strip() for edge in edges.split(",")]
    with load_workspace(workspace_dir, database_url) as ws:
        result = ws.release_usage_statistics(
            service,
            meter,
            period,
            query=query,
            epsilon=epsilon,
            by=by,
            bound=bound,
            days=days,
            edges=cuts,
        )
    body = result.body
    if as_json:
        emit_json(
            {
                "entry": result.leaf_index,
                "query": body.query,
                "period": str(body.period),
                "meter": body.meter,
                "mechanism": body.mechanism,
                "epsilon": body.epsilon,
                "values": [list(pair) for pair in body.values],
            }
        )
        return
    click.echo(
        f"# {body.query} of {body.meter}, {body.period}: ε = {body.epsilon}, "
        f"{body.mechanism} (entry {result.leaf_index})"
    )
    for label, value in body.values:
        click.echo(f"{label}\t{value}")


__all__ = ["usage_budget", "usage_release"]
