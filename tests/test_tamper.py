"""Edit the database behind the log's back: every kind of edit makes verify fail, naming it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, delete, insert, select, update

from quotepart.cli import cli
from quotepart.errors import VerificationError
from quotepart.log import CompactRange, NodeId, SigningKey, canonicalize, leaf_hash
from quotepart.log.checkpoint import Checkpoint
from quotepart.store.schema import (
    assets,
    checkpoints,
    contributions,
    log_entries,
    log_head,
    tree_nodes,
)
from quotepart.workspace import Workspace, init_workspace
from tests.conftest import FakeClock
from tests.helpers import asset_body, populate


@pytest.fixture
def ws(ws: Workspace) -> Workspace:
    """The shared empty workspace (each backend), with 14 entries that verify."""
    populate(ws, assets=6)  # 2 parties + 6 assets + 6 contributions = 14 entries
    ws.verify()
    return ws


def entry_bytes(conn: Connection, index: int) -> bytes:
    return bytes(
        conn.execute(
            select(log_entries.c.entry).where(log_entries.c.leaf_index == index)
        ).scalar_one()
    )


def flip_entry_byte(conn: Connection) -> None:
    data = bytearray(entry_bytes(conn, 5))
    data[data.index(b'"ts":"') + 6] ^= 0x01  # '2026' -> '3026': still canonical JSON
    conn.execute(update(log_entries).where(log_entries.c.leaf_index == 5).values(entry=bytes(data)))


def flip_entry_byte_and_its_leaf_hash(conn: Connection) -> None:
    data = bytearray(entry_bytes(conn, 5))
    data[data.index(b'"ts":"') + 6] ^= 0x01
    conn.execute(
        update(log_entries)
        .where(log_entries.c.leaf_index == 5)
        .values(entry=bytes(data), leaf_hash=leaf_hash(bytes(data)))
    )


def delete_middle_entry(conn: Connection) -> None:
    conn.execute(delete(log_entries).where(log_entries.c.leaf_index == 6))


def delete_last_entry_and_shrink_head(conn: Connection) -> None:
    conn.execute(delete(log_entries).where(log_entries.c.leaf_index == 13))
    conn.execute(update(log_head).values(tree_size=13))


def swap_two_entries(conn: Connection) -> None:
    rows = {
        row.leaf_index: row
        for row in conn.execute(select(log_entries).where(log_entries.c.leaf_index.in_([4, 6])))
    }
    conn.execute(
        update(log_entries).where(log_entries.c.leaf_index == 4).values(leaf_hash=b"\0" * 32)
    )
    for index, other in ((6, 4), (4, 6)):
        conn.execute(
            update(log_entries)
            .where(log_entries.c.leaf_index == index)
            .values(entry=rows[other].entry, leaf_hash=rows[other].leaf_hash)
        )


def replace_a_signature(conn: Connection) -> None:
    document = json.loads(entry_bytes(conn, 7))
    document["sig"] = base64.b64encode(SigningKey.generate().sign(b"something else")).decode()
    data = canonicalize(document)
    conn.execute(
        update(log_entries)
        .where(log_entries.c.leaf_index == 7)
        .values(entry=data, leaf_hash=leaf_hash(data))
    )


def change_a_projection_row(conn: Connection) -> None:
    conn.execute(update(contributions).where(contributions.c.leaf_index == 3).values(share="1/2"))


def add_a_projection_row(conn: Connection) -> None:
    conn.execute(
        insert(assets).values(
            digest="sha256:" + "ab" * 32,
            digest_prefix=1,
            asset_kind="model",
            name="ghost",
            registered_by="x",
            leaf_index=99,
        )
    )


def alter_a_tree_node(conn: Connection) -> None:
    conn.execute(
        update(tree_nodes)
        .where(tree_nodes.c.node_id == NodeId(2, 1).flat)
        .values(hash=b"\x11" * 32)
    )


def drop_the_newest_checkpoint(conn: Connection) -> None:
    conn.execute(delete(checkpoints).where(checkpoints.c.tree_size == 14))


def rewrite_history_and_resign_with_another_key(conn: Connection) -> None:
    """Replace entry 3 by a self-consistent forgery: new leaf hash, new nodes, new checkpoints."""
    forger = SigningKey.generate()
    document = json.loads(entry_bytes(conn, 3))
    document["body"]["role"] = "code"
    document["sig"] = base64.b64encode(forger.sign(b"forged")).decode()
    forged = canonicalize(document)
    conn.execute(
        update(log_entries)
        .where(log_entries.c.leaf_index == 3)
        .values(entry=forged, leaf_hash=leaf_hash(forged))
    )
    hashes = [
        bytes(h)
        for h in conn.execute(
            select(log_entries.c.leaf_hash).order_by(log_entries.c.leaf_index)
        ).scalars()
    ]
    origin = conn.execute(select(checkpoints.c.note)).scalars().first().split("\n")[0]  # type: ignore[union-attr]
    conn.execute(delete(tree_nodes))
    conn.execute(delete(checkpoints))
    tree = CompactRange()
    for value in hashes:
        for node, node_value in tree.append(value):
            conn.execute(insert(tree_nodes).values(node_id=node.flat, hash=node_value))
        note = Checkpoint(origin, tree.size, tree.root()).sign(forger)
        conn.execute(
            insert(checkpoints).values(tree_size=tree.size, root_hash=tree.root(), note=note)
        )


TAMPERINGS: list[tuple[Callable[[Connection], None], str]] = [
    (flip_entry_byte, r"entry 5: stored leaf hash .* the entry was changed"),
    (flip_entry_byte_and_its_leaf_hash, r"entry 5: signature does not verify"),
    (delete_middle_entry, r"entry 6 is missing"),
    (delete_last_entry_and_shrink_head, r"checkpoint signs tree size 14, but the log has only 13"),
    (swap_two_entries, r"tree node level 1 index 2 \(leaves 4-5\) .* reordered"),
    (replace_a_signature, r"entry 7: signature does not verify"),
    (change_a_projection_row, r"projection 'contributions' row"),
    (add_a_projection_row, r"projection 'assets' row"),
    (
        alter_a_tree_node,
        r"tree node level 2 index 1 \(leaves 4-7\) is 1111.* the tree table was altered",
    ),
    (drop_the_newest_checkpoint, r"no signed checkpoint covers the whole log of 14"),
    (rewrite_history_and_resign_with_another_key, r"checkpoint at tree size 1: .*no signature by"),
]


@pytest.mark.parametrize(("tamper", "finding"), TAMPERINGS, ids=[t.__name__ for t, _ in TAMPERINGS])
def test_tampering_fails_verify_naming_what_was_found(
    ws: Workspace, tamper: Callable[[Connection], None], finding: str
) -> None:
    with ws.store.engine.begin() as conn:
        tamper(conn)
    with pytest.raises(VerificationError, match=finding):
        ws.verify()


def test_cli_verify_exits_3_and_names_the_first_bad_entry(tmp_path: Path, clock: FakeClock) -> None:
    folder = tmp_path / "ws"
    with init_workspace(folder, clock=clock) as ws:
        populate(ws, assets=3)
        with ws.store.engine.begin() as conn:
            replace_a_signature(conn)
    result = CliRunner().invoke(cli, ["verify", "--workspace", str(folder)])
    assert result.exit_code == 3
    assert "Error: entry 7: signature does not verify" in result.stderr
    assert "Traceback" not in result.output


def test_rebuild_repairs_an_edited_projection(ws: Workspace) -> None:
    with ws.store.engine.begin() as conn:
        change_a_projection_row(conn)
    with pytest.raises(VerificationError):
        ws.verify()
    ws.rebuild()
    ws.verify()


@pytest.mark.slow
def test_parallel_audit_still_names_the_first_bad_entry(tmp_path: Path, clock: FakeClock) -> None:
    """Signatures are checked in worker processes, several chunks ahead; the report must not be."""
    with init_workspace(tmp_path / "ws", clock=clock) as ws:
        party = ws.register_party("Bulk")
        for batch in range(3):
            ws.append_many([(asset_body(batch * 3000 + n), party) for n in range(3000)])
        assert ws.verify(workers=2).signatures_checked == 9001

        def resign(index: int) -> None:
            with ws.store.engine.begin() as conn:
                document = json.loads(entry_bytes(conn, index))
                document["sig"] = base64.b64encode(SigningKey.generate().sign(b"x")).decode()
                data = canonicalize(document)
                conn.execute(
                    update(log_entries)
                    .where(log_entries.c.leaf_index == index)
                    .values(entry=data, leaf_hash=leaf_hash(data))
                )

        resign(8000)
        with pytest.raises(VerificationError, match="entry 8000: signature does not verify"):
            ws.verify(workers=2)
        resign(5000)
        with ws.store.engine.begin() as conn:  # a later, different fault must not be named first
            conn.execute(
                update(log_entries)
                .where(log_entries.c.leaf_index == 8500)
                .values(leaf_hash=b"\0" * 32)
            )
        with pytest.raises(VerificationError, match="entry 5000: signature does not verify"):
            ws.verify(workers=2)
