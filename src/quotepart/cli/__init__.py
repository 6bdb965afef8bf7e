"""The `quotepart` command line: parse, call the workspace, render.

Each command's module is imported only when that command runs (click's documented
LazyGroup pattern), and `quotepart --help` lists the commands from the short help kept
in `COMMANDS`, so it imports none of them: starting the CLI costs click, not the
workspace, its database layer or scikit-learn.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple

import click

from quotepart import __version__
from quotepart.cli._base import QuotepartGroup, pause_collector


class LazyCommand(NamedTuple):
    """Where a command lives ("module:attribute") and the short help `--help` lists for it.

    The short help is the first sentence of the command's docstring, which click would
    show; a test checks that the two agree.
    """

    target: str
    short_help: str


_CLI = "quotepart.cli."
COMMANDS: Mapping[str, LazyCommand] = {
    "asset": LazyCommand(
        _CLI + "provenance_commands:asset_group",
        "Register, list, show and claim assets; prove that a record is in one.",
    ),
    "consent": LazyCommand(
        _CLI + "sharing_commands:consent_group",
        "Grant or withdraw a contributor's consent to use an asset.",
    ),
    "contribute": LazyCommand(
        _CLI + "provenance_commands:contribute_command",
        "Record who contributed ASSET, with declared shares adding up to the whole.",
    ),
    "contribution": LazyCommand(
        _CLI + "rights_commands:contribution_group",
        "List the contributions their contributors proposed, and accept them as registrant.",
    ),
    "demo": LazyCommand(
        _CLI + "demo:demo_command",
        "A cooperative's model earns money; value, share, pay, report and verify it, end to end.",
    ),
    "export": LazyCommand(
        _CLI + "export_commands:export_group",
        "Write the log in the standards other tools read: W3C PROV, OpenLineage, Croissant.",
    ),
    "ingest": LazyCommand(
        _CLI + "export_commands:ingest_group",
        "Record the runs that other tools reported (OpenLineage events).",
    ),
    "init": LazyCommand(
        _CLI + "workspace_commands:init_command",
        "Create a workspace in DIRECTORY (default: the current folder).",
    ),
    "lineage": LazyCommand(
        _CLI + "provenance_commands:lineage_command",
        "Show the lineage of NODE: an asset digest, a run id, or an asset's exact name.",
    ),
    "log": LazyCommand(
        _CLI + "log_commands:log_group",
        "Read the signed Merkle log: checkpoints, keys, entries and RFC 9162 proofs.",
    ),
    "meter": LazyCommand(
        _CLI + "metering_commands:meter_group",
        "Declare how a service's CloudEvents are counted; list meters; rotate the pseudonym key.",
    ),
    "party": LazyCommand(
        _CLI + "provenance_commands:party_group",
        "Register and list parties (contributors, operators, consumers, auditors, coops).",
    ),
    "payout": LazyCommand(
        _CLI + "sharing_commands:payout_group",
        "Export owed balances to a payment rail (SEPA pain.001, mobile-money CSV).",
    ),
    "policy": LazyCommand(
        _CLI + "sharing_commands:policy_group",
        "Set how a model's or service's revenue is shared.",
    ),
    "rebuild": LazyCommand(
        _CLI + "workspace_commands:rebuild_command",
        "Drop the projections and replay the log into them.",
    ),
    "report": LazyCommand(
        _CLI + "report_commands:report_command",
        "Publish the fair value share report of SERVICE_OR_MODEL (digest or name) for a period.",
    ),
    "revenue": LazyCommand(
        _CLI + "sharing_commands:revenue_group",
        "Record and list revenue earned by models and services.",
    ),
    "right": LazyCommand(
        _CLI + "rights_commands:right_group",
        "Delegate a right over an asset to another party, revoke it, list the delegations.",
    ),
    "run": LazyCommand(
        _CLI + "provenance_commands:run_group",
        "List and show recorded runs.",
    ),
    "service": LazyCommand(
        _CLI + "metering_commands:service_group",
        "Register a service: an API endpoint backed by a model, whose usage is metered.",
    ),
    "share": LazyCommand(
        _CLI + "sharing_commands:share_command",
        "Compute and record the exact allocation of REVENUE through the lineage.",
    ),
    "statement": LazyCommand(
        _CLI + "sharing_commands:statement_command",
        "What PARTY earned in a period, each line traced to the entries behind it.",
    ),
    "usage": LazyCommand(
        _CLI + "metering_commands:usage_group",
        "Ingest, bill and receipt the services' usage; set tariffs; release private statistics.",
    ),
    "valuation": LazyCommand(
        _CLI + "sharing_commands:valuation_group",
        "Record contribution values of a model's inputs.",
    ),
    "verify": LazyCommand(
        _CLI + "workspace_commands:verify_command",
        "Check every leaf hash, signature, tree node and checkpoint, and the projections against a replay.",
    ),
    "verify-receipt": LazyCommand(
        _CLI + "billing_commands:verify_receipt_command",
        "Check a usage receipt offline: proofs, checkpoint, signatures, and the billed quantities.",
    ),
    "verify-statement": LazyCommand(
        _CLI + "sharing_commands:verify_statement_command",
        "Check a statement file offline: proofs, checkpoint, signatures, and the amounts, recomputed.",
    ),
}


class LazyGroup(QuotepartGroup):
    """A group whose subcommands are imported on first use; QuotepartGroup's error handling."""

    def __init__(self, *args: Any, lazy_commands: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, _, attribute = self.lazy_commands[cmd_name].target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # our bug, not the user's
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's own listing, but lazy commands show their kept short help, unimported."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy_commands:
                command: click.Command | None = click.Command(
                    name, help=self.lazy_commands[name].short_help
                )
            else:
                command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="quotepart")
def cli() -> None:
    """Record, value and share the contributions behind AI models, in a signed Merkle log."""


def main() -> None:
    pause_collector()  # until the workspace is open (see cli._base.resume_collector)
    cli(prog_name="quotepart")
