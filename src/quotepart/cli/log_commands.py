"""`quotepart log …`: the log's checkpoint, key, entries and proofs, and appending signed entries."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from quotepart.cli._base import (
    QuotepartGroup,
    emit_json,
    json_option,
    load_workspace,
    stderr_console,
    workspace_options,
)
from quotepart.errors import InputError, MalformedEntryError
from quotepart.log import parse_canonical, parse_entry, verifier_key

if TYPE_CHECKING:
    from quotepart.store import ConsistencyProof, InclusionProof


@click.group("log", cls=QuotepartGroup)
def log_group() -> None:
    """Read the signed Merkle log: checkpoints, keys, entries and RFC 9162 proofs."""


@log_group.command("checkpoint")
@workspace_options
@json_option
@click.option(
    "--tree-size", type=click.IntRange(min=0), default=None, help="An earlier checkpoint."
)
def checkpoint_command(
    workspace_dir: Path, database_url: str | None, as_json: bool, tree_size: int | None
) -> None:
    """Print the current signed checkpoint (C2SP tlog-checkpoint note)."""
    with load_workspace(workspace_dir, database_url) as ws:
        note = (
            ws.store.latest_checkpoint() if tree_size is None else ws.store.checkpoint_at(tree_size)
        )
        if note is None:
            raise InputError(
                "the log has no checkpoint yet"
                if tree_size is None
                else f"no checkpoint at tree size {tree_size}",
                hint="append an entry first"
                if tree_size is None
                else "list sizes with `quotepart log checkpoint`",
            )
        if as_json:
            lines = note.split("\n")
            emit_json(
                {
                    "origin": lines[0],
                    "tree_size": int(lines[1]),
                    "root_hash": base64.b64decode(lines[2]).hex(),
                    "note": note,
                }
            )
        else:
            click.echo(note, nl=False)


@log_group.command("key")
@workspace_options
@json_option
def key_command(workspace_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Print the log's note verifier key: <origin>+<key hash>+<base64 key>."""
    with load_workspace(workspace_dir, database_url) as ws:
        key = verifier_key(ws.origin, ws.log_key.public)
        if as_json:
            emit_json({"origin": ws.origin, "verifier_key": key})
        else:
            click.echo(key)


@log_group.command("entry")
@click.argument("index", type=click.IntRange(min=0))
@workspace_options
@json_option
def entry_command(workspace_dir: Path, database_url: str | None, as_json: bool, index: int) -> None:
    """Print the entry at INDEX (0-based)."""
    with load_workspace(workspace_dir, database_url) as ws:
        leaf_hash, data = ws.store.entry(index)
        if as_json:
            emit_json(
                {
                    "index": index,
                    "leaf_hash": leaf_hash.hex(),
                    "entry": base64.b64encode(data).decode(),
                }
            )
        else:
            click.echo(f"index      {index}\nleaf_hash  {leaf_hash.hex()}")
            click.echo(json.dumps(parse_canonical(data), indent=2, sort_keys=True))


def render_proof(proof: InclusionProof | ConsistencyProof, *, as_json: bool) -> None:
    """The proof's fields in order, hashes in hex: JSON, or one `name value` line per field and hash.

    The JSON keys are the field names of the store's proof types.
    """
    document: dict[str, Any] = {}
    for field in dataclasses.fields(proof):
        value = getattr(proof, field.name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = [node.hex() for node in value]
        document[field.name] = value
    if as_json:
        emit_json(document)
        return
    width = max(map(len, document)) + 1
    for name, value in document.items():
        for item in value if isinstance(value, list) else [value]:
            click.echo(f"{name:<{width}}{item}")


@log_group.command("prove-inclusion")
@click.argument("index", type=click.IntRange(min=0))
@click.option(
    "--tree-size", type=click.IntRange(min=1), default=None, help="Default: the current size."
)
@workspace_options
@json_option
def prove_inclusion_command(
    workspace_dir: Path, database_url: str | None, as_json: bool, index: int, tree_size: int | None
) -> None:
    """Print the RFC 9162 inclusion proof of entry INDEX."""
    with load_workspace(workspace_dir, database_url) as ws:
        proof = ws.store.inclusion_proof(index, tree_size)
    render_proof(proof, as_json=as_json)


@log_group.command("prove-consistency")
@click.argument("old_size", type=click.IntRange(min=0))
@click.argument("new_size", type=click.IntRange(min=0), required=False)
@workspace_options
@json_option
def prove_consistency_command(
    workspace_dir: Path,
    database_url: str | None,
    as_json: bool,
    old_size: int,
    new_size: int | None,
) -> None:
    """Print the RFC 9162 consistency proof from OLD_SIZE to NEW_SIZE (default: current size)."""
    with load_workspace(workspace_dir, database_url) as ws:
        proof = ws.store.consistency_proof(old_size, new_size)
    render_proof(proof, as_json=as_json)


@log_group.command("append")
@click.argument("source", type=click.File("rb"), default="-")
@workspace_options
@json_option
def append_command(
    workspace_dir: Path, database_url: str | None, as_json: bool, source: BinaryIO
) -> None:
    """Append signed entries from SOURCE (a file or -), one canonical JSON entry per line.

    All lines are checked first; they are appended together, or not at all.
    """
    lines = [line.rstrip(b"\r\n") for line in source.read().splitlines() if line.strip()]
    if not lines:
        raise InputError(
            "no entries to append", hint="give one signed, canonical JSON entry per line"
        )
    with load_workspace(workspace_dir, database_url) as ws:
        entries = []
        for number, line in enumerate(lines, 1):
            try:
                entries.append(parse_entry(line))
            except MalformedEntryError as exc:
                raise MalformedEntryError(f"line {number}: {exc.message}", hint=exc.hint) from exc
        indexes = ws.append_signed(entries)
    if as_json:
        emit_json({"indexes": indexes})
    else:
        for index in indexes:
            click.echo(index)
    stderr_console().print(f"appended {len(indexes)} entr{'y' if len(indexes) == 1 else 'ies'}")
